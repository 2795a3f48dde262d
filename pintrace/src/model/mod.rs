//! The aggregation model: pure and synchronous.
//!
//! `apply` folds events in; `snapshot(now)` returns the totals per thread
//! and per process; `tick(now)` closes an interval (its deltas and rates,
//! a point of history, the event log, pruning of long-exited threads) and
//! `live(focus)` returns what a live front end shows. No I/O, no clocks, no
//! BPF: time is always passed in, so everything here is unit-tested
//! without root.
use std::collections::VecDeque;

use crate::TidMap as HashMap;

use serde::Serialize;

use crate::{
    cgroup::{CpuGroup, CpuStat},
    event::{Event, EventKind, FnName},
    goruntime::GoState,
    hist::Histogram,
};

pub mod gosched;
pub mod live;
pub mod pressure;
mod thread;

use live::{
    HistoryPoint, IntervalStats, LiveSnapshot, LogEntry, LogKind, Rates, RunState, SenderRate, ThreadDetail, ThreadRow,
};
use pressure::{Cause, OtherProcess, Pressure, WaitByCause};
use thread::{Counts, GoM, SwitchOut, Thread};

pub const SIGURG: i32 = pintrace_common::SIGURG;

/// Points of history kept for the charts: 15 minutes at one per second.
pub const HISTORY: usize = 900;
/// Entries kept in the event log.
pub const LOG: usize = 500;
/// Births and exits in one interval up to which each gets its own log line.
pub const LOG_EACH: usize = 6;
/// A thread that lived less than this is marked short-lived.
pub const SHORT_LIVED_NS: u64 = 1_000_000_000;
/// At most this many exited threads are kept (live front ends), however recent.
pub const MAX_EXITED: usize = 1000;
/// A SIGURG rate is a burst when at least this high, and at least
/// `BURST_FACTOR` times the median of the last `BURST_BASELINE` intervals.
pub const BURST_MIN_PER_SEC: f64 = 100.0;
pub const BURST_FACTOR: f64 = 4.0;
pub const BURST_BASELINE: usize = 10;
/// Intervals of history needed before any SIGURG rate can be called a burst.
pub const BURST_BASELINE_MIN: usize = 3;
/// A thread pinned at least this long, without a LockOSThread call on it
/// in that time, is a long-lived pinned worker (not a per-request pin).
pub const LONG_PINNED_NS: u64 = 3_000_000_000;

/// Process-wide counters that only grow between resets.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct ProcCounts {
    created: u64,
    exited: u64,
    forks: u64,
    events: u64,
    tgkill_calls: u64,
    clone_calls: u64,
}

/// Where the traced process stands at a point in time.
#[derive(Debug)]
pub struct Model {
    start_ns: u64,
    threads: HashMap<u32, Thread>,
    alive: u64,
    peak: u64,
    at_start: u64,
    p: ProcCounts,
    lost: u64,
    lifetimes: Histogram,
    last_ts: u64,
    /// Exited threads are dropped this long after their exit (None: kept).
    retain_exited_ns: Option<u64>,
    /// Counts of threads dropped from `threads`, so that totals stay whole.
    pruned: Counts,
    pruned_runq: Histogram,
    // The interval clock.
    tick_ns: u64,
    prev_tick_ns: u64,
    p_at_tick: ProcCounts,
    lost_at_tick: u64,
    lifetimes_iv: Histogram,
    interval: IntervalStats,
    senders: Vec<SenderRate>,
    history: VecDeque<HistoryPoint>,
    log: VecDeque<LogEntry>,
    /// Births and exits of the open interval, logged one by one if few.
    pending: Vec<LogEntry>,
    pending_more: bool,
    /// The cgroup's cpu.stat: when first seen (or at reset), now, and at the last tick.
    throttle_base: Option<CpuStat>,
    throttle_now: CpuStat,
    throttle_at_tick: CpuStat,
    /// The last raw `cpu.stat` reading; the totals above add up the deltas
    /// between readings of one group (another group's counters are not a delta).
    throttle_raw: Option<CpuStat>,
    throttle_rebase: bool,
    /// The CPU cgroup as last changed while traced (None: as it was at the start).
    cgroup: Option<CpuGroup>,
    /// Waits by what they were behind, and the process's CPU pressure.
    pressure: Pressure,
    /// The other processes the threads waited behind in the last interval.
    others_last: Vec<OtherProcess>,
    /// The Go scheduler's samples, and those of the last closed interval.
    go_sched: gosched::GoSched,
    sched_last: gosched::QueueStats,
    gomaxprocs: Option<u32>,
    /// The Go runtime's sysmon thread, from the M list.
    sysmon: Option<u32>,
    /// When the Go runtime was last read (GOMAXPROCS, the M list, the scheduler).
    go_read_ns: u64,
    /// M-list entries of threads whose creation has not been seen yet (the
    /// list is read in user space, ahead of the ring buffer's events).
    pending_go: HashMap<u32, (u64, GoM)>,
    /// Go states of threads not seen yet, likewise.
    pending_state: HashMap<u32, (u64, GoState, u64, Option<FnName>)>,
    /// Pin changes of the open interval, logged one by one if few.
    pending_pins: Vec<LogEntry>,
    pin_changes: (u64, u64),
}

/// What one long-lived pinned thread did over an interval.
struct PinnedLoad {
    tid: u32,
    cpu_pct: f64,
    /// Waiting for a CPU, or parked by throttling.
    waiting_pct: f64,
    /// Its locked goroutine runnable, waiting for a P (the thread parked).
    p_wait_pct: f64,
    /// Its locked goroutine blocked, waiting for work (None: its Go state
    /// is not sampled).
    locked_idle_pct: Option<f64>,
    wakeups_per_sec: f64,
    runnable_migrations: u64,
}

impl PinnedLoad {
    /// Busy: not waiting for work. With its Go state sampled, the time its
    /// locked goroutine was not found blocked; without, on a CPU or
    /// waiting for one. 100 % is saturated.
    fn busy_pct(&self) -> f64 {
        match self.locked_idle_pct {
            Some(idle) => (100.0 - idle).max(self.cpu_pct),
            None => self.cpu_pct + self.waiting_pct + self.p_wait_pct,
        }
    }
}

