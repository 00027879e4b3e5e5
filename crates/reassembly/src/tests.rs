use super::*;
use proptest::prelude::*;

/// Owned copy of an event, for assertions.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Ev {
    Data(u64, Vec<u8>, u64),
    Gap(u64, u64),
    Fin(u64),
    Rst(u64),
}

fn own(e: Event<'_>) -> Ev {
    match e {
        Event::Data {
            offset,
            bytes,
            ts_ns,
        } => Ev::Data(offset, bytes.to_vec(), ts_ns),
        Event::Gap { offset, len } => Ev::Gap(offset, len),
        Event::Fin { ts_ns } => Ev::Fin(ts_ns),
        Event::Rst { ts_ns } => Ev::Rst(ts_ns),
    }
}

fn seg(seq: u32, payload: &[u8]) -> Segment<'_> {
    Segment {
        seq,
        syn: false,
        fin: false,
        rst: false,
        payload,
        ts_ns: u64::from(seq),
    }
}

fn syn(seq: u32) -> Segment<'static> {
    Segment {
        syn: true,
        ..seg(seq, b"")
    }
}

fn fin(seq: u32, payload: &[u8]) -> Segment<'_> {
    Segment {
        fin: true,
        ..seg(seq, payload)
    }
}

/// Feeds segments (then finish) and returns all events.
fn run(r: &mut Reassembler, segs: &[Segment<'_>]) -> Vec<Ev> {
    let mut out = Vec::new();
    for s in segs {
        r.segment(*s, &mut |e| out.push(own(e)));
    }
    r.finish(&mut |e| out.push(own(e)));
    out
}

/// Concatenated data bytes, with gaps as `?` bytes; also checks offsets are contiguous.
fn stream(events: &[Ev]) -> Vec<u8> {
    let mut out = Vec::new();
    for e in events {
        match e {
            Ev::Data(off, b, _) => {
                assert_eq!(*off, out.len() as u64, "data offset");
                out.extend_from_slice(b);
            }
            Ev::Gap(off, len) => {
                assert_eq!(*off, out.len() as u64, "gap offset");
                out.extend(std::iter::repeat_n(b'?', *len as usize));
            }
            Ev::Fin(_) | Ev::Rst(_) => {}
        }
    }
    out
}

#[test]
fn in_order_is_zero_copy_pass_through() {
    let mut r = Reassembler::default();
    let payload = b"hello".to_vec();
    let mut ptr = None;
    r.segment(syn(99), &mut |_| panic!("no event for bare SYN"));
    r.segment(seg(100, &payload), &mut |e| {
        if let Event::Data { bytes, offset, .. } = e {
            assert_eq!(offset, 0);
            ptr = Some(bytes.as_ptr());
        }
    });
    assert_eq!(ptr, Some(payload.as_ptr()));
    let ev = run(&mut r, &[seg(105, b" world")]);
    assert_eq!(ev, vec![Ev::Data(5, b" world".to_vec(), 105)]);
    assert!(!r.stats().midstream);
    assert_eq!(r.stats().delivered_bytes, 11);
}

#[test]
fn out_of_order_is_buffered_and_released() {
    let mut r = Reassembler::default();
    let ev = run(
        &mut r,
        &[syn(0), seg(7, b"world"), seg(4, b"lo "), seg(1, b"hel")],
    );
    assert_eq!(stream(&ev), b"hello world");
    assert_eq!(r.stats().out_of_order_segments, 2);
    assert_eq!(r.stats().gaps, 0);
    assert_eq!(r.buffered_bytes(), 0);
    // the buffered segments keep their own timestamps
    assert_eq!(ev[2], Ev::Data(6, b"world".to_vec(), 7));
}

#[test]
fn duplicates_and_retransmissions_are_dropped() {
    let mut r = Reassembler::default();
    let ev = run(
        &mut r,
        &[
            syn(0),
            seg(1, b"abc"),
            seg(1, b"abc"),
            seg(7, b"gh"),
            seg(7, b"gh"),
            seg(4, b"def"),
        ],
    );
    assert_eq!(stream(&ev), b"abcdefgh");
    let s = r.stats();
    assert_eq!(s.retransmitted_segments, 2);
    assert_eq!(s.retransmitted_bytes, 5);
    assert_eq!(s.inconsistent_overlaps, 0);
}

#[test]
fn partial_overlap_consistent() {
    let mut r = Reassembler::default();
    let ev = run(
        &mut r,
        &[
            syn(0),
            seg(1, b"abcd"),
            seg(3, b"cdef"),
            seg(9, b"ij"),
            seg(6, b"fghi"),
        ],
    );
    assert_eq!(stream(&ev), b"abcdefghij");
    let s = r.stats();
    assert_eq!(s.overlaps, 3);
    assert_eq!(s.retransmitted_bytes, 4);
    assert_eq!(s.inconsistent_overlaps, 0);
}

#[test]
fn partial_overlap_inconsistent_first_received_wins() {
    let mut r = Reassembler::default();
    // "XY" is buffered first at offset 4..6; the later in-order segment says "ef" there.
    let ev = run(&mut r, &[syn(0), seg(5, b"XY"), seg(1, b"abcdefgh")]);
    assert_eq!(stream(&ev), b"abcdXYgh");
    assert_eq!(r.stats().inconsistent_overlaps, 1);

    // Out-of-order segment overlapping two buffered ones with different bytes.
    let mut r = Reassembler::default();
    let ev = run(
        &mut r,
        &[
            syn(0),
            seg(3, b"cd"),
            seg(7, b"gh"),
            seg(2, b"BCDEFGHI"),
            seg(1, b"a"),
        ],
    );
    assert_eq!(stream(&ev), b"aBcdEFghI");
    assert_eq!(r.stats().inconsistent_overlaps, 1);
    assert_eq!(r.stats().overlaps, 1);
}

#[test]
fn wraparound_across_2_pow_32() {
    let isn = u32::MAX - 4;
    let mut r = Reassembler::default();
    let ev = run(
        &mut r,
        &[
            syn(isn),
            seg(isn.wrapping_add(1), b"abc"),
            seg(isn.wrapping_add(7), b"ghi"), // past the wrap, out of order
            seg(isn.wrapping_add(4), b"def"), // straddles the wrap
            seg(isn.wrapping_add(2), b"bc"),  // old, before the wrap
            fin(isn.wrapping_add(10), b"j"),
        ],
    );
    assert_eq!(stream(&ev), b"abcdefghij");
    assert_eq!(ev.last(), Some(&Ev::Fin(u64::from(isn.wrapping_add(10)))));
    assert_eq!(r.stats().retransmitted_segments, 1);
}

#[test]
fn offsets_grow_past_4_gib() {
    let mut r = Reassembler::default();
    let chunk = vec![7u8; 1 << 16];
    let mut seq = 1000u32;
    let mut total = 0u64;
    r.segment(syn(seq - 1), &mut |_| {});
    for _ in 0..(1u64 << 16) + 3 {
        r.segment(seg(seq, &chunk), &mut |e| {
            if let Event::Data { offset, bytes, .. } = e {
                assert_eq!(offset, total);
                total += bytes.len() as u64;
            }
        });
        seq = seq.wrapping_add(chunk.len() as u32);
    }
    assert_eq!(total, ((1u64 << 16) + 3) << 16);
    assert!(total > 1 << 32);
}

#[test]
fn holes_reported_as_gap_on_finish() {
    let mut r = Reassembler::default();
    let ev = run(&mut r, &[syn(0), seg(1, b"ab"), seg(6, b"fg"), fin(8, b"")]);
    assert_eq!(
        ev,
        vec![
            Ev::Data(0, b"ab".to_vec(), 1),
            Ev::Gap(2, 3),
            Ev::Data(5, b"fg".to_vec(), 6),
            Ev::Fin(8),
        ]
    );
    assert_eq!(r.stats().gaps, 1);
    assert_eq!(r.stats().gap_bytes, 3);
}

#[test]
fn missing_bytes_before_fin_are_a_gap() {
    let mut r = Reassembler::default();
    let ev = run(&mut r, &[syn(0), seg(1, b"ab"), fin(5, b"")]);
    assert_eq!(
        ev,
        vec![Ev::Data(0, b"ab".to_vec(), 1), Ev::Gap(2, 2), Ev::Fin(5)]
    );
}

#[test]
fn cap_exceeded_skips_forward() {
    let cfg = Config {
        max_buffered_bytes: 4,
        max_buffered_segments: 100,
    };
    let mut r = Reassembler::new(cfg);
    let mut ev = Vec::new();
    for s in [syn(0), seg(1, b"a"), seg(4, b"de"), seg(7, b"gh")] {
        r.segment(s, &mut |e| ev.push(own(e)));
    }
    // 4 bytes buffered: at the cap, not over it
    assert_eq!(ev.len(), 1);
    r.segment(seg(10, b"j"), &mut |e| ev.push(own(e)));
    assert_eq!(ev[1..], [Ev::Gap(1, 2), Ev::Data(3, b"de".to_vec(), 4),]);
    assert_eq!(r.stats().buffer_overflows, 1);
    assert_eq!(r.buffered_bytes(), 3);
    // the late retransmission of a skipped hole is old now
    r.segment(seg(2, b"bc"), &mut |e| ev.push(own(e)));
    assert_eq!(r.stats().retransmitted_segments, 1);
    let ev2 = run(&mut r, &[]);
    assert_eq!(
        ev2,
        vec![
            Ev::Gap(5, 1),
            Ev::Data(6, b"gh".to_vec(), 7),
            Ev::Gap(8, 1),
            Ev::Data(9, b"j".to_vec(), 10)
        ]
    );

    // segment-count cap
    let mut r = Reassembler::new(Config {
        max_buffered_bytes: 1 << 20,
        max_buffered_segments: 1,
    });
    let ev = run(&mut r, &[syn(0), seg(3, b"c"), seg(5, b"e")]);
    assert_eq!(stream(&ev), b"??c?e");
    assert_eq!(r.stats().buffer_overflows, 1);
}

#[test]
fn midstream_start() {
    let mut r = Reassembler::default();
    let ev = run(
        &mut r,
        &[seg(5000, b"xyz"), seg(4990, b"old"), seg(4998, b"..x")],
    );
    assert_eq!(stream(&ev), b"xyz");
    assert!(r.stats().midstream);
    assert_eq!(r.stats().retransmitted_segments, 2);
}

#[test]
fn syn_with_data() {
    let mut r = Reassembler::default();
    let s = Segment {
        syn: true,
        ..seg(41, b"GET")
    };
    let ev = run(&mut r, &[s, seg(45, b" /")]);
    assert_eq!(stream(&ev), b"GET /");
    // a retransmitted SYN with the same data is a duplicate
    let mut r = Reassembler::default();
    let ev = run(&mut r, &[s, s]);
    assert_eq!(stream(&ev), b"GET");
    assert_eq!(r.stats().retransmitted_segments, 1);
}

#[test]
fn fin_waits_for_earlier_data_and_ends_the_stream() {
    let mut r = Reassembler::default();
    let mut ev = Vec::new();
    for s in [syn(0), fin(4, b"d"), seg(1, b"abc"), seg(5, b"late")] {
        r.segment(s, &mut |e| ev.push(own(e)));
    }
    assert_eq!(
        ev,
        vec![
            Ev::Data(0, b"abc".to_vec(), 1),
            Ev::Data(3, b"d".to_vec(), 4),
            Ev::Fin(4),
        ]
    );
    assert!(r.is_closed());
    assert_eq!(r.stats().ignored_after_close, 1);
}

#[test]
fn fin_drops_buffered_bytes_beyond_it() {
    let mut r = Reassembler::default();
    let ev = run(
        &mut r,
        &[syn(0), seg(3, b"cdef"), fin(1, b"ab"), seg(3, b"c")],
    );
    assert_eq!(stream(&ev), b"ab");
    assert_eq!(ev.last(), Some(&Ev::Fin(1)));
}

#[test]
fn rst_is_immediate_and_flushes() {
    let mut r = Reassembler::default();
    let rst = Segment {
        rst: true,
        ..seg(9, b"")
    };
    let ev = run(
        &mut r,
        &[syn(0), seg(1, b"ab"), seg(5, b"ef"), rst, seg(3, b"cd")],
    );
    assert_eq!(
        ev,
        vec![
            Ev::Data(0, b"ab".to_vec(), 1),
            Ev::Gap(2, 2),
            Ev::Data(4, b"ef".to_vec(), 5),
            Ev::Rst(9),
        ]
    );
}

#[test]
fn finish_is_idempotent() {
    let mut r = Reassembler::default();
    let ev = run(&mut r, &[syn(0), seg(3, b"c")]);
    assert_eq!(stream(&ev), b"??c");
    let mut n = 0;
    r.finish(&mut |_| n += 1);
    r.segment(seg(1, b"ab"), &mut |_| n += 1);
    assert_eq!(n, 0);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Random segmentation, reordering, duplication and overlap of a byte string
    /// (with a random ISN, possibly wrapping) always reassembles to the same bytes.
    #[test]
    fn random_segmentation_reassembles(
        data in proptest::collection::vec(any::<u8>(), 1..2000),
        isn in any::<u32>(),
        cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..40),
        dups in proptest::collection::vec((any::<prop::sample::Index>(), any::<prop::sample::Index>()), 0..20),
        order in proptest::collection::vec(any::<prop::sample::Index>(), 0..80),
        with_fin in any::<bool>(),
    ) {
        let mut points: Vec<usize> = cuts.iter().map(|i| i.index(data.len())).collect();
        points.extend([0, data.len()]);
        points.sort_unstable();
        points.dedup();
        let mut ranges: Vec<(usize, usize)> = points.windows(2).map(|w| (w[0], w[1])).collect();
        for (a, b) in &dups {
            let (a, b) = (a.index(data.len()), b.index(data.len() + 1));
            if a < b {
                ranges.push((a, b));
            }
        }
        for (i, j) in order.iter().enumerate() {
            let n = ranges.len();
            ranges.swap(i % n, j.index(n));
        }
        let mut r = Reassembler::default();
        let mut out = Vec::new();
        r.segment(syn(isn), &mut |e| out.push(own(e)));
        for &(a, b) in &ranges {
            let s = Segment {
                fin: with_fin && b == data.len(),
                ..seg(isn.wrapping_add(1).wrapping_add(a as u32), &data[a..b])
            };
            r.segment(s, &mut |e| out.push(own(e)));
        }
        r.finish(&mut |e| out.push(own(e)));
        prop_assert_eq!(stream(&out), data.clone());
        prop_assert_eq!(r.stats().gaps, 0);
        prop_assert_eq!(r.stats().inconsistent_overlaps, 0);
        prop_assert_eq!(matches!(out.last(), Some(Ev::Fin(_))), with_fin);
    }

    /// Arbitrary segments never panic and always produce contiguous offsets.
    #[test]
    fn arbitrary_segments_never_panic(
        segs in proptest::collection::vec(
            (any::<u32>(), any::<u8>(), proptest::collection::vec(any::<u8>(), 0..64)), 0..60),
        base in any::<u32>(),
    ) {
        let mut r = Reassembler::new(Config { max_buffered_bytes: 512, max_buffered_segments: 8 });
        let mut out = Vec::new();
        for (off, flags, payload) in &segs {
            let s = Segment {
                seq: base.wrapping_add(off % 4096),
                syn: flags & 1 != 0,
                fin: flags & 2 != 0,
                rst: flags & 0x3c == 0x3c,
                payload,
                ts_ns: 0,
            };
            r.segment(s, &mut |e| out.push(own(e)));
            prop_assert!(r.buffered_bytes() <= 512 + 64);
        }
        r.finish(&mut |e| out.push(own(e)));
        let _ = stream(&out);
    }
}

