//! Property: however a known HTTP conversation is cut into TCP segments, reordered
//! (within a window) and duplicated, `analyze` reports the same transactions
//! (method, uri, status, body sizes) as for the clean capture.
//!
//! The conversation is one keep-alive connection (handshake, six exchanges: plain GET,
//! a 3 kB URL, chunked request and response bodies with extensions and trailers, a
//! POST, HEAD with Content-Length, 204, a final 404 with `Connection: close`, FINs),
//! written as Ethernet/IPv4/TCP frames with correct sequence and acknowledgement
//! numbers into a legacy pcap written here. Every packet keeps the timestamp it has in
//! the clean capture (as when captures are merged without sorting): the file order
//! changes, causality in time does not. The handshake and the FINs stay in place —
//! data segments before the SYN would make a midstream connection, and data after
//! both FINs a new one; both are different conversations, not reorderings.

use std::path::Path;

use etherparse::PacketBuilder;
use l7rec_analyzer::{analyze, Flag, Options};
use proptest::prelude::*;

const CLIENT: ([u8; 4], u16) = ([10, 1, 0, 1], 40_123);
const SERVER: ([u8; 4], u16) = ([10, 1, 0, 2], 8080);
const CLIENT_ISN: u32 = 0xffff_f000; // the client's sequence numbers wrap around
const SERVER_ISN: u32 = 0x1234_5678;

/// (method, uri, status, request body bytes, response body bytes)
type Summary = (String, String, u16, u64, u64);
/// (request bytes, response bytes) of each exchange, in order.
type Exchanges = Vec<(Vec<u8>, Vec<u8>)>;

fn body(len: usize, salt: u8) -> Vec<u8> {
    (0..len)
        .map(|i| {
            b"abcdefghijklmnopqrstuvwxyz0123456789\r\n HTTP/1.1 "[(i * 7 + usize::from(salt)) % 48]
        })
        .collect()
}

fn long_uri() -> String {
    let q: String = (0..3000)
        .map(|i| char::from(b'a' + (i % 26) as u8))
        .collect();
    format!("/search?q={q}&page=2")
}

/// The exchanges: (request bytes, response bytes), and what must be reported.
fn conversation() -> (Exchanges, Vec<Summary>) {
    let host = "Host: example.test\r\nUser-Agent: segmentation-property\r\n";
    let mut ex = Vec::new();
    let mut want = Vec::new();

    let mut s1 =
        b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 1000\r\n\r\n".to_vec();
    s1.extend(body(1000, 1));
    ex.push((
        format!("GET /index.html HTTP/1.1\r\n{host}\r\n").into_bytes(),
        s1,
    ));
    want.push(("GET", "/index.html".to_owned(), 200, 0, 1000));

    let uri = long_uri();
    let mut s2 =
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1f4;name=\"a b\"\r\n".to_vec();
    s2.extend(body(500, 2));
    s2.extend_from_slice(b"\r\na\r\n0123456789\r\n7D0\r\n");
    s2.extend(body(2000, 3));
    s2.extend_from_slice(b"\r\n0\r\nX-Trailer: yes\r\nX-Other: 2\r\n\r\n");
    ex.push((format!("GET {uri} HTTP/1.1\r\n{host}\r\n").into_bytes(), s2));
    want.push(("GET", uri, 200, 0, 2510));

    let mut c3 =
        format!("POST /upload HTTP/1.1\r\n{host}Content-Length: 3000\r\n\r\n").into_bytes();
    c3.extend(body(3000, 4));
    let s3 = b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n".to_vec();
    ex.push((c3, s3));
    want.push(("POST", "/upload".to_owned(), 201, 3000, 0));

    let mut c4 = format!("PUT /chunked HTTP/1.1\r\n{host}Transfer-Encoding: chunked\r\n\r\n64\r\n")
        .into_bytes();
    c4.extend(body(100, 5));
    c4.extend_from_slice(b"\r\n0\r\n\r\n");
    ex.push((c4, b"HTTP/1.1 204 No Content\r\n\r\n".to_vec()));
    want.push(("PUT", "/chunked".to_owned(), 204, 100, 0));

    ex.push((
        format!("HEAD /big HTTP/1.1\r\n{host}\r\n").into_bytes(),
        b"HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n".to_vec(),
    ));
    want.push(("HEAD", "/big".to_owned(), 200, 0, 0));

    ex.push((
        format!("GET /missing HTTP/1.1\r\n{host}Connection: close\r\n\r\n").into_bytes(),
        b"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\nConnection: close\r\n\r\nnot found"
            .to_vec(),
    ));
    want.push(("GET", "/missing".to_owned(), 404, 0, 9));

    let want = want
        .into_iter()
        .map(|(m, u, s, q, r)| (m.to_owned(), u, s, q, r))
        .collect();
    (ex, want)
}

