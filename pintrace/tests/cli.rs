//! The command line without root: arguments, help, and reading record files.
use std::{path::PathBuf, process::Command};

use pintrace::{
    event::{Comm, Event, EventKind, NO_CPU},
    record::{split_chunks, ClockMapping, RecordHeader, Target, Trailer, Writer},
};

fn pintrace(args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_pintrace")).args(args).output().expect("running pintrace");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn scratch(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("cli");
    std::fs::create_dir_all(&dir).expect("scratch dir");
    dir.join(name)
}

/// A small but complete recording: one thread that switches, migrates,
/// receives SIGURG from a second one, and a third that is born and dies.
fn sample_file(name: &str, trailer: bool) -> (PathBuf, Vec<u8>) {
    const MS: u64 = 1_000_000;
    let start = 10_000 * MS;
    let header = RecordHeader {
        pintrace_version: "0.1.0".into(),
        host: "testhost".into(),
        kernel: "6.18.0".into(),
        nr_cpus: 2,
        target: Target { pid: 100, comm: "goapp".into(), cmdline: "./goapp -serve".into(), ns_pid: None },
        clock: ClockMapping { monotonic_ns: start, realtime_ns: 1_700_000_000_000_000_000 },
        start_ns: start,
        probes: vec![],
        syscalls: false,
        cgroup: None,
        go: None,
    };
    let ev = |t: u64, cpu: u32, kind| Event { ts_ns: start + t * MS, cpu, kind };
    let mut events = vec![
        ev(0, NO_CPU, EventKind::ThreadSeen { tid: 100, tgid: 100, comm: Comm::new("goapp") }),
        ev(0, NO_CPU, EventKind::ThreadSeen { tid: 101, tgid: 100, comm: Comm::new("goapp") }),
        ev(1, 0, EventKind::Switch { prev_tid: 0, next_tid: 100, prev_state: 0, next_wait_ns: None, other: 0 }),
        ev(
            2,
            1,
            EventKind::Signal {
                sender_tid: 101,
                sender_tgid: 100,
                target_tid: 100,
                sig: 23,
                code: -6,
                result: 0,
                group: false,
            },
        ),
        ev(21, 0, EventKind::Switch { prev_tid: 100, next_tid: 0, prev_state: 0, next_wait_ns: None, other: 0 }),
        ev(22, 0, EventKind::Migrate { tid: 100, from_cpu: 0, to_cpu: 1 }),
        ev(25, 1, EventKind::Switch { prev_tid: 0, next_tid: 100, prev_state: 0, next_wait_ns: None, other: 0 }),
        ev(
            30,
            1,
            EventKind::NewTask {
                parent_tid: 100,
                parent_tgid: 100,
                child_tid: 102,
                clone_flags: 0x10000,
                comm: Comm::new("goapp"),
            },
        ),
        ev(35, 1, EventKind::Exit { tid: 102, tgid: 100, group_dead: false, comm: Comm::new("goapp") }),
    ];
    // Enough switches to span several chunks.
    for i in 0..60_000u64 {
        let state = u32::from(i % 2 == 0);
        events.push(Event {
            ts_ns: start + 40 * MS + i * 10_000,
            cpu: 1,
            kind: EventKind::Switch { prev_tid: 101, next_tid: 0, prev_state: state, next_wait_ns: None, other: 0 },
        });
        events.push(Event {
            ts_ns: start + 40 * MS + i * 10_000 + 5_000,
            cpu: 1,
            kind: EventKind::Switch { prev_tid: 0, next_tid: 101, prev_state: 0, next_wait_ns: None, other: 0 },
        });
    }
    let mut w = Writer::new(Vec::new(), &header).expect("header");
    for e in &events {
        w.push(e).expect("push");
    }
    let bytes = if trailer {
        let t = Trailer {
            end_ns: start + 1000 * MS,
            end_reason: "duration reached".into(),
            events: events.len() as u64,
            lost_events: 0,
            ..Trailer::default()
        };
        w.finish(&t).expect("finish").1
    } else {
        w.into_inner().expect("flush")
    };
    let path = scratch(name);
    std::fs::write(&path, &bytes).expect("write sample");
    (path, bytes)
}

