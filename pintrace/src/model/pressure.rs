//! Who took the CPU while the target's threads waited for one, and the
//! process's CPU pressure: the share of time at least one of its threads
//! was runnable but not running (PSI's "some", for one process).
//!
//! A wait ends when its thread takes a CPU; the task that had that CPU
//! just before (the switch's other side) is what the thread waited behind:
//! another thread of the target, another process, a kernel thread, or no
//! one (the CPU was idle: the wait was the wake-up's own latency). Waits
//! parked by CFS throttling are the quota's. Pure, like the rest of the model.
use std::collections::BTreeMap;

use serde::Serialize;

use crate::TidMap as HashMap;

/// Other processes remembered per window: the busiest are kept.
const MAX_OTHERS: usize = 1024;
/// Disjoint wait segments kept per interval; beyond, the older half is
/// sealed: counted, and no longer merged with (a later wait that overlaps
/// them is counted again, so the pressure can read high, never low).
const MAX_SEGMENTS: usize = 4096;

/// Wait time by what the thread waited behind.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct WaitByCause {
    pub own_threads: u64,
    pub other_processes: u64,
    pub kernel: u64,
    /// The CPU was idle when the thread took it: the wake-up's latency.
    pub idle: u64,
    pub throttled: u64,
}

impl WaitByCause {
    pub fn total(&self) -> u64 {
        self.own_threads
            .saturating_add(self.other_processes)
            .saturating_add(self.kernel)
            .saturating_add(self.idle)
            .saturating_add(self.throttled)
    }

    fn add(&mut self, o: &WaitByCause) {
        self.own_threads = self.own_threads.saturating_add(o.own_threads);
        self.other_processes = self.other_processes.saturating_add(o.other_processes);
        self.kernel = self.kernel.saturating_add(o.kernel);
        self.idle = self.idle.saturating_add(o.idle);
        self.throttled = self.throttled.saturating_add(o.throttled);
    }
}

/// "own threads 1.5s, other processes 4.5s, the kernel 206ms, idle 0ns,
/// throttled 0ns": one text for batch and report.
impl std::fmt::Display for WaitByCause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use crate::fmt::ns;
        write!(
            f,
            "own threads {}, other processes {}, the kernel {}, idle {}, throttled {}",
            ns(self.own_threads),
            ns(self.other_processes),
            ns(self.kernel),
            ns(self.idle),
            ns(self.throttled)
        )
    }
}

/// What a wait was behind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cause {
    OwnThread,
    /// Another process (its PID, or a TID on the classic path).
    Other(u32),
    Kernel(u32),
    Idle,
    Throttled,
}

impl Cause {
    /// From a switch onto a target thread: `prev_tid` (a target, or 0) and
    /// the switch's `other`.
    pub fn of(prev_tid: u32, other: u32) -> Cause {
        use pintrace_common::{OTHER_ID_MASK, OTHER_KTHREAD};
        if prev_tid != 0 {
            Cause::OwnThread
        } else if other == 0 {
            Cause::Idle
        } else if other & OTHER_KTHREAD != 0 {
            Cause::Kernel(other & OTHER_ID_MASK)
        } else {
            Cause::Other(other & OTHER_ID_MASK)
        }
    }
}

/// Another process that took CPU from the target's threads.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct OtherProcess {
    pub pid: u32,
    pub comm: String,
    pub wait_caused_ns: u64,
}

/// The union of wait intervals, to time "at least one thread waited".
/// Waits come mostly in the order they end, so the latest segment is kept
/// apart and most waits merge with it or follow it without a map lookup.
#[derive(Clone, Debug, Default)]
struct Union {
    /// start → end, disjoint and sorted, all before `tail`.
    segments: BTreeMap<u64, u64>,
    /// The segment that starts last.
    tail: Option<(u64, u64)>,
    /// The length of the segments sealed.
    sealed: u64,
}

