//! The Go runtime's threads, read from outside: `runtime.allm` heads a list
//! of every M (an OS thread the runtime made), linked by `m.alllink`. For
//! each M: its thread ID (`procid`), how often it is locked by
//! `runtime.LockOSThread` (`lockedExt`) and by the runtime itself
//! (`lockedInt`), the function its thread was started with (`mstartfn`)
//! and, when a goroutine is locked to it (`lockedg`), that goroutine's
//! start function (`g.startpc`). From these, each thread's role.
//!
//! The runtime links a new M in fully built (`m.alllink` set before the
//! atomic store to `allm`) and unlinks an exiting one before its thread
//! ends, but the reader does not stop the process: an M can be freed while
//! the list is walked. So the walk checks every pointer, stops on a cycle
//! or more than `MAX_MS` Ms, and is retried; it never loops or panics.
//!
//! Cost: one pread per M of the span of its fields (~600 bytes), one per
//! locked M for its goroutine's `startpc`, and one per distinct `mstartfn`.
//! Measured with 1,008 Ms, 1,000 of them pinned (tests/tests/goruntime.rs,
//! `threads_cost`, Go 1.26 PIE): median 0.9 ms per `threads()` in a release
//! build (2.2 ms in a debug build), i.e. 0.09 % of a core at one call a
//! second, against a refresh budget of 0.5 %.
use std::{fs::File, io, os::unix::fs::FileExt as _};

use super::{dwarf::RuntimeLayout, GoError};

/// At most this many Ms: more means the walk is following garbage.
pub const MAX_MS: usize = 100_000;
/// Walks tried before giving up on a list that keeps changing.
const ATTEMPTS: usize = 3;
/// Thread IDs are positive `pid_t`s.
const MAX_TID: u64 = i32::MAX as u64;

/// Memory of the process read (`/proc/PID/mem`, or a fake in tests).
pub trait Memory {
    /// Reads exactly `buf.len()` bytes at `addr`.
    fn read(&self, addr: u64, buf: &mut [u8]) -> io::Result<()>;
}

impl Memory for File {
    fn read(&self, addr: u64, buf: &mut [u8]) -> io::Result<()> {
        self.read_exact_at(buf, addr)
    }
}

fn read_u64(mem: &impl Memory, addr: u64) -> io::Result<u64> {
    let mut b = [0u8; 8];
    mem.read(addr, &mut b)?;
    Ok(u64::from_le_bytes(b))
}

/// What a Go thread is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GoRole {
    /// The process's first thread (TID = PID). Whatever else it does: a
    /// `signal.Notify` called from `main()` usually locks its goroutine to
    /// this thread (then `locked_g_start` is "runtime.ensureSigM.func1").
    Main,
    /// The runtime's monitor: preempts long-running goroutines, retakes Ps.
    Sysmon,
    /// The template thread, from which the runtime starts threads when the
    /// current one is locked or in an unknown state.
    Template,
    /// Locked by `signal.Notify`'s goroutine (`runtime.ensureSigM`), when
    /// that is not the main thread: expected, not a problem.
    Signal,
    /// Locked by `runtime.LockOSThread` in the program.
    Pinned,
    /// Everything else: runs goroutines as the scheduler sees fit.
    Worker,
}

impl GoRole {
    pub fn label(self) -> &'static str {
        match self {
            GoRole::Main => "main",
            GoRole::Sysmon => "sysmon",
            GoRole::Template => "template",
            GoRole::Signal => "signal",
            GoRole::Pinned => "pinned",
            GoRole::Worker => "worker",
        }
    }
}

/// The role of a thread from what its M says; the first rule that holds
/// wins: main (TID = PID), sysmon, template, signal, pinned, worker.
pub fn role(pid: u32, tid: u32, locked_ext: u32, start_fn: Option<&str>, locked_g_start: Option<&str>) -> GoRole {
    if tid == pid {
        GoRole::Main
    } else if start_fn == Some("runtime.sysmon") {
        GoRole::Sysmon
    } else if start_fn == Some("runtime.templateThread") {
        GoRole::Template
    } else if locked_g_start.is_some_and(|s| s.starts_with("runtime.ensureSigM")) {
        GoRole::Signal
    } else if locked_ext > 0 {
        GoRole::Pinned
    } else {
        GoRole::Worker
    }
}

