//! The wire contract between pintrace's kernel programs and its user side.
//!
//! Every record the kernel writes to the ring buffer starts with a [`Header`]
//! whose `kind` is one of the `KIND_*` constants below. Kinds are never
//! reused: a new record shape gets a new number. All structs are `#[repr(C)]`
//! with explicit padding, made of fixed-width integers and byte arrays only,
//! and their sizes are checked at compile time.
#![no_std]

/// Bytes of a task's `comm` (TASK_COMM_LEN).
pub const COMM_LEN: usize = 16;

/// `sched_switch`: a target thread left or took a CPU.
pub const KIND_SWITCH: u32 = 1;
/// `sched_migrate_task` with `orig_cpu != dest_cpu` for a target thread.
pub const KIND_MIGRATE: u32 = 2;
/// `sched_wakeup` / `sched_wakeup_new` of a target thread.
pub const KIND_WAKEUP: u32 = 3;
/// `signal_generate` to or from a target thread.
pub const KIND_SIGNAL: u32 = 4;
/// `task_newtask` in a target thread: a thread or a child process was created.
pub const KIND_NEW_TASK: u32 = 5;
/// `sched_process_exit` of a target thread.
pub const KIND_EXIT: u32 = 6;
/// `task_rename` of a target thread (prctl(PR_SET_NAME), pthread_setname_np).
pub const KIND_RENAME: u32 = 7;
/// `sys_enter_tgkill` from a target thread (opt-in: syscall tracepoints cost every process).
pub const KIND_TGKILL: u32 = 8;
/// `sys_exit_clone` / `sys_exit_clone3` in a target thread (opt-in, as above).
pub const KIND_CLONE_EXIT: u32 = 9;
/// `sched_process_exec` of a target thread: it now runs another program.
pub const KIND_EXEC: u32 = 10;
/// Entry uprobe on a Go target's `runtime.LockOSThread`: a goroutine pins its thread.
pub const KIND_GO_LOCK: u32 = 11;
/// `sched_switch` (BTF tracepoint) onto a target thread, with the next
/// thread's run-queue accounting (`task_struct.sched_info`) read at the switch.
pub const KIND_SWITCH_WAIT: u32 = 12;

/// `WakeupRecord::flags`: the wake-up of a newly created task (`sched_wakeup_new`).
pub const WAKEUP_NEW: u32 = 1;
/// `CloneExitRecord::flags`: the syscall was clone3.
pub const CLONE_IS_CLONE3: u32 = 1;

/// `sched_switch` prev_state bits that mean "this task is gone": EXIT_DEAD, EXIT_ZOMBIE.
pub const STATE_DEAD_MASK: u32 = 0x10 | 0x20;
/// A bit pintrace sets in `SwitchRecord::prev_state` (the kernel's states end
/// at 0x100): the switching-out task had `task_struct.throttled` set, i.e. its
/// CFS bandwidth group ran out of quota and it was parked until the next period.
pub const STATE_THROTTLED: u32 = 0x1_0000;
/// `sched_switch` prev_state bits that describe a sleep; none set means the
/// task was still runnable (an involuntary switch, matching the kernel's nivcsw).
pub const STATE_SLEEP_MASK: u32 = 0xff;
/// The `prev_state` the classic `sched:sched_switch` tracepoint reports,
/// computed from what a BTF tracepoint is handed: the kernel's
/// `__trace_sched_switch_state`. A preempted task is `TASK_REPORT_MAX`
/// (0x100); otherwise the highest bit of the reportable state (`task_state_index`),
/// with an idle kernel thread as 0x80 and a frozen or rt-lock wait as 0x2.
/// `state` is `prev->__state` (the tracepoint's last argument), `exit_state`
/// is `prev->exit_state`.
#[inline(always)]
pub fn switch_state(preempt: bool, state: u32, exit_state: u32) -> u32 {
    const TASK_REPORT: u32 = 0x7f;
    const TASK_REPORT_IDLE: u32 = 0x80;
    const TASK_REPORT_MAX: u32 = 0x100;
    const TASK_UNINTERRUPTIBLE: u32 = 0x2;
    const TASK_IDLE: u32 = TASK_UNINTERRUPTIBLE | 0x400; // | TASK_NOLOAD
    const TASK_RTLOCK_WAIT: u32 = 0x1000;
    const TASK_FROZEN: u32 = 0x8000;
    if preempt {
        return TASK_REPORT_MAX;
    }
    let mut s = (state | exit_state) & TASK_REPORT;
    if state & TASK_IDLE == TASK_IDLE {
        s = TASK_REPORT_IDLE;
    }
    if state & (TASK_RTLOCK_WAIT | TASK_FROZEN) != 0 {
        s = TASK_UNINTERRUPTIBLE;
    }
    // 1 << (fls(s) - 1), or 0: the highest set bit of an 8-bit value.
    s |= s >> 1;
    s |= s >> 2;
    s |= s >> 4;
    s ^ (s >> 1)
}

