//! `CaptureReader` reads captures written by tcpdump and dumpcap exactly as tshark does.

use std::path::PathBuf;
use std::process::Command;

use l7rec_capture::*;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fixtures/reader")
        .join(name)
}

/// (epoch seconds with 9 decimals, captured length, wire length) per packet, by tshark.
fn tshark_view(path: &PathBuf) -> Vec<(String, usize, u32)> {
    let out = Command::new("tshark")
        .arg("-r")
        .arg(path)
        .args(["-T", "fields", "-E", "separator=|"])
        .args([
            "-e",
            "frame.time_epoch",
            "-e",
            "frame.cap_len",
            "-e",
            "frame.len",
        ])
        .output()
        .expect("tshark is required for this test (apt-get install tshark)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let c: Vec<&str> = l.split('|').collect();
            (
                c[0].to_owned(),
                c[1].parse().unwrap(),
                c[2].parse().unwrap(),
            )
        })
        .collect()
}

fn our_view(path: &PathBuf) -> (Vec<(String, usize, u32)>, u16, InputCompression, Format) {
    let mut r = CaptureReader::open(path).unwrap();
    let (compression, format) = (r.compression(), r.format());
    let mut rows = Vec::new();
    let mut linktype = None;
    while let Some(ev) = r.next_event() {
        match ev.unwrap() {
            Event::Packet(p) => {
                linktype = Some(p.linktype);
                rows.push((
                    format!("{}.{:09}", p.ts_ns / 1_000_000_000, p.ts_ns % 1_000_000_000),
                    p.data.len(),
                    p.orig_len,
                ));
            }
            _ => continue,
        }
    }
    (rows, linktype.unwrap(), compression, format)
}

fn check(name: &str, format: Format, compression: InputCompression) {
    let path = fixture(name);
    let (ours, linktype, c, f) = our_view(&path);
    assert_eq!((c, f), (compression, format), "{name}");
    assert_eq!(linktype, linktype::ETHERNET, "{name}");
    let theirs = tshark_view(&path);
    assert!(theirs.len() >= 10, "{name}: fixture too small");
    assert_eq!(ours, theirs, "{name}");
}

#[test]
fn tcpdump_pcap_microseconds() {
    check("tcpdump-us.pcap", Format::Pcap, InputCompression::None);
}

#[test]
fn tcpdump_pcap_nanoseconds() {
    check("tcpdump-ns.pcap", Format::Pcap, InputCompression::None);
}

#[test]
fn dumpcap_pcapng() {
    check("dumpcap.pcapng", Format::PcapNg, InputCompression::None);
}

#[test]
fn dumpcap_pcapng_gzip() {
    check("dumpcap.pcapng.gz", Format::PcapNg, InputCompression::Gzip);
}
