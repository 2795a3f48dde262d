//! `/proc/self/mountinfo`, parsed in one place for whoever looks for a
//! mount (tracefs and debugfs, the cgroup hierarchies).
use std::{fs, io, path::PathBuf};

/// One mount, as a mountinfo line gives it:
/// `ID PARENT MAJ:MIN ROOT MOUNT_POINT OPTIONS [TAGS...] - FSTYPE SOURCE SUPER_OPTIONS`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mount {
    /// The directory of the filesystem mounted (a cgroup's path in its hierarchy).
    pub root: String,
    pub point: PathBuf,
    pub fstype: String,
    pub super_options: String,
}

/// The mounts of a mountinfo text; lines that do not parse are skipped.
pub fn parse(text: &str) -> Vec<Mount> {
    text.lines()
        .filter_map(|line| {
            let (left, right) = line.split_once(" - ")?;
            let mut f = left.split(' ');
            let root = f.nth(3)?;
            let point = f.next()?;
            let mut r = right.split(' ');
            let fstype = r.next()?;
            let super_options = r.nth(1).unwrap_or("");
            Some(Mount {
                root: unescape(root),
                point: PathBuf::from(unescape(point)),
                fstype: fstype.to_string(),
                super_options: super_options.to_string(),
            })
        })
        .collect()
}

/// This process's mounts.
pub fn read() -> io::Result<Vec<Mount>> {
    fs::read_to_string("/proc/self/mountinfo").map(|t| parse(&t))
}

/// mountinfo writes spaces and other bytes of paths as octal escapes (`\040`).
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let octal = b.get(i + 1..i + 4).filter(|d| b[i] == b'\\' && d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match octal {
            Some(d) => {
                out.push(d.iter().fold(0u8, |v, c| v.wrapping_mul(8).wrapping_add(c - b'0')));
                i += 4;
            }
            None => {
                out.push(b[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mounts_and_escapes() {
        let text = "22 1 0:20 / /sys/kernel/trac\\040ing rw,nosuid - tracefs tracefs rw\n\
                    30 25 0:26 /a/b /sys/fs/cgroup/cpu,cpuacct rw shared:9 - cgroup cgroup rw,cpu,cpuacct\n\
                    garbage line\n";
        let m = parse(text);
        assert_eq!(m.len(), 2);
        assert_eq!(m[0].point, PathBuf::from("/sys/kernel/trac ing"));
        assert_eq!((m[0].fstype.as_str(), m[0].root.as_str()), ("tracefs", "/"));
        assert_eq!(m[1].root, "/a/b");
        assert_eq!(m[1].super_options, "rw,cpu,cpuacct");
        assert_eq!(unescape("/a\\040b\\"), "/a b\\");
        assert_eq!(unescape("\\777"), "\u{fffd}", "not a byte: replaced, no overflow");
        assert!(!read().expect("this process's mountinfo").is_empty());
    }
}
