//! Captures of link types the analyzer does not decode (IEEE 802.11 here) used to give
//! an empty report and no word why; now each such interface is reported with the
//! packets skipped, and the interfaces it does decode are analyzed as usual.

use std::path::Path;

use l7rec_analyzer::{analyze, Options, UnsupportedLink};

const IEEE802_11: u16 = 105;
const ETHERNET: u16 = 1;

/// A microsecond legacy pcap of `linktype` holding `packets`.
fn write_pcap(path: &Path, linktype: u16, packets: &[&[u8]]) {
    let mut out = Vec::new();
    out.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&4u16.to_le_bytes());
    for v in [0u32, 0, 65_535, u32::from(linktype)] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    for (i, p) in packets.iter().enumerate() {
        let len = p.len() as u32;
        for v in [1_700_000_000 + i as u32, 0, len, len] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(p);
    }
    std::fs::write(path, out).expect("pcap written");
}

/// One little-endian pcapng block of `kind` around `body` (padded to 32 bits).
fn block(out: &mut Vec<u8>, kind: u32, body: &[u8]) {
    let pad = (4 - body.len() % 4) % 4;
    let len = (12 + body.len() + pad) as u32;
    out.extend_from_slice(&kind.to_le_bytes());
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(body);
    out.extend(std::iter::repeat_n(0u8, pad));
    out.extend_from_slice(&len.to_le_bytes());
}

/// A pcapng with one interface per link type and `(interface, packet)` EPBs.
fn write_pcapng(path: &Path, linktypes: &[u16], packets: &[(u32, &[u8])]) {
    let mut out = Vec::new();
    let mut shb = Vec::new();
    shb.extend_from_slice(&0x1a2b_3c4du32.to_le_bytes());
    shb.extend_from_slice(&1u16.to_le_bytes());
    shb.extend_from_slice(&0u16.to_le_bytes());
    shb.extend_from_slice(&(-1i64).to_le_bytes());
    block(&mut out, 0x0a0d_0d0a, &shb);
    for lt in linktypes {
        let mut idb = Vec::new();
        idb.extend_from_slice(&lt.to_le_bytes());
        idb.extend_from_slice(&0u16.to_le_bytes());
        idb.extend_from_slice(&65_535u32.to_le_bytes());
        block(&mut out, 1, &idb);
    }
    for (i, (iface, p)) in packets.iter().enumerate() {
        let ts = 1_700_000_000_000_000u64 + i as u64;
        let mut epb = Vec::new();
        for v in [
            *iface,
            (ts >> 32) as u32,
            ts as u32,
            p.len() as u32,
            p.len() as u32,
        ] {
            epb.extend_from_slice(&v.to_le_bytes());
        }
        epb.extend_from_slice(p);
        block(&mut out, 6, &epb);
    }
    std::fs::write(path, out).expect("pcapng written");
}

/// An 802.11 data frame's first bytes: what matters is that it is not Ethernet.
const WIFI_FRAME: &[u8] = &[0x08, 0x02, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff];

#[test]
fn a_pcap_of_an_unsupported_link_type_is_reported() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("wifi.pcap");
    write_pcap(&path, IEEE802_11, &[WIFI_FRAME; 3]);
    let a = analyze(&[&path], &Options::default(), &|_, _| {}).expect("analyzes");
    assert!(a.transactions.is_empty());
    assert_eq!(
        a.outcome.unsupported_links,
        [(
            path.clone(),
            UnsupportedLink {
                interface: None,
                linktype: IEEE802_11,
                packets: 3,
            }
        )]
    );
}

#[test]
fn only_the_unsupported_interface_of_a_pcapng_is_reported() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("mixed.pcapng");
    // An Ethernet ARP-like frame: decodable link layer, so not reported.
    let eth: &[u8] = &[0xff; 14];
    write_pcapng(
        &path,
        &[ETHERNET, IEEE802_11],
        &[(0, eth), (1, WIFI_FRAME), (1, WIFI_FRAME), (0, eth)],
    );
    let a = analyze(&[&path], &Options::default(), &|_, _| {}).expect("analyzes");
    assert!(
        a.outcome.read_errors.is_empty(),
        "{:?}",
        a.outcome.read_errors
    );
    assert_eq!(a.outcome.totals.read.packets, 4);
    assert_eq!(
        a.outcome.unsupported_links,
        [(
            path.clone(),
            UnsupportedLink {
                interface: Some(1),
                linktype: IEEE802_11,
                packets: 2,
            }
        )]
    );
}
