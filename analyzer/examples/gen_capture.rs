//! Synthesizes a large, realistic HTTP/1.1 capture for the analyzer benchmark.
//!
//! ```sh
//! cargo run --release -p l7rec-analyzer --example gen_capture -- \
//!     --out F --size-mb N --format l7rec|pcap --seed S [--concurrency C]
//! ```
//!
//! Traffic: Ethernet + IPv4 (and ~10 % IPv6) + TCP with correct sequence and
//! acknowledgement numbers, IP and TCP checksums, TCP timestamp options (MSS 1448 on
//! IPv4, 1428 on IPv6). `--concurrency` connections (default 2000; fewer below 200 MB) are open at any
//! time and progress interleaved, a few segments at a time. Each connection: SYN
//! handshake, 1–12 keep-alive requests (GET/POST/PUT/DELETE/HEAD; a few % with long
//! URLs spanning several segments, POST/PUT with bodies), responses with
//! Content-Length bodies of 100 B – 200 KB or chunked bodies, 204/304 without body,
//! delayed ACKs, a small fraction of swapped (out-of-order) and retransmitted
//! segments, FIN teardown. Timestamps only increase.
//!
//! The traffic depends only on `--seed` and `--size-mb` (the size is measured as the
//! equivalent plain pcap), so both formats of one seed carry the same packets.
//! `--format l7rec` writes zstd pcapng through `CaptureWriter` with l7rec process and
//! connection records; `--format pcap` writes a plain legacy pcap (ns timestamps).
//!
//! Memory is bounded: a message is a list of small header pieces and ranges of one
//! shared body buffer, so open connections cost a few hundred bytes each.
//!
//! Ground truth goes to stderr as one line of `key=value` pairs:
//! `gen_capture: requests=N responses=N connections=N packets=N ...`.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::process::exit;
use std::time::Instant;

use l7rec_capture::{
    linktype, CaptureWriter, Compression, ConnectionInfo, Interface, PacketOut, ProcessInfo,
    Record, Role, WriterOptions,
};

// ---------------------------------------------------------------- randomness

/// xoshiro256** seeded by splitmix64: fast, deterministic, no dependency.
struct Rng([u64; 4]);

impl Rng {
    fn new(seed: u64) -> Self {
        let mut x = seed;
        let mut next = || {
            x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = x;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        };
        Rng([next(), next(), next(), next()])
    }
    fn u64(&mut self) -> u64 {
        let s = &mut self.0;
        let r = s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        r
    }
    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.u64() % (hi - lo + 1)
    }
    fn f64(&mut self) -> f64 {
        (self.u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    /// True with probability `p`.
    fn chance(&mut self, p: f64) -> bool {
        self.f64() < p
    }
    /// Log-uniform in `lo..=hi`.
    fn log_uniform(&mut self, lo: u64, hi: u64) -> u64 {
        let (a, b) = ((lo as f64).ln(), (hi as f64).ln());
        ((a + (b - a) * self.f64()).exp() as u64).clamp(lo, hi)
    }
    fn pick<'a, T>(&mut self, v: &'a [T]) -> &'a T {
        &v[(self.u64() % v.len() as u64) as usize]
    }
}

// ---------------------------------------------------------------- messages

/// Size of the shared buffer bodies are cut from.
const BODY_POOL: usize = 256 * 1024;

/// A part of an HTTP message: owned bytes (heads, chunk headers) or a range of the
/// shared body pool.
enum Piece {
    Owned(Vec<u8>),
    Pool {
        start: u32,
        len: u32,
    },
    /// Incompressible bytes, computed from `seed` and the offset (never stored).
    Random {
        seed: u64,
        len: u32,
    },
}

fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// An HTTP message as the bytes its sender writes on the stream.
#[derive(Default)]
struct Message {
    pieces: Vec<Piece>,
    len: usize,
}

