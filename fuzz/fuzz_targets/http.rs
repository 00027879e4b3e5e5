//! cargo-fuzz target `http`: see `../harness/http.rs` for the input format and the
//! checks; the same harness replays `fixtures/fuzz/http/` in the stable test suite.
#![no_main]

#[path = "../harness/http.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::run(data));