/// One frame of the capture with its (clean-order) timestamp.
#[derive(Clone)]
struct Frame {
    ts_ns: u64,
    bytes: Vec<u8>,
}

#[derive(Clone, Copy)]
enum Flags {
    Syn,
    SynAck,
    Data,
    Fin,
}

fn frame(from_client: bool, seq: u32, ack: u32, flags: Flags, payload: &[u8]) -> Vec<u8> {
    let ((src, sport), (dst, dport)) = if from_client {
        (CLIENT, SERVER)
    } else {
        (SERVER, CLIENT)
    };
    let b = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
        .ipv4(src, dst, 64)
        .tcp(sport, dport, seq, 65_535);
    let b = match flags {
        Flags::Syn => b.syn(),
        Flags::SynAck => b.syn().ack(ack),
        Flags::Data => b.ack(ack).psh(),
        Flags::Fin => b.ack(ack).fin(),
    };
    let mut out = Vec::with_capacity(54 + payload.len());
    b.write(&mut out, payload).expect("frame builds");
    out
}

/// Segment sizes for a message: `cut(remaining)` gives the next size (≥ 1).
fn frames(
    exchanges: &[(Vec<u8>, Vec<u8>)],
    mut cut: impl FnMut(usize) -> usize,
) -> (Vec<Frame>, Vec<Frame>, Vec<Frame>) {
    let mut ts = 1_700_000_000_000_000_000u64;
    let mut tick = || {
        ts += 10_000;
        ts
    };
    let (mut cseq, mut sseq) = (CLIENT_ISN.wrapping_add(1), SERVER_ISN.wrapping_add(1));
    let head = vec![
        Frame {
            ts_ns: tick(),
            bytes: frame(true, CLIENT_ISN, 0, Flags::Syn, b""),
        },
        Frame {
            ts_ns: tick(),
            bytes: frame(false, SERVER_ISN, cseq, Flags::SynAck, b""),
        },
        Frame {
            ts_ns: tick(),
            bytes: frame(true, cseq, sseq, Flags::Data, b""),
        },
    ];
    let mut data = Vec::new();
    for (req, resp) in exchanges {
        for (msg, from_client) in [(req, true), (resp, false)] {
            let mut at = 0;
            while at < msg.len() {
                let n = cut(msg.len() - at).clamp(1, msg.len() - at);
                let piece = &msg[at..at + n];
                let bytes = if from_client {
                    let f = frame(true, cseq, sseq, Flags::Data, piece);
                    cseq = cseq.wrapping_add(n as u32);
                    f
                } else {
                    let f = frame(false, sseq, cseq, Flags::Data, piece);
                    sseq = sseq.wrapping_add(n as u32);
                    f
                };
                data.push(Frame {
                    ts_ns: tick(),
                    bytes,
                });
                at += n;
            }
        }
    }
    let tail = vec![
        Frame {
            ts_ns: tick(),
            bytes: frame(false, sseq, cseq, Flags::Fin, b""),
        },
        Frame {
            ts_ns: tick(),
            bytes: frame(true, cseq, sseq.wrapping_add(1), Flags::Fin, b""),
        },
    ];
    (head, data, tail)
}

