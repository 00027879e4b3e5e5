//! Streaming writer of l7rec capture files.

use std::io::{self, Write};
use std::time::{Duration, Instant};

use crate::pcapng::*;
use crate::record::{encode_records, Record};
use crate::types::{Direction, Interface, InterfaceStats};
use crate::zstd_frames::{Tables, ZstdFrames, FRAME_END};

/// How the output stream is compressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// Plain pcapng.
    None,
    /// zstd at the given level (1-22; 3 is a good default).
    Zstd {
        /// zstd compression level.
        level: i32,
    },
    /// What `l7rec record` writes: zstd level -1 with a hash table of 2^11 entries and
    /// 5-byte minimum matches, cheap to bring back into the cache in each burst of a
    /// live capture (about 5 % of a plain pcap on HTTP traffic).
    ZstdLive,
}

/// The level of [`Compression::ZstdLive`]: on HTTP captures it compresses as well as
/// level 1 with ~20 % less zstd time.
const ZSTD_LIVE_LEVEL: i32 = -1;

/// Options of a [`CaptureWriter`].
#[derive(Debug, Clone)]
pub struct WriterOptions {
    /// Output compression.
    pub compression: Compression,
    /// Longest time between two flushes. A flush ends a zstd frame, so a writer that
    /// is killed leaves a file readable up to its last flush.
    pub flush_interval: Duration,
    /// `shb_userappl`: the writing application and version.
    pub application: String,
    /// `shb_os`: the operating system.
    pub os: Option<String>,
    /// `shb_hardware`: the machine.
    pub hardware: Option<String>,
}

impl Default for WriterOptions {
    fn default() -> Self {
        WriterOptions {
            compression: Compression::Zstd { level: 3 },
            flush_interval: Duration::from_millis(500),
            application: format!("l7rec {}", env!("CARGO_PKG_VERSION")),
            os: None,
            hardware: None,
        }
    }
}

/// A packet to write as an Enhanced Packet Block.
#[derive(Debug, Clone, Default)]
pub struct PacketOut<'a> {
    /// Interface id returned by [`CaptureWriter::add_interface`].
    pub interface_id: u32,
    /// Capture time, ns since the Unix epoch.
    pub ts_ns: u64,
    /// Captured bytes, starting with the link-layer header.
    pub data: &'a [u8],
    /// Length of the packet on the wire (≥ `data.len()`).
    pub orig_len: u32,
    /// Direction relative to the host.
    pub direction: Direction,
    /// Sending/receiving process and thread (`epb_processid_threadid`), when known.
    pub process: Option<(u32, u32)>,
    /// Free-text comment (`opt_comment`), e.g. `pid=42 comm=curl`.
    pub comment: Option<&'a str>,
}

/// `W`, counting the bytes it accepted: where the output ends, for
/// [`CaptureWriter::flushed_bytes`].
struct Counted<W: Write> {
    inner: W,
    bytes: u64,
}

impl<W: Write> Write for Counted<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

enum Sink<W: Write> {
    /// Blocks are built in `block`, then written to `out`.
    Plain {
        out: io::BufWriter<Counted<W>>,
        block: Vec<u8>,
    },
    /// Blocks are built in place in the compressor's input.
    Zstd(ZstdFrames<io::BufWriter<Counted<W>>>),
}

impl<W: Write> Sink<W> {
    fn counted(&self) -> &Counted<W> {
        match self {
            Sink::Plain { out, .. } => out.get_ref(),
            Sink::Zstd(e) => e.get_ref().get_ref(),
        }
    }

    fn counted_mut(&mut self) -> &mut Counted<W> {
        match self {
            Sink::Plain { out, .. } => out.get_mut(),
            Sink::Zstd(e) => e.get_mut().get_mut(),
        }
    }
}

/// Writes a pcapng section (SHB first) to `W`, optionally zstd-compressed.
///
/// Blocks are written whole, but a failed write (a full disk) may leave part of a
/// block or of a zstd frame in `W`. After any error, give the writer up with
/// [`abandon`](Self::abandon), cut the output back to the length it returns (that of
/// the last successful flush) and append the tail it returns (the end of the zstd
/// frame that flush left open): the file is then valid and complete up to there.
pub struct CaptureWriter<W: Write> {
    sink: Sink<W>,
    /// Bytes `W` had accepted when the last flush succeeded.
    flushed: u64,
    /// Whether that flush left a zstd frame open (a flush ends a block, not a frame).
    flushed_in_frame: bool,
    flush_interval: Duration,
    last_flush: Instant,
    writes_since_clock: u32,
    interfaces: u32,
    uncompressed_bytes: u64,
    /// Custom blocks written before the first packet, held until it is written:
    /// Wireshark's relative time column starts at the first frame's time, and a custom
    /// block has none, so a capture that began with one showed epoch seconds.
    held: Vec<u8>,
    seen_packet: bool,
}

/// How many block writes may pass between two looks at the clock.
const CLOCK_EVERY: u32 = 64;

