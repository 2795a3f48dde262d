//! Where `record` writes: a new file, or a stream that already exists.
//!
//! A file is created 0600 (it holds the target's command line) under a
//! temporary name beside the final one, and renamed into place only once its
//! header has been written: a start that fails leaves nothing behind, and a
//! symlink at the output path is replaced, never followed. An existing file
//! is kept as `FILE.old`, as perf does. Standard output (`-`, `/dev/stdout`,
//! `/dev/fd/N`), pipes, FIFOs and devices are written as streams. Under
//! sudo, a new file is given to the user who ran sudo.
use std::{
    fs::{self, File},
    io::IsTerminal,
    os::fd::{BorrowedFd, OwnedFd, RawFd},
    path::{Path, PathBuf},
};

use anyhow::{bail, Context as _, Result};
use tempfile::TempPath;

pub struct Output {
    file: File,
    /// For a new file: its temporary path and the final one.
    pending: Option<(TempPath, PathBuf)>,
    /// How messages name it.
    pub name: String,
}

/// The descriptor a path names, for `-`, `/dev/stdout`, `/dev/stderr`,
/// `/dev/fd/N` and `/proc/self/fd/N`.
fn descriptor(path: &Path) -> Option<RawFd> {
    let s = path.to_str()?;
    match s {
        "-" | "/dev/stdout" => Some(1),
        "/dev/stderr" => Some(2),
        _ => s.strip_prefix("/dev/fd/").or_else(|| s.strip_prefix("/proc/self/fd/"))?.parse().ok(),
    }
}

impl Output {
    /// Opens `path` for a recording; nothing is visible at `path` until [`Output::commit`].
    pub fn create(path: &Path) -> Result<Output> {
        let cannot = || format!("cannot create the record file {}", path.display());
        if let Some(fd) = descriptor(path) {
            let name = if fd == 1 { "standard output".to_string() } else { path.display().to_string() };
            // SAFETY: the descriptor is only borrowed to duplicate it; fcntl
            // (inside try_clone_to_owned) fails cleanly if it is not open.
            let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
            let owned: OwnedFd = borrowed.try_clone_to_owned().with_context(cannot)?;
            let file = File::from(owned);
            if file.is_terminal() {
                bail!("{name} is a terminal: a recording is binary; redirect it to a file or a pipe, or give -o FILE");
            }
            return Ok(Output { file, pending: None, name });
        }
        match fs::metadata(path) {
            Ok(m) if m.is_dir() => bail!("{}: is a directory", cannot()),
            // A FIFO, a device or a socket: written as it is (following a symlink to it is harmless).
            Ok(m) if !m.is_file() => {
                let file = fs::OpenOptions::new().write(true).open(path).with_context(cannot)?;
                return Ok(Output { file, pending: None, name: path.display().to_string() });
            }
            _ => {}
        }
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let base = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let temp = tempfile::Builder::new()
            .prefix(&format!(".{base}."))
            .suffix(".tmp")
            .tempfile_in(dir)
            .with_context(cannot)?;
        let (file, temp) = temp.into_parts();
        Ok(Output { file, pending: Some((temp, path.to_path_buf())), name: path.display().to_string() })
    }

    /// A second handle to write through.
    pub fn file(&self) -> Result<File> {
        self.file.try_clone().with_context(|| format!("writing {}", self.name))
    }

    /// Puts a new file in place (an existing one becomes `FILE.old`).
    /// Returns the note to print when an old file was kept.
    pub fn commit(&mut self) -> Result<Option<String>> {
        let Some((temp, path)) = self.pending.take() else { return Ok(None) };
        let mut note = None;
        if fs::symlink_metadata(&path).is_ok() {
            let mut old = path.clone().into_os_string();
            old.push(".old");
            let old = PathBuf::from(old);
            fs::rename(&path, &old)
                .with_context(|| format!("keeping the previous {} as {}", path.display(), old.display()))?;
            note = Some(format!("the previous {} is kept as {}", path.display(), old.display()));
        }
        // Under sudo, the file belongs to the user who asked for it, so that
        // `report` and `replay` read it without root, and stays private.
        let owner = |key: &str| std::env::var(key).ok().and_then(|v| v.parse::<u32>().ok());
        if let (Some(uid), Some(gid), true) = (owner("SUDO_UID"), owner("SUDO_GID"), crate::probe::is_root()) {
            std::os::unix::fs::fchown(&self.file, Some(uid), Some(gid))
                .with_context(|| format!("giving {} to user {uid}", path.display()))?;
        }
        temp.persist(&path)
            .map_err(|e| e.error)
            .with_context(|| format!("cannot create the record file {}", path.display()))?;
        Ok(note)
    }

