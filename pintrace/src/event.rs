//! Typed events, decoded once at the ring-buffer edge.

use pintrace_common as wire;

/// Task names are the session's leaf type (`meta`), used by events too.
pub use crate::meta::Comm;

/// A function name in the Go target (interned, so events stay `Copy`).
pub type FnName = ustr::Ustr;

/// One thing that happened to the target, at a CLOCK_MONOTONIC time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Event {
    pub ts_ns: u64,
    /// The CPU the event was observed on; [`NO_CPU`] for events made in user space.
    pub cpu: u32,
    pub kind: EventKind,
}

/// `Event::cpu` of events that user space synthesised.
pub const NO_CPU: u32 = u32::MAX;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    /// A CPU switched from `prev_tid` to `next_tid`; either is 0 when it is not a target thread.
    Switch {
        prev_tid: u32,
        next_tid: u32,
        prev_state: u32,
        /// How long `next_tid` waited for this CPU, as the kernel's run-queue
        /// accounting says (None: not read, and wake-up events tell instead).
        next_wait_ns: Option<u64>,
        /// The task on the other side when one side is not a target:
        /// its process's PID with `OTHER_KTHREAD` for a kernel thread (or
        /// a TID with `OTHER_TID_ONLY` on the classic path); 0 when both
        /// are targets, or the other is the idle task. See `Other`.
        other: u32,
    },
    Migrate {
        tid: u32,
        from_cpu: u32,
        to_cpu: u32,
    },
    Wakeup {
        tid: u32,
        target_cpu: u32,
        waker_tid: u32,
        new_task: bool,
    },
    /// `signal_generate` to or from a target thread.
    Signal {
        sender_tid: u32,
        sender_tgid: u32,
        target_tid: u32,
        sig: i32,
        code: i32,
        result: i32,
        group: bool,
    },
    /// A target thread created a task: a thread when `clone_flags` has CLONE_THREAD.
    NewTask {
        parent_tid: u32,
        parent_tgid: u32,
        child_tid: u32,
        clone_flags: u64,
        comm: Comm,
    },
    Exit {
        tid: u32,
        tgid: u32,
        group_dead: bool,
        comm: Comm,
    },
    Rename {
        tid: u32,
        comm: Comm,
    },
    /// A target thread called execve: `tid` now runs the new program, named
    /// `comm`. `old_tid` differs when a non-leader thread exec'd and took
    /// over the leader's TID.
    Exec {
        tid: u32,
        old_tid: u32,
        comm: Comm,
    },
    Tgkill {
        sender_tid: u32,
        tgid: u32,
        tid: u32,
        sig: i32,
    },
    CloneExit {
        parent_tid: u32,
        ret: i32,
        clone3: bool,
    },
    /// A goroutine on thread `tid` called `runtime.LockOSThread` (entry
    /// uprobe). `caller` is the return address (run-time), `func` the
    /// function it lies in, when the binary's symbols say.
    GoLock {
        tid: u32,
        caller: u64,
        func: Option<FnName>,
    },
    /// Synthesised from the Go runtime's list of Ms (read each interval):
    /// thread `tid` is an M with this role and lock counts; `locked_g` is the
    /// start function of the goroutine locked to it. Sent when it changes.
    GoThread {
        tid: u32,
        role: crate::goruntime::GoRole,
        locked_ext: u32,
        locked_int: u32,
        locked_g: Option<FnName>,
    },
    /// Synthesised: a thread that already existed when tracing started.
    ThreadSeen {
        tid: u32,
        tgid: u32,
        comm: Comm,
    },
    /// Synthesised: the kernel's running total of records lost (ring buffer full).
    Lost {
        total: u64,
    },
    /// Synthesised: the Go target's GOMAXPROCS, read when tracing starts and whenever it changes.
    GoMaxProcs {
        value: u32,
    },
    /// Synthesised: the Go scheduler as sampled (what `GODEBUG=schedtrace`
    /// prints), when it changed; `nprocs` is the length of `runtime.allp`.
    GoSched {
        idle_ps: u32,
        spinning: u32,
        idle_threads: u32,
        runqueue: u32,
        goroutines: u32,
        nprocs: u32,
    },
    /// Synthesised: P number `p`'s status and local run queue, when they
    /// changed (sent before the `GoSched` of the same sample).
    GoP {
        p: u32,
        status: u32,
        runq: u32,
        runnext: bool,
    },
    /// Synthesised: what Go thread `tid` does (from its M) and the goroutine
    /// on it (`goid` 0: none), when it changed.
    GoState {
        tid: u32,
        state: crate::goruntime::GoState,
        goid: u64,
        func: Option<FnName>,
    },
    /// Synthesised: the name of another process (or, on the classic path,
    /// thread) that a target thread's switch had on its other side, read
    /// from /proc when first seen; `kthread` for a kernel thread.
    OtherProcess {
        pid: u32,
        kthread: bool,
        comm: Comm,
    },
    /// Synthesised: the target's CPU cgroup or the CPUs it may use changed
    /// while it was traced (it was moved to another group, its quota was
    /// changed as a pod resize does, or its threads' affinities changed).
    /// `quota_us` 0 is no quota; `group` is the process's group and
    /// `limited_by` the one whose quota is the tightest.
    CpuLimit {
        version: u8,
        quota_us: u32,
        period_us: u32,
        cpus_allowed: u32,
        group: FnName,
        limited_by: Option<FnName>,
    },
    /// Synthesised: the target's CPU cgroup's `cpu.stat` as polled (cumulative counters).
    Throttle {
        nr_periods: u64,
        nr_throttled: u64,
        throttled_ns: u64,
    },
}

