//! Turns syscall-tracer events into capture records, and remembers which process
//! owns which connection so packets can be annotated with it.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use foldhash::{HashMap, HashSet};
use l7rec_capture as cap;

use crate::syscalls::{self, IoOp, SyscallEvent, SyscallInfo};

/// How long a closed socket's owner is remembered: its FIN/ACK packets arrive after
/// close() returned.
const CLOSED_GRACE: Duration = Duration::from_secs(5);

/// Owner of one end of a connection.
#[derive(Debug, Clone)]
pub struct Owner {
    /// Process id.
    pub pid: u32,
    /// Thread id of the last call seen.
    pub tid: u32,
    /// Packet comment naming the process, `pid=… comm=…`: made once per connection,
    /// not per packet.
    pub comment: String,
    closed_at: Option<Instant>,
}

/// Local and remote address of a socket, canonical (see [`canonical`]).
type SockKey = (SocketAddr, SocketAddr);

/// Converts events to records and tracks socket owners.
#[derive(Default)]
pub struct Metadata {
    /// (local, remote) → owner. foldhash, not std's SipHash: that was the recorder's
    /// largest cost after compression; foldhash is seeded per map.
    owners: HashMap<SockKey, Owner>,
    /// Sockets already described by a connection record: (pid, fd, local, remote).
    described: HashSet<(u32, i32, SocketAddr, SocketAddr)>,
    /// Records waiting to be written.
    pending: Vec<cap::Record>,
    /// Events turned into records so far.
    pub events: u64,
}

/// IPv4-mapped IPv6 addresses (dual-stack sockets) as plain IPv4, as packets show them.
fn canonical(a: SocketAddr) -> SocketAddr {
    SocketAddr::new(a.ip().to_canonical(), a.port())
}

fn role(r: syscalls::Role) -> cap::Role {
    match r {
        syscalls::Role::Client => cap::Role::Client,
        syscalls::Role::Server => cap::Role::Server,
        syscalls::Role::Unknown => cap::Role::Unknown,
    }
}

fn op(o: IoOp) -> cap::SyscallOp {
    match o {
        IoOp::Read => cap::SyscallOp::Read,
        IoOp::Write => cap::SyscallOp::Write,
        IoOp::Readv => cap::SyscallOp::Readv,
        IoOp::Writev => cap::SyscallOp::Writev,
        IoOp::Recvfrom => cap::SyscallOp::Recvfrom,
        IoOp::Sendto => cap::SyscallOp::Sendto,
        IoOp::Recvmsg => cap::SyscallOp::Recvmsg,
        IoOp::Sendmsg => cap::SyscallOp::Sendmsg,
        IoOp::Recvmmsg => cap::SyscallOp::Recvmmsg,
        IoOp::Sendmmsg => cap::SyscallOp::Sendmmsg,
        IoOp::Sendfile => cap::SyscallOp::Sendfile,
    }
}

