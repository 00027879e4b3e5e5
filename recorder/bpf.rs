//! Loader for the packet-path socket filter (`bpf/sockfilter.bpf.c`).
//!
//! [`SocketFilter::load`] opens the skeleton, fills its read-only configuration (ports,
//! `--all-tcp`, snap length, the recorder's netns) and loads it; the result hands out the
//! program fd to attach to AF_PACKET sockets (see `afpacket.rs`) and reads the filter's
//! counters. One loaded filter serves any number of sockets: they share its flow table.

// Not every item is used by the binary yet; tests include this file directly.
#![allow(dead_code)]

use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::fs::MetadataExt;

use anyhow::{anyhow, bail, Context, Result};
use libbpf_rs::skel::{OpenSkel, SkelBuilder};
use libbpf_rs::{AsRawLibbpf, ErrorKind, MapCore, MapFlags, OpenObject};

mod skel {
    include!(concat!(env!("OUT_DIR"), "/sockfilter.skel.rs"));
}
use skel::{SockfilterSkel, SockfilterSkelBuilder};

/// Most ports `--port` may name (size of the filter's port array).
pub const MAX_PORTS: usize = 16;

/// Default snap length: bytes kept per packet at most.
pub const DEFAULT_SNAPLEN: u32 = 262_144;

/// Bytes of verifier log quoted in a load error.
const VERIFIER_LOG_TAIL: usize = 4096;

/// How the filter finds the IP header on an interface (`enum l7_link_kind` in
/// `bpf/l7rec.h`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum LinkKind {
    /// Ethernet header, possibly with in-band 802.1Q/802.1ad tags.
    Ethernet = 0,
    /// `lo`: zero Ethernet header; the outgoing copy of each packet is dropped.
    Loopback = 1,
    /// No link header (tun, wireguard): packets start at the IPv4/IPv6 header.
    RawIp = 2,
    /// Framing the filter cannot parse: nothing is kept.
    Ignore = 3,
}

impl LinkKind {
    /// The kind for a device's ARPHRD type (`/sys/class/net/IFACE/type`).
    pub fn from_arphrd(arphrd: u16) -> Self {
        const ARPHRD_RAWIP: u16 = 519;
        match arphrd {
            libc::ARPHRD_ETHER => LinkKind::Ethernet,
            libc::ARPHRD_LOOPBACK => LinkKind::Loopback,
            // AF_PACKET SOCK_RAW on header-less devices delivers the bare IP packet.
            libc::ARPHRD_NONE | ARPHRD_RAWIP => LinkKind::RawIp,
            _ => LinkKind::Ignore,
        }
    }
}

/// What the filter keeps; fixed at load time.
#[derive(Debug, Clone)]
pub struct FilterConfig {
    /// Only flows with one of these ports (either side) are considered; empty: any port.
    /// When set, the SYN/SYN-ACK of such flows are kept too, so the initial sequence
    /// numbers are in the capture.
    pub ports: Vec<u16>,
    /// Keep every TCP packet (of the wanted ports), not only HTTP flows.
    pub all_tcp: bool,
    /// Bytes kept per packet at most (the rest is cut, the original length is kept).
    pub snaplen: u32,
    /// Network namespace inode that goes into every flow key: the recorder's, so keys
    /// match the syscall path's. `None`: the calling thread's ([`current_netns_inode`]).
    pub netns_inode: Option<u32>,
    /// Link kind per ifindex (see [`LinkKind::from_arphrd`]). Interfaces not listed are
    /// parsed as Ethernet, except `lo` (ifindex 1 in every namespace), which the filter
    /// always treats as [`LinkKind::Loopback`] without a map lookup.
    pub links: Vec<(u32, LinkKind)>,
}

impl Default for FilterConfig {
    fn default() -> Self {
        Self {
            ports: Vec::new(),
            all_tcp: false,
            snaplen: DEFAULT_SNAPLEN,
            netns_inode: None,
            links: Vec::new(),
        }
    }
}

