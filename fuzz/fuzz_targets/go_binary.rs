//! What a Go target controls in its executable: the ELF headers, symbol
//! table, build info and DWARF (compressed or not), down to the layouts
//! and symbols the readers use. See `pintrace::goruntime::fuzzing::binary`.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    pintrace::goruntime::fuzzing::binary(data);
});
