//! A real Go program: sysmon preempts busy goroutines with SIGURG.
use pintrace_tests::{go_program, u64_of, Recording, Workload};

#[test]
fn sysmon_sends_sigurg_to_busy_threads_every_10_to_20ms_of_running() {
    let mut w = Workload::spawn(&go_program("busy"), &["2", "3000"]);
    let pid = u64::from(w.pid);
    let rec = Recording::start(w.pid, "go-busy", &[]);
    w.send("go");
    assert_eq!(w.read_line(), "done");
    assert!(w.wait().success());
    let r = rec.finish().report();
    let threads = r["threads"].as_array().expect("threads");

    // One sender: sysmon, the first thread the runtime creates after main.
    let senders = r["sigurg_senders"].as_array().expect("senders");
    assert_eq!(senders.len(), 1, "one SIGURG sender: {senders:?}");
    let sender = u64_of(&senders[0]["tid"]);
    let first_after_main = threads
        .iter()
        .filter(|t| t["born_ns"].is_null())
        .map(|t| u64_of(&t["tid"]))
        .filter(|&tid| tid > pid)
        .min()
        .expect("runtime threads");
    assert_eq!(sender, first_after_main, "the sender is sysmon");

    // Every busy thread is preempted 40–110 times per second of running
    // (a check every 10 ms at most: preempted after 10–20 ms).
    let busy: Vec<_> = threads.iter().filter(|t| u64_of(&t["on_cpu_ns"]) > 500_000_000).collect();
    assert!(!busy.is_empty());
    let mut busy_sigurg = 0;
    for t in &busy {
        let secs = u64_of(&t["on_cpu_ns"]) as f64 / 1e9;
        let got = u64_of(&t["sigurg_received"]);
        busy_sigurg += got;
        let rate = got as f64 / secs;
        assert!(
            (40.0..=110.0).contains(&rate),
            "thread {} got {got} SIGURG in {secs:.2} s on CPU: {rate:.1}/s",
            t["tid"]
        );
    }
    let total = u64_of(&r["process"]["sigurg"]);
    assert!(busy_sigurg as f64 >= 0.95 * total as f64, "{busy_sigurg} of {total} SIGURG went to busy threads");
    let sender_cpu = threads.iter().find(|t| u64_of(&t["tid"]) == sender).map(|t| u64_of(&t["on_cpu_ns"]));
    assert!(sender_cpu.is_some_and(|ns| ns < 200_000_000), "sysmon is not busy: {sender_cpu:?}");
}