fn write_pcap(path: &Path, frames: &[Frame]) {
    let mut out = Vec::new();
    // Nanosecond pcap, little-endian, v2.4, snaplen 262144, Ethernet.
    out.extend_from_slice(&0xa1b2_3c4du32.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&4u16.to_le_bytes());
    for v in [0u32, 0, 262_144, 1] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    for f in frames {
        let len = f.bytes.len() as u32;
        for v in [
            (f.ts_ns / 1_000_000_000) as u32,
            (f.ts_ns % 1_000_000_000) as u32,
            len,
            len,
        ] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(&f.bytes);
    }
    std::fs::write(path, out).expect("pcap written");
}

/// Analyzes `frames`; returns the transactions' summaries in start order, and the
/// flags other than `retransmission` (which duplicates legitimately add).
fn analyze_frames(frames: &[Frame], threads: usize) -> (Vec<Summary>, Vec<Vec<Flag>>) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("conv.pcap");
    write_pcap(&path, frames);
    let opts = Options {
        threads: Some(threads),
        without_headers: false,
    };
    let a = analyze(&[&path], &opts, &|_, _| {}).expect("analyzes");
    assert!(
        a.outcome.read_errors.is_empty(),
        "read errors: {:?}",
        a.outcome.read_errors
    );
    let mut txs = a.transactions;
    txs.sort_by_key(|t| t.ts_ns());
    let summaries = txs
        .iter()
        .map(|t| {
            (
                t.method.as_deref().unwrap_or_default().to_owned(),
                t.uri.clone().unwrap_or_default(),
                t.status.unwrap_or(0),
                t.req_body_bytes.unwrap_or(u64::MAX),
                t.resp_body_bytes.unwrap_or(u64::MAX),
            )
        })
        .collect();
    let flags = txs
        .iter()
        .map(|t| {
            t.flags
                .iter()
                .copied()
                .filter(|f| *f != Flag::Retransmission)
                .collect()
        })
        .collect();
    (summaries, flags)
}

/// A small deterministic generator (xorshift64*), seeded by proptest.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n.max(1)
    }
}

/// The clean capture: 1400-byte segments, in order, once each.
fn clean() -> Vec<Frame> {
    let (ex, _) = conversation();
    let (mut all, data, tail) = frames(&ex, |_| 1400);
    all.extend(data);
    all.extend(tail);
    all
}

#[test]
fn clean_capture_gives_the_known_transactions() {
    let (_, want) = conversation();
    let (got, flags) = analyze_frames(&clean(), 1);
    assert_eq!(got, want);
    assert!(flags.iter().all(Vec::is_empty), "flags: {flags:?}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn segmentation_reordering_duplication_keep_transactions(
        seed in 1u64..,
        max_seg in prop_oneof![1usize..8, 8usize..200, 200usize..1500],
        window in 0u64..12,
        dup_percent in 0u64..40,
        threads in 1usize..3,
    ) {
        let (ex, want) = conversation();
        let mut rng = Rng(seed);
        let (head, data, tail) = frames(&ex, |_| 1 + rng.below(max_seg as u64) as usize);
        // Reorder: each data frame moves by at most `window` places.
        let mut keyed: Vec<(u64, Frame)> = data
            .into_iter()
            .enumerate()
            .map(|(i, f)| (i as u64 + rng.below(window + 1), f))
            .collect();
        keyed.sort_by_key(|(k, _)| *k);
        let mut data: Vec<Frame> = keyed.into_iter().map(|(_, f)| f).collect();
        // Duplicate: exact copies (same timestamp) shortly after the original.
        let mut i = 0;
        while i < data.len() {
            if rng.below(100) < dup_percent {
                let at = (i + 1 + rng.below(window + 1) as usize).min(data.len());
                let copy = data[i].clone();
                data.insert(at, copy);
            }
            i += 1;
        }
        let mut all = head;
        all.extend(data);
        all.extend(tail);
        let (got, flags) = analyze_frames(&all, threads);
        prop_assert_eq!(got, want);
        prop_assert!(flags.iter().all(Vec::is_empty), "flags: {:?}", flags);
    }
}
