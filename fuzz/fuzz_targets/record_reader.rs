//! A record file, read chunk by chunk as `report` reads it, and folded
//! into the model. The checksums are fixed first (unless the input says
//! not to), so the fuzzer's bytes reach the parsers behind them.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pintrace::{
    findings::{self, Context, Thresholds},
    model::Model,
    record::{fix_checksums, Chunk, Reader},
};

fuzz_target!(|data: &[u8]| {
    let mut file = data.to_vec();
    // The preamble's flags field (which readers ignore) chooses how the
    // input is read: bit 0 keeps its checksums as they are; bit 1 also
    // fixes the chunk numbers and counts of events before each chunk.
    let flags = file.get(10).copied().unwrap_or(0);
    if flags & 1 == 0 {
        fix_checksums(&mut file, flags & 2 != 0);
    }
    let Ok(mut reader) = Reader::new(&file[..]) else {
        return;
    };
    let header = reader.header().clone();
    let mut model = Model::new(header.start_ns);
    let mut last = header.start_ns;
    // Reading stops at the end, at the first damage, or (a hang) never.
    while let Ok(Some(chunk)) = reader.next_chunk() {
        if let Chunk::Events(events) = chunk {
            for e in &events {
                model.apply(e);
                last = last.max(e.ts_ns);
            }
        }
    }
    model.tick(last);
    let live = model.live(None);
    let thresholds = Thresholds::default();
    let _ = findings::evaluate(&live, &Context::of(&header), &thresholds);
    let _ = findings::capacity(&live, None, &thresholds);
    let _ = model.snapshot(last);
});
