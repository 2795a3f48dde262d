//! The traced process as /proc shows it, and facts about this host.
use std::{collections::BTreeSet, fs, io};

use anyhow::{bail, Context as _, Result};

use crate::{
    event::Comm,
    record::{ClockMapping, Target},
};

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
    Ok(Target { pid: tgid, comm, cmdline })
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

/// A thread's name as /proc shows it now.
pub fn thread_comm(pid: u32, tid: u32) -> Comm {
    Comm::new(fs::read_to_string(format!("/proc/{pid}/task/{tid}/comm")).unwrap_or_default().trim_end())
}

/// True while `stat` (a /proc stat line) is of a task that has not exited.
fn running(stat: &str) -> bool {
    // The state follows the last ')' (comm may contain parentheses).
    stat.rsplit_once(')').is_some_and(|(_, rest)| !rest.trim_start().starts_with(['Z', 'X']))
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
    fn resolves_this_test_process_by_a_thread_id() {
        // Our own TID resolves to our process, which pintrace refuses to trace.
        // SAFETY: gettid has no preconditions.
        let tid = unsafe { libc::gettid() } as u32;
        let err = resolve(tid).expect_err("self").to_string();
        assert!(err.contains("does not trace itself"), "{err}");
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
