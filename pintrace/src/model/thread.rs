//! One thread's state and counters inside the model.
use std::collections::VecDeque;

use super::{live::RunState, Latency};
use crate::{
    event::{Comm, FnName},
    goruntime::GoRole,
    hist::Histogram,
};

/// How many state changes a thread keeps for the detail view's timeline.
pub const TIMELINE: usize = 64;

/// Counters that only grow between resets; intervals are their differences.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub on_cpu_ns: u64,
    pub voluntary: u64,
    pub involuntary: u64,
    pub migrations: u64,
    pub sigurg_received: u64,
    pub sigurg_sent: u64,
    pub signals_received: u64,
    pub signals_sent: u64,
    /// Of `sigurg_received`: sent by the Go runtime's sysmon thread.
    pub sigurg_from_sysmon: u64,
    /// Switch-outs with the CFS throttle flag set, and the waits after them.
    pub throttled: u64,
    pub throttled_ns: u64,
    /// `runtime.LockOSThread` calls on this thread (uprobe).
    pub lock_calls: u64,
    /// Time waiting for a CPU (runnable, not throttled), summed over the
    /// waits that ended: with `on_cpu_ns`, how saturated the thread is.
    pub runq_wait_ns: u64,
    /// Time its locked goroutine was runnable without a P (the M parked,
    /// `GoState::LockedRunnable`), as sampled ten times a second.
    pub p_wait_ns: u64,
    /// Time its locked goroutine was blocked waiting for work
    /// (`GoState::LockedIdle`), sampled likewise.
    pub locked_idle_ns: u64,
    /// Of `runq_wait_ns`: waits behind another process's task.
    pub wait_other_ns: u64,
    /// Of `migrations`: moves while it ran or waited for a CPU (the load
    /// balancer, or its affinity changed under it), not the choice of a
    /// CPU for a sleeping thread that wakes, which costs nothing extra.
    pub runnable_migrations: u64,
}

impl Counts {
    pub fn minus(&self, o: &Counts) -> Counts {
        Counts {
            on_cpu_ns: self.on_cpu_ns.saturating_sub(o.on_cpu_ns),
            voluntary: self.voluntary.saturating_sub(o.voluntary),
            involuntary: self.involuntary.saturating_sub(o.involuntary),
            migrations: self.migrations.saturating_sub(o.migrations),
            sigurg_received: self.sigurg_received.saturating_sub(o.sigurg_received),
            sigurg_sent: self.sigurg_sent.saturating_sub(o.sigurg_sent),
            signals_received: self.signals_received.saturating_sub(o.signals_received),
            signals_sent: self.signals_sent.saturating_sub(o.signals_sent),
            sigurg_from_sysmon: self.sigurg_from_sysmon.saturating_sub(o.sigurg_from_sysmon),
            throttled: self.throttled.saturating_sub(o.throttled),
            throttled_ns: self.throttled_ns.saturating_sub(o.throttled_ns),
            lock_calls: self.lock_calls.saturating_sub(o.lock_calls),
            runq_wait_ns: self.runq_wait_ns.saturating_sub(o.runq_wait_ns),
            p_wait_ns: self.p_wait_ns.saturating_sub(o.p_wait_ns),
            locked_idle_ns: self.locked_idle_ns.saturating_sub(o.locked_idle_ns),
            wait_other_ns: self.wait_other_ns.saturating_sub(o.wait_other_ns),
            runnable_migrations: self.runnable_migrations.saturating_sub(o.runnable_migrations),
        }
    }

