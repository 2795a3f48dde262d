//! Findings: plain statements of what is wrong, with the numbers that show
//! it and what to do. Pure: evaluated on the model's live snapshot (its last
//! interval and history) and what is known of the target (GOMAXPROCS, the
//! cgroup). A rule fires only while its condition has held for
//! `Thresholds::sustain_ns`, and clears when it stops holding.
use std::collections::BTreeMap;

use serde::Serialize;

use crate::{
    cgroup::CpuGroup,
    fmt::{clean, ns},
    goruntime::{GoRole, GoState},
    model::live::{HistoryPoint, IntervalStats, LiveSnapshot},
};

/// Rule names: stable, part of the JSON.
pub const GOMAXPROCS_OVER_QUOTA: &str = "gomaxprocs_over_quota";
pub const THREAD_CHURN: &str = "thread_churn";
pub const THREAD_GROWTH: &str = "thread_growth";
pub const SIGURG_PREEMPTION: &str = "sigurg_preemption";
pub const RUNQ_LATENCY: &str = "runq_latency";
pub const PINNED_STARVATION: &str = "pinned_starvation";
pub const PINNED_MIGRATION: &str = "pinned_migration";
pub const GOMAXPROCS_BELOW_CPUS: &str = "gomaxprocs_below_cpus";
pub const NOISY_NEIGHBOR: &str = "noisy_neighbor";

/// Every rule, in the order of the issue that named them.
pub const RULES: [&str; 9] = [
    GOMAXPROCS_OVER_QUOTA,
    THREAD_CHURN,
    THREAD_GROWTH,
    PINNED_STARVATION,
    SIGURG_PREEMPTION,
    RUNQ_LATENCY,
    PINNED_MIGRATION,
    GOMAXPROCS_BELOW_CPUS,
    NOISY_NEIGHBOR,
];

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
    /// `pinned_starvation`: the most saturated long-lived pinned thread on a CPU or waiting for one at least
    /// this much of the time (percent): it can take no more work...
    pub pinned_hot_pct: f64,
    /// ...while the other pinned threads are on a CPU at most this much (median)...
    pub pinned_idle_pct: f64,
    /// ...and are woken at least this often (median, per second): trickles of work.
    pub pinned_wakeups_per_sec: f64,
    /// `pinned_migration`: long-lived pinned threads moved between CPUs at least this often
    /// (per second and pinned thread; the load balancer moves a thread now and then).
    pub pinned_migrations_per_sec: f64,
    /// `sigurg_preemption`, `gomaxprocs_below_cpus`: goroutines wait for a P
    /// in at least this share (percent) of the scheduler's samples of each interval.
    pub go_queued_pct: f64,
    /// `noisy_neighbor`: the share (percent) of the threads' runnable time
    /// spent waiting behind other processes, at least...
    pub noisy_pct: f64,
    /// ...and that time in CPUs (a sleeper that waits a little behind
    /// others, in relative terms a lot, loses nothing to act on).
    pub noisy_cpus: f64,
}

/// A threshold's command-line name, what it means, and its place in `Thresholds`.
pub struct ThresholdSpec {
    pub name: &'static str,
    pub unit: &'static str,
    pub help: &'static str,
    get: fn(&Thresholds) -> f64,
    set: fn(&mut Thresholds, f64),
    /// The largest value that means something (a share, a percentage).
    max: f64,
}

/// No bound but a sane one.
const ANY: f64 = 1e12;

/// Every threshold, as `--threshold NAME=VALUE` names it.
pub const THRESHOLDS: &[ThresholdSpec] = &[
    ThresholdSpec {
        name: "sustain",
        unit: "s",
        help: "how long a condition must hold before its finding shows (0: at once, on the last interval)",
        get: |t| t.sustain_ns as f64 / 1e9,
        set: |t, v| t.sustain_ns = (v * 1e9) as u64,
        max: ANY,
    },
    ThresholdSpec {
        name: "runq_p99",
        unit: "ms",
        help: "runq_latency: run-queue p99 above this",
        get: |t| t.runq_p99_ns as f64 / 1e6,
        set: |t, v| t.runq_p99_ns = (v * 1e6) as u64,
        max: ANY,
    },
    ThresholdSpec {
        name: "churn_per_sec",
        unit: "/s",
        help: "thread_churn: thread creations and exits per second, each at least",
        get: |t| t.churn_per_sec,
        set: |t, v| t.churn_per_sec = v,
        max: ANY,
    },
    ThresholdSpec {
        name: "churn_lifetime",
        unit: "ms",
        help: "thread_churn: threads living less than this (p50)",
        get: |t| t.churn_lifetime_ns as f64 / 1e6,
        set: |t, v| t.churn_lifetime_ns = (v * 1e6) as u64,
        max: ANY,
    },
    ThresholdSpec {
        name: "sigurg_per_sec",
        unit: "/s",
        help: "sigurg_preemption: SIGURG from sysmon per second",
        get: |t| t.sigurg_per_sec,
        set: |t, v| t.sigurg_per_sec = v,
        max: ANY,
    },
    ThresholdSpec {
        name: "sigurg_sender_share",
        unit: "",
        help: "sigurg_preemption: sysmon's share of all SIGURG (0-1)",
        get: |t| t.sigurg_sender_share,
        set: |t, v| t.sigurg_sender_share = v,
        max: 1.0,
    },
    ThresholdSpec {
        name: "thread_baseline",
        unit: "threads",
        help: "thread_growth: threads allowed beyond GOMAXPROCS + long-lived pinned",
        get: |t| t.thread_baseline as f64,
        set: |t, v| t.thread_baseline = v as u64,
        max: ANY,
    },
    ThresholdSpec {
        name: "pinned_hot",
        unit: "%",
        help: "pinned_starvation: the most saturated pinned thread's time on a CPU or waiting for one, at least",
        get: |t| t.pinned_hot_pct,
        set: |t, v| t.pinned_hot_pct = v,
        max: 100.0,
    },
    ThresholdSpec {
        name: "pinned_idle",
        unit: "%",
        help: "pinned_starvation: the other pinned threads' CPU (median), at most",
        get: |t| t.pinned_idle_pct,
        set: |t, v| t.pinned_idle_pct = v,
        max: 100.0,
    },
    ThresholdSpec {
        name: "pinned_wakeups",
        unit: "/s",
        help: "pinned_starvation: the other pinned threads' wake-ups per second (median), at least",
        get: |t| t.pinned_wakeups_per_sec,
        set: |t, v| t.pinned_wakeups_per_sec = v,
        max: ANY,
    },
    ThresholdSpec {
        name: "pinned_migrations",
        unit: "/s",
        help: "pinned_migration: moves per second of each long-lived pinned thread while running or runnable (mean), at least",
        get: |t| t.pinned_migrations_per_sec,
        set: |t, v| t.pinned_migrations_per_sec = v,
        max: ANY,
    },
    ThresholdSpec {
        name: "go_queued",
        unit: "%",
        help: "sigurg_preemption, gomaxprocs_below_cpus: share of Go scheduler samples with goroutines waiting for a P, at least",
        get: |t| t.go_queued_pct,
        set: |t, v| t.go_queued_pct = v,
        max: 100.0,
    },
    ThresholdSpec {
        name: "noisy_pct",
        unit: "%",
        help: "noisy_neighbor: share of the threads' runnable time spent waiting behind other processes, at least",
        get: |t| t.noisy_pct,
        set: |t, v| t.noisy_pct = v,
        max: 100.0,
    },
    ThresholdSpec {
        name: "noisy_cpus",
        unit: "CPUs",
        help: "noisy_neighbor: that time in CPUs, at least",
        get: |t| t.noisy_cpus,
        set: |t, v| t.noisy_cpus = v,
        max: ANY,
    },
];

