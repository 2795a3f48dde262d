//! Findings on real Go programs written to show one problem each, and none
//! on a healthy one. The pinning programs are built by both toolchains (Go
//! 1.19 and a current Go), whose runtime layouts differ.
use std::path::{Path, PathBuf};

use pintrace_tests::{go_program, go_program_with, Recording, Workload};
use serde_json::Value;

fn go_new() -> PathBuf {
    let go = std::env::var_os("PINTRACE_GO_NEW")
        .map_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/go-1.26/go/bin/go"), PathBuf::from);
    assert!(go.exists(), "{} is missing: `cargo xtask setup` installs the current Go", go.display());
    go
}

/// Records `program ARGS` until it exits and returns the rules of the report's findings.
fn findings_of(program: &str, args: &[&str]) -> (Vec<String>, serde_json::Value) {
    findings_of_bin(&go_program(program), args)
}

/// `findings_of` for a program built by the current Go.
fn findings_of_new(program: &str, args: &[&str]) -> (Vec<String>, serde_json::Value) {
    findings_of_bin(&go_program_with(&go_new(), program, &[]), args)
}

fn finding<'a>(r: &'a Value, rule: &str) -> &'a Value {
    r["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .find(|f| f["rule"] == rule)
        .unwrap_or_else(|| panic!("no {rule} in {}", r["findings"]))
}

fn threads_with_role<'a>(r: &'a Value, role: &str) -> Vec<&'a Value> {
    r["threads"].as_array().expect("threads").iter().filter(|t| t["role"] == role).collect()
}

fn findings_of_bin(bin: &Path, args: &[&str]) -> (Vec<String>, serde_json::Value) {
    findings_of_workload(bin, Workload::spawn(bin, args))
}