/// Held custom blocks are written anyway beyond this many bytes (a long recording
/// with metadata but no packet yet).
const HOLD_MAX: usize = 1 << 20;

impl<W: Write> CaptureWriter<W> {
    /// Starts a capture on `out` and writes its Section Header Block.
    pub fn new(out: W, opts: &WriterOptions) -> io::Result<Self> {
        let buffered = io::BufWriter::with_capacity(
            1 << 20,
            Counted {
                inner: out,
                bytes: 0,
            },
        );
        let sink = match opts.compression {
            Compression::None => Sink::Plain {
                out: buffered,
                block: Vec::with_capacity(64 * 1024),
            },
            Compression::Zstd { level } => {
                Sink::Zstd(ZstdFrames::new(buffered, level, Tables::Default)?)
            }
            Compression::ZstdLive => {
                Sink::Zstd(ZstdFrames::new(buffered, ZSTD_LIVE_LEVEL, Tables::Small)?)
            }
        };
        let mut w = CaptureWriter {
            sink,
            flushed: 0,
            flushed_in_frame: false,
            flush_interval: opts.flush_interval,
            last_flush: Instant::now(),
            writes_since_clock: 0,
            interfaces: 0,
            uncompressed_bytes: 0,
            held: Vec::new(),
            seen_packet: false,
        };
        let mut b = w.block(BT_SHB);
        b.u32(BYTE_ORDER_MAGIC).u16(1).u16(0);
        b.u32(u32::MAX).u32(u32::MAX); // section length: not specified
        if let Some(hw) = &opts.hardware {
            b.opt_str(SHB_HARDWARE, hw);
        }
        if let Some(os) = &opts.os {
            b.opt_str(SHB_OS, os);
        }
        b.opt_str(SHB_USERAPPL, &opts.application);
        let len = b.finish();
        w.emit(len)?;
        Ok(w)
    }

    /// Describes an interface (IDB, nanosecond timestamps); returns its id.
    pub fn add_interface(&mut self, iface: &Interface) -> io::Result<u32> {
        let mut b = self.block(BT_IDB);
        b.u16(iface.linktype).u16(0).u32(iface.snaplen);
        if !iface.name.is_empty() {
            b.opt_str(IF_NAME, &iface.name);
        }
        if let Some(d) = &iface.description {
            b.opt_str(IF_DESCRIPTION, d);
        }
        b.opt(IF_TSRESOL, &[9]);
        let len = b.finish();
        self.emit(len)?;
        self.interfaces += 1;
        Ok(self.interfaces - 1)
    }

    /// Writes one packet as an Enhanced Packet Block.
    pub fn write_packet(&mut self, p: &PacketOut<'_>) -> io::Result<()> {
        debug_assert!(p.interface_id < self.interfaces, "unknown interface id");
        let mut b = self.block(BT_EPB);
        b.u32(p.interface_id)
            .ts(p.ts_ns)
            .u32(p.data.len() as u32)
            .u32(p.orig_len.max(p.data.len() as u32))
            .padded(p.data);
        if let Some(c) = p.comment {
            b.opt_str(OPT_COMMENT, c);
        }
        if p.direction != Direction::Unknown {
            b.opt(EPB_FLAGS, &p.direction.to_flags().to_le_bytes());
        }
        if let Some((pid, tid)) = p.process {
            let mut v = [0u8; 8];
            v[..4].copy_from_slice(&pid.to_le_bytes());
            v[4..].copy_from_slice(&tid.to_le_bytes());
            b.opt(EPB_PROCESSID_THREADID, &v);
        }
        let len = b.finish();
        self.emit(len)?;
        self.seen_packet = true;
        self.write_held()
    }

    /// Writes metadata records as l7rec Custom Blocks (one per
    /// [`RECORDS_BLOCK_BYTES`](crate::record::RECORDS_BLOCK_BYTES) or 65535 records).
    /// Does nothing for none. Before the first packet, the blocks are held and written
    /// right after it (or at [`flush`](Self::flush) once more than 1 MiB are held, or
    /// at [`finish`](Self::finish)).
    pub fn write_records(&mut self, mut records: &[Record]) -> io::Result<()> {
        while !records.is_empty() {
            let held = !self.seen_packet;
            let mut b = if held {
                BlockBuf::start(&mut self.held, BT_CUSTOM)
            } else {
                self.block(BT_CUSTOM)
            };
            b.u32(L7REC_PEN);
            let taken = encode_records(records, b.bytes_mut());
            b.pad();
            let len = b.finish();
            if !held {
                self.emit(len)?;
            }
            records = &records[taken..];
        }
        Ok(())
    }

    /// Writes the held custom blocks.
    fn write_held(&mut self) -> io::Result<()> {
        if self.held.is_empty() {
            return Ok(());
        }
        let held = std::mem::take(&mut self.held);
        match &mut self.sink {
            Sink::Plain { out, .. } => out.write_all(&held)?,
            Sink::Zstd(e) => {
                e.staging().extend_from_slice(&held);
                e.staged()?;
            }
        }
        self.uncompressed_bytes += held.len() as u64;
        Ok(())
    }