/// `clone` flag that makes the new task a thread of the caller's process.
pub const CLONE_THREAD: u64 = 0x0001_0000;
/// SIGURG: the Go runtime's asynchronous preemption signal.
pub const SIGURG: i32 = 23;

/// Index 0 of the per-CPU `LOST` array counts failed ring-buffer reserves.
pub const LOST_INDEX: u32 = 0;
/// The `TIDS` bitmap covers every possible TID (PID_MAX_LIMIT on 64-bit is 2^22).
pub const TID_BITMAP_WORDS: u32 = (1 << 22) / 64;

/// Common prefix of every record.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Header {
    pub kind: u32,
    pub cpu: u32,
    /// `bpf_ktime_get_ns()`: CLOCK_MONOTONIC.
    pub ts_ns: u64,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SwitchRecord {
    pub hdr: Header,
    /// 0 when the previous task is not a target thread.
    pub prev_tid: u32,
    /// 0 when the next task is not a target thread.
    pub next_tid: u32,
    pub prev_state: u32,
    /// The task on the other side when one side is not a target thread:
    /// see [`other_task`]. 0 when both are targets, or the other is idle.
    pub other: u32,
}

/// In `SwitchRecord::other`: the other task is a kernel thread.
pub const OTHER_KTHREAD: u32 = 1 << 31;
/// In `SwitchRecord::other`: the value is the other task's TID, not its
/// process's PID (the classic tracepoint path knows only the TID).
pub const OTHER_TID_ONLY: u32 = 1 << 30;
/// The PID (or TID) bits of `SwitchRecord::other`; PIDs are below 2^22.
pub const OTHER_ID_MASK: u32 = OTHER_TID_ONLY - 1;
/// `task_struct.flags` bit of a kernel thread.
pub const PF_KTHREAD: u32 = 0x0020_0000;

/// `SwitchRecord::other` for a task: its process's PID with the kernel
/// thread bit, or 0 for the idle task (PID 0).
#[inline(always)]
pub fn other_task(pid: u32, tgid: u32, flags: u32) -> u32 {
    if pid == 0 {
        0
    } else {
        (tgid & OTHER_ID_MASK) | if flags & PF_KTHREAD != 0 { OTHER_KTHREAD } else { 0 }
    }
}

