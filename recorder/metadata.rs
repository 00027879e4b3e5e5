//! Turns syscall-tracer events into capture records, and remembers which process
//! owns which connection so packets can be annotated with it.

use std::collections::hash_map::RandomState;
use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, Hasher};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

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
    /// Process name.
    pub comm: String,
    closed_at: Option<Instant>,
}

/// Seeded multiply-fold hasher for the per-event and per-packet socket maps: SipHash
/// (std's default) was the recorder's largest cost after compression. The random seed
/// keeps colliding keys hard to craft from the traffic.
#[derive(Clone)]
struct FastState(u64);

impl Default for FastState {
    fn default() -> Self {
        Self(RandomState::new().hash_one(0x6c37_7265_635f_6d64_u64))
    }
}

impl BuildHasher for FastState {
    type Hasher = FastHasher;
    fn build_hasher(&self) -> FastHasher {
        FastHasher(self.0)
    }
}

struct FastHasher(u64);

impl FastHasher {
    #[inline]
    fn add(&mut self, word: u64) {
        let p = u128::from(self.0 ^ word) * 0x9e37_79b9_7f4a_7c15_u128;
        self.0 = (p as u64) ^ ((p >> 64) as u64);
    }
}

impl Hasher for FastHasher {
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
    }
    fn write_u8(&mut self, n: u8) {
        self.add(u64::from(n));
    }
    fn write_u16(&mut self, n: u16) {
        self.add(u64::from(n));
    }
    fn write_u32(&mut self, n: u32) {
        self.add(u64::from(n));
    }
    fn write_u64(&mut self, n: u64) {
        self.add(n);
    }
    fn write_usize(&mut self, n: usize) {
        self.add(n as u64);
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

/// Local and remote address of a socket, canonical (see [`canonical`]).
type SockKey = (SocketAddr, SocketAddr);

/// Converts events to records and tracks socket owners.
#[derive(Default)]
pub struct Metadata {
    /// (local, remote) → owner.
    owners: HashMap<SockKey, Owner, FastState>,
    /// Sockets already described by a connection record: (pid, fd, local, remote).
    described: HashSet<(u32, i32, SocketAddr, SocketAddr), FastState>,
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
                let key = self.key(&call);
                if let Some(o) = self.owners.get_mut(&key) {
                    o.closed_at = Some(Instant::now());
                }
                self.connection_record(&call, 0, call.exit_ns);
                self.described.remove(&(call.pid, call.fd, key.0, key.1));
                self.syscall(&call, cap::SyscallOp::Close);
            }
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
                comm: call.comm.clone(),
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
