//! Syscall metadata: which process moved how many bytes on which TCP socket.
//!
//! Loads `bpf/syscalls.bpf.c` (tp_btf `sys_enter`/`sys_exit` with a syscall-number switch,
//! plus `sched_process_exec`/`sched_process_exit`; no tracefs needed), filters in the
//! kernel to TCP sockets of tasks in one network namespace, and decodes the ringbuf
//! records into [`SyscallEvent`]s. The programs run on every syscall of every task, in
//! that task's context: their cost model is described at the top of the C file and
//! measured in `BENCHMARKS.md`.
//!
//! Process identity (exe, cmdline) is captured twice. The kernel copies it in the task's
//! own context when it sends the process event: up to 1 KiB of `mm->arg_start..arg_end`
//! and the executable's path rebuilt from `mm->exe_file`'s dentries (see
//! [`ProcessInfo::exe`] for its limits), so it is right even for a process that is gone
//! or a zombie by the time user space reads `/proc`. When the event is decoded,
//! `/proc/PID` is preferred if it still describes the same process (same start time and
//! comm) and agrees with the kernel copy: it is untruncated and its exe path is exact.
#![allow(dead_code)] // Wired into `record` by the integration step.

use std::ffi::OsString;
use std::mem::{offset_of, size_of, MaybeUninit};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use libbpf_rs::skel::{OpenSkel, Skel, SkelBuilder};
use libbpf_rs::{MapCore, MapFlags, MapInfo, MapType, OpenObject, PrintLevel};

mod skel {
    include!(concat!(env!("OUT_DIR"), "/syscalls.skel.rs"));
}
use skel::{SyscallsSkel, SyscallsSkelBuilder};

use crate::ring_events::DecodedRing;

/// Default ringbuf size: room for ~140k I/O events between two polls.
pub const DEFAULT_RINGBUF_BYTES: u32 = 16 << 20;

/// What to trace. [`Default`] traces every TCP socket of every task in the calling
/// thread's network namespace.
#[derive(Debug, Default)]
pub struct SyscallConfig {
    /// Network namespace (inode of `/proc/PID/ns/net`) whose tasks are traced;
    /// `None` = the calling thread's.
    pub netns_ino: Option<u32>,
    /// Trace tasks of every network namespace (ignores `netns_ino`).
    pub all_netns: bool,
    /// Only this process (tgid); `None` = all.
    pub pid: Option<u32>,
    /// Only threads with this comm (the kernel keeps 15 bytes; longer names are cut to
    /// match); `None` = all.
    pub comm: Option<String>,
    /// Emit I/O events only for flows present in the flow map (see
    /// [`SyscallConfig::with_flows_map`]). Connect/accept/close are always emitted.
    pub only_kept_flows: bool,
    /// Ringbuf size in bytes (power of two, multiple of the page size); 0 = default.
    pub ringbuf_bytes: u32,
    /// Flow map shared with the socket filter (LRU hash, `struct l7_flow_key` keys);
    /// `None` = a private, empty one. See [`SyscallConfig::with_flows_map`].
    pub flows_map: Option<OwnedFd>,
    /// Per-call events, or only who uses which connection.
    pub mode: TraceMode,
}

/// How much the tracer reports, and what it costs.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub enum TraceMode {
    /// Every connect/accept/close and every send/receive call on a TCP socket, with
    /// entry and exit times ([`SyscallEvent::Io`], `Connect`, `Accept`, `Close`). Uses
    /// tp_btf/sys_enter and sys_exit, which run on every syscall of every task.
    #[default]
    Calls,
    /// Each (process, connection) pair once ([`SyscallEvent::Seen`]): a client when it
    /// connects, any other process at its first receive on the socket. From TCP's state
    /// changes and the socket layer's receive tracepoint: nothing runs on sends or other
    /// syscalls, and nothing more per receive than one socket-storage lookup.
    Connections,
}

impl TraceMode {
    /// The mode's name on the command line (`--syscalls`).
    pub fn name(self) -> &'static str {
        match self {
            TraceMode::Calls => "calls",
            TraceMode::Connections => "connections",
        }
    }
}

impl SyscallConfig {
    /// Use the socket filter's kept-flows map (an LRU hash keyed by `struct l7_flow_key`)
    /// instead of a private one; required for `only_kept_flows` to see any flow.
    pub fn with_flows_map(mut self, fd: OwnedFd) -> Self {
        self.flows_map = Some(fd);
        self
    }
}

/// Which side of a connection the traced process is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The socket was first seen mid-connection.
    Unknown,
    /// The process called `connect()`.
    Client,
    /// The process got the socket from `accept()`.
    Server,
}

/// A read/write-family syscall.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IoOp {
    /// `read(2)`
    Read,
    /// `write(2)`
    Write,
    /// `readv(2)`
    Readv,
    /// `writev(2)`
    Writev,
    /// `recvfrom(2)` (also `recv`)
    Recvfrom,
    /// `sendto(2)` (also `send`)
    Sendto,
    /// `recvmsg(2)`
    Recvmsg,
    /// `sendmsg(2)`
    Sendmsg,
    /// `recvmmsg(2)`: `ret` counts messages, `bytes` sums them
    Recvmmsg,
    /// `sendmmsg(2)`: `ret` counts messages, `bytes` sums them
    Sendmmsg,
    /// `sendfile(2)` with the socket as `out_fd`
    Sendfile,
}

impl IoOp {
    /// True if data flows from the socket to the process.
    pub fn is_receive(self) -> bool {
        matches!(
            self,
            IoOp::Read | IoOp::Readv | IoOp::Recvfrom | IoOp::Recvmsg | IoOp::Recvmmsg
        )
    }
}

/// A TCP socket's endpoints as the traced process sees them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SocketTuple {
    /// Local address and port (IPv4 for AF_INET sockets).
    pub local: SocketAddr,
    /// Remote address and port (port 0 before the connection exists).
    pub remote: SocketAddr,
    /// Inode of the socket's network namespace.
    pub netns: u32,
}

/// What every socket-syscall event carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyscallInfo {
    /// Process id (tgid).
    pub pid: u32,
    /// Thread id.
    pub tid: u32,
    /// Thread comm.
    pub comm: String,
    /// The socket's fd (for accept: the new connection's fd).
    pub fd: i32,
    /// Raw return value: bytes, messages (mmsg), the new fd (accept), or -errno.
    pub ret: i64,
    /// Syscall entry, ns since the Unix epoch.
    pub enter_ns: u64,
    /// Syscall exit, ns since the Unix epoch.
    pub exit_ns: u64,
    /// Which side of the connection the process is on, if known.
    pub role: Role,
    /// The socket's endpoints.
    pub socket: SocketTuple,
}

