//! Reading a record file back a chunk at a time, stopping cleanly at damage.
use std::{
    fs::File,
    io::{self, BufReader, Read},
    path::Path,
};

use bytes::Buf;

use super::{
    codec::{decode_chunk, Names},
    ReadError, RecordHeader, Trailer, TrailerJson, MAGIC, MAX_CHUNK, MAX_EVENTS_CHUNK, MAX_NAMES, TAG_EVENTS,
    TAG_TRAILER, VERSION,
};
use crate::{event::Event, fmt::count};

pub enum Chunk {
    Events(Vec<Event>),
    /// Boxed: one per file, and much larger than an events chunk's handle.
    Trailer(Box<Trailer>),
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    Chunks,
    /// Version 2: the trailer was read; what follows it is damage.
    AfterTrailer,
    Done,
}

/// Reads a record file a chunk at a time; never holds the whole file.
pub struct Reader<R: Read> {
    input: R,
    header: RecordHeader,
    version: u16,
    offset: u64,
    state: State,
    /// Damage found in the trailer, reported by the call after the one that returned it.
    pending: Option<ReadError>,
    /// Events chunks and events read so far.
    chunks: u64,
    records: u64,
    names: Names,
    payload: Vec<u8>,
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

/// Reads `len` bytes into `buf` (replacing its contents), allocating only
/// as the bytes arrive: a length field cannot make the reader allocate
/// more than the file holds. Err(Truncated) if the file ends first.
fn read_exact_into<R: Read>(input: &mut R, buf: &mut Vec<u8>, len: u32, offset: u64) -> Result<(), ReadError> {
    buf.clear();
    let got = input.take(u64::from(len)).read_to_end(buf)?;
    if got < len as usize {
        return Err(ReadError::Truncated { offset });
    }
    Ok(())
}

/// "1 chunk", "2 chunks".
fn n(v: u64, what: &str) -> String {
    format!("{} {what}{}", count(v), if v == 1 { "" } else { "s" })
}

impl<R: Read> Reader<R> {
    pub fn new(input: R) -> Result<Self, ReadError> {
        Self::with_name_limit(input, MAX_NAMES)
    }

