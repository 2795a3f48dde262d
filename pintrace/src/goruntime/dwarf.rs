//! The layout of the runtime's `m` (an OS thread) and `g` (a goroutine)
//! structs, from a Go binary's DWARF. Their field offsets change between Go
//! releases (`m.lockedExt` is at 616 in Go 1.19, 648 in 1.26), so they are
//! read from the binary itself, never hard-coded.
//!
//! Only what is needed is parsed: `.debug_info` and `.debug_abbrev` (plus
//! `.debug_str` if present; Go writes names inline), inflated when the
//! linker compressed them, which Go does by default. The linker puts the
//! runtime's types in a unit named "runtime", so those units are searched
//! first and the search stops once both structs are found.
//!
//! Cost, paid once per `GoBinary::parse` (so once per attach), measured on
//! tests/go/pinned (release build, this 2-core machine): 3.5 ms with Go
//! 1.19 (225 KB compressed `.debug_info`, 546 KB inflated: 2.3 ms inflating,
//! 0.8 ms finding the structs), 4.6 ms with Go 1.26 (306 KB → 728 KB:
//! 2.9 + 1.2 ms). A debug build takes 20 and 27 ms. It grows with the
//! binary's DWARF: mostly the inflating, ~240 MB of output a second.
//!
//! The DWARF is the target's: its sizes and counts are not trusted. The
//! search has a budget (`Budget`: a deadline and a count of entries read)
//! and fails with `DwarfProblem::Budget` when it is spent; abbreviation
//! tables are parsed once however many units share one; a section that
//! announces more than `MAX_INFLATED` bytes, or more than zlib can
//! inflate from its compressed bytes, is refused before any allocation.
use std::{
    borrow::Cow,
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant},
};

use gimli::{
    Abbreviations, AttributeValue, DebugAbbrev, DebugAbbrevOffset, DebugInfo, DebugStr, EndianSlice, RunTimeEndian,
    UnitHeader,
};
use object::{CompressionFormat, Object as _, ObjectSection as _};

/// Byte offsets of the fields pintrace reads, and the structs' sizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct RuntimeLayout {
    /// `m.procid` (uint64): the thread ID once the M's thread has started.
    pub m_procid: u64,
    /// `m.lockedExt` (uint32): `runtime.LockOSThread` nesting.
    pub m_locked_ext: u64,
    /// `m.lockedInt` (uint32): the runtime's own `lockOSThread` nesting.
    pub m_locked_int: u64,
    /// `m.mstartfn` (func()): a pointer to a funcval, whose first word is the code.
    pub m_mstartfn: u64,
    /// `m.alllink` (*m): the next M on `runtime.allm`.
    pub m_alllink: u64,
    /// `m.lockedg` (guintptr): the goroutine locked to this M, or 0.
    pub m_lockedg: u64,
    /// `m.curg` (*g): the goroutine it runs (or that is in a syscall or
    /// cgo call on it), 0 when it runs none.
    pub m_curg: u64,
    /// `m.p` (puintptr): the P it holds, 0 when none.
    pub m_p: u64,
    /// `m.spinning` (bool): out of work and looking for some.
    pub m_spinning: u64,
    /// `m.incgo` (bool): in a cgo call.
    pub m_incgo: u64,
    /// `g.startpc` (uintptr): the function the goroutine was started with.
    pub g_startpc: u64,
    /// `g.goid` (uint64): the goroutine's ID, as panics and pprof show it.
    pub g_goid: u64,
    /// `g.atomicstatus` (uint32): _Grunning 2, _Gsyscall 3, _Gwaiting 4...
    pub g_atomicstatus: u64,
    pub m_size: u64,
    pub g_size: u64,
}

impl RuntimeLayout {
    /// The offsets within an M that hold every field read: one read of
    /// this range per M.
    pub fn m_span(&self) -> std::ops::Range<u64> {
        span(&[
            (self.m_procid, 8),
            (self.m_locked_ext, 4),
            (self.m_locked_int, 4),
            (self.m_mstartfn, 8),
            (self.m_alllink, 8),
            (self.m_lockedg, 8),
            (self.m_curg, 8),
            (self.m_p, 8),
            (self.m_spinning, 1),
            (self.m_incgo, 1),
        ])
    }

    /// The offsets within a G of the fields read: one read per goroutine.
    pub fn g_span(&self) -> std::ops::Range<u64> {
        span(&[(self.g_startpc, 8), (self.g_goid, 8), (self.g_atomicstatus, 4)])
    }
}

fn span(fields: &[(u64, u64)]) -> std::ops::Range<u64> {
    let start = fields.iter().map(|f| f.0).min().unwrap_or(0);
    let end = fields.iter().map(|f| f.0.saturating_add(f.1)).max().unwrap_or(0);
    start..end
}

