//! The aggregation model: pure and synchronous.
//!
//! `apply` folds events in; `snapshot(now)` returns the per-thread and
//! per-process numbers at a given time. No I/O, no clocks, no BPF: time is
//! always passed in, so everything here is unit-tested without root.
use std::collections::HashMap;

use serde::Serialize;

use crate::{
    event::{Comm, Event, EventKind},
    hist::Histogram,
};

pub const SIGURG: i32 = pintrace_common::SIGURG;

#[derive(Clone, Debug, Default)]
struct Thread {
    tgid: u32,
    comm: Comm,
    /// Created inside the window (None: existed when tracing started).
    born_ns: Option<u64>,
    died_ns: Option<u64>,
    on_cpu_ns: u64,
    /// On a CPU since this time.
    running_since: Option<u64>,
    /// Runnable and waiting for a CPU since this time.
    waiting_since: Option<u64>,
    /// Seen switching in at least once (so on-CPU time before it is not assumed).
    seen_running: bool,
    /// Counted in the process's live threads.
    alive: bool,
    voluntary: u64,
    involuntary: u64,
    migrations: u64,
    cpus: Vec<u32>,
    sigurg_received: u64,
    sigurg_sent: u64,
    signals_received: u64,
    signals_sent: u64,
    runq: Histogram,
}

/// Where the traced process stands at a point in time.
#[derive(Debug)]
pub struct Model {
    start_ns: u64,
    threads: HashMap<u32, Thread>,
    alive: u64,
    peak: u64,
    at_start: u64,
    created: u64,
    exited: u64,
    forks: u64,
    tgkill_calls: u64,
    clone_calls: u64,
    lost: u64,
    events: u64,
    lifetimes: Histogram,
    last_ts: u64,
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
    /// Other signals generated for the process's threads.
    pub signals: u64,
    pub runq_latency_ns: Latency,
    /// Only with `--syscalls`.
    pub tgkill_calls: u64,
    pub clone_calls: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Snapshot {
    pub duration_ns: u64,
    pub events: u64,
    pub lost_events: u64,
    pub process: ProcessStats,
    /// Sorted by on-CPU time, then TID.
    pub threads: Vec<ThreadStats>,
}

fn per_sec(count: u64, ns: u64) -> f64 {
    if ns == 0 {
        0.0
    } else {
        count as f64 * 1e9 / ns as f64
    }
}

impl Model {
    /// A model of a window that starts at `start_ns` (CLOCK_MONOTONIC).
    pub fn new(start_ns: u64) -> Self {
        Model {
            start_ns,
            threads: HashMap::new(),
            alive: 0,
            peak: 0,
            at_start: 0,
            created: 0,
            exited: 0,
            forks: 0,
            tgkill_calls: 0,
            clone_calls: 0,
            lost: 0,
            events: 0,
            lifetimes: Histogram::default(),
            last_ts: start_ns,
        }
    }

    /// The latest event time seen (or the start).
    pub fn last_ts(&self) -> u64 {
        self.last_ts
    }

    fn thread(&mut self, tid: u32) -> &mut Thread {
        self.threads.entry(tid).or_default()
    }

