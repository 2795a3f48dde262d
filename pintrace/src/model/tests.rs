//! The model against hand-built event sequences.
use super::*;
use crate::event::{Comm, NO_CPU};

const MS: u64 = 1_000_000;
const S: u64 = 1000 * MS;

fn ev(ts_ns: u64, cpu: u32, kind: EventKind) -> Event {
    Event { ts_ns, cpu, kind }
}

fn seen(tid: u32) -> Event {
    ev(0, NO_CPU, EventKind::ThreadSeen { tid, tgid: 100, comm: Comm::new("app") })
}

fn switch(ts: u64, cpu: u32, prev_tid: u32, next_tid: u32, prev_state: u32) -> Event {
    ev(ts, cpu, EventKind::Switch { prev_tid, next_tid, prev_state, next_wait_ns: None, other: 0 })
}

fn thread(s: &Snapshot, tid: u32) -> &ThreadStats {
    s.threads.iter().find(|t| t.tid == tid).expect("thread in snapshot")
}

#[test]
fn on_cpu_time_and_switch_kinds() {
    let mut m = Model::new(0);
    m.apply(&seen(100));
    m.apply(&switch(10 * MS, 0, 0, 100, 0)); // in
    m.apply(&switch(30 * MS, 0, 100, 0, 0)); // preempted
    m.apply(&switch(35 * MS, 1, 0, 100, 0)); // back after 5 ms on CPU 1
    m.apply(&switch(40 * MS, 1, 100, 0, 1)); // sleeps
    let s = m.snapshot(50 * MS);
    let t = thread(&s, 100);
    assert_eq!(t.on_cpu_ns, 25 * MS);
    assert_eq!((t.voluntary_switches, t.involuntary_switches), (1, 1));
    assert_eq!(t.cpus, vec![0, 1]);
    assert_eq!(t.runq_latency_ns.count, 1);
    assert_eq!(t.runq_latency_ns.max, 5 * MS);
    assert_eq!(s.duration_ns, 50 * MS);
    assert_eq!(s.events, 4, "synthesised events are not kernel events");
}

#[test]
fn a_thread_running_at_start_is_counted_from_the_start_and_until_now() {
    let mut m = Model::new(100 * MS);
    m.apply(&seen(7));
    m.apply(&switch(110 * MS, 0, 7, 0, 1));
    m.apply(&switch(120 * MS, 0, 0, 7, 0));
    let s = m.snapshot(125 * MS);
    assert_eq!(thread(&s, 7).on_cpu_ns, 15 * MS);
}

#[test]
fn wakeup_to_run_latency() {
    let mut m = Model::new(0);
    m.apply(&seen(5));
    m.apply(&switch(MS, 0, 5, 0, 1)); // sleeps
    m.apply(&ev(2 * MS, 1, EventKind::Wakeup { tid: 5, target_cpu: 0, waker_tid: 9, new_task: false }));
    // A second wake-up while already waiting does not restart the wait.
    m.apply(&ev(3 * MS, 1, EventKind::Wakeup { tid: 5, target_cpu: 0, waker_tid: 9, new_task: false }));
    m.apply(&switch(6 * MS, 0, 0, 5, 0));
    // A wake-up while on the CPU is not a wait.
    m.apply(&ev(7 * MS, 1, EventKind::Wakeup { tid: 5, target_cpu: 0, waker_tid: 9, new_task: false }));
    m.apply(&switch(8 * MS, 0, 5, 0, 1));
    let s = m.snapshot(10 * MS);
    let l = &thread(&s, 5).runq_latency_ns;
    assert_eq!((l.count, l.max), (1, 4 * MS));
    assert_eq!(s.process.runq_latency_ns.count, 1);
}

