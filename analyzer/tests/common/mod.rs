//! Building small captures in tests: Ethernet/IPv4/TCP frames and a nanosecond pcap.

use etherparse::PacketBuilder;

/// One Ethernet/IPv4/TCP frame; `flags`: "S", "SA", "F", else ACK|PSH with `payload`.
pub fn tcp_frame(
    (src, sport): ([u8; 4], u16),
    (dst, dport): ([u8; 4], u16),
    seq: u32,
    ack: u32,
    flags: &str,
    payload: &[u8],
) -> Vec<u8> {
    let b = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
        .ipv4(src, dst, 64)
        .tcp(sport, dport, seq, 65_535);
    let b = match flags {
        "S" => b.syn(),
        "SA" => b.syn().ack(ack),
        "F" => b.ack(ack).fin(),
        _ => b.ack(ack).psh(),
    };
    let mut out = Vec::new();
    b.write(&mut out, payload).expect("frame builds");
    out
}

/// The frames of a whole HTTP/1.x connection from `client` to `server`: handshake,
/// `request`, `response` in segments of at most `mss` bytes, both FINs.
#[allow(dead_code)] // not every test uses it
pub fn connection_frames(
    client: ([u8; 4], u16),
    server: ([u8; 4], u16),
    request: &[u8],
    response: &[u8],
    mss: usize,
) -> Vec<Vec<u8>> {
    let (c, s) = (client, server);
    let (mut cseq, mut sseq) = (1000u32, 5000u32);
    let mut frames = vec![
        tcp_frame(c, s, cseq, 0, "S", b""),
        tcp_frame(s, c, sseq, cseq + 1, "SA", b""),
    ];
    cseq += 1;
    sseq += 1;
    frames.push(tcp_frame(c, s, cseq, sseq, "A", request));
    cseq += request.len() as u32;
    for part in response.chunks(mss) {
        frames.push(tcp_frame(s, c, sseq, cseq, "A", part));
        sseq += part.len() as u32;
    }
    frames.push(tcp_frame(c, s, cseq, sseq, "F", b""));
    frames.push(tcp_frame(s, c, sseq, cseq + 1, "F", b""));
    frames
}

/// A nanosecond pcap (Ethernet), one frame per [`push`](Self::push), 1 ms apart.
pub struct NsPcap {
    /// The file so far.
    pub bytes: Vec<u8>,
    ts: u64,
}

impl NsPcap {
    /// The file header.
    pub fn new() -> Self {
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&0xa1b2_3c4du32.to_le_bytes());
        bytes.extend_from_slice(&2u16.to_le_bytes());
        bytes.extend_from_slice(&4u16.to_le_bytes());
        for v in [0u32, 0, 262_144, 1] {
            bytes.extend_from_slice(&v.to_le_bytes());
        }
        Self {
            bytes,
            ts: 1_700_000_000_000_000_000,
        }
    }

    /// Appends one frame.
    pub fn push(&mut self, frame: Vec<u8>) {
        self.ts += 1_000_000;
        let len = frame.len() as u32;
        for v in [
            (self.ts / 1_000_000_000) as u32,
            (self.ts % 1_000_000_000) as u32,
            len,
            len,
        ] {
            self.bytes.extend_from_slice(&v.to_le_bytes());
        }
        self.bytes.extend_from_slice(&frame);
    }
}
