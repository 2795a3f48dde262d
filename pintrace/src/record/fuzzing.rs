//! Entry points for the fuzz targets (`fuzz/`) and the replay of their
//! damaged inputs in the tests; not part of pintrace's interface.
use bytes::Buf;

use super::{
    codec::{decode_chunk, Names},
    MAGIC, MAX_NAMES, TAG_EVENTS,
};
use crate::event::Event;

/// Decodes an events chunk's events (u32 count, u64 base_ts, in version 3
/// u32 tid_base, events), as the reader of a file of `version` does after
/// the chunk's sequence fields.
pub fn decode_events(payload: &[u8], version: u16) -> Result<Vec<Event>, String> {
    decode_chunk(payload, version, &mut Names::new(MAX_NAMES))
}

/// Rewrites the checksums of a record file in place, so that a fuzzer's
/// bytes reach the parsers behind them: the header's, and each chunk's
/// while the chunks fit in the file. With `sequence`, also each version-2
/// events chunk's number and count of events before it.
pub fn fix_checksums(file: &mut [u8], sequence: bool) {
    if file.len() < 20 || &file[..8] != MAGIC {
        return;
    }
    let version = u16::from_le_bytes([file[8], file[9]]);
    let header_len = u32::from_le_bytes([file[12], file[13], file[14], file[15]]) as usize;
    let Some(header) = file.get(20..20usize.saturating_add(header_len)) else {
        return;
    };
    let crc = crc32fast::hash(header);
    file[16..20].copy_from_slice(&crc.to_le_bytes());
    let (mut at, mut seq, mut before) = (20 + header_len, 0u64, 0u64);
    while let Some(head) = file.get(at..at + 12) {
        let tag = head[0];
        let len = u32::from_le_bytes([head[4], head[5], head[6], head[7]]) as usize;
        let Some(payload) = file.get_mut(at + 12..(at + 12).saturating_add(len)) else {
            return;
        };
        if sequence && version >= 2 && tag == TAG_EVENTS && payload.len() >= 20 {
            payload[..8].copy_from_slice(&seq.to_le_bytes());
            payload[8..16].copy_from_slice(&before.to_le_bytes());
            seq += 1;
            before += u64::from((&payload[16..20]).get_u32_le());
        }
        let crc = crc32fast::hash(payload);
        file[at + 8..at + 12].copy_from_slice(&crc.to_le_bytes());
        at += 12 + len;
    }
}

/// A record file split into its preamble and header, and its chunks, each
/// with its frame, for the tests that remove, repeat and move chunks. Bytes
/// that do not make a whole frame end up in the last piece as they are.
pub fn split_chunks(file: &[u8]) -> (Vec<u8>, Vec<Vec<u8>>) {
    let word = |b: &[u8], at: usize| b.get(at..at + 4).map_or(0, |w| u32::from_le_bytes([w[0], w[1], w[2], w[3]]));
    let head_len = (20 + word(file, 12) as usize).min(file.len());
    let (head, mut rest) = file.split_at(head_len);
    let mut chunks = vec![];
    while !rest.is_empty() {
        let len = (12usize.saturating_add(word(rest, 4) as usize)).min(rest.len());
        let (chunk, tail) = rest.split_at(len);
        chunks.push(chunk.to_vec());
        rest = tail;
    }
    (head.to_vec(), chunks)
}
