//! Events as bytes in a record file: varints, zigzag time deltas, TIDs as
//! distances from the chunk's TID base (version 3), task names.
use bytes::{Buf, BufMut, BytesMut};

use crate::{
    event::{Comm, Event, EventKind, FnName},
    goruntime::{GoRole, GoState},
};

fn put_varint(buf: &mut BytesMut, mut v: u64) {
    while v >= 0x80 {
        buf.put_u8((v as u8) | 0x80);
        v >>= 7;
    }
    buf.put_u8(v as u8);
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

fn put_zigzag(buf: &mut BytesMut, v: i64) {
    put_varint(buf, zigzag(v));
}

fn get_varint(buf: &mut &[u8]) -> Result<u64, String> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        if !buf.has_remaining() {
            return Err("event cut short".into());
        }
        let b = buf.get_u8();
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err("varint longer than 64 bits".into())
}

fn get_zigzag(buf: &mut &[u8]) -> Result<i64, String> {
    get_varint(buf).map(unzigzag)
}

/// How a chunk writes TIDs and TGIDs: as they are (versions 1 and 2), or
/// (version 3) as 0 for none and otherwise 1 + the zigzag distance from a
/// base, the traced process's PID. A process's threads have TIDs near its
/// PID, so most take one byte instead of three or four.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Tids {
    Absolute,
    From(u32),
}

fn put_tid(buf: &mut BytesMut, tids: Tids, tid: u32) {
    match tids {
        Tids::Absolute => put_varint(buf, u64::from(tid)),
        Tids::From(_) if tid == 0 => put_varint(buf, 0),
        Tids::From(base) => put_varint(buf, zigzag(i64::from(tid) - i64::from(base)) + 1),
    }
}

fn get_tid(buf: &mut &[u8], tids: Tids) -> Result<u32, String> {
    match tids {
        Tids::Absolute => get_u32(buf),
        Tids::From(base) => match get_varint(buf)? {
            0 => Ok(0),
            v => i64::from(base)
                .checked_add(unzigzag(v - 1))
                .and_then(|t| u32::try_from(t).ok())
                .filter(|&t| t != 0)
                .ok_or_else(|| "TID out of range".to_string()),
        },
    }
}

fn get_u32(buf: &mut &[u8]) -> Result<u32, String> {
    u32::try_from(get_varint(buf)?).map_err(|_| "value out of range".to_string())
}

fn get_i32(buf: &mut &[u8]) -> Result<i32, String> {
    i32::try_from(get_zigzag(buf)?).map_err(|_| "value out of range".to_string())
}

/// Function names longer than this are cut (Go's longest runtime names are ~80).
const MAX_NAME: usize = 512;

fn put_name(buf: &mut BytesMut, name: Option<FnName>) {
    let s = name.map_or("", |n| n.as_str());
    let mut n = s.len().min(MAX_NAME);
    while !s.is_char_boundary(n) {
        n -= 1;
    }
    put_varint(buf, n as u64);
    buf.put_slice(&s.as_bytes()[..n]);
}

/// The function names one read has interned, at most `limit` of them:
/// interned names live as long as the process, so a hostile file must not
/// be able to make the reader intern millions.
pub(super) struct Names {
    seen: ustr::UstrSet,
    limit: usize,
}

impl Names {
    pub(super) fn new(limit: usize) -> Names {
        Names { seen: Default::default(), limit }
    }

    fn intern(&mut self, name: &str) -> Result<FnName, String> {
        if self.seen.len() < self.limit {
            let u = ustr::ustr(name);
            self.seen.insert(u);
            return Ok(u);
        }
        // At the limit, only names this read already holds (looked up without interning).
        match ustr::existing_ustr(name) {
            Some(u) if self.seen.contains(&u) => Ok(u),
            _ => Err(format!("more than {} distinct function names", crate::fmt::count(self.limit as u64))),
        }
    }
}

fn get_name(buf: &mut &[u8], names: &mut Names) -> Result<Option<FnName>, String> {
    let n = get_varint(buf)?;
    if n > MAX_NAME as u64 || (buf.remaining() as u64) < n {
        return Err("bad function name".into());
    }
    let n = n as usize;
    let name = std::str::from_utf8(&buf[..n]).map_err(|_| "function name is not UTF-8".to_string())?;
    let name = if n > 0 { Some(names.intern(name)?) } else { None };
    buf.advance(n);
    Ok(name)
}

