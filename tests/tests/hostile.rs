//! The traced program is not on pintrace's side: a start that fails or is
//! interrupted leaves nothing behind and destroys nothing, `--user` drops
//! what it should, the PID cannot change hands during the attach, and an
//! exec from any thread keeps the numbers right.
use std::{
    path::{Path, PathBuf},
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use pintrace_tests::{go_program, pintrace_bin, report_json, scratch, u64_of, workload, Recording};

fn pintrace(args: &[&str]) -> (Option<i32>, String) {
    let out = Command::new(pintrace_bin()).args(args).output().expect("running pintrace");
    (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
}

fn lines(stdout: &str) -> Vec<serde_json::Value> {
    stdout.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"))).collect()
}

/// The names in `dir` that start with a dot (pintrace's temporary files).
fn hidden(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .expect("reading the directory")
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .filter(|n| n.starts_with('.'))
        .collect()
}

/// A fresh, empty directory.
fn empty_dir(name: &str) -> std::path::PathBuf {
    let dir = scratch(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("creating the directory");
    dir
}

/// Processes whose command line is exactly `cmdline` (NUL-separated in /proc).
fn processes_running(cmdline: &[&str]) -> Vec<u32> {
    let want: Vec<u8> = cmdline.iter().flat_map(|a| a.bytes().chain([0])).collect();
    std::fs::read_dir("/proc")
        .expect("/proc")
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| c == want))
        .filter(|pid| std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| !s.contains(") Z ")))
        .collect()
}

fn wait_gone(cmdline: &[&str]) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !processes_running(cmdline).is_empty() {
        assert!(Instant::now() < deadline, "{cmdline:?} still runs after pintrace ended");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_command_that_cannot_run_leaves_an_earlier_recording_alone() {
    let dir = empty_dir("cannot-run");
    let file = dir.join("earlier.ptr");
    std::fs::write(&file, b"an earlier recording").expect("writing");
    for _ in 0..2 {
        let (code, err) = pintrace(&["record", "-o", file.to_str().expect("path"), "--", "/nonexistent/typo"]);
        assert_eq!(code, Some(1), "{err}");
        assert!(err.contains("cannot run /nonexistent/typo"), "{err}");
    }
    assert_eq!(std::fs::read(&file).expect("the earlier file"), b"an earlier recording");
    assert!(!dir.join("earlier.ptr.old").exists(), "nothing moved aside");
    assert!(hidden(&dir).is_empty(), "temporary files left: {:?}", hidden(&dir));
}

#[test]
fn a_signal_during_the_start_leaves_no_file_and_no_child() {
    let dir = empty_dir("interrupted-start");
    let file = dir.join("rec.ptr");
    let sleeper = ["sleep", "97.125"];
    for (i, delay_ms) in [0u64, 5, 20, 50, 100, 200, 400].into_iter().enumerate() {
        let sig = if i % 2 == 0 { libc::SIGINT } else { libc::SIGTERM };
        let _ = std::fs::remove_file(&file);
        let child = Command::new(pintrace_bin())
            .args(["record", "-o", file.to_str().expect("path"), "--"])
            .args(sleeper)
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting pintrace");
        std::thread::sleep(Duration::from_millis(delay_ms));
        // SAFETY: kill on our own child, not reaped yet.
        unsafe { libc::kill(child.id() as libc::pid_t, sig) };
        let out = child.wait_with_output().expect("waiting for pintrace");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(hidden(&dir).is_empty(), "after {delay_ms} ms, temporary files left: {:?}", hidden(&dir));
        if out.status.code().is_none() {
            // Killed before its handlers were installed, so before it created anything.
            assert!(delay_ms < 20 && !file.exists(), "after {delay_ms} ms, killed ({}): {err}", out.status);
        } else if file.exists() {
            // The start was over: a whole recording.
            assert_eq!(out.status.code(), Some(0), "{err}");
            let (code, _, rerr) = report_json(&file);
            assert_eq!(code, Some(0), "after {delay_ms} ms the recording is damaged: {rerr}");
        } else {
            assert_eq!(out.status.code(), Some(1), "{err}");
            assert!(err.contains("while starting: nothing traced"), "{err}");
        }
        wait_gone(&sleeper);
    }
}

#[test]
fn the_started_command_dies_with_pintrace() {
    let sleeper = ["sleep", "96.375"];
    let rec = Recording::start_args(&[
        "record",
        "-o",
        scratch("killed.ptr").to_str().expect("path"),
        "--",
        sleeper[0],
        sleeper[1],
    ]);
    assert_eq!(processes_running(&sleeper).len(), 1, "the command runs");
    rec.signal(libc::SIGKILL);
    let done = rec.finish();
    assert!(!done.status.success());
    wait_gone(&sleeper);
}

fn groups_of(user: &str, dir: &Path, name: &str) -> String {
    let out = dir.join(name);
    let script = format!("id -u > {0}; id -g >> {0}; id -G >> {0}", out.display());
    let rec = Recording::start_args(&[
        "record",
        "-o",
        dir.join(format!("{name}.ptr")).to_str().expect("path"),
        "--user",
        user,
        "--",
        "/bin/sh",
        "-c",
        &script,
    ]);
    let done = rec.finish();
    assert!(done.status.success(), "{}", done.stderr);
    std::fs::read_to_string(&out).expect("the command wrote its IDs")
}

#[test]
fn a_numeric_user_is_that_user_with_its_own_groups() {
    let dir = empty_dir("user");
    std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o777)).expect("chmod");
    // A user whose ID is not also the ID of a privileged group (user 42's ID is group shadow's).
    let name = groups_of("nobody", &dir, "by-name");
    let uid = name.lines().next().expect("a UID").to_string();
    let by_id = groups_of(&uid, &dir, "by-id");
    assert_eq!(by_id, name, "--user {uid} and --user nobody run the command alike");
    let expected = Command::new("id").args(["-G", "nobody"]).output().expect("id -G nobody");
    assert_eq!(name.lines().nth(2).expect("groups"), String::from_utf8_lossy(&expected.stdout).trim());

    let (code, err) = pintrace(&["record", "-o", "/dev/null", "--user", "4294967295", "--", "true"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("not a user ID"), "{err}");
    let (code, err) = pintrace(&["record", "-o", "/dev/null", "--user", "3999999", "--", "true"]);
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("no user with ID 3999999"), "{err}");
    let (code, err) = pintrace(&["record", "-o", "/dev/null", "--pid", "1", "--user", "nobody"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("cannot be used with"), "{err}");
}

