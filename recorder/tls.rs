//! TLS plaintext: uprobes on OpenSSL 3 (`libssl.so.3`) and synthesized TCP/IP packets.
//!
//! [`TlsTracer`] loads `bpf/tls.bpf.c` and attaches it to `SSL_read`, `SSL_read_ex`,
//! `SSL_write`, `SSL_write_ex`, `SSL_do_handshake` (entry and return) and `SSL_free` of
//! each library given, for every process (pid -1) — the BPF side keeps only tasks of the
//! recorder's network namespace. Its records carry the plaintext in chunks of at most 16 KiB, each with its
//! offset in the per-connection, per-direction plaintext stream, the process, and the
//! socket's 4-tuple (learned from a receive made inside an SSL call on that object).
//!
//! [`TlsSynth`] turns those chunks into IPv4/IPv6 TCP segments with the real addresses
//! and ports, for a dedicated capture interface ([`TLS_INTERFACE`], raw IP): per
//! connection a synthesized three-way handshake, sequence numbers = fixed ISN + stream
//! offset (so bytes the kernel could not deliver are a hole, shown as "previous segment
//! not captured", never silently shifted), valid checksums, and FINs on `SSL_free`.
//! Wireshark and the analyzer see the decrypted HTTP as an ordinary TCP stream.
//!
//! When both ends of a connection are traced (curl and nginx on one host), the same
//! bytes are reported twice. Each direction is written from the first end to report it
//! (the writer, whose `SSL_write` is seen before the peer's `SSL_read` returns), the
//! other end's copies are skipped (counted in [`SynthStats::peer_copies`]), and the FIN
//! waits until every end that reported the connection has called `SSL_free`: a response
//! the client never reads is still captured from the server's writes.

use std::collections::HashMap;
use std::io;
use std::mem::{offset_of, size_of, MaybeUninit};
use std::net::{IpAddr, SocketAddr};
use std::os::fd::AsFd;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use l7rec_capture::{CaptureWriter, Direction, Interface, PacketOut, SourceStats};
use libbpf_rs::skel::{OpenSkel, Skel, SkelBuilder};
use libbpf_rs::{
    Link, MapCore, MapFlags, OpenObject, ProgramAttachType, ProgramMut, UprobeMultiOpts, UprobeOpts,
};

use crate::conn_key::ConnKey;
use crate::elf_syms;
use crate::files::same_file;
use crate::output::Output;
use crate::redact::Redactor;
use crate::ring_events::DecodedRing;
use crate::syscalls::TlsSocketMaps;
use crate::syscalls::{self, c_string, RawSockTuple};

mod skel {
    include!(concat!(env!("OUT_DIR"), "/tls.skel.rs"));
}
use skel::{TlsSkel, TlsSkelBuilder};

/// Name of the capture interface that carries the synthesized plaintext packets.
pub const TLS_INTERFACE: &str = "l7rec-tls";
/// Where Debian/Ubuntu (x86-64) keep OpenSSL 3's libssl.
pub const DEFAULT_LIBSSL: &str = "/usr/lib/x86_64-linux-gnu/libssl.so.3";
/// Environment variable that makes the TLS tracer attach one uprobe per function even
/// where uprobe.multi links work (troubleshooting, and tests of that path).
pub const NO_UPROBE_MULTI_ENV: &str = "L7REC_NO_UPROBE_MULTI";
/// Default ringbuf size.
pub const DEFAULT_RINGBUF_BYTES: u32 = 32 << 20;

/// First sequence number (of the SYN) of the client → server direction.
const ISN_CLIENT: u32 = 0x1000_0000;
/// First sequence number (of the SYN) of the server → client direction.
const ISN_SERVER: u32 = 0x2000_0000;
/// Largest TCP payload per synthesized segment (IPv4 total length is 16 bits).
const MAX_SEGMENT: usize = 65_000;
/// Chunks of a connection whose socket is not known yet, kept per SSL object.
const PENDING_MAX_BYTES: usize = 4 << 20;
/// How long a closed connection's 4-tuple remembers its peers (whose late copies are
/// then skipped) and unresolved chunks wait for their socket.
const LINGER: Duration = Duration::from_secs(10);

/// libssl's `libssl.so.3` on this system: the Debian path, else what `ldconfig -p` knows.
pub fn find_libssl() -> Option<PathBuf> {
    let default = Path::new(DEFAULT_LIBSSL);
    if default.exists() {
        return Some(default.to_owned());
    }
    let out = Command::new("ldconfig").arg("-p").output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    parse_ldconfig(&text, std::env::consts::ARCH)
}

/// The `libssl.so.3` entry of `ldconfig -p` output for `arch` (x86_64, aarch64).
fn parse_ldconfig(text: &str, arch: &str) -> Option<PathBuf> {
    let want = match arch {
        "x86_64" => "x86-64",
        "aarch64" => "AArch64",
        _ => "",
    };
    text.lines()
        .filter_map(|l| {
            let l = l.trim();
            let (lhs, path) = l.split_once("=>")?;
            lhs.trim()
                .starts_with("libssl.so.3 ")
                .then(|| (lhs.to_owned(), PathBuf::from(path.trim())))
        })
        .find(|(lhs, _)| want.is_empty() || lhs.contains(want))
        .map(|(_, p)| p)
}

/// What to trace.
#[derive(Debug, Default)]
pub struct TlsConfig {
    /// libssl files to attach to (each must export the SSL_* functions).
    pub libs: Vec<PathBuf>,
    /// Only this process (tgid); `None` = all.
    pub pid: Option<u32>,
    /// Network namespace inode whose tasks are traced; `None` = the calling thread's.
    pub netns_ino: Option<u32>,
    /// Ringbuf size in bytes (power of two); 0 = default.
    pub ringbuf_bytes: u32,
    /// The syscall tracer's maps, when its receive program notes sockets for this
    /// tracer; `None`: it attaches a receive program of its own.
    pub socket_maps: Option<TlsSocketMaps>,
}

/// A TCP socket's endpoints from the traced process's point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Endpoints {
    /// Local address and port.
    pub local: SocketAddr,
    /// Remote address and port.
    pub remote: SocketAddr,
}

/// Plaintext moved by one SSL call (one chunk of it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsData {
    /// ns since the Unix epoch (call entry for writes, return for reads).
    pub ts_ns: u64,
    /// The SSL object (per process).
    pub ssl: u64,
    /// Process id.
    pub pid: u32,
    /// Thread id.
    pub tid: u32,
    /// Thread comm.
    pub comm: String,
    /// True for SSL_read*: the bytes came from the peer.
    pub read: bool,
    /// Offset of `data[0]` in this direction's plaintext stream.
    pub stream_off: u64,
    /// The socket, if known.
    pub socket: Option<Endpoints>,
    /// The bytes.
    pub data: Vec<u8>,
}

