//! pintrace's kernel programs.
//!
//! Every program starts with the cheapest possible "is this a target thread?"
//! test: tracepoint fields are read with direct loads from the record (no
//! helper call) and looked up in `TIDS`, a bitmap over all TIDs held in an
//! array map, which the JIT inlines. Only then are helpers called and a
//! ring-buffer record reserved. Tracepoint fields carry TIDs and most of these
//! tracepoints fire in another task's context (the waker, the migration
//! stopper), so the filter is on the TID in the record, never on current.
//!
//! The programs that run for every task on the host (`sched_switch`, the
//! wake-ups, `sched_migrate_task`) come twice. As BTF tracepoints (`tp_btf`),
//! the default, they are handed the kernel's own arguments (task pointers)
//! and no trace record is built for them; they read `task_struct` fields
//! with direct loads at offsets user space resolves from the kernel's BTF
//! and passes in as load-time globals (read-only data, so the verifier sees
//! constants and checks each access against the type). As classic
//! tracepoints, the fallback, they read the record the kernel built, at
//! compile-time offsets (the verifier forbids a computed context offset) that
//! user space checks against tracefs's `format` file before attaching.
//!
//! The BTF `sched_switch` also reads, for a target thread taking a CPU, the
//! kernel's run-queue accounting of it (`sched_info`) and the run queue's
//! clock, so that user space knows how long it waited without a program
//! running on every wake-up on the host.
#![cfg_attr(target_arch = "bpf", no_std)]
#![cfg_attr(target_arch = "bpf", no_main)]
#![cfg_attr(target_arch = "bpf", feature(asm_experimental_arch))]

#[cfg(not(target_arch = "bpf"))]
fn main() {}

#[cfg(target_arch = "bpf")]
mod programs {
    use aya_ebpf::{
        bindings::{BPF_F_MMAPABLE, BPF_RB_AVAIL_DATA, BPF_RB_FORCE_WAKEUP, BPF_RB_NO_WAKEUP},
        helpers::{
            bpf_get_current_comm, bpf_get_current_pid_tgid, bpf_probe_read_kernel, bpf_probe_read_user,
            generated::{bpf_get_current_task, bpf_get_smp_processor_id, bpf_ktime_get_ns},
        },
        macros::{btf_tracepoint, map, tracepoint, uprobe},
        maps::{Array, PerCpuArray, RingBuf},
        programs::{BtfTracePointContext, ProbeContext, TracePointContext},
        EbpfContext,
    };
    use pintrace_common::*;

    /// Events to user space. Its size is set at load time by user space.
    #[map]
    static EVENTS: RingBuf = RingBuf::with_byte_size(16 << 20, 0);

    /// One bit per TID of the traced processes: filled by user space from
    /// /proc at attach, set here on thread creation, cleared here at a
    /// thread's final switch-out. Mappable, so that user space changes bits
    /// with atomic operations too, never a read-modify-write of a whole word.
    #[map]
    static TIDS: Array<u64> = Array::with_max_entries(TID_BITMAP_WORDS, BPF_F_MMAPABLE);

    /// Per-CPU count of records that did not fit in the ring buffer.
    #[map]
    static LOST: PerCpuArray<u64> = PerCpuArray::with_max_entries(1, 0);

    /// Fill level (bytes) of `EVENTS` above which a submit wakes the reader.
    /// Below it submits do not wake anyone: the reader polls on a timer, so
    /// its own wake-ups do not add context switches per event.
    #[no_mangle]
    static WAKEUP_BYTES: u64 = 1 << 20;

    /// Byte offset of `throttled` (a bool) in `struct task_struct`, resolved
    /// by user space from the kernel's BTF; 0 when unknown (older kernels,
    /// no BTF), and then switch-outs are not marked.
    #[no_mangle]
    static TASK_THROTTLED_OFFSET: u64 = 0;