/// What a Go thread is doing, from its M: the goroutine on it and that
/// goroutine's status, and the M's flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GoState {
    /// Runs a goroutine (`m.curg` is `_Grunning`).
    Running,
    /// Its goroutine is in a system call (`_Gsyscall`): the thread is held
    /// and the runtime may hand its P to another thread.
    Syscall,
    /// In a cgo call (`m.incgo`).
    Cgo,
    /// Runs no goroutine and looks for none: parked, or a runtime thread
    /// without a P (sysmon, the template thread).
    Idle,
    /// Out of work and looking for some (`m.spinning`).
    Spinning,
    /// Locked to a goroutine (`m.lockedg`) that is blocked (waiting on a
    /// channel, a timer...): the thread waits for that goroutine alone.
    LockedIdle,
    /// Locked to a goroutine that is runnable but has no P: the thread is
    /// parked until a P is handed to it (work is waiting, not the thread).
    LockedRunnable,
    /// Not known (a goroutine in another status as it was read, or not read).
    #[default]
    Unknown,
}

impl GoState {
    pub fn label(self) -> &'static str {
        match self {
            GoState::Running => "running",
            GoState::Syscall => "syscall",
            GoState::Cgo => "cgo",
            GoState::Idle => "idle",
            GoState::Spinning => "spinning",
            GoState::LockedIdle => "locked_idle",
            GoState::LockedRunnable => "locked_runnable",
            GoState::Unknown => "unknown",
        }
    }

    /// The state of an M from its fields, the status (`g.atomicstatus`)
    /// of the goroutine it runs and of the one locked to it, if any.
    pub fn of(m: &RawM, g_status: Option<u32>, locked_status: Option<u32>) -> GoState {
        const G_RUNNABLE: u32 = 1;
        const G_RUNNING: u32 = 2;
        const G_SYSCALL: u32 = 3;
        if m.incgo {
            GoState::Cgo
        } else if m.curg != 0 {
            match g_status.map(|s| s & !0x1000) {
                Some(G_RUNNING) => GoState::Running,
                Some(G_SYSCALL) => GoState::Syscall,
                _ => GoState::Unknown,
            }
        } else if m.spinning {
            GoState::Spinning
        } else if m.lockedg != 0 {
            match locked_status.map(|s| s & !0x1000) {
                Some(G_RUNNABLE) => GoState::LockedRunnable,
                _ => GoState::LockedIdle,
            }
        } else {
            GoState::Idle
        }
    }
}

/// What an M does and the goroutine on it, as `state_at` reads it.
pub type MState = (GoState, Option<Goroutine>);

/// The goroutine a thread runs.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Goroutine {
    /// `g.goid`, as panics, pprof and runtime/trace number it.
    pub id: u64,
    /// Its start function (`g.startpc`); a `go f(x)` starts a wrapper.
    pub function: Option<String>,
}

/// One Go thread (M) as read.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct GoThread {
    pub tid: u32,
    /// `runtime.LockOSThread` calls not yet undone (> 0: pinned).
    pub locked_ext: u32,
    /// The runtime's own locks (e.g. during package init, or cgo callbacks).
    pub locked_int: u32,
    /// The function the thread was started with: "runtime.sysmon",
    /// "runtime.templateThread", "runtime.mspinning"; None for most.
    pub start_fn: Option<String>,
    /// The start function of the goroutine locked to this thread, e.g.
    /// "main.pinnedWorker", "runtime.ensureSigM.func1". A `go f(x)` with
    /// arguments starts a compiler-made wrapper ("main.main.func1" in Go
    /// 1.19, "main.main.gowrap1" since 1.22), not `f`.
    pub locked_g_start: Option<String>,
    pub role: GoRole,
    pub state: GoState,
    /// The goroutine on it (running, or in a syscall or cgo call).
    pub goroutine: Option<Goroutine>,
    /// Where its M is in the process's memory, to read its state again.
    #[serde(skip)]
    pub m_addr: u64,
}

/// The fields of one M.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RawM {
    pub procid: u64,
    pub locked_ext: u32,
    pub locked_int: u32,
    pub mstartfn: u64,
    pub alllink: u64,
    pub lockedg: u64,
    pub curg: u64,
    pub p: u64,
    pub spinning: bool,
    pub incgo: bool,
}

