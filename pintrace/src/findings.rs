//! Findings: plain statements of what is wrong, with the numbers that show
//! it and what to do. Pure: evaluated on the model's live snapshot (its last
//! interval and history) and what is known of the target (GOMAXPROCS, the
//! cgroup). A rule fires only while its condition has held for
//! `Thresholds::sustain_ns`, and clears when it stops holding.
use std::collections::BTreeMap;

use serde::Serialize;

use crate::{
    cgroup::CpuGroup,
    fmt::ns,
    model::live::{HistoryPoint, LiveSnapshot},
};

/// Rule names: stable, part of the JSON.
pub const GOMAXPROCS_OVER_QUOTA: &str = "gomaxprocs_over_quota";
pub const THREAD_CHURN: &str = "thread_churn";
pub const THREAD_GROWTH: &str = "thread_growth";
pub const SIGURG_PREEMPTION: &str = "sigurg_preemption";
pub const RUNQ_LATENCY: &str = "runq_latency";

/// The thresholds of the rules (each overridable from the command line).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Thresholds {
    /// How long a condition must hold before its rule fires.
    pub sustain_ns: u64,
    /// `runq_latency`: run-queue p99 above this.
    pub runq_p99_ns: u64,
    /// `thread_churn`: creations and exits per second at least this...
    pub churn_per_sec: f64,
    /// ...of threads that live less than this (p50).
    pub churn_lifetime_ns: u64,
    /// `sigurg_preemption`: one sender preempting at least this many times a second...
    pub sigurg_per_sec: f64,
    /// ...sending at least this share of all SIGURG (GC's signals come from several threads).
    pub sigurg_sender_share: f64,
    /// `thread_growth`: threads beyond GOMAXPROCS + pinned + this baseline.
    pub thread_baseline: u64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            sustain_ns: 3_000_000_000,
            runq_p99_ns: 5_000_000,
            churn_per_sec: 5.0,
            churn_lifetime_ns: 1_000_000_000,
            sigurg_per_sec: 20.0,
            sigurg_sender_share: 0.8,
            thread_baseline: 10,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Info,
    Warning,
    Critical,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Finding {
    pub rule: &'static str,
    pub severity: Severity,
    /// One line: what is wrong, in numbers.
    pub message: String,
    /// What to do about it.
    pub advice: &'static str,
    pub evidence: BTreeMap<&'static str, f64>,
}

/// What is known of the target besides its events.
#[derive(Clone, Debug, Default)]
pub struct Context<'a> {
    /// GOMAXPROCS, if not in the snapshot (tests).
    pub gomaxprocs: Option<u32>,
    /// Threads locked to goroutines (LockOSThread), when known.
    pub pinned: Option<u64>,
    pub cgroup: Option<&'a CpuGroup>,
    pub nr_cpus: u32,
}

