//! The Go scheduler read from outside: what `GODEBUG=schedtrace=1000`
//! prints, for a process already running. `runtime.sched` (a
//! `runtime.schedt`) holds the global run queue, the idle and spinning Ms
//! and the idle Ps; `runtime.allp` is a slice of every P, each with its
//! local run queue (`runqtail - runqhead`) and `runnext`, the goroutine
//! that runs next on it. The number of goroutines is computed as the
//! runtime's `gcount` does: `allglen` less the free lists and the system
//! goroutines.
//!
//! Cost: one pread of `runtime.sched`'s span, one of `allp`'s slice header,
//! one of its pointers, one per P, and one of `allglen`: with GOMAXPROCS 2,
//! six preads of a few hundred bytes (measured in `cargo xtask bench
//! --only-go`).
use super::{dwarf::SchedLayout, mlist::Memory};

/// More Ps than the runtime allows (`_MaxGomaxprocs` is 1024) is not a P list.
pub const MAX_PS: u64 = 1 << 12;
/// A P's `runqtail - runqhead` is at most its ring's 256 slots; more is a torn read.
const MAX_LOCAL_RUNQ: u32 = 256;

/// One P's state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PState {
    /// `_Pidle` 0, `_Prunning` 1, `_Psyscall` 2, `_Pgcstop` 3, `_Pdead` 4.
    pub status: u32,
    /// Goroutines in its local run queue (`runqtail - runqhead`, as schedtrace prints).
    pub runq: u32,
    /// A goroutine waits in its `runnext` slot (not in `runq`).
    pub runnext: bool,
    pub schedtick: u32,
}

/// The scheduler at one moment.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SchedState {
    pub idle_ps: u32,
    pub spinning_threads: u32,
    pub idle_threads: u32,
    /// The global run queue's length.
    pub runqueue: u32,
    pub goroutines: u32,
    pub ps: Vec<PState>,
}

impl SchedState {
    /// Goroutines runnable and waiting for a P: the global queue, the local
    /// queues and the `runnext` slots.
    pub fn queued(&self) -> u32 {
        let local: u32 = self.ps.iter().map(|p| p.runq.saturating_add(u32::from(p.runnext))).sum();
        self.runqueue.saturating_add(local)
    }
}

/// Why the scheduler could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SchedError {
    #[error("reading {what} at {addr:#x}: {source}")]
    Read { what: &'static str, addr: u64, source: std::io::Error },
    #[error("runtime.allp holds {0} Ps: not a P list")]
    TooManyPs(u64),
    #[error("the P pointer {0:#x} is not 8-byte aligned")]
    Misaligned(u64),
}

fn read_at(mem: &impl Memory, what: &'static str, addr: u64, buf: &mut [u8]) -> Result<(), SchedError> {
    mem.read(addr, buf).map_err(|source| SchedError::Read { what, addr, source })
}

fn u32_at(b: &[u8], base: u64, offset: u64) -> u32 {
    let i = offset.checked_sub(base).and_then(|i| usize::try_from(i).ok());
    i.and_then(|i| b.get(i..i.checked_add(4)?)).and_then(|s| s.try_into().ok()).map_or(0, u32::from_le_bytes)
}

fn u64_at(b: &[u8], base: u64, offset: u64) -> u64 {
    let i = offset.checked_sub(base).and_then(|i| usize::try_from(i).ok());
    i.and_then(|i| b.get(i..i.checked_add(8)?)).and_then(|s| s.try_into().ok()).map_or(0, u64::from_le_bytes)
}