/// Decodes an M's fields from `span`: the bytes at `layout.m_span()` of
/// the M (little-endian, as on amd64 and arm64). None if `span` is short.
pub fn parse_m(layout: &RuntimeLayout, span: &[u8]) -> Option<RawM> {
    let base = layout.m_span().start;
    let at = |offset: u64, len: usize| -> Option<&[u8]> {
        let i = usize::try_from(offset.checked_sub(base)?).ok()?;
        span.get(i..i.checked_add(len)?)
    };
    let u64_at = |o| at(o, 8).and_then(|b| b.try_into().ok()).map(u64::from_le_bytes);
    let u32_at = |o| at(o, 4).and_then(|b| b.try_into().ok()).map(u32::from_le_bytes);
    let bool_at = |o| at(o, 1).map(|b| b[0] != 0);
    Some(RawM {
        procid: u64_at(layout.m_procid)?,
        locked_ext: u32_at(layout.m_locked_ext)?,
        locked_int: u32_at(layout.m_locked_int)?,
        mstartfn: u64_at(layout.m_mstartfn)?,
        alllink: u64_at(layout.m_alllink)?,
        lockedg: u64_at(layout.m_lockedg)?,
        curg: u64_at(layout.m_curg)?,
        p: u64_at(layout.m_p)?,
        spinning: bool_at(layout.m_spinning)?,
        incgo: bool_at(layout.m_incgo)?,
    })
}

/// A goroutine's fields that pintrace reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RawG {
    pub goid: u64,
    pub status: u32,
    pub startpc: u64,
}

/// Reads the goroutine at `g` (one read of `layout.g_span()`).
pub fn read_g(mem: &impl Memory, layout: &RuntimeLayout, g: u64) -> Option<RawG> {
    let span = layout.g_span();
    let mut buf = [0u8; 512];
    let len = usize::try_from(span.end.checked_sub(span.start)?).ok().filter(|&l| l <= buf.len())?;
    mem.read(g.checked_add(span.start)?, &mut buf[..len]).ok()?;
    let at = |o: u64, n: usize| -> Option<&[u8]> {
        let i = usize::try_from(o.checked_sub(span.start)?).ok()?;
        buf.get(i..i.checked_add(n)?)
    };
    Some(RawG {
        goid: u64::from_le_bytes(at(layout.g_goid, 8)?.try_into().ok()?),
        status: u32::from_le_bytes(at(layout.g_atomicstatus, 4)?.try_into().ok()?),
        startpc: u64::from_le_bytes(at(layout.g_startpc, 8)?.try_into().ok()?),
    })
}

/// Why a walk of the list failed.
#[derive(Debug, thiserror::Error)]
pub enum WalkError {
    #[error("the list loops back to the M at {0:#x}")]
    Cycle(u64),
    #[error("more than {0} Ms: not an M list")]
    TooMany(usize),
    #[error("the M pointer {0:#x} is not 8-byte aligned")]
    Misaligned(u64),
    #[error("the M pointer {0:#x} is out of the address space")]
    OutOfRange(u64),
    #[error("the M at {addr:#x} has thread ID {procid}, which no thread has")]
    BadProcid { addr: u64, procid: u64 },
    #[error("reading the M at {addr:#x}: {source}")]
    Read { addr: u64, source: io::Error },
}

/// The Ms of the list that starts at `head` (the value of `runtime.allm`).
pub fn walk(mem: &impl Memory, layout: &RuntimeLayout, head: u64) -> Result<Vec<(u64, RawM)>, WalkError> {
    walk_at_most(mem, layout, head, MAX_MS)
}

fn walk_at_most(
    mem: &impl Memory,
    layout: &RuntimeLayout,
    head: u64,
    cap: usize,
) -> Result<Vec<(u64, RawM)>, WalkError> {
    let span = layout.m_span();
    let mut buf = vec![0u8; (span.end - span.start) as usize];
    let mut seen = std::collections::HashSet::new();
    let mut ms = Vec::new();
    let mut addr = head;
    while addr != 0 {
        if ms.len() >= cap {
            return Err(WalkError::TooMany(cap));
        }
        if !addr.is_multiple_of(8) {
            return Err(WalkError::Misaligned(addr));
        }
        if !seen.insert(addr) {
            return Err(WalkError::Cycle(addr));
        }
        let at = addr.checked_add(span.start).ok_or(WalkError::OutOfRange(addr))?;
        mem.read(at, &mut buf).map_err(|source| WalkError::Read { addr, source })?;
        // The buffer holds the span, so every field parses.
        let m = parse_m(layout, &buf).ok_or(WalkError::OutOfRange(addr))?;
        if m.procid > MAX_TID {
            return Err(WalkError::BadProcid { addr, procid: m.procid });
        }
        ms.push((addr, m));
        addr = m.alllink;
    }
    Ok(ms)
}

