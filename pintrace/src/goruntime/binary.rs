//! A Go executable on disk: is it Go, how was it built, where are the
//! runtime variables pintrace reads, how are the runtime's `m` and `g`
//! laid out (DWARF), and which function holds a code address.
//!
//! The executable is the target's choice: it is read through a cache of the
//! ranges asked for (`object::ReadCache`), never whole, and every table
//! read whole (symbols, strings, build info, DWARF) is bounded first.
use std::{
    fs,
    path::{Path, PathBuf},
};

use object::{
    elf,
    read::elf::{FileHeader as _, ProgramHeader as _, SectionHeader as _},
    Endianness, Object as _, ObjectKind, ObjectSection as _, ObjectSegment as _, ObjectSymbol as _, ReadRef,
    SegmentFlags, SymbolKind,
};

use super::{
    buildinfo::{self, BuildInfo, BuildInfoError},
    dwarf::{self, DwarfProblem, Layouts, RuntimeLayout, SchedLayout},
    functions::FunctionTable,
    GoError,
};

/// The bytes Go's reader searches for the blob when there is no
/// `.go.buildinfo` section.
const SEARCH_LEN: usize = 64 * 1024;

/// The most bytes of a table read whole (the symbol and string tables):
/// a large Go service's symbol table is tens of megabytes.
const MAX_TABLE: u64 = 256 << 20;
/// The most section headers: more than any linker writes.
const MAX_SECTIONS: usize = 1 << 16;
/// The build info section: a few kilobytes in any Go binary.
const MAX_BUILDINFO: u64 = 1 << 20;

/// A PT_LOAD program header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoadSegment {
    pub vaddr: u64,
    pub offset: u64,
    pub filesz: u64,
    pub memsz: u64,
    pub flags: u32,
}

/// A data symbol: its name, link-time address and size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Symbol {
    pub name: &'static str,
    pub addr: u64,
    pub size: u64,
}

/// Runtime variables that pintrace reads, as found in the symbol table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RuntimeSymbols {
    /// `runtime.gomaxprocs` (int32).
    pub gomaxprocs: Option<Symbol>,
    /// `runtime.ncpu` (int32): the CPUs the runtime saw at start; named
    /// `runtime.numCPUStartup` in newer Go (1.26 here).
    pub ncpu: Option<Symbol>,
    /// `runtime.allm` (*m): the head of the list of all Ms (OS threads).
    pub allm: Option<Symbol>,
    /// `runtime.sched` (schedt): the scheduler's global state.
    pub sched: Option<Symbol>,
    /// `runtime.allp` (`[]*p`): every P.
    pub allp: Option<Symbol>,
    /// `runtime.allglen` (uintptr): goroutines ever allocated, dead ones included.
    pub allglen: Option<Symbol>,
}

#[derive(Debug)]
pub struct GoBinary {
    path: PathBuf,
    build: Result<BuildInfo, BuildInfoError>,
    /// ET_DYN (position-independent: loaded at a random base).
    pie: bool,
    loads: Vec<LoadSegment>,
    /// False when there is no symbol table at all.
    has_symtab: bool,
    symbols: RuntimeSymbols,
    /// The symbol table's functions, to name code addresses.
    functions: FunctionTable,
    /// The layout of runtime.m, runtime.g and the scheduler's structs, from DWARF.
    layout: Result<Layouts, DwarfProblem>,
}

impl GoBinary {
    /// Reads the Go executable at `path`; `GoError::NotGo` if it is not one.
    pub fn open(path: impl AsRef<Path>) -> Result<GoBinary, GoError> {
        let path = path.as_ref();
        let file = fs::File::open(path).map_err(|source| GoError::Read { path: path.to_path_buf(), source })?;
        GoBinary::parse_from(path, &object::ReadCache::new(file))
    }

    /// The executable of process `pid` (through /proc/PID/exe, so it works
    /// for a binary replaced or deleted since, and across mount namespaces).
    pub fn from_pid(pid: u32) -> Result<GoBinary, GoError> {
        let exe = PathBuf::from(format!("/proc/{pid}/exe"));
        let file = fs::File::open(&exe).map_err(|source| GoError::Read { path: exe.clone(), source })?;
        // Name the file in messages, not the /proc link.
        let shown = fs::read_link(&exe).unwrap_or(exe);
        GoBinary::parse_from(&shown, &object::ReadCache::new(file))
    }

