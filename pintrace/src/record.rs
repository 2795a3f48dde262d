//! The record file format (version 1).
//!
//! ```text
//! file    := preamble header chunk* trailer-chunk?
//! preamble:= "PINTRACE" u16 version u16 0 u32 header_len u32 crc32(header)
//! header  := JSON (RecordHeader), header_len bytes
//! chunk   := u8 tag ('E' events | 'T' trailer) [u8; 3] 0 u32 len u32 crc32(payload) payload
//! 'E'     := u32 count u64 base_ts event*          (at most CHUNK_BYTES of events)
//! event   := u8 kind, zigzag varint (ts - previous ts), varint (cpu + 1), fields as varints
//! 'T'     := JSON (Trailer)
//! ```
//! All integers are little-endian. Every chunk stands alone (its own
//! checksum and base time), so a file cut short by a crash or a full disk
//! reads up to its last whole chunk. Readers ignore unknown JSON fields, so
//! later versions can add to the header and trailer.
use std::{
    fs::File,
    io::{self, BufReader, Read, Write},
    path::Path,
};

use bytes::{Buf, BufMut, BytesMut};
use serde::{Deserialize, Serialize};

use crate::event::{Comm, Event, EventKind};

pub const MAGIC: &[u8; 8] = b"PINTRACE";
pub const VERSION: u16 = 1;
/// A chunk is written once this many bytes of events are buffered.
pub const CHUNK_BYTES: usize = 256 * 1024;
/// Larger chunks or headers are taken as corruption rather than allocated.
const MAX_CHUNK: u32 = 64 << 20;
const TAG_EVENTS: u8 = b'E';
const TAG_TRAILER: u8 = b'T';

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    pub pid: u32,
    pub comm: String,
    #[serde(default)]
    pub cmdline: String,
}

/// CLOCK_MONOTONIC and CLOCK_REALTIME read together, to map event times to wall time.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClockMapping {
    pub monotonic_ns: u64,
    pub realtime_ns: u64,
}

