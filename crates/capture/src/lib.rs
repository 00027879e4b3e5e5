//! # l7rec capture format
//!
//! An l7rec capture is a **pcapng** file (optionally one or more **zstd** frames around
//! it) that Wireshark and tshark open directly. Packets are Enhanced Packet Blocks;
//! l7rec's process and syscall metadata travel in pcapng **Custom Blocks**. This crate
//! writes such files ([`CaptureWriter`]) and reads them — and any ordinary pcap or
//! pcapng from tcpdump, tshark or Wireshark, plain, zstd or gzip ([`CaptureReader`]).
//!
//! ## Blocks written
//!
//! All blocks are written little-endian (readers must honour the SHB byte-order magic
//! as usual; this crate's reader accepts both orders).
//!
//! | block | contents |
//! |---|---|
//! | Section Header (0x0A0D0D0A) | `shb_userappl` = `l7rec <version>`, `shb_os`, `shb_hardware` |
//! | Interface Description (1) | link type, snaplen, `if_name`, `if_description`, `if_tsresol` = 9 (ns) |
//! | Enhanced Packet (6) | packet; `opt_comment` (e.g. `pid=42 comm=curl`), `epb_flags` direction bits (1 = inbound, 2 = outbound), option 8 `epb_processid_threadid` = u32 pid, u32 tid |
//! | Interface Statistics (5) | `isb_starttime`, `isb_endtime`, `isb_ifrecv`, `isb_ifdrop`, `isb_filteraccept`, `isb_osdrop`, `isb_usrdeliv` |
//! | Custom (0x00000BAD) | PEN [`L7REC_PEN`] (32473 until registered), then l7rec records |
//!
//! ## Custom block data
//!
//! After the PEN (section byte order), the custom data is — **always little-endian**:
//!
//! ```text
//! u32  length    bytes that follow this field (pcapng padding excluded)
//! u16  version   record format version (1)
//! u16  count     number of records
//! count × record:
//!   u16 kind     1 process, 2 connection, 3 syscall, 4 stats; unknown kinds are skipped
//!   u16 flags    0
//!   u32 len      body length; readers ignore body bytes past the fields they know
//!   body
//! ```
//!
//! Strings are `u16 length` + UTF-8 bytes. Addresses are `u8 family` (4 or 6),
//! 16 address bytes (IPv4 in the first 4, rest zero), `u16 port`. Times are ns since
//! the Unix epoch, 0 meaning unknown.
//!
//! | kind | body |
//! |---|---|
//! | 1 process | u32 pid, u32 ppid, u64 start_time_ns, str comm, str exe, u16 argc, argc × str arg |
//! | 2 connection | u32 pid, u32 fd, u32 netns inode, u8 role (0 unknown, 1 client, 2 server), u8 protocol (6 = TCP), addr local, addr remote, u64 open_ns, u64 close_ns |
//! | 3 syscall | u8 op, 3 × u8 zero, u32 pid, u32 tid, u32 fd, u64 enter_ns, u64 exit_ns, i64 ret (bytes or -errno) |
//! | 4 stats | u64 ts_ns, u16 n, n × (str source, u64 received, u64 dropped) |
//!
//! Syscall ops: 1 connect, 2 accept/accept4, 3 close, 4 read, 5 write, 6 readv,
//! 7 writev, 8 recvfrom, 9 sendto, 10 recvmsg, 11 sendmsg, 12 recvmmsg, 13 sendmmsg,
//! 14 sendfile. Stats counters are totals since the recording started; the last stats
//! record in a file is the final one.
//!
//! ## Compression and crash safety
//!
//! With zstd, the file is a sequence of complete zstd frames of about 4 MiB of
//! pcapng each (a frame ends with the block that reaches 4 MiB), and the writer ends
//! one at least every [`WriterOptions::flush_interval`], so a writer killed at any
//! moment leaves a file that tshark and [`CaptureReader`] read up to the last flush
//! (a frame cut short by the kill is reported as truncation). No zstd skippable
//! frames are written (tshark 4.4 rejects them).

mod chunks;
pub mod pcapng;
mod reader;
pub mod record;
mod types;
mod writer;
mod zstd_cctx;
mod zstd_frames;
mod zstd_whole_frames;

pub use chunks::SharedChunk;
pub use pcapng::L7REC_PEN;
pub use reader::{
    CaptureReader, Event, Format, InputCompression, Packet, ReadError, Step, MAX_BLOCK_LEN,
};
pub use record::{
    ConnectionInfo, ProcessInfo, Record, RecordError, RecorderStats, Role, SourceStats,
    SyscallEvent, SyscallOp,
};
pub use types::{linktype, Direction, Interface, InterfaceStats};
pub use writer::{CaptureWriter, Compression, PacketOut, WriterOptions};