impl Thresholds {
    /// Applies `NAME=VALUE` (a name from `THRESHOLDS`, a finite non-negative number).
    pub fn set(&mut self, assignment: &str) -> Result<(), String> {
        let names = || THRESHOLDS.iter().map(|s| s.name).collect::<Vec<_>>().join(", ");
        let (name, value) = assignment
            .split_once('=')
            .ok_or_else(|| format!("threshold {assignment:?} is not NAME=VALUE (names: {})", names()))?;
        let spec = THRESHOLDS
            .iter()
            .find(|s| s.name == name.trim())
            .ok_or_else(|| format!("no threshold named {:?} (names: {})", name.trim(), names()))?;
        let v: f64 =
            value.trim().parse().ok().filter(|v: &f64| v.is_finite() && *v >= 0.0 && *v <= spec.max).ok_or_else(
                || {
                    if spec.max < ANY {
                        format!("threshold {}: {:?} is not a number from 0 to {}", spec.name, value.trim(), spec.max)
                    } else {
                        format!("threshold {}: {:?} is not a number from 0 up", spec.name, value.trim())
                    }
                },
            )?;
        (spec.set)(self, v);
        Ok(())
    }

    /// Every threshold as `name=value unit`, for help and reports.
    pub fn describe(&self) -> Vec<String> {
        THRESHOLDS.iter().map(|s| format!("{}={} {}  {}", s.name, (s.get)(self), s.unit, s.help)).collect()
    }
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
            pinned_hot_pct: 90.0,
            pinned_idle_pct: 20.0,
            pinned_wakeups_per_sec: 10.0,
            pinned_migrations_per_sec: 2.0,
            go_queued_pct: 50.0,
            noisy_pct: 10.0,
            noisy_cpus: 0.05,
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

#[derive(Clone, Debug, PartialEq)]
pub struct Finding {
    pub rule: &'static str,
    pub severity: Severity,
    /// One line: what is wrong, in numbers.
    pub message: String,
    /// What to do about it.
    pub advice: &'static str,
    pub evidence: BTreeMap<&'static str, f64>,
    /// Evidence that is a name, not a number (a process's comm); in the
    /// JSON it stands in `evidence` with the numbers.
    pub text: BTreeMap<&'static str, String>,
}

impl Serialize for Finding {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct as _;
        #[derive(Serialize)]
        #[serde(untagged)]
        enum Value<'a> {
            Number(f64),
            Text(&'a str),
        }
        let mut evidence: BTreeMap<&str, Value> = self.evidence.iter().map(|(k, v)| (*k, Value::Number(*v))).collect();
        evidence.extend(self.text.iter().map(|(k, v)| (*k, Value::Text(v))));
        let mut st = s.serialize_struct("Finding", 5)?;
        st.serialize_field("rule", &self.rule)?;
        st.serialize_field("severity", &self.severity)?;
        st.serialize_field("message", &self.message)?;
        st.serialize_field("advice", &self.advice)?;
        st.serialize_field("evidence", &evidence)?;
        st.end()
    }
}

/// What is known of the target besides its events.
#[derive(Clone, Debug, Default)]
pub struct Context<'a> {
    /// GOMAXPROCS, if not in the snapshot (tests).
    pub gomaxprocs: Option<u32>,
    pub cgroup: Option<&'a CpuGroup>,
    pub nr_cpus: u32,
    /// The target is known not to be a Go program: no Go advice for it.
    pub not_go: bool,
}

impl<'a> Context<'a> {
    /// What a recording's header says of the target.
    pub fn of(header: &'a crate::record::RecordHeader) -> Context<'a> {
        Context {
            cgroup: header.cgroup.as_ref(),
            nr_cpus: header.nr_cpus,
            not_go: header.go.is_none(),
            ..Default::default()
        }
    }
}

/// The history points of the last `sustain_ns` (None if the history is shorter).
fn recent(history: &[HistoryPoint], sustain_ns: u64) -> Option<&[HistoryPoint]> {
    let last = history.last()?;
    // 0: at once, on the last interval alone.
    if sustain_ns == 0 {
        return Some(&history[history.len() - 1..]);
    }
    // One point tells no interval length: not yet a whole `sustain_ns`.
    if history.len() == 1 && sustain_ns > 0 {
        return None;
    }
    // Saturating: a damaged or hostile record file can hold any times.
    let from = history.iter().position(|h| h.t_ns.saturating_add(sustain_ns) > last.t_ns)?;
    // The window must reach back a whole `sustain_ns`.
    if from == 0 && history[0].t_ns.saturating_add(sustain_ns) > last.t_ns.saturating_add(history_step(history)) {
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

/// Whether goroutines waited for a P in the Go scheduler through the
/// window: in most of each interval's samples (`go_queued_pct`). None when
/// the scheduler was not sampled (not Go, or unreadable).
fn go_waits(window: &[HistoryPoint], t: &Thresholds) -> Option<bool> {
    if window.iter().all(|h| h.go_samples == 0) {
        return None;
    }
    Some(window.iter().all(|h| h.go_samples > 0 && h.go_queued_pct >= t.go_queued_pct))
}

/// Threads now against what a Go program needs: one per P (GOMAXPROCS),
/// one per long-lived pinned worker, and a small baseline (the main
/// thread, sysmon, the template thread, the signal M, idle spares).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Capacity {
    pub threads: u64,
    pub gomaxprocs: u32,
    pub pinned: u64,
    pub baseline: u64,
    pub expected_max: u64,
}

pub fn capacity(live: &LiveSnapshot, gomaxprocs: Option<u32>, t: &Thresholds) -> Option<Capacity> {
    let g = gomaxprocs.or(live.gomaxprocs)?;
    let pinned = live.interval.process.long_pinned_threads;
    Some(Capacity {
        threads: live.interval.process.threads_now,
        gomaxprocs: g,
        pinned,
        baseline: t.thread_baseline,
        expected_max: u64::from(g) + pinned + t.thread_baseline,
    })
}

impl std::fmt::Display for Capacity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} threads of at most {} expected (GOMAXPROCS {} + {} pinned + {} baseline)",
            self.threads, self.expected_max, self.gomaxprocs, self.pinned, self.baseline
        )
    }
}

/// The findings of `live`'s last interval: every rule of `CHECKS` on the
/// same judge, worst first. None until the history covers `sustain`.
pub fn evaluate(live: &LiveSnapshot, ctx: &Context, t: &Thresholds) -> Vec<Finding> {
    let Some(window) = recent(&live.history, t.sustain_ns) else { return Vec::new() };
    let judge = Judge {
        live,
        window,
        ctx,
        t,
        iv: &live.interval,
        // The cgroup as it is now: the target may have been moved, or its quota changed.
        cgroup: live.cgroup.as_ref().or(ctx.cgroup),
        gomaxprocs: ctx.gomaxprocs.or(live.gomaxprocs),
        waiting: go_waits(window, t),
    };
    let mut out: Vec<Finding> = CHECKS.iter().filter_map(|check| check(&judge)).collect();
    out.sort_by(|a, b| b.severity.cmp(&a.severity).then(a.rule.cmp(b.rule)));
    out
}

/// What every rule judges: the snapshot, the history points of the last
/// `sustain` (a condition must hold at each), and what is known besides.
#[derive(Clone, Copy)]
struct Judge<'a> {
    live: &'a LiveSnapshot,
    window: &'a [HistoryPoint],
    ctx: &'a Context<'a>,
    t: &'a Thresholds,
    iv: &'a IntervalStats,
    cgroup: Option<&'a CpuGroup>,
    /// GOMAXPROCS: the context's (tests), else the snapshot's.
    gomaxprocs: Option<u32>,
    /// Whether goroutines waited for a P through the window (None: the
    /// scheduler was not read).
    waiting: Option<bool>,
}

/// The rules, one function each: a finding or none.
const CHECKS: &[fn(&Judge) -> Option<Finding>] = &[
    runq_latency,
    noisy_neighbor,
    thread_churn,
    sigurg_preemption,
    gomaxprocs_over_quota,
    gomaxprocs_below_cpus,
    thread_growth,
    pinned_starvation,
    pinned_migration,
];

