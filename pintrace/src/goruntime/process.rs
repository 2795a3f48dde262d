//! A running Go process: where its executable is loaded, its runtime
//! variables (GOMAXPROCS, the CPU count) and its threads (the M list)
//! read from /proc/PID/mem.
use std::{
    cell::RefCell,
    fs::{self, File},
    os::unix::fs::{FileExt as _, MetadataExt as _},
};

use anyhow::{bail, Context as _, Result};

use super::{
    binary::{GoBinary, LoadSegment, Symbol},
    mlist::{self, GoThread, MState},
    sched::{self, SchedState},
    GoError,
};
use crate::target::NsTids;

/// One line of /proc/PID/maps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapping {
    pub start: u64,
    pub end: u64,
    /// "r-xp" and the like.
    pub perms: String,
    pub offset: u64,
    pub file: FileId,
    /// The path, `"[heap]"` and the like, or empty for anonymous memory.
    pub path: String,
}

/// A file's identity: (device major, minor) and inode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileId {
    pub major: u32,
    pub minor: u32,
    pub inode: u64,
}

impl FileId {
    /// From `stat`'s `st_dev` (Linux's encoding) and `st_ino`.
    pub fn from_stat(dev: u64, inode: u64) -> FileId {
        let major = ((dev >> 8) & 0xfff) | ((dev >> 32) & !0xfff);
        let minor = (dev & 0xff) | ((dev >> 12) & !0xff);
        FileId { major: major as u32, minor: minor as u32, inode }
    }
}

/// Parses /proc/PID/maps; lines that do not parse are skipped.
pub fn parse_maps(text: &str) -> Vec<Mapping> {
    text.lines().filter_map(parse_map_line).collect()
}

fn parse_map_line(line: &str) -> Option<Mapping> {
    // start-end perms offset major:minor inode [path]
    let mut fields = line.splitn(6, ' ');
    let (start, end) = fields.next()?.split_once('-')?;
    let perms = fields.next()?;
    let offset = fields.next()?;
    let (major, minor) = fields.next()?.split_once(':')?;
    let inode = fields.next()?;
    let path = fields.next().unwrap_or("").trim_start();
    Some(Mapping {
        start: u64::from_str_radix(start, 16).ok()?,
        end: u64::from_str_radix(end, 16).ok()?,
        perms: perms.to_string(),
        offset: u64::from_str_radix(offset, 16).ok()?,
        file: FileId {
            major: u32::from_str_radix(major, 16).ok()?,
            minor: u32::from_str_radix(minor, 16).ok()?,
            inode: inode.parse().ok()?,
        },
        path: path.to_string(),
    })
}

/// The executable's mappings: by device and inode; by inode alone when no
/// device matches (overlayfs shows another device in maps than `stat` does).
fn exe_mappings(maps: &[Mapping], exe: FileId) -> Vec<&Mapping> {
    if exe.inode == 0 {
        return Vec::new(); // anonymous memory
    }
    let by_dev: Vec<&Mapping> = maps.iter().filter(|m| m.file == exe).collect();
    if !by_dev.is_empty() {
        return by_dev;
    }
    maps.iter().filter(|m| m.file.inode == exe.inode).collect()
}

/// The load bias (run-time address − link-time address) of a PIE
/// executable: the first of its mappings whose offset is the page-aligned
/// file offset of a PT_LOAD, minus that PT_LOAD's page-aligned address.
/// 0 for a non-PIE (ET_EXEC) executable. None if the executable is not mapped.
pub fn load_bias(pie: bool, loads: &[LoadSegment], maps: &[Mapping], exe: FileId, page: u64) -> Option<u64> {
    if !pie {
        return Some(0);
    }
    let down = |x: u64| x & !(page.max(1) - 1);
    let mut mine = exe_mappings(maps, exe);
    mine.sort_by_key(|m| m.start);
    mine.iter()
        .find_map(|m| loads.iter().find(|l| down(l.offset) == m.offset).map(|l| m.start.wrapping_sub(down(l.vaddr))))
}

