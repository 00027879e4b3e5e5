//! l7rec metadata records: the payload of l7rec's pcapng Custom Blocks.
//!
//! See the crate documentation for the byte layout. Everything here is little-endian,
//! independent of the pcapng section's byte order.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use thiserror::Error;

/// Version of the record encoding written by this crate. Readers accept any version
/// with the same major meaning: new record kinds and fields appended to a body are
/// backwards compatible (readers skip unknown kinds and ignore trailing body bytes).
pub const RECORD_FORMAT_VERSION: u16 = 1;

/// Wire kind of [`ProcessInfo`].
pub const KIND_PROCESS: u16 = 1;
/// Wire kind of [`ConnectionInfo`].
pub const KIND_CONNECTION: u16 = 2;
/// Wire kind of [`SyscallEvent`].
pub const KIND_SYSCALL: u16 = 3;
/// Wire kind of [`RecorderStats`].
pub const KIND_STATS: u16 = 4;

/// One metadata record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    /// A process seen by the recorder.
    Process(ProcessInfo),
    /// A TCP connection opened or closed by a process.
    Connection(ConnectionInfo),
    /// One socket system call.
    Syscall(SyscallEvent),
    /// Recorder counters, including drops per source.
    Stats(RecorderStats),
    /// A record of a kind this version does not know (written by a newer l7rec).
    Unknown {
        /// Its wire kind.
        kind: u16,
    },
}

/// A process, described once (on first sight or exec).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProcessInfo {
    /// Process id (thread group id).
    pub pid: u32,
    /// Parent's process id.
    pub ppid: u32,
    /// Process start time, ns since the Unix epoch (0 when unknown).
    pub start_time_ns: u64,
    /// Kernel task name (at most 15 bytes).
    pub comm: String,
    /// Path of the executable (empty when unknown).
    pub exe: String,
    /// Command line arguments, argv\[0\] first.
    pub cmdline: Vec<String>,
}

/// Which end of a connection a process is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Role {
    /// Not known.
    #[default]
    Unknown,
    /// It called connect().
    Client,
    /// It accepted the connection.
    Server,
}

impl Role {
    fn to_wire(self) -> u8 {
        match self {
            Role::Unknown => 0,
            Role::Client => 1,
            Role::Server => 2,
        }
    }
    fn from_wire(v: u8) -> Self {
        match v {
            1 => Role::Client,
            2 => Role::Server,
            _ => Role::Unknown,
        }
    }
}

/// A TCP connection as one process sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionInfo {
    /// Owning process id.
    pub pid: u32,
    /// Socket file descriptor in that process.
    pub fd: u32,
    /// Network namespace inode the socket lives in (0 when unknown).
    pub netns: u32,
    /// Client or server side.
    pub role: Role,
    /// The process's own address.
    pub local: SocketAddr,
    /// The peer's address.
    pub remote: SocketAddr,
    /// When the connection was opened, ns since the Unix epoch (0 when unknown).
    pub open_ns: u64,
    /// When it was closed, ns since the Unix epoch (0 while open or unknown).
    pub close_ns: u64,
}

/// The system call a [`SyscallEvent`] describes. Wire values are stable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyscallOp {
    /// connect(2)
    Connect,
    /// accept(2) / accept4(2)
    Accept,
    /// close(2)
    Close,
    /// read(2)
    Read,
    /// write(2)
    Write,
    /// readv(2)
    Readv,
    /// writev(2)
    Writev,
    /// recvfrom(2) (and recv)
    Recvfrom,
    /// sendto(2) (and send)
    Sendto,
    /// recvmsg(2)
    Recvmsg,
    /// sendmsg(2)
    Sendmsg,
    /// recvmmsg(2)
    Recvmmsg,
    /// sendmmsg(2)
    Sendmmsg,
    /// sendfile(2)
    Sendfile,
    /// A wire value this version does not know.
    Other(u8),
}