/// Why a process event was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcessReason {
    /// The first traced event of this process follows.
    FirstSeen,
    /// A process reported before called `execve()`.
    Exec,
}

/// One process, reported before its first syscall event and again after an exec.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessInfo {
    /// Process id (tgid).
    pub pid: u32,
    /// Parent's tgid.
    pub ppid: u32,
    /// Thread-group leader's comm.
    pub comm: String,
    /// The executable: `/proc/PID/exe` while the process still exists, else the path
    /// the kernel rebuilt from the exe file's dentries at event time. That path crosses
    /// mount points up to the root of the process's mount namespace (a chroot is not
    /// honoured; a process in a container gets its container-side path); if the walk
    /// was cut (very deep or long paths) it is relative, ending in the file name.
    /// `None` for kernel threads or if neither source had it.
    pub exe: Option<PathBuf>,
    /// Arguments split at NULs: `/proc/PID/cmdline` while the process exists and agrees
    /// with the kernel's copy, else the kernel's copy (first 1 KiB, see
    /// [`ProcessInfo::cmdline_truncated`]). Empty for kernel threads.
    pub cmdline: Vec<OsString>,
    /// True if `cmdline` is the kernel's copy and the command line was longer (the
    /// last argument is then cut short).
    pub cmdline_truncated: bool,
    /// Process start, ns since the Unix epoch.
    pub start_ns: u64,
    /// Inode of the task's network namespace.
    pub netns: u32,
    /// Why this was sent.
    pub reason: ProcessReason,
}

/// A decoded event from the kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyscallEvent {
    /// Data moved on a socket (`bytes` is 0 on error).
    Io {
        /// Which syscall.
        op: IoOp,
        /// Bytes moved (mmsg: sum over messages).
        bytes: u64,
        /// Who, when, which socket.
        call: SyscallInfo,
    },
    /// `connect()` returned (0, `-EINPROGRESS` or an error); role is always client.
    Connect {
        /// Who, when, which socket.
        call: SyscallInfo,
    },
    /// `accept()`/`accept4()` returned a connection; role is always server.
    Accept {
        /// True for `accept4()`.
        accept4: bool,
        /// Who, when, which socket (`fd` is the new connection).
        call: SyscallInfo,
    },
    /// `close()` of a TCP socket; `socket` is as it was before the close.
    Close {
        /// Who, when, which socket.
        call: SyscallInfo,
    },
    /// [`TraceMode::Connections`]: a process used a connection for the first time. `call`
    /// is its `connect()` (no `op`; `exit_ns` is when the connection was established) or
    /// its first receive (fd -1 and no `op` when it did not come from one of the
    /// read/write-family syscalls, e.g. io_uring); its `enter_ns` is the connection's
    /// open time (SYN sent, or handshake completed for an accepted one), 0 if the
    /// connection predates the recording.
    Seen {
        /// The syscall that used the socket, if known.
        op: Option<IoOp>,
        /// Who, when, which socket.
        call: SyscallInfo,
    },
    /// [`TraceMode::Connections`]: a connection reported by [`Seen`](Self::Seen) ended
    /// (its TCP state reached CLOSE: after `close()` and the FIN exchange, or a reset).
    /// `call` names the process last seen using it (`tid` 0, no `comm`: the kernel is
    /// often in softirq context then) with its fd and role; `exit_ns` is the end,
    /// `enter_ns` the open time as in `Seen`.
    Ended {
        /// Whose connection, when, which socket.
        call: SyscallInfo,
    },
    /// A process's identity.
    Process(ProcessInfo),
}

impl SyscallEvent {
    /// The socket call this event reports; `None` for process events.
    pub fn call(&self) -> Option<&SyscallInfo> {
        match self {
            SyscallEvent::Io { call, .. }
            | SyscallEvent::Connect { call }
            | SyscallEvent::Accept { call, .. }
            | SyscallEvent::Close { call }
            | SyscallEvent::Seen { call, .. }
            | SyscallEvent::Ended { call } => Some(call),
            SyscallEvent::Process(_) => None,
        }
    }
}

/// The maps of `bpf/tls_socket.h` (SSL calls in flight and their count), as made by the
/// syscall tracer's BPF object in connections mode, for the TLS tracer to share.
#[derive(Debug)]
pub struct TlsSocketMaps {
    /// `tls_calls`.
    pub calls: OwnedFd,
    /// `tls_inflight`.
    pub inflight: OwnedFd,
}

/// A loaded and attached syscall tracer. Detaches on drop.
///
/// Not `Send`: poll it on the thread that started it.
pub struct SyscallTracer {
    // Field order is drop order: the ringbuf goes before the maps it reads.
    events: DecodedRing<SyscallEvent>,
    skel: SyscallsSkel<'static>,
    netns_ino: u32,
    mode: TraceMode,
}

