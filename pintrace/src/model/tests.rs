//! The model against hand-built event sequences.
use super::*;
use crate::event::NO_CPU;

const MS: u64 = 1_000_000;

fn ev(ts_ns: u64, cpu: u32, kind: EventKind) -> Event {
    Event { ts_ns, cpu, kind }
}

fn seen(tid: u32) -> Event {
    ev(0, NO_CPU, EventKind::ThreadSeen { tid, tgid: 100, comm: Comm::new("app") })
}

fn switch(ts: u64, cpu: u32, prev_tid: u32, next_tid: u32, prev_state: u32) -> Event {
    ev(ts, cpu, EventKind::Switch { prev_tid, next_tid, prev_state })
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
