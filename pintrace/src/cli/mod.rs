//! The command line: argument definitions and one module per command.
use std::{path::PathBuf, process::ExitCode, time::Duration};

use clap::{Parser, Subcommand};

pub mod check;
pub mod record;
pub mod report;

#[derive(Parser, Debug)]
#[command(
    name = "pintrace",
    version,
    about = "Per-thread scheduler tracing for Go services: migrations, preemptions, SIGURG, thread churn",
    long_about = "pintrace attaches eBPF programs to the kernel's scheduler, signal and task tracepoints, \
                  follows every thread of one process and records what happened to each: CPU time, \
                  voluntary and involuntary switches, migrations, run-queue latency, Go's SIGURG \
                  preemption signals, and thread creation and exit churn."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Show which probes load and attach on this kernel, and what is lost without the others (root)
    Check,
    /// Record every event of a process to a file (root)
    Record(RecordArgs),
    /// Summarise a record file: per-thread table and process summary (no root needed)
    Report(ReportArgs),
}

#[derive(clap::Args, Debug)]
pub struct RecordArgs {
    /// The process to trace (any of its thread IDs works too)
    #[arg(long, short)]
    pub pid: u32,
    /// The record file to write
    #[arg(long, short)]
    pub output: PathBuf,
    /// Stop after this long (e.g. 10s, 500ms, 2m; a bare number is seconds). Default: until Ctrl-C or the target exits
    #[arg(long, short, value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// Also attach syscalls:sys_enter_tgkill and sys_exit_clone/clone3. These slow every
    /// syscall of every process on the machine (measured +8.7% on a syscall-heavy program)
    #[arg(long)]
    pub syscalls: bool,
    /// Kernel ring-buffer size: a power of two from 4KiB (e.g. 64MiB). Raise it if events are lost
    #[arg(long, value_parser = parse_size, default_value = "16MiB")]
    pub buffer_size: u32,
}

#[derive(clap::Args, Debug)]
pub struct ReportArgs {
    /// The record file to read
    pub file: PathBuf,
    /// Print JSON (stable field names, documented in the README) instead of tables
    #[arg(long)]
    pub json: bool,
    /// Show every thread (default: the 40 busiest)
    #[arg(long)]
    pub all: bool,
}

pub fn parse_duration(s: &str) -> Result<Duration, String> {
    if let Ok(secs) = s.parse::<f64>() {
        if secs.is_finite() && secs > 0.0 {
            return Ok(Duration::from_secs_f64(secs));
        }
        return Err(format!("duration must be positive: {s}"));
    }
    humantime::parse_duration(s).map_err(|e| format!("{e} (try 10s, 500ms or 2m)"))
}

/// A ring-buffer size: a power of two of at least 4 KiB, with an optional KiB/MiB suffix.
pub fn parse_size(s: &str) -> Result<u32, String> {
    let lower = s.trim().to_ascii_lowercase();
    let (digits, unit) = match lower.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => lower.split_at(i),
        None => (lower.as_str(), ""),
    };
    let mult: u64 = match unit.trim() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        other => return Err(format!("unknown size unit {other:?} (use KiB or MiB)")),
    };
    let n: u64 = digits.parse().map_err(|_| format!("not a size: {s}"))?;
    let bytes = n.checked_mul(mult).ok_or_else(|| format!("size too large: {s}"))?;
    if bytes < 4096 || !bytes.is_power_of_two() || bytes > 1 << 30 {
        return Err(format!("the buffer size must be a power of two from 4KiB to 1GiB, not {s}"));
    }
    Ok(bytes as u32)
}

pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Check => check::run(),
        Command::Record(args) => record::run(args),
        Command::Report(args) => report::run(args),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("2"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("1.5"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert!(parse_duration("0").is_err());
        assert!(parse_duration("soon").is_err());
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("16MiB"), Ok(16 << 20));
        assert_eq!(parse_size("8k"), Ok(8192));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert!(parse_size("3000").is_err(), "below a page");
        assert!(parse_size("12KiB").is_err(), "not a power of two");
        assert!(parse_size("2GiB").is_err());
        assert!(parse_size("lots").is_err());
    }
}
