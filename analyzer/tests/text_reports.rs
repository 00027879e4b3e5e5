//! Reports of captures built here: requests of every request-target form (RFC 9112
//! §3.2), for which the table, the summary and HAR must all show the same URL, built
//! from the form of the target rather than by gluing the Host header to it; and
//! requests full of terminal control characters, which the text reports (table,
//! summary) must escape while JSON keeps them exactly.

mod common;

use std::path::Path;

use common::{tcp_frame, NsPcap};
use l7rec_analyzer::report::{self, Format, Kind};
use l7rec_analyzer::{analyze, Analysis, Options};

const SERVER_IP: [u8; 4] = [10, 3, 0, 2];
const CLIENT_IP: [u8; 4] = [10, 3, 0, 1];
const SERVER_PORT: u16 = 8080;

/// One Ethernet/IPv4/TCP frame from the client (`to_server`) or the server.
fn frame(to_server: bool, cport: u16, seq: u32, ack: u32, flags: &str, payload: &[u8]) -> Vec<u8> {
    let (client, server) = ((CLIENT_IP, cport), (SERVER_IP, SERVER_PORT));
    if to_server {
        tcp_frame(client, server, seq, ack, flags, payload)
    } else {
        tcp_frame(server, client, seq, ack, flags, payload)
    }
}

/// A nanosecond pcap of one connection per (request, response), each with its
/// handshake and FINs.
fn write_pcap(path: &Path, exchanges: &[(&[u8], &[u8])]) {
    let mut pcap = NsPcap::new();
    let mut push = |f: Vec<u8>| pcap.push(f);
    for (i, (req, resp)) in exchanges.iter().enumerate() {
        let cport = 43_000 + i as u16;
        let (c, s) = (1000u32, 5000u32);
        push(frame(true, cport, c, 0, "S", b""));
        push(frame(false, cport, s, c + 1, "SA", b""));
        push(frame(true, cport, c + 1, s + 1, "", req));
        let c_end = c + 1 + req.len() as u32;
        push(frame(false, cport, s + 1, c_end, "", resp));
        let s_end = s + 1 + resp.len() as u32;
        push(frame(true, cport, c_end, s_end, "F", b""));
        push(frame(false, cport, s_end, c_end + 1, "F", b""));
    }
    std::fs::write(path, pcap.bytes).expect("pcap written");
}

fn analyze_exchanges(exchanges: &[(&[u8], &[u8])]) -> Analysis {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("capture.pcap");
    write_pcap(&path, exchanges);
    let opts = Options {
        threads: Some(1),
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

const OK: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n";

fn target_forms() -> Analysis {
    analyze_exchanges(&[
        (b"GET /origin?x=1 HTTP/1.1\r\nHost: web.test\r\n\r\n", OK),
        (
            b"GET http://example.com:81/abs?x=1 HTTP/1.1\r\nHost: example.com:81\r\n\r\n",
            OK,
        ),
        (
            b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
            b"HTTP/1.1 200 Connection established\r\n\r\n",
        ),
        (b"OPTIONS * HTTP/1.1\r\nHost: web.test:8080\r\n\r\n", OK),
    ])
}

/// The URL column (the table's last) of each row, in time order.
fn table_urls(table: &str) -> Vec<String> {
    table
        .lines()
        .skip(1)
        .map(|l| l.rsplit("  ").next().unwrap_or("").to_owned())
        .collect()
}

#[test]
fn table_urls_follow_the_request_target_form() {
    let a = target_forms();
    let table = render(&a, Kind::Transactions(Format::Table));
    assert_eq!(
        table_urls(&table),
        [
            "web.test/origin?x=1",
            "http://example.com:81/abs?x=1",
            "example.com:443",
            "web.test:8080 *",
        ],
        "{table}"
    );
}

#[test]
fn summary_endpoints_use_the_table_url_without_query() {
    let a = target_forms();
    let s = render(&a, Kind::Summary);
    for endpoint in [
        "  GET web.test/origin\n",
        "  GET http://example.com:81/abs\n",
        "  CONNECT example.com:443\n",
        "  OPTIONS web.test:8080 *\n",
    ] {
        assert!(s.contains(endpoint), "no {endpoint:?} in\n{s}");
    }
}

#[test]
fn har_urls_are_absolute_urls() {
    let a = target_forms();
    let har: serde_json::Value =
        serde_json::from_str(&render(&a, Kind::Transactions(Format::Har))).expect("HAR is JSON");
    let urls: Vec<&str> = har["log"]["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| e["request"]["url"].as_str().expect("url"))
        .collect();
    assert_eq!(
        urls,
        [
            "http://web.test/origin?x=1",
            "http://example.com:81/abs?x=1",
            "http://example.com:443",
            "http://web.test:8080",
        ]
    );
}

/// Requests whose targets carry what a terminal obeys: colours, a title change, a
/// carriage return that rewrites the line, NUL, VT/FF/DEL, a tab, and C1 CSI.
fn hostile() -> Analysis {
    analyze_exchanges(&[
        (
            b"GET /\x1b[31mRED\x1b[0m\x1b]0;pwned\x07 HTTP/1.1\r\nHost: web.test\r\n\r\n",
            b"HTTP/1.1 200 \x1b[32mGREEN\r\nContent-Length: 0\r\n\r\n",
        ),
        (b"GET /a\rb HTTP/1.1\r\nHost: web.test\r\n\r\n", OK),
        (b"GET /nul\x00x HTTP/1.1\r\nHost: web.test\r\n\r\n", OK),
        (
            b"GET /vt\x0b\x0cx\x7f HTTP/1.1\r\nHost: web.test\r\n\r\n",
            OK,
        ),
        (b"GET /tab\there HTTP/1.1\r\nHost: web.test\r\n\r\n", OK),
        (
            "GET /c1\u{9b}31m HTTP/1.1\r\nHost: web.test\r\n\r\n".as_bytes(),
            OK,
        ),
    ])
}

/// Characters a terminal would act on rather than print (newlines end lines).
fn controls(s: &str) -> Vec<char> {
    s.chars().filter(|c| c.is_control() && *c != '\n').collect()
}

#[test]
fn table_escapes_control_characters() {
    let a = hostile();
    assert_eq!(a.transactions.len(), 6, "every request parsed");
    let table = render(&a, Kind::Transactions(Format::Table));
    assert_eq!(controls(&table), [], "{table:?}");
    let urls = table_urls(&table);
    for want in [
        "web.test/\\x1b[31mRED\\x1b[0m\\x1b]0;pwned\\x07",
        "web.test/a\\rb",
        "web.test/nul\\x00x",
        "web.test/vt\\x0b\\x0cx\\x7f",
        "web.test/tab\\there",
        "web.test/c1\\u{9b}31m",
    ] {
        assert!(urls.iter().any(|u| u == want), "no {want} in {urls:?}");
    }
}

#[test]
fn summary_escapes_control_characters() {
    let a = hostile();
    let s = render(&a, Kind::Summary);
    assert_eq!(controls(&s), [], "{s:?}");
    assert!(s.contains("  GET web.test/a\\rb\n"), "{s}");
}

#[test]
fn json_keeps_the_target_exactly() {
    let a = hostile();
    let json = render(&a, Kind::Transactions(Format::Json));
    let uris: Vec<String> = json
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("JSON line");
            v["uri"].as_str().expect("uri").to_owned()
        })
        .collect();
    assert!(uris.iter().any(|u| u == "/a\rb"), "{uris:?}");
    assert!(uris.iter().any(|u| u == "/tab\there"), "{uris:?}");
}