/// Where the scheduler's counters are: in `runtime.sched` (a
/// `runtime.schedt`) and in each P of `runtime.allp`. What schedtrace prints.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SchedLayout {
    /// The global run queue's length (`runqsize`, or `runq.size` in Go 1.23+).
    pub sched_runq: u64,
    /// Idle Ms (`nmidle`, int32), spinning Ms and idle Ps (`nmspinning`,
    /// `npidle`: uint32, or atomic.Int32 since Go 1.21), system goroutines
    /// (`ngsys`).
    pub sched_nmidle: u64,
    pub sched_nmspinning: u64,
    pub sched_npidle: u64,
    pub sched_ngsys: u64,
    /// Free goroutines on the global lists, to be summed (`gFree.n`; since
    /// Go 1.23 `gFree.stack.size` and `gFree.noStack.size`).
    pub sched_gfree: Vec<u64>,
    /// A P's status (uint32), its local run queue (`runqhead`, `runqtail`),
    /// `runnext` (guintptr), its free goroutines (`gFree.n` or `gFree.size`)
    /// and `schedtick`.
    pub p_status: u64,
    pub p_runqhead: u64,
    pub p_runqtail: u64,
    pub p_runnext: u64,
    pub p_gfree: u64,
    pub p_schedtick: u64,
    pub schedt_size: u64,
    pub p_size: u64,
}

impl SchedLayout {
    /// The offsets within `runtime.sched` of every field read.
    pub fn sched_span(&self) -> std::ops::Range<u64> {
        let mut f = vec![
            (self.sched_runq, 4),
            (self.sched_nmidle, 4),
            (self.sched_nmspinning, 4),
            (self.sched_npidle, 4),
            (self.sched_ngsys, 4),
        ];
        f.extend(self.sched_gfree.iter().map(|&o| (o, 4)));
        span(&f)
    }

    /// The offsets within a P of every field read.
    pub fn p_span(&self) -> std::ops::Range<u64> {
        span(&[
            (self.p_status, 4),
            (self.p_runqhead, 4),
            (self.p_runqtail, 4),
            (self.p_runnext, 8),
            (self.p_gfree, 4),
            (self.p_schedtick, 4),
        ])
    }
}

