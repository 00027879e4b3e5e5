//! cargo-fuzz target `capture_reader`: see `../harness/capture_reader.rs` for the input format and the
//! checks; the same harness replays `fixtures/fuzz/capture_reader/` in the stable test suite.
#![no_main]

#[path = "../harness/capture_reader.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::run(data));