/// A [`SwitchRecord`] onto a target thread, with what the kernel's
/// `sched_info` says of its wait for the CPU it now takes. The kernel adds
/// `next_queued_ns` to `next_run_delay` right after this tracepoint.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SwitchWaitRecord {
    pub hdr: Header,
    pub prev_tid: u32,
    pub next_tid: u32,
    pub prev_state: u32,
    /// As in [`SwitchRecord`]: the previous task, when it is not a target.
    pub other: u32,
    /// `sched_info.run_delay` of the next thread: its nanoseconds queued
    /// for a CPU in earlier waits, since it was created.
    pub next_run_delay: u64,
    /// `rq->clock - sched_info.last_queued`: how long the next thread has
    /// been queued on this CPU's run queue (0 if it was not queued).
    pub next_queued_ns: u64,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MigrateRecord {
    pub hdr: Header,
    pub tid: u32,
    pub orig_cpu: u32,
    pub dest_cpu: u32,
    pub _pad: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WakeupRecord {
    pub hdr: Header,
    pub tid: u32,
    pub target_cpu: u32,
    /// The task that did the waking (current), 0 in interrupt context.
    pub waker_tid: u32,
    pub flags: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SignalRecord {
    pub hdr: Header,
    /// The task that generated the signal (current).
    pub sender_tid: u32,
    pub sender_tgid: u32,
    pub target_tid: u32,
    pub sig: i32,
    /// si_code (SI_TKILL = -6 for tgkill).
    pub code: i32,
    /// TRACE_SIGNAL_DELIVERED = 0, IGNORED = 1, ALREADY_PENDING = 2, ...
    pub result: i32,
    /// Non-zero for a process-wide signal.
    pub group: u32,
    pub _pad: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NewTaskRecord {
    pub hdr: Header,
    pub parent_tid: u32,
    pub parent_tgid: u32,
    pub child_tid: u32,
    pub _pad: u32,
    pub clone_flags: u64,
    pub comm: [u8; COMM_LEN],
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExitRecord {
    pub hdr: Header,
    pub tid: u32,
    pub tgid: u32,
    /// Non-zero when this was the last thread of its process.
    pub group_dead: u32,
    pub _pad: u32,
    pub comm: [u8; COMM_LEN],
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RenameRecord {
    pub hdr: Header,
    pub tid: u32,
    pub _pad: u32,
    pub comm: [u8; COMM_LEN],
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TgkillRecord {
    pub hdr: Header,
    pub sender_tid: u32,
    pub tgid: u32,
    pub tid: u32,
    pub sig: i32,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CloneExitRecord {
    pub hdr: Header,
    pub parent_tid: u32,
    /// The syscall's return value: the child's TID, or a negative errno.
    pub ret: i32,
    pub flags: u32,
    pub _pad: u32,
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExecRecord {
    pub hdr: Header,
    /// The thread that exec'd, with the TID it has after the exec (the process's PID).
    pub tid: u32,
    /// Its TID before the exec (differs when a non-leader thread exec'd).
    pub old_tid: u32,
    /// The new program's name (current's comm, already set at this tracepoint).
    pub comm: [u8; COMM_LEN],
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GoLockRecord {
    pub hdr: Header,
    /// The thread whose goroutine called `runtime.LockOSThread`.
    pub tid: u32,
    pub _pad: u32,
    /// The return address at entry: a run-time code address in the caller.
    pub caller: u64,
}

macro_rules! assert_size {
    ($t:ty, $n:expr) => {
        const _: () = assert!(core::mem::size_of::<$t>() == $n);
        const _: () = assert!(core::mem::align_of::<$t>() <= 8);
    };
}
assert_size!(Header, 16);
assert_size!(SwitchRecord, 32);
assert_size!(SwitchWaitRecord, 48);
assert_size!(MigrateRecord, 32);
assert_size!(WakeupRecord, 32);
assert_size!(SignalRecord, 48);
assert_size!(NewTaskRecord, 56);
assert_size!(ExitRecord, 48);
assert_size!(RenameRecord, 40);
assert_size!(TgkillRecord, 32);
assert_size!(CloneExitRecord, 32);
assert_size!(ExecRecord, 40);
assert_size!(GoLockRecord, 32);

/// A field of a classic tracepoint's record, as the tracepoint's `format`
/// file in tracefs gives it. The kernel programs load it at `offset` (a
/// constant: the verifier forbids computed context offsets); user space
/// checks each tracepoint's format against these before attaching it, so
/// the two sides read one definition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Field {
    pub name: &'static str,
    pub offset: usize,
    pub size: usize,
}

const fn field(name: &'static str, offset: usize, size: usize) -> Field {
    Field { name, offset, size }
}

/// The classic tracepoints' fields that the kernel programs read, by
/// tracepoint (`FIELDS`: all of them, for the check against tracefs).
pub mod tp {
    use super::{field, Field};

    pub mod sched_switch {
        use super::*;
        pub const PREV_PID: Field = field("prev_pid", 24, 4);
        pub const PREV_STATE: Field = field("prev_state", 32, 8);
        pub const NEXT_PID: Field = field("next_pid", 56, 4);
        pub const FIELDS: &[Field] = &[PREV_PID, PREV_STATE, NEXT_PID];
    }

    pub mod sched_migrate_task {
        use super::*;
        pub const PID: Field = field("pid", 12, 4);
        pub const ORIG_CPU: Field = field("orig_cpu", 20, 4);
        pub const DEST_CPU: Field = field("dest_cpu", 24, 4);
        pub const FIELDS: &[Field] = &[PID, ORIG_CPU, DEST_CPU];
    }

    /// `sched_wakeup` and `sched_wakeup_new` (one template).
    pub mod sched_wakeup {
        use super::*;
        pub const PID: Field = field("pid", 24, 4);
        pub const TARGET_CPU: Field = field("target_cpu", 32, 4);
        pub const FIELDS: &[Field] = &[PID, TARGET_CPU];
    }

    pub mod signal_generate {
        use super::*;
        pub const SIG: Field = field("sig", 8, 4);
        pub const CODE: Field = field("code", 16, 4);
        pub const PID: Field = field("pid", 36, 4);
        pub const GROUP: Field = field("group", 40, 4);
        pub const RESULT: Field = field("result", 44, 4);
        pub const FIELDS: &[Field] = &[SIG, CODE, PID, GROUP, RESULT];
    }

    pub mod task_newtask {
        use super::*;
        pub const PID: Field = field("pid", 8, 4);
        pub const COMM: Field = field("comm", 12, 16);
        pub const CLONE_FLAGS: Field = field("clone_flags", 32, 8);
        pub const FIELDS: &[Field] = &[PID, COMM, CLONE_FLAGS];
    }

    pub mod sched_process_exit {
        use super::*;
        pub const COMM: Field = field("comm", 8, 16);
        pub const PID: Field = field("pid", 24, 4);
        pub const GROUP_DEAD: Field = field("group_dead", 32, 1);
        pub const FIELDS: &[Field] = &[COMM, PID, GROUP_DEAD];
    }

    pub mod task_rename {
        use super::*;
        pub const PID: Field = field("pid", 8, 4);
        pub const NEWCOMM: Field = field("newcomm", 28, 16);
        pub const FIELDS: &[Field] = &[PID, NEWCOMM];
    }

    pub mod sched_process_exec {
        use super::*;
        pub const PID: Field = field("pid", 12, 4);
        pub const OLD_PID: Field = field("old_pid", 16, 4);
        pub const FIELDS: &[Field] = &[PID, OLD_PID];
    }

    pub mod sys_enter_tgkill {
        use super::*;
        pub const TGID: Field = field("tgid", 16, 8);
        pub const PID: Field = field("pid", 24, 8);
        pub const SIG: Field = field("sig", 32, 8);
        pub const FIELDS: &[Field] = &[TGID, PID, SIG];
    }

    /// `sys_exit_clone` and `sys_exit_clone3` (one template).
    pub mod sys_exit_clone {
        use super::*;
        pub const RET: Field = field("ret", 16, 8);
        pub const FIELDS: &[Field] = &[RET];
    }
}

/// The names user space looks up in the kernel object: its maps, the
/// globals it sets before loading, and its programs besides the
/// tracepoints'. The kernel crate declares each as a static or function of
/// this name (the macros take no constants); a unit test of `pintrace`
/// checks the built object against this list.
pub mod names {
    /// The ring buffer of records.
    pub const EVENTS: &str = "EVENTS";
    /// The set of target thread IDs, a bit each.
    pub const TIDS: &str = "TIDS";
    /// Records that did not fit in the ring buffer, per CPU.
    pub const LOST: &str = "LOST";
    /// The uprobe self-test's hits.
    pub const UPROBE_HITS: &str = "UPROBE_HITS";
    pub const MAPS: &[&str] = &[EVENTS, TIDS, LOST, UPROBE_HITS];

    pub const WAKEUP_BYTES: &str = "WAKEUP_BYTES";
    pub const TASK_THROTTLED_OFFSET: &str = "TASK_THROTTLED_OFFSET";
    pub const TASK_PID_OFFSET: &str = "TASK_PID_OFFSET";
    pub const TASK_EXIT_STATE_OFFSET: &str = "TASK_EXIT_STATE_OFFSET";
    pub const TASK_TGID_OFFSET: &str = "TASK_TGID_OFFSET";
    pub const TASK_FLAGS_OFFSET: &str = "TASK_FLAGS_OFFSET";
    pub const TASK_CPU_OFFSET: &str = "TASK_CPU_OFFSET";
    pub const TASK_RUN_DELAY_OFFSET: &str = "TASK_RUN_DELAY_OFFSET";
    pub const TASK_LAST_QUEUED_OFFSET: &str = "TASK_LAST_QUEUED_OFFSET";
    pub const TASK_CFS_RQ_OFFSET: &str = "TASK_CFS_RQ_OFFSET";
    pub const CFS_RQ_RQ_OFFSET: &str = "CFS_RQ_RQ_OFFSET";
    pub const RQ_CLOCK_OFFSET: &str = "RQ_CLOCK_OFFSET";
    pub const GLOBALS: &[&str] = &[
        WAKEUP_BYTES,
        TASK_THROTTLED_OFFSET,
        TASK_PID_OFFSET,
        TASK_EXIT_STATE_OFFSET,
        TASK_TGID_OFFSET,
        TASK_FLAGS_OFFSET,
        TASK_CPU_OFFSET,
        TASK_RUN_DELAY_OFFSET,
        TASK_LAST_QUEUED_OFFSET,
        TASK_CFS_RQ_OFFSET,
        CFS_RQ_RQ_OFFSET,
        RQ_CLOCK_OFFSET,
    ];

    /// The uprobe on a Go target's `runtime.LockOSThread`.
    pub const GO_LOCK_PROGRAM: &str = "go_lock_os_thread";
    /// The uprobe that checks uprobes work, on pintrace itself.
    pub const UPROBE_SELFTEST_PROGRAM: &str = "uprobe_selftest";
}

#[cfg(test)]
mod tests {
    use super::switch_state;

    #[test]
    fn switch_state_is_what_the_classic_tracepoint_reports() {
        assert_eq!(switch_state(true, 0x1, 0), 0x100, "preempted: R+");
        assert_eq!(switch_state(false, 0, 0), 0, "runnable (preempted on return to user mode)");
        assert_eq!(switch_state(false, 0x1, 0), 0x1, "S");
        assert_eq!(switch_state(false, 0x2, 0), 0x2, "D");
        assert_eq!(switch_state(false, 0x402, 0), 0x80, "I (idle kernel thread)");
        assert_eq!(switch_state(false, 0x4, 0), 0x4, "T");
        assert_eq!(switch_state(false, 0x8, 0), 0x8, "t");
        assert_eq!(switch_state(false, 0x40, 0), 0x40, "P (parked)");
        // The final switch-out: TASK_DEAD (0x80) in __state, the exit state beside it.
        assert_eq!(switch_state(false, 0x80, 0x10), 0x10, "X (EXIT_DEAD, an auto-reaped thread)");
        assert_eq!(switch_state(false, 0x80, 0x20), 0x20, "Z (EXIT_ZOMBIE, a leader)");
        assert_eq!(switch_state(false, 0x101, 0), 0x1, "S with TASK_WAKEKILL (killable) is S");
        assert_eq!(switch_state(false, 0x1000, 0), 0x2, "rt-lock wait reads as D");
        assert_eq!(switch_state(false, 0x8001, 0), 0x2, "frozen reads as D");
    }
}