impl Message {
    fn push_owned(&mut self, b: Vec<u8>) {
        self.len += b.len();
        self.pieces.push(Piece::Owned(b));
    }
    /// Appends `len` body bytes: text, or (`binary`) incompressible bytes.
    fn push_body(&mut self, rng: &mut Rng, len: usize, binary: bool) {
        if binary {
            self.pieces.push(Piece::Random {
                seed: rng.u64(),
                len: len as u32,
            });
            self.len += len;
            return;
        }
        let mut left = len;
        while left > 0 {
            let n = left.min(BODY_POOL / 2);
            let start = rng.range(0, (BODY_POOL - n) as u64) as u32;
            self.pieces.push(Piece::Pool {
                start,
                len: n as u32,
            });
            self.len += n;
            left -= n;
        }
    }
    /// Appends bytes `off..off + len` of the message to `out`.
    fn copy_range(&self, pool: &[u8], mut off: usize, mut len: usize, out: &mut Vec<u8>) {
        for p in &self.pieces {
            if len == 0 {
                break;
            }
            let bytes: &[u8] = match p {
                Piece::Owned(b) => b,
                Piece::Pool { start, len } => &pool[*start as usize..(*start + *len) as usize],
                Piece::Random { seed, len: plen } => {
                    let plen = *plen as usize;
                    if off >= plen {
                        off -= plen;
                        continue;
                    }
                    let n = (plen - off).min(len);
                    let (first, last) = (off / 8, (off + n - 1) / 8);
                    let at = out.len();
                    for w in first..=last {
                        out.extend_from_slice(&mix(seed ^ w as u64).to_le_bytes());
                    }
                    out.drain(at..at + off % 8);
                    out.truncate(at + n);
                    off = 0;
                    len -= n;
                    continue;
                }
            };
            if off >= bytes.len() {
                off -= bytes.len();
                continue;
            }
            let n = (bytes.len() - off).min(len);
            out.extend_from_slice(&bytes[off..off + n]);
            off = 0;
            len -= n;
        }
    }
}

const PATHS: &[&str] = &[
    "/api/v1/users",
    "/api/v1/orders",
    "/api/v2/items",
    "/api/v2/search",
    "/static/js/app",
    "/static/css/site",
    "/images/product",
    "/healthz",
    "/v3/catalog/products",
    "/graphql",
];
const HOSTS: &[&str] = &[
    "api.example.test",
    "shop.example.test",
    "cdn.example.test",
    "auth.internal.test",
    "inventory.svc.cluster.test",
];
const AGENTS: &[&str] = &[
    "curl/7.88.1",
    "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
    "python-requests/2.28.1",
    "Go-http-client/1.1",
    "okhttp/4.12.0",
];
const TYPES: &[&str] = &[
    "application/json",
    "text/html; charset=utf-8",
    "application/javascript",
    "text/css",
];

/// What a request looks like, as far as its response depends on it.
struct Request {
    msg: Message,
    head_only: bool,
}

fn url_safe(rng: &mut Rng, n: usize, out: &mut Vec<u8>) {
    const A: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.%";
    for _ in 0..n {
        out.push(A[(rng.u64() % A.len() as u64) as usize]);
    }
}

fn make_request(rng: &mut Rng, host: &str) -> Request {
    let r = rng.f64();
    let method = if r < 0.70 {
        "GET"
    } else if r < 0.85 {
        "POST"
    } else if r < 0.92 {
        "PUT"
    } else if r < 0.97 {
        "DELETE"
    } else {
        "HEAD"
    };
    let mut head = Vec::with_capacity(512);
    head.extend_from_slice(method.as_bytes());
    head.push(b' ');
    head.extend_from_slice(rng.pick(PATHS).as_bytes());
    head.extend_from_slice(format!("/{}", rng.range(1, 9_999_999)).as_bytes());
    if rng.chance(0.03) {
        // Long URL: the request head spans several segments.
        head.extend_from_slice(b"?q=");
        let n = rng.range(2_000, 9_000) as usize;
        url_safe(rng, n, &mut head);
    } else if rng.chance(0.4) {
        head.extend_from_slice(b"?page=");
        head.extend_from_slice(rng.range(1, 500).to_string().as_bytes());
        head.extend_from_slice(b"&sort=");
        url_safe(rng, 8, &mut head);
    }
    head.extend_from_slice(b" HTTP/1.1\r\nHost: ");
    head.extend_from_slice(host.as_bytes());
    head.extend_from_slice(b"\r\nUser-Agent: ");
    head.extend_from_slice(rng.pick(AGENTS).as_bytes());
    head.extend_from_slice(b"\r\nAccept: */*\r\nAccept-Encoding: gzip, deflate\r\n");
    if rng.chance(0.3) {
        head.extend_from_slice(b"Cookie: session=");
        let n = rng.range(32, 600) as usize;
        url_safe(rng, n, &mut head);
        head.extend_from_slice(b"\r\n");
    }
    let body = match method {
        "POST" | "PUT" => rng.log_uniform(20, 64 * 1024) as usize,
        _ => 0,
    };
    if body > 0 {
        head.extend_from_slice(b"Content-Type: application/json\r\nContent-Length: ");
        head.extend_from_slice(body.to_string().as_bytes());
        head.extend_from_slice(b"\r\n");
    }
    head.extend_from_slice(b"Connection: keep-alive\r\n\r\n");
    let mut msg = Message::default();
    msg.push_owned(head);
    if body > 0 {
        msg.push_body(rng, body, false);
    }
    Request {
        msg,
        head_only: method == "HEAD",
    }
}

