//! Entry points for the fuzz targets (`fuzz/`) over what a Go target
//! controls, and the replay of their corpus in the tests; not part of
//! pintrace's interface.
use std::{io, path::Path};

use super::{
    dwarf::{RuntimeLayout, SchedLayout},
    functions::FunctionTable,
    mlist::{self, Memory},
    sched, GoBinary,
};

/// An executable's bytes, the whole way a target's binary goes: ELF,
/// build info, symbols, DWARF layouts, the symbols the readers use, and
/// function names. Returns what was read, for the fuzzer's coverage.
pub fn binary(data: &[u8]) -> usize {
    let Ok(b) = GoBinary::parse(Path::new("fuzz"), data) else { return 0 };
    let mut seen = b.go_version().len();
    if let Ok(bi) = b.build_info() {
        seen += bi.settings.len() + bi.deps.len();
        let _ = (bi.cgo_enabled(), bi.build_mode(), bi.default_godebug());
    }
    if let Ok(l) = b.runtime_layout() {
        let span = l.m_span();
        assert!(span.end - span.start <= super::dwarf::MAX_SPAN, "{span:?}");
        seen += 1;
    }
    if let Ok(s) = b.sched_layout() {
        let span = s.p_span();
        assert!(span.end - span.start <= super::dwarf::MAX_SPAN, "{span:?}");
        seen += 1;
    }
    let _ = (b.gomaxprocs_symbol(), b.ncpu_symbol(), b.allm_symbol(), b.sched_symbols());
    for s in [b.runtime_symbols().allm, b.runtime_symbols().gomaxprocs].into_iter().flatten() {
        seen += b.function_at(s.addr).map_or(0, str::len);
    }
    for seg in b.load_segments() {
        seen += b.function_at(seg.vaddr).map_or(0, str::len);
    }
    seen
}

/// Appends `x` as an unsigned LEB128, as DWARF writes numbers.
pub fn uleb(v: &mut Vec<u8>, mut x: u64) {
    loop {
        let byte = (x & 0x7f) as u8;
        x >>= 7;
        if x == 0 {
            v.push(byte);
            return;
        }
        v.push(byte | 0x80);
    }
}

/// DWARF (`.debug_info`, `.debug_abbrev`) that takes a search its whole
/// budget: `units` units, each with its own abbreviation table, the tables
/// overlapping (unit i's starts at entry i of one long table), so that
/// each is parsed anew. A hostile target's, for the tests.
pub fn slow_dwarf(units: u64) -> (Vec<u8>, Vec<u8>) {
    let mut abbrev = Vec::new();
    let mut starts = Vec::new();
    for code in 1..=units {
        starts.push(abbrev.len() as u32);
        uleb(&mut abbrev, code);
        abbrev.extend_from_slice(&[0x24, 0, 0x03, 0x08, 0, 0]); // base_type, no children, name string
    }
    abbrev.push(0);
    let mut info = Vec::new();
    for start in starts {
        let mut die = Vec::new();
        uleb(&mut die, units); // the last entry: in every unit's table
        die.extend_from_slice(b"x\0");
        info.extend_from_slice(&((die.len() + 7) as u32).to_le_bytes()); // unit_length
        info.extend_from_slice(&4u16.to_le_bytes());
        info.extend_from_slice(&start.to_le_bytes());
        info.push(8);
        info.extend_from_slice(&die);
    }
    (info, abbrev)
}

/// Where the fuzzed memory image is mapped.
pub const BASE: u64 = 0x1000;

/// A memory image at `BASE`: reads outside it fail.
struct Image<'a>(&'a [u8]);

impl Memory for Image<'_> {
    fn read(&self, addr: u64, buf: &mut [u8]) -> io::Result<()> {
        let start = addr.checked_sub(BASE).ok_or(io::ErrorKind::UnexpectedEof)? as usize;
        let end = start.checked_add(buf.len()).ok_or(io::ErrorKind::UnexpectedEof)?;
        buf.copy_from_slice(self.0.get(start..end).ok_or(io::ErrorKind::UnexpectedEof)?);
        Ok(())
    }
}

/// Go 1.19's M and G (amd64), as its DWARF says: for the tests too.
pub const GO119: RuntimeLayout = RuntimeLayout {
    m_procid: 72,
    m_locked_ext: 616,
    m_locked_int: 620,
    m_mstartfn: 184,
    m_alllink: 336,
    m_lockedg: 352,
    m_curg: 192,
    m_p: 208,
    m_spinning: 276,
    m_incgo: 280,
    g_startpc: 312,
    g_goid: 152,
    g_atomicstatus: 144,
    m_size: 1008,
    g_size: 392,
};

