use super::*;
use proptest::prelude::*;

const C: Side = Side::Client;
const S: Side = Side::Server;

/// Feeds each (side, bytes) step with timestamp 10 * (step + 1), then finishes.
fn run_with(mut c: Connection, steps: &[(Side, &[u8])]) -> Vec<Transaction> {
    for (i, (side, bytes)) in steps.iter().enumerate() {
        c.data(*side, bytes, 10 * (i as u64 + 1));
    }
    c.finish();
    c.take_transactions()
}

fn run(steps: &[(Side, &[u8])]) -> Vec<Transaction> {
    run_with(Connection::new(), steps)
}

/// Same as `run` but every step is fed one byte at a time.
fn run_bytewise(steps: &[(Side, &[u8])]) -> Vec<Transaction> {
    let mut c = Connection::new();
    for (i, (side, bytes)) in steps.iter().enumerate() {
        for b in bytes.chunks(1) {
            c.data(*side, b, 10 * (i as u64 + 1));
        }
    }
    c.finish();
    c.take_transactions()
}

fn names(t: &Transaction) -> Vec<&'static str> {
    t.flags.names().collect()
}

fn summary(t: &Transaction) -> (Option<&str>, Option<&str>, Option<u16>, u64, u64) {
    (
        t.method.as_deref(),
        t.uri.as_deref(),
        t.status,
        t.req_body_bytes,
        t.resp_body_bytes,
    )
}

