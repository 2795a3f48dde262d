//! Reading a Go program from outside: its build info from the executable
//! (`binary`), runtime variables such as GOMAXPROCS from its memory
//! (`process`), and its threads (Ms), which are pinned and what each is
//! for (`mlist`), using the layout of the runtime's structs from DWARF
//! (`dwarf`) and function names from the symbol table (`functions`).
//!
//! The parsers (`buildinfo`, `dwarf`, `functions`, the maps and load-bias
//! functions of `process`, the M bytes and roles of `mlist`) are pure;
//! reading files and /proc is a thin layer on top.
use std::{io, path::PathBuf};

pub mod binary;
pub mod buildinfo;
pub mod dwarf;
pub mod functions;
#[doc(hidden)]
pub mod fuzzing;
pub mod mlist;
pub mod process;
pub mod sched;

pub use binary::GoBinary;
pub use buildinfo::{BuildInfo, BuildInfoError, BuildSetting, Module};
pub use dwarf::{DwarfProblem, RuntimeLayout};
pub use mlist::{GoRole, GoState, GoThread, Goroutine, WalkError};
pub use process::GoProcess;
pub use sched::{PState, SchedError, SchedState};

/// What a recording keeps of a Go target (the `go` object of the JSON).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct GoInfo {
    /// "go1.19.8"; "unknown" when the build info is unreadable.
    pub version: String,
    /// The main module's path.
    pub module: Option<String>,
    /// GOMAXPROCS when tracing started (None: unreadable, e.g. a stripped binary).
    pub gomaxprocs: Option<u32>,
    pub cgo_enabled: Option<bool>,
    pub build_mode: Option<String>,
    pub default_godebug: Option<String>,
    /// Why GOMAXPROCS cannot be read, if it cannot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gomaxprocs_problem: Option<String>,
}

impl GoInfo {
    /// This info with GOMAXPROCS as last read, when it was read.
    pub fn with_gomaxprocs(&self, last: Option<u32>) -> GoInfo {
        GoInfo { gomaxprocs: last.or(self.gomaxprocs), ..self.clone() }
    }

    /// The build info of `process` and its GOMAXPROCS now.
    pub fn of(process: &GoProcess) -> GoInfo {
        let b = process.binary();
        let bi = b.build_info().ok();
        let (gomaxprocs, problem) = match process.gomaxprocs() {
            Ok(n) => (Some(n), None),
            // Not yet: a program that has just started sets it in its first milliseconds.
            Err(GoError::Unset { .. }) => (None, None),
            Err(e) => (None, Some(e.to_string())),
        };
        GoInfo {
            version: b.go_version().to_string(),
            module: bi
                .and_then(|i| i.main.as_ref().map(|m| m.path.clone()).or_else(|| Some(i.path.clone())))
                .filter(|p| !p.is_empty()),
            gomaxprocs,
            cgo_enabled: bi.and_then(BuildInfo::cgo_enabled),
            build_mode: bi.and_then(|i| i.build_mode().map(str::to_string)),
            default_godebug: bi.and_then(|i| i.default_godebug().map(str::to_string)),
            gomaxprocs_problem: problem,
        }
    }
}

/// The errors a caller may want to tell apart.
#[derive(Debug, thiserror::Error)]
pub enum GoError {
    #[error("reading {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("{path} is not a Go binary: {reason}")]
    NotGo { path: PathBuf, reason: String },
    /// A Go binary (its build info says so) whose headers do not parse.
    #[error("{path} is a Go binary ({version}) that cannot be read: {reason}")]
    Damaged { path: PathBuf, version: String, reason: String },
    /// The binary has no symbol table (`-ldflags=-s`, or `strip`): its build
    /// info is still readable, runtime variables are not.
    #[error("{path} is stripped: no symbol {symbol}; {what} unknown")]
    Stripped { path: PathBuf, symbol: &'static str, what: &'static str },
    /// A symbol table without the symbol (a Go this reader does not know).
    #[error("{path} has no symbol {symbol}; {what} unknown")]
    NoSymbol { path: PathBuf, symbol: &'static str, what: &'static str },
    #[error("reading {symbol} at {addr:#x} in process {pid} (has it exited?): {source}")]
    Memory { pid: u32, symbol: &'static str, addr: u64, source: io::Error },
    /// The variable holds a value the runtime never sets, e.g. 0 before the
    /// runtime has initialised it.
    #[error("{symbol} in process {pid} is {value}: the Go runtime has not set it (yet)")]
    Unset { pid: u32, symbol: &'static str, value: i32 },
    /// No DWARF (`-ldflags=-w` or `-s`, or `strip`): the runtime's struct
    /// layouts, and so the Go threads' roles and pins, are unknown.
    #[error(
        "{path} has no DWARF debug info (no .debug_info section: built with -ldflags=-w or -s, or stripped); \
         the layout of runtime.m and runtime.g is unknown, so its Go threads cannot be read"
    )]
    NoDwarf { path: PathBuf },
    /// DWARF that does not parse, or lacks a type or member pintrace reads.
    #[error("{path}: {problem}; the layout of runtime.m and runtime.g is unknown")]
    Dwarf { path: PathBuf, problem: DwarfProblem },
    /// DWARF without a type or member of the scheduler's that pintrace reads.
    #[error("{path}: {problem}; so the Go scheduler's run queues cannot be read")]
    SchedDwarf { path: PathBuf, problem: DwarfProblem },
    /// The M list could not be walked consistently (it kept changing under
    /// the reader, or the memory is not an M list).
    #[error("walking the Go threads (runtime.allm) of process {pid}: {problem}")]
    MList { pid: u32, problem: WalkError },
    /// The scheduler's state (runtime.sched, runtime.allp) could not be read.
    #[error("reading the Go scheduler (runtime.sched, runtime.allp) of process {pid}: {problem}")]
    Sched { pid: u32, problem: SchedError },
}
