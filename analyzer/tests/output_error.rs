//! An output that fails (a closed pipe: `l7rec analyze big.pcap | head`) ends the
//! analysis promptly with that error, whatever the thread count; it used to leave the
//! multi-threaded pipeline's reader blocked on a full channel, and the analysis hung.

use std::io::{self, BufWriter, Write};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use etherparse::PacketBuilder;
use l7rec_analyzer::{analyze_with, AnalyzeError, Options};

/// A nanosecond pcap of `conns` short HTTP/1.1 connections, one after the other: a
/// request, a response without body, both FINs. 4 segments per connection, so the
/// file spans many of the pipeline's rounds (16 Ki segments each).
fn write_many_connections(path: &Path, conns: u32) -> io::Result<()> {
    let mut out = BufWriter::new(std::fs::File::create(path)?);
    out.write_all(&0xa1b2_3c4du32.to_le_bytes())?;
    out.write_all(&2u16.to_le_bytes())?;
    out.write_all(&4u16.to_le_bytes())?;
    for v in [0u32, 0, 262_144, 1] {
        out.write_all(&v.to_le_bytes())?;
    }
    let (client, server) = (Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2));
    let request = b"GET /x HTTP/1.1\r\nHost: t\r\n\r\n";
    let response = b"HTTP/1.1 204 No Content\r\n\r\n";
    let mut ts = 1_000_000_000u64;
    let mut frame = Vec::new();
    for i in 0..conns {
        let port = 1024 + (i % 60_000) as u16;
        let (cseq, sseq) = (i.wrapping_mul(7919), i.wrapping_mul(104_729));
        let (creq_end, sresp_end) = (cseq + request.len() as u32, sseq + response.len() as u32);
        // (from client, seq, ack, fin, payload)
        let segments: [(bool, u32, u32, bool, &[u8]); 4] = [
            (true, cseq, sseq, false, request),
            (false, sseq, creq_end, false, response),
            (true, creq_end, sresp_end, true, b""),
            (false, sresp_end, creq_end + 1, true, b""),
        ];
        for (from_client, seq, ack, fin, payload) in segments {
            let (src, sport, dst, dport) = if from_client {
                (client, port, server, 80)
            } else {
                (server, 80, client, port)
            };
            let b = PacketBuilder::ethernet2([2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2])
                .ipv4(src.octets(), dst.octets(), 64)
                .tcp(sport, dport, seq, 65_535)
                .ack(ack);
            let b = if fin { b.fin() } else { b.psh() };
            frame.clear();
            b.write(&mut frame, payload).map_err(io::Error::other)?;
            let len = frame.len() as u32;
            for v in [
                (ts / 1_000_000_000) as u32,
                (ts % 1_000_000_000) as u32,
                len,
                len,
            ] {
                out.write_all(&v.to_le_bytes())?;
            }
            out.write_all(&frame)?;
            ts += 10_000;
        }
    }
    out.flush()
}

/// Runs the analysis on its own thread with an output that always fails; its result,
/// or `None` if it did not end within the deadline.
fn analyze_into_closed_pipe(path: PathBuf, threads: usize) -> Option<Result<(), AnalyzeError>> {
    let (done_tx, done_rx) = mpsc::channel();
    std::thread::spawn(move || {
        let opts = Options {
            threads: Some(threads),
            ..Options::default()
        };
        let result = analyze_with(&[path], &opts, &|_, _| {}, &mut |_batch| {
            Err(io::Error::from(io::ErrorKind::BrokenPipe))
        });
        let _ = done_tx.send(result.map(drop));
    });
    done_rx.recv_timeout(Duration::from_secs(60)).ok()
}

#[test]
fn failing_output_ends_the_analysis_with_its_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("many.pcap");
    // 100 000 connections: 400 000 segments, about 25 rounds.
    write_many_connections(&path, 100_000).expect("write the capture");
    // Compressed, it goes through other thread layouts (the parser decompresses).
    let zst = dir.path().join("many.pcap.zst");
    let plain = std::fs::read(&path).expect("read the capture");
    std::fs::write(&zst, zstd::encode_all(&plain[..], 1).expect("compress")).expect("write");
    for file in [path, zst] {
        for threads in [1, 2, 3] {
            let what = format!("{}, --threads {threads}", file.display());
            match analyze_into_closed_pipe(file.clone(), threads) {
                None => panic!("{what}: the analysis hung on a failing output"),
                Some(Ok(())) => panic!("{what}: the output error was lost"),
                Some(Err(AnalyzeError::Output { source })) => {
                    assert_eq!(source.kind(), io::ErrorKind::BrokenPipe, "{what}")
                }
                Some(Err(e)) => panic!("{what}: unexpected error {e}"),
            }
        }
    }
}
