//! Packet path end to end, on the real kernel: the sockfilter BPF program on an
//! AF_PACKET TPACKET_V3 ring, inside a network namespace each test creates, with real
//! servers and clients (python3 http.server, curl, python sockets).
//!
//! How the capture sees the namespace: a dedicated capture thread `setns`es into the
//! test's namespace before loading the filter and opening the socket (a packet socket
//! belongs to the netns of the thread that creates it); servers and clients run under
//! `ip netns exec`. Needs root, iproute2, python3, curl and ethtool: a missing tool
//! fails the test with the reason.
//!
//! The recorder's modules are compiled in directly (`l7rec` is a binary crate).

#[path = "../recorder/afpacket.rs"]
mod afpacket;
#[path = "../recorder/bpf.rs"]
mod bpf;
#[path = "common/netns.rs"]
mod netns;

use std::collections::HashSet;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use afpacket::{PacketSocket, RingConfig, RingStats};
use bpf::{FilterConfig, FilterCounters, LinkKind, SocketFilter};
use netns::{require_tools, Netns};

const HTTP_PORT: u16 = 8080;
const ECHO_PORT: u16 = 9000;
const PACKET_HOST: u8 = 0;
const PACKET_OUTGOING: u8 = 4;
const TCP_FIN: u8 = 0x01;
const TCP_SYN: u8 = 0x02;
const TCP_ACK: u8 = 0x10;
const SECS: fn(u64) -> Duration = Duration::from_secs;

/// One captured frame, copied out of the ring.
struct Frame {
    ifindex: u32,
    pkt_type: u8,
    orig_len: u32,
    data: Vec<u8>,
}

struct Captured {
    frames: Vec<Frame>,
    stats: RingStats,
    counters: FilterCounters,
    /// The socket asked the kernel not to hand it sent packets.
    ignored_outgoing: bool,
}

/// A capture running on its own thread inside the test's namespace.
struct Capture {
    stop: Arc<AtomicBool>,
    handle: JoinHandle<anyhow::Result<Captured>>,
}

/// Where the capture socket binds.
#[derive(Clone, Copy)]
enum Bind {
    Lo,
    All,
}

impl Capture {
    /// Loads the filter and opens the socket in `ns`; returns once packets flow.
    fn start(ns: &Netns, ports: &[u16], all_tcp: bool, bind: Bind) -> Self {
        let path: PathBuf = ns.path();
        let ports = ports.to_vec();
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = Arc::clone(&stop);
        let (ready_tx, ready_rx) = mpsc::channel::<Result<(), String>>();
        let handle = thread::spawn(move || -> anyhow::Result<Captured> {
            netns::enter_netns(&path);
            let setup = || -> anyhow::Result<(SocketFilter, PacketSocket)> {
                let links = afpacket::list_interfaces()?
                    .iter()
                    .map(|i| (i.index, LinkKind::from_arphrd(i.arphrd)))
                    .collect();
                let filter = SocketFilter::load(&FilterConfig {
                    ports,
                    all_tcp,
                    links,
                    ..FilterConfig::default()
                })?;
                let ifindex = match bind {
                    Bind::Lo => Some(afpacket::interface_by_name("lo")?.index),
                    Bind::All => None,
                };
                let ring = RingConfig {
                    block_size: 1 << 20,
                    block_count: 8,
                    block_timeout_ms: 10,
                    snaplen: 262_144,
                };
                let sock = PacketSocket::open(ifindex, Some(filter.prog_fd()), &ring)?;
                if matches!(bind, Bind::Lo) {
                    // As `l7rec record` does on loopback; Bind::All leaves the sent
                    // copies to the filter.
                    sock.ignore_outgoing()?;
                }
                Ok((filter, sock))
            };
            let (filter, mut sock) = match setup() {
                Ok(v) => {
                    let _ = ready_tx.send(Ok(()));
                    v
                }
                Err(e) => {
                    let _ = ready_tx.send(Err(format!("{e:#}")));
                    return Err(e);
                }
            };
            let mut frames = Vec::new();
            let mut push = |p: &afpacket::Packet<'_>| {
                frames.push(Frame {
                    ifindex: p.ifindex,
                    pkt_type: p.pkt_type,
                    orig_len: p.orig_len,
                    data: p.data.to_vec(),
                })
            };
            // Bounded: a test never records longer than this.
            let deadline = Instant::now() + SECS(120);
            while !stop2.load(Ordering::Acquire) && Instant::now() < deadline {
                sock.poll_packets(Duration::from_millis(50), &mut push)?;
            }
            // Drain: partly filled blocks retire after block_timeout_ms.
            let drain_until = Instant::now() + Duration::from_millis(300);
            while Instant::now() < drain_until {
                sock.poll_packets(Duration::from_millis(20), &mut push)?;
            }
            let stats = sock.stats()?;
            let counters = filter.counters()?;
            Ok(Captured {
                frames,
                stats,
                counters,
                ignored_outgoing: matches!(bind, Bind::Lo),
            })
        });
        match ready_rx.recv_timeout(SECS(20)) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => panic!("starting the capture failed: {e}"),
            Err(e) => panic!("capture thread did not start: {e}"),
        }
        Self { stop, handle }
    }

    /// Lets in-flight packets (FINs) arrive, stops and returns what was captured.
    fn finish(self) -> Captured {
        thread::sleep(Duration::from_millis(300));
        self.stop.store(true, Ordering::Release);
        match self.handle.join() {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => panic!("capture failed: {e:#}"),
            Err(p) => std::panic::resume_unwind(p),
        }
    }
}

