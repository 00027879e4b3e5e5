//! A capture mixing HTTP with other TCP protocols: only the HTTP connections give
//! rows, and `--summary` counts the others as TCP connections without HTTP.
//!
//! The capture is written here as Ethernet/IPv4/TCP frames in a legacy pcap: an HTTP
//! keep-alive connection (two exchanges) and an HTTP connection captured
//! mid-connection (no handshake), beside SSH, Redis, SMTP, PostgreSQL, a MySQL-like
//! server-first protocol and random binary, each with handshake and FINs, and a Redis
//! connection captured mid-connection. These used to come out as rows with method
//! "-" flagged `malformed` / `no_request` / `no_response`, and count "with HTTP".

mod common;

use std::path::Path;

use common::{tcp_frame, NsPcap};
use l7rec_analyzer::report::{self, Format, Kind};
use l7rec_analyzer::{analyze, Analysis, Options};

const SERVER_IP: [u8; 4] = [10, 2, 0, 2];
const CLIENT_IP: [u8; 4] = [10, 2, 0, 1];

/// Who sends a payload.
#[derive(Clone, Copy)]
enum Dir {
    Client,
    Server,
}

/// One connection: client port, server port, whether its handshake and FINs are in
/// the capture, and its payloads in order.
struct Conn {
    cport: u16,
    sport: u16,
    whole: bool,
    payloads: Vec<(Dir, Vec<u8>)>,
}