#[test]
fn keep_alive_two_transactions() {
    let steps: &[(Side, &[u8])] = &[
        (
            C,
            b"GET /a?x=1 HTTP/1.1\r\nHost: example.com\r\nUser-Agent: t\r\n\r\n",
        ),
        (
            S,
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nServer: s\r\n\r\nhello",
        ),
        (
            C,
            b"POST /b HTTP/1.1\r\nHost: example.com\r\nContent-Length: 3\r\n\r\nabc",
        ),
        (S, b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n"),
    ];
    let txs = run(steps);
    assert_eq!(txs.len(), 2);
    let t = &txs[0];
    assert_eq!(summary(t), (Some("GET"), Some("/a?x=1"), Some(200), 0, 5));
    assert_eq!(t.version.as_deref(), Some("HTTP/1.1"));
    assert_eq!(t.host.as_deref(), Some("example.com"));
    assert_eq!(t.reason.as_deref(), Some("OK"));
    assert_eq!(t.resp_version.as_deref(), Some("HTTP/1.1"));
    assert_eq!(
        t.request_headers,
        vec![
            ("Host".to_owned(), "example.com".to_owned()),
            ("User-Agent".to_owned(), "t".to_owned())
        ]
    );
    assert_eq!(t.response_headers.len(), 2);
    assert_eq!(
        (
            t.req_first_ts,
            t.req_last_ts,
            t.resp_first_ts,
            t.resp_last_ts
        ),
        (Some(10), Some(10), Some(20), Some(20))
    );
    assert!(t.flags.is_empty());
    assert_eq!(
        summary(&txs[1]),
        (Some("POST"), Some("/b"), Some(201), 3, 0)
    );
    assert_eq!((txs[0].index, txs[1].index), (0, 1));
    assert!(txs[1].flags.is_empty());
    assert_eq!(run_bytewise(steps), txs);
}

#[test]
fn pipelining_pairs_in_order() {
    let txs = run(&[
        (
            C,
            b"GET /1 HTTP/1.1\r\n\r\nHEAD /2 HTTP/1.1\r\n\r\nGET /3 HTTP/1.1\r\n\r\n",
        ),
        (S, b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nA"),
        (S, b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n"),
        (S, b"HTTP/1.1 404 Not Found\r\nContent-Length: 2\r\n\r\nNF"),
    ]);
    let got: Vec<_> = txs.iter().map(summary).collect();
    assert_eq!(
        got,
        vec![
            (Some("GET"), Some("/1"), Some(200), 0, 1),
            (Some("HEAD"), Some("/2"), Some(200), 0, 0),
            (Some("GET"), Some("/3"), Some(404), 0, 2),
        ]
    );
    assert_eq!(names(&txs[0]), Vec::<&str>::new());
    assert_eq!(names(&txs[1]), vec!["pipelined"]);
    assert_eq!(names(&txs[2]), vec!["pipelined"]);
}

#[test]
fn response_before_request_is_held_until_request_parsed() {
    // The server direction is fed first; the HEAD request decides the framing.
    let mut c = Connection::new();
    c.data(S, b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n", 20);
    c.data(S, b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", 40);
    c.close(S, 41);
    assert!(c.take_transactions().is_empty());
    c.data(C, b"HEAD / HTTP/1.1\r\n\r\n", 10);
    c.data(C, b"GET /x HTTP/1.1\r\n\r\n", 30);
    let txs = c.take_transactions();
    let got: Vec<_> = txs.iter().map(summary).collect();
    assert_eq!(
        got,
        vec![
            (Some("HEAD"), Some("/"), Some(200), 0, 0),
            (Some("GET"), Some("/x"), Some(200), 0, 2),
        ]
    );
    assert_eq!(txs[1].resp_first_ts, Some(40));
    assert!(txs.iter().all(|t| t.flags.is_empty()), "{txs:?}");
}

#[test]
fn chunked_with_extensions_and_trailers() {
    let steps: &[(Side, &[u8])] = &[
        (
            C,
            b"POST /up HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
        ),
        (
            S,
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4;ext=1\r\nWiki\r\n",
        ),
        (
            S,
            b"5\r\npedia\r\nE\r\n in\r\n\r\nchunks.\r\n0\r\nExpires: never\r\n\r\n",
        ),
        (C, b"GET /next HTTP/1.1\r\n\r\n"),
        (
            S,
            b"HTTP/1.1 304 Not Modified\r\nContent-Length: 99\r\n\r\n",
        ),
    ];
    let txs = run(steps);
    let got: Vec<_> = txs.iter().map(summary).collect();
    assert_eq!(
        got,
        vec![
            (Some("POST"), Some("/up"), Some(200), 3, 23),
            (Some("GET"), Some("/next"), Some(304), 0, 0),
        ]
    );
    assert_eq!(txs[0].resp_last_ts, Some(30));
    assert!(txs.iter().all(|t| t.flags.is_empty()));
    assert_eq!(run_bytewise(steps), txs);
}

#[test]
fn close_delimited_response() {
    let mut c = Connection::new();
    c.data(C, b"GET / HTTP/1.0\r\n\r\n", 1);
    c.data(S, b"HTTP/1.0 200 OK\r\n\r\nsome ", 2);
    c.data(S, b"body", 3);
    assert!(c.take_transactions().is_empty());
    c.close(S, 4);
    let txs = c.take_transactions();
    assert_eq!(txs.len(), 1);
    assert_eq!(summary(&txs[0]), (Some("GET"), Some("/"), Some(200), 0, 9));
    assert_eq!(txs[0].resp_last_ts, Some(3));
    assert!(txs[0].flags.is_empty());
    // ended by finish() as well
    let txs = run(&[
        (C, b"GET / HTTP/1.1\r\n\r\n"),
        (S, b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nabc"),
    ]);
    assert_eq!(txs[0].resp_body_bytes, 3);
    assert!(txs[0].flags.is_empty());
}

#[test]
fn informational_then_final_response() {
    let txs = run(&[
        (C, b"POST /f HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n"),
        (S, b"HTTP/1.1 100 Continue\r\n\r\n"),
        (C, b"data"),
        (S, b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"),
    ]);
    assert_eq!(txs.len(), 1);
    let t = &txs[0];
    assert_eq!(summary(t), (Some("POST"), Some("/f"), Some(200), 4, 2));
    assert_eq!(t.info_code, Some(103));
    assert_eq!(names(t), vec!["informational"]);
    assert_eq!((t.req_last_ts, t.resp_first_ts), (Some(30), Some(40)));
    assert_eq!(
        t.response_headers,
        vec![("Content-Length".into(), "2".into())]
    );
}

#[test]
fn switching_protocols_stops_parsing() {
    let mut c = Connection::new();
    c.data(
        C,
        b"GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n\x81\x05hello",
        1,
    );
    c.data(
        S,
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n\x81\x02hi",
        2,
    );
    c.data(C, b"GET /not-http HTTP/1.1\r\n\r\n", 3);
    assert!(c.is_upgraded());
    c.finish();
    let txs = c.take_transactions();
    assert_eq!(txs.len(), 1);
    assert_eq!(
        summary(&txs[0]),
        (Some("GET"), Some("/ws"), Some(101), 0, 0)
    );
    assert_eq!(names(&txs[0]), vec!["upgrade"]);

    // An Upgrade request refused: the client bytes held back are parsed as HTTP.
    let txs = run(&[
        (C, b"GET /u HTTP/1.1\r\nUpgrade: h2c\r\n\r\nGET /v HTTP/1.1\r\n\r\n"),
        (S, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
    ]);
    assert_eq!(txs.len(), 2);
    assert_eq!(txs[1].uri.as_deref(), Some("/v"));

    let txs = run(&[
        (
            C,
            b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n\x16\x03\x01",
        ),
        (
            S,
            b"HTTP/1.1 200 Connection established\r\n\r\n\x16\x03\x03",
        ),
    ]);
    assert_eq!(txs.len(), 1);
    assert_eq!(names(&txs[0]), vec!["upgrade"]);
    assert_eq!(txs[0].uri.as_deref(), Some("example.com:443"));
}

#[test]
fn no_body_statuses() {
    let txs = run(&[
        (C, b"DELETE /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\nGET /c HTTP/1.1\r\n\r\n"),
        (
            S,
            b"HTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 304 Not Modified\r\nETag: x\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n!",
        ),
    ]);
    let got: Vec<_> = txs.iter().map(|t| (t.status, t.resp_body_bytes)).collect();
    assert_eq!(got, vec![(Some(204), 0), (Some(304), 0), (Some(200), 1)]);
}

#[test]
fn long_url_one_byte_at_a_time() {
    let path = format!("/{}", "a".repeat(8192));
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: h\r\nX-Long: {}\r\n\r\n",
        "v".repeat(3000)
    );
    let steps: &[(Side, &[u8])] = &[
        (C, req.as_bytes()),
        (S, b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc"),
    ];
    let whole = run(steps);
    let bytewise = run_bytewise(steps);
    assert_eq!(whole, bytewise);
    assert_eq!(whole.len(), 1);
    assert_eq!(whole[0].uri.as_deref(), Some(path.as_str()));
    assert_eq!(whole[0].request_headers[1].1.len(), 3000);
}

#[test]
fn gap_inside_body_only_advances_counter() {
    let mut c = Connection::new();
    c.data(C, b"GET /big HTTP/1.1\r\n\r\nGET /next HTTP/1.1\r\n\r\n", 1);
    c.data(S, b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nab", 2);
    c.gap(S, 5);
    c.data(S, b"cde", 3);
    c.data(
        S,
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n8\r\nab",
        4,
    );
    c.gap(S, 4);
    c.data(S, b"cd\r\n0\r\n\r\n", 5);
    c.finish();
    let txs = c.take_transactions();
    assert_eq!(txs.len(), 2);
    assert_eq!(txs[0].resp_body_bytes, 10);
    assert_eq!(names(&txs[0]), vec!["gap"]);
    assert_eq!(txs[0].resp_last_ts, Some(3));
    assert_eq!(txs[1].resp_body_bytes, 8);
    assert_eq!(names(&txs[1]), vec!["gap", "pipelined"]);
}

#[test]
fn gap_in_request_head_keeps_pairing_and_resyncs() {
    let mut c = Connection::new();
    c.data(C, b"GET /lost-ur", 1);
    c.gap(C, 40);
    c.data(
        C,
        b"ty: stuff\r\n\r\nPOST /x HTTP/1.1\r\nContent-Length: 1\r\n\r\nz",
        2,
    );
    c.data(S, b"HTTP/1.1 400 Bad\r\nContent-Length: 0\r\n\r\n", 3);
    c.data(S, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 4);
    c.finish();
    let txs = c.take_transactions();
    let got: Vec<_> = txs.iter().map(summary).collect();
    assert_eq!(
        got,
        vec![
            (None, None, Some(400), 0, 0),
            (Some("POST"), Some("/x"), Some(200), 1, 0),
        ]
    );
    assert_eq!(names(&txs[0]), vec!["gap"]);
    // sent together with the lost request, before its response: pipelined
    assert_eq!(names(&txs[1]), vec!["pipelined"]);

    // A gap in a request head whose start line was complete keeps method and URI.
    let mut c = Connection::new();
    c.data(C, b"GET /known HTTP/1.1\r\nHost: a", 1);
    c.gap(C, 10);
    c.finish();
    let txs = c.take_transactions();
    assert_eq!(summary(&txs[0]), (Some("GET"), Some("/known"), None, 0, 0));
    assert_eq!(names(&txs[0]), vec!["gap", "no_response"]);
}

#[test]
fn gap_in_response_head_ends_that_response() {
    let mut c = Connection::new();
    c.data(C, b"GET /1 HTTP/1.1\r\n\r\nGET /2 HTTP/1.1\r\n\r\n", 1);
    c.data(S, b"HTTP/1.1 500 Oops\r\nContent-Le", 2);
    c.gap(S, 100);
    c.data(
        S,
        b"tail of body\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
        3,
    );
    c.finish();
    let txs = c.take_transactions();
    let got: Vec<_> = txs.iter().map(summary).collect();
    assert_eq!(
        got,
        vec![
            (Some("GET"), Some("/1"), Some(500), 0, 0),
            (Some("GET"), Some("/2"), Some(200), 0, 0),
        ]
    );
    assert_eq!(names(&txs[0]), vec!["gap"]);
    assert_eq!(names(&txs[1]), vec!["pipelined"]);
}

#[test]
fn malformed_messages_are_reported_and_parsing_resyncs() {
    let steps: &[(Side, &[u8])] = &[
        (C, b"\x00\x01garbage here\r\nmore\r\nGET /ok HTTP/1.1\r\n\r\n"),
        (S, b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"),
        (S, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
        (C, b"GET /bad-header HTTP/1.1\r\nNo colon here\r\n\r\nGET /after HTTP/1.1\r\n\r\n"),
        (S, b"HTTP/1.1 400 Bad\r\nContent-Length: 0\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n"),
        (C, b"GET /chunk HTTP/1.1\r\n\r\n"),
        (S, b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nnot-hex\r\n"),
    ];
    let txs = run(steps);
    assert_eq!(run_bytewise(steps), txs);
    let got: Vec<_> = txs
        .iter()
        .map(|t| (t.uri.as_deref(), t.status, names(t)))
        .collect();
    assert_eq!(
        got,
        vec![
            (None, Some(400), vec!["malformed"]),
            (Some("/ok"), Some(200), vec!["pipelined"]),
            (Some("/bad-header"), Some(400), vec!["malformed"]),
            (Some("/after"), Some(200), vec!["malformed", "pipelined"]),
            (Some("/chunk"), Some(200), vec!["malformed"]),
        ]
    );
}

#[test]
fn oversized_head() {
    let cfg = Config {
        max_head_bytes: 64,
        ..Config::default()
    };
    let big = format!(
        "GET /x HTTP/1.1\r\nCookie: {}\r\n\r\nGET /y HTTP/1.1\r\n\r\n",
        "c".repeat(100)
    );
    let steps: &[(Side, &[u8])] = &[(C, big.as_bytes())];
    let txs = run_with(Connection::with_config(cfg), steps);
    assert_eq!(txs.len(), 2, "{txs:?}");
    assert_eq!(txs[0].uri.as_deref(), Some("/x"));
    assert_eq!(
        names(&txs[0]),
        vec!["malformed", "oversized", "no_response"]
    );
    assert_eq!(txs[1].uri.as_deref(), Some("/y"));
    // byte-wise feeding gives the same result
    let mut c = Connection::with_config(cfg);
    for b in big.as_bytes().chunks(1) {
        c.data(C, b, 10);
    }
    c.finish();
    assert_eq!(c.take_transactions(), txs);
}

#[test]
fn many_headers() {
    let mut req = b"GET / HTTP/1.1\r\n".to_vec();
    for i in 0..300 {
        req.extend_from_slice(format!("X-H{i}: {i}\r\n").as_bytes());
    }
    req.extend_from_slice(b"\r\n");
    let txs = run(&[
        (C, &req),
        (S, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
    ]);
    assert_eq!(txs[0].request_headers.len(), 300);
    assert!(txs[0].flags.is_empty());
}

#[test]
fn midstream_capture() {
    let mut c = Connection::midstream();
    c.data(
        S,
        b"dy of an earlier response\r\nHTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc",
        5,
    );
    c.data(C, b"ers: x\r\n\r\nGET /seen HTTP/1.1\r\n\r\n", 6);
    c.data(S, b"HTTP/1.1 404 NF\r\nContent-Length: 0\r\n\r\n", 7);
    c.finish();
    let txs = c.take_transactions();
    let got: Vec<_> = txs.iter().map(|t| (summary(t), names(t))).collect();
    assert_eq!(
        got,
        vec![
            ((None, None, Some(200), 0, 3), vec!["no_request"]),
            ((Some("GET"), Some("/seen"), Some(404), 0, 0), vec![]),
        ]
    );
}

/// QA's `mid4b.pcap`: the capture starts in the last segment of a body that does not
/// end with a newline; each later response starts a segment of its own. Resync must
/// take a segment start as a message start, or no response is ever found.
#[test]
fn midstream_resync_takes_a_status_line_at_a_segment_start() {
    let steps: &[(Side, &[u8])] = &[
        (S, b"BBBBBBBB end of an earlier body, no newline"),
        (C, b"GET /a HTTP/1.1\r\nHost: h\r\n\r\n"),
        (S, b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\naaa"),
        (C, b"GET /b HTTP/1.1\r\nHost: h\r\n\r\n"),
        (S, b"HTTP/1.1 201 Created\r\nContent-Length: 5\r\n\r\nbbbbb"),
        (C, b"GET /c HTTP/1.1\r\nHost: h\r\n\r\n"),
        (
            S,
            b"HTTP/1.1 404 Not Found\r\nContent-Length: 7\r\n\r\nccccccc",
        ),
    ];
    let txs = run_with(Connection::midstream(), steps);
    let got: Vec<_> = txs.iter().map(|t| (summary(t), names(t))).collect();
    assert_eq!(
        got,
        vec![
            ((Some("GET"), Some("/a"), Some(200), 0, 3), vec![]),
            ((Some("GET"), Some("/b"), Some(201), 0, 5), vec![]),
            ((Some("GET"), Some("/c"), Some(404), 0, 7), vec![]),
        ]
    );
}

/// The same on the client side: a request body without a final newline, then a
/// request in a segment of its own.
#[test]
fn midstream_resync_takes_a_request_line_at_a_segment_start() {
    let steps: &[(Side, &[u8])] = &[
        (C, b"xxxx tail of an upload"),
        (C, b"GET /next HTTP/1.1\r\n\r\n"),
        (S, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
    ];
    let txs = run_with(Connection::midstream(), steps);
    let got: Vec<_> = txs.iter().map(|t| (summary(t), names(t))).collect();
    assert_eq!(
        got,
        vec![((Some("GET"), Some("/next"), Some(200), 0, 0), vec![])]
    );
}

/// A segment start is a candidate, not a message: one that is not a valid start line
/// is skipped silently, and the search goes on at line starts after it.
#[test]
fn midstream_segment_start_that_is_not_a_status_line_is_skipped() {
    let steps: &[(Side, &[u8])] = &[
        (C, b"GET /a HTTP/1.1\r\n\r\n"),
        (
            S,
            b"HTTP/1.1 2xx body text\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\na",
        ),
    ];
    let txs = run_with(Connection::midstream(), steps);
    let got: Vec<_> = txs.iter().map(|t| (summary(t), names(t))).collect();
    assert_eq!(
        got,
        vec![((Some("GET"), Some("/a"), Some(200), 0, 1), vec![])]
    );
}

/// QA's `m2.pcap` (loss.pcap cut inside a body): a response whose status line resync
/// cannot see (here: glued to the end of the previous body) is skipped. The next
/// response found must not go to the request the skipped one answered, which would
/// shift every later pairing by one: that request is reported without a response.
fn skipped_response_steps() -> Vec<(Side, u64, &'static [u8])> {
    vec![
        (S, 10, b"tail of an earlier body"),
        (C, 20, b"GET /a HTTP/1.1\r\n\r\n"),
        // the response to /a, not findable: not at a segment or line start
        (
            S,
            30,
            b"ailHTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\naaa\n",
        ),
        (C, 40, b"GET /b HTTP/1.1\r\n\r\n"),
        (
            S,
            50,
            b"HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nbb",
        ),
        (C, 60, b"GET /c HTTP/1.1\r\n\r\n"),
        (
            S,
            70,
            b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n",
        ),
    ]
}

/// The pairs `skipped_response_steps` must give: /a lost, /b and /c with their own.
fn assert_skipped_response_pairs(txs: &[Transaction]) {
    let got: Vec<_> = txs.iter().map(|t| (summary(t), names(t))).collect();
    assert_eq!(
        got,
        vec![
            ((Some("GET"), Some("/a"), None, 0, 0), vec!["no_response"]),
            ((Some("GET"), Some("/b"), Some(201), 0, 2), vec![]),
            ((Some("GET"), Some("/c"), Some(404), 0, 0), vec![]),
        ]
    );
}

#[test]
fn response_after_skipped_bytes_is_not_paired_with_an_earlier_request() {
    let mut c = Connection::midstream();
    for (side, ts, bytes) in skipped_response_steps() {
        c.data(side, bytes, ts);
    }
    c.finish();
    assert_skipped_response_pairs(&c.take_transactions());
}

/// The decision rests on timestamps, not on the order the caller interleaves the two
/// directions: the server side fed entirely first gives the same pairs.
#[test]
fn skipped_response_rule_does_not_depend_on_interleaving() {
    let mut c = Connection::midstream();
    let steps = skipped_response_steps();
    for side in [S, C] {
        for &(s, ts, bytes) in steps.iter().filter(|st| st.0 == side) {
            c.data(s, bytes, ts);
        }
    }
    c.finish();
    assert_skipped_response_pairs(&c.take_transactions());
}

/// Bytes lost in a gap while resynchronising may hold a whole response too: a request
/// seen before the data after the gap does not get the response found there.
#[test]
fn gap_while_resyncing_can_hide_a_response() {
    let mut c = Connection::midstream();
    c.data(S, b"tail of an earlier body", 10);
    c.data(C, b"GET /a HTTP/1.1\r\n\r\n", 20);
    c.gap(S, 500);
    c.data(S, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 30);
    c.data(C, b"GET /b HTTP/1.1\r\n\r\n", 40);
    c.data(S, b"HTTP/1.1 204 No Content\r\n\r\n", 50);
    c.finish();
    let txs = c.take_transactions();
    let got: Vec<_> = txs.iter().map(|t| (summary(t), names(t))).collect();
    assert_eq!(
        got,
        vec![
            ((Some("GET"), Some("/a"), None, 0, 0), vec!["no_response"]),
            ((None, None, Some(200), 0, 0), vec!["no_request"]),
            ((Some("GET"), Some("/b"), Some(204), 0, 0), vec![]),
        ]
    );
}

/// Skipped bytes older than the waiting requests cannot hold their responses: pipelined
/// requests sent after them keep theirs, in order.
#[test]
fn skip_before_the_requests_drops_nothing() {
    let mut c = Connection::midstream();
    c.data(S, b"tail of an earlier body", 10);
    c.data(C, b"GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\n", 20);
    c.data(S, b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\na", 30);
    c.data(S, b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n", 40);
    c.finish();
    let txs = c.take_transactions();
    let got: Vec<_> = txs.iter().map(|t| (t.uri.as_deref(), t.status)).collect();
    assert_eq!(got, vec![(Some("/a"), Some(200)), (Some("/b"), Some(201))]);
}

#[test]
fn finish_reports_pending_and_incomplete() {
    let mut c = Connection::new();
    c.data(C, b"GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\nPOST /c HTTP/1.1\r\nContent-Length: 9\r\n\r\nxy", 1);
    c.data(S, b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab", 2);
    c.finish();
    let txs = c.take_transactions();
    let got: Vec<_> = txs.iter().map(|t| (summary(t), names(t))).collect();
    assert_eq!(
        got,
        vec![
            (
                (Some("GET"), Some("/a"), Some(200), 0, 2),
                vec!["incomplete"]
            ),
            (
                (Some("GET"), Some("/b"), None, 0, 0),
                vec!["pipelined", "no_response"]
            ),
            (
                (Some("POST"), Some("/c"), None, 2, 0),
                vec!["incomplete", "pipelined", "no_response"]
            ),
        ]
    );
    // a request head cut by the end of the capture
    let mut c = Connection::new();
    c.data(C, b"GET /partial", 1);
    c.finish();
    let txs = c.take_transactions();
    assert_eq!(txs.len(), 1);
    assert_eq!(txs[0].method, None);
    assert_eq!(names(&txs[0]), vec!["incomplete", "no_response"]);
    c.data(C, b"GET / HTTP/1.1\r\n\r\n", 2);
    c.finish();
    assert!(c.take_transactions().is_empty());
}

#[test]
fn non_utf8_uri_is_kept_raw() {
    let txs = run(&[
        (C, b"GET /caf\xe9?q=\xff HTTP/1.1\r\nX: \xe9\r\n\r\n"),
        (S, b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"),
    ]);
    assert_eq!(txs[0].uri.as_deref(), Some("/caf\u{fffd}?q=\u{fffd}"));
    assert_eq!(txs[0].uri_raw.as_deref(), Some(&b"/caf\xe9?q=\xff"[..]));
    assert_eq!(names(&txs[0]), vec!["non_utf8"]);
}

#[test]
fn response_without_any_request() {
    let mut c = Connection::new();
    c.data(
        S,
        b"HTTP/1.1 408 Request Timeout\r\nContent-Length: 0\r\n\r\n",
        1,
    );
    c.close(C, 2);
    let txs = c.take_transactions();
    assert_eq!(txs.len(), 1);
    assert_eq!(
        (txs[0].status, names(&txs[0])),
        (Some(408), vec!["no_request"])
    );
}

#[test]
fn deferral_cap_bounds_memory() {
    let cfg = Config {
        max_deferred_bytes: 100,
        ..Config::default()
    };
    let mut c = Connection::with_config(cfg);
    c.data(S, b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n", 1);
    c.data(S, &[b'x'; 1000], 2);
    let txs = c.take_transactions();
    assert_eq!(txs.len(), 1);
    assert_eq!(names(&txs[0]), vec!["no_request"]);
    assert_eq!(txs[0].resp_body_bytes, 1000);
}

/// A conversation exercising most framing paths, as (client bytes, server bytes).
fn conversation() -> (Vec<u8>, Vec<u8>) {
    let client = [
        &b"GET /one HTTP/1.1\r\nHost: a\r\n\r\n"[..],
        b"POST /two?x=%20 HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2;e\r\nhi\r\n0\r\nT: 1\r\n\r\n",
        b"\r\nHEAD /three HTTP/1.1\r\n\r\n",
        b"PUT /four HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\nabc",
        b"GET /five HTTP/1.0\r\n\r\n",
    ]
    .concat();
    let server = [
        &b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nbody"[..],
        b"HTTP/1.1 201 Created\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n10\r\n0123456789abcdef\r\n0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n",
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n",
        b"HTTP/1.0 200 OK\r\n\r\nuntil close",
    ]
    .concat();
    (client, server)
}

/// Feeds the conversation split at the given points, interleaving sides as told.
fn feed_split(client: &[u8], server: &[u8], cuts: &[usize], order: &[bool]) -> Vec<Transaction> {
    let pieces = |data: &[u8], salt: usize| -> Vec<(usize, usize)> {
        let mut pts: Vec<usize> = cuts.iter().map(|c| (c + salt) % (data.len() + 1)).collect();
        pts.extend([0, data.len()]);
        pts.sort_unstable();
        pts.dedup();
        pts.windows(2).map(|w| (w[0], w[1])).collect()
    };
    let (cp, sp) = (pieces(client, 0), pieces(server, 7));
    let (mut ci, mut si) = (0, 0);
    let mut c = Connection::new();
    let mut k = 0;
    while ci < cp.len() || si < sp.len() {
        let pick_client =
            si >= sp.len() || (ci < cp.len() && order.get(k).copied().unwrap_or(true));
        k += 1;
        if pick_client {
            c.data(C, &client[cp[ci].0..cp[ci].1], 1);
            ci += 1;
        } else {
            c.data(S, &server[sp[si].0..sp[si].1], 2);
            si += 1;
        }
    }
    c.close(S, 3);
    c.finish();
    c.take_transactions()
}

#[test]
fn conversation_whole() {
    let (client, server) = conversation();
    let txs = feed_split(&client, &server, &[], &[true]);
    let got: Vec<_> = txs.iter().map(|t| (summary(t), names(t))).collect();
    assert_eq!(
        got,
        vec![
            ((Some("GET"), Some("/one"), Some(200), 0, 4), vec![]),
            (
                (Some("POST"), Some("/two?x=%20"), Some(201), 2, 17),
                vec!["pipelined"]
            ),
            (
                (Some("HEAD"), Some("/three"), Some(200), 0, 0),
                vec!["pipelined"]
            ),
            (
                (Some("PUT"), Some("/four"), Some(204), 3, 0),
                vec!["informational", "pipelined"]
            ),
            (
                (Some("GET"), Some("/five"), Some(200), 0, 11),
                vec!["pipelined"]
            ),
        ]
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Any segmentation and interleaving of the two directions gives the same
    /// transactions as feeding each direction whole.
    #[test]
    fn segmentation_does_not_matter(
        cuts in proptest::collection::vec(0usize..1000, 0..60),
        order in proptest::collection::vec(any::<bool>(), 0..120),
    ) {
        let (client, server) = conversation();
        let whole = feed_split(&client, &server, &[], &[true]);
        prop_assert_eq!(feed_split(&client, &server, &cuts, &order), whole);
    }

    /// Garbage, gaps and closes in any order never panic; results are sane.
    #[test]
    fn garbage_never_panics(
        ops in proptest::collection::vec(
            (any::<bool>(), 0u8..10, proptest::collection::vec(any::<u8>(), 0..80)), 0..40),
        midstream in any::<bool>(),
    ) {
        let cfg = Config { max_head_bytes: 200, max_deferred_bytes: 300, max_pending: 4, capture_headers: true };
        let mut c = if midstream { Connection::midstream() } else { Connection::with_config(cfg) };
        let words: [&[u8]; 6] = [b"GET / HTTP/1.1\r\n", b"HTTP/1.1 200 OK\r\n", b"Content-Length: 5\r\n",
            b"\r\n", b"Transfer-Encoding: chunked\r\n", b"HTTP/1.1 101 S\r\n"];
        for (ts, (client, op, bytes)) in ops.iter().enumerate() {
            let side = if *client { C } else { S };
            match op {
                0 => c.gap(side, bytes.len() as u64 + 1),
                1 => c.close(side, ts as u64),
                2..=5 => c.data(side, words[usize::from(*op)], ts as u64),
                _ => c.data(side, bytes, ts as u64),
            }
        }
        c.finish();
        for t in c.take_transactions() {
            prop_assert!(t.req_first_ts.is_none() || t.req_last_ts.is_some() || t.flags.contains(Flags::INCOMPLETE));
        }
    }
}

/// Throughput smoke test: `cargo test --release -p l7rec-http -- --ignored --nocapture`.
#[test]
#[ignore = "throughput measurement, not a check: run with --release --ignored"]
fn throughput() {
    for (body, capture_headers) in [(100usize, true), (100, false), (10_000, true)] {
        let req = b"GET /api/v1/items?id=12345&x=y HTTP/1.1\r\nHost: example.com\r\nUser-Agent: curl/8\r\nAccept: */*\r\n\r\n";
        let mut resp = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nServer: nginx\r\nContent-Length: {body}\r\n\r\n"
        )
        .into_bytes();
        resp.resize(resp.len() + body, b'x');
        let n = 20_000;
        let start = std::time::Instant::now();
        let mut c = Connection::with_config(Config {
            capture_headers,
            ..Config::default()
        });
        let mut count = 0;
        for i in 0..n {
            c.data(C, req, i);
            for seg in resp.chunks(1448) {
                c.data(S, seg, i);
            }
            count += c.take_transactions().len();
        }
        let secs = start.elapsed().as_secs_f64();
        let bytes = (n as usize * (req.len() + resp.len())) as f64;
        assert_eq!(count, n as usize);
        println!(
            "body {body}, headers {capture_headers}: {:.0} MB/s, {:.0} tx/s",
            bytes / secs / 1e6,
            n as f64 / secs
        );
    }
}

/// Feeds both sides (one data call each, or byte by byte), then finishes; returns
/// `saw_start_line` and the number of transactions.
fn start_line_seen(mut c: Connection, steps: &[(Side, &[u8])], bytewise: bool) -> (bool, usize) {
    for (i, (side, bytes)) in steps.iter().enumerate() {
        let n = if bytewise { 1 } else { bytes.len().max(1) };
        for b in bytes.chunks(n) {
            c.data(*side, b, 10 * (i as u64 + 1));
        }
    }
    c.finish();
    (c.saw_start_line(), c.take_transactions().len())
}

/// Other TCP protocols never parse as a start line, though the parser still reports
/// their first message as `malformed`: the caller must be able to tell them apart.
#[test]
fn non_http_protocols_show_no_start_line() {
    let binary: Vec<u8> = (0..=255u8).rev().cycle().take(600).collect();
    let cases: [&[(Side, &[u8])]; 7] = [
        &[
            (S, b"SSH-2.0-OpenSSH_9.2p1\r\n"),
            (C, b"SSH-2.0-OpenSSH_9.2p1\r\n"),
            (C, &binary),
            (S, &binary),
        ],
        &[(C, b"*1\r\n$4\r\nPING\r\n"), (S, b"+PONG\r\n")],
        &[
            (S, b"220 mail.example ESMTP\r\n"),
            (C, b"EHLO x\r\n"),
            (S, b"250 ok\r\n"),
            (C, b"QUIT\r\n"),
            (S, b"221 bye\r\n"),
        ],
        &[(C, &binary[..100]), (S, &binary[100..200])],
        &[(C, b"\x00\x00\x00\x08\x04\xd2\x16\x2f"), (S, b"N")],
        &[(S, b"J\x00\x00\x00\x0a8.0.33\x00rest"), (C, &binary[..60])],
        // HTTP/2 prior knowledge is not HTTP/1.x.
        &[(C, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")],
    ];
    for (i, steps) in cases.iter().enumerate() {
        for bytewise in [false, true] {
            let (seen, n) = start_line_seen(Connection::new(), steps, bytewise);
            assert!(!seen, "case {i} bytewise={bytewise}: {n} transactions");
            let (seen, _) = start_line_seen(Connection::midstream(), steps, bytewise);
            assert!(!seen, "case {i} midstream bytewise={bytewise}");
        }
    }
}

/// Damaged HTTP still shows a start line: malformed headers or framing, a head cut
/// by a gap or by the end, a server answering garbage, a midstream capture.
#[test]
fn damaged_http_shows_a_start_line() {
    let cases: [&[(Side, &[u8])]; 6] = [
        &[(C, b"GET / HTTP/1.1\r\nContent-Length: x\r\n\r\n")],
        &[(
            C,
            b"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        )],
        &[(C, b"GET /cut HTTP/1.1\r\nHost: h\r\n")],
        &[
            (C, b"\x16garbage\r\n\r\n"),
            (S, b"HTTP/1.1 400 Bad Request\r\n\r\n"),
        ],
        &[(S, b"HTTP/1.1 200 OK\r\nBad header\r\n\r\n")],
        &[
            (C, b"GET /a HTTP/1.1\r\n"),
            (S, b"HTTP/1.1 200 OK\r\nContent-Len"),
        ],
    ];
    for (i, steps) in cases.iter().enumerate() {
        for bytewise in [false, true] {
            let (seen, n) = start_line_seen(Connection::new(), steps, bytewise);
            assert!(
                seen && n > 0,
                "case {i} bytewise={bytewise}: {n} transactions"
            );
        }
    }
    // A head whose start line is complete, then a gap.
    let mut c = Connection::new();
    c.data(C, b"GET /g HTTP/1.1\r\nHo", 1);
    c.gap(C, 100);
    assert!(c.saw_start_line());
    // Midstream: the tail of a body, then the next request.
    let steps: &[(Side, &[u8])] = &[
        (S, b"tail of a body\r\n"),
        (C, b"GET /next HTTP/1.1\r\n\r\n"),
    ];
    assert!(start_line_seen(Connection::midstream(), steps, false).0);
    // Midstream with only the tail of a body: nothing to go by yet.
    assert!(!start_line_seen(Connection::midstream(), &steps[..1], false).0);
}

/// Body bytes are counted whatever ends the message: its length, a gap inside or
/// past it, a close, the end of the capture, an upgrade.
#[test]
fn body_bytes_whatever_ends_the_message() {
    // Cut short by the end of the capture, on both sides.
    let mut c = Connection::new();
    c.data(C, b"POST /a HTTP/1.1\r\nContent-Length: 10\r\n\r\nabcd", 1);
    c.data(S, b"HTTP/1.1 200 OK\r\nContent-Length: 20\r\n\r\n", 2);
    c.data(S, b"0123456", 3);
    c.finish();
    let txs = c.take_transactions();
    assert_eq!(
        summary(&txs[0]),
        (Some("POST"), Some("/a"), Some(200), 4, 7)
    );
    assert!(
        names(&txs[0]).contains(&"incomplete"),
        "{:?}",
        names(&txs[0])
    );

    // Gaps within a body, at its end, and past it.
    let mut c = Connection::new();
    c.data(C, b"GET /b HTTP/1.1\r\n\r\n", 1);
    c.data(S, b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nab", 2);
    c.gap(S, 3);
    c.data(S, b"cd", 3);
    c.gap(S, 3); // exactly the rest
    c.data(C, b"GET /c HTTP/1.1\r\n\r\n", 4);
    c.data(S, b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nxy", 5);
    c.gap(S, 100); // past the body
    c.finish();
    let txs = c.take_transactions();
    let got: Vec<_> = txs.iter().map(summary).collect();
    assert_eq!(
        got,
        [
            (Some("GET"), Some("/b"), Some(200), 0, 10),
            (Some("GET"), Some("/c"), Some(200), 0, 5)
        ]
    );

    // A request body still arriving when the response upgrades the connection.
    let mut c = Connection::new();
    c.data(C, b"POST /d HTTP/1.1\r\nContent-Length: 8\r\n\r\nhalf", 1);
    c.data(
        S,
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n",
        2,
    );
    c.data(C, b"more", 3);
    c.finish();
    let txs = c.take_transactions();
    assert_eq!(
        summary(&txs[0]),
        (Some("POST"), Some("/d"), Some(101), 4, 0)
    );
}