/// A TCP segment parsed from a captured frame (Ethernet framing, as on lo).
#[derive(Debug)]
struct Seg {
    src: IpAddr,
    dst: IpAddr,
    sport: u16,
    dport: u16,
    seq: u32,
    flags: u8,
    payload: Vec<u8>,
}

fn parse_seg(frame: &[u8]) -> Option<Seg> {
    let ethertype = u16::from_be_bytes([*frame.get(12)?, *frame.get(13)?]);
    parse_ip(ethertype, frame.get(14..)?)
}

/// A frame from a raw-IP device (tun): no link header.
fn parse_raw_ip(frame: &[u8]) -> Option<Seg> {
    match frame.first()? >> 4 {
        4 => parse_ip(0x0800, frame),
        6 => parse_ip(0x86dd, frame),
        _ => None,
    }
}

fn parse_ip(ethertype: u16, ip: &[u8]) -> Option<Seg> {
    let (src, dst, l4, end) = match ethertype {
        0x0800 => {
            let ihl = usize::from(ip.first()? & 0x0f) * 4;
            if *ip.get(9)? != 6 {
                return None;
            }
            let tot = usize::from(u16::from_be_bytes([*ip.get(2)?, *ip.get(3)?]));
            let s: [u8; 4] = ip.get(12..16)?.try_into().ok()?;
            let d: [u8; 4] = ip.get(16..20)?.try_into().ok()?;
            (IpAddr::from(s), IpAddr::from(d), ihl, tot)
        }
        0x86dd => {
            let plen = usize::from(u16::from_be_bytes([*ip.get(4)?, *ip.get(5)?]));
            let s: [u8; 16] = ip.get(8..24)?.try_into().ok()?;
            let d: [u8; 16] = ip.get(24..40)?.try_into().ok()?;
            // Hop-by-hop, routing and destination-options headers (the tun test).
            let (mut next, mut l4) = (*ip.get(6)?, 40);
            for _ in 0..4 {
                if !matches!(next, 0 | 43 | 60) {
                    break;
                }
                next = *ip.get(l4)?;
                l4 += (usize::from(*ip.get(l4 + 1)?) + 1) * 8;
            }
            if next != 6 {
                return None;
            }
            (IpAddr::from(s), IpAddr::from(d), l4, 40 + plen)
        }
        _ => return None,
    };
    let tcp = ip.get(l4..end)?;
    let doff = usize::from(tcp.get(12)? >> 4) * 4;
    Some(Seg {
        src,
        dst,
        sport: u16::from_be_bytes([*tcp.first()?, *tcp.get(1)?]),
        dport: u16::from_be_bytes([*tcp.get(2)?, *tcp.get(3)?]),
        seq: u32::from_be_bytes(tcp.get(4..8)?.try_into().ok()?),
        flags: *tcp.get(13)?,
        payload: tcp.get(doff..)?.to_vec(),
    })
}

