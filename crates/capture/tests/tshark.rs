//! tshark, as an independent reader, sees exactly what `CaptureWriter` wrote:
//! plain, zstd, and a zstd stream that was flushed but never finished.

mod common;

use std::process::Command;

use common::*;
use l7rec_capture::*;

/// Runs tshark on `bytes` and returns one line per row of the given fields.
fn tshark_rows(bytes: &[u8], fields: &[&str]) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cap.pcapng");
    std::fs::write(&path, bytes).unwrap();
    let mut cmd = Command::new("tshark");
    cmd.arg("-r")
        .arg(&path)
        .args(["-T", "fields", "-E", "separator=|"]);
    for f in fields {
        cmd.args(["-e", f]);
    }
    let out = cmd
        .output()
        .expect("tshark is required for this test (apt-get install tshark; .ci/run installs it)");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "tshark failed: {stderr}");
    let noise = |l: &&str| l.trim().is_empty() || l.contains("Running as user");
    assert!(
        stderr.lines().all(|l| noise(&l)),
        "tshark complained: {stderr}"
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn check(bytes: &[u8]) {
    let rows = tshark_rows(
        bytes,
        &[
            "frame.cb_pen",
            "frame.time_epoch",
            "frame.comment",
            "frame.interface_name",
            "frame.packet_flags_direction",
            "frame.len",
        ],
    );
    let (custom, pkts): (Vec<_>, Vec<_>) = rows.iter().partition(|r| !r.starts_with('|'));
    let want_custom = (0..packets().len()).filter(|i| i % 7 == 0).count();
    assert_eq!(custom.len(), want_custom, "custom blocks: {custom:?}");
    assert!(custom
        .iter()
        .all(|r| r.starts_with(&format!("{L7REC_PEN}|"))));
    let want = packets();
    assert_eq!(pkts.len(), want.len());
    let names = interfaces();
    for (row, w) in pkts.iter().zip(&want) {
        let cols: Vec<&str> = row.split('|').collect();
        let ts = format!("{}.{:09}", w.ts_ns / 1_000_000_000, w.ts_ns % 1_000_000_000);
        assert_eq!(cols[1], ts, "nanosecond timestamp");
        assert_eq!(cols[2], w.comment.as_deref().unwrap_or(""));
        assert_eq!(cols[3], names[w.interface_id as usize].name);
        let dir = match w.direction {
            Direction::Inbound => "0x00000001",
            Direction::Outbound => "0x00000002",
            Direction::Unknown => "",
        };
        assert_eq!(cols[4], dir);
        assert_eq!(cols[5], w.data.len().to_string());
    }
}

/// The sample starts with metadata records; held until the first packet, they do not
/// make tshark's relative times count from the epoch (a custom block has no time).
#[test]
fn relative_times_start_at_the_first_packet() {
    let rows = tshark_rows(
        &write_sample(Compression::Zstd { level: 3 }, true),
        &["frame.cb_pen", "frame.time_relative"],
    );
    assert!(
        rows[0].starts_with('|'),
        "first frame is not a packet: {rows:?}"
    );
    let first: f64 = rows[0][1..].parse().unwrap();
    assert_eq!(first, 0.0, "{rows:?}");
    for r in rows.iter().filter(|r| r.starts_with('|')) {
        let t: f64 = r[1..].parse().unwrap();
        assert!(
            t < 1000.0,
            "relative time {t} s: counted from the epoch? {rows:?}"
        );
    }
}

#[test]
fn tshark_reads_plain() {
    check(&write_sample(Compression::None, true));
}

#[test]
fn tshark_reads_zstd() {
    check(&write_sample(Compression::Zstd { level: 3 }, true));
}

#[test]
fn tshark_reads_live_zstd() {
    check(&write_sample(Compression::ZstdLive, true));
}

#[test]
fn tshark_reads_flushed_unfinished_zstd() {
    check(&write_sample(Compression::Zstd { level: 3 }, false));
}

#[test]
fn tshark_finds_the_request_lines() {
    let rows = tshark_rows(
        &write_sample(Compression::Zstd { level: 3 }, true),
        &["http.request.uri"],
    );
    let uris: Vec<&str> = rows
        .iter()
        .map(String::as_str)
        .filter(|r| !r.is_empty())
        .collect();
    let want: Vec<String> = (0..20).map(|i| format!("/item/{i}")).collect();
    assert_eq!(uris, want);
}

/// Incompressible packets (images, gzip bodies) make zstd frames of about their own
/// size. tshark 4.0 finds a frame that starts after its first 128 KiB input buffer
/// only if that buffer begins with a frame: the writer lays frames out so it always
/// does (zstd_frames), or this file "appears to be damaged or corrupt" after ~90 rows.
#[test]
fn tshark_reads_zstd_of_incompressible_packets() {
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut noise = |len: usize| -> Vec<u8> {
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    };
    let out = SharedBuf::default();
    let opts = WriterOptions {
        compression: Compression::Zstd { level: 1 },
        ..Default::default()
    };
    let mut w = CaptureWriter::new(out.clone(), &opts).unwrap();
    w.add_interface(&interfaces()[0]).unwrap();
    let count = 4000u32;
    for i in 0..count {
        // Mostly incompressible, some text, flushes at uneven points.
        let payload = if i % 5 == 0 {
            format!("GET /item/{i} HTTP/1.1\r\nHost: example\r\n\r\n").into_bytes()
        } else {
            noise(1400)
        };
        w.write_packet(&PacketOut {
            interface_id: 0,
            ts_ns: 1_764_000_000_000_000_000 + u64::from(i) * 1000,
            data: &tcp_frame(40000, 80, i * 1400, &payload),
            orig_len: 0,
            direction: Direction::Unknown,
            process: None,
            comment: None,
        })
        .unwrap();
        if i % 997 == 996 {
            w.flush().unwrap();
        }
    }
    w.finish().unwrap();
    let bytes = out.0.lock().unwrap().clone();
    assert!(
        bytes.len() > 4 * 131_075,
        "several tshark buffers: {}",
        bytes.len()
    );
    let rows = tshark_rows(&bytes, &["frame.number"]);
    assert_eq!(rows.len(), count as usize);
}
