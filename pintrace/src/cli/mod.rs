//! The command line: argument definitions and one module per command.
use std::{ffi::OsString, path::PathBuf, process::ExitCode, time::Duration};

use clap::{Parser, Subcommand};

/// `println!` that returns an error instead of panicking when standard
/// output cannot be written (a full disk, /dev/full).
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::cli::out(&format!("{}\n", format_args!($($arg)*)))
    };
}

pub mod batch;
pub mod check;
mod output;
pub mod record;
pub mod replay;
pub mod report;
pub mod top;

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
    /// Live view of a process's threads: migrations, preemptions, SIGURG, churn, run-queue latency (root)
    Top(TopArgs),
    /// Record every event of a process to a file (root)
    Record(RecordArgs),
    /// Summarise a record file: per-thread table and process summary (no root needed)
    Report(ReportArgs),
    /// Play a record file back on the live screen, with pause, single-step and speed (no root needed)
    Replay(ReplayArgs),
}

/// What to trace: a running process, or a command started for the purpose.
#[derive(clap::Args, Debug)]
pub struct TargetArgs {
    /// The process to trace (any of its thread IDs works too)
    #[arg(long, short, required_unless_present = "command", conflicts_with = "command")]
    pub pid: Option<u32>,
    /// With a command: run it as this user (name or UID), as `strace -u` does
    #[arg(long, short, requires = "command", conflicts_with = "pid")]
    pub user: Option<String>,
    /// Start this command and trace it from its first instruction: `-- CMD ARGS...`
    #[arg(last = true, value_name = "CMD")]
    pub command: Vec<OsString>,
    /// Also attach syscalls:sys_enter_tgkill and sys_exit_clone/clone3. These slow every
    /// syscall of every process on the machine (measured +8.7% on a syscall-heavy program)
    #[arg(long)]
    pub syscalls: bool,
    /// Do not put a uprobe on a Go target's runtime.LockOSThread. Each call then costs
    /// nothing extra (with it: ~14 µs per call measured on a KVM guest, as the kernel
    /// single-steps the probed instruction); pinned threads still come from the runtime's M list
    #[arg(long)]
    pub no_uprobes: bool,
    /// Attach the scheduler probes as classic tracepoints, not BTF tracepoints (the
    /// fallback where BTF is missing): the same events, but every context switch on
    /// the host then pays for a trace record
    #[arg(long)]
    pub classic_tracepoints: bool,
    /// Attach sched_wakeup and sched_wakeup_new even where sched_switch reads each
    /// thread's wait for a CPU from the kernel's own accounting (the default): a
    /// woken thread then shows as waiting before it runs, at the cost of two more
    /// program runs per wake-up of every task on the host
    #[arg(long)]
    pub wakeup_probes: bool,
    /// Kernel ring-buffer size: a power of two from 4KiB (e.g. 64MiB). Raise it if events are lost
    #[arg(long, value_parser = parse_size, default_value = "16MiB")]
    pub buffer_size: u32,
}

impl TargetArgs {
    /// `quiet`: a started command's standard streams go to /dev/null (the screen is ours).
    pub fn spec(&self, quiet: bool) -> crate::session::TargetSpec {
        match self.pid {
            Some(pid) => crate::session::TargetSpec::Pid(pid),
            None => crate::session::TargetSpec::Command { argv: self.command.clone(), user: self.user.clone(), quiet },
        }
    }

    pub fn options(&self) -> crate::probe::Options {
        crate::probe::Options {
            ring_bytes: self.buffer_size,
            syscalls: self.syscalls,
            uprobes: !self.no_uprobes,
            classic: self.classic_tracepoints,
            wakeups: self.wakeup_probes,
        }
    }
}

#[derive(clap::Args, Debug)]
pub struct RecordArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// The record file to write (created 0600; an existing one is kept as FILE.old).
    /// `-` is standard output, for streaming: `-o - | ssh host 'cat > x.ptr'`
    #[arg(long, short)]
    pub output: PathBuf,
    /// Stop after this long (e.g. 10s, 500ms, 2m; a bare number is seconds). Default: until Ctrl-C or the target exits
    #[arg(long, short, value_parser = parse_duration)]
    pub duration: Option<Duration>,
}

#[derive(clap::Args, Debug)]
pub struct TopArgs {
    #[command(flatten)]
    pub target: TargetArgs,
    /// Refresh interval (e.g. 1s, 500ms; at least 50ms)
    #[arg(long, short, value_parser = parse_interval, default_value = "1s")]
    pub interval: Duration,
    /// No screen: print one block (or one JSON object with --json) per interval, like `top -b`
    #[arg(long, short)]
    pub batch: bool,
    /// With --batch: stop after this many intervals
    #[arg(long, short = 'n', value_parser = parse_count)]
    pub count: Option<u64>,
    /// With --batch: one JSON object per line (report's field names, plus per-second rates)
    #[arg(long)]
    pub json: bool,
    /// Stop after this long (e.g. 30s). Default: until q, Ctrl-C or (with --batch) the target's exit
    #[arg(long, short, value_parser = parse_duration)]
    pub duration: Option<Duration>,
    #[command(flatten)]
    pub findings: FindingArgs,
}

/// The findings' thresholds, as the command line sets them.
#[derive(clap::Args, Debug, Default)]
pub struct FindingArgs {
    /// Change a finding's threshold, e.g. --threshold runq_p99=10 (ms); repeatable (--help lists them)
    #[arg(long = "threshold", value_name = "NAME=VALUE", value_parser = parse_threshold, long_help = threshold_help())]
    pub thresholds: Vec<String>,
}