impl SyscallTracer {
    /// Loads the BPF programs with `cfg`'s filters and attaches them.
    pub fn start(cfg: SyscallConfig) -> Result<Self> {
        preflight()?;
        let netns_ino = match cfg.netns_ino {
            Some(ino) => ino,
            None => current_netns_ino()?,
        };
        let clocks = ClockOffsets::measure()?;

        // The skeleton borrows its OpenObject for its whole life; leaking the small
        // MaybeUninit wrapper (the object itself is freed by the skeleton) gives it
        // 'static so that tracer, skeleton and ringbuf can live in one struct.
        let object: &'static mut MaybeUninit<OpenObject> =
            Box::leak(Box::new(MaybeUninit::uninit()));
        let mut open = SyscallsSkelBuilder::default()
            .open(object)
            .context("opening the syscall BPF object")?;

        let rodata = open
            .maps
            .rodata_data
            .as_deref_mut()
            .ok_or_else(|| anyhow!("syscall BPF object has no .rodata"))?;
        rodata.self_tgid = std::process::id();
        rodata.target_tgid = cfg.pid.unwrap_or(0);
        rodata.netns_ino = netns_ino;
        rodata.all_netns = u8::from(cfg.all_netns);
        rodata.only_kept_flows = u8::from(cfg.only_kept_flows);
        if let Some(comm) = &cfg.comm {
            if comm.as_bytes().contains(&0) {
                bail!("comm filter {comm:?} contains a NUL byte");
            }
            // The kernel truncates comm to 15 bytes + NUL; compare the same way.
            for (dst, src) in rodata.target_comm.iter_mut().zip(comm.bytes().take(15)) {
                *dst = src as i8;
            }
        }

        let ringbuf_bytes = if cfg.ringbuf_bytes == 0 {
            DEFAULT_RINGBUF_BYTES
        } else {
            cfg.ringbuf_bytes
        };
        if !ringbuf_bytes.is_power_of_two() || ringbuf_bytes < 4096 {
            bail!("ringbuf size {ringbuf_bytes} must be a power of two of at least 4096 bytes");
        }
        open.maps
            .events
            .set_max_entries(ringbuf_bytes)
            .with_context(|| format!("setting ringbuf size {ringbuf_bytes}"))?;
        match &cfg.flows_map {
            Some(fd) => {
                check_flows_map(fd)?;
                open.maps
                    .l7_flows
                    .reuse_fd(fd.as_fd())
                    .context("reusing the socket filter's flow map")?;
            }
            // Unused unless shared: do not preallocate 64k LRU entries for nothing.
            None => open.maps.l7_flows.set_max_entries(1)?,
        }
        // Load one mode's programs; shrink the calls mode's preallocated maps when unused
        // (the connections mode's socket storage costs nothing until used).
        let calls = cfg.mode == TraceMode::Calls;
        open.progs.l7_sys_enter.set_autoload(calls);
        open.progs.l7_sys_exit.set_autoload(calls);
        open.progs.l7_conn_state.set_autoload(!calls);
        open.progs.l7_conn_recv.set_autoload(!calls);
        if !calls {
            open.maps.thread_state.set_max_entries(1)?;
            open.maps.sock_cache.set_max_entries(1)?;
        } else {
            // Only the connections mode's programs note sockets for the TLS tracer.
            open.maps.tls_calls.set_max_entries(1)?;
        }

        let mut skel = load_with_log(open)?;
        skel.attach().context(match cfg.mode {
            TraceMode::Calls => {
                "attaching tp_btf/sys_enter, sys_exit, sched_process_exec/exit \
                 (needs a kernel with BTF-enabled tracepoints, 5.5+)"
            }
            TraceMode::Connections => {
                "attaching tp_btf/inet_sock_set_state, sock_recv_length, \
                 sched_process_exec/exit (needs kernel 6.3+)"
            }
        })?;

        let events = DecodedRing::new(
            &skel.maps.events,
            move |data: &[u8]| decode(data, &clocks),
            "syscall ringbuf",
        )?;

        Ok(Self {
            events,
            skel,
            netns_ino,
            mode: cfg.mode,
        })
    }

    /// What it reports.
    pub fn mode(&self) -> TraceMode {
        self.mode
    }

    /// In connections mode, the maps through which its socket tracepoint programs tell
    /// the TLS tracer which socket an SSL call uses (`bpf/tls_socket.h`): a TLS tracer
    /// given them runs no socket programs of its own.
    pub fn tls_socket_maps(&self) -> Result<Option<TlsSocketMaps>> {
        if self.mode != TraceMode::Connections {
            return Ok(None);
        }
        let maps = &self.skel.maps;
        Ok(Some(TlsSocketMaps {
            calls: maps.tls_calls.as_fd().try_clone_to_owned()?,
            inflight: maps.tls_inflight.as_fd().try_clone_to_owned()?,
        }))
    }

    /// Waits up to `timeout` for events and hands each one to `f`; returns how many.
    pub fn poll(&mut self, timeout: Duration, f: &mut impl FnMut(SyscallEvent)) -> Result<usize> {
        self.events.poll(timeout, f)
    }

    /// Events lost, summed over CPUs and causes: the ringbuf was full, the per-thread
    /// table was (the call could not be followed from entry to exit), or a traced
    /// call's exit was never seen.
    pub fn drops(&self) -> u64 {
        self.drops_by_cause().iter().sum()
    }

    /// [`drops`](Self::drops) by cause: ring buffer full, thread table full, exit
    /// never seen (enum l7_lost in syscalls.bpf.c).
    pub fn drops_by_cause(&self) -> [u64; 3] {
        [0, 1, 2].map(|cause| self.lost_for(cause))
    }

    fn lost_for(&self, cause: u32) -> u64 {
        match self
            .skel
            .maps
            .drops
            .lookup_percpu(&cause.to_ne_bytes(), MapFlags::ANY)
        {
            Ok(Some(per_cpu)) => per_cpu
                .iter()
                .filter_map(|v| v.get(..8)?.try_into().ok().map(u64::from_ne_bytes))
                .sum(),
            _ => 0,
        }
    }

    /// Ringbuf records that could not be decoded (kernel/user ABI mismatch); should be 0.
    pub fn malformed(&self) -> u64 {
        self.events.malformed()
    }

    /// The network namespace inode the tracer filters on.
    pub fn netns_ino(&self) -> u32 {
        self.netns_ino
    }
}

/// Name the shared flow map must have: `bpf_map__reuse_fd` renames our map after it,
/// and the generated skeleton finds maps by name (it panics on an unknown one).
const FLOWS_MAP_NAME: &str = "l7_flows";
/// `sizeof(struct l7_flow_key)`.
const FLOW_KEY_SIZE: u32 = 40;

/// Refuses a flow map the programs cannot use, before libbpf adopts it.
fn check_flows_map(fd: &OwnedFd) -> Result<()> {
    let info = MapInfo::new(fd.as_fd()).context("querying the shared flow map")?;
    let name = info.name().unwrap_or("?");
    if name != FLOWS_MAP_NAME
        || info.map_type() != MapType::LruHash
        || info.info.key_size != FLOW_KEY_SIZE
    {
        bail!(
            "shared flow map must be an LRU hash named {FLOWS_MAP_NAME:?} with \
             {FLOW_KEY_SIZE}-byte keys (struct l7_flow_key); got {:?} named {name:?} \
             with {}-byte keys",
            info.map_type(),
            info.info.key_size
        );
    }
    Ok(())
}