fn response_body_len(rng: &mut Rng) -> usize {
    let r = rng.f64();
    (if r < 0.70 {
        rng.log_uniform(100, 4_096)
    } else if r < 0.95 {
        rng.log_uniform(4_096, 64 * 1024)
    } else {
        rng.log_uniform(64 * 1024, 200 * 1024)
    }) as usize
}

fn make_response(rng: &mut Rng, req: &Request) -> Message {
    let r = rng.f64();
    let (status, reason, has_body) = if r < 0.85 {
        (200, "OK", true)
    } else if r < 0.90 {
        (404, "Not Found", true)
    } else if r < 0.93 {
        (301, "Moved Permanently", true)
    } else if r < 0.95 {
        (500, "Internal Server Error", true)
    } else if r < 0.97 {
        (204, "No Content", false)
    } else {
        (304, "Not Modified", false)
    };
    let mut head = Vec::with_capacity(256);
    head.extend_from_slice(format!("HTTP/1.1 {status} {reason}\r\n").as_bytes());
    head.extend_from_slice(
        b"Server: nginx/1.22.1\r\nDate: Mon, 04 Aug 2025 10:00:00 GMT\r\nContent-Type: ",
    );
    // A quarter of the bodies are binary (images, archives): incompressible.
    let binary = rng.chance(0.25);
    let ctype = if binary {
        "application/octet-stream"
    } else {
        *rng.pick(TYPES)
    };
    head.extend_from_slice(ctype.as_bytes());
    head.extend_from_slice(b"\r\n");
    if status == 301 {
        head.extend_from_slice(b"Location: https://example.test/moved\r\n");
    }
    let mut msg = Message::default();
    if !has_body {
        head.extend_from_slice(b"Connection: keep-alive\r\n\r\n");
        msg.push_owned(head);
        return msg;
    }
    let len = response_body_len(rng);
    let chunked = !req.head_only && rng.chance(0.15);
    if chunked {
        head.extend_from_slice(b"Transfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\n");
        msg.push_owned(head);
        let mut left = len;
        while left > 0 {
            let n = (rng.log_uniform(16, 16 * 1024) as usize).min(left);
            msg.push_owned(format!("{n:x}\r\n").into_bytes());
            msg.push_body(rng, n, binary);
            msg.push_owned(b"\r\n".to_vec());
            left -= n;
        }
        msg.push_owned(b"0\r\n\r\n".to_vec());
    } else {
        head.extend_from_slice(
            format!("Content-Length: {len}\r\nConnection: keep-alive\r\n\r\n").as_bytes(),
        );
        msg.push_owned(head);
        if !req.head_only {
            msg.push_body(rng, len, binary);
        }
    }
    msg
}

// ---------------------------------------------------------------- connections

const SYN: u8 = 0x02;
const FIN: u8 = 0x01;
const PSH: u8 = 0x08;
const ACK: u8 = 0x10;

/// One packet to emit: direction (0 = client → server), flags, sequence numbers,
/// and which bytes of which message it carries.
#[derive(Clone, Copy)]
struct Pkt {
    from_server: bool,
    flags: u8,
    seq: u32,
    ack: u32,
    /// 0 = none, 1 = the current request, 2 = the current response.
    msg: u8,
    off: u32,
    len: u32,
}

struct Conn {
    client: SocketAddr,
    server: SocketAddr,
    mss: usize,
    /// Next sequence number of each direction (0 client, 1 server).
    next: [u32; 2],
    requests_left: u32,
    queue: VecDeque<Pkt>,
    request: Message,
    response: Message,
    closed: bool,
    client_pid: u32,
    fd: u32,
    open_ns: u64,
}

