//! TCP connections of one shard: reassembly of both directions fed into HTTP parsing.

use foldhash::HashMap;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use l7rec_http::{self as http, Side};
use l7rec_reassembly::{self as tcp, Reassembler};

use crate::transaction::{Flag, Transaction};

/// A segment handed to a shard: addresses and TCP header bits (its payload travels
/// beside it).
#[derive(Debug, Clone, Copy)]
pub struct SegmentMeta {
    /// Packet number in the file (1-based, like tshark's frame numbers).
    pub packet_no: u64,
    /// Capture timestamp.
    pub ts_ns: u64,
    /// Sender.
    pub src: Endpoint,
    /// Receiver.
    pub dst: Endpoint,
    /// TCP sequence number.
    pub seq: u32,
    /// SYN flag.
    pub syn: bool,
    /// ACK flag.
    pub ack: bool,
    /// FIN flag.
    pub fin: bool,
    /// RST flag.
    pub rst: bool,
    /// Payload bytes the snap length cut off.
    pub truncated: u32,
    /// Captured on l7rec's TLS plaintext interface ("l7rec-tls"): a connection of its
    /// own, distinct from the ciphertext with the same 4-tuple.
    pub tls: bool,
}

impl SegmentMeta {
    /// Whether this segment, carrying `payload`, can only acknowledge: no payload
    /// (none captured, none cut off by the snap length), no SYN, FIN or RST.
    /// Acknowledgement numbers are not read, so nothing l7rec reports comes from
    /// such a segment: [`FlowTable::segment`] ignores it, and the reader drops it
    /// before it reaches a shard (a third of the benchmark capture's packets).
    pub fn only_acknowledges(&self, payload: &[u8]) -> bool {
        payload.is_empty() && self.truncated == 0 && !(self.syn || self.fin || self.rst)
    }
}

/// One end of a connection as plain integers: the address (an IPv4 one in the low 32
/// bits), the port, the family. Segments carry these rather than `SocketAddr`s: an
/// enum copied per packet between stack slots, in wider loads than it was stored
/// with, is what the benchmark VM's slow stretches make dear (see
/// `l7rec_capture::CaptureReader::advance`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Endpoint {
    /// The address in 32-bit words, most significant first (an IPv4 one in the
    /// first): words rather than a `u128`, whose 16-byte alignment would make an
    /// endpoint 32 bytes instead of 20, a segment 96 instead of 72 and a connection
    /// key two cache lines instead of one.
    pub ip: [u32; 4],
    /// The port.
    pub port: u16,
    /// IPv6 (else IPv4).
    pub v6: bool,
}

impl Endpoint {
    /// The endpoint of `s` (an IPv6 flow label and scope id, never decoded from a
    /// packet, are not kept).
    pub fn of(s: SocketAddr) -> Self {
        match s {
            SocketAddr::V4(a) => Endpoint {
                ip: [a.ip().to_bits(), 0, 0, 0],
                port: a.port(),
                v6: false,
            },
            SocketAddr::V6(a) => Endpoint {
                ip: {
                    let b = a.ip().to_bits();
                    [
                        (b >> 96) as u32,
                        (b >> 64) as u32,
                        (b >> 32) as u32,
                        b as u32,
                    ]
                },
                port: a.port(),
                v6: true,
            },
        }
    }

    /// The address as one number (an IPv4 one in the high 32 bits).
    pub fn bits(self) -> u128 {
        let [a, b, c, d] = self.ip.map(u128::from);
        (a << 96) | (b << 64) | (c << 32) | d
    }

    /// As a socket address.
    pub fn addr(self) -> SocketAddr {
        if self.v6 {
            SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::from_bits(self.bits()),
                self.port,
                0,
                0,
            ))
        } else {
            SocketAddr::V4(SocketAddrV4::new(
                Ipv4Addr::from_bits(self.ip[0]),
                self.port,
            ))
        }
    }
}

/// Name of the capture interface on which l7rec writes decrypted TLS as TCP/IP.
pub const TLS_INTERFACE: &str = "l7rec-tls";

/// Direction-independent connection key: both endpoints (lower first) as plain
/// integers, the address family and the TLS bit. A `SocketAddr` pair hashed field by
/// field and compared variant by variant cost the flow table's thread 3 % of a run.
#[derive(Clone, Copy, PartialEq, Eq)]
struct FlowKey {
    lo: ([u32; 4], u16),
    hi: ([u32; 4], u16),
    v6: bool,
    tls: bool,
}