fn state_code(state: GoState) -> u32 {
    match state {
        GoState::Unknown => 0,
        GoState::Running => 1,
        GoState::Syscall => 2,
        GoState::Cgo => 3,
        GoState::Idle => 4,
        GoState::Spinning => 5,
        GoState::LockedIdle => 6,
        GoState::LockedRunnable => 7,
    }
}

fn state_of(code: u32) -> Result<GoState, String> {
    Ok(match code {
        0 => GoState::Unknown,
        1 => GoState::Running,
        2 => GoState::Syscall,
        3 => GoState::Cgo,
        4 => GoState::Idle,
        5 => GoState::Spinning,
        6 => GoState::LockedIdle,
        7 => GoState::LockedRunnable,
        other => return Err(format!("unknown Go thread state {other}")),
    })
}

fn role_code(role: GoRole) -> u32 {
    match role {
        GoRole::Main => 1,
        GoRole::Sysmon => 2,
        GoRole::Template => 3,
        GoRole::Signal => 4,
        GoRole::Pinned => 5,
        GoRole::Worker => 6,
    }
}

fn role_of(code: u32) -> Result<GoRole, String> {
    Ok(match code {
        1 => GoRole::Main,
        2 => GoRole::Sysmon,
        3 => GoRole::Template,
        4 => GoRole::Signal,
        5 => GoRole::Pinned,
        6 => GoRole::Worker,
        other => return Err(format!("unknown Go thread role {other}")),
    })
}

fn put_comm(buf: &mut BytesMut, comm: &Comm) {
    let b = comm.as_bytes();
    buf.put_u8(b.len() as u8);
    buf.put_slice(b);
}

fn get_comm(buf: &mut &[u8]) -> Result<Comm, String> {
    if !buf.has_remaining() {
        return Err("event cut short".into());
    }
    let n = usize::from(buf.get_u8());
    if n >= pintrace_common::COMM_LEN || buf.remaining() < n {
        return Err("bad task name".into());
    }
    let mut c = [0u8; pintrace_common::COMM_LEN];
    c[..n].copy_from_slice(&buf[..n]);
    buf.advance(n);
    Ok(Comm(c))
}

// Event codes in the file. The kernel kinds keep their wire numbers.
const CODE_THREAD_SEEN: u8 = 100;
const CODE_LOST: u8 = 101;
const CODE_THROTTLE: u8 = 102;
const CODE_GOMAXPROCS: u8 = 103;
const CODE_GO_THREAD: u8 = 104;
const CODE_CPU_LIMIT: u8 = 105;
const CODE_GO_SCHED: u8 = 106;
const CODE_GO_P: u8 = 107;
const CODE_GO_STATE: u8 = 108;
const CODE_OTHER_PROCESS: u8 = 109;

/// Which switch fields a version writes: a switch's wait (version 4) and
/// the other side's task (version 5).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct SwitchFields {
    pub waits: bool,
    pub other: bool,
}

impl SwitchFields {
    pub fn of(version: u16) -> SwitchFields {
        SwitchFields { waits: version >= 4, other: version >= 5 }
    }
}

