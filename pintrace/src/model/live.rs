//! What a live front end (`top`, `top --batch`, `replay`) shows at one tick:
//! the last closed interval's counts and rates next to the totals, the
//! history of a few key rates, and a log of discrete happenings. Owned
//! values only: a front end keeps one as a frozen snapshot while the model
//! goes on ingesting.
use std::fmt;

use serde::Serialize;

use super::{Latency, ProcessStats, Snapshot, ThreadStats};
use crate::fmt::{clean, ns};

/// What a thread was doing at the end of the interval.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunState {
    /// On a CPU.
    Running,
    /// Runnable, waiting for a CPU (preempted or woken up).
    Waiting,
    /// Runnable, but parked until its CPU cgroup's next period (CFS throttling).
    Throttled,
    /// Blocked (sleeping, waiting for I/O or a lock), or never seen switching.
    Sleeping,
    Exited,
}

impl RunState {
    /// One letter, as `ps` and `top` show states.
    pub fn letter(self) -> char {
        match self {
            RunState::Running => 'R',
            RunState::Waiting => 'W',
            RunState::Throttled => 'T',
            RunState::Sleeping => 'S',
            RunState::Exited => 'X',
        }
    }
}

/// A thread's counts over the last interval, and their rates.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ThreadRow {
    pub tid: u32,
    pub comm: String,
    pub state: RunState,
    /// The CPU it last ran on.
    pub last_cpu: Option<u32>,
    /// CLOCK_MONOTONIC time it was created, if inside the trace.
    pub born_ns: Option<u64>,
    pub died_ns: Option<u64>,
    /// Created during the last interval.
    pub new: bool,
    /// Created and exited within `SHORT_LIVED_NS`.
    pub short_lived: bool,
    pub on_cpu_ns: u64,
    pub migrations: u64,
    pub voluntary_switches: u64,
    pub involuntary_switches: u64,
    pub sigurg_received: u64,
    pub sigurg_sent: u64,
    pub signals_received: u64,
    pub signals_sent: u64,
    pub runq_latency_ns: Latency,
    /// On-CPU share of the interval, in percent of one CPU.
    pub cpu_pct: f64,
    pub migrations_per_sec: f64,
    pub voluntary_switches_per_sec: f64,
    pub involuntary_switches_per_sec: f64,
    pub sigurg_received_per_sec: f64,
    /// From the Go runtime's M list (None: not a Go M, or not known).
    pub role: Option<crate::goruntime::GoRole>,
    /// Locked to a goroutine by `runtime.LockOSThread` now.
    pub pinned: bool,
    /// Pinned for a while, and not by a LockOSThread call just now.
    pub long_pinned: bool,
    /// Start function of the goroutine locked to it.
    pub pinned_by: Option<String>,
    /// Of `sigurg_received`: from the runtime's sysmon (a goroutine ran over 10 ms).
    pub sigurg_from_sysmon: u64,
    /// Time parked by CFS throttling in the interval.
    pub throttled_ns: u64,
    pub lock_calls: u64,
    /// What its M did when last read (null: not a Go M, or not known).
    pub go_state: Option<crate::goruntime::GoState>,
    /// The goroutine on it then (running, in a syscall or in cgo).
    pub goroutine: Option<crate::goruntime::Goroutine>,
    /// Time in the interval its locked goroutine was runnable without a P (sampled).
    pub p_wait_ns: u64,
}

/// Per-second rates of the process over the last interval.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Rates {
    pub threads_created_per_sec: f64,
    pub threads_exited_per_sec: f64,
    pub migrations_per_sec: f64,
    pub voluntary_switches_per_sec: f64,
    pub involuntary_switches_per_sec: f64,
    pub sigurg_per_sec: f64,
    pub signals_per_sec: f64,
    /// On-CPU time per second: CPUs in use on average.
    pub cpus_used: f64,
    pub events_per_sec: f64,
    /// Share of the cgroup's CFS periods that were throttled (None: no cgroup, or no periods).
    pub throttled_periods_pct: Option<f64>,
    /// Throttled time per second of the interval, in ms (None: no cgroup).
    pub throttled_ms_per_sec: Option<f64>,
    /// SIGURG sent by sysmon per second; the rest come from GC and stop-the-world.
    pub sigurg_from_sysmon_per_sec: f64,
    /// `runtime.LockOSThread` calls per second (uprobe).
    pub lock_calls_per_sec: f64,
}

/// The process over the last interval: counts with report's field names, plus rates.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct IntervalStats {
    /// CLOCK_MONOTONIC bounds of the interval.
    pub start_ns: u64,
    pub end_ns: u64,
    pub events: u64,
    pub lost_events: u64,
    /// The cgroup's periods and throttling in the interval (None: no cgroup).
    pub throttle: Option<crate::cgroup::CpuStat>,
    #[serde(flatten)]
    pub process: ProcessStats,
    #[serde(flatten)]
    pub rates: Rates,
}