impl<'a> Context<'a> {
    /// What a recording's header says of the target.
    pub fn of(header: &'a crate::record::RecordHeader) -> Context<'a> {
        Context { cgroup: header.cgroup.as_ref(), nr_cpus: header.nr_cpus, ..Default::default() }
    }
}

/// The history points of the last `sustain_ns` (None if the history is shorter).
fn recent(history: &[HistoryPoint], sustain_ns: u64) -> Option<&[HistoryPoint]> {
    let last = history.last()?;
    let from = history.iter().position(|h| h.t_ns + sustain_ns > last.t_ns)?;
    // The window must reach back a whole `sustain_ns`.
    if from == 0 && history[0].t_ns + sustain_ns > last.t_ns + history_step(history) {
        return None;
    }
    Some(&history[from..])
}

fn history_step(history: &[HistoryPoint]) -> u64 {
    match history {
        [.., a, b] => b.t_ns.saturating_sub(a.t_ns),
        _ => u64::MAX / 2,
    }
}

pub fn evaluate(live: &LiveSnapshot, ctx: &Context, t: &Thresholds) -> Vec<Finding> {
    let mut out = Vec::new();
    let Some(window) = recent(&live.history, t.sustain_ns) else { return out };
    let iv = &live.interval;

    // runq_latency
    if window.iter().all(|h| h.runq_p99_ns > t.runq_p99_ns) {
        let usable = ctx.cgroup.map_or(f64::from(ctx.nr_cpus), CpuGroup::cpus_usable);
        let mut evidence = BTreeMap::from([
            ("runq_p99_ns", iv.process.runq_latency_ns.p99 as f64),
            ("runq_waits", iv.process.runq_latency_ns.count as f64),
            ("cpus_used", iv.rates.cpus_used),
            ("cpus_usable", usable),
            ("threads", iv.process.threads_now as f64),
        ]);
        let throttled = iv.rates.throttled_periods_pct.filter(|p| *p > 0.0);
        if let Some(p) = throttled {
            evidence.insert("throttled_periods_pct", p);
        }
        out.push(Finding {
            rule: RUNQ_LATENCY,
            severity: if iv.process.runq_latency_ns.p99 > 4 * t.runq_p99_ns { Severity::Critical } else { Severity::Warning },
            message: format!(
                "threads wait {} (p99) for a CPU, over {}: more runnable threads than CPUs ({:.2} in use of {usable:.2}){}",
                ns(iv.process.runq_latency_ns.p99),
                ns(t.runq_p99_ns),
                iv.rates.cpus_used,
                throttled.map(|p| format!("; the CPU quota throttles {p:.0}% of periods")).unwrap_or_default()
            ),
            advice: "fewer runnable threads than CPUs: lower GOMAXPROCS to the CPUs (or quota) really available, or give the service more CPU",
            evidence,
        });
    }

    // thread_churn
    let lifetime = iv.process.thread_lifetime_ns.p50;
    if window.iter().all(|h| h.created_per_sec >= t.churn_per_sec && h.exited_per_sec >= t.churn_per_sec)
        && iv.process.thread_lifetime_ns.count > 0
        && lifetime < t.churn_lifetime_ns
    {
        out.push(Finding {
            rule: THREAD_CHURN,
            severity: Severity::Warning,
            message: format!(
                "{:.0} threads created and {:.0} exited per second, living {} (p50): goroutines exit while locked to their thread, so the runtime destroys it and starts another",
                iv.rates.threads_created_per_sec,
                iv.rates.threads_exited_per_sec,
                ns(lifetime)
            ),
            advice: "pair every runtime.LockOSThread with a deferred UnlockOSThread, or keep a fixed pool of locked worker goroutines",
            evidence: BTreeMap::from([
                ("threads_created_per_sec", iv.rates.threads_created_per_sec),
                ("threads_exited_per_sec", iv.rates.threads_exited_per_sec),
                ("thread_lifetime_p50_ns", lifetime as f64),
            ]),
        });
    }

    // sigurg_preemption: one thread (sysmon) preempting the same hot threads.
    let total: u64 = live.sigurg_senders.iter().map(|s| s.sigurg_sent).sum();
    if let Some(top) = live.sigurg_senders.first() {
        let share = if total > 0 { top.sigurg_sent as f64 / total as f64 } else { 0.0 };
        let receives = live.threads.iter().find(|r| r.tid == top.tid).map_or(0, |r| r.sigurg_received);
        let hot: Vec<_> = live.threads.iter().filter(|r| r.sigurg_received_per_sec >= t.sigurg_per_sec / 2.0).collect();
        if share >= t.sigurg_sender_share
            && receives == 0
            && top.sigurg_per_sec >= t.sigurg_per_sec
            && window.iter().all(|h| h.sigurg_per_sec >= t.sigurg_per_sec)
            && !hot.is_empty()
        {
            out.push(Finding {
                rule: SIGURG_PREEMPTION,
                severity: Severity::Warning,
                message: format!(
                    "thread {} (sysmon) preempts {} busy thread(s) {:.0} times a second: goroutines run over 10 ms without yielding, and each preemption is a signal and a context switch",
                    top.tid,
                    hot.len(),
                    top.sigurg_per_sec
                ),
                advice: "find the long-running loops (pprof CPU profile) and split their work, or run them on fewer goroutines than GOMAXPROCS",
                evidence: BTreeMap::from([
                    ("sender_tid", f64::from(top.tid)),
                    ("sigurg_per_sec", top.sigurg_per_sec),
                    ("sender_share", share),
                    ("hot_threads", hot.len() as f64),
                ]),
            });
        }
    }

    let gomaxprocs = ctx.gomaxprocs.or(live.gomaxprocs);
    // gomaxprocs_over_quota
    if let (Some(g), Some(cg)) = (gomaxprocs, ctx.cgroup) {
        let usable = cg.cpus_usable();
        if f64::from(g) > usable.ceil() {
            let r = &iv.rates;
            let throttled = r.throttled_periods_pct.unwrap_or(0.0);
            let per_period_ms = match (iv.throttle, cg.period_us) {
                (Some(s), Some(_)) if s.nr_throttled > 0 => s.throttled_ns as f64 / s.nr_throttled as f64 / 1e6,
                _ => 0.0,
            };
            let quota = cg.quota_cpus.filter(|q| *q <= f64::from(cg.cpus_allowed));
            let limit = match quota {
                Some(q) => format!("quota {q:.1} CPUs"),
                None => format!("{} CPUs allowed", cg.cpus_allowed),
            };
            let effect = match quota {
                Some(_) => {
                    format!("throttled in {throttled:.0}% of periods, {per_period_ms:.0} ms per throttled period")
                }
                None => "more Ps than CPUs: runnable goroutines' threads wait for each other".to_string(),
            };
            out.push(Finding {
                rule: GOMAXPROCS_OVER_QUOTA,
                severity: if throttled > 0.0 { Severity::Critical } else { Severity::Warning },
                message: format!("GOMAXPROCS {g} > {limit}; {effect}"),
                advice: "set GOMAXPROCS to the quota (Go 1.25+ does this itself; older: GOMAXPROCS env or go.uber.org/automaxprocs)",
                evidence: BTreeMap::from([
                    ("gomaxprocs", f64::from(g)),
                    ("cpus_usable", usable),
                    ("throttled_periods_pct", throttled),
                    ("throttled_ms_per_period", per_period_ms),
                ]),
            });
        }
    }

    // thread_growth
    if let Some(g) = gomaxprocs {
        let pinned = ctx.pinned.unwrap_or(0);
        let expected = u64::from(g) + pinned + t.thread_baseline;
        let now = iv.process.threads_now;
        if now > expected && window.iter().all(|h| h.threads > expected) {
            out.push(Finding {
                rule: THREAD_GROWTH,
                severity: if now > 2 * expected { Severity::Critical } else { Severity::Warning },
                message: format!(
                    "{now} threads for GOMAXPROCS {g}{}: expected at most {expected}; threads blocked in syscalls or cgo, or goroutines locked per request",
                    ctx.pinned.map(|p| format!(" + {p} pinned")).unwrap_or_default()
                ),
                advice: "look for blocking syscalls and cgo calls on many goroutines, and LockOSThread per request; bound them with a worker pool",
                evidence: BTreeMap::from([
                    ("threads", now as f64),
                    ("gomaxprocs", f64::from(g)),
                    ("pinned", pinned as f64),
                    ("expected_max", expected as f64),
                ]),
            });
        }
    }
    out.sort_by(|a, b| b.severity.cmp(&a.severity).then(a.rule.cmp(b.rule)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        event::{Comm, Event, EventKind, NO_CPU},
        model::{Model, SIGURG},
    };

    const MS: u64 = 1_000_000;
    const S: u64 = 1000 * MS;

    fn ev(ts: u64, cpu: u32, kind: EventKind) -> Event {
        Event { ts_ns: ts, cpu, kind }
    }

    fn rules(live: &LiveSnapshot, ctx: &Context) -> Vec<&'static str> {
        evaluate(live, ctx, &Thresholds::default()).iter().map(|f| f.rule).collect()
    }

    /// `secs` seconds of a Go-like process in which `each_second` adds events for second `s`.
    fn run(secs: u64, mut each_second: impl FnMut(&mut Model, u64)) -> Model {
        let mut m = Model::new(0);
        for tid in [100, 101, 102] {
            m.apply(&ev(0, NO_CPU, EventKind::ThreadSeen { tid, tgid: 100, comm: Comm::new("app") }));
        }
        for s in 0..secs {
            each_second(&mut m, s);
            m.tick((s + 1) * S);
        }
        m
    }

    fn ctx() -> Context<'static> {
        Context { nr_cpus: 2, ..Default::default() }
    }