/// Knobs of segment-level faults.
const P_OUT_OF_ORDER: f64 = 0.02;
const P_RETRANSMIT: f64 = 0.02;

impl Conn {
    fn dir(&self, from_server: bool) -> usize {
        usize::from(from_server)
    }

    /// Queues the segments of `len` message bytes from one side, with the peer's
    /// delayed ACKs, and a rare swap or retransmission.
    fn queue_message(&mut self, rng: &mut Rng, from_server: bool, msg: u8, len: usize) {
        let d = self.dir(from_server);
        let base = self.next[d];
        let peer_next = self.next[1 - d];
        let mut segs: Vec<Pkt> = Vec::with_capacity(len / self.mss + 2);
        let mut off = 0usize;
        // Servers often write the head on its own before the body.
        let first = if from_server && rng.chance(0.3) {
            self.mss.min(len).min(rng.range(150, 400) as usize)
        } else {
            self.mss
        };
        while off < len {
            let n = (len - off).min(if off == 0 { first } else { self.mss });
            let last = off + n == len;
            segs.push(Pkt {
                from_server,
                flags: ACK | if last { PSH } else { 0 },
                seq: base.wrapping_add(off as u32),
                ack: peer_next,
                msg,
                off: off as u32,
                len: n as u32,
            });
            off += n;
        }
        self.next[d] = base.wrapping_add(len as u32);
        // Faults, never on the first segment of a message (its start decides where
        // a message begins for analyzers that join mid-stream).
        if segs.len() >= 3 && rng.chance(P_OUT_OF_ORDER) {
            let i = rng.range(1, segs.len() as u64 - 2) as usize;
            segs.swap(i, i + 1);
        }
        if segs.len() >= 2 && rng.chance(P_RETRANSMIT) {
            let i = rng.range(1, segs.len() as u64 - 1) as usize;
            let at = (i + 1 + rng.range(0, 2) as usize).min(segs.len());
            let dup = segs[i];
            segs.insert(at, dup);
        }
        // The receiver ACKs every second segment and the last one, cumulatively
        // (only bytes received in order).
        let (mut contiguous, mut pending) = (0usize, Vec::<(usize, usize)>::new());
        let n = segs.len();
        for (k, s) in segs.into_iter().enumerate() {
            self.queue.push_back(s);
            let start = s.seq.wrapping_sub(base) as usize;
            pending.push((start, start + s.len as usize));
            while let Some(j) = pending.iter().position(|&(a, _)| a <= contiguous) {
                contiguous = contiguous.max(pending.swap_remove(j).1);
            }
            if k % 2 == 1 || k + 1 == n {
                self.queue.push_back(Pkt {
                    from_server: !from_server,
                    flags: ACK,
                    seq: peer_next,
                    ack: base.wrapping_add(contiguous as u32),
                    msg: 0,
                    off: 0,
                    len: 0,
                });
            }
        }
    }

    /// Fills the queue with the next phase; false when the connection is done.
    fn refill(&mut self, rng: &mut Rng, host: &str, stats: &mut Stats) -> bool {
        if self.closed {
            return false;
        }
        if self.requests_left == 0 {
            // Teardown: either side closes first.
            let first_server = rng.chance(0.3);
            let (a, b) = (self.dir(first_server), self.dir(!first_server));
            self.queue.push_back(Pkt {
                from_server: first_server,
                flags: FIN | ACK,
                seq: self.next[a],
                ack: self.next[b],
                msg: 0,
                off: 0,
                len: 0,
            });
            self.next[a] = self.next[a].wrapping_add(1);
            self.queue.push_back(Pkt {
                from_server: !first_server,
                flags: FIN | ACK,
                seq: self.next[b],
                ack: self.next[a],
                msg: 0,
                off: 0,
                len: 0,
            });
            self.next[b] = self.next[b].wrapping_add(1);
            self.queue.push_back(Pkt {
                from_server: first_server,
                flags: ACK,
                seq: self.next[a],
                ack: self.next[b],
                msg: 0,
                off: 0,
                len: 0,
            });
            self.closed = true;
            return true;
        }
        self.requests_left -= 1;
        let req = make_request(rng, host);
        let resp = make_response(rng, &req);
        let (qlen, rlen) = (req.msg.len, resp.len);
        self.request = req.msg;
        self.response = resp;
        stats.requests += 1;
        stats.responses += 1;
        self.queue_message(rng, false, 1, qlen);
        self.queue_message(rng, true, 2, rlen);
        true
    }
}

