//! Process and connection records that come later in the file than the packets they
//! describe still attribute them.
//!
//! The recorder writes records in blocks (up to 512 at a time, or when it is idle), so
//! under load a short connection can open, carry a request and close in the file before
//! its connection records appear. Here connection A's records follow its last packet
//! by 3 MiB of another connection's response: more than a processing round of the
//! analyzer (whose transactions used to be attributed with the records read so far),
//! less than the lag it allows for.

// Only the frame builders: this capture is a pcapng, not a legacy pcap.
#[allow(dead_code)]
mod common;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use common::connection_frames;
use l7rec_analyzer::{analyze, Options};
use l7rec_capture::{
    linktype, CaptureWriter, Compression, ConnectionInfo, Interface, PacketOut, ProcessInfo,
    Record, Role, WriterOptions,
};

const CLIENT: [u8; 4] = [10, 3, 0, 1];
const SERVER: [u8; 4] = [10, 3, 0, 2];
const CLIENT_PID: u32 = 4321;
const SERVER_PID: u32 = 1234;
/// Bytes of connection B's response between A's end and A's records.
const FILLER: usize = 3 << 20;
const MSS: usize = 1400;

fn addr(ip: [u8; 4], port: u16) -> SocketAddr {
    SocketAddr::new(IpAddr::V4(Ipv4Addr::from(ip)), port)
}

/// Writes frames and records to a pcapng, 10 µs apart.
struct Capture {
    w: CaptureWriter<Vec<u8>>,
    ts: u64,
}

impl Capture {
    fn frame(&mut self, frame: Vec<u8>) {
        self.ts += 10_000;
        self.w
            .write_packet(&PacketOut {
                interface_id: 0,
                ts_ns: self.ts,
                data: &frame,
                orig_len: frame.len() as u32,
                ..Default::default()
            })
            .expect("packet written");
    }

    /// A whole connection from `cport` to port 80: handshake, `request`, `response`
    /// (sent in MSS-sized segments), FINs.
    fn connection(&mut self, cport: u16, request: &[u8], response: &[u8]) {
        for frame in connection_frames((CLIENT, cport), (SERVER, 80), request, response, MSS) {
            self.frame(frame);
        }
    }

    /// The client's and the server's records of the connection from `cport`.
    fn connection_records(&mut self, cport: u16, open_ns: u64) {
        let (client, server) = (addr(CLIENT, cport), addr(SERVER, 80));
        let record = |pid, role, local, remote| {
            Record::Connection(ConnectionInfo {
                pid,
                fd: 7,
                netns: 0,
                role,
                local,
                remote,
                open_ns,
                close_ns: self.ts,
            })
        };
        let records = [
            record(CLIENT_PID, Role::Client, client, server),
            record(SERVER_PID, Role::Server, server, client),
        ];
        self.w.write_records(&records).expect("records written");
    }
}

fn process(pid: u32, comm: &str) -> Record {
    Record::Process(ProcessInfo {
        pid,
        ppid: 1,
        start_time_ns: 0,
        comm: comm.into(),
        exe: format!("/usr/bin/{comm}"),
        cmdline: vec![comm.into()],
    })
}

/// A's records come after B's whole 3 MiB response; B's records come first.
fn capture() -> Vec<u8> {
    let opts = WriterOptions {
        compression: Compression::Zstd { level: 1 },
        ..Default::default()
    };
    let mut w = CaptureWriter::new(Vec::new(), &opts).expect("writer");
    w.add_interface(&Interface {
        name: "eth0".into(),
        description: None,
        linktype: linktype::ETHERNET,
        snaplen: 262_144,
    })
    .expect("interface");
    w.write_records(&[process(CLIENT_PID, "curl"), process(SERVER_PID, "nginx")])
        .expect("records");
    let mut cap = Capture {
        w,
        ts: 1_700_000_000_000_000_000,
    };
    let a_open = cap.ts;
    let small = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    cap.connection(40001, b"GET /a HTTP/1.1\r\nHost: t\r\n\r\n", small);
    let b_open = cap.ts;
    cap.connection_records(40002, b_open);
    let mut big = format!("HTTP/1.1 200 OK\r\nContent-Length: {FILLER}\r\n\r\n").into_bytes();
    big.resize(big.len() + FILLER, b'x');
    cap.connection(40002, b"GET /b HTTP/1.1\r\nHost: t\r\n\r\n", &big);
    cap.connection_records(40001, a_open);
    cap.w.finish().expect("finished")
}

#[test]
fn records_after_the_packets_still_attribute_them() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("trailing.pcapng.zst");
    std::fs::write(&path, capture()).expect("capture written");
    for threads in [1, 2, 3] {
        let opts = Options {
            threads: Some(threads),
            ..Default::default()
        };
        let a = analyze(&[&path], &opts, &|_, _| {}).expect("analyzed");
        let mut uris: Vec<_> = a.transactions.iter().map(|t| t.uri.clone()).collect();
        uris.sort();
        assert_eq!(
            uris,
            [Some("/a".into()), Some("/b".into())],
            "{threads} threads"
        );
        for t in &a.transactions {
            let who = |p: &Option<l7rec_analyzer::ProcessRef>| {
                p.as_ref()
                    .map(|p| (p.pid, p.comm.as_deref().map(str::to_owned)))
            };
            assert_eq!(
                who(&t.client_process),
                Some((CLIENT_PID, Some("curl".into()))),
                "client of {:?}, {threads} threads",
                t.uri
            );
            assert_eq!(
                who(&t.server_process),
                Some((SERVER_PID, Some("nginx".into()))),
                "server of {:?}, {threads} threads",
                t.uri
            );
        }
    }
}
