//! Link layer → IP → TCP: from a captured frame to the TCP segment it carries.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use etherparse::{IpNumber, LaxIpSlice, TcpSlice};
use l7rec_capture::linktype;

/// A TCP segment located in a captured frame.
#[derive(Debug, Clone, Copy)]
pub struct TcpSegment<'a> {
    /// Sender.
    pub src: SocketAddr,
    /// Receiver.
    pub dst: SocketAddr,
    /// Sequence number of the first payload byte (or of the SYN/FIN).
    pub seq: u32,
    /// SYN flag.
    pub syn: bool,
    /// ACK flag.
    pub ack: bool,
    /// FIN flag.
    pub fin: bool,
    /// RST flag.
    pub rst: bool,
    /// TCP payload as captured (may be shorter than sent if the snap length cut it).
    pub payload: &'a [u8],
    /// Payload bytes the snap length cut off.
    pub truncated: usize,
}

/// Why a frame yields no TCP segment; counted, never fatal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skip {
    /// A link type this analyzer does not decode.
    LinkType,
    /// Not IPv4/IPv6 (ARP, ...).
    NotIp,
    /// IP but not TCP.
    NotTcp,
    /// An IP fragment (reassembly of IP fragments is not done).
    Fragment,
    /// Headers cut short or malformed.
    Malformed,
}

/// Common name of a link type this analyzer does not decode, for the warning that
/// says its packets were skipped (names as on tcpdump.org's LINKTYPE list). `None`
/// for the rarer ones: the number alone still identifies them.
pub fn unsupported_linktype_name(linktype: u16) -> Option<&'static str> {
    Some(match linktype {
        6 => "IEEE 802.5 Token Ring",
        9 => "PPP",
        10 => "FDDI",
        50 => "PPP in HDLC framing",
        51 => "PPPoE",
        104 => "Cisco HDLC",
        105 => "IEEE 802.11",
        107 => "Frame Relay",
        119 => "IEEE 802.11 Prism",
        127 => "IEEE 802.11 radiotap",
        143 => "DOCSIS",
        192 => "PPI",
        195 => "IEEE 802.15.4",
        201 => "Bluetooth HCI H4",
        220 => "USB Linux",
        249 => "USBPcap",
        253 => "Linux netlink",
        _ => return None,
    })
}

/// Offset of the IP header within a frame of `linktype`, or why there is none.
fn l3_offset(linktype: u16, frame: &[u8]) -> Result<usize, Skip> {
    const ETH_IPV4: u16 = 0x0800;
    const ETH_IPV6: u16 = 0x86dd;
    let ethertype_at = |off: usize| -> Result<u16, Skip> {
        frame
            .get(off..off + 2)
            .map(|b| u16::from_be_bytes([b[0], b[1]]))
            .ok_or(Skip::Malformed)
    };
    let ip_or_skip = |ethertype: u16, off: usize| match ethertype {
        ETH_IPV4 | ETH_IPV6 => Ok(off),
        _ => Err(Skip::NotIp),
    };
    match linktype {
        linktype::ETHERNET => {
            let mut off = 12;
            let mut et = ethertype_at(off)?;
            // 802.1Q / 802.1ad tags, at most two.
            for _ in 0..2 {
                if et == 0x8100 || et == 0x88a8 {
                    off += 4;
                    et = ethertype_at(off)?;
                }
            }
            ip_or_skip(et, off + 2)
        }
        linktype::LINUX_SLL => ip_or_skip(ethertype_at(14)?, 16),
        linktype::LINUX_SLL2 => ip_or_skip(ethertype_at(0)?, 20),
        linktype::RAW | 12 | 14 | 228 | 229 => Ok(0),
        linktype::NULL | linktype::LOOP => {
            let b = frame.get(..4).ok_or(Skip::Malformed)?;
            let family = if linktype == linktype::LOOP {
                u32::from_be_bytes([b[0], b[1], b[2], b[3]])
            } else if b[0] != 0 {
                u32::from_le_bytes([b[0], b[1], b[2], b[3]])
            } else {
                u32::from_be_bytes([b[0], b[1], b[2], b[3]])
            };
            // AF_INET is 2 everywhere; AF_INET6 is 10 (Linux), 24, 28 or 30 (BSDs, macOS).
            match family {
                2 | 10 | 24 | 28 | 30 => Ok(4),
                _ => Err(Skip::NotIp),
            }
        }
        _ => Err(Skip::LinkType),
    }
}