/// The kernel gives a thread that execs the leader's TID: the numbers stay
/// those of the threads that exist (Go's syscall.Exec runs on any thread).
#[test]
fn an_exec_from_a_thread_that_is_not_the_leader() {
    let bin = go_program("execthread");
    let bin = bin.to_str().expect("path");
    let top = Recording::start_args(&[
        "top",
        "--batch",
        "--json",
        "--interval",
        "250ms",
        "--",
        bin,
        "4",
        "/bin/sleep",
        "1.5",
    ]);
    let done = top.finish();
    assert!(done.status.success(), "{}", done.stderr);
    let intervals = lines(&done.stdout);
    let nr_cpus = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    for i in &intervals {
        let used = i["process"]["cpus_used"].as_f64().expect("cpus_used");
        assert!(used <= nr_cpus + 0.05, "{used} CPUs used of {nr_cpus}: {i}");
    }
    // While the final `sleep` runs: one thread, asleep.
    let sleeping: Vec<&serde_json::Value> = intervals
        .iter()
        .filter(|i| i["target"]["comm"] == "sleep" && u64_of(&i["interval_ns"]) >= 200_000_000)
        .collect();
    assert!(sleeping.len() >= 3, "intervals of the sleep: {}\n{}", sleeping.len(), done.stdout);
    for i in &sleeping[1..sleeping.len() - 1] {
        assert_eq!(u64_of(&i["process"]["threads_now"]), 1, "{i}");
        let used = i["process"]["cpus_used"].as_f64().expect("cpus_used");
        assert!(used < 0.05, "a sleeping process uses {used} CPUs: {i}");
    }

    // The recording: no thread on a CPU for longer than it lived.
    let file = scratch("exec-thread.ptr");
    let mut cmd = Command::new(pintrace_bin());
    cmd.args(["record", "-o", file.to_str().expect("path"), "--", bin, "4", "/bin/sleep", "0.5"]);
    let rec = Recording::start_cmd(cmd, &file);
    let done = rec.finish();
    let r = done.report();
    let end = u64_of(&r["duration_ns"]);
    for t in r["threads"].as_array().expect("threads") {
        let born = t["born_ns"].as_u64().unwrap_or(0);
        let died = t["died_ns"].as_u64().unwrap_or(end);
        let on_cpu = u64_of(&t["on_cpu_ns"]);
        assert!(
            on_cpu <= died.saturating_sub(born) + 2_000_000,
            "on a CPU {on_cpu} ns in a life of {born}..{died}: {t}"
        );
    }
    assert_eq!(r["process"]["threads_now"], 0, "all ended with the sleep");
}

