//! AF_PACKET capture: a raw packet socket with the l7rec socket filter attached and a
//! TPACKET_V3 memory-mapped receive ring, plus interface listing.
//!
//! The ring hands packets to user space without copies: the kernel fills fixed-size
//! blocks with variable-size frames and flips a block to user space when it is full or
//! its retire timeout expires; [`PacketSocket::poll_packets`] walks ready blocks, hands
//! each frame to a callback as a slice into the ring and gives the block back. Loss is
//! counted by the kernel (`PACKET_STATISTICS`, reset on every read) and accumulated in
//! [`RingStats`].
//!
//! A packet socket sees the network namespace of the thread that creates it.

// Not every item is used by the binary yet; tests include this file directly.
#![allow(dead_code)]

use std::ffi::{CStr, CString};
use std::io;
use std::mem::{offset_of, size_of};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// pcap LINKTYPE_ETHERNET.
pub const LINKTYPE_ETHERNET: u16 = 1;
/// pcap LINKTYPE_RAW: packets start at the IPv4/IPv6 header.
pub const LINKTYPE_RAW: u16 = 101;

/// ARPHRD_RAWIP (not in the libc crate).
const ARPHRD_RAWIP: u16 = 519;

/// Size of the ring's block header (`BLK_HDR_LEN` in the kernel, no private area).
const BLOCK_HDR_LEN: usize = (size_of::<libc::tpacket_block_desc>() + 7) & !7;
/// Room the kernel puts before a frame's packet bytes: the tpacket3 header, the
/// sockaddr_ll and alignment (a generous bound of `macoff`).
const FRAME_OVERHEAD: u32 = 256;
/// Nominal V3 frame size: only used by the kernel's sanity checks (frames are
/// variable-length in V3).
const NOMINAL_FRAME_SIZE: u32 = 2048;
/// How often `poll_packets` drains the kernel's (32-bit, reset-on-read) counters.
const STATS_INTERVAL: Duration = Duration::from_secs(1);

/// Size and behaviour of the receive ring.
#[derive(Debug, Clone)]
pub struct RingConfig {
    /// Bytes per block: a power of two, a multiple of the page size, larger than
    /// `snaplen` plus frame headers.
    pub block_size: u32,
    /// Number of blocks; the ring takes `block_size * block_count` bytes of kernel
    /// memory (locked, per socket).
    pub block_count: u32,
    /// A partly filled block goes to user space after this long (packet latency bound).
    pub block_timeout_ms: u32,
    /// Packets are cut to this many bytes (the original length is still reported).
    pub snaplen: u32,
}

impl Default for RingConfig {
    /// 64 blocks of 1 MiB (64 MiB), 50 ms retire timeout, snap length 262144.
    fn default() -> Self {
        Self {
            block_size: 1 << 20,
            block_count: 64,
            block_timeout_ms: 50,
            snaplen: 262_144,
        }
    }
}

impl RingConfig {
    /// Checks the constraints the kernel (and this reader) put on the ring geometry.
    pub fn validate(&self) -> Result<()> {
        // SAFETY: sysconf has no preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        let page = u32::try_from(page).unwrap_or(4096);
        if !self.block_size.is_power_of_two() || !self.block_size.is_multiple_of(page) {
            bail!(
                "ring block size {} must be a power of two and a multiple of the page size {page}",
                self.block_size
            );
        }
        if self.snaplen == 0 {
            bail!("snap length must be at least 1");
        }
        if u64::from(self.block_size) < u64::from(self.snaplen) + u64::from(FRAME_OVERHEAD) {
            bail!(
                "ring block size {} cannot hold a {}-byte packet: use blocks of at least {} bytes",
                self.block_size,
                self.snaplen,
                (self.snaplen + FRAME_OVERHEAD).next_power_of_two()
            );
        }
        if self.block_count == 0 {
            bail!("ring needs at least one block");
        }
        let total = u64::from(self.block_size) * u64::from(self.block_count);
        if total > u64::from(u32::MAX) {
            bail!("ring of {total} bytes is too large (at most 4 GiB)");
        }
        Ok(())
    }
}