/// Decodes the TCP segment carried by `frame`.
// Inlined, with `plain_tcp`, into the reading loop: a segment returned through memory
// was copied on in wider loads than it had been stored with, which the CPU cannot
// serve from its store buffer (see `CaptureReader::advance`).
#[inline(always)]
pub fn tcp_segment(linktype: u16, frame: &[u8]) -> Result<TcpSegment<'_>, Skip> {
    let l3 = l3_offset(linktype, frame)?;
    let ip_bytes = frame.get(l3..).ok_or(Skip::Malformed)?;
    // Runs once per packet in the recorder and the analyzer: the common shapes are
    // read directly, anything else goes through etherparse.
    match plain_tcp(ip_bytes) {
        Some(seg) => Ok(seg),
        None => any_tcp(ip_bytes),
    }
}

/// TCP directly over a well-formed IPv4 (options allowed, not a fragment) or IPv6
/// (no extension headers) header; `None` for anything else, left to [`any_tcp`],
/// which decodes these the same way.
#[inline(always)] // see tcp_segment
fn plain_tcp(ip: &[u8]) -> Option<TcpSegment<'_>> {
    const TCP: u8 = 6;
    let be16 = |at: usize| Some(u16::from_be_bytes([*ip.get(at)?, *ip.get(at + 1)?]));
    // Addresses as integers, read from the packet in one load each: built byte by
    // byte into an `IpAddr` on the stack, an IPv4 address was then read back as one
    // u32 that the CPU could not forward from its four one-byte stores (the slowest
    // instruction of the reading thread in the benchmark VM's slow stretches).
    let (v6, src_ip, dst_ip, header_len, declared) = match ip.first()? >> 4 {
        4 => {
            let ihl = usize::from(ip[0] & 0x0f) * 4;
            let total = usize::from(be16(2)?);
            // More fragments, or a fragment offset.
            let fragment = be16(6)? & 0x3fff != 0;
            if ihl < 20 || ip.len() < ihl || total < ihl || ip[9] != TCP || fragment {
                return None;
            }
            let addr = |at: usize| Some(u128::from(u32::from_be_bytes(array(ip, at)?)));
            (false, addr(12)?, addr(16)?, ihl, total - ihl)
        }
        6 => {
            let plen = usize::from(be16(4)?);
            if ip.len() < 40 || ip[6] != TCP || plen == 0 {
                return None;
            }
            let addr = |at: usize| Some(u128::from_be_bytes(array(ip, at)?));
            (true, addr(8)?, addr(24)?, 40, plen)
        }
        _ => return None,
    };
    let endpoint = |ip: u128, port: u16| match v6 {
        false => SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::from(ip as u32), port)),
        true => SocketAddr::V6(SocketAddrV6::new(Ipv6Addr::from(ip), port, 0, 0)),
    };
    // Short frames carry link padding past the IP length; a snap length cuts before it.
    let l4 = &ip[header_len..ip.len().min(header_len + declared)];
    let doff = usize::from(*l4.get(12)? >> 4) * 4;
    if doff < 20 || l4.len() < doff {
        return None;
    }
    let flags = l4[13];
    let port = |at: usize| u16::from_be_bytes([l4[at], l4[at + 1]]);
    Some(TcpSegment {
        src: endpoint(src_ip, port(0)),
        dst: endpoint(dst_ip, port(2)),
        seq: u32::from_be_bytes([l4[4], l4[5], l4[6], l4[7]]),
        syn: flags & 0x02 != 0,
        ack: flags & 0x10 != 0,
        fin: flags & 0x01 != 0,
        rst: flags & 0x04 != 0,
        payload: &l4[doff..],
        truncated: declared - l4.len(),
    })
}

