//! `pintrace report`: the per-thread table and process summary of a record file.
use std::{fmt::Write as _, path::Path, process::ExitCode};

use anyhow::{anyhow, Result};
use serde::Serialize;

use super::ReportArgs;
use crate::{
    fmt,
    model::{Latency, Model, ProcessStats, Snapshot, ThreadStats},
    record::{Chunk, ProbeRecord, ReadError, Reader, RecordHeader, Target, Trailer, VERSION},
};

/// Exit code of a report whose file was cut short or damaged: the report of
/// what could be read is printed, with the problem on stderr.
pub const EXIT_INCOMPLETE: u8 = 3;
const DEFAULT_ROWS: usize = 40;

/// The JSON report. Field names are stable (see the README).
#[derive(Debug, Serialize)]
pub struct Report {
    pub pintrace_version: String,
    pub format_version: u16,
    pub recorded_by: String,
    /// False when the file was cut short or damaged, or has no trailer.
    pub complete: bool,
    pub problem: Option<String>,
    pub target: Target,
    pub host: String,
    pub kernel: String,
    pub nr_cpus: u32,
    pub start_unix_ns: u64,
    pub duration_ns: u64,
    pub end_reason: Option<String>,
    pub events: u64,
    pub lost_events: u64,
    pub probes: Vec<ProbeRecord>,
    pub process: ProcessStats,
    /// The busiest SIGURG senders (Go's sysmon sends almost all of them).
    pub sigurg_senders: Vec<Sender>,
    pub threads: Vec<ThreadStats>,
}

#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct Sender {
    pub tid: u32,
    pub comm: String,
    pub sigurg_sent: u64,
}

/// Reads a whole record file into a report; a read problem past the header
/// is kept in the report, not returned.
pub fn build(path: &Path) -> Result<Report> {
    let mut reader = Reader::open(path).map_err(|e| anyhow!("{}: {e}", path.display()))?;
    let header: RecordHeader = reader.header().clone();
    let mut model = Model::new(header.start_ns);
    let mut trailer: Option<Trailer> = None;
    let problem: Option<ReadError> = loop {
        match reader.next_chunk() {
            Ok(Some(Chunk::Events(events))) => events.iter().for_each(|e| model.apply(e)),
            Ok(Some(Chunk::Trailer(t))) => trailer = Some(t),
            Ok(None) => break None,
            Err(e) => break Some(e),
        }
    };
    let end_ns = trailer.as_ref().map_or(model.last_ts(), |t| t.end_ns.max(header.start_ns));
    let snap: Snapshot = model.snapshot(end_ns);
    let problem = match (&problem, &trailer) {
        (Some(e), _) => Some(format!("{e}: reported the events before it")),
        (None, None) => Some("the recording did not finish (no trailer): reported every event in the file".into()),
        (None, Some(_)) => None,
    };
    let mut sigurg_senders: Vec<Sender> = snap
        .threads
        .iter()
        .filter(|t| t.sigurg_sent > 0)
        .map(|t| Sender { tid: t.tid, comm: t.comm.clone(), sigurg_sent: t.sigurg_sent })
        .collect();
    sigurg_senders.sort_by(|a, b| b.sigurg_sent.cmp(&a.sigurg_sent).then(a.tid.cmp(&b.tid)));
    Ok(Report {
        pintrace_version: env!("CARGO_PKG_VERSION").to_string(),
        format_version: VERSION,
        recorded_by: header.pintrace_version.clone(),
        complete: problem.is_none(),
        problem,
        start_unix_ns: header.clock.to_realtime(header.start_ns),
        target: header.target,
        host: header.host,
        kernel: header.kernel,
        nr_cpus: header.nr_cpus,
        duration_ns: snap.duration_ns,
        end_reason: trailer.as_ref().map(|t| t.end_reason.clone()),
        events: snap.events,
        lost_events: snap.lost_events.max(trailer.as_ref().map_or(0, |t| t.lost_events)),
        probes: header.probes,
        process: snap.process,
        sigurg_senders,
        threads: snap.threads,
    })
}

pub fn run(args: ReportArgs) -> Result<ExitCode> {
    let report = build(&args.file)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", render(&report, if args.all { usize::MAX } else { DEFAULT_ROWS }));
    }
    match &report.problem {
        None => Ok(ExitCode::SUCCESS),
        Some(p) => {
            eprintln!("pintrace: {}: {p}", args.file.display());
            Ok(ExitCode::from(EXIT_INCOMPLETE))
        }
    }
}

/// Percentiles of `l`, whose samples are `what` (waits, threads).
fn lat(l: &Latency, what: &str) -> String {
    if l.count == 0 {
        "-".into()
    } else {
        format!(
            "p50 {}  p99 {}  max {}  ({} {what})",
            fmt::ns(l.p50),
            fmt::ns(l.p99),
            fmt::ns(l.max),
            fmt::count(l.count)
        )
    }
}

