//! `pintrace report`: the per-thread table and process summary of a record file.
use std::{fmt::Write as _, process::ExitCode};

use anyhow::Result;

use super::ReportArgs;
use crate::{
    fmt::{self, clean},
    model::Latency,
    summary::{build, Report},
};

/// Exit code of a report whose file was cut short or damaged: the report of
/// what could be read is printed, with the problem on stderr.
pub const EXIT_INCOMPLETE: u8 = 3;
const DEFAULT_ROWS: usize = 40;

pub fn run(args: ReportArgs) -> Result<ExitCode> {
    let report = build(&args.file, args.findings.thresholds())?;
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&report)?)?;
    } else {
        super::out(&render(&report, if args.all { usize::MAX } else { DEFAULT_ROWS }))?;
    }
    match &report.problem {
        None => Ok(ExitCode::SUCCESS),
        Some(p) => {
            // The problem can quote the file's bytes (a bad trailer's JSON).
            eprintln!("pintrace: {}: {}", args.file.display(), clean(p));
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
    let _ = writeln!(o, "target    {} ({})  {}", r.target.pid_label(), clean(&r.target.comm), clean(&r.target.cmdline));
    let _ = writeln!(o, "host      {}, kernel {}, {} CPUs", r.host, r.kernel, r.nr_cpus);
    if let Some(g) = &r.go {
        let _ = write!(o, "go        {}", clean(&g.version));
        if let Some(m) = &g.module {
            let _ = write!(o, ", module {}", clean(m));
        }
        match g.gomaxprocs {
            Some(n) => {
                let _ = write!(o, ", GOMAXPROCS {n}");
            }
            None => {
                let _ = write!(o, ", GOMAXPROCS unknown");
            }
        }
        if let Some(c) = g.cgo_enabled {
            let _ = write!(o, ", cgo {}", if c { "on" } else { "off" });
        }
        let _ = writeln!(o);
        if let Some(s) = &g.sched {
            let _ = writeln!(
                o,
                "scheduler {} goroutines at the end; goroutines waiting for a P: {:.1} on average, at most {}, in {:.0}% of {} samples",
                s.goroutines, s.queued_mean, s.queued_max, s.queued_pct, s.samples
            );
        }
    }
    let by = &p.wait_by_cause_ns;
    if by.total() > 0 {
        let _ = writeln!(o, "pressure  {:.0}% of the time a thread waited; waits behind {by}", p.cpu_pressure_pct);
        for x in r.other_processes.iter().take(3) {
            let _ = writeln!(o, "          behind {} (pid {}): {}", clean(&x.comm), x.pid, fmt::ns(x.wait_caused_ns));
        }
    }
    if let Some(c) = &r.cgroup {
        let _ = write!(o, "cgroup    {} (v{}), {} CPUs allowed, quota ", clean(&c.path), c.version, c.cpus_allowed);
        match (c.quota_cpus, c.period_us) {
            (Some(q), Some(p)) => {
                let _ = write!(o, "{q:.2} CPUs per {}ms period", p / 1000);
                if c.limited_by.as_deref().is_some_and(|l| l != c.path) {
                    let _ = write!(o, " (set by {})", c.limited_by.as_deref().unwrap_or_default());
                }
                let _ = write!(
                    o,
                    "; throttled in {} of {} periods ({:.0}%), {} in all",
                    c.nr_throttled,
                    c.nr_periods,
                    c.throttled_pct,
                    fmt::ns(c.throttled_ns)
                );
            }
            _ => {
                let _ = write!(o, "none");
            }
        }
        let _ = writeln!(o);
    }
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
    if r.decode_errors > 0 {
        let n = r.decode_errors;
        let records = if n == 1 { "record" } else { "records" };
        let _ = write!(o, "decode errors  {} kernel {records} could not be decoded", fmt::count(n));
        if let Some(first) = &r.first_decode_error {
            let _ = write!(o, "; the first: {}", clean(first));
        }
        let _ = writeln!(o);
    }
    if let Some(problem) = &r.problem {
        let _ = writeln!(o, "          WARNING: {}", clean(problem));
    }
    if !r.findings.is_empty() {
        let _ = writeln!(o, "\nfindings");
        for f in &r.findings {
            let _ = writeln!(
                o,
                "  {} ({:?}, {} to {}, {} s): {}\n      what to do: {}",
                f.finding.rule,
                f.finding.severity,
                fmt::ns(f.first_ns),
                fmt::ns(f.last_ns),
                f.intervals,
                f.finding.message,
                f.finding.advice
            );
        }
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
        let _ = write!(o, "; sent by TID {} ({}) {} times", top.tid, clean(&top.comm), fmt::count(top.sigurg_sent));
    }
    if r.threads.iter().any(|t| t.role == Some(crate::goruntime::GoRole::Sysmon)) {
        let _ = write!(
            o,
            "\n              {} from sysmon (goroutines over 10 ms), {} from other threads (GC, stop-the-world)",
            fmt::count(p.sigurg_from_sysmon),
            fmt::count(p.sigurg.saturating_sub(p.sigurg_from_sysmon))
        );
    }
    let _ = writeln!(o);
    let _ = writeln!(o, "  signals     {} other", fmt::count(p.signals));
    let _ = writeln!(o, "  run queue   {}", lat(&p.runq_latency_ns, "waits"));
    if p.throttled_switches > 0 {
        let _ = writeln!(
            o,
            "  throttled   {} parked by the CPU quota, in {} waits (summed over threads; not in the run queue)",
            fmt::ns(p.throttled_ns),
            fmt::count(p.throttled_switches)
        );
    }
    if let Some(c) = &r.capacity {
        let _ = writeln!(o, "  capacity    {c}");
    }
    if p.pinned_threads + p.lock_calls > 0 {
        let _ = writeln!(
            o,
            "  pinned      {} threads at the end ({} for 3 s or more); {} LockOSThread calls",
            p.pinned_threads,
            p.long_pinned_threads,
            fmt::count(p.lock_calls)
        );
    }
    if p.tgkill_calls + p.clone_calls > 0 {
        let _ = writeln!(o, "  syscalls    {} tgkill, {} clone", p.tgkill_calls, p.clone_calls);
    }
    let _ = writeln!(o, "\nthreads (busiest first)");
    let _ = writeln!(
        o,
        "{:>8} {:<26} {:>9} {:>5} {:>8} {:>8} {:>6} {:>5} {:>7} {:>7} {:>9} {:>9} {:>9}",
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
        let role = fmt::role_tag(t.role, t.pinned);
        let name = format!("{}{}{role}", clean(&t.comm), if t.died_ns.is_some() { "†" } else { "" });
        let dash = |l: &Latency, v: u64| {
            if l.count == 0 {
                "-".to_string()
            } else {
                fmt::ns(v)
            }
        };
        let _ = writeln!(
            o,
            "{:>8} {:<26} {:>9} {:>5.1} {:>8} {:>8} {:>6} {:>5} {:>7} {:>7} {:>9} {:>9} {:>9}",
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