    #[test]
    fn a_healthy_program_has_no_findings_even_with_gc_signals() {
        let m = run(10, |m, s| {
            // GC: a few SIGURG from several threads; brief runs with short waits.
            for (i, from) in [101u32, 102].iter().enumerate() {
                let to = if *from == 101 { 102 } else { 101 };
                m.apply(&ev(
                    s * S + i as u64 * MS,
                    0,
                    EventKind::Signal {
                        sender_tid: *from,
                        sender_tgid: 100,
                        target_tid: to,
                        sig: SIGURG,
                        code: -6,
                        result: 0,
                        group: false,
                    },
                ));
            }
            m.apply(&ev(s * S + 10 * MS, 0, EventKind::Switch { prev_tid: 0, next_tid: 100, prev_state: 0 }));
            m.apply(&ev(s * S + 20 * MS, 0, EventKind::Switch { prev_tid: 100, next_tid: 0, prev_state: 1 }));
        });
        assert!(rules(&m.live(None), &ctx()).is_empty());
    }

    #[test]
    fn churn_fires_after_it_is_sustained_and_clears_when_it_stops() {
        let mut tid = 1000;
        let mut churn = |m: &mut Model, s: u64| {
            for i in 0..20 {
                let t0 = s * S + i * 40 * MS;
                m.apply(&ev(
                    t0,
                    0,
                    EventKind::NewTask {
                        parent_tid: 100,
                        parent_tgid: 100,
                        child_tid: tid,
                        clone_flags: pintrace_common::CLONE_THREAD,
                        comm: Comm::new("app"),
                    },
                ));
                m.apply(&ev(
                    t0 + 5 * MS,
                    0,
                    EventKind::Exit { tid, tgid: 100, group_dead: false, comm: Comm::new("app") },
                ));
                tid += 1;
            }
        };
        let mut m = run(2, &mut churn);
        assert!(rules(&m.live(None), &ctx()).is_empty(), "2 s is not yet sustained");
        churn(&mut m, 2);
        m.tick(3 * S);
        churn(&mut m, 3);
        m.tick(4 * S);
        let live = m.live(None);
        let f = evaluate(&live, &ctx(), &Thresholds::default());
        assert_eq!(f.iter().map(|f| f.rule).collect::<Vec<_>>(), [THREAD_CHURN]);
        assert!(
            f[0].message.starts_with("20 threads created and 20 exited per second, living 5ms"),
            "{}",
            f[0].message
        );
        m.tick(5 * S);
        assert!(rules(&m.live(None), &ctx()).is_empty(), "clears when the churn stops");
    }