/// Three words for the hasher instead of a dozen fields: with a derived `Hash` over
/// the address words a one-thread analysis of the benchmark pcap took 5–10 % more CPU.
impl std::hash::Hash for FlowKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        let halves = |ip: [u32; 4]| {
            let [a, b, c, d] = ip.map(u64::from);
            (a << 32 | b, c << 32 | d)
        };
        let (lo_high, lo_low) = halves(self.lo.0);
        let (hi_high, hi_low) = halves(self.hi.0);
        state.write_u64(lo_high ^ hi_low.rotate_left(17));
        state.write_u64(lo_low ^ hi_high.rotate_left(31));
        let (lo_port, hi_port) = (u64::from(self.lo.1), u64::from(self.hi.1));
        state.write_u64(
            lo_port << 32 | hi_port << 16 | u64::from(self.v6) << 1 | u64::from(self.tls),
        );
    }
}

fn key_of(a: Endpoint, b: Endpoint, tls: bool) -> FlowKey {
    // A segment's two addresses are of one family.
    let v6 = a.v6 || b.v6;
    let (a, b) = ((a.ip, a.port), (b.ip, b.port));
    let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
    FlowKey { lo, hi, v6, tls }
}

/// Per-shard counters, summed over shards for the report.
#[derive(Debug, Clone, Default)]
pub struct FlowTotals {
    /// TCP connections seen.
    pub flows: u64,
    /// Connections that carried HTTP: a request or status line parsed in either
    /// direction (see [`FlowTable`] for the rule). The others (TLS ciphertext, SSH,
    /// databases, connections without data) report no transactions.
    pub http_flows: u64,
    /// TCP segments processed (not those that only acknowledge:
    /// [`SegmentMeta::only_acknowledges`]).
    pub segments: u64,
    /// Holes in streams (bytes never captured).
    pub gaps: u64,
    /// Bytes missing in those holes.
    pub gap_bytes: u64,
    /// Retransmitted segments.
    pub retransmissions: u64,
    /// Overlapping segments whose bytes disagreed.
    pub inconsistent_overlaps: u64,
    /// Times a direction's out-of-order buffer cap was exceeded.
    pub buffer_overflows: u64,
    /// Payload bytes the capture's snap length cut off.
    pub snaplen_cut_bytes: u64,
}

impl FlowTotals {
    /// Adds another shard's counters.
    pub fn add(&mut self, o: &FlowTotals) {
        self.flows += o.flows;
        self.http_flows += o.http_flows;
        self.segments += o.segments;
        self.gaps += o.gaps;
        self.gap_bytes += o.gap_bytes;
        self.retransmissions += o.retransmissions;
        self.inconsistent_overlaps += o.inconsistent_overlaps;
        self.buffer_overflows += o.buffer_overflows;
        self.snaplen_cut_bytes += o.snaplen_cut_bytes;
    }
}

/// The HTTP view of a connection: who is the client, and the parser.
///
/// Whether the connection is HTTP at all is decided by the parser's evidence
/// ([`http::Connection::saw_start_line`]): until a request or status line parses in
/// either direction, its bytes go through the parser as usual (which holds at most
/// its head and deferral caps per direction) and what it reports is only kept if
/// that evidence comes before the connection ends. See [`FlowTable`].
struct HttpView {
    /// Endpoint 0 is the sender of the first segment seen.
    ends: [SocketAddr; 2],
    /// Which endpoint is the HTTP client, once known.
    client: Option<usize>,
    /// Client according to the handshake, if it was captured.
    syn_client: Option<usize>,
    parser: http::Connection,
    closed: [bool; 2],
    /// Decided not HTTP, nothing to report, bytes no longer parsed: the connection
    /// starts with a TLS record (ciphertext, e.g. captured with --all-tcp; its
    /// plaintext, if l7rec captured it, is a separate flow on the TLS interface), or
    /// it carried `sniff_limit` bytes without a start line.
    not_http: bool,
    /// The parser has seen a start line: the connection is HTTP for good.
    confirmed: bool,
    /// Data bytes delivered (both directions) before `confirmed`.
    unconfirmed_bytes: u64,
    /// The start of the conversation may be missing (no handshake captured, or a
    /// gap before the first start line): a start line can legitimately come only
    /// after the rest of a body of any size, so no byte limit applies.
    lenient: bool,
    /// With a clean start, how many bytes may go by without a start line before the
    /// connection is declared not HTTP.
    sniff_limit: u64,
}

/// A TLS record header (content type 20..=23, version 3.x): never the start of HTTP/1.
fn looks_like_tls_record(b: &[u8]) -> bool {
    b.len() >= 3 && (20..=23).contains(&b[0]) && b[1] == 3 && b[2] <= 4
}

impl HttpView {
    fn side(&self, dir: usize) -> Option<Side> {
        self.client
            .map(|c| if c == dir { Side::Client } else { Side::Server })
    }