/// One direction of a captured connection, checked for completeness.
struct Stream {
    bytes: Vec<u8>,
    data_segments: usize,
}

/// Checks that the segments of one direction cover the byte stream without gaps or
/// overlaps, from the SYN (if `from_syn`) or the first captured byte, up to a FIN.
fn check_direction(segs: &[&Seg], what: &str, from_syn: bool) -> Stream {
    let syns: Vec<&&Seg> = segs.iter().filter(|s| s.flags & TCP_SYN != 0).collect();
    let start = if from_syn {
        assert_eq!(
            syns.len(),
            1,
            "{what}: expected exactly one SYN, got {}",
            syns.len()
        );
        syns[0].seq.wrapping_add(1)
    } else {
        assert!(syns.is_empty(), "{what}: unexpected SYN without --port");
        segs.iter()
            .filter(|s| !s.payload.is_empty())
            .map(|s| s.seq)
            .min_by_key(|&q| q.wrapping_sub(segs[0].seq) as i32)
            .unwrap_or_else(|| panic!("{what}: no payload captured"))
    };
    let mut data: Vec<&&Seg> = segs.iter().filter(|s| !s.payload.is_empty()).collect();
    data.sort_by_key(|s| s.seq.wrapping_sub(start));
    let mut bytes = Vec::new();
    let mut next = start;
    for s in &data {
        assert_eq!(
            s.seq,
            next,
            "{what}: gap or overlap at relative seq {} (segment at {})",
            next.wrapping_sub(start),
            s.seq.wrapping_sub(start)
        );
        bytes.extend_from_slice(&s.payload);
        next = next.wrapping_add(s.payload.len() as u32);
    }
    let fins: Vec<&&Seg> = segs.iter().filter(|s| s.flags & TCP_FIN != 0).collect();
    assert_eq!(
        fins.len(),
        1,
        "{what}: expected exactly one FIN, got {}",
        fins.len()
    );
    let fin = fins[0];
    assert_eq!(
        fin.seq.wrapping_add(fin.payload.len() as u32),
        next,
        "{what}: FIN does not follow the last byte"
    );
    Stream {
        bytes,
        data_segments: data.len(),
    }
}

/// Common checks of a capture that should hold exactly one HTTP connection to
/// `server_port`: nothing else, no lo duplicates, both directions complete, no drops.
/// Returns (client->server, server->client) streams.
/// The interface a test expects its packets on.
#[derive(Clone, Copy)]
struct Iface {
    index: u32,
    loopback: bool,
}

const LO: Iface = Iface {
    index: 1,
    loopback: true,
};