/// A decoded record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsEvent {
    /// Plaintext.
    Data(TlsData),
    /// `SSL_free` of an SSL object that moved data.
    Close {
        /// ns since the Unix epoch.
        ts_ns: u64,
        /// The SSL object.
        ssl: u64,
        /// Process id.
        pid: u32,
        /// The socket, if known.
        socket: Option<Endpoints>,
    },
}

/// Kernel-side counters (summed over CPUs).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TlsCounters {
    /// Records submitted.
    pub chunks: u64,
    /// Plaintext bytes submitted.
    pub bytes: u64,
    /// Records lost: ringbuf full.
    pub drop_chunks: u64,
    /// Their bytes.
    pub drop_bytes: u64,
    /// Bytes that could not be read from the process.
    pub fault_bytes: u64,
    /// Calls larger than 16 MiB (their tail is not copied).
    pub trunc_calls: u64,
    /// Bytes beyond 16 MiB not copied.
    pub trunc_bytes: u64,
    /// Calls not tracked: per-thread state table full.
    pub state_full: u64,
}

/// A loaded and attached TLS tracer. Detaches on drop. Not `Send`.
pub struct TlsTracer {
    // Field order is drop order: links and ringbuf before the skeleton.
    _links: Vec<Link>,
    events: DecodedRing<TlsEvent>,
    skel: TlsSkel<'static>,
    libs: Vec<PathBuf>,
    multi: bool,
}

impl TlsTracer {
    /// Loads the programs and attaches them to every library of `cfg.libs`: with one
    /// uprobe.multi link per program and library where the kernel has them (6.6+),
    /// else one uprobe per function. Stopping detaches 2 links per library instead of
    /// 11; each detach waits ~0.1 s in the kernel.
    pub fn start(cfg: TlsConfig) -> Result<Self> {
        if cfg.libs.is_empty() {
            bail!("no libssl to attach to");
        }
        for lib in &cfg.libs {
            if !lib.is_file() {
                bail!("TLS library {} does not exist", lib.display());
            }
        }
        if std::env::var_os(NO_UPROBE_MULTI_ENV).is_some() {
            return Self::load(&cfg, false);
        }
        Self::load(&cfg, true).or_else(|_| Self::load(&cfg, false))
    }

    fn load(cfg: &TlsConfig, multi: bool) -> Result<Self> {
        let netns_ino = match cfg.netns_ino {
            Some(ino) => ino,
            None => {
                let md = std::fs::metadata("/proc/thread-self/ns/net")
                    .context("reading /proc/thread-self/ns/net")?;
                u32::try_from(md.ino()).context("netns inode does not fit 32 bits")?
            }
        };
        let mono_to_epoch = realtime_minus_monotonic()?;

        // Same 'static trick as the syscall tracer: leak the small OpenObject wrapper.
        let object: &'static mut MaybeUninit<OpenObject> =
            Box::leak(Box::new(MaybeUninit::uninit()));
        let mut open = TlsSkelBuilder::default()
            .open(object)
            .context("opening the TLS BPF object")?;
        let rodata = open
            .maps
            .rodata_data
            .as_deref_mut()
            .ok_or_else(|| anyhow!("TLS BPF object has no .rodata"))?;
        rodata.self_tgid = std::process::id();
        rodata.target_tgid = cfg.pid.unwrap_or(0);
        rodata.netns_ino = netns_ino;
        let rb = if cfg.ringbuf_bytes == 0 {
            DEFAULT_RINGBUF_BYTES
        } else {
            cfg.ringbuf_bytes
        };
        if !rb.is_power_of_two() || rb < 4096 {
            bail!("TLS ringbuf size {rb} must be a power of two of at least 4096 bytes");
        }
        open.maps.tls_events.set_max_entries(rb)?;
        if let Some(shared) = &cfg.socket_maps {
            open.maps
                .tls_calls
                .reuse_fd(shared.calls.as_fd())
                .context("sharing the syscall tracer's tls_calls map")?;
            open.maps
                .tls_inflight
                .reuse_fd(shared.inflight.as_fd())
                .context("sharing the syscall tracer's tls_inflight map")?;
            // Its program on the same tracepoint does this job.
            open.progs.l7_tls_sock_recv.set_autoload(false);
        }
        if multi {
            for prog in [&mut open.progs.l7_ssl_enter, &mut open.progs.l7_ssl_ret] {
                prog.set_attach_type(ProgramAttachType::TraceUprobeMulti);
            }
        }
        let mut skel = open.load().context(
            "loading the TLS BPF programs (uprobes, bpf_loop, tp_btf/sock_recv_length: kernel 6.3+)",
        )?;
        skel.attach()
            .context("attaching tp_btf/sock_recv_length for the TLS tracer")?;

        let mut links = Vec::new();
        for lib in &cfg.libs {
            let (enter, ret) = (&skel.progs.l7_ssl_enter, &skel.progs.l7_ssl_ret);
            let attached = if multi {
                attach_multi(enter, ret, lib, &mut links)
            } else {
                attach_each(enter, ret, lib, &mut links)
            };
            attached.with_context(|| {
                format!(
                    "attaching uprobes to {} (is it OpenSSL 1.1.1/3.x's libssl?)",
                    lib.display()
                )
            })?;
        }

        let events = DecodedRing::new(
            &skel.maps.tls_events,
            move |data: &[u8]| decode(data, mono_to_epoch),
            "TLS ringbuf",
        )?;
        Ok(Self {
            _links: links,
            events,
            skel,
            libs: cfg.libs.clone(),
            multi,
        })
    }

    /// The libraries attached to.
    pub fn libs(&self) -> &[PathBuf] {
        &self.libs
    }

