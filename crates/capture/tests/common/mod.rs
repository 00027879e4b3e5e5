//! A sample capture exercising every block and record type, shared by the tests.

#![allow(dead_code)]

use std::io::Write;

use l7rec_capture::*;

/// One packet as the sample writes it, or as a reader returned it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SamplePacket {
    pub interface_id: u32,
    pub ts_ns: u64,
    pub data: Vec<u8>,
    pub orig_len: u32,
    pub direction: Direction,
    pub process: Option<(u32, u32)>,
    pub comment: Option<String>,
}

impl SamplePacket {
    /// An owned copy of what a reader returned.
    pub fn of(p: &Packet<'_>) -> Self {
        SamplePacket {
            interface_id: p.interface_id,
            ts_ns: p.ts_ns,
            data: p.data.to_vec(),
            orig_len: p.orig_len,
            direction: p.direction,
            process: p.process,
            comment: p.comment.map(str::to_owned),
        }
    }
}

/// Minimal Ethernet + IPv4 + TCP frame with `payload`.
pub fn tcp_frame(sport: u16, dport: u16, seq: u32, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![0u8; 12];
    f.extend_from_slice(&[0x08, 0x00]);
    let total = (20 + 20 + payload.len()) as u16;
    f.extend_from_slice(&[
        0x45,
        0,
        (total >> 8) as u8,
        total as u8,
        0,
        0,
        0x40,
        0,
        64,
        6,
        0,
        0,
    ]);
    f.extend_from_slice(&[127, 0, 0, 1, 127, 0, 0, 1]);
    f.extend_from_slice(&sport.to_be_bytes());
    f.extend_from_slice(&dport.to_be_bytes());
    f.extend_from_slice(&seq.to_be_bytes());
    f.extend_from_slice(&0u32.to_be_bytes());
    f.extend_from_slice(&[0x50, 0x18, 0xff, 0xff, 0, 0, 0, 0]);
    f.extend_from_slice(payload);
    f
}

pub fn packets() -> Vec<SamplePacket> {
    (0..20u32)
        .map(|i| {
            let payload = format!("GET /item/{i} HTTP/1.1\r\nHost: example\r\n\r\n");
            SamplePacket {
                interface_id: i % 2,
                // Distinct nanosecond digits, so a µs-rounding reader would be caught.
                ts_ns: 1_764_000_000_000_000_000 + u64::from(i) * 1_000_123_457,
                data: tcp_frame(40000 + i as u16, 80, i * 1000, payload.as_bytes()),
                orig_len: 0,
                direction: if i % 3 == 0 {
                    Direction::Inbound
                } else {
                    Direction::Outbound
                },
                process: (i % 2 == 0).then_some((1000 + i, 2000 + i)),
                comment: (i % 4 == 0).then(|| format!("pid={} comm=curl", 1000 + i)),
            }
        })
        .collect()
}

pub fn records() -> Vec<Vec<Record>> {
    vec![
        vec![Record::Process(ProcessInfo {
            pid: 1000,
            ppid: 1,
            start_time_ns: 1_764_000_000_000_000_001,
            comm: "curl".into(),
            exe: "/usr/bin/curl".into(),
            cmdline: vec!["curl".into(), "http://127.0.0.1/".into()],
        })],
        vec![
            Record::Connection(ConnectionInfo {
                pid: 1000,
                fd: 5,
                netns: 4026531840,
                role: Role::Client,
                local: "127.0.0.1:40000".parse().unwrap(),
                remote: "127.0.0.1:80".parse().unwrap(),
                open_ns: 1_764_000_000_000_000_002,
                close_ns: 0,
            }),
            Record::Syscall(SyscallEvent {
                op: SyscallOp::Sendto,
                pid: 1000,
                tid: 1000,
                fd: 5,
                enter_ns: 1_764_000_000_000_000_003,
                exit_ns: 1_764_000_000_000_000_004,
                ret: 40,
            }),
        ],
        vec![Record::Stats(RecorderStats {
            ts_ns: 1_764_000_000_000_000_005,
            sources: vec![SourceStats {
                name: "packets:lo".into(),
                received: 20,
                dropped: 0,
            }],
        })],
    ]
}