fn check_http_capture(
    cap: &Captured,
    server_port: u16,
    from_syn: bool,
    iface: Iface,
) -> (Stream, Stream) {
    assert!(!cap.frames.is_empty(), "nothing captured");
    assert_eq!(cap.stats.drops, 0, "ring drops: {:?}", cap.stats);
    assert_eq!(cap.stats.freeze_q_cnt, 0, "ring froze: {:?}", cap.stats);
    assert_eq!(
        cap.stats.malformed, 0,
        "malformed ring frames: {:?}",
        cap.stats
    );
    assert_eq!(cap.stats.delivered, cap.frames.len() as u64);
    assert_eq!(
        cap.stats.packets,
        cap.frames.len() as u64,
        "{:?}",
        cap.stats
    );
    assert_eq!(
        cap.counters.kept,
        cap.frames.len() as u64,
        "{:?}",
        cap.counters
    );
    assert_eq!(cap.counters.flow_insert_failed, 0);
    assert_eq!(cap.counters.truncated, 0);
    if iface.loopback && !cap.ignored_outgoing {
        assert!(
            cap.counters.lo_outgoing_dropped >= cap.counters.kept,
            "every kept lo packet had an outgoing twin: {:?}",
            cap.counters
        );
    } else {
        assert_eq!(cap.counters.lo_outgoing_dropped, 0, "{:?}", cap.counters);
    }

    let mut unique = HashSet::new();
    let mut segs = Vec::new();
    for f in &cap.frames {
        assert_eq!(f.ifindex, iface.index, "packet from another interface");
        if iface.loopback {
            assert_ne!(f.pkt_type, PACKET_OUTGOING, "outgoing lo copy not dropped");
        }
        assert_eq!(
            f.orig_len as usize,
            f.data.len(),
            "packet cut below snaplen"
        );
        // Distinct packets differ (IP id, TCP timestamps, seq/ack); lo twins do not.
        assert!(unique.insert(f.data.clone()), "packet captured twice");
        let s = parse_seg(&f.data).expect("captured frame is TCP over IPv4/IPv6");
        // Handshakes of every flow reach user space (the recorder writes them only
        // for flows that turn out to be HTTP); other flows send nothing else.
        let other_flow = !(s.sport == server_port || s.dport == server_port);
        if other_flow && s.flags & TCP_SYN != 0 {
            continue;
        }
        assert!(
            !other_flow,
            "captured a packet of another flow: {}:{} -> {}:{}",
            s.src, s.sport, s.dst, s.dport
        );
        if !iface.loopback {
            // Elsewhere the outgoing packets are real (the capture runs on the server).
            let expect = if s.sport == server_port {
                PACKET_OUTGOING
            } else {
                PACKET_HOST
            };
            assert_eq!(f.pkt_type, expect, "pkt_type of {}->{}", s.sport, s.dport);
        }
        segs.push(s);
    }
    let client_port = segs
        .iter()
        .find(|s| s.dport == server_port)
        .map(|s| s.sport)
        .expect("a client->server packet");
    assert!(
        segs.iter()
            .all(|s| s.sport == client_port || s.dport == client_port),
        "more than one connection captured"
    );
    let c2s: Vec<&Seg> = segs.iter().filter(|s| s.dport == server_port).collect();
    let s2c: Vec<&Seg> = segs.iter().filter(|s| s.sport == server_port).collect();
    if from_syn {
        assert!(
            c2s.iter().any(|s| s.flags & (TCP_SYN | TCP_ACK) == TCP_SYN),
            "client SYN missing"
        );
        assert!(
            s2c.iter()
                .any(|s| s.flags & (TCP_SYN | TCP_ACK) == TCP_SYN | TCP_ACK),
            "SYN-ACK missing"
        );
    }
    // The handshake is kept whenever it happened while recording.
    let from_syn = from_syn || c2s.iter().any(|s| s.flags & TCP_SYN != 0);
    let up = check_direction(&c2s, "client->server", from_syn);
    let down = check_direction(&s2c, "server->client", from_syn);
    assert_eq!(cap.counters.flows_classified, 1, "{:?}", cap.counters);
    (up, down)
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Serves a directory with `hello.txt` over HTTP in `ns`, bound to `host`.
fn start_http_server(ns: &Netns, dir: &tempfile::TempDir, host: &str, protocol: &str) {
    std::fs::write(dir.path().join("hello.txt"), "hello from the l7rec test\n")
        .expect("write hello.txt");
    let port = HTTP_PORT.to_string();
    let dir = dir.path().to_string_lossy().into_owned();
    ns.spawn(&[
        "python3",
        "-m",
        "http.server",
        &port,
        "--bind",
        host,
        "-d",
        &dir,
        "-p",
        protocol,
    ]);
    ns.wait_tcp(host, HTTP_PORT, SECS(15));
}

const ECHO_SERVER: &str = r#"
import socket, sys
host, port = sys.argv[1], int(sys.argv[2])
s = socket.socket(socket.AF_INET6 if ':' in host else socket.AF_INET)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((host, port))
s.listen()
while True:
    c, _ = s.accept()
    while True:
        d = c.recv(65536)
        if not d:
            break
        c.sendall(d)
    c.close()
"#;

/// Payloads that must not make a flow HTTP: no method token + space at the start.
const ECHO_CLIENT: &str = r#"
import socket, sys
c = socket.create_connection((sys.argv[1], int(sys.argv[2])), 5)
for m in [b'hello, not http\n', b'GETTING started\n', b'HTTP/2 is not HTTP/1.x\n',
          b'get / lowercase\n', b'xGET / HTTP/1.1\r\n']:
    c.sendall(m)
    got = b''
    while len(got) < len(m):
        got += c.recv(65536)
    assert got == m, (got, m)
c.close()
"#;

fn start_echo_server(ns: &Netns, host: &str) {
    let port = ECHO_PORT.to_string();
    ns.spawn(&["python3", "-c", ECHO_SERVER, host, &port]);
    ns.wait_tcp(host, ECHO_PORT, SECS(15));
}

fn run_echo_client(ns: &Netns, host: &str) {
    let port = ECHO_PORT.to_string();
    ns.run(&["python3", "-c", ECHO_CLIENT, host, &port], SECS(20));
}

fn curl(ns: &Netns, url: &str) -> Vec<u8> {
    ns.run(&["curl", "-sS", "-g", "--max-time", "10", url], SECS(20))
}

/// IPv4 with `--port 8080`: the HTTP connection is captured whole (SYN .. FIN, both
/// directions, each packet once), the non-HTTP connection on another port not at all.
#[test]
fn ipv4_http_flow_captured_whole_and_once() {
    require_tools(&["ip", "python3", "curl"]);
    let ns = Netns::new();
    let dir = tempfile::tempdir().expect("tempdir");
    start_http_server(&ns, &dir, "127.0.0.1", "HTTP/1.0");
    start_echo_server(&ns, "127.0.0.1");

    let cap = Capture::start(&ns, &[HTTP_PORT], false, Bind::Lo);
    let body = curl(&ns, "http://127.0.0.1:8080/hello.txt");
    run_echo_client(&ns, "127.0.0.1");
    let cap = cap.finish();

    assert_eq!(body, b"hello from the l7rec test\n");
    let (up, down) = check_http_capture(&cap, HTTP_PORT, true, LO);
    assert!(contains(
        &up.bytes,
        b"GET /hello.txt HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n"
    ));
    assert!(down.bytes.starts_with(b"HTTP/1.0 200 OK\r\n"));
    assert!(down.bytes.ends_with(b"\r\n\r\nhello from the l7rec test\n"));
}

/// Without `--port`: classification by payload alone. The HTTP flow is kept from its
/// first request to the FINs (no handshake: it is not HTTP yet), while a non-HTTP flow
/// whose payloads look almost like HTTP is dropped.
#[test]
fn classification_by_payload_keeps_http_drops_lookalikes() {
    require_tools(&["ip", "python3", "curl"]);
    let ns = Netns::new();
    let dir = tempfile::tempdir().expect("tempdir");
    start_http_server(&ns, &dir, "127.0.0.1", "HTTP/1.0");
    start_echo_server(&ns, "127.0.0.1");

    let cap = Capture::start(&ns, &[], false, Bind::All);
    run_echo_client(&ns, "127.0.0.1");
    let body = curl(&ns, "http://127.0.0.1:8080/hello.txt");
    run_echo_client(&ns, "127.0.0.1");
    let cap = cap.finish();

    assert_eq!(body, b"hello from the l7rec test\n");
    let (up, down) = check_http_capture(&cap, HTTP_PORT, false, LO);
    assert!(up.bytes.starts_with(b"GET /hello.txt HTTP/1.1\r\n"));
    assert!(down.bytes.starts_with(b"HTTP/1.0 200 OK\r\n"));
}

/// IPv6 on ::1, socket bound to all interfaces.
#[test]
fn ipv6_loopback_http_flow() {
    require_tools(&["ip", "python3", "curl"]);
    let ns = Netns::new();
    let dir = tempfile::tempdir().expect("tempdir");
    start_http_server(&ns, &dir, "::1", "HTTP/1.0");
    start_echo_server(&ns, "::1");

    let cap = Capture::start(&ns, &[HTTP_PORT], false, Bind::All);
    let body = curl(&ns, "http://[::1]:8080/hello.txt");
    run_echo_client(&ns, "::1");
    let cap = cap.finish();

    assert_eq!(body, b"hello from the l7rec test\n");
    let (up, down) = check_http_capture(&cap, HTTP_PORT, true, LO);
    assert!(contains(
        &up.bytes,
        b"GET /hello.txt HTTP/1.1\r\nHost: [::1]:8080\r\n"
    ));
    assert!(down.bytes.starts_with(b"HTTP/1.0 200 OK\r\n"));
    let first = parse_seg(&cap.frames[0].data).expect("tcp");
    assert!(first.src.is_ipv6() && first.src.is_loopback());
}

/// An ~8 KB URL with lo's MTU at 1280 and offloads off: the request line spans many
/// packets, and every byte of it is captured, in order.
#[test]
fn long_url_spanning_many_packets_is_complete() {
    require_tools(&["ip", "python3", "curl", "ethtool"]);
    let ns = Netns::new();
    ns.ip(&["link", "set", "lo", "mtu", "1280"]);
    ns.run(
        &[
            "ethtool", "-K", "lo", "tso", "off", "gso", "off", "gro", "off",
        ],
        SECS(10),
    );
    let dir = tempfile::tempdir().expect("tempdir");
    start_http_server(&ns, &dir, "127.0.0.1", "HTTP/1.0");

    let path: String = (0..8000u32)
        .map(|i| char::from(b"abcdefghijklmnopqrstuvwxyz0123456789-_.~"[(i * 7 % 40) as usize]))
        .collect();
    let url = format!("http://127.0.0.1:8080/long/{path}?q=end");
    let cap = Capture::start(&ns, &[], false, Bind::Lo);
    curl(&ns, &url);
    let cap = cap.finish();

    let (up, down) = check_http_capture(&cap, HTTP_PORT, false, LO);
    let request_line = format!("GET /long/{path}?q=end HTTP/1.1\r\n");
    assert!(
        up.bytes.starts_with(request_line.as_bytes()),
        "request line not captured byte-exact"
    );
    assert!(
        up.data_segments >= 7,
        "request should span many packets, got {}",
        up.data_segments
    );
    assert!(cap.frames.iter().all(|f| f.orig_len <= 1280 + 14));
    assert!(down.bytes.starts_with(b"HTTP/1.0 404 "));
}

const KEEPALIVE_CLIENT: &str = r#"
import http.client, os, sys, time
d = sys.argv[1]
c = http.client.HTTPConnection('127.0.0.1', 8080, timeout=10)
c.request('GET', '/hello.txt')
r = c.getresponse(); r.read()
open(os.path.join(d, 'first-done'), 'w').close()
for _ in range(400):
    if os.path.exists(os.path.join(d, 'go')):
        break
    time.sleep(0.05)
else:
    sys.exit('no go signal')
c.request('GET', '/hello.txt?second')
r = c.getresponse(); body = r.read()
assert r.status == 200, r.status
c.close()
"#;

/// A keep-alive connection opened before the capture starts is picked up at its next
/// request.
#[test]
fn connection_open_before_recording_is_picked_up() {
    require_tools(&["ip", "python3"]);
    let ns = Netns::new();
    let dir = tempfile::tempdir().expect("tempdir");
    start_http_server(&ns, &dir, "127.0.0.1", "HTTP/1.1");
    let sync = tempfile::tempdir().expect("tempdir");
    let sync_dir = sync.path().to_string_lossy().into_owned();
    let client = ns.spawn(&["python3", "-c", KEEPALIVE_CLIENT, &sync_dir]);

    let first_done = sync.path().join("first-done");
    let deadline = Instant::now() + SECS(15);
    while !first_done.exists() {
        assert!(
            Instant::now() < deadline,
            "client {client} made no first request"
        );
        thread::sleep(Duration::from_millis(20));
    }
    let cap = Capture::start(&ns, &[], false, Bind::Lo);
    std::fs::write(sync.path().join("go"), b"").expect("write go");
    // The client exits after its second request; FINs follow.
    let deadline = Instant::now() + SECS(15);
    while !proc_gone(client) {
        assert!(Instant::now() < deadline, "client {client} did not finish");
        thread::sleep(Duration::from_millis(20));
    }
    let cap = cap.finish();

    let (up, down) = check_http_capture(&cap, HTTP_PORT, false, LO);
    assert!(up.bytes.starts_with(b"GET /hello.txt?second HTTP/1.1\r\n"));
    assert!(!contains(&up.bytes, b"GET /hello.txt HTTP/1.1"));
    assert!(down.bytes.starts_with(b"HTTP/1.1 200 OK\r\n"));
}

/// True once `pid` has exited (zombie or reaped): the helper reaps it on drop.
fn proc_gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // State is the field after the ")" of the command name.
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
        Err(_) => true,
    }
}

