//! Reader of pcapng and legacy pcap files, plain or compressed, with l7rec records.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;
use std::sync::Arc;

use thiserror::Error;

use crate::chunks::{read_chunk, Chunks, Input, SharedChunk, HEADROOM};
use crate::pcapng::*;
use crate::record::{decode_records, Record, RecordError};
use crate::types::{Direction, Interface, InterfaceStats};
use crate::zstd_whole_frames::WholeFrames;

/// Largest block (or pcap record) the reader accepts. A length field above this is
/// treated as corruption, so a hostile file cannot make the reader allocate gigabytes.
pub const MAX_BLOCK_LEN: usize = 64 << 20;

/// Compression of the input, detected from its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InputCompression {
    /// Not compressed.
    None,
    /// zstd (one or more frames).
    Zstd,
    /// gzip (one or more members).
    Gzip,
}

/// File format, detected from its first bytes (after decompression).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// pcapng.
    PcapNg,
    /// Legacy pcap (libpcap) format.
    Pcap,
}

/// Why reading stopped early. Offsets count bytes of the uncompressed stream.
#[derive(Debug, Error)]
pub enum ReadError {
    /// Opening or reading the input failed.
    #[error("I/O error at byte {offset}: {source}")]
    Io {
        /// Uncompressed offset reached.
        offset: u64,
        /// The underlying error.
        source: io::Error,
    },
    /// The input ends inside a block.
    #[error("truncated {what} at byte {offset}: {needed} bytes announced, only {available} present{cause}")]
    Truncated {
        /// What was being read.
        what: &'static str,
        /// Uncompressed offset of its start.
        offset: u64,
        /// Bytes needed.
        needed: usize,
        /// Bytes that were there.
        available: usize,
        /// Decompressor error that ended the input, if any (", zstd: ...").
        cause: String,
    },
    /// A block is malformed.
    #[error("corrupt {what} at byte {offset}: {reason}")]
    Corrupt {
        /// What was being read.
        what: &'static str,
        /// Uncompressed offset of its start.
        offset: u64,
        /// What is wrong.
        reason: String,
    },
    /// The input is neither pcap nor pcapng.
    #[error("not a pcap or pcapng capture (first bytes: {0:02x?})")]
    UnknownFormat(Vec<u8>),
    /// A compressed stream stops cleanly between two blocks but without its end
    /// marker: the file of a recorder that was killed or is still writing. Nothing
    /// read was cut; this is where the data ends.
    #[error("the compressed stream ends at byte {offset} without its end marker (a recorder killed, or still writing); everything before was read")]
    Unfinished {
        /// Uncompressed offset reached.
        offset: u64,
    },
    /// The input holds no byte at all (after decompression).
    #[error("the file is empty (a recorder that never started writing, or a failed copy)")]
    Empty,
}

/// A packet read from a capture. `data` borrows the reader's buffer.
#[derive(Debug, Clone)]
pub struct Packet<'a> {
    /// Interface index within the current section.
    pub interface_id: u32,
    /// Link type of that interface.
    pub linktype: u16,
    /// Capture time, ns since the Unix epoch.
    pub ts_ns: u64,
    /// Captured bytes.
    pub data: &'a [u8],
    /// Length on the wire.
    pub orig_len: u32,
    /// Direction (`epb_flags`), when recorded.
    pub direction: Direction,
    /// Process and thread (`epb_processid_threadid`), when recorded.
    pub process: Option<(u32, u32)>,
    /// First `opt_comment`, when present.
    pub comment: Option<&'a str>,
    /// The chunk of input that holds `data`. Keeping a clone keeps those bytes (find
    /// them with [`SharedChunk::range_of`]) beyond the next event without copying them;
    /// the reader reuses a chunk once every clone is gone.
    pub chunk: &'a SharedChunk,
}

