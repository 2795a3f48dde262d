//! `top --batch` and `replay --batch`: one block of text, or one JSON
//! object per line, per interval, like `top -b`.
use std::io::Write as _;

use anyhow::{Context as _, Result};

use crate::{
    analysis::Analyzer,
    event::Event,
    findings::{self, Finding, Thresholds},
    fmt::{self, clean},
    model::live::LiveSnapshot,
    record::{RecordHeader, Target},
    run::{End, Flow, Sink, Stats},
    summary::IntervalReport,
};

/// Threads shown per text block.
const ROWS: usize = 20;

pub struct BatchSink {
    analyzer: Analyzer,
    target: Target,
    json: bool,
    count: Option<u64>,
    printed: u64,
}

impl BatchSink {
    pub fn new(header: &RecordHeader, json: bool, count: Option<u64>, thresholds: Thresholds) -> BatchSink {
        BatchSink {
            analyzer: Analyzer::new(header, thresholds).retain_exited(crate::tui::RETAIN_EXITED_NS),
            target: header.target.clone(),
            json,
            count,
            printed: 0,
        }
    }

    fn print(&mut self, now_ns: u64, stats: &Stats) -> Result<Flow> {
        self.analyzer.tick(now_ns);
        let frame = self.analyzer.frame(None);
        let header = self.analyzer.header();
        let out = if self.json {
            let mut line = serde_json::to_string(&IntervalReport::new(
                header,
                &self.target,
                &frame.live,
                &frame.findings,
                frame.capacity,
                stats,
            ))?;
            line.push('\n');
            line
        } else {
            block(header, &self.target, &frame.live, &frame.findings, frame.capacity, stats)
        };
        let mut stdout = std::io::stdout().lock();
        stdout.write_all(out.as_bytes()).and_then(|()| stdout.flush()).context("writing to standard output")?;
        self.printed += 1;
        Ok(if self.count.is_some_and(|n| self.printed >= n) { Flow::Stop } else { Flow::Continue })
    }
}

impl Sink for BatchSink {
    fn events(&mut self, events: &[Event]) -> Result<()> {
        self.analyzer.apply(events);
        Ok(())
    }

    fn tick(&mut self, now_ns: u64, stats: &Stats) -> Result<Flow> {
        self.print(now_ns, stats)
    }

    fn retarget(&mut self, target: &Target) {
        self.target = target.clone();
    }

    fn go_changed(&mut self, go: Option<&crate::goruntime::GoInfo>) {
        self.analyzer.set_go(go);
    }

    fn ended(&mut self, end: End, end_ns: u64, stats: &Stats) -> Result<Flow> {
        // The last, partial interval, unless the sink itself asked to stop.
        if end != End::Done && end_ns > self.analyzer.last_tick() && self.count.is_none_or(|n| self.printed < n) {
            self.print(end_ns, stats)?;
        }
        if !self.json {
            eprintln!("pintrace: {end}");
        }
        Ok(Flow::Stop)
    }
}