/// `--all-tcp --port 9000`: a non-HTTP flow is kept whole.
#[test]
fn all_tcp_keeps_non_http_flows() {
    require_tools(&["ip", "python3"]);
    let ns = Netns::new();
    start_echo_server(&ns, "127.0.0.1");

    let cap = Capture::start(&ns, &[ECHO_PORT], true, Bind::Lo);
    run_echo_client(&ns, "127.0.0.1");
    let cap = cap.finish();

    assert_eq!(cap.stats.drops, 0);
    let segs: Vec<Seg> = cap
        .frames
        .iter()
        .map(|f| parse_seg(&f.data).expect("tcp"))
        .collect();
    let c2s: Vec<&Seg> = segs.iter().filter(|s| s.dport == ECHO_PORT).collect();
    let s2c: Vec<&Seg> = segs.iter().filter(|s| s.sport == ECHO_PORT).collect();
    let up = check_direction(&c2s, "client->server", true);
    let down = check_direction(&s2c, "server->client", true);
    assert!(up.bytes.starts_with(b"hello, not http\nGETTING started\n"));
    assert_eq!(up.bytes, down.bytes);
    assert_eq!(cap.counters.flows_classified, 0);
}

/// `ip -n NS -o link show DEV` -> ifindex.
fn ifindex_of(ns: &Netns, dev: &str) -> u32 {
    let out = ns.run(&["ip", "-o", "link", "show", dev], SECS(10));
    let text = String::from_utf8_lossy(&out);
    text.split(':')
        .next()
        .and_then(|i| i.trim().parse().ok())
        .unwrap_or_else(|| panic!("no ifindex in `ip link` output: {text}"))
}

