//! The Go scheduler's samples (`GoSched` and `GoP` events, about ten a
//! second): the latest state, and how many goroutines waited for a P over
//! an interval and over the whole window. Pure, like the rest of the model.
use serde::Serialize;

use crate::goruntime::PState;

/// More Ps than this in a file is damage: `runtime.allp` is read with the
/// same bound.
const MAX_PS: usize = crate::goruntime::sched::MAX_PS as usize;

/// Samples of goroutines waiting for a P.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct QueueStats {
    pub samples: u64,
    /// Samples in which at least one goroutine waited.
    pub queued_samples: u64,
    pub queued_sum: u64,
    pub queued_max: u32,
    pub idle_ps_sum: u64,
}

impl QueueStats {
    fn add(&mut self, queued: u32, idle_ps: u32) {
        self.samples += 1;
        self.queued_samples += u64::from(queued > 0);
        self.queued_sum = self.queued_sum.saturating_add(u64::from(queued));
        self.queued_max = self.queued_max.max(queued);
        self.idle_ps_sum = self.idle_ps_sum.saturating_add(u64::from(idle_ps));
    }

    /// Goroutines waiting for a P, on average over the samples.
    pub fn queued_mean(&self) -> f64 {
        if self.samples == 0 {
            0.0
        } else {
            self.queued_sum as f64 / self.samples as f64
        }
    }

    /// Share of samples (percent) in which goroutines waited for a P.
    pub fn queued_pct(&self) -> f64 {
        if self.samples == 0 {
            0.0
        } else {
            100.0 * self.queued_samples as f64 / self.samples as f64
        }
    }

    pub fn idle_ps_mean(&self) -> f64 {
        if self.samples == 0 {
            0.0
        } else {
            self.idle_ps_sum as f64 / self.samples as f64
        }
    }
}

/// What the JSON's `go.sched` holds: the last sample, as
/// `GODEBUG=schedtrace` prints it, and the goroutines that waited for a P
/// over the interval (or the recording).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct SchedView {
    pub gomaxprocs: Option<u32>,
    pub idle_ps: u32,
    pub spinning_threads: u32,
    pub idle_threads: u32,
    /// The global run queue.
    pub runqueue: u32,
    /// Each P's local run queue (`runqtail - runqhead`).
    pub p_runqueues: Vec<u32>,
    /// Ps with a goroutine in `runnext` (not in their run queue).
    pub p_runnext: u32,
    pub goroutines: u32,
    /// Runnable goroutines waiting for a P now: the global and local
    /// queues and the `runnext` slots.
    pub queued: u32,
    /// Over the interval (or recording): samples taken, goroutines waiting
    /// on average and at most, the share of samples with any waiting.
    pub samples: u64,
    pub queued_mean: f64,
    pub queued_max: u32,
    pub queued_pct: f64,
}

#[derive(Clone, Debug, Default)]
pub struct GoSched {
    /// The last `GoSched` event (None: never sampled).
    last: Option<Sample>,
    ps: Vec<PState>,
    pub interval: QueueStats,
    pub total: QueueStats,
}

#[derive(Clone, Copy, Debug, Default)]
struct Sample {
    idle_ps: u32,
    spinning: u32,
    idle_threads: u32,
    runqueue: u32,
    goroutines: u32,
}

impl GoSched {
    pub fn p(&mut self, p: u32, status: u32, runq: u32, runnext: bool) {
        let Ok(i) = usize::try_from(p) else { return };
        if i >= MAX_PS {
            return;
        }
        if self.ps.len() <= i {
            self.ps.resize(i + 1, PState::default());
        }
        self.ps[i] = PState { status, runq, runnext, schedtick: 0 };
    }

    pub fn sample(
        &mut self,
        idle_ps: u32,
        spinning: u32,
        idle_threads: u32,
        runqueue: u32,
        goroutines: u32,
        nprocs: u32,
    ) {
        self.ps.truncate(usize::try_from(nprocs).unwrap_or(MAX_PS).min(MAX_PS));
        let s = Sample { idle_ps, spinning, idle_threads, runqueue, goroutines };
        self.last = Some(s);
        let queued = self.queued();
        self.interval.add(queued, idle_ps);
        self.total.add(queued, idle_ps);
    }

    fn queued(&self) -> u32 {
        let local: u32 =
            self.ps.iter().fold(0u32, |a, p| a.saturating_add(p.runq).saturating_add(u32::from(p.runnext)));
        self.last.map_or(0, |s| s.runqueue).saturating_add(local)
    }

    /// The last sample with `stats` (the interval's or the total), None if never sampled.
    pub fn view(&self, stats: &QueueStats, gomaxprocs: Option<u32>) -> Option<SchedView> {
        let s = self.last?;
        Some(SchedView {
            gomaxprocs,
            idle_ps: s.idle_ps,
            spinning_threads: s.spinning,
            idle_threads: s.idle_threads,
            runqueue: s.runqueue,
            p_runqueues: self.ps.iter().map(|p| p.runq).collect(),
            p_runnext: self.ps.iter().map(|p| u32::from(p.runnext)).sum(),
            goroutines: s.goroutines,
            queued: self.queued(),
            samples: stats.samples,
            queued_mean: stats.queued_mean(),
            queued_max: stats.queued_max,
            queued_pct: stats.queued_pct(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_queues_and_views() {
        let mut g = GoSched::default();
        assert_eq!(g.view(&g.interval, Some(2)), None, "never sampled");
        g.p(0, 1, 2, true);
        g.p(1, 0, 0, false);
        g.sample(1, 0, 3, 4, 20, 2);
        g.p(0, 1, 0, false);
        g.sample(1, 0, 3, 0, 20, 2);
        let v = g.view(&g.interval, Some(2)).expect("sampled");
        assert_eq!((v.runqueue, v.p_runqueues.clone(), v.p_runnext, v.queued), (0, vec![0, 0], 0, 0));
        assert_eq!((v.samples, v.queued_max, v.queued_mean, v.queued_pct), (2, 7, 3.5, 50.0));
        // GOMAXPROCS lowered: the Ps beyond allp's length go.
        g.sample(0, 0, 0, 0, 20, 1);
        assert_eq!(g.view(&g.total, None).expect("sampled").p_runqueues, [0]);
        // A hostile P number is ignored, not allocated.
        g.p(u32::MAX, 1, 1, true);
        assert_eq!(g.ps.len(), 1);
    }
}
