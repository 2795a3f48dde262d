//! The two event decoders: a kernel ring-buffer record (`event::decode`)
//! and the events of a record file's chunk (count, base time, events), as
//! format version 2 (TIDs as they are), 3 (TID base, TIDs from it) and 4
//! (switch-ins with their waits) lay them out.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(e) = pintrace::event::decode(data) {
        // Only the records the kernel writes, at their exact sizes.
        assert!(data.len() >= 16, "{e:?} from {} bytes", data.len());
    }
    for (version, head) in [(2, 12), (3, 16), (4, 16)] {
        if let Ok(events) = pintrace::record::decode_events(data, version) {
            // Every event takes at least three bytes after the chunk's head.
            assert!(
                events.len() * 3 <= data.len().saturating_sub(head),
                "{} events from {} bytes",
                events.len(),
                data.len()
            );
        }
    }
});
