//! Writing and reading record files together: round trips, truncation, corruption.
use super::*;
use crate::event::{Comm, Event, EventKind, NO_CPU};

fn header() -> RecordHeader {
    RecordHeader {
        pintrace_version: "0.1.0".into(),
        host: "h".into(),
        kernel: "6.18".into(),
        nr_cpus: 2,
        target: Target { pid: 42, comm: "app".into(), cmdline: "app -x".into() },
        clock: ClockMapping { monotonic_ns: 1_000, realtime_ns: 1_700_000_000_000_000_000 },
        start_ns: 1_000,
        probes: vec![ProbeRecord { name: "sched_switch".into(), status: "attached".into() }],
        syscalls: false,
        cgroup: None,
        go: None,
    }
}

fn every_kind() -> Vec<Event> {
    let c = Comm::new("worker-1");
    let k = [
        EventKind::ThreadSeen { tid: 42, tgid: 42, comm: c },
        EventKind::Switch { prev_tid: 42, next_tid: 0, prev_state: 0x100 },
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
        EventKind::Switch { prev_tid: 42, next_tid: 43, prev_state: pintrace_common::STATE_THROTTLED },
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

fn write(events: &[Event], trailer: bool) -> Vec<u8> {
    let mut w = Writer::new(Vec::new(), &header()).expect("header");
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
    let mut r = match Reader::new(bytes) {
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
            Err(e) => return (events, trailer, Some(e)),
        }
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
            kind: EventKind::Switch { prev_tid: 31_000 + (i % 7) as u32, next_tid: 0, prev_state: 1 },
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
    for cut in [bytes.len() - 1, bytes.len() - 30, bytes.len() / 2, 300, 25] {
        let (back, trailer, err) = read_all(&bytes[..cut]);
        assert!(trailer.is_none());
        assert!(matches!(err, Some(ReadError::Truncated { .. })), "cut at {cut}: {err:?}");
        assert_eq!(back[..], events[..back.len()], "a prefix, in order");
        if !back.is_empty() {
            whole_chunks_seen += 1;
        }
    }
    assert!(whole_chunks_seen >= 2);
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
