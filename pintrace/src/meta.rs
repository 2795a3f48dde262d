//! What a session knows of its target and its clocks, apart from its
//! events: the leaf types that the record header, the screen, the batch
//! output and the report share. Depends on nothing in pintrace.
use std::fmt;

use pintrace_common as wire;
use serde::{Deserialize, Serialize};

/// A task name as the kernel keeps it: up to 16 bytes, NUL-padded.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Comm(pub [u8; wire::COMM_LEN]);

impl Comm {
    pub fn new(name: &str) -> Self {
        let mut bytes = [0u8; wire::COMM_LEN];
        let src = name.as_bytes();
        let n = src.len().min(wire::COMM_LEN - 1);
        bytes[..n].copy_from_slice(&src[..n]);
        Comm(bytes)
    }

    /// The bytes before the first NUL.
    pub fn as_bytes(&self) -> &[u8] {
        let end = self.0.iter().position(|&b| b == 0).unwrap_or(self.0.len());
        &self.0[..end]
    }
}

impl fmt::Display for Comm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&String::from_utf8_lossy(self.as_bytes()))
    }
}

impl fmt::Debug for Comm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.to_string())
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    pub pid: u32,
    pub comm: String,
    #[serde(default)]
    pub cmdline: String,
    /// Its PID in its own PID namespace (a container), when that is not
    /// pintrace's; absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ns_pid: Option<u32>,
}

impl Target {
    /// "9100", or "9100 (1 in its PID namespace)" for a process in a container.
    pub fn pid_label(&self) -> String {
        match self.ns_pid {
            Some(ns) => format!("{} ({ns} in its PID namespace)", self.pid),
            None => self.pid.to_string(),
        }
    }
}

/// CLOCK_MONOTONIC and CLOCK_REALTIME read together, to map event times to wall time.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClockMapping {
    pub monotonic_ns: u64,
    pub realtime_ns: u64,
}

impl ClockMapping {
    /// Wall-clock nanoseconds since the Unix epoch for a CLOCK_MONOTONIC time.
    pub fn to_realtime(&self, monotonic_ns: u64) -> u64 {
        (i128::from(self.realtime_ns) + i128::from(monotonic_ns) - i128::from(self.monotonic_ns)).max(0) as u64
    }
}