/// The `N` bytes of `b` at `at`.
fn array<const N: usize>(b: &[u8], at: usize) -> Option<[u8; N]> {
    b.get(at..at + N)?.try_into().ok()
}

/// Decodes TCP in any IP datagram etherparse reads (extension headers, odd lengths).
fn any_tcp(ip_bytes: &[u8]) -> Result<TcpSegment<'_>, Skip> {
    let (ip, _ext_err) = LaxIpSlice::from_slice(ip_bytes).map_err(|_| Skip::Malformed)?;
    let (src_ip, dst_ip): (IpAddr, IpAddr) = (ip.source_addr(), ip.destination_addr());
    let payload = ip.payload();
    if payload.ip_number != IpNumber::TCP {
        return Err(Skip::NotTcp);
    }
    if payload.fragmented {
        return Err(Skip::Fragment);
    }
    let tcp = TcpSlice::from_slice(payload.payload).map_err(|_| Skip::Malformed)?;
    // With a snap length, the IP length says how much payload was really sent.
    let truncated = if payload.incomplete {
        ip_declared_payload(ip_bytes)
            .map_or(0, |declared| declared.saturating_sub(payload.payload.len()))
    } else {
        0
    };
    Ok(TcpSegment {
        src: SocketAddr::new(src_ip, tcp.source_port()),
        dst: SocketAddr::new(dst_ip, tcp.destination_port()),
        seq: tcp.sequence_number(),
        syn: tcp.syn(),
        ack: tcp.ack(),
        fin: tcp.fin(),
        rst: tcp.rst(),
        payload: tcp.payload(),
        truncated,
    })
}