impl SyscallOp {
    /// The stable wire value.
    pub fn to_wire(self) -> u8 {
        match self {
            SyscallOp::Connect => 1,
            SyscallOp::Accept => 2,
            SyscallOp::Close => 3,
            SyscallOp::Read => 4,
            SyscallOp::Write => 5,
            SyscallOp::Readv => 6,
            SyscallOp::Writev => 7,
            SyscallOp::Recvfrom => 8,
            SyscallOp::Sendto => 9,
            SyscallOp::Recvmsg => 10,
            SyscallOp::Sendmsg => 11,
            SyscallOp::Recvmmsg => 12,
            SyscallOp::Sendmmsg => 13,
            SyscallOp::Sendfile => 14,
            SyscallOp::Other(v) => v,
        }
    }

    /// Decodes a wire value.
    pub fn from_wire(v: u8) -> Self {
        match v {
            1 => SyscallOp::Connect,
            2 => SyscallOp::Accept,
            3 => SyscallOp::Close,
            4 => SyscallOp::Read,
            5 => SyscallOp::Write,
            6 => SyscallOp::Readv,
            7 => SyscallOp::Writev,
            8 => SyscallOp::Recvfrom,
            9 => SyscallOp::Sendto,
            10 => SyscallOp::Recvmsg,
            11 => SyscallOp::Sendmsg,
            12 => SyscallOp::Recvmmsg,
            13 => SyscallOp::Sendmmsg,
            14 => SyscallOp::Sendfile,
            other => SyscallOp::Other(other),
        }
    }

    /// Whether the call moves data from the peer into the process.
    pub fn is_receive(self) -> bool {
        matches!(
            self,
            SyscallOp::Read
                | SyscallOp::Readv
                | SyscallOp::Recvfrom
                | SyscallOp::Recvmsg
                | SyscallOp::Recvmmsg
        )
    }

    /// Whether the call moves data from the process to the peer.
    pub fn is_send(self) -> bool {
        matches!(
            self,
            SyscallOp::Write
                | SyscallOp::Writev
                | SyscallOp::Sendto
                | SyscallOp::Sendmsg
                | SyscallOp::Sendmmsg
                | SyscallOp::Sendfile
        )
    }
}

/// One system call on a socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyscallEvent {
    /// Which call.
    pub op: SyscallOp,
    /// Process id.
    pub pid: u32,
    /// Thread id.
    pub tid: u32,
    /// Socket file descriptor.
    pub fd: u32,
    /// Entry time, ns since the Unix epoch.
    pub enter_ns: u64,
    /// Return time, ns since the Unix epoch.
    pub exit_ns: u64,
    /// Return value: bytes moved, or a negative errno.
    pub ret: i64,
}

/// Counters of one source of data (an interface, the syscall ring buffer, ...).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SourceStats {
    /// Source name, e.g. `packets:lo` or `syscalls`.
    pub name: String,
    /// Items the source delivered.
    pub received: u64,
    /// Items the source lost (never silently: this is the count).
    pub dropped: u64,
}

/// Recorder statistics at a moment (written periodically and at the end).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RecorderStats {
    /// When the counters were read, ns since the Unix epoch.
    pub ts_ns: u64,
    /// Counters per source; values are totals since recording started.
    pub sources: Vec<SourceStats>,
}

/// Why custom-block data could not be decoded as l7rec records.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RecordError {
    /// The data ends before a field it announces.
    #[error("record data truncated: {0}")]
    Truncated(&'static str),
    /// The record format version is newer than this reader understands.
    #[error("unsupported record format version {0}")]
    Version(u16),
}

// ---- encoding ----

/// Encoded records per custom block at most, about: a block ends after the record
/// that crosses this, so blocks stay small for readers and the zstd stage.
pub const RECORDS_BLOCK_BYTES: usize = 256 << 10;