/// Totals of the filter's per-CPU counters since load.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FilterCounters {
    /// Packets the filter ran on (all sockets, both lo copies).
    pub seen: u64,
    /// Packets passed to a socket.
    pub kept: u64,
    /// Wire bytes of the kept packets (before snap-length truncation).
    pub kept_bytes: u64,
    /// Flows classified as HTTP.
    pub flows_classified: u64,
    /// Outgoing duplicates on loopback dropped.
    pub lo_outgoing_dropped: u64,
    /// Kept packets longer than the snap length (cut).
    pub truncated: u64,
    /// HTTP flows the flow table could not take (their later packets may be missed).
    pub flow_insert_failed: u64,
}

/// The loaded socket filter. Dropping it unloads the program once no socket uses it.
pub struct SocketFilter {
    skel: SockfilterSkel<'static>,
    netns_inode: u32,
}

impl SocketFilter {
    /// Opens, configures and loads the filter. Needs root (CAP_BPF + CAP_NET_ADMIN).
    pub fn load(cfg: &FilterConfig) -> Result<Self> {
        if cfg.ports.len() > MAX_PORTS {
            bail!(
                "at most {MAX_PORTS} --port values are supported, got {}",
                cfg.ports.len()
            );
        }
        if cfg.snaplen == 0 {
            bail!("snap length must be at least 1 byte");
        }
        let netns_inode = match cfg.netns_inode {
            Some(ino) => ino,
            None => current_netns_inode()?,
        };

        // The skeleton borrows its object storage for its whole life; a load happens
        // once per recording, so leaking this pointer-sized slot is the simple, safe
        // way to own the skeleton. The BPF object itself is freed when the skeleton
        // drops.
        let storage: &'static mut MaybeUninit<OpenObject> =
            Box::leak(Box::new(MaybeUninit::uninit()));
        let mut open = SockfilterSkelBuilder::default()
            .open(storage)
            .map_err(|e| load_error(e, "opening the sockfilter BPF object"))?;

        let ro = open
            .maps
            .rodata_data
            .as_deref_mut()
            .ok_or_else(|| anyhow!("sockfilter BPF object has no .rodata section"))?;
        ro.l7_netns = netns_inode;
        ro.l7_snaplen = cfg.snaplen;
        ro.l7_all_tcp = u32::from(cfg.all_tcp);
        // Bounded by the MAX_PORTS check above.
        ro.l7_nports = cfg.ports.len() as u32;
        for (slot, port) in ro.l7_ports.iter_mut().zip(&cfg.ports) {
            *slot = *port;
        }

        // A custom log buffer makes libbpf keep the verifier log for us (instead of
        // printing it to stderr) when the first, log-less load attempt fails.
        let mut log = vec![0u8; 1 << 20];
        let prog = open.progs.l7_sockfilter.as_libbpf_object().as_ptr();
        // SAFETY: `prog` belongs to `open`, which lives until after `load`; `log`
        // outlives `load` and is only read after it returns.
        let rc = unsafe {
            libbpf_rs::libbpf_sys::bpf_program__set_log_buf(
                prog,
                log.as_mut_ptr().cast(),
                log.len() as _,
            )
        };
        if rc != 0 {
            bail!("setting the verifier log buffer failed (libbpf error {rc})");
        }

        let skel = match open.load() {
            Ok(skel) => skel,
            // A verifier rejection (EACCES/EINVAL) leaves a log; privilege and map
            // errors do not.
            Err(e) => match verifier_log_tail(&log) {
                Some(tail) => bail!(
                    "loading the sockfilter BPF program: the kernel verifier rejected it \
                     ({e}); last lines of the verifier log:\n{tail}"
                ),
                None => return Err(load_error(e, "loading the sockfilter BPF program")),
            },
        };
        let filter = Self { skel, netns_inode };
        for &(ifindex, kind) in &cfg.links {
            filter.set_link(ifindex, kind)?;
        }
        Ok(filter)
    }