impl EventKind {
    /// True for an involuntary switch: the task was still runnable.
    pub fn is_involuntary(prev_state: u32) -> bool {
        prev_state & wire::STATE_SLEEP_MASK == 0
    }

    /// True when the task was switched out because its CPU cgroup ran out
    /// of quota (`task_struct.throttled` was set; see the kernel program).
    pub fn is_throttled(prev_state: u32) -> bool {
        prev_state & wire::STATE_THROTTLED != 0
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("record of {0} bytes is shorter than its 16-byte header")]
    TooShort(usize),
    #[error("record kind {0} is unknown to this pintrace")]
    UnknownKind(u32),
    #[error("record kind {kind} is {got} bytes, expected {expected}")]
    SizeMismatch { kind: u32, expected: usize, got: usize },
    #[error("switch record with a wait but no next thread")]
    NoNextThread,
}

/// Wire records: `#[repr(C)]` structs of integers and byte arrays only.
///
/// # Safety
/// Every bit pattern of the right size must be a valid value of the type.
unsafe trait WireRecord: Copy {}
// SAFETY: all of these are #[repr(C)] structs of integers and byte arrays (pintrace-common).
unsafe impl WireRecord for wire::SwitchRecord {}
// SAFETY: as above.
unsafe impl WireRecord for wire::SwitchWaitRecord {}
// SAFETY: as above.
unsafe impl WireRecord for wire::MigrateRecord {}
// SAFETY: as above.
unsafe impl WireRecord for wire::WakeupRecord {}
// SAFETY: as above.
unsafe impl WireRecord for wire::SignalRecord {}
// SAFETY: as above.
unsafe impl WireRecord for wire::NewTaskRecord {}
// SAFETY: as above.
unsafe impl WireRecord for wire::ExitRecord {}
// SAFETY: as above.
unsafe impl WireRecord for wire::RenameRecord {}
// SAFETY: as above.
unsafe impl WireRecord for wire::TgkillRecord {}
// SAFETY: as above.
unsafe impl WireRecord for wire::CloneExitRecord {}
// SAFETY: as above.
unsafe impl WireRecord for wire::ExecRecord {}
// SAFETY: as above.
unsafe impl WireRecord for wire::GoLockRecord {}