/// The PID is pinned: a process that exits during the attach, its PID
/// taken by another, is not traced under its name.
#[test]
fn a_pid_reused_during_the_attach_is_refused() {
    let mut first = Command::new("sleep").arg("95.5").spawn().expect("sleep");
    let pid = first.id();
    let rec = Command::new(pintrace_bin())
        .args(["record", "-o", scratch("reused.ptr").to_str().expect("path"), "--pid", &pid.to_string()])
        // A debug build waits this long in the middle of its attach.
        .env("PINTRACE_TEST_ATTACH_PAUSE_MS", "2000")
        .stderr(Stdio::piped())
        .spawn()
        .expect("pintrace");
    std::thread::sleep(Duration::from_millis(500));
    first.kill().expect("kill");
    first.wait().expect("reap");
    // The next PID the kernel hands out is `pid` again.
    let mut second = None;
    for _ in 0..50 {
        std::fs::write("/proc/sys/kernel/ns_last_pid", (pid - 1).to_string()).expect("ns_last_pid");
        let s = Command::new("sleep").arg("95.75").spawn().expect("sleep");
        if s.id() == pid {
            second = Some(s);
            break;
        }
        let mut s = s;
        let _ = s.kill();
        let _ = s.wait();
    }
    let mut second = second.expect("another process took the PID");
    let out = rec.wait_with_output().expect("pintrace");
    let _ = second.kill();
    let _ = second.wait();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("exited while pintrace attached") && err.contains("reused"), "{err}");
}

/// `top -- CMD` and the replay of `record -- CMD` know the Go runtime of the
/// command from the start, as `report` does.
#[test]
fn a_started_go_command_has_its_go_runtime_in_the_header() {
    let bin = go_program("execthread");
    let bin = bin.to_str().expect("path");
    // execthread 0 with a Go program as the final one: itself, waiting.
    let top = Recording::start_args(&["top", "--batch", "--json", "-n", "2", "--interval", "200ms", "--", bin, "5"]);
    let done = top.finish();
    assert!(done.status.success(), "{}", done.stderr);
    let first = &lines(&done.stdout)[0];
    assert!(first["go"]["version"].as_str().is_some_and(|v| v.starts_with("go1.")), "{first}");

    let file = scratch("go-header.ptr");
    let rec =
        Recording::start_args(&["record", "-o", file.to_str().expect("path"), "--duration", "500ms", "--", bin, "5"]);
    let done = rec.finish();
    assert!(done.status.success(), "{}", done.stderr);
    // Read once the exec is over: its variables, and the uprobe, are there.
    assert!(!done.stderr.contains("warning"), "{}", done.stderr);
    let out = Command::new(pintrace_bin()).args(["replay", "--batch", "--json"]).arg(&file).output().expect("replay");
    let first = &lines(&String::from_utf8_lossy(&out.stdout))[0];
    assert!(first["go"]["version"].as_str().is_some_and(|v| v.starts_with("go1.")), "{first}");
}

#[test]
fn thresholds_and_flags_that_cannot_work_are_refused() {
    for (args, says) in [
        (&["top", "--batch", "--threshold", "sigurg_sender_share=5", "--pid", "1"][..], "from 0 to 1"),
        (&["top", "--batch", "--count", "0", "--pid", "1"][..], "1 or more"),
        (&["top", "--batch", "--interval", "1ns", "--pid", "1"][..], "shorter than"),
        (&["replay", "--speed", "3", "x.ptr"][..], "not a speed"),
    ] {
        let (code, err) = pintrace(args);
        assert_eq!(code, Some(2), "{args:?}: {err}");
        assert!(err.contains(says), "{args:?}: {err}");
    }
}