    #[test]
    fn sysmon_preempting_a_hot_thread() {
        let m = run(5, |m, s| {
            for i in 0..50 {
                m.apply(&ev(
                    s * S + i * 20 * MS,
                    0,
                    EventKind::Signal {
                        sender_tid: 101,
                        sender_tgid: 100,
                        target_tid: 100,
                        sig: SIGURG,
                        code: -6,
                        result: 0,
                        group: false,
                    },
                ));
            }
        });
        let live = m.live(None);
        let f = evaluate(&live, &ctx(), &Thresholds::default());
        assert_eq!(f.iter().map(|f| f.rule).collect::<Vec<_>>(), [SIGURG_PREEMPTION]);
        assert!(
            f[0].message.starts_with("thread 101 (sysmon) preempts 1 busy thread(s) 50 times a second"),
            "{}",
            f[0].message
        );
    }

    #[test]
    fn run_queue_latency_and_gomaxprocs_over_the_quota() {
        let m = run(5, |m, s| {
            m.apply(&ev(
                s * S,
                NO_CPU,
                EventKind::Throttle { nr_periods: s * 10, nr_throttled: s * 4, throttled_ns: s * 4 * 38 * MS },
            ));
            // 100 preempted, waits 60 ms, runs.
            m.apply(&ev(s * S + MS, 0, EventKind::Switch { prev_tid: 100, next_tid: 0, prev_state: 0 }));
            m.apply(&ev(s * S + 61 * MS, 0, EventKind::Switch { prev_tid: 0, next_tid: 100, prev_state: 0 }));
        });
        let cg = CpuGroup {
            version: 1,
            quota_cpus: Some(2.0),
            period_us: Some(100_000),
            cpus_allowed: 8,
            ..Default::default()
        };
        let ctx = Context { gomaxprocs: Some(8), cgroup: Some(&cg), nr_cpus: 8, pinned: None };
        let live = m.live(None);
        let f = evaluate(&live, &ctx, &Thresholds::default());
        assert_eq!(f.iter().map(|f| f.rule).collect::<Vec<_>>(), [GOMAXPROCS_OVER_QUOTA, RUNQ_LATENCY]);
        assert_eq!(
            f[0].message,
            "GOMAXPROCS 8 > quota 2.0 CPUs; throttled in 40% of periods, 38 ms per throttled period"
        );
        assert_eq!(f[0].severity, Severity::Critical);
        let ok = Context { gomaxprocs: Some(2), ..ctx };
        assert_eq!(rules(&live, &ok), [RUNQ_LATENCY]);
    }

    #[test]
    fn thread_growth_beyond_gomaxprocs() {
        let m = run(4, |m, s| {
            if s == 0 {
                for tid in 200..230 {
                    m.apply(&ev(
                        MS,
                        0,
                        EventKind::NewTask {
                            parent_tid: 100,
                            parent_tgid: 100,
                            child_tid: tid,
                            clone_flags: pintrace_common::CLONE_THREAD,
                            comm: Comm::new("app"),
                        },
                    ));
                }
            }
        });
        let ctx = Context { gomaxprocs: Some(4), nr_cpus: 4, ..Default::default() };
        let f = evaluate(&m.live(None), &ctx, &Thresholds::default());
        assert_eq!(f.iter().map(|f| f.rule).collect::<Vec<_>>(), [THREAD_GROWTH]);
        assert!(f[0].message.starts_with("33 threads for GOMAXPROCS 4: expected at most 14"), "{}", f[0].message);
    }
}
