//! Writing and reading record files together: round trips, truncation, corruption.
use super::*;
use crate::event::{Comm, Event, EventKind, NO_CPU};

/// A header for the tests (the analysis stage's use it too).
pub(crate) fn header() -> RecordHeader {
    RecordHeader {
        pintrace_version: "0.1.0".into(),
        host: "h".into(),
        kernel: "6.18".into(),
        nr_cpus: 2,
        target: Target { pid: 42, comm: "app".into(), cmdline: "app -x".into(), ns_pid: None },
        clock: ClockMapping { monotonic_ns: 1_000, realtime_ns: 1_700_000_000_000_000_000 },
        start_ns: 1_000,
        probes: vec![ProbeRecord { name: "sched_switch".into(), status: "attached".into() }],
        syscalls: false,
        cgroup: None,
        go: None,
    }
}

/// Every kind of event, each field as format version 5 keeps it.
fn every_kind() -> Vec<Event> {
    let mut events = every_kind_before_5();
    let last = events.last().map_or(0, |e| e.ts_ns);
    events.extend([
        Event {
            ts_ns: last + 3,
            cpu: NO_CPU,
            kind: EventKind::CpuLimit {
                version: 2,
                quota_us: 30_000,
                period_us: 100_000,
                cpus_allowed: 2,
                group: ustr::ustr("/kubepods/pod1/app"),
                limited_by: Some(ustr::ustr("/kubepods/pod1")),
            },
        },
        Event {
            ts_ns: last + 4,
            cpu: NO_CPU,
            kind: EventKind::CpuLimit {
                version: 1,
                quota_us: 0,
                period_us: 0,
                cpus_allowed: 1,
                group: ustr::ustr("/"),
                limited_by: None,
            },
        },
        Event { ts_ns: last + 5, cpu: NO_CPU, kind: EventKind::GoP { p: 1, status: 1, runq: 3, runnext: true } },
        Event {
            ts_ns: last + 5,
            cpu: NO_CPU,
            kind: EventKind::GoSched {
                idle_ps: 0,
                spinning: 1,
                idle_threads: 2,
                runqueue: 4,
                goroutines: 1_000_000,
                nprocs: 2,
            },
        },
        Event {
            ts_ns: last + 6,
            cpu: NO_CPU,
            kind: EventKind::GoState {
                tid: 43,
                state: crate::goruntime::GoState::Syscall,
                goid: 123_456,
                func: Some(ustr::ustr("main.handle")),
            },
        },
        Event {
            ts_ns: last + 6,
            cpu: NO_CPU,
            kind: EventKind::GoState { tid: 44, state: crate::goruntime::GoState::LockedIdle, goid: 0, func: None },
        },
        // Who had the CPU: another process, a kernel thread, the idle task.
        Event {
            ts_ns: last + 7,
            cpu: 1,
            kind: EventKind::Switch {
                prev_tid: 0,
                next_tid: 43,
                prev_state: 1,
                next_wait_ns: Some(5),
                other: 4_000_000,
            },
        },
        Event {
            ts_ns: last + 8,
            cpu: 1,
            kind: EventKind::Switch {
                prev_tid: 43,
                next_tid: 0,
                prev_state: 0x100 | pintrace_common::STATE_THROTTLED,
                next_wait_ns: None,
                other: 2 | pintrace_common::OTHER_KTHREAD,
            },
        },
        Event {
            ts_ns: last + 9,
            cpu: NO_CPU,
            kind: EventKind::OtherProcess { pid: 4_000_000, kthread: false, comm: Comm::new("stress-ng") },
        },
    ]);
    events
}

/// Every kind of event as format version 4 keeps it (no CPU limit changes).
fn every_kind_before_5() -> Vec<Event> {
    let mut events = every_kind_before_4();
    for e in &mut events {
        if let EventKind::Switch { next_tid: 43, next_wait_ns, .. } = &mut e.kind {
            *next_wait_ns = Some(1_234_567);
        }
    }
    let last = events.last().map_or(0, |e| e.ts_ns);
    events.extend([
        Event {
            ts_ns: last + 10,
            cpu: 2,
            kind: EventKind::Switch { prev_tid: 0, next_tid: 44, prev_state: 0, next_wait_ns: Some(0), other: 0 },
        },
        Event {
            ts_ns: last + 5,
            cpu: 2,
            kind: EventKind::Switch { prev_tid: 44, next_tid: 45, prev_state: 1, next_wait_ns: None, other: 0 },
        },
    ]);
    events
}