/// One interval as text.
fn block(
    header: &RecordHeader,
    target: &Target,
    live: &LiveSnapshot,
    found: &[Finding],
    capacity: Option<findings::Capacity>,
    stats: &Stats,
) -> String {
    use std::fmt::Write as _;
    let iv = &live.interval;
    let (p, r) = (&iv.process, &iv.rates);
    let mut o = String::new();
    let _ = writeln!(
        o,
        "pintrace  {}  pid {} ({})  up {}  interval {}",
        fmt::wall(header.clock.to_realtime(live.now_ns)),
        target.pid_label(),
        clean(&target.comm),
        fmt::ns(live.now_ns.saturating_sub(header.start_ns)),
        fmt::ns(iv.end_ns.saturating_sub(iv.start_ns)),
    );
    let _ = writeln!(
        o,
        "threads {} now, {} peak, {} at start; {:.1} created/s, {:.1} exited/s; {:.1} migrations/s; switches {:.0}/s involuntary, {:.0}/s voluntary",
        p.threads_now,
        live.totals.process.threads_peak,
        live.totals.process.threads_at_start,
        r.threads_created_per_sec,
        r.threads_exited_per_sec,
        r.migrations_per_sec,
        r.involuntary_switches_per_sec,
        r.voluntary_switches_per_sec,
    );
    let _ = write!(o, "SIGURG {:.1}/s", r.sigurg_per_sec);
    if let Some(s) = live.sigurg_senders.first() {
        let _ = write!(o, " (from {} {})", s.tid, clean(&s.comm));
    }
    if live.threads.iter().any(|t| t.role == Some(crate::goruntime::GoRole::Sysmon)) {
        let _ = write!(o, ", {:.1}/s from sysmon", r.sigurg_from_sysmon_per_sec);
    }
    let l = &p.runq_latency_ns;
    if l.count > 0 {
        let _ = write!(o, "; run queue p50 {} p99 {} max {}", fmt::ns(l.p50), fmt::ns(l.p99), fmt::ns(l.max));
    }
    let _ = write!(o, "; CPU {:.2} of {}; lost {}", r.cpus_used, header.nr_cpus, live.totals.lost_events);
    if stats.decode_errors > 0 {
        let _ = write!(o, "; {} undecodable", stats.decode_errors);
    }
    if let Some(c) = stats.self_cpu_pct {
        let _ = write!(o, "; pintrace {c:.1}% CPU");
    }
    let _ = writeln!(o);
    if let Some(g) = live.gomaxprocs {
        let _ = writeln!(
            o,
            "GOMAXPROCS {g}{}",
            header.go.as_ref().map(|g| format!(" ({})", clean(&g.version))).unwrap_or_default()
        );
    }
    let by = &p.wait_by_cause_ns;
    if by.total() > 0 {
        let _ = write!(o, "CPU pressure {:.0}%: waited behind {by}", p.cpu_pressure_pct);
        if let Some(x) = live.other_processes.first() {
            let _ = write!(o, "; most behind {} (pid {})", clean(&x.comm), x.pid);
        }
        let _ = writeln!(o);
    }
    if let Some(s) = &live.go_sched {
        let _ = writeln!(
            o,
            "Go scheduler: {} goroutines; waiting for a P: {} now ({} global, local {:?}, {} in runnext), {:.1} on average, in {:.0}% of samples; {} idle Ps, {} idle and {} spinning threads",
            s.goroutines,
            s.queued,
            s.runqueue,
            s.p_runqueues,
            s.p_runnext,
            s.queued_mean,
            s.queued_pct,
            s.idle_ps,
            s.idle_threads,
            s.spinning_threads
        );
    }
    if let Some(g) = live.cgroup.as_ref().or(header.cgroup.as_ref()) {
        let _ = write!(o, "cgroup {} quota {}", clean(&g.path), g.describe_quota());
        if let (Some(pct), Some(ms)) = (r.throttled_periods_pct, r.throttled_ms_per_sec) {
            let _ = write!(o, "; throttled in {pct:.0}% of periods, {ms:.0}ms/s");
        }
        let _ = writeln!(o);
    }
    if let Some(c) = capacity {
        let _ = write!(o, "capacity {c}");
        if p.pinned_threads > 0 || r.lock_calls_per_sec > 0.0 {
            let _ = write!(o, "; {} pinned now, {:.1} LockOSThread calls/s", p.pinned_threads, r.lock_calls_per_sec);
        }
        let _ = writeln!(o);
    }
    if p.throttled_switches > 0 {
        let _ = writeln!(
            o,
            "threads throttled {} in {} waits (parked by the CPU quota)",
            fmt::ns(p.throttled_ns),
            p.throttled_switches
        );
    }
    for f in found {
        let _ = writeln!(o, "FINDING {} ({:?}): {}", f.rule, f.severity, f.message);
    }
    let _ = writeln!(
        o,
        "{:>8} {:<26} {:>1} {:>6} {:>4} {:>7} {:>8} {:>8} {:>7} {:>9} {:>8}",
        "TID", "NAME", "S", "CPU%", "CPU", "MIGR/s", "INVOL/s", "VOL/s", "URG/s", "RUNQ-P99", "AGE"
    );
    let mut rows: Vec<_> = live.threads.iter().filter(|t| t.died_ns.is_none_or(|d| d > iv.start_ns)).collect();
    rows.sort_by(|a, b| b.on_cpu_ns.cmp(&a.on_cpu_ns).then(a.tid.cmp(&b.tid)));
    for t in rows.iter().take(ROWS) {
        let mark = if t.died_ns.is_some() {
            "†"
        } else if t.new {
            "+"
        } else {
            ""
        };
        let age = live.now_ns.saturating_sub(t.born_ns.unwrap_or(header.start_ns));
        let _ = writeln!(
            o,
            "{:>8} {:<26} {:>1} {:>6.1} {:>4} {:>7.1} {:>8.1} {:>8.1} {:>7.1} {:>9} {:>8}",
            t.tid,
            format!("{}{mark}{}", clean(&t.comm), fmt::role_tag(t.role, t.pinned)),
            t.state.letter(),
            t.cpu_pct,
            t.last_cpu.map_or_else(|| "-".to_string(), |c| c.to_string()),
            t.migrations_per_sec,
            t.involuntary_switches_per_sec,
            t.voluntary_switches_per_sec,
            t.sigurg_received_per_sec,
            if t.runq_latency_ns.count > 0 { fmt::ns(t.runq_latency_ns.p99) } else { "-".into() },
            fmt::ns(age),
        );
    }
    if rows.len() > ROWS {
        let _ = writeln!(o, "  … {} more threads", rows.len() - ROWS);
    }
    let _ = writeln!(o);
    o
}