    /// Routes one reassembled event of direction `dir` to the parser, deciding which
    /// end is the client on the first data if the handshake did not say.
    fn feed(&mut self, dir: usize, ev: tcp::Event<'_>) {
        if self.not_http {
            // Still follow the closes, so the connection ends (and its 4-tuple can be
            // reused) like any other.
            if let tcp::Event::Fin { .. } | tcp::Event::Rst { .. } = ev {
                self.closed[dir] = true;
            }
            return;
        }
        if self.client.is_none() {
            match ev {
                tcp::Event::Data { bytes, .. } if looks_like_tls_record(bytes) => {
                    self.not_http = true;
                    return;
                }
                tcp::Event::Data { bytes, .. } => {
                    self.client = Some(if http::looks_like_request(bytes) {
                        dir
                    } else if http::looks_like_response(bytes) {
                        1 - dir
                    } else if let Some(c) = self.syn_client {
                        c
                    } else {
                        // No handshake, no recognisable start: the lower port serves.
                        usize::from(self.ends[0].port() < self.ends[1].port())
                    });
                }
                tcp::Event::Gap { .. } if self.syn_client.is_some() => {
                    self.client = self.syn_client;
                }
                tcp::Event::Gap { .. } => return,
                tcp::Event::Fin { .. } | tcp::Event::Rst { .. } => {
                    self.closed[dir] = true;
                    return;
                }
            }
        }
        let Some(side) = self.side(dir) else {
            return;
        };
        match ev {
            tcp::Event::Data { bytes, ts_ns, .. } => {
                self.parser.data(side, bytes, ts_ns);
                if !self.confirmed {
                    self.unconfirmed_bytes += bytes.len() as u64;
                }
            }
            tcp::Event::Gap { len, .. } => {
                self.lenient |= !self.confirmed;
                self.parser.gap(side, len);
            }
            tcp::Event::Fin { ts_ns } | tcp::Event::Rst { ts_ns } => {
                self.closed[dir] = true;
                self.parser.close(side, ts_ns);
            }
        }
        if !self.confirmed {
            self.confirmed = self.parser.saw_start_line();
            if !self.confirmed && !self.lenient && self.unconfirmed_bytes > self.sniff_limit {
                // Give up: free the parser's buffers and stop scanning (a long SSH or
                // database session would otherwise be scanned to its end, with a
                // chance of a false match deep inside it).
                self.not_http = true;
                self.parser = http::Connection::default();
            }
        }
    }
}

struct Flow {
    id: u64,
    /// Sender of the first segment: direction 0.
    first_src: Endpoint,
    dirs: [Reassembler; 2],
    http: HttpView,
    /// Bytes of payload cut by the snap length, per direction.
    truncated: [u64; 2],
    /// Decrypted TLS (see [`SegmentMeta::tls`]).
    tls: bool,
}

impl Flow {
    fn new(id: u64, src: Endpoint, dst: Endpoint, syn: bool, cfg: &Config) -> Self {
        Flow {
            id,
            first_src: src,
            dirs: [Reassembler::new(cfg.tcp), Reassembler::new(cfg.tcp)],
            http: HttpView {
                ends: [src.addr(), dst.addr()],
                client: None,
                syn_client: None,
                // Without a handshake the first bytes may be the middle of a message.
                parser: if syn {
                    http::Connection::with_config(cfg.http)
                } else {
                    http::Connection::midstream_with_config(cfg.http)
                },
                closed: [false; 2],
                not_http: false,
                confirmed: false,
                unconfirmed_bytes: 0,
                lenient: !syn,
                sniff_limit: sniff_limit(&cfg.http),
            },
            truncated: [0; 2],
            tls: false,
        }
    }

    fn finished(&self) -> bool {
        self.http.closed[0] && self.http.closed[1]
    }
}

/// Bytes a connection whose start was captured may carry without a request or
/// status line before it is declared not HTTP: 4 MiB with the default caps.
///
/// With the handshake captured and no gap, an HTTP/1.x connection starts with the
/// client's request line, found within the head cap (or the head is reported
/// oversized, and the server's status line answering it is the evidence); server
/// bytes that come first are held back by the parser up to the deferral cap before it
/// looks at them. So a start line is seen within about the sum of the two caps; twice
/// that leaves room for segment sizes and for client bytes that follow a rejected
/// first message before the server's answer shows up.
fn sniff_limit(cfg: &http::Config) -> u64 {
    let caps = cfg.max_head_bytes.saturating_add(cfg.max_deferred_bytes) as u64;
    caps.saturating_mul(2)
}

/// Limits and options of every connection of a table.
#[derive(Debug, Clone, Copy, Default)]
pub struct Config {
    /// Reassembly limits.
    pub tcp: tcp::Config,
    /// HTTP parsing limits and whether headers are kept.
    pub http: http::Config,
}

