//! The traced process as /proc shows it, and facts about this host.
use std::{collections::BTreeSet, fs, io};

use anyhow::{bail, Context as _, Result};

use crate::{
    event::{Comm, Event, EventKind, NO_CPU},
    probe::TidSet,
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
    if field("State:").is_some_and(|s| s.starts_with('Z')) {
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

fn thread_comm(pid: u32, tid: u32) -> Comm {
    Comm::new(fs::read_to_string(format!("/proc/{pid}/task/{tid}/comm")).unwrap_or_default().trim_end())
}

/// True while `pid` exists and is not a zombie.
pub fn alive(pid: u32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the last ')' (comm may contain parentheses).
        Ok(stat) => stat.rsplit_once(')').is_some_and(|(_, rest)| !rest.trim_start().starts_with(['Z', 'X'])),
        Err(_) => false,
    }
}

/// Puts the target's threads in the kernel's TID set before the programs
/// are attached (nothing else writes it then).
pub fn fill_before_attach(pid: u32, tids: &mut TidSet) -> Result<BTreeSet<u32>> {
    let found = threads(pid).with_context(|| format!("listing the threads of process {pid}"))?;
    if found.is_empty() {
        bail!("process {pid} has no threads left (it exited)");
    }
    for &tid in &found {
        tids.insert(tid)?;
    }
    Ok(found)
}

/// After the programs are attached: adds the threads created in between
/// (the kernel adds those created later itself) and returns one
/// `ThreadSeen` event at `start_ns` for every thread that existed before
/// tracing began. Repeats until /proc and the set agree, because a write
/// here can race with the kernel setting a bit in the same word.
pub fn fill_after_attach(pid: u32, tids: &mut TidSet, before: &BTreeSet<u32>, start_ns: u64) -> Result<Vec<Event>> {
    let mut seen: BTreeSet<u32> = before.clone();
    let mut now = BTreeSet::new();
    for _ in 0..8 {
        now = threads(pid).unwrap_or_default();
        let mut missing = 0;
        for &tid in &now {
            if !tids.contains(tid)? {
                missing += 1;
                // Neither listed before attach nor added by the kernel: created in between.
                tids.insert(tid)?;
                seen.insert(tid);
            }
        }
        if missing == 0 {
            break;
        }
    }
    // A thread listed before attach and gone now either exited after attach
    // (the kernel cleared its bit at its final switch and recorded its exit)
    // or before, when nothing could clear its bit: clear it, or a new task
    // reusing the TID would be traced as the target's.
    for &tid in before.difference(&now) {
        if tids.contains(tid)? {
            tids.remove(tid)?;
            seen.remove(&tid);
        }
    }
    Ok(seen
        .into_iter()
        .map(|tid| Event {
            ts_ns: start_ns,
            cpu: NO_CPU,
            kind: EventKind::ThreadSeen { tid, tgid: pid, comm: thread_comm(pid, tid) },
        })
        .collect())
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
    fn init_is_alive_and_has_threads() {
        assert!(alive(1));
        assert!(!threads(1).expect("threads of init").is_empty());
    }
}