    /// A reader that interns at most `max_names` distinct function names.
    pub(crate) fn with_name_limit(mut input: R, max_names: usize) -> Result<Self, ReadError> {
        let mut pre = [0u8; 20];
        match read_full(&mut input, &mut pre, 0) {
            Ok(true) => {}
            Ok(false) => return Err(ReadError::NotARecord),
            Err(ReadError::Truncated { .. }) if !pre.starts_with(MAGIC) => return Err(ReadError::NotARecord),
            Err(ReadError::Truncated { offset }) => return Err(ReadError::HeaderCut { offset }),
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
        let mut json = Vec::new();
        read_exact_into(&mut input, &mut json, len, 20).map_err(|e| match e {
            ReadError::Truncated { offset } => ReadError::HeaderCut { offset },
            e => e,
        })?;
        if crc32fast::hash(&json) != crc {
            return Err(ReadError::BadHeader("checksum mismatch".into()));
        }
        let header = serde_json::from_slice(&json).map_err(|e| ReadError::BadHeader(e.to_string()))?;
        Ok(Reader {
            input,
            header,
            version,
            offset: 20 + u64::from(len),
            state: State::Chunks,
            pending: None,
            chunks: 0,
            records: 0,
            names: Names::new(max_names),
            payload: Vec::new(),
        })
    }

    pub fn header(&self) -> &RecordHeader {
        &self.header
    }

    /// The file's format version.
    pub fn version(&self) -> u16 {
        self.version
    }

    /// The next chunk, or None at the end of the file. After an error,
    /// always None: reading stops at the first damage.
    pub fn next_chunk(&mut self) -> Result<Option<Chunk>, ReadError> {
        let next = match self.state {
            State::Done => return Ok(None),
            State::AfterTrailer => self.after_trailer(),
            State::Chunks => self.read_chunk(),
        };
        if next.is_err() {
            self.state = State::Done;
        }
        next
    }

    /// Version 2: damage found in the trailer, or anything after it.
    fn after_trailer(&mut self) -> Result<Option<Chunk>, ReadError> {
        self.state = State::Done;
        if let Some(e) = self.pending.take() {
            return Err(e);
        }
        let mut byte = [0u8; 1];
        match read_full(&mut self.input, &mut byte, self.offset)? {
            false => Ok(None),
            true => Err(ReadError::Damaged(format!("data after the trailer at byte {}", self.offset))),
        }
    }

    fn read_chunk(&mut self) -> Result<Option<Chunk>, ReadError> {
        let at = self.offset;
        let mut head = [0u8; 12];
        if !read_full(&mut self.input, &mut head, at)? {
            self.state = State::Done;
            return Ok(None);
        }
        let mut h = &head[..];
        let tag = h.get_u8();
        h.advance(3);
        let len = h.get_u32_le();
        let crc = h.get_u32_le();
        let corrupt = |reason: String| ReadError::Corrupt { offset: at, reason };
        let limit = match tag {
            TAG_EVENTS => MAX_EVENTS_CHUNK,
            TAG_TRAILER => MAX_CHUNK,
            _ => return Err(corrupt(format!("unknown chunk tag {tag:#04x}"))),
        };
        if len > limit {
            return Err(corrupt(format!("chunk length {len} is implausible")));
        }
        read_exact_into(&mut self.input, &mut self.payload, len, at)?;
        self.offset += 12 + u64::from(len);
        if crc32fast::hash(&self.payload) != crc {
            return Err(corrupt("checksum mismatch".into()));
        }
        if tag == TAG_TRAILER {
            return self.trailer().map_err(corrupt);
        }
        let mut p = &self.payload[..];
        if self.version >= 2 {
            if p.remaining() < 16 {
                return Err(corrupt("events chunk shorter than its header".into()));
            }
            let (seq, before) = (p.get_u64_le(), p.get_u64_le());
            self.check_sequence(at, seq, before)?;
        }
        let events = decode_chunk(p, self.version, &mut self.names).map_err(corrupt)?;
        self.chunks += 1;
        self.records += events.len() as u64;
        Ok(Some(Chunk::Events(events)))
    }

    /// The trailer; in version 2, its counts are checked against what was
    /// read, and a mismatch is reported by the next call.
    fn trailer(&mut self) -> Result<Option<Chunk>, String> {
        let bad = |e: serde_json::Error| format!("bad trailer: {e}");
        if self.version < 2 {
            self.state = State::Done;
            let t: Trailer = serde_json::from_slice(&self.payload).map_err(bad)?;
            return Ok(Some(Chunk::Trailer(Box::new(t))));
        }
        let t: TrailerJson = serde_json::from_slice(&self.payload).map_err(bad)?;
        self.state = State::AfterTrailer;
        self.pending = match (t.chunks, t.records) {
            (Some(c), Some(r)) if (c, r) == (self.chunks, self.records) => None,
            (Some(c), Some(r)) => Some(ReadError::Damaged(format!(
                "the trailer says {} and {}, the file holds {} and {}",
                n(c, "chunk"),
                n(r, "event"),
                n(self.chunks, "chunk"),
                count(self.records)
            ))),
            _ => Some(ReadError::Damaged("the trailer does not count the file's chunks and events".into())),
        };
        Ok(Some(Chunk::Trailer(Box::new(t.trailer.into_owned()))))
    }

    /// Version 2: each events chunk is the next one, after every event so far.
    fn check_sequence(&self, at: u64, seq: u64, before: u64) -> Result<(), ReadError> {
        let next = self.chunks;
        let problem = if seq < next {
            format!("chunk {seq} appears twice (again at byte {at})")
        } else if seq == next + 1 {
            format!("chunk {next} is missing (the next chunk, at byte {at}, is {seq})")
        } else if seq > next {
            format!("chunks {next} to {} are missing (the next chunk, at byte {at}, is {seq})", seq - 1)
        } else if before != self.records {
            format!(
                "chunk {seq} at byte {at} says {} came before it, the file holds {}",
                n(before, "event"),
                count(self.records)
            )
        } else {
            return Ok(());
        };
        Err(ReadError::Damaged(problem))
    }
}