/// runq_latency: threads wait for a CPU longer than `runq_p99` (p99),
/// and what they waited behind.
fn runq_latency(j: &Judge) -> Option<Finding> {
    let Judge { window, ctx, t, iv, cgroup, .. } = *j;
    if window.iter().all(|h| h.runq_p99_ns > t.runq_p99_ns) {
        let usable = cgroup.map_or(f64::from(ctx.nr_cpus), CpuGroup::cpus_usable);
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
        // What they waited behind: their own threads, other processes, the
        // kernel, or no one (the CPU was idle: the wake-up's own latency).
        let by = &iv.process.wait_by_cause_ns;
        let waited = by.own_threads + by.other_processes + by.kernel + by.idle;
        let share = |x: u64| if waited == 0 { 0.0 } else { 100.0 * x as f64 / waited as f64 };
        for (k, v) in [
            ("own_threads_pct", by.own_threads),
            ("other_processes_pct", by.other_processes),
            ("kernel_pct", by.kernel),
            ("idle_pct", by.idle),
        ] {
            evidence.insert(k, share(v));
        }
        let others_mostly = by.other_processes > by.own_threads;
        let split = if waited == 0 {
            String::new()
        } else {
            format!(
                "; of the waiting, {:.0}% behind its own threads, {:.0}% behind other processes, {:.0}% behind the kernel",
                share(by.own_threads),
                share(by.other_processes),
                share(by.kernel)
            )
        };
        return Some(Finding {
            rule: RUNQ_LATENCY,
            severity: if iv.process.runq_latency_ns.p99 > 4 * t.runq_p99_ns {
                Severity::Critical
            } else {
                Severity::Warning
            },
            message: format!(
                "threads wait {} (p99) for a CPU, over {}: {} ({:.2} in use of {usable:.2}){split}{}",
                ns(iv.process.runq_latency_ns.p99),
                ns(t.runq_p99_ns),
                if others_mostly { "other processes hold the CPUs" } else { "more runnable threads than CPUs" },
                iv.rates.cpus_used,
                throttled.map(|p| format!("; the CPU quota throttles {p:.0}% of periods")).unwrap_or_default()
            ),
            advice: if others_mostly {
                "the CPUs are taken by other processes (see noisy_neighbor): isolate the service (a cpuset, CPU shares or priority), or move the other work"
            } else if ctx.not_go {
                "fewer runnable threads than CPUs: size the program's thread pools to the CPUs (or quota) really available, or give it more CPU"
            } else {
                "fewer runnable threads than CPUs: lower GOMAXPROCS to the CPUs (or quota) really available, or give the service more CPU"
            },
            text: BTreeMap::new(),
            evidence,
        });
    }
    None
}

/// noisy_neighbor: the threads lose CPU time to other processes.
fn noisy_neighbor(j: &Judge) -> Option<Finding> {
    let Judge { live, window, t, iv, .. } = *j;
    if window
        .iter()
        .all(|h| h.other_processes_pct >= t.noisy_pct && h.other_cpus_lost >= t.noisy_cpus && h.top_other_pid != 0)
    {
        let last = window.last().copied().unwrap_or_default();
        let top = live.other_processes.first();
        let comm = top.map_or_else(String::new, |o| o.comm.clone());
        let who = match top {
            Some(o) if !o.comm.is_empty() => format!("{} (pid {})", clean(&o.comm), o.pid),
            Some(o) => format!("pid {}", o.pid),
            None => "other processes".to_string(),
        };
        return Some(Finding {
            rule: NOISY_NEIGHBOR,
            severity: if last.other_processes_pct >= 4.0 * t.noisy_pct { Severity::Critical } else { Severity::Warning },
            message: format!(
                "the threads lose {:.0}% of their runnable time to other processes ({:.2} CPUs), most to {who}: they wait for CPUs that other processes hold",
                last.other_processes_pct, last.other_cpus_lost
            ),
            advice: "isolate the service from the other work: a cpuset of its own, CPU shares or weight for its cgroup, a lower priority (nice) for the other process, or another machine",
            text: BTreeMap::from([("top_other_comm", comm)]),
            evidence: BTreeMap::from([
                ("other_processes_pct", last.other_processes_pct),
                ("other_cpus_lost", last.other_cpus_lost),
                ("top_other_pid", f64::from(last.top_other_pid)),
                ("cpu_pressure_pct", iv.process.cpu_pressure_pct),
            ]),
        });
    }
    None
}

/// thread_churn: threads created and exited at `churn_per_sec` or more,
/// living less than `churn_lifetime`.
fn thread_churn(j: &Judge) -> Option<Finding> {
    let Judge { window, ctx, t, iv, .. } = *j;
    let lifetime = iv.process.thread_lifetime_ns.p50;
    if window.iter().all(|h| h.created_per_sec >= t.churn_per_sec && h.exited_per_sec >= t.churn_per_sec)
        && iv.process.thread_lifetime_ns.count > 0
        && lifetime < t.churn_lifetime_ns
    {
        return Some(Finding {
            rule: THREAD_CHURN,
            severity: Severity::Warning,
            message: format!(
                "{:.0} threads created and {:.0} exited per second, living {} (p50): {}",
                iv.rates.threads_created_per_sec,
                iv.rates.threads_exited_per_sec,
                ns(lifetime),
                if ctx.not_go {
                    "the program starts a thread for short pieces of work, each paying a clone, a stack and an exit"
                } else {
                    "goroutines exit while locked to their thread, so the runtime destroys it and starts another"
                }
            ),
            advice: if ctx.not_go {
                "keep threads and give them work (a thread pool) instead of starting one per task"
            } else {
                "pair every runtime.LockOSThread with a deferred UnlockOSThread, or keep a fixed pool of locked worker goroutines"
            },
            text: BTreeMap::new(),
            evidence: BTreeMap::from([
                ("threads_created_per_sec", iv.rates.threads_created_per_sec),
                ("threads_exited_per_sec", iv.rates.threads_exited_per_sec),
                ("thread_lifetime_p50_ns", lifetime as f64),
            ]),
        });
    }
    None
}

/// sigurg_preemption: one thread (sysmon) preempting the same hot threads.
fn sigurg_preemption(j: &Judge) -> Option<Finding> {
    let Judge { live, window, t, waiting, .. } = *j;
    let total: u64 = live.sigurg_senders.iter().map(|s| s.sigurg_sent).sum();
    let role_of = |tid: u32| live.threads.iter().find(|r| r.tid == tid).and_then(|r| r.role);
    // With the M list the sender is sysmon for sure; without it, the busiest sender.
    let known = live.threads.iter().any(|r| r.role == Some(GoRole::Sysmon));
    let top = if known {
        live.sigurg_senders.iter().find(|s| role_of(s.tid) == Some(GoRole::Sysmon))
    } else {
        live.sigurg_senders.first()
    };
    // Preemption matters when goroutines wait for a P behind the one that
    // ran 10 ms (the run queues say), or, less, when sysmon keeps preempting
    // pinned goroutines whose thread has nothing else to run (a cost with no
    // scheduling benefit). Goroutines that hand each other work share one
    // time slice and are preempted in a healthy closed loop: neither.
    if let Some(top) = top {
        let share = if total > 0 { top.sigurg_sent as f64 / total as f64 } else { 0.0 };
        let receives = live.threads.iter().find(|r| r.tid == top.tid).map_or(0, |r| r.sigurg_received);
        let hot: Vec<_> = live.threads.iter().filter(|r| r.sigurg_received_per_sec >= t.sigurg_per_sec / 2.0).collect();
        let pinned_hot = hot.iter().filter(|r| r.pinned).count();
        let sysmon = if known { "sysmon" } else { "likely sysmon" };
        let mut evidence = BTreeMap::from([
            ("sender_tid", f64::from(top.tid)),
            ("sigurg_per_sec", top.sigurg_per_sec),
            ("sender_share", share),
            ("hot_threads", hot.len() as f64),
            ("pinned_hot_threads", pinned_hot as f64),
        ]);
        let preempting = share >= t.sigurg_sender_share
            && receives == 0
            && top.sigurg_per_sec >= t.sigurg_per_sec
            && window.iter().all(|h| h.sigurg_per_sec >= t.sigurg_per_sec)
            && !hot.is_empty();
        if preempting && waiting == Some(true) {
            let queued = live.go_sched.as_ref().map_or(0.0, |s| s.queued_mean);
            evidence.insert("goroutines_waiting", queued);
            return Some(Finding {
                rule: SIGURG_PREEMPTION,
                severity: Severity::Warning,
                message: format!(
                    "thread {} ({sysmon}) preempts {} busy thread(s) {:.0} times a second while {queued:.1} goroutines wait for a P on average: goroutines run over 10 ms and the others wait behind them",
                    top.tid,
                    hot.len(),
                    top.sigurg_per_sec
                ),
                advice: "find the long-running loops (pprof CPU profile) and split their work, or give the service more Ps (GOMAXPROCS) and CPU",
                text: BTreeMap::new(),
                evidence,
            });
        } else if preempting && pinned_hot > 0 {
            return Some(Finding {
                rule: SIGURG_PREEMPTION,
                severity: Severity::Info,
                message: format!(
                    "thread {} ({sysmon}) preempts {pinned_hot} pinned thread(s) {:.0} times a second although no goroutine waits for them: a locked goroutine's thread runs nothing else, so each preemption is a signal and a context switch for nothing",
                    top.tid,
                    top.sigurg_per_sec
                ),
                advice: "let the locked loop yield (a channel operation or runtime.Gosched now and then) or, if it must run unbroken, GODEBUG=asyncpreemptoff=1 (for the whole process)",
                text: BTreeMap::new(),
                evidence,
            });
        }
    }
    None
}

