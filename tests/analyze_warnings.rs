//! `l7rec analyze` warnings and exit status on captures it cannot fully use: a link
//! type it does not decode (an empty report, so stderr must say why; status 0, the
//! capture was read), a capture without HTTP (a note says what was there instead) and
//! a capture cut short (status 3, a partial report).

use std::io::Write;
use std::path::Path;
use std::process::Command;

#[test]
fn unsupported_link_type_is_a_warning_not_silence() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("wifi.pcap");
    // Link type 105 (IEEE 802.11), two 10-byte frames.
    let frame = [0x08, 0x02, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff];
    std::fs::write(&path, pcap_of(105, &[&frame, &frame])).expect("pcap written");
    let out = analyze(&["--threads", "1"], &path);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{:?}: {stderr}", out.status);
    let want = format!(
        "l7rec: warning: {}: link type 105 (IEEE 802.11) is not supported: 2 packets skipped\n",
        path.display()
    );
    assert_eq!(stderr, want);
}

/// A legacy pcap (µs, little-endian) of link type `linktype` holding `frames`, one
/// second apart.
fn pcap_of(linktype: u32, frames: &[&[u8]]) -> Vec<u8> {
    let mut pcap = Vec::new();
    pcap.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    pcap.extend_from_slice(&2u16.to_le_bytes());
    pcap.extend_from_slice(&4u16.to_le_bytes());
    for v in [0u32, 0, 65_535, linktype] {
        pcap.extend_from_slice(&v.to_le_bytes());
    }
    for (i, frame) in (0u32..).zip(frames) {
        for v in [1_700_000_000 + i, 0, frame.len() as u32, frame.len() as u32] {
            pcap.extend_from_slice(&v.to_le_bytes());
        }
        pcap.extend_from_slice(frame);
    }
    pcap
}

/// One Ethernet/IPv4/TCP packet from port 40000 to 22 carrying `payload`, as a pcap.
fn one_tcp_packet_pcap(payload: &[u8]) -> Vec<u8> {
    let mut frame = vec![0u8; 12];
    frame.extend_from_slice(&[0x08, 0x00]);
    let ip_len = (20 + 20 + payload.len()) as u16;
    frame.extend_from_slice(&[0x45, 0]);
    frame.extend_from_slice(&ip_len.to_be_bytes());
    frame.extend_from_slice(&[0, 0, 0x40, 0, 64, 6, 0, 0, 127, 0, 0, 1, 127, 0, 0, 1]);
    frame.extend_from_slice(&40000u16.to_be_bytes());
    frame.extend_from_slice(&22u16.to_be_bytes());
    frame.extend_from_slice(&[0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x18, 0xff, 0xff, 0, 0, 0, 0]);
    frame.extend_from_slice(payload);
    pcap_of(1, &[&frame])
}

#[test]
fn a_capture_without_http_says_what_it_held() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("ssh.pcap");
    std::fs::write(&path, one_tcp_packet_pcap(b"SSH-2.0-OpenSSH_9.2\r\n")).expect("pcap written");
    let out = analyze(&["--format", "json"], &path);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{:?}: {stderr}", out.status);
    assert!(out.stdout.is_empty(), "no rows");
    assert_eq!(
        stderr,
        "l7rec: note: no HTTP/1.x transactions in 1 TCP connection (1 packet); HTTP/2, TLS \
         ciphertext (record it with --tls for its plaintext) and other protocols are not \
         decoded\n"
    );
    // --summary shows its totals itself: no note.
    let summary = analyze(&["--summary"], &path);
    assert!(
        summary.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&summary.stderr)
    );
}

/// A capture cut short (a recorder killed, a copy interrupted) still gives the report
/// of what came before, with a warning naming where reading stopped, and exit status
/// 3 so a script can tell a partial report from a complete one; the whole file gives 0.
/// In a compressed file the offset is of the decompressed stream, and the warning
/// says so.
#[test]
fn a_cut_capture_reports_what_came_before_and_exits_3() {
    let dir = tempfile::tempdir().expect("temp dir");
    let plain = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/http/keepalive.pcap");
    let pcap = std::fs::read(plain).expect("fixture");
    // The same as zstd, a block per KiB as a recorder's flushes make them, so that a
    // cut stream still decodes up to its last whole block.
    let zst = dir.path().join("keepalive.pcap.zst");
    let mut enc = zstd::stream::write::Encoder::new(Vec::new(), 1).expect("zstd");
    for piece in pcap.chunks(1024) {
        enc.write_all(piece).expect("zstd write");
        enc.flush().expect("zstd flush");
    }
    std::fs::write(&zst, enc.finish().expect("zstd end")).expect("zstd copy written");

    for (path, keep, says) in [
        (Path::new(plain), 0.99, "truncated pcap record at byte "),
        (&zst, 0.8, " (bytes counted after zstd decompression)"),
    ] {
        let fixture = path.display();
        let whole = std::fs::read(path).expect("fixture");
        let cut = dir.path().join("cut");
        let len = (whole.len() as f64 * keep) as usize;
        std::fs::write(&cut, &whole[..len]).expect("cut copy written");

        let full = analyze(&["--format", "json"], path);
        assert_eq!(full.status.code(), Some(0), "{fixture}: {full:?}");
        assert!(full.stderr.is_empty(), "{fixture}: {full:?}");

        let partial = analyze(&["--format", "json"], &cut);
        let stderr = String::from_utf8_lossy(&partial.stderr);
        assert_eq!(partial.status.code(), Some(3), "{fixture}: {stderr}");
        assert!(
            stderr.contains("reading stopped early") && stderr.contains(says),
            "{fixture}: the warning must say where and why: {stderr}"
        );
        let (got, all) = (rows(&partial), rows(&full));
        assert!(got >= 1 && got <= all, "{fixture}: {got} rows of {all}");
    }
}

/// `l7rec analyze ARGS PATH`.
fn analyze(args: &[&str], path: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_l7rec"))
        .arg("analyze")
        .args(args)
        .arg(path)
        .output()
        .expect("l7rec runs")
}

/// JSON rows on stdout (each line must be a JSON object).
fn rows(out: &std::process::Output) -> usize {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| {
            serde_json::from_str::<serde_json::Value>(l)
                .expect("a JSON row")
                .is_object()
        })
        .count()
}