/// Why the layout is unknown.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DwarfProblem {
    /// No DWARF at all: `-ldflags=-w` (or `-s`), or `strip`.
    #[error("no .debug_info section")]
    NoDebugInfo,
    #[error("cannot inflate {section}: {reason}")]
    Inflate { section: &'static str, reason: String },
    #[error("{section} is compressed as {format}, which pintrace does not read")]
    Compression { section: &'static str, format: String },
    #[error("reading {section}: {reason}")]
    Section { section: &'static str, reason: String },
    #[error("its DWARF does not parse: {0}")]
    Parse(gimli::Error),
    #[error("its DWARF has no struct type {0}")]
    NoType(&'static str),
    #[error("its DWARF type {ty} has no member {member}")]
    NoMember { ty: &'static str, member: &'static str },
    #[error("member {ty}.{member} has no constant offset")]
    MemberOffset { ty: &'static str, member: &'static str },
    #[error("member {ty}.{member} is {size} bytes, not {expected}")]
    MemberSize { ty: &'static str, member: &'static str, size: u64, expected: u64 },
    /// The fields read span more than any runtime's struct does: the
    /// DWARF is not the runtime's (and would make pintrace read that much).
    #[error("the fields of {ty} pintrace reads span {span} bytes, more than {MAX_SPAN}: not the Go runtime's layout")]
    Span { ty: &'static str, span: u64 },
    /// The search read more than a Go binary's DWARF needs, or took too long.
    #[error("gave up the DWARF search after {what} (no Go binary's runtime types take that)")]
    Budget { what: String },
}

/// How much of a target's DWARF the search may read: the runtime's types
/// are in the first units of a Go binary (the unit named "runtime"), so a
/// search that needs more is not reading a Go binary's DWARF.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    deadline: Instant,
    /// Entries (DIEs) still to be read.
    entries: u64,
    /// Units still to be looked at.
    units: u64,
}

/// The time the search (inflating included) may take: a large Go service
/// (100 MB of DWARF) takes about half a second on this machine.
pub const DWARF_TIME: Duration = Duration::from_secs(4);
/// Entries read: a Go 1.26 binary of 60 MB has about 3 million.
pub const MAX_ENTRIES: u64 = 20_000_000;
/// Units looked at, both passes together (one per package: services have
/// a few thousand).
pub const MAX_UNITS: u64 = 1_000_000;
/// The most bytes a section may inflate to.
pub const MAX_INFLATED: u64 = 512 << 20;

impl Budget {
    pub fn new() -> Budget {
        Budget::with(DWARF_TIME, MAX_ENTRIES, MAX_UNITS)
    }

    pub fn with(time: Duration, entries: u64, units: u64) -> Budget {
        Budget { deadline: Instant::now() + time, entries, units }
    }

    fn unit(&mut self) -> Result<(), DwarfProblem> {
        if self.units == 0 {
            return Err(DwarfProblem::Budget { what: "too many units".into() });
        }
        self.units -= 1;
        self.clock()
    }

    fn entry(&mut self) -> Result<(), DwarfProblem> {
        if self.entries == 0 {
            return Err(DwarfProblem::Budget { what: "too many entries".into() });
        }
        self.entries -= 1;
        if self.entries.is_multiple_of(4096) {
            self.clock()?;
        }
        Ok(())
    }

    fn clock(&self) -> Result<(), DwarfProblem> {
        if Instant::now() > self.deadline {
            return Err(DwarfProblem::Budget { what: format!("{} s", DWARF_TIME.as_secs()) });
        }
        Ok(())
    }
}

impl Default for Budget {
    fn default() -> Self {
        Budget::new()
    }
}

impl From<gimli::Error> for DwarfProblem {
    fn from(e: gimli::Error) -> Self {
        DwarfProblem::Parse(e)
    }
}

/// The members read, with their expected sizes (a 64-bit Go).
const M_MEMBERS: [(&str, u64); 10] = [
    ("procid", 8),
    ("lockedExt", 4),
    ("lockedInt", 4),
    ("mstartfn", 8),
    ("alllink", 8),
    ("lockedg", 8),
    ("curg", 8),
    ("p", 8),
    ("spinning", 1),
    ("incgo", 1),
];
const G_MEMBERS: [(&str, u64); 3] = [("startpc", 8), ("goid", 8), ("atomicstatus", 4)];

/// What the DWARF says: the M and G layouts (needed for the M list), and
/// the scheduler's (needed for the run queues; its own problem if missing).
#[derive(Debug, Clone, PartialEq)]
pub struct Layouts {
    pub runtime: RuntimeLayout,
    pub sched: Result<SchedLayout, DwarfProblem>,
}

/// The layouts, from the DWARF of an ELF file.
pub fn runtime_layout<'d, R: object::ReadRef<'d>>(file: &object::File<'d, R>) -> Result<Layouts, DwarfProblem> {
    let mut budget = Budget::new();
    let info = section(file, ".debug_info", &budget)?.ok_or(DwarfProblem::NoDebugInfo)?;
    let abbrev = section(file, ".debug_abbrev", &budget)?.unwrap_or_default();
    let strings = section(file, ".debug_str", &budget)?.unwrap_or_default();
    let endian = if file.is_little_endian() { RunTimeEndian::Little } else { RunTimeEndian::Big };
    layouts_within(&info, &abbrev, &strings, endian, &mut budget)
}

/// A section's bytes, inflated if compressed; None if absent. Go 1.19+
/// compresses `.debug_*` sections the ELF way (SHF_COMPRESSED); Go 1.18
/// and older wrote them as GNU `.zdebug_*` sections ("ZLIB", the size as 8
/// bytes big-endian, a zlib stream), which `object` reads the same way.
fn section<'d, R: object::ReadRef<'d>>(
    file: &object::File<'d, R>,
    name: &'static str,
    budget: &Budget,
) -> Result<Option<Cow<'d, [u8]>>, DwarfProblem> {
    let gnu = name.strip_prefix(".debug_").map(|rest| format!(".zdebug_{rest}"));
    let found = file
        .section_by_name(name)
        .or_else(|| gnu.as_deref().and_then(|z| file.sections().find(|s| s.name().is_ok_and(|n| n == z))));
    let Some(s) = found else { return Ok(None) };
    // The bytes in the file are read whole: bound them before reading.
    if let Some((_, size)) = s.compressed_file_range().ok().map(|r| (r.offset, r.compressed_size)) {
        if size > MAX_INFLATED {
            let reason = format!("is {size} bytes in the file, more than {MAX_INFLATED}");
            return Err(DwarfProblem::Section { section: name, reason });
        }
    }
    let c = s.compressed_data().map_err(|e| DwarfProblem::Section { section: name, reason: e.to_string() })?;
    match c.format {
        CompressionFormat::None => Ok(Some(Cow::Borrowed(c.data))),
        CompressionFormat::Zlib => inflate(name, c.data, c.uncompressed_size, budget).map(|d| Some(Cow::Owned(d))),
        other => Err(DwarfProblem::Compression { section: name, format: format!("{other:?}") }),
    }
}

/// zlib's best ratio: a deflate block of 258-byte matches makes at most
/// 1032 bytes of output per byte of input.
const MAX_RATIO: u64 = 1032;

/// Inflates a zlib stream that announces `size` bytes, in slices, within
/// the budget's time. A size above `MAX_INFLATED`, or above what the
/// compressed bytes can hold, is refused before anything is allocated.
fn inflate(section: &'static str, data: &[u8], size: u64, budget: &Budget) -> Result<Vec<u8>, DwarfProblem> {
    use miniz_oxide::{inflate::stream::InflateState, DataFormat, MZFlush, MZStatus};
    let refuse = |reason: String| Err(DwarfProblem::Section { section, reason });
    if size > MAX_INFLATED {
        return refuse(format!("announces {size} bytes inflated, more than {MAX_INFLATED}"));
    }
    if size > (data.len() as u64).saturating_mul(MAX_RATIO).saturating_add(64) {
        return refuse(format!("announces {size} bytes inflated from {} compressed: more than zlib can", data.len()));
    }
    let size = size as usize; // ≤ MAX_INFLATED
    let mut out = vec![0u8; size];
    let mut state = InflateState::new_boxed(DataFormat::Zlib);
    let (mut read, mut written) = (0, 0);
    const SLICE: usize = 4 << 20;
    loop {
        let end = (written + SLICE).min(size);
        let r = miniz_oxide::inflate::stream::inflate(&mut state, &data[read..], &mut out[written..end], MZFlush::None);
        read += r.bytes_consumed;
        written += r.bytes_written;
        match r.status {
            Ok(MZStatus::StreamEnd) => break,
            Ok(_) if written == size => {
                let reason = format!("inflates to more than the {size} bytes announced");
                return Err(DwarfProblem::Inflate { section, reason });
            }
            Ok(_) if r.bytes_consumed == 0 && r.bytes_written == 0 => {
                let reason = "the stream ends early".to_string();
                return Err(DwarfProblem::Inflate { section, reason });
            }
            Ok(_) => {}
            Err(e) => return Err(DwarfProblem::Inflate { section, reason: format!("{e:?}") }),
        }
        budget.clock()?;
    }
    if written != size {
        let reason = format!("inflates to {written} bytes, not the {size} announced");
        return Err(DwarfProblem::Inflate { section, reason });
    }
    Ok(out)
}

type Slice<'a> = EndianSlice<'a, RunTimeEndian>;

struct Sections<'a> {
    abbrev: DebugAbbrev<Slice<'a>>,
    strings: DebugStr<Slice<'a>>,
    /// Abbreviation tables by offset: a table is parsed once, however many
    /// units use it (all of a Go binary's do).
    abbrevs: std::cell::RefCell<HashMap<u64, Arc<Abbreviations>>>,
}

/// Abbreviation tables kept: more distinct ones than a Go binary has units.
const MAX_ABBREV_TABLES: usize = 1024;

/// Finds `runtime.m` and `runtime.g` in the (uncompressed) sections.
pub fn layout_from_sections(
    info: &[u8],
    abbrev: &[u8],
    strings: &[u8],
    endian: RunTimeEndian,
) -> Result<RuntimeLayout, DwarfProblem> {
    layouts_from_sections(info, abbrev, strings, endian).map(|l| l.runtime)
}

/// Finds `runtime.m`, `runtime.g`, `runtime.schedt` and `runtime.p`.
pub fn layouts_from_sections(
    info: &[u8],
    abbrev: &[u8],
    strings: &[u8],
    endian: RunTimeEndian,
) -> Result<Layouts, DwarfProblem> {
    layouts_within(info, abbrev, strings, endian, &mut Budget::new())
}

/// As `layouts_from_sections`, within `budget`.
pub fn layouts_within(
    info: &[u8],
    abbrev: &[u8],
    strings: &[u8],
    endian: RunTimeEndian,
    budget: &mut Budget,
) -> Result<Layouts, DwarfProblem> {
    let sections = Sections {
        abbrev: DebugAbbrev::new(abbrev, endian),
        strings: DebugStr::new(strings, endian),
        abbrevs: Default::default(),
    };
    // The units named "runtime" first, where Go's linker puts the types;
    // all units if the structs are not there. The unit headers are read
    // again for the second pass rather than kept (there can be millions).
    let mut types = Types::default();
    for runtime_units in [true, false] {
        let mut units = DebugInfo::new(info, endian).units();
        while let Some(h) = units.next()? {
            budget.unit()?;
            sections.collect(&h, runtime_units, &mut types, budget)?;
            if runtime_units && types.has_runtime() {
                // Go's linker writes one "runtime" unit; the scheduler's
                // types are beside m and g.
                break;
            }
        }
        if types.has_runtime() {
            break;
        }
    }
    let [procid, locked_ext, locked_int, mstartfn, alllink, lockedg, curg, p, spinning, incgo] =
        M_MEMBERS.map(|(n, s)| types.field("runtime.m", n, s));
    let [startpc, goid, atomicstatus] = G_MEMBERS.map(|(n, s)| types.field("runtime.g", n, s));
    let runtime = RuntimeLayout {
        m_procid: procid?,
        m_locked_ext: locked_ext?,
        m_locked_int: locked_int?,
        m_mstartfn: mstartfn?,
        m_alllink: alllink?,
        m_lockedg: lockedg?,
        m_curg: curg?,
        m_p: p?,
        m_spinning: spinning?,
        m_incgo: incgo?,
        g_startpc: startpc?,
        g_goid: goid?,
        g_atomicstatus: atomicstatus?,
        m_size: types.size("runtime.m")?,
        g_size: types.size("runtime.g")?,
    };
    check_span("runtime.m", runtime.m_span())?;
    check_span("runtime.g", runtime.g_span())?;
    let sched = sched_layout(&types).and_then(|s| {
        check_span("runtime.schedt", s.sched_span())?;
        check_span("runtime.p", s.p_span())?;
        Ok(s)
    });
    Ok(Layouts { runtime, sched })
}

/// The most bytes of one struct pintrace reads at once: the runtime's
/// spans are at most a few kilobytes (`runtime.p`'s, the largest, 4.5 KB
/// in Go 1.26). Offsets come from the target's DWARF: this bounds the
/// buffers and reads they size.
pub const MAX_SPAN: u64 = 64 << 10;

fn check_span(ty: &'static str, span: std::ops::Range<u64>) -> Result<(), DwarfProblem> {
    let len = span.end.saturating_sub(span.start);
    if len > MAX_SPAN {
        return Err(DwarfProblem::Span { ty, span: len });
    }
    Ok(())
}

fn sched_layout(types: &Types) -> Result<SchedLayout, DwarfProblem> {
    const S: &str = "runtime.schedt";
    const P: &str = "runtime.p";
    let sched_gfree = match types.field(S, "gFree.n", 4) {
        Ok(o) => vec![o],
        Err(_) => vec![types.field(S, "gFree.stack.size", 4)?, types.field(S, "gFree.noStack.size", 4)?],
    };
    Ok(SchedLayout {
        sched_runq: types.field(S, "runqsize", 4).or_else(|_| types.field(S, "runq.size", 4))?,
        sched_nmidle: types.field(S, "nmidle", 4)?,
        sched_nmspinning: types.field(S, "nmspinning", 4)?,
        sched_npidle: types.field(S, "npidle", 4)?,
        sched_ngsys: types.field(S, "ngsys", 4)?,
        sched_gfree,
        p_status: types.field(P, "status", 4)?,
        p_runqhead: types.field(P, "runqhead", 4)?,
        p_runqtail: types.field(P, "runqtail", 4)?,
        p_runnext: types.field(P, "runnext", 8)?,
        p_gfree: types.field(P, "gFree.n", 4).or_else(|_| types.field(P, "gFree.size", 4))?,
        p_schedtick: types.field(P, "schedtick", 4)?,
        schedt_size: types.size(S)?,
        p_size: types.size(P)?,
    })
}

struct Member {
    name: Vec<u8>,
    offset: Option<u64>,
    size: Option<u64>,
    /// The member's type DIE (its offset in .debug_info), to descend into.
    ty: Option<u64>,
}

struct Struct {
    size: u64,
    members: Vec<Member>,
}

/// The struct types found, by .debug_info offset, and the named ones by name.
#[derive(Default)]
struct Types {
    structs: HashMap<u64, Struct>,
    named: HashMap<Vec<u8>, u64>,
    /// Typedefs (Go names its types this way: `runtime.gList` is a typedef
    /// of the struct), by .debug_info offset, to the type they name.
    typedefs: HashMap<u64, u64>,
}

/// A struct found in DWARF is at most this deep in members pintrace follows.
const MAX_PATH: usize = 4;

impl Types {
    fn has_runtime(&self) -> bool {
        self.named.contains_key(&b"runtime.m"[..]) && self.named.contains_key(&b"runtime.g"[..])
    }

    fn get(&self, ty: &'static str) -> Result<&Struct, DwarfProblem> {
        let at = self.named.get(ty.as_bytes()).ok_or(DwarfProblem::NoType(ty))?;
        self.structs.get(at).ok_or(DwarfProblem::NoType(ty))
    }

    /// The struct at `at`, through typedefs.
    fn struct_at(&self, mut at: u64) -> Option<&Struct> {
        for _ in 0..MAX_PATH {
            if let Some(s) = self.structs.get(&at) {
                return Some(s);
            }
            at = *self.typedefs.get(&at)?;
        }
        None
    }

    fn size(&self, ty: &'static str) -> Result<u64, DwarfProblem> {
        self.get(ty).map(|s| s.size)
    }

    /// The offset of `path` ("gFree.stack.size": members of nested structs)
    /// in struct `ty`, whose last member must be `expected` bytes.
    fn field(&self, ty: &'static str, path: &'static str, expected: u64) -> Result<u64, DwarfProblem> {
        let mut s = self.get(ty)?;
        let mut base = 0u64;
        let parts: Vec<&str> = path.split('.').take(MAX_PATH).collect();
        for (i, part) in parts.iter().enumerate() {
            let m = s
                .members
                .iter()
                .find(|m| m.name == part.as_bytes())
                .ok_or(DwarfProblem::NoMember { ty, member: path })?;
            let offset = m.offset.ok_or(DwarfProblem::MemberOffset { ty, member: path })?;
            base = base.checked_add(offset).ok_or(DwarfProblem::MemberOffset { ty, member: path })?;
            if i + 1 == parts.len() {
                return match m.size {
                    // A size that cannot be resolved is not held against the member.
                    Some(size) if size != expected => {
                        Err(DwarfProblem::MemberSize { ty, member: path, size, expected })
                    }
                    _ => Ok(base),
                };
            }
            s = m.ty.and_then(|t| self.struct_at(t)).ok_or(DwarfProblem::NoMember { ty, member: path })?;
        }
        Err(DwarfProblem::NoMember { ty, member: path })
    }
}

impl<'a> Sections<'a> {
    /// The struct types among the top-level DIEs of unit `h`, if it is (or,
    /// with `runtime_units` false, is not) a unit named "runtime".
    fn collect(
        &self,
        h: &UnitHeader<Slice<'a>>,
        runtime_units: bool,
        types: &mut Types,
        budget: &mut Budget,
    ) -> Result<(), DwarfProblem> {
        let abbrevs = self.abbreviations(h.debug_abbrev_offset())?;
        let abbrevs = &*abbrevs;
        let mut tree = h.entries_tree(abbrevs, None)?;
        let root = tree.root()?;
        if (self.name(root.entry()) == Some(b"runtime")) != runtime_units {
            return Ok(());
        }
        let global = |o: gimli::UnitOffset| o.to_debug_info_offset(h).map(|d| d.0 as u64);
        let mut children = root.children();
        while let Some(child) = children.next()? {
            budget.entry()?;
            let e = child.entry();
            if e.tag() == gimli::DW_TAG_typedef {
                let target = match e.attr_value(gimli::DW_AT_type) {
                    Some(AttributeValue::UnitRef(o)) => global(o),
                    Some(AttributeValue::DebugInfoRef(o)) => Some(o.0 as u64),
                    _ => None,
                };
                if let (Some(at), Some(target)) = (global(e.offset()), target) {
                    types.typedefs.insert(at, target);
                }
                continue;
            }
            if e.tag() != gimli::DW_TAG_structure_type {
                continue;
            }
            let Some(at) = global(e.offset()) else { continue };
            let name = self.name(e);
            if name.is_some_and(|n| types.named.contains_key(n)) {
                continue;
            }
            let size = e.attr_value(gimli::DW_AT_byte_size).and_then(|v| v.udata_value()).unwrap_or(0);
            let mut members = Vec::new();
            let mut fields = child.children();
            while let Some(f) = fields.next()? {
                budget.entry()?;
                let f = f.entry();
                if f.tag() != gimli::DW_TAG_member {
                    continue;
                }
                let Some(name) = self.name(f) else { continue };
                let offset = f.attr_value(gimli::DW_AT_data_member_location).and_then(|v| v.udata_value());
                let ty_attr = f.attr_value(gimli::DW_AT_type);
                let ty = match ty_attr {
                    Some(AttributeValue::UnitRef(o)) => global(o),
                    Some(AttributeValue::DebugInfoRef(o)) => Some(o.0 as u64),
                    _ => None,
                };
                let size = ty_attr.and_then(|t| self.type_size(h, abbrevs, t));
                members.push(Member { name: name.to_vec(), offset, size, ty });
            }
            if let Some(n) = name {
                types.named.insert(n.to_vec(), at);
            }
            types.structs.insert(at, Struct { size, members });
        }
        Ok(())
    }

    /// The abbreviation table at `offset`, parsed once.
    fn abbreviations(&self, offset: DebugAbbrevOffset) -> Result<Arc<Abbreviations>, DwarfProblem> {
        if let Some(a) = self.abbrevs.borrow().get(&(offset.0 as u64)) {
            return Ok(a.clone());
        }
        let a = Arc::new(self.abbrev.abbreviations(offset)?);
        let mut cache = self.abbrevs.borrow_mut();
        if cache.len() < MAX_ABBREV_TABLES {
            cache.insert(offset.0 as u64, a.clone());
        }
        Ok(a)
    }

    /// A DIE's name: Go writes it inline (DW_FORM_string).
    fn name(&self, e: &gimli::DebuggingInformationEntry<Slice<'a>>) -> Option<&'a [u8]> {
        match e.attr_value(gimli::DW_AT_name)? {
            AttributeValue::String(s) => Some(s.slice()),
            AttributeValue::DebugStrRef(o) => self.strings.get_str(o).ok().map(|s| s.slice()),
            _ => None,
        }
    }

    /// The byte size of a type: its DW_AT_byte_size, the address size for a
    /// pointer (Go gives `*runtime.m` none), through typedefs (Go's
    /// `func()` is a typedef of a subroutine type of size 8).
    fn type_size(
        &self,
        h: &UnitHeader<Slice<'a>>,
        abbrevs: &gimli::Abbreviations,
        mut ty: AttributeValue<Slice<'a>>,
    ) -> Option<u64> {
        for _ in 0..8 {
            let offset = match ty {
                AttributeValue::UnitRef(o) => o,
                AttributeValue::DebugInfoRef(o) => o.to_unit_offset(h)?,
                _ => return None,
            };
            let mut cursor = h.entries_at_offset(abbrevs, offset).ok()?;
            let e = cursor.next_dfs().ok()??;
            if let Some(size) = e.attr_value(gimli::DW_AT_byte_size).and_then(|v| v.udata_value()) {
                return Some(size);
            }
            match e.tag() {
                gimli::DW_TAG_pointer_type | gimli::DW_TAG_reference_type => return Some(h.address_size().into()),
                gimli::DW_TAG_typedef | gimli::DW_TAG_const_type | gimli::DW_TAG_volatile_type => {
                    ty = e.attr_value(gimli::DW_AT_type)?;
                }
                _ => return None,
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A hand-made DWARF 4 unit: abbreviations and DIEs.
    struct Unit {
        dies: Vec<u8>,
    }

    const CU: u8 = 1; // compile_unit: name
    const STRUCT: u8 = 2; // structure_type: name, byte_size (data2)
    const MEMBER: u8 = 3; // member: name, data_member_location (udata), type (ref4)
    const BASE: u8 = 4; // base_type: name, byte_size (data1)
    const PTR: u8 = 5; // pointer_type: name, type (ref4); no byte_size, as Go writes it
    const TYPEDEF: u8 = 6; // typedef: name, type (ref4)
    const HEADER: usize = 11; // unit_length 4, version 2, abbrev offset 4, address size 1

    fn abbrevs() -> Vec<u8> {
        vec![
            CU, 0x11, 1, 0x03, 0x08, 0, 0, // DW_TAG_compile_unit, children, DW_AT_name string
            STRUCT, 0x13, 1, 0x03, 0x08, 0x0b, 0x05, 0, 0, // structure_type, name, byte_size data2
            MEMBER, 0x0d, 0, 0x03, 0x08, 0x38, 0x0f, 0x49, 0x13, 0, 0, // member, name, location udata, type ref4
            BASE, 0x24, 0, 0x03, 0x08, 0x0b, 0x0b, 0, 0, // base_type, name, byte_size data1
            PTR, 0x0f, 0, 0x03, 0x08, 0x49, 0x13, 0, 0, // pointer_type, name, type ref4
            TYPEDEF, 0x16, 0, 0x03, 0x08, 0x49, 0x13, 0, 0, // typedef, name, type ref4
            0,
        ]
    }

    fn cstr(v: &mut Vec<u8>, s: &str) {
        v.extend_from_slice(s.as_bytes());
        v.push(0);
    }

    use crate::goruntime::fuzzing::{uleb, GO119};

    impl Unit {
        fn new(name: &'static str) -> Unit {
            let mut dies = vec![CU];
            cstr(&mut dies, name);
            Unit { dies }
        }

        /// Unit offset of the next DIE.
        fn here(&self) -> u32 {
            (HEADER + self.dies.len()) as u32
        }

        fn base(&mut self, name: &str, size: u8) -> u32 {
            let at = self.here();
            self.dies.push(BASE);
            cstr(&mut self.dies, name);
            self.dies.push(size);
            at
        }

        fn refers(&mut self, tag: u8, name: &str, to: u32) -> u32 {
            let at = self.here();
            self.dies.push(tag);
            cstr(&mut self.dies, name);
            self.dies.extend_from_slice(&to.to_le_bytes());
            at
        }

        fn structure(&mut self, name: &str, size: u16, members: &[(&str, u64, u32)]) {
            self.dies.push(STRUCT);
            cstr(&mut self.dies, name);
            self.dies.extend_from_slice(&size.to_le_bytes());
            for &(member, offset, ty) in members {
                self.dies.push(MEMBER);
                cstr(&mut self.dies, member);
                uleb(&mut self.dies, offset);
                self.dies.extend_from_slice(&ty.to_le_bytes());
            }
            self.dies.push(0);
        }

        fn bytes(mut self) -> Vec<u8> {
            self.dies.push(0); // end of the unit's children
            let mut v = ((self.dies.len() + HEADER - 4) as u32).to_le_bytes().to_vec();
            v.extend_from_slice(&4u16.to_le_bytes());
            v.extend_from_slice(&0u32.to_le_bytes());
            v.push(8);
            v.extend_from_slice(&self.dies);
            v
        }
    }

    /// Go 1.19's offsets, in a "runtime" unit that follows a "main" unit.
    fn go119_like(skip: &str, lockedext_size: u8) -> Vec<u8> {
        let mut main = Unit::new("main");
        let u8t = main.base("uint8", 1);
        main.structure("main.T", 1, &[("x", 0, u8t)]);
        let mut rt = Unit::new("runtime");
        let u64t = rt.base("uint64", 8);
        let u32t = rt.base("uint32", 4);
        let ext = rt.base("uint32ish", lockedext_size);
        let uptr = rt.base("uintptr", 8);
        let big = rt.base("runtime.mlike", 255);
        let ptr = rt.refers(PTR, "*runtime.m", big);
        let sub = rt.base("func()", 8); // Go: a subroutine type with byte_size 8
        let func = rt.refers(TYPEDEF, "func()", sub);
        let guintptr = rt.refers(TYPEDEF, "runtime.guintptr", uptr);
        let boolt = rt.base("bool", 1);
        let m = [
            ("g0", 0, uptr),
            ("procid", 72, u64t),
            ("mstartfn", 184, func),
            ("curg", 192, uptr),
            ("p", 208, uptr),
            ("spinning", 276, boolt),
            ("incgo", 280, boolt),
            ("alllink", 336, ptr),
            ("lockedg", 352, guintptr),
            ("lockedExt", 616, ext),
            ("lockedInt", 620, u32t),
        ];
        let m: Vec<_> = m.into_iter().filter(|f| f.0 != skip).collect();
        rt.structure("runtime.m", 1008, &m);
        rt.structure(
            "runtime.g",
            392,
            &[("stack", 0, uptr), ("atomicstatus", 144, u32t), ("goid", 152, u64t), ("startpc", 312, uptr)],
        );
        let mut info = main.bytes();
        info.extend(rt.bytes());
        info
    }

    fn parse(info: &[u8]) -> Result<RuntimeLayout, DwarfProblem> {
        layout_from_sections(info, &abbrevs(), &[], RunTimeEndian::Little)
    }

    #[test]
    fn finds_the_offsets() {
        let l = parse(&go119_like("", 4)).expect("layout");
        assert_eq!(l, GO119);
        assert_eq!(l.m_span(), 72..624);
        assert_eq!(l.g_span(), 144..320);
    }

    /// Offsets no runtime has (a hostile binary's DWARF) are refused, not
    /// used to size a read.
    #[test]
    fn implausible_spans_are_refused() {
        let mut rt = Unit::new("runtime");
        let u64t = rt.base("uint64", 8);
        let u32t = rt.base("uint32", 4);
        let boolt = rt.base("bool", 1);
        let m: Vec<(&str, u64, u32)> = vec![
            ("procid", 72, u64t),
            ("mstartfn", 184, u64t),
            ("curg", 192, u64t),
            ("p", 208, u64t),
            ("spinning", 276, boolt),
            ("incgo", 280, boolt),
            ("alllink", 336, u64t),
            ("lockedg", 352, u64t),
            ("lockedExt", 1 << 40, u32t),
            ("lockedInt", 620, u32t),
        ];
        rt.structure("runtime.m", 1008, &m);
        rt.structure("runtime.g", 392, &[("atomicstatus", 144, u32t), ("goid", 152, u64t), ("startpc", 312, u64t)]);
        assert!(matches!(parse(&rt.bytes()), Err(DwarfProblem::Span { ty: "runtime.m", .. })));
    }

    #[test]
    fn says_what_is_missing() {
        assert_eq!(
            parse(&go119_like("lockedExt", 4)),
            Err(DwarfProblem::NoMember { ty: "runtime.m", member: "lockedExt" })
        );
        assert_eq!(
            parse(&go119_like("", 8)),
            Err(DwarfProblem::MemberSize { ty: "runtime.m", member: "lockedExt", size: 8, expected: 4 })
        );
        let mut only_main = Unit::new("main");
        only_main.base("int", 8);
        assert_eq!(parse(&only_main.bytes()), Err(DwarfProblem::NoType("runtime.m")));
        assert_eq!(
            DwarfProblem::NoMember { ty: "runtime.m", member: "lockedExt" }.to_string(),
            "its DWARF type runtime.m has no member lockedExt"
        );
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let info = go119_like("", 4);
        for cut in 0..info.len() {
            let _ = parse(&info[..cut]);
        }
        let mut bad = info.clone();
        for i in 0..bad.len() {
            bad[i] ^= 0x5a;
            let _ = parse(&bad);
            bad[i] ^= 0x5a;
        }
        assert!(matches!(parse(b"\xff\xff\xff\xff"), Err(DwarfProblem::Parse(_))));
        assert!(matches!(parse(&[]), Err(DwarfProblem::NoType("runtime.m"))));
    }

    /// The target writes the DWARF: many units over one huge abbreviation
    /// table cost one parse of the table (it is cached), not one per unit.
    #[test]
    fn a_huge_shared_abbreviation_table_is_parsed_once() {
        const ENTRIES: u64 = 200_000;
        let mut table = abbrevs();
        table.pop(); // the table's end
        for code in 7..7 + ENTRIES {
            uleb(&mut table, code);
            table.extend_from_slice(&[0x24, 0, 0x03, 0x08, 0, 0]); // base_type, name string
        }
        table.push(0);
        let mut info = Vec::new();
        for _ in 0..ENTRIES {
            info.extend(Unit::new("x").bytes());
        }
        info.extend(go119_like("", 4));
        let started = Instant::now();
        let l = layouts_from_sections(&info, &table, &[], RunTimeEndian::Little).expect("the runtime's layout");
        assert_eq!(l.runtime.m_locked_ext, 616);
        // Not a timing assertion on the machine's speed: uncached, this is
        // 200,000 parses of a 200,000-entry table (hours), not seconds.
        assert!(started.elapsed() < DWARF_TIME, "{:?}", started.elapsed());
    }

    #[test]
    fn the_search_has_a_budget() {
        let mut info = Vec::new();
        for _ in 0..1000 {
            info.extend(Unit::new("x").bytes());
        }
        info.extend(go119_like("", 4));
        let mut few_units = Budget::with(Duration::from_secs(60), MAX_ENTRIES, 100);
        let r = layouts_within(&info, &abbrevs(), &[], RunTimeEndian::Little, &mut few_units);
        assert!(matches!(r, Err(DwarfProblem::Budget { .. })), "{r:?}");
        let mut few_entries = Budget::with(Duration::from_secs(60), 5, MAX_UNITS);
        let r = layouts_within(&go119_like("", 4), &abbrevs(), &[], RunTimeEndian::Little, &mut few_entries);
        assert!(matches!(r, Err(DwarfProblem::Budget { .. })), "{r:?}");
        let mut no_time = Budget::with(Duration::ZERO, MAX_ENTRIES, MAX_UNITS);
        std::thread::sleep(Duration::from_millis(2));
        let r = layouts_within(&info, &abbrevs(), &[], RunTimeEndian::Little, &mut no_time);
        assert!(matches!(r, Err(DwarfProblem::Budget { .. })), "{r:?}");
        assert!(r.expect_err("budget").to_string().contains("gave up the DWARF search"));
        // Within the default budget it is found.
        assert!(layouts_from_sections(&info, &abbrevs(), &[], RunTimeEndian::Little).is_ok());
    }

    /// Sizes announced by the target are checked before any allocation.
    #[test]
    fn inflating_is_bounded_by_what_zlib_can_do() {
        let data = miniz_oxide::deflate::compress_to_vec_zlib(&[7u8; 100_000], 6);
        let b = Budget::new();
        assert_eq!(inflate("s", &data, 100_000, &b).expect("inflates"), vec![7u8; 100_000]);
        // More than the stream holds, and more than it could.
        assert!(matches!(inflate("s", &data, 100_001, &b), Err(DwarfProblem::Inflate { .. })));
        assert!(matches!(inflate("s", &data, 99_999, &b), Err(DwarfProblem::Inflate { .. })));
        let tiny = &data[..20];
        let r = inflate("s", tiny, 400 << 20, &b);
        assert!(
            matches!(&r, Err(DwarfProblem::Section { reason, .. }) if reason.contains("more than zlib can")),
            "{r:?}"
        );
        let r = inflate("s", &data, MAX_INFLATED + 1, &b);
        assert!(matches!(&r, Err(DwarfProblem::Section { reason, .. }) if reason.contains("more than")), "{r:?}");
        assert!(matches!(inflate("s", &[1, 2, 3], 3, &b), Err(DwarfProblem::Inflate { .. })));
    }
}