/// gomaxprocs_over_quota: more Ps than the CPU quota (or the CPUs
/// allowed) gives, so the Ps' threads are throttled or wait.
fn gomaxprocs_over_quota(j: &Judge) -> Option<Finding> {
    let Judge { window, ctx, iv, cgroup, gomaxprocs, .. } = *j;
    if let (Some(g), Some(cg)) = (gomaxprocs, cgroup) {
        let usable = cg.cpus_usable();
        // GOMAXPROCS and the usable CPUs as they were at each point of the
        // window: a moment's spike (runtime.GOMAXPROCS(n) and back) is not
        // a setting, and a limit only just changed has not held yet.
        let over = |h: &HistoryPoint| {
            let at = ctx.gomaxprocs.unwrap_or(if h.gomaxprocs > 0 { h.gomaxprocs } else { g });
            let at_start = ctx.cgroup.map_or(usable, CpuGroup::cpus_usable);
            let usable = if h.cpus_usable > 0.0 { h.cpus_usable } else { at_start };
            f64::from(at) > usable.ceil()
        };
        if f64::from(g) > usable.ceil() && window.iter().all(over) {
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
            return Some(Finding {
                rule: GOMAXPROCS_OVER_QUOTA,
                severity: if throttled > 0.0 { Severity::Critical } else { Severity::Warning },
                message: format!("GOMAXPROCS {g} > {limit}; {effect}"),
                advice: "set GOMAXPROCS to the quota (Go 1.25+ does this itself; older: GOMAXPROCS env or go.uber.org/automaxprocs)",
                text: BTreeMap::new(),
                evidence: BTreeMap::from([
                    ("gomaxprocs", f64::from(g)),
                    ("cpus_usable", usable),
                    ("throttled_periods_pct", throttled),
                    ("throttled_ms_per_period", per_period_ms),
                ]),
            });
        }
    }
    None
}

/// gomaxprocs_below_cpus: fewer Ps than CPUs while goroutines wait for
/// a P, and the process does not use the CPUs beyond its Ps.
fn gomaxprocs_below_cpus(j: &Judge) -> Option<Finding> {
    let Judge { live, window, ctx, iv, cgroup, gomaxprocs, waiting, .. } = *j;
    if let Some(g) = gomaxprocs {
        let usable = cgroup.map_or(f64::from(ctx.nr_cpus), CpuGroup::cpus_usable).floor();
        let below = |h: &HistoryPoint| {
            let at = ctx.gomaxprocs.unwrap_or(if h.gomaxprocs > 0 { h.gomaxprocs } else { g });
            f64::from(at) < usable && h.cpus_used <= f64::from(at) + 0.5
        };
        if f64::from(g) < usable && waiting == Some(true) && window.iter().all(below) {
            let queued = live.go_sched.as_ref().map_or(0.0, |s| s.queued_mean);
            return Some(Finding {
                rule: GOMAXPROCS_BELOW_CPUS,
                severity: Severity::Warning,
                message: format!(
                    "GOMAXPROCS {g} < {usable:.0} CPUs usable: {queued:.1} goroutines wait for a P on average while the process uses {:.1} CPUs",
                    iv.rates.cpus_used
                ),
                advice: "raise GOMAXPROCS to the CPUs available (unset the GOMAXPROCS variable; Go 1.25+ follows the cgroup's limit), or find what lowered it (runtime.GOMAXPROCS)",
                text: BTreeMap::new(),
                evidence: BTreeMap::from([
                    ("gomaxprocs", f64::from(g)),
                    ("cpus_usable", usable),
                    ("goroutines_waiting", queued),
                    ("cpus_used", iv.rates.cpus_used),
                ]),
            });
        }
    }
    None
}

/// thread_growth: more threads than GOMAXPROCS, the long-pinned ones and
/// `thread_baseline` explain, and what the extra threads do.
fn thread_growth(j: &Judge) -> Option<Finding> {
    let Judge { live, window, t, iv, gomaxprocs, .. } = *j;
    if let Some(cap) = capacity(live, gomaxprocs, t) {
        let (now, expected, g, pinned) = (cap.threads, cap.expected_max, cap.gomaxprocs, cap.pinned);
        if now > expected && window.iter().all(|h| h.threads > u64::from(g) + h.pinned + t.thread_baseline) {
            let locks = iv.rates.lock_calls_per_sec;
            // What the threads are doing (the M list): a thread can count
            // twice (a locked goroutine blocked in a syscall is both), and
            // the cause named is the one to fix.
            let alive = || live.threads.iter().filter(|r| r.died_ns.is_none());
            let count = |s: GoState| alive().filter(|r| r.go_state == Some(s)).count() as u64;
            let (in_syscall, in_cgo, idle) = (count(GoState::Syscall), count(GoState::Cgo), count(GoState::Idle));
            let locked = alive().filter(|r| r.pinned).count() as u64;
            let known = alive().any(|r| r.go_state.is_some());
            let per_request = locks >= 1.0 || iv.process.pinned_threads > pinned;
            let largest = in_cgo.max(in_syscall).max(idle);
            let (cause, advice) = if locks >= 1.0 {
                (
                    format!("LockOSThread is called {locks:.0} times a second, so pinned threads follow the load (a lock per request)"),
                    "lock a fixed pool of worker goroutines instead of one per request",
                )
            } else if per_request {
                (
                    format!("{} threads are pinned just now (per-request locking)", iv.process.pinned_threads),
                    "lock a fixed pool of worker goroutines instead of one per request",
                )
            } else if known && largest > 0 && largest == in_cgo {
                (
                    format!("{in_cgo} of {now} threads are in cgo calls: each blocking cgo call holds a thread"),
                    "bound the concurrent cgo calls (a semaphore or a fixed pool of goroutines that make them)",
                )
            } else if known && largest > 0 && largest == in_syscall {
                (
                    format!("{in_syscall} of {now} threads are in blocking system calls: each holds a thread while the runtime starts another for its P"),
                    "bound the concurrent blocking calls (a worker pool), or use non-blocking I/O that the netpoller can wait on",
                )
            } else if known && largest > 0 {
                (
                    format!("{idle} of {now} threads are idle: left from an earlier burst of blocking calls (the Go runtime does not end idle threads)"),
                    "find the burst that made them (blocking syscalls or cgo calls); the idle threads cost memory, not CPU",
                )
            } else {
                (
                    "threads blocked in syscalls or cgo, or goroutines locked per request (the Go threads' states are unknown)".to_string(),
                    "bound blocking syscalls and cgo calls with a worker pool, and lock a fixed pool of worker goroutines instead of one per request",
                )
            };
            return Some(Finding {
                rule: THREAD_GROWTH,
                severity: if now > 2 * expected { Severity::Critical } else { Severity::Warning },
                message: format!(
                    "{now} threads for GOMAXPROCS {g}{}: expected at most {expected}; {cause}",
                    if pinned > 0 { format!(" + {pinned} pinned") } else { String::new() }
                ),
                advice,
                text: BTreeMap::new(),
                evidence: BTreeMap::from([
                    ("threads", now as f64),
                    ("gomaxprocs", f64::from(g)),
                    ("pinned", pinned as f64),
                    ("pinned_now", iv.process.pinned_threads as f64),
                    ("lock_calls_per_sec", locks),
                    ("expected_max", expected as f64),
                    ("in_syscall", in_syscall as f64),
                    ("in_cgo", in_cgo as f64),
                    ("locked", locked as f64),
                    ("idle", idle as f64),
                ]),
            });
        }
    }
    None
}

