//! Crashes found by fuzzing (`fuzz/`, target `reassembly`), kept as regression tests.

use l7rec_reassembly::{Config, Event, Reassembler, Segment};

#[path = "../../../fuzz/harness/reassembly.rs"]
mod harness;

fn seg(seq: u32, payload: &[u8]) -> Segment<'_> {
    Segment {
        seq,
        syn: false,
        fin: false,
        rst: false,
        payload,
        ts_ns: 0,
    }
}

/// `lost()` used to jump `next` over bytes already buffered out of order, leaving
/// buffer entries behind `next`: the captured bytes were reported as a gap, stayed
/// buffered forever, and a later hole skip underflowed (`to - self.next`).
#[test]
fn lost_range_covering_buffered_bytes() {
    let mut r = Reassembler::new(Config::default());
    let mut events = Vec::new();
    let mut sink = |e: Event<'_>| events.push(format!("{e:?}"));
    r.segment(seg(1000, b""), &mut sink); // midstream, offset 0 = seq 1000
    r.segment(seg(1011, b"0123456789"), &mut sink); // buffered at 11
    r.segment(seg(1001, b"abcdefghij"), &mut sink); // buffered at 1
                                                    // The segment at offset 0 was cut by the snap length: 245 bytes lost from there,
                                                    // though offsets 1..21 were captured in the other segments.
    r.lost(1000, 245, 7, &mut sink);
    assert_eq!(r.next_offset(), 245);
    assert_eq!(r.buffered_bytes(), 0);
    r.finish(&mut sink);
    assert_eq!(
        events,
        [
            "Gap { offset: 0, len: 1 }",
            "Data { offset: 1, bytes: [97, 98, 99, 100, 101, 102, 103, 104, 105, 106], ts_ns: 0 }",
            "Data { offset: 11, bytes: [48, 49, 50, 51, 52, 53, 54, 55, 56, 57], ts_ns: 0 }",
            "Gap { offset: 21, len: 224 }",
        ]
    );
    assert_eq!(r.stats().delivered_bytes, 20);
    assert_eq!(r.stats().gap_bytes, 225);
}

/// The same with a FIN already known inside the lost range: nothing is reported past
/// the FIN, the buffered bytes before it are delivered, and the FIN follows.
#[test]
fn lost_range_past_the_fin() {
    let mut r = Reassembler::new(Config::default());
    let mut events = Vec::new();
    let mut sink = |e: Event<'_>| events.push(format!("{e:?}"));
    r.segment(seg(1000, b""), &mut sink);
    r.segment(seg(1001, b"abcdefghij"), &mut sink);
    r.segment(
        Segment {
            fin: true,
            ..seg(1021, b"xyz")
        },
        &mut sink,
    );
    r.lost(1000, 200, 9, &mut sink);
    assert!(r.is_closed());
    assert_eq!(r.next_offset(), 24);
    assert_eq!(r.buffered_bytes(), 0);
    assert_eq!(events.last().map(String::as_str), Some("Fin { ts_ns: 0 }"));
}

/// The fuzzer's original input (`fixtures/fuzz/reassembly/crash-2dc7464c...`), through
/// the fuzz harness and its invariant checks.
#[test]
fn fuzz_crash_lost_over_buffered() {
    harness::run(&[
        0, 255, 255, 255, 0, 5, 0, 0, 0, 0, 11, 0, 10, 0, 1, 0, 10, 64, 21, 0, 5, 249, 0, 0, 0, 42,
        0, 0, 245, 0, 1, 0, 10, 64, 21,
    ]);
}
