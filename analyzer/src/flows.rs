//! TCP connections of one shard: reassembly of both directions fed into HTTP parsing.

use foldhash::HashMap;
use std::net::SocketAddr;

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
    pub src: SocketAddr,
    /// Receiver.
    pub dst: SocketAddr,
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

/// Name of the capture interface on which l7rec writes decrypted TLS as TCP/IP.
pub const TLS_INTERFACE: &str = "l7rec-tls";

/// Direction-independent connection key (lower endpoint first), and the TLS bit.
type FlowKey = (SocketAddr, SocketAddr, bool);

fn key_of(a: SocketAddr, b: SocketAddr, tls: bool) -> FlowKey {
    if a <= b {
        (a, b, tls)
    } else {
        (b, a, tls)
    }
}

/// Per-shard counters, summed over shards for the report.
#[derive(Debug, Clone, Default)]
pub struct FlowTotals {
    /// TCP connections seen.
    pub flows: u64,
    /// Connections that carried HTTP.
    pub http_flows: u64,
    /// TCP segments processed.
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
struct HttpView {
    /// Endpoint 0 is the sender of the first segment seen.
    ends: [SocketAddr; 2],
    /// Which endpoint is the HTTP client, once known.
    client: Option<usize>,
    /// Client according to the handshake, if it was captured.
    syn_client: Option<usize>,
    parser: http::Connection,
    closed: [bool; 2],
    /// The connection starts with a TLS record (ciphertext, e.g. captured with
    /// --all-tcp): not HTTP, nothing to report. Its plaintext, if l7rec captured it,
    /// is a separate flow on the TLS interface.
    ciphertext: bool,
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
        if self.ciphertext {
            return;
        }
        if self.client.is_none() {
            match ev {
                tcp::Event::Data { bytes, .. } if looks_like_tls_record(bytes) => {
                    self.ciphertext = true;
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
            tcp::Event::Data { bytes, ts_ns, .. } => self.parser.data(side, bytes, ts_ns),
            tcp::Event::Gap { len, .. } => self.parser.gap(side, len),
            tcp::Event::Fin { ts_ns } | tcp::Event::Rst { ts_ns } => {
                self.closed[dir] = true;
                self.parser.close(side, ts_ns);
            }
        }
    }
}

struct Flow {
    id: u64,
    dirs: [Reassembler; 2],
    http: HttpView,
    /// Bytes of payload cut by the snap length, per direction.
    truncated: [u64; 2],
    /// Decrypted TLS (see [`SegmentMeta::tls`]).
    tls: bool,
}

impl Flow {
    fn new(id: u64, src: SocketAddr, dst: SocketAddr, syn: bool, cfg: &Config) -> Self {
        Flow {
            id,
            dirs: [Reassembler::new(cfg.tcp), Reassembler::new(cfg.tcp)],
            http: HttpView {
                ends: [src, dst],
                client: None,
                syn_client: None,
                // Without a handshake the first bytes may be the middle of a message.
                parser: if syn {
                    http::Connection::with_config(cfg.http)
                } else {
                    http::Connection::midstream_with_config(cfg.http)
                },
                closed: [false; 2],
                ciphertext: false,
            },
            truncated: [0; 2],
            tls: false,
        }
    }

    fn finished(&self) -> bool {
        self.http.closed[0] && self.http.closed[1]
    }
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

    /// Processes one segment whose payload is `payload`.
    pub fn segment(&mut self, m: &SegmentMeta, payload: &[u8]) {
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
        let dir = usize::from(flow.http.ends[0] != m.src);
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
        let txs = f.http.parser.take_transactions();
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
            src: src.parse().unwrap(),
            dst: dst.parse().unwrap(),
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