/// A VLAN tag the NIC stripped from the frame (to be reinserted when writing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VlanTag {
    /// Tag control information (priority, DEI, VLAN id).
    pub tci: u16,
    /// Tag protocol identifier (0x8100 or 0x88a8).
    pub tpid: u16,
}

/// One captured packet; `data` points into the ring and is valid during the callback.
#[derive(Debug)]
pub struct Packet<'a> {
    /// Kernel receive timestamp, nanoseconds since the Unix epoch.
    pub ts_ns: u64,
    /// Interface the packet was seen on.
    pub ifindex: u32,
    /// `PACKET_HOST` (0), `PACKET_OUTGOING` (4), ... (`sll_pkttype`).
    pub pkt_type: u8,
    /// Link-layer protocol (ethertype, host order; `sll_protocol`).
    pub protocol: u16,
    /// Captured bytes, from the link header (or the IP header on raw-IP devices); at
    /// most the snap length.
    pub data: &'a [u8],
    /// Length of the packet on the wire.
    pub orig_len: u32,
    /// VLAN tag stripped by hardware, if any.
    pub vlan: Option<VlanTag>,
}

/// Cumulative counters of one socket.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RingStats {
    /// Packets that passed the filter, including the dropped ones (`tp_packets`).
    pub packets: u64,
    /// Packets lost because the ring was full (`tp_drops`).
    pub drops: u64,
    /// Times the ring filled up and froze (`tp_freeze_q_cnt`).
    pub freeze_q_cnt: u64,
    /// Packets handed to the callback.
    pub delivered: u64,
    /// Frames skipped because their ring header was inconsistent (should stay 0).
    pub malformed: u64,
}

/// The mmap'ed ring; unmapped on drop.
struct Ring {
    ptr: NonNull<u8>,
    len: usize,
}

impl Drop for Ring {
    fn drop(&mut self) {
        // SAFETY: ptr/len are exactly what mmap returned; nothing borrows the ring
        // past the callbacks of `poll_packets`, which cannot outlive `&mut self`.
        unsafe {
            libc::munmap(self.ptr.as_ptr().cast(), self.len);
        }
    }
}

/// An AF_PACKET socket with a TPACKET_V3 receive ring. Unmaps and closes on drop.
pub struct PacketSocket {
    // Field order: unmap before close.
    ring: Ring,
    fd: OwnedFd,
    block_size: usize,
    block_count: usize,
    snaplen: u32,
    next_block: usize,
    ifindex: Option<u32>,
    stats: RingStats,
    stats_read_at: Instant,
}

// SAFETY: the ring is owned exclusively by this socket; moving it to another thread
// moves the only handle to it.
unsafe impl Send for PacketSocket {}