impl ClockMapping {
    /// Wall-clock nanoseconds since the Unix epoch for a CLOCK_MONOTONIC time.
    pub fn to_realtime(&self, monotonic_ns: u64) -> u64 {
        (i128::from(self.realtime_ns) + i128::from(monotonic_ns) - i128::from(self.monotonic_ns)).max(0) as u64
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProbeRecord {
    pub name: String,
    pub status: String,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordHeader {
    pub pintrace_version: String,
    pub host: String,
    pub kernel: String,
    pub nr_cpus: u32,
    pub target: Target,
    pub clock: ClockMapping,
    /// CLOCK_MONOTONIC time at which every probe was attached.
    pub start_ns: u64,
    pub probes: Vec<ProbeRecord>,
    #[serde(default)]
    pub syscalls: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Trailer {
    pub end_ns: u64,
    /// Why the recording ended: "duration", "interrupted", "target exited".
    pub end_reason: String,
    pub events: u64,
    pub lost_events: u64,
    #[serde(default)]
    pub decode_errors: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("{0}")]
    Io(#[from] io::Error),
    #[error("not a pintrace record file (bad magic)")]
    NotARecord,
    #[error("record format version {0} is newer than this pintrace reads ({VERSION})")]
    UnsupportedVersion(u16),
    #[error("damaged header: {0}")]
    BadHeader(String),
    #[error("file is cut short at byte {offset} (inside a chunk)")]
    Truncated { offset: u64 },
    #[error("corrupt chunk at byte {offset}: {reason}")]
    Corrupt { offset: u64, reason: String },
}

// ---- varints ----

fn put_varint(buf: &mut BytesMut, mut v: u64) {
    while v >= 0x80 {
        buf.put_u8((v as u8) | 0x80);
        v >>= 7;
    }
    buf.put_u8(v as u8);
}

fn put_zigzag(buf: &mut BytesMut, v: i64) {
    put_varint(buf, ((v << 1) ^ (v >> 63)) as u64);
}

fn get_varint(buf: &mut &[u8]) -> Result<u64, String> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        if !buf.has_remaining() {
            return Err("event cut short".into());
        }
        let b = buf.get_u8();
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err("varint longer than 64 bits".into())
}

fn get_zigzag(buf: &mut &[u8]) -> Result<i64, String> {
    let v = get_varint(buf)?;
    Ok(((v >> 1) as i64) ^ -((v & 1) as i64))
}

fn get_u32(buf: &mut &[u8]) -> Result<u32, String> {
    u32::try_from(get_varint(buf)?).map_err(|_| "value out of range".to_string())
}

fn get_i32(buf: &mut &[u8]) -> Result<i32, String> {
    i32::try_from(get_zigzag(buf)?).map_err(|_| "value out of range".to_string())
}

fn put_comm(buf: &mut BytesMut, comm: &Comm) {
    let b = comm.as_bytes();
    buf.put_u8(b.len() as u8);
    buf.put_slice(b);
}

fn get_comm(buf: &mut &[u8]) -> Result<Comm, String> {
    if !buf.has_remaining() {
        return Err("event cut short".into());
    }
    let n = usize::from(buf.get_u8());
    if n >= pintrace_common::COMM_LEN || buf.remaining() < n {
        return Err("bad task name".into());
    }
    let mut c = [0u8; pintrace_common::COMM_LEN];
    c[..n].copy_from_slice(&buf[..n]);
    buf.advance(n);
    Ok(Comm(c))
}

// Event codes in the file. The kernel kinds keep their wire numbers.
const CODE_THREAD_SEEN: u8 = 100;
const CODE_LOST: u8 = 101;

fn encode(buf: &mut BytesMut, prev_ts: u64, e: &Event) {
    use pintrace_common as w;
    let code = match e.kind {
        EventKind::Switch { .. } => w::KIND_SWITCH as u8,
        EventKind::Migrate { .. } => w::KIND_MIGRATE as u8,
        EventKind::Wakeup { .. } => w::KIND_WAKEUP as u8,
        EventKind::Signal { .. } => w::KIND_SIGNAL as u8,
        EventKind::NewTask { .. } => w::KIND_NEW_TASK as u8,
        EventKind::Exit { .. } => w::KIND_EXIT as u8,
        EventKind::Rename { .. } => w::KIND_RENAME as u8,
        EventKind::Tgkill { .. } => w::KIND_TGKILL as u8,
        EventKind::CloneExit { .. } => w::KIND_CLONE_EXIT as u8,
        EventKind::ThreadSeen { .. } => CODE_THREAD_SEEN,
        EventKind::Lost { .. } => CODE_LOST,
    };
    buf.put_u8(code);
    put_zigzag(buf, e.ts_ns.wrapping_sub(prev_ts) as i64);
    put_varint(buf, u64::from(e.cpu.wrapping_add(1)));
    let v = |buf: &mut BytesMut, x: u32| put_varint(buf, u64::from(x));
    let z = |buf: &mut BytesMut, x: i32| put_zigzag(buf, i64::from(x));
    match e.kind {
        EventKind::Switch { prev_tid, next_tid, prev_state } => {
            v(buf, prev_tid);
            v(buf, next_tid);
            v(buf, prev_state);
        }
        EventKind::Migrate { tid, from_cpu, to_cpu } => {
            v(buf, tid);
            v(buf, from_cpu);
            v(buf, to_cpu);
        }
        EventKind::Wakeup { tid, target_cpu, waker_tid, new_task } => {
            v(buf, tid);
            v(buf, target_cpu);
            v(buf, waker_tid);
            v(buf, u32::from(new_task));
        }
        EventKind::Signal { sender_tid, sender_tgid, target_tid, sig, code, result, group } => {
            v(buf, sender_tid);
            v(buf, sender_tgid);
            v(buf, target_tid);
            z(buf, sig);
            z(buf, code);
            z(buf, result);
            v(buf, u32::from(group));
        }
        EventKind::NewTask { parent_tid, parent_tgid, child_tid, clone_flags, comm } => {
            v(buf, parent_tid);
            v(buf, parent_tgid);
            v(buf, child_tid);
            put_varint(buf, clone_flags);
            put_comm(buf, &comm);
        }
        EventKind::Exit { tid, tgid, group_dead, comm } => {
            v(buf, tid);
            v(buf, tgid);
            v(buf, u32::from(group_dead));
            put_comm(buf, &comm);
        }
        EventKind::Rename { tid, comm } => {
            v(buf, tid);
            put_comm(buf, &comm);
        }
        EventKind::Tgkill { sender_tid, tgid, tid, sig } => {
            v(buf, sender_tid);
            v(buf, tgid);
            v(buf, tid);
            z(buf, sig);
        }
        EventKind::CloneExit { parent_tid, ret, clone3 } => {
            v(buf, parent_tid);
            z(buf, ret);
            v(buf, u32::from(clone3));
        }
        EventKind::ThreadSeen { tid, tgid, comm } => {
            v(buf, tid);
            v(buf, tgid);
            put_comm(buf, &comm);
        }
        EventKind::Lost { total } => put_varint(buf, total),
    }
}

fn decode_one(buf: &mut &[u8], prev_ts: u64) -> Result<Event, String> {
    use pintrace_common as w;
    if !buf.has_remaining() {
        return Err("event cut short".into());
    }
    let code = buf.get_u8();
    let ts_ns = prev_ts.wrapping_add(get_zigzag(buf)? as u64);
    let cpu = get_u32(buf)?.wrapping_sub(1);
    let kind = match u32::from(code) {
        w::KIND_SWITCH => {
            EventKind::Switch { prev_tid: get_u32(buf)?, next_tid: get_u32(buf)?, prev_state: get_u32(buf)? }
        }
        w::KIND_MIGRATE => EventKind::Migrate { tid: get_u32(buf)?, from_cpu: get_u32(buf)?, to_cpu: get_u32(buf)? },
        w::KIND_WAKEUP => EventKind::Wakeup {
            tid: get_u32(buf)?,
            target_cpu: get_u32(buf)?,
            waker_tid: get_u32(buf)?,
            new_task: get_u32(buf)? != 0,
        },
        w::KIND_SIGNAL => EventKind::Signal {
            sender_tid: get_u32(buf)?,
            sender_tgid: get_u32(buf)?,
            target_tid: get_u32(buf)?,
            sig: get_i32(buf)?,
            code: get_i32(buf)?,
            result: get_i32(buf)?,
            group: get_u32(buf)? != 0,
        },
        w::KIND_NEW_TASK => EventKind::NewTask {
            parent_tid: get_u32(buf)?,
            parent_tgid: get_u32(buf)?,
            child_tid: get_u32(buf)?,
            clone_flags: get_varint(buf)?,
            comm: get_comm(buf)?,
        },
        w::KIND_EXIT => EventKind::Exit {
            tid: get_u32(buf)?,
            tgid: get_u32(buf)?,
            group_dead: get_u32(buf)? != 0,
            comm: get_comm(buf)?,
        },
        w::KIND_RENAME => EventKind::Rename { tid: get_u32(buf)?, comm: get_comm(buf)? },
        w::KIND_TGKILL => {
            EventKind::Tgkill { sender_tid: get_u32(buf)?, tgid: get_u32(buf)?, tid: get_u32(buf)?, sig: get_i32(buf)? }
        }
        w::KIND_CLONE_EXIT => {
            EventKind::CloneExit { parent_tid: get_u32(buf)?, ret: get_i32(buf)?, clone3: get_u32(buf)? != 0 }
        }
        c if c == u32::from(CODE_THREAD_SEEN) => {
            EventKind::ThreadSeen { tid: get_u32(buf)?, tgid: get_u32(buf)?, comm: get_comm(buf)? }
        }
        c if c == u32::from(CODE_LOST) => EventKind::Lost { total: get_varint(buf)? },
        other => return Err(format!("unknown event code {other}")),
    };
    Ok(Event { ts_ns, cpu, kind })
}

// ---- writing ----

/// Streams events to a record file, a chunk at a time.
pub struct Writer<W: Write> {
    out: W,
    chunk: BytesMut,
    frame: BytesMut,
    count: u32,
    base_ts: u64,
    prev_ts: u64,
    bytes: u64,
    events: u64,
}

impl<W: Write> Writer<W> {
    pub fn new(mut out: W, header: &RecordHeader) -> io::Result<Self> {
        let json = serde_json::to_vec(header).map_err(io::Error::other)?;
        let mut pre = BytesMut::with_capacity(20 + json.len());
        pre.put_slice(MAGIC);
        pre.put_u16_le(VERSION);
        pre.put_u16_le(0);
        pre.put_u32_le(json.len() as u32);
        pre.put_u32_le(crc32fast::hash(&json));
        pre.put_slice(&json);
        out.write_all(&pre)?;
        Ok(Writer {
            out,
            chunk: BytesMut::with_capacity(CHUNK_BYTES + 256),
            frame: BytesMut::with_capacity(CHUNK_BYTES + 256),
            count: 0,
            base_ts: 0,
            prev_ts: 0,
            bytes: pre.len() as u64,
            events: 0,
        })
    }

    pub fn push(&mut self, e: &Event) -> io::Result<()> {
        if self.count == 0 {
            self.base_ts = e.ts_ns;
            self.prev_ts = e.ts_ns;
        }
        encode(&mut self.chunk, self.prev_ts, e);
        self.prev_ts = e.ts_ns;
        self.count += 1;
        self.events += 1;
        if self.chunk.len() >= CHUNK_BYTES {
            self.flush_chunk()?;
        }
        Ok(())
    }

    fn write_frame(&mut self, tag: u8, payload: &[u8]) -> io::Result<()> {
        self.frame.clear();
        self.frame.put_u8(tag);
        self.frame.put_slice(&[0, 0, 0]);
        self.frame.put_u32_le(payload.len() as u32);
        self.frame.put_u32_le(crc32fast::hash(payload));
        self.frame.put_slice(payload);
        self.out.write_all(&self.frame)?;
        self.bytes += self.frame.len() as u64;
        Ok(())
    }

    /// Writes the buffered events as one chunk (nothing if none are buffered).
    pub fn flush_chunk(&mut self) -> io::Result<()> {
        if self.count == 0 {
            return Ok(());
        }
        let mut payload = BytesMut::with_capacity(12 + self.chunk.len());
        payload.put_u32_le(self.count);
        payload.put_u64_le(self.base_ts);
        payload.put_slice(&self.chunk);
        self.write_frame(TAG_EVENTS, &payload)?;
        self.out.flush()?;
        self.chunk.clear();
        self.count = 0;
        Ok(())
    }

    /// Events pushed so far.
    pub fn events(&self) -> u64 {
        self.events
    }

    /// Writes the last events and the trailer; returns the file's size and the output.
    pub fn finish(mut self, trailer: &Trailer) -> io::Result<(u64, W)> {
        self.flush_chunk()?;
        let json = serde_json::to_vec(trailer).map_err(io::Error::other)?;
        self.write_frame(TAG_TRAILER, &json)?;
        self.out.flush()?;
        Ok((self.bytes, self.out))
    }
}

// ---- reading ----

pub enum Chunk {
    Events(Vec<Event>),
    Trailer(Trailer),
}

/// Reads a record file a chunk at a time; never holds the whole file.
pub struct Reader<R: Read> {
    input: R,
    header: RecordHeader,
    offset: u64,
    finished: bool,
}

impl Reader<BufReader<File>> {
    pub fn open(path: &Path) -> Result<Self, ReadError> {
        Reader::new(BufReader::with_capacity(1 << 20, File::open(path)?))
    }
}

/// Reads exactly `buf.len()` bytes; Ok(false) on a clean end of file before
/// the first byte, Err(Truncated) on an end of file inside.
fn read_full<R: Read>(input: &mut R, buf: &mut [u8], offset: u64) -> Result<bool, ReadError> {
    let mut got = 0;
    while got < buf.len() {
        match input.read(&mut buf[got..]) {
            Ok(0) if got == 0 => return Ok(false),
            Ok(0) => return Err(ReadError::Truncated { offset }),
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(true)
}

impl<R: Read> Reader<R> {
    pub fn new(mut input: R) -> Result<Self, ReadError> {
        let mut pre = [0u8; 20];
        match read_full(&mut input, &mut pre, 0) {
            Ok(true) => {}
            Ok(false) => return Err(ReadError::NotARecord),
            Err(ReadError::Truncated { .. }) if !pre.starts_with(MAGIC) => return Err(ReadError::NotARecord),
            Err(e) => return Err(e),
        }
        if &pre[..8] != MAGIC {
            return Err(ReadError::NotARecord);
        }
        let mut p = &pre[8..];
        let version = p.get_u16_le();
        if version > VERSION || version == 0 {
            return Err(ReadError::UnsupportedVersion(version));
        }
        let _flags = p.get_u16_le();
        let len = p.get_u32_le();
        let crc = p.get_u32_le();
        if len > MAX_CHUNK {
            return Err(ReadError::BadHeader(format!("header length {len} is implausible")));
        }
        let mut json = vec![0u8; len as usize];
        if !read_full(&mut input, &mut json, 20)? {
            return Err(ReadError::Truncated { offset: 20 });
        }
        if crc32fast::hash(&json) != crc {
            return Err(ReadError::BadHeader("checksum mismatch".into()));
        }
        let header = serde_json::from_slice(&json).map_err(|e| ReadError::BadHeader(e.to_string()))?;
        Ok(Reader { input, header, offset: 20 + u64::from(len), finished: false })
    }

    pub fn header(&self) -> &RecordHeader {
        &self.header
    }

    /// The next chunk, or None at the end of the file.
    pub fn next_chunk(&mut self) -> Result<Option<Chunk>, ReadError> {
        if self.finished {
            return Ok(None);
        }
        let at = self.offset;
        let mut head = [0u8; 12];
        if !read_full(&mut self.input, &mut head, at)? {
            self.finished = true;
            return Ok(None);
        }
        let mut h = &head[..];
        let tag = h.get_u8();
        h.advance(3);
        let len = h.get_u32_le();
        let crc = h.get_u32_le();
        let corrupt = |reason: String| ReadError::Corrupt { offset: at, reason };
        if tag != TAG_EVENTS && tag != TAG_TRAILER {
            self.finished = true;
            return Err(corrupt(format!("unknown chunk tag {tag:#04x}")));
        }
        if len > MAX_CHUNK {
            self.finished = true;
            return Err(corrupt(format!("chunk length {len} is implausible")));
        }
        let mut payload = vec![0u8; len as usize];
        if !read_full(&mut self.input, &mut payload, at)? && len > 0 {
            self.finished = true;
            return Err(ReadError::Truncated { offset: at });
        }
        self.offset += 12 + u64::from(len);
        if crc32fast::hash(&payload) != crc {
            self.finished = true;
            return Err(corrupt("checksum mismatch".into()));
        }
        if tag == TAG_TRAILER {
            self.finished = true;
            let t = serde_json::from_slice(&payload).map_err(|e| corrupt(format!("bad trailer: {e}")))?;
            return Ok(Some(Chunk::Trailer(t)));
        }
        let mut p = &payload[..];
        if p.remaining() < 12 {
            return Err(corrupt("events chunk shorter than its header".into()));
        }
        let count = p.get_u32_le();
        let mut prev = p.get_u64_le();
        let mut events = Vec::with_capacity((count as usize).min(payload.len()));
        for _ in 0..count {
            let e = decode_one(&mut p, prev).map_err(corrupt)?;
            prev = e.ts_ns;
            events.push(e);
        }
        if p.has_remaining() {
            return Err(corrupt(format!("{} bytes after the last event", p.remaining())));
        }
        Ok(Some(Chunk::Events(events)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::NO_CPU;

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
            let t = Trailer { end_ns: 99, end_reason: "duration".into(), events: 11, lost_events: 0, decode_errors: 0 };
            w.finish(&t).expect("finish").1
        } else {
            w.flush_chunk().expect("flush");
            w.out
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
                Ok(Some(Chunk::Trailer(t))) => trailer = Some(t),
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
        assert!(matches!(
            Reader::new(&b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0\0\0\0\0"[..]),
            Err(ReadError::NotARecord)
        ));
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
}