fn page_size() -> u64 {
    // SAFETY: sysconf has no preconditions.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u64::try_from(p).ok().filter(|&p| p.is_power_of_two()).unwrap_or(4096)
}

/// A Go process whose runtime variables can be read, again and again.
#[derive(Debug)]
pub struct GoProcess {
    pid: u32,
    binary: GoBinary,
    bias: u64,
    /// /proc/PID/mem, kept open: each read is one pread.
    mem: File,
    /// In another PID namespace (a container): its thread IDs as the
    /// runtime stores them, mapped to pintrace's. None: the same namespace.
    ns_tids: Option<RefCell<NsTids>>,
}

impl GoProcess {
    /// Reads the executable of `pid`, finds where it is loaded and opens its
    /// memory. Fails with `GoError::NotGo` (inside the anyhow error) for a
    /// program that is not Go. Succeeds for a stripped binary: then its
    /// build info is known and `gomaxprocs()` says it is stripped.
    pub fn attach(pid: u32) -> Result<GoProcess> {
        GoProcess::attach_binary(pid, GoBinary::from_pid(pid)?).map_err(|failed| failed.1)
    }

    /// As `attach`, with the executable already read (`GoBinary::from_pid`),
    /// which a failure hands back: a process that has just exec'd may not
    /// have its program mapped yet, and is tried again.
    pub fn attach_binary(pid: u32, binary: GoBinary) -> Result<GoProcess, Box<(GoBinary, anyhow::Error)>> {
        match GoProcess::mapped(pid, &binary) {
            Ok((bias, mem)) => {
                let ns_tids = NsTids::needed(pid).then(|| RefCell::new(NsTids::default()));
                Ok(GoProcess { pid, binary, bias, mem, ns_tids })
            }
            Err(e) => Err(Box::new((binary, e))),
        }
    }

    /// The executable handed back.
    pub fn into_binary(self) -> GoBinary {
        self.binary
    }