#[test]
fn the_kernel_s_wait_at_switch_in_tells_when_a_woken_thread_began_to_wait() {
    let mut m = Model::new(0);
    m.apply(&seen(5));
    let switch_in = |ts, wait| {
        ev(ts, 0, EventKind::Switch { prev_tid: 0, next_tid: 5, prev_state: 0, next_wait_ns: wait, other: 0 })
    };
    m.apply(&switch(MS, 0, 5, 0, 1)); // sleeps
    m.apply(&switch_in(6 * MS, Some(4 * MS))); // woken at 2 ms, waited 4 ms
    m.apply(&switch(7 * MS, 0, 5, 0, 0)); // preempted at 7 ms
                                          // After a preemption the wait is timed from the switch-out (9 ms), as before.
    m.apply(&switch_in(16 * MS, Some(8 * MS)));
    m.apply(&switch(17 * MS, 0, 5, 0, 1)); // sleeps
    m.apply(&switch_in(18 * MS, Some(0))); // ran at once: a wait of 0
                                           // A wait reaching back past the sleep starts at the sleep.
    m.apply(&switch(19 * MS, 0, 5, 0, 1));
    m.apply(&switch_in(20 * MS, Some(5 * MS)));
    let s = m.snapshot(21 * MS);
    let l = &thread(&s, 5).runq_latency_ns;
    // Waits of 4, 9, 0 and 1 ms.
    assert_eq!((l.count, l.max, l.mean), (4, 9 * MS, 14 * MS / 4));
    let timeline = &m.threads[&5].timeline;
    let waits: Vec<u64> = timeline.iter().filter(|&&(_, st)| st == RunState::Waiting).map(|&(t, _)| t).collect();
    assert_eq!(waits, vec![2 * MS, 7 * MS, 19 * MS]);
}

#[test]
fn thread_churn_counts_rates_and_lifetimes() {
    let mut m = Model::new(0);
    m.apply(&seen(100));
    for i in 0..10u32 {
        let tid = 200 + i;
        let born = u64::from(i) * 100 * MS;
        m.apply(&ev(
            born,
            0,
            EventKind::NewTask {
                parent_tid: 100,
                parent_tgid: 100,
                child_tid: tid,
                clone_flags: pintrace_common::CLONE_THREAD | 0x100,
                comm: Comm::new("app"),
            },
        ));
        m.apply(&ev(born + 2 * MS, 0, EventKind::Exit { tid, tgid: 100, group_dead: false, comm: Comm::new("w") }));
    }
    // A child process is not a thread.
    m.apply(&ev(
        MS,
        0,
        EventKind::NewTask {
            parent_tid: 100,
            parent_tgid: 100,
            child_tid: 999,
            clone_flags: 17,
            comm: Comm::new("app"),
        },
    ));
    let s = m.snapshot(1000 * MS);
    let p = &s.process;
    assert_eq!((p.threads_created, p.threads_exited, p.child_processes), (10, 10, 1));
    assert_eq!((p.threads_at_start, p.threads_now, p.threads_peak), (1, 1, 2));
    assert!((p.threads_created_per_sec - 10.0).abs() < 1e-9);
    assert_eq!(p.thread_lifetime_ns.count, 10);
    assert_eq!(p.thread_lifetime_ns.max, 2 * MS);
    assert_eq!(thread(&s, 205).comm, "w");
    assert_eq!(thread(&s, 205).born_ns, Some(500 * MS));
}

#[test]
fn a_thread_both_listed_at_attach_and_created_counts_once() {
    let mut m = Model::new(0);
    m.apply(&seen(100));
    m.apply(&seen(101));
    m.apply(&seen(101));
    m.apply(&ev(
        MS,
        0,
        EventKind::NewTask {
            parent_tid: 100,
            parent_tgid: 100,
            child_tid: 101,
            clone_flags: pintrace_common::CLONE_THREAD,
            comm: Comm::new("a"),
        },
    ));
    let p = m.snapshot(2 * MS).process;
    assert_eq!((p.threads_at_start, p.threads_created, p.threads_now, p.threads_peak), (1, 1, 2, 2));
}