impl Union {
    fn add(&mut self, start: u64, end: u64) {
        if end <= start {
            return;
        }
        match self.tail {
            None => self.tail = Some((start, end)),
            Some((ts, te)) if start >= ts => {
                if start <= te {
                    self.tail = Some((ts, te.max(end)));
                } else {
                    self.insert(ts, te);
                    self.tail = Some((start, end));
                }
            }
            Some((ts, te)) => {
                // Before the tail: into the map with it, and the last back out.
                self.insert(ts, te);
                self.insert(start, end);
                self.tail = self.segments.pop_last();
            }
        }
    }

    /// Into the map, merged with what it overlaps.
    fn insert(&mut self, mut start: u64, mut end: u64) {
        if let Some((&s, &e)) = self.segments.range(..=start).next_back() {
            if e >= start {
                start = s;
                end = end.max(e);
                self.segments.remove(&s);
            }
        }
        while let Some((&s, &e)) = self.segments.range(start..=end).next() {
            end = end.max(e);
            self.segments.remove(&s);
        }
        self.segments.insert(start, end);
        if self.segments.len() > MAX_SEGMENTS {
            // Amortised: one pass for every MAX_SEGMENTS / 2 inserts.
            let Some(&middle) = self.segments.keys().nth(MAX_SEGMENTS / 2) else { return };
            let newer = self.segments.split_off(&middle);
            let older = std::mem::replace(&mut self.segments, newer);
            self.sealed = older.iter().map(|(&s, &e)| e - s).fold(self.sealed, u64::saturating_add);
        }
    }

    fn total(&self) -> u64 {
        let tail = self.tail.map_or(0, |(s, e)| e - s);
        self.segments.iter().map(|(&s, &e)| e - s).fold(self.sealed.saturating_add(tail), u64::saturating_add)
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.segments.len() + usize::from(self.tail.is_some())
    }
}

#[derive(Clone, Debug, Default)]
pub struct Pressure {
    interval: Union,
    pub by_cause_iv: WaitByCause,
    pub by_cause: WaitByCause,
    /// The last closed interval's union of waits (ns).
    pub some_last_ns: u64,
    /// Over the window: the sum of the intervals' unions.
    pub some_ns: u64,
    others: HashMap<u32, u64>,
    others_iv: HashMap<u32, u64>,
    names: HashMap<u32, (String, bool)>,
}

impl Pressure {
    /// A wait of `[start, end)` that ended behind `cause`.
    pub fn wait(&mut self, start: u64, end: u64, cause: Cause) {
        let d = end.saturating_sub(start);
        self.interval.add(start, end);
        let mut c = WaitByCause::default();
        match cause {
            Cause::OwnThread => c.own_threads = d,
            Cause::Other(pid) => {
                c.other_processes = d;
                for m in [&mut self.others, &mut self.others_iv] {
                    if m.len() < MAX_OTHERS || m.contains_key(&pid) {
                        let v = m.entry(pid).or_default();
                        *v = v.saturating_add(d);
                    }
                }
            }
            Cause::Kernel(_) => c.kernel = d,
            Cause::Idle => c.idle = d,
            Cause::Throttled => c.throttled = d,
        }
        self.by_cause_iv.add(&c);
        self.by_cause.add(&c);
    }

    /// The name of another process, as the live source read it.
    pub fn name(&mut self, pid: u32, comm: String, kthread: bool) {
        if self.names.len() < MAX_OTHERS || self.names.contains_key(&pid) {
            self.names.insert(pid, (comm, kthread));
        }
    }

    /// Closes the interval: its union of waits.
    pub fn tick(&mut self) -> (u64, WaitByCause, Vec<OtherProcess>) {
        let some = self.interval.total();
        self.interval = Union::default();
        self.some_last_ns = some;
        self.some_ns = self.some_ns.saturating_add(some);
        let by = std::mem::take(&mut self.by_cause_iv);
        let iv = std::mem::take(&mut self.others_iv);
        let others = self.top(&iv);
        (some, by, others)
    }