/// IP payload length the header announces (IPv4 total length − IHL; IPv6 payload
/// length, extension headers included — good enough to count a cut).
fn ip_declared_payload(ip: &[u8]) -> Option<usize> {
    match ip.first()? >> 4 {
        4 => {
            let ihl = usize::from(ip.first()? & 0x0f) * 4;
            let total = usize::from(u16::from_be_bytes([*ip.get(2)?, *ip.get(3)?]));
            total.checked_sub(ihl)
        }
        6 => Some(usize::from(u16::from_be_bytes([*ip.get(4)?, *ip.get(5)?]))),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::PacketBuilder;

    fn tcp_v4(payload: &[u8]) -> Vec<u8> {
        let b = PacketBuilder::ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
            .tcp(40000, 80, 1234, 1000)
            .psh()
            .ack(5);
        let mut out = Vec::new();
        b.write(&mut out, payload).unwrap();
        out
    }

    #[test]
    fn every_link_type_reaches_tcp() {
        let ip = tcp_v4(b"GET / HTTP/1.1\r\n\r\n");
        let mut eth = vec![0u8; 12];
        eth.extend_from_slice(&[0x08, 0x00]);
        eth.extend_from_slice(&ip);
        let mut vlan = vec![0u8; 12];
        vlan.extend_from_slice(&[0x81, 0x00, 0, 5, 0x08, 0x00]);
        vlan.extend_from_slice(&ip);
        let mut sll = vec![0u8; 14];
        sll.extend_from_slice(&[0x08, 0x00]);
        sll.extend_from_slice(&ip);
        let mut sll2 = vec![0x08, 0x00];
        sll2.extend_from_slice(&[0u8; 18]);
        sll2.extend_from_slice(&ip);
        let mut null = 2u32.to_le_bytes().to_vec();
        null.extend_from_slice(&ip);
        let mut lop = 2u32.to_be_bytes().to_vec();
        lop.extend_from_slice(&ip);
        for (lt, frame) in [
            (linktype::ETHERNET, eth),
            (linktype::ETHERNET, vlan),
            (linktype::LINUX_SLL, sll),
            (linktype::LINUX_SLL2, sll2),
            (linktype::RAW, ip.clone()),
            (linktype::NULL, null),
            (linktype::LOOP, lop),
        ] {
            let seg = tcp_segment(lt, &frame).unwrap_or_else(|e| panic!("{lt}: {e:?}"));
            assert_eq!(seg.src, "10.0.0.1:40000".parse().unwrap());
            assert_eq!(seg.dst, "10.0.0.2:80".parse().unwrap());
            assert_eq!(seg.seq, 1234);
            assert_eq!(seg.payload, b"GET / HTTP/1.1\r\n\r\n");
            assert_eq!(seg.truncated, 0);
        }
    }

    #[test]
    fn snaplen_cut_is_measured() {
        let ip = tcp_v4(&[b'x'; 100]);
        let seg = tcp_segment(linktype::RAW, &ip[..ip.len() - 30]).unwrap();
        assert_eq!(seg.payload.len(), 70);
        assert_eq!(seg.truncated, 30);
    }

    #[test]
    fn garbage_is_skipped() {
        assert!(tcp_segment(linktype::ETHERNET, &[1, 2, 3]).is_err());
        assert!(tcp_segment(linktype::RAW, &[0x45; 10]).is_err());
        assert_eq!(tcp_segment(999, &[0; 64]).unwrap_err(), Skip::LinkType);
    }

    /// An IPv4 (`ip_opts` words of options) or IPv6 datagram carrying TCP with
    /// `tcp_opts` words of options and `payload`.
    fn datagram(v6: bool, ip_opts: usize, tcp_opts: usize, flags: u8, payload: &[u8]) -> Vec<u8> {
        let mut tcp = vec![0u8; 20 + 4 * tcp_opts];
        tcp[..4].copy_from_slice(&[0x9c, 0x40, 0x00, 0x50]);
        tcp[4..8].copy_from_slice(&0xdead_beefu32.to_be_bytes());
        tcp[12] = ((5 + tcp_opts) as u8) << 4;
        tcp[13] = flags;
        tcp.extend_from_slice(payload);
        let mut ip = if v6 {
            let mut h = vec![0u8; 40];
            h[0] = 0x60;
            h[4..6].copy_from_slice(&(tcp.len() as u16).to_be_bytes());
            h[6] = 6;
            h[8..40]
                .iter_mut()
                .enumerate()
                .for_each(|(i, b)| *b = i as u8);
            h
        } else {
            let ihl = 20 + 4 * ip_opts;
            let mut h = vec![1u8; ihl];
            h[0] = 0x40 | (ihl / 4) as u8;
            h[2..4].copy_from_slice(&((ihl + tcp.len()) as u16).to_be_bytes());
            h[6..8].copy_from_slice(&[0x40, 0]); // DF
            h[9] = 6;
            h[12..20].copy_from_slice(&[10, 0, 0, 1, 10, 0, 0, 2]);
            h
        };
        ip.extend_from_slice(&tcp);
        ip
    }

    proptest::proptest! {
        /// The direct decoding of common datagrams agrees with etherparse's on valid,
        /// cut, padded and corrupted input alike.
        #[test]
        fn plain_decoding_agrees_with_etherparse(
            v6: bool,
            ip_opts in 0usize..11,
            tcp_opts in 0usize..11,
            flags: u8,
            payload_len in 0usize..200,
            cut in proptest::option::of(0usize..400),
            padding in 0usize..20,
            edits in proptest::collection::vec((0usize..100, proptest::num::u8::ANY), 0..3),
        ) {
            let mut ip = datagram(v6, ip_opts, tcp_opts, flags, &vec![b'x'; payload_len]);
            ip.extend(std::iter::repeat_n(0, padding));
            for (at, v) in edits {
                if let Some(b) = ip.get_mut(at) {
                    *b = v;
                }
            }
            ip.truncate(cut.unwrap_or(usize::MAX));
            let direct = format!("{:?}", tcp_segment(linktype::RAW, &ip));
            let general = format!("{:?}", any_tcp(&ip));
            proptest::prop_assert_eq!(direct, general);
        }
    }
}
