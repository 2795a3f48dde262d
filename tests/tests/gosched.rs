//! The Go scheduler as pintrace reads it from outside, against what the
//! runtime itself prints with `GODEBUG=schedtrace`: the same program (a
//! known queue: GOMAXPROCS=1 and four CPU-bound goroutines, so three wait
//! for the one P) started with schedtrace on and traced by pintrace. Both
//! Go versions, whose scheduler structs differ (`runqsize` and `gFree.n` in
//! 1.19, `runq.size` and `gFree.stack.size` in 1.26).
use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use pintrace_tests::{go_program, go_program_with, scratch, Recording, Workload};

fn go_new() -> PathBuf {
    let go = std::env::var_os("PINTRACE_GO_NEW")
        .map_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/go-1.26/go/bin/go"), PathBuf::from);
    assert!(go.exists(), "{} is missing: `cargo xtask setup` installs the current Go", go.display());
    go
}

/// One `SCHED` line: (gomaxprocs, idleprocs, threads, runqueue, [local queues]).
fn parse_schedtrace(line: &str) -> Option<(u32, u32, u32, u32, Vec<u32>)> {
    let rest = line.strip_prefix("SCHED ")?;
    let field = |key: &str| -> Option<u32> {
        let at = rest.find(&format!(" {key}="))? + key.len() + 2;
        rest[at..].split(|c: char| !c.is_ascii_digit()).next()?.parse().ok()
    };
    let (open, close) = (rest.find('[')?, rest.find(']')?);
    let locals = rest[open + 1..close].split_whitespace().filter_map(|v| v.parse().ok()).collect();
    Some((field("gomaxprocs")?, field("idleprocs")?, field("threads")?, field("runqueue")?, locals))
}

fn agrees_with_schedtrace(bin: &Path) {
    let log = scratch(&format!(
        "schedtrace-{}.log",
        bin.file_name().map_or_else(String::new, |n| n.to_string_lossy().into())
    ));
    let mut cmd = Command::new(bin);
    cmd.args(["4", "6000", "1"]).env("GODEBUG", "schedtrace=100");
    cmd.stderr(Stdio::from(std::fs::File::create(&log).expect("schedtrace log")));
    let mut w = Workload::spawn_command(cmd);
    let rec = Recording::start(w.pid, &format!("gosched-{}", w.pid), &[]);
    w.send("go");
    assert_eq!(w.read_line(), "done");
    assert!(w.wait().success());
    let r = rec.finish().report();

    // The runtime's own view, every 100 ms: once the four goroutines run,
    // three wait (global plus local queues; the one in runnext is not printed).
    let text = std::fs::read_to_string(&log).expect("schedtrace output");
    let lines: Vec<_> = text.lines().filter_map(parse_schedtrace).filter(|l| l.0 == 1 && l.1 == 0).collect();
    assert!(lines.len() >= 40, "schedtrace printed {} busy lines:\n{text}", lines.len());
    let theirs: Vec<u32> = lines.iter().map(|l| l.3 + l.4.iter().sum::<u32>()).collect();
    let three = theirs.iter().filter(|&&q| q == 3).count();
    assert!(three * 10 >= theirs.len() * 9, "schedtrace: three wait nearly always: {theirs:?}");

    // pintrace's, sampled ten times a second over the recording.
    let s = &r["go"]["sched"];
    assert_eq!(s["gomaxprocs"], 1, "{s}");
    assert_eq!(s["p_runqueues"].as_array().map(Vec::len), Some(1), "one P: {s}");
    assert!(s["samples"].as_u64().is_some_and(|n| n >= 50), "ten samples a second for 6 s: {s}");
    assert_eq!(s["queued_max"], 3, "{s}");
    let mean = s["queued_mean"].as_f64().expect("queued_mean");
    let theirs_mean = theirs.iter().sum::<u32>() as f64 / theirs.len() as f64;
    // pintrace's samples include the start and the end, when fewer wait.
    assert!((theirs_mean - mean).abs() <= 0.5, "pintrace {mean:.2} waiting on average, schedtrace {theirs_mean:.2}");
    assert!(s["queued_pct"].as_f64().is_some_and(|p| p >= 80.0), "{s}");
    // The M running the goroutines is named with one of them.
    let running: Vec<_> =
        r["threads"].as_array().expect("threads").iter().filter(|t| t["go_state"] == "running").collect();
    assert!(running.len() <= 1, "one P, at most one thread runs Go code: {running:?}");
    eprintln!(
        "gosched: {}: schedtrace {} lines, {theirs_mean:.2} waiting; pintrace {} samples, {mean:.2} waiting, max {}",
        bin.display(),
        theirs.len(),
        s["samples"],
        s["queued_max"]
    );
}

#[test]
fn go119_scheduler_agrees_with_schedtrace() {
    agrees_with_schedtrace(&go_program("busy"));
}

#[test]
fn go126_scheduler_agrees_with_schedtrace() {
    agrees_with_schedtrace(&go_program_with(&go_new(), "busy", &["-buildmode=pie"]));
}

#[test]
fn schedtrace_lines_parse() {
    let l = "SCHED 1008ms: gomaxprocs=1 idleprocs=0 threads=4 spinningthreads=0 idlethreads=2 runqueue=1 [2]";
    assert_eq!(parse_schedtrace(l), Some((1, 0, 4, 1, vec![2])));
    let l =
        "SCHED 0ms: gomaxprocs=2 idleprocs=1 threads=4 spinningthreads=0 needspinning=0 idlethreads=2 runqueue=0 [0 0]";
    assert_eq!(parse_schedtrace(l), Some((2, 1, 4, 0, vec![0, 0])));
    assert_eq!(parse_schedtrace("ready 12"), None);
}

/// The reader alone, on a running program of each version: one P, the
/// four goroutines and main counted.
#[test]
fn reads_the_scheduler_of_both_versions() {
    for bin in [go_program("busy"), go_program_with(&go_new(), "busy", &["-buildmode=pie"])] {
        let mut w = Workload::spawn(&bin, &["4", "1500", "1"]);
        let p = pintrace::goruntime::GoProcess::attach(w.pid).expect("attach");
        w.send("go");
        std::thread::sleep(std::time::Duration::from_millis(300));
        let s = p.sched().unwrap_or_else(|e| panic!("{}: {e}", bin.display()));
        assert_eq!(s.ps.len(), 1, "{s:?}");
        assert_eq!(s.goroutines, 5, "main and four busy: {s:?}");
        assert_eq!(s.queued(), 3, "{s:?}");
        assert_eq!(w.read_line(), "done");
    }
}
