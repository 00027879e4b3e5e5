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

/// What `l7rec record` writes reads back whole, like any zstd level.
#[test]
fn live_zstd_round_trip() {
    let bytes = write_sample(Compression::ZstdLive, true);
    assert_eq!(&bytes[..4], &[0x28, 0xb5, 0x2f, 0xfd]);
    check_full(&read_all(bytes));
}

#[test]
fn zstd_flushed_but_unfinished_reads_everything_flushed() {
    let bytes = write_sample(Compression::Zstd { level: 3 }, false);
    let back = read_all(bytes);
    assert_eq!(back.packets.len(), packets().len());
    assert_eq!(back.stats.len(), 1);
    // A flush ends a block, not the frame: everything flushed reads back, and the
    // frame the writer never ended is reported, after it, as unfinished (not cut).
    let err = back.error.as_deref().unwrap_or_default();
    assert!(err.contains("without its end marker"), "{err:?}");
    // A zstd block cut short (a write the kill interrupted) decodes to nothing, so
    // the data ends at the previous flush: the same state, reported the same way.
    let mut cut = write_sample(Compression::Zstd { level: 3 }, false);
    cut.truncate(cut.len() - 5);
    let cut = read_all(cut);
    assert!(cut.packets.len() <= packets().len());
    let err = cut.error.unwrap_or_default();
    assert!(err.contains("without its end marker"), "{err:?}");
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
            err.contains("truncated")
                || err.contains("not a pcap")
                || (cut == 0 && err.contains("the file is empty")),
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

#[test]
fn an_empty_file_is_called_empty() {
    let err = read_all(Vec::new()).error.expect("error reported");
    assert!(err.contains("the file is empty"), "{err}");
    // Compressed emptiness is the same emptiness.
    let zst = zstd::encode_all(&[][..], 1).expect("zstd");
    let err = read_all(zst).error.expect("error reported");
    assert!(err.contains("the file is empty"), "{err}");
}

/// A legacy pcap (µs, little-endian) of `sizes.len()` packets of those sizes.
fn pcap_of_sizes(sizes: &[usize]) -> Vec<u8> {
    let mut f = Vec::new();
    for v in [0xa1b2_c3d4u32, 0x0004_0002, 0, 0, 0x0010_0000, 1] {
        f.extend_from_slice(&v.to_le_bytes());
    }
    for (i, &n) in sizes.iter().enumerate() {
        for v in [i as u32, 0, n as u32, n as u32] {
            f.extend_from_slice(&v.to_le_bytes());
        }
        f.extend((0..n).map(|b| (b + i) as u8));
    }
    f
}

/// Packet data kept by reference into the reader's shared chunks stays intact while the
/// reader goes on (it must not reuse a chunk someone still holds); chunks let go of are
/// reused. Both ways of reading (chunks read on this thread, or ahead by another) yield
/// the same bytes.
#[test]
fn shared_chunks_keep_packet_data_without_copies() {
    use std::io::Cursor;
    // Many small packets over several chunks, and units longer than the headroom.
    let sizes: Vec<usize> = (0..6000)
        .map(|i| match i % 1000 {
            7 => 100_000,
            500 => 1_500_000,
            _ => 60 + i % 1400,
        })
        .collect();
    let file = pcap_of_sizes(&sizes);
    let here = CaptureReader::new(Cursor::new(file.clone())).expect("direct reader");
    let ahead = CaptureReader::with_read_ahead(Cursor::new(file)).expect("read-ahead");
    let (here, ahead) = (kept_by_reference(here), kept_by_reference(ahead));
    assert_eq!(here.len(), sizes.len());
    for (i, (data, &size)) in here.iter().zip(&sizes).enumerate() {
        let written: Vec<u8> = (0..size).map(|b| (b + i) as u8).collect();
        assert!(*data == written, "packet {i} changed");
    }
    assert!(here == ahead, "the two readers' packets differ");
}

/// Every packet's data, read through a reference into its chunk only after many more
/// packets were read, then let go of, as a consumer done with a round of packets does.
fn kept_by_reference(mut reader: CaptureReader) -> Vec<Vec<u8>> {
    let (mut kept, mut copied) = (Vec::new(), Vec::new());
    let mut chunks: Vec<SharedChunk> = Vec::new();
    while let Some(ev) = reader.next_event() {
        let Ok(Event::Packet(p)) = ev else {
            panic!("unexpected event {ev:?}");
        };
        let range = p
            .chunk
            .range_of(p.data)
            .expect("the data lies in its chunk");
        if !chunks.last().is_some_and(|c| c.same(p.chunk)) {
            chunks.push(p.chunk.clone());
        }
        kept.push((chunks.len() - 1, range));
        if kept.len() == 1500 {
            for (i, range) in kept.drain(..) {
                copied.push(chunks[i][range].to_vec());
            }
            chunks.clear();
        }
    }
    for (i, range) in kept {
        copied.push(chunks[i][range].to_vec());
    }
    copied
}

/// Fails with an I/O error after `left` bytes.
struct FailsAfter {
    data: std::io::Cursor<Vec<u8>>,
    left: usize,
}

impl std::io::Read for FailsAfter {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.left == 0 {
            return Err(std::io::Error::other("disk on fire"));
        }
        let n = buf.len().min(self.left);
        let got = self.data.read(&mut buf[..n])?;
        self.left -= got;
        Ok(got)
    }
}