    /// How the uprobes are attached, for the start-up message.
    pub fn attach_mode(&self) -> &'static str {
        if self.multi {
            "uprobe.multi links"
        } else {
            "one uprobe per function"
        }
    }

    /// Waits up to `timeout` for records and hands each event to `f`; returns how many.
    pub fn poll(&mut self, timeout: Duration, f: &mut impl FnMut(TlsEvent)) -> Result<usize> {
        self.events.poll(timeout, f)
    }

    /// Records that could not be decoded (ABI mismatch); should be 0.
    pub fn malformed(&self) -> u64 {
        self.events.malformed()
    }

    /// The kernel's counters.
    pub fn counters(&self) -> TlsCounters {
        let mut v = [0u64; L7_TLS_C_MAX];
        for (i, slot) in v.iter_mut().enumerate() {
            let key = (i as u32).to_ne_bytes();
            if let Ok(Some(per_cpu)) = self
                .skel
                .maps
                .tls_counters
                .lookup_percpu(&key, MapFlags::ANY)
            {
                *slot = per_cpu
                    .iter()
                    .filter_map(|b| b.get(..8)?.try_into().ok().map(u64::from_ne_bytes))
                    .sum();
            }
        }
        TlsCounters {
            chunks: v[0],
            bytes: v[1],
            drop_chunks: v[2],
            drop_bytes: v[3],
            fault_bytes: v[4],
            trunc_calls: v[5],
            trunc_bytes: v[6],
            state_full: v[7],
        }
    }
}

/// The functions the entry program is attached to, with their `enum l7_tls_op`
/// (bpf/l7rec.h), its attach cookie.
const ENTRY_PROBES: [(&str, u64); 6] = [
    ("SSL_read", 1),
    ("SSL_read_ex", 2),
    ("SSL_write", 3),
    ("SSL_write_ex", 4),
    ("SSL_do_handshake", 5),
    ("SSL_free", 6),
];
/// The functions whose return is probed: all but `SSL_free`.
const RETURN_PROBES: [&str; 5] = [
    "SSL_read",
    "SSL_read_ex",
    "SSL_write",
    "SSL_write_ex",
    "SSL_do_handshake",
];

/// Attaches `enter` and `ret` to `lib` with one uprobe.multi link each.
fn attach_multi(
    enter: &ProgramMut,
    ret: &ProgramMut,
    lib: &Path,
    links: &mut Vec<Link>,
) -> Result<()> {
    // Offsets, not names: see elf_syms.
    let offsets = |names: &[&str]| -> Result<Vec<usize>> {
        elf_syms::function_offsets(lib, names)?
            .into_iter()
            .map(|o| usize::try_from(o).context("offset beyond the address space"))
            .collect()
    };
    links.push(enter.attach_uprobe_multi_with_opts(
        -1,
        lib,
        "",
        UprobeMultiOpts {
            offsets: offsets(&ENTRY_PROBES.map(|(f, _)| f))?,
            cookies: ENTRY_PROBES.map(|(_, op)| op).to_vec(),
            ..Default::default()
        },
    )?);
    links.push(ret.attach_uprobe_multi_with_opts(
        -1,
        lib,
        "",
        UprobeMultiOpts {
            offsets: offsets(&RETURN_PROBES)?,
            retprobe: true,
            ..Default::default()
        },
    )?);
    Ok(())
}

/// Attaches `enter` and `ret` to `lib` with one uprobe per function.
fn attach_each(
    enter: &ProgramMut,
    ret: &ProgramMut,
    lib: &Path,
    links: &mut Vec<Link>,
) -> Result<()> {
    let probes = ENTRY_PROBES
        .iter()
        .map(|&(func, cookie)| (func, enter, false, cookie))
        .chain(RETURN_PROBES.iter().map(|&func| (func, ret, true, 0)));
    for (func, prog, retprobe, cookie) in probes {
        let opts = UprobeOpts {
            retprobe,
            cookie,
            func_name: Some(func.to_owned()),
            ..Default::default()
        };
        let link = prog
            .attach_uprobe_with_opts(-1, lib, 0, opts)
            .with_context(|| format!("uprobe on {func}"))?;
        links.push(link);
    }
    Ok(())
}

/// CLOCK_REALTIME - CLOCK_MONOTONIC (bpf_ktime_get_ns), from the tightest sample.
fn realtime_minus_monotonic() -> Result<i128> {
    fn now(clock: libc::clockid_t) -> Result<i128> {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `ts` is a valid, writable timespec.
        if unsafe { libc::clock_gettime(clock, &mut ts) } != 0 {
            return Err(io::Error::last_os_error()).context("clock_gettime");
        }
        Ok(i128::from(ts.tv_sec) * 1_000_000_000 + i128::from(ts.tv_nsec))
    }
    let mut best: Option<(i128, i128)> = None;
    for _ in 0..5 {
        let a = now(libc::CLOCK_MONOTONIC)?;
        let real = now(libc::CLOCK_REALTIME)?;
        let b = now(libc::CLOCK_MONOTONIC)?;
        let sample = (b - a, real - (a + b) / 2);
        if best.is_none_or(|(w, _)| sample.0 < w) {
            best = Some(sample);
        }
    }
    best.map(|(_, off)| off)
        .ok_or_else(|| anyhow!("no clock sample"))
}

// ---- ringbuf record layout: exact mirror of bpf/l7rec.h ("TLS path") ----

const L7_TLS_DATA: u32 = 1;
const L7_TLS_CLOSE: u32 = 2;
const L7_TLS_F_READ: u32 = 1 << 0;
const L7_TLS_F_NO_TUPLE: u32 = 1 << 1;
const L7_TLS_C_MAX: usize = 8;
const L7_TLS_CHUNK: usize = 16384;

/// `struct l7_tls_event` (data follows)
#[repr(C)]
#[derive(Clone, Copy)]
struct RawTlsEvent {
    kind: u32,
    flags: u32,
    ts: u64,
    ssl: u64,
    stream_off: u64,
    tgid: u32,
    tid: u32,
    len: u32,
    fd: i32,
    read_off: u64,
    comm: [u8; 16],
    sock: RawSockTuple,
}

const _: () = {
    assert!(size_of::<RawSockTuple>() == 48);
    assert!(size_of::<RawTlsEvent>() == 120);
    assert!(offset_of!(RawTlsEvent, stream_off) == 24);
    assert!(offset_of!(RawTlsEvent, len) == 40);
    assert!(offset_of!(RawTlsEvent, read_off) == 48);
    assert!(offset_of!(RawTlsEvent, comm) == 56);
    assert!(offset_of!(RawTlsEvent, sock) == 72);
};