fn read<T: WireRecord>(kind: u32, bytes: &[u8]) -> Result<T, DecodeError> {
    let expected = std::mem::size_of::<T>();
    if bytes.len() != expected {
        return Err(DecodeError::SizeMismatch { kind, expected, got: bytes.len() });
    }
    // SAFETY: the length was checked above, the read is unaligned, and
    // `WireRecord` guarantees that any bytes are a valid `T`.
    Ok(unsafe { std::ptr::read_unaligned(bytes.as_ptr().cast::<T>()) })
}

/// Decode one ring-buffer record on its own. A switch's wait is the
/// current stretch in the run queue only; [`Decoder`] knows better.
pub fn decode(bytes: &[u8]) -> Result<Event, DecodeError> {
    decode_raw(bytes).map(|(e, _)| e)
}

/// The next thread's `sched_info` as a switch record carries it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct SchedInfo {
    run_delay: u64,
    queued_ns: u64,
}

/// The ring-buffer edge's decoder. It turns the kernel's run-queue
/// accounting into each thread's wait before a switch-in: all the time the
/// thread spent queued since its previous switch-in, which is how much its
/// `run_delay` plus the current stretch grew. A wait the load balancer
/// interrupted (dequeued on one CPU, queued on another) is counted whole,
/// where the current stretch alone would count only its last part.
#[derive(Default)]
pub struct Decoder {
    /// Per thread: run_delay + the stretch, at its last switch-in.
    queued_total: crate::TidMap<u32, u64>,
}

impl Decoder {
    pub fn decode(&mut self, bytes: &[u8]) -> Result<Event, DecodeError> {
        let (mut e, info) = decode_raw(bytes)?;
        if let EventKind::Switch { prev_tid, next_tid, prev_state, next_wait_ns, .. } = &mut e.kind {
            if *prev_tid != 0 && *prev_state & wire::STATE_DEAD_MASK != 0 {
                self.queued_total.remove(prev_tid);
            }
            if let Some(i) = info {
                let total = i.run_delay.saturating_add(i.queued_ns);
                *next_wait_ns = Some(match self.queued_total.insert(*next_tid, total) {
                    Some(before) if total >= before => total - before,
                    // First seen (or a reused TID): the current stretch.
                    _ => i.queued_ns,
                });
            }
        }
        Ok(e)
    }

    /// Threads whose last switch-in it remembers.
    #[cfg(test)]
    fn threads(&self) -> usize {
        self.queued_total.len()
    }
}