#[derive(Default)]
struct Stats {
    requests: u64,
    responses: u64,
    connections: u64,
    ipv6_connections: u64,
    packets: u64,
    /// Size of the equivalent plain pcap.
    pcap_bytes: u64,
}

// ---------------------------------------------------------------- frames

fn csum_add(mut sum: u32, data: &[u8]) -> u32 {
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        sum += u32::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [b] = chunks.remainder() {
        sum += u32::from(*b) << 8;
    }
    sum
}

fn csum_fold(mut sum: u32) -> u16 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Builds an Ethernet frame for `p` into `out`.
fn build_frame(c: &Conn, p: &Pkt, ts_ns: u64, pool: &[u8], out: &mut Vec<u8>) {
    out.clear();
    let (src, dst) = if p.from_server {
        (c.server, c.client)
    } else {
        (c.client, c.server)
    };
    // Ethernet
    let (mac_c, mac_s) = ([0x02, 0, 0, 0, 0, 0x01], [0x02, 0, 0, 0, 0, 0x02]);
    if p.from_server {
        out.extend_from_slice(&mac_c);
        out.extend_from_slice(&mac_s);
    } else {
        out.extend_from_slice(&mac_s);
        out.extend_from_slice(&mac_c);
    }
    let v6 = src.is_ipv6();
    out.extend_from_slice(if v6 { &[0x86, 0xdd] } else { &[0x08, 0x00] });
    let ip_start = out.len();
    let syn = p.flags & SYN != 0;
    let opt_len = if syn { 20 } else { 12 };
    let tcp_len = 20 + opt_len + p.len as usize;
    match (src.ip(), dst.ip()) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let total = (20 + tcp_len) as u16;
            out.extend_from_slice(&[0x45, 0]);
            out.extend_from_slice(&total.to_be_bytes());
            out.extend_from_slice(&((p.seq ^ p.ack) as u16).to_be_bytes()); // id
            out.extend_from_slice(&[0x40, 0, 64, 6, 0, 0]); // DF, ttl, tcp, csum
            out.extend_from_slice(&s.octets());
            out.extend_from_slice(&d.octets());
            let cs = csum_fold(csum_add(0, &out[ip_start..ip_start + 20]));
            out[ip_start + 10..ip_start + 12].copy_from_slice(&cs.to_be_bytes());
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            out.extend_from_slice(&[0x60, 0, 0, 0]);
            out.extend_from_slice(&(tcp_len as u16).to_be_bytes());
            out.extend_from_slice(&[6, 64]);
            out.extend_from_slice(&s.octets());
            out.extend_from_slice(&d.octets());
        }
        _ => unreachable!("mixed address families"),
    }
    let tcp_start = out.len();
    out.extend_from_slice(&src.port().to_be_bytes());
    out.extend_from_slice(&dst.port().to_be_bytes());
    out.extend_from_slice(&p.seq.to_be_bytes());
    out.extend_from_slice(&(if p.flags & ACK != 0 { p.ack } else { 0 }).to_be_bytes());
    out.push((((20 + opt_len) / 4) as u8) << 4);
    out.push(p.flags);
    out.extend_from_slice(&(if syn { 64240u16 } else { 502 }).to_be_bytes()); // window
    out.extend_from_slice(&[0, 0, 0, 0]); // checksum, urgent
    let tsval = ((ts_ns / 1_000_000) as u32).wrapping_add(if p.from_server { 7_000 } else { 0 });
    if syn {
        let mss = (c.mss + 12) as u16;
        out.extend_from_slice(&[2, 4]);
        out.extend_from_slice(&mss.to_be_bytes());
        out.extend_from_slice(&[4, 2, 8, 10]);
        out.extend_from_slice(&tsval.to_be_bytes());
        out.extend_from_slice(&0u32.to_be_bytes());
        out.extend_from_slice(&[1, 3, 3, 7]);
    } else {
        out.extend_from_slice(&[1, 1, 8, 10]);
        out.extend_from_slice(&tsval.to_be_bytes());
        out.extend_from_slice(&tsval.wrapping_sub(3).to_be_bytes());
    }
    match p.msg {
        1 => c
            .request
            .copy_range(pool, p.off as usize, p.len as usize, out),
        2 => c
            .response
            .copy_range(pool, p.off as usize, p.len as usize, out),
        _ => {}
    }
    // TCP checksum over the pseudo header and the segment.
    let mut sum = match (src.ip(), dst.ip()) {
        (IpAddr::V4(s), IpAddr::V4(d)) => csum_add(csum_add(0, &s.octets()), &d.octets()),
        (IpAddr::V6(s), IpAddr::V6(d)) => csum_add(csum_add(0, &s.octets()), &d.octets()),
        _ => unreachable!(),
    };
    sum += 6 + tcp_len as u32;
    let cs = csum_fold(csum_add(sum, &out[tcp_start..]));
    out[tcp_start + 16..tcp_start + 18].copy_from_slice(&cs.to_be_bytes());
}

