//! Link layer → IP → TCP: from a captured frame to the TCP segment it carries.

use std::net::{IpAddr, SocketAddr};

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
pub fn tcp_segment(linktype: u16, frame: &[u8]) -> Result<TcpSegment<'_>, Skip> {
    let l3 = l3_offset(linktype, frame)?;
    let ip_bytes = frame.get(l3..).ok_or(Skip::Malformed)?;
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
}