/// Clear errors for the usual reasons BPF cannot work here.
fn preflight() -> Result<()> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        bail!("syscall tracing needs root (BPF is privileged on this system); run with sudo");
    }
    if !Path::new("/sys/kernel/btf/vmlinux").exists() {
        bail!(
            "kernel has no BTF (/sys/kernel/btf/vmlinux missing): \
             needs CONFIG_DEBUG_INFO_BTF=y; use --no-syscalls to record packets only"
        );
    }
    Ok(())
}

/// Inode of the calling thread's network namespace.
fn current_netns_ino() -> Result<u32> {
    // thread-self, not self: a thread may have setns()'d away from the process.
    let md = std::fs::metadata("/proc/thread-self/ns/net")
        .context("reading /proc/thread-self/ns/net (is /proc mounted?)")?;
    u32::try_from(md.ino()).context("netns inode does not fit 32 bits")
}

/// libbpf's messages during load, for the verifier log on failure.
static LOAD_LOG: Mutex<String> = Mutex::new(String::new());

fn capture_libbpf_log(_level: PrintLevel, msg: String) {
    if let Ok(mut log) = LOAD_LOG.lock() {
        // Bounded: the verifier can print megabytes; keep the tail.
        if log.len() > 1 << 20 {
            let cut = log.len() - (1 << 19);
            let cut = (cut..log.len())
                .find(|&i| log.is_char_boundary(i))
                .unwrap_or(log.len());
            log.drain(..cut);
        }
        log.push_str(&msg);
    }
}

fn load_with_log(open: skel::OpenSyscallsSkel<'static>) -> Result<SyscallsSkel<'static>> {
    if let Ok(mut log) = LOAD_LOG.lock() {
        log.clear();
    }
    let prev = libbpf_rs::set_print(Some((PrintLevel::Warn, capture_libbpf_log)));
    let res = open.load();
    libbpf_rs::set_print(prev);
    res.map_err(|e| {
        let log = LOAD_LOG.lock().map(|l| l.clone()).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        let tail = lines[lines.len().saturating_sub(25)..].join("\n");
        anyhow!(
            "loading syscall BPF programs failed: {e}\n\
             (kernel rejected the programs; tail of the libbpf/verifier log follows)\n{tail}"
        )
    })
}

/// Offsets that turn kernel clocks into ns since the Unix epoch.
#[derive(Debug, Clone, Copy)]
struct ClockOffsets {
    /// CLOCK_REALTIME - CLOCK_MONOTONIC (bpf_ktime_get_ns).
    mono: i128,
    /// CLOCK_REALTIME - CLOCK_BOOTTIME (task->start_boottime).
    boot: i128,
    /// USER_HZ (`sysconf(_SC_CLK_TCK)`), the unit of `/proc/PID/stat`'s start time.
    clk_tck: u64,
}

impl ClockOffsets {
    fn measure() -> Result<Self> {
        Ok(Self {
            mono: realtime_minus(libc::CLOCK_MONOTONIC)?,
            boot: realtime_minus(libc::CLOCK_BOOTTIME)?,
            // SAFETY: sysconf has no preconditions.
            clk_tck: u64::try_from(unsafe { libc::sysconf(libc::_SC_CLK_TCK) })
                .ok()
                .filter(|&hz| hz > 0)
                .unwrap_or(100),
        })
    }

    fn mono_to_epoch(&self, ns: u64) -> u64 {
        to_u64(i128::from(ns) + self.mono)
    }

    fn boot_to_epoch(&self, ns: u64) -> u64 {
        to_u64(i128::from(ns) + self.boot)
    }
}

fn to_u64(v: i128) -> u64 {
    u64::try_from(v.max(0)).unwrap_or(u64::MAX)
}

fn clock_ns(clock: libc::clockid_t) -> Result<i128> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec.
    if unsafe { libc::clock_gettime(clock, &mut ts) } != 0 {
        return Err(std::io::Error::last_os_error()).context("clock_gettime");
    }
    Ok(i128::from(ts.tv_sec) * 1_000_000_000 + i128::from(ts.tv_nsec))
}

/// REALTIME - `clock`, from the tightest of a few bracketed samples.
fn realtime_minus(clock: libc::clockid_t) -> Result<i128> {
    let mut best: Option<(i128, i128)> = None; // (bracket width, offset)
    for _ in 0..5 {
        let a = clock_ns(clock)?;
        let real = clock_ns(libc::CLOCK_REALTIME)?;
        let b = clock_ns(clock)?;
        let sample = (b - a, real - (a + b) / 2);
        if best.is_none_or(|(w, _)| sample.0 < w) {
            best = Some(sample);
        }
    }
    best.map(|(_, off)| off)
        .ok_or_else(|| anyhow!("no clock sample"))
}

// ---- ringbuf record layouts: exact mirrors of bpf/l7rec.h ("syscall path") ----

const L7_EV_IO: u32 = 1;
const L7_EV_CONN: u32 = 2;
const L7_EV_PROC: u32 = 3;
const L7_EV_SEEN: u32 = 4;
const L7_EV_ENDED: u32 = 5;

const L7_OP_CONNECT: u32 = 1;
const L7_OP_ACCEPT: u32 = 2;
const L7_OP_ACCEPT4: u32 = 3;
const L7_OP_CLOSE: u32 = 4;

const L7_ROLE_CLIENT: u32 = 1;
const L7_ROLE_SERVER: u32 = 2;

const L7_PROC_FIRST_SEEN: u32 = 1;
const L7_PROC_EXEC: u32 = 2;

const L7_CMDLINE_MAX: usize = 1024;
const L7_EXE_BUF: usize = 512;

const L7_PROC_F_NO_MM: u32 = 1 << 0;
const L7_PROC_F_CMDLINE_FAULT: u32 = 1 << 1;
const L7_PROC_F_EXE_PARTIAL: u32 = 1 << 2;

pub(crate) const AF_INET: u16 = 2;
pub(crate) const AF_INET6: u16 = 10;

/// `struct l7_sock_tuple` (shared with the TLS path).
#[repr(C)]
#[derive(Clone, Copy)]
pub(crate) struct RawSockTuple {
    pub(crate) laddr: [u8; 16],
    pub(crate) raddr: [u8; 16],
    pub(crate) lport: u16,
    pub(crate) rport: u16,
    pub(crate) family: u16,
    pub(crate) pad0: u16,
    pub(crate) netns: u32,
    pub(crate) pad1: u32,
}