/// The connections of one shard.
///
/// A connection counts as HTTP once a request line or a status line has parsed in
/// either direction, even if that message is otherwise malformed or cut by a gap:
/// other TCP protocols (SSH, Redis, SMTP, PostgreSQL, random binary) never show one,
/// while damaged HTTP (a capture starting mid-connection, lost segments, bad
/// framing) does. A connection that ends without one reports nothing and is counted
/// among [`FlowTotals::flows`] only, not [`FlowTotals::http_flows`]. Memory stays
/// bounded meanwhile: the parser examines the bytes as they come and holds no more
/// than for any HTTP connection; a connection whose start was captured (handshake, no
/// gap) stops being parsed after twice the parser's head and deferral caps together
/// (4 MiB) without a start line. One that starts with a TLS record is not parsed at
/// all.
pub struct FlowTable {
    flows: HashMap<FlowKey, Flow>,
    cfg: Config,
    done: Vec<Transaction>,
    totals: FlowTotals,
}

impl FlowTable {
    /// An empty table.
    pub fn new(cfg: Config) -> Self {
        FlowTable {
            flows: HashMap::default(),
            cfg,
            done: Vec::new(),
            totals: FlowTotals::default(),
        }
    }

    /// Transactions of connections that ended since the last call.
    pub fn take_done(&mut self) -> Vec<Transaction> {
        std::mem::take(&mut self.done)
    }

    /// Processes one segment whose payload is `payload`. One that only acknowledges
    /// ([`SegmentMeta::only_acknowledges`]) changes nothing: a direction's stream
    /// starts at its first segment with data, SYN, FIN or RST.
    pub fn segment(&mut self, m: &SegmentMeta, payload: &[u8]) {
        if m.only_acknowledges(payload) {
            return;
        }
        self.totals.segments += 1;
        let key = key_of(m.src, m.dst, m.tls);
        // A new SYN on a finished connection's 4-tuple is a new connection.
        let reuse = m.syn
            && !m.ack
            && self
                .flows
                .get(&key)
                .is_some_and(|f| f.finished() || f.dirs[0].is_closed() || f.dirs[1].is_closed());
        if reuse {
            if let Some(old) = self.flows.remove(&key) {
                self.close_flow(old);
            }
        }
        let flow = match self.flows.get_mut(&key) {
            Some(f) => f,
            // Trailing ACKs, FINs and RSTs of a connection already finished (or never
            // seen) carry nothing: they must not open a new one.
            None if !m.syn && payload.is_empty() => return,
            None => {
                self.totals.flows += 1;
                let mut f = Flow::new(m.packet_no, m.src, m.dst, m.syn, &self.cfg);
                f.tls = m.tls;
                self.flows.entry(key).or_insert(f)
            }
        };
        let dir = usize::from(flow.first_src != m.src);
        if m.syn && flow.http.syn_client.is_none() {
            flow.http.syn_client = Some(if m.ack { 1 - dir } else { dir });
        }
        if m.truncated > 0 {
            flow.truncated[dir] += u64::from(m.truncated);
        }
        let seg = tcp::Segment {
            seq: m.seq,
            syn: m.syn,
            fin: m.fin,
            rst: m.rst,
            payload,
            ts_ns: m.ts_ns,
        };
        let http = &mut flow.http;
        flow.dirs[dir].segment(seg, &mut |ev| http.feed(dir, ev));
        if m.truncated > 0 {
            let cut_at = m
                .seq
                .wrapping_add(u32::from(m.syn))
                .wrapping_add(payload.len() as u32);
            flow.dirs[dir].lost(cut_at, m.truncated, m.ts_ns, &mut |ev| http.feed(dir, ev));
        }
        if m.rst {
            http.closed = [true; 2];
        }
        if flow.finished() {
            if let Some(f) = self.flows.remove(&key) {
                self.close_flow(f);
            }
        }
    }

    /// Ends every connection (end of input) and returns transactions and counters.
    pub fn finish(mut self) -> (Vec<Transaction>, FlowTotals) {
        let flows: Vec<Flow> = self.flows.drain().map(|(_, f)| f).collect();
        for f in flows {
            self.close_flow(f);
        }
        (self.done, self.totals)
    }