    /// The program fd, to attach with `SO_ATTACH_BPF`. The kernel holds its own
    /// reference once attached.
    pub fn prog_fd(&self) -> BorrowedFd<'_> {
        self.skel.progs.l7_sockfilter.as_fd()
    }

    /// The flow table (`l7_flows`: `struct l7_flow_key` -> `struct l7_flow`), e.g. for
    /// the syscall path to share with `reuse_fd`.
    pub fn flows_map_fd(&self) -> BorrowedFd<'_> {
        self.skel.maps.l7_flows.as_fd()
    }

    /// The netns inode the filter puts into flow keys.
    pub fn netns_inode(&self) -> u32 {
        self.netns_inode
    }

    /// Declares (or changes) how packets on `ifindex` are framed.
    pub fn set_link(&self, ifindex: u32, kind: LinkKind) -> Result<()> {
        self.skel
            .maps
            .l7_links
            .update(
                &ifindex.to_ne_bytes(),
                &(kind as u32).to_ne_bytes(),
                MapFlags::ANY,
            )
            .with_context(|| format!("setting link kind {kind:?} for ifindex {ifindex}"))
    }

    /// Reads and sums the per-CPU counters.
    pub fn counters(&self) -> Result<FilterCounters> {
        let read = |idx: u32| -> Result<u64> {
            let per_cpu = self
                .skel
                .maps
                .l7_pkt_counters
                .lookup_percpu(&idx.to_ne_bytes(), MapFlags::ANY)
                .with_context(|| format!("reading sockfilter counter {idx}"))?
                .unwrap_or_default();
            let mut sum = 0u64;
            for v in per_cpu {
                let bytes: [u8; 8] = v
                    .get(..8)
                    .and_then(|b| b.try_into().ok())
                    .ok_or_else(|| anyhow!("sockfilter counter {idx}: short per-CPU value"))?;
                sum = sum.wrapping_add(u64::from_ne_bytes(bytes));
            }
            Ok(sum)
        };
        // Indices: enum l7_pkt_counter in bpf/l7rec.h.
        Ok(FilterCounters {
            seen: read(0)?,
            kept: read(1)?,
            kept_bytes: read(2)?,
            flows_classified: read(3)?,
            lo_outgoing_dropped: read(4)?,
            truncated: read(5)?,
            flow_insert_failed: read(6)?,
        })
    }
}

/// Inode of the calling thread's network namespace (`/proc/thread-self/ns/net`): the
/// namespace its new sockets belong to. (`/proc/self` would name the main thread's.)
pub fn current_netns_inode() -> Result<u32> {
    let meta = std::fs::metadata("/proc/thread-self/ns/net")
        .context("reading /proc/thread-self/ns/net (is /proc mounted?)")?;
    u32::try_from(meta.ino()).context("netns inode does not fit in 32 bits")
}

/// Wraps a libbpf error with what the user can do about it.
fn load_error(e: libbpf_rs::Error, what: &str) -> anyhow::Error {
    let hint = match e.kind() {
        ErrorKind::PermissionDenied => {
            if euid() != 0 {
                " (not running as root: BPF needs root, or CAP_BPF + CAP_NET_ADMIN)"
            } else {
                " (permission denied as root: is BPF blocked by lockdown, seccomp or a \
                 container?)"
            }
        }
        _ => "",
    };
    anyhow::Error::new(e).context(format!("{what}{hint}"))
}

fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// The last lines of a NUL-terminated verifier log, or `None` if it is empty.
fn verifier_log_tail(log: &[u8]) -> Option<String> {
    let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
    let text = String::from_utf8_lossy(&log[..end]);
    let text = text.trim_end();
    if text.is_empty() {
        return None;
    }
    let mut start = text.len().saturating_sub(VERIFIER_LOG_TAIL);
    // Cut at a line start (and a char boundary).
    while !text.is_char_boundary(start) {
        start += 1;
    }
    if start > 0 {
        if let Some(nl) = text[start..].find('\n') {
            start += nl + 1;
        }
    }
    Some(text[start..].to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_kinds_from_arphrd() {
        assert_eq!(LinkKind::from_arphrd(1), LinkKind::Ethernet);
        assert_eq!(LinkKind::from_arphrd(772), LinkKind::Loopback);
        assert_eq!(LinkKind::from_arphrd(65534), LinkKind::RawIp);
        assert_eq!(LinkKind::from_arphrd(776), LinkKind::Ignore);
    }

    #[test]
    fn log_tail_cuts_at_line() {
        assert_eq!(verifier_log_tail(&[0; 8]), None);
        let mut log = b"a\n".repeat(5000);
        log.extend_from_slice(b"last line\n\0garbage");
        let tail = verifier_log_tail(&log).expect("non-empty");
        assert!(tail.ends_with("last line"));
        assert!(tail.starts_with('a'));
        assert!(tail.len() <= VERIFIER_LOG_TAIL);
    }
}