#[test]
fn leader_exit_is_not_a_thread_exit_and_exit_counts_once() {
    let mut m = Model::new(0);
    m.apply(&seen(100));
    m.apply(&seen(101));
    let exit = |tid| ev(MS, 0, EventKind::Exit { tid, tgid: 100, group_dead: false, comm: Comm::new("a") });
    m.apply(&exit(101));
    m.apply(&exit(101));
    m.apply(&exit(100));
    let s = m.snapshot(2 * MS);
    assert_eq!(s.process.threads_exited, 1);
    assert_eq!(s.process.threads_now, 0);
}

#[test]
fn signals_split_sigurg_from_others_and_credit_the_sender() {
    let mut m = Model::new(0);
    for tid in [100, 101, 102] {
        m.apply(&seen(tid));
    }
    let sig = |sender_tid, target_tid, sig| {
        ev(
            MS,
            0,
            EventKind::Signal { sender_tid, sender_tgid: 100, target_tid, sig, code: -6, result: 0, group: false },
        )
    };
    for _ in 0..3 {
        m.apply(&sig(101, 102, SIGURG));
    }
    m.apply(&sig(101, 100, 10));
    m.apply(&sig(4242, 100, 15)); // from outside the process
    let s = m.snapshot(1000 * MS);
    assert_eq!(thread(&s, 102).sigurg_received, 3);
    assert_eq!(thread(&s, 101).sigurg_sent, 3);
    assert_eq!(thread(&s, 101).signals_sent, 1);
    assert_eq!(thread(&s, 100).signals_received, 2);
    assert_eq!((s.process.sigurg, s.process.signals), (3, 2));
    assert!((s.process.sigurg_per_sec - 3.0).abs() < 1e-9);
}

#[test]
fn migrations_and_lost_events() {
    let mut m = Model::new(0);
    m.apply(&seen(1));
    m.apply(&ev(1, 0, EventKind::Migrate { tid: 1, from_cpu: 0, to_cpu: 1 }));
    m.apply(&ev(2, NO_CPU, EventKind::Lost { total: 7 }));
    m.apply(&ev(3, NO_CPU, EventKind::Lost { total: 5 }));
    let s = m.snapshot(10);
    assert_eq!(s.process.migrations, 1);
    assert_eq!(s.lost_events, 7, "lost is a running total");
}

#[test]
fn empty_window_has_no_rates() {
    let s = Model::new(5).snapshot(5);
    assert_eq!(s.duration_ns, 0);
    assert_eq!(s.process.threads_created_per_sec, 0.0);
    assert!(s.threads.is_empty());
}

#[test]
fn snapshot_sorts_by_on_cpu_then_tid() {
    let mut m = Model::new(0);
    for tid in [3, 2, 1] {
        m.apply(&seen(tid));
    }
    m.apply(&switch(0, 0, 0, 3, 0));
    m.apply(&switch(5, 0, 3, 0, 1));
    m.apply(&switch(5, 0, 0, 1, 1));
    m.apply(&switch(6, 0, 1, 0, 1));
    let s = m.snapshot(10);
    let tids: Vec<u32> = s.threads.iter().map(|t| t.tid).collect();
    // Thread 2 never switched: it slept through the window.
    assert_eq!(tids, vec![3, 1, 2]);
}

// ---- the time axis: intervals, history, log, pruning, reset ----

fn born(ts: u64, tid: u32) -> Event {
    ev(
        ts,
        0,
        EventKind::NewTask {
            parent_tid: 100,
            parent_tgid: 100,
            child_tid: tid,
            clone_flags: pintrace_common::CLONE_THREAD,
            comm: Comm::new("m"),
        },
    )
}

fn died(ts: u64, tid: u32) -> Event {
    ev(ts, 0, EventKind::Exit { tid, tgid: 100, group_dead: false, comm: Comm::new("m") })
}

fn row(l: &live::LiveSnapshot, tid: u32) -> &live::ThreadRow {
    l.threads.iter().find(|t| t.tid == tid).expect("row")
}