/// `struct l7_sys_event`
#[repr(C)]
#[derive(Clone, Copy)]
struct RawSysEvent {
    kind: u32,
    op: u32,
    ts_enter: u64,
    ts_exit: u64,
    ret: i64,
    bytes: u64,
    tgid: u32,
    tid: u32,
    fd: i32,
    role: u32,
    comm: [u8; 16],
    sock: RawSockTuple,
}

/// `struct l7_proc_event`
#[repr(C)]
#[derive(Clone, Copy)]
struct RawProcEvent {
    kind: u32,
    reason: u32,
    tgid: u32,
    ppid: u32,
    ts: u64,
    start_boottime: u64,
    comm: [u8; 16],
    netns: u32,
    flags: u32,
    cmdline_len: u32,
    cmdline_copied: u32,
    exe_len: u32,
    pad0: u32,
    cmdline: [u8; L7_CMDLINE_MAX],
    exe: [u8; L7_EXE_BUF],
}

// The C side documents these sizes; any drift breaks decoding, so fail the build.
const _: () = {
    assert!(size_of::<RawSockTuple>() == 48);
    assert!(offset_of!(RawSockTuple, lport) == 32);
    assert!(offset_of!(RawSockTuple, netns) == 40);
    assert!(size_of::<RawSysEvent>() == 120);
    assert!(offset_of!(RawSysEvent, ts_enter) == 8);
    assert!(offset_of!(RawSysEvent, tgid) == 40);
    assert!(offset_of!(RawSysEvent, comm) == 56);
    assert!(offset_of!(RawSysEvent, sock) == 72);
    assert!(size_of::<RawProcEvent>() == 1608);
    assert!(offset_of!(RawProcEvent, start_boottime) == 24);
    assert!(offset_of!(RawProcEvent, comm) == 32);
    assert!(offset_of!(RawProcEvent, netns) == 48);
    assert!(offset_of!(RawProcEvent, flags) == 52);
    assert!(offset_of!(RawProcEvent, cmdline_len) == 56);
    assert!(offset_of!(RawProcEvent, exe_len) == 64);
    assert!(offset_of!(RawProcEvent, cmdline) == 72);
    assert!(offset_of!(RawProcEvent, exe) == 72 + L7_CMDLINE_MAX);
};

/// Plain-old-data record types: every bit pattern is a valid value.
///
/// # Safety
/// Implementors must be `#[repr(C)]` and contain only integers and integer arrays.
unsafe trait Pod: Copy {}
// SAFETY: repr(C), integer fields only.
unsafe impl Pod for RawSysEvent {}
// SAFETY: repr(C), integer fields only.
unsafe impl Pod for RawProcEvent {}

fn read_record<T: Pod>(data: &[u8]) -> Option<T> {
    if data.len() < size_of::<T>() {
        return None;
    }
    // SAFETY: length checked above; T is Pod (any bytes are a valid T); read_unaligned
    // copes with the ringbuf's 8-byte (not necessarily T's) alignment.
    Some(unsafe { std::ptr::read_unaligned(data.as_ptr().cast::<T>()) })
}

fn decode(data: &[u8], clocks: &ClockOffsets) -> Option<SyscallEvent> {
    let kind = u32::from_ne_bytes(data.get(..4)?.try_into().ok()?);
    match kind {
        L7_EV_IO | L7_EV_CONN | L7_EV_SEEN | L7_EV_ENDED => {
            decode_sys(read_record::<RawSysEvent>(data)?, clocks)
        }
        L7_EV_PROC => decode_proc(read_record::<RawProcEvent>(data)?, clocks),
        _ => None,
    }
}

fn decode_sys(raw: RawSysEvent, clocks: &ClockOffsets) -> Option<SyscallEvent> {
    let role = match raw.role {
        L7_ROLE_CLIENT => Role::Client,
        L7_ROLE_SERVER => Role::Server,
        _ => Role::Unknown,
    };
    let call = SyscallInfo {
        pid: raw.tgid,
        tid: raw.tid,
        comm: c_string(&raw.comm),
        fd: raw.fd,
        ret: raw.ret,
        // A Seen event's open time is 0 when the connection predates the recording.
        enter_ns: match raw.ts_enter {
            0 => 0,
            ts => clocks.mono_to_epoch(ts),
        },
        exit_ns: clocks.mono_to_epoch(raw.ts_exit),
        role,
        socket: decode_tuple(&raw.sock)?,
    };
    let io_op = |op| match op {
        5 => Some(IoOp::Read),
        6 => Some(IoOp::Write),
        7 => Some(IoOp::Readv),
        8 => Some(IoOp::Writev),
        9 => Some(IoOp::Recvfrom),
        10 => Some(IoOp::Sendto),
        11 => Some(IoOp::Recvmsg),
        12 => Some(IoOp::Sendmsg),
        13 => Some(IoOp::Recvmmsg),
        14 => Some(IoOp::Sendmmsg),
        15 => Some(IoOp::Sendfile),
        _ => None,
    };
    if raw.kind == L7_EV_ENDED {
        return Some(SyscallEvent::Ended { call });
    }
    if raw.kind == L7_EV_SEEN {
        return Some(SyscallEvent::Seen {
            op: io_op(raw.op),
            call,
        });
    }
    let op = match raw.op {
        L7_OP_CONNECT => return Some(SyscallEvent::Connect { call }),
        L7_OP_ACCEPT | L7_OP_ACCEPT4 => {
            return Some(SyscallEvent::Accept {
                accept4: raw.op == L7_OP_ACCEPT4,
                call,
            })
        }
        L7_OP_CLOSE => return Some(SyscallEvent::Close { call }),
        other => io_op(other)?,
    };
    Some(SyscallEvent::Io {
        op,
        bytes: raw.bytes,
        call,
    })
}

pub(crate) fn decode_tuple(raw: &RawSockTuple) -> Option<SocketTuple> {
    let addr = |bytes: [u8; 16]| -> IpAddr {
        let v6 = Ipv6Addr::from(bytes);
        if raw.family == AF_INET {
            // Stored IPv4-mapped; an AF_INET socket only has IPv4 addresses.
            IpAddr::V4(v6.to_ipv4_mapped().unwrap_or(Ipv4Addr::UNSPECIFIED))
        } else {
            IpAddr::V6(v6)
        }
    };
    if raw.family != AF_INET && raw.family != AF_INET6 {
        return None;
    }
    Some(SocketTuple {
        local: SocketAddr::new(addr(raw.laddr), raw.lport),
        remote: SocketAddr::new(addr(raw.raddr), raw.rport),
        netns: raw.netns,
    })
}

