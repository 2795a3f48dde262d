//! Findings on real Go programs written to show one problem each, and none
//! on a healthy one.
use pintrace_tests::{go_program, Recording, Workload};

/// Records `program ARGS` until it exits and returns the rules of the report's findings.
fn findings_of(program: &str, args: &[&str]) -> (Vec<String>, serde_json::Value) {
    let mut w = Workload::spawn(&go_program(program), args);
    let rec = Recording::start(w.pid, &format!("findings-{program}"), &[]);
    w.send("go");
    assert!(w.read_line().starts_with("done"));
    assert!(w.wait().success());
    let r = rec.finish().report();
    let rules = r["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .map(|f| f["rule"].as_str().expect("rule").to_string())
        .collect();
    (rules, r)
}

#[test]
fn a_healthy_go_service_has_no_findings() {
    let (rules, r) = findings_of("healthy", &["5000"]);
    assert!(rules.is_empty(), "{}", r["findings"]);
    assert!(r["process"]["sigurg"].as_u64().is_some(), "GC may send SIGURG: {}", r["process"]["sigurg"]);
}

#[test]
fn goroutines_exiting_while_locked_are_thread_churn() {
    let (rules, r) = findings_of("lockexit", &["5000"]);
    assert_eq!(rules, ["thread_churn"], "{}", r["findings"]);
    let f = &r["findings"][0];
    assert!(f["evidence"]["threads_created_per_sec"].as_f64().is_some_and(|x| x > 20.0), "{f}");
    assert!(f["message"].as_str().is_some_and(|m| m.contains("exit while locked")), "{f}");
    assert!(f["first_ns"].as_u64().is_some_and(|t| t <= 5_000_000_000), "fires within 5 s: {f}");
}

#[test]
fn busy_goroutines_are_preempted_by_sysmon() {
    let (rules, r) = findings_of("busy", &["2", "5000"]);
    assert!(rules.contains(&"sigurg_preemption".to_string()), "{}", r["findings"]);
    let f =
        r["findings"].as_array().expect("findings").iter().find(|f| f["rule"] == "sigurg_preemption").expect("rule");
    let sysmon = f["evidence"]["sender_tid"].as_f64().expect("sender") as u64;
    assert_eq!(r["sigurg_senders"][0]["tid"], sysmon, "the finding names the sender: {f}");
}