    fn close_flow(&mut self, mut f: Flow) {
        for dir in 0..2 {
            let http = &mut f.http;
            f.dirs[dir].finish(&mut |ev| http.feed(dir, ev));
        }
        f.http.parser.finish();
        self.totals.snaplen_cut_bytes += f.truncated[0] + f.truncated[1];
        let mut stats_flags = Vec::new();
        for d in &f.dirs {
            let s = d.stats();
            self.totals.gaps += s.gaps;
            self.totals.gap_bytes += s.gap_bytes;
            self.totals.retransmissions += s.retransmitted_segments;
            self.totals.inconsistent_overlaps += s.inconsistent_overlaps;
            self.totals.buffer_overflows += s.buffer_overflows;
            if s.retransmitted_segments > 0 && !stats_flags.contains(&Flag::Retransmission) {
                stats_flags.push(Flag::Retransmission);
            }
            if s.midstream && !stats_flags.contains(&Flag::Midstream) {
                stats_flags.push(Flag::Midstream);
            }
        }
        let client = f.http.client.unwrap_or(0);
        let tls = f.tls;
        let ends = f.http.ends;
        // Checked after `finish`: it parses what was still held back (a status line
        // deferred until a request showed up may be the only evidence).
        let txs = if f.http.parser.saw_start_line() {
            f.http.parser.take_transactions()
        } else {
            // Not HTTP: the parser's `malformed` placeholders for whatever it was fed
            // are not transactions.
            Vec::new()
        };
        if !txs.is_empty() {
            self.totals.http_flows += 1;
        }
        for tx in txs {
            let mut t = Transaction::from_http(tx, f.id, ends[client], ends[1 - client]);
            if tls {
                t.add_flag(Flag::Tls);
            }
            for fl in &stats_flags {
                t.add_flag(*fl);
            }
            self.done.push(t);
        }
    }
}

#[cfg(test)]
mod tls_tests {
    use super::*;

    fn seg(no: u64, src: &str, dst: &str, seq: u32, syn: bool, tls: bool) -> SegmentMeta {
        SegmentMeta {
            packet_no: no,
            ts_ns: no * 1000,
            src: Endpoint::of(src.parse().unwrap()),
            dst: Endpoint::of(dst.parse().unwrap()),
            seq,
            syn,
            ack: !syn || src.ends_with(":8443"),
            fin: false,
            rst: false,
            truncated: 0,
            tls,
        }
    }

    /// Ciphertext and its decrypted copy share the 4-tuple but are two flows; the
    /// ciphertext yields nothing, the plaintext a transaction flagged `tls`.
    #[test]
    fn tls_plaintext_is_its_own_flow_and_ciphertext_is_skipped() {
        let (c, s) = ("127.0.0.1:40000", "127.0.0.1:8443");
        let mut t = FlowTable::new(Config::default());
        let req = b"GET /x HTTP/1.1\r\nHost: h\r\n\r\n";
        let resp = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
        let hello = [0x16u8, 0x03, 0x01, 0x00, 0x05, 1, 2, 3, 4, 5];
        for tls in [false, true] {
            t.segment(&seg(1, c, s, 100, true, tls), &[]);
            t.segment(&seg(2, s, c, 500, true, tls), &[]);
        }
        t.segment(&seg(3, c, s, 101, false, false), &hello);
        t.segment(&seg(4, c, s, 101, false, true), req);
        t.segment(&seg(5, s, c, 501, false, true), resp);
        t.segment(
            &seg(6, s, c, 501, false, false),
            &[0x17, 0x03, 0x03, 0, 1, 9],
        );
        let (txs, totals) = t.finish();
        assert_eq!(totals.flows, 2);
        assert_eq!(txs.len(), 1, "{txs:?}");
        assert_eq!(txs[0].uri.as_deref(), Some("/x"));
        assert_eq!(txs[0].status, Some(200));
        assert!(txs[0].flags.contains(&Flag::Tls), "{:?}", txs[0].flags);
    }
}

#[cfg(test)]
mod non_http_tests {
    use super::*;

    /// One connection between `c` and `s`, fed segment by segment with consistent
    /// sequence numbers.
    pub(super) struct Sim {
        no: u64,
        c: SocketAddr,
        s: SocketAddr,
        /// Next sequence number of the client and of the server.
        seq: [u32; 2],
    }

    impl Sim {
        pub(super) fn new(c: &str, s: &str) -> Sim {
            Sim {
                no: 0,
                c: c.parse().unwrap(),
                s: s.parse().unwrap(),
                seq: [1000, 5000],
            }
        }

        pub(super) fn send(
            &mut self,
            t: &mut FlowTable,
            from_client: bool,
            flags: &str,
            payload: &[u8],
        ) {
            self.no += 1;
            let i = usize::from(!from_client);
            let (src, dst) = if from_client {
                (self.c, self.s)
            } else {
                (self.s, self.c)
            };
            let syn = flags.contains('S');
            let m = SegmentMeta {
                packet_no: self.no,
                ts_ns: self.no * 1000,
                src: Endpoint::of(src),
                dst: Endpoint::of(dst),
                seq: self.seq[i],
                syn,
                ack: !(syn && from_client),
                fin: flags.contains('F'),
                rst: false,
                truncated: 0,
                tls: false,
            };
            t.segment(&m, payload);
            self.seq[i] = self.seq[i]
                .wrapping_add(u32::from(syn) + u32::from(m.fin))
                .wrapping_add(payload.len() as u32);
        }