    /// Saturating: summed over threads, the times of a damaged or hostile
    /// record file (anything up to u64::MAX each) would overflow.
    pub fn add(&mut self, o: &Counts) {
        self.on_cpu_ns = self.on_cpu_ns.saturating_add(o.on_cpu_ns);
        self.voluntary = self.voluntary.saturating_add(o.voluntary);
        self.involuntary = self.involuntary.saturating_add(o.involuntary);
        self.migrations = self.migrations.saturating_add(o.migrations);
        self.sigurg_received = self.sigurg_received.saturating_add(o.sigurg_received);
        self.sigurg_sent = self.sigurg_sent.saturating_add(o.sigurg_sent);
        self.signals_received = self.signals_received.saturating_add(o.signals_received);
        self.signals_sent = self.signals_sent.saturating_add(o.signals_sent);
        self.sigurg_from_sysmon = self.sigurg_from_sysmon.saturating_add(o.sigurg_from_sysmon);
        self.throttled = self.throttled.saturating_add(o.throttled);
        self.throttled_ns = self.throttled_ns.saturating_add(o.throttled_ns);
        self.lock_calls = self.lock_calls.saturating_add(o.lock_calls);
        self.runq_wait_ns = self.runq_wait_ns.saturating_add(o.runq_wait_ns);
        self.p_wait_ns = self.p_wait_ns.saturating_add(o.p_wait_ns);
        self.locked_idle_ns = self.locked_idle_ns.saturating_add(o.locked_idle_ns);
        self.wait_other_ns = self.wait_other_ns.saturating_add(o.wait_other_ns);
        self.runnable_migrations = self.runnable_migrations.saturating_add(o.runnable_migrations);
    }
}

/// What the Go runtime's M list says of a thread.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GoM {
    pub role: GoRole,
    pub locked_ext: u32,
    pub locked_int: u32,
    /// Start function of the goroutine locked to it.
    pub locked_g: Option<FnName>,
}

impl GoM {
    /// Locked to a goroutine of the program (`runtime.LockOSThread`): not
    /// only by the runtime (lockedInt), and not the M that `signal.Notify`
    /// locks for signal handling (expected; it is often the main thread).
    pub fn pinned(&self) -> bool {
        self.locked_ext > 0 && !self.signal_handling()
    }

    pub fn signal_handling(&self) -> bool {
        self.role == GoRole::Signal || self.locked_g.is_some_and(|g| g.as_str().starts_with("runtime.ensureSigM"))
    }
}

#[derive(Clone, Debug, Default)]
pub struct Thread {
    pub tgid: u32,
    pub comm: Comm,
    /// Created inside the trace (None: existed when tracing started).
    pub born_ns: Option<u64>,
    pub died_ns: Option<u64>,
    /// On a CPU since this time.
    pub running_since: Option<u64>,
    /// Runnable and waiting for a CPU since this time.
    pub waiting_since: Option<u64>,
    /// The wait is a CFS throttle (the group ran out of quota), not the run queue.
    pub waiting_throttled: bool,
    /// From the Go runtime's M list (None: not a Go M, or not read yet).
    pub go: Option<GoM>,
    /// What its M does, and the goroutine on it (id, start function), as last read.
    pub go_state: Option<crate::goruntime::GoState>,
    pub goroutine: Option<(u64, Option<FnName>)>,
    /// Since when `go_state` holds (as sampled), to time waits for a P.
    pub go_state_since: u64,
    /// Pinned (as the M list says) since this time.
    pub pinned_since: Option<u64>,
    /// The function that last called `runtime.LockOSThread` on it, and when.
    pub last_lock: Option<(u64, Option<FnName>)>,
    /// Seen switching at least once (so on-CPU time before it is not assumed).
    pub seen_running: bool,
    /// Counted in the process's live threads.
    pub alive: bool,
    pub last_cpu: Option<u32>,
    /// Since the start or the last reset; on-CPU time of the current run is not in it yet.
    pub c: Counts,
    /// `c` at the last tick.
    pub at_tick: Counts,
    /// The last closed interval.
    pub last: Counts,
    /// On-CPU time by CPU, sorted by CPU; a CPU it ran on has an entry even at 0 ns.
    pub cpu_time: Vec<(u32, u64)>,
    /// Run-queue waits up to the last tick (`runq_total` adds the open interval).
    pub runq: Histogram,
    /// Run-queue waits in the interval that is still open: each wait is
    /// recorded here only, and folded into `runq` at the tick.
    pub runq_iv: Histogram,
    pub runq_last: Latency,
    /// (sender TID, SIGURG, other signals), sorted by TID.
    pub signalled_by: Vec<(u32, u64, u64)>,
    pub timeline: VecDeque<(u64, RunState)>,
}