/// What the M does, and the goroutine on it; `locked` is the goroutine
/// locked to it, if read.
fn state_of<'n>(
    mem: &impl Memory,
    layout: &RuntimeLayout,
    m: &RawM,
    locked: Option<RawG>,
    name: &impl Fn(u64) -> Option<&'n str>,
) -> (GoState, Option<Goroutine>) {
    let curg = if m.curg == 0 { None } else { read_g(mem, layout, m.curg) };
    let state = GoState::of(m, curg.map(|g| g.status), locked.map(|g| g.status));
    let goroutine = curg
        .filter(|_| matches!(state, GoState::Running | GoState::Syscall | GoState::Cgo))
        .map(|g| Goroutine { id: g.goid, function: name(g.startpc).map(str::to_string) });
    (state, goroutine)
}

/// The state of the M at `m_addr` now (one read of the M, one of its
/// goroutine): for the pinned threads, sampled more often than the list.
pub fn state_at<'n>(
    mem: &impl Memory,
    layout: &RuntimeLayout,
    m_addr: u64,
    name: impl Fn(u64) -> Option<&'n str>,
) -> Option<MState> {
    let span = layout.m_span();
    let mut buf = vec![0u8; usize::try_from(span.end - span.start).ok()?];
    mem.read(m_addr.checked_add(span.start)?, &mut buf).ok()?;
    let m = parse_m(layout, &buf)?;
    let locked = if m.lockedg == 0 { None } else { read_g(mem, layout, m.lockedg) };
    Some(state_of(mem, layout, &m, locked, &name))
}