pub fn interfaces() -> Vec<Interface> {
    vec![
        Interface {
            name: "lo".into(),
            description: Some("loopback".into()),
            linktype: linktype::ETHERNET,
            snaplen: 262144,
        },
        Interface {
            name: "eth0".into(),
            description: None,
            linktype: linktype::ETHERNET,
            snaplen: 65535,
        },
    ]
}

pub fn stats() -> InterfaceStats {
    InterfaceStats {
        interface_id: 0,
        ts_ns: 1_764_000_100_000_000_000,
        start_ns: Some(1_764_000_000_000_000_000),
        end_ns: Some(1_764_000_100_000_000_000),
        if_recv: Some(20),
        if_drop: Some(0),
        filter_accept: Some(10),
        os_drop: Some(1),
        usr_deliv: Some(10),
    }
}

/// A `Write` whose bytes stay reachable after its writer is forgotten.
#[derive(Clone, Default)]
pub struct SharedBuf(pub std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl Write for SharedBuf {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Writes the sample: interfaces, then records interleaved with packets (flushed every
/// 10 packets), then stats.
/// With `finish == false` the writer is flushed, then forgotten like a killed process.
pub fn write_sample(compression: Compression, finish: bool) -> Vec<u8> {
    let out = SharedBuf::default();
    let opts = WriterOptions {
        compression,
        hardware: Some("test".into()),
        os: Some("Linux".into()),
        ..Default::default()
    };
    let mut w = CaptureWriter::new(out.clone(), &opts).unwrap();
    for i in interfaces() {
        w.add_interface(&i).unwrap();
    }
    let recs = records();
    for (i, p) in packets().iter().enumerate() {
        if i % 7 == 0 {
            w.write_records(&recs[(i / 7) % recs.len()]).unwrap();
        }
        w.write_packet(&PacketOut {
            interface_id: p.interface_id,
            ts_ns: p.ts_ns,
            data: &p.data,
            orig_len: p.orig_len,
            direction: p.direction,
            process: p.process,
            comment: p.comment.as_deref(),
        })
        .unwrap();
        // Each flush ends a zstd frame: readers must follow several.
        if i % 10 == 9 {
            w.flush().unwrap();
        }
    }
    w.write_interface_stats(&stats()).unwrap();
    if finish {
        w.finish().unwrap();
    } else {
        w.flush().unwrap();
        std::mem::forget(w);
    }
    let bytes = out.0.lock().unwrap().clone();
    bytes
}

/// What a reader produced: packets as owned copies, records, stats, and the error.
#[derive(Default, Debug)]
pub struct ReadBack {
    pub packets: Vec<SamplePacket>,
    pub records: Vec<Record>,
    pub stats: Vec<InterfaceStats>,
    pub error: Option<String>,
}

pub fn read_all(bytes: Vec<u8>) -> ReadBack {
    read_from(std::io::Cursor::new(bytes), false)
}

/// Everything `input` yields, read directly or with a read-ahead thread.
pub fn read_from(input: impl std::io::Read + Send + 'static, read_ahead: bool) -> ReadBack {
    let mut out = ReadBack::default();
    let opened = if read_ahead {
        CaptureReader::with_read_ahead(input)
    } else {
        CaptureReader::new(input)
    };
    let mut r = match opened {
        Ok(r) => r,
        Err(e) => {
            out.error = Some(e.to_string());
            return out;
        }
    };
    while let Some(ev) = r.next_event() {
        match ev {
            Ok(Event::Packet(p)) => out.packets.push(SamplePacket::of(&p)),
            Ok(Event::Records(r)) => out.records.extend(r),
            Ok(Event::BadRecords { offset, error }) => {
                out.error = Some(format!("bad records at {offset}: {error}"))
            }
            Ok(Event::InterfaceStats(s)) => out.stats.push(s),
            Err(e) => out.error = Some(e.to_string()),
        }
    }
    out
}