/// The text report.
pub fn render(r: &Report, rows: usize) -> String {
    let mut o = String::new();
    let p = &r.process;
    let _ = writeln!(o, "target    {} ({})  {}", r.target.pid, r.target.comm, r.target.cmdline);
    let _ = writeln!(o, "host      {}, kernel {}, {} CPUs", r.host, r.kernel, r.nr_cpus);
    let _ = writeln!(
        o,
        "window    {} for {}{}",
        fmt::wall(r.start_unix_ns),
        fmt::ns(r.duration_ns),
        r.end_reason.as_ref().map(|e| format!(" ({e})")).unwrap_or_default()
    );
    let _ = writeln!(o, "events    {} recorded, {} lost", fmt::count(r.events), fmt::count(r.lost_events));
    if r.lost_events > 0 {
        let _ = writeln!(o, "          WARNING: events were lost (ring buffer full): counts below are low");
    }
    if let Some(problem) = &r.problem {
        let _ = writeln!(o, "          WARNING: {problem}");
    }
    let _ = writeln!(o, "\nprocess");
    let _ = writeln!(
        o,
        "  threads     {} at start, {} peak, {} at end; {} created ({:.1}/s), {} exited ({:.1}/s)",
        p.threads_at_start,
        p.threads_peak,
        p.threads_now,
        fmt::count(p.threads_created),
        p.threads_created_per_sec,
        fmt::count(p.threads_exited),
        p.threads_exited_per_sec
    );
    if p.thread_lifetime_ns.count > 0 {
        let _ = writeln!(o, "  lifetimes   {}", lat(&p.thread_lifetime_ns, "threads"));
    }
    if p.child_processes > 0 {
        let _ = writeln!(o, "  children    {} processes started", p.child_processes);
    }
    let cpu_share = if r.duration_ns > 0 { p.on_cpu_ns as f64 / r.duration_ns as f64 } else { 0.0 };
    let _ = writeln!(o, "  on-CPU      {} ({:.2} CPUs on average)", fmt::ns(p.on_cpu_ns), cpu_share);
    let _ = writeln!(
        o,
        "  switches    {} voluntary, {} involuntary (preempted); {} migrations",
        fmt::count(p.voluntary_switches),
        fmt::count(p.involuntary_switches),
        fmt::count(p.migrations)
    );
    let _ = write!(o, "  SIGURG      {} ({:.1}/s, Go async preemption)", fmt::count(p.sigurg), p.sigurg_per_sec);
    if let Some(top) = r.sigurg_senders.first() {
        let _ = write!(o, "; sent by TID {} ({}) {} times", top.tid, top.comm, fmt::count(top.sigurg_sent));
    }
    let _ = writeln!(o);
    let _ = writeln!(o, "  signals     {} other", fmt::count(p.signals));
    let _ = writeln!(o, "  run queue   {}", lat(&p.runq_latency_ns, "waits"));
    if p.tgkill_calls + p.clone_calls > 0 {
        let _ = writeln!(o, "  syscalls    {} tgkill, {} clone", p.tgkill_calls, p.clone_calls);
    }
    let _ = writeln!(o, "\nthreads (busiest first)");
    let _ = writeln!(
        o,
        "{:>8} {:<16} {:>9} {:>5} {:>8} {:>8} {:>6} {:>5} {:>7} {:>7} {:>9} {:>9} {:>9}",
        "TID",
        "NAME",
        "ON-CPU",
        "CPU%",
        "VOL",
        "INVOL",
        "MIGR",
        "CPUS",
        "URG-IN",
        "URG-OUT",
        "RUNQ-P50",
        "RUNQ-P99",
        "RUNQ-MAX"
    );
    for t in r.threads.iter().take(rows) {
        let share = if r.duration_ns > 0 { 100.0 * t.on_cpu_ns as f64 / r.duration_ns as f64 } else { 0.0 };
        let name = format!("{}{}", t.comm, if t.died_ns.is_some() { "†" } else { "" });
        let dash = |l: &Latency, v: u64| {
            if l.count == 0 {
                "-".to_string()
            } else {
                fmt::ns(v)
            }
        };
        let _ = writeln!(
            o,
            "{:>8} {:<16} {:>9} {:>5.1} {:>8} {:>8} {:>6} {:>5} {:>7} {:>7} {:>9} {:>9} {:>9}",
            t.tid,
            name,
            fmt::ns(t.on_cpu_ns),
            share,
            t.voluntary_switches,
            t.involuntary_switches,
            t.migrations,
            t.cpus.len(),
            t.sigurg_received,
            t.sigurg_sent,
            dash(&t.runq_latency_ns, t.runq_latency_ns.p50),
            dash(&t.runq_latency_ns, t.runq_latency_ns.p99),
            dash(&t.runq_latency_ns, t.runq_latency_ns.max),
        );
    }
    if r.threads.len() > rows {
        let _ = writeln!(o, "  … {} more threads (--all shows them)", r.threads.len() - rows);
    }
    if r.threads.iter().any(|t| t.died_ns.is_some()) {
        let _ = writeln!(o, "  † exited during the recording");
    }
    o
}