/// Appends the custom-block data (without PEN) for the first records of `records` to
/// `out`: as many as fit [`RECORDS_BLOCK_BYTES`] and the block's 16-bit count (at
/// least one). Returns how many it took; the caller encodes the rest in more blocks.
pub fn encode_records(records: &[Record], out: &mut Vec<u8>) -> usize {
    let start = out.len();
    out.extend_from_slice(&[0; 4]); // length, patched below
    out.extend_from_slice(&RECORD_FORMAT_VERSION.to_le_bytes());
    let count_at = out.len();
    out.extend_from_slice(&[0; 2]); // count, patched below
    let mut count = 0u16;
    let mut taken = 0;
    for rec in records {
        if count == u16::MAX || (count > 0 && out.len() - start >= RECORDS_BLOCK_BYTES) {
            break;
        }
        taken += 1;
        let (kind, head) = match rec {
            Record::Process(_) => (KIND_PROCESS, out.len()),
            Record::Connection(_) => (KIND_CONNECTION, out.len()),
            Record::Syscall(_) => (KIND_SYSCALL, out.len()),
            Record::Stats(_) => (KIND_STATS, out.len()),
            Record::Unknown { .. } => continue,
        };
        out.extend_from_slice(&kind.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out.extend_from_slice(&[0; 4]);
        let body = out.len();
        match rec {
            Record::Process(p) => {
                put_u32(out, p.pid);
                put_u32(out, p.ppid);
                put_u64(out, p.start_time_ns);
                put_str(out, &p.comm);
                put_str(out, &p.exe);
                put_u16(out, u16::try_from(p.cmdline.len()).unwrap_or(u16::MAX));
                for arg in p.cmdline.iter().take(usize::from(u16::MAX)) {
                    put_str(out, arg);
                }
            }
            Record::Connection(c) => {
                put_u32(out, c.pid);
                put_u32(out, c.fd);
                put_u32(out, c.netns);
                out.push(c.role.to_wire());
                out.push(6); // IPPROTO_TCP
                put_addr(out, c.local);
                put_addr(out, c.remote);
                put_u64(out, c.open_ns);
                put_u64(out, c.close_ns);
            }
            Record::Syscall(s) => {
                out.push(s.op.to_wire());
                out.extend_from_slice(&[0; 3]);
                put_u32(out, s.pid);
                put_u32(out, s.tid);
                put_u32(out, s.fd);
                put_u64(out, s.enter_ns);
                put_u64(out, s.exit_ns);
                out.extend_from_slice(&s.ret.to_le_bytes());
            }
            Record::Stats(st) => {
                put_u64(out, st.ts_ns);
                put_u16(out, u16::try_from(st.sources.len()).unwrap_or(u16::MAX));
                for src in st.sources.iter().take(usize::from(u16::MAX)) {
                    put_str(out, &src.name);
                    put_u64(out, src.received);
                    put_u64(out, src.dropped);
                }
            }
            Record::Unknown { .. } => {}
        }
        let body_len = (out.len() - body) as u32;
        out[head + 4..head + 8].copy_from_slice(&body_len.to_le_bytes());
        count += 1;
    }
    out[count_at..count_at + 2].copy_from_slice(&count.to_le_bytes());
    let len = (out.len() - start - 4) as u32;
    out[start..start + 4].copy_from_slice(&len.to_le_bytes());
    taken
}

fn put_u16(out: &mut Vec<u8>, v: u16) {
    out.extend_from_slice(&v.to_le_bytes());
}
fn put_u32(out: &mut Vec<u8>, v: u32) {
    out.extend_from_slice(&v.to_le_bytes());
}
fn put_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_le_bytes());
}
/// u16 length + UTF-8 bytes, cut at 65535 bytes on a char boundary.
fn put_str(out: &mut Vec<u8>, s: &str) {
    let mut end = s.len().min(usize::from(u16::MAX));
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    put_u16(out, end as u16);
    out.extend_from_slice(&s.as_bytes()[..end]);
}
/// u8 family (4 or 6), 16 address bytes (IPv4 in the first 4), u16 port.
fn put_addr(out: &mut Vec<u8>, a: SocketAddr) {
    let mut bytes = [0u8; 16];
    match a.ip() {
        IpAddr::V4(v4) => {
            out.push(4);
            bytes[..4].copy_from_slice(&v4.octets());
        }
        IpAddr::V6(v6) => {
            out.push(6);
            bytes = v6.octets();
        }
    }
    out.extend_from_slice(&bytes);
    put_u16(out, a.port());
}

// ---- decoding ----