/// Every started Go thread of process `pid`: walks the list (again, up to
/// 3 times, if it changed under the reader), skips Ms whose thread has not
/// started (procid 0), names start functions with `name` (a run-time code
/// address → function) and assigns roles. `host_tid` maps `m.procid` to
/// the thread ID pintrace sees: the runtime stores the ID from its own PID
/// namespace (a container's); an M it cannot map (its thread is gone) is
/// left out.
pub fn threads<'n>(
    mem: &impl Memory,
    layout: &RuntimeLayout,
    allm_addr: u64,
    pid: u32,
    name: impl Fn(u64) -> Option<&'n str>,
    host_tid: impl Fn(u32) -> Option<u32>,
) -> Result<Vec<GoThread>, GoError> {
    let mut attempt = 1;
    let ms = loop {
        let head = read_u64(mem, allm_addr).map_err(|source| GoError::Memory {
            pid,
            symbol: "runtime.allm",
            addr: allm_addr,
            source,
        })?;
        match walk(mem, layout, head) {
            Ok(ms) => break ms,
            Err(_) if attempt < ATTEMPTS => attempt += 1,
            Err(problem) => return Err(GoError::MList { pid, problem }),
        }
    };
    // mstartfn points at a funcval whose first word is the code; the same
    // few funcvals (nil, mspinning, sysmon, templateThread) recur, but a
    // list the target made up can have a new one in every M: a map.
    let mut start_fns: std::collections::HashMap<u64, Option<&str>> = std::collections::HashMap::new();
    let mut out = Vec::with_capacity(ms.len());
    for (m_addr, m) in ms.into_iter().filter(|(_, m)| m.procid != 0) {
        let start_fn = *start_fns.entry(m.mstartfn).or_insert_with(|| {
            if m.mstartfn == 0 {
                None
            } else {
                read_u64(mem, m.mstartfn).ok().and_then(&name)
            }
        });
        let locked = if m.lockedg == 0 { None } else { read_g(mem, layout, m.lockedg) };
        let locked_g_start = locked.and_then(|g| name(g.startpc));
        let (state, goroutine) = state_of(mem, layout, &m, locked, &name);
        let Some(tid) = host_tid(m.procid as u32) else { continue }; // ≤ MAX_TID, checked by the walk
        out.push(GoThread {
            tid,
            locked_ext: m.locked_ext,
            locked_int: m.locked_int,
            role: role(pid, tid, m.locked_ext, start_fn, locked_g_start),
            start_fn: start_fn.map(str::to_string),
            locked_g_start: locked_g_start.map(str::to_string),
            state,
            goroutine,
            m_addr,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::{cell::Cell, collections::BTreeMap};

    use super::*;

    /// Go 1.19's offsets.
    const LAYOUT: RuntimeLayout = crate::goruntime::fuzzing::GO119;

    /// Memory made of regions; reads must lie within one.
    #[derive(Default)]
    struct Fake {
        regions: BTreeMap<u64, Vec<u8>>,
        /// Reads at this address fail this many more times.
        flaky: Cell<(u64, u32)>,
    }

    impl Memory for Fake {
        fn read(&self, addr: u64, buf: &mut [u8]) -> io::Result<()> {
            let (bad, left) = self.flaky.get();
            if addr == bad && left > 0 {
                self.flaky.set((bad, left - 1));
                return Err(io::Error::from_raw_os_error(libc::EIO));
            }
            let (start, bytes) = self.regions.range(..=addr).next_back().ok_or(io::ErrorKind::UnexpectedEof)?;
            let i = (addr - start) as usize;
            buf.copy_from_slice(bytes.get(i..i + buf.len()).ok_or(io::ErrorKind::UnexpectedEof)?);
            Ok(())
        }
    }

    impl Fake {
        fn word(&mut self, addr: u64, value: u64) {
            self.regions.insert(addr, value.to_le_bytes().to_vec());
        }

        fn m(&mut self, addr: u64, m: RawM) {
            let mut b = vec![0u8; LAYOUT.m_size as usize];
            let mut put = |o: u64, v: &[u8]| b[o as usize..o as usize + v.len()].copy_from_slice(v);
            put(LAYOUT.m_procid, &m.procid.to_le_bytes());
            put(LAYOUT.m_locked_ext, &m.locked_ext.to_le_bytes());
            put(LAYOUT.m_locked_int, &m.locked_int.to_le_bytes());
            put(LAYOUT.m_mstartfn, &m.mstartfn.to_le_bytes());
            put(LAYOUT.m_alllink, &m.alllink.to_le_bytes());
            put(LAYOUT.m_lockedg, &m.lockedg.to_le_bytes());
            put(LAYOUT.m_curg, &m.curg.to_le_bytes());
            put(LAYOUT.m_p, &m.p.to_le_bytes());
            put(LAYOUT.m_spinning, &[u8::from(m.spinning)]);
            put(LAYOUT.m_incgo, &[u8::from(m.incgo)]);
            self.regions.insert(addr, b);
        }

        fn g(&mut self, addr: u64, startpc: u64) {
            self.g_with(addr, startpc, 0, 4);
        }

        fn g_with(&mut self, addr: u64, startpc: u64, goid: u64, status: u32) {
            let mut b = vec![0u8; LAYOUT.g_size as usize];
            b[LAYOUT.g_startpc as usize..][..8].copy_from_slice(&startpc.to_le_bytes());
            b[LAYOUT.g_goid as usize..][..8].copy_from_slice(&goid.to_le_bytes());
            b[LAYOUT.g_atomicstatus as usize..][..4].copy_from_slice(&status.to_le_bytes());
            self.regions.insert(addr, b);
        }
    }

    const ALLM: u64 = 0x52f268;
    const PID: u32 = 100;

    fn names(pc: u64) -> Option<&'static str> {
        match pc {
            0x43f000..0x43f419 => Some("runtime.sysmon"),
            0x438080..0x438174 => Some("runtime.templateThread"),
            0x4382a0..0x4382ac => Some("runtime.mspinning"),
            0x460000..0x460100 => Some("runtime.ensureSigM.func1"),
            0x490000..0x490100 => Some("main.pinnedWorker"),
            _ => None,
        }
    }

    /// A process like the test program's: main, sysmon, template, signal,
    /// two pinned, a spinning worker, and an M whose thread has not started.
    fn process() -> Fake {
        let mut f = Fake::default();
        let m = |procid, mstartfn, lockedg, locked_ext, alllink| RawM {
            procid,
            locked_ext,
            locked_int: 0,
            mstartfn,
            alllink,
            lockedg,
            ..RawM::default()
        };
        // funcvals: their first word is the code.
        f.word(0x4e0000, 0x43f000); // sysmon
        f.word(0x4e0008, 0x438080); // templateThread
        f.word(0x4e0010, 0x4382a0); // mspinning
        f.g(0xc000100000, 0x460000); // ensureSigM.func1's goroutine
        f.g(0xc000100400, 0x490000); // pinnedWorker
        f.g(0xc000100800, 0x490000); // pinnedWorker
        f.word(ALLM, 0xc000200000);
        f.m(0xc000200000, m(0, 0, 0, 0, 0xc000201000)); // allocated, thread not started
        f.m(0xc000201000, m(107, 0x4e0010, 0, 0, 0xc000202000));
        f.m(0xc000202000, m(106, 0, 0xc000100800, 1, 0xc000203000));
        f.m(0xc000203000, m(105, 0, 0xc000100400, 2, 0xc000204000));
        f.m(0xc000204000, m(104, 0, 0xc000100000, 1, 0xc000205000));
        f.m(0xc000205000, m(103, 0x4e0008, 0, 0, 0xc000206000));
        f.m(0xc000206000, m(101, 0x4e0000, 0, 0, 0x52fe00));
        f.m(0x52fe00, m(u64::from(PID), 0, 0, 0, 0)); // m0
        f
    }

    #[test]
    fn reads_threads_names_and_roles() {
        let f = process();
        let t = threads(&f, &LAYOUT, ALLM, PID, names, Some).expect("threads");
        let got: Vec<_> = t.iter().map(|t| (t.tid, t.role, t.locked_ext)).collect();
        assert_eq!(
            got,
            [
                (107, GoRole::Worker, 0),
                (106, GoRole::Pinned, 1),
                (105, GoRole::Pinned, 2),
                (104, GoRole::Signal, 1),
                (103, GoRole::Template, 0),
                (101, GoRole::Sysmon, 0),
                (100, GoRole::Main, 0),
            ]
        );
        assert_eq!(t[0].start_fn.as_deref(), Some("runtime.mspinning"));
        assert_eq!(t[1].locked_g_start.as_deref(), Some("main.pinnedWorker"));
        assert_eq!(t[3].locked_g_start.as_deref(), Some("runtime.ensureSigM.func1"));
        assert_eq!(t[5].start_fn.as_deref(), Some("runtime.sysmon"));
        assert_eq!((t[6].start_fn.as_deref(), t[6].locked_g_start.as_deref()), (None, None));
    }

    /// In a PID namespace the runtime stores namespace TIDs: mapped, the
    /// main thread (namespace TID 100 here, the process's own PID there)
    /// is Main by its host TID, and an M whose thread is gone is left out.
    #[test]
    fn namespace_tids_are_mapped_to_host_tids() {
        let f = process();
        let host = crate::target::NsTids::from_pairs([(100, 9100), (101, 9101), (103, 9103), (105, 9105)]);
        let t = threads(&f, &LAYOUT, ALLM, 9100, names, |t| host.host(t)).expect("threads");
        let got: Vec<_> = t.iter().map(|t| (t.tid, t.role)).collect();
        assert_eq!(
            got,
            [(9105, GoRole::Pinned), (9103, GoRole::Template), (9101, GoRole::Sysmon), (9100, GoRole::Main)]
        );
        // Unmapped, the namespace TIDs would be taken for host ones: no Main.
        let unmapped = threads(&f, &LAYOUT, ALLM, 9100, names, Some).expect("threads");
        assert!(unmapped.iter().all(|t| t.role != GoRole::Main), "{unmapped:?}");
    }

    /// Each thread's state from its M and its goroutine: the goroutine's id
    /// and function for one running Go code, in a syscall or in cgo.
    #[test]
    fn states_and_goroutines() {
        let mut f = Fake::default();
        f.g_with(0xc000300000, 0x490000, 41, 2); // running
        f.g_with(0xc000300400, 0x490000, 42, 3 | 0x1000); // in a syscall, being scanned
        f.g_with(0xc000300800, 0x460000, 43, 3); // in a cgo call
        f.g_with(0xc000300c00, 0x490000, 44, 4); // waiting
        f.g_with(0xc000301000, 0x490000, 45, 1); // runnable, without a P
        f.word(ALLM, 0xc000200000);
        let ms = [
            RawM { procid: 101, curg: 0xc000300000, p: 0x1, ..RawM::default() },
            RawM { procid: 102, curg: 0xc000300400, ..RawM::default() },
            RawM { procid: 103, curg: 0xc000300800, incgo: true, ..RawM::default() },
            RawM { procid: 104, spinning: true, p: 0x2, ..RawM::default() },
            RawM { procid: 105, lockedg: 0xc000300c00, locked_ext: 1, ..RawM::default() },
            RawM { procid: 106, ..RawM::default() },
            RawM { procid: 107, curg: 0xc000300c00, ..RawM::default() },
            RawM { procid: 109, lockedg: 0xc000301000, locked_ext: 1, ..RawM::default() },
            RawM { procid: 108, curg: 0xdead0000, ..RawM::default() },
        ];
        for (i, m) in ms.iter().enumerate() {
            let next = if i + 1 < ms.len() { 0xc000200000 + (i as u64 + 1) * 0x1000 } else { 0 };
            f.m(0xc000200000 + i as u64 * 0x1000, RawM { alllink: next, ..*m });
        }
        let t = threads(&f, &LAYOUT, ALLM, PID, names, Some).expect("threads");
        let got: Vec<_> = t.iter().map(|t| (t.tid, t.state, t.goroutine.as_ref().map(|g| g.id))).collect();
        assert_eq!(
            got,
            [
                (101, GoState::Running, Some(41)),
                (102, GoState::Syscall, Some(42)),
                (103, GoState::Cgo, Some(43)),
                (104, GoState::Spinning, None),
                (105, GoState::LockedIdle, None),
                (106, GoState::Idle, None),
                (107, GoState::Unknown, None),
                (109, GoState::LockedRunnable, None),
                (108, GoState::Unknown, None),
            ]
        );
        // The pinned ones are read again alone, by the M's address.
        let at = t.iter().find(|t| t.tid == 109).map(|t| t.m_addr).expect("109");
        assert_eq!(state_at(&f, &LAYOUT, at, names).map(|s| s.0), Some(GoState::LockedRunnable));
        let at = t.iter().find(|t| t.tid == 101).map(|t| t.m_addr).expect("101");
        let (state, g) = state_at(&f, &LAYOUT, at, names).expect("101");
        assert_eq!((state, g.map(|g| g.id)), (GoState::Running, Some(41)));
        assert_eq!(state_at(&f, &LAYOUT, 0xdead0000, names), None);
        assert_eq!(t[0].goroutine.as_ref().and_then(|g| g.function.as_deref()), Some("main.pinnedWorker"));
        assert_eq!(GoState::LockedIdle.label(), "locked_idle");
    }

    #[test]
    fn parses_an_m_from_its_span() {
        let mut f = Fake::default();
        let want = RawM {
            procid: 4242,
            locked_ext: 3,
            locked_int: 1,
            mstartfn: 0x10,
            alllink: 0x20,
            lockedg: 0x30,
            curg: 0x40,
            p: 0x50,
            spinning: true,
            incgo: false,
        };
        f.m(0x1000, want);
        let span = LAYOUT.m_span();
        let mut buf = vec![0u8; (span.end - span.start) as usize];
        f.read(0x1000 + span.start, &mut buf).expect("read");
        assert_eq!(parse_m(&LAYOUT, &buf), Some(want));
        assert_eq!(parse_m(&LAYOUT, &buf[..buf.len() - 1]), None, "short");
        assert_eq!(parse_m(&LAYOUT, &[]), None);
    }

    #[test]
    fn roles_in_order_of_precedence() {
        assert_eq!(role(1, 1, 1, Some("runtime.sysmon"), Some("main.w")), GoRole::Main);
        assert_eq!(role(1, 2, 0, Some("runtime.sysmon"), None), GoRole::Sysmon);
        assert_eq!(role(1, 2, 0, Some("runtime.templateThread"), None), GoRole::Template);
        assert_eq!(role(1, 2, 1, None, Some("runtime.ensureSigM.func1")), GoRole::Signal);
        assert_eq!(role(1, 2, 1, Some("runtime.mspinning"), Some("main.w")), GoRole::Pinned);
        assert_eq!(role(1, 2, 1, None, None), GoRole::Pinned);
        assert_eq!(role(1, 2, 0, Some("runtime.mspinning"), Some("main.w")), GoRole::Worker, "lockedInt only");
    }

    #[test]
    fn roles_serialize_as_their_labels() {
        for r in [GoRole::Main, GoRole::Sysmon, GoRole::Template, GoRole::Signal, GoRole::Pinned, GoRole::Worker] {
            assert_eq!(serde_json::to_string(&r).expect("json"), format!("\"{}\"", r.label()));
            assert_eq!(serde_json::from_str::<GoRole>(&format!("\"{}\"", r.label())).expect("json"), r);
        }
    }

    #[test]
    fn an_empty_list_has_no_threads() {
        let mut f = Fake::default();
        f.word(ALLM, 0);
        assert_eq!(threads(&f, &LAYOUT, ALLM, PID, names, Some).expect("threads"), []);
    }

    #[test]
    fn cycles_and_garbage_end_the_walk() {
        let mut f = process();
        // The last M points back to the third.
        f.m(0x52fe00, RawM { procid: 100, alllink: 0xc000202000, ..RawM::default() });
        assert!(matches!(walk(&f, &LAYOUT, 0xc000200000), Err(WalkError::Cycle(0xc000202000))));
        let err = threads(&f, &LAYOUT, ALLM, PID, names, Some).expect_err("a cycle");
        assert!(matches!(err, GoError::MList { pid: PID, problem: WalkError::Cycle(_) }), "{err:?}");
        assert_eq!(
            err.to_string(),
            "walking the Go threads (runtime.allm) of process 100: the list loops back to the M at 0xc000202000"
        );
        // A self-loop.
        f.m(0x52fe00, RawM { procid: 100, alllink: 0x52fe00, ..RawM::default() });
        assert!(matches!(walk(&f, &LAYOUT, 0x52fe00), Err(WalkError::Cycle(0x52fe00))));
        // A misaligned pointer, an unmapped one, a thread ID no thread has.
        f.m(0x52fe00, RawM { procid: 100, alllink: 0xc000200003, ..RawM::default() });
        assert!(matches!(walk(&f, &LAYOUT, 0x52fe00), Err(WalkError::Misaligned(0xc000200003))));
        f.m(0x52fe00, RawM { procid: 100, alllink: 0xdead0000, ..RawM::default() });
        assert!(matches!(walk(&f, &LAYOUT, 0x52fe00), Err(WalkError::Read { addr: 0xdead0000, .. })));
        f.m(0x52fe00, RawM { procid: u64::MAX, ..RawM::default() });
        assert!(matches!(walk(&f, &LAYOUT, 0x52fe00), Err(WalkError::BadProcid { .. })));
        // Pointers near the top of the address space do not overflow.
        assert!(walk(&f, &LAYOUT, u64::MAX - 7).is_err());
    }

    /// An aligned pointer at the top of the address space is said as such
    /// (it was called "not 8-byte aligned").
    #[test]
    fn a_pointer_out_of_the_address_space_is_said() {
        let mut f = process();
        f.m(0x52fe00, RawM { procid: 100, alllink: u64::MAX - 7, ..RawM::default() });
        let err = walk(&f, &LAYOUT, 0x52fe00).expect_err("out of range");
        assert!(matches!(err, WalkError::OutOfRange(a) if a == u64::MAX - 7), "{err:?}");
        assert!(err.to_string().contains("out of the address space"), "{err}");
    }

    #[test]
    fn the_walk_is_capped() {
        let f = process();
        assert!(matches!(walk_at_most(&f, &LAYOUT, 0xc000200000, 3), Err(WalkError::TooMany(3))));
        assert_eq!(walk_at_most(&f, &LAYOUT, 0xc000200000, 8).expect("8 Ms").len(), 8);
    }

    #[test]
    fn a_torn_read_is_retried() {
        let f = process();
        // The fourth M cannot be read twice (it was being freed), then can.
        f.flaky.set((0xc000203000 + LAYOUT.m_span().start, 2));
        assert_eq!(threads(&f, &LAYOUT, ALLM, PID, names, Some).expect("third walk").len(), 7);
        // Three failures: give up, saying why.
        f.flaky.set((0xc000203000 + LAYOUT.m_span().start, 3));
        let err = threads(&f, &LAYOUT, ALLM, PID, names, Some).expect_err("three torn walks");
        assert!(matches!(err, GoError::MList { problem: WalkError::Read { addr: 0xc000203000, .. }, .. }), "{err:?}");
    }

    #[test]
    fn an_unreadable_head_is_a_memory_error() {
        let f = Fake::default();
        let err = threads(&f, &LAYOUT, ALLM, PID, names, Some).expect_err("no memory");
        assert!(matches!(err, GoError::Memory { symbol: "runtime.allm", addr: ALLM, .. }), "{err:?}");
    }

    #[test]
    fn unreadable_names_are_none() {
        let mut f = process();
        // sysmon's funcval and a pinned goroutine are unmapped.
        f.regions.remove(&0x4e0000);
        f.regions.remove(&0xc000100800);
        let t = threads(&f, &LAYOUT, ALLM, PID, names, Some).expect("threads");
        let sysmon = t.iter().find(|t| t.tid == 101).expect("101");
        assert_eq!((sysmon.start_fn.as_deref(), sysmon.role), (None, GoRole::Worker));
        let pinned = t.iter().find(|t| t.tid == 106).expect("106");
        assert_eq!((pinned.locked_g_start.as_deref(), pinned.role), (None, GoRole::Pinned));
    }
}