fn decode(data: &[u8], mono_to_epoch: i128) -> Option<TlsEvent> {
    if data.len() < size_of::<RawTlsEvent>() {
        return None;
    }
    // SAFETY: length checked; RawTlsEvent is repr(C) with integer fields only (any bit
    // pattern is valid); read_unaligned copes with the ringbuf's alignment.
    let raw: RawTlsEvent = unsafe { std::ptr::read_unaligned(data.as_ptr().cast()) };
    let ts_ns = u64::try_from((i128::from(raw.ts) + mono_to_epoch).max(0)).unwrap_or(u64::MAX);
    let socket = if raw.flags & L7_TLS_F_NO_TUPLE != 0 {
        None
    } else {
        Some(decode_tuple(&raw.sock)?)
    };
    match raw.kind {
        L7_TLS_DATA => {
            let len = raw.len as usize;
            if len == 0 || len > L7_TLS_CHUNK {
                return None;
            }
            let body = data.get(size_of::<RawTlsEvent>()..size_of::<RawTlsEvent>() + len)?;
            Some(TlsEvent::Data(TlsData {
                ts_ns,
                ssl: raw.ssl,
                pid: raw.tgid,
                tid: raw.tid,
                comm: c_string(&raw.comm),
                read: raw.flags & L7_TLS_F_READ != 0,
                stream_off: raw.stream_off,
                socket,
                data: body.to_vec(),
            }))
        }
        L7_TLS_CLOSE => Some(TlsEvent::Close {
            ts_ns,
            ssl: raw.ssl,
            pid: raw.tgid,
            socket,
        }),
        _ => None,
    }
}

/// Addresses as packets show them: IPv4-mapped IPv6 (dual-stack sockets) become IPv4.
fn decode_tuple(raw: &RawSockTuple) -> Option<Endpoints> {
    let t = syscalls::decode_tuple(raw)?;
    let canonical = |a: SocketAddr| SocketAddr::new(a.ip().to_canonical(), a.port());
    let (local, remote) = (canonical(t.local), canonical(t.remote));
    // A v4-mapped address talking to a real IPv6 one cannot be one IP packet.
    if local.is_ipv4() != remote.is_ipv4() {
        return None;
    }
    Some(Endpoints { local, remote })
}

// ---- synthesizing TCP/IP ----

/// A synthesized packet for the TLS interface (raw IP).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SynthPacket {
    /// ns since the Unix epoch.
    pub ts_ns: u64,
    /// IPv4 or IPv6 packet.
    pub data: Vec<u8>,
    /// Process and thread that made the SSL call.
    pub pid: u32,
    /// Thread.
    pub tid: u32,
    /// `pid=... comm=... tls`.
    pub comment: String,
}

/// Counters of the synthesizer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SynthStats {
    /// Data events received.
    pub chunks: u64,
    /// Data events of a direction already written from the other end (skipped).
    pub peer_copies: u64,
    /// Chunks dropped because their socket never became known.
    pub unresolved_chunks: u64,
    /// Packets produced.
    pub packets: u64,
}

#[derive(Debug, Default)]
struct DirState {
    /// The end whose copy of this direction is written: the first to report it.
    source: Option<EndId>,
    /// Stream offset that maps to ISN + 1; set by the first chunk seen.
    base: Option<u64>,
    /// Highest relative end offset sent so far.
    end: u64,
}

/// An end of a connection as the tracer names it: (pid, SSL *).
type EndId = (u32, u64);

#[derive(Debug)]
struct Flow {
    client: SocketAddr,
    server: SocketAddr,
    /// 0: client → server, 1: server → client.
    dirs: [DirState; 2],
    /// Every end that reported this connection, and whether it has closed.
    ends: Vec<(EndId, bool)>,
    ip_id: u16,
}

impl Flow {
    fn isn(dir: usize) -> u32 {
        if dir == 0 {
            ISN_CLIENT
        } else {
            ISN_SERVER
        }
    }

    /// Next sequence number expected from `dir` (what the other side acknowledges).
    fn next_seq(&self, dir: usize) -> u32 {
        Self::isn(dir)
            .wrapping_add(1)
            .wrapping_add(self.dirs[dir].end as u32)
    }
}

const TCP_FIN: u8 = 0x01;
const TCP_SYN: u8 = 0x02;
const TCP_PSH: u8 = 0x08;
const TCP_ACK: u8 = 0x10;

/// Turns TLS plaintext events into TCP/IP packets; see the module docs.
#[derive(Debug, Default)]
pub struct TlsSynth {
    flows: HashMap<ConnKey, Flow>,
    /// Closed connections: when, and their ends (whose late copies are skipped).
    closed: HashMap<ConnKey, (Instant, Vec<EndId>)>,
    /// Chunks whose socket is not known yet, per end.
    pending: HashMap<EndId, (Instant, usize, Vec<TlsData>)>,
    /// Counters.
    pub stats: SynthStats,
}

impl TlsSynth {
    /// Handles one event, handing the packets it yields to `out`.
    pub fn event(&mut self, ev: TlsEvent, out: &mut impl FnMut(SynthPacket)) {
        match ev {
            TlsEvent::Data(d) => {
                self.stats.chunks += 1;
                let id = (d.pid, d.ssl);
                let Some(sock) = d.socket else {
                    let entry = self
                        .pending
                        .entry(id)
                        .or_insert_with(|| (Instant::now(), 0, Vec::new()));
                    if entry.1 + d.data.len() > PENDING_MAX_BYTES {
                        self.stats.unresolved_chunks += 1;
                    } else {
                        entry.1 += d.data.len();
                        entry.2.push(d);
                    }
                    return;
                };
                if let Some((_, _, waiting)) = self.pending.remove(&id) {
                    for mut w in waiting {
                        w.socket = Some(sock);
                        self.data(w, sock, out);
                    }
                }
                self.data(d, sock, out);
            }
            TlsEvent::Close {
                ts_ns,
                ssl,
                pid,
                socket,
            } => {
                if let Some((_, _, waiting)) = self.pending.remove(&(pid, ssl)) {
                    self.stats.unresolved_chunks += waiting.len() as u64;
                }
                let Some(sock) = socket else { return };
                let key = ConnKey::either_way(sock.local, sock.remote);
                let Some(f) = self.flows.get_mut(&key) else {
                    return;
                };
                let Some(end) = f.ends.iter_mut().find(|(id, _)| *id == (pid, ssl)) else {
                    return;
                };
                end.1 = true;
                if f.ends.iter().all(|(_, closed)| *closed) {
                    if let Some(mut f) = self.flows.remove(&key) {
                        self.fin(&mut f, ts_ns, pid, out);
                        let ids = f.ends.iter().map(|(id, _)| *id).collect();
                        self.closed.insert(key, (Instant::now(), ids));
                    }
                }
            }
        }
    }

