//! `pintrace top --batch --json` and `top|record -- CMD` against real workloads.
use pintrace_tests::{report_json, scratch, u64_of, workload, Recording};

fn lines(stdout: &str) -> Vec<serde_json::Value> {
    stdout.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"))).collect()
}

#[test]
fn batch_json_gives_the_creation_rate_of_each_interval() {
    const RATE: u64 = 50;
    const SECS: u64 = 5;
    let mut w = workload!("churn", &RATE.to_string(), &SECS.to_string());
    let pid = w.pid.to_string();
    let top = Recording::start_args(&["top", "--pid", &pid, "--batch", "--json", "--interval", "1s"]);
    w.send("go");
    assert_eq!(w.read_line(), format!("created {}", RATE * SECS));
    assert!(w.wait().success());
    let done = top.finish();
    assert!(done.status.success(), "top failed:\n{}", done.stderr);
    let intervals = lines(&done.stdout);
    assert!(intervals.len() >= SECS as usize, "{} intervals:\n{}", intervals.len(), done.stdout);
    let created: u64 = intervals.iter().map(|i| u64_of(&i["process"]["threads_created"])).sum();
    let exited: u64 = intervals.iter().map(|i| u64_of(&i["process"]["threads_exited"])).sum();
    assert_eq!(created, RATE * SECS, "every creation is in exactly one interval");
    assert_eq!(exited, RATE * SECS);
    // Whole seconds of churn: the rate per interval is the workload's (±3
    // for the phase between its clock and pintrace's).
    let full: Vec<f64> = intervals
        .iter()
        .filter(|i| u64_of(&i["interval_ns"]) >= 990_000_000 && u64_of(&i["process"]["threads_created"]) > 0)
        .map(|i| i["process"]["threads_created_per_sec"].as_f64().expect("a rate"))
        .collect();
    assert!(full.len() >= SECS as usize - 2, "whole intervals with churn: {full:?}");
    let inner = &full[1..full.len() - 1];
    assert!(!inner.is_empty() && inner.iter().all(|r| (r - RATE as f64).abs() <= 3.0), "{full:?}");
    for i in &intervals {
        assert_eq!(i["target"]["pid"], w_pid(&pid));
        assert_eq!(u64_of(&i["process"]["lost_events"]), 0);
        assert!(i["threads"].is_array() && i["process"]["cpus_used"].is_f64(), "{i}");
    }
}

fn w_pid(pid: &str) -> u64 {
    pid.parse().expect("pid")
}

#[test]
fn a_started_command_is_traced_from_its_first_instruction_and_followed_through_exec() {
    const N: u64 = 40;
    let bin = env!("CARGO_BIN_EXE_spawn_threads");
    let top = Recording::start_args(&["top", "--batch", "--json", "--interval", "500ms", "--", bin, &N.to_string()]);
    let done = top.finish();
    assert!(done.status.success(), "top -- CMD failed:\n{}", done.stderr);
    let intervals = lines(&done.stdout);
    assert!(!intervals.is_empty(), "no output:\n{}", done.stderr);
    let created: u64 = intervals.iter().map(|i| u64_of(&i["process"]["threads_created"])).sum();
    assert_eq!(created, N, "every thread the command created:\n{}", done.stdout);
    let first = &intervals[0];
    assert_eq!(first["process"]["threads_at_start"], 1, "only the forked child existed at the start");
    let last = intervals.last().expect("an interval");
    assert_eq!(last["target"]["comm"], "spawn_threads", "the exec'd program, not the launcher");
    assert!(last["target"]["cmdline"].as_str().is_some_and(|c| c.contains("spawn_threads")), "{last}");
}

#[test]
fn record_runs_a_command_as_another_user() {
    let uid_file = scratch("uid");
    let dir = uid_file.parent().expect("dir").to_path_buf();
    // The user must be able to write the UID file.
    std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o777)).expect("chmod");
    let out = scratch("user.ptr");
    let bin = env!("CARGO_BIN_EXE_spawn_threads");
    let rec = Recording::start_args(&[
        "record",
        "-o",
        out.to_str().expect("path"),
        "--user",
        "nobody",
        "--",
        bin,
        "5",
        uid_file.to_str().expect("path"),
    ]);
    let done = rec.finish();
    assert!(done.status.success(), "{}", done.stderr);
    assert_eq!(std::fs::read_to_string(&uid_file).expect("the command wrote its UID"), "65534");
    let (code, r, stderr) = report_json(&out);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(u64_of(&r["process"]["threads_created"]), 5);
    assert_eq!(r["target"]["comm"], "spawn_threads");
}

#[test]
fn a_command_that_cannot_run_is_a_clear_error() {
    let out = std::process::Command::new(pintrace_tests::pintrace_bin())
        .args(["top", "--batch", "--", "/nonexistent/program"])
        .output()
        .expect("running pintrace");
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("cannot run /nonexistent/program: No such file or directory"), "{err}");
}

fn toolchains() -> Vec<std::path::PathBuf> {
    let old =
        std::env::var_os("PINTRACE_GO").map_or_else(|| "/usr/lib/go-1.19/bin/go".into(), std::path::PathBuf::from);
    let new = std::env::var_os("PINTRACE_GO_NEW")
        .map(std::path::PathBuf::from)
        .expect("PINTRACE_GO_NEW (cargo xtask test sets it)");
    vec![old, new]
}

#[test]
fn gomaxprocs_is_followed_while_tracing_with_both_go_toolchains() {
    for go in toolchains() {
        let mut w = pintrace_tests::Workload::spawn(&pintrace_tests::go_program_with(&go, "maxprocs", &[]), &[]);
        let start: u64 = w.ready[0].parse().expect("GOMAXPROCS at start");
        let pid = w.pid.to_string();
        let top = Recording::start_args(&["top", "--pid", &pid, "--batch", "--json", "--interval", "200ms"]);
        std::thread::sleep(std::time::Duration::from_millis(500));
        for n in [3, 1, 2] {
            w.send(&n.to_string());
            assert_eq!(w.read_line(), format!("set {n}"));
            std::thread::sleep(std::time::Duration::from_millis(500));
        }
        assert!(w.wait().success());
        let done = top.finish();
        assert!(done.status.success(), "{}", done.stderr);
        let intervals = lines(&done.stdout);
        let mut seen: Vec<u64> = intervals.iter().map(|i| u64_of(&i["go"]["gomaxprocs"])).collect();
        seen.dedup();
        assert_eq!(seen, [start, 3, 1, 2], "GOMAXPROCS per interval with {}", go.display());
        let version = intervals[0]["go"]["version"].as_str().expect("version").to_string();
        assert!(version.starts_with("go1."), "{version}");
        assert_eq!(intervals[0]["go"]["module"], "pintrace.test/maxprocs");
    }
}