    /// Flushes a regular file to the disk; a stream has nothing to sync.
    pub fn sync(&self) -> Result<()> {
        let regular = self.file.metadata().is_ok_and(|m| m.is_file());
        if regular {
            self.file.sync_all().with_context(|| format!("writing {}", self.name))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::{io::Write, os::unix::fs::PermissionsExt};

    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("pintrace-output-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&d);
        fs::create_dir_all(&d).expect("scratch dir");
        d
    }

    #[test]
    fn names_of_descriptors() {
        assert_eq!(descriptor(Path::new("-")), Some(1));
        assert_eq!(descriptor(Path::new("/dev/stdout")), Some(1));
        assert_eq!(descriptor(Path::new("/dev/stderr")), Some(2));
        assert_eq!(descriptor(Path::new("/dev/fd/7")), Some(7));
        assert_eq!(descriptor(Path::new("/proc/self/fd/3")), Some(3));
        assert_eq!(descriptor(Path::new("./-x")), None);
        assert_eq!(descriptor(Path::new("/dev/fd/x")), None);
        assert_eq!(descriptor(Path::new("out.ptr")), None);
    }

    #[test]
    fn a_new_file_appears_only_when_committed_and_is_private() {
        let d = scratch("new");
        let path = d.join("x.ptr");
        let mut out = Output::create(&path).expect("create");
        out.file().expect("handle").write_all(b"PINTRACE").expect("write");
        assert!(!path.exists(), "nothing at the path before the header is written");
        assert_eq!(out.commit().expect("commit"), None);
        assert_eq!(fs::read(&path).expect("read"), b"PINTRACE");
        assert_eq!(fs::metadata(&path).expect("meta").permissions().mode() & 0o777, 0o600);
        assert_eq!(fs::read_dir(&d).expect("dir").count(), 1, "no temporary file is left");
    }

    #[test]
    fn a_failed_start_leaves_nothing() {
        let d = scratch("failed");
        let path = d.join("x.ptr");
        drop(Output::create(&path).expect("create"));
        assert_eq!(fs::read_dir(&d).expect("dir").count(), 0);
    }

    #[test]
    fn an_existing_file_is_kept_as_old_and_a_symlink_is_not_followed() {
        let d = scratch("old");
        let path = d.join("x.ptr");
        fs::write(&path, b"previous").expect("old file");
        let mut out = Output::create(&path).expect("create");
        out.file().expect("handle").write_all(b"new").expect("write");
        let note = out.commit().expect("commit").expect("a note");
        assert!(note.contains("x.ptr.old"), "{note}");
        assert_eq!(fs::read(d.join("x.ptr.old")).expect("old"), b"previous");
        assert_eq!(fs::read(&path).expect("new"), b"new");

        // A symlink at the path, pointing at a file that must not change.
        let victim = d.join("victim");
        fs::write(&victim, b"keep me").expect("victim");
        let link = d.join("link.ptr");
        std::os::unix::fs::symlink(&victim, &link).expect("symlink");
        let mut out = Output::create(&link).expect("create");
        out.file().expect("handle").write_all(b"new").expect("write");
        out.commit().expect("commit");
        assert_eq!(fs::read(&victim).expect("victim"), b"keep me");
        assert!(fs::symlink_metadata(&link).expect("link").is_file(), "the link was replaced by a file");
        assert!(fs::symlink_metadata(d.join("link.ptr.old")).expect("old link").file_type().is_symlink());
    }

    #[test]
    fn devices_are_streams_and_directories_are_refused() {
        let mut out = Output::create(Path::new("/dev/null")).expect("/dev/null");
        assert_eq!(out.commit().expect("commit"), None);
        out.sync().expect("no fsync on a device");
        let d = scratch("dir");
        let err = Output::create(&d).err().expect("a directory").to_string();
        assert!(err.ends_with(": is a directory"), "{err}");
    }
}