// ---------------------------------------------------------------- output

enum Out {
    Pcap(BufWriter<File>),
    L7rec {
        w: CaptureWriter<File>,
        records: Vec<Record>,
    },
}

impl Out {
    fn packet(&mut self, ts_ns: u64, frame: &[u8]) -> io::Result<()> {
        match self {
            Out::Pcap(w) => {
                let mut h = [0u8; 16];
                h[0..4].copy_from_slice(&((ts_ns / 1_000_000_000) as u32).to_le_bytes());
                h[4..8].copy_from_slice(&((ts_ns % 1_000_000_000) as u32).to_le_bytes());
                h[8..12].copy_from_slice(&(frame.len() as u32).to_le_bytes());
                h[12..16].copy_from_slice(&(frame.len() as u32).to_le_bytes());
                w.write_all(&h)?;
                w.write_all(frame)
            }
            Out::L7rec { w, records } => {
                if records.len() >= 64 {
                    w.write_records(records)?;
                    records.clear();
                }
                w.write_packet(&PacketOut {
                    interface_id: 0,
                    ts_ns,
                    data: frame,
                    orig_len: frame.len() as u32,
                    ..Default::default()
                })
            }
        }
    }

    fn record(&mut self, r: impl FnOnce() -> Record) {
        if let Out::L7rec { records, .. } = self {
            records.push(r());
        }
    }

    /// Finishes the file; returns the bytes of pcap/pcapng written before compression.
    fn finish(self, pcap_bytes: u64) -> io::Result<u64> {
        match self {
            Out::Pcap(mut w) => {
                w.flush()?;
                Ok(pcap_bytes)
            }
            Out::L7rec { mut w, records } => {
                w.write_records(&records)?;
                let n = w.uncompressed_bytes();
                w.finish()?;
                Ok(n)
            }
        }
    }
}

// ---------------------------------------------------------------- main

struct Args {
    out: String,
    size_mb: u64,
    l7rec: bool,
    seed: u64,
    concurrency: usize,
}

fn usage() -> ! {
    eprintln!(
        "usage: gen_capture --out FILE --size-mb N --format l7rec|pcap [--seed S] [--concurrency C]"
    );
    exit(2)
}

fn parse_args() -> Args {
    let mut a = Args {
        out: String::new(),
        size_mb: 0,
        l7rec: true,
        seed: 1,
        concurrency: 0,
    };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let mut v = || it.next().unwrap_or_else(|| usage());
        match k.as_str() {
            "--out" | "-o" => a.out = v(),
            "--size-mb" => a.size_mb = v().parse().unwrap_or_else(|_| usage()),
            "--seed" => a.seed = v().parse().unwrap_or_else(|_| usage()),
            "--concurrency" => a.concurrency = v().parse().unwrap_or_else(|_| usage()),
            "--format" => {
                a.l7rec = match v().as_str() {
                    "l7rec" => true,
                    "pcap" => false,
                    _ => usage(),
                }
            }
            _ => usage(),
        }
    }
    if a.out.is_empty() || a.size_mb == 0 {
        usage();
    }
    if a.concurrency == 0 {
        // Thousands of open connections on large files; fewer on small ones so that
        // the connections open at the end do not dominate the file.
        a.concurrency = (a.size_mb as usize * 10).clamp(50, 2000);
    }
    a
}

