//! The analysis stage, between the loop and the sinks that show results:
//! events fold into the model, and at each tick the analyzer gives a
//! `Frame` (the interval's live snapshot, the findings judged on it, the
//! thread capacity) to the screen, the batch text or JSON, or the report.
//! The one place where a tick becomes findings; the file writer takes
//! events and needs none of it.
use crate::{
    event::Event,
    findings::{self, Capacity, Context, Finding, Thresholds},
    goruntime::GoInfo,
    model::{live::LiveSnapshot, Model},
    record::RecordHeader,
};

/// What a sink shows of one interval.
pub struct Frame {
    pub live: LiveSnapshot,
    pub findings: Vec<Finding>,
    pub capacity: Option<Capacity>,
}

pub struct Analyzer {
    model: Model,
    /// What is known of the target besides its events: its cgroup, CPUs
    /// and Go runtime (the findings' context).
    header: RecordHeader,
    thresholds: Thresholds,
    last_tick: u64,
}

impl Analyzer {
    pub fn new(header: &RecordHeader, thresholds: Thresholds) -> Analyzer {
        Analyzer { model: Model::new(header.start_ns), header: header.clone(), thresholds, last_tick: header.start_ns }
    }

    /// Keeps exited threads in the live view this long (the screen's and
    /// batch output's; a report keeps them all).
    pub fn retain_exited(mut self, ns: u64) -> Analyzer {
        self.model = self.model.retain_exited(ns);
        self
    }

    pub fn header(&self) -> &RecordHeader {
        &self.header
    }

    pub fn set_thresholds(&mut self, t: Thresholds) {
        self.thresholds = t;
    }

    /// The target's Go runtime as now known (after an exec).
    pub fn set_go(&mut self, go: Option<&GoInfo>) {
        self.header.go = go.cloned();
    }

    pub fn apply(&mut self, events: &[Event]) {
        events.iter().for_each(|e| self.model.apply(e));
    }

    /// Ends the interval at `now_ns`.
    pub fn tick(&mut self, now_ns: u64) {
        self.model.tick(now_ns);
        self.last_tick = now_ns;
    }

    /// When the last interval ended.
    pub fn last_tick(&self) -> u64 {
        self.last_tick
    }

    /// Starts the counts again from `now_ns` (the screen's `r`).
    pub fn reset(&mut self, now_ns: u64) {
        self.model.reset(now_ns.max(self.last_tick));
    }

    /// The last interval as seen from `focus` (a thread whose detail is
    /// open), judged.
    pub fn frame(&self, focus: Option<u32>) -> Frame {
        let live = self.model.live(focus);
        let findings = findings::evaluate(&live, &Context::of(&self.header), &self.thresholds);
        let capacity = findings::capacity(&live, None, &self.thresholds);
        Frame { live, findings, capacity }
    }

    /// The totals since the start, for the report.
    pub fn snapshot(&self, now_ns: u64) -> crate::model::Snapshot {
        self.model.snapshot(now_ns)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        event::{Comm, EventKind, NO_CPU},
        record::Target,
    };

    const MS: u64 = 1_000_000;

    fn header() -> RecordHeader {
        let target = Target { pid: 100, comm: "app".into(), cmdline: "app".into(), ns_pid: None };
        RecordHeader { target, start_ns: 0, ..crate::record::tests::header() }
    }

    /// A second of threads created and exited every 10 ms: a frame at the
    /// tick judges it (sustain=0), and a program that is not Go gets the
    /// advice for one that is not.
    #[test]
    fn a_tick_gives_a_judged_frame() {
        let mut t = Thresholds::default();
        t.set("sustain=0").expect("a threshold");
        let mut a = Analyzer::new(&header(), t);
        let mut events = vec![Event {
            ts_ns: 0,
            cpu: NO_CPU,
            kind: EventKind::ThreadSeen { tid: 100, tgid: 100, comm: Comm::new("app") },
        }];
        for i in 0..100u32 {
            let (tid, ts) = (1000 + i, u64::from(i) * 10 * MS);
            let comm = Comm::new("app");
            events.push(Event {
                ts_ns: ts,
                cpu: 0,
                kind: EventKind::NewTask {
                    parent_tid: 100,
                    parent_tgid: 100,
                    child_tid: tid,
                    clone_flags: pintrace_common::CLONE_THREAD,
                    comm,
                },
            });
            events.push(Event {
                ts_ns: ts + MS,
                cpu: 0,
                kind: EventKind::Exit { tid, tgid: 100, group_dead: false, comm },
            });
        }
        a.apply(&events);
        assert!(a.frame(None).findings.is_empty(), "no interval yet");
        a.tick(1000 * MS);
        let f = a.frame(None);
        assert_eq!(f.findings.iter().map(|f| f.rule).collect::<Vec<_>>(), [findings::THREAD_CHURN]);
        assert!(!f.findings[0].advice.contains("LockOSThread"), "{}", f.findings[0].advice);
        assert_eq!(f.live.interval.process.threads_created, 100);
        assert!(f.capacity.is_none(), "no GOMAXPROCS: no capacity");
        assert_eq!(a.last_tick(), 1000 * MS);
    }
}