/// A program that is not Go (this one is Rust) gets no Go advice.
#[test]
fn a_program_that_is_not_go_gets_no_go_advice() {
    let mut w = workload!("churn", "50", "5");
    let rec = Recording::start(w.pid, "not-go-churn", &[]);
    w.send("go");
    let _ = w.read_line();
    assert!(w.wait().success());
    let r = rec.finish().report();
    assert!(r["go"].is_null(), "{}", r["go"]);
    let f = r["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .find(|f| f["rule"] == "thread_churn")
        .unwrap_or_else(|| panic!("thread churn: {}", r["findings"]));
    let (message, advice) = (f["message"].as_str().expect("message"), f["advice"].as_str().expect("advice"));
    assert!(!message.contains("goroutine") && !advice.contains("LockOSThread"), "{f}");
}

/// tests/c/fakego.c built with `-DPAD=pad`, its DWARF structs renamed
/// (runtime_m to runtime.m...): a C program that pintrace takes for Go.
fn fake_go(name: &str, pad: Option<&str>) -> PathBuf {
    let out = scratch(name);
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("c/fakego.c");
    let mut cc = Command::new("gcc");
    cc.args(["-g", "-O0", "-o"]).arg(&out);
    if let Some(p) = pad {
        cc.arg(format!("-DPAD={p}"));
    }
    assert!(cc.arg(&src).status().expect("running gcc").success(), "building {}", src.display());
    let mut b = std::fs::read(&out).expect("reading the program");
    for (from, to) in [
        (&b"runtime_m\0"[..], &b"runtime.m\0"[..]),
        (b"runtime_g\0", b"runtime.g\0"),
        (b"runtime_schedt\0", b"runtime.schedt\0"),
        (b"runtime_p\0", b"runtime.p\0"),
    ] {
        let at = b.windows(from.len()).position(|w| w == from).unwrap_or_else(|| panic!("{from:?} in the DWARF"));
        b[at..at + to.len()].copy_from_slice(to);
    }
    std::fs::write(&out, b).expect("writing the program");
    std::fs::set_permissions(&out, std::os::unix::fs::PermissionsExt::from_mode(0o755)).expect("chmod");
    out
}

/// A target whose DWARF makes up its structs: read as Go when it looks
/// like Go, refused (with a warning) when its layout is no runtime's,
/// never obeyed (a field at 2^40 made pintrace allocate 1 TiB and abort).
#[test]
fn a_c_program_dressed_as_go_is_read_and_its_made_up_layout_refused() {
    for (name, pad) in [("fakego", None), ("fakego-1tib", Some("(1UL<<40)"))] {
        let bin = fake_go(name, pad);
        let mut target = Command::new(&bin).spawn().expect("starting the program");
        std::thread::sleep(Duration::from_millis(100));
        let pid = target.id().to_string();
        let out = Command::new(pintrace_bin())
            .args(["top", "--pid", &pid, "--batch", "--json", "-n", "2", "--interval", "200ms"])
            .output()
            .expect("pintrace");
        let _ = target.kill();
        let _ = target.wait();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{name}: {err}");
        let last = lines(&String::from_utf8_lossy(&out.stdout)).pop().expect("an interval");
        assert_eq!(last["go"]["version"], "go1.99.9z", "{name}: {last}");
        let main = &last["threads"][0];
        if pad.is_none() {
            assert_eq!(main["role"], "main", "{name}: its one M was read: {main}");
        } else {
            assert!(main["role"].is_null(), "{main}");
            assert!(err.contains("more than 65536: not the Go runtime's layout"), "{name}: {err}");
        }
    }
}

/// After an exec into a binary whose DWARF is slow to search, the event
/// loop does not wait for it: a Ctrl-C ends the recording at once, whole.
#[test]
fn an_exec_into_a_slow_binary_does_not_hold_up_the_loop() {
    let plain = fake_go("fakego-for-slow", None);
    let (info, abbrev) = pintrace::goruntime::fuzzing::slow_dwarf(30_000);
    let (info_path, abbrev_path) = (scratch("slow.debug_info"), scratch("slow.debug_abbrev"));
    std::fs::write(&info_path, info).expect("writing");
    std::fs::write(&abbrev_path, abbrev).expect("writing");
    let slow = scratch("fakego-slow");
    let ok = Command::new("objcopy")
        .args(["--remove-section", ".debug_info", "--remove-section", ".debug_abbrev"])
        .arg(format!("--add-section=.debug_info={}", info_path.display()))
        .arg(format!("--add-section=.debug_abbrev={}", abbrev_path.display()))
        .arg(&plain)
        .arg(&slow)
        .status()
        .expect("running objcopy");
    assert!(ok.success());
    std::fs::set_permissions(&slow, std::os::unix::fs::PermissionsExt::from_mode(0o755)).expect("chmod");
    let file = scratch("slow-exec.ptr");
    let mut cmd = Command::new(pintrace_bin());
    cmd.args(["record", "-o", file.to_str().expect("path"), "--", "/bin/sh", "-c"])
        .arg(format!("sleep 0.3; exec {}", slow.display()));
    let rec = Recording::start_cmd(cmd, &file);
    // The exec is at 0.3 s; its binary's DWARF takes the search's whole budget (4 s).
    std::thread::sleep(Duration::from_millis(1300));
    let signalled = Instant::now();
    rec.signal(libc::SIGINT);
    let done = rec.finish();
    let took = signalled.elapsed();
    let r = done.report();
    assert_eq!(r["end_reason"], "interrupted");
    assert_eq!(r["target"]["comm"], "fakego-slow", "the exec was seen");
    assert!(took < Duration::from_secs(2), "the loop waited {took:?} for the DWARF search (4 s)");
}