fn threshold_help() -> String {
    let mut s = String::from(
        "Change a finding's threshold; repeatable. A rule fires when its condition holds for `sustain` \
         seconds. NAME=DEFAULT UNIT and meaning:",
    );
    for line in crate::findings::Thresholds::default().describe() {
        s.push_str("\n  ");
        s.push_str(&line);
    }
    s
}

impl FindingArgs {
    pub fn thresholds(&self) -> crate::findings::Thresholds {
        let mut t = crate::findings::Thresholds::default();
        for a in &self.thresholds {
            // Checked by `parse_threshold` already.
            let _ = t.set(a);
        }
        t
    }
}

pub fn parse_threshold(s: &str) -> Result<String, String> {
    crate::findings::Thresholds::default().set(s)?;
    Ok(s.to_string())
}

#[derive(clap::Args, Debug)]
pub struct ReplayArgs {
    /// The record file to play
    pub file: PathBuf,
    /// Playback speed: 1, 10, 100 (times real time) or max
    #[arg(long, short, value_parser = parse_speed, default_value = "1")]
    pub speed: f64,
    /// Interval of the rates and charts, in the recording's time (at least 50ms)
    #[arg(long, short, value_parser = parse_interval, default_value = "1s")]
    pub interval: Duration,
    /// No screen: print one block (or JSON object with --json) per interval, as fast as possible
    #[arg(long, short)]
    pub batch: bool,
    /// With --batch: one JSON object per line
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub findings: FindingArgs,
}

/// A playback speed: a positive multiple of real time, or `max` (infinity).
pub fn parse_speed(s: &str) -> Result<f64, String> {
    if s.trim().eq_ignore_ascii_case("max") {
        return Ok(f64::INFINITY);
    }
    // The speeds the screen shows and its keys step through: no other.
    let t = s.trim().trim_end_matches(['x', 'X', '×']);
    match t.parse::<f64>() {
        Ok(x) if [1.0, 10.0, 100.0].contains(&x) => Ok(x),
        _ => Err(format!("not a speed: {s} (1, 10, 100 or max)")),
    }
}

/// The shortest interval: below it, pintrace would spend a CPU redrawing.
pub const MIN_INTERVAL: Duration = Duration::from_millis(50);

/// An interval: a duration of at least `MIN_INTERVAL`.
pub fn parse_interval(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s)?;
    if d < MIN_INTERVAL {
        return Err(format!("interval {s} is shorter than {}ms", MIN_INTERVAL.as_millis()));
    }
    Ok(d)
}

/// A count of intervals: at least one.
pub fn parse_count(s: &str) -> Result<u64, String> {
    match s.trim().parse::<u64>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!("not a count of intervals: {s} (1 or more)")),
    }
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
    #[command(flatten)]
    pub findings: FindingArgs,
}

/// The longest duration accepted: a year is longer than any trace.
const MAX_DURATION: Duration = Duration::from_secs(366 * 24 * 3600);

pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let d = if let Ok(secs) = s.parse::<f64>() {
        if !(secs.is_finite() && secs > 0.0) {
            return Err(format!("duration must be positive: {s}"));
        }
        // Checked before converting: from_secs_f64 panics beyond u64 seconds.
        if secs > MAX_DURATION.as_secs_f64() {
            return Err(format!("duration {s} is longer than a year"));
        }
        Duration::from_secs_f64(secs)
    } else {
        humantime::parse_duration(s).map_err(|e| format!("{e} (try 10s, 500ms or 2m)"))?
    };
    if d > MAX_DURATION {
        return Err(format!("duration {s} is longer than a year"));
    }
    if d.is_zero() {
        return Err(format!("duration must be positive: {s}"));
    }
    Ok(d)
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

/// Writes `text` to standard output. A closed pipe ends the process quietly
/// (SIGPIPE, as `main` leaves it, as for any Unix tool); any other failure
/// is an error with the reason.
pub fn out(text: &str) -> anyhow::Result<()> {
    use std::io::Write as _;
    let mut o = std::io::stdout().lock();
    anyhow::Context::context(o.write_all(text.as_bytes()).and_then(|()| o.flush()), "writing to standard output")
}

pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Check => check::run(),
        Command::Top(args) => top::run(args),
        Command::Record(args) => record::run(args),
        Command::Report(args) => report::run(args),
        Command::Replay(args) => replay::run(args),
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
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("soon").is_err());
        // These panicked (issue 7): too large for a Duration.
        for huge in ["99999999999999999999", "1e19", "1e300", "600000000000000000000s", "400days"] {
            assert!(parse_duration(huge).is_err_and(|e| e.contains("year") || e.contains("try")), "{huge}");
        }
        assert_eq!(parse_duration("365days"), Ok(Duration::from_secs(365 * 86400)));
    }

    #[test]
    fn speeds() {
        assert_eq!(parse_speed("1"), Ok(1.0));
        assert_eq!(parse_speed("10x"), Ok(10.0));
        assert_eq!(parse_speed("max"), Ok(f64::INFINITY));
        assert!(parse_speed("0").is_err());
        assert!(parse_speed("3").is_err(), "a speed the screen cannot show");
        assert!(parse_speed("1e-300").is_err());
        assert!(parse_interval("1ns").is_err());
        assert_eq!(parse_interval("50ms"), Ok(Duration::from_millis(50)));
        assert!(parse_count("0").is_err());
        assert_eq!(parse_count("3"), Ok(3));
        assert!(parse_speed("fast").is_err());
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