    /// Forgets closed connections and unresolved chunks older than [`LINGER`].
    pub fn expire(&mut self) {
        self.closed.retain(|_, (t, _)| t.elapsed() < LINGER);
        let mut dropped = 0;
        self.pending.retain(|_, (t, _, w)| {
            let keep = t.elapsed() < LINGER;
            if !keep {
                dropped += w.len() as u64;
            }
            keep
        });
        self.stats.unresolved_chunks += dropped;
    }

    fn data(&mut self, d: TlsData, sock: Endpoints, out: &mut impl FnMut(SynthPacket)) {
        let (src, dst) = if d.read {
            (sock.remote, sock.local)
        } else {
            (sock.local, sock.remote)
        };
        let key = ConnKey::either_way(src, dst);
        let id = (d.pid, d.ssl);
        if !self.flows.contains_key(&key) {
            if self
                .closed
                .get(&key)
                .is_some_and(|(_, ids)| ids.contains(&id))
            {
                self.stats.peer_copies += 1;
                return;
            }
            self.closed.remove(&key);
            // HTTP/1 clients speak first: the sender of the first byte is the client.
            let mut f = Flow {
                client: src,
                server: dst,
                dirs: Default::default(),
                ends: Vec::new(),
                ip_id: 0,
            };
            self.handshake(&mut f, &d, out);
            self.flows.insert(key, f);
        }
        let Some(f) = self.flows.get_mut(&key) else {
            return;
        };
        if !f.ends.iter().any(|(end, _)| *end == id) {
            f.ends.push((id, false));
        }
        let dir = usize::from(src != f.client);
        if *f.dirs[dir].source.get_or_insert(id) != id {
            self.stats.peer_copies += 1;
            return;
        }
        let base = *f.dirs[dir].base.get_or_insert(d.stream_off);
        let rel = d.stream_off.wrapping_sub(base);
        let comment = format!("pid={} comm={} tls", d.pid, d.comm);
        for (i, part) in d.data.chunks(MAX_SEGMENT).enumerate() {
            let off = rel.wrapping_add((i * MAX_SEGMENT) as u64);
            let seq = Flow::isn(dir).wrapping_add(1).wrapping_add(off as u32);
            let ack = f.next_seq(1 - dir);
            f.ip_id = f.ip_id.wrapping_add(1);
            let pkt = build_packet(src, dst, seq, ack, TCP_ACK | TCP_PSH, f.ip_id, part);
            let end = off.wrapping_add(part.len() as u64);
            if end > f.dirs[dir].end && end < 1 << 62 {
                f.dirs[dir].end = end;
            }
            self.stats.packets += 1;
            out(SynthPacket {
                ts_ns: d.ts_ns,
                data: pkt,
                pid: d.pid,
                tid: d.tid,
                comment: comment.clone(),
            });
        }
    }

    fn handshake(&mut self, f: &mut Flow, d: &TlsData, out: &mut impl FnMut(SynthPacket)) {
        let comment = format!("pid={} comm={} tls", d.pid, d.comm);
        let (c, s) = (f.client, f.server);
        let segs = [
            (c, s, ISN_CLIENT, 0, TCP_SYN),
            (
                s,
                c,
                ISN_SERVER,
                ISN_CLIENT.wrapping_add(1),
                TCP_SYN | TCP_ACK,
            ),
            (
                c,
                s,
                ISN_CLIENT.wrapping_add(1),
                ISN_SERVER.wrapping_add(1),
                TCP_ACK,
            ),
        ];
        for (src, dst, seq, ack, flags) in segs {
            f.ip_id = f.ip_id.wrapping_add(1);
            self.stats.packets += 1;
            out(SynthPacket {
                ts_ns: d.ts_ns,
                data: build_packet(src, dst, seq, ack, flags, f.ip_id, &[]),
                pid: d.pid,
                tid: d.tid,
                comment: comment.clone(),
            });
        }
    }

    fn fin(&mut self, f: &mut Flow, ts_ns: u64, pid: u32, out: &mut impl FnMut(SynthPacket)) {
        let comment = format!("pid={pid} tls");
        let (c, s) = (f.client, f.server);
        let (cs, ss) = (f.next_seq(0), f.next_seq(1));
        let segs = [
            (c, s, cs, ss, TCP_FIN | TCP_ACK),
            (s, c, ss, cs.wrapping_add(1), TCP_FIN | TCP_ACK),
            (c, s, cs.wrapping_add(1), ss.wrapping_add(1), TCP_ACK),
        ];
        for (src, dst, seq, ack, flags) in segs {
            f.ip_id = f.ip_id.wrapping_add(1);
            self.stats.packets += 1;
            out(SynthPacket {
                ts_ns,
                data: build_packet(src, dst, seq, ack, flags, f.ip_id, &[]),
                pid,
                tid: pid,
                comment: comment.clone(),
            });
        }
    }
}

/// Ones' complement sum of `data` (as big-endian 16-bit words) added to `sum`.
fn sum16(mut sum: u32, data: &[u8]) -> u32 {
    let mut chunks = data.chunks_exact(2);
    for w in &mut chunks {
        sum += u32::from(u16::from_be_bytes([w[0], w[1]]));
    }
    if let [last] = chunks.remainder() {
        sum += u32::from(*last) << 8;
    }
    sum
}

