//! Every block and record type written by `CaptureWriter` reads back unchanged,
//! plain and zstd; truncation at any offset yields the prefix plus an error.

mod common;

use common::*;
use l7rec_capture::*;

fn check_full(back: &ReadBack) {
    assert_eq!(back.error, None);
    let want = packets();
    assert_eq!(back.packets.len(), want.len());
    for (got, w) in back.packets.iter().zip(&want) {
        assert_eq!(got.interface_id, w.interface_id);
        assert_eq!(got.ts_ns, w.ts_ns);
        assert_eq!(got.data, w.data);
        assert_eq!(got.orig_len as usize, w.data.len());
        assert_eq!(got.direction, w.direction);
        assert_eq!(got.process, w.process);
        assert_eq!(got.comment, w.comment);
    }
    let recs = records();
    let want_recs: Vec<Record> = (0..want.len())
        .filter(|i| i % 7 == 0)
        .flat_map(|i| recs[(i / 7) % recs.len()].clone())
        .collect();
    assert_eq!(back.records, want_recs);
    assert_eq!(back.stats, vec![stats()]);
}

#[test]
fn plain_round_trip() {
    check_full(&read_all(write_sample(Compression::None, true)));
}

#[test]
fn zstd_round_trip() {
    let bytes = write_sample(Compression::Zstd { level: 3 }, true);
    assert_eq!(&bytes[..4], &[0x28, 0xb5, 0x2f, 0xfd]);
    check_full(&read_all(bytes));
}

#[test]
fn zstd_flushed_but_unfinished_reads_everything_flushed() {
    let bytes = write_sample(Compression::Zstd { level: 3 }, false);
    let back = read_all(bytes);
    assert_eq!(back.packets.len(), packets().len());
    assert_eq!(back.stats.len(), 1);
    // Every flush ends a zstd frame: what was flushed is complete, nothing to report.
    assert!(back.error.is_none(), "{:?}", back.error);
}

#[test]
fn gzip_is_detected_by_content() {
    use std::io::Write;
    let plain = write_sample(Compression::None, true);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&plain).unwrap();
    check_full(&read_all(gz.finish().unwrap()));
}

#[test]
fn truncation_at_every_offset_reads_the_prefix_and_reports() {
    let bytes = write_sample(Compression::None, true);
    let full = read_all(bytes.clone());
    let mut last_packets = 0;
    for cut in 0..bytes.len() {
        let back = read_all(bytes[..cut].to_vec());
        // Monotone: a longer prefix never yields fewer packets.
        assert!(back.packets.len() >= last_packets, "cut {cut}");
        last_packets = back.packets.len();
        assert_eq!(
            back.packets[..],
            full.packets[..back.packets.len()],
            "cut {cut}"
        );
        let at_boundary = back.error.is_none();
        if at_boundary {
            continue;
        }
        let err = back.error.unwrap();
        assert!(
            err.contains("truncated") || err.contains("not a pcap"),
            "cut {cut}: {err}"
        );
    }
    assert_eq!(last_packets, full.packets.len());
}

#[test]
fn zstd_truncation_reads_the_prefix_and_reports() {
    let bytes = write_sample(Compression::Zstd { level: 3 }, true);
    let full = read_all(bytes.clone());
    for cut in (5..bytes.len()).step_by(7) {
        let back = read_all(bytes[..cut].to_vec());
        assert_eq!(
            back.packets[..],
            full.packets[..back.packets.len()],
            "cut {cut}"
        );
        assert!(
            back.error.is_some(),
            "cut {cut} of a zstd stream must be reported"
        );
    }
}

#[test]
fn corrupt_lengths_are_reported_with_offset_and_bounded() {
    let mut bytes = write_sample(Compression::None, true);
    let full = read_all(bytes.clone());
    // Find the 3rd block and give it a huge length.
    let mut off = 0usize;
    for _ in 0..3 {
        off += u32::from_le_bytes(bytes[off + 4..off + 8].try_into().unwrap()) as usize;
    }
    bytes[off + 4..off + 8].copy_from_slice(&0xfff0_0000u32.to_le_bytes());
    let back = read_all(bytes.clone());
    let err = back.error.expect("error reported");
    assert!(err.contains(&format!("byte {off}")), "{err}");
    assert!(back.packets.len() < full.packets.len());
    // Mismatched trailing length.
    bytes[off + 4..off + 8].copy_from_slice(&28u32.to_le_bytes());
    let err = read_all(bytes).error.expect("error reported");
    assert!(err.contains("corrupt"), "{err}");
}

#[test]
fn garbage_is_not_a_capture() {
    let back = read_all(b"hello world, not a capture".to_vec());
    assert!(back.error.unwrap().contains("not a pcap"));
}