impl PacketSocket {
    /// Opens a socket on `ifindex` (`None`: every interface of the calling thread's
    /// network namespace), attaches `filter` (a `BPF_PROG_TYPE_SOCKET_FILTER` fd)
    /// before binding so that no unfiltered packet is ever queued, and maps the ring.
    /// Needs root or CAP_NET_RAW.
    pub fn open(
        ifindex: Option<u32>,
        filter: Option<BorrowedFd<'_>>,
        cfg: &RingConfig,
    ) -> Result<Self> {
        cfg.validate()?;
        // Protocol 0: the socket receives nothing until bind() names ETH_P_ALL, so the
        // filter and ring are in place before the first packet arrives.
        // SAFETY: plain syscall.
        let raw = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
        if raw < 0 {
            return Err(io::Error::last_os_error())
                .context("creating AF_PACKET socket (needs root/CAP_NET_RAW)");
        }
        // SAFETY: `raw` is a fresh fd we own.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };

        if let Some(prog) = filter {
            let prog_fd: libc::c_int = prog.as_raw_fd();
            setsockopt(&fd, libc::SOL_SOCKET, libc::SO_ATTACH_BPF, &prog_fd)
                .context("attaching the BPF socket filter (SO_ATTACH_BPF)")?;
        }
        let version = libc::tpacket_versions::TPACKET_V3 as libc::c_int;
        setsockopt(&fd, libc::SOL_PACKET, libc::PACKET_VERSION, &version)
            .context("selecting TPACKET_V3 (PACKET_VERSION)")?;

        let frames_per_block = cfg.block_size / NOMINAL_FRAME_SIZE;
        let req = libc::tpacket_req3 {
            tp_block_size: cfg.block_size,
            tp_block_nr: cfg.block_count,
            tp_frame_size: NOMINAL_FRAME_SIZE,
            tp_frame_nr: frames_per_block * cfg.block_count,
            tp_retire_blk_tov: cfg.block_timeout_ms,
            tp_sizeof_priv: 0,
            tp_feature_req_word: 0,
        };
        setsockopt(&fd, libc::SOL_PACKET, libc::PACKET_RX_RING, &req).with_context(|| {
            format!(
                "creating a {} x {} byte TPACKET_V3 ring (PACKET_RX_RING)",
                cfg.block_count, cfg.block_size
            )
        })?;

        // Bounded by validate(): at most 4 GiB.
        let len = cfg.block_size as usize * cfg.block_count as usize;
        // SAFETY: maps the ring the kernel just allocated for this fd.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error()).context("mapping the packet ring (mmap)");
        }
        let ring = Ring {
            ptr: NonNull::new(ptr.cast()).context("mmap returned NULL")?,
            len,
        };