    /// The other processes over the window, most first.
    pub fn others(&self) -> Vec<OtherProcess> {
        self.top(&self.others)
    }

    fn top(&self, m: &HashMap<u32, u64>) -> Vec<OtherProcess> {
        let mut v: Vec<OtherProcess> = m
            .iter()
            .map(|(&pid, &ns)| OtherProcess {
                pid,
                comm: self.names.get(&pid).map_or_else(String::new, |n| n.0.clone()),
                wait_caused_ns: ns,
            })
            .collect();
        v.sort_by(|a, b| b.wait_caused_ns.cmp(&a.wait_caused_ns).then(a.pid.cmp(&b.pid)));
        v.truncate(5);
        v
    }

    pub fn reset(&mut self) {
        self.by_cause = WaitByCause::default();
        self.some_ns = 0;
        self.others.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_union_of_waits() {
        let mut u = Union::default();
        u.add(10, 20);
        u.add(15, 30); // overlaps
        u.add(40, 50);
        u.add(5, 12); // reaches into the first
        u.add(30, 40); // joins the two
        assert_eq!(u.len(), 1);
        assert_eq!(u.total(), 45);
        u.add(60, 60); // empty
        assert_eq!(u.total(), 45);
        u.add(100, 110);
        u.add(0, 200); // covers all
        assert_eq!((u.len(), u.total()), (1, 200));
        // Out of order: before the tail, between segments.
        let mut u = Union::default();
        u.add(100, 110);
        u.add(10, 20);
        u.add(50, 60);
        u.add(15, 55);
        assert_eq!((u.len(), u.total()), (2, 50 + 10));
    }

    #[test]
    fn the_union_is_bounded() {
        let mut u = Union::default();
        for i in 0..(MAX_SEGMENTS as u64 + 10) {
            u.add(i * 10, i * 10 + 5);
        }
        assert!(u.len() <= MAX_SEGMENTS + 1);
        assert!(u.total() >= (MAX_SEGMENTS as u64 + 10) * 5, "merging reads high, never low");
        // Disjoint waits arriving backwards: each an O(log n) insert, not a scan.
        let mut u = Union::default();
        let t = std::time::Instant::now();
        for i in (0..200_000u64).rev() {
            u.add(i * 10, i * 10 + 5);
        }
        assert!(u.len() <= MAX_SEGMENTS + 1);
        assert!(t.elapsed() < std::time::Duration::from_secs(5), "{:?}", t.elapsed());
    }

    #[test]
    fn waits_by_cause_and_the_processes_behind_them() {
        use pintrace_common::OTHER_KTHREAD;
        let mut p = Pressure::default();
        assert_eq!(Cause::of(101, 0), Cause::OwnThread);
        assert_eq!(Cause::of(0, 0), Cause::Idle);
        assert_eq!(Cause::of(0, 77), Cause::Other(77));
        assert_eq!(Cause::of(0, 2 | OTHER_KTHREAD), Cause::Kernel(2));
        p.name(77, "stress".into(), false);
        p.wait(0, 10, Cause::OwnThread);
        p.wait(5, 30, Cause::Other(77));
        p.wait(40, 45, Cause::Other(88));
        p.wait(50, 51, Cause::Kernel(2));
        p.wait(60, 62, Cause::Idle);
        p.wait(70, 80, Cause::Throttled);
        let (some, by, others) = p.tick();
        assert_eq!(some, 30 + 5 + 1 + 2 + 10);
        assert_eq!(by, WaitByCause { own_threads: 10, other_processes: 30, kernel: 1, idle: 2, throttled: 10 });
        assert_eq!(by.total(), 53);
        assert_eq!(others[0], OtherProcess { pid: 77, comm: "stress".into(), wait_caused_ns: 25 });
        assert_eq!(others[1].pid, 88);
        assert_eq!(p.tick().0, 0, "a new interval");
        assert_eq!(p.others().len(), 2, "the window keeps them");
    }
}
