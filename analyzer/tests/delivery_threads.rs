//! Transactions reach the sink in the same batches and order whatever the number of
//! threads, even when the sink is slow enough that the parsing thread takes turns
//! delivering with the processing thread (two threads).

mod common;

use std::collections::HashSet;
use std::io;
use std::time::Duration;

use common::{connection_frames, NsPcap};
use l7rec_analyzer::{analyze_with, Options};

const CLIENT: [u8; 4] = [10, 4, 0, 1];
const SERVER: [u8; 4] = [10, 4, 0, 2];
const CONNECTIONS: u16 = 1500;
/// Response body per connection: 1500 × 20 kB = 30 MB of payload, some 30 of the
/// analyzer's rounds, well past the 8 MiB that finished transactions wait for
/// records that may trail them.
const BODY: usize = 20_000;
const MSS: usize = 1400;

/// Connections one after the other, each a request for `/<i>` and a 20 kB response.
fn capture() -> Vec<u8> {
    let mut pcap = NsPcap::new();
    let mut response = format!("HTTP/1.1 200 OK\r\nContent-Length: {BODY}\r\n\r\n").into_bytes();
    response.resize(response.len() + BODY, b'x');
    for i in 0..CONNECTIONS {
        let request = format!("GET /{i} HTTP/1.1\r\nHost: t\r\n\r\n");
        let frames = connection_frames(
            (CLIENT, 1024 + i),
            (SERVER, 80),
            request.as_bytes(),
            &response,
            MSS,
        );
        for frame in frames {
            pcap.push(frame);
        }
    }
    pcap.bytes
}

/// The request targets in the order the sink got them, the batch sizes, and how many
/// threads called the sink.
fn deliveries(
    path: &std::path::Path,
    threads: usize,
    pause: Duration,
) -> (Vec<String>, Vec<usize>, usize) {
    let opts = Options {
        threads: Some(threads),
        ..Options::default()
    };
    let (mut uris, mut batches, mut callers) = (Vec::new(), Vec::new(), HashSet::new());
    analyze_with(&[path], &opts, &|_, _| {}, &mut |batch| {
        callers.insert(std::thread::current().id());
        batches.push(batch.len());
        uris.extend(batch.iter().map(|t| t.uri.clone().unwrap_or_default()));
        std::thread::sleep(pause);
        io::Result::Ok(())
    })
    .expect("analyzed");
    (uris, batches, callers.len())
}

#[test]
fn every_thread_count_delivers_the_same_batches_in_the_same_order() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("many.pcap");
    std::fs::write(&path, capture()).expect("capture written");

    let (uris, batches, _) = deliveries(&path, 1, Duration::ZERO);
    let expected: Vec<String> = (0..CONNECTIONS).map(|i| format!("/{i}")).collect();
    assert_eq!(
        uris, expected,
        "one thread: every request once, in capture order"
    );
    assert!(
        batches.len() > 10,
        "only {} batches: too few to test",
        batches.len()
    );

    for (threads, pause) in [
        (2, Duration::ZERO),
        (2, Duration::from_millis(2)),
        (3, Duration::ZERO),
    ] {
        let (got, got_batches, callers) = deliveries(&path, threads, pause);
        assert_eq!(got, uris, "{threads} threads, sink pausing {pause:?}");
        assert_eq!(
            got_batches, batches,
            "{threads} threads, sink pausing {pause:?}"
        );
        eprintln!(
            "{threads} threads, sink pausing {pause:?}: sink called from {callers} thread(s)"
        );
    }
}