/// Decodes custom-block data (without PEN) into records.
pub fn decode_records(data: &[u8]) -> Result<Vec<Record>, RecordError> {
    let mut r = Cursor(data);
    let len = r.u32("data length")? as usize;
    let mut r = Cursor(
        r.0.get(..len)
            .ok_or(RecordError::Truncated("data shorter than its length"))?,
    );
    let version = r.u16("version")?;
    if version == 0 || version > RECORD_FORMAT_VERSION {
        return Err(RecordError::Version(version));
    }
    let count = r.u16("record count")?;
    let mut records = Vec::with_capacity(usize::from(count).min(r.0.len() / 8));
    for _ in 0..count {
        let kind = r.u16("record kind")?;
        let _flags = r.u16("record flags")?;
        let body_len = r.u32("record length")? as usize;
        let mut b = Cursor(r.take(body_len, "record body")?);
        let rec = match kind {
            KIND_PROCESS => Record::Process(ProcessInfo {
                pid: b.u32("pid")?,
                ppid: b.u32("ppid")?,
                start_time_ns: b.u64("start time")?,
                comm: b.str("comm")?,
                exe: b.str("exe")?,
                cmdline: {
                    let argc = b.u16("argc")?;
                    (0..argc)
                        .map(|_| b.str("argument"))
                        .collect::<Result<_, _>>()?
                },
            }),
            KIND_CONNECTION => {
                let pid = b.u32("pid")?;
                let fd = b.u32("fd")?;
                let netns = b.u32("netns")?;
                let role = Role::from_wire(b.u8("role")?);
                let _proto = b.u8("protocol")?;
                Record::Connection(ConnectionInfo {
                    pid,
                    fd,
                    netns,
                    role,
                    local: b.addr()?,
                    remote: b.addr()?,
                    open_ns: b.u64("open time")?,
                    close_ns: b.u64("close time")?,
                })
            }
            KIND_SYSCALL => {
                let op = SyscallOp::from_wire(b.u8("op")?);
                b.take(3, "padding")?;
                Record::Syscall(SyscallEvent {
                    op,
                    pid: b.u32("pid")?,
                    tid: b.u32("tid")?,
                    fd: b.u32("fd")?,
                    enter_ns: b.u64("enter time")?,
                    exit_ns: b.u64("exit time")?,
                    ret: b.u64("return value")? as i64,
                })
            }
            KIND_STATS => {
                let ts_ns = b.u64("timestamp")?;
                let n = b.u16("source count")?;
                let sources = (0..n)
                    .map(|_| {
                        Ok(SourceStats {
                            name: b.str("source name")?,
                            received: b.u64("received")?,
                            dropped: b.u64("dropped")?,
                        })
                    })
                    .collect::<Result<_, RecordError>>()?;
                Record::Stats(RecorderStats { ts_ns, sources })
            }
            kind => Record::Unknown { kind },
        };
        records.push(rec);
    }
    Ok(records)
}

struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], RecordError> {
        if self.0.len() < n {
            return Err(RecordError::Truncated(what));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], RecordError> {
        let mut a = [0u8; N];
        a.copy_from_slice(self.take(N, what)?);
        Ok(a)
    }
    fn u8(&mut self, what: &'static str) -> Result<u8, RecordError> {
        Ok(self.array::<1>(what)?[0])
    }
    fn u16(&mut self, what: &'static str) -> Result<u16, RecordError> {
        self.array(what).map(u16::from_le_bytes)
    }
    fn u32(&mut self, what: &'static str) -> Result<u32, RecordError> {
        self.array(what).map(u32::from_le_bytes)
    }
    fn u64(&mut self, what: &'static str) -> Result<u64, RecordError> {
        self.array(what).map(u64::from_le_bytes)
    }
    fn str(&mut self, what: &'static str) -> Result<String, RecordError> {
        let n = self.u16(what)?;
        Ok(String::from_utf8_lossy(self.take(usize::from(n), what)?).into_owned())
    }
    fn addr(&mut self) -> Result<SocketAddr, RecordError> {
        let family = self.u8("address family")?;
        let bytes: [u8; 16] = self.array("address")?;
        let port = self.u16("port")?;
        let ip = if family == 4 {
            IpAddr::V4(Ipv4Addr::new(bytes[0], bytes[1], bytes[2], bytes[3]))
        } else {
            IpAddr::V6(Ipv6Addr::from(bytes))
        };
        Ok(SocketAddr::new(ip, port))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample() -> Vec<Record> {
        vec![
            Record::Process(ProcessInfo {
                pid: 42,
                ppid: 1,
                start_time_ns: 1_700_000_000_123_456_789,
                comm: "curl".into(),
                exe: "/usr/bin/curl".into(),
                cmdline: vec!["curl".into(), "-s".into(), "http://127.0.0.1/é".into()],
            }),
            Record::Connection(ConnectionInfo {
                pid: 42,
                fd: 5,
                netns: 4026531840,
                role: Role::Client,
                local: "127.0.0.1:40000".parse().unwrap(),
                remote: "[::1]:8080".parse().unwrap(),
                open_ns: 10,
                close_ns: 0,
            }),
            Record::Syscall(SyscallEvent {
                op: SyscallOp::Sendto,
                pid: 42,
                tid: 43,
                fd: 5,
                enter_ns: 100,
                exit_ns: 150,
                ret: -11,
            }),
            Record::Stats(RecorderStats {
                ts_ns: 99,
                sources: vec![SourceStats {
                    name: "packets:lo".into(),
                    received: 1000,
                    dropped: 3,
                }],
            }),
        ]
    }

    #[test]
    fn round_trip_every_kind() {
        let recs = sample();
        let mut buf = Vec::new();
        encode_records(&recs, &mut buf);
        assert_eq!(decode_records(&buf).unwrap(), recs);
    }

    #[test]
    fn large_batches_are_split_and_nothing_is_lost() {
        let sys = |i: u32| {
            Record::Syscall(SyscallEvent {
                op: SyscallOp::from_wire(1),
                pid: i,
                tid: i,
                fd: 3,
                enter_ns: u64::from(i),
                exit_ns: u64::from(i) + 1,
                ret: 0,
            })
        };
        // More than a block's byte budget and more than its 16-bit count.
        let recs: Vec<Record> = (0..70_000).map(sys).collect();
        let mut rest = &recs[..];
        let mut back = Vec::new();
        while !rest.is_empty() {
            let mut buf = Vec::new();
            let n = encode_records(rest, &mut buf);
            assert!(
                n >= 1 && buf.len() < RECORDS_BLOCK_BYTES + 1024,
                "{n} {}",
                buf.len()
            );
            back.extend(decode_records(&buf).unwrap());
            rest = &rest[n..];
        }
        assert_eq!(back, recs);
    }

    #[test]
    fn unknown_kind_is_skipped_by_length() {
        let mut buf = Vec::new();
        encode_records(&sample()[2..3], &mut buf);
        // Rewrite the kind to an unknown one: the reader must skip it, not fail.
        buf[8..10].copy_from_slice(&999u16.to_le_bytes());
        assert_eq!(
            decode_records(&buf).unwrap(),
            vec![Record::Unknown { kind: 999 }]
        );
    }

    #[test]
    fn every_truncation_is_an_error_not_a_panic() {
        let mut buf = Vec::new();
        encode_records(&sample(), &mut buf);
        for cut in 0..buf.len() {
            assert!(decode_records(&buf[..cut]).is_err(), "cut at {cut}");
        }
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = decode_records(&data);
        }

        #[test]
        fn syscall_round_trip(op in any::<u8>(), pid in any::<u32>(), tid in any::<u32>(), fd in any::<u32>(),
                              enter in any::<u64>(), exit in any::<u64>(), ret in any::<i64>()) {
            let recs = vec![Record::Syscall(SyscallEvent { op: SyscallOp::from_wire(op), pid, tid, fd, enter_ns: enter, exit_ns: exit, ret })];
            let mut buf = Vec::new();
            encode_records(&recs, &mut buf);
            prop_assert_eq!(decode_records(&buf).unwrap(), recs);
        }

        #[test]
        fn process_round_trip(pid in any::<u32>(), comm in ".{0,15}", exe in ".{0,64}", args in proptest::collection::vec(".{0,20}", 0..5)) {
            let recs = vec![Record::Process(ProcessInfo { pid, ppid: 1, start_time_ns: 5, comm, exe, cmdline: args })];
            let mut buf = Vec::new();
            encode_records(&recs, &mut buf);
            prop_assert_eq!(decode_records(&buf).unwrap(), recs);
        }
    }
}