/// The read-ahead thread changes nothing the reader yields: packets, records, errors
/// and their offsets, across chunk boundaries and for units longer than a chunk's
/// headroom or than a whole chunk.
#[test]
fn read_ahead_reads_exactly_what_direct_reading_does() {
    use std::io::Cursor;
    let same = |bytes: Vec<u8>| {
        let direct = read_from(Cursor::new(bytes.clone()), false);
        let ahead = read_from(Cursor::new(bytes), true);
        assert_eq!(direct.packets, ahead.packets);
        assert_eq!(direct.records, ahead.records);
        assert_eq!(direct.stats, ahead.stats);
        assert_eq!(direct.error, ahead.error);
        direct
    };
    check_full(&same(write_sample(Compression::None, true)));
    check_full(&same(write_sample(Compression::Zstd { level: 3 }, true)));
    let plain = write_sample(Compression::None, true);
    for cut in (0..plain.len()).step_by(11) {
        same(plain[..cut].to_vec());
    }

    // 100 kB and 1.5 MB packets among small ones: units straddling chunks, longer than
    // the headroom, longer than a chunk.
    let sizes: Vec<usize> = (0..40)
        .map(|i| match i % 5 {
            0 => 100_000,
            3 => 1_500_000,
            _ => 60 + i,
        })
        .collect();
    let big = pcap_of_sizes(&sizes);
    let back = same(big.clone());
    assert_eq!(back.error, None);
    let got: Vec<usize> = back.packets.iter().map(|p| p.data.len()).collect();
    assert_eq!(got, sizes);
    for cut in [big.len() / 3, big.len() - 1] {
        assert!(same(big[..cut].to_vec()).error.is_some());
    }

    // A source failing midway: the same prefix, the same error at the same offset.
    for left in [5_000, 1_200_000, 3_000_000] {
        let read = |ahead| {
            let src = FailsAfter {
                data: Cursor::new(big.clone()),
                left,
            };
            read_from(src, ahead)
        };
        let (direct, ahead) = (read(false), read(true));
        assert_eq!(direct.packets, ahead.packets, "left {left}");
        assert_eq!(direct.error, ahead.error, "left {left}");
        assert!(direct.error.is_some_and(|e| e.contains("disk on fire")));
    }
}

/// Records written before any packet are held until one is written (see
/// `tshark::relative_times_start_at_the_first_packet`), and written at the end if
/// none comes: never lost.
#[test]
fn records_before_any_packet_are_kept() {
    for compression in [Compression::None, Compression::Zstd { level: 1 }] {
        let out = SharedBuf::default();
        let mut w = CaptureWriter::new(
            out.clone(),
            &WriterOptions {
                compression,
                ..Default::default()
            },
        )
        .unwrap();
        w.add_interface(&interfaces()[0]).unwrap();
        w.write_records(&records()[0]).unwrap();
        w.flush().unwrap();
        w.write_records(&records()[1]).unwrap();
        w.finish().unwrap();
        let back = read_all(out.0.lock().unwrap().clone());
        assert_eq!(back.error, None);
        assert_eq!(
            back.records,
            [records()[0].clone(), records()[1].clone()].concat()
        );
    }
}

/// A batch larger than one custom block holds (its count is 16 bits, its size kept
/// small) is written as several blocks, held or not: every record comes back.
#[test]
fn a_huge_batch_of_records_is_kept_whole() {
    let batch: Vec<Record> = (0..70_000u32)
        .map(|i| {
            Record::Syscall(SyscallEvent {
                op: SyscallOp::from_wire(1),
                pid: i,
                tid: i,
                fd: 4,
                enter_ns: u64::from(i) * 10,
                exit_ns: u64::from(i) * 10 + 5,
                ret: i64::from(i),
            })
        })
        .collect();
    let out = SharedBuf::default();
    let mut w = CaptureWriter::new(
        out.clone(),
        &WriterOptions {
            compression: Compression::Zstd { level: 1 },
            ..Default::default()
        },
    )
    .unwrap();
    w.add_interface(&interfaces()[0]).unwrap();
    w.write_records(&batch).unwrap(); // held: no packet yet
    w.write_records(&batch).unwrap();
    w.finish().unwrap();
    let back = read_all(out.0.lock().unwrap().clone());
    assert_eq!(back.error, None);
    assert_eq!(back.records, [batch.clone(), batch].concat());
}