fn decode_raw(bytes: &[u8]) -> Result<(Event, Option<SchedInfo>), DecodeError> {
    if bytes.len() < std::mem::size_of::<wire::Header>() {
        return Err(DecodeError::TooShort(bytes.len()));
    }
    let word = |i: usize| u32::from_le_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
    let kind = word(0);
    let cpu = word(4);
    let ts_ns = u64::from(word(8)) | (u64::from(word(12)) << 32);
    let mut info = None;
    let kind = match kind {
        wire::KIND_SWITCH => {
            let r: wire::SwitchRecord = read(kind, bytes)?;
            EventKind::Switch {
                prev_tid: r.prev_tid,
                next_tid: r.next_tid,
                prev_state: r.prev_state,
                next_wait_ns: None,
                other: r.other,
            }
        }
        wire::KIND_SWITCH_WAIT => {
            let r: wire::SwitchWaitRecord = read(kind, bytes)?;
            if r.next_tid == 0 {
                // The kernel writes this kind only for a switch onto a target.
                return Err(DecodeError::NoNextThread);
            }
            info = Some(SchedInfo { run_delay: r.next_run_delay, queued_ns: r.next_queued_ns });
            EventKind::Switch {
                prev_tid: r.prev_tid,
                next_tid: r.next_tid,
                prev_state: r.prev_state,
                next_wait_ns: Some(r.next_queued_ns),
                other: r.other,
            }
        }
        wire::KIND_MIGRATE => {
            let r: wire::MigrateRecord = read(kind, bytes)?;
            EventKind::Migrate { tid: r.tid, from_cpu: r.orig_cpu, to_cpu: r.dest_cpu }
        }
        wire::KIND_WAKEUP => {
            let r: wire::WakeupRecord = read(kind, bytes)?;
            EventKind::Wakeup {
                tid: r.tid,
                target_cpu: r.target_cpu,
                waker_tid: r.waker_tid,
                new_task: r.flags & wire::WAKEUP_NEW != 0,
            }
        }
        wire::KIND_SIGNAL => {
            let r: wire::SignalRecord = read(kind, bytes)?;
            EventKind::Signal {
                sender_tid: r.sender_tid,
                sender_tgid: r.sender_tgid,
                target_tid: r.target_tid,
                sig: r.sig,
                code: r.code,
                result: r.result,
                group: r.group != 0,
            }
        }
        wire::KIND_NEW_TASK => {
            let r: wire::NewTaskRecord = read(kind, bytes)?;
            EventKind::NewTask {
                parent_tid: r.parent_tid,
                parent_tgid: r.parent_tgid,
                child_tid: r.child_tid,
                clone_flags: r.clone_flags,
                comm: Comm(r.comm),
            }
        }
        wire::KIND_EXIT => {
            let r: wire::ExitRecord = read(kind, bytes)?;
            EventKind::Exit { tid: r.tid, tgid: r.tgid, group_dead: r.group_dead != 0, comm: Comm(r.comm) }
        }
        wire::KIND_RENAME => {
            let r: wire::RenameRecord = read(kind, bytes)?;
            EventKind::Rename { tid: r.tid, comm: Comm(r.comm) }
        }
        wire::KIND_TGKILL => {
            let r: wire::TgkillRecord = read(kind, bytes)?;
            EventKind::Tgkill { sender_tid: r.sender_tid, tgid: r.tgid, tid: r.tid, sig: r.sig }
        }
        wire::KIND_CLONE_EXIT => {
            let r: wire::CloneExitRecord = read(kind, bytes)?;
            EventKind::CloneExit { parent_tid: r.parent_tid, ret: r.ret, clone3: r.flags & wire::CLONE_IS_CLONE3 != 0 }
        }
        wire::KIND_EXEC => {
            let r: wire::ExecRecord = read(kind, bytes)?;
            EventKind::Exec { tid: r.tid, old_tid: r.old_tid, comm: Comm(r.comm) }
        }
        wire::KIND_GO_LOCK => {
            let r: wire::GoLockRecord = read(kind, bytes)?;
            // The name is filled in by the live source, which knows the binary.
            EventKind::GoLock { tid: r.tid, caller: r.caller, func: None }
        }
        other => return Err(DecodeError::UnknownKind(other)),
    };
    Ok((Event { ts_ns, cpu, kind }, info))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes_of<T: WireRecord>(r: &T) -> Vec<u8> {
        // SAFETY: T is a plain-old-data wire record; we only read its bytes.
        unsafe { std::slice::from_raw_parts((r as *const T).cast::<u8>(), std::mem::size_of::<T>()).to_vec() }
    }

    /// A switch-out of `prev` (no target switched in).
    fn switch_out(prev: u32, prev_state: u32) -> Vec<u8> {
        bytes_of(&wire::SwitchRecord {
            hdr: wire::Header { kind: wire::KIND_SWITCH, cpu: 1, ts_ns: 0x1_0000_0002 },
            prev_tid: prev,
            next_tid: 0,
            prev_state,
            other: 4242 | wire::OTHER_KTHREAD,
        })
    }

    fn switch_bytes() -> Vec<u8> {
        switch_out(10, 0x100)
    }

    #[test]
    fn decodes_a_switch() {
        let e = decode(&switch_bytes()).expect("valid record");
        assert_eq!(e.ts_ns, 0x1_0000_0002);
        assert_eq!(e.cpu, 1);
        let other = 4242 | wire::OTHER_KTHREAD;
        assert_eq!(
            e.kind,
            EventKind::Switch { prev_tid: 10, next_tid: 0, prev_state: 0x100, next_wait_ns: None, other }
        );
        assert!(EventKind::is_involuntary(0x100), "in-kernel preemption is involuntary");
        assert!(!EventKind::is_involuntary(1));
    }

    fn switch_in(prev: u32, prev_state: u32, next: u32, run_delay: u64, queued: u64) -> Vec<u8> {
        bytes_of(&wire::SwitchWaitRecord {
            hdr: wire::Header { kind: wire::KIND_SWITCH_WAIT, cpu: 0, ts_ns: 7 },
            prev_tid: prev,
            next_tid: next,
            prev_state,
            other: 0,
            next_run_delay: run_delay,
            next_queued_ns: queued,
        })
    }

    fn wait_of(e: Event) -> Option<u64> {
        match e.kind {
            EventKind::Switch { next_wait_ns, .. } => next_wait_ns,
            other => panic!("not a switch: {other:?}"),
        }
    }

    #[test]
    fn a_wait_is_what_the_run_queue_accounting_grew_by_since_the_last_switch_in() {
        let mut d = Decoder::default();
        // First seen: the current stretch.
        assert_eq!(wait_of(d.decode(&switch_in(0, 0, 5, 1_000, 300)).expect("valid")), Some(300));
        // Next switch-in: queued 200 on one CPU (now in run_delay), then 50 on another.
        assert_eq!(wait_of(d.decode(&switch_in(0, 0, 5, 1_500, 50)).expect("valid")), Some(250));
        // Not queued at all (run_delay did not grow): 0.
        assert_eq!(wait_of(d.decode(&switch_in(9, 1, 5, 1_500, 0)).expect("valid")), Some(0));
        assert_eq!(d.threads(), 1);
        // Its final switch-out forgets it; a thread reusing the TID starts afresh.
        assert_eq!(wait_of(d.decode(&switch_out(5, 0x20)).expect("valid")), None);
        assert_eq!(d.threads(), 0);
        assert_eq!(wait_of(d.decode(&switch_in(0, 0, 5, 10, 4)).expect("valid")), Some(4));
        // Alone, a record says only the current stretch.
        assert_eq!(wait_of(decode(&switch_in(0, 0, 5, 1_500, 50)).expect("valid")), Some(50));
        assert_eq!(decode(&switch_in(3, 1, 0, 0, 0)), Err(DecodeError::NoNextThread));
    }

    #[test]
    fn decodes_a_new_thread_with_its_comm() {
        let mut comm = [0u8; 16];
        comm[..4].copy_from_slice(b"work");
        let b = bytes_of(&wire::NewTaskRecord {
            hdr: wire::Header { kind: wire::KIND_NEW_TASK, cpu: 0, ts_ns: 5 },
            parent_tid: 1,
            parent_tgid: 1,
            child_tid: 2,
            _pad: 0,
            clone_flags: wire::CLONE_THREAD,
            comm,
        });
        match decode(&b).expect("valid").kind {
            EventKind::NewTask { child_tid: 2, comm, .. } => assert_eq!(comm.to_string(), "work"),
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn rejects_truncated_header() {
        assert_eq!(decode(&[1, 0, 0]), Err(DecodeError::TooShort(3)));
        assert_eq!(decode(&[]), Err(DecodeError::TooShort(0)));
    }

    #[test]
    fn rejects_truncated_and_oversized_bodies() {
        let b = switch_bytes();
        assert_eq!(decode(&b[..20]), Err(DecodeError::SizeMismatch { kind: wire::KIND_SWITCH, expected: 32, got: 20 }));
        let mut long = b.clone();
        long.extend_from_slice(&[0; 8]);
        assert_eq!(decode(&long), Err(DecodeError::SizeMismatch { kind: wire::KIND_SWITCH, expected: 32, got: 40 }));
    }

    #[test]
    fn rejects_unknown_kind() {
        let mut b = switch_bytes();
        b[0] = 200;
        assert_eq!(decode(&b), Err(DecodeError::UnknownKind(200)));
    }

    #[test]
    fn comm_is_cut_at_nul_and_truncated_to_fit() {
        assert_eq!(Comm::new("a-very-long-thread-name").to_string(), "a-very-long-thr");
        assert_eq!(Comm::new("x").as_bytes(), b"x");
    }
}