/// Deterministic bytes that look like nothing in particular.
fn noise(len: usize, salt: u32) -> Vec<u8> {
    let mut x = 0x9e37_79b9u32 ^ salt;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

fn conns() -> Vec<Conn> {
    use Dir::{Client as C, Server as S};
    let v = |p: &[(Dir, &[u8])]| p.iter().map(|(f, b)| (*f, b.to_vec())).collect();
    let mut ssh: Vec<(Dir, Vec<u8>)> = v(&[
        (S, b"SSH-2.0-OpenSSH_9.2p1\r\n"),
        (C, b"SSH-2.0-OpenSSH_9.2p1\r\n"),
    ]);
    ssh.push((C, noise(200, 1)));
    ssh.push((S, noise(300, 2)));
    let mut mysql: Vec<(Dir, Vec<u8>)> = v(&[(S, b"J\x00\x00\x00\x0a8.0.33\x00")]);
    mysql.push((S, noise(40, 3)));
    mysql.push((C, noise(60, 4)));
    let conn = |cport, sport, whole, payloads| Conn {
        cport,
        sport,
        whole,
        payloads,
    };
    vec![
        conn(
            41000,
            8080,
            true,
            v(&[
                (C, b"GET /one HTTP/1.1\r\nHost: web.test\r\n\r\n"),
                (S, b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"),
                (C, b"GET /two?x=1 HTTP/1.1\r\nHost: web.test\r\n\r\n"),
                (S, b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"),
            ]),
        ),
        conn(
            41001,
            8080,
            false,
            v(&[
                (S, b"the end of an earlier body\r\n"),
                (C, b"GET /mid HTTP/1.1\r\nHost: web.test\r\n\r\n"),
                (S, b"HTTP/1.1 204 No Content\r\n\r\n"),
            ]),
        ),
        conn(42000, 22, true, ssh),
        conn(
            42001,
            6379,
            true,
            v(&[(C, b"*1\r\n$4\r\nPING\r\n"), (S, b"+PONG\r\n")]),
        ),
        conn(
            42002,
            25,
            true,
            v(&[
                (S, b"220 mail.example ESMTP\r\n"),
                (C, b"EHLO x\r\n"),
                (S, b"250 ok\r\n"),
                (C, b"QUIT\r\n"),
                (S, b"221 bye\r\n"),
            ]),
        ),
        conn(
            42003,
            9000,
            true,
            vec![(C, noise(100, 5)), (S, noise(100, 6))],
        ),
        conn(
            42004,
            5432,
            true,
            v(&[(C, b"\x00\x00\x00\x08\x04\xd2\x16\x2f"), (S, b"N")]),
        ),
        conn(42005, 3306, true, mysql),
        conn(
            42006,
            6379,
            false,
            v(&[(C, b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"), (S, b"$-1\r\n")]),
        ),
    ]
}

fn frame(from: Dir, c: &Conn, seq: u32, ack: u32, flags: &str, payload: &[u8]) -> Vec<u8> {
    let (client, server) = ((CLIENT_IP, c.cport), (SERVER_IP, c.sport));
    match from {
        Dir::Client => tcp_frame(client, server, seq, ack, flags, payload),
        Dir::Server => tcp_frame(server, client, seq, ack, flags, payload),
    }
}

/// Writes the connections one after the other into a nanosecond pcap.
fn write_pcap(path: &Path, conns: &[Conn]) {
    let mut pcap = NsPcap::new();
    let mut push = |f: Vec<u8>| pcap.push(f);
    for c in conns {
        let (cisn, sisn) = (u32::from(c.cport) << 16, u32::from(c.sport) << 8);
        let (mut cseq, mut sseq) = (cisn.wrapping_add(1), sisn.wrapping_add(1));
        if c.whole {
            push(frame(Dir::Client, c, cisn, 0, "S", b""));
            push(frame(Dir::Server, c, sisn, cseq, "SA", b""));
        }
        for (from, p) in &c.payloads {
            let (seq, ack) = match from {
                Dir::Client => (&mut cseq, sseq),
                Dir::Server => (&mut sseq, cseq),
            };
            push(frame(*from, c, *seq, ack, "", p));
            *seq = seq.wrapping_add(p.len() as u32);
        }
        if c.whole {
            push(frame(Dir::Client, c, cseq, sseq, "F", b""));
            push(frame(Dir::Server, c, sseq, cseq.wrapping_add(1), "F", b""));
        }
    }
    std::fs::write(path, pcap.bytes).expect("pcap written");
}

fn analyze_capture(threads: usize) -> Analysis {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("non-http.pcap");
    write_pcap(&path, &conns());
    let opts = Options {
        threads: Some(threads),
        without_headers: false,
    };
    let a = analyze(&[&path], &opts, &|_, _| {}).expect("analyzes");
    assert!(
        a.outcome.read_errors.is_empty(),
        "{:?}",
        a.outcome.read_errors
    );
    a
}

fn render(a: &Analysis, kind: Kind) -> String {
    let mut out = Vec::new();
    report::write_all(kind, &a.transactions, &a.outcome, &mut out).expect("report");
    String::from_utf8(out).expect("UTF-8 report")
}

#[test]
fn only_http_connections_give_rows() {
    for threads in [1, 3] {
        let a = analyze_capture(threads);
        let mut got: Vec<_> = a
            .transactions
            .iter()
            .map(|t| {
                (
                    t.server.port(),
                    t.method.as_deref().map(str::to_owned),
                    t.uri.clone(),
                    t.status,
                    t.flags
                        .iter()
                        .map(|f| f.as_str().to_owned())
                        .collect::<Vec<_>>(),
                )
            })
            .collect();
        got.sort();
        let row = |m: &str, u: &str, s, flags: &[&str]| {
            let flags = flags.iter().map(|f| f.to_string()).collect();
            (8080, Some(m.to_owned()), Some(u.to_owned()), Some(s), flags)
        };
        let want = vec![
            row("GET", "/mid", 204, &["midstream"]),
            row("GET", "/one", 200, &[]),
            row("GET", "/two?x=1", 404, &[]),
        ];
        assert_eq!(got, want, "threads={threads}");
        let flows = &a.outcome.totals.flows;
        assert_eq!((flows.flows, flows.http_flows), (9, 2), "threads={threads}");
    }
}

#[test]
fn summary_counts_other_protocols_as_connections_without_http() {
    let a = analyze_capture(2);
    let s = render(&a, Kind::Summary);
    assert!(s.contains("           3  transactions\n"), "{s}");
    assert!(
        s.contains("           9  TCP connections (2 with HTTP)\n"),
        "{s}"
    );
    // No endpoint made of placeholders ("- -") for the other protocols.
    assert!(!s.contains("  - -"), "{s}");
    let har = render(&a, Kind::Transactions(Format::Har));
    assert!(!har.contains("\"method\":\"\""), "{har}");
    assert!(!har.contains("\"method\": \"\""), "{har}");
}
