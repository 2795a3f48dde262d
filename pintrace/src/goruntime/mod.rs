//! Reading a Go program from outside: its build info from the executable
//! (`binary`), and runtime variables such as GOMAXPROCS from its memory
//! (`process`).
//!
//! The parsers (`buildinfo`, and the maps and load-bias functions of
//! `process`) are pure; reading files and /proc is a thin layer on top.
use std::{io, path::PathBuf};

pub mod binary;
pub mod buildinfo;
pub mod process;

pub use binary::GoBinary;
pub use buildinfo::{BuildInfo, BuildInfoError, BuildSetting, Module};
pub use process::GoProcess;

/// The errors a caller may want to tell apart.
#[derive(Debug, thiserror::Error)]
pub enum GoError {
    #[error("reading {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("{path} is not a Go binary: {reason}")]
    NotGo { path: PathBuf, reason: String },
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
}
