//! The schemas shared by the front ends: the whole-trace report (`report`,
//! `--json`) and the per-interval record of `top --batch --json`. Field
//! names are stable (documented in the README); new fields may be added.
use std::path::Path;

use anyhow::Result;
use serde::Serialize;

use crate::{
    analysis::Analyzer,
    cgroup::{CpuGroup, CpuStat},
    event::Event,
    findings::{Capacity, Finding, Thresholds},
    goruntime::GoInfo,
    model::{gosched::SchedView, pressure::OtherProcess},
    model::{
        live::{IntervalStats, LiveSnapshot, SenderRate, ThreadRow},
        ProcessStats, Snapshot, ThreadStats,
    },
    record::{ProbeRecord, RecordHeader, Target, VERSION},
    run::{self, FileFeed, Flow, Options, Pace, Sink},
};

/// The JSON report. Field names are stable (see the README).
#[derive(Debug, Serialize)]
pub struct Report {
    pub pintrace_version: String,
    /// The record file's format version.
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
    /// Kernel records the recording could not decode (as its trailer says).
    pub decode_errors: u64,
    /// The first of them, and why (null: none, or not known).
    pub first_decode_error: Option<String>,
    pub probes: Vec<ProbeRecord>,
    pub process: ProcessStats,
    /// The target's CPU cgroup and its throttling over the recording (null: none found).
    pub cgroup: Option<CgroupReport>,
    /// The Go runtime (null: not a Go program); gomaxprocs as last read.
    pub go: Option<GoReport>,
    /// Threads at the end against GOMAXPROCS + long-lived pinned + baseline (null: not Go).
    pub capacity: Option<Capacity>,
    /// What was wrong, worst first, with when.
    pub findings: Vec<ReportFinding>,
    /// The busiest SIGURG senders (Go's sysmon sends almost all of them).
    pub sigurg_senders: Vec<Sender>,
    /// The other processes whose tasks the threads waited behind, most first (the top 5).
    pub other_processes: Vec<OtherProcess>,
    pub threads: Vec<ThreadStats>,
}

/// The Go runtime as the JSON shows it: the build info, and the scheduler
/// as last sampled (`sched`, null when it could not be read).
#[derive(Debug, Serialize, PartialEq)]
pub struct GoReport {
    #[serde(flatten)]
    pub info: GoInfo,
    pub sched: Option<SchedView>,
}

impl std::ops::Deref for GoReport {
    type Target = GoInfo;
    fn deref(&self) -> &GoInfo {
        &self.info
    }
}

/// A cgroup with its throttling counters over a window.
#[derive(Debug, Serialize, PartialEq)]
pub struct CgroupReport {
    pub path: String,
    pub version: u8,
    pub quota_cpus: Option<f64>,
    pub period_us: Option<u64>,
    pub limited_by: Option<String>,
    pub cpus_allowed: u32,
    pub nr_periods: u64,
    pub nr_throttled: u64,
    pub throttled_ns: u64,
    /// Share of periods throttled, in percent.
    pub throttled_pct: f64,
}

impl CgroupReport {
    pub fn new(g: &CpuGroup, s: Option<CpuStat>) -> CgroupReport {
        let s = s.unwrap_or_default();
        CgroupReport {
            path: g.path.clone(),
            version: g.version,
            quota_cpus: g.quota_cpus,
            period_us: g.period_us,
            limited_by: g.limited_by.clone(),
            cpus_allowed: g.cpus_allowed,
            nr_periods: s.nr_periods,
            nr_throttled: s.nr_throttled,
            throttled_ns: s.throttled_ns,
            throttled_pct: if s.nr_periods > 0 { 100.0 * s.nr_throttled as f64 / s.nr_periods as f64 } else { 0.0 },
        }
    }
}

#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct Sender {
    pub tid: u32,
    pub comm: String,
    pub sigurg_sent: u64,
}

/// The report judges findings once per this much of the recording.
const REPORT_TICK: std::time::Duration = std::time::Duration::from_secs(1);

/// A finding of a recording: when its condition first and last held.
#[derive(Debug, Serialize, PartialEq)]
pub struct ReportFinding {
    #[serde(flatten)]
    pub finding: Finding,
    /// Relative to the start of the recording.
    pub first_ns: u64,
    pub last_ns: u64,
    /// Seconds (intervals) in which it held.
    pub intervals: u64,
}