/// A real Ethernet interface (veth between two namespaces): the server's outgoing
/// packets are kept (only lo's outgoing copies are duplicates), Ethernet headers with
/// real MACs are parsed, the non-HTTP flow is dropped.
#[test]
fn veth_between_namespaces_keeps_both_directions() {
    require_tools(&["ip", "python3", "curl"]);
    let srv = Netns::new();
    let cli = Netns::new();
    srv.ip(&[
        "link",
        "add",
        "l7va",
        "type",
        "veth",
        "peer",
        "name",
        "l7vb",
        "netns",
        cli.name(),
    ]);
    srv.ip(&["addr", "add", "10.77.0.1/24", "dev", "l7va"]);
    srv.ip(&["link", "set", "l7va", "up"]);
    cli.ip(&["addr", "add", "10.77.0.2/24", "dev", "l7vb"]);
    cli.ip(&["link", "set", "l7vb", "up"]);
    let veth = Iface {
        index: ifindex_of(&srv, "l7va"),
        loopback: false,
    };
    let dir = tempfile::tempdir().expect("tempdir");
    start_http_server(&srv, &dir, "10.77.0.1", "HTTP/1.0");
    start_echo_server(&srv, "10.77.0.1");
    // The servers are reachable from the client side before recording starts.
    cli.wait_tcp("10.77.0.1", HTTP_PORT, SECS(15));

    let cap = Capture::start(&srv, &[HTTP_PORT], false, Bind::All);
    let body = curl(&cli, "http://10.77.0.1:8080/hello.txt");
    run_echo_client(&cli, "10.77.0.1");
    let cap = cap.finish();

    assert_eq!(body, b"hello from the l7rec test\n");
    let (up, down) = check_http_capture(&cap, HTTP_PORT, true, veth);
    assert!(contains(
        &up.bytes,
        b"GET /hello.txt HTTP/1.1\r\nHost: 10.77.0.1:8080\r\n"
    ));
    assert!(down.bytes.starts_with(b"HTTP/1.0 200 OK\r\n"));
    assert!(
        cap.frames.iter().all(|f| f.data[..12] != [0u8; 12]),
        "veth frames carry real MAC addresses"
    );
}