fn fold(mut sum: u32) -> u16 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// An IPv4 or IPv6 packet with a 20-byte TCP header and `payload`, checksums set.
/// Both addresses must be of the same family.
fn build_packet(
    src: SocketAddr,
    dst: SocketAddr,
    seq: u32,
    ack: u32,
    flags: u8,
    ip_id: u16,
    payload: &[u8],
) -> Vec<u8> {
    let tcp_len = 20 + payload.len();
    let mut tcp = Vec::with_capacity(tcp_len);
    tcp.extend_from_slice(&src.port().to_be_bytes());
    tcp.extend_from_slice(&dst.port().to_be_bytes());
    tcp.extend_from_slice(&seq.to_be_bytes());
    tcp.extend_from_slice(&(if flags & TCP_ACK != 0 { ack } else { 0 }).to_be_bytes());
    tcp.push(5 << 4);
    tcp.push(flags);
    tcp.extend_from_slice(&0xffffu16.to_be_bytes()); // window
    tcp.extend_from_slice(&[0, 0, 0, 0]); // checksum, urgent pointer
    tcp.extend_from_slice(payload);

    let mut pkt;
    let pseudo;
    match (src.ip(), dst.ip()) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            pkt = Vec::with_capacity(20 + tcp_len);
            pkt.push(0x45);
            pkt.push(0);
            pkt.extend_from_slice(&((20 + tcp_len) as u16).to_be_bytes());
            pkt.extend_from_slice(&ip_id.to_be_bytes());
            pkt.extend_from_slice(&0x4000u16.to_be_bytes()); // DF
            pkt.push(64);
            pkt.push(6);
            pkt.extend_from_slice(&[0, 0]);
            pkt.extend_from_slice(&s.octets());
            pkt.extend_from_slice(&d.octets());
            let c = fold(sum16(0, &pkt));
            pkt[10..12].copy_from_slice(&c.to_be_bytes());
            let mut p = Vec::with_capacity(12);
            p.extend_from_slice(&s.octets());
            p.extend_from_slice(&d.octets());
            p.extend_from_slice(&[0, 6]);
            p.extend_from_slice(&(tcp_len as u16).to_be_bytes());
            pseudo = p;
        }
        (s, d) => {
            let v6 = |a: IpAddr| match a {
                IpAddr::V6(a) => a,
                IpAddr::V4(a) => a.to_ipv6_mapped(),
            };
            let (s, d) = (v6(s), v6(d));
            pkt = Vec::with_capacity(40 + tcp_len);
            pkt.extend_from_slice(&0x6000_0000u32.to_be_bytes());
            pkt.extend_from_slice(&(tcp_len as u16).to_be_bytes());
            pkt.push(6);
            pkt.push(64);
            pkt.extend_from_slice(&s.octets());
            pkt.extend_from_slice(&d.octets());
            let mut p = Vec::with_capacity(40);
            p.extend_from_slice(&s.octets());
            p.extend_from_slice(&d.octets());
            p.extend_from_slice(&(tcp_len as u32).to_be_bytes());
            p.extend_from_slice(&[0, 0, 0, 6]);
            pseudo = p;
        }
    }
    let c = fold(sum16(sum16(0, &pseudo), &tcp));
    tcp[16..18].copy_from_slice(&c.to_be_bytes());
    pkt.extend_from_slice(&tcp);
    pkt
}

// ---- the recorder's use of all this ----

/// TLS capture inside `l7rec record`: tracer, synthesizer, the capture interface and an
/// optional redactor of its own (the plaintext flows' 4-tuples are the ciphertext's).
pub struct TlsRecording {
    tracer: TlsTracer,
    synth: TlsSynth,
    interface_id: u32,
    redactor: Option<Redactor>,
    scratch: Vec<SynthPacket>,
    events: u64,
}

/// What `--tls`, `--no-tls` and `--ssl-lib` ask for.
#[derive(Debug, Clone, Default)]
pub struct TlsChoice {
    /// `--tls` given.
    pub tls: bool,
    /// `--no-tls` given.
    pub no_tls: bool,
    /// `--ssl-lib` paths.
    pub libs: Vec<PathBuf>,
}

impl TlsRecording {
    /// Starts TLS capture as chosen and adds its interface to `writer`. `Ok(None)` when
    /// off (`--no-tls`, or by default when no libssl is found or attaching fails: a
    /// warning says why). Errors only when TLS capture was asked for explicitly.
    /// `socket_maps`: see [`TlsConfig::socket_maps`].
    pub fn start(
        choice: &TlsChoice,
        pid: Option<u32>,
        socket_maps: Option<TlsSocketMaps>,
        redact_headers: Option<&[String]>,
        writer: &mut CaptureWriter<Output>,
    ) -> Result<Option<Self>> {
        if choice.no_tls {
            return Ok(None);
        }
        let explicit = choice.tls || !choice.libs.is_empty();
        let mut libs = choice.libs.clone();
        if libs.is_empty() || choice.tls {
            match find_libssl() {
                Some(p) if !libs.iter().any(|l| same_file(l, &p)) => libs.insert(0, p),
                Some(_) => {}
                None if choice.libs.is_empty() => {
                    if explicit {
                        bail!(
                            "--tls: no libssl.so.3 found ({DEFAULT_LIBSSL} missing, not in \
                             `ldconfig -p`); name it with --ssl-lib PATH"
                        );
                    }
                    return Ok(None);
                }
                None => {}
            }
        }
        let tracer = match TlsTracer::start(TlsConfig {
            libs,
            pid,
            socket_maps,
            ..Default::default()
        }) {
            Ok(t) => t,
            Err(e) if !explicit => {
                eprintln!("l7rec: warning: TLS plaintext capture is off: {e:#}");
                return Ok(None);
            }
            Err(e) => return Err(e.context("starting TLS plaintext capture")),
        };
        let redactor = match redact_headers {
            Some(h) => Some(Redactor::new(h).map_err(|e| anyhow!("--redact-header: {e}"))?),
            None => None,
        };
        let libs: Vec<String> = tracer
            .libs()
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        let interface_id = writer.add_interface(&Interface {
            name: TLS_INTERFACE.to_owned(),
            description: Some(format!(
                "TLS plaintext from uprobes on {} (synthesized TCP/IP)",
                libs.join(", ")
            )),
            linktype: l7rec_capture::linktype::RAW,
            snaplen: 0,
        })?;
        Ok(Some(Self {
            tracer,
            synth: TlsSynth::default(),
            interface_id,
            redactor,
            scratch: Vec::new(),
            events: 0,
        }))
    }

    /// The tracer, for the start-up message.
    pub fn tracer(&self) -> &TlsTracer {
        &self.tracer
    }

    /// Reads what the kernel has and writes the synthesized packets; returns how many
    /// events were read.
    pub fn poll(&mut self, writer: &mut CaptureWriter<Output>) -> Result<usize> {
        let synth = &mut self.synth;
        let scratch = &mut self.scratch;
        let n = self.tracer.poll(Duration::ZERO, &mut |ev| {
            synth.event(ev, &mut |p| scratch.push(p))
        })?;
        self.events += n as u64;
        for mut p in self.scratch.drain(..) {
            if let Some(r) = self.redactor.as_mut() {
                r.redact_frame(l7rec_capture::linktype::RAW, &mut p.data);
            }
            writer.write_packet(&PacketOut {
                interface_id: self.interface_id,
                ts_ns: p.ts_ns,
                data: &p.data,
                orig_len: p.data.len() as u32,
                direction: Direction::Unknown,
                process: Some((p.pid, p.tid)),
                comment: Some(&p.comment),
            })?;
        }
        Ok(n)
    }

    /// Periodic housekeeping.
    pub fn expire(&mut self) {
        self.synth.expire();
    }