/// One item of a capture, in file order.
#[derive(Debug)]
pub enum Event<'a> {
    /// A packet.
    Packet(Packet<'a>),
    /// l7rec metadata records from one Custom Block.
    Records(Vec<Record>),
    /// An l7rec Custom Block whose records could not be decoded (the rest of the
    /// file is still read).
    BadRecords {
        /// Uncompressed offset of the block.
        offset: u64,
        /// Why.
        error: RecordError,
    },
    /// An interface's statistics.
    InterfaceStats(InterfaceStats),
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Endian {
    Little,
    Big,
}

impl Endian {
    fn u16(self, b: &[u8]) -> u16 {
        let a = [b[0], b[1]];
        match self {
            Endian::Little => u16::from_le_bytes(a),
            Endian::Big => u16::from_be_bytes(a),
        }
    }
    fn u32(self, b: &[u8]) -> u32 {
        let a = [b[0], b[1], b[2], b[3]];
        match self {
            Endian::Little => u32::from_le_bytes(a),
            Endian::Big => u32::from_be_bytes(a),
        }
    }
    fn u64(self, b: &[u8]) -> u64 {
        let mut a = [0u8; 8];
        a.copy_from_slice(&b[..8]);
        match self {
            Endian::Little => u64::from_le_bytes(a),
            Endian::Big => u64::from_be_bytes(a),
        }
    }
}

/// How an interface's raw timestamps convert to nanoseconds.
#[derive(Debug, Clone, Copy)]
struct TsScale {
    /// `if_tsresol` byte (pcapng) or 6/9 (pcap).
    resol: u8,
    /// `if_tsoffset`, seconds.
    offset_s: i64,
}

impl TsScale {
    fn to_ns(self, raw: u64) -> u64 {
        let ns = if self.resol & 0x80 == 0 {
            let exp = u32::from(self.resol);
            if exp <= 9 {
                raw.saturating_mul(10u64.pow(9 - exp))
            } else {
                raw / 10u64.checked_pow(exp - 9).unwrap_or(u64::MAX)
            }
        } else {
            let shift = u32::from(self.resol & 0x7f).min(127);
            ((u128::from(raw) * 1_000_000_000) >> shift).min(u128::from(u64::MAX)) as u64
        };
        ns.saturating_add_signed(self.offset_s.saturating_mul(1_000_000_000))
    }
}

struct IfaceState {
    info: Interface,
    ts: TsScale,
}

/// Whether a thread reads the input ahead of the parser.
#[derive(Debug, Clone, Copy)]
enum ReadAhead {
    Never,
    Always,
    WhenCompressed,
}

/// Reads packets, l7rec records and statistics from a capture.
///
/// Accepts pcapng (any byte order, several sections) and legacy pcap (µs or ns,
/// either byte order), plain, zstd- or gzip-compressed — detected by content.
/// Iterate with [`next_event`](Self::next_event); after it returns an error the
/// reader is done, and everything before the error has been returned.
pub struct CaptureReader {
    /// The input, in chunks (read here, or ahead by a thread: [`Self::with_read_ahead`],
    /// [`Self::with_decompression_ahead`]).
    chunks: Chunks,
    src_error: Option<io::Error>,
    /// The current chunk, shared with callers (see [`Packet::chunk`]).
    buf: SharedChunk,
    /// Start of unconsumed data in `buf`.
    pos: usize,
    /// End of valid data in `buf`.
    end: usize,
    /// Uncompressed offset of `buf[pos]`.
    offset: u64,
    compression: InputCompression,
    format: Format,
    endian: Endian,
    interfaces: Vec<IfaceState>,
    done: bool,
    /// What [`Self::advance`] stopped at: a packet (in `packet`), or `found`.
    at_packet: bool,
    packet: PacketAt,
    found: Option<Found>,
}

impl CaptureReader {
    /// Opens a capture file.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, ReadError> {
        let file =
            File::open(path.as_ref()).map_err(|source| ReadError::Io { offset: 0, source })?;
        Self::new(file)
    }

    /// Reads a capture from any byte stream, on the calling thread.
    pub fn new(input: impl Read + Send + 'static) -> Result<Self, ReadError> {
        Self::open_stream(input, ReadAhead::Never)
    }

    /// Like [`new`](Self::new), but a background thread reads (and decompresses) the
    /// input ahead of the parser, at most a few MiB ahead, so the two run in parallel.
    pub fn with_read_ahead(input: impl Read + Send + 'static) -> Result<Self, ReadError> {
        Self::open_stream(input, ReadAhead::Always)
    }

    /// A background thread decompresses a compressed input ahead of the parser, as
    /// [`with_read_ahead`](Self::with_read_ahead); a plain input is read on the calling
    /// thread, as [`new`](Self::new). Decompression is worth a core of its own; a plain
    /// `read()` is not: made on another core it left every byte cold in the parser's
    /// cache, which cost more than the copy saved (1 GB pcap on 2 cores: 12 % more
    /// CPU, 8 % longer).
    pub fn with_decompression_ahead(input: impl Read + Send + 'static) -> Result<Self, ReadError> {
        Self::open_stream(input, ReadAhead::WhenCompressed)
    }

    fn open_stream(
        mut input: impl Read + Send + 'static,
        ahead: ReadAhead,
    ) -> Result<Self, ReadError> {
        let mut magic = [0u8; 4];
        let got = match read_chunk(&mut input, &mut magic) {
            (_, Some(source)) => return Err(ReadError::Io { offset: 0, source }),
            (got, None) => got,
        };
        let prefix = io::Cursor::new(magic[..got].to_vec()).chain(input);
        let (compression, src) = match &magic[..got] {
            [0x28, 0xb5, 0x2f, 0xfd] => (
                InputCompression::Zstd,
                Input::ZstdFrames(
                    WholeFrames::new(Box::new(prefix))
                        .map_err(|source| ReadError::Io { offset: 0, source })?,
                ),
            ),
            [0x1f, 0x8b, ..] => (
                InputCompression::Gzip,
                Input::Stream(Box::new(flate2::read::MultiGzDecoder::new(prefix))),
            ),
            _ => (InputCompression::None, Input::Stream(Box::new(prefix))),
        };
        let ahead = match ahead {
            ReadAhead::Never => false,
            ReadAhead::Always => true,
            ReadAhead::WhenCompressed => compression != InputCompression::None,
        };
        let chunks = if ahead {
            Chunks::ahead(src).map_err(|source| ReadError::Io { offset: 0, source })?
        } else {
            Chunks::here(src)
        };
        let mut r = CaptureReader {
            chunks,
            src_error: None,
            buf: SharedChunk(Arc::new(Vec::new())),
            pos: 0,
            end: 0,
            offset: 0,
            compression,
            format: Format::PcapNg,
            endian: Endian::Little,
            interfaces: Vec::new(),
            done: false,
            at_packet: false,
            packet: PacketAt::default(),
            found: None,
        };
        r.fill(24);
        let head = r.buf[r.pos..r.end.min(r.pos + 24)].to_vec();
        if head.len() < 4 {
            return Err(r.source_failure().unwrap_or(if head.is_empty() {
                ReadError::Empty
            } else {
                ReadError::UnknownFormat(head)
            }));
        }
        let m = [head[0], head[1], head[2], head[3]];
        match u32::from_le_bytes(m) {
            BT_SHB => r.format = Format::PcapNg,
            0xa1b2_c3d4 | 0xa1b2_3c4d => r.start_pcap(Endian::Little)?,
            0xd4c3_b2a1 | 0x4d3c_b2a1 => r.start_pcap(Endian::Big)?,
            _ => return Err(ReadError::UnknownFormat(head)),
        }
        Ok(r)
    }

    /// Compression detected on the input.
    pub fn compression(&self) -> InputCompression {
        self.compression
    }

    /// Format detected on the input.
    pub fn format(&self) -> Format {
        self.format
    }

    /// Interfaces of the current section, by interface id.
    pub fn interfaces(&self) -> impl Iterator<Item = &Interface> {
        self.interfaces.iter().map(|i| &i.info)
    }

    /// Uncompressed bytes consumed so far.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The next event, `None` at a clean end of input, or the reason reading stopped.
    pub fn next_event(&mut self) -> Option<Result<Event<'_>, ReadError>> {
        match self.advance()? {
            Ok(_) => self.take_event().map(Ok),
            Err(e) => Some(Err(e)),
        }
    }

    /// Reads on to the next event: what it is, `None` at a clean end of input, or the
    /// reason reading stopped. A packet is then read in place with
    /// [`packet`](Self::packet), anything else taken with
    /// [`take_event`](Self::take_event). The per-packet path of
    /// [`next_event`](Self::next_event) without its cost: a packet returned inside an
    /// `Event` went through memory, its fields stored one by one and copied on in
    /// wider loads that the CPU cannot serve from its store buffer. In the benchmark
    /// VM's slow stretches such a load took 66-85 % of the reader's samples, and the
    /// reader 9-20 % of a 2-thread analysis instead of 4 %.
    // Inlined, with the per-packet parsing below, so that the fields stay in registers.
    #[inline(always)]
    pub fn advance(&mut self) -> Option<Result<Step, ReadError>> {
        self.at_packet = false;
        self.found = None;
        if self.done {
            return None;
        }
        let found = match self.format {
            Format::PcapNg => self.next_pcapng_block(),
            Format::Pcap => self.next_pcap_record(),
        };
        match found {
            Ok(Some(Found::Packet)) => {
                self.at_packet = true;
                Some(Ok(Step::Packet))
            }
            Ok(Some(found)) => {
                self.found = Some(found);
                Some(Ok(Step::Other))
            }
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }

    /// The packet [`advance`](Self::advance) stopped at, if it stopped at one.
    #[inline(always)]
    pub fn packet(&self) -> Option<Packet<'_>> {
        if !self.at_packet {
            return None;
        }
        let a = &self.packet;
        let comment = match a.has_comment {
            true => self
                .buf
                .get(a.comment_start..a.comment_start + a.comment_len),
            false => None,
        };
        Some(Packet {
            interface_id: a.interface_id,
            linktype: self
                .interfaces
                .get(a.interface_id as usize)
                .map_or(0, |i| i.info.linktype),
            ts_ns: a.ts_ns,
            data: self.buf.get(a.start..a.start + a.len).unwrap_or_default(),
            orig_len: a.orig_len,
            direction: Direction::from_flags(a.flags),
            process: a.has_process.then_some((a.pid, a.tid)),
            comment: comment.and_then(|c| std::str::from_utf8(c).ok()),
            chunk: &self.buf,
        })
    }

    /// The event [`advance`](Self::advance) stopped at, a packet too; anything but a
    /// packet only once.
    pub fn take_event(&mut self) -> Option<Event<'_>> {
        let found = match self.at_packet {
            true => Found::Packet,
            false => self.found.take()?,
        };
        self.decode(found)
    }

    // ---- framing ----

    /// Makes at least `n` bytes available at `pos` unless the input ends first: the
    /// unconsumed tail moves into the next chunk's headroom and that chunk becomes the
    /// buffer.
    fn fill(&mut self, n: usize) {
        while self.end - self.pos < n {
            // After the end or an error, `next` keeps returning `None`.
            let mut chunk = match self.chunks.next() {
                None => break,
                Some(Err(e)) => {
                    self.src_error = Some(e);
                    break;
                }
                Some(Ok(chunk)) => chunk,
            };
            let tail = self.end - self.pos;
            if tail <= HEADROOM {
                let start = HEADROOM - tail;
                chunk[start..HEADROOM].copy_from_slice(&self.buf[self.pos..self.end]);
                let used = std::mem::replace(&mut self.buf, SharedChunk(Arc::new(chunk)));
                self.chunks.recycle(used.0);
                self.pos = start;
            } else {
                // A unit longer than the headroom spans chunks: append (a copy, rare;
                // one more if a caller still shares the buffer). The buffer grows with
                // the data actually present, never with what a header claims.
                let buf = Arc::make_mut(&mut self.buf.0);
                buf.copy_within(self.pos..self.end, 0);
                buf.truncate(tail);
                buf.extend_from_slice(&chunk[HEADROOM..]);
                self.chunks.recycle(Arc::new(chunk));
                self.pos = 0;
            }
            self.end = self.buf.len();
        }
    }

    fn available(&self) -> usize {
        self.end - self.pos
    }

    fn source_failure(&mut self) -> Option<ReadError> {
        let offset = self.offset + self.available() as u64;
        self.src_error
            .take()
            .map(|source| ReadError::Io { offset, source })
    }

    /// Error for "needed `n` bytes for `what`, input ended".
    fn truncated(&mut self, what: &'static str, needed: usize) -> ReadError {
        let cause = match self.src_error.take() {
            Some(e) => format!(" ({e})"),
            None => String::new(),
        };
        ReadError::Truncated {
            what,
            offset: self.offset,
            needed,
            available: self.available(),
            cause,
        }
    }

    fn corrupt(&self, what: &'static str, reason: String) -> ReadError {
        ReadError::Corrupt {
            what,
            offset: self.offset,
            reason,
        }
    }

    /// Ensures a whole unit of `len` bytes is buffered, or reports truncation.
    fn need(&mut self, what: &'static str, len: usize) -> Result<(), ReadError> {
        if len > MAX_BLOCK_LEN {
            return Err(self.corrupt(
                what,
                format!("length {len} exceeds the {MAX_BLOCK_LEN}-byte limit"),
            ));
        }
        self.fill(len);
        if self.available() < len {
            return Err(self.truncated(what, len));
        }
        Ok(())
    }

    /// At a unit boundary: `Ok(false)` at a clean end of input.
    fn more(&mut self) -> Result<bool, ReadError> {
        self.fill(1);
        if self.available() == 0 {
            // The decompressor's "input ended inside a frame", at a block boundary of
            // ours: what a killed recorder leaves, not damage (tshark reads it too).
            let unfinished = self.compression != InputCompression::None
                && self
                    .src_error
                    .as_ref()
                    .is_some_and(|e| e.kind() == io::ErrorKind::UnexpectedEof);
            if unfinished {
                self.src_error = None;
                return Err(ReadError::Unfinished {
                    offset: self.offset,
                });
            }
            return match self.source_failure() {
                Some(e) => Err(e),
                None => Ok(false),
            };
        }
        Ok(true)
    }

    fn consume(&mut self, n: usize) {
        self.pos += n;
        self.offset += n as u64;
    }

    // ---- legacy pcap ----

    fn start_pcap(&mut self, endian: Endian) -> Result<(), ReadError> {
        self.format = Format::Pcap;
        self.endian = endian;
        self.need("pcap file header", 24)?;
        let h = &self.buf[self.pos..self.pos + 24];
        let magic = endian.u32(h);
        let resol = if magic == 0xa1b2_3c4d { 9 } else { 6 };
        let snaplen = endian.u32(&h[16..]);
        let linktype = (endian.u32(&h[20..]) & 0xffff) as u16;
        self.interfaces = vec![IfaceState {
            info: Interface {
                name: String::new(),
                description: None,
                linktype,
                snaplen,
            },
            ts: TsScale { resol, offset_s: 0 },
        }];
        self.consume(24);
        Ok(())
    }

    #[inline(always)] // see advance
    fn next_pcap_record(&mut self) -> Result<Option<Found>, ReadError> {
        if !self.more()? {
            return Ok(None);
        }
        self.need("pcap record header", 16)?;
        let h = &self.buf[self.pos..self.pos + 16];
        let (e, ts) = (self.endian, self.interfaces[0].ts);
        let (sec, frac) = (u64::from(e.u32(h)), u64::from(e.u32(&h[4..])));
        let incl = e.u32(&h[8..]) as usize;
        let orig = e.u32(&h[12..]);
        let frac_scale = if ts.resol == 9 { 1 } else { 1000 };
        let ts_ns = sec * 1_000_000_000 + frac * frac_scale;
        self.need("pcap record", 16 + incl)?;
        let start = self.pos + 16;
        self.consume(16 + incl);
        self.packet = PacketAt {
            ts_ns,
            start,
            len: incl,
            orig_len: orig,
            ..PacketAt::default()
        };
        Ok(Some(Found::Packet))
    }

    // ---- pcapng ----

    #[inline(always)] // see advance
    fn next_pcapng_block(&mut self) -> Result<Option<Found>, ReadError> {
        loop {
            if !self.more()? {
                return Ok(None);
            }
            self.need("block header", 12)?;
            let head = &self.buf[self.pos..self.pos + 12];
            let raw_type = u32::from_le_bytes([head[0], head[1], head[2], head[3]]);
            if raw_type == BT_SHB {
                // The byte-order magic decides how every later field is read.
                self.endian = match u32::from_le_bytes([head[8], head[9], head[10], head[11]]) {
                    BYTE_ORDER_MAGIC => Endian::Little,
                    0x4d3c_2b1a => Endian::Big,
                    other => {
                        return Err(
                            self.corrupt("section header", format!("byte-order magic {other:#x}"))
                        )
                    }
                };
            }
            let e = self.endian;
            let btype = e.u32(head);
            let len = e.u32(&head[4..]) as usize;
            if len < 12 || !len.is_multiple_of(4) {
                return Err(self.corrupt("block", format!("type {btype:#x} has length {len}")));
            }
            self.need("block", len)?;
            let block = &self.buf[self.pos..self.pos + len];
            if e.u32(&block[len - 4..]) as usize != len {
                return Err(self.corrupt(
                    "block",
                    format!("type {btype:#x}: trailing length differs from leading {len}"),
                ));
            }
            let body = (self.pos + 8, len - 12);
            let block_offset = self.offset;
            self.consume(len);
            let found = match btype {
                BT_SHB => {
                    self.interfaces.clear();
                    None
                }
                BT_IDB => {
                    self.parse_idb(body, block_offset)?;
                    None
                }
                BT_EPB => Some(self.parse_epb(body, block_offset)?),
                BT_SPB => Some(self.parse_spb(body, block_offset)?),
                BT_ISB => Some(self.parse_isb(body, block_offset)?),
                BT_CUSTOM | BT_CUSTOM_NOCOPY => {
                    let (start, blen) = body;
                    if blen >= 4 && e.u32(&self.buf[start..]) == L7REC_PEN {
                        Some(Found::Custom {
                            data: (start + 4, blen - 4),
                            offset: block_offset,
                        })
                    } else {
                        None
                    }
                }
                _ => None, // other block types (NRB, DSB, ...) carry nothing we use
            };
            if let Some(f) = found {
                return Ok(Some(f));
            }
        }
    }

    fn corrupt_at(what: &'static str, offset: u64, reason: impl Into<String>) -> ReadError {
        ReadError::Corrupt {
            what,
            offset,
            reason: reason.into(),
        }
    }

    fn parse_idb(&mut self, (start, len): (usize, usize), offset: u64) -> Result<(), ReadError> {
        let e = self.endian;
        let b = &self.buf[start..start + len];
        if b.len() < 8 {
            return Err(Self::corrupt_at(
                "interface description",
                offset,
                "too short",
            ));
        }
        let mut info = Interface {
            name: String::new(),
            description: None,
            linktype: e.u16(b),
            snaplen: e.u32(&b[4..]),
        };
        let mut ts = TsScale {
            resol: 6,
            offset_s: 0,
        };
        for (code, v) in Options::new(&b[8..], e) {
            match code {
                IF_NAME => info.name = String::from_utf8_lossy(trim_nul(v)).into_owned(),
                IF_DESCRIPTION => {
                    info.description = Some(String::from_utf8_lossy(trim_nul(v)).into_owned())
                }
                IF_TSRESOL if !v.is_empty() => ts.resol = v[0],
                IF_TSOFFSET if v.len() >= 8 => ts.offset_s = e.u64(v) as i64,
                _ => {}
            }
        }
        self.interfaces.push(IfaceState { info, ts });
        Ok(())
    }

    fn iface(&self, id: u32, what: &'static str, offset: u64) -> Result<TsScale, ReadError> {
        self.interfaces
            .get(id as usize)
            .map(|i| i.ts)
            .ok_or_else(|| Self::corrupt_at(what, offset, format!("unknown interface id {id}")))
    }

    #[inline(always)] // see advance
    fn parse_epb(&mut self, (start, len): (usize, usize), offset: u64) -> Result<Found, ReadError> {
        const WHAT: &str = "enhanced packet block";
        let e = self.endian;
        let b = &self.buf[start..start + len];
        if b.len() < 20 {
            return Err(Self::corrupt_at(WHAT, offset, "too short"));
        }
        let interface_id = e.u32(b);
        let ts = self.iface(interface_id, WHAT, offset)?;
        let raw_ts = (u64::from(e.u32(&b[4..])) << 32) | u64::from(e.u32(&b[8..]));
        let cap = e.u32(&b[12..]) as usize;
        let orig_len = e.u32(&b[16..]);
        let padded = cap.div_ceil(4) * 4;
        if 20 + padded > b.len() {
            return Err(Self::corrupt_at(
                WHAT,
                offset,
                format!("captured length {cap} exceeds the block"),
            ));
        }
        let (mut flags, mut process, mut comment) = (0u32, None, None);
        for (code, v) in Options::new(&b[20 + padded..], e) {
            match code {
                OPT_COMMENT if comment.is_none() => {
                    let at = v.as_ptr() as usize - self.buf.as_ptr() as usize;
                    comment = Some((at, trim_nul(v).len()));
                }
                EPB_FLAGS if v.len() >= 4 => flags = e.u32(v),
                EPB_PROCESSID_THREADID if v.len() >= 8 => {
                    process = Some((e.u32(v), e.u32(&v[4..])))
                }
                _ => {}
            }
        }
        let ((pid, tid), (comment_start, comment_len)) =
            (process.unwrap_or_default(), comment.unwrap_or_default());
        self.packet = PacketAt {
            interface_id,
            ts_ns: ts.to_ns(raw_ts),
            start: start + 20,
            len: cap,
            orig_len,
            flags,
            pid,
            tid,
            has_process: process.is_some(),
            comment_start,
            comment_len,
            has_comment: comment.is_some(),
        };
        Ok(Found::Packet)
    }

    fn parse_spb(&mut self, (start, len): (usize, usize), offset: u64) -> Result<Found, ReadError> {
        const WHAT: &str = "simple packet block";
        let b = &self.buf[start..start + len];
        if b.len() < 4 {
            return Err(Self::corrupt_at(WHAT, offset, "too short"));
        }
        self.iface(0, WHAT, offset)?;
        let orig_len = self.endian.u32(b);
        let snap = self.interfaces[0].info.snaplen as usize;
        let mut cap = (orig_len as usize).min(len - 4);
        if snap != 0 {
            cap = cap.min(snap);
        }
        self.packet = PacketAt {
            start: start + 4,
            len: cap,
            orig_len,
            ..PacketAt::default()
        };
        Ok(Found::Packet)
    }

    fn parse_isb(&self, (start, len): (usize, usize), offset: u64) -> Result<Found, ReadError> {
        const WHAT: &str = "interface statistics block";
        let e = self.endian;
        let b = &self.buf[start..start + len];
        if b.len() < 12 {
            return Err(Self::corrupt_at(WHAT, offset, "too short"));
        }
        let interface_id = e.u32(b);
        let ts = self.iface(interface_id, WHAT, offset)?;
        let stamp = |v: &[u8]| ts.to_ns((u64::from(e.u32(v)) << 32) | u64::from(e.u32(&v[4..])));
        let mut s = InterfaceStats {
            interface_id,
            ts_ns: stamp(&b[4..]),
            ..Default::default()
        };
        for (code, v) in Options::new(&b[12..], e) {
            if v.len() < 8 {
                continue;
            }
            match code {
                ISB_STARTTIME => s.start_ns = Some(stamp(v)),
                ISB_ENDTIME => s.end_ns = Some(stamp(v)),
                ISB_IFRECV => s.if_recv = Some(e.u64(v)),
                ISB_IFDROP => s.if_drop = Some(e.u64(v)),
                ISB_FILTERACCEPT => s.filter_accept = Some(e.u64(v)),
                ISB_OSDROP => s.os_drop = Some(e.u64(v)),
                ISB_USRDELIV => s.usr_deliv = Some(e.u64(v)),
                _ => {}
            }
        }
        Ok(Found::Stats(s))
    }

    /// Turns buffer positions into a borrowed event (a packet's are in `packet`).
    fn decode(&self, found: Found) -> Option<Event<'_>> {
        Some(match found {
            Found::Packet => Event::Packet(self.packet()?),
            Found::Custom {
                data: (start, len),
                offset,
            } => match decode_records(&self.buf[start..start + len]) {
                Ok(records) => Event::Records(records),
                Err(error) => Event::BadRecords { offset, error },
            },
            Found::Stats(s) => Event::InterfaceStats(s),
        })
    }
}

