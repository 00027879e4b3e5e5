//! Harness of the `capture_reader` fuzz target (also replayed by
//! `crates/capture/tests/fuzz_corpus.rs` on stable).
//!
//! Input: `[mode] [file bytes...]`. `mode & 3` picks the wrapping of the file bytes:
//! 0 and 3 as they are (so raw zstd/gzip magic still reaches the decoders), 1 zstd-
//! compressed, 2 gzip-compressed. `mode >> 2` (when not 0) cuts the compressed stream
//! to `len * (mode >> 2) / 64` bytes, to exercise decoders ending mid-frame.
//!
//! Checks: no panic; every event's borrowed data is readable; offsets never go
//! backwards; after an error (or the end) the reader returns `None` for good; an
//! error names an offset within what was consumed.

use std::io::Write;

use l7rec_capture::{CaptureReader, Event, ReadError};

/// Runs one input.
pub fn run(data: &[u8]) {
    let Some((&mode, file)) = data.split_first() else {
        return;
    };
    let mut bytes = match mode & 3 {
        1 => zstd::stream::encode_all(file, 1).expect("zstd compresses"),
        2 => {
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            gz.write_all(file).expect("gzip compresses");
            gz.finish().expect("gzip compresses")
        }
        _ => file.to_vec(),
    };
    let cut = usize::from(mode >> 2);
    if mode & 3 != 0 && mode & 3 != 3 && cut != 0 {
        let keep = bytes.len() * cut / 64;
        bytes.truncate(keep);
    }
    let mut reader = match CaptureReader::new(std::io::Cursor::new(bytes)) {
        Ok(r) => r,
        Err(e) => {
            let _ = e.to_string();
            return;
        }
    };
    let _ = (reader.compression(), reader.format());
    let mut last_offset = reader.offset();
    let mut sink = 0u64;
    loop {
        match reader.next_event() {
            None => break,
            Some(Ok(ev)) => match ev {
                Event::Packet(p) => {
                    sink = sink.wrapping_add(p.data.iter().map(|&b| u64::from(b)).sum::<u64>());
                    sink = sink.wrapping_add(p.ts_ns ^ u64::from(p.orig_len));
                    sink = sink.wrapping_add(p.comment.map_or(0, |c| c.len() as u64));
                    let _ = (p.linktype, p.interface_id, p.direction, p.process);
                }
                Event::Records(records) => sink = sink.wrapping_add(records.len() as u64),
                Event::BadRecords { error, .. } => sink ^= error.to_string().len() as u64,
                Event::InterfaceStats(s) => sink ^= s.ts_ns,
            },
            Some(Err(e)) => {
                let offset = match &e {
                    ReadError::Io { offset, .. }
                    | ReadError::Truncated { offset, .. }
                    | ReadError::Corrupt { offset, .. }
                    | ReadError::Unfinished { offset } => *offset,
                    ReadError::UnknownFormat(_) | ReadError::Empty => 0,
                };
                assert!(
                    offset <= reader.offset() + l7rec_capture::MAX_BLOCK_LEN as u64,
                    "error offset {offset} far beyond the reader's {}",
                    reader.offset()
                );
                assert!(!e.to_string().is_empty());
                assert!(reader.next_event().is_none(), "an error ends reading");
                break;
            }
        }
        assert!(reader.offset() >= last_offset, "offset went backwards");
        last_offset = reader.offset();
        let _ = reader.interfaces().count();
    }
    assert!(reader.next_event().is_none(), "the end is final");
    std::hint::black_box(sink);
}