/// Encodes one event. `waits` (version 4): a switch onto a target thread
/// carries its wait, 0 for none and otherwise 1 + the nanoseconds.
pub(super) fn encode(buf: &mut BytesMut, prev_ts: u64, tids: Tids, fields: SwitchFields, e: &Event) {
    use pintrace_common as w;
    let code = match e.kind {
        EventKind::Switch { .. } => w::KIND_SWITCH as u8,
        EventKind::Migrate { .. } => w::KIND_MIGRATE as u8,
        EventKind::Wakeup { .. } => w::KIND_WAKEUP as u8,
        EventKind::Signal { .. } => w::KIND_SIGNAL as u8,
        EventKind::NewTask { .. } => w::KIND_NEW_TASK as u8,
        EventKind::Exit { .. } => w::KIND_EXIT as u8,
        EventKind::Rename { .. } => w::KIND_RENAME as u8,
        EventKind::Tgkill { .. } => w::KIND_TGKILL as u8,
        EventKind::CloneExit { .. } => w::KIND_CLONE_EXIT as u8,
        EventKind::Exec { .. } => w::KIND_EXEC as u8,
        EventKind::GoLock { .. } => w::KIND_GO_LOCK as u8,
        EventKind::GoThread { .. } => CODE_GO_THREAD,
        EventKind::ThreadSeen { .. } => CODE_THREAD_SEEN,
        EventKind::Lost { .. } => CODE_LOST,
        EventKind::Throttle { .. } => CODE_THROTTLE,
        EventKind::GoMaxProcs { .. } => CODE_GOMAXPROCS,
        EventKind::CpuLimit { .. } => CODE_CPU_LIMIT,
        EventKind::GoSched { .. } => CODE_GO_SCHED,
        EventKind::GoP { .. } => CODE_GO_P,
        EventKind::GoState { .. } => CODE_GO_STATE,
        EventKind::OtherProcess { .. } => CODE_OTHER_PROCESS,
    };
    buf.put_u8(code);
    put_zigzag(buf, e.ts_ns.wrapping_sub(prev_ts) as i64);
    put_varint(buf, u64::from(e.cpu.wrapping_add(1)));
    let v = |buf: &mut BytesMut, x: u32| put_varint(buf, u64::from(x));
    let t = |buf: &mut BytesMut, tid: u32| put_tid(buf, tids, tid);
    let z = |buf: &mut BytesMut, x: i32| put_zigzag(buf, i64::from(x));
    match e.kind {
        EventKind::Switch { prev_tid, next_tid, prev_state, next_wait_ns, other } => {
            t(buf, prev_tid);
            t(buf, next_tid);
            // Only a switch with a side that is not a target has another
            // task; when it is the idle task (0) it costs nothing: the low
            // bit of the state says whether one follows.
            let with_other = fields.other && (prev_tid == 0 || next_tid == 0);
            if with_other {
                put_varint(buf, (u64::from(prev_state) << 1) | u64::from(other != 0));
            } else {
                v(buf, prev_state);
            }
            if fields.waits && next_tid != 0 {
                put_varint(buf, next_wait_ns.map_or(0, |w| w.saturating_add(1)));
            }
            if with_other && other != 0 {
                v(buf, other);
            }
        }
        EventKind::Migrate { tid, from_cpu, to_cpu } => {
            t(buf, tid);
            v(buf, from_cpu);
            v(buf, to_cpu);
        }
        EventKind::Wakeup { tid, target_cpu, waker_tid, new_task } => {
            t(buf, tid);
            v(buf, target_cpu);
            t(buf, waker_tid);
            v(buf, u32::from(new_task));
        }
        EventKind::Signal { sender_tid, sender_tgid, target_tid, sig, code, result, group } => {
            t(buf, sender_tid);
            t(buf, sender_tgid);
            t(buf, target_tid);
            z(buf, sig);
            z(buf, code);
            z(buf, result);
            v(buf, u32::from(group));
        }
        EventKind::NewTask { parent_tid, parent_tgid, child_tid, clone_flags, comm } => {
            t(buf, parent_tid);
            t(buf, parent_tgid);
            t(buf, child_tid);
            put_varint(buf, clone_flags);
            put_comm(buf, &comm);
        }
        EventKind::Exit { tid, tgid, group_dead, comm } => {
            t(buf, tid);
            t(buf, tgid);
            v(buf, u32::from(group_dead));
            put_comm(buf, &comm);
        }
        EventKind::Rename { tid, comm } => {
            t(buf, tid);
            put_comm(buf, &comm);
        }
        EventKind::Tgkill { sender_tid, tgid, tid, sig } => {
            t(buf, sender_tid);
            t(buf, tgid);
            t(buf, tid);
            z(buf, sig);
        }
        EventKind::CloneExit { parent_tid, ret, clone3 } => {
            t(buf, parent_tid);
            z(buf, ret);
            v(buf, u32::from(clone3));
        }
        EventKind::Exec { tid, old_tid, comm } => {
            t(buf, tid);
            t(buf, old_tid);
            put_comm(buf, &comm);
        }
        EventKind::ThreadSeen { tid, tgid, comm } => {
            t(buf, tid);
            t(buf, tgid);
            put_comm(buf, &comm);
        }
        EventKind::GoLock { tid, caller, func } => {
            t(buf, tid);
            put_varint(buf, caller);
            put_name(buf, func);
        }
        EventKind::GoThread { tid, role, locked_ext, locked_int, locked_g } => {
            t(buf, tid);
            v(buf, role_code(role));
            v(buf, locked_ext);
            v(buf, locked_int);
            put_name(buf, locked_g);
        }
        EventKind::Lost { total } => put_varint(buf, total),
        EventKind::GoMaxProcs { value } => v(buf, value),
        EventKind::GoSched { idle_ps, spinning, idle_threads, runqueue, goroutines, nprocs } => {
            for x in [idle_ps, spinning, idle_threads, runqueue, goroutines, nprocs] {
                v(buf, x);
            }
        }
        EventKind::GoP { p, status, runq, runnext } => {
            v(buf, p);
            v(buf, status);
            v(buf, runq);
            v(buf, u32::from(runnext));
        }
        EventKind::OtherProcess { pid, kthread, comm } => {
            v(buf, pid);
            v(buf, u32::from(kthread));
            put_comm(buf, &comm);
        }
        EventKind::GoState { tid, state, goid, func } => {
            t(buf, tid);
            v(buf, state_code(state));
            put_varint(buf, goid);
            put_name(buf, func);
        }
        EventKind::CpuLimit { version, quota_us, period_us, cpus_allowed, group, limited_by } => {
            v(buf, u32::from(version));
            v(buf, quota_us);
            v(buf, period_us);
            v(buf, cpus_allowed);
            put_name(buf, Some(group));
            put_name(buf, limited_by);
        }
        EventKind::Throttle { nr_periods, nr_throttled, throttled_ns } => {
            put_varint(buf, nr_periods);
            put_varint(buf, nr_throttled);
            put_varint(buf, throttled_ns);
        }
    }
}

