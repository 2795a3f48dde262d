//! Thread creation and exit churn, counted exactly.
use pintrace_tests::{thread, u64_of, workload, Recording};

const N: u64 = 50;

fn record_threads(extra: &[&str]) -> (serde_json::Value, Vec<u32>) {
    let mut w = workload!("threads", "50");
    let rec = Recording::start(w.pid, &format!("threads{}", extra.len()), extra);
    w.send("go");
    let line = w.read_line();
    let tids: Vec<u32> =
        line.strip_prefix("tids ").expect("tids line").split(' ').map(|t| t.parse().expect("tid")).collect();
    assert!(w.wait().success());
    let report = rec.finish().report();
    (report, tids)
}

#[test]
fn exactly_n_creations_and_n_exits() {
    let (r, tids) = record_threads(&[]);
    assert_eq!(tids.len() as u64, N);
    let p = &r["process"];
    assert_eq!(r["end_reason"], "target exited");
    assert_eq!(p["threads_at_start"], 1, "only the main thread existed at start");
    assert_eq!(u64_of(&p["threads_created"]), N);
    assert_eq!(u64_of(&p["threads_exited"]), N);
    assert_eq!(u64_of(&p["thread_lifetime_ns"]["count"]), N);
    assert!(u64_of(&p["thread_lifetime_ns"]["p50"]) >= 2_000_000, "each thread sleeps 2 ms");
    assert_eq!(p["child_processes"], 0);
    for tid in tids {
        let t = thread(&r, tid);
        assert!(t["born_ns"].is_u64() && t["died_ns"].is_u64(), "thread {tid} was born and died in the window: {t}");
        assert!(u64_of(&t["died_ns"]) > u64_of(&t["born_ns"]));
    }
}

#[test]
fn syscall_probes_add_clone_calls_without_changing_counts() {
    let (r, _) = record_threads(&["--syscalls"]);
    let p = &r["process"];
    assert_eq!(u64_of(&p["threads_created"]), N);
    assert_eq!(u64_of(&p["clone_calls"]), N, "one clone3 per thread, seen in the parent");
    let probes = r["probes"].as_array().expect("probes");
    let statuses: Vec<String> = probes
        .iter()
        .filter(|p| !p["name"].as_str().is_some_and(|n| n.starts_with("btf:")))
        .map(|p| p["status"].to_string())
        .collect();
    assert_eq!(statuses.len(), 12, "{probes:?}");
    assert!(statuses.iter().all(|s| s.contains("attached") || s.contains("not needed")), "{statuses:?}");
    // The path under test (the fallback when PINTRACE_CLASSIC=1) is the one used.
    for name in ["sched:sched_switch", "sched:sched_migrate_task"] {
        let p = probes.iter().find(|p| p["name"] == name).expect(name);
        assert_eq!(p["status"], pintrace_tests::sched_probe_status(), "{name}");
    }
    // The wake-ups tell when waits begin only where sched_switch cannot read them.
    let waits = probes.iter().find(|p| p["name"] == "btf:task_struct.sched_info").expect("the wait fields");
    for name in ["sched:sched_wakeup", "sched:sched_wakeup_new"] {
        let p = probes.iter().find(|p| p["name"] == name).expect(name);
        if pintrace_tests::classic() {
            assert_eq!(p["status"], pintrace_tests::sched_probe_status(), "{name}");
            assert_eq!(waits["status"], "not read: --classic-tracepoints given", "{waits}");
        } else {
            assert!(p["status"].as_str().is_some_and(|s| s.starts_with("not needed: ")), "{name}: {p}");
            assert_eq!(waits["status"], "read by sched_switch", "{waits}");
        }
    }
    let flag = probes.iter().find(|p| p["name"] == "btf:task_struct.throttled").expect("the throttle flag");
    assert!(flag["status"].as_str().is_some_and(|s| s.starts_with("read at offset ")), "{flag}");
}