    /// Counters for the statistics record: "tls" in records (chunks), "tls-bytes".
    pub fn sources(&self) -> Vec<SourceStats> {
        let k = self.tracer.counters();
        vec![
            SourceStats {
                name: "tls".into(),
                received: self.synth.stats.chunks,
                dropped: k.drop_chunks
                    + k.trunc_calls
                    + k.state_full
                    + self.synth.stats.unresolved_chunks
                    + self.tracer.malformed(),
            },
            SourceStats {
                name: "tls-bytes".into(),
                received: k.bytes,
                dropped: k.drop_bytes + k.fault_bytes + k.trunc_bytes,
            },
        ]
    }

    /// One-line summary for the end of recording.
    pub fn summary(&self) -> String {
        let k = self.tracer.counters();
        format!(
            "TLS: {} plaintext chunks ({} bytes), {} packets; lost: {} chunks ({} bytes) ringbuf full, {} bytes unreadable, {} calls over 16 MiB ({} bytes), {} chunks without socket",
            self.synth.stats.chunks,
            k.bytes,
            self.synth.stats.packets,
            k.drop_chunks,
            k.drop_bytes,
            k.fault_bytes,
            k.trunc_calls,
            k.trunc_bytes,
            self.synth.stats.unresolved_chunks,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use l7rec_analyzer::decode::tcp_segment;
    use l7rec_capture::linktype::RAW;

    fn ep(local: &str, remote: &str) -> Option<Endpoints> {
        Some(Endpoints {
            local: local.parse().unwrap(),
            remote: remote.parse().unwrap(),
        })
    }

    fn data(
        pid: u32,
        ssl: u64,
        read: bool,
        off: u64,
        sock: Option<Endpoints>,
        b: &[u8],
    ) -> TlsEvent {
        TlsEvent::Data(TlsData {
            ts_ns: 1_000 + off,
            ssl,
            pid,
            tid: pid,
            comm: "curl".into(),
            read,
            stream_off: off,
            socket: sock,
            data: b.to_vec(),
        })
    }

    fn run(synth: &mut TlsSynth, evs: Vec<TlsEvent>) -> Vec<SynthPacket> {
        let mut out = Vec::new();
        for ev in evs {
            synth.event(ev, &mut |p| out.push(p));
        }
        out
    }

    fn checksum_ok(pkt: &[u8]) -> bool {
        // Re-summing a packet including its checksum gives 0 after folding.
        let (ip_len, pseudo) = if pkt[0] >> 4 == 4 {
            let ihl = 20;
            let tcp_len = pkt.len() - ihl;
            let mut p = pkt[12..20].to_vec();
            p.extend_from_slice(&[0, 6]);
            p.extend_from_slice(&(tcp_len as u16).to_be_bytes());
            if fold(sum16(0, &pkt[..20])) != 0 {
                return false;
            }
            (ihl, p)
        } else {
            let tcp_len = pkt.len() - 40;
            let mut p = pkt[8..40].to_vec();
            p.extend_from_slice(&(tcp_len as u32).to_be_bytes());
            p.extend_from_slice(&[0, 0, 0, 6]);
            (40, p)
        };
        fold(sum16(sum16(0, &pseudo), &pkt[ip_len..])) == 0
    }

    #[test]
    fn client_view_becomes_a_clean_tcp_stream() {
        let mut s = TlsSynth::default();
        let sock = ep("127.0.0.1:40000", "127.0.0.1:8443");
        let pkts = run(
            &mut s,
            vec![
                data(10, 0xa, false, 0, sock, b"GET / HTTP/1.1\r\n\r\n"),
                data(10, 0xa, true, 0, sock, b"HTTP/1.1 200 OK\r\n"),
                data(10, 0xa, true, 17, sock, b"Content-Length: 0\r\n\r\n"),
                TlsEvent::Close {
                    ts_ns: 5_000,
                    ssl: 0xa,
                    pid: 10,
                    socket: sock,
                },
            ],
        );
        assert_eq!(pkts.len(), 3 + 3 + 3);
        let segs: Vec<_> = pkts
            .iter()
            .map(|p| tcp_segment(RAW, &p.data).unwrap())
            .collect();
        assert!(pkts.iter().all(|p| checksum_ok(&p.data)));
        assert!(segs[0].syn && !segs[0].ack);
        assert_eq!(segs[0].src, "127.0.0.1:40000".parse().unwrap());
        assert!(segs[1].syn && segs[1].ack);
        assert_eq!(segs[3].seq, ISN_CLIENT + 1);
        assert_eq!(segs[3].payload, b"GET / HTTP/1.1\r\n\r\n");
        assert_eq!(segs[4].src, "127.0.0.1:8443".parse().unwrap());
        assert_eq!(segs[4].seq, ISN_SERVER + 1);
        assert_eq!(segs[5].seq, ISN_SERVER + 1 + 17);
        assert!(segs[6].fin && segs[7].fin && !segs[8].fin);
        assert_eq!(segs[6].seq, ISN_CLIENT + 1 + 18);
        assert_eq!(pkts[3].comment, "pid=10 comm=curl tls");
    }

    #[test]
    fn both_ends_traced_each_direction_written_once() {
        let mut s = TlsSynth::default();
        let server = ep("127.0.0.1:8443", "127.0.0.1:40000");
        let client = ep("127.0.0.1:40000", "127.0.0.1:8443");
        let close = |pid, ssl, socket| TlsEvent::Close {
            ts_ns: 9,
            ssl,
            pid,
            socket,
        };
        let pkts = run(
            &mut s,
            vec![
                // nginx's read is the first report: it writes the request direction.
                data(20, 0xb, true, 0, server, b"GET / HTTP/1.1\r\n\r\n"),
                // curl's copy of the same bytes is skipped.
                data(10, 0xa, false, 0, client, b"GET / HTTP/1.1\r\n\r\n"),
                data(20, 0xb, false, 0, server, b"HTTP/1.1 200 OK\r\n\r\n"),
                data(10, 0xa, true, 0, client, b"HTTP/1.1 200 OK\r\n\r\n"),
                close(20, 0xb, server),
                // One end closed, the other has not: no FIN yet, copies still skipped.
                data(10, 0xa, true, 19, client, b"x"),
                close(10, 0xa, client),
                // A late copy after both closed: still skipped.
                data(20, 0xb, false, 19, server, b"x"),
            ],
        );
        assert_eq!(s.stats.peer_copies, 4);
        let segs: Vec<_> = pkts
            .iter()
            .map(|p| tcp_segment(RAW, &p.data).unwrap())
            .collect();
        // Client is the sender of the first byte, whoever reported it.
        assert_eq!(segs[0].src, "127.0.0.1:40000".parse().unwrap());
        assert_eq!(segs[3].payload, b"GET / HTTP/1.1\r\n\r\n");
        assert_eq!(segs[4].src, "127.0.0.1:8443".parse().unwrap());
        assert_eq!(pkts.len(), 3 + 2 + 3);
        assert!(segs[5].fin && segs[6].fin && !segs[7].fin);
        assert_eq!(pkts[5].pid, 10, "the FIN comes with the last end to close");
    }

    #[test]
    fn a_response_the_client_never_reads_is_written_from_the_server() {
        let mut s = TlsSynth::default();
        let server = ep("[::1]:8443", "[::1]:40000");
        let client = ep("[::1]:40000", "[::1]:8443");
        let pkts = run(
            &mut s,
            vec![
                data(10, 0xa, false, 0, client, b"GET / HTTP/1.1\r\n\r\n"),
                data(20, 0xb, true, 0, server, b"GET / HTTP/1.1\r\n\r\n"),
                // curl gives up before reading anything.
                TlsEvent::Close {
                    ts_ns: 7,
                    ssl: 0xa,
                    pid: 10,
                    socket: client,
                },
                data(20, 0xb, false, 0, server, b"HTTP/1.1 200 OK\r\n\r\n"),
                TlsEvent::Close {
                    ts_ns: 9,
                    ssl: 0xb,
                    pid: 20,
                    socket: server,
                },
            ],
        );
        let segs: Vec<_> = pkts
            .iter()
            .map(|p| tcp_segment(RAW, &p.data).unwrap())
            .collect();
        assert_eq!(pkts.len(), 3 + 2 + 3);
        assert_eq!(segs[3].payload, b"GET / HTTP/1.1\r\n\r\n");
        assert_eq!((pkts[3].pid, segs[3].seq), (10, ISN_CLIENT + 1));
        assert_eq!(segs[4].payload, b"HTTP/1.1 200 OK\r\n\r\n");
        assert_eq!((pkts[4].pid, segs[4].seq), (20, ISN_SERVER + 1));
        assert!(segs[5].fin && segs[6].fin);
    }

    #[test]
    fn lost_bytes_leave_a_hole_and_unknown_sockets_wait() {
        let mut s = TlsSynth::default();
        let sock = ep("[::1]:40000", "[::1]:8443");
        let pkts = run(
            &mut s,
            vec![
                data(10, 0xa, false, 100, None, b"abc"),
                data(10, 0xa, false, 103, sock, b"def"),
                // 100 bytes lost in the kernel.
                data(10, 0xa, false, 206, sock, b"ghi"),
            ],
        );
        let segs: Vec<_> = pkts
            .iter()
            .map(|p| tcp_segment(RAW, &p.data).unwrap())
            .collect();
        assert!(pkts.iter().all(|p| checksum_ok(&p.data)));
        assert_eq!(segs[3].seq, ISN_CLIENT + 1);
        assert_eq!(segs[3].payload, b"abc");
        assert_eq!(segs[4].seq, ISN_CLIENT + 4);
        assert_eq!(segs[5].seq, ISN_CLIENT + 1 + 106);
        assert!(segs[5].src.is_ipv6());
    }

    #[test]
    fn big_chunks_are_split() {
        let mut s = TlsSynth::default();
        let sock = ep("10.0.0.1:1234", "10.0.0.2:443");
        let big = vec![b'x'; 150_000];
        let pkts = run(&mut s, vec![data(1, 1, false, 0, sock, &big)]);
        assert_eq!(pkts.len(), 3 + 3);
        assert!(pkts.iter().all(|p| p.data.len() <= 20 + 20 + MAX_SEGMENT));
        assert!(pkts.iter().all(|p| checksum_ok(&p.data)));
    }

    #[test]
    fn decodes_records() {
        let mut raw = RawTlsEvent {
            kind: L7_TLS_DATA,
            flags: L7_TLS_F_READ,
            ts: 5,
            ssl: 0xdead,
            stream_off: 7,
            tgid: 3,
            tid: 4,
            len: 5,
            fd: 9,
            read_off: 0,
            comm: [0; 16],
            sock: RawSockTuple {
                laddr: [0; 16],
                raddr: [0; 16],
                lport: 40000,
                rport: 8443,
                family: syscalls::AF_INET6,
                pad0: 0,
                netns: 1,
                pad1: 0,
            },
        };
        raw.comm[..5].copy_from_slice(b"nginx");
        raw.sock.laddr[10..].copy_from_slice(&[0xff, 0xff, 127, 0, 0, 1]);
        raw.sock.raddr[10..].copy_from_slice(&[0xff, 0xff, 127, 0, 0, 1]);
        let mut bytes = vec![0u8; size_of::<RawTlsEvent>()];
        // SAFETY: exactly size_of::<RawTlsEvent>() bytes.
        unsafe { std::ptr::write_unaligned(bytes.as_mut_ptr().cast::<RawTlsEvent>(), raw) };
        bytes.extend_from_slice(b"hello...padding");
        let Some(TlsEvent::Data(d)) = decode(&bytes, 100) else {
            panic!("not data");
        };
        assert_eq!(d.data, b"hello");
        assert_eq!(d.ts_ns, 105);
        assert!(d.read);
        assert_eq!(d.comm, "nginx");
        assert_eq!(d.socket, ep("127.0.0.1:40000", "127.0.0.1:8443"));
        assert!(decode(&bytes[..100], 0).is_none());
        // A zero-length data record is malformed.
        raw.len = 0;
        // SAFETY: bytes holds at least size_of::<RawTlsEvent>() bytes.
        unsafe { std::ptr::write_unaligned(bytes.as_mut_ptr().cast::<RawTlsEvent>(), raw) };
        assert!(decode(&bytes, 0).is_none());
    }

    #[test]
    fn ldconfig_output() {
        let text = "\t2 libs found in cache `/etc/ld.so.cache'\n\
            \tlibssl.so.3 (libc6,x86-64) => /lib/x86_64-linux-gnu/libssl.so.3\n\
            \tlibssl.so (libc6,x86-64) => /lib/x86_64-linux-gnu/libssl.so\n";
        assert_eq!(
            parse_ldconfig(text, "x86_64"),
            Some(PathBuf::from("/lib/x86_64-linux-gnu/libssl.so.3"))
        );
        assert_eq!(parse_ldconfig(text, "aarch64"), None);
    }
}