/// Why a thread left its CPU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SwitchOut {
    /// Still runnable: preempted (an involuntary switch).
    Preempted,
    /// Still runnable, but parked until its CPU cgroup's next period.
    Throttled,
    /// Went to sleep (a voluntary switch).
    Slept,
    /// Its final switch-out.
    Died,
}

impl SwitchOut {
    pub fn of(prev_state: u32) -> SwitchOut {
        use crate::event::EventKind;
        if prev_state & pintrace_common::STATE_DEAD_MASK != 0 {
            SwitchOut::Died
        } else if !EventKind::is_involuntary(prev_state) {
            SwitchOut::Slept
        } else if EventKind::is_throttled(prev_state) {
            SwitchOut::Throttled
        } else {
            SwitchOut::Preempted
        }
    }
}

impl Thread {
    /// Pinned to its goroutine now, as the M list last said.
    pub fn pinned(&self) -> bool {
        self.go.is_some_and(|g| g.pinned())
    }

    pub fn state(&self) -> RunState {
        if self.running_since.is_some() {
            RunState::Running
        } else if self.died_ns.is_some() {
            RunState::Exited
        } else if self.waiting_throttled {
            RunState::Throttled
        } else if self.waiting_since.is_some() {
            RunState::Waiting
        } else {
            RunState::Sleeping
        }
    }

    pub fn mark(&mut self, ts: u64, state: RunState) {
        if self.timeline.back().is_some_and(|&(_, s)| s == state) {
            return;
        }
        if self.timeline.len() == TIMELINE {
            self.timeline.pop_front();
        }
        self.timeline.push_back((ts, state));
    }

    fn cpu_slot(&mut self, cpu: u32) -> &mut u64 {
        let i = match self.cpu_time.binary_search_by_key(&cpu, |&(c, _)| c) {
            Ok(i) => i,
            Err(i) => {
                self.cpu_time.insert(i, (cpu, 0));
                i
            }
        };
        &mut self.cpu_time[i].1
    }

    /// Took a CPU at `ts`. Its time on CPU counts from `ts`, or from
    /// `counted_to` when the event arrives after the interval it happened in
    /// was closed: that interval already counted the thread's time up to its
    /// end (`close_run`), so counting from `ts` again would count the
    /// overlap twice (a thread at more than 100 % in the next interval).
    /// `kernel_wait` is the wait the kernel accounted before this switch-in,
    /// if read: it tells when a woken thread's wait began (without wake-up
    /// events, a wait after a sleep is known only now). A wait after a
    /// preemption or a throttle is timed from the switch-out, as before.
    /// Returns the wait that ended, if any: when it began, and whether it
    /// was a throttle.
    pub fn switch_in(&mut self, ts: u64, cpu: u32, counted_to: u64, kernel_wait: Option<u64>) -> Option<(u64, bool)> {
        if self.waiting_since.is_none() && self.running_since.is_none() {
            if let Some(wait) = kernel_wait {
                // Not before what the timeline already shows (the sleep).
                let since = ts.saturating_sub(wait).max(self.timeline.back().map_or(0, |&(t, _)| t));
                self.waiting_since = Some(since);
                if since < ts {
                    self.mark(since, RunState::Waiting);
                }
            }
        }
        self.running_since = Some(ts.max(counted_to));
        self.seen_running = true;
        self.last_cpu = Some(cpu);
        self.cpu_slot(cpu);
        let mut ended = None;
        if let Some(w) = self.waiting_since.take() {
            let wait = ts.saturating_sub(w);
            let throttled = std::mem::take(&mut self.waiting_throttled);
            if throttled {
                self.c.throttled_ns = self.c.throttled_ns.saturating_add(wait);
            } else {
                self.runq_iv.record(wait);
                self.c.runq_wait_ns = self.c.runq_wait_ns.saturating_add(wait);
            }
            ended = Some((w, throttled));
        }
        self.mark(ts, RunState::Running);
        ended
    }