#[test]
fn intervals_give_deltas_and_rates_next_to_totals() {
    let mut m = Model::new(0);
    m.apply(&seen(100));
    m.apply(&switch(0, 0, 0, 100, 0)); // runs from 0 without switching out
    for i in 0..4 {
        m.apply(&ev(100 * MS + i, 0, EventKind::Migrate { tid: 100, from_cpu: 0, to_cpu: 1 }));
    }
    m.tick(1000 * MS);
    for i in 0..2 {
        m.apply(&ev(1500 * MS + i, 0, EventKind::Migrate { tid: 100, from_cpu: 0, to_cpu: 1 }));
    }
    m.tick(1500 * MS); // a half-second interval
    let l = m.live(None);
    let r = row(&l, 100);
    assert_eq!(r.migrations, 2, "the interval's count");
    assert!((r.migrations_per_sec - 4.0).abs() < 1e-9, "2 in 0.5 s is 4/s");
    assert!((r.cpu_pct - 100.0).abs() < 1e-9, "on CPU the whole interval without a switch");
    assert_eq!(r.state, live::RunState::Running);
    assert_eq!(l.totals.process.migrations, 6, "totals keep counting");
    assert_eq!(l.interval.process.migrations, 2);
    assert!((l.interval.rates.cpus_used - 1.0).abs() < 1e-9);
    assert_eq!((l.interval.start_ns, l.interval.end_ns), (1000 * MS, 1500 * MS));
    assert_eq!(l.history.len(), 2);
    assert!((l.history[0].migrations_per_sec - 4.0).abs() < 1e-9);
}

#[test]
fn switches_that_arrive_after_their_interval_closed_never_count_twice() {
    // Live, events reach the model up to a poll interval late: a thread
    // that ran when the interval closed at 1 s was counted up to 1 s, and
    // only then do its switch-out at 0.9 s and switch-in at 0.95 s arrive.
    let mut m = Model::new(0);
    m.apply(&seen(100));
    m.apply(&switch(0, 0, 0, 100, 0));
    m.tick(1000 * MS);
    m.apply(&switch(900 * MS, 0, 100, 0, 0));
    m.apply(&switch(950 * MS, 0, 0, 100, 0));
    m.tick(1500 * MS);
    let l = m.live(None);
    let r = row(&l, 100);
    assert!((r.cpu_pct - 100.0).abs() < 1e-9, "at most the whole interval: {}", r.cpu_pct);
    // The closed interval keeps its 100 % (the 50 ms gap it did not know
    // of); replayed in order, the same events give the exact time.
    let mut m = Model::new(0);
    m.apply(&seen(100));
    for e in [switch(0, 0, 0, 100, 0), switch(900 * MS, 0, 100, 0, 0), switch(950 * MS, 0, 0, 100, 0)] {
        m.apply(&e);
    }
    assert_eq!(thread(&m.snapshot(1500 * MS), 100).on_cpu_ns, 1450 * MS);
}

#[test]
fn history_is_bounded() {
    let mut m = Model::new(0);
    for i in 1..=(HISTORY as u64 + 50) {
        m.tick(i * 1000 * MS);
    }
    let l = m.live(None);
    assert_eq!(l.history.len(), HISTORY);
    assert_eq!(l.history.last().map(|h| h.t_ns), Some((HISTORY as u64 + 50) * 1000 * MS));
}