/// Writes hand-made packets into a tun device (raw IP, no link header): IPv4 with IP
/// and TCP options, IPv6 with hop-by-hop and destination-options headers, and a
/// non-HTTP packet. Checksums are left 0: AF_PACKET sees packets before IP does.
const TUN_WRITER: &str = r#"
import fcntl, os, struct, sys, time
d = sys.argv[1]
fd = os.open('/dev/net/tun', os.O_RDWR)
fcntl.ioctl(fd, 0x400454ca, struct.pack('16sH', b'l7tun', 0x0001 | 0x1000))  # TUNSETIFF: IFF_TUN|IFF_NO_PI
open(os.path.join(d, 'ready'), 'w').close()
for _ in range(400):
    if os.path.exists(os.path.join(d, 'go')):
        break
    time.sleep(0.05)
else:
    sys.exit('no go signal')
def tcp(sport, payload, opts=b''):
    return struct.pack('!HHIIBBHHH', sport, 8080, 1000, 0, (20 + len(opts)) // 4 << 4,
                       0x18, 65535, 0, 0) + opts + payload
def ip4(l4, opts=b''):
    return struct.pack('!BBHHHBBH4s4s', 0x40 | (20 + len(opts)) // 4, 0, 20 + len(opts) + len(l4),
                       1, 0x4000, 64, 6, 0, bytes([10, 78, 0, 2]), bytes([10, 78, 0, 1])) + opts + l4