    /// Left its CPU at `ts`; `start` is where counting begins for a thread
    /// that was already running when tracing started.
    pub fn switch_out(&mut self, ts: u64, cpu: u32, start: u64, how: SwitchOut) {
        let since = match self.running_since.take() {
            Some(s) => Some(s),
            None if !self.seen_running => Some(self.born_ns.unwrap_or(start).max(start)),
            None => None,
        };
        if let Some(since) = since {
            let ran = ts.saturating_sub(since);
            // Saturating: a damaged or hostile record file's times can go
            // back and forth across the whole clock.
            self.c.on_cpu_ns = self.c.on_cpu_ns.saturating_add(ran);
            let slot = self.cpu_slot(cpu);
            *slot = slot.saturating_add(ran);
        }
        self.seen_running = true;
        self.last_cpu = Some(cpu);
        self.waiting_throttled = false;
        match how {
            SwitchOut::Preempted | SwitchOut::Throttled => {
                self.c.involuntary += 1;
                self.waiting_since = Some(ts);
                if how == SwitchOut::Throttled {
                    self.c.throttled += 1;
                    self.waiting_throttled = true;
                    self.mark(ts, RunState::Throttled);
                } else {
                    self.mark(ts, RunState::Waiting);
                }
            }
            SwitchOut::Slept | SwitchOut::Died => {
                self.c.voluntary += 1;
                self.waiting_since = None;
                self.mark(ts, if how == SwitchOut::Died { RunState::Exited } else { RunState::Sleeping });
            }
        }
    }

    /// A new Go state at `ts`: a wait for a P that ends is counted.
    pub fn set_go_state(&mut self, ts: u64, state: crate::goruntime::GoState) {
        self.close_p_wait(ts);
        self.go_state = Some(state);
        self.go_state_since = ts;
    }

    /// Counts the time in a locked state (waiting for a P, or for work)
    /// that is still going on up to `now`.
    pub fn close_p_wait(&mut self, now: u64) {
        use crate::goruntime::GoState;
        if now <= self.go_state_since {
            return;
        }
        let d = now - self.go_state_since;
        match self.go_state {
            Some(GoState::LockedRunnable) => self.c.p_wait_ns = self.c.p_wait_ns.saturating_add(d),
            Some(GoState::LockedIdle) => self.c.locked_idle_ns = self.c.locked_idle_ns.saturating_add(d),
            _ => {}
        }
        self.go_state_since = now;
    }

    /// All its run-queue waits since the start (or reset), the open interval's included.
    pub fn runq_total(&self) -> std::borrow::Cow<'_, Histogram> {
        if self.runq_iv.count() == 0 {
            return std::borrow::Cow::Borrowed(&self.runq);
        }
        let mut all = self.runq.clone();
        all.merge(&self.runq_iv);
        std::borrow::Cow::Owned(all)
    }

    /// Counts the current run up to `now` and starts it again from there,
    /// so that interval deltas include time on CPU of threads that do not switch.
    pub fn close_run(&mut self, now: u64) {
        if let Some(s) = self.running_since {
            if now > s {
                self.c.on_cpu_ns = self.c.on_cpu_ns.saturating_add(now - s);
                if let Some(cpu) = self.last_cpu {
                    let slot = self.cpu_slot(cpu);
                    *slot = slot.saturating_add(now - s);
                }
                self.running_since = Some(now);
            }
        }
    }

    /// On-CPU time until `now`, the current run included.
    pub fn on_cpu_until(&self, now: u64) -> u64 {
        self.c.on_cpu_ns.saturating_add(self.running_since.map_or(0, |s| now.saturating_sub(s)))
    }

    pub fn signalled(&mut self, sender: u32, urg: bool) {
        let i = match self.signalled_by.binary_search_by_key(&sender, |&(t, _, _)| t) {
            Ok(i) => i,
            Err(i) => {
                self.signalled_by.insert(i, (sender, 0, 0));
                i
            }
        };
        if urg {
            self.signalled_by[i].1 += 1;
        } else {
            self.signalled_by[i].2 += 1;
        }
    }

    /// Zeroes what counts since the start; the thread's state stays.
    pub fn reset(&mut self, now: u64) {
        self.close_run(now);
        self.c = Counts::default();
        self.at_tick = Counts::default();
        self.cpu_time.iter_mut().for_each(|(_, ns)| *ns = 0);
        self.runq = Histogram::default();
        self.runq_iv = Histogram::default();
        self.signalled_by.clear();
    }
}