/// Folds every event into a model and evaluates the findings once a
/// second of the recording: the sink of `report`.
struct Fold {
    analyzer: Analyzer,
    found: Vec<ReportFinding>,
    capacity: Option<Capacity>,
}

impl Sink for Fold {
    fn events(&mut self, events: &[Event]) -> Result<()> {
        self.analyzer.apply(events);
        Ok(())
    }

    fn tick(&mut self, now_ns: u64, _: &run::Stats) -> Result<Flow> {
        // The last, partial interval (the target's exit) says too little to judge by.
        let whole = now_ns.saturating_sub(self.analyzer.last_tick()) >= REPORT_TICK.as_nanos() as u64;
        self.analyzer.tick(now_ns);
        if !whole {
            return Ok(Flow::Continue);
        }
        let frame = self.analyzer.frame(None);
        self.capacity = frame.capacity;
        let at = now_ns.saturating_sub(self.analyzer.header().start_ns);
        for f in frame.findings {
            match self.found.iter_mut().find(|r| r.finding.rule == f.rule) {
                Some(r) => {
                    r.last_ns = at;
                    r.intervals += 1;
                    // The first time it was at its worst tells the most.
                    if f.severity > r.finding.severity {
                        r.finding = f;
                    }
                }
                None => self.found.push(ReportFinding { finding: f, first_ns: at, last_ns: at, intervals: 1 }),
            }
        }
        Ok(Flow::Continue)
    }

    fn ended(&mut self, _: run::End, _: u64, _: &run::Stats) -> Result<Flow> {
        Ok(Flow::Stop)
    }
}

/// Reads a whole record file into a report; a read problem past the header
/// is kept in the report, not returned.
pub fn build(path: &Path, thresholds: Thresholds) -> Result<Report> {
    let mut feed = FileFeed::open(path)?;
    let header: RecordHeader = feed.header().clone();
    let mut fold = Fold { analyzer: Analyzer::new(&header, thresholds), found: Vec::new(), capacity: None };
    let opts = Options { interval: Some(REPORT_TICK), duration: None };
    let runtime = run::runtime()?;
    let _entered = runtime.enter();
    let mut signals = run::Signals::install(false)?;
    let outcome = runtime.block_on(run::replay(&mut feed, &mut fold, opts, Pace::Max, None, &mut signals))?;
    if outcome.end.by_user() {
        // Ctrl-C on a long report: say so, not a report of part of the file.
        anyhow::bail!("{}: {} before the end: no report", path.display(), outcome.end);
    }
    let snap = fold.analyzer.snapshot(outcome.end_ns.max(header.start_ns));
    let mut found = std::mem::take(&mut fold.found);
    found.sort_by(|a, b| b.finding.severity.cmp(&a.finding.severity).then(a.first_ns.cmp(&b.first_ns)));
    let problem = match (&feed.problem, &feed.trailer) {
        (Some(e), _) => Some(format!("{e}: reported the events before it")),
        (None, None) => Some("the recording did not finish (no trailer): reported every event in the file".into()),
        (None, Some(_)) => None,
    };
    let t = feed.trailer.as_ref();
    let end = Ending {
        target: t.and_then(|t| t.target.clone()).unwrap_or(header.target.clone()),
        go: t.and_then(|t| t.go.clone()).or(header.go.clone()),
        lost: t.map_or(0, |t| t.lost_events),
        decode_errors: t.map_or(0, |t| t.decode_errors),
        first_decode_error: t.and_then(|t| t.first_decode_error.clone()),
        end_reason: t.map(|t| t.end_reason.clone()),
        problem,
        capacity: fold.capacity,
    };
    let mut report = Report::new(header, end, snap, found);
    report.format_version = feed.version();
    Ok(report)
}

/// What the end of a recording says about it: the target and its Go runtime
/// as they were then, the kernel's lost count, the records it could not
/// decode, why it ended, and any damage.
pub struct Ending {
    pub target: Target,
    pub go: Option<GoInfo>,
    pub lost: u64,
    pub decode_errors: u64,
    pub first_decode_error: Option<String>,
    pub end_reason: Option<String>,
    pub problem: Option<String>,
    pub capacity: Option<Capacity>,
}

