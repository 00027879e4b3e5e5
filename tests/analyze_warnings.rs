//! `l7rec analyze` on a capture of a link type it does not decode: the report is
//! empty, so stderr must say why (one warning per interface), and the exit status
//! stays 0 (the capture was read; nothing in it was HTTP it could see).

use std::process::Command;

#[test]
fn unsupported_link_type_is_a_warning_not_silence() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("wifi.pcap");
    // Legacy pcap, link type 105 (IEEE 802.11), two 10-byte frames.
    let mut pcap = Vec::new();
    pcap.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    pcap.extend_from_slice(&2u16.to_le_bytes());
    pcap.extend_from_slice(&4u16.to_le_bytes());
    for v in [0u32, 0, 65_535, 105] {
        pcap.extend_from_slice(&v.to_le_bytes());
    }
    for i in 0..2u32 {
        for v in [1_700_000_000 + i, 0, 10, 10] {
            pcap.extend_from_slice(&v.to_le_bytes());
        }
        pcap.extend_from_slice(&[0x08, 0x02, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
    }
    std::fs::write(&path, pcap).expect("pcap written");
    let out = Command::new(env!("CARGO_BIN_EXE_l7rec"))
        .args(["analyze", "--threads", "1"])
        .arg(&path)
        .output()
        .expect("l7rec runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{:?}: {stderr}", out.status);
    let want = format!(
        "l7rec: warning: {}: link type 105 (IEEE 802.11) is not supported: 2 packets skipped\n",
        path.display()
    );
    assert_eq!(stderr, want);
}