fn decode_proc(raw: RawProcEvent, clocks: &ClockOffsets) -> Option<SyscallEvent> {
    let reason = match raw.reason {
        L7_PROC_FIRST_SEEN => ProcessReason::FirstSeen,
        L7_PROC_EXEC => ProcessReason::Exec,
        _ => return None,
    };
    let comm = c_string(&raw.comm);
    let kernel = KernelIdentity::of(&raw);
    let proc_dir = PathBuf::from(format!("/proc/{}", raw.tgid));
    let live = same_process(&proc_dir, &comm, raw.start_boottime, clocks.clk_tck);
    let exe = live
        .then(|| std::fs::read_link(proc_dir.join("exe")).ok())
        .flatten()
        .filter(|p| kernel.exe_agrees(p))
        .or(kernel.exe);
    // /proc reads the same bytes (arg_start..arg_end), untruncated; if they no longer
    // start with what the kernel saw, the process rewrote its argv since: keep the
    // kernel's copy, which is what it was when it made the traced call.
    let proc_cmdline = live
        .then(|| std::fs::read(proc_dir.join("cmdline")).ok())
        .flatten()
        .filter(|b| !b.is_empty() && b.starts_with(kernel.cmdline));
    let (cmdline, cmdline_truncated) = match proc_cmdline {
        Some(bytes) => (split_cmdline(&bytes), false),
        None => (split_cmdline(kernel.cmdline), kernel.cmdline_truncated),
    };
    Some(SyscallEvent::Process(ProcessInfo {
        pid: raw.tgid,
        ppid: raw.ppid,
        comm,
        exe,
        cmdline,
        cmdline_truncated,
        start_ns: clocks.boot_to_epoch(raw.start_boottime),
        netns: raw.netns,
        reason,
    }))
}

/// Identity the kernel captured in the process's own context.
struct KernelIdentity<'a> {
    /// The path rebuilt from dentry names; relative if the walk was cut.
    exe: Option<PathBuf>,
    /// The executable's file name (the leaf dentry), if captured.
    exe_name: Option<&'a [u8]>,
    /// Raw cmdline bytes as copied (NUL-separated).
    cmdline: &'a [u8],
    cmdline_truncated: bool,
}

impl<'a> KernelIdentity<'a> {
    fn of(raw: &'a RawProcEvent) -> Self {
        use std::os::unix::ffi::OsStrExt;
        let no_mm = raw.flags & L7_PROC_F_NO_MM != 0;
        let copied = if no_mm || raw.flags & L7_PROC_F_CMDLINE_FAULT != 0 {
            0
        } else {
            (raw.cmdline_copied as usize).min(L7_CMDLINE_MAX)
        };
        let exe_len = if no_mm {
            0
        } else {
            (raw.exe_len as usize).min(L7_EXE_BUF)
        };
        // Leaf first, each name NUL-terminated; names are never empty.
        let names: Vec<&[u8]> = raw.exe[..exe_len]
            .split(|&b| b == 0)
            .filter(|n| !n.is_empty())
            .collect();
        let exe = (!names.is_empty()).then(|| {
            let mut path = if raw.flags & L7_PROC_F_EXE_PARTIAL != 0 {
                PathBuf::new()
            } else {
                PathBuf::from("/")
            };
            for name in names.iter().rev() {
                path.push(std::ffi::OsStr::from_bytes(name));
            }
            path
        });
        Self {
            exe,
            exe_name: names.first().copied(),
            cmdline: &raw.cmdline[..copied],
            cmdline_truncated: copied > 0 && (raw.cmdline_len as usize) > copied,
        }
    }

    /// Does `/proc/PID/exe` name the file the kernel saw? (The process may have
    /// replaced its image since the event.)
    fn exe_agrees(&self, proc_exe: &Path) -> bool {
        use std::os::unix::ffi::OsStrExt;
        let Some(kernel_name) = self.exe_name else {
            return true;
        };
        let Some(name) = proc_exe.file_name().map(|n| n.as_bytes()) else {
            return false;
        };
        name == kernel_name || name.strip_suffix(b" (deleted)") == Some(kernel_name)
    }
}

/// Is `/proc/PID` (still) the process the kernel reported: same start time (pids get
/// reused) and same comm (it may have exec'd since; the start time survives exec)?
fn same_process(proc_dir: &Path, comm: &str, start_boottime: u64, clk_tck: u64) -> bool {
    let Ok(stat) = std::fs::read(proc_dir.join("stat")) else {
        return false;
    };
    let Some((stat_comm, start_ticks)) = parse_stat(&stat) else {
        return false;
    };
    // The kernel's own conversion (nsec_to_clock_t), for USER_HZ dividing 1e9.
    let ticks = start_boottime / (1_000_000_000 / clk_tck.clamp(1, 1_000_000_000));
    stat_comm == comm.as_bytes() && ticks.abs_diff(start_ticks) <= 1
}

/// (comm, starttime) from `/proc/PID/stat`: comm is between the first '(' and the last
/// ')' (it may contain both); starttime is field 22.
fn parse_stat(stat: &[u8]) -> Option<(&[u8], u64)> {
    let open = stat.iter().position(|&b| b == b'(')?;
    let close = stat.iter().rposition(|&b| b == b')')?;
    let comm = stat.get(open + 1..close)?;
    let rest = std::str::from_utf8(stat.get(close + 1..)?).ok()?;
    let start = rest.split_ascii_whitespace().nth(19)?.parse().ok()?;
    Some((comm, start))
}

fn read_cmdline(path: &Path) -> Vec<OsString> {
    std::fs::read(path)
        .map(|b| split_cmdline(&b))
        .unwrap_or_default()
}

/// NUL-separated arguments (one trailing NUL, if any, ends the last one).
fn split_cmdline(bytes: &[u8]) -> Vec<OsString> {
    use std::os::unix::ffi::OsStrExt;
    let body = bytes.strip_suffix(&[0]).unwrap_or(bytes);
    if body.is_empty() {
        return Vec::new();
    }
    body.split(|&b| b == 0)
        .map(|arg| std::ffi::OsStr::from_bytes(arg).to_os_string())
        .collect()
}