#[test]
fn churn_is_pruned_but_totals_stay_whole() {
    let keep = 5_000 * MS;
    let mut m = Model::new(0).retain_exited(keep);
    m.apply(&seen(100));
    // 10,000 threads born and dead, 100 a second, each running 1 ms.
    let mut tid = 1000;
    for sec in 0..100u64 {
        for i in 0..100u64 {
            let t0 = sec * 1000 * MS + i * 10 * MS;
            m.apply(&born(t0, tid));
            m.apply(&switch(t0 + MS, 1, 0, tid, 0));
            m.apply(&died(t0 + 2 * MS, tid));
            m.apply(&switch(t0 + 2 * MS, 1, tid, 0, 0x10));
            tid += 1;
        }
        m.tick((sec + 1) * 1000 * MS);
        assert!(m.threads_held() <= 1 + 600, "only the last ~5 s of exited threads are kept: {}", m.threads_held());
    }
    let s = m.snapshot(100_000 * MS);
    assert_eq!(s.process.threads_created, 10_000);
    assert_eq!(s.process.threads_exited, 10_000);
    assert_eq!(s.process.on_cpu_ns, 10_000 * MS, "pruned threads' CPU time still counts");
    assert_eq!(s.process.voluntary_switches, 10_000);
    assert_eq!(s.process.thread_lifetime_ns.count, 10_000);
    let l = m.live(None);
    assert!((l.interval.rates.threads_created_per_sec - 100.0).abs() < 1e-9);
    assert!(l.threads.iter().filter(|t| t.died_ns.is_some()).all(|t| t.short_lived));
    // The log summarises churn instead of a line per thread.
    assert!(matches!(l.log.last().map(|e| &e.kind), Some(live::LogKind::Churn { born: 100, exited: 100, .. })));
    assert!(l.log.len() <= LOG);
}

#[test]
fn a_few_births_are_logged_one_by_one_and_new_threads_are_marked() {
    let mut m = Model::new(0);
    m.apply(&seen(100));
    m.tick(1000 * MS);
    m.apply(&born(1200 * MS, 7));
    m.apply(&born(1300 * MS, 8));
    m.apply(&died(1400 * MS, 8));
    m.tick(2000 * MS);
    let l = m.live(None);
    let lines: Vec<String> = l.log.iter().map(|e| e.kind.to_string()).collect();
    assert_eq!(lines, ["thread 7 (m) born", "thread 8 (m) born", "thread 8 (m) exited after 100ms"]);
    assert!(row(&l, 7).new && !row(&l, 100).new);
    assert!(row(&l, 8).short_lived);
    m.tick(3000 * MS);
    assert!(!row(&m.live(None), 7).new, "new only in the interval it was born");
}

#[test]
fn sigurg_bursts_and_lost_events_are_logged() {
    let mut m = Model::new(0);
    m.apply(&seen(100));
    m.apply(&seen(101));
    let urg = |ts| {
        ev(
            ts,
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
        )
    };
    for sec in 0..5u64 {
        for i in 0..10 {
            m.apply(&urg(sec * 1000 * MS + i * MS));
        }
        m.tick((sec + 1) * 1000 * MS);
    }
    assert!(m.live(None).log.is_empty(), "a steady 10/s is no burst");
    for i in 0..500 {
        m.apply(&urg(5000 * MS + i * MS));
    }
    m.apply(&ev(5600 * MS, NO_CPU, EventKind::Lost { total: 42 }));
    m.tick(6000 * MS);
    let l = m.live(None);
    let kinds: Vec<&live::LogKind> = l.log.iter().map(|e| &e.kind).collect();
    assert!(
        kinds
            .iter()
            .any(|k| matches!(k, live::LogKind::SigurgBurst { count: 500, threads: 1, top_sender: Some(101), .. })),
        "{kinds:?}"
    );
    assert!(kinds.iter().any(|k| matches!(k, live::LogKind::Lost { count: 42, total: 42 })), "{kinds:?}");
    assert_eq!(l.sigurg_senders.first().map(|s| (s.tid, s.sigurg_sent)), Some((101, 500)));
}

#[test]
fn reset_starts_totals_again_and_keeps_threads() {
    let mut m = Model::new(0);
    m.apply(&seen(100));
    m.apply(&switch(0, 0, 0, 100, 0));
    m.apply(&switch(10 * MS, 0, 100, 0, 0));
    m.apply(&born(20 * MS, 5));
    m.tick(1000 * MS);
    m.reset(1000 * MS);
    m.apply(&switch(1100 * MS, 1, 0, 100, 0));
    m.apply(&switch(1103 * MS, 1, 100, 0, 1));
    let s = m.snapshot(2000 * MS);
    assert_eq!(s.duration_ns, 1000 * MS);
    assert_eq!(s.process.threads_created, 0);
    assert_eq!((s.process.threads_at_start, s.process.threads_now), (2, 2));
    assert_eq!(thread(&s, 100).on_cpu_ns, 3 * MS);
    assert_eq!(thread(&s, 100).involuntary_switches, 0);
    assert_eq!(thread(&s, 100).voluntary_switches, 1);
}