#[test]
fn help_lists_the_commands() {
    let (code, out, _) = pintrace(&["--help"]);
    assert_eq!(code, Some(0));
    for cmd in ["check", "record", "report"] {
        assert!(out.contains(cmd), "{out}");
    }
    let (code, out, _) = pintrace(&["record", "--help"]);
    assert_eq!(code, Some(0));
    for opt in ["--pid", "--output", "--duration", "--syscalls", "--buffer-size"] {
        assert!(out.contains(opt), "{out}");
    }
}

#[test]
fn bad_arguments_exit_2_with_usage() {
    let (code, _, err) = pintrace(&["record", "-o", "x.ptr"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("--pid"), "{err}");
    let (code, _, err) = pintrace(&["record", "--pid", "abc", "-o", "x.ptr"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("invalid value 'abc'"), "{err}");
    let (code, _, err) = pintrace(&["record", "--pid", "1", "-o", "x.ptr", "--duration", "soon"]);
    assert_eq!(code, Some(2), "{err}");
    let (code, _, err) = pintrace(&["record", "--pid", "1", "-o", "x.ptr", "--buffer-size", "12KiB"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("power of two"), "{err}");
}

#[test]
fn record_of_a_missing_pid_is_one_clear_line() {
    let (code, _, err) = pintrace(&["record", "--pid", "4194305", "-o", "/nonexistent/x.ptr"]);
    assert_eq!((code, err.as_str()), (Some(1), "pintrace: no process with PID 4194305\n"));
}

#[test]
fn report_prints_the_summary_and_thread_table() {
    let (path, _) = sample_file("good.ptr", true);
    let (code, out, err) = pintrace(&["report", path.to_str().expect("utf-8")]);
    assert_eq!(code, Some(0), "{err}");
    assert!(err.is_empty(), "{err}");
    assert!(out.contains("target    100 (goapp)  ./goapp -serve"), "{out}");
    assert!(out.contains("window    2023-11-14T22:13:20.000Z for 1s (duration reached)"), "{out}");
    assert!(out.contains("2 at start, 3 peak, 2 at end; 1 created (1.0/s), 1 exited (1.0/s)"), "{out}");
    assert!(out.contains("SIGURG      1 (1.0/s, Go async preemption); sent by TID 101 (goapp) 1 times"), "{out}");
    assert!(out.contains("30,000 voluntary, 30,001 involuntary (preempted); 1 migrations"), "{out}");
    // Thread 100 ran 1→21 ms and 25→1000 ms: 995 ms; 1 involuntary switch; 1 migration; waited 4 ms.
    let row = out.lines().find(|l| l.trim_start().starts_with("100 ")).expect("row for TID 100");
    let cols: Vec<&str> = row.split_whitespace().collect();
    assert_eq!(cols[..11], ["100", "goapp", "995ms", "99.5", "0", "1", "1", "2", "1", "0", "4ms"], "{row}");
    assert!(out.contains("† exited during the recording"), "{out}");
}

#[test]
fn report_json_has_the_documented_fields() {
    let (path, _) = sample_file("json.ptr", true);
    let (code, out, _) = pintrace(&["report", "--json", path.to_str().expect("utf-8")]);
    assert_eq!(code, Some(0));
    let r: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    for key in ["pintrace_version", "target", "duration_ns", "lost_events", "process", "threads", "complete", "events"]
    {
        assert!(!r[key].is_null(), "missing {key}");
    }
    assert_eq!(r["target"]["pid"], 100);
    assert_eq!(r["target"]["comm"], "goapp");
    assert_eq!(r["duration_ns"], 1_000_000_000u64);
    let p = &r["process"];
    for key in [
        "threads_created",
        "threads_exited",
        "threads_peak",
        "migrations",
        "voluntary_switches",
        "involuntary_switches",
        "sigurg",
        "signals",
    ] {
        assert!(p[key].is_u64(), "process.{key}: {p}");
    }
    assert_eq!(
        (p["threads_created"].as_u64(), p["threads_exited"].as_u64(), p["threads_peak"].as_u64()),
        (Some(1), Some(1), Some(3))
    );
    let t = r["threads"].as_array().expect("threads").iter().find(|t| t["tid"] == 100).expect("thread 100");
    for key in [
        "tid",
        "comm",
        "on_cpu_ns",
        "migrations",
        "voluntary_switches",
        "involuntary_switches",
        "sigurg_received",
        "sigurg_sent",
    ] {
        assert!(!t[key].is_null(), "threads[].{key}");
    }
    for key in ["p50", "p99", "max"] {
        assert!(t["runq_latency_ns"][key].is_u64(), "runq_latency_ns.{key}");
    }
    assert_eq!(t["on_cpu_ns"], 995_000_000u64);
    assert_eq!(t["sigurg_received"], 1);
}

#[test]
fn a_cut_file_reports_its_whole_chunks_and_exits_3() {
    let (_, bytes) = sample_file("whole.ptr", true);
    let cut = scratch("cut.ptr");
    std::fs::write(&cut, &bytes[..bytes.len() * 2 / 3]).expect("write");
    let (code, out, err) = pintrace(&["report", "--json", cut.to_str().expect("utf-8")]);
    assert_eq!(code, Some(3), "{err}");
    assert!(err.starts_with("pintrace: ") && err.contains("is cut short at byte") && err.lines().count() == 1, "{err}");
    let r: serde_json::Value = serde_json::from_str(&out).expect("JSON of the readable part");
    assert_eq!(r["complete"], false);
    assert!(r["events"].as_u64().is_some_and(|n| n > 10), "whole chunks were read: {}", r["events"]);
}

#[test]
fn a_file_without_trailer_is_reported_as_unfinished() {
    let (path, _) = sample_file("notrailer.ptr", false);
    let (code, out, err) = pintrace(&["report", path.to_str().expect("utf-8")]);
    assert_eq!(code, Some(3));
    assert!(err.contains("did not finish (no trailer)"), "{err}");
    assert!(out.contains("WARNING: the recording did not finish"), "{out}");
}

#[test]
fn a_corrupt_chunk_is_named() {
    let (_, mut bytes) = sample_file("tobreak.ptr", true);
    let at = bytes.len() / 2;
    bytes[at] ^= 0xff;
    let bad = scratch("corrupt.ptr");
    std::fs::write(&bad, &bytes).expect("write");
    let (code, _, err) = pintrace(&["report", bad.to_str().expect("utf-8")]);
    assert_eq!(code, Some(3));
    assert!(err.contains("corrupt chunk at byte") && err.contains("checksum mismatch"), "{err}");
}

#[test]
fn foreign_empty_and_missing_files_are_one_line_errors() {
    let foreign = scratch("foreign.ptr");
    std::fs::write(&foreign, b"#!/bin/sh\necho this is not a recording\n").expect("write");
    let empty = scratch("empty.ptr");
    std::fs::write(&empty, b"").expect("write");
    for (path, msg) in [
        (foreign.to_str().expect("utf-8"), "not a pintrace record file (bad magic)"),
        (empty.to_str().expect("utf-8"), "not a pintrace record file (bad magic)"),
        ("/nonexistent/file.ptr", "No such file or directory"),
    ] {
        let (code, out, err) = pintrace(&["report", path]);
        assert_eq!(code, Some(1), "{path}: {err}");
        assert!(out.is_empty());
        assert!(
            err.starts_with(&format!("pintrace: {path}: ")) && err.contains(msg) && err.lines().count() == 1,
            "{err}"
        );
    }
}

#[test]
fn replay_batch_prints_each_interval_of_a_file_without_root() {
    let (path, _) = sample_file("replay.ptr", true);
    let (code, out, err) = pintrace(&["replay", "--batch", "--json", path.to_str().expect("utf-8")]);
    assert_eq!(code, Some(0), "{err}");
    let lines: Vec<serde_json::Value> = out.lines().map(|l| serde_json::from_str(l).expect("JSON")).collect();
    assert_eq!(lines.len(), 1, "one interval of the 1 s recording:\n{out}");
    let p = &lines[0]["process"];
    assert_eq!(p["threads_created"], 1);
    assert_eq!(p["sigurg"], 1);
    assert_eq!(lines[0]["target"]["comm"], "goapp");
    let (code, _, err) = pintrace(&["replay", "--speed", "fast", path.to_str().expect("utf-8")]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("not a speed"), "{err}");
}

#[test]
fn report_escapes_control_characters_the_target_chose() {
    let path = scratch("hostile.ptr");
    let header = RecordHeader {
        pintrace_version: "0.1.0".into(),
        target: Target { pid: 7, comm: "\u{1b}[2Jx".into(), cmdline: "a\nb".into(), ns_pid: None },
        ..Default::default()
    };
    let mut w = Writer::new(std::fs::File::create(&path).expect("create"), &header).expect("header");
    w.push(&Event {
        ts_ns: 0,
        cpu: NO_CPU,
        kind: EventKind::ThreadSeen { tid: 7, tgid: 7, comm: Comm::new("\u{1b}]0;t\u{7}") },
    })
    .expect("push");
    w.finish(&Trailer::default()).expect("finish");
    let (_, out, _) = pintrace(&["report", path.to_str().expect("utf-8")]);
    assert!(!out.contains('\u{1b}') && !out.contains('\u{7}'), "{out:?}");
    assert!(out.contains("\\x1b[2Jx") && out.contains("a\\nb") && out.contains("\\x1b]0;t\\x07"), "{out}");
}

#[test]
fn a_closed_pipe_ends_quietly_and_a_full_disk_is_one_clear_line() {
    use std::{os::unix::process::ExitStatusExt as _, process::Stdio};
    let (path, _) = sample_file("pipe.ptr", true);
    // `pintrace report FILE | head -0`: the reader is gone before pintrace
    // writes (its read end is closed at once), as Unix tools expect.
    for args in [vec!["report", "--all"], vec!["report", "--json"]] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_pintrace"))
            .args(&args)
            .arg(&path)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("running pintrace");
        drop(child.stdout.take());
        let out = child.wait_with_output().expect("pintrace's end");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.is_empty(), "{args:?}: quietly, no panic: {err}");
        assert_eq!(out.status.signal(), Some(libc::SIGPIPE), "{args:?}: {:?}", out.status);
    }
    // Standard output on a full device: exit 1 and the reason, no panic.
    let full = std::fs::OpenOptions::new().write(true).open("/dev/full").expect("/dev/full");
    let out = Command::new(env!("CARGO_BIN_EXE_pintrace"))
        .args(["report"])
        .arg(&path)
        .stdout(full)
        .output()
        .expect("running pintrace");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert_eq!(err.trim(), "pintrace: writing to standard output: No space left on device (os error 28)");
}

/// `report --json` of these bytes: exit code, the report, standard error.
fn report_json(name: &str, bytes: &[u8]) -> (Option<i32>, serde_json::Value, String) {
    let path = scratch(name);
    std::fs::write(&path, bytes).expect("write");
    let (code, out, err) = pintrace(&["report", "--json", path.to_str().expect("utf-8")]);
    (code, serde_json::from_str(&out).unwrap_or_else(|e| panic!("{name}: {e}: {out}")), err)
}

#[test]
fn chunks_missing_repeated_or_out_of_place_are_damage() {
    let (_, bytes) = sample_file("chunks.ptr", true);
    let (head, chunks) = split_chunks(&bytes);
    let n = chunks.len() - 1;
    assert!(n >= 3, "{n} events chunks");
    let trailer = chunks[n].clone();
    let whole: Vec<u8> = chunks.concat();
    let cases = [
        ("removed", [&chunks[..1], &chunks[2..]].concat(), "chunk 1 is missing (the next chunk, at byte"),
        ("repeated", [&chunks[..2], &chunks[1..]].concat(), "chunk 1 appears twice (again at byte"),
        (
            "trailer-moved",
            [&chunks[..1], std::slice::from_ref(&trailer), &chunks[1..n]].concat(),
            &*format!("the trailer says {n} chunks and 120,009 events, the file holds 1 chunk and "),
        ),
        (
            "trailer-alone",
            vec![trailer.clone()],
            &*format!("the trailer says {n} chunks and 120,009 events, the file holds 0 chunks and 0"),
        ),
    ];
    for (name, chunks, problem) in cases {
        let (code, r, err) = report_json(&format!("{name}.ptr"), &[head.clone(), chunks.concat()].concat());
        assert_eq!(code, Some(3), "{name}: {err}");
        assert_eq!(r["complete"], false, "{name}");
        let p = r["problem"].as_str().unwrap_or_default();
        assert!(p.starts_with("damaged file: ") && p.contains(problem), "{name}: {p}");
        assert!(err.contains(problem) && err.lines().count() == 1, "{name}: {err}");
    }
    // The whole file, and bytes after its trailer.
    let (code, r, err) = report_json("whole.ptr", &[head.clone(), whole.clone()].concat());
    assert_eq!((code, &r["complete"], &r["format_version"]), (Some(0), &true.into(), &5.into()), "{err}");
    let (code, r, _) = report_json("after.ptr", &[head, whole, b"more".to_vec()].concat());
    assert_eq!((code, &r["complete"]), (Some(3), &false.into()));
    assert!(r["problem"].as_str().is_some_and(|p| p.contains("data after the trailer at byte")), "{}", r["problem"]);
}

#[test]
fn a_version_1_file_still_reports_whole() {
    let v1 = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/v1-every-kind.record");
    let (code, out, err) = pintrace(&["report", "--json", v1]);
    assert_eq!(code, Some(0), "{err}");
    let r: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(
        (&r["complete"], &r["problem"], &r["format_version"]),
        (&true.into(), &serde_json::Value::Null, &1.into())
    );
    assert_eq!(r["target"]["comm"], "app");
}

#[test]
fn decode_errors_of_the_recording_are_shown() {
    let (_, bytes) = sample_file("decode.ptr", true);
    let (head, mut chunks) = split_chunks(&bytes);
    let n = chunks.len() - 1;
    let mut t: serde_json::Value = serde_json::from_slice(&chunks[n][12..]).expect("trailer JSON");
    t["decode_errors"] = 3.into();
    t["first_decode_error"] = "record kind 99 is unknown to this pintrace".into();
    let json = serde_json::to_vec(&t).expect("JSON");
    let mut frame = vec![b'T', 0, 0, 0];
    frame.extend_from_slice(&(json.len() as u32).to_le_bytes());
    frame.extend_from_slice(&crc32fast::hash(&json).to_le_bytes());
    frame.extend_from_slice(&json);
    chunks[n] = frame;
    let path = scratch("decode-errors.ptr");
    std::fs::write(&path, [head, chunks.concat()].concat()).expect("write");
    let (code, out, err) = pintrace(&["report", path.to_str().expect("utf-8")]);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        out.contains(
            "decode errors  3 kernel records could not be decoded; the first: record kind 99 is unknown to this pintrace\n"
        ),
        "{out}"
    );
    let (code, out, _) = pintrace(&["report", "--json", path.to_str().expect("utf-8")]);
    assert_eq!(code, Some(0));
    let r: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(r["decode_errors"], 3);
    assert_eq!(r["first_decode_error"], "record kind 99 is unknown to this pintrace");
    // None: the line is absent, the fields are there (0 and null).
    let (good, _) = sample_file("no-decode-errors.ptr", true);
    let (_, out, _) = pintrace(&["report", good.to_str().expect("utf-8")]);
    assert!(!out.contains("decode errors"), "{out}");
    let (_, out, _) = pintrace(&["report", "--json", good.to_str().expect("utf-8")]);
    let r: serde_json::Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!((&r["decode_errors"], &r["first_decode_error"]), (&0.into(), &serde_json::Value::Null));
    assert!(r.as_object().is_some_and(|o| o.contains_key("first_decode_error")));
}

#[test]
fn an_undecodable_event_in_the_file_is_named() {
    let (_, bytes) = sample_file("undecodable.ptr", true);
    let (head, mut chunks) = split_chunks(&bytes);
    // The second events chunk's first event gets a kind no pintrace knows.
    let mut payload = chunks[1][12..].to_vec();
    payload[32] = 99; // after seq, events_before, count, base_ts and tid_base
    let mut frame = chunks[1][..12].to_vec();
    frame[8..12].copy_from_slice(&crc32fast::hash(&payload).to_le_bytes());
    frame.extend_from_slice(&payload);
    chunks[1] = frame;
    let at = head.len() + chunks[0].len();
    let (code, r, err) = report_json("undecodable-bad.ptr", &[head, chunks.concat()].concat());
    assert_eq!(code, Some(3), "{err}");
    assert_eq!(r["complete"], false);
    let problem = format!("corrupt chunk at byte {at}: event 1 of ");
    let p = r["problem"].as_str().unwrap_or_default();
    assert!(p.starts_with(&problem) && p.contains(": unknown event code 99: reported the events before it"), "{p}");
    assert!(r["events"].as_u64().is_some_and(|n| n > 1000), "the first chunk's events: {}", r["events"]);
}
