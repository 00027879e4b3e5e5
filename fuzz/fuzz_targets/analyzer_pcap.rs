//! cargo-fuzz target `analyzer_pcap`: see `../harness/analyzer_pcap.rs` for the input format and the
//! checks; the same harness replays `fixtures/fuzz/analyzer_pcap/` in the stable test suite.
#![no_main]

#[path = "../harness/analyzer_pcap.rs"]
mod harness;

libfuzzer_sys::fuzz_target!(|data: &[u8]| harness::run(data));