impl Metadata {
    /// Records one tracer event.
    pub fn event(&mut self, ev: SyscallEvent) {
        self.events += 1;
        match ev {
            SyscallEvent::Process(p) => self.pending.push(cap::Record::Process(cap::ProcessInfo {
                pid: p.pid,
                ppid: p.ppid,
                start_time_ns: p.start_ns,
                comm: p.comm,
                exe: p
                    .exe
                    .map(|e| e.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                cmdline: p
                    .cmdline
                    .iter()
                    .map(|a| a.to_string_lossy().into_owned())
                    .collect(),
            })),
            SyscallEvent::Connect { call } | SyscallEvent::Accept { call, .. } => {
                self.describe(&call, call.exit_ns, 0);
                self.syscall(
                    &call,
                    match call.role {
                        syscalls::Role::Server => cap::SyscallOp::Accept,
                        _ => cap::SyscallOp::Connect,
                    },
                );
            }
            SyscallEvent::Close { call } => {
                self.closed(&call);
                self.syscall(&call, cap::SyscallOp::Close);
            }
            // Connections mode's close: the same connection record, no syscall record.
            SyscallEvent::Ended { call } => self.closed(&call),
            SyscallEvent::Seen { call, .. } => {
                // Connections mode: who uses the socket is all there is to record.
                let key = self.key(&call);
                if !self.described.contains(&(call.pid, call.fd, key.0, key.1)) {
                    self.describe_key(&call, key, call.enter_ns, 0);
                }
            }
            SyscallEvent::Io { op: o, call, .. } => {
                // A connection opened before recording started: described on first use.
                let key = self.key(&call);
                if !self.described.contains(&(call.pid, call.fd, key.0, key.1)) {
                    self.describe_key(&call, key, 0, 0);
                } else if let Some(owner) = self.owners.get_mut(&key) {
                    owner.tid = call.tid;
                }
                self.syscall(&call, op(o));
            }
        }
    }

    /// A connection closed: records its close time, keeps its owner a little longer
    /// (for the last packets).
    fn closed(&mut self, call: &SyscallInfo) {
        let key = self.key(call);
        if let Some(o) = self.owners.get_mut(&key) {
            o.closed_at = Some(Instant::now());
        }
        self.connection_record(call, 0, call.exit_ns);
        self.described.remove(&(call.pid, call.fd, key.0, key.1));
    }

    fn key(&self, call: &SyscallInfo) -> SockKey {
        (canonical(call.socket.local), canonical(call.socket.remote))
    }

    /// Writes a connection record for a newly seen socket and remembers its owner.
    fn describe(&mut self, call: &SyscallInfo, open_ns: u64, close_ns: u64) {
        self.describe_key(call, self.key(call), open_ns, close_ns);
    }

    fn describe_key(&mut self, call: &SyscallInfo, key: SockKey, open_ns: u64, close_ns: u64) {
        // connect() on a non-blocking socket returns before the local port is known
        // to some callers; a zero port is no usable key.
        if key.0.port() == 0 || key.1.port() == 0 {
            return;
        }
        self.owners.insert(
            key,
            Owner {
                pid: call.pid,
                tid: call.tid,
                comment: format!("pid={} comm={}", call.pid, call.comm),
                closed_at: None,
            },
        );
        self.described.insert((call.pid, call.fd, key.0, key.1));
        self.connection_record(call, open_ns, close_ns);
    }

    fn connection_record(&mut self, call: &SyscallInfo, open_ns: u64, close_ns: u64) {
        let (local, remote) = self.key(call);
        self.pending
            .push(cap::Record::Connection(cap::ConnectionInfo {
                pid: call.pid,
                fd: call.fd.max(0) as u32,
                netns: call.socket.netns,
                role: role(call.role),
                local,
                remote,
                open_ns,
                close_ns,
            }));
    }

    fn syscall(&mut self, call: &SyscallInfo, op: cap::SyscallOp) {
        self.pending.push(cap::Record::Syscall(cap::SyscallEvent {
            op,
            pid: call.pid,
            tid: call.tid,
            fd: call.fd.max(0) as u32,
            enter_ns: call.enter_ns,
            exit_ns: call.exit_ns,
            ret: call.ret,
        }));
    }

    /// The process that sent a packet from `src` to `dst`, else the one receiving it.
    pub fn packet_owner(&self, src: SocketAddr, dst: SocketAddr) -> Option<&Owner> {
        let (src, dst) = (canonical(src), canonical(dst));
        self.owners
            .get(&(src, dst))
            .or_else(|| self.owners.get(&(dst, src)))
    }

    /// Records to write now (the buffer is emptied).
    pub fn take_records(&mut self) -> Vec<cap::Record> {
        std::mem::take(&mut self.pending)
    }

    /// Number of records waiting.
    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }

    /// Forgets owners of sockets closed long enough ago.
    pub fn expire(&mut self) {
        self.owners
            .retain(|_, o| o.closed_at.is_none_or(|t| t.elapsed() < CLOSED_GRACE));
    }
}