/// Go 1.26's scheduler (amd64), as its DWARF says: for the tests too.
pub fn go126_sched() -> SchedLayout {
    SchedLayout {
        sched_runq: 0x70,
        sched_nmidle: 0x20,
        sched_nmspinning: 0x40,
        sched_npidle: 0x3c,
        sched_ngsys: 0x30,
        sched_gfree: vec![0xa8, 0xb8],
        p_status: 0x0c,
        p_runqhead: 0x9a8,
        p_runqtail: 0x9ac,
        p_runnext: 0x11b0,
        p_gfree: 0x11c8,
        p_schedtick: 0x10,
        schedt_size: 0x200,
        p_size: 0x2000,
    }
}

/// A process's memory as the target makes it: byte 0 picks the layouts
/// (even: Go's; odd: small offsets from bytes 8..), bytes 1..7 where
/// `runtime.allm`, `runtime.sched`, `runtime.allp` and `runtime.allglen`
/// are (offsets into the image); the whole input is the image at `BASE`.
/// Walks the M list (roles, states, goroutines) and reads the scheduler.
pub fn memory(data: &[u8]) -> usize {
    if data.len() < 16 {
        return 0;
    }
    let at = |i: usize| BASE + u64::from(data[i]) * 8;
    let (allm, sched_at, allp, allglen) = (at(1), at(2), at(3), at(4));
    let mut layout = GO119;
    let mut sl = go126_sched();
    if data[0] & 1 == 1 {
        // Offsets within 256 bytes: what a fuzzer can reach.
        let o = |i: usize| u64::from(data[8 + i]);
        layout = RuntimeLayout {
            m_procid: o(0) & !7,
            m_locked_ext: o(1) & !3,
            m_locked_int: o(2) & !3,
            m_mstartfn: o(3) & !7,
            m_alllink: o(4) & !7,
            m_lockedg: o(5) & !7,
            m_curg: o(6) & !7,
            m_p: o(7) & !7,
            ..layout
        };
        sl.p_runqhead = 0x20;
        sl.p_runqtail = 0x24;
        sl.p_runnext = 0x28;
        sl.p_gfree = 0x30;
    }
    let names = FunctionTable::new([
        (BASE, 0x100, "runtime.sysmon"),
        (BASE + 0x100, 0x100, "runtime.templateThread"),
        (BASE + 0x200, 0x100, "main.worker"),
    ]);
    let image = Image(data);
    let mut seen = 0;
    match mlist::threads(&image, &layout, allm, 1, |pc| names.at(pc), Some) {
        Ok(threads) => {
            assert!(threads.len() <= mlist::MAX_MS);
            seen += threads.len();
            for t in threads.iter().take(16) {
                seen += usize::from(mlist::state_at(&image, &layout, t.m_addr, |pc| names.at(pc)).is_some());
            }
        }
        Err(e) => seen += e.to_string().len() % 7,
    }
    if let Ok(s) = sched::read(&image, &sl, sched_at, allp, allglen) {
        assert!(s.ps.len() as u64 <= sched::MAX_PS);
        seen += s.ps.len();
    }
    seen
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    fn put(b: &mut [u8], at: usize, v: &[u8]) {
        b[at..at + v.len()].copy_from_slice(v);
    }

    /// A memory image with three Ms (sysmon, a worker locked to its
    /// goroutine, an idle one), two Ps and a scheduler, in the layouts of
    /// `memory`.
    fn seed_image() -> Vec<u8> {
        let mut b = vec![0u8; 0x6000];
        let (allm, sched_at, allp, allglen) = (0x10usize, 0x400usize, 0x600usize, 0x7f0usize);
        b[0] = 0;
        b[1] = (allm / 8) as u8;
        b[2] = (sched_at / 8) as u8;
        b[3] = (allp / 8) as u8;
        b[4] = (allglen / 8) as u8;
        let addr = |o: usize| (BASE + o as u64).to_le_bytes();
        let l = GO119;
        let ms = [0x800usize, 0xc00, 0x1000];
        put(&mut b, allm, &addr(ms[0]));
        // funcvals: their first word is the code.
        put(&mut b, 0x20, &addr(0x10)); // runtime.sysmon (BASE + 0x10)
        put(&mut b, 0x28, &addr(0x210)); // main.worker
        for (i, &m) in ms.iter().enumerate() {
            put(&mut b, m + l.m_procid as usize, &(100 + i as u64).to_le_bytes());
            if let Some(&next) = ms.get(i + 1) {
                put(&mut b, m + l.m_alllink as usize, &addr(next));
            }
        }
        put(&mut b, ms[0] + l.m_mstartfn as usize, &addr(0x20));
        put(&mut b, ms[1] + l.m_locked_ext as usize, &1u32.to_le_bytes());
        put(&mut b, ms[1] + l.m_lockedg as usize, &addr(0x1400));
        put(&mut b, ms[1] + l.m_curg as usize, &addr(0x1400));
        put(&mut b, ms[1] + l.m_p as usize, &addr(0x2000));
        put(&mut b, 0x1400 + l.g_startpc as usize, &addr(0x210));
        put(&mut b, 0x1400 + l.g_goid as usize, &7u64.to_le_bytes());
        put(&mut b, 0x1400 + l.g_atomicstatus as usize, &2u32.to_le_bytes());
        let s = go126_sched();
        put(&mut b, sched_at + s.sched_runq as usize, &3u32.to_le_bytes());
        put(&mut b, sched_at + s.sched_npidle as usize, &1u32.to_le_bytes());
        put(&mut b, allp, &addr(0x7c0));
        put(&mut b, allp + 8, &2u64.to_le_bytes());
        put(&mut b, 0x7c0, &addr(0x2000));
        put(&mut b, 0x7c8, &addr(0x3800));
        put(&mut b, 0x2000 + s.p_status as usize, &1u32.to_le_bytes());
        put(&mut b, 0x2000 + s.p_runqtail as usize, &2u32.to_le_bytes());
        put(&mut b, allglen, &12u64.to_le_bytes());
        b
    }

    fn root() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
    }

    #[test]
    fn the_memory_seed_reads_as_a_go_process() {
        let image = seed_image();
        let mem = Image(&image);
        let threads =
            mlist::threads(&mem, &GO119, BASE + 0x10, 1, |pc| (pc == BASE + 0x10).then_some("runtime.sysmon"), Some)
                .expect("the M list");
        assert_eq!(threads.iter().map(|t| t.tid).collect::<Vec<_>>(), [100, 101, 102]);
        assert_eq!(threads[0].role, mlist::GoRole::Sysmon);
        assert_eq!(threads[1].locked_ext, 1);
        let s = sched::read(&mem, &go126_sched(), BASE + 0x400, BASE + 0x600, BASE + 0x7f0).expect("the scheduler");
        assert_eq!((s.ps.len(), s.runqueue), (2, 3));
        assert!(memory(&image) >= 5);
        let seed = root().join("fuzz/corpus/go_memory/seed-three-ms");
        if std::env::var_os("PINTRACE_WRITE_SEEDS").is_some() {
            std::fs::create_dir_all(seed.parent().expect("dir")).expect("mkdir");
            std::fs::write(&seed, &image).expect("writing the seed");
        }
        assert_eq!(std::fs::read(&seed).expect("the seed (PINTRACE_WRITE_SEEDS=1 writes it)"), image);
    }

    /// Every input the fuzzers keep (seeds, and crashers and slow inputs
    /// found: `pintrace/tests/damaged-go/`) goes through both paths.
    #[test]
    fn the_fuzz_corpus_of_go_inputs_reads_without_panics() {
        let mut slowest = (std::time::Duration::ZERO, String::new());
        let mut n = 0;
        for (dir, f) in [
            ("fuzz/corpus/go_binary", binary as fn(&[u8]) -> usize),
            ("fuzz/corpus/go_memory", memory),
            ("pintrace/tests/damaged-go/binary", binary),
            ("pintrace/tests/damaged-go/memory", memory),
        ] {
            let Ok(entries) = std::fs::read_dir(root().join(dir)) else { continue };
            for e in entries.flatten() {
                let data = std::fs::read(e.path()).expect("reading a corpus file");
                let started = std::time::Instant::now();
                f(&data);
                let took = started.elapsed();
                if took > slowest.0 {
                    slowest = (took, e.path().display().to_string());
                }
                n += 1;
            }
        }
        assert!(n >= 4, "the seeds are there: {n} inputs");
        eprintln!("{n} inputs, the slowest {:?} ({})", slowest.0, slowest.1);
        // The seed binaries are Go to pintrace: the whole path is taken.
        let seed = std::fs::read(root().join("fuzz/corpus/go_binary/seed-c-dressed-as-go")).expect("the seed");
        let b = GoBinary::parse(Path::new("seed"), &seed).expect("a Go binary to pintrace");
        assert_eq!(b.go_version(), "go1.99.9z");
        assert!(b.runtime_layout().is_ok() && b.sched_layout().is_ok());
    }
}
