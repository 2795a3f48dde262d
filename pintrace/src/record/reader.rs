//! Reading a record file back a chunk at a time, stopping cleanly at damage.
use std::{
    fs::File,
    io::{self, BufReader, Read},
    path::Path,
};

use bytes::Buf;

use super::{codec::decode_one, ReadError, RecordHeader, Trailer, MAGIC, MAX_CHUNK, TAG_EVENTS, TAG_TRAILER, VERSION};
use crate::event::Event;

pub enum Chunk {
    Events(Vec<Event>),
    /// Boxed: one per file, and much larger than an events chunk's handle.
    Trailer(Box<Trailer>),
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
            return Ok(Some(Chunk::Trailer(Box::new(t))));
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
