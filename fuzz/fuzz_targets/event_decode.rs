//! The two event decoders: a kernel ring-buffer record (`event::decode`)
//! and the events of a record file's chunk (count, base time, events).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(e) = pintrace::event::decode(data) {
        // Only the records the kernel writes, at their exact sizes.
        assert!(data.len() >= 16, "{e:?} from {} bytes", data.len());
    }
    if let Ok(events) = pintrace::record::decode_events(data) {
        // Every event takes at least three bytes after the 12-byte head.
        assert!(events.len() * 3 <= data.len().saturating_sub(12), "{} events from {} bytes", events.len(), data.len());
    }
});
