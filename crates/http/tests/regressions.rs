//! Crashes found by fuzzing (`fuzz/`, target `http`), kept as regression tests.

use l7rec_http::{Connection, Flags, Side};

#[path = "../../../fuzz/harness/http.rs"]
mod harness;

/// Body byte counters used `+=`: gaps of more than 2^63 bytes in a close-delimited
/// body overflowed them (a panic in debug builds, a wrong count in release builds).
/// They saturate now.
#[test]
fn huge_gaps_in_a_body_saturate_the_count() {
    let mut c = Connection::new();
    c.data(Side::Client, b"GET / HTTP/1.1\r\nHost: h\r\n\r\n", 1);
    c.data(Side::Server, b"HTTP/1.1 200 OK\r\n\r\nabc", 2);
    c.gap(Side::Server, u64::MAX - 1);
    c.gap(Side::Server, u64::MAX - 1);
    c.data(Side::Server, b"more", 3);
    c.close(Side::Server, 4);
    c.finish();
    let txs = c.take_transactions();
    assert_eq!(txs.len(), 1);
    assert_eq!(txs[0].status, Some(200));
    assert_eq!(txs[0].resp_body_bytes, u64::MAX);
    assert!(txs[0].flags.contains(Flags::GAP));
}

/// The fuzzer's input (`fixtures/fuzz/http/crash-20cc575b...`): a request, a response
/// whose `Content-Length` is garbled (close-delimited body), then gaps of
/// 0x8484848484848484 bytes.
#[test]
fn fuzz_crash_body_count_overflow() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/fuzz/http/crash-20cc575b6bcbdbe324d93bd69878eecbedf958f4");
    harness::run(&std::fs::read(path).expect("crasher present"));
}