fn findings_of_workload(bin: &Path, mut w: Workload) -> (Vec<String>, serde_json::Value) {
    let name = bin.file_name().map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    let rec = Recording::start(w.pid, &format!("findings-{name}-{}", w.pid), &[]);
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

/// Four CPU-bound goroutines on GOMAXPROCS Ps (2 here): two wait for a P
/// at any time, and sysmon preempts the two that run so that they get it.
#[test]
fn busy_goroutines_are_preempted_by_sysmon() {
    let (rules, r) = findings_of("busy", &["4", "5000"]);
    assert!(rules.contains(&"sigurg_preemption".to_string()), "{}", r["findings"]);
    let f =
        r["findings"].as_array().expect("findings").iter().find(|f| f["rule"] == "sigurg_preemption").expect("rule");
    let sysmon = f["evidence"]["sender_tid"].as_f64().expect("sender") as u64;
    assert_eq!(r["sigurg_senders"][0]["tid"], sysmon, "the finding names the sender: {f}");
    // The M list names sysmon, and the split by sender agrees.
    let roles = threads_with_role(&r, "sysmon");
    assert_eq!(roles.len(), 1, "one sysmon: {}", r["threads"]);
    assert_eq!(roles[0]["tid"], sysmon);
    assert!(f["message"].as_str().is_some_and(|m| m.contains("(sysmon) preempts")), "{f}");
    assert!(f["message"].as_str().is_some_and(|m| m.contains("goroutines wait for a P")), "{f}");
    let waiting = f["evidence"]["goroutines_waiting"].as_f64().expect("goroutines_waiting");
    assert!((1.0..=2.5).contains(&waiting), "two of four goroutines wait: {f}");
    let (all, from_sysmon) =
        (r["process"]["sigurg"].as_u64().expect("sigurg"), r["process"]["sigurg_from_sysmon"].as_u64().expect("split"));
    assert!(from_sysmon * 10 >= all * 9, "busy loops are preempted by sysmon: {from_sysmon} of {all}");
    assert_eq!(threads_with_role(&r, "main")[0]["tid"], r["target"]["pid"]);
}

/// As many busy goroutines as Ps: sysmon preempts each every 10-20 ms, but
/// no goroutine waits for the P it frees: nothing to act on.
#[test]
fn busy_goroutines_with_nothing_waiting_are_no_finding() {
    let (rules, r) = findings_of("busy", &["2", "5000"]);
    assert!(rules.is_empty(), "{}", r["findings"]);
    let per_sec =
        r["process"]["sigurg_from_sysmon"].as_f64().expect("sysmon") * 1e9 / r["duration_ns"].as_f64().expect("d");
    assert!(per_sec >= 40.0, "sysmon preempts all the same: {per_sec}/s");
}

/// A closed loop of goroutines handing each other work: they share one
/// time slice through runnext, so sysmon preempts the P now and then (47/s
/// measured), although nothing runs long and nothing waits. Healthy.
#[test]
fn a_closed_loop_pipeline_is_healthy() {
    for (rules, r) in [findings_of("pipeline", &["4", "1", "8000"]), findings_of_new("pipeline", &["4", "16", "8000"])]
    {
        assert!(rules.is_empty(), "{}", r["findings"]);
        assert!(r["go"]["sched"]["samples"].as_u64().is_some_and(|n| n >= 60), "{}", r["go"]["sched"]);
    }
}

/// GOMAXPROCS=1 on 2 CPUs with four CPU-bound goroutines: three wait for
/// the one P while a CPU sits unused (work-stealing find-the-bug 2).
#[test]
fn gomaxprocs_below_the_cpus_with_goroutines_queued() {
    let cpus = pintrace::target::nr_cpus();
    assert!(cpus >= 2, "needs 2 CPUs");
    for (rules, r) in [findings_of("busy", &["4", "6000", "1"]), findings_of_new("busy", &["4", "6000", "1"])] {
        assert!(rules.contains(&"gomaxprocs_below_cpus".to_string()), "{}", r["findings"]);
        let f = finding(&r, "gomaxprocs_below_cpus");
        assert_eq!(f["evidence"]["gomaxprocs"], 1.0, "{f}");
        let waiting = f["evidence"]["goroutines_waiting"].as_f64().expect("waiting");
        assert!((2.5..=3.0).contains(&waiting), "three goroutines wait: {f}");
        assert!(f["first_ns"].as_u64().is_some_and(|t| t <= 10_000_000_000), "within 10 s: {f}");
    }
}

/// Goroutines blocked in raw syscalls and goroutines in blocking cgo calls
/// both grow the threads; the finding says which, from the threads' states.
#[test]
fn thread_growth_names_syscalls_and_cgo_apart() {
    let cases = [
        (findings_of("blocking", &["64", "6000"]), "syscall", "in_syscall", "in blocking system calls"),
        (findings_of_new("blocking", &["64", "6000"]), "syscall", "in_syscall", "in blocking system calls"),
        (findings_of("cgocalls", &["64", "6000"]), "cgo", "in_cgo", "in cgo calls"),
        (
            findings_of_bin(&go_program_with(&go_new(), "cgocalls", &["cgo"]), &["64", "6000"]),
            "cgo",
            "in_cgo",
            "in cgo calls",
        ),
    ];
    for ((rules, r), state, key, says) in cases {
        assert_eq!(rules, ["thread_growth"], "{}", r["findings"]);
        let f = finding(&r, "thread_growth");
        assert!(f["message"].as_str().is_some_and(|m| m.contains("64 of ") && m.contains(says)), "{f}");
        assert_eq!(f["evidence"][key], 64.0, "{f}");
        let n = r["threads"].as_array().expect("threads").iter().filter(|t| t["go_state"] == state).count();
        assert!(n >= 64, "{n} threads {state}: {}", r["threads"]);
        let with_g = r["threads"].as_array().expect("threads").iter().filter(|t| t["go_state"] == state);
        assert!(with_g.clone().all(|t| t["goroutine"]["id"].as_u64().is_some_and(|id| id > 0)), "goroutine ids");
    }
}

/// A pool of 8 locked workers where one gets half the requests, three
/// times as costly (a hot key): the hot one is saturated (it runs about
/// 77 % and waits for a CPU or a P the rest: its queue overflows), the cold
/// ones idle between requests and wake on any free CPU.
#[test]
fn a_pinned_pool_with_a_hot_key_is_starvation_not_migration() {
    let args = ["8", "20000", "9000", "3"];
    for (rules, r) in [findings_of("pool", &args), findings_of_new("pool", &args)] {
        // sysmon's preemption of the hot worker, while the others wait for
        // its P, may be named too; moves are not.
        assert!(rules.contains(&"pinned_starvation".to_string()), "{}", r["findings"]);
        assert!(!rules.contains(&"pinned_migration".to_string()), "{}", r["findings"]);
        let f = finding(&r, "pinned_starvation");
        assert!(f["evidence"]["hot_busy_pct"].as_f64().is_some_and(|b| b >= 90.0), "{f}");
        assert_eq!(f["evidence"]["pinned"], 8.0, "{f}");
    }
}

/// The same pool fed lightly: the hot worker keeps up (it waits for work
/// between requests), so nothing is starved.
#[test]
fn a_pinned_pool_that_keeps_up_is_healthy() {
    let (rules, r) = findings_of("pool", &["8", "8000", "6000"]);
    assert!(rules.is_empty(), "{}", r["findings"]);
}

/// CPU-bound shell loops of another process, one on each CPU (so that the
/// load balancer cannot put the Go program's threads together on one CPU
/// and the loops on the other: then they would wait behind each other, not
/// behind the loops), killed when dropped.
struct Hogs(Vec<std::process::Child>);

impl Hogs {
    fn start(n: usize) -> Hogs {
        Hogs(
            (0..n)
                .map(|cpu| {
                    std::process::Command::new("taskset")
                        .args(["-c", &cpu.to_string(), "sh", "-c", "while :; do :; done"])
                        .spawn()
                        .expect("taskset sh")
                })
                .collect(),
        )
    }

    fn pids(&self) -> Vec<u64> {
        self.0.iter().map(|c| u64::from(c.id())).collect()
    }
}

impl Drop for Hogs {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A busy Go program beside two CPU-bound loops of another process on the
/// same two CPUs loses a large share of its CPU time to them (measured: 45 %):
/// pintrace says who took the CPU. A light service beside the same loops
/// waits behind them a little (CFS favours waking sleepers): no finding.
#[test]
fn another_process_taking_the_cpus_is_a_noisy_neighbor() {
    let hogs = Hogs::start(pintrace::target::nr_cpus() as usize);
    let (rules, r) = findings_of("busy", &["2", "6000"]);
    assert!(rules.contains(&"noisy_neighbor".to_string()), "{}", r["findings"]);
    let f = finding(&r, "noisy_neighbor");
    assert_eq!(f["evidence"]["top_other_comm"], "sh", "{f}");
    let top = f["evidence"]["top_other_pid"].as_f64().expect("pid") as u64;
    assert!(hogs.pids().contains(&top), "{top} is one of the loops {:?}", hogs.pids());
    assert!(f["evidence"]["other_processes_pct"].as_f64().is_some_and(|p| p >= 20.0), "{f}");
    let by = &r["process"]["wait_by_cause_ns"];
    assert!(by["other_processes"].as_u64() > by["own_threads"].as_u64(), "{by}");
    assert!(r["process"]["cpu_pressure_pct"].as_f64().is_some_and(|p| p >= 30.0), "{}", r["process"]);
    let others: Vec<u64> = r["other_processes"]
        .as_array()
        .expect("other_processes")
        .iter()
        .map(|o| o["pid"].as_u64().unwrap_or(0))
        .collect();
    assert!(hogs.pids().iter().all(|p| others.contains(p)), "{others:?} has both loops {:?}", hogs.pids());

    let (rules, r) = findings_of("healthy", &["5000"]);
    assert!(!rules.contains(&"noisy_neighbor".to_string()), "{}", r["findings"]);
    assert!(
        r["process"]["wait_by_cause_ns"]["other_processes"].as_u64().is_some_and(|w| w > 0),
        "it did wait behind them"
    );
    drop(hogs);
}

#[test]
fn more_runnable_threads_than_cpus_is_runq_latency() {
    let cpus = pintrace::target::nr_cpus();
    let procs = (cpus * 3).to_string();
    let (rules, r) = findings_of("busy", &[&procs, "6000", &procs]);
    assert!(rules.contains(&"runq_latency".to_string()), "{}", r["findings"]);
    let f = finding(&r, "runq_latency");
    assert!(f["evidence"]["runq_p99_ns"].as_f64().is_some_and(|p| p > 5e6), "{f}");
    assert_eq!(f["evidence"]["cpus_usable"], f64::from(cpus), "no quota: the CPUs allowed: {f}");
    assert!(f["first_ns"].as_u64().is_some_and(|t| t <= 10_000_000_000), "fires within 10 s: {f}");
    // GOMAXPROCS above the CPUs allowed is the cause, and is named.
    let over = finding(&r, "gomaxprocs_over_quota");
    assert_eq!(over["evidence"]["gomaxprocs"], f64::from(cpus * 3), "{over}");
}

/// Pinned workers, one saturated and the others woken for trickles.
fn check_starvation(rules: &[String], r: &Value) {
    assert!(rules.contains(&"pinned_starvation".to_string()), "{}", r["findings"]);
    let f = finding(r, "pinned_starvation");
    assert_eq!(f["evidence"]["pinned"], 4.0, "{f}");
    assert!(f["evidence"]["hot_cpu_pct"].as_f64().is_some_and(|p| p >= 80.0), "{f}");
    assert!(f["first_ns"].as_u64().is_some_and(|t| t <= 10_000_000_000), "fires within 10 s: {f}");
    // A worker may run on the main thread (role "main"): count by `pinned`.
    let pinned: Vec<&Value> =
        r["threads"].as_array().expect("threads").iter().filter(|t| t["pinned"] == true).collect();
    assert_eq!(pinned.len(), 4, "exactly the 4 locked workers are pinned: {}", r["threads"]);
    assert!(pinned.iter().all(|t| t["pinned"] == true && t["pinned_by"] == "main.worker"), "{pinned:?}");
    assert!(!rules.contains(&"pinned_migration".to_string()), "{}", r["findings"]);
}

#[test]
fn an_unevenly_fed_pinned_pool_is_pinned_starvation() {
    let (rules, r) = findings_of("starve", &["4", "10000"]);
    check_starvation(&rules, &r);
}

#[test]
fn an_unevenly_fed_pinned_pool_is_pinned_starvation_with_the_current_go() {
    let (rules, r) = findings_of_new("starve", &["4", "10000"]);
    check_starvation(&rules, &r);
}

/// The same pool in its own PID namespace, as in a container: the runtime
/// stores the namespace's thread IDs, which pintrace maps to its own.
#[test]
fn an_unevenly_fed_pinned_pool_in_a_pid_namespace_is_pinned_starvation() {
    for bin in [go_program("starve"), go_program_with(&go_new(), "starve", &["-buildmode=pie"])] {
        let w = Workload::spawn_in_pid_namespace(&bin, &["4", "10000"]);
        let pid = w.pid;
        let (rules, r) = findings_of_workload(&bin, w);
        check_starvation(&rules, &r);
        assert_eq!(r["target"]["pid"], pid, "{}", r["target"]);
        assert_eq!(r["target"]["ns_pid"], 1, "its PID in its namespace: {}", r["target"]);
        assert_eq!(threads_with_role(&r, "sysmon").len(), 1, "{}", r["threads"]);
        assert_eq!(threads_with_role(&r, "main")[0]["tid"], pid, "{}", r["threads"]);
    }
}

/// One busy pinned worker moved every 100 ms (one worker, so that the
/// manager goroutine has a P of its own: with two busy locked workers on
/// two CPUs, the runtime parks a worker's thread whenever the manager takes
/// its P, and half the moves land while it is parked).
fn check_migration(rules: &[String], r: &Value) {
    assert!(rules.contains(&"pinned_migration".to_string()), "{}", r["findings"]);
    let f = finding(r, "pinned_migration");
    assert_eq!(f["evidence"]["pinned"], 1.0, "{f}");
    // The worker is moved 10 times a second, each time while it runs.
    let rate = f["evidence"]["pinned_migrations_per_sec"].as_f64().expect("rate");
    assert!((7.0..=13.0).contains(&rate), "about 10 moves a second: {f}");
    let pinned: Vec<&Value> =
        r["threads"].as_array().expect("threads").iter().filter(|t| t["pinned"] == true).collect();
    assert_eq!(pinned.len(), 1, "{pinned:?}");
    let moved: u64 = pinned.iter().map(|t| t["migrations"].as_u64().expect("migrations")).sum();
    assert!(moved >= 50, "pinned threads' migrations: {moved}");
}

/// The same workers moving themselves, sleeping between moves: the kernel
/// moves each as it wakes (it blocks in sched_setaffinity while the
/// stopper works), which costs what any wake-up elsewhere costs. They
/// migrate as often, and it is no finding.
#[test]
fn pinned_threads_that_move_as_they_wake_are_not_pinned_migration() {
    let (rules, r) = findings_of("migrate", &["2", "8000", "self"]);
    assert!(!rules.contains(&"pinned_migration".to_string()), "{}", r["findings"]);
    // Its main thread keeps to CPU 0: not the process's limit.
    assert!(!rules.contains(&"gomaxprocs_over_quota".to_string()), "{}", r["findings"]);
    assert_eq!(r["cgroup"]["cpus_allowed"], pintrace::target::nr_cpus(), "{}", r["cgroup"]);
    // The two workers and the main thread are pinned; the workers move.
    let pinned: Vec<&Value> =
        r["threads"].as_array().expect("threads").iter().filter(|t| t["pinned"] == true).collect();
    assert_eq!(pinned.len(), 3, "{pinned:?}");
    let moved: u64 = pinned.iter().map(|t| t["migrations"].as_u64().expect("migrations")).sum();
    assert!(moved >= 100, "they migrate all the same: {moved}");
}

#[test]
fn pinned_threads_moved_between_cpus_are_pinned_migration() {
    let (rules, r) = findings_of("migrate", &["1", "8000"]);
    check_migration(&rules, &r);
}

#[test]
fn pinned_threads_moved_between_cpus_are_pinned_migration_with_the_current_go() {
    let (rules, r) = findings_of_new("migrate", &["1", "8000"]);
    check_migration(&rules, &r);
}

fn check_per_request(rules: &[String], r: &Value) {
    assert!(rules.contains(&"thread_growth".to_string()), "{}", r["findings"]);
    let f = finding(r, "thread_growth");
    let locks = f["evidence"]["lock_calls_per_sec"].as_f64().expect("lock rate");
    assert!((150.0..=250.0).contains(&locks), "200 requests a second, each locked: {f}");
    assert!(f["message"].as_str().is_some_and(|m| m.contains("a lock per request")), "{f}");
    // The uprobe saw every LockOSThread call (1,600 in 8 s), made by main.handle.
    let calls = r["process"]["lock_calls"].as_u64().expect("lock calls");
    assert!((1599..=1600).contains(&calls), "every LockOSThread call is seen: {calls}");
    let callers: Vec<&Value> =
        r["threads"].as_array().expect("threads").iter().filter(|t| t["lock_calls"].as_u64() > Some(0)).collect();
    assert!(!callers.is_empty() && callers.iter().all(|t| t["last_lock_caller"] == "main.handle"), "{callers:?}");
}

#[test]
fn locking_per_request_is_thread_growth() {
    let (rules, r) = findings_of("perrequest", &["200", "8000"]);
    check_per_request(&rules, &r);
}

#[test]
fn locking_per_request_is_thread_growth_with_the_current_go() {
    let (rules, r) = findings_of_new("perrequest", &["200", "8000"]);
    check_per_request(&rules, &r);
}