/// Every kind of event as the files of versions 1 and 2 in tests/data hold them.
fn every_kind_before_4() -> Vec<Event> {
    let c = Comm::new("worker-1");
    let k = [
        EventKind::ThreadSeen { tid: 42, tgid: 42, comm: c },
        EventKind::Switch { prev_tid: 42, next_tid: 0, prev_state: 0x100, next_wait_ns: None, other: 0 },
        EventKind::Migrate { tid: 43, from_cpu: 0, to_cpu: 1 },
        EventKind::Wakeup { tid: 43, target_cpu: 1, waker_tid: 42, new_task: true },
        EventKind::Signal {
            sender_tid: 44,
            sender_tgid: 42,
            target_tid: 43,
            sig: 23,
            code: -6,
            result: 0,
            group: false,
        },
        EventKind::NewTask { parent_tid: 42, parent_tgid: 42, child_tid: 45, clone_flags: 0x3d0f00, comm: c },
        EventKind::Exit { tid: 45, tgid: 42, group_dead: true, comm: c },
        EventKind::Rename { tid: 43, comm: Comm::new("") },
        EventKind::Tgkill { sender_tid: 44, tgid: 42, tid: 43, sig: 23 },
        EventKind::CloneExit { parent_tid: 42, ret: -11, clone3: true },
        EventKind::Lost { total: u64::MAX },
        EventKind::Exec { tid: 42, old_tid: 43, comm: c },
        EventKind::Switch {
            prev_tid: 42,
            next_tid: 43,
            prev_state: pintrace_common::STATE_THROTTLED,
            next_wait_ns: None,
            other: 0,
        },
        EventKind::GoMaxProcs { value: 8 },
        EventKind::Throttle { nr_periods: 10, nr_throttled: 4, throttled_ns: 123_456_789 },
        EventKind::GoLock { tid: 43, caller: 0x5581_d2ab_2f00, func: Some(ustr::ustr("main.pinnedWorker")) },
        EventKind::GoLock { tid: 43, caller: 0, func: None },
        EventKind::GoThread {
            tid: 44,
            role: crate::goruntime::GoRole::Signal,
            locked_ext: 1,
            locked_int: 0,
            locked_g: Some(ustr::ustr("runtime.ensureSigM.func1")),
        },
        EventKind::GoThread {
            tid: 45,
            role: crate::goruntime::GoRole::Worker,
            locked_ext: 0,
            locked_int: 2,
            locked_g: None,
        },
    ];
    // Times go slightly backwards too: ring-buffer order is not time order across CPUs.
    k.iter()
        .enumerate()
        .map(|(i, &kind)| Event {
            ts_ns: 10_000 + (i as u64 * 7919) % 5000,
            cpu: if i == 0 { NO_CPU } else { i as u32 % 3 },
            kind,
        })
        .collect()
}

/// `events` as a file of a version before 4 reads them back: switches carry no wait.
fn without_waits(events: Vec<Event>) -> Vec<Event> {
    events
        .into_iter()
        .map(|mut e| {
            if let EventKind::Switch { next_wait_ns, .. } = &mut e.kind {
                *next_wait_ns = None;
            }
            e
        })
        .collect()
}

fn write(events: &[Event], trailer: bool) -> Vec<u8> {
    write_as(events, trailer, VERSION)
}

/// `events` in a file of format `version`.
fn write_as(events: &[Event], trailer: bool, version: u16) -> Vec<u8> {
    let mut w = Writer::with_version(Vec::new(), &header(), version).expect("header");
    for e in events {
        w.push(e).expect("push");
    }
    if trailer {
        let t = Trailer { end_ns: 99, end_reason: "duration".into(), events: 11, lost_events: 0, ..Trailer::default() };
        w.finish(&t).expect("finish").1
    } else {
        w.into_inner().expect("flush")
    }
}

fn read_all(bytes: &[u8]) -> (Vec<Event>, Option<Trailer>, Option<ReadError>) {
    read_with(bytes, MAX_NAMES)
}

fn read_with(bytes: &[u8], max_names: usize) -> (Vec<Event>, Option<Trailer>, Option<ReadError>) {
    let mut r = match Reader::with_name_limit(bytes, max_names) {
        Ok(r) => r,
        Err(e) => return (vec![], None, Some(e)),
    };
    assert_eq!(r.header(), &header());
    let (mut events, mut trailer) = (vec![], None);
    loop {
        match r.next_chunk() {
            Ok(Some(Chunk::Events(e))) => events.extend(e),
            Ok(Some(Chunk::Trailer(t))) => trailer = Some(*t),
            Ok(None) => return (events, trailer, None),
            Err(e) => {
                assert!(matches!(r.next_chunk(), Ok(None)), "reading stops at the first damage");
                return (events, trailer, Some(e));
            }
        }
    }
}

fn join(head: &[u8], chunks: &[Vec<u8>]) -> Vec<u8> {
    let mut out = head.to_vec();
    chunks.iter().for_each(|c| out.extend_from_slice(c));
    out
}

/// A chunk frame around `payload`, with its checksum.
fn frame(tag: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![tag, 0, 0, 0];
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc32fast::hash(payload).to_le_bytes());
    out.extend_from_slice(payload);
    out
}

