//! Run-queue latency and on-CPU time of two threads forced onto one CPU.
use pintrace_tests::{thread, u64_of, workload, Recording};

const SPIN_MS: u64 = 1500;

#[test]
fn two_spinners_on_one_cpu_wait_milliseconds_and_share_it() {
    let mut w = workload!("spin_pair", "1500");
    let rec = Recording::start(w.pid, "spin_pair", &[]);
    w.send("go");
    let line = w.read_line();
    assert!(w.wait().success());
    let r = rec.finish().report();
    let tids: Vec<u32> =
        line.strip_prefix("tids ").expect("tids").split(' ').map(|t| t.parse().expect("tid")).collect();
    let mut total_cpu = 0;
    for tid in tids {
        let t = thread(&r, tid);
        let runq = &t["runq_latency_ns"];
        assert!(u64_of(&t["involuntary_switches"]) >= 50, "thread {tid} was preempted: {t}");
        assert!(u64_of(&runq["p50"]) >= 1_000_000, "thread {tid} waits milliseconds for CPU 0: {runq}");
        assert!(u64_of(&runq["max"]) < 200_000_000, "but not forever: {runq}");
        assert_eq!(t["migrations"], 0, "born pinned to CPU 0: {t}");
        assert_eq!(t["cpus"], serde_json::json!([0]), "{t}");
        let on_cpu = u64_of(&t["on_cpu_ns"]);
        total_cpu += on_cpu;
        // Each gets about half of CPU 0 while both spin.
        assert!(on_cpu > SPIN_MS * 1_000_000 * 35 / 100, "thread {tid} on CPU {on_cpu} ns");
    }
    // Together they had one CPU for SPIN_MS (plus start-up).
    let one_cpu = SPIN_MS * 1_000_000;
    assert!(
        total_cpu > one_cpu * 85 / 100 && total_cpu < one_cpu * 115 / 100,
        "{total_cpu} ns on CPU 0 in {SPIN_MS} ms"
    );
}
