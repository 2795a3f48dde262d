//! The traced process as /proc shows it, and facts about this host.
use std::{collections::BTreeSet, fs, io};

use anyhow::{bail, Context as _, Result};

use crate::meta::{ClockMapping, Comm, Target};

/// Resolves `pid` (a process or any of its threads) to its process.
pub fn resolve(pid: u32) -> Result<Target> {
    if pid == 0 {
        bail!("PID 0 is not a process: give the PID of the process to trace");
    }
    let status = match fs::read_to_string(format!("/proc/{pid}/status")) {
        Ok(s) => s,
        Err(e) if e.kind() == io::ErrorKind::NotFound => bail!("no process with PID {pid}"),
        Err(e) => return Err(e).with_context(|| format!("reading /proc/{pid}/status")),
    };
    let field = |key: &str| status.lines().find_map(|l| l.strip_prefix(key)).map(str::trim);
    let tgid: u32 = field("Tgid:").and_then(|v| v.parse().ok()).unwrap_or(pid);
    // A leader that has exited is a zombie while its other threads run on:
    // the process lives as long as any of its threads does.
    if field("State:").is_some_and(|s| s.starts_with('Z')) && !alive(tgid) {
        bail!("process {pid} has already exited (it is a zombie)");
    }
    if tgid == std::process::id() {
        bail!("pintrace does not trace itself: give the PID of another process");
    }
    let comm = fs::read_to_string(format!("/proc/{tgid}/comm")).unwrap_or_default().trim_end().to_string();
    let cmdline = fs::read(format!("/proc/{tgid}/cmdline"))
        .map(|b| {
            b.split(|&c| c == 0)
                .filter(|a| !a.is_empty())
                .map(|a| String::from_utf8_lossy(a))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default();
    let ns_pid = parse_nspid(&status).and_then(|ids| ns_id(&ids));
    Ok(Target { pid: tgid, comm, cmdline, ns_pid })
}

/// The IDs of a task in each PID namespace it is in, from a
/// `/proc/…/status` text: its `NSpid:` line, outermost first (the namespace
/// of the /proc mount read, pintrace's), innermost last (the task's own).
/// None without the line (kernels before 4.1) or if it does not parse.
pub fn parse_nspid(status: &str) -> Option<Vec<u32>> {
    let line = status.lines().find_map(|l| l.strip_prefix("NSpid:"))?;
    let ids: Option<Vec<u32>> = line.split_whitespace().take(MAX_PID_NS_LEVEL).map(|v| v.parse().ok()).collect();
    ids.filter(|ids| !ids.is_empty())
}

/// The kernel nests PID namespaces at most 32 deep.
const MAX_PID_NS_LEVEL: usize = 33;

/// The ID a task has in its own namespace, when that is not pintrace's
/// (a container): the innermost of `parse_nspid`'s IDs.
pub fn ns_id(ids: &[u32]) -> Option<u32> {
    match ids {
        [_, .., inner] => Some(*inner),
        _ => None,
    }
}

/// Thread IDs of one process as its own PID namespace numbers them (what
/// the Go runtime stores in `m.procid`) mapped to pintrace's, read from
/// `NSpid:` in `/proc/PID/task/TID/status`. Each thread's status is read
/// once: a refresh reads only threads not seen before.
#[derive(Debug, Default)]
pub struct NsTids {
    /// Namespace TID → host TID.
    to_host: std::collections::HashMap<u32, u32>,
    /// Host TIDs read, alive at the last refresh.
    known: BTreeSet<u32>,
}

impl NsTids {
    /// Whether process `pid` lives in another PID namespace than pintrace:
    /// then `m.procid` and the like need mapping.
    pub fn needed(pid: u32) -> bool {
        fs::read_to_string(format!("/proc/{pid}/status"))
            .ok()
            .and_then(|s| parse_nspid(&s))
            .is_some_and(|ids| ns_id(&ids).is_some())
    }

    /// Reads the threads of `pid` that are new since the last refresh and
    /// forgets those that are gone.
    pub fn refresh(&mut self, pid: u32) {
        let Ok(now) = threads(pid) else { return };
        for tid in now.difference(&self.known) {
            let status = fs::read_to_string(format!("/proc/{pid}/task/{tid}/status")).unwrap_or_default();
            if let Some(inner) = parse_nspid(&status).and_then(|ids| ns_id(&ids)) {
                self.to_host.insert(inner, *tid);
            }
        }
        self.to_host.retain(|_, host| now.contains(host));
        self.known = now;
    }

    /// The host TID of the thread numbered `ns_tid` in the process's namespace.
    pub fn host(&self, ns_tid: u32) -> Option<u32> {
        self.to_host.get(&ns_tid).copied()
    }

    /// Test helper: a mapping as given.
    pub fn from_pairs(pairs: impl IntoIterator<Item = (u32, u32)>) -> NsTids {
        let to_host: std::collections::HashMap<u32, u32> = pairs.into_iter().collect();
        let known = to_host.values().copied().collect();
        NsTids { to_host, known }
    }
}

/// The TIDs of process `pid` now.
pub fn threads(pid: u32) -> io::Result<BTreeSet<u32>> {
    let mut tids = BTreeSet::new();
    for entry in fs::read_dir(format!("/proc/{pid}/task"))? {
        if let Some(tid) = entry?.file_name().to_str().and_then(|s| s.parse().ok()) {
            tids.insert(tid);
        }
    }
    Ok(tids)
}

/// Whether task `pid` is a kernel thread (`PF_KTHREAD` in the flags of
/// /proc/PID/stat); false if it cannot be read.
pub fn is_kernel_thread(pid: u32) -> bool {
    let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else { return false };
    // The fields after the name, which ends at the last ')': state is the
    // first of them, flags the seventh.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    after
        .split_whitespace()
        .nth(6)
        .and_then(|f| f.parse::<u32>().ok())
        .is_some_and(|f| f & pintrace_common::PF_KTHREAD != 0)
}

/// True while thread `tid` of process `pid` runs and is not on its way out
/// (`PF_EXITING`, set at the start of its exit): what it had in memory
/// is still its own. False once it exits, or if it cannot be read.
pub fn thread_running(pid: u32, tid: u32) -> bool {
    const PF_EXITING: u32 = 0x4;
    let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/task/{tid}/stat")) else { return false };
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let mut fields = after.split_whitespace();
    let state = fields.next().unwrap_or("X");
    let flags = fields.nth(5).and_then(|f| f.parse::<u32>().ok()).unwrap_or(PF_EXITING);
    !state.starts_with(['Z', 'X']) && flags & PF_EXITING == 0
}

/// A thread's name as /proc shows it now.
pub fn thread_comm(pid: u32, tid: u32) -> Comm {
    Comm::new(fs::read_to_string(format!("/proc/{pid}/task/{tid}/comm")).unwrap_or_default().trim_end())
}

/// When process `pid` started (field 22 of /proc/PID/stat, in clock ticks
/// since boot): with its PID, what names one process for as long as the
/// host runs. None if it cannot be read (it has gone).
pub fn start_time(pid: u32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_start_time(&stat)
}

fn parse_start_time(stat: &str) -> Option<u64> {
    // The fields after the name, which ends at the last ')': state is field 3, starttime 22.
    stat.rsplit_once(')')?.1.split_whitespace().nth(19)?.parse().ok()
}

/// True while `stat` (a /proc stat line) is of a task that has not exited.
fn running(stat: &str) -> bool {
    // The state follows the last ')' (comm may contain parentheses).
    stat.rsplit_once(')').is_some_and(|(_, rest)| !rest.trim_start().starts_with(['Z', 'X']))
}

/// True while the leader (main thread) of process `pid` has not exited:
/// what /proc says of the process as a whole (its cgroup, say) is only
/// its own until then (an exited process reads as in the root group).
pub fn leader_running(pid: u32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| running(&s))
}

/// True while process `pid` has a thread that has not exited. Its leader
/// may have exited (a zombie) while other threads run on.
pub fn alive(pid: u32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) if running(&stat) => true,
        Ok(_) => threads(pid).is_ok_and(|tids| {
            tids.into_iter()
                .any(|tid| fs::read_to_string(format!("/proc/{pid}/task/{tid}/stat")).is_ok_and(|s| running(&s)))
        }),
        Err(_) => false,
    }
}