/// Enough events for several chunks.
fn many() -> Vec<Event> {
    (0..150_000u64)
        .map(|i| Event { ts_ns: i, cpu: 0, kind: EventKind::Migrate { tid: 7, from_cpu: 0, to_cpu: 1 } })
        .collect()
}

fn damage(err: Option<ReadError>) -> String {
    match err {
        Some(ReadError::Damaged(s)) => s,
        other => panic!("expected damage, got {other:?}"),
    }
}

#[test]
fn round_trips_every_event_kind() {
    let events = every_kind();
    let (back, trailer, err) = read_all(&write(&events, true));
    assert!(err.is_none(), "{err:?}");
    assert_eq!(back, events);
    assert_eq!(trailer.map(|t| t.end_reason), Some("duration".to_string()));
}

#[test]
fn many_chunks_round_trip_and_switches_are_small() {
    let events: Vec<Event> = (0..100_000u64)
        .map(|i| Event {
            ts_ns: 5_000_000_000 + i * 1_700,
            cpu: (i % 2) as u32,
            kind: EventKind::Switch {
                prev_tid: 31_000 + (i % 7) as u32,
                next_tid: 0,
                prev_state: 1,
                next_wait_ns: None,
                other: 0,
            },
        })
        .collect();
    let bytes = write(&events, true);
    let (back, _, err) = read_all(&bytes);
    assert!(err.is_none());
    assert_eq!(back.len(), events.len());
    assert_eq!(back, events);
    let per_event = bytes.len() as f64 / events.len() as f64;
    assert!(per_event < 10.0, "{per_event} bytes per switch");
}

#[test]
fn a_file_cut_anywhere_reads_up_to_its_last_whole_chunk() {
    let events: Vec<Event> = (0..60_000u64)
        .map(|i| Event { ts_ns: i, cpu: 0, kind: EventKind::Migrate { tid: 7, from_cpu: 0, to_cpu: 1 } })
        .collect();
    let bytes = write(&events, true);
    let mut whole_chunks_seen = 0;
    for cut in [bytes.len() - 1, bytes.len() - 30, bytes.len() / 2, 300] {
        let (back, trailer, err) = read_all(&bytes[..cut]);
        assert!(trailer.is_none());
        assert!(matches!(err, Some(ReadError::Truncated { .. })), "cut at {cut}: {err:?}");
        assert_eq!(back[..], events[..back.len()], "a prefix, in order");
        if !back.is_empty() {
            whole_chunks_seen += 1;
        }
    }
    assert!(whole_chunks_seen >= 2);
    // Cut inside the header: said as such, not as a chunk.
    for cut in [20, 25] {
        let (_, _, err) = read_all(&bytes[..cut]);
        let err = err.expect("an error");
        assert!(matches!(err, ReadError::HeaderCut { .. }), "cut at {cut}: {err:?}");
        assert!(err.to_string().contains("inside its header"), "{err}");
    }
}

#[test]
fn a_flipped_bit_is_reported_as_corruption() {
    let bytes = write(&every_kind(), true);
    let header_end = 20 + serde_json::to_vec(&header()).expect("json").len();
    let mut bad = bytes.clone();
    bad[header_end + 40] ^= 0x04;
    let (_, _, err) = read_all(&bad);
    assert!(matches!(err, Some(ReadError::Corrupt { .. })), "{err:?}");
    let mut bad_header = bytes.clone();
    bad_header[30] ^= 0x01;
    assert!(matches!(Reader::new(&bad_header[..]), Err(ReadError::BadHeader(_))));
}

