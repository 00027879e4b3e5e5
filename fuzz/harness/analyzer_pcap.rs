//! Harness of the `analyzer_pcap` fuzz target (also replayed by
//! `analyzer/tests/fuzz_corpus.rs` on stable).
//!
//! Input: `[sel] [records...]`. The harness writes a valid 24-byte legacy pcap header
//! — `sel & 1`: nanosecond magic, `sel & 2`: big-endian, `sel >> 2` indexes the link
//! type list below — followed by the input's remaining bytes (pcap records), to a
//! file in `/dev/shm` (tmpfs; the temp dir if absent), and runs
//! `l7rec_analyzer::analyze` on it single-threaded, then renders every report kind
//! into a sink.
//!
//! Checks: no panic; `analyze` succeeds (the header is valid, so bad records can only
//! end reading early, recorded in `read_errors`); every report renders.

use std::io::Write;
use std::path::PathBuf;

use l7rec_analyzer::report::{self, Format, Kind};
use l7rec_analyzer::{analyze, Options};

/// Ethernet, raw IP, Linux SLL, SLL2, BSD null, OpenBSD loop, raw (12, 14), IPv4/IPv6.
const LINKTYPES: [u32; 10] = [1, 101, 113, 276, 0, 108, 12, 14, 228, 229];

/// The pcap file the input is written to: one per process and thread.
fn scratch_path() -> PathBuf {
    let dir = if std::path::Path::new("/dev/shm").is_dir() {
        PathBuf::from("/dev/shm")
    } else {
        std::env::temp_dir()
    };
    let thread = format!("{:?}", std::thread::current().id());
    let thread: String = thread.chars().filter(char::is_ascii_digit).collect();
    dir.join(format!("l7rec-fuzz-{}-{thread}.pcap", std::process::id()))
}

/// The pcap file header for selector `sel`.
pub fn pcap_header(sel: u8) -> [u8; 24] {
    let magic: u32 = if sel & 1 != 0 {
        0xa1b2_3c4d
    } else {
        0xa1b2_c3d4
    };
    let linktype = LINKTYPES[usize::from(sel >> 2) % LINKTYPES.len()];
    let fields: [u32; 5] = [magic, 0, 0, 262_144, linktype];
    let mut h = [0u8; 24];
    let big = sel & 2 != 0;
    let put32 = |h: &mut [u8], at: usize, v: u32| {
        let b = if big {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        };
        h[at..at + 4].copy_from_slice(&b);
    };
    put32(&mut h, 0, fields[0]);
    // version 2.4
    let (maj, min) = if big {
        (2u16.to_be_bytes(), 4u16.to_be_bytes())
    } else {
        (2u16.to_le_bytes(), 4u16.to_le_bytes())
    };
    h[4..6].copy_from_slice(&maj);
    h[6..8].copy_from_slice(&min);
    put32(&mut h, 8, fields[1]);
    put32(&mut h, 12, fields[2]);
    put32(&mut h, 16, fields[3]);
    put32(&mut h, 20, fields[4]);
    h
}

/// Runs one input.
pub fn run(data: &[u8]) {
    let Some((&sel, records)) = data.split_first() else {
        return;
    };
    let path = scratch_path();
    {
        let mut f = std::fs::File::create(&path).expect("create the scratch pcap");
        f.write_all(&pcap_header(sel)).expect("write");
        f.write_all(records).expect("write");
    }
    let opts = Options {
        threads: Some(1),
        without_headers: false,
    };
    let analysis = analyze(&[&path], &opts, &|_, _| {});
    let _ = std::fs::remove_file(&path);
    let analysis = analysis.expect("a valid pcap header always analyzes");
    assert!(analysis.outcome.read_errors.len() <= 1);
    for kind in [
        Kind::Transactions(Format::Table),
        Kind::Transactions(Format::Json),
        Kind::Transactions(Format::Csv),
        Kind::Transactions(Format::Har),
        Kind::Summary,
    ] {
        report::write_all(
            kind,
            &analysis.transactions,
            &analysis.outcome,
            &mut std::io::sink(),
        )
        .expect("reports render");
    }
}