impl Report {
    pub fn new(header: RecordHeader, end: Ending, snap: Snapshot, findings: Vec<ReportFinding>) -> Report {
        let Ending { target, go, lost, decode_errors, first_decode_error, end_reason, problem, capacity } = end;
        let mut sigurg_senders: Vec<Sender> = snap
            .threads
            .iter()
            .filter(|t| t.sigurg_sent > 0)
            .map(|t| Sender { tid: t.tid, comm: t.comm.clone(), sigurg_sent: t.sigurg_sent })
            .collect();
        sigurg_senders.sort_by(|a, b| b.sigurg_sent.cmp(&a.sigurg_sent).then(a.tid.cmp(&b.tid)));
        Report {
            pintrace_version: env!("CARGO_PKG_VERSION").to_string(),
            format_version: VERSION,
            recorded_by: header.pintrace_version.clone(),
            complete: problem.is_none(),
            problem,
            start_unix_ns: header.clock.to_realtime(header.start_ns),
            target,
            host: header.host,
            kernel: header.kernel,
            nr_cpus: header.nr_cpus,
            duration_ns: snap.duration_ns,
            end_reason,
            events: snap.events,
            lost_events: snap.lost_events.max(lost),
            decode_errors,
            first_decode_error,
            cgroup: snap.cgroup.as_ref().or(header.cgroup.as_ref()).map(|g| CgroupReport::new(g, snap.throttle)),
            findings,
            capacity,
            go: go.map(|g| GoReport { info: g.with_gomaxprocs(snap.gomaxprocs), sched: snap.go_sched.clone() }),
            probes: header.probes,
            process: snap.process,
            sigurg_senders,
            other_processes: snap.other_processes,
            threads: snap.threads,
        }
    }
}

/// One interval of `top --batch --json`: report's field names for the
/// interval's counts, plus per-second rates.
#[derive(Debug, Serialize)]
pub struct IntervalReport<'a> {
    /// Wall-clock end of the interval.
    pub time_unix_ns: u64,
    /// End of the interval, relative to the start of tracing.
    pub t_ns: u64,
    pub interval_ns: u64,
    pub target: &'a Target,
    pub decode_errors: u64,
    /// pintrace's own CPU use over the interval, in percent of one CPU (live only).
    pub pintrace_cpu_pct: Option<f64>,
    pub process: &'a IntervalStats,
    /// The cgroup and its throttling in the interval (null: none found).
    pub cgroup: Option<CgroupReport>,
    /// Threads against GOMAXPROCS + long-lived pinned + baseline (null: not Go).
    pub capacity: Option<Capacity>,
    /// What is wrong now, worst first.
    pub findings: &'a [Finding],
    /// The Go runtime (null: not a Go program).
    pub go: Option<GoReport>,
    pub sigurg_senders: &'a [SenderRate],
    /// The other processes the threads waited behind in the interval, most first.
    pub other_processes: &'a [OtherProcess],
    /// Threads alive or active in the interval, busiest first.
    pub threads: Vec<&'a ThreadRow>,
}

impl<'a> IntervalReport<'a> {
    pub fn new(
        header: &RecordHeader,
        target: &'a Target,
        live: &'a LiveSnapshot,
        findings: &'a [Finding],
        capacity: Option<Capacity>,
        stats: &run::Stats,
    ) -> IntervalReport<'a> {
        let mut threads: Vec<&ThreadRow> = live
            .threads
            .iter()
            .filter(|t| {
                t.died_ns.is_none_or(|d| d > live.interval.start_ns)
                    || t.on_cpu_ns + t.voluntary_switches + t.involuntary_switches > 0
            })
            .collect();
        threads.sort_by(|a, b| b.on_cpu_ns.cmp(&a.on_cpu_ns).then(a.tid.cmp(&b.tid)));
        IntervalReport {
            time_unix_ns: header.clock.to_realtime(live.now_ns),
            t_ns: live.now_ns.saturating_sub(header.start_ns),
            interval_ns: live.interval.end_ns.saturating_sub(live.interval.start_ns),
            target,
            decode_errors: stats.decode_errors,
            pintrace_cpu_pct: stats.self_cpu_pct,
            process: &live.interval,
            cgroup: live
                .cgroup
                .as_ref()
                .or(header.cgroup.as_ref())
                .map(|g| CgroupReport::new(g, live.interval.throttle)),
            findings,
            capacity,
            go: header
                .go
                .as_ref()
                .map(|g| GoReport { info: g.with_gomaxprocs(live.gomaxprocs), sched: live.go_sched.clone() }),
            sigurg_senders: &live.sigurg_senders,
            other_processes: &live.other_processes,
            threads,
        }
    }
}
