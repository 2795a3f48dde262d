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

/// Run-queue latency after wake-ups: each sleeper's waits for a CPU
/// another thread keeps busy, counted and summed, against the kernel's own
/// count of its runs and total wait (`schedstat`), which the workload reads
/// as its threads end. With the wake-up tracepoints (the classic path) a
/// wait is timed from the wake-up event, not read from the kernel: then the
/// sums differ by a few microseconds per wait.
#[test]
fn waits_after_wake_ups_add_up_to_the_kernel_s_run_delay() {
    wake_waits(&[]);
}

/// The same with the wake-up programs attached (`--wakeup-probes`; on the
/// default path, as BTF tracepoints), timing each wait from its wake-up.
#[test]
fn waits_timed_from_wake_up_events_add_up_too() {
    let r = wake_waits(&["--wakeup-probes"]);
    let probes = r["probes"].as_array().expect("probes");
    for name in ["sched:sched_wakeup", "sched:sched_wakeup_new"] {
        let p = probes.iter().find(|p| p["name"] == name).expect(name);
        assert_eq!(p["status"], pintrace_tests::sched_probe_status(), "{name}");
    }
}

fn wake_waits(extra: &[&str]) -> serde_json::Value {
    let from_events = pintrace_tests::classic() || !extra.is_empty();
    let mut w = workload!("wake_wait", "1500", "4");
    let rec = Recording::start(w.pid, "wake_wait", extra);
    w.send("go");
    let lines: Vec<String> = (0..5).map(|_| w.read_line()).collect();
    assert!(w.wait().success());
    let r = rec.finish().report();
    // The first line is the spinner's (its waits follow preemptions: spin_pair's test).
    for line in &lines[1..] {
        let f: Vec<u64> = line.split(' ').map(|v| v.parse().expect("a number")).collect();
        let (tid, run_delay, slices) = (f[0] as u32, f[1], f[2]);
        let runq = &thread(&r, tid)["runq_latency_ns"];
        let (count, mean) = (u64_of(&runq["count"]), u64_of(&runq["mean"]));
        // count * mean is the sum within `count` ns (the mean is rounded down).
        let sum = count * mean;
        eprintln!("sleeper {tid}: pintrace {count} waits, {sum} ns; kernel {slices} runs, {run_delay} ns queued");
        assert!(slices > 500 && run_delay > 5_000_000, "sleeper {tid} woke often and waited for CPU 0: {line}");
        assert!(count.abs_diff(slices) <= slices / 50 + 2, "sleeper {tid}: {count} waits, {slices} runs: {runq}");
        let per_wait = if from_events { 5_000 } else { 100 };
        // A wait after the thread read schedstat (on its way out) is pintrace's alone.
        let after_read = count.saturating_sub(slices) * u64_of(&runq["max"]);
        assert!(
            sum.abs_diff(run_delay) <= run_delay / 100 + count * per_wait + after_read,
            "sleeper {tid}: pintrace {sum} ns, kernel {run_delay} ns: {runq}"
        );
    }
    r
}