/// The events of an events chunk, after the chunk's sequence fields:
/// u32 count, u64 base_ts, in version 3 u32 tid_base, count events, and
/// nothing after them.
pub(super) fn decode_chunk(mut p: &[u8], version: u16, names: &mut Names) -> Result<Vec<Event>, String> {
    let head = if version >= 3 { 16 } else { 12 };
    if p.remaining() < head {
        return Err("events chunk shorter than its header".into());
    }
    let count = p.get_u32_le();
    let mut prev = p.get_u64_le();
    let tids = if version >= 3 { Tids::From(p.get_u32_le()) } else { Tids::Absolute };
    let fields = SwitchFields::of(version);
    // Every event takes at least three bytes (code, time, CPU): a count
    // field cannot make the reader allocate more than the chunk holds.
    let mut events = Vec::with_capacity((count as usize).min(p.len() / 3));
    for i in 0..count {
        let e = decode_one(&mut p, prev, tids, fields, names)
            .map_err(|r| format!("event {} of {}: {r}", i + 1, crate::fmt::count(count.into())))?;
        prev = e.ts_ns;
        events.push(e);
    }
    if p.has_remaining() {
        return Err(format!("{} bytes after the last event", p.remaining()));
    }
    Ok(events)
}

fn decode_one(
    buf: &mut &[u8],
    prev_ts: u64,
    tids: Tids,
    fields: SwitchFields,
    names: &mut Names,
) -> Result<Event, String> {
    use pintrace_common as w;
    if !buf.has_remaining() {
        return Err("event cut short".into());
    }
    let code = buf.get_u8();
    let ts_ns = prev_ts.wrapping_add(get_zigzag(buf)? as u64);
    let cpu = get_u32(buf)?.wrapping_sub(1);
    let kind = match u32::from(code) {
        w::KIND_SWITCH => {
            let (prev_tid, next_tid) = (get_tid(buf, tids)?, get_tid(buf, tids)?);
            let with_other = fields.other && (prev_tid == 0 || next_tid == 0);
            let (prev_state, has_other) = if with_other {
                let v = get_varint(buf)?;
                (u32::try_from(v >> 1).map_err(|_| "value out of range".to_string())?, v & 1 != 0)
            } else {
                (get_u32(buf)?, false)
            };
            let next_wait_ns = if fields.waits && next_tid != 0 { get_varint(buf)?.checked_sub(1) } else { None };
            let other = if has_other { get_u32(buf)?.max(1) } else { 0 };
            EventKind::Switch { prev_tid, next_tid, prev_state, next_wait_ns, other }
        }
        w::KIND_MIGRATE => {
            EventKind::Migrate { tid: get_tid(buf, tids)?, from_cpu: get_u32(buf)?, to_cpu: get_u32(buf)? }
        }
        w::KIND_WAKEUP => EventKind::Wakeup {
            tid: get_tid(buf, tids)?,
            target_cpu: get_u32(buf)?,
            waker_tid: get_tid(buf, tids)?,
            new_task: get_u32(buf)? != 0,
        },
        w::KIND_SIGNAL => EventKind::Signal {
            sender_tid: get_tid(buf, tids)?,
            sender_tgid: get_tid(buf, tids)?,
            target_tid: get_tid(buf, tids)?,
            sig: get_i32(buf)?,
            code: get_i32(buf)?,
            result: get_i32(buf)?,
            group: get_u32(buf)? != 0,
        },
        w::KIND_NEW_TASK => EventKind::NewTask {
            parent_tid: get_tid(buf, tids)?,
            parent_tgid: get_tid(buf, tids)?,
            child_tid: get_tid(buf, tids)?,
            clone_flags: get_varint(buf)?,
            comm: get_comm(buf)?,
        },
        w::KIND_EXIT => EventKind::Exit {
            tid: get_tid(buf, tids)?,
            tgid: get_tid(buf, tids)?,
            group_dead: get_u32(buf)? != 0,
            comm: get_comm(buf)?,
        },
        w::KIND_RENAME => EventKind::Rename { tid: get_tid(buf, tids)?, comm: get_comm(buf)? },
        w::KIND_TGKILL => EventKind::Tgkill {
            sender_tid: get_tid(buf, tids)?,
            tgid: get_tid(buf, tids)?,
            tid: get_tid(buf, tids)?,
            sig: get_i32(buf)?,
        },
        w::KIND_CLONE_EXIT => {
            EventKind::CloneExit { parent_tid: get_tid(buf, tids)?, ret: get_i32(buf)?, clone3: get_u32(buf)? != 0 }
        }
        w::KIND_EXEC => {
            EventKind::Exec { tid: get_tid(buf, tids)?, old_tid: get_tid(buf, tids)?, comm: get_comm(buf)? }
        }
        w::KIND_GO_LOCK => {
            EventKind::GoLock { tid: get_tid(buf, tids)?, caller: get_varint(buf)?, func: get_name(buf, names)? }
        }
        c if c == u32::from(CODE_GO_THREAD) => EventKind::GoThread {
            tid: get_tid(buf, tids)?,
            role: role_of(get_u32(buf)?)?,
            locked_ext: get_u32(buf)?,
            locked_int: get_u32(buf)?,
            locked_g: get_name(buf, names)?,
        },
        c if c == u32::from(CODE_THREAD_SEEN) => {
            EventKind::ThreadSeen { tid: get_tid(buf, tids)?, tgid: get_tid(buf, tids)?, comm: get_comm(buf)? }
        }
        c if c == u32::from(CODE_LOST) => EventKind::Lost { total: get_varint(buf)? },
        c if c == u32::from(CODE_GOMAXPROCS) => EventKind::GoMaxProcs { value: get_u32(buf)? },
        c if c == u32::from(CODE_GO_SCHED) => EventKind::GoSched {
            idle_ps: get_u32(buf)?,
            spinning: get_u32(buf)?,
            idle_threads: get_u32(buf)?,
            runqueue: get_u32(buf)?,
            goroutines: get_u32(buf)?,
            nprocs: get_u32(buf)?,
        },
        c if c == u32::from(CODE_GO_P) => {
            EventKind::GoP { p: get_u32(buf)?, status: get_u32(buf)?, runq: get_u32(buf)?, runnext: get_u32(buf)? != 0 }
        }
        c if c == u32::from(CODE_OTHER_PROCESS) => {
            EventKind::OtherProcess { pid: get_u32(buf)?, kthread: get_u32(buf)? != 0, comm: get_comm(buf)? }
        }
        c if c == u32::from(CODE_GO_STATE) => EventKind::GoState {
            tid: get_tid(buf, tids)?,
            state: state_of(get_u32(buf)?)?,
            goid: get_varint(buf)?,
            func: get_name(buf, names)?,
        },
        c if c == u32::from(CODE_CPU_LIMIT) => EventKind::CpuLimit {
            version: u8::try_from(get_u32(buf)?).map_err(|_| "bad cgroup version".to_string())?,
            quota_us: get_u32(buf)?,
            period_us: get_u32(buf)?,
            cpus_allowed: get_u32(buf)?,
            group: get_name(buf, names)?.unwrap_or_else(|| ustr::ustr("/")),
            limited_by: get_name(buf, names)?,
        },
        c if c == u32::from(CODE_THROTTLE) => EventKind::Throttle {
            nr_periods: get_varint(buf)?,
            nr_throttled: get_varint(buf)?,
            throttled_ns: get_varint(buf)?,
        },
        other => return Err(format!("unknown event code {other}")),
    };
    Ok(Event { ts_ns, cpu, kind })
}