    /// Byte offsets in `struct task_struct` of `pid`, `exit_state` and the
    /// CPU (`thread_info.cpu`), from the kernel's BTF: set by user space
    /// before the BTF tracepoints are loaded (never used while 0).
    #[no_mangle]
    static TASK_PID_OFFSET: u64 = 0;
    #[no_mangle]
    static TASK_EXIT_STATE_OFFSET: u64 = 0;
    /// `task_struct.tgid` and `.flags`: the other side of a target's switch.
    #[no_mangle]
    static TASK_TGID_OFFSET: u64 = 0;
    #[no_mangle]
    static TASK_FLAGS_OFFSET: u64 = 0;
    #[no_mangle]
    static TASK_CPU_OFFSET: u64 = 0;

    /// Where `sched_switch` reads the next thread's run-queue accounting,
    /// from the kernel's BTF: `task_struct.sched_info.run_delay` and
    /// `.last_queued`, and this CPU's run-queue clock through
    /// `task_struct.se.cfs_rq`, `cfs_rq.rq` and `rq.clock`. All 0 when the
    /// kernel lacks them (no CONFIG_SCHED_INFO or CONFIG_FAIR_GROUP_SCHED);
    /// user space then attaches the wake-up programs instead.
    #[no_mangle]
    static TASK_RUN_DELAY_OFFSET: u64 = 0;
    #[no_mangle]
    static TASK_LAST_QUEUED_OFFSET: u64 = 0;
    #[no_mangle]
    static TASK_CFS_RQ_OFFSET: u64 = 0;
    #[no_mangle]
    static CFS_RQ_RQ_OFFSET: u64 = 0;
    #[no_mangle]
    static RQ_CLOCK_OFFSET: u64 = 0;

    #[inline(always)]
    fn global(g: &u64) -> usize {
        // SAFETY: reading a global that user space sets at load time.
        unsafe { core::ptr::read_volatile(g) as usize }
    }

    /// A field of a `task_struct` a BTF tracepoint was handed.
    #[inline(always)]
    fn task_field<T: Copy>(task: *const u8, offset: usize) -> T {
        // SAFETY: `task` is a trusted task_struct pointer (PTR_TO_BTF_ID) and
        // `offset` a read-only constant: the verifier checks the load against
        // the type, and the JIT makes a faulting load read 0.
        unsafe { core::ptr::read_volatile(task.wrapping_add(offset).cast::<T>()) }
    }

    #[inline(always)]
    fn field<T: Copy>(ctx: &TracePointContext, offset: usize) -> T {
        // SAFETY: `offset` is a constant inside the tracepoint's record, which
        // the verifier bounds-checks against the record size at attach;
        // offsets are aligned to the field size, as the verifier requires.
        unsafe { core::ptr::read_volatile(ctx.as_ptr().cast::<u8>().add(offset).cast::<T>()) }
    }

    /// The 16-byte comm at a 4-byte aligned `offset`, read as four u32 loads.
    #[inline(always)]
    fn comm_at(ctx: &TracePointContext, offset: usize) -> [u8; COMM_LEN] {
        let words: [u32; 4] =
            [field(ctx, offset), field(ctx, offset + 4), field(ctx, offset + 8), field(ctx, offset + 12)];
        // SAFETY: [u32; 4] and [u8; 16] have the same size and any bits are valid u8s.
        unsafe { core::mem::transmute(words) }
    }

    #[inline(always)]
    fn is_target(tid: u32) -> bool {
        if tid == 0 {
            return false; // the idle task
        }
        match TIDS.get(tid >> 6) {
            Some(word) => (*word >> (tid & 63)) & 1 != 0,
            None => false,
        }
    }

    #[inline(always)]
    fn set_target(tid: u32, on: bool) {
        if let Some(ptr) = TIDS.get_ptr_mut(tid >> 6) {
            let bit = 1u64 << (tid & 63);
            // Atomic read-modify-write (BPF_ATOMIC OR/AND): threads next to
            // each other in TID space are created and exit on other CPUs at
            // the same time. `core` has no fetch_or for the BPF target.
            // SAFETY: `ptr` points into the array map's value storage, which
            // lives as long as the map and is 8-byte aligned.
            unsafe {
                if on {
                    core::arch::asm!("lock *(u64 *)({0} + 0) |= {1}", in(reg) ptr, in(reg) bit);
                } else {
                    core::arch::asm!("lock *(u64 *)({0} + 0) &= {1}", in(reg) ptr, in(reg) !bit);
                }
            }
        }
    }