        /// A bare ACK, numbered and timed like the segment after it (so that it
        /// changes no other segment's number or time).
        pub(super) fn ack(&mut self, t: &mut FlowTable, from_client: bool) {
            let no = self.no;
            self.send(t, from_client, "", &[]);
            self.no = no;
        }

        pub(super) fn handshake(&mut self, t: &mut FlowTable) {
            self.send(t, true, "S", &[]);
            self.send(t, false, "S", &[]);
        }

        pub(super) fn client(&mut self, t: &mut FlowTable, b: &[u8]) {
            self.send(t, true, "", b);
        }

        pub(super) fn server(&mut self, t: &mut FlowTable, b: &[u8]) {
            self.send(t, false, "", b);
        }

        pub(super) fn close(&mut self, t: &mut FlowTable) {
            self.send(t, true, "F", &[]);
            self.send(t, false, "F", &[]);
        }
    }

    fn binary(n: usize) -> Vec<u8> {
        (0..n).map(|i| (i * 151 + 7) as u8).collect()
    }

    /// SSH, Redis, SMTP, random binary and PostgreSQL sessions report nothing and
    /// count as connections without HTTP; the HTTP one beside them is intact.
    #[test]
    fn other_protocols_report_nothing_and_are_not_http() {
        let mut t = FlowTable::new(Config::default());
        type Conv = Vec<(bool, Vec<u8>)>;
        let convs: Vec<Conv> = vec![
            vec![
                (false, b"SSH-2.0-OpenSSH_9.2p1\r\n".to_vec()),
                (true, b"SSH-2.0-OpenSSH_9.2p1\r\n".to_vec()),
                (true, binary(200)),
                (false, binary(300)),
            ],
            vec![
                (true, b"*1\r\n$4\r\nPING\r\n".to_vec()),
                (false, b"+PONG\r\n".to_vec()),
            ],
            vec![
                (false, b"220 mail.example ESMTP\r\n".to_vec()),
                (true, b"EHLO x\r\n".to_vec()),
                (false, b"250 ok\r\n".to_vec()),
                (true, b"QUIT\r\n".to_vec()),
                (false, b"221 bye\r\n".to_vec()),
            ],
            vec![(true, binary(100)), (false, binary(100))],
            vec![
                (true, b"\x00\x00\x00\x08\x04\xd2\x16\x2f".to_vec()),
                (false, b"N".to_vec()),
            ],
        ];
        for (i, conv) in convs.iter().enumerate() {
            let mut sim = Sim::new(&format!("127.0.0.1:{}", 40000 + i), "127.0.0.1:7000");
            sim.handshake(&mut t);
            for (from_client, b) in conv {
                sim.send(&mut t, *from_client, "", b);
            }
            sim.close(&mut t);
        }
        let mut http = Sim::new("127.0.0.1:41000", "127.0.0.1:8080");
        http.handshake(&mut t);
        http.client(&mut t, b"GET /ok HTTP/1.1\r\nHost: h\r\n\r\n");
        http.server(&mut t, b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
        http.close(&mut t);
        // A connection left open at the end of the capture is judged the same way.
        let mut open = Sim::new("127.0.0.1:42000", "127.0.0.1:6379");
        open.handshake(&mut t);
        open.client(&mut t, b"*1\r\n$4\r\nPING\r\n");
        let (txs, totals) = t.finish();
        assert_eq!((totals.flows, totals.http_flows), (7, 1), "{txs:?}");
        assert_eq!(txs.len(), 1, "{txs:?}");
        assert_eq!(txs[0].uri.as_deref(), Some("/ok"));
        assert_eq!(txs[0].status, Some(200));
        assert!(txs[0].flags.is_empty(), "{:?}", txs[0].flags);
    }

    /// HTTP that is damaged still is HTTP: every one of these is reported.
    #[test]
    fn damaged_http_is_still_reported() {
        let mut t = FlowTable::new(Config::default());
        // Capture started mid-connection (no handshake), in the middle of a body.
        let mut mid = Sim::new("127.0.0.1:40001", "127.0.0.1:8080");
        mid.server(&mut t, b"end of a body\r\n");
        mid.client(&mut t, b"GET /mid HTTP/1.1\r\n\r\n");
        mid.server(&mut t, b"HTTP/1.1 204 No Content\r\n\r\n");
        // A bad Content-Length.
        let mut bad = Sim::new("127.0.0.1:40002", "127.0.0.1:8080");
        bad.handshake(&mut t);
        bad.client(&mut t, b"POST /bad HTTP/1.1\r\nContent-Length: x\r\n\r\n");
        bad.server(
            &mut t,
            b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n",
        );
        bad.close(&mut t);
        // Garbage answered by an HTTP server: the status line is the evidence.
        let mut garbage = Sim::new("127.0.0.1:40003", "127.0.0.1:8080");
        garbage.handshake(&mut t);
        garbage.client(&mut t, b"\x01\x02garbage\r\n\r\n");
        garbage.server(
            &mut t,
            b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n",
        );
        garbage.close(&mut t);
        let (mut txs, totals) = t.finish();
        assert_eq!((totals.flows, totals.http_flows), (3, 3), "{txs:?}");
        txs.sort_by_key(|t| t.client.port());
        let got: Vec<_> = txs
            .iter()
            .map(|t| (t.client.port(), t.uri.clone(), t.status))
            .collect();
        assert_eq!(
            got,
            vec![
                (40001, Some("/mid".into()), Some(204)),
                (40002, Some("/bad".into()), Some(400)),
                (40003, None, Some(400)),
            ]
        );
        assert!(
            txs[1].flags.contains(&Flag::Malformed),
            "{:?}",
            txs[1].flags
        );
        assert!(
            txs[2].flags.contains(&Flag::Malformed),
            "{:?}",
            txs[2].flags
        );
    }

    fn small_caps() -> Config {
        Config {
            http: http::Config {
                max_head_bytes: 64,
                max_deferred_bytes: 64,
                ..http::Config::default()
            },
            ..Config::default()
        }
    }

    /// With its start captured, a connection that goes on past the limit without a
    /// start line is no longer parsed: a request line deep inside it is not HTTP.
    #[test]
    fn clean_start_stops_parsing_past_the_limit() {
        let mut t = FlowTable::new(small_caps());
        let mut sim = Sim::new("127.0.0.1:40000", "127.0.0.1:7000");
        sim.handshake(&mut t);
        for _ in 0..8 {
            sim.client(&mut t, &binary(40));
        }
        sim.client(&mut t, b"\nGET /deep HTTP/1.1\r\n\r\n");
        sim.server(&mut t, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
        sim.close(&mut t);
        // It ended on its FINs like any connection, though no longer parsed.
        assert!(t.flows.is_empty());
        let (txs, totals) = t.finish();
        assert_eq!((totals.flows, totals.http_flows), (1, 0), "{txs:?}");
        assert!(txs.is_empty(), "{txs:?}");
    }

    /// Without its start (no handshake) the same bytes may be the end of a large body:
    /// no limit applies, and the request after them is reported.
    #[test]
    fn without_its_start_a_connection_is_parsed_to_the_end() {
        let mut t = FlowTable::new(small_caps());
        let mut sim = Sim::new("127.0.0.1:40000", "127.0.0.1:7000");
        for _ in 0..8 {
            sim.client(&mut t, &binary(40));
        }
        sim.client(&mut t, b"\nGET /deep HTTP/1.1\r\n\r\n");
        sim.server(&mut t, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
        let (txs, totals) = t.finish();
        assert_eq!((totals.flows, totals.http_flows), (1, 1), "{txs:?}");
        assert_eq!(txs.len(), 1, "{txs:?}");
        assert_eq!(
            (txs[0].uri.as_deref(), txs[0].status),
            (Some("/deep"), Some(200))
        );
    }
}

#[cfg(test)]
mod ack_tests {
    use super::non_http_tests::Sim;
    use super::*;

    /// Feeds two connections, one from its handshake, one captured midstream whose
    /// server speaks first with a bare ACK, optionally with a bare ACK after every
    /// segment (and after the FINs); the transactions and counters.
    fn conversation(acks: bool) -> (Vec<Transaction>, FlowTotals) {
        let mut t = FlowTable::new(Config::default());
        let mut full = Sim::new("127.0.0.1:40000", "127.0.0.1:8080");
        let mut mid = Sim::new("[::1]:40001", "[::1]:8080");
        let ack = |sim: &mut Sim, t: &mut FlowTable, from_client: bool| {
            if acks {
                sim.ack(t, from_client);
            }
        };
        full.handshake(&mut t);
        ack(&mut full, &mut t, true);
        full.client(&mut t, b"GET /a HTTP/1.1\r\nHost: h\r\n\r\n");
        ack(&mut full, &mut t, false);
        full.server(&mut t, b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nbo");
        ack(&mut full, &mut t, true);
        full.server(&mut t, b"dy");
        ack(&mut mid, &mut t, false);
        mid.client(&mut t, b"GET /b HTTP/1.1\r\nHost: h\r\n\r\n");
        ack(&mut mid, &mut t, false);
        mid.server(
            &mut t,
            b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n",
        );
        full.close(&mut t);
        ack(&mut full, &mut t, true);
        mid.close(&mut t);
        ack(&mut mid, &mut t, true);
        t.finish()
    }

    /// Bare ACKs anywhere, even as the first segment of a direction, change no
    /// transaction and no counter but the segments processed.
    #[test]
    fn bare_acks_change_nothing() {
        let (without, t0) = conversation(false);
        let (with, t1) = conversation(true);
        assert_eq!(with, without);
        let summary: Vec<_> = with
            .iter()
            .map(|t| (t.status, t.resp_body_bytes, t.flags.clone()))
            .collect();
        assert_eq!(
            summary,
            [
                (Some(200), Some(4), vec![]),
                (Some(404), Some(0), vec![Flag::Midstream])
            ]
        );
        assert_eq!(
            (t1.flows, t1.http_flows, t1.gaps, t1.retransmissions),
            (t0.flows, t0.http_flows, t0.gaps, t0.retransmissions)
        );
        // Handshake, request, two response segments, two FINs; request, response,
        // two FINs.
        assert_eq!((t0.segments, t1.segments), (11, 11));
    }

    /// A segment whose whole payload the snap length cut is not a bare ACK: its bytes
    /// are reported missing.
    #[test]
    fn a_payload_cut_whole_is_a_gap_not_an_ack() {
        let mut t = FlowTable::new(Config::default());
        let c = Endpoint::of("127.0.0.1:40000".parse().unwrap());
        let s = Endpoint::of("127.0.0.1:8080".parse().unwrap());
        let seg = |no: u64, from_client: bool, seq: u32, syn: bool, truncated: u32| SegmentMeta {
            packet_no: no,
            ts_ns: no * 1000,
            src: if from_client { c } else { s },
            dst: if from_client { s } else { c },
            seq,
            syn,
            ack: !(syn && from_client),
            fin: false,
            rst: false,
            truncated,
            tls: false,
        };
        let req = b"GET / HTTP/1.1\r\nHost: h\r\n\r\n";
        let head = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n";
        t.segment(&seg(1, true, 0, true, 0), &[]);
        t.segment(&seg(2, false, 0, true, 0), &[]);
        t.segment(&seg(3, true, 1, false, 0), req);
        t.segment(&seg(4, false, 1, false, 0), head);
        let cut = seg(5, false, 1 + head.len() as u32, false, 100);
        assert!(!cut.only_acknowledges(&[]));
        t.segment(&cut, &[]);
        let (txs, totals) = t.finish();
        assert_eq!(totals.snaplen_cut_bytes, 100);
        assert_eq!(txs.len(), 1, "{txs:?}");
        assert!(txs[0].flags.contains(&Flag::Gap), "{:?}", txs[0].flags);
        assert_eq!(txs[0].resp_body_bytes, Some(100), "{txs:?}");
    }
}

#[cfg(test)]
mod endpoint_tests {
    use super::*;

    #[test]
    fn endpoints_round_trip_and_key_both_directions_alike() {
        for (a, b) in [
            ("10.0.0.1:40000", "10.0.0.2:80"),
            ("255.255.255.255:65535", "0.0.0.0:0"),
            ("[::1]:8080", "[2001:db8::7]:443"),
            ("[::ffff:10.0.0.1]:1", "[::ffff:10.0.0.2]:2"),
        ] {
            let (a, b): (SocketAddr, SocketAddr) = (a.parse().unwrap(), b.parse().unwrap());
            let (ea, eb) = (Endpoint::of(a), Endpoint::of(b));
            assert_eq!((ea.addr(), eb.addr()), (a, b));
            assert_eq!(ea.v6, a.is_ipv6());
            let bits = match a.ip() {
                std::net::IpAddr::V4(ip) => u128::from(ip.to_bits()) << 96,
                std::net::IpAddr::V6(ip) => ip.to_bits(),
            };
            assert_eq!(ea.bits(), bits, "{a}");
            assert!(key_of(ea, eb, false) == key_of(eb, ea, false), "{a} {b}");
            assert!(
                key_of(ea, eb, false) != key_of(ea, eb, true),
                "the TLS bit counts"
            );
        }
        // An IPv4 address and the IPv4-mapped IPv6 one are different connections.
        let v4 = Endpoint::of("10.0.0.1:1".parse().unwrap());
        let mapped = Endpoint::of("[::ffff:10.0.0.1]:1".parse().unwrap());
        let peer = Endpoint::of("10.0.0.2:2".parse().unwrap());
        let peer6 = Endpoint::of("[::ffff:10.0.0.2]:2".parse().unwrap());
        assert!(key_of(v4, peer, false) != key_of(mapped, peer6, false));
    }
}