    /// Where `binary` is loaded in process `pid`, and its memory opened.
    fn mapped(pid: u32, binary: &GoBinary) -> Result<(u64, File)> {
        let exe = format!("/proc/{pid}/exe");
        let meta = fs::metadata(&exe).with_context(|| format!("stat {exe}"))?;
        let maps_path = format!("/proc/{pid}/maps");
        let maps = fs::read_to_string(&maps_path)
            .with_context(|| format!("reading {maps_path}: is process {pid} still there, and are you root?"))?;
        let maps = parse_maps(&maps);
        let id = FileId::from_stat(meta.dev(), meta.ino());
        let Some(bias) = load_bias(binary.is_pie(), binary.load_segments(), &maps, id, page_size()) else {
            bail!("{} is not mapped in process {pid} (no mapping of inode {})", binary.path().display(), id.inode);
        };
        for sym in [binary.runtime_symbols().gomaxprocs, binary.runtime_symbols().ncpu].into_iter().flatten() {
            let addr = sym.addr.wrapping_add(bias);
            if !maps.iter().any(|m| m.start <= addr && addr.saturating_add(4) <= m.end) {
                bail!(
                    "{} in process {pid}: a runtime variable at {addr:#x} (load bias {bias:#x}) is not mapped",
                    binary.path().display()
                );
            }
        }
        let mem_path = format!("/proc/{pid}/mem");
        let mem = File::open(&mem_path).with_context(|| {
            format!("opening {mem_path}: reading another process's memory needs root (or the right to ptrace it)")
        })?;
        Ok((bias, mem))
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    pub fn binary(&self) -> &GoBinary {
        &self.binary
    }

    /// Run-time address minus link-time address (0 unless PIE).
    pub fn load_bias(&self) -> u64 {
        self.bias
    }

    /// Where `runtime.gomaxprocs` is in the process, if the binary says.
    pub fn gomaxprocs_addr(&self) -> Option<u64> {
        self.binary.gomaxprocs_symbol().ok().map(|s| s.addr.wrapping_add(self.bias))
    }

    /// GOMAXPROCS now: `runtime.gomaxprocs`. It changes (runtime.GOMAXPROCS,
    /// and since Go 1.25 the cgroup limit), so read it again when needed;
    /// a read is one pread of 4 bytes.
    pub fn gomaxprocs(&self) -> Result<u32, GoError> {
        self.read_positive(self.binary.gomaxprocs_symbol()?)
    }

    /// `runtime.ncpu`: the CPUs the runtime counted at start (its affinity mask).
    pub fn ncpu(&self) -> Result<u32, GoError> {
        self.read_positive(self.binary.ncpu_symbol()?)
    }

    /// Every started Go thread (M) with its pins and role, in the order of
    /// `runtime.allm` (newest first). Needs the binary's DWARF (`GoError::NoDwarf`
    /// otherwise) and symbols. Costs about 0.9 µs per M (see `mlist`).
    pub fn threads(&self) -> Result<Vec<GoThread>, GoError> {
        let layout = self.binary.runtime_layout()?;
        let allm = self.binary.allm_symbol()?;
        let allm = allm.addr.wrapping_add(self.bias);
        let name = |pc| self.function_at(pc);
        match &self.ns_tids {
            None => mlist::threads(&self.mem, layout, allm, self.pid, name, Some),
            Some(ns) => {
                ns.borrow_mut().refresh(self.pid);
                let ns = ns.borrow();
                mlist::threads(&self.mem, layout, allm, self.pid, name, |t| ns.host(t))
            }
        }
    }

    /// The scheduler now: what `GODEBUG=schedtrace` prints (see `sched`).
    pub fn sched(&self) -> Result<SchedState, GoError> {
        let layout = self.binary.sched_layout()?;
        let (sched, allp, allglen) = self.binary.sched_symbols()?;
        let at = |s: Symbol| s.addr.wrapping_add(self.bias);
        sched::read(&self.mem, layout, at(sched), at(allp), at(allglen))
            .map_err(|problem| GoError::Sched { pid: self.pid, problem })
    }

    /// The state of the Ms at these addresses (from `threads()`) now: one
    /// read of each M and of its goroutine. None for an M that cannot be read.
    pub fn states_at(&self, ms: &[(u32, u64)]) -> Vec<(u32, Option<MState>)> {
        let Ok(layout) = self.binary.runtime_layout() else { return Vec::new() };
        ms.iter()
            .map(|&(tid, addr)| (tid, mlist::state_at(&self.mem, layout, addr, |pc| self.function_at(pc))))
            .collect()
    }

    /// Whether the process is in another PID namespace than pintrace (a
    /// container), so that its thread IDs are mapped.
    pub fn in_pid_namespace(&self) -> bool {
        self.ns_tids.is_some()
    }

    /// The function whose code holds `addr`, a run-time address in this
    /// process (a return address from a uprobe, a goroutine's startpc).
    pub fn function_at(&self, addr: u64) -> Option<&str> {
        self.binary.function_at(addr.wrapping_sub(self.bias))
    }

    fn read_positive(&self, sym: Symbol) -> Result<u32, GoError> {
        let (symbol, addr) = (sym.name, sym.addr.wrapping_add(self.bias));
        let mut buf = [0u8; 4];
        self.mem.read_exact_at(&mut buf, addr).map_err(|source| GoError::Memory {
            pid: self.pid,
            symbol,
            addr,
            source,
        })?;
        let value = i32::from_ne_bytes(buf);
        u32::try_from(value).ok().filter(|&v| v > 0).ok_or(GoError::Unset { pid: self.pid, symbol, value })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // A PIE Go binary's mappings (Go 1.26, -buildmode=pie), trimmed.
    const PIE_MAPS: &str = "\
5581d2a00000-5581d2ab2000 r--p 00000000 fd:01 1234567                    /srv/app
5581d2ab2000-5581d2c0e000 r-xp 000b2000 fd:01 1234567                    /srv/app
5581d2c0e000-5581d2d4a000 r--p 0020e000 fd:01 1234567                    /srv/app
5581d2d4a000-5581d2d6c000 rw-p 0034a000 fd:01 1234567                    /srv/app
5581d2d6c000-5581d2da0000 rw-p 00000000 00:00 0 
c000000000-c004000000 rw-p 00000000 00:00 0 
7ffd1a1f3000-7ffd1a214000 rw-p 00000000 00:00 0                          [stack]
";

    fn pie_loads() -> Vec<LoadSegment> {
        let l = |vaddr, offset, flags| LoadSegment { vaddr, offset, filesz: 0x1000, memsz: 0x1000, flags };
        vec![l(0, 0, 4), l(0xb2000, 0xb2000, 5), l(0x20e000, 0x20e000, 4), l(0x34b8e0, 0x34a8e0, 6)]
    }

    const EXE: FileId = FileId { major: 0xfd, minor: 1, inode: 1234567 };

    #[test]
    fn parses_maps_lines() {
        let maps = parse_maps(PIE_MAPS);
        assert_eq!(maps.len(), 7);
        assert_eq!(
            maps[1],
            Mapping {
                start: 0x5581d2ab2000,
                end: 0x5581d2c0e000,
                perms: "r-xp".into(),
                offset: 0xb2000,
                file: EXE,
                path: "/srv/app".into(),
            }
        );
        assert_eq!(maps[4].path, "");
        assert_eq!(maps[4].file.inode, 0);
        assert_eq!(maps[6].path, "[stack]");
        // Paths with spaces survive; junk lines are skipped.
        let odd = parse_maps("1000-2000 r-xp 00000000 08:02 42 /opt/my app (deleted)\nnonsense\n\nzz-1 r 0 0:0 0\n");
        assert_eq!(odd.len(), 1);
        assert_eq!(odd[0].path, "/opt/my app (deleted)");
    }

    #[test]
    fn pie_bias_from_the_first_mapping() {
        let maps = parse_maps(PIE_MAPS);
        assert_eq!(load_bias(true, &pie_loads(), &maps, EXE, 4096), Some(0x5581d2a00000));
        // The data segment alone (say the text mapping was not matched) gives the same bias:
        // offset 0x34a8e0 → page 0x34a000, vaddr 0x34b8e0 → page 0x34b000.
        let data_only: Vec<Mapping> = maps.iter().filter(|m| m.offset == 0x34a000).cloned().collect();
        let expected = 0x5581d2d4a000 - 0x34b000;
        assert_eq!(load_bias(true, &pie_loads(), &data_only, EXE, 4096), Some(expected));
    }

    #[test]
    fn non_pie_bias_is_zero_and_unmapped_is_none() {
        let maps = parse_maps(PIE_MAPS);
        assert_eq!(load_bias(false, &pie_loads(), &[], EXE, 4096), Some(0));
        let other = FileId { inode: 7, ..EXE };
        assert_eq!(load_bias(true, &pie_loads(), &maps, other, 4096), None);
        assert_eq!(load_bias(true, &[], &maps, EXE, 4096), None);
        // Anonymous memory (inode 0) is never the executable.
        assert_eq!(load_bias(true, &pie_loads(), &maps, FileId { major: 0, minor: 0, inode: 0 }, 4096), None);
    }

    #[test]
    fn overlayfs_device_mismatch_falls_back_to_the_inode() {
        let maps = parse_maps(PIE_MAPS);
        let overlay = FileId { major: 0, minor: 0x3e, inode: 1234567 };
        assert_eq!(load_bias(true, &pie_loads(), &maps, overlay, 4096), Some(0x5581d2a00000));
    }

    #[test]
    fn stat_device_numbers() {
        // makedev(253, 1) and makedev(259, 65536) in glibc's encoding:
        // minor bits 0-7 and 20-31, major bits 8-19.
        assert_eq!(FileId::from_stat(0xfd01, 5), FileId { major: 253, minor: 1, inode: 5 });
        let dev = (259u64 << 8) | (65536u64 << 12);
        assert_eq!(FileId::from_stat(dev, 5), FileId { major: 259, minor: 65536, inode: 5 });
    }

    #[test]
    fn attaching_to_a_program_that_is_not_go_says_so() {
        let err = GoProcess::attach(std::process::id()).expect_err("a Rust test binary is not Go");
        assert!(matches!(err.downcast_ref::<GoError>(), Some(GoError::NotGo { .. })), "{err:#}");
    }
}