    #[inline(always)]
    fn current_tid() -> u32 {
        bpf_get_current_pid_tgid() as u32
    }

    #[inline(always)]
    fn header(kind: u32) -> Header {
        // SAFETY: plain helper calls without arguments.
        unsafe { Header { kind, cpu: bpf_get_smp_processor_id(), ts_ns: bpf_ktime_get_ns() } }
    }

    #[inline(always)]
    fn submit<T: 'static>(record: T) {
        match EVENTS.reserve::<T>(0) {
            Some(mut entry) => {
                entry.write(record);
                // SAFETY: reading a global that user space sets at load time.
                let threshold = unsafe { core::ptr::read_volatile(&WAKEUP_BYTES) };
                let flags = if EVENTS.query(BPF_RB_AVAIL_DATA as u64) >= threshold {
                    BPF_RB_FORCE_WAKEUP
                } else {
                    BPF_RB_NO_WAKEUP
                };
                entry.submit(flags as u64);
            }
            None => {
                if let Some(lost) = LOST.get_ptr_mut(LOST_INDEX) {
                    // SAFETY: a per-CPU slot; BPF programs do not migrate while running.
                    unsafe { *lost += 1 };
                }
            }
        }
    }

    // sched:sched_switch  prev_pid@24 prev_state@32 next_pid@56
    #[tracepoint(category = "sched", name = "sched_switch")]
    pub fn sched_switch(ctx: TracePointContext) -> u32 {
        let prev = field::<i32>(&ctx, tp::sched_switch::PREV_PID.offset) as u32;
        let next = field::<i32>(&ctx, tp::sched_switch::NEXT_PID.offset) as u32;
        let prev_is = is_target(prev);
        let next_is = is_target(next);
        if !prev_is && !next_is {
            return 0;
        }
        let prev_state = field::<i64>(&ctx, tp::sched_switch::PREV_STATE.offset) as u32;
        // The classic record has TIDs only: the other side's TID, marked so.
        // (sched_switch runs as prev: its process is current's.)
        let other = if prev_is && next_is {
            0
        } else if !prev_is {
            if prev == 0 {
                0
            } else {
                (bpf_get_current_pid_tgid() >> 32) as u32 & OTHER_ID_MASK
            }
        } else if next == 0 {
            0
        } else {
            (next & OTHER_ID_MASK) | OTHER_TID_ONLY
        };
        switched(prev, prev_is, next, next_is, prev_state, other, throttled_now)
    }

    /// Records a switch with a target on either side.
    #[inline(always)]
    fn switched(
        prev: u32,
        prev_is: bool,
        next: u32,
        next_is: bool,
        prev_state: u32,
        other: u32,
        throttled: impl Fn() -> bool,
    ) -> u32 {
        let prev_state = switch_out_state(prev, prev_is, prev_state, throttled);
        submit(SwitchRecord {
            hdr: header(KIND_SWITCH),
            prev_tid: if prev_is { prev } else { 0 },
            next_tid: if next_is { next } else { 0 },
            prev_state,
            other,
        });
        0
    }

    /// `prev_state` as recorded: a target's final switch-out also clears its
    /// TID bit, and an involuntary one is marked if CFS throttling parked it.
    #[inline(always)]
    fn switch_out_state(prev: u32, prev_is: bool, mut prev_state: u32, throttled: impl Fn() -> bool) -> u32 {
        if prev_is && prev_state & STATE_DEAD_MASK != 0 {
            // A thread's final switch-out: only now can it no longer block or migrate.
            set_target(prev, false);
        }
        if prev_is && prev_state & STATE_SLEEP_MASK == 0 && throttled() {
            prev_state |= STATE_THROTTLED;
        }
        prev_state
    }

    // tp_btf sched_switch(bool preempt, struct task_struct *prev,
    //                    struct task_struct *next, unsigned int prev_state)
    #[btf_tracepoint(function = "sched_switch")]
    pub fn sched_switch_btf(ctx: BtfTracePointContext) -> u32 {
        let pid = global(&TASK_PID_OFFSET);
        let prev_task: *const u8 = ctx.arg(1);
        let next_task: *const u8 = ctx.arg(2);
        let prev = task_field::<i32>(prev_task, pid) as u32;
        let next = task_field::<i32>(next_task, pid) as u32;
        let prev_is = is_target(prev);
        let next_is = is_target(next);
        if !prev_is && !next_is {
            return 0;
        }
        let preempt: u64 = ctx.arg(0);
        let state: u64 = ctx.arg(3);
        let exit_state = if prev_is { task_field::<u32>(prev_task, global(&TASK_EXIT_STATE_OFFSET)) } else { 0 };
        let prev_state = switch_state(preempt & 0xff != 0, state as u32, exit_state);
        // Who took the CPU from a target, or had it before one.
        let other = if prev_is && next_is {
            0
        } else {
            let task = if prev_is { next_task } else { prev_task };
            let pid = if prev_is { next } else { prev };
            let tgid = task_field::<u32>(task, global(&TASK_TGID_OFFSET));
            other_task(pid, tgid, task_field::<u32>(task, global(&TASK_FLAGS_OFFSET)))
        };
        let clock_offset = global(&RQ_CLOCK_OFFSET);
        if !next_is || clock_offset == 0 {
            return switched(prev, prev_is, next, next_is, prev_state, other, || throttled_btf(prev_task));
        }
        // The next thread's wait, as the kernel's sched_info accounts it
        // right after this tracepoint (sched_info_arrive): rq->clock, which
        // __schedule has just updated, minus when it was queued.
        let cfs_rq = task_field::<u64>(next_task, global(&TASK_CFS_RQ_OFFSET)) as *const u8;
        let rq = task_field::<u64>(cfs_rq, global(&CFS_RQ_RQ_OFFSET)) as *const u8;
        let clock = task_field::<u64>(rq, clock_offset);
        let queued = task_field::<u64>(next_task, global(&TASK_LAST_QUEUED_OFFSET));
        let next_run_delay = task_field::<u64>(next_task, global(&TASK_RUN_DELAY_OFFSET));
        let prev_state = switch_out_state(prev, prev_is, prev_state, || throttled_btf(prev_task));
        submit(SwitchWaitRecord {
            hdr: header(KIND_SWITCH_WAIT),
            prev_tid: if prev_is { prev } else { 0 },
            next_tid: next,
            prev_state,
            other,
            next_run_delay,
            next_queued_ns: if queued != 0 && clock > queued { clock - queued } else { 0 },
        });
        0
    }

    #[inline(always)]
    fn throttled_btf(prev_task: *const u8) -> bool {
        let offset = global(&TASK_THROTTLED_OFFSET);
        offset != 0 && task_field::<u8>(prev_task, offset) != 0
    }

    /// Whether `current` (the task switching out, at `sched_switch`) has
    /// `task_struct.throttled` set. Read only for a target's involuntary
    /// switch-outs: a throttled task is parked while still runnable.
    #[inline(always)]
    fn throttled_now() -> bool {
        // SAFETY: reading a global that user space sets at load time.
        let offset = unsafe { core::ptr::read_volatile(&TASK_THROTTLED_OFFSET) };
        if offset == 0 {
            return false;
        }
        // SAFETY: bpf_get_current_task has no preconditions; the read goes
        // through bpf_probe_read_kernel, which fails safely on a bad address.
        unsafe {
            let task = bpf_get_current_task() as *const u8;
            bpf_probe_read_kernel(task.wrapping_add(offset as usize)).unwrap_or(0u8) != 0
        }
    }

    // sched:sched_migrate_task  pid@12 orig_cpu@20 dest_cpu@24
    #[tracepoint(category = "sched", name = "sched_migrate_task")]
    pub fn sched_migrate_task(ctx: TracePointContext) -> u32 {
        let tid = field::<i32>(&ctx, tp::sched_migrate_task::PID.offset) as u32;
        if !is_target(tid) {
            return 0;
        }
        let orig_cpu = field::<i32>(&ctx, tp::sched_migrate_task::ORIG_CPU.offset) as u32;
        let dest_cpu = field::<i32>(&ctx, tp::sched_migrate_task::DEST_CPU.offset) as u32;
        if orig_cpu == dest_cpu {
            return 0;
        }
        submit(MigrateRecord { hdr: header(KIND_MIGRATE), tid, orig_cpu, dest_cpu, _pad: 0 });
        0
    }

    // tp_btf sched_migrate_task(struct task_struct *p, int dest_cpu); the
    // classic record's orig_cpu is task_cpu(p).
    #[btf_tracepoint(function = "sched_migrate_task")]
    pub fn sched_migrate_task_btf(ctx: BtfTracePointContext) -> u32 {
        let task: *const u8 = ctx.arg(0);
        let tid = task_field::<i32>(task, global(&TASK_PID_OFFSET)) as u32;
        if !is_target(tid) {
            return 0;
        }
        let orig_cpu = task_field::<u32>(task, global(&TASK_CPU_OFFSET));
        let dest_cpu = ctx.arg::<u64>(1) as u32;
        if orig_cpu == dest_cpu {
            return 0;
        }
        submit(MigrateRecord { hdr: header(KIND_MIGRATE), tid, orig_cpu, dest_cpu, _pad: 0 });
        0
    }

    // tp_btf sched_wakeup / sched_wakeup_new(struct task_struct *p); the
    // classic record's target_cpu is task_cpu(p).
    #[inline(always)]
    fn wakeup_btf(ctx: &BtfTracePointContext, flags: u32) -> u32 {
        let task: *const u8 = ctx.arg(0);
        let tid = task_field::<i32>(task, global(&TASK_PID_OFFSET)) as u32;
        if !is_target(tid) {
            return 0;
        }
        submit(WakeupRecord {
            hdr: header(KIND_WAKEUP),
            tid,
            target_cpu: task_field::<u32>(task, global(&TASK_CPU_OFFSET)),
            waker_tid: current_tid(),
            flags,
        });
        0
    }

    #[btf_tracepoint(function = "sched_wakeup")]
    pub fn sched_wakeup_btf(ctx: BtfTracePointContext) -> u32 {
        wakeup_btf(&ctx, 0)
    }

    #[btf_tracepoint(function = "sched_wakeup_new")]
    pub fn sched_wakeup_new_btf(ctx: BtfTracePointContext) -> u32 {
        wakeup_btf(&ctx, WAKEUP_NEW)
    }

    // sched:sched_wakeup and sched_wakeup_new  pid@24 target_cpu@32
    #[inline(always)]
    fn wakeup(ctx: &TracePointContext, flags: u32) -> u32 {
        let tid = field::<i32>(ctx, tp::sched_wakeup::PID.offset) as u32;
        if !is_target(tid) {
            return 0;
        }
        submit(WakeupRecord {
            hdr: header(KIND_WAKEUP),
            tid,
            target_cpu: field::<i32>(ctx, tp::sched_wakeup::TARGET_CPU.offset) as u32,
            waker_tid: current_tid(),
            flags,
        });
        0
    }

    #[tracepoint(category = "sched", name = "sched_wakeup")]
    pub fn sched_wakeup(ctx: TracePointContext) -> u32 {
        wakeup(&ctx, 0)
    }

    #[tracepoint(category = "sched", name = "sched_wakeup_new")]
    pub fn sched_wakeup_new(ctx: TracePointContext) -> u32 {
        wakeup(&ctx, WAKEUP_NEW)
    }

    // signal:signal_generate  sig@8 code@16 pid@36 group@40 result@44
    #[tracepoint(category = "signal", name = "signal_generate")]
    pub fn signal_generate(ctx: TracePointContext) -> u32 {
        let target_tid = field::<i32>(&ctx, tp::signal_generate::PID.offset) as u32;
        let pid_tgid = if is_target(target_tid) {
            bpf_get_current_pid_tgid()
        } else {
            let pid_tgid = bpf_get_current_pid_tgid();
            if !is_target(pid_tgid as u32) {
                return 0;
            }
            pid_tgid
        };
        submit(SignalRecord {
            hdr: header(KIND_SIGNAL),
            sender_tid: pid_tgid as u32,
            sender_tgid: (pid_tgid >> 32) as u32,
            target_tid,
            sig: field::<i32>(&ctx, tp::signal_generate::SIG.offset),
            code: field::<i32>(&ctx, tp::signal_generate::CODE.offset),
            result: field::<i32>(&ctx, tp::signal_generate::RESULT.offset),
            group: field::<i32>(&ctx, tp::signal_generate::GROUP.offset) as u32,
            _pad: 0,
        });
        0
    }

    // task:task_newtask  pid@8 comm@12 clone_flags@32; runs in the parent.
    #[tracepoint(category = "task", name = "task_newtask")]
    pub fn task_newtask(ctx: TracePointContext) -> u32 {
        let pid_tgid = bpf_get_current_pid_tgid();
        let parent_tid = pid_tgid as u32;
        if !is_target(parent_tid) {
            return 0;
        }
        let child_tid = field::<i32>(&ctx, tp::task_newtask::PID.offset) as u32;
        let clone_flags = field::<u64>(&ctx, tp::task_newtask::CLONE_FLAGS.offset);
        if clone_flags & CLONE_THREAD != 0 {
            set_target(child_tid, true);
        }
        submit(NewTaskRecord {
            hdr: header(KIND_NEW_TASK),
            parent_tid,
            parent_tgid: (pid_tgid >> 32) as u32,
            child_tid,
            _pad: 0,
            clone_flags,
            comm: comm_at(&ctx, tp::task_newtask::COMM.offset),
        });
        0
    }

    // sched:sched_process_exit  comm@8 pid@24 group_dead@32; runs in the exiting task.
    #[tracepoint(category = "sched", name = "sched_process_exit")]
    pub fn sched_process_exit(ctx: TracePointContext) -> u32 {
        let tid = field::<i32>(&ctx, tp::sched_process_exit::PID.offset) as u32;
        if !is_target(tid) {
            return 0;
        }
        submit(ExitRecord {
            hdr: header(KIND_EXIT),
            tid,
            tgid: (bpf_get_current_pid_tgid() >> 32) as u32,
            group_dead: field::<u8>(&ctx, tp::sched_process_exit::GROUP_DEAD.offset) as u32,
            _pad: 0,
            comm: comm_at(&ctx, tp::sched_process_exit::COMM.offset),
        });
        0
    }

    // task:task_rename  pid@8 newcomm@28
    #[tracepoint(category = "task", name = "task_rename")]
    pub fn task_rename(ctx: TracePointContext) -> u32 {
        let tid = field::<i32>(&ctx, tp::task_rename::PID.offset) as u32;
        if !is_target(tid) {
            return 0;
        }
        submit(RenameRecord {
            hdr: header(KIND_RENAME),
            tid,
            _pad: 0,
            comm: comm_at(&ctx, tp::task_rename::NEWCOMM.offset),
        });
        0
    }

    // sched:sched_process_exec  pid@12 old_pid@16; runs in the exec'ing task,
    // whose comm is already the new program's.
    #[tracepoint(category = "sched", name = "sched_process_exec")]
    pub fn sched_process_exec(ctx: TracePointContext) -> u32 {
        let old_tid = field::<i32>(&ctx, tp::sched_process_exec::OLD_PID.offset) as u32;
        let tid = field::<i32>(&ctx, tp::sched_process_exec::PID.offset) as u32;
        // A thread that is not the leader exec'd: the kernel swapped its TID
        // with the exiting leader's, and the leader's final switch-out
        // (which clears its bit) can come before the swap (clearing `tid`)
        // or after it (clearing `old_tid`): one of the two bits is left.
        if !is_target(old_tid) && !is_target(tid) {
            return 0;
        }
        if tid != old_tid {
            set_target(tid, true);
            set_target(old_tid, false);
        }
        submit(ExecRecord { hdr: header(KIND_EXEC), tid, old_tid, comm: bpf_get_current_comm().unwrap_or_default() });
        0
    }

    // syscalls:sys_enter_tgkill  tgid@16 pid@24 sig@32 (opt-in)
    #[tracepoint(category = "syscalls", name = "sys_enter_tgkill")]
    pub fn sys_enter_tgkill(ctx: TracePointContext) -> u32 {
        let tid = field::<u64>(&ctx, tp::sys_enter_tgkill::PID.offset) as u32;
        let sender_tid = current_tid();
        if !is_target(tid) && !is_target(sender_tid) {
            return 0;
        }
        submit(TgkillRecord {
            hdr: header(KIND_TGKILL),
            sender_tid,
            tgid: field::<u64>(&ctx, tp::sys_enter_tgkill::TGID.offset) as u32,
            tid,
            sig: field::<u64>(&ctx, tp::sys_enter_tgkill::SIG.offset) as i32,
        });
        0
    }

    // syscalls:sys_exit_clone / sys_exit_clone3  ret@16 (opt-in)
    #[inline(always)]
    fn clone_exit(ctx: &TracePointContext, flags: u32) -> u32 {
        let parent_tid = current_tid();
        if !is_target(parent_tid) {
            return 0;
        }
        let ret = field::<i64>(ctx, tp::sys_exit_clone::RET.offset);
        if ret == 0 {
            return 0; // the child's return
        }
        submit(CloneExitRecord { hdr: header(KIND_CLONE_EXIT), parent_tid, ret: ret as i32, flags, _pad: 0 });
        0
    }

    #[tracepoint(category = "syscalls", name = "sys_exit_clone")]
    pub fn sys_exit_clone(ctx: TracePointContext) -> u32 {
        clone_exit(&ctx, 0)
    }

    #[tracepoint(category = "syscalls", name = "sys_exit_clone3")]
    pub fn sys_exit_clone3(ctx: TracePointContext) -> u32 {
        clone_exit(&ctx, CLONE_IS_CLONE3)
    }

    /// Entry of a Go target's `runtime.LockOSThread` (attached to the target's
    /// executable and process only). Never a uretprobe: returning through a
    /// trampoline breaks Go's stack moves. The return address is the word at
    /// the stack pointer on x86-64 and the link register on arm64.
    #[uprobe]
    pub fn go_lock_os_thread(ctx: ProbeContext) -> u32 {
        let tid = current_tid();
        if !is_target(tid) {
            return 0;
        }
        submit(GoLockRecord { hdr: header(KIND_GO_LOCK), tid, _pad: 0, caller: caller_pc(&ctx) });
        0
    }

    #[cfg(bpf_target_arch = "x86_64")]
    #[inline(always)]
    fn caller_pc(ctx: &ProbeContext) -> u64 {
        // SAFETY: `regs` is the probe's register context; the stack word is
        // read with bpf_probe_read_user, which fails safely.
        unsafe {
            let sp = (*ctx.regs).rsp;
            bpf_probe_read_user(sp as *const u64).unwrap_or(0)
        }
    }

    #[cfg(bpf_target_arch = "aarch64")]
    #[inline(always)]
    fn caller_pc(ctx: &ProbeContext) -> u64 {
        // SAFETY: `regs` is the probe's register context.
        unsafe { (*ctx.regs).regs[30] }
    }

    #[cfg(not(any(bpf_target_arch = "x86_64", bpf_target_arch = "aarch64")))]
    #[inline(always)]
    fn caller_pc(_ctx: &ProbeContext) -> u64 {
        0
    }

    /// Calls seen by the uprobe self-test of `pintrace check`.
    #[map]
    static UPROBE_HITS: Array<u64> = Array::with_max_entries(1, 0);

    /// `pintrace check` attaches this to a function of its own and calls it,
    /// to show that uprobes load, attach and fire on this kernel.
    #[uprobe]
    pub fn uprobe_selftest(_ctx: ProbeContext) -> u32 {
        if let Some(hits) = UPROBE_HITS.get_ptr_mut(0) {
            // SAFETY: points into the array map's storage; only `check`'s one thread calls the probed function.
            unsafe { *hits += 1 };
        }
        0
    }

    #[panic_handler]
    fn panic(_info: &core::panic::PanicInfo) -> ! {
        loop {}
    }

    #[link_section = "license"]
    #[no_mangle]
    static LICENSE: [u8; 13] = *b"Dual MIT/GPL\0";
}