pub(crate) fn c_string(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clocks() -> ClockOffsets {
        ClockOffsets {
            mono: 1_000,
            boot: 2_000,
            clk_tck: 100,
        }
    }

    fn sys_bytes(kind: u32, op: u32, family: u16) -> Vec<u8> {
        let mut raw = RawSysEvent {
            kind,
            op,
            ts_enter: 10,
            ts_exit: 20,
            ret: 77,
            bytes: 77,
            tgid: 42,
            tid: 43,
            fd: 5,
            role: L7_ROLE_CLIENT,
            comm: [0; 16],
            sock: RawSockTuple {
                laddr: [0; 16],
                raddr: [0; 16],
                lport: 40000,
                rport: 8000,
                family,
                pad0: 0,
                netns: 4026531840,
                pad1: 0,
            },
        };
        raw.comm[..4].copy_from_slice(b"curl");
        raw.sock.laddr[10..].copy_from_slice(&[0xff, 0xff, 127, 0, 0, 1]);
        raw.sock.raddr[10..].copy_from_slice(&[0xff, 0xff, 127, 0, 0, 2]);
        let mut out = vec![0u8; size_of::<RawSysEvent>()];
        // SAFETY: out has exactly size_of::<RawSysEvent>() bytes.
        unsafe { std::ptr::write_unaligned(out.as_mut_ptr().cast::<RawSysEvent>(), raw) };
        out
    }

    #[test]
    fn decodes_io_event_with_ipv4_tuple() {
        let ev = decode(&sys_bytes(L7_EV_IO, 9, AF_INET), &clocks());
        let Some(SyscallEvent::Io { op, bytes, call }) = ev else {
            panic!("not an Io event: {ev:?}");
        };
        assert_eq!(op, IoOp::Recvfrom);
        assert_eq!(bytes, 77);
        assert_eq!(call.comm, "curl");
        assert_eq!((call.enter_ns, call.exit_ns), (1_010, 1_020));
        assert_eq!(call.socket.local, "127.0.0.1:40000".parse().unwrap());
        assert_eq!(call.socket.remote, "127.0.0.2:8000".parse().unwrap());
        assert_eq!(call.role, Role::Client);
    }

    #[test]
    fn decodes_seen_events_of_connections_mode() {
        let ev = decode(&sys_bytes(L7_EV_SEEN, 9, AF_INET), &clocks());
        let Some(SyscallEvent::Seen { op, call }) = ev else {
            panic!("not a Seen event: {ev:?}");
        };
        assert_eq!(op, Some(IoOp::Recvfrom));
        assert_eq!((call.enter_ns, call.exit_ns), (1_010, 1_020));
        // Not from a read/write-family syscall (io_uring...): no op.
        let ev = decode(&sys_bytes(L7_EV_SEEN, 0, AF_INET), &clocks());
        assert!(
            matches!(ev, Some(SyscallEvent::Seen { op: None, .. })),
            "{ev:?}"
        );
        // Open time 0: the connection predates the recording, and stays 0.
        let mut raw = sys_bytes(L7_EV_SEEN, 9, AF_INET);
        raw[offset_of!(RawSysEvent, ts_enter)..][..8].copy_from_slice(&0u64.to_ne_bytes());
        let Some(SyscallEvent::Seen { call, .. }) = decode(&raw, &clocks()) else {
            panic!("not a Seen event");
        };
        assert_eq!((call.enter_ns, call.exit_ns), (0, 1_020));
        // The end of a reported connection.
        let ev = decode(&sys_bytes(L7_EV_ENDED, L7_OP_CLOSE, AF_INET), &clocks());
        let Some(SyscallEvent::Ended { call }) = ev else {
            panic!("not an Ended event: {ev:?}");
        };
        assert_eq!((call.enter_ns, call.exit_ns), (1_010, 1_020));
        assert_eq!(call.socket.local, "127.0.0.1:40000".parse().unwrap());
    }

    #[test]
    fn decodes_conn_events() {
        let ev = decode(&sys_bytes(L7_EV_CONN, L7_OP_ACCEPT4, AF_INET6), &clocks());
        let Some(SyscallEvent::Accept { accept4, call }) = ev else {
            panic!("not an Accept event: {ev:?}");
        };
        assert!(accept4);
        assert_eq!(
            call.socket.local.ip(),
            "::ffff:127.0.0.1".parse::<IpAddr>().unwrap()
        );
    }

    #[test]
    fn rejects_short_or_unknown_records() {
        let full = sys_bytes(L7_EV_IO, 5, AF_INET);
        assert!(decode(&full[..full.len() - 1], &clocks()).is_none());
        assert!(decode(&full[..2], &clocks()).is_none());
        assert!(decode(&[], &clocks()).is_none());
        assert!(decode(&sys_bytes(99, 5, AF_INET), &clocks()).is_none());
        assert!(decode(&sys_bytes(L7_EV_IO, 99, AF_INET), &clocks()).is_none());
        assert!(decode(&sys_bytes(L7_EV_IO, 5, 1), &clocks()).is_none());
    }

    /// A process event as the kernel would send it, for pid `tgid`.
    fn proc_event(tgid: u32, comm: &str, exe_leaf_first: &[u8], cmdline: &[u8]) -> RawProcEvent {
        let mut raw = RawProcEvent {
            kind: L7_EV_PROC,
            reason: L7_PROC_FIRST_SEEN,
            tgid,
            ppid: 1,
            ts: 5,
            start_boottime: 7_000_000_000,
            comm: [0; 16],
            netns: 4026531840,
            flags: 0,
            cmdline_len: u32::try_from(cmdline.len()).unwrap(),
            cmdline_copied: u32::try_from(cmdline.len().min(L7_CMDLINE_MAX)).unwrap(),
            exe_len: u32::try_from(exe_leaf_first.len()).unwrap(),
            pad0: 0,
            cmdline: [0xAA; L7_CMDLINE_MAX], // not zeroed by the kernel either
            exe: [0xAA; L7_EXE_BUF],
        };
        raw.comm[..comm.len()].copy_from_slice(comm.as_bytes());
        let n = cmdline.len().min(L7_CMDLINE_MAX);
        raw.cmdline[..n].copy_from_slice(&cmdline[..n]);
        raw.exe[..exe_leaf_first.len()].copy_from_slice(exe_leaf_first);
        raw
    }

    fn decode_raw_proc(raw: RawProcEvent) -> ProcessInfo {
        let mut bytes = vec![0u8; size_of::<RawProcEvent>()];
        // SAFETY: bytes has exactly size_of::<RawProcEvent>() bytes.
        unsafe { std::ptr::write_unaligned(bytes.as_mut_ptr().cast::<RawProcEvent>(), raw) };
        match decode(&bytes, &clocks()) {
            Some(SyscallEvent::Process(p)) => p,
            other => panic!("not a process event: {other:?}"),
        }
    }

    /// Beyond pid_max (at most 2^22): never a live process.
    const GONE_PID: u32 = 0x7fff_fff0;

    #[test]
    fn process_identity_from_kernel_when_gone() {
        let raw = proc_event(
            GONE_PID,
            "curl",
            b"curl\0bin\0usr\0",
            b"curl\0-s\0\0http://x/\0",
        );
        let p = decode_raw_proc(raw);
        assert_eq!(p.exe.as_deref(), Some(Path::new("/usr/bin/curl")));
        assert_eq!(p.cmdline, ["curl", "-s", "", "http://x/"]);
        assert!(!p.cmdline_truncated);
        assert_eq!(p.comm, "curl");
        assert_eq!(p.start_ns, 7_000_002_000);

        // Walk cut short: a relative path that still ends in the file name.
        let mut raw = proc_event(GONE_PID, "curl", b"curl\0bin\0", b"curl\0");
        raw.flags = L7_PROC_F_EXE_PARTIAL;
        assert_eq!(
            decode_raw_proc(raw).exe.as_deref(),
            Some(Path::new("bin/curl"))
        );

        // A file at the root of its mount tree.
        let raw = proc_event(GONE_PID, "init", b"init\0", b"");
        assert_eq!(
            decode_raw_proc(raw).exe.as_deref(),
            Some(Path::new("/init"))
        );
    }

    #[test]
    fn kernel_cmdline_truncation_and_faults() {
        let long: Vec<u8> = [b"prog\0".as_slice(), &[b'a'; 3000], b"\0"].concat();
        let p = decode_raw_proc(proc_event(GONE_PID, "prog", b"prog\0", &long));
        assert!(p.cmdline_truncated);
        assert_eq!(p.cmdline.len(), 2);
        assert_eq!(p.cmdline[1].len(), L7_CMDLINE_MAX - 5);

        let mut raw = proc_event(GONE_PID, "prog", b"prog\0", b"prog\0");
        raw.flags = L7_PROC_F_CMDLINE_FAULT;
        raw.cmdline_copied = 0;
        let p = decode_raw_proc(raw);
        assert!(p.cmdline.is_empty() && !p.cmdline_truncated);

        // Kernel thread: nothing, whatever the buffers hold.
        let mut raw = proc_event(GONE_PID, "kworker/0:1", b"x\0", b"x\0");
        raw.flags = L7_PROC_F_NO_MM;
        let p = decode_raw_proc(raw);
        assert_eq!((p.exe, p.cmdline.len()), (None, 0));
    }

    /// This test process as the kernel would report it (start time from /proc).
    fn own_event(comm: &str, exe_leaf_first: &[u8], cmdline: &[u8]) -> RawProcEvent {
        let stat = std::fs::read("/proc/self/stat").unwrap();
        let (_, ticks) = parse_stat(&stat).unwrap();
        let hz = clocks().clk_tck;
        let mut raw = proc_event(std::process::id(), comm, exe_leaf_first, cmdline);
        raw.start_boottime = ticks * (1_000_000_000 / hz) + 1234;
        raw
    }

    #[test]
    fn prefers_proc_for_the_same_live_process() {
        let stat = std::fs::read("/proc/self/stat").unwrap();
        let (comm, _) = parse_stat(&stat).unwrap();
        let comm = String::from_utf8(comm.to_vec()).unwrap();
        let exe = std::env::current_exe().unwrap();
        let leaf = exe.file_name().unwrap().to_string_lossy().into_owned();
        let proc_cmdline = std::fs::read("/proc/self/cmdline").unwrap();
        let first_arg = proc_cmdline.split(|&b| b == 0).next().unwrap().to_vec();
        let leaf_nul = format!("{leaf}\0");

        // Same process, consistent: /proc's exact path and full cmdline.
        let kernel_cmd = [first_arg.as_slice(), b"\0"].concat();
        let raw = own_event(&comm, leaf_nul.as_bytes(), &kernel_cmd);
        let p = decode_raw_proc(raw);
        assert_eq!(p.exe.as_deref(), Some(exe.as_path()));
        assert_eq!(p.cmdline, split_cmdline(&proc_cmdline));

        // Different start time (pid reuse): the kernel's values.
        let mut raw = own_event(&comm, b"other\0", b"other\0");
        raw.start_boottime += 10_000_000_000;
        let p = decode_raw_proc(raw);
        assert_eq!(p.exe.as_deref(), Some(Path::new("/other")));
        assert_eq!(p.cmdline, ["other"]);

        // Different comm (exec'd since the event): the kernel's values.
        let p = decode_raw_proc(own_event("bash", b"bash\0bin\0", b"bash\0-c\0"));
        assert_eq!(p.exe.as_deref(), Some(Path::new("/bin/bash")));
        assert_eq!(p.cmdline, ["bash", "-c"]);

        // Same process but argv rewritten / a different exe name: the kernel's values.
        let p = decode_raw_proc(own_event(&comm, b"other\0", b"worker: idle\0"));
        assert_eq!(p.exe.as_deref(), Some(Path::new("/other")));
        assert_eq!(p.cmdline, ["worker: idle"]);
    }

    #[test]
    fn stat_comm_may_hold_parentheses_and_spaces() {
        let stat = b"42 (a) b (c) S 1 42 42 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 777 0 0";
        assert_eq!(parse_stat(stat), Some((b"a) b (c".as_slice(), 777)));
        assert_eq!(parse_stat(b"42 (x"), None);
    }

    #[test]
    fn cmdline_splits_at_nul() {
        let dir = std::env::temp_dir().join(format!("l7rec-cmdline-{}", std::process::id()));
        std::fs::write(&dir, b"curl\0-s\0\0http://x/\0").unwrap();
        let args = read_cmdline(&dir);
        let _ = std::fs::remove_file(&dir);
        assert_eq!(args, ["curl", "-s", "", "http://x/"]);
    }
}