/// pinned_starvation: one pinned worker saturated (on a CPU or waiting
/// for one nearly all the time: it cannot take more work, so its queue
/// grows) while the others idle between trickles of work.
/// Busy is judged over the window as a whole: its part from the sampled
/// Go states is an estimate from ten samples a second.
fn pinned_starvation(j: &Judge) -> Option<Finding> {
    let Judge { window, t, .. } = *j;
    let last = window.last().copied().unwrap_or_default();
    let busy = window.iter().map(|h| h.pinned_hot_busy_pct).sum::<f64>() / window.len().max(1) as f64;
    let same_hot = window.iter().all(|h| h.pinned_hot_tid == last.pinned_hot_tid);
    if same_hot
        && busy >= t.pinned_hot_pct
        && window.iter().all(|h| {
            h.pinned >= 2
                && h.pinned_cpu_rest_median_pct <= t.pinned_idle_pct
                && h.pinned_wakeups_rest_median_per_sec >= t.pinned_wakeups_per_sec
        })
    {
        let mut waiting = String::new();
        if last.pinned_hot_waiting_pct >= 1.0 {
            waiting += &format!(", waits for a CPU {:.0}%", last.pinned_hot_waiting_pct);
        }
        if last.pinned_hot_p_wait_pct >= 1.0 {
            waiting += &format!(", has work but no P {:.0}%", last.pinned_hot_p_wait_pct);
        }
        if let Some(i) = waiting.rfind(", ").filter(|_| waiting.matches(", ").count() > 1) {
            waiting.replace_range(i..i + 2, " and ");
        } else if let Some(rest) = waiting.strip_prefix(", ") {
            waiting = format!(" and {rest}");
        }
        return Some(Finding {
            rule: PINNED_STARVATION,
            severity: Severity::Warning,
            message: format!(
                "pinned thread {} is saturated, busy {busy:.0}% of the time: on a CPU {:.0}%{waiting}, while the other {} pinned threads use {:.0}% (median), woken {:.0} times a second for trickles of work: work queued for the busy one waits behind it",
                last.pinned_hot_tid,
                last.pinned_cpu_max_pct,
                last.pinned - 1,
                last.pinned_cpu_rest_median_pct,
                last.pinned_wakeups_rest_median_per_sec
            ),
            advice: "spread work over the pinned workers (one shared queue, not one per worker), or pin fewer goroutines and let the scheduler balance the rest",
            text: BTreeMap::new(),
            evidence: BTreeMap::from([
                ("hot_tid", f64::from(last.pinned_hot_tid)),
                ("hot_cpu_pct", last.pinned_cpu_max_pct),
                ("hot_waiting_pct", last.pinned_hot_waiting_pct),
                ("hot_p_wait_pct", last.pinned_hot_p_wait_pct),
                ("hot_busy_pct", busy),
                ("pinned", last.pinned as f64),
                ("rest_cpu_median_pct", last.pinned_cpu_rest_median_pct),
                ("rest_wakeups_median_per_sec", last.pinned_wakeups_rest_median_per_sec),
            ]),
        });
    }
    None
}

