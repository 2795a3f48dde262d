//! What a Go target controls in its memory: the M list, goroutines, the
//! scheduler and the Ps, read through fixed and fuzzed layouts. See
//! `pintrace::goruntime::fuzzing::memory`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    pintrace::goruntime::fuzzing::memory(data);
});
