//! Preemption signals: exactly the SIGURGs a workload sends, with sender and receivers.
use pintrace_tests::{thread, u64_of, workload, Recording};

fn record_sigurg(extra: &[&str]) -> (serde_json::Value, u32, Vec<u32>) {
    let mut w = workload!("sigurg", "300", "3");
    let rec = Recording::start(w.pid, &format!("sigurg{}", extra.len()), extra);
    w.send("go");
    let line = w.read_line();
    assert!(w.wait().success());
    let (sender, workers) = line.strip_prefix("sender ").and_then(|l| l.split_once(" workers ")).expect("result line");
    let workers = workers.split(' ').map(|t| t.parse().expect("tid")).collect();
    (rec.finish().report(), sender.parse().expect("sender tid"), workers)
}

#[test]
fn exactly_m_sigurg_with_sender_and_receivers() {
    let (r, sender, workers) = record_sigurg(&[]);
    assert_eq!(u64_of(&r["process"]["sigurg"]), 300);
    assert_eq!(u64_of(&r["process"]["signals"]), 0, "no other signals were sent");
    assert_eq!(u64_of(&thread(&r, sender)["sigurg_sent"]), 300);
    assert_eq!(u64_of(&thread(&r, sender)["sigurg_received"]), 0);
    for tid in workers {
        assert_eq!(u64_of(&thread(&r, tid)["sigurg_received"]), 100, "worker {tid}");
        assert_eq!(u64_of(&thread(&r, tid)["sigurg_sent"]), 0);
    }
    let senders = r["sigurg_senders"].as_array().expect("senders");
    assert_eq!(senders.len(), 1);
    assert_eq!(senders[0]["tid"], sender);
}

#[test]
fn syscall_probes_count_the_tgkill_calls_too() {
    let (r, _, _) = record_sigurg(&["--syscalls"]);
    assert_eq!(u64_of(&r["process"]["sigurg"]), 300);
    assert_eq!(u64_of(&r["process"]["tgkill_calls"]), 300);
}