    /// Parses an executable's bytes; `path` is only for messages. This
    /// includes the DWARF layout of the runtime's structs (a few
    /// milliseconds: see `dwarf`) and the function table.
    pub fn parse(path: &Path, data: &[u8]) -> Result<GoBinary, GoError> {
        GoBinary::parse_from(path, data)
    }

    /// As `parse`, from any source of bytes (a file read on demand).
    pub fn parse_from<'d, R: ReadRef<'d>>(path: &Path, data: R) -> Result<GoBinary, GoError> {
        let not_go = |reason: String| GoError::NotGo { path: path.to_path_buf(), reason };
        if data.read_bytes_at(0, 4).ok() != Some(&elf::ELFMAG[..]) {
            return Err(not_go("not an ELF file".into()));
        }
        let file = bounded(data).and_then(|()| object::File::parse(data).map_err(|e| e.to_string()));
        let file = match file {
            Ok(f) => f,
            // Damage in the headers: say so if what remains says Go.
            Err(e) => {
                return Err(match damaged_go_version(data) {
                    Some(version) => GoError::Damaged { path: path.to_path_buf(), version, reason: e },
                    None => not_go(format!("an ELF file that does not parse ({e})")),
                })
            }
        };
        let pie = match file.kind() {
            ObjectKind::Executable => false,
            ObjectKind::Dynamic => true,
            other => return Err(not_go(format!("an ELF {other:?} file, not an executable"))),
        };
        let loads: Vec<LoadSegment> = file
            .segments()
            .map(|s| {
                let (offset, filesz) = s.file_range();
                let flags = match s.flags() {
                    SegmentFlags::Elf { p_flags } => p_flags,
                    _ => 0,
                };
                LoadSegment { vaddr: s.address(), offset, filesz, memsz: s.size(), flags }
            })
            .collect();

        let section = file.section_by_name(".go.buildinfo");
        let build = match section.as_ref().filter(|s| s.size() <= MAX_BUILDINFO).and_then(|s| s.data().ok()) {
            Some(d) => buildinfo::parse(d),
            None => buildinfo::parse(&first_writable_data(data, &loads)),
        };

        let mut symbols = RuntimeSymbols::default();
        let mut has_symtab = false;
        let mut runtime_symbols = false;
        let mut functions = Vec::new();
        for sym in file.symbols() {
            has_symtab = true;
            let Ok(name) = sym.name() else { continue };
            if sym.kind() == SymbolKind::Text {
                functions.push((sym.address(), sym.size(), name));
            }
            let found = |name| Some(Symbol { name, addr: sym.address(), size: sym.size() });
            match name {
                "runtime.gomaxprocs" => symbols.gomaxprocs = found("runtime.gomaxprocs"),
                "runtime.ncpu" => symbols.ncpu = found("runtime.ncpu"),
                "runtime.numCPUStartup" => symbols.ncpu = found("runtime.numCPUStartup"),
                "runtime.allm" => symbols.allm = found("runtime.allm"),
                "runtime.sched" => symbols.sched = found("runtime.sched"),
                "runtime.allp" => symbols.allp = found("runtime.allp"),
                "runtime.allglen" => symbols.allglen = found("runtime.allglen"),
                "runtime.main" | "runtime.buildVersion" => runtime_symbols = true,
                _ => {}
            }
        }
        // A build info header (readable or not), or the runtime's traces.
        let is_go = section.is_some()
            || !matches!(build, Err(BuildInfoError::NoHeader))
            || runtime_symbols
            || file.section_by_name(".gopclntab").is_some();
        if !is_go {
            return Err(not_go("no .go.buildinfo, .gopclntab or Go runtime symbols".into()));
        }
        let functions = FunctionTable::new(functions);
        let layout = dwarf::runtime_layout(&file);
        Ok(GoBinary { path: path.to_path_buf(), build, pie, loads, has_symtab, symbols, functions, layout })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The build info, when it could be read (Go ≥ 1.18).
    pub fn build_info(&self) -> Result<&BuildInfo, &BuildInfoError> {
        self.build.as_ref()
    }

    /// "go1.26.6", or "unknown" (say, a Go older than 1.18).
    pub fn go_version(&self) -> &str {
        self.build.as_ref().map_or("unknown", |b| b.go_version.as_str())
    }

    /// Position-independent (ET_DYN): symbol addresses need the load bias.
    pub fn is_pie(&self) -> bool {
        self.pie
    }

    /// Whether the symbol table is gone (`-ldflags=-s` or `strip`).
    pub fn is_stripped(&self) -> bool {
        !self.has_symtab
    }

    pub fn load_segments(&self) -> &[LoadSegment] {
        &self.loads
    }

    pub fn runtime_symbols(&self) -> &RuntimeSymbols {
        &self.symbols
    }

    /// `runtime.gomaxprocs`, or why it is not known.
    pub fn gomaxprocs_symbol(&self) -> Result<Symbol, GoError> {
        self.int32_symbol(self.symbols.gomaxprocs, "runtime.gomaxprocs", "GOMAXPROCS")
    }

    /// `runtime.ncpu`, or why it is not known.
    pub fn ncpu_symbol(&self) -> Result<Symbol, GoError> {
        self.int32_symbol(self.symbols.ncpu, "runtime.ncpu (or runtime.numCPUStartup)", "the runtime's CPU count")
    }

    /// `runtime.allm`, or why it is not known.
    pub fn allm_symbol(&self) -> Result<Symbol, GoError> {
        self.sized_symbol(self.symbols.allm, 8, "runtime.allm", "the list of Go threads (Ms)")
    }

    /// The offsets of the fields of `runtime.m` and `runtime.g` that
    /// pintrace reads, or what is missing (`GoError::NoDwarf` for a binary
    /// built with `-ldflags=-w` or `-s`, or stripped).
    pub fn runtime_layout(&self) -> Result<&RuntimeLayout, GoError> {
        let path = self.path.clone();
        match &self.layout {
            Ok(l) => Ok(&l.runtime),
            Err(DwarfProblem::NoDebugInfo) => Err(GoError::NoDwarf { path }),
            Err(problem) => Err(GoError::Dwarf { path, problem: problem.clone() }),
        }
    }

    /// Where the scheduler's counters are (`runtime.schedt`, `runtime.p`),
    /// or what is missing.
    pub fn sched_layout(&self) -> Result<&SchedLayout, GoError> {
        self.runtime_layout()?;
        match self.layout.as_ref().map(|l| &l.sched) {
            Ok(Ok(s)) => Ok(s),
            Ok(Err(problem)) | Err(problem) => {
                Err(GoError::SchedDwarf { path: self.path.clone(), problem: problem.clone() })
            }
        }
    }

    /// `runtime.sched`, `runtime.allp` and `runtime.allglen`, or why not known.
    pub fn sched_symbols(&self) -> Result<(Symbol, Symbol, Symbol), GoError> {
        let what = "the Go scheduler's state";
        Ok((
            self.sized_symbol(self.symbols.sched, self.sched_layout()?.schedt_size, "runtime.sched", what)?,
            self.sized_symbol(self.symbols.allp, 24, "runtime.allp", what)?,
            self.sized_symbol(self.symbols.allglen, 8, "runtime.allglen", what)?,
        ))
    }

    /// The function whose code holds `link_addr` (a link-time address, as
    /// in the symbol table; see `GoProcess::function_at` for a run-time
    /// one). None outside every function, or when the binary is stripped.
    pub fn function_at(&self, link_addr: u64) -> Option<&str> {
        self.functions.at(link_addr)
    }

    fn int32_symbol(&self, sym: Option<Symbol>, symbol: &'static str, what: &'static str) -> Result<Symbol, GoError> {
        self.sized_symbol(sym, 4, symbol, what)
    }

    fn sized_symbol(
        &self,
        sym: Option<Symbol>,
        size: u64,
        symbol: &'static str,
        what: &'static str,
    ) -> Result<Symbol, GoError> {
        let path = self.path.clone();
        match sym {
            // A variable of another size is not the one we know.
            Some(s) if s.size == size || s.size == 0 => Ok(s),
            Some(_) | None if self.has_symtab => Err(GoError::NoSymbol { path, symbol, what }),
            _ => Err(GoError::Stripped { path, symbol, what }),
        }
    }
}

/// The start of the first writable, non-executable PT_LOAD, where the linker
/// puts the blob on platforms without a `.go.buildinfo` section.
fn first_writable_data<'d, R: ReadRef<'d>>(data: R, loads: &[LoadSegment]) -> Vec<u8> {
    let Some(l) = loads.iter().find(|l| l.flags & (elf::PF_X | elf::PF_W) == elf::PF_W) else { return Vec::new() };
    let file_len = data.len().unwrap_or(0);
    let len = l.filesz.min(SEARCH_LEN as u64).min(file_len.saturating_sub(l.offset));
    data.read_bytes_at(l.offset, len).map(<[u8]>::to_vec).unwrap_or_default()
}

/// Checks, from the section headers alone, that what `object` reads whole
/// when it parses a file (the section headers, the symbol and string
/// tables) is of a size an executable can have; a hostile file's sizes
/// would otherwise decide how much is read and allocated.
fn bounded<'d, R: ReadRef<'d>>(data: R) -> Result<(), String> {
    let header = elf::FileHeader64::<Endianness>::parse(data).map_err(|e| e.to_string())?;
    let endian = header.endian().map_err(|e| e.to_string())?;
    let count = header.shnum(endian, data).map_err(|e| e.to_string())?;
    if count > MAX_SECTIONS {
        return Err(format!("{count} section headers, more than {MAX_SECTIONS}"));
    }
    let sections = header.section_headers(endian, data).map_err(|e| e.to_string())?;
    for s in sections {
        let kind = s.sh_type(endian);
        let whole = matches!(kind, elf::SHT_SYMTAB | elf::SHT_DYNSYM | elf::SHT_STRTAB | elf::SHT_SYMTAB_SHNDX);
        let size = s.sh_size(endian);
        if whole && size > MAX_TABLE {
            return Err(format!("a symbol or string table of {size} bytes, more than {MAX_TABLE}"));
        }
    }
    Ok(())
}

/// The Go version a file whose section headers do not parse still shows in
/// its build info (found through the program headers), if any: a damaged
/// Go binary, not a program in another language.
fn damaged_go_version<'d, R: ReadRef<'d>>(data: R) -> Option<String> {
    let header = elf::FileHeader64::<Endianness>::parse(data).ok()?;
    let endian = header.endian().ok()?;
    let loads: Vec<LoadSegment> = header
        .program_headers(endian, data)
        .ok()?
        .iter()
        .filter(|p| p.p_type(endian) == elf::PT_LOAD)
        .map(|p| LoadSegment {
            vaddr: p.p_vaddr(endian),
            offset: p.p_offset(endian),
            filesz: p.p_filesz(endian),
            memsz: p.p_memsz(endian),
            flags: p.p_flags(endian),
        })
        .collect();
    match buildinfo::parse(&first_writable_data(data, &loads)) {
        Ok(b) => Some(b.go_version),
        Err(BuildInfoError::NoHeader) => None,
        Err(_) => Some("unknown".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rust_binary_is_not_go() {
        let me = std::env::current_exe().expect("the test binary");
        match GoBinary::open(&me) {
            Err(GoError::NotGo { path, reason }) => {
                assert_eq!(path, me);
                assert!(reason.contains("no .go.buildinfo"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn garbage_and_missing_files() {
        let p = Path::new("garbage");
        assert!(matches!(GoBinary::parse(p, b""), Err(GoError::NotGo { .. })));
        assert!(matches!(GoBinary::parse(p, b"#!/bin/sh\necho hi\n"), Err(GoError::NotGo { .. })));
        // A valid ELF magic followed by nonsense.
        let mut elfish = b"\x7fELF\x02\x01\x01".to_vec();
        elfish.resize(200, 0xa5);
        assert!(matches!(GoBinary::parse(p, &elfish), Err(GoError::NotGo { .. })));
        assert!(matches!(GoBinary::open("/nonexistent/go"), Err(GoError::Read { .. })));
    }

    #[test]
    fn first_writable_data_is_bounded() {
        let w = LoadSegment { vaddr: 0, offset: 4, filesz: 100, memsz: 100, flags: elf::PF_R | elf::PF_W };
        let x = LoadSegment { flags: elf::PF_R | elf::PF_X, offset: 0, ..w };
        assert_eq!(first_writable_data(&[1u8; 10][..], &[x, w]), &[1; 6]);
        assert_eq!(first_writable_data(&[1u8; 3][..], &[w]), &[] as &[u8]);
        assert_eq!(first_writable_data(&[1u8; 10][..], &[x]), &[] as &[u8]);
    }
}