/// A disk that fills up: accepts `room` bytes (the last write partly, as write(2)
/// does), then fails with ENOSPC.
struct FullDisk {
    bytes: Vec<u8>,
    room: usize,
}

impl std::io::Write for FullDisk {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        let n = b.len().min(self.room - self.bytes.len());
        if n == 0 && !b.is_empty() {
            return Err(std::io::Error::from_raw_os_error(28)); // ENOSPC
        }
        self.bytes.extend_from_slice(&b[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Writes noisy packets to a disk of `room` bytes, flushing every 10, until a write
/// fails; returns the output, the length and tail [`CaptureWriter::abandon`] gives, and how many
/// packets the last successful flush covered.
fn fill_disk(compression: Compression, room: usize) -> (Vec<u8>, u64, &'static [u8], usize) {
    let opts = WriterOptions {
        compression,
        ..Default::default()
    };
    let disk = FullDisk {
        bytes: Vec::new(),
        room,
    };
    let mut w = CaptureWriter::new(disk, &opts).unwrap();
    w.add_interface(&interfaces()[0]).unwrap();
    let mut x = 0x9e37_79b9_7f4a_7c15_u64;
    let mut flushed_packets = 0;
    for i in 0..100_000 {
        // Incompressible payloads, so compressed frames are large too.
        let data: Vec<u8> = (0..1500)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        let p = PacketOut {
            interface_id: 0,
            ts_ns: 1_000 + i as u64,
            data: &data,
            orig_len: data.len() as u32,
            ..Default::default()
        };
        let res = w
            .write_packet(&p)
            .and_then(|()| if i % 10 == 9 { w.flush() } else { Ok(()) });
        match res {
            Ok(()) if i % 10 == 9 => flushed_packets = i + 1,
            Ok(()) => {}
            Err(e) => {
                assert_eq!(e.raw_os_error(), Some(28), "{e}");
                let (disk, valid, tail) = w.abandon();
                return (disk.bytes, valid, tail, flushed_packets);
            }
        }
    }
    panic!("the disk of {room} bytes never filled");
}

#[test]
fn after_a_full_disk_the_output_cut_to_the_last_flush_reads_cleanly() {
    for compression in [Compression::None, Compression::Zstd { level: 1 }] {
        for room in [20_000, 65_537, 300_001] {
            let (bytes, valid, tail, flushed_packets) = fill_disk(compression, room);
            assert_eq!(bytes.len(), room, "{compression:?}: the disk is full");
            let valid = usize::try_from(valid).unwrap();
            assert!(
                valid > 0 && valid < room,
                "{compression:?} {room}: cut at {valid}"
            );
            // Uncut, the output ends in part of a block or frame...
            let whole = read_all(bytes.clone());
            assert!(
                whole.error.is_some(),
                "{compression:?} {room}: the uncut output should end badly"
            );
            // ...cut back to the last flush and completed with the tail, it is whole.
            let cut = read_all([&bytes[..valid], tail].concat());
            assert_eq!(cut.error, None, "{compression:?} {room}");
            assert_eq!(cut.packets.len(), flushed_packets, "{compression:?} {room}");
        }
    }
}

/// `advance` with `packet` and `take_event` reads what `next_event` reads: every packet
/// field (direction, process, comment), records and statistics, plain and zstd.
#[test]
fn advance_reads_what_next_event_reads() {
    for compression in [Compression::None, Compression::Zstd { level: 3 }] {
        let bytes = write_sample(compression, true);
        let mut r = CaptureReader::new(std::io::Cursor::new(bytes.clone())).expect("opens");
        let mut back = ReadBack::default();
        while let Some(step) = r.advance() {
            match step.expect("reads") {
                Step::Packet => {
                    let p = r.packet().expect("a packet where advance stopped");
                    back.packets.push(SamplePacket::of(&p));
                }
                Step::Other => {
                    assert!(r.packet().is_none(), "no packet where advance found none");
                    match r.take_event() {
                        Some(Event::Records(recs)) => back.records.extend(recs),
                        Some(Event::InterfaceStats(s)) => back.stats.push(s),
                        other => panic!("unexpected {other:?}"),
                    }
                    assert!(r.take_event().is_none(), "an event is taken once");
                }
            }
        }
        check_full(&back);
        let direct = read_all(bytes);
        assert_eq!(back.packets, direct.packets, "{compression:?}");
    }
}