/// A block located in the buffer; positions stay valid until the next `fill`.
enum Found {
    /// A packet, described in [`CaptureReader::packet`]'s `PacketAt`.
    Packet,
    Custom {
        data: (usize, usize),
        offset: u64,
    },
    Stats(InterfaceStats),
}

/// Where the packet found last lies in the buffer and what its block said, written
/// field by field by the block parsers and read the same way by
/// [`CaptureReader::packet`]: never moved as a whole (see [`CaptureReader::advance`]).
#[derive(Default)]
struct PacketAt {
    interface_id: u32,
    ts_ns: u64,
    start: usize,
    len: usize,
    orig_len: u32,
    /// `epb_flags`.
    flags: u32,
    /// `epb_processid_threadid`, if `has_process`.
    pid: u32,
    tid: u32,
    has_process: bool,
    /// The first `opt_comment`, if `has_comment`.
    comment_start: usize,
    comment_len: usize,
    has_comment: bool,
}

/// What [`CaptureReader::advance`] stopped at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// A packet: [`CaptureReader::packet`].
    Packet,
    /// Something else: [`CaptureReader::take_event`].
    Other,
}

/// Iterates `(code, value)` pairs of a pcapng options list, stopping at
/// `opt_endofopt` or at the first option that does not fit.
struct Options<'a> {
    rest: &'a [u8],
    endian: Endian,
}

