//! Bad input and bad luck: clear one-line errors, clean endings, nothing lost silently.
use std::{
    process::Command,
    time::{Duration, Instant},
};

use pintrace_tests::{pintrace_bin, report_json, scratch, u64_of, workload, Recording};

fn pintrace(args: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(pintrace_bin()).args(args).output().expect("running pintrace");
    (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn a_target_that_exits_mid_trace_ends_the_recording_cleanly() {
    let mut w = workload!("spin_pair", "300");
    let started = Instant::now();
    let rec = Recording::start(w.pid, "exits-early", &["--duration", "60s"]);
    w.send("go");
    let _ = w.read_line();
    assert!(w.wait().success());
    let done = rec.finish();
    assert!(started.elapsed() < Duration::from_secs(10), "pintrace noticed the exit");
    assert!(done.stderr.contains("pintrace: target exited; recorded"), "{}", done.stderr);
    let r = done.report();
    assert_eq!(r["end_reason"], "target exited");
    assert!(u64_of(&r["duration_ns"]) < 5_000_000_000);
}

#[test]
fn a_process_whose_leader_exited_is_traced_until_its_last_thread_ends() {
    // The leader exits mid-recording; the recording goes on with the worker.
    let mut w = workload!("leader_exits", "1500");
    let rec = Recording::start(w.pid, "leader-exits", &["--duration", "60s"]);
    w.send("go");
    let worker: u32 = w.read_line().strip_prefix("worker ").and_then(|t| t.parse().ok()).expect("worker TID");
    let done = rec.finish();
    let r = done.report();
    assert_eq!(r["end_reason"], "target exited", "{}", done.stderr);
    assert!(u64_of(&r["duration_ns"]) >= 1_400_000_000, "traced while the worker ran: {}", r["duration_ns"]);
    let t = pintrace_tests::thread(&r, worker);
    assert!(u64_of(&t["voluntary_switches"]) >= 500, "the worker's 1 ms sleeps were traced: {t}");
    assert!(!pintrace_tests::thread(&r, w.pid)["died_ns"].is_null(), "the leader's exit is recorded");
    drop(w);

    // The leader has already exited when pintrace starts: still a live process.
    let mut w = workload!("leader_exits", "1500");
    w.send("go");
    let worker: u32 = w.read_line().strip_prefix("worker ").and_then(|t| t.parse().ok()).expect("worker TID");
    let deadline = Instant::now() + Duration::from_secs(5);
    while !std::fs::read_to_string(format!("/proc/{}/stat", w.pid)).is_ok_and(|s| s.contains(") Z ")) {
        assert!(Instant::now() < deadline, "the leader did not become a zombie");
        std::thread::sleep(Duration::from_millis(5));
    }
    let rec = Recording::start(w.pid, "leader-gone", &["--duration", "60s"]);
    let done = rec.finish();
    let r = done.report();
    assert_eq!(r["end_reason"], "target exited", "{}", done.stderr);
    assert!(u64_of(&pintrace_tests::thread(&r, worker)["voluntary_switches"]) >= 100);
    drop(w);
}

#[test]
fn a_killed_target_ends_the_recording_too() {
    let w = workload!("spin_pair", "300");
    let rec = Recording::start(w.pid, "killed", &[]);
    // SAFETY: kill on the workload's PID, which is our unreaped child.
    assert_eq!(unsafe { libc::kill(w.pid as libc::pid_t, libc::SIGKILL) }, 0);
    let r = rec.finish().report();
    assert_eq!(r["end_reason"], "target exited");
    drop(w);
}

#[test]
fn sigterm_sigint_and_sighup_end_the_recording_with_a_whole_file() {
    // SIGHUP: a closed ssh session must not kill a recording without its trailer.
    for (sig, reason) in [(libc::SIGTERM, "terminated"), (libc::SIGINT, "interrupted"), (libc::SIGHUP, HUNG_UP)] {
        let w = workload!("spin_pair", "100");
        let rec = Recording::start(w.pid, reason, &[]);
        std::thread::sleep(Duration::from_millis(200));
        rec.signal(sig);
        let r = rec.finish().report();
        assert_eq!(r["end_reason"], reason);
        assert_eq!(r["target"]["pid"], w.pid);
    }
}

const HUNG_UP: &str = "hung up";

#[test]
fn the_duration_option_ends_the_recording() {
    let w = workload!("spin_pair", "100");
    let rec = Recording::start(w.pid, "duration", &["--duration", "300ms"]);
    let r = rec.finish().report();
    assert_eq!(r["end_reason"], "duration reached");
    let d = u64_of(&r["duration_ns"]);
    assert!((300_000_000..2_000_000_000).contains(&d), "{d}");
    drop(w);
}

#[test]
fn no_such_pid() {
    let out = scratch("never.ptr");
    let (code, err) = pintrace(&["record", "--pid", "4194305", "-o", out.to_str().expect("utf-8")]);
    assert_eq!((code, err.as_str()), (Some(1), "pintrace: no process with PID 4194305\n"));
    assert!(!out.exists(), "no file is left behind");
}

#[test]
fn not_root_is_told_to_use_sudo() {
    let w = workload!("spin_pair", "100");
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all", "--bounding-set=-all"])
        .arg(pintrace_bin())
        .args(["record", "--pid", &w.pid.to_string(), "-o", "/tmp/pintrace-not-root.ptr"])
        .output()
        .expect("setpriv (util-linux)");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(err, "pintrace: tracing needs root (or CAP_BPF, CAP_PERFMON and CAP_DAC_OVERRIDE): run it with sudo\n");
}

/// Runs `pintrace check` as nobody with the given capabilities.
fn check_with_caps(caps: &str) -> (Option<i32>, String) {
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(format!("--inh-caps={caps}"))
        .arg(format!("--ambient-caps={caps}"))
        .arg(pintrace_bin())
        .arg("check")
        .output()
        .expect("setpriv (util-linux)");
    (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn capabilities_without_root_get_the_real_reason_and_the_remedy_works() {
    // tracefs is mounted, but root's 0700 directory: not "not mounted".
    let (code, err) = check_with_caps("+bpf,+perfmon");
    assert_eq!(code, Some(1), "{err}");
    assert_eq!(
        err,
        "pintrace: tracefs is mounted at /sys/kernel/tracing but this user may not read it (CAP_BPF and \
         CAP_PERFMON do not open root's directory): run pintrace with sudo, or also grant CAP_DAC_OVERRIDE\n"
    );
    // What the message says to do is enough.
    let (code, err) = check_with_caps("+bpf,+perfmon,+dac_override");
    assert_eq!((code, err.as_str()), (Some(0), ""));
}

/// Runs `script` in a private mount namespace (the machine keeps its mounts);
/// returns (exit code, stdout, stderr).
fn unshared(script: &str) -> (Option<i32>, String, String) {
    let out = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c", script])
        .output()
        .expect("unshare");
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.code(), text(&out.stdout), text(&out.stderr))
}

const UNMOUNT_TRACEFS: &str = "umount /sys/kernel/tracing 2>/dev/null; umount /sys/kernel/debug/tracing 2>/dev/null; \
                               umount /sys/kernel/debug 2>/dev/null";

#[test]
fn tracefs_under_debugfs_is_found_and_elsewhere_is_named() {
    // Only debugfs mounted, as on older systems: tracefs appears under it.
    let bin = pintrace_bin();
    let (code, out, err) = unshared(&format!(
        "{UNMOUNT_TRACEFS}; mount -t debugfs nodev /sys/kernel/debug && exec {} check",
        bin.display()
    ));
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("tracefs   /sys/kernel/debug/tracing\n"), "{out}");
    assert!(out.contains("all default probes work"), "{out}");

    // Mounted only at an unusual place: named, with the remedy.
    let alt = scratch("alt-tracefs");
    let _ = std::fs::remove_dir_all(&alt);
    std::fs::create_dir_all(&alt).expect("mount point");
    // As mountinfo names it: without the `..` of the scratch path.
    let alt = alt.canonicalize().expect("canonical");
    let (code, _, err) = unshared(&format!(
        "{UNMOUNT_TRACEFS}; mount -t tracefs nodev {} && exec {} check",
        alt.display(),
        bin.display()
    ));
    assert_eq!(code, Some(1), "{err}");
    let want = format!(
        "pintrace: tracefs is mounted at {}, but tracepoints are attached through /sys/kernel/tracing or \
         /sys/kernel/debug/tracing: run `mount -t tracefs tracefs /sys/kernel/tracing` as root\n",
        alt.display()
    );
    assert_eq!(err, want);
}

#[test]
fn missing_tracefs_names_the_mount_command() {
    let w = workload!("spin_pair", "100");
    let (code, _, err) = unshared(&format!(
        "{UNMOUNT_TRACEFS}; exec {} record --pid {} -o /tmp/pintrace-no-tracefs.ptr",
        pintrace_bin().display(),
        w.pid
    ));
    assert_eq!(code, Some(1), "{err}");
    assert_eq!(err, "pintrace: tracefs is not mounted: run `mount -t tracefs tracefs /sys/kernel/tracing` as root\n");
}

#[test]
fn an_unwritable_output_path_fails_before_tracing() {
    let w = workload!("spin_pair", "100");
    let (code, err) = pintrace(&["record", "--pid", &w.pid.to_string(), "-o", "/proc/no/such/dir.ptr"]);
    assert_eq!(code, Some(1));
    assert!(err.starts_with("pintrace: cannot create the record file /proc/no/such/dir.ptr: "), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
}

#[test]
fn a_damaged_recording_reports_what_it_can_and_says_so() {
    let mut w = workload!("threads", "200");
    let rec = Recording::start(w.pid, "whole", &[]);
    w.send("go");
    let _ = w.read_line();
    assert!(w.wait().success());
    let done = rec.finish();
    let whole = done.report();
    let bytes = std::fs::read(&done.path).expect("record file");

    let cut = scratch("cut.ptr");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).expect("write");
    let (code, r, err) = report_json(&cut);
    assert_eq!(code, Some(3), "{err}");
    assert_eq!(r["complete"], false);
    assert!(err.contains("cut short") || err.contains("no trailer"), "{err}");
    assert!(u64_of(&r["events"]) < u64_of(&whole["events"]));

    let flipped = scratch("flipped.ptr");
    let mut bad = bytes.clone();
    let at = bytes.len() - 200;
    bad[at] ^= 0x5a;
    std::fs::write(&flipped, &bad).expect("write");
    let (code, r, err) = report_json(&flipped);
    assert_eq!(code, Some(3), "{err}");
    assert!(err.contains("corrupt chunk"), "{err}");
    assert_eq!(r["complete"], false);
}

#[test]
fn lost_events_are_counted_and_shown() {
    // The reader keeps up with a ping-pong even through a 4 KiB ring buffer,
    // so starve it as a busy machine would: stop pintrace for 300 ms.
    let mut w = workload!("pingpong", "400000");
    let rec = Recording::start(w.pid, "lossy", &["--buffer-size", "4KiB"]);
    w.send("go");
    std::thread::sleep(Duration::from_millis(100));
    rec.signal(libc::SIGSTOP);
    std::thread::sleep(Duration::from_millis(300));
    rec.signal(libc::SIGCONT);
    assert_eq!(w.read_line(), "done");
    assert!(w.wait().success());
    let done = rec.finish();
    assert!(done.status.success(), "{}", done.stderr);
    assert!(done.stderr.contains("events did not fit in the ring buffer and were lost"), "{}", done.stderr);
    let (code, r, _) = report_json(&done.path);
    assert_eq!(code, Some(0));
    let lost = u64_of(&r["lost_events"]);
    assert!(lost > 0, "lost events are reported");
    let out = Command::new(pintrace_bin()).arg("report").arg(&done.path).output().expect("report");
    assert!(String::from_utf8_lossy(&out.stdout).contains("WARNING: events were lost"));
}