    pub fn apply(&mut self, e: &Event) {
        let ts = e.ts_ns;
        if e.cpu != crate::event::NO_CPU {
            self.events += 1;
        }
        self.last_ts = self.last_ts.max(ts);
        match e.kind {
            EventKind::Switch { prev_tid, next_tid, prev_state } => {
                if prev_tid != 0 {
                    let start = self.start_ns;
                    let t = self.thread(prev_tid);
                    let since = match t.running_since.take() {
                        Some(s) => Some(s),
                        // Running since before the window: count from its start.
                        None if !t.seen_running => Some(t.born_ns.unwrap_or(start)),
                        None => None,
                    };
                    if let Some(since) = since {
                        t.on_cpu_ns += ts.saturating_sub(since);
                    }
                    t.seen_running = true;
                    if EventKind::is_involuntary(prev_state) {
                        t.involuntary += 1;
                        t.waiting_since = Some(ts);
                    } else {
                        t.voluntary += 1;
                        t.waiting_since = None;
                    }
                }
                if next_tid != 0 {
                    let t = self.thread(next_tid);
                    t.running_since = Some(ts);
                    t.seen_running = true;
                    if let Err(i) = t.cpus.binary_search(&e.cpu) {
                        t.cpus.insert(i, e.cpu);
                    }
                    if let Some(w) = t.waiting_since.take() {
                        t.runq.record(ts.saturating_sub(w));
                    }
                }
            }
            EventKind::Wakeup { tid, .. } => {
                let t = self.thread(tid);
                // A wake-up of a thread still on its CPU (it had not yet slept)
                // or already waiting does not start a new wait.
                if t.running_since.is_none() && t.waiting_since.is_none() {
                    t.waiting_since = Some(ts);
                }
            }
            EventKind::Migrate { tid, .. } => self.thread(tid).migrations += 1,
            EventKind::Signal { sender_tid, target_tid, sig, .. } => {
                let urg = sig == SIGURG;
                if let Some(t) = self.threads.get_mut(&target_tid) {
                    if urg {
                        t.sigurg_received += 1;
                    } else {
                        t.signals_received += 1;
                    }
                }
                if let Some(t) = self.threads.get_mut(&sender_tid) {
                    if urg {
                        t.sigurg_sent += 1;
                    } else {
                        t.signals_sent += 1;
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
                    self.created += 1;
                    if was_alive {
                        // Also listed at attach (a race with /proc): created, not there at start.
                        self.at_start = self.at_start.saturating_sub(1);
                    } else {
                        self.alive += 1;
                        self.peak = self.peak.max(self.alive);
                    }
                } else {
                    self.forks += 1;
                }
            }
            EventKind::Exit { tid, tgid, comm, .. } => {
                let t = self.thread(tid);
                if t.died_ns.is_some() {
                    return;
                }
                t.died_ns = Some(ts);
                t.tgid = tgid;
                t.comm = comm;
                let lifetime = t.born_ns.map(|b| ts.saturating_sub(b));
                if std::mem::replace(&mut t.alive, false) {
                    self.alive = self.alive.saturating_sub(1);
                }
                if tid != tgid {
                    self.exited += 1;
                }
                if let Some(l) = lifetime {
                    self.lifetimes.record(l);
                }
            }
            EventKind::Rename { tid, comm } => self.thread(tid).comm = comm,
            EventKind::ThreadSeen { tid, tgid, comm } => {
                let t = self.thread(tid);
                t.tgid = tgid;
                t.comm = comm;
                if !std::mem::replace(&mut t.alive, true) {
                    self.at_start += 1;
                    self.alive += 1;
                    self.peak = self.peak.max(self.alive);
                }
            }
            EventKind::Tgkill { .. } => self.tgkill_calls += 1,
            EventKind::CloneExit { ret, .. } => {
                if ret > 0 {
                    self.clone_calls += 1;
                }
            }
            EventKind::Lost { total } => self.lost = self.lost.max(total),
        }
    }

    /// The numbers for the window from the start to `now_ns`.
    pub fn snapshot(&self, now_ns: u64) -> Snapshot {
        let duration_ns = now_ns.saturating_sub(self.start_ns);
        let rel = |t: u64| t.saturating_sub(self.start_ns);
        let mut process = ProcessStats {
            threads_at_start: self.at_start,
            threads_now: self.alive,
            threads_peak: self.peak,
            threads_created: self.created,
            threads_exited: self.exited,
            threads_created_per_sec: per_sec(self.created, duration_ns),
            threads_exited_per_sec: per_sec(self.exited, duration_ns),
            thread_lifetime_ns: Latency::from(&self.lifetimes),
            child_processes: self.forks,
            tgkill_calls: self.tgkill_calls,
            clone_calls: self.clone_calls,
            ..Default::default()
        };
        let mut runq = Histogram::default();
        let mut threads: Vec<ThreadStats> = self
            .threads
            .iter()
            .map(|(&tid, t)| {
                let mut on_cpu_ns = t.on_cpu_ns;
                if let Some(s) = t.running_since {
                    on_cpu_ns += now_ns.saturating_sub(s);
                }
                process.migrations += t.migrations;
                process.voluntary_switches += t.voluntary;
                process.involuntary_switches += t.involuntary;
                process.on_cpu_ns += on_cpu_ns;
                process.sigurg += t.sigurg_received;
                process.signals += t.signals_received;
                runq.merge(&t.runq);
                ThreadStats {
                    tid,
                    tgid: t.tgid,
                    comm: t.comm.to_string(),
                    born_ns: t.born_ns.map(rel),
                    died_ns: t.died_ns.map(rel),
                    on_cpu_ns,
                    migrations: t.migrations,
                    cpus: t.cpus.clone(),
                    voluntary_switches: t.voluntary,
                    involuntary_switches: t.involuntary,
                    sigurg_received: t.sigurg_received,
                    sigurg_sent: t.sigurg_sent,
                    signals_received: t.signals_received,
                    signals_sent: t.signals_sent,
                    runq_latency_ns: Latency::from(&t.runq),
                }
            })
            .collect();
        process.sigurg_per_sec = per_sec(process.sigurg, duration_ns);
        process.runq_latency_ns = Latency::from(&runq);
        threads.sort_by(|a, b| b.on_cpu_ns.cmp(&a.on_cpu_ns).then(a.tid.cmp(&b.tid)));
        Snapshot { duration_ns, events: self.events, lost_events: self.lost, process, threads }
    }
}

#[cfg(test)]
mod tests;