    /// Writes an Interface Statistics Block.
    pub fn write_interface_stats(&mut self, s: &InterfaceStats) -> io::Result<()> {
        let mut b = self.block(BT_ISB);
        b.u32(s.interface_id).ts(s.ts_ns);
        for (code, value) in [
            // Timestamp options are (high word, low word), like the EPB's.
            (ISB_STARTTIME, s.start_ns.map(|v| v.rotate_left(32))),
            (ISB_ENDTIME, s.end_ns.map(|v| v.rotate_left(32))),
            (ISB_IFRECV, s.if_recv),
            (ISB_IFDROP, s.if_drop),
            (ISB_FILTERACCEPT, s.filter_accept),
            (ISB_OSDROP, s.os_drop),
            (ISB_USRDELIV, s.usr_deliv),
        ] {
            if let Some(v) = value {
                b.opt_u64(code, v);
            }
        }
        let len = b.finish();
        self.emit(len)
    }

    /// Flushes if the flush interval has passed since the last flush.
    /// Returns whether it flushed.
    pub fn flush_if_due(&mut self) -> io::Result<bool> {
        self.writes_since_clock = 0;
        if self.last_flush.elapsed() >= self.flush_interval {
            self.flush()?;
            return Ok(true);
        }
        Ok(false)
    }

    /// Ends the current zstd frame and pushes everything to `W`: what was written
    /// so far is readable even if the process dies before [`finish`](Self::finish).
    pub fn flush(&mut self) -> io::Result<()> {
        self.last_flush = Instant::now();
        if self.held.len() > HOLD_MAX {
            self.write_held()?;
        }
        match &mut self.sink {
            Sink::Plain { out, .. } => out.flush()?,
            Sink::Zstd(e) => e.flush()?,
        }
        // Only now does the output end on a block boundary.
        self.flushed = self.sink.counted().bytes;
        self.flushed_in_frame = matches!(&self.sink, Sink::Zstd(e) if e.frame_open());
        Ok(())
    }

    /// Bytes of output `W` has accepted so far (compressed, if compressing).
    pub fn written_bytes(&self) -> u64 {
        self.sink.counted().bytes
    }

    /// Bytes of output `W` had accepted at the end of the last successful
    /// [`flush`](Self::flush): output cut to this length, plus the tail
    /// [`abandon`](Self::abandon) returns, is a complete capture (0 before the first
    /// flush).
    pub fn flushed_bytes(&self) -> u64 {
        self.flushed
    }

    /// The output. Writing to it directly corrupts the capture; this is for changing
    /// the state of `W` itself (such as where it writes to).
    pub fn get_mut(&mut self) -> &mut W {
        &mut self.sink.counted_mut().inner
    }

    /// Gives the writer up after an error, writing nothing more (not even what is
    /// buffered): returns `W`, [`flushed_bytes`](Self::flushed_bytes) (the length to
    /// cut the output back to so it ends on the last flush), and the bytes to append
    /// after the cut so that it is a complete zstd stream (empty when not needed).
    pub fn abandon(self) -> (W, u64, &'static [u8]) {
        let buffered = match self.sink {
            Sink::Plain { out, .. } => out,
            Sink::Zstd(e) => e.into_inner(),
        };
        // into_parts, unlike into_inner or drop, does not write the buffer out.
        let (counted, _unwritten) = buffered.into_parts();
        let tail = if self.flushed_in_frame {
            FRAME_END
        } else {
            &[]
        };
        (counted.inner, self.flushed, tail)
    }

    /// Bytes of pcapng written so far, before compression.
    pub fn uncompressed_bytes(&self) -> u64 {
        self.uncompressed_bytes
    }

    /// Ends the last zstd frame, flushes, and returns the underlying writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.write_held()?;
        let buffered = match self.sink {
            Sink::Plain { out, .. } => out,
            Sink::Zstd(e) => e.finish()?,
        };
        let counted = buffered.into_inner().map_err(|e| e.into_error())?;
        Ok(counted.inner)
    }

    /// Starts a block where it is written from: the compressor's input, or the
    /// scratch buffer of plain output.
    fn block(&mut self, block_type: u32) -> BlockBuf<'_> {
        let buf = match &mut self.sink {
            Sink::Plain { block, .. } => {
                block.clear();
                block
            }
            Sink::Zstd(e) => e.staging(),
        };
        BlockBuf::start(buf, block_type)
    }

    /// Writes the block just built, `len` bytes.
    fn emit(&mut self, len: usize) -> io::Result<()> {
        self.uncompressed_bytes += len as u64;
        match &mut self.sink {
            Sink::Plain { out, block } => out.write_all(block)?,
            Sink::Zstd(e) => e.staged()?,
        }
        self.writes_since_clock += 1;
        if self.writes_since_clock >= CLOCK_EVERY {
            self.flush_if_due()?;
        }
        Ok(())
    }
}
