//! cargo-fuzz target `reassembly`: see `../harness/reassembly.rs` for the input format and the
//! checks; the same harness replays `fixtures/fuzz/reassembly/` in the stable test suite.
#![no_main]

#[path = "../harness/reassembly.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::run(data));