fn stat_minus(a: &CpuStat, b: &CpuStat) -> CpuStat {
    CpuStat {
        nr_periods: a.nr_periods.saturating_sub(b.nr_periods),
        nr_throttled: a.nr_throttled.saturating_sub(b.nr_throttled),
        throttled_ns: a.throttled_ns.saturating_sub(b.throttled_ns),
    }
}
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Latency {
    pub count: u64,
    pub p50: u64,
    pub p99: u64,
    pub max: u64,
    pub mean: u64,
}

impl From<&Histogram> for Latency {
    fn from(h: &Histogram) -> Self {
        Latency { count: h.count(), p50: h.quantile(0.5), p99: h.quantile(0.99), max: h.max(), mean: h.mean() }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ThreadStats {
    pub tid: u32,
    pub tgid: u32,
    pub comm: String,
    /// Nanoseconds after the start of the window; null if it existed before.
    pub born_ns: Option<u64>,
    /// Nanoseconds after the start of the window; null if still alive.
    pub died_ns: Option<u64>,
    pub on_cpu_ns: u64,
    pub migrations: u64,
    pub cpus: Vec<u32>,
    pub voluntary_switches: u64,
    pub involuntary_switches: u64,
    pub sigurg_received: u64,
    pub sigurg_sent: u64,
    pub signals_received: u64,
    pub signals_sent: u64,
    pub runq_latency_ns: Latency,
    /// Of `sigurg_received`: sent by the Go runtime's sysmon thread.
    pub sigurg_from_sysmon: u64,
    /// Switch-outs by CFS throttling, and the time parked after them (not in `runq_latency_ns`).
    pub throttled_switches: u64,
    pub throttled_ns: u64,
    /// Its role in the Go runtime (null: not a Go M, or not known).
    pub role: Option<crate::goruntime::GoRole>,
    /// Locked to a goroutine (`runtime.LockOSThread`) when last read.
    pub pinned: bool,
    /// Start function of the goroutine locked to it.
    pub pinned_by: Option<String>,
    /// `runtime.LockOSThread` calls on it, and the function that made the last one.
    pub lock_calls: u64,
    pub last_lock_caller: Option<String>,
    /// What its M did when last read (null: not a Go M, or not known).
    pub go_state: Option<crate::goruntime::GoState>,
    /// The goroutine on it then (running, in a syscall or in cgo).
    pub goroutine: Option<crate::goruntime::Goroutine>,
    /// Time its locked goroutine was runnable without a P (sampled).
    pub p_wait_ns: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ProcessStats {
    pub threads_at_start: u64,
    pub threads_now: u64,
    pub threads_peak: u64,
    pub threads_created: u64,
    pub threads_exited: u64,
    pub threads_created_per_sec: f64,
    pub threads_exited_per_sec: f64,
    /// Lifetimes of threads both created and exited inside the window.
    pub thread_lifetime_ns: Latency,
    pub child_processes: u64,
    pub migrations: u64,
    pub voluntary_switches: u64,
    pub involuntary_switches: u64,
    pub on_cpu_ns: u64,
    /// SIGURG generated for the process's threads (Go's asynchronous preemption).
    pub sigurg: u64,
    pub sigurg_per_sec: f64,
    /// Of `sigurg`: sent by the runtime's sysmon (a goroutine ran over 10 ms);
    /// the rest come from GC stack scans and stop-the-world.
    pub sigurg_from_sysmon: u64,
    /// Other signals generated for the process's threads.
    pub signals: u64,
    pub runq_latency_ns: Latency,
    /// Threads' time parked by CFS throttling (summed over threads), and the switch-outs that parked them.
    pub throttled_ns: u64,
    pub throttled_switches: u64,
    /// Threads locked to goroutines now (all, and those pinned for a while).
    pub pinned_threads: u64,
    pub long_pinned_threads: u64,
    /// `runtime.LockOSThread` calls (uprobe).
    pub lock_calls: u64,
    /// Only with `--syscalls`.
    pub tgkill_calls: u64,
    pub clone_calls: u64,
    /// Share of the time (percent) at least one thread was runnable but
    /// not running: waiting for a CPU or parked by throttling (PSI "some").
    pub cpu_pressure_pct: f64,
    /// The threads' waits by what they were behind.
    pub wait_by_cause_ns: WaitByCause,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Snapshot {
    pub duration_ns: u64,
    pub events: u64,
    pub lost_events: u64,
    pub process: ProcessStats,
    /// Sorted by on-CPU time, then TID.
    pub threads: Vec<ThreadStats>,
    /// The cgroup's CFS bandwidth periods and throttling over the window (None: no cgroup seen).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub throttle: Option<CpuStat>,
    /// The Go target's GOMAXPROCS as last read.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gomaxprocs: Option<u32>,
    /// The CPU cgroup as last changed while traced (None: as at the start).
    #[serde(skip)]
    pub cgroup: Option<CpuGroup>,
    /// The Go scheduler as last sampled, with the goroutines that waited
    /// for a P over the window (None: not sampled).
    #[serde(skip)]
    pub go_sched: Option<gosched::SchedView>,
    /// The other processes whose tasks the threads waited behind, most first.
    #[serde(skip)]
    pub other_processes: Vec<OtherProcess>,
}

fn per_sec(count: u64, ns: u64) -> f64 {
    if ns == 0 {
        0.0
    } else {
        count as f64 * 1e9 / ns as f64
    }
}

fn thread_stats(tid: u32, t: &Thread, c: &Counts, runq: Latency, rel: impl Fn(u64) -> u64) -> ThreadStats {
    ThreadStats {
        tid,
        tgid: t.tgid,
        comm: t.comm.to_string(),
        born_ns: t.born_ns.map(&rel),
        died_ns: t.died_ns.map(&rel),
        on_cpu_ns: c.on_cpu_ns,
        migrations: c.migrations,
        cpus: t.cpu_time.iter().map(|&(cpu, _)| cpu).collect(),
        voluntary_switches: c.voluntary,
        involuntary_switches: c.involuntary,
        sigurg_received: c.sigurg_received,
        sigurg_sent: c.sigurg_sent,
        signals_received: c.signals_received,
        signals_sent: c.signals_sent,
        runq_latency_ns: runq,
        sigurg_from_sysmon: c.sigurg_from_sysmon,
        throttled_switches: c.throttled,
        throttled_ns: c.throttled_ns,
        role: t.go.map(|g| g.role),
        pinned: t.pinned(),
        pinned_by: t.go.and_then(|g| g.locked_g).map(|f| f.to_string()),
        lock_calls: c.lock_calls,
        last_lock_caller: t.last_lock.and_then(|(_, f)| f).map(|f| f.to_string()),
        go_state: t.go_state,
        goroutine: goroutine(t),
        p_wait_ns: c.p_wait_ns,
    }
}

fn goroutine(t: &Thread) -> Option<crate::goruntime::Goroutine> {
    t.goroutine.map(|(id, f)| crate::goruntime::Goroutine { id, function: f.map(|f| f.to_string()) })
}

/// A thread pinned for `LONG_PINNED_NS` with no LockOSThread call in that
/// time (a per-request pin is locked again and again).
fn long_pinned(t: &Thread, now: u64) -> bool {
    let worker = t.pinned();
    let since = t.pinned_since.is_some_and(|s| s.saturating_add(LONG_PINNED_NS) <= now);
    let locked_lately = t.last_lock.is_some_and(|(ts, _)| ts.saturating_add(LONG_PINNED_NS) > now);
    worker && since && !locked_lately
}

fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

impl Model {
    /// A model of a trace that starts at `start_ns` (CLOCK_MONOTONIC). It
    /// keeps every thread; see `retain_exited` for live front ends.
    pub fn new(start_ns: u64) -> Self {
        Model {
            start_ns,
            threads: HashMap::default(),
            alive: 0,
            peak: 0,
            at_start: 0,
            p: ProcCounts::default(),
            lost: 0,
            lifetimes: Histogram::default(),
            last_ts: start_ns,
            retain_exited_ns: None,
            pruned: Counts::default(),
            pruned_runq: Histogram::default(),
            tick_ns: start_ns,
            prev_tick_ns: start_ns,
            p_at_tick: ProcCounts::default(),
            lost_at_tick: 0,
            lifetimes_iv: Histogram::default(),
            interval: IntervalStats { start_ns, end_ns: start_ns, ..Default::default() },
            senders: Vec::new(),
            history: VecDeque::new(),
            log: VecDeque::new(),
            pending: Vec::new(),
            pending_more: false,
            throttle_base: None,
            throttle_now: CpuStat::default(),
            throttle_at_tick: CpuStat::default(),
            throttle_raw: None,
            throttle_rebase: false,
            cgroup: None,
            pressure: Pressure::default(),
            others_last: Vec::new(),
            go_sched: gosched::GoSched::default(),
            sched_last: gosched::QueueStats::default(),
            gomaxprocs: None,
            sysmon: None,
            go_read_ns: 0,
            pending_go: HashMap::default(),
            pending_state: HashMap::default(),
            pending_pins: Vec::new(),
            pin_changes: (0, 0),
        }
    }

    /// Drops exited threads `ns` after their exit (and beyond `MAX_EXITED`
    /// of them), folding their counts into the process's, so that memory
    /// stays bounded on a process that churns threads.
    pub fn retain_exited(mut self, ns: u64) -> Self {
        self.retain_exited_ns = Some(ns);
        self
    }

    /// The latest event time seen (or the start).
    pub fn last_ts(&self) -> u64 {
        self.last_ts
    }

    /// How many threads the model holds (alive and exited).
    pub fn threads_held(&self) -> usize {
        self.threads.len()
    }

    fn thread(&mut self, tid: u32) -> &mut Thread {
        self.threads.entry(tid).or_default()
    }

    fn log(&mut self, ts_ns: u64, kind: LogKind) {
        if self.log.len() == LOG {
            self.log.pop_front();
        }
        self.log.push_back(LogEntry { ts_ns, kind });
    }

    fn log_pending(&mut self, ts_ns: u64, kind: LogKind) {
        if self.pending.len() < LOG_EACH {
            self.pending.push(LogEntry { ts_ns, kind });
        } else {
            self.pending_more = true;
        }
    }

    pub fn apply(&mut self, e: &Event) {
        let ts = e.ts_ns;
        if e.cpu != crate::event::NO_CPU {
            self.p.events += 1;
        }
        self.last_ts = self.last_ts.max(ts);
        match e.kind {
            EventKind::Switch { prev_tid, next_tid, prev_state, next_wait_ns, other } => {
                if prev_tid != 0 {
                    let start = self.start_ns;
                    self.thread(prev_tid).switch_out(ts, e.cpu, start, SwitchOut::of(prev_state));
                }
                if next_tid != 0 {
                    let counted_to = self.tick_ns;
                    let t = self.thread(next_tid);
                    if let Some((start, throttled)) = t.switch_in(ts, e.cpu, counted_to, next_wait_ns) {
                        let cause = if throttled { Cause::Throttled } else { Cause::of(prev_tid, other) };
                        if let Cause::Other(_) = cause {
                            t.c.wait_other_ns = t.c.wait_other_ns.saturating_add(ts.saturating_sub(start));
                        }
                        self.pressure.wait(start, ts, cause);
                    }
                }
            }
            EventKind::Wakeup { tid, .. } => {
                let t = self.thread(tid);
                // A wake-up of a thread still on its CPU (it had not yet slept)
                // or already waiting does not start a new wait.
                if t.running_since.is_none() && t.waiting_since.is_none() {
                    t.waiting_since = Some(ts);
                    t.mark(ts, RunState::Waiting);
                }
            }
            EventKind::Migrate { tid, .. } => {
                let t = self.thread(tid);
                t.c.migrations += 1;
                if t.running_since.is_some() || t.waiting_since.is_some() {
                    t.c.runnable_migrations += 1;
                }
            }
            EventKind::Signal { sender_tid, target_tid, sig, .. } => {
                let urg = sig == SIGURG;
                let from_sysmon = self.sysmon == Some(sender_tid);
                if let Some(t) = self.threads.get_mut(&target_tid) {
                    if urg {
                        t.c.sigurg_received += 1;
                        t.c.sigurg_from_sysmon += u64::from(from_sysmon);
                    } else {
                        t.c.signals_received += 1;
                    }
                    t.signalled(sender_tid, urg);
                }
                if let Some(t) = self.threads.get_mut(&sender_tid) {
                    if urg {
                        t.c.sigurg_sent += 1;
                    } else {
                        t.c.signals_sent += 1;
                    }
                }
            }
            EventKind::NewTask { parent_tgid, child_tid, clone_flags, comm, .. } => {
                if clone_flags & pintrace_common::CLONE_THREAD != 0 {
                    let t = self.thread(child_tid);
                    let was_alive = std::mem::replace(&mut t.alive, true);
                    t.tgid = parent_tgid;
                    t.comm = comm;
                    t.born_ns = Some(ts);
                    self.p.created += 1;
                    if was_alive {
                        // Also listed at attach (a race with /proc): created, not there at start.
                        self.at_start = self.at_start.saturating_sub(1);
                    } else {
                        self.alive += 1;
                        self.peak = self.peak.max(self.alive);
                    }
                    self.log_pending(ts, LogKind::Born { tid: child_tid, comm: comm.to_string() });
                    self.go_pending(child_tid);
                } else {
                    self.p.forks += 1;
                }
            }
            EventKind::Exit { tid, tgid, comm, group_dead } => {
                {
                    let t = self.thread(tid);
                    t.tgid = tgid;
                    t.comm = comm;
                }
                self.exited(tid, ts);
                if group_dead {
                    // The last thread of the group is gone, so all are: an
                    // exit recorded on another CPU can reach the ring after
                    // the reader has stopped.
                    let rest: Vec<u32> =
                        self.threads.iter().filter(|(_, t)| t.alive && t.tgid == tgid).map(|(&tid, _)| tid).collect();
                    for tid in rest {
                        self.exited(tid, ts);
                    }
                }
            }
            EventKind::Rename { tid, comm } => self.thread(tid).comm = comm,
            EventKind::Exec { tid, old_tid, comm } => {
                if old_tid != tid {
                    self.took_over(old_tid, tid, ts);
                }
                if ts > self.go_read_ns && self.threads.get(&tid).is_some_and(|t| t.tgid == tid) {
                    // The process runs another program: what its Go runtime
                    // said before is gone with the old one (the new one's, if
                    // Go, follows; a started command's was read after its exec).
                    self.forget_go();
                }
                self.thread(tid).comm = comm;
                self.log(ts, LogKind::Exec { tid, comm: comm.to_string() });
            }
            EventKind::ThreadSeen { tid, tgid, comm } => {
                let t = self.thread(tid);
                t.tgid = tgid;
                t.comm = comm;
                if !std::mem::replace(&mut t.alive, true) {
                    self.at_start += 1;
                    self.alive += 1;
                    self.peak = self.peak.max(self.alive);
                }
                self.go_pending(tid);
            }
            EventKind::Tgkill { .. } => self.p.tgkill_calls += 1,
            EventKind::CloneExit { ret, .. } => {
                if ret > 0 {
                    self.p.clone_calls += 1;
                }
            }
            EventKind::Lost { total } => self.lost = self.lost.max(total),
            EventKind::GoLock { tid, func, .. } => {
                let t = self.thread(tid);
                t.c.lock_calls += 1;
                t.last_lock = Some((ts, func));
            }
            EventKind::GoThread { tid, role, locked_ext, locked_int, locked_g } => {
                self.go_read_ns = self.go_read_ns.max(ts);
                if role == crate::goruntime::GoRole::Sysmon {
                    self.sysmon = Some(tid);
                }
                let m = GoM { role, locked_ext, locked_int, locked_g };
                if self.threads.get(&tid).is_some_and(|t| t.alive) {
                    self.go_thread(ts, tid, m);
                } else if self.pending_go.len() < MAX_EXITED {
                    self.pending_go.insert(tid, (ts, m));
                }
            }
            EventKind::GoMaxProcs { value } => {
                self.go_read_ns = self.go_read_ns.max(ts);
                if self.gomaxprocs.is_some_and(|g| g != value) {
                    self.log(ts, LogKind::GoMaxProcs { value, was: self.gomaxprocs });
                }
                self.gomaxprocs = Some(value);
            }
            EventKind::Throttle { nr_periods, nr_throttled, throttled_ns } => {
                let s = CpuStat { nr_periods, nr_throttled, throttled_ns };
                if self.throttle_base.is_none() {
                    self.throttle_base = Some(CpuStat::default());
                } else if let Some(prev) = self.throttle_raw.filter(|_| !self.throttle_rebase) {
                    let d = stat_minus(&s, &prev);
                    self.throttle_now = CpuStat {
                        nr_periods: self.throttle_now.nr_periods.saturating_add(d.nr_periods),
                        nr_throttled: self.throttle_now.nr_throttled.saturating_add(d.nr_throttled),
                        throttled_ns: self.throttle_now.throttled_ns.saturating_add(d.throttled_ns),
                    };
                }
                self.throttle_raw = Some(s);
                self.throttle_rebase = false;
            }
            EventKind::GoSched { idle_ps, spinning, idle_threads, runqueue, goroutines, nprocs } => {
                self.go_read_ns = self.go_read_ns.max(ts);
                self.go_sched.sample(idle_ps, spinning, idle_threads, runqueue, goroutines, nprocs);
            }
            EventKind::GoP { p, status, runq, runnext } => self.go_sched.p(p, status, runq, runnext),
            EventKind::OtherProcess { pid, kthread, comm } => self.pressure.name(pid, comm.to_string(), kthread),
            EventKind::GoState { tid, state, goid, func } => {
                if self.threads.get(&tid).is_some_and(|t| t.alive) {
                    self.go_state(ts, tid, state, goid, func);
                } else if self.pending_state.len() < MAX_EXITED {
                    self.pending_state.insert(tid, (ts, state, goid, func));
                }
            }
            EventKind::CpuLimit { .. } => {
                let Some(g) = CpuGroup::from_limit(&e.kind) else { return };
                // Counters of another group follow: no delta across the change.
                let moved = self.cgroup.as_ref().is_none_or(|c| c.path != g.path || c.limited_by != g.limited_by);
                self.throttle_rebase |= moved;
                self.log(ts, LogKind::CpuLimit { group: g.path.clone(), limit: g.describe_limit() });
                self.cgroup = Some(g);
            }
        }
    }

    /// What the M list says of thread `tid`, at `ts`.
    fn go_thread(&mut self, ts: u64, tid: u32, m: GoM) {
        // A thread already pinned when tracing started has been pinned for
        // an unknown time, not just now: long-pinned from the start. A pin
        // per request shows as LockOSThread calls (the uprobe) or as pins
        // that come and go, and is not long-pinned then.
        let since = if ts <= self.start_ns { ts.saturating_sub(LONG_PINNED_NS) } else { ts };
        let t = self.thread(tid);
        let was = t.pinned();
        t.go = Some(m);
        if m.pinned() != was {
            t.pinned_since = m.pinned().then_some(since);
            let kind = if m.pinned() {
                self.pin_changes.0 += 1;
                LogKind::Pinned { tid, by: m.locked_g.map(|f| f.to_string()) }
            } else {
                self.pin_changes.1 += 1;
                LogKind::Unpinned { tid }
            };
            self.pending_pins.push(LogEntry { ts_ns: ts, kind });
        }
    }

    /// A thread appeared: applies what the M list said of it before.
    fn go_pending(&mut self, tid: u32) {
        if let Some((ts, m)) = self.pending_go.remove(&tid) {
            self.go_thread(ts, tid, m);
        }
        if let Some((ts, state, goid, func)) = self.pending_state.remove(&tid) {
            self.go_state(ts, tid, state, goid, func);
        }
    }

    fn go_state(&mut self, ts: u64, tid: u32, state: GoState, goid: u64, func: Option<FnName>) {
        let t = self.thread(tid);
        t.set_go_state(ts, state);
        t.goroutine = (goid != 0).then_some((goid, func));
    }

    /// A thread that is not the leader exec'd at `ts`: the kernel ended the
    /// other threads (the leader's exit came first) and gave it the
    /// leader's TID. Its run so far is its own, and ends here; from here on
    /// it runs (it is on a CPU: it is exec'ing) as the leader, alive again.
    fn took_over(&mut self, old_tid: u32, tid: u32, ts: u64) {
        let mut cpu = None;
        if let Some(t) = self.threads.get_mut(&old_tid) {
            t.close_run(ts);
            t.running_since = None;
            cpu = t.last_cpu;
            t.waiting_since = None;
            t.died_ns.get_or_insert(ts);
            t.mark(ts, RunState::Exited);
            if std::mem::replace(&mut t.alive, false) {
                self.alive = self.alive.saturating_sub(1);
            }
        }
        let t = self.thread(tid);
        t.died_ns = None;
        t.waiting_since = None;
        t.running_since = Some(ts);
        t.seen_running = true;
        if let Some(c) = cpu {
            t.last_cpu = Some(c);
        }
        t.mark(ts, RunState::Running);
        if !std::mem::replace(&mut t.alive, true) {
            self.alive += 1;
        }
    }

    /// Forgets the Go runtime's state: GOMAXPROCS, the scheduler, sysmon,
    /// each thread's role and state.
    fn forget_go(&mut self) {
        self.gomaxprocs = None;
        self.go_sched = gosched::GoSched::default();
        self.sysmon = None;
        self.pending_go.clear();
        for t in self.threads.values_mut() {
            t.go = None;
            t.go_state = None;
            t.goroutine = None;
        }
    }

    /// Thread `tid` exited at `ts` (once: a second exit is ignored).
    fn exited(&mut self, tid: u32, ts: u64) {
        let t = self.thread(tid);
        if t.died_ns.is_some() {
            return;
        }
        t.died_ns = Some(ts);
        let (tgid, comm) = (t.tgid, t.comm);
        let lifetime = t.born_ns.map(|b| ts.saturating_sub(b));
        if std::mem::replace(&mut t.alive, false) {
            self.alive = self.alive.saturating_sub(1);
        }
        if tid != tgid {
            self.p.exited += 1;
            self.log_pending(ts, LogKind::Exited { tid, comm: comm.to_string(), lifetime_ns: lifetime });
        }
        if let Some(l) = lifetime {
            self.lifetimes.record(l);
            self.lifetimes_iv.record(l);
        }
    }

    /// The totals from the start (or the last reset) to `now_ns`.
    pub fn snapshot(&self, now_ns: u64) -> Snapshot {
        let duration_ns = now_ns.saturating_sub(self.start_ns);
        let rel = |t: u64| t.saturating_sub(self.start_ns);
        let mut process = ProcessStats {
            threads_at_start: self.at_start,
            threads_now: self.alive,
            threads_peak: self.peak,
            threads_created: self.p.created,
            threads_exited: self.p.exited,
            threads_created_per_sec: per_sec(self.p.created, duration_ns),
            threads_exited_per_sec: per_sec(self.p.exited, duration_ns),
            thread_lifetime_ns: Latency::from(&self.lifetimes),
            child_processes: self.p.forks,
            tgkill_calls: self.p.tgkill_calls,
            clone_calls: self.p.clone_calls,
            ..Default::default()
        };
        let mut sum = self.pruned;
        let mut runq = self.pruned_runq.clone();
        let mut threads: Vec<ThreadStats> = self
            .threads
            .iter()
            .map(|(&tid, t)| {
                let c = Counts { on_cpu_ns: t.on_cpu_until(now_ns), ..t.c };
                sum.add(&c);
                let total = t.runq_total();
                runq.merge(&total);
                thread_stats(tid, t, &c, Latency::from(&*total), rel)
            })
            .collect();
        process.migrations = sum.migrations;
        process.voluntary_switches = sum.voluntary;
        process.involuntary_switches = sum.involuntary;
        process.on_cpu_ns = sum.on_cpu_ns;
        process.sigurg = sum.sigurg_received;
        process.sigurg_from_sysmon = sum.sigurg_from_sysmon;
        process.signals = sum.signals_received;
        process.throttled_ns = sum.throttled_ns;
        process.throttled_switches = sum.throttled;
        process.lock_calls = sum.lock_calls;
        (process.pinned_threads, process.long_pinned_threads) = self.pinned_counts(now_ns);
        process.sigurg_per_sec = per_sec(process.sigurg, duration_ns);
        process.wait_by_cause_ns = self.pressure.by_cause;
        process.cpu_pressure_pct =
            if duration_ns == 0 { 0.0 } else { (100.0 * self.pressure.some_ns as f64 / duration_ns as f64).min(100.0) };
        process.runq_latency_ns = Latency::from(&runq);
        threads.sort_by(|a, b| b.on_cpu_ns.cmp(&a.on_cpu_ns).then(a.tid.cmp(&b.tid)));
        let throttle = self.throttle_base.map(|b| stat_minus(&self.throttle_now, &b));
        Snapshot {
            duration_ns,
            events: self.p.events,
            lost_events: self.lost,
            process,
            threads,
            throttle,
            gomaxprocs: self.gomaxprocs,
            cgroup: self.cgroup.clone(),
            go_sched: self.go_sched.view(&self.go_sched.total, self.gomaxprocs),
            other_processes: self.pressure.others(),
        }
    }

    /// Closes the interval that ends at `now_ns`: per-interval deltas and
    /// rates, a point of history, the event log, and pruning.
    pub fn tick(&mut self, now_ns: u64) {
        let now = now_ns.max(self.tick_ns);
        let len = now - self.tick_ns;
        let mut sum = Counts::default();
        let mut runq = Histogram::default();
        let mut senders = Vec::new();
        let mut hit = 0;
        for (&tid, t) in self.threads.iter_mut() {
            t.close_run(now);
            t.close_p_wait(now);
            t.last = t.c.minus(&t.at_tick);
            t.at_tick = t.c;
            t.runq_last = Latency::from(&t.runq_iv);
            runq.merge(&t.runq_iv);
            t.runq.merge(&t.runq_iv);
            t.runq_iv = Histogram::default();
            sum.add(&t.last);
            hit += u64::from(t.last.sigurg_received > 0);
            if t.last.sigurg_sent > 0 {
                senders.push(SenderRate {
                    tid,
                    comm: t.comm.to_string(),
                    sigurg_sent: t.last.sigurg_sent,
                    sigurg_per_sec: per_sec(t.last.sigurg_sent, len),
                });
            }
        }
        senders.sort_by(|a, b| b.sigurg_sent.cmp(&a.sigurg_sent).then(a.tid.cmp(&b.tid)));
        let (some_ns, by_cause, others) = self.pressure.tick();
        // The long-lived pinned workers over this interval, the busiest on a
        // CPU first: the one with the most work, whose saturation is judged.
        let (pinned_threads, _) = self.pinned_counts(now);
        let pct = |ns: u64| if len == 0 { 0.0 } else { 100.0 * ns as f64 / len as f64 };
        let mut long: Vec<PinnedLoad> = self
            .threads
            .iter()
            .filter(|(_, t)| t.alive && long_pinned(t, now))
            .map(|(&tid, t)| PinnedLoad {
                tid,
                cpu_pct: pct(t.last.on_cpu_ns),
                waiting_pct: pct(t.last.runq_wait_ns.saturating_add(t.last.throttled_ns)),
                p_wait_pct: pct(t.last.p_wait_ns),
                locked_idle_pct: t.go_state.is_some().then(|| pct(t.last.locked_idle_ns)),
                wakeups_per_sec: per_sec(t.last.voluntary, len),
                runnable_migrations: t.last.runnable_migrations,
            })
            .collect();
        long.sort_by(|a, b| b.cpu_pct.total_cmp(&a.cpu_pct).then(a.tid.cmp(&b.tid)));
        let d = ProcCounts {
            created: self.p.created - self.p_at_tick.created.min(self.p.created),
            exited: self.p.exited - self.p_at_tick.exited.min(self.p.exited),
            forks: self.p.forks - self.p_at_tick.forks.min(self.p.forks),
            events: self.p.events - self.p_at_tick.events.min(self.p.events),
            tgkill_calls: self.p.tgkill_calls - self.p_at_tick.tgkill_calls.min(self.p.tgkill_calls),
            clone_calls: self.p.clone_calls - self.p_at_tick.clone_calls.min(self.p.clone_calls),
        };
        let lost = self.lost.saturating_sub(self.lost_at_tick);
        let throttle = self.throttle_base.map(|_| stat_minus(&self.throttle_now, &self.throttle_at_tick));
        let process = ProcessStats {
            threads_at_start: self.at_start,
            threads_now: self.alive,
            threads_peak: self.peak,
            threads_created: d.created,
            threads_exited: d.exited,
            threads_created_per_sec: per_sec(d.created, len),
            threads_exited_per_sec: per_sec(d.exited, len),
            thread_lifetime_ns: Latency::from(&self.lifetimes_iv),
            child_processes: d.forks,
            migrations: sum.migrations,
            voluntary_switches: sum.voluntary,
            involuntary_switches: sum.involuntary,
            on_cpu_ns: sum.on_cpu_ns,
            sigurg: sum.sigurg_received,
            sigurg_per_sec: per_sec(sum.sigurg_received, len),
            sigurg_from_sysmon: sum.sigurg_from_sysmon,
            signals: sum.signals_received,
            runq_latency_ns: Latency::from(&runq),
            tgkill_calls: d.tgkill_calls,
            clone_calls: d.clone_calls,
            throttled_ns: sum.throttled_ns,
            throttled_switches: sum.throttled,
            pinned_threads,
            long_pinned_threads: long.len() as u64,
            lock_calls: sum.lock_calls,
            cpu_pressure_pct: if len == 0 { 0.0 } else { (100.0 * some_ns as f64 / len as f64).min(100.0) },
            wait_by_cause_ns: by_cause,
        };
        let rates = Rates {
            threads_created_per_sec: process.threads_created_per_sec,
            threads_exited_per_sec: process.threads_exited_per_sec,
            migrations_per_sec: per_sec(sum.migrations, len),
            voluntary_switches_per_sec: per_sec(sum.voluntary, len),
            involuntary_switches_per_sec: per_sec(sum.involuntary, len),
            sigurg_per_sec: process.sigurg_per_sec,
            signals_per_sec: per_sec(sum.signals_received, len),
            cpus_used: if len == 0 { 0.0 } else { sum.on_cpu_ns as f64 / len as f64 },
            events_per_sec: per_sec(d.events, len),
            throttled_periods_pct: throttle
                .filter(|t| t.nr_periods > 0)
                .map(|t| 100.0 * t.nr_throttled as f64 / t.nr_periods as f64),
            throttled_ms_per_sec: throttle
                .map(|t| if len == 0 { 0.0 } else { t.throttled_ns as f64 * 1e3 / len as f64 }),
            sigurg_from_sysmon_per_sec: per_sec(sum.sigurg_from_sysmon, len),
            lock_calls_per_sec: per_sec(sum.lock_calls, len),
        };
        let point = HistoryPoint {
            t_ns: now,
            threads: self.alive,
            created_per_sec: rates.threads_created_per_sec,
            exited_per_sec: rates.threads_exited_per_sec,
            migrations_per_sec: rates.migrations_per_sec,
            involuntary_per_sec: rates.involuntary_switches_per_sec,
            sigurg_per_sec: rates.sigurg_per_sec,
            runq_p99_ns: process.runq_latency_ns.p99,
            cpus_used: rates.cpus_used,
            throttled_pct: rates.throttled_periods_pct.unwrap_or(0.0),
            pinned: long.len() as u64,
            pinned_hot_tid: long.first().map_or(0, |p| p.tid),
            pinned_cpu_max_pct: long.first().map_or(0.0, |p| p.cpu_pct),
            pinned_hot_waiting_pct: long.first().map_or(0.0, |p| p.waiting_pct),
            pinned_hot_p_wait_pct: long.first().map_or(0.0, |p| p.p_wait_pct),
            pinned_hot_busy_pct: long.first().map_or(0.0, PinnedLoad::busy_pct),
            pinned_cpu_rest_median_pct: median(long.iter().skip(1).map(|p| p.cpu_pct).collect()),
            pinned_wakeups_rest_median_per_sec: median(long.iter().skip(1).map(|p| p.wakeups_per_sec).collect()),
            pinned_migrations_per_sec: per_sec(long.iter().map(|p| p.runnable_migrations).sum(), len),
            lock_calls_per_sec: rates.lock_calls_per_sec,
            gomaxprocs: self.gomaxprocs.unwrap_or(0),
            cpus_usable: self.cgroup.as_ref().map_or(0.0, CpuGroup::cpus_usable),
            other_processes_pct: {
                let runnable = sum.on_cpu_ns.saturating_add(by_cause.total());
                if runnable == 0 {
                    0.0
                } else {
                    100.0 * by_cause.other_processes as f64 / runnable as f64
                }
            },
            other_cpus_lost: if len == 0 { 0.0 } else { by_cause.other_processes as f64 / len as f64 },
            top_other_pid: others.first().map_or(0, |o| o.pid),
            go_samples: self.go_sched.interval.samples,
            go_queued_mean: self.go_sched.interval.queued_mean(),
            go_queued_pct: self.go_sched.interval.queued_pct(),
            go_idle_ps_mean: self.go_sched.interval.idle_ps_mean(),
        };
        self.sched_last = std::mem::take(&mut self.go_sched.interval);

        // The event log.
        if self.pending_more {
            let lifetime_p50_ns = (self.lifetimes_iv.count() > 0).then(|| self.lifetimes_iv.quantile(0.5));
            self.log(now, LogKind::Churn { born: d.created, exited: d.exited, lifetime_p50_ns });
            self.pending.clear();
        } else {
            for entry in std::mem::take(&mut self.pending) {
                self.log(entry.ts_ns, entry.kind);
            }
        }
        self.pending_more = false;
        let (pinned, unpinned) = std::mem::take(&mut self.pin_changes);
        if pinned + unpinned > LOG_EACH as u64 {
            self.log(now, LogKind::PinChurn { pinned, unpinned });
            self.pending_pins.clear();
        } else {
            for entry in std::mem::take(&mut self.pending_pins) {
                self.log(entry.ts_ns, entry.kind);
            }
        }
        if d.forks > 0 {
            self.log(now, LogKind::ChildProcesses { count: d.forks });
        }
        if lost > 0 {
            self.log(now, LogKind::Lost { count: lost, total: self.lost });
        }
        if let Some(t) = throttle.filter(|t| t.nr_throttled > 0) {
            self.log(
                now,
                LogKind::Throttled { periods: t.nr_periods, throttled: t.nr_throttled, throttled_ns: t.throttled_ns },
            );
        }
        let baseline: Vec<f64> = self.history.iter().rev().take(BURST_BASELINE).map(|h| h.sigurg_per_sec).collect();
        let usual = median(baseline.clone());
        // Without a few intervals to compare with, no rate is a burst.
        if len > 0
            && baseline.len() >= BURST_BASELINE_MIN
            && rates.sigurg_per_sec >= BURST_MIN_PER_SEC
            && rates.sigurg_per_sec >= BURST_FACTOR * usual
        {
            self.log(
                now,
                LogKind::SigurgBurst {
                    count: sum.sigurg_received,
                    per_sec: rates.sigurg_per_sec,
                    usual_per_sec: usual,
                    threads: hit,
                    top_sender: senders.first().map(|s| s.tid),
                },
            );
        }

        if self.history.len() == HISTORY {
            self.history.pop_front();
        }
        self.history.push_back(point);
        self.interval = IntervalStats {
            start_ns: self.tick_ns,
            end_ns: now,
            events: d.events,
            lost_events: lost,
            throttle,
            process,
            rates,
        };
        self.senders = senders;
        self.others_last = others;
        self.prev_tick_ns = self.tick_ns;
        self.tick_ns = now;
        self.p_at_tick = self.p;
        self.lost_at_tick = self.lost;
        self.throttle_at_tick = self.throttle_now;
        self.lifetimes_iv = Histogram::default();
        // M-list entries of threads never seen (exited before their creation was read) go.
        self.pending_go.retain(|_, (ts, _)| ts.saturating_add(LONG_PINNED_NS) > now);
        self.pending_state.retain(|_, (ts, ..)| ts.saturating_add(LONG_PINNED_NS) > now);
        self.prune(now);
    }

    /// Alive threads pinned now, and those of them pinned for a while.
    fn pinned_counts(&self, now: u64) -> (u64, u64) {
        self.threads
            .values()
            .filter(|t| t.alive && t.pinned())
            .fold((0, 0), |(all, long), t| (all + 1, long + u64::from(long_pinned(t, now))))
    }

    fn prune(&mut self, now: u64) {
        let Some(keep) = self.retain_exited_ns else { return };
        let mut exited: Vec<(u64, u32)> =
            self.threads.iter().filter_map(|(&tid, t)| Some((t.died_ns?, tid)).filter(|_| !t.alive)).collect();
        if exited.is_empty() {
            return;
        }
        exited.sort_unstable();
        let over = exited.len().saturating_sub(MAX_EXITED);
        for (i, &(died, tid)) in exited.iter().enumerate() {
            if i >= over && died.saturating_add(keep) > now {
                break;
            }
            if let Some(t) = self.threads.remove(&tid) {
                self.pruned.add(&t.c);
                self.pruned_runq.merge(&t.runq_total());
            }
        }
    }

    /// Starts the totals again at `now_ns`; threads, history and the log stay.
    pub fn reset(&mut self, now_ns: u64) {
        for t in self.threads.values_mut() {
            t.reset(now_ns);
        }
        self.start_ns = now_ns;
        self.p = ProcCounts::default();
        self.p_at_tick = ProcCounts::default();
        self.at_start = self.alive;
        self.peak = self.alive;
        self.lifetimes = Histogram::default();
        self.lifetimes_iv = Histogram::default();
        self.pruned = Counts::default();
        self.pruned_runq = Histogram::default();
        self.tick_ns = self.tick_ns.max(now_ns);
        if self.throttle_base.is_some() {
            self.throttle_base = Some(self.throttle_now);
        }
        self.go_sched.total = gosched::QueueStats::default();
        self.pressure.reset();
    }

    /// What a live front end shows after the last `tick`, with the detail
    /// of thread `focus` if it is known.
    pub fn live(&self, focus: Option<u32>) -> LiveSnapshot {
        let now = self.tick_ns;
        let len = now.saturating_sub(self.prev_tick_ns);
        let mut threads: Vec<ThreadRow> = self
            .threads
            .iter()
            .map(|(&tid, t)| {
                let c = &t.last;
                ThreadRow {
                    tid,
                    comm: t.comm.to_string(),
                    state: t.state(),
                    last_cpu: t.last_cpu,
                    born_ns: t.born_ns,
                    died_ns: t.died_ns,
                    new: t.born_ns.is_some_and(|b| b > self.prev_tick_ns && b <= now),
                    short_lived: match (t.born_ns, t.died_ns) {
                        (Some(b), Some(d)) => d.saturating_sub(b) < SHORT_LIVED_NS,
                        _ => false,
                    },
                    on_cpu_ns: c.on_cpu_ns,
                    migrations: c.migrations,
                    voluntary_switches: c.voluntary,
                    involuntary_switches: c.involuntary,
                    sigurg_received: c.sigurg_received,
                    sigurg_sent: c.sigurg_sent,
                    signals_received: c.signals_received,
                    signals_sent: c.signals_sent,
                    runq_latency_ns: t.runq_last.clone(),
                    cpu_pct: if len == 0 { 0.0 } else { 100.0 * c.on_cpu_ns as f64 / len as f64 },
                    migrations_per_sec: per_sec(c.migrations, len),
                    voluntary_switches_per_sec: per_sec(c.voluntary, len),
                    involuntary_switches_per_sec: per_sec(c.involuntary, len),
                    sigurg_received_per_sec: per_sec(c.sigurg_received, len),
                    role: t.go.map(|g| g.role),
                    pinned: t.pinned(),
                    long_pinned: long_pinned(t, now),
                    pinned_by: t.go.and_then(|g| g.locked_g).map(|f| f.to_string()),
                    sigurg_from_sysmon: c.sigurg_from_sysmon,
                    throttled_ns: c.throttled_ns,
                    lock_calls: c.lock_calls,
                    go_state: t.go_state,
                    goroutine: goroutine(t),
                    p_wait_ns: c.p_wait_ns,
                }
            })
            .collect();
        threads.sort_by_key(|t| t.tid);
        let detail = focus.and_then(|tid| {
            let t = self.threads.get(&tid)?;
            let rel = |x: u64| x.saturating_sub(self.start_ns);
            let c = Counts { on_cpu_ns: t.on_cpu_until(now), ..t.c };
            let mut signalled_by: Vec<(u32, String, u64, u64)> = t
                .signalled_by
                .iter()
                .map(|&(s, urg, other)| {
                    let comm =
                        self.threads.get(&s).map_or_else(|| "(other process)".to_string(), |t| t.comm.to_string());
                    (s, comm, urg, other)
                })
                .collect();
            signalled_by.sort_by(|a, b| (b.2 + b.3).cmp(&(a.2 + a.3)).then(a.0.cmp(&b.0)));
            Some(ThreadDetail {
                totals: thread_stats(tid, t, &c, Latency::from(&*t.runq_total()), rel),
                state: t.state(),
                last_cpu: t.last_cpu,
                cpu_time_ns: t.cpu_time.clone(),
                runq_histogram: t.runq_total().buckets().collect(),
                signalled_by,
                timeline: t.timeline.iter().copied().collect(),
            })
        });
        LiveSnapshot {
            now_ns: now,
            totals: self.snapshot(now),
            totals_since_ns: self.start_ns,
            interval: self.interval.clone(),
            sigurg_senders: self.senders.clone(),
            threads,
            history: self.history.iter().copied().collect(),
            log: self.log.iter().cloned().collect(),
            gomaxprocs: self.gomaxprocs,
            cgroup: self.cgroup.clone(),
            go_sched: self.go_sched.view(&self.sched_last, self.gomaxprocs),
            other_processes: self.others_last.clone(),
            detail,
        }
    }
}

#[cfg(test)]
mod tests;