#[test]
fn foreign_and_future_files_are_refused() {
    assert!(matches!(Reader::new(&b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0\0\0\0\0"[..]), Err(ReadError::NotARecord)));
    assert!(matches!(Reader::new(&b"hello"[..]), Err(ReadError::NotARecord)));
    assert!(matches!(Reader::new(&b""[..]), Err(ReadError::NotARecord)));
    let mut future = write(&[], true);
    future[8] = 9;
    assert!(matches!(Reader::new(&future[..]), Err(ReadError::UnsupportedVersion(9))));
}

#[test]
fn a_file_without_trailer_still_reads() {
    let events = every_kind();
    let (back, trailer, err) = read_all(&write(&events, false));
    assert!(err.is_none());
    assert!(trailer.is_none());
    assert_eq!(back, events);
}

#[test]
fn clock_mapping() {
    let c = ClockMapping { monotonic_ns: 100, realtime_ns: 1_000 };
    assert_eq!(c.to_realtime(150), 1_050);
    assert_eq!(c.to_realtime(50), 950);
}

/// Events in the chunks before the `n`th.
fn events_before(chunks: &[Vec<u8>], n: usize) -> usize {
    chunks[..n].iter().map(|c| u32::from_le_bytes(c[28..32].try_into().expect("4 bytes")) as usize).sum()
}

#[test]
fn version_2_trailers_count_chunks_and_events() {
    let bytes = write(&many(), true);
    let (_, chunks) = split_chunks(&bytes);
    assert!(chunks.len() >= 4, "{} chunks", chunks.len());
    let trailer: serde_json::Value = serde_json::from_slice(&chunks.last().expect("trailer")[12..]).expect("JSON");
    assert_eq!(trailer["chunks"], chunks.len() as u64 - 1);
    assert_eq!(trailer["records"], 150_000);
    assert_eq!(trailer["events"], 11, "the kernel's count is kept apart");
    for (i, c) in chunks[..chunks.len() - 1].iter().enumerate() {
        assert_eq!(c[12..20], (i as u64).to_le_bytes(), "seq of chunk {i}");
        assert_eq!(c[20..28], (events_before(&chunks, i) as u64).to_le_bytes(), "events_before of chunk {i}");
    }
    let (back, t, err) = read_all(&bytes);
    assert!(err.is_none(), "{err:?}");
    assert_eq!((back.len(), t.map(|t| t.events)), (150_000, Some(11)));
}

#[test]
fn a_missing_chunk_is_damage() {
    let (head, mut chunks) = split_chunks(&write(&many(), true));
    chunks.remove(1);
    let at = (head.len() + chunks[0].len()) as u64;
    let (back, trailer, err) = read_all(&join(&head, &chunks));
    assert_eq!(damage(err), format!("chunk 1 is missing (the next chunk, at byte {at}, is 2)"));
    assert_eq!(back.len(), events_before(&chunks, 1), "the first chunk's events are delivered");
    assert!(trailer.is_none());
    // Two in a row.
    chunks.remove(1);
    let (_, _, err) = read_all(&join(&head, &chunks));
    assert!(damage(err).starts_with("chunks 1 to 2 are missing (the next chunk, at byte "));
}

#[test]
fn a_repeated_chunk_is_damage() {
    let (head, mut chunks) = split_chunks(&write(&many(), true));
    let at = (head.len() + chunks[0].len() + chunks[1].len()) as u64;
    chunks.insert(2, chunks[1].clone());
    let (back, _, err) = read_all(&join(&head, &chunks));
    assert_eq!(damage(err), format!("chunk 1 appears twice (again at byte {at})"));
    assert_eq!(back.len(), events_before(&chunks, 2));
}

#[test]
fn a_trailer_in_the_middle_is_damage() {
    let (head, mut chunks) = split_chunks(&write(&many(), true));
    let n = chunks.len() - 1;
    let trailer = chunks.pop().expect("trailer");
    chunks.insert(2, trailer);
    let (back, t, err) = read_all(&join(&head, &chunks));
    let held = events_before(&chunks, 2);
    let msg = format!(
        "the trailer says {n} chunks and 150,000 events, the file holds 2 chunks and {}",
        crate::fmt::count(held as u64)
    );
    assert_eq!(damage(err), msg);
    assert_eq!(back.len(), held);
    assert_eq!(t.map(|t| t.end_reason), Some("duration".into()), "the trailer itself is whole");
}

#[test]
fn a_header_and_trailer_alone_are_damage_when_the_trailer_counts_events() {
    let (head, chunks) = split_chunks(&write(&many(), true));
    let n = chunks.len() - 1;
    let (back, _, err) = read_all(&join(&head, &chunks[n..]));
    assert_eq!(damage(err), format!("the trailer says {n} chunks and 150,000 events, the file holds 0 chunks and 0"));
    assert!(back.is_empty());
    // An empty recording is whole.
    let (back, t, err) = read_all(&write(&[], true));
    assert!(err.is_none() && back.is_empty() && t.is_some(), "{err:?}");
}

#[test]
fn bytes_after_the_trailer_are_damage() {
    let mut bytes = write(&every_kind(), true);
    let end = bytes.len();
    bytes.push(0);
    let (back, t, err) = read_all(&bytes);
    assert_eq!(damage(err), format!("data after the trailer at byte {end}"));
    assert_eq!((back, t.is_some()), (every_kind(), true));
    // A second whole file after the first is damage too.
    let mut twice = write(&every_kind(), true);
    twice.extend(write(&every_kind(), true));
    assert_eq!(damage(read_all(&twice).2), format!("data after the trailer at byte {end}"));
}

#[test]
fn a_wrong_count_of_events_before_a_chunk_is_damage() {
    let (head, mut chunks) = split_chunks(&write(&many(), true));
    let claimed = events_before(&chunks, 1) as u64 + 5;
    let mut payload = chunks[1][12..].to_vec();
    payload[8..16].copy_from_slice(&claimed.to_le_bytes());
    chunks[1] = frame(TAG_EVENTS, &payload);
    let at = head.len() + chunks[0].len();
    let msg = format!(
        "chunk 1 at byte {at} says {} events came before it, the file holds {}",
        crate::fmt::count(claimed),
        crate::fmt::count(claimed - 5)
    );
    assert_eq!(damage(read_all(&join(&head, &chunks)).2), msg);
}

#[test]
fn a_version_2_trailer_without_counts_is_damage() {
    let (head, mut chunks) = split_chunks(&write(&every_kind(), true));
    let n = chunks.len() - 1;
    let t = serde_json::to_vec(&Trailer::default()).expect("JSON");
    chunks[n] = frame(TAG_TRAILER, &t);
    assert_eq!(damage(read_all(&join(&head, &chunks)).2), "the trailer does not count the file's chunks and events");
}

#[test]
fn version_1_files_still_read_without_the_new_checks() {
    let events = many();
    let v1 = write_as(&events, true, 1);
    let r = Reader::new(&v1[..]).expect("a version-1 file");
    assert_eq!(r.version(), 1);
    let (back, t, err) = read_all(&v1);
    assert!(err.is_none(), "{err:?}");
    assert_eq!((back == events, t.map(|t| t.end_reason)), (true, Some("duration".into())));
    // Version 1 has no counts to check a removed chunk against: as before, it goes unnoticed.
    let (head, mut chunks) = split_chunks(&v1);
    chunks.remove(1);
    let (back, t, err) = read_all(&join(&head, &chunks));
    assert!(err.is_none() && t.is_some(), "{err:?}");
    assert!(back.len() < events.len());
}

/// The events and trailer of `tests/data/vN-every-kind.record`, a file
/// the version-N writer wrote, read whole.
fn old_file(version: u16) -> (Vec<Event>, Trailer) {
    let path = format!("{}/tests/data/v{version}-every-kind.record", env!("CARGO_MANIFEST_DIR"));
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    assert_eq!(bytes[8..10], version.to_le_bytes());
    let (back, t, err) = read_all(&bytes);
    assert!(err.is_none(), "{err:?}");
    (back, t.expect("trailer"))
}

#[test]
fn a_file_written_by_the_version_1_writer_reads_whole() {
    let (back, t) = old_file(1);
    assert_eq!(back, every_kind_before_4());
    assert_eq!(
        (t.decode_errors, t.first_decode_error.as_deref()),
        (2, Some("record kind 99 is unknown to this pintrace"))
    );
}

#[test]
fn files_written_by_the_version_2_and_3_writers_read_whole() {
    let (back, t) = old_file(2);
    assert_eq!((back, t.end_reason), (every_kind_before_4(), "duration".into()));
    // Version 3 has the events of version 4, but no waits.
    let (back, t) = old_file(3);
    assert_eq!((back, t.end_reason), (without_waits(every_kind_before_5()), "duration".into()));
    // Version 4 has them all but the CPU limit changes of version 5.
    let (back, t) = old_file(4);
    assert_eq!((back, t.end_reason), (every_kind_before_5(), "duration".into()));
}

/// Switches between two TIDs, as many as `n`.
fn switches(a: u32, b: u32, n: u64) -> Vec<Event> {
    (0..n)
        .map(|i| {
            let (prev_tid, next_tid) = if i % 2 == 0 { (a, b) } else { (b, a) };
            Event {
                ts_ns: 1_000 + i * 300,
                cpu: 1,
                kind: EventKind::Switch { prev_tid, next_tid, prev_state: 1, next_wait_ns: None, other: 0 },
            }
        })
        .collect()
}

#[test]
fn version_3_writes_the_target_s_tids_in_a_byte() {
    // header(): the target's PID is 42. A switch between two of its threads
    // takes 7 bytes: code, time (300 ns; the first event's is 0 and takes
    // one byte less), CPU, two TIDs, state. In version 2 they took 3 bytes
    // each from TID 16,384 on, 4 from 2,097,152 on.
    let body = |events: &[Event], version| write_as(events, false, version).len() - write_as(&[], false, version).len();
    let frame = 12;
    assert_eq!(body(&switches(43, 44, 1000), 3), frame + 32 + 1000 * 7 - 1);
    assert_eq!(body(&switches(43, 44, 1000), 2), frame + 28 + 1000 * 7 - 1);
    assert_eq!(body(&switches(2_000_043, 2_000_044, 1000), 2), frame + 28 + 1000 * 11 - 1);
    // A TID as far from the PID as the PID is from 0 takes a byte more.
    assert_eq!(body(&switches(2_000_043, 2_000_044, 1000), 3), frame + 32 + 1000 * 13 - 1);
}

#[test]
fn every_tid_reads_back_in_version_3() {
    let tids = [0, 1, 41, 42, 43, 42 + 63, 42 + 64, 65_535, i32::MAX as u32, u32::MAX - 1, u32::MAX];
    let events: Vec<Event> = tids
        .iter()
        .flat_map(|&t| {
            [
                EventKind::Switch { prev_tid: t, next_tid: 0, prev_state: 0, next_wait_ns: None, other: 0 },
                EventKind::Wakeup { tid: t, target_cpu: 0, waker_tid: t, new_task: false },
                EventKind::Signal {
                    sender_tid: t,
                    sender_tgid: t,
                    target_tid: t,
                    sig: 23,
                    code: -6,
                    result: 0,
                    group: false,
                },
            ]
        })
        .map(|kind| Event { ts_ns: 5, cpu: 0, kind })
        .collect();
    let (back, _, err) = read_all(&write(&events, true));
    assert!(err.is_none(), "{err:?}");
    assert_eq!(back, events);
}

#[test]
fn a_tid_beyond_the_range_is_named() {
    use pintrace_common as w;
    // PID 42, and a TID written as 43 below it: -1 is no TID.
    let one = [Event { ts_ns: 5, cpu: 1, kind: EventKind::Migrate { tid: 43, from_cpu: 0, to_cpu: 1 } }];
    let (head, mut chunks) = split_chunks(&write(&one, true));
    let payload = chunks[0][12..].to_vec();
    assert_eq!(payload[32..], [w::KIND_MIGRATE as u8, 0, 2, 3, 0, 1], "code, time, CPU, TID, from, to");
    let far: &[&[u8]] = &[
        &[86],                                                         // zigzag(-43) + 1
        &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01], // u64::MAX (found by fuzzing)
        &[0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01], // zigzag(i64::MAX) + 1
    ];
    for tid in far {
        let mut p = payload[..35].to_vec();
        p.extend_from_slice(tid);
        p.extend_from_slice(&payload[36..]);
        chunks[0] = frame(TAG_EVENTS, &p);
        match read_all(&join(&head, &chunks)).2 {
            Some(ReadError::Corrupt { reason, .. }) => assert_eq!(reason, "event 1 of 1: TID out of range"),
            other => panic!("{tid:?}: {other:?}"),
        }
    }
}

#[test]
fn an_undecodable_event_is_named() {
    let one = [Event { ts_ns: 5, cpu: 1, kind: EventKind::Lost { total: 3 } }];
    let (head, mut chunks) = split_chunks(&write(&one, true));
    let mut payload = chunks[0][12..].to_vec();
    payload[32] = 99; // the first event's code
    chunks[0] = frame(TAG_EVENTS, &payload);
    let (back, _, err) = read_all(&join(&head, &chunks));
    assert!(back.is_empty());
    match err {
        Some(ReadError::Corrupt { offset, reason }) => {
            assert_eq!((offset, reason.as_str()), (head.len() as u64, "event 1 of 1: unknown event code 99"));
        }
        other => panic!("{other:?}"),
    }
}

fn named(tid: u32, name: &str) -> Event {
    Event { ts_ns: 1, cpu: 0, kind: EventKind::GoLock { tid, caller: 1, func: Some(ustr::ustr(name)) } }
}

#[test]
fn a_read_interns_a_bounded_number_of_function_names() {
    // Three distinct names, each used twice: within a limit of three.
    let names = ["limit.a", "limit.b", "limit.c"];
    let ok: Vec<Event> = names.iter().chain(&names).enumerate().map(|(i, n)| named(i as u32, n)).collect();
    let (back, _, err) = read_with(&write(&ok, true), 3);
    assert!(err.is_none(), "{err:?}");
    assert_eq!(back, ok);
    // A fourth one, never interned before, is damage and is not interned.
    let fourth = "limit.d-never-seen-elsewhere";
    let mut bad = ok.clone();
    bad.push(Event { ts_ns: 1, cpu: 0, kind: EventKind::GoLock { tid: 9, caller: 1, func: None } });
    let mut bytes = write(&bad, true);
    // Swap the empty name for the new one, by hand: the writer would intern it.
    let (head, mut chunks) = split_chunks(&bytes);
    let mut payload = chunks[0][12..].to_vec();
    assert_eq!(payload.pop(), Some(0), "the last event ends with an empty name");
    payload.push(fourth.len() as u8);
    payload.extend_from_slice(fourth.as_bytes());
    chunks[0] = frame(TAG_EVENTS, &payload);
    bytes = join(&head, &chunks);
    let (back, _, err) = read_with(&bytes, 3);
    assert!(back.is_empty());
    assert!(
        matches!(&err, Some(ReadError::Corrupt { reason, .. }) if reason == "event 7 of 7: more than 3 distinct function names"),
        "{err:?}"
    );
    assert!(ustr::existing_ustr(fourth).is_none(), "the name over the limit was not interned");
    // The default limit lets it through.
    let (back, _, err) = read_all(&bytes);
    assert!(err.is_none(), "{err:?}");
    assert_eq!(back.len(), 7);
}

#[test]
fn a_count_field_cannot_make_the_reader_allocate() {
    // An events chunk that claims four billion events but holds none.
    let mut payload = vec![0u8; 16];
    payload.extend_from_slice(&u32::MAX.to_le_bytes());
    payload.extend_from_slice(&0u64.to_le_bytes());
    payload.extend_from_slice(&42u32.to_le_bytes());
    let (head, _) = split_chunks(&write(&[], true));
    let (back, _, err) = read_all(&join(&head, &[frame(TAG_EVENTS, &payload)]));
    assert!(back.is_empty());
    assert!(matches!(&err, Some(ReadError::Corrupt { reason, .. }) if reason.contains("event cut short")), "{err:?}");
    // A chunk length past the limit is refused before anything is read.
    let mut huge = frame(TAG_EVENTS, &[]);
    huge[4..8].copy_from_slice(&(MAX_EVENTS_CHUNK + 1).to_le_bytes());
    let (_, _, err) = read_all(&join(&head, &[huge]));
    assert!(matches!(&err, Some(ReadError::Corrupt { reason, .. }) if reason.contains("implausible")), "{err:?}");
}

/// What `report` and the record_reader fuzz target do with a file's
/// events: fold them into the model, close an interval, judge findings.
fn fold(header: &RecordHeader, events: &[Event]) -> crate::model::Snapshot {
    use crate::findings::{self, Context, Thresholds};
    let mut model = crate::model::Model::new(header.start_ns);
    let mut last = header.start_ns;
    for e in events {
        model.apply(e);
        last = last.max(e.ts_ns);
    }
    model.tick(last);
    let live = model.live(None);
    let t = Thresholds::default();
    let _ = findings::evaluate(&live, &Context::of(header), &t);
    let _ = findings::capacity(&live, None, &t);
    model.snapshot(last)
}

/// Found by the fuzzer: a file's times can be anything, and summing them
/// over threads, or adding a window to them, overflowed.
#[test]
fn times_near_the_end_of_the_clock_fold_without_overflow() {
    let comm = Comm::new("t");
    let mut events = vec![];
    for tid in 1..=3u32 {
        events.push(Event { ts_ns: 0, cpu: NO_CPU, kind: EventKind::ThreadSeen { tid, tgid: 1, comm } });
        events.push(Event {
            ts_ns: 0,
            cpu: tid,
            kind: EventKind::Switch { prev_tid: 0, next_tid: tid, prev_state: 0, next_wait_ns: None, other: 0 },
        });
    }
    events.push(Event { ts_ns: u64::MAX - 1, cpu: 9, kind: EventKind::Migrate { tid: 1, from_cpu: 0, to_cpu: 1 } });
    let (back, _, err) = read_all(&write(&events, true));
    assert!(err.is_none(), "{err:?}");
    let snap = fold(&header(), &back);
    assert_eq!(snap.process.on_cpu_ns, u64::MAX, "saturated, not wrapped");
}

/// Inputs the fuzzers found (`fuzz/`), kept so that the ordinary tests
/// replay them: each file is read as it is and as the record_reader target
/// reads it (checksums fixed), its events folded into the model, and it is
/// fed to both decoders. None may panic; every one must end in an answer.
#[test]
fn the_damaged_corpus_reads_without_panics() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/damaged");
    let mut files: Vec<_> = std::fs::read_dir(dir).expect("tests/damaged").map(|e| e.expect("entry").path()).collect();
    files.sort();
    assert!(files.len() >= 10, "{} files", files.len());
    let mut errors = 0;
    for path in &files {
        let bytes = std::fs::read(path).expect("read");
        for fixed in [false, true] {
            let mut b = bytes.clone();
            // As the target reads them: the preamble's flags byte says how.
            let flags = b.get(10).copied().unwrap_or(0);
            if fixed && flags & 1 == 0 {
                fix_checksums(&mut b, flags & 2 != 0);
            }
            let Ok(mut r) = Reader::new(&b[..]) else {
                errors += 1;
                continue;
            };
            let mut events = vec![];
            for _ in 0..10_000 {
                match r.next_chunk() {
                    Ok(Some(Chunk::Events(e))) => events.extend(e),
                    Ok(Some(Chunk::Trailer(_))) => {}
                    Ok(None) => break,
                    Err(e) => {
                        assert!(!e.to_string().contains('\n'), "{}: one line: {e}", path.display());
                        errors += 1;
                        break;
                    }
                }
            }
            fold(r.header(), &events);
        }
        let _ = crate::event::decode(&bytes);
        let _ = decode_events(&bytes, 2);
        let _ = decode_events(&bytes, VERSION);
    }
    assert!(errors > 0, "the corpus holds damaged files");
}

/// The fuzzers' seeds (`fuzz/corpus/*/seed-*`) and the damaged files among
/// them in `tests/damaged/` (real files and records, whole and damaged) are
/// what this writer makes today: the test fails when the format changes and
/// they were not written anew, with
/// `PINTRACE_WRITE_SEEDS=1 cargo test -p pintrace --lib fuzz_seeds`.
#[test]
fn fuzz_seeds_are_current() {
    let mut out: Vec<(std::path::PathBuf, Vec<u8>)> = Vec::new();
    use pintrace_common as w;
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let reader = root.join("fuzz/corpus/record_reader");
    let decode = root.join("fuzz/corpus/event_decode");
    let damaged = root.join("pintrace/tests/damaged");
    // Small chunks: three events each.
    let small_chunks = |version: u16| {
        let mut wr = Writer::with_version(Vec::new(), &header(), version).expect("header");
        for (i, e) in every_kind().iter().enumerate() {
            wr.push(e).expect("push");
            if i % 3 == 2 {
                wr.flush_chunk().expect("flush");
            }
        }
        let n = every_kind().len() as u64;
        let t = Trailer { end_ns: 30_000, end_reason: "duration".into(), events: n, ..Trailer::default() };
        wr.finish(&t).expect("finish").1
    };
    let small = small_chunks(VERSION);
    let (head, chunks) = split_chunks(&small);
    let n = chunks.len() - 1;
    let with_flags = |mut b: Vec<u8>, flags: u8| {
        b[10] = flags;
        b
    };
    let mut flipped = small.clone();
    flipped[head.len() + 40] ^= 0x10;
    let whole = [
        (format!("v{VERSION}-every-kind"), write(&every_kind(), true)),
        (format!("v{VERSION}-small-chunks"), small.clone()),
        (format!("v{VERSION}-small-chunks-fix-sequence"), with_flags(small.clone(), 2)),
        ("v4-small-chunks".to_string(), small_chunks(4)),
        ("v3-small-chunks".to_string(), small_chunks(3)),
        ("v2-small-chunks".to_string(), small_chunks(2)),
        ("v1-small-chunks".to_string(), small_chunks(1)),
        (format!("v{VERSION}-empty"), write(&[], true)),
    ];
    let bad = [
        (format!("v{VERSION}-no-trailer"), join(&head, &chunks[..n])),
        (format!("v{VERSION}-chunk-missing"), join(&head, &[&chunks[..1], &chunks[2..]].concat())),
        (format!("v{VERSION}-chunk-repeated"), join(&head, &[&chunks[..2], &chunks[1..]].concat())),
        (format!("v{VERSION}-trailer-moved"), join(&head, &[&chunks[..1], &chunks[n..], &chunks[1..n]].concat())),
        (format!("v{VERSION}-trailer-alone"), join(&head, &chunks[n..])),
        (format!("v{VERSION}-after-trailer"), [small.clone(), vec![b'E', 0, 0, 0]].concat()),
        (format!("v{VERSION}-cut"), small[..small.len() * 2 / 3].to_vec()),
        (format!("v{VERSION}-flipped-bit-kept"), with_flags(flipped, 1)),
    ];
    for (name, bytes) in whole.iter().chain(&bad) {
        out.push((reader.join(format!("seed-{name}")), bytes.clone()));
    }
    for (name, bytes) in &bad {
        out.push((damaged.join(format!("seed-{name}")), bytes.clone()));
    }
    // The events of each chunk, as the file's event decoder takes them.
    for (i, c) in chunks[..n].iter().enumerate() {
        out.push((decode.join(format!("seed-chunk-{i}")), c[12 + 16..].to_vec()));
    }
    // A kernel record of each kind, at its size.
    let sizes = [
        (w::KIND_SWITCH, std::mem::size_of::<w::SwitchRecord>()),
        (w::KIND_SWITCH_WAIT, std::mem::size_of::<w::SwitchWaitRecord>()),
        (w::KIND_MIGRATE, std::mem::size_of::<w::MigrateRecord>()),
        (w::KIND_WAKEUP, std::mem::size_of::<w::WakeupRecord>()),
        (w::KIND_SIGNAL, std::mem::size_of::<w::SignalRecord>()),
        (w::KIND_NEW_TASK, std::mem::size_of::<w::NewTaskRecord>()),
        (w::KIND_EXIT, std::mem::size_of::<w::ExitRecord>()),
        (w::KIND_RENAME, std::mem::size_of::<w::RenameRecord>()),
        (w::KIND_TGKILL, std::mem::size_of::<w::TgkillRecord>()),
        (w::KIND_CLONE_EXIT, std::mem::size_of::<w::CloneExitRecord>()),
        (w::KIND_EXEC, std::mem::size_of::<w::ExecRecord>()),
        (w::KIND_GO_LOCK, std::mem::size_of::<w::GoLockRecord>()),
    ];
    for (kind, size) in sizes {
        let mut b: Vec<u8> = (0..size).map(|i| i as u8).collect();
        b[..4].copy_from_slice(&kind.to_le_bytes());
        b[4..8].copy_from_slice(&1u32.to_le_bytes());
        out.push((decode.join(format!("seed-kernel-{kind}")), b));
    }
    let write = std::env::var_os("PINTRACE_WRITE_SEEDS").is_some_and(|v| v == "1");
    for (path, bytes) in out {
        if write {
            std::fs::create_dir_all(path.parent().expect("a directory")).expect("mkdir");
            std::fs::write(&path, &bytes).expect("write");
        } else {
            let have = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert!(have == bytes, "{} is stale: write the seeds anew (see above)", path.display());
        }
    }
}
