//! Migrations and switches agree with the kernel's own per-thread counters.
use pintrace::{
    model::Model,
    record::{Chunk, Reader},
};
use pintrace_tests::{kernel_sched, monotonic_ns, workload, Recording};

const K: u64 = 40;

#[test]
fn migrations_and_switches_match_proc_sched_over_the_same_window() {
    let mut w = workload!("affinity", "40");
    let worker: u32 = w.ready[0].parse().expect("worker tid");
    let rec = Recording::start(w.pid, "affinity", &[]);
    // The worker is blocked now, so nothing happens to it between these two reads.
    let before = kernel_sched(w.pid, worker);
    let t0 = monotonic_ns();
    w.send("go");
    assert_eq!(w.read_line(), "done");
    // Blocked again: its counters are still until we let it exit.
    let t1 = monotonic_ns();
    let after = kernel_sched(w.pid, worker);
    w.send("exit");
    assert!(w.wait().success());
    let finished = rec.finish();
    finished.report(); // a clean recording with no lost events

    // pintrace's counts for exactly [t0, t1].
    let mut reader = Reader::open(&finished.path).expect("record file");
    let mut model = Model::new(t0);
    while let Some(chunk) = reader.next_chunk().expect("readable") {
        if let Chunk::Events(events) = chunk {
            for e in events.iter().filter(|e| e.ts_ns >= t0 && e.ts_ns <= t1) {
                model.apply(e);
            }
        }
    }
    let snap = model.snapshot(t1);
    let t = snap.threads.iter().find(|t| t.tid == worker).expect("worker in the window");
    let kernel = (after.0 - before.0, after.1 - before.1, after.2 - before.2);
    let ours = (t.migrations, t.voluntary_switches, t.involuntary_switches);
    assert_eq!(ours, kernel, "(migrations, voluntary, involuntary) of {worker}: pintrace vs /proc/PID/task/TID/sched");
    assert!(t.migrations >= K, "{} migrations for {K} affinity changes", t.migrations);
    assert_eq!(t.cpus, vec![0, 1]);
}