const SERVER_PID: u32 = 812;
const CLIENT_PIDS: [u32; 4] = [4101, 4102, 4103, 4104];
const CLIENT_COMMS: [&str; 4] = ["curl", "python3", "java", "node"];

fn main() -> io::Result<()> {
    let args = parse_args();
    let started = Instant::now();
    let mut rng = Rng::new(args.seed);
    let pool: Vec<u8> = {
        // Text-like body bytes (JSON/HTML compress about as well as this).
        const WORDS: &[&str] = &[
            "{\"id\":",
            "\"name\":\"",
            "\"price\":",
            "\"items\":[",
            "<div class=\"",
            "</div>",
            "true,",
            "null,",
            "\"tags\":[\"",
            "lorem ",
            "ipsum ",
            "dolor ",
            "sit ",
            "amet ",
        ];
        let mut b = Vec::with_capacity(BODY_POOL + 64);
        while b.len() < BODY_POOL {
            if rng.chance(0.3) {
                b.extend_from_slice(rng.range(0, 1_000_000).to_string().as_bytes());
            } else {
                b.extend_from_slice(rng.pick(WORDS).as_bytes());
            }
        }
        b.truncate(BODY_POOL);
        b
    };
    let file = File::create(&args.out)?;
    let mut out = if args.l7rec {
        let opts = WriterOptions {
            compression: Compression::Zstd { level: 3 },
            hardware: Some("synthetic (gen_capture)".into()),
            ..Default::default()
        };
        let mut w = CaptureWriter::new(file, &opts)?;
        w.add_interface(&Interface {
            name: "eth0".into(),
            description: Some("synthetic traffic".into()),
            linktype: linktype::ETHERNET,
            snaplen: 262_144,
        })?;
        let mut records = vec![Record::Process(ProcessInfo {
            pid: SERVER_PID,
            ppid: 1,
            start_time_ns: 0,
            comm: "nginx".into(),
            exe: "/usr/sbin/nginx".into(),
            cmdline: vec!["nginx: worker process".into()],
        })];
        for (pid, comm) in CLIENT_PIDS.iter().zip(CLIENT_COMMS) {
            records.push(Record::Process(ProcessInfo {
                pid: *pid,
                ppid: 1,
                start_time_ns: 0,
                comm: comm.into(),
                exe: format!("/usr/bin/{comm}"),
                cmdline: vec![comm.into()],
            }));
        }
        Out::L7rec { w, records }
    } else {
        let mut w = BufWriter::with_capacity(1 << 20, file);
        let mut h = Vec::with_capacity(24);
        h.extend_from_slice(&0xa1b2_3c4du32.to_le_bytes()); // ns resolution
        h.extend_from_slice(&2u16.to_le_bytes());
        h.extend_from_slice(&4u16.to_le_bytes());
        h.extend_from_slice(&0u32.to_le_bytes());
        h.extend_from_slice(&0u32.to_le_bytes());
        h.extend_from_slice(&262_144u32.to_le_bytes());
        h.extend_from_slice(&u32::from(linktype::ETHERNET).to_le_bytes());
        w.write_all(&h)?;
        Out::Pcap(w)
    };

    let target = args.size_mb << 20;
    let mut stats = Stats {
        pcap_bytes: 24,
        ..Default::default()
    };
    let mut now_ns: u64 = 1_754_301_600_000_000_000;
    let mut next_port: u32 = 0;
    let mut active: Vec<Conn> = Vec::with_capacity(args.concurrency);
    let mut frame = Vec::with_capacity(2048);

    let new_conn = |rng: &mut Rng, stats: &mut Stats, next_port: &mut u32, now_ns: u64| {
        stats.connections += 1;
        let k = *next_port;
        *next_port += 1;
        let v6 = rng.chance(0.1);
        if v6 {
            stats.ipv6_connections += 1;
        }
        // Unique 4-tuples: the client address changes every 28 000 ports.
        let port = 32768 + (k % 28_000) as u16;
        let host = k / 28_000;
        let server_port = if rng.chance(0.5) { 80 } else { 8080 };
        let srv = rng.range(1, 4) as u8;
        let (client, server) = if v6 {
            let c = Ipv6Addr::new(
                0xfd00,
                0,
                0,
                1,
                0,
                0,
                (host >> 16) as u16,
                (host as u16).wrapping_add(10),
            );
            let s = Ipv6Addr::new(0xfd00, 0, 0, 2, 0, 0, 0, u16::from(srv));
            (
                SocketAddr::new(c.into(), port),
                SocketAddr::new(s.into(), server_port),
            )
        } else {
            let c = Ipv4Addr::new(
                10,
                1 + (host >> 16) as u8,
                (host >> 8) as u8,
                (host as u8).wrapping_add(10),
            );
            let s = Ipv4Addr::new(10, 0, 0, srv);
            (
                SocketAddr::new(c.into(), port),
                SocketAddr::new(s.into(), server_port),
            )
        };
        let isn = [rng.u64() as u32, rng.u64() as u32];
        let mut c = Conn {
            client,
            server,
            mss: if v6 { 1428 } else { 1448 },
            next: [isn[0].wrapping_add(1), isn[1].wrapping_add(1)],
            requests_left: if rng.chance(0.2) {
                1
            } else {
                rng.range(2, 12) as u32
            },
            queue: VecDeque::new(),
            request: Message::default(),
            response: Message::default(),
            closed: false,
            client_pid: CLIENT_PIDS[(k % 4) as usize],
            fd: 3 + k % 1000,
            open_ns: now_ns,
        };
        let syn = |from_server, flags, seq, ack| Pkt {
            from_server,
            flags,
            seq,
            ack,
            msg: 0,
            off: 0,
            len: 0,
        };
        c.queue.push_back(syn(false, SYN, isn[0], 0));
        c.queue.push_back(syn(true, SYN | ACK, isn[1], c.next[0]));
        c.queue.push_back(syn(false, ACK, c.next[0], c.next[1]));
        c
    };
    let conn_records = |c: &Conn, close_ns: u64| {
        [
            Record::Connection(ConnectionInfo {
                pid: c.client_pid,
                fd: c.fd,
                netns: 4026531840,
                role: Role::Client,
                local: c.client,
                remote: c.server,
                open_ns: c.open_ns,
                close_ns,
            }),
            Record::Connection(ConnectionInfo {
                pid: SERVER_PID,
                fd: 10 + c.fd,
                netns: 4026531840,
                role: Role::Server,
                local: c.server,
                remote: c.client,
                open_ns: c.open_ns,
                close_ns,
            }),
        ]
    };

    for _ in 0..args.concurrency {
        let c = new_conn(&mut rng, &mut stats, &mut next_port, now_ns);
        for r in conn_records(&c, 0) {
            out.record(|| r);
        }
        active.push(c);
    }
    let mut draining = false;
    while !active.is_empty() {
        if !draining && stats.pcap_bytes >= target {
            // Stop here: every connection ends after its current exchange.
            draining = true;
            for c in &mut active {
                c.requests_left = 0;
            }
        }
        let i = (rng.u64() % active.len() as u64) as usize;
        let burst = rng.range(1, 6);
        let host = HOSTS[i % HOSTS.len()];
        let mut done = false;
        for _ in 0..burst {
            let c = &mut active[i];
            if c.queue.is_empty() && !c.refill(&mut rng, host, &mut stats) {
                done = true;
                break;
            }
            let p = c.queue.pop_front().expect("refilled");
            now_ns += rng.range(200, 3_000);
            build_frame(c, &p, now_ns, &pool, &mut frame);
            out.packet(now_ns, &frame)?;
            stats.packets += 1;
            stats.pcap_bytes += 16 + frame.len() as u64;
        }
        if done {
            let c = active.swap_remove(i);
            for r in conn_records(&c, now_ns) {
                out.record(|| r);
            }
            if !draining {
                let c = new_conn(&mut rng, &mut stats, &mut next_port, now_ns);
                for r in conn_records(&c, 0) {
                    out.record(|| r);
                }
                active.push(c);
            }
        }
    }
    let written = out.finish(stats.pcap_bytes)?;
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "gen_capture: requests={} responses={} connections={} ipv6_connections={} packets={} uncompressed_bytes={} pcap_equivalent_bytes={} seed={} seconds={:.1}",
        stats.requests,
        stats.responses,
        stats.connections,
        stats.ipv6_connections,
        stats.packets,
        written,
        stats.pcap_bytes,
        args.seed,
        secs
    );
    Ok(())
}