/// pinned_migration: long-pinned threads moved between CPUs while
/// running or runnable (`pinned_migrations` a second).
fn pinned_migration(j: &Judge) -> Option<Finding> {
    let Judge { window, t, .. } = *j;
    let last = window.last().copied().unwrap_or_default();
    if window
        .iter()
        .all(|h| h.pinned >= 1 && h.pinned_migrations_per_sec / h.pinned as f64 >= t.pinned_migrations_per_sec)
    {
        return Some(Finding {
            rule: PINNED_MIGRATION,
            severity: Severity::Info,
            message: format!(
                "{} pinned threads were moved between CPUs {:.0} times a second while running or runnable: LockOSThread ties a goroutine to a thread, not the thread to a CPU, so caches (and NUMA locality) are lost",
                last.pinned, last.pinned_migrations_per_sec
            ),
            advice: "if CPU locality matters, set the pinned thread's affinity after LockOSThread (unix.SchedSetaffinity) or give the process a cpuset",
            text: BTreeMap::new(),
            evidence: BTreeMap::from([
                ("pinned", last.pinned as f64),
                ("pinned_migrations_per_sec", last.pinned_migrations_per_sec),
            ]),
        });
    }
    None
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
            m.apply(&ev(
                s * S + 10 * MS,
                0,
                EventKind::Switch { prev_tid: 0, next_tid: 100, prev_state: 0, next_wait_ns: None, other: 0 },
            ));
            m.apply(&ev(
                s * S + 20 * MS,
                0,
                EventKind::Switch { prev_tid: 100, next_tid: 0, prev_state: 1, next_wait_ns: None, other: 0 },
            ));
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
        // sustain=0: at once, from the first interval on, and gone with it.
        let at_once = {
            let mut t = Thresholds::default();
            t.set("sustain=0").expect("0 is a duration");
            t
        };
        let mut m = run(1, &mut churn);
        let f = evaluate(&m.live(None), &ctx(), &at_once);
        assert_eq!(f.iter().map(|f| f.rule).collect::<Vec<_>>(), [THREAD_CHURN], "sustain=0 fires at once");
        m.tick(2 * S);
        assert!(evaluate(&m.live(None), &ctx(), &at_once).is_empty(), "and clears at once");
        // A program that is not Go gets no Go advice.
        let c = Context { not_go: true, ..ctx() };
        let f = evaluate(&run(1, &mut churn).live(None), &c, &at_once);
        assert_eq!(f.iter().map(|f| f.rule).collect::<Vec<_>>(), [THREAD_CHURN]);
        assert!(!f[0].message.contains("goroutine") && !f[0].advice.contains("LockOSThread"), "{f:?}");
    }

    fn go_m(tid: u32, role: GoRole, locked_ext: u32) -> Event {
        ev(0, NO_CPU, EventKind::GoThread { tid, role, locked_ext, locked_int: 0, locked_g: None })
    }

    fn sigurg(m: &mut Model, ts: u64, from: u32, to: u32) {
        let kind = EventKind::Signal {
            sender_tid: from,
            sender_tgid: 100,
            target_tid: to,
            sig: SIGURG,
            code: -6,
            result: 0,
            group: false,
        };
        m.apply(&ev(ts, 0, kind));
    }

    /// Ten scheduler samples in second `s`, each with `queued` goroutines
    /// waiting for the one P (in its local run queue).
    fn sched_samples(m: &mut Model, s: u64, queued: u32) {
        for k in 0..10 {
            let ts = s * S + k * 100 * MS;
            m.apply(&ev(ts, NO_CPU, EventKind::GoP { p: 0, status: 1, runq: queued, runnext: false }));
            let kind =
                EventKind::GoSched { idle_ps: 0, spinning: 0, idle_threads: 1, runqueue: 0, goroutines: 5, nprocs: 1 };
            m.apply(&ev(ts, NO_CPU, kind));
        }
    }

    /// Sysmon preempting thread 100 50 times a second, with `queued`
    /// goroutines waiting for a P (None: the scheduler is not read).
    fn preempted(queued: Option<u32>, pin: bool) -> Model {
        run(5, |m, s| {
            if s == 0 {
                m.apply(&go_m(101, GoRole::Sysmon, 0));
                if pin {
                    m.apply(&go_m(100, GoRole::Main, 1));
                }
            }
            if let Some(q) = queued {
                sched_samples(m, s, q);
            }
            (0..50).for_each(|i| sigurg(m, s * S + i * 20 * MS, 101, 100));
        })
    }

    #[test]
    fn sysmon_preempting_while_goroutines_wait() {
        let live = preempted(Some(3), false).live(None);
        let f = evaluate(&live, &ctx(), &Thresholds::default());
        assert_eq!(f.iter().map(|f| f.rule).collect::<Vec<_>>(), [SIGURG_PREEMPTION]);
        assert_eq!(f[0].severity, Severity::Warning);
        assert!(
            f[0].message.starts_with("thread 101 (sysmon) preempts 1 busy thread(s) 50 times a second while 3.0 goroutines wait for a P on average"),
            "{}",
            f[0].message
        );
        assert_eq!(f[0].evidence["goroutines_waiting"], 3.0);
    }

    /// A healthy closed loop: goroutines that hand each other work share a
    /// time slice, so sysmon preempts them (measured: 47/s), but nothing
    /// waits. Without the scheduler's queues nothing can be claimed either.
    #[test]
    fn sysmon_preempting_with_nothing_waiting_is_no_finding() {
        assert!(rules(&preempted(Some(0), false).live(None), &ctx()).is_empty());
        assert!(rules(&preempted(None, false).live(None), &ctx()).is_empty());
        // Waiting in a few samples only (a burst) is not waiting.
        let m = run(5, |m, s| {
            if s == 0 {
                m.apply(&go_m(101, GoRole::Sysmon, 0));
            }
            sched_samples(m, s, 0);
            m.apply(&ev(s * S + 5 * MS, NO_CPU, EventKind::GoP { p: 0, status: 1, runq: 2, runnext: false }));
            let kind =
                EventKind::GoSched { idle_ps: 0, spinning: 0, idle_threads: 1, runqueue: 0, goroutines: 5, nprocs: 1 };
            m.apply(&ev(s * S + 5 * MS, NO_CPU, kind));
            (0..50).for_each(|i| sigurg(m, s * S + i * 20 * MS, 101, 100));
        });
        assert!(rules(&m.live(None), &ctx()).is_empty());
    }

    /// A pinned goroutine in a CPU-bound loop: its thread can run nothing
    /// else, so the preemption buys nothing; a lower severity.
    #[test]
    fn sysmon_preempting_a_pinned_loop_is_a_cost_without_benefit() {
        let f = evaluate(&preempted(Some(0), true).live(None), &ctx(), &Thresholds::default());
        assert_eq!(f.iter().map(|f| f.rule).collect::<Vec<_>>(), [SIGURG_PREEMPTION]);
        assert_eq!(f[0].severity, Severity::Info);
        assert!(
            f[0].message.contains("preempts 1 pinned thread(s) 50 times a second although no goroutine waits"),
            "{}",
            f[0].message
        );
    }

    #[test]
    fn without_the_m_list_the_busiest_sender_is_only_likely_sysmon_and_gc_senders_are_not_it() {
        let m = run(5, |m, s| {
            sched_samples(m, s, 2);
            (0..50).for_each(|i| sigurg(m, s * S + i * 20 * MS, 101, 100));
        });
        let f = evaluate(&m.live(None), &ctx(), &Thresholds::default());
        assert!(f[0].message.starts_with("thread 101 (likely sysmon) preempts"), "{}", f[0].message);
        // With the M list: the same signals from a thread that is not sysmon (GC workers) are no finding.
        let m = run(5, |m, s| {
            if s == 0 {
                m.apply(&go_m(102, GoRole::Sysmon, 0));
            }
            sched_samples(m, s, 2);
            (0..50).for_each(|i| sigurg(m, s * S + i * 20 * MS, 101, 100));
        });
        assert!(rules(&m.live(None), &ctx()).is_empty());
        assert_eq!(m.live(None).interval.process.sigurg_from_sysmon, 0);
    }

    /// GOMAXPROCS 1 on 2 CPUs with goroutines queued: a CPU left unused.
    #[test]
    fn gomaxprocs_below_the_cpus_while_goroutines_wait() {
        let busy = |queued: u32, procs: u32| {
            run(5, move |m, s| {
                m.apply(&ev(s * S, NO_CPU, EventKind::GoMaxProcs { value: procs }));
                sched_samples(m, s, queued);
                let sw = |prev, next| EventKind::Switch {
                    prev_tid: prev,
                    next_tid: next,
                    prev_state: 0,
                    next_wait_ns: None,
                    other: 0,
                };
                m.apply(&ev(s * S + 1, 0, sw(0, 100)));
                m.apply(&ev((s + 1) * S - 1, 0, sw(100, 0)));
            })
        };
        let f = evaluate(&busy(3, 1).live(None), &ctx(), &Thresholds::default());
        assert_eq!(f.iter().map(|f| f.rule).collect::<Vec<_>>(), [GOMAXPROCS_BELOW_CPUS]);
        assert_eq!(
            f[0].message,
            "GOMAXPROCS 1 < 2 CPUs usable: 3.0 goroutines wait for a P on average while the process uses 1.0 CPUs"
        );
        // Nothing waiting, or GOMAXPROCS at the CPUs: no finding.
        assert!(rules(&busy(0, 1).live(None), &ctx()).is_empty());
        assert!(rules(&busy(3, 2).live(None), &ctx()).is_empty());
    }

    /// Threads 200.. pinned from the start; each second `each(m, s, tid, i)` adds their events.
    fn pinned_pool(n: u32, secs: u64, each: impl Fn(&mut Model, u64, u32, u32)) -> Model {
        let mut m = Model::new(0);
        for tid in 100..102 {
            m.apply(&ev(0, NO_CPU, EventKind::ThreadSeen { tid, tgid: 100, comm: Comm::new("app") }));
        }
        for (i, tid) in (200..200 + n).enumerate() {
            m.apply(&ev(0, NO_CPU, EventKind::ThreadSeen { tid, tgid: 100, comm: Comm::new("worker") }));
            m.apply(&go_m(tid, GoRole::Pinned, 1));
            let _ = i;
        }
        for s in 0..secs {
            for (i, tid) in (200..200 + n).enumerate() {
                each(&mut m, s, tid, i as u32);
            }
            m.tick((s + 1) * S);
        }
        m
    }

    #[test]
    fn one_saturated_pinned_worker_while_the_others_trickle() {
        let sw = |m: &mut Model, ts, prev, next, st| {
            m.apply(&ev(
                ts,
                0,
                EventKind::Switch { prev_tid: prev, next_tid: next, prev_state: st, next_wait_ns: None, other: 0 },
            ))
        };
        let m = pinned_pool(4, 12, |m, s, tid, i| {
            let t0 = s * S;
            if i == 0 {
                // Runs the whole second.
                sw(m, t0, 0, tid, 0);
                sw(m, t0 + S - 1, tid, 0, 0);
            } else {
                // Woken 50 times a second for 100 µs of work.
                for k in 0..50 {
                    sw(m, t0 + k * 20 * MS, 0, tid, 0);
                    sw(m, t0 + k * 20 * MS + MS / 10, tid, 0, 1);
                }
            }
        });
        let live = m.live(None);
        assert_eq!(live.interval.process.long_pinned_threads, 4);
        let f = evaluate(&live, &ctx(), &Thresholds::default());
        assert_eq!(f.iter().map(|f| f.rule).collect::<Vec<_>>(), [PINNED_STARVATION]);
        assert!(
            f[0].message.starts_with("pinned thread 200 is saturated, busy 100% of the time: on a CPU 100%, while the other 3 pinned threads use 0% (median), woken 50 times a second"),
            "{}",
            f[0].message
        );
        // An even pool is fine.
        let even = pinned_pool(4, 12, |m, s, tid, _| {
            sw(m, s * S, 0, tid, 0);
            sw(m, s * S + S / 2, tid, 0, 1);
        });
        assert!(rules(&even.live(None), &ctx()).is_empty());
        // Not before the pins are 3 s old (they could be per-request pins).
        let young = pinned_pool(4, 2, |_, _, _, _| {});
        assert_eq!(young.live(None).interval.process.long_pinned_threads, 0);
    }

    /// Saturated is on a CPU or waiting for one, not a CPU share: a hot
    /// worker that shares its CPU runs 77 % and waits the rest (measured),
    /// while one that runs 85 % and sleeps the rest has room for more work.
    #[test]
    fn saturated_is_running_or_waiting_not_a_cpu_share() {
        use crate::goruntime::GoState;
        fn sw(m: &mut Model, ts: u64, prev: u32, next: u32, st: u32) {
            m.apply(&ev(
                ts,
                0,
                EventKind::Switch { prev_tid: prev, next_tid: next, prev_state: st, next_wait_ns: None, other: 0 },
            ))
        }
        fn pool(hot: fn(&mut Model, u64, u32)) -> Model {
            pinned_pool(4, 12, move |m, s, tid, i| {
                if i == 0 {
                    hot(m, s * S, tid);
                } else {
                    for k in 0..50 {
                        sw(m, s * S + k * 20 * MS, 0, tid, 0);
                        sw(m, s * S + k * 20 * MS + MS / 10, tid, 0, 1);
                    }
                }
            })
        }
        // 100 times a second: 7.7 ms on the CPU, preempted, 2.3 ms waiting.
        let shared = pool(|m, t0, tid| {
            for k in 0..100 {
                sw(m, t0 + k * 10 * MS + 23 * MS / 10, 0, tid, 0);
                sw(m, t0 + (k + 1) * 10 * MS, tid, 0, 0);
            }
        });
        let live = shared.live(None);
        let f = evaluate(&live, &ctx(), &Thresholds::default());
        assert_eq!(f.iter().map(|f| f.rule).collect::<Vec<_>>(), [PINNED_STARVATION]);
        assert!(
            f[0].message.starts_with(
                "pinned thread 200 is saturated, busy 100% of the time: on a CPU 77% and waits for a CPU 23%"
            ),
            "{}",
            f[0].message
        );
        assert_eq!(f[0].evidence["hot_waiting_pct"].round(), 23.0);
        // 85 % on the CPU, asleep the rest: busy, not saturated.
        let busy = pool(|m, t0, tid| {
            for k in 0..100 {
                sw(m, t0 + k * 10 * MS, 0, tid, 0);
                sw(m, t0 + k * 10 * MS + 85 * MS / 10, tid, 0, 1);
            }
        });
        assert!(rules(&busy.live(None), &ctx()).is_empty());
        // With the Go states sampled: a hot worker whose locked goroutine is
        // never found waiting for work is saturated, whatever the kernel saw
        // of its sleeps (it parks while it waits for a P)...
        fn states(m: &mut Model, t0: u64, tid: u32, idle_every: u64) {
            for k in 0..10 {
                let state = if idle_every > 0 && k % idle_every == 0 {
                    GoState::LockedIdle
                } else if k % 2 == 0 {
                    GoState::LockedRunnable
                } else {
                    GoState::Running
                };
                m.apply(&ev(t0 + k * 100 * MS, NO_CPU, EventKind::GoState { tid, state, goid: 0, func: None }));
            }
            // 60 % on a CPU, the rest asleep.
            for k in 0..100 {
                sw(m, t0 + k * 10 * MS, 0, tid, 0);
                sw(m, t0 + k * 10 * MS + 6 * MS, tid, 0, 1);
            }
        }
        let parked = pool(|m, t0, tid| states(m, t0, tid, 0));
        let f = evaluate(&parked.live(None), &ctx(), &Thresholds::default());
        assert_eq!(f.iter().map(|f| f.rule).collect::<Vec<_>>(), [PINNED_STARVATION]);
        assert!(
            f[0].message.contains("busy 100% of the time: on a CPU 60% and has work but no P 50%"),
            "{}",
            f[0].message
        );
        // ...and one found waiting for work in 3 of 10 samples is not.
        let idles = pool(|m, t0, tid| states(m, t0, tid, 3));
        assert!(rules(&idles.live(None), &ctx()).is_empty());
    }

    /// Moves of running (or runnable) pinned threads, `sleeping_moves` more while asleep.
    fn moving_pool(sleeping_moves: u64) -> Model {
        pinned_pool(2, 10, move |m, s, tid, _| {
            for k in 0..5 {
                let t0 = s * S + k * 100 * MS;
                let sw = |prev, next, st| EventKind::Switch {
                    prev_tid: prev,
                    next_tid: next,
                    prev_state: st,
                    next_wait_ns: None,
                    other: 0,
                };
                m.apply(&ev(t0, 0, sw(0, tid, 0)));
                // Its affinity changes under it: preempted by the stopper, moved.
                m.apply(&ev(t0 + MS, 0, sw(tid, 0, 0)));
                m.apply(&ev(t0 + MS + 1000, 0, EventKind::Migrate { tid, from_cpu: 0, to_cpu: 1 }));
                m.apply(&ev(t0 + 2 * MS, 1, sw(0, tid, 0)));
                m.apply(&ev(t0 + 3 * MS, 1, sw(tid, 0, 1)));
                // Asleep, then woken on another CPU: where it wakes is free.
                for j in 0..sleeping_moves {
                    m.apply(&ev(t0 + 4 * MS + j * 1000, 1, EventKind::Migrate { tid, from_cpu: 1, to_cpu: 0 }));
                }
            }
        })
    }

    #[test]
    fn pinned_threads_that_move_between_cpus() {
        let m = moving_pool(0);
        let f = evaluate(&m.live(None), &ctx(), &Thresholds::default());
        assert_eq!(f.iter().map(|f| f.rule).collect::<Vec<_>>(), [PINNED_MIGRATION]);
        assert!(
            f[0].message
                .starts_with("2 pinned threads were moved between CPUs 10 times a second while running or runnable"),
            "{}",
            f[0].message
        );
        let mut t = Thresholds::default();
        t.set("pinned_migrations=20").expect("a threshold");
        assert!(evaluate(&m.live(None), &ctx(), &t).is_empty(), "the threshold is honoured");
    }

    /// Sleeping pinned workers wake on whichever CPU is free (measured: 8-19
    /// times a second each in a pool of 8 on 2 CPUs): no cost, no finding.
    #[test]
    fn pinned_threads_waking_on_another_cpu_are_not_moved() {
        let sleepy = pinned_pool(2, 10, |m, s, tid, _| {
            for k in 0..20 {
                m.apply(&ev(s * S + k * 50 * MS, 0, EventKind::Migrate { tid, from_cpu: 0, to_cpu: 1 }));
            }
        });
        assert!(rules(&sleepy.live(None), &ctx()).is_empty());
        let live = sleepy.live(None);
        assert_eq!(live.threads.iter().map(|t| t.migrations).sum::<u64>(), 40, "still counted as migrations");
        // The same moves of running threads plus many wake-up moves: only the first count.
        let f = evaluate(&moving_pool(10).live(None), &ctx(), &Thresholds::default());
        assert_eq!(f[0].evidence["pinned_migrations_per_sec"], 10.0);
    }

    #[test]
    fn a_gomaxprocs_spike_is_not_gomaxprocs_over_quota() {
        let cg = CpuGroup {
            version: 1,
            quota_cpus: Some(2.0),
            period_us: Some(100_000),
            cpus_allowed: 8,
            ..Default::default()
        };
        let ctx = Context { cgroup: Some(&cg), nr_cpus: 8, ..Default::default() };
        let set = |m: &mut Model, ts, value| m.apply(&ev(ts, NO_CPU, EventKind::GoMaxProcs { value }));
        // 2, then 8 for one second, then 2 again.
        let spike = run(6, |m, s| set(m, s * S + MS, if s == 3 { 8 } else { 2 }));
        let spike4 = run(5, |m, s| set(m, s * S + MS, if s == 4 { 8 } else { 2 }));
        assert!(rules(&spike.live(None), &ctx).is_empty());
        assert!(rules(&spike4.live(None), &ctx).is_empty(), "at its last second too");
        // 8 for 3 seconds: a setting.
        let steady = run(6, |m, s| set(m, s * S + MS, if s >= 3 { 8 } else { 2 }));
        assert_eq!(rules(&steady.live(None), &ctx), [GOMAXPROCS_OVER_QUOTA]);
    }

    /// Thread 100 each second: runs `run` ms, is preempted by process 777
    /// and waits behind it `wait` ms, sleeps the rest.
    fn beside_a_hog(run_ms: u64, wait_ms: u64) -> Model {
        run(6, move |m, s| {
            if s == 0 {
                let comm = Comm::new("hog");
                m.apply(&ev(0, NO_CPU, EventKind::OtherProcess { pid: 777, kthread: false, comm }));
            }
            let t0 = s * S;
            let sw = |prev, next, st, other| EventKind::Switch {
                prev_tid: prev,
                next_tid: next,
                prev_state: st,
                next_wait_ns: None,
                other,
            };
            m.apply(&ev(t0, 0, sw(0, 100, 0, 0)));
            m.apply(&ev(t0 + run_ms * MS, 0, sw(100, 0, 0, 777)));
            m.apply(&ev(t0 + (run_ms + wait_ms) * MS, 0, sw(0, 100, 0, 777)));
            m.apply(&ev(t0 + (run_ms + wait_ms) * MS + 1, 0, sw(100, 0, 1, 0)));
        })
    }

    #[test]
    fn another_process_taking_the_cpu_is_a_noisy_neighbor() {
        let live = beside_a_hog(500, 450).live(None);
        let f = evaluate(&live, &ctx(), &Thresholds::default());
        // The waits are long too: runq_latency, which names who held the CPU.
        assert_eq!(f.iter().map(|f| f.rule).collect::<Vec<_>>(), [NOISY_NEIGHBOR, RUNQ_LATENCY]);
        assert!(f[1].message.contains("other processes hold the CPUs"), "{}", f[1].message);
        assert!(f[1].message.contains("0% behind its own threads, 100% behind other processes"), "{}", f[1].message);
        assert!(
            f[0].message.starts_with(
                "the threads lose 47% of their runnable time to other processes (0.45 CPUs), most to hog (pid 777)"
            ),
            "{}",
            f[0].message
        );
        assert_eq!(f[0].text["top_other_comm"], "hog");
        assert_eq!(f[0].evidence["top_other_pid"], 777.0);
        let json = serde_json::to_value(&f[0]).expect("json");
        assert_eq!(json["evidence"]["top_other_comm"], "hog");
        assert_eq!(json["evidence"]["top_other_pid"], 777.0);
        assert_eq!(live.interval.process.wait_by_cause_ns.other_processes, 450 * MS);
        assert!(
            (live.interval.process.cpu_pressure_pct - 45.0).abs() < 0.1,
            "{}",
            live.interval.process.cpu_pressure_pct
        );
        assert_eq!(live.other_processes[0].comm, "hog");
        // A sleeper that waits a little behind it: a large share of very little.
        assert!(rules(&beside_a_hog(2, 2).live(None), &ctx()).is_empty());
    }

    #[test]
    fn thresholds_from_the_command_line() {
        let mut t = Thresholds::default();
        t.set("runq_p99=10").expect("valid");
        t.set(" sustain = 5 ").expect("spaces are fine");
        assert!(t.set("sigurg_sender_share=5").is_err(), "a share is at most 1");
        assert!(t.set("pinned_hot=101").is_err(), "a percentage is at most 100");
        t.set("sigurg_sender_share=1").expect("1 is a share");
        assert_eq!((t.runq_p99_ns, t.sustain_ns), (10_000_000, 5_000_000_000));
        assert!(t.set("runq_p99").expect_err("no value").contains("NAME=VALUE"));
        assert!(t.set("nope=1").expect_err("no such name").starts_with("no threshold named \"nope\""));
        assert!(t.set("runq_p99=-1").is_err());
        assert!(t.set("runq_p99=NaN").is_err());
        assert!(t.set("runq_p99=1e400").is_err());
        assert_eq!(t.describe().len(), THRESHOLDS.len());
        assert!(t.describe()[1].starts_with("runq_p99=10 ms"));
        // Every rule has a name, and each threshold's name is unique.
        let mut names: Vec<_> = THRESHOLDS.iter().map(|s| s.name).collect();
        names.dedup();
        assert_eq!(names.len(), THRESHOLDS.len());
        assert_eq!(RULES.len(), 9);
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
            m.apply(&ev(
                s * S + MS,
                0,
                EventKind::Switch { prev_tid: 100, next_tid: 0, prev_state: 0, next_wait_ns: None, other: 0 },
            ));
            m.apply(&ev(
                s * S + 61 * MS,
                0,
                EventKind::Switch { prev_tid: 0, next_tid: 100, prev_state: 0, next_wait_ns: None, other: 0 },
            ));
        });
        let cg = CpuGroup {
            version: 1,
            quota_cpus: Some(2.0),
            period_us: Some(100_000),
            cpus_allowed: 8,
            ..Default::default()
        };
        let ctx = Context { gomaxprocs: Some(8), cgroup: Some(&cg), nr_cpus: 8, not_go: false };
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
        let grow = |m: &mut Model, s: u64| {
            if s == 0 {
                for tid in 200..230 {
                    let kind = EventKind::NewTask {
                        parent_tid: 100,
                        parent_tgid: 100,
                        child_tid: tid,
                        clone_flags: pintrace_common::CLONE_THREAD,
                        comm: Comm::new("app"),
                    };
                    m.apply(&ev(MS, 0, kind));
                }
            }
        };
        // One interval is no sustained condition, however long it was.
        let one = run(1, grow);
        assert!(rules(&one.live(None), &Context { gomaxprocs: Some(4), nr_cpus: 4, ..Default::default() }).is_empty());
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
        let live = m.live(None);
        let f = evaluate(&live, &ctx, &Thresholds::default());
        assert_eq!(f.iter().map(|f| f.rule).collect::<Vec<_>>(), [THREAD_GROWTH]);
        assert!(f[0].message.starts_with("33 threads for GOMAXPROCS 4: expected at most 14"), "{}", f[0].message);
        let cap = capacity(&live, Some(4), &Thresholds::default()).expect("a Go target");
        assert_eq!(cap.to_string(), "33 threads of at most 14 expected (GOMAXPROCS 4 + 0 pinned + 10 baseline)");
    }

    /// The cause named is what the threads do: in cgo, in syscalls, idle.
    #[test]
    fn thread_growth_names_what_the_threads_do() {
        let grown = |state: GoState| {
            run(4, move |m, s| {
                if s == 0 {
                    for tid in 200..230 {
                        let kind = EventKind::NewTask {
                            parent_tid: 100,
                            parent_tgid: 100,
                            child_tid: tid,
                            clone_flags: pintrace_common::CLONE_THREAD,
                            comm: Comm::new("app"),
                        };
                        m.apply(&ev(MS, 0, kind));
                        let goid = u64::from(tid);
                        m.apply(&ev(2 * MS, NO_CPU, EventKind::GoState { tid, state, goid, func: None }));
                    }
                }
            })
        };
        let ctx = Context { gomaxprocs: Some(4), nr_cpus: 4, ..Default::default() };
        for (state, says, key) in [
            (GoState::Cgo, "30 of 33 threads are in cgo calls", "in_cgo"),
            (GoState::Syscall, "30 of 33 threads are in blocking system calls", "in_syscall"),
            (GoState::Idle, "30 of 33 threads are idle", "idle"),
        ] {
            let f = evaluate(&grown(state).live(None), &ctx, &Thresholds::default());
            assert_eq!(f.iter().map(|f| f.rule).collect::<Vec<_>>(), [THREAD_GROWTH]);
            assert!(f[0].message.contains(says), "{}", f[0].message);
            assert_eq!(f[0].evidence[key], 30.0, "{state:?}");
        }
        let f = evaluate(&grown(GoState::Cgo).live(None), &ctx, &Thresholds::default());
        assert!(f[0].advice.starts_with("bound the concurrent cgo calls"), "{}", f[0].advice);
    }

    #[test]
    fn per_request_locking_is_named_and_is_no_excuse() {
        // 30 threads, each pinned and locked again every second (a lock per request).
        let m = run(8, |m, s| {
            for tid in 200..230 {
                if s == 0 {
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
                    m.apply(&go_m(tid, GoRole::Pinned, 1));
                }
                m.apply(&ev(s * S + 2 * MS, 0, EventKind::GoLock { tid, caller: 0x1000, func: None }));
            }
        });
        let ctx = Context { gomaxprocs: Some(4), nr_cpus: 4, ..Default::default() };
        let live = m.live(None);
        assert_eq!((live.interval.process.pinned_threads, live.interval.process.long_pinned_threads), (30, 0));
        let f = evaluate(&live, &ctx, &Thresholds::default());
        assert_eq!(f.iter().map(|f| f.rule).collect::<Vec<_>>(), [THREAD_GROWTH]);
        assert!(
            f[0].message.contains("expected at most 14; LockOSThread is called 30 times a second"),
            "{}",
            f[0].message
        );
    }
}