pub fn clock_ns(clock: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `ts` is a valid, writable timespec.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    (ts.tv_sec as u64).saturating_mul(1_000_000_000).saturating_add(ts.tv_nsec as u64)
}

/// CLOCK_MONOTONIC (the kernel's `bpf_ktime_get_ns`) now.
pub fn monotonic_ns() -> u64 {
    clock_ns(libc::CLOCK_MONOTONIC)
}

pub fn clock_mapping() -> ClockMapping {
    ClockMapping { monotonic_ns: monotonic_ns(), realtime_ns: clock_ns(libc::CLOCK_REALTIME) }
}

pub fn hostname() -> String {
    fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default().trim().to_string()
}

pub fn kernel_release() -> String {
    fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default().trim().to_string()
}

pub fn nr_cpus() -> u32 {
    // SAFETY: sysconf has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    u32::try_from(n).unwrap_or(1).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_thread_is_running() {
        let pid = std::process::id();
        // SAFETY: gettid has no preconditions.
        let tid = unsafe { libc::gettid() } as u32;
        assert!(thread_running(pid, tid));
        assert!(!thread_running(pid, u32::MAX));
    }

    #[test]
    fn start_time_is_field_22() {
        let stat = "9332 (c a) t) R 9288 9288 7929 0 -1 4194304 122 0 0 0 0 0 0 0 20 0 1 0 791087 3133440 379";
        assert_eq!(parse_start_time(stat), Some(791087));
        assert_eq!(parse_start_time("9332 (cat) R 1 2"), None);
        assert!(start_time(std::process::id()).is_some());
    }

    #[test]
    fn resolves_this_test_process_by_a_thread_id() {
        // Our own TID resolves to our process, which pintrace refuses to trace.
        // SAFETY: gettid has no preconditions.
        let tid = unsafe { libc::gettid() } as u32;
        let err = resolve(tid).expect_err("self").to_string();
        assert!(err.contains("does not trace itself"), "{err}");
    }

    #[test]
    fn kernel_threads_are_told_apart() {
        assert!(is_kernel_thread(2), "kthreadd");
        assert!(!is_kernel_thread(std::process::id()));
        assert!(!is_kernel_thread(u32::MAX), "no such task");
    }

    #[test]
    fn nspid_lines() {
        let host = "Name:\tapp\nTgid:\t4242\nNSpid:\t4242\nPPid:\t1\n";
        assert_eq!(parse_nspid(host), Some(vec![4242]));
        assert_eq!(parse_nspid(host).and_then(|i| ns_id(&i)), None, "pintrace's own namespace");
        let container = "NStgid:\t9100\t1\nNSpid:\t9105\t6\n";
        assert_eq!(parse_nspid(container), Some(vec![9105, 6]));
        assert_eq!(ns_id(&[9105, 6]), Some(6));
        assert_eq!(ns_id(&[9105, 300, 6]), Some(6), "nested: the innermost");
        assert_eq!(parse_nspid("NSpid:\t12\tx\n"), None);
        assert_eq!(parse_nspid("NSpid:\n"), None);
        assert_eq!(parse_nspid("Pid:\t5\n"), None, "a kernel before 4.1");
        // A hostile line is cut at the kernel's nesting limit.
        let deep = format!("NSpid:{}\n", "\t7".repeat(10_000));
        assert_eq!(parse_nspid(&deep).map(|v| v.len()), Some(MAX_PID_NS_LEVEL));
        // This process is in pintrace's namespace: nothing to map.
        assert!(!NsTids::needed(std::process::id()));
    }

    #[test]
    fn missing_and_zero_pids_are_clear_errors() {
        assert_eq!(
            resolve(0).expect_err("0").to_string(),
            "PID 0 is not a process: give the PID of the process to trace"
        );
        // PID_MAX_LIMIT is 2^22, so this PID cannot exist.
        assert_eq!(resolve(4_194_305).expect_err("none").to_string(), "no process with PID 4194305");
        assert!(!alive(4_194_305));
    }

    #[test]
    fn the_state_is_read_after_the_last_parenthesis() {
        assert!(running("12 (a) Z) S 1 2"));
        assert!(!running("12 (a (b)) Z 1 2"));
        assert!(!running("12 (x) X 1"));
        assert!(!running("garbage"));
    }

    #[test]
    fn init_is_alive_and_has_threads() {
        assert!(alive(1));
        assert!(!threads(1).expect("threads of init").is_empty());
    }
}