/// A SIGURG sender over the last interval.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SenderRate {
    pub tid: u32,
    pub comm: String,
    pub sigurg_sent: u64,
    pub sigurg_per_sec: f64,
}

/// One point of the history charts, at the end of an interval.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct HistoryPoint {
    pub t_ns: u64,
    pub threads: u64,
    pub created_per_sec: f64,
    pub exited_per_sec: f64,
    pub migrations_per_sec: f64,
    pub involuntary_per_sec: f64,
    pub sigurg_per_sec: f64,
    pub runq_p99_ns: u64,
    pub cpus_used: f64,
    /// Share of CFS periods throttled, in percent (0 without a cgroup).
    pub throttled_pct: f64,
    /// Threads pinned for a while (see `ThreadRow::long_pinned`), and what they did.
    pub pinned: u64,
    /// The most saturated of them: its TID, its on-CPU share (percent of
    /// one CPU) and its share waiting for a CPU (or parked by throttling).
    pub pinned_hot_tid: u32,
    pub pinned_cpu_max_pct: f64,
    pub pinned_hot_waiting_pct: f64,
    /// ...and its share with its locked goroutine runnable but no P (sampled).
    pub pinned_hot_p_wait_pct: f64,
    /// ...and its share busy: not found waiting for work (sampled), or on a
    /// CPU or waiting for one when its Go state is not read.
    pub pinned_hot_busy_pct: f64,
    /// The others: median on-CPU share, and median wake-ups (voluntary switches) per second.
    pub pinned_cpu_rest_median_pct: f64,
    pub pinned_wakeups_rest_median_per_sec: f64,
    /// Their moves between CPUs while running or waiting for a CPU (where a
    /// sleeping thread wakes up is not counted).
    pub pinned_migrations_per_sec: f64,
    pub lock_calls_per_sec: f64,
    /// The Go target's GOMAXPROCS at the end of the interval (0: not known).
    pub gomaxprocs: u32,
    /// The CPUs the cgroup let it use then, once a change was seen (0: as at the start).
    pub cpus_usable: f64,
    /// Of the threads' time runnable (on a CPU or waiting), the share
    /// (percent) spent waiting behind other processes; that time in CPUs;
    /// and the process they waited behind most (0: none).
    pub other_processes_pct: f64,
    pub other_cpus_lost: f64,
    pub top_other_pid: u32,
    /// The Go scheduler over the interval: samples taken (0: none), the
    /// goroutines waiting for a P on average, the share of samples with
    /// any waiting (percent), and idle Ps on average.
    pub go_samples: u64,
    pub go_queued_mean: f64,
    pub go_queued_pct: f64,
    pub go_idle_ps_mean: f64,
}

/// Something that happened, for the event log.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum LogKind {
    Born {
        tid: u32,
        comm: String,
    },
    Exited {
        tid: u32,
        comm: String,
        lifetime_ns: Option<u64>,
    },
    /// Too many births and exits in one interval to list one by one.
    Churn {
        born: u64,
        exited: u64,
        lifetime_p50_ns: Option<u64>,
    },
    SigurgBurst {
        count: u64,
        per_sec: f64,
        usual_per_sec: f64,
        threads: u64,
        top_sender: Option<u32>,
    },
    Lost {
        count: u64,
        total: u64,
    },
    /// The Go runtime's GOMAXPROCS changed (the program, or Go 1.25+ following the cgroup's limit).
    GoMaxProcs {
        value: u32,
        was: Option<u32>,
    },
    /// The process's CPU cgroup, its quota or the CPUs it may use changed.
    CpuLimit {
        group: String,
        limit: String,
    },
    /// The cgroup was throttled in some of the interval's CFS periods.
    Throttled {
        periods: u64,
        throttled: u64,
        throttled_ns: u64,
    },
    Exec {
        tid: u32,
        comm: String,
    },
    ChildProcesses {
        count: u64,
    },
    /// The M list shows a thread newly locked to a goroutine.
    Pinned {
        tid: u32,
        by: Option<String>,
    },
    Unpinned {
        tid: u32,
    },
    /// Too many pin changes in one interval to list one by one.
    PinChurn {
        pinned: u64,
        unpinned: u64,
    },
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LogEntry {
    pub ts_ns: u64,
    #[serde(flatten)]
    pub kind: LogKind,
}