def ip6(l4):
    hbh = bytes([60, 0, 1, 4, 0, 0, 0, 0])   # next: dest opts; PadN
    dst = bytes([6, 0, 1, 4, 0, 0, 0, 0])    # next: TCP; PadN
    ext = hbh + dst
    src = bytes([0xfd, 0x78] + [0] * 13 + [2])
    dsta = bytes([0xfd, 0x78] + [0] * 13 + [1])
    return struct.pack('!IHBB16s16s', 6 << 28, len(ext) + len(l4), 0, 64, src, dsta) + ext + l4
for p in [ip4(tcp(40000, b'PUT /opts HTTP/1.1\r\nHost: x\r\n\r\n', opts=b'\x01' * 12), opts=b'\x01' * 4),
          ip4(tcp(40001, b'not http at all\r\n')),
          ip6(tcp(40002, b'POST /v6ext HTTP/1.1\r\nHost: y\r\n\r\n'))]:
    os.write(fd, p)
open(os.path.join(d, 'sent'), 'w').close()
time.sleep(60)
"#;

/// Raw-IP framing (tun, ARPHRD_NONE -> LinkKind::RawIp) and header parsing corner
/// cases: IPv4 options, TCP options, IPv6 extension headers.
#[test]
fn tun_raw_ip_with_ip_options_and_ipv6_extension_headers() {
    require_tools(&["ip", "python3"]);
    let ns = Netns::new();
    let sync = tempfile::tempdir().expect("tempdir");
    let sync_dir = sync.path().to_string_lossy().into_owned();
    ns.spawn(&["python3", "-c", TUN_WRITER, &sync_dir]);
    let wait_for = |name: &str| {
        let deadline = Instant::now() + SECS(15);
        while !sync.path().join(name).exists() {
            assert!(
                Instant::now() < deadline,
                "tun writer did not get to `{name}`: {}",
                ns.log()
            );
            thread::sleep(Duration::from_millis(20));
        }
    };
    wait_for("ready");
    ns.ip(&["link", "set", "l7tun", "up"]);
    let tun = ifindex_of(&ns, "l7tun");

    let cap = Capture::start(&ns, &[], false, Bind::All);
    std::fs::write(sync.path().join("go"), b"").expect("write go");
    wait_for("sent");
    let cap = cap.finish();

    assert_eq!(cap.stats.drops, 0);
    let segs: Vec<Seg> = cap
        .frames
        .iter()
        .filter(|f| f.ifindex == tun)
        .map(|f| parse_raw_ip(&f.data).expect("raw IPv4/IPv6 TCP frame"))
        .collect();
    let payloads: Vec<&[u8]> = segs.iter().map(|s| s.payload.as_slice()).collect();
    assert_eq!(
        payloads,
        [
            b"PUT /opts HTTP/1.1\r\nHost: x\r\n\r\n".as_slice(),
            b"POST /v6ext HTTP/1.1\r\nHost: y\r\n\r\n".as_slice()
        ],
        "exactly the two HTTP packets, whole"
    );
    assert!(segs[0].src.is_ipv4() && segs[1].src.is_ipv6());
    assert_eq!(cap.counters.flows_classified, 2);
}