impl<'a> Options<'a> {
    fn new(rest: &'a [u8], endian: Endian) -> Self {
        Options { rest, endian }
    }
}

impl<'a> Iterator for Options<'a> {
    type Item = (u16, &'a [u8]);
    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.len() < 4 {
            return None;
        }
        let code = self.endian.u16(self.rest);
        let len = usize::from(self.endian.u16(&self.rest[2..]));
        let padded = len.div_ceil(4) * 4;
        if code == OPT_ENDOFOPT || 4 + padded > self.rest.len() {
            self.rest = &[];
            return None;
        }
        let value = &self.rest[4..4 + len];
        self.rest = &self.rest[4 + padded..];
        Some((code, value))
    }
}

fn trim_nul(v: &[u8]) -> &[u8] {
    match v.iter().position(|&b| b == 0) {
        Some(i) => &v[..i],
        None => v,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A legacy pcap (Ethernet, µs) holding one 60-byte frame.
    fn tiny_pcap() -> Vec<u8> {
        let mut f = Vec::new();
        for v in [0xa1b2_c3d4u32, 0x0004_0002, 0, 0, 65535, 1] {
            f.extend_from_slice(&v.to_le_bytes());
        }
        for v in [1u32, 2, 60, 60] {
            f.extend_from_slice(&v.to_le_bytes());
        }
        f.extend_from_slice(&[0x5a; 60]);
        f
    }

    fn packets(mut r: CaptureReader) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        while let Some(ev) = r.next_event() {
            if let Event::Packet(p) = ev.expect("readable") {
                out.push(p.data.to_vec());
            }
        }
        out
    }

    #[test]
    fn only_compressed_input_is_decompressed_ahead() {
        let plain = tiny_pcap();
        let zst = zstd::encode_all(&plain[..], 1).expect("compress");
        let r =
            CaptureReader::with_decompression_ahead(io::Cursor::new(plain.clone())).expect("plain");
        assert!(
            !r.chunks.reads_ahead(),
            "a plain file is read by the parser"
        );
        assert_eq!(packets(r), [vec![0x5a; 60]]);
        let r = CaptureReader::with_decompression_ahead(io::Cursor::new(zst)).expect("zstd");
        assert!(
            r.chunks.reads_ahead(),
            "decompression has a thread of its own"
        );
        assert_eq!(packets(r), [vec![0x5a; 60]]);
    }
}