        // SAFETY: zeroed sockaddr_ll is valid; fields set below.
        let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_protocol = (libc::ETH_P_ALL as u16).to_be();
        sll.sll_ifindex = match ifindex {
            Some(i) => i32::try_from(i).context("ifindex out of range")?,
            None => 0,
        };
        // SAFETY: sll is a valid sockaddr_ll of the given size.
        let rc = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&sll as *const libc::sockaddr_ll).cast(),
                size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error()).with_context(|| match ifindex {
                Some(i) => format!("binding AF_PACKET socket to ifindex {i}"),
                None => "binding AF_PACKET socket to all interfaces".to_string(),
            });
        }

        Ok(Self {
            ring,
            fd,
            block_size: cfg.block_size as usize,
            block_count: cfg.block_count as usize,
            snaplen: cfg.snaplen,
            next_block: 0,
            ifindex,
            stats: RingStats::default(),
            stats_read_at: Instant::now(),
        })
    }

    /// Stops the kernel handing this socket the packets the host sends
    /// (`PACKET_IGNORE_OUTGOING`, Linux 4.20+). On a loopback interface every packet is
    /// seen twice, sent then received: this skips the first copy before the filter even
    /// runs, which halves the filter's runs on the busiest interface of a local test.
    pub fn ignore_outgoing(&self) -> Result<()> {
        let on: libc::c_int = 1;
        setsockopt(
            &self.fd,
            libc::SOL_PACKET,
            libc::PACKET_IGNORE_OUTGOING,
            &on,
        )
        .context("ignoring outgoing packets (PACKET_IGNORE_OUTGOING)")
    }

    /// The interface this socket is bound to (`None`: all).
    pub fn ifindex(&self) -> Option<u32> {
        self.ifindex
    }

    /// Waits up to `timeout` for packets, then hands every packet of every ready block
    /// to `f`. Returns the number of packets delivered (0 on timeout or a signal).
    /// Also drains the kernel's loss counters about once a second.
    pub fn poll_packets<F>(&mut self, timeout: Duration, f: F) -> Result<usize>
    where
        F: FnMut(&Packet<'_>),
    {
        if !self.block_ready(self.next_block) {
            let mut pfd = libc::pollfd {
                fd: self.fd.as_raw_fd(),
                events: libc::POLLIN | libc::POLLERR,
                revents: 0,
            };
            let ms = libc::c_int::try_from(timeout.as_millis()).unwrap_or(libc::c_int::MAX);
            // SAFETY: one valid pollfd.
            let rc = unsafe { libc::poll(&mut pfd, 1, ms) };
            if rc < 0 {
                let err = io::Error::last_os_error();
                if err.kind() != io::ErrorKind::Interrupted {
                    return Err(err).context("poll on AF_PACKET socket");
                }
            } else if pfd.revents & libc::POLLNVAL != 0 {
                bail!("poll on AF_PACKET socket: invalid fd");
            } else if pfd.revents & libc::POLLERR != 0 {
                let err = self.take_socket_error();
                return Err(err)
                    .context("AF_PACKET socket reported an error (interface down or removed?)");
            }
        }
        let n = self.process_ready(f);
        if self.stats_read_at.elapsed() >= STATS_INTERVAL {
            self.stats()?;
        }
        Ok(n)
    }

    /// Hands every packet of the blocks that are ready now to `f`, without waiting (for
    /// callers that poll several sockets themselves). Returns the packets delivered.
    pub fn process_ready<F>(&mut self, mut f: F) -> usize
    where
        F: FnMut(&Packet<'_>),
    {
        let mut delivered = 0;
        // At most one lap: blocks released here may be refilled meanwhile.
        for _ in 0..self.block_count {
            let idx = self.next_block;
            if !self.block_ready(idx) {
                break;
            }
            let (n, bad) = self.walk_block(idx, &mut f);
            delivered += n;
            self.stats.delivered += n as u64;
            self.stats.malformed += bad;
            self.block_status(idx)
                .store(libc::TP_STATUS_KERNEL, Ordering::Release);
            self.next_block = (idx + 1) % self.block_count;
        }
        delivered
    }

    /// Reads the kernel's counters (which the kernel then resets), adds them to the
    /// totals and returns the totals.
    pub fn stats(&mut self) -> Result<RingStats> {
        let mut st = libc::tpacket_stats_v3 {
            tp_packets: 0,
            tp_drops: 0,
            tp_freeze_q_cnt: 0,
        };
        let mut len = size_of::<libc::tpacket_stats_v3>() as libc::socklen_t;
        // SAFETY: st/len describe a valid buffer.
        let rc = unsafe {
            libc::getsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_PACKET,
                libc::PACKET_STATISTICS,
                (&mut st as *mut libc::tpacket_stats_v3).cast(),
                &mut len,
            )
        };
        if rc != 0 {
            return Err(io::Error::last_os_error()).context("reading PACKET_STATISTICS");
        }
        self.stats.packets += u64::from(st.tp_packets);
        self.stats.drops += u64::from(st.tp_drops);
        self.stats.freeze_q_cnt += u64::from(st.tp_freeze_q_cnt);
        self.stats_read_at = Instant::now();
        Ok(self.stats)
    }

    /// The block header's status word, shared with the kernel.
    fn block_status(&self, idx: usize) -> &AtomicU32 {
        let off = idx * self.block_size
            + offset_of!(libc::tpacket_block_desc, hdr)
            + offset_of!(libc::tpacket_hdr_v1, block_status);
        // SAFETY: idx < block_count so the word is inside the ring; it is 4-aligned
        // (blocks are page-aligned) and the kernel only accesses it atomically/with
        // barriers, so an AtomicU32 view is sound.
        unsafe { &*self.ring.ptr.as_ptr().add(off).cast::<AtomicU32>() }
    }

    fn block_ready(&self, idx: usize) -> bool {
        self.block_status(idx).load(Ordering::Acquire) & libc::TP_STATUS_USER != 0
    }

    /// Delivers the frames of a block that belongs to user space. Returns (delivered,
    /// malformed); a malformed header ends the walk of this block.
    fn walk_block<F>(&self, idx: usize, f: &mut F) -> (usize, u64)
    where
        F: FnMut(&Packet<'_>),
    {
        // SAFETY: the block is inside the ring and owned by user space (status USER,
        // acquired) until we hand it back, so the kernel does not write it meanwhile.
        let block: &[u8] = unsafe {
            std::slice::from_raw_parts(
                self.ring.ptr.as_ptr().add(idx * self.block_size),
                self.block_size,
            )
        };
        let bh = offset_of!(libc::tpacket_block_desc, hdr);
        let (Some(num_pkts), Some(first)) = (
            read_u32(block, bh + offset_of!(libc::tpacket_hdr_v1, num_pkts)),
            read_u32(
                block,
                bh + offset_of!(libc::tpacket_hdr_v1, offset_to_first_pkt),
            ),
        ) else {
            return (0, 1);
        };
        let sll_off = tpacket_align(size_of::<libc::tpacket3_hdr>());
        let mut off = first as usize;
        let mut delivered = 0;
        for i in 0..num_pkts {
            match parse_frame(block, off, sll_off, self.snaplen) {
                Some((pkt, next)) => {
                    f(&pkt);
                    delivered += 1;
                    if i + 1 < num_pkts {
                        if next == 0 {
                            return (delivered, u64::from(num_pkts - i - 1));
                        }
                        off += next as usize;
                    }
                }
                None => return (delivered, u64::from(num_pkts - i)),
            }
        }
        (delivered, 0)
    }

    /// Reads and clears the socket's pending error (SO_ERROR).
    fn take_socket_error(&self) -> io::Error {
        let mut err: libc::c_int = 0;
        let mut len = size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: err/len describe a valid buffer.
        let rc = unsafe {
            libc::getsockopt(
                self.fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_ERROR,
                (&mut err as *mut libc::c_int).cast(),
                &mut len,
            )
        };
        if rc != 0 {
            io::Error::last_os_error()
        } else {
            io::Error::from_raw_os_error(err)
        }
    }
}

impl AsFd for PacketSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl AsRawFd for PacketSocket {
    fn as_raw_fd(&self) -> RawFd {
        self.fd.as_raw_fd()
    }
}

/// Parses the frame at `off` of a block: the packet and the offset to the next frame.
/// `None` when the header points outside the block.
fn parse_frame(
    block: &[u8],
    off: usize,
    sll_off: usize,
    snaplen: u32,
) -> Option<(Packet<'_>, u32)> {
    type H = libc::tpacket3_hdr;
    let hdr = block.get(off..off.checked_add(size_of::<H>())?)?;
    let next = read_u32(hdr, offset_of!(H, tp_next_offset))?;
    let sec = read_u32(hdr, offset_of!(H, tp_sec))?;
    let nsec = read_u32(hdr, offset_of!(H, tp_nsec))?;
    let caplen = read_u32(hdr, offset_of!(H, tp_snaplen))?;
    let orig_len = read_u32(hdr, offset_of!(H, tp_len))?;
    let status = read_u32(hdr, offset_of!(H, tp_status))?;
    let mac = read_u16(hdr, offset_of!(H, tp_mac))?;
    let hv1 = offset_of!(H, hv1);
    let vlan_tci = read_u32(
        hdr,
        hv1 + offset_of!(libc::tpacket_hdr_variant1, tp_vlan_tci),
    )?;
    let vlan_tpid = read_u16(
        hdr,
        hv1 + offset_of!(libc::tpacket_hdr_variant1, tp_vlan_tpid),
    )?;

    type L = libc::sockaddr_ll;
    let sll_at = off.checked_add(sll_off)?;
    let sll = block.get(sll_at..sll_at.checked_add(size_of::<L>())?)?;
    let ifindex = read_u32(sll, offset_of!(L, sll_ifindex))?;
    let protocol = u16::from_be(read_u16(sll, offset_of!(L, sll_protocol))?);
    let pkt_type = *sll.get(offset_of!(L, sll_pkttype))?;

    let start = off.checked_add(usize::from(mac))?;
    let len = caplen.min(snaplen) as usize;
    let data = block.get(start..start.checked_add(len)?)?;

    let vlan = (status & libc::TP_STATUS_VLAN_VALID != 0).then_some(VlanTag {
        // The TCI is 16 bits; the kernel widens it to u32.
        tci: vlan_tci as u16,
        tpid: if status & libc::TP_STATUS_VLAN_TPID_VALID != 0 {
            vlan_tpid
        } else {
            0x8100
        },
    });
    let pkt = Packet {
        ts_ns: u64::from(sec) * 1_000_000_000 + u64::from(nsec),
        ifindex,
        pkt_type,
        protocol,
        data,
        orig_len,
        vlan,
    };
    Some((pkt, next))
}

fn read_u32(buf: &[u8], off: usize) -> Option<u32> {
    let b = buf.get(off..off.checked_add(4)?)?;
    Some(u32::from_ne_bytes(b.try_into().ok()?))
}

fn read_u16(buf: &[u8], off: usize) -> Option<u16> {
    let b = buf.get(off..off.checked_add(2)?)?;
    Some(u16::from_ne_bytes(b.try_into().ok()?))
}

fn tpacket_align(x: usize) -> usize {
    (x + libc::TPACKET_ALIGNMENT - 1) & !(libc::TPACKET_ALIGNMENT - 1)
}

fn setsockopt<T>(fd: &OwnedFd, level: libc::c_int, name: libc::c_int, val: &T) -> io::Result<()> {
    // SAFETY: val points to a live T of the given size.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (val as *const T).cast(),
            size_of::<T>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// A network interface of the calling thread's network namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interface {
    /// Interface index (`sll_ifindex`).
    pub index: u32,
    /// Interface name, e.g. `lo`, `eth0`.
    pub name: String,
    /// Hardware type (`ARPHRD_*`), e.g. 1 Ethernet, 772 loopback, 65534 none (tun).
    pub arphrd: u16,
    /// Administratively up (`IFF_UP`).
    pub up: bool,
}

impl Interface {
    /// The pcap LINKTYPE of packets read from this interface with a SOCK_RAW packet
    /// socket, or `None` if l7rec cannot capture on it.
    pub fn pcap_linktype(&self) -> Option<u16> {
        match self.arphrd {
            libc::ARPHRD_ETHER | libc::ARPHRD_LOOPBACK => Some(LINKTYPE_ETHERNET),
            // Header-less devices (tun, wireguard): AF_PACKET delivers the bare IP packet.
            libc::ARPHRD_NONE | ARPHRD_RAWIP => Some(LINKTYPE_RAW),
            _ => None,
        }
    }

    /// Whether this is a loopback device (each packet is seen twice by AF_PACKET).
    pub fn is_loopback(&self) -> bool {
        self.arphrd == libc::ARPHRD_LOOPBACK
    }
}

/// All interfaces of the calling thread's network namespace, by index. (Uses
/// `if_nameindex` and ioctls rather than /sys/class/net, which shows the namespace
/// sysfs was mounted in.)
pub fn list_interfaces() -> Result<Vec<Interface>> {
    // SAFETY: returns a malloc'ed array terminated by a zero entry, or NULL.
    let list = unsafe { libc::if_nameindex() };
    if list.is_null() {
        return Err(io::Error::last_os_error()).context("listing network interfaces");
    }
    let mut names = Vec::new();
    // Bounded: the kernel's interface count, and a hard cap against a corrupt list.
    for i in 0..1_000_000 {
        // SAFETY: entries up to the terminator are valid.
        let e = unsafe { &*list.add(i) };
        if e.if_index == 0 || e.if_name.is_null() {
            break;
        }
        // SAFETY: if_name is a NUL-terminated string owned by the list.
        let name = unsafe { CStr::from_ptr(e.if_name) };
        names.push((e.if_index, name.to_string_lossy().into_owned()));
    }
    // SAFETY: list came from if_nameindex and is freed once.
    unsafe { libc::if_freenameindex(list) };

    let sock = ioctl_socket()?;
    let mut out = Vec::with_capacity(names.len());
    for (index, name) in names {
        match query_interface(&sock, &name) {
            Ok((arphrd, up)) => out.push(Interface {
                index,
                name,
                arphrd,
                up,
            }),
            // Removed between listing and query: skip it.
            Err(e) if e.raw_os_error() == Some(libc::ENODEV) => {}
            Err(e) => return Err(e).with_context(|| format!("querying interface {name}")),
        }
    }
    out.sort_by_key(|i| i.index);
    Ok(out)
}

/// The interface called `name` in the calling thread's network namespace.
pub fn interface_by_name(name: &str) -> Result<Interface> {
    let cname = CString::new(name).with_context(|| format!("bad interface name {name:?}"))?;
    // SAFETY: cname is NUL-terminated.
    let index = unsafe { libc::if_nametoindex(cname.as_ptr()) };
    if index == 0 {
        bail!("unknown interface {name:?} (see `ip link`)");
    }
    let sock = ioctl_socket()?;
    let (arphrd, up) =
        query_interface(&sock, name).with_context(|| format!("querying interface {name}"))?;
    Ok(Interface {
        index,
        name: name.to_string(),
        arphrd,
        up,
    })
}

fn ioctl_socket() -> Result<OwnedFd> {
    // SAFETY: plain syscall.
    let raw = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if raw < 0 {
        return Err(io::Error::last_os_error()).context("creating a socket for interface ioctls");
    }
    // SAFETY: fresh fd we own.
    Ok(unsafe { OwnedFd::from_raw_fd(raw) })
}

/// (ARPHRD type, IFF_UP) of an interface.
fn query_interface(sock: &OwnedFd, name: &str) -> io::Result<(u16, bool)> {
    // SAFETY: an all-zero ifreq is valid.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    let bytes = name.as_bytes();
    if bytes.len() >= req.ifr_name.len() {
        return Err(io::Error::from_raw_os_error(libc::ENODEV));
    }
    for (d, s) in req.ifr_name.iter_mut().zip(bytes) {
        *d = *s as libc::c_char;
    }
    // SAFETY: req is a valid ifreq with a NUL-terminated name.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFHWADDR as _, &mut req) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: SIOCGIFHWADDR filled ifru_hwaddr.
    let arphrd = unsafe { req.ifr_ifru.ifru_hwaddr.sa_family };
    // SAFETY: as above.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS as _, &mut req) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: SIOCGIFFLAGS filled ifru_flags.
    let flags = unsafe { req.ifr_ifru.ifru_flags };
    Ok((arphrd, flags & libc::IFF_UP as libc::c_short != 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_struct_layout() {
        // The offsets this reader relies on (linux/if_packet.h).
        assert_eq!(size_of::<libc::tpacket3_hdr>(), 48);
        assert_eq!(offset_of!(libc::tpacket3_hdr, tp_mac), 24);
        assert_eq!(offset_of!(libc::tpacket_block_desc, hdr), 8);
        assert_eq!(BLOCK_HDR_LEN, 48);
        assert_eq!(tpacket_align(size_of::<libc::tpacket3_hdr>()), 48);
    }

    #[test]
    fn ring_config_checks() {
        RingConfig::default().validate().expect("default is valid");
        let small = RingConfig {
            block_size: 65536,
            ..RingConfig::default()
        };
        assert!(small.validate().is_err());
        let odd = RingConfig {
            block_size: 3 << 20,
            ..RingConfig::default()
        };
        assert!(odd.validate().is_err());
    }

    #[test]
    fn frame_parser_rejects_out_of_block_headers() {
        let block = vec![0u8; 4096];
        assert!(parse_frame(&block, 4090, 48, 100).is_none());
        let mut block = vec![0u8; 4096];
        // tp_mac far outside the block.
        block[24..26].copy_from_slice(&60000u16.to_ne_bytes());
        block[12..16].copy_from_slice(&10u32.to_ne_bytes());
        assert!(parse_frame(&block, 0, 48, 100).is_none());
    }

    #[test]
    fn linktypes() {
        let mut i = Interface {
            index: 1,
            name: "lo".into(),
            arphrd: libc::ARPHRD_LOOPBACK,
            up: true,
        };
        assert_eq!(i.pcap_linktype(), Some(LINKTYPE_ETHERNET));
        i.arphrd = libc::ARPHRD_NONE;
        assert_eq!(i.pcap_linktype(), Some(LINKTYPE_RAW));
        i.arphrd = 776; // sit
        assert_eq!(i.pcap_linktype(), None);
    }
}
