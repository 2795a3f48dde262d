//! Streaming a record file out, a chunk at a time.
use std::io::{self, Write};

use bytes::{BufMut, BytesMut};

use super::{
    codec::{encode, SwitchFields, Tids},
    RecordHeader, Trailer, TrailerJson, CHUNK_BYTES, MAGIC, TAG_EVENTS, TAG_TRAILER, VERSION,
};
use crate::event::Event;

/// Streams events to a record file, a chunk at a time.
pub struct Writer<W: Write> {
    out: W,
    chunk: BytesMut,
    frame: BytesMut,
    count: u32,
    base_ts: u64,
    prev_ts: u64,
    bytes: u64,
    /// Events chunks written, and the events in them.
    chunks: u64,
    records: u64,
    /// The format version written (VERSION; older ones only in tests).
    version: u16,
    tids: Tids,
    /// Version 4: a switch-in carries its wait.
    fields: SwitchFields,
}

impl<W: Write> Writer<W> {
    pub fn new(out: W, header: &RecordHeader) -> io::Result<Self> {
        Self::with_version(out, header, VERSION)
    }

    /// A writer of an older format version, for the tests that read them.
    pub(super) fn with_version(mut out: W, header: &RecordHeader, version: u16) -> io::Result<Self> {
        let json = serde_json::to_vec(header).map_err(io::Error::other)?;
        let mut pre = BytesMut::with_capacity(20 + json.len());
        pre.put_slice(MAGIC);
        pre.put_u16_le(version);
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
            chunks: 0,
            records: 0,
            version,
            // The process's threads have TIDs near its PID.
            tids: if version >= 3 { Tids::From(header.target.pid) } else { Tids::Absolute },
            fields: SwitchFields::of(version),
        })
    }

    pub fn push(&mut self, e: &Event) -> io::Result<()> {
        if self.count == 0 {
            self.base_ts = e.ts_ns;
            self.prev_ts = e.ts_ns;
        }
        encode(&mut self.chunk, self.prev_ts, self.tids, self.fields, e);
        self.prev_ts = e.ts_ns;
        self.count += 1;
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
        let mut payload = BytesMut::with_capacity(32 + self.chunk.len());
        if self.version >= 2 {
            payload.put_u64_le(self.chunks);
            payload.put_u64_le(self.records);
        }
        payload.put_u32_le(self.count);
        payload.put_u64_le(self.base_ts);
        if let Tids::From(base) = self.tids {
            payload.put_u32_le(base);
        }
        payload.put_slice(&self.chunk);
        self.write_frame(TAG_EVENTS, &payload)?;
        self.out.flush()?;
        self.chunks += 1;
        self.records += u64::from(self.count);
        self.chunk.clear();
        self.count = 0;
        Ok(())
    }

    /// Writes the buffered events as a chunk and flushes the output, so that
    /// the header and everything pushed so far have left the process.
    pub fn flush(&mut self) -> io::Result<()> {
        self.flush_chunk()?;
        self.out.flush()
    }

    /// Writes the buffered events and returns the output without a trailer:
    /// the file then reads as a recording that did not finish.
    pub fn into_inner(mut self) -> io::Result<W> {
        self.flush_chunk()?;
        Ok(self.out)
    }

    /// Writes the last events and the trailer, with the counts of chunks
    /// and events written; returns the file's size and the output.
    pub fn finish(mut self, trailer: &Trailer) -> io::Result<(u64, W)> {
        self.flush_chunk()?;
        let counted = self.version >= 2;
        let t = TrailerJson {
            trailer: std::borrow::Cow::Borrowed(trailer),
            chunks: counted.then_some(self.chunks),
            records: counted.then_some(self.records),
        };
        let json = serde_json::to_vec(&t).map_err(io::Error::other)?;
        self.write_frame(TAG_TRAILER, &json)?;
        self.out.flush()?;
        Ok((self.bytes, self.out))
    }
}