/// Throughput smoke test: `cargo test --release -p l7rec-reassembly -- --ignored --nocapture`.
#[test]
#[ignore = "throughput measurement, not a check: run with --release --ignored"]
fn throughput() {
    let data = vec![1u8; 1448 * 4];
    let mut r = Reassembler::default();
    r.segment(syn(0), &mut |_| {});
    let start = std::time::Instant::now();
    let mut total = 0u64;
    let mut seq = 1u32;
    for i in 0..200_000u32 {
        let s = &data[..1448];
        // every 16th pair arrives swapped
        if i % 16 == 0 {
            let next = seq.wrapping_add(1448);
            r.segment(seg(next, s), &mut |_| {});
            r.segment(seg(seq, s), &mut |e| {
                if let Event::Data { bytes, .. } = e {
                    total += bytes.len() as u64;
                }
            });
            seq = next.wrapping_add(1448);
        } else {
            r.segment(seg(seq, s), &mut |e| {
                if let Event::Data { bytes, .. } = e {
                    total += bytes.len() as u64;
                }
            });
            seq = seq.wrapping_add(1448);
        }
    }
    let secs = start.elapsed().as_secs_f64();
    println!("reassembly: {:.0} MB/s", total as f64 / secs / 1e6);
}

#[test]
fn lost_tail_is_a_gap_at_once_and_later_data_flows() {
    let mut r = Reassembler::default();
    let mut ev = Vec::new();
    let mut sink = |e: Event<'_>| ev.push(format!("{e:?}"));
    r.segment(
        Segment {
            seq: 100,
            syn: false,
            fin: false,
            rst: false,
            payload: b"abc",
            ts_ns: 1,
        },
        &mut sink,
    );
    // 5 bytes after "abc" were cut by the snap length.
    r.lost(103, 5, 1, &mut sink);
    r.segment(
        Segment {
            seq: 108,
            syn: false,
            fin: false,
            rst: false,
            payload: b"xyz",
            ts_ns: 2,
        },
        &mut sink,
    );
    // A loss that is not next in line changes nothing now.
    r.lost(5000, 3, 3, &mut sink);
    assert_eq!(r.stats().gaps, 1);
    assert_eq!(r.stats().gap_bytes, 5);
    assert!(ev[1].starts_with("Gap { offset: 3, len: 5"), "{ev:?}");
    assert!(ev[2].contains("offset: 8"), "{ev:?}");
}
