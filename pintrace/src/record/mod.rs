//! The record file format (version 5; versions 1 to 4 are still read).
//!
//! ```text
//! file    := preamble header chunk* trailer-chunk?
//! preamble:= "PINTRACE" u16 version u16 0 u32 header_len u32 crc32(header)
//! header  := JSON (RecordHeader), header_len bytes
//! chunk   := u8 tag ('E' events | 'T' trailer) [u8; 3] 0 u32 len u32 crc32(payload) payload
//! 'E'     := u64 seq u64 events_before            (version 2 on)
//!            u32 count u64 base_ts
//!            u32 tid_base                          (version 3 only)
//!            event*                                (at most CHUNK_BYTES of events)
//! event   := u8 kind, zigzag varint (ts - previous ts), varint (cpu + 1), fields as varints;
//!            in version 3 a TID or TGID is 0 for none, else 1 + zigzag (tid - tid_base)
//! 'T'     := JSON (Trailer, and from version 2 on `chunks` and `records`)
//! ```
//! All integers are little-endian. Every chunk stands alone (its own
//! checksum and base time), so a file cut short by a crash or a full disk
//! reads up to its last whole chunk. Version 2 numbers the chunks and counts
//! the events before each, and the trailer counts both, so a chunk that is
//! missing, repeated or out of place, a trailer in the wrong place and bytes
//! after the trailer are found too. Readers ignore unknown JSON fields, so
//! later versions can add to the header and trailer.
use std::io;

use serde::{Deserialize, Serialize};

mod codec;
mod fuzzing;
mod reader;
mod writer;

#[doc(hidden)]
pub use fuzzing::{decode_events, fix_checksums, split_chunks};
pub use reader::{Chunk, Reader};
pub use writer::Writer;

pub const MAGIC: &[u8; 8] = b"PINTRACE";
/// The version written. Version 2 added chunk numbers and counts (and
/// formally the kinds 11 and 102-104); version 3 writes TIDs as distances
/// from the traced process's PID; version 4 gives a switch onto a target
/// thread the wait the kernel accounted before it; version 5 adds kind 105,
/// the CPU cgroup or the CPUs allowed changing while traced. Versions 1-4
/// are still read.
pub const VERSION: u16 = 5;
/// A chunk is written once this many bytes of events are buffered.
pub const CHUNK_BYTES: usize = 256 * 1024;
/// Larger headers or trailers are taken as corruption rather than read.
pub(crate) const MAX_CHUNK: u32 = 64 << 20;
/// Larger events chunks are taken as corruption: a writer closes a chunk at
/// CHUNK_BYTES, so no real one comes near this. It bounds a reader's memory.
pub(crate) const MAX_EVENTS_CHUNK: u32 = 4 << 20;
/// Distinct function names (kinds 11 and 104) one read may intern: names
/// are interned for good, and a real recording holds a few hundred.
pub const MAX_NAMES: usize = 65_536;
pub(crate) const TAG_EVENTS: u8 = b'E';
pub(crate) const TAG_TRAILER: u8 = b'T';

// The target and the clocks are the session's: their types live in
// `meta` (a leaf), and the header contains them.
pub use crate::meta::{ClockMapping, Target};

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeRecord {
    pub name: String,
    pub status: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RecordHeader {
    pub pintrace_version: String,
    pub host: String,
    pub kernel: String,
    pub nr_cpus: u32,
    pub target: Target,
    pub clock: ClockMapping,
    /// CLOCK_MONOTONIC time at which every probe was attached.
    pub start_ns: u64,
    pub probes: Vec<ProbeRecord>,
    #[serde(default)]
    pub syscalls: bool,
    /// The target's CPU cgroup at the start (absent in older files, or when none was found).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cgroup: Option<crate::cgroup::CpuGroup>,
    /// The Go runtime of the target, if it is a Go program.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub go: Option<crate::goruntime::GoInfo>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trailer {
    pub end_ns: u64,
    /// Why the recording ended: "duration", "interrupted", "target exited".
    pub end_reason: String,
    pub events: u64,
    pub lost_events: u64,
    #[serde(default)]
    pub decode_errors: u64,
    /// The first kernel record that could not be decoded, and why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_decode_error: Option<String>,
    /// The target at the end, when it differs from the header's (it exec'd).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<Target>,
    /// Its Go runtime at the end, when the header has none (a command started by pintrace).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub go: Option<crate::goruntime::GoInfo>,
}

/// What a version-2 trailer adds to the JSON: counts the writer keeps
/// itself, so the reader can tell a whole file from one with chunks missing,
/// repeated or out of place.
#[derive(Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct TrailerJson<'a> {
    #[serde(flatten)]
    pub trailer: std::borrow::Cow<'a, Trailer>,
    /// Events chunks written.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chunks: Option<u64>,
    /// Events written to the file (`Trailer::events` is the kernel's count).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub records: Option<u64>,
}

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("{0}")]
    Io(#[from] io::Error),
    #[error("not a pintrace record file (bad magic)")]
    NotARecord,
    #[error("record format version {0} is newer than this pintrace reads ({VERSION})")]
    UnsupportedVersion(u16),
    #[error("damaged header: {0}")]
    BadHeader(String),
    #[error("file is cut short at byte {offset} (inside a chunk)")]
    Truncated { offset: u64 },
    #[error("file is cut short at byte {offset}, inside its header: nothing to read")]
    HeaderCut { offset: u64 },
    #[error("corrupt chunk at byte {offset}: {reason}")]
    Corrupt { offset: u64, reason: String },
    /// Whole chunks that do not add up (version 2): missing, repeated or
    /// out of place, or bytes after the trailer.
    #[error("damaged file: {0}")]
    Damaged(String),
}

#[cfg(test)]
pub(crate) mod tests;
