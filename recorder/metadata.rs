//! Turns syscall-tracer events into capture records, and remembers which process
//! owns which connection so packets can be annotated with it.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use foldhash::HashMap;
use l7rec_capture as cap;

use crate::conn_key::ConnKey;

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

/// What a described (pid, fd) is: its connection, and the thread that used it last.
struct Described {
    key: ConnKey,
    tid: u32,
}

/// Converts events to records and tracks socket owners.
#[derive(Default)]
pub struct Metadata {
    /// (local, remote) → owner. foldhash, not std's SipHash: that was the recorder's
    /// largest cost after compression; foldhash is seeded per map.
    owners: HashMap<ConnKey, Owner>,
    /// Sockets already described by a connection record, by (pid, fd): hashing two
    /// integers per I/O event, not two socket addresses.
    described: HashMap<(u32, i32), Described>,
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
                if !self.is_described(&call, key) {
                    self.describe_key(&call, key, call.enter_ns, 0);
                }
            }
            SyscallEvent::Io { op: o, call, .. } => {
                // A connection opened before recording started: described on first use.
                let key = self.key(&call);
                match self.described.get_mut(&(call.pid, call.fd)) {
                    Some(d) if d.key == key => {
                        if d.tid != call.tid {
                            d.tid = call.tid;
                            if let Some(owner) = self.owners.get_mut(&key) {
                                owner.tid = call.tid;
                            }
                        }
                    }
                    _ => self.describe_key(&call, key, 0, 0),
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
        if self.is_described(call, key) {
            self.described.remove(&(call.pid, call.fd));
        }
    }

    /// Whether `call`'s (pid, fd) is described, as the connection `key`.
    fn is_described(&self, call: &SyscallInfo, key: ConnKey) -> bool {
        self.described
            .get(&(call.pid, call.fd))
            .is_some_and(|d| d.key == key)
    }

    fn key(&self, call: &SyscallInfo) -> ConnKey {
        ConnKey::new(call.socket.local, call.socket.remote)
    }

    /// Writes a connection record for a newly seen socket and remembers its owner.
    fn describe(&mut self, call: &SyscallInfo, open_ns: u64, close_ns: u64) {
        self.describe_key(call, self.key(call), open_ns, close_ns);
    }

    fn describe_key(&mut self, call: &SyscallInfo, key: ConnKey, open_ns: u64, close_ns: u64) {
        // connect() on a non-blocking socket returns before the local port is known
        // to some callers; a zero port is no usable key.
        if call.socket.local.port() == 0 || call.socket.remote.port() == 0 {
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
        self.described
            .insert((call.pid, call.fd), Described { key, tid: call.tid });
        self.connection_record(call, open_ns, close_ns);
    }

    fn connection_record(&mut self, call: &SyscallInfo, open_ns: u64, close_ns: u64) {
        let (local, remote) = (canonical(call.socket.local), canonical(call.socket.remote));
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
        if self.owners.is_empty() {
            return None;
        }
        let key = ConnKey::new(src, dst);
        self.owners
            .get(&key)
            .or_else(|| self.owners.get(&key.reversed()))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::syscalls::{Role, SocketTuple};

    fn call(pid: u32, tid: u32, fd: i32, local: &str, remote: &str) -> SyscallInfo {
        SyscallInfo {
            pid,
            tid,
            comm: "curl".into(),
            fd,
            ret: 10,
            enter_ns: 100,
            exit_ns: 200,
            role: Role::Client,
            socket: SocketTuple {
                local: local.parse().expect("addr"),
                remote: remote.parse().expect("addr"),
                netns: 1,
            },
        }
    }

    fn io(call: SyscallInfo) -> SyscallEvent {
        SyscallEvent::Io {
            op: IoOp::Write,
            bytes: 10,
            call,
        }
    }

    /// (connection records, syscall records) taken so far.
    fn taken(m: &mut Metadata) -> (Vec<cap::ConnectionInfo>, usize) {
        let mut conns = Vec::new();
        let mut calls = 0;
        for r in m.take_records() {
            match r {
                cap::Record::Connection(c) => conns.push(c),
                cap::Record::Syscall(_) => calls += 1,
                _ => {}
            }
        }
        (conns, calls)
    }

    #[test]
    fn a_connection_is_described_once_per_process_and_fd() {
        let (a, b) = ("127.0.0.1:40000", "127.0.0.1:80");
        let mut m = Metadata::default();
        m.event(io(call(7, 7, 3, a, b)));
        m.event(io(call(7, 8, 3, a, b)));
        let (conns, calls) = taken(&mut m);
        assert_eq!((conns.len(), calls), (1, 2));
        assert_eq!((conns[0].pid, conns[0].fd, conns[0].close_ns), (7, 3, 0));
        // The owner follows the thread that used the socket last.
        let owner = m.packet_owner(b.parse().unwrap(), a.parse().unwrap());
        assert_eq!(owner.map(|o| (o.pid, o.tid)), Some((7, 8)));
        assert_eq!(owner.map(|o| o.comment.as_str()), Some("pid=7 comm=curl"));

        // Closed, then the fd is reused for another connection: described again.
        m.event(SyscallEvent::Close {
            call: call(7, 8, 3, a, b),
        });
        m.event(io(call(7, 7, 3, "127.0.0.1:40001", b)));
        let (conns, _) = taken(&mut m);
        assert_eq!(conns.len(), 2);
        assert_eq!((conns[0].close_ns, conns[1].close_ns), (200, 0));
        assert_eq!(conns[1].local.port(), 40001);
        // The fd now names the new connection: the old one's records are not repeated.
        m.event(io(call(7, 7, 3, "127.0.0.1:40001", b)));
        assert_eq!(taken(&mut m).0.len(), 0);
    }

    #[test]
    fn connections_mode_writes_an_open_and_a_close_record() {
        let c = call(9, 9, 5, "[::1]:40000", "[::1]:8080");
        let mut m = Metadata::default();
        m.event(SyscallEvent::Seen {
            op: Some(IoOp::Recvfrom),
            call: c.clone(),
        });
        m.event(SyscallEvent::Seen {
            op: Some(IoOp::Sendto),
            call: c.clone(),
        });
        m.event(SyscallEvent::Ended { call: c });
        let (conns, calls) = taken(&mut m);
        assert_eq!(calls, 0, "no per-call records in connections mode");
        assert_eq!(conns.len(), 2);
        assert_eq!((conns[0].open_ns, conns[0].close_ns), (100, 0));
        assert_eq!((conns[1].open_ns, conns[1].close_ns), (0, 200));
    }
}