/// Reads the scheduler of a process: `sched`, `allp` and `allglen` are the
/// run-time addresses of those variables. Counts are read as the runtime
/// leaves them between its own updates, so a value can be a moment old;
/// an int32 count below zero reads as zero.
pub fn read(
    mem: &impl Memory,
    layout: &SchedLayout,
    sched: u64,
    allp: u64,
    allglen: u64,
) -> Result<SchedState, SchedError> {
    let span = layout.sched_span();
    let mut s = vec![0u8; usize::try_from(span.end - span.start).unwrap_or(0)];
    read_at(mem, "runtime.sched", sched.saturating_add(span.start), &mut s)?;
    let count = |o: u64| u32::try_from(u32_at(&s, span.start, o) as i32).unwrap_or(0);
    let mut slice = [0u8; 16];
    read_at(mem, "runtime.allp", allp, &mut slice)?;
    let (ptr, len) = (u64_at(&slice, 0, 0), u64_at(&slice, 0, 8));
    if len > MAX_PS {
        return Err(SchedError::TooManyPs(len));
    }
    let mut ptrs = vec![0u8; len as usize * 8];
    if len > 0 {
        read_at(mem, "runtime.allp's Ps", ptr, &mut ptrs)?;
    }
    let pspan = layout.p_span();
    let mut pb = vec![0u8; usize::try_from(pspan.end - pspan.start).unwrap_or(0)];
    let mut ps = Vec::with_capacity(len as usize);
    let mut free_in_ps = 0i64;
    for chunk in ptrs.chunks_exact(8) {
        let p = u64::from_le_bytes(chunk.try_into().unwrap_or([0; 8]));
        if p == 0 {
            continue;
        }
        if !p.is_multiple_of(8) {
            return Err(SchedError::Misaligned(p));
        }
        read_at(mem, "a P", p.saturating_add(pspan.start), &mut pb)?;
        let at = |o| u32_at(&pb, pspan.start, o);
        let runq = at(layout.p_runqtail).wrapping_sub(at(layout.p_runqhead));
        free_in_ps += i64::from(at(layout.p_gfree) as i32);
        ps.push(PState {
            status: at(layout.p_status),
            runq: if runq > MAX_LOCAL_RUNQ { 0 } else { runq },
            runnext: u64_at(&pb, pspan.start, layout.p_runnext) != 0,
            schedtick: at(layout.p_schedtick),
        });
    }
    let mut glen = [0u8; 8];
    read_at(mem, "runtime.allglen", allglen, &mut glen)?;
    let free_global: i64 = layout.sched_gfree.iter().map(|&o| i64::from(u32_at(&s, span.start, o) as i32)).sum();
    let ngsys = i64::from(u32_at(&s, span.start, layout.sched_ngsys) as i32);
    let all = i64::try_from(u64::from_le_bytes(glen)).unwrap_or(i64::MAX);
    // As the runtime's gcount: at least the goroutine that runs.
    let goroutines = all.saturating_sub(free_global).saturating_sub(ngsys).saturating_sub(free_in_ps).max(1);
    Ok(SchedState {
        idle_ps: count(layout.sched_npidle),
        spinning_threads: count(layout.sched_nmspinning),
        idle_threads: count(layout.sched_nmidle),
        runqueue: count(layout.sched_runq),
        goroutines: u32::try_from(goroutines).unwrap_or(u32::MAX),
        ps,
    })
}

#[cfg(test)]
mod tests {
    use std::{collections::BTreeMap, io};

    use super::*;

    /// Go 1.26's offsets (amd64).
    fn layout() -> SchedLayout {
        crate::goruntime::fuzzing::go126_sched()
    }

    #[derive(Default)]
    struct Fake(BTreeMap<u64, Vec<u8>>);

    impl Memory for Fake {
        fn read(&self, addr: u64, buf: &mut [u8]) -> io::Result<()> {
            let (start, bytes) = self.0.range(..=addr).next_back().ok_or(io::ErrorKind::UnexpectedEof)?;
            let i = (addr - start) as usize;
            buf.copy_from_slice(bytes.get(i..i + buf.len()).ok_or(io::ErrorKind::UnexpectedEof)?);
            Ok(())
        }
    }

    fn put(b: &mut [u8], o: u64, v: &[u8]) {
        b[o as usize..o as usize + v.len()].copy_from_slice(v);
    }

    const SCHED: u64 = 0x5000;
    const ALLP: u64 = 0x6000;
    const ALLGLEN: u64 = 0x7000;