#[test]
fn detail_of_a_thread() {
    let mut m = Model::new(0);
    m.apply(&seen(100));
    m.apply(&seen(101));
    m.apply(&switch(0, 0, 0, 100, 0));
    m.apply(&switch(4 * MS, 0, 100, 0, 0)); // preempted
    m.apply(&switch(6 * MS, 1, 0, 100, 0)); // waited 2 ms, now on CPU 1
    m.apply(&ev(
        7 * MS,
        1,
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
    m.apply(&switch(10 * MS, 1, 100, 0, 1));
    m.tick(20 * MS);
    let d = m.live(Some(100)).detail.expect("detail");
    assert_eq!(d.cpu_time_ns, vec![(0, 4 * MS), (1, 4 * MS)]);
    assert_eq!(d.runq_histogram.len(), 1);
    assert_eq!(d.runq_histogram[0].1, 1);
    assert_eq!(d.signalled_by, vec![(101, "app".to_string(), 1, 0)]);
    let states: Vec<live::RunState> = d.timeline.iter().map(|&(_, s)| s).collect();
    use live::RunState::*;
    assert_eq!(states, [Running, Waiting, Running, Sleeping]);
    assert_eq!(d.state, Sleeping);
    assert!(m.live(Some(999)).detail.is_none());
}

#[test]
fn no_sigurg_burst_without_intervals_to_compare_with() {
    let mut m = Model::new(0);
    m.apply(&seen(100));
    m.apply(&seen(101));
    for i in 0..500 {
        m.apply(&ev(
            i * MS,
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
    m.tick(1000 * MS);
    assert!(m.live(None).log.is_empty(), "the first interval has nothing to be a burst against");
}

#[test]
fn when_the_group_is_dead_every_thread_is_even_if_an_exit_comes_late() {
    let mut m = Model::new(0);
    for tid in [100, 101, 102] {
        m.apply(&seen(tid));
    }
    m.apply(&died(10 * MS, 101));
    // The leader's exit ends the group; 102's exit, recorded on another CPU, arrives later.
    m.apply(&ev(11 * MS, 0, EventKind::Exit { tid: 100, tgid: 100, group_dead: true, comm: Comm::new("m") }));
    let p = m.snapshot(20 * MS).process;
    assert_eq!((p.threads_now, p.threads_exited), (0, 2));
    m.apply(&died(12 * MS, 102));
    let p = m.snapshot(20 * MS).process;
    assert_eq!((p.threads_now, p.threads_exited), (0, 2), "the late exit is not counted twice");
}

#[test]
fn a_throttled_wait_is_throttled_time_not_run_queue_latency() {
    use pintrace_common::STATE_THROTTLED;
    let mut m = Model::new(0);
    m.apply(&seen(100));
    m.apply(&switch(0, 0, 0, 100, 0));
    // Parked by the quota (0x100 with the flag) for 80 ms, then preempted for 2 ms.
    m.apply(&switch(10 * MS, 0, 100, 0, 0x100 | STATE_THROTTLED));
    let l = m.live(Some(100));
    assert_eq!(l.detail.as_ref().map(|d| d.state), Some(live::RunState::Throttled));
    m.apply(&switch(90 * MS, 0, 0, 100, 0));
    m.apply(&switch(95 * MS, 0, 100, 0, 0));
    m.apply(&switch(97 * MS, 0, 0, 100, 0));
    let s = m.snapshot(100 * MS);
    let t = thread(&s, 100);
    assert_eq!((t.throttled_switches, t.throttled_ns), (1, 80 * MS));
    assert_eq!(t.involuntary_switches, 2, "a throttled switch-out is still involuntary");
    assert_eq!((t.runq_latency_ns.count, t.runq_latency_ns.max), (1, 2 * MS));
    assert_eq!((s.process.throttled_switches, s.process.throttled_ns), (1, 80 * MS));
    m.tick(100 * MS);
    assert_eq!(row(&m.live(None), 100).throttled_ns, 80 * MS);
}

#[test]
fn the_m_list_gives_roles_pins_and_splits_sigurg_by_sender() {
    use crate::goruntime::GoRole;
    let m_of = |tid, role, locked_ext, by: Option<&str>| {
        ev(0, NO_CPU, EventKind::GoThread { tid, role, locked_ext, locked_int: 0, locked_g: by.map(ustr::ustr) })
    };
    let urg = |ts, from, to| {
        ev(
            ts,
            0,
            EventKind::Signal {
                sender_tid: from,
                sender_tgid: 100,
                target_tid: to,
                sig: SIGURG,
                code: -6,
                result: 0,
                group: false,
            },
        )
    };
    let mut m = Model::new(0);
    for tid in [100, 101, 102, 103] {
        m.apply(&seen(tid));
    }
    m.apply(&m_of(100, GoRole::Main, 0, None));
    m.apply(&m_of(101, GoRole::Sysmon, 0, None));
    m.apply(&m_of(102, GoRole::Pinned, 1, Some("main.worker")));
    m.apply(&m_of(103, GoRole::Worker, 0, None));
    m.apply(&urg(MS, 101, 103));
    m.apply(&urg(2 * MS, 101, 103));
    m.apply(&urg(3 * MS, 102, 103)); // GC's signal from another thread
    m.apply(&ev(4 * MS, 0, EventKind::GoLock { tid: 103, caller: 0x4000, func: Some(ustr::ustr("main.handle")) }));
    m.apply(&ev(
        5 * MS,
        NO_CPU,
        EventKind::GoThread {
            tid: 103,
            role: GoRole::Pinned,
            locked_ext: 1,
            locked_int: 0,
            locked_g: Some(ustr::ustr("main.handle")),
        },
    ));
    m.tick(S);
    let l = m.live(None);
    let t = thread(&l.totals, 103);
    assert_eq!((t.sigurg_received, t.sigurg_from_sysmon), (3, 2));
    assert_eq!((t.role, t.pinned, t.pinned_by.as_deref()), (Some(GoRole::Pinned), true, Some("main.handle")));
    assert_eq!((t.lock_calls, t.last_lock_caller.as_deref()), (1, Some("main.handle")));
    assert_eq!((l.interval.process.sigurg_from_sysmon, l.interval.process.sigurg), (2, 3));
    assert_eq!(l.interval.process.pinned_threads, 2);
    assert_eq!(row(&l, 101).role, Some(GoRole::Sysmon));
    let log: Vec<String> = l.log.iter().map(|e| e.kind.to_string()).collect();
    assert!(log.contains(&"thread 102 pinned (LockOSThread) by main.worker".to_string()), "{log:?}");
    assert!(log.contains(&"thread 103 pinned (LockOSThread) by main.handle".to_string()), "{log:?}");
    // Unpinned: logged, and no longer counted.
    m.apply(&ev(
        S + MS,
        NO_CPU,
        EventKind::GoThread { tid: 102, role: GoRole::Worker, locked_ext: 0, locked_int: 0, locked_g: None },
    ));
    m.tick(2 * S);
    let l = m.live(None);
    assert_eq!(l.interval.process.pinned_threads, 1);
    assert_eq!(l.log.last().map(|e| e.kind.to_string()), Some("thread 102 unpinned".to_string()));
}

#[test]
fn an_m_read_before_its_thread_is_seen_waits_for_it() {
    use crate::goruntime::GoRole;
    let mut m = Model::new(0);
    m.apply(&seen(100));
    let go = |tid| {
        ev(MS, NO_CPU, EventKind::GoThread { tid, role: GoRole::Pinned, locked_ext: 1, locked_int: 0, locked_g: None })
    };
    // The M list is read ahead of the ring buffer: 200's creation comes after.
    m.apply(&go(200));
    m.apply(&go(300)); // never seen: a thread that came and went
    m.tick(S);
    assert!(m.live(None).threads.iter().all(|t| t.tid == 100), "no phantom rows");
    m.apply(&born(S + MS, 200));
    m.tick(2 * S);
    let l = m.live(None);
    assert_eq!((row(&l, 200).role, row(&l, 200).pinned), (Some(GoRole::Pinned), true));
    assert_eq!(l.threads.len(), 2);
    m.tick(10 * S);
    assert!(m.pending_go.is_empty(), "forgotten after a while");
}

/// A thread pinned when tracing starts has been pinned for an unknown time:
/// long-pinned from the start. One pinned later is long-pinned after 3 s.
#[test]
fn pins_found_at_the_start_are_long_and_later_ones_wait() {
    use crate::goruntime::GoRole;
    let start = 100 * S;
    let go = |ts, tid| {
        ev(ts, NO_CPU, EventKind::GoThread { tid, role: GoRole::Pinned, locked_ext: 1, locked_int: 0, locked_g: None })
    };
    let mut m = Model::new(start);
    for tid in [200, 201] {
        m.apply(&ev(start, NO_CPU, EventKind::ThreadSeen { tid, tgid: 100, comm: Comm::new("w") }));
    }
    m.apply(&go(start, 200));
    m.apply(&go(start + MS, 201));
    m.tick(start + S);
    assert_eq!(m.live(None).interval.process.long_pinned_threads, 1, "200 at once, 201 not yet");
    m.tick(start + 4 * S);
    assert_eq!(m.live(None).interval.process.long_pinned_threads, 2);
}

/// Time a locked goroutine waits for a P, from the sampled Go states.
#[test]
fn waits_for_a_p_are_timed_from_the_sampled_states() {
    use crate::goruntime::GoState;
    let mut m = Model::new(0);
    m.apply(&seen(200));
    let st = |ts, state| ev(ts, NO_CPU, EventKind::GoState { tid: 200, state, goid: 0, func: None });
    m.apply(&st(100 * MS, GoState::LockedRunnable));
    m.apply(&st(400 * MS, GoState::LockedIdle));
    m.apply(&st(800 * MS, GoState::LockedRunnable));
    m.tick(S);
    assert_eq!(m.threads[&200].last.p_wait_ns, 500 * MS, "300 ms, then the open 200 ms up to the tick");
    m.apply(&st(S + 100 * MS, GoState::Running));
    m.tick(2 * S);
    assert_eq!(m.threads[&200].last.p_wait_ns, 100 * MS);
}

/// An exec ends what the old program's Go runtime said; a Go runtime read
/// after the exec (a started command's) stays.
#[test]
fn an_exec_forgets_the_old_programs_go_runtime() {
    let exec = |ts| ev(ts, 0, EventKind::Exec { tid: 100, old_tid: 100, comm: Comm::new("sleep") });
    let go = |ts, value| {
        [
            ev(ts, NO_CPU, EventKind::GoMaxProcs { value }),
            ev(
                ts,
                NO_CPU,
                EventKind::GoThread {
                    tid: 100,
                    role: crate::goruntime::GoRole::Main,
                    locked_ext: 0,
                    locked_int: 0,
                    locked_g: None,
                },
            ),
        ]
    };
    let mut m = Model::new(0);
    m.apply(&ev(0, NO_CPU, EventKind::ThreadSeen { tid: 100, tgid: 100, comm: Comm::new("app") }));
    go(10 * MS, 4).iter().for_each(|e| m.apply(e));
    assert_eq!(m.live(None).gomaxprocs, Some(4));
    m.apply(&exec(20 * MS));
    m.tick(S);
    let live = m.live(None);
    assert_eq!(live.gomaxprocs, None, "the new program is not Go");
    assert!(live.threads.iter().all(|t| t.role.is_none()), "{:?}", live.threads);
    // Read after the exec, applied before its event: kept.
    go(40 * MS, 2).iter().for_each(|e| m.apply(e));
    m.apply(&exec(30 * MS));
    assert_eq!(m.live(None).gomaxprocs, Some(2));
}