impl fmt::Display for LogKind {
    /// One line; text the target chose (thread names) is cleaned of control characters.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LogKind::Born { tid, comm } => write!(f, "thread {tid} ({}) born", clean(comm)),
            LogKind::Exited { tid, comm, lifetime_ns: Some(l) } => {
                write!(f, "thread {tid} ({}) exited after {}", clean(comm), ns(*l))
            }
            LogKind::Exited { tid, comm, lifetime_ns: None } => write!(f, "thread {tid} ({}) exited", clean(comm)),
            LogKind::Churn { born, exited, lifetime_p50_ns } => {
                write!(f, "thread churn: {born} born, {exited} exited")?;
                if let Some(l) = lifetime_p50_ns {
                    write!(f, " (lifetime p50 {})", ns(*l))?;
                }
                Ok(())
            }
            LogKind::SigurgBurst { count, per_sec, usual_per_sec, threads, top_sender } => {
                write!(f, "SIGURG burst: {count} ({per_sec:.0}/s, usually {usual_per_sec:.0}/s) to {threads} threads")?;
                if let Some(s) = top_sender {
                    write!(f, ", mostly from {s}")?;
                }
                Ok(())
            }
            LogKind::Lost { count, total } => {
                write!(f, "{count} events lost (ring buffer full; {total} in all): counts are low")
            }
            LogKind::Throttled { periods, throttled, throttled_ns } => write!(
                f,
                "CPU quota throttled the cgroup in {throttled} of {periods} periods, {} in all",
                ns(*throttled_ns)
            ),
            LogKind::CpuLimit { group, limit } => {
                write!(f, "CPU limit changed: group {}, {}", clean(group), clean(limit))
            }
            LogKind::GoMaxProcs { value, was: Some(w) } => write!(f, "GOMAXPROCS changed from {w} to {value}"),
            LogKind::GoMaxProcs { value, was: None } => write!(f, "GOMAXPROCS is {value}"),
            LogKind::Exec { tid, comm } => write!(f, "exec: thread {tid} is now {}", clean(comm)),
            LogKind::ChildProcesses { count } => write!(f, "{count} child process(es) started"),
            LogKind::Pinned { tid, by: Some(by) } => write!(f, "thread {tid} pinned (LockOSThread) by {}", clean(by)),
            LogKind::Pinned { tid, by: None } => write!(f, "thread {tid} pinned (LockOSThread)"),
            LogKind::Unpinned { tid } => write!(f, "thread {tid} unpinned"),
            LogKind::PinChurn { pinned, unpinned } => {
                write!(f, "pinning churn: {pinned} threads pinned, {unpinned} unpinned")
            }
        }
    }
}

/// Everything about one thread that the detail view shows.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ThreadDetail {
    pub totals: ThreadStats,
    pub state: RunState,
    pub last_cpu: Option<u32>,
    /// On-CPU nanoseconds per CPU since the start (or reset), by CPU number.
    pub cpu_time_ns: Vec<(u32, u64)>,
    /// The run-queue latency histogram since the start: (upper bound ns, count), ascending.
    pub runq_histogram: Vec<(u64, u64)>,
    /// Who sent it signals: (tid, comm, SIGURG, other signals), most first.
    pub signalled_by: Vec<(u32, String, u64, u64)>,
    /// Its recent state changes, oldest first: (CLOCK_MONOTONIC ns, state from then on).
    pub timeline: Vec<(u64, RunState)>,
}

/// The model at one tick, for a live front end.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LiveSnapshot {
    /// The end of the last interval (CLOCK_MONOTONIC).
    pub now_ns: u64,
    /// Totals since the start of tracing, or since the last reset.
    pub totals: Snapshot,
    /// When the totals start (CLOCK_MONOTONIC): the start, or the last reset.
    pub totals_since_ns: u64,
    pub interval: IntervalStats,
    pub sigurg_senders: Vec<SenderRate>,
    /// Every thread alive, and the recently exited ones; in TID order.
    pub threads: Vec<ThreadRow>,
    /// Oldest first.
    pub history: Vec<HistoryPoint>,
    /// Oldest first.
    pub log: Vec<LogEntry>,
    /// The Go target's GOMAXPROCS, as last read (None: not Go, or unreadable).
    pub gomaxprocs: Option<u32>,
    /// The CPU cgroup as last changed while traced (None: as at the start).
    pub cgroup: Option<crate::cgroup::CpuGroup>,
    /// The Go scheduler as last sampled, with the interval's queues (None: not sampled).
    pub go_sched: Option<super::gosched::SchedView>,
    /// The other processes the threads waited behind in the interval, most first.
    pub other_processes: Vec<super::pressure::OtherProcess>,
    /// The thread asked for with `live(.., Some(tid))`, if it is known.
    pub detail: Option<ThreadDetail>,
}