    /// GOMAXPROCS 2: one P running with 2 queued and runnext set, one idle;
    /// 3 in the global queue; 12 Gs allocated, 2 free globally, 1 in a P, 4 system.
    fn process() -> Fake {
        let l = layout();
        let mut f = Fake::default();
        let mut s = vec![0u8; 0x200];
        put(&mut s, l.sched_runq, &3u32.to_le_bytes());
        put(&mut s, l.sched_nmidle, &2u32.to_le_bytes());
        put(&mut s, l.sched_nmspinning, &0u32.to_le_bytes());
        put(&mut s, l.sched_npidle, &1u32.to_le_bytes());
        put(&mut s, l.sched_ngsys, &4u32.to_le_bytes());
        put(&mut s, 0xa8, &2u32.to_le_bytes());
        f.0.insert(SCHED, s);
        let mut slice = vec![0u8; 24];
        put(&mut slice, 0, &0x8000u64.to_le_bytes());
        put(&mut slice, 8, &2u64.to_le_bytes());
        put(&mut slice, 16, &2u64.to_le_bytes());
        f.0.insert(ALLP, slice);
        let mut ptrs = vec![0u8; 16];
        put(&mut ptrs, 0, &0x10000u64.to_le_bytes());
        put(&mut ptrs, 8, &0x20000u64.to_le_bytes());
        f.0.insert(0x8000, ptrs);
        for (at, status, head, tail, next, free) in
            [(0x10000u64, 1u32, 7u32, 9u32, 0xc000u64, 1u32), (0x20000, 0, 4, 4, 0, 0)]
        {
            let mut p = vec![0u8; 0x2000];
            put(&mut p, l.p_status, &status.to_le_bytes());
            put(&mut p, l.p_runqhead, &head.to_le_bytes());
            put(&mut p, l.p_runqtail, &tail.to_le_bytes());
            put(&mut p, l.p_runnext, &next.to_le_bytes());
            put(&mut p, l.p_gfree, &free.to_le_bytes());
            f.0.insert(at, p);
        }
        f.0.insert(ALLGLEN, 12u64.to_le_bytes().to_vec());
        f
    }

    #[test]
    fn reads_what_schedtrace_prints() {
        let s = read(&process(), &layout(), SCHED, ALLP, ALLGLEN).expect("read");
        assert_eq!((s.idle_ps, s.spinning_threads, s.idle_threads, s.runqueue), (1, 0, 2, 3));
        assert_eq!(
            s.ps.iter().map(|p| (p.status, p.runq, p.runnext)).collect::<Vec<_>>(),
            [(1, 2, true), (0, 0, false)]
        );
        assert_eq!(s.goroutines, 12 - 2 - 4 - 1);
        assert_eq!(s.queued(), 3 + 2 + 1);
    }

    #[test]
    fn garbage_is_bounded_and_an_error() {
        let mut f = process();
        // A length no runtime has: refused, not allocated.
        let mut slice = vec![0u8; 24];
        put(&mut slice, 0, &0x8000u64.to_le_bytes());
        put(&mut slice, 8, &(1u64 << 40).to_le_bytes());
        f.0.insert(ALLP, slice);
        assert!(matches!(read(&f, &layout(), SCHED, ALLP, ALLGLEN), Err(SchedError::TooManyPs(_))));
        // A misaligned or unmapped P.
        let mut f = process();
        let mut ptrs = vec![0u8; 16];
        put(&mut ptrs, 0, &0x10003u64.to_le_bytes());
        f.0.insert(0x8000, ptrs);
        assert!(matches!(read(&f, &layout(), SCHED, ALLP, ALLGLEN), Err(SchedError::Misaligned(0x10003))));
        assert!(matches!(read(&Fake::default(), &layout(), SCHED, ALLP, ALLGLEN), Err(SchedError::Read { .. })));
        // Negative counts (torn) read as 0, a torn local queue too; goroutines at least 1.
        let mut f = process();
        let mut s = vec![0u8; 0x200];
        put(&mut s, layout().sched_runq, &(-5i32).to_le_bytes());
        put(&mut s, layout().sched_ngsys, &1000u32.to_le_bytes());
        f.0.insert(SCHED, s);
        let st = read(&f, &layout(), SCHED, ALLP, ALLGLEN).expect("read");
        assert_eq!((st.runqueue, st.goroutines), (0, 1));
    }
}
