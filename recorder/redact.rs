//! `l7rec record --redact`: masks the values of secret HTTP/1.x headers
//! (Authorization, Proxy-Authorization, Cookie, Set-Cookie and user-chosen names) in
//! captured TCP payloads before they are written, keeping every length so TCP streams,
//! `Content-Length` framing and tshark's reassembly stay consistent.
//!
//! # How
//!
//! [`Redactor::redact_frame`] is given every captured frame in capture order (a copy the
//! caller may change). It decodes the frame down to TCP and runs a small streaming
//! state machine per connection direction (`src`, `dst` socket addresses) that follows
//! TCP sequence numbers, so a header line is recognised even when its name, its colon
//! or its value is split over several segments. A line is secret when it starts with a
//! listed name (ASCII case-insensitive), optional blanks and `:`; every byte of its
//! value after the leading blanks, up to the end of the line, becomes `*` except CR
//! and LF. Folded continuation lines (obs-fold: a line starting with SP/HTAB right
//! after a masked line) are masked too. The TCP checksum is updated incrementally
//! (RFC 1624): a valid checksum stays valid.
//!
//! HTTP framing is not parsed: a body line that starts with `Cookie:` is masked too
//! (over-masking is preferred to leaking); a line that merely contains a listed name
//! elsewhere is left alone.
//!
//! # Policies (never leak, over-mask when unsure)
//!
//! * **In order** (the segment starts at the next expected sequence number): streamed.
//! * **SYN**: payload starts at ISN+1 at a line start. A repeated SYN with the same ISN
//!   changes nothing; a new ISN starts a new stream.
//! * **Unknown context** — the first data of a direction seen without its SYN (recording
//!   started mid-connection, or the direction was evicted), data after a gap (a segment
//!   ahead of the next expected one: the missing bytes could hold the start of a secret
//!   line) and data after a snap-length cut: the bytes up to the first LF could be the
//!   rest of a secret value. They are masked, unless they contain a control byte other
//!   than HTAB/CR (which an HTTP header line cannot hold: then they are left alone, so
//!   binary bodies are not damaged). After that LF the stream is followed as usual.
//! * **Retransmissions** (data before the next expected sequence number): every
//!   direction keeps the last [`RANGES`] masked sequence ranges; data inside the region
//!   those ranges fully describe (streamed without a gap since, and no range forgotten
//!   there) gets exactly the same masking as its first copy. Older data, or data that
//!   fills a gap, is scanned on its own in the unknown-context mode above and then gets
//!   the remembered ranges too: never less masking, possibly more.
//! * **FIN**: the direction is marked finished and kept a while for retransmissions;
//!   finished directions go first when memory is reclaimed (every [`SWEEP_EVERY`]
//!   packets, those idle for [`FINISHED_GRACE`] packets are dropped). **RST**: both
//!   directions are dropped at once (a payload on the RST is scanned as unknown context).
//! * **Sequence wraparound**: all comparisons are modular (RFC 1982 style), and regions
//!   more than 1 GiB behind the stream are no longer trusted.
//! * **Memory**: at most [`MAX_DIRECTIONS`] directions (about 400 bytes each); when full,
//!   the least recently used half (finished directions first) is dropped. A dropped
//!   direction that comes back is in unknown context. No allocation per packet except
//!   when the direction table grows.
//!
//! Limits: only HTTP/1.x header syntax in cleartext TCP; IP fragments and frames that
//! do not decode to TCP are written unchanged; a header value holding control bytes
//! right after a gap may escape the unknown-context rule.

use std::collections::HashMap;
use std::ffi::OsString;
use std::net::SocketAddr;

use l7rec_analyzer::decode::tcp_segment;

use crate::syscalls::SyscallEvent;

/// Headers masked by `--redact`.
pub const DEFAULT_HEADERS: [&str; 4] = [
    "Authorization",
    "Proxy-Authorization",
    "Cookie",
    "Set-Cookie",
];
/// Most header names a redactor can watch (defaults included).
pub const MAX_NAMES: usize = 64;
/// Longest header name accepted.
pub const MAX_NAME_LEN: usize = 256;
/// Most connection directions tracked at once.
pub const MAX_DIRECTIONS: usize = 65_536;
/// Masked sequence ranges remembered per direction (for retransmissions).
pub const RANGES: usize = 32;
/// How often (in packets) finished directions are reclaimed.
pub const SWEEP_EVERY: u64 = 1 << 16;
/// Packets a finished direction stays (for retransmissions of its last segments).
pub const FINISHED_GRACE: u64 = 1 << 16;
/// Data further behind the stream than this is never trusted to the range history.
const TRUST_WINDOW: u32 = 1 << 30;
/// What a masked byte becomes.
pub const MASK: u8 = b'*';

/// `a < b` in sequence space.
fn seq_lt(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) < 0
}

/// The later of two sequence numbers.
fn seq_max(a: u32, b: u32) -> u32 {
    if seq_lt(a, b) {
        b
    } else {
        a
    }
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// A byte an HTTP header line cannot contain (CTL other than HTAB and CR; LF ends it).
fn is_non_header_byte(b: u8) -> bool {
    (b < 0x20 && b != b'\t' && b != b'\r') || b == 0x7f
}

/// The watched header names, lower case, as bit sets for the matcher.
#[derive(Debug)]
struct Names {
    names: Vec<Box<[u8]>>,
    /// Names that can start with each byte (both cases).
    first: [u64; 256],
}

impl Names {
    fn new<S: AsRef<str>>(extra: &[S]) -> Result<Self, String> {
        let mut names: Vec<Box<[u8]>> = Vec::new();
        let all = DEFAULT_HEADERS
            .iter()
            .map(|s| (*s, true))
            .chain(extra.iter().map(|s| (s.as_ref(), false)));
        for (raw, _default) in all {
            let name = raw.trim();
            let name = name.strip_suffix(':').unwrap_or(name).trim_end();
            if name.is_empty() {
                return Err(format!("invalid header name {raw:?}: empty"));
            }
            if name.len() > MAX_NAME_LEN {
                return Err(format!(
                    "invalid header name {raw:?}: longer than {MAX_NAME_LEN} bytes"
                ));
            }
            if let Some(bad) = name.bytes().find(|&b| !is_tchar(b)) {
                return Err(format!(
                    "invalid header name {raw:?}: {:?} cannot appear in an HTTP header name",
                    bad as char
                ));
            }
            let lower: Box<[u8]> = name.to_ascii_lowercase().into_bytes().into();
            if !names.contains(&lower) {
                names.push(lower);
            }
        }
        if names.len() > MAX_NAMES {
            return Err(format!(
                "too many header names to redact ({}; at most {MAX_NAMES})",
                names.len()
            ));
        }
        let mut first = [0u64; 256];
        for (i, n) in names.iter().enumerate() {
            first[usize::from(n[0])] |= 1 << i;
            first[usize::from(n[0].to_ascii_uppercase())] |= 1 << i;
        }
        Ok(Self { names, first })
    }

    /// Whether a name of `cand` is exactly `len` bytes long.
    fn exact(&self, mut cand: u64, len: u16) -> bool {
        while cand != 0 {
            let i = cand.trailing_zeros() as usize;
            if self.names[i].len() == usize::from(len) {
                return true;
            }
            cand &= cand - 1;
        }
        false
    }

    /// The names of `cand` whose byte `len` is `b` (any case).
    fn next(&self, cand: u64, len: u16, b: u8) -> u64 {
        let b = b.to_ascii_lowercase();
        let mut rest = cand;
        let mut keep = 0;
        while rest != 0 {
            let i = rest.trailing_zeros() as usize;
            if self.names[i].get(usize::from(len)) == Some(&b) {
                keep |= 1 << i;
            }
            rest &= rest - 1;
        }
        keep
    }
}

/// Where the scanner is within the current line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Line {
    /// At the first byte of a line.
    Start,
    /// Reading the first `len` bytes of a line, which begin names of `cand`.
    Name { cand: u64, len: u16 },
    /// A watched name was read in full; blanks may precede the colon.
    AwaitColon,
    /// After the colon of a secret header: blanks are kept.
    ValueOws,
    /// Inside a secret value: masking until the end of the line.
    Value,
    /// Right after the LF of a secret line: SP/HTAB would continue it (obs-fold).
    ValueEnd,
    /// In a line of no interest, until its LF.
    Skip,
    /// Context unknown (see the module docs): decide from the bytes up to the next LF.
    Unknown,
}

/// The payload being masked, with the checksum bookkeeping of what changed.
struct Out<'a> {
    buf: &'a mut [u8],
    /// One's-complement sums (unfolded) of the 16-bit words before and after masking.
    old_sum: u64,
    new_sum: u64,
    masked: usize,
}

impl<'a> Out<'a> {
    fn new(buf: &'a mut [u8]) -> Self {
        Self {
            buf,
            old_sum: 0,
            new_sum: 0,
            masked: 0,
        }
    }

    /// Masks `buf[i]`. Payloads start at an even offset of the TCP header, so the byte's
    /// parity in the payload is its parity in the checksummed words.
    fn mask(&mut self, i: usize) {
        let b = self.buf[i];
        if b != MASK {
            let shift = if i.is_multiple_of(2) { 8 } else { 0 };
            self.old_sum += u64::from(b) << shift;
            self.new_sum += u64::from(MASK) << shift;
            self.buf[i] = MASK;
            self.masked += 1;
        }
    }

    /// Masks `buf[from..to]` except CR and LF; returns nothing (ranges are the caller's).
    fn mask_range(&mut self, from: usize, to: usize) {
        for i in from..to {
            if !matches!(self.buf[i], b'\r' | b'\n') {
                self.mask(i);
            }
        }
    }
}

/// Folds an unfolded one's-complement sum to 16 bits.
fn fold(mut s: u64) -> u16 {
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    s as u16
}

/// The last masked sequence ranges of a direction, and from where they are complete.
#[derive(Debug, Clone)]
struct History {
    /// (start, len) ring, oldest at `head`.
    ranges: [(u32, u32); RANGES],
    head: usize,
    len: usize,
    /// Data at or after this sequence number (and before `next`) was streamed without a
    /// gap and every range masked in it is still in `ranges`.
    trusted_from: u32,
}

impl History {
    fn new(start: u32) -> Self {
        Self {
            ranges: [(0, 0); RANGES],
            head: 0,
            len: 0,
            trusted_from: start,
        }
    }

    /// Records a masked run `[start, start+len)`, merging it with the last one when
    /// they touch; forgetting the oldest moves `trusted_from` past it.
    fn push(&mut self, start: u32, len: u32) {
        if len == 0 {
            return;
        }
        if self.len > 0 {
            let last = &mut self.ranges[(self.head + self.len - 1) % RANGES];
            if last.0.wrapping_add(last.1) == start && last.1 < TRUST_WINDOW {
                last.1 += len;
                return;
            }
        }
        if self.len == RANGES {
            let (s, l) = self.ranges[self.head];
            self.trusted_from = seq_max(self.trusted_from, s.wrapping_add(l));
            self.head = (self.head + 1) % RANGES;
            self.len -= 1;
        }
        self.ranges[(self.head + self.len) % RANGES] = (start, len);
        self.len += 1;
    }

    /// Masks the parts of `out.buf[from..to]` (sequence `seq` at `from`) that a range
    /// covers.
    /// Ranges ending more than [`TRUST_WINDOW`] before `next` are ignored (their
    /// sequence numbers may have wrapped around).
    fn apply(&self, out: &mut Out<'_>, from: usize, to: usize, seq: u32, next: u32) {
        let n = (to - from) as i64;
        for k in 0..self.len {
            let (s, l) = self.ranges[(self.head + k) % RANGES];
            if next.wrapping_sub(s.wrapping_add(l)) > TRUST_WINDOW {
                continue;
            }
            let rel = i64::from(s.wrapping_sub(seq) as i32);
            let a = rel.max(0);
            let b = (rel + i64::from(l)).min(n);
            if a < b {
                out.mask_range(from + a as usize, from + b as usize);
            }
        }
    }
}

/// The state of one connection direction.
#[derive(Debug, Clone)]
struct Dir {
    /// Next expected sequence number.
    next: u32,
    /// The ISN if the SYN was seen.
    isn: Option<u32>,
    line: Line,
    history: History,
    /// Redactor clock at the last packet.
    last_used: u64,
    /// A FIN was seen.
    finished: bool,
}

impl Dir {
    fn new(next: u32, line: Line, isn: Option<u32>) -> Self {
        Self {
            next,
            isn,
            line,
            history: History::new(next),
            last_used: 0,
            finished: false,
        }
    }

    /// Start of the trusted region, at most [`TRUST_WINDOW`] behind `next`.
    fn trusted_from(&mut self) -> u32 {
        if self.next.wrapping_sub(self.history.trusted_from) > TRUST_WINDOW {
            self.history.trusted_from = self.next.wrapping_sub(TRUST_WINDOW);
        }
        self.history.trusted_from
    }
}

/// Runs the line scanner over `out.buf[from..to]`, whose first byte has sequence
/// number `seq`, recording the masked runs in `history` (if any).
fn scan(
    names: &Names,
    line: &mut Line,
    out: &mut Out<'_>,
    from: usize,
    to: usize,
    seq: u32,
    mut history: Option<&mut History>,
) {
    let mut i = from;
    while i < to {
        match *line {
            Line::Skip => match out.buf[i..to].iter().position(|&b| b == b'\n') {
                Some(k) => {
                    i += k + 1;
                    *line = Line::Start;
                }
                None => i = to,
            },
            Line::Value => {
                let mut run = i;
                while i < to && out.buf[i] != b'\n' {
                    if out.buf[i] == b'\r' {
                        record(&mut history, out, run, i, from, seq);
                        run = i + 1;
                    }
                    i += 1;
                }
                record(&mut history, out, run, i, from, seq);
                if i < to {
                    // The LF.
                    i += 1;
                    *line = Line::ValueEnd;
                }
            }
            Line::Unknown => {
                let end = out.buf[i..to]
                    .iter()
                    .position(|&b| b == b'\n')
                    .map_or(to, |k| i + k);
                *line = if out.buf[i..end].iter().any(|&b| is_non_header_byte(b)) {
                    Line::Skip
                } else {
                    Line::Value
                };
            }
            Line::ValueEnd => {
                if matches!(out.buf[i], b' ' | b'\t') {
                    *line = Line::ValueOws;
                    i += 1;
                } else {
                    *line = Line::Start;
                }
            }
            Line::ValueOws => match out.buf[i] {
                b' ' | b'\t' | b'\r' => i += 1,
                b'\n' => {
                    *line = Line::ValueEnd;
                    i += 1;
                }
                _ => *line = Line::Value,
            },
            Line::Start => {
                let b = out.buf[i];
                *line = if b == b'\n' {
                    Line::Start
                } else {
                    match names.first[usize::from(b)] {
                        0 => Line::Skip,
                        cand => Line::Name { cand, len: 1 },
                    }
                };
                i += 1;
            }
            Line::Name { cand, len } => {
                let b = out.buf[i];
                *line = match b {
                    b':' if names.exact(cand, len) => Line::ValueOws,
                    b' ' | b'\t' if names.exact(cand, len) => Line::AwaitColon,
                    b'\n' => Line::Start,
                    _ => match names.next(cand, len, b) {
                        0 => Line::Skip,
                        cand => Line::Name { cand, len: len + 1 },
                    },
                };
                i += 1;
            }
            Line::AwaitColon => {
                *line = match out.buf[i] {
                    b':' => Line::ValueOws,
                    b' ' | b'\t' => Line::AwaitColon,
                    b'\n' => Line::Start,
                    _ => Line::Skip,
                };
                i += 1;
            }
        }
    }
}

/// Masks `out.buf[a..b]` (no CR/LF in it) and records it at its sequence number.
fn record(
    history: &mut Option<&mut History>,
    out: &mut Out<'_>,
    a: usize,
    b: usize,
    from: usize,
    seq: u32,
) {
    if a >= b {
        return;
    }
    for k in a..b {
        out.mask(k);
    }
    if let Some(h) = history.as_deref_mut() {
        h.push(seq.wrapping_add((a - from) as u32), (b - a) as u32);
    }
}

/// TCP-level description of a captured segment (see [`Redactor::redact_segment`]).
#[derive(Debug, Clone, Copy)]
pub struct SegmentInfo {
    pub src: SocketAddr,
    pub dst: SocketAddr,
    /// Sequence number of the segment (of the SYN if `syn`).
    pub seq: u32,
    pub syn: bool,
    pub fin: bool,
    pub rst: bool,
    /// Payload bytes the snap length cut off after the captured payload.
    pub truncated: usize,
}

/// Streaming masker of secret header values; see the module docs.
#[derive(Debug)]
pub struct Redactor {
    names: Names,
    dirs: HashMap<(SocketAddr, SocketAddr), Dir>,
    max_dirs: usize,
    /// Packets seen (the LRU clock).
    clock: u64,
    /// Reused by eviction.
    scratch: Vec<u64>,
    masked_bytes: u64,
}

impl Redactor {
    /// Masks [`DEFAULT_HEADERS`] and `extra` (names, any case, optional trailing `:`).
    pub fn new<S: AsRef<str>>(extra: &[S]) -> Result<Self, String> {
        Self::with_max_directions(extra, MAX_DIRECTIONS)
    }

    /// Like [`Redactor::new`] with another cap on tracked directions.
    pub fn with_max_directions<S: AsRef<str>>(
        extra: &[S],
        max_dirs: usize,
    ) -> Result<Self, String> {
        Ok(Self {
            names: Names::new(extra)?,
            dirs: HashMap::new(),
            max_dirs: max_dirs.max(2),
            clock: 0,
            scratch: Vec::new(),
            masked_bytes: 0,
        })
    }

    /// Bytes masked so far.
    #[allow(dead_code)] // Used by tests; handy for a summary line.
    pub fn masked_bytes(&self) -> u64 {
        self.masked_bytes
    }

    /// Directions currently tracked.
    #[allow(dead_code)]
    pub fn tracked_directions(&self) -> usize {
        self.dirs.len()
    }

    /// Masks secret header values in the TCP payload of `frame` (link type
    /// `linktype`, as in pcap) in place and fixes the TCP checksum. Frames that do not
    /// decode to TCP are left alone. Returns the number of bytes masked.
    pub fn redact_frame(&mut self, linktype: u16, frame: &mut [u8]) -> usize {
        let (info, off, len, checksum_at) = {
            let Ok(seg) = tcp_segment(linktype, frame) else {
                return 0;
            };
            let off = seg.payload.as_ptr() as usize - frame.as_ptr() as usize;
            let info = SegmentInfo {
                src: seg.src,
                dst: seg.dst,
                seq: seg.seq,
                syn: seg.syn,
                fin: seg.fin,
                rst: seg.rst,
                truncated: seg.truncated,
            };
            let checksum_at = tcp_checksum_offset(frame, off, &info);
            (info, off, seg.payload.len(), checksum_at)
        };
        let (masked, old_sum, new_sum) = {
            let mut out = Out::new(&mut frame[off..off + len]);
            self.segment(&info, &mut out);
            (out.masked, out.old_sum, out.new_sum)
        };
        if masked > 0 {
            if let Some(at) = checksum_at {
                // RFC 1624, eqn. 3: HC' = ~(~HC + ~m + m').
                let hc = u16::from_be_bytes([frame[at], frame[at + 1]]);
                let m = fold(old_sum);
                let m2 = fold(new_sum);
                let sum = u64::from(!hc) + u64::from(!m) + u64::from(m2);
                frame[at..at + 2].copy_from_slice(&(!fold(sum)).to_be_bytes());
            }
        }
        masked
    }

    /// Masks `payload`, the captured payload of the TCP segment `info`, in place.
    /// Returns the number of bytes masked.
    #[allow(dead_code)] // The TCP-level entry point; the recorder uses redact_frame.
    pub fn redact_segment(&mut self, info: &SegmentInfo, payload: &mut [u8]) -> usize {
        let mut out = Out::new(payload);
        self.segment(info, &mut out);
        out.masked
    }

    fn segment(&mut self, m: &SegmentInfo, out: &mut Out<'_>) {
        self.clock += 1;
        if self.clock.is_multiple_of(SWEEP_EVERY) {
            let clock = self.clock;
            self.dirs
                .retain(|_, d| !(d.finished && clock - d.last_used > FINISHED_GRACE));
        }
        let n = out.buf.len();
        let key = (m.src, m.dst);
        if m.rst {
            self.dirs.remove(&key);
            self.dirs.remove(&(m.dst, m.src));
            let mut line = Line::Unknown;
            scan(&self.names, &mut line, out, 0, n, m.seq, None);
            self.masked_bytes += out.masked as u64;
            return;
        }
        let data_seq = if m.syn { m.seq.wrapping_add(1) } else { m.seq };
        if !self.dirs.contains_key(&key) {
            if self.dirs.len() >= self.max_dirs {
                self.evict();
            }
            let dir = if m.syn {
                Dir::new(data_seq, Line::Start, Some(m.seq))
            } else {
                Dir::new(data_seq, Line::Unknown, None)
            };
            self.dirs.insert(key, dir);
        }
        let Some(dir) = self.dirs.get_mut(&key) else {
            return;
        };
        if m.syn && dir.isn != Some(m.seq) {
            *dir = Dir::new(data_seq, Line::Start, Some(m.seq));
        }
        dir.last_used = self.clock;
        if n > 0 {
            let d = data_seq.wrapping_sub(dir.next) as i32;
            let mut from = 0;
            if d > 0 {
                // A gap: what is missing could hold the start of a secret line.
                dir.line = Line::Unknown;
                dir.next = data_seq;
                dir.history.trusted_from = data_seq;
            } else if d < 0 {
                // Data seen before (a retransmission) or that fills a gap.
                let old = n.min(d.unsigned_abs() as usize);
                let trusted = dir.trusted_from();
                let behind = dir.next.wrapping_sub(data_seq);
                if seq_lt(data_seq, trusted) {
                    let mut line = Line::Unknown;
                    scan(
                        &self.names,
                        &mut line,
                        out,
                        0,
                        old,
                        data_seq,
                        Some(&mut dir.history),
                    );
                }
                if behind <= TRUST_WINDOW {
                    dir.history.apply(out, 0, old, data_seq, dir.next);
                }
                from = old;
            }
            if from < n {
                let seq = dir.next;
                scan(
                    &self.names,
                    &mut dir.line,
                    out,
                    from,
                    n,
                    seq,
                    Some(&mut dir.history),
                );
                dir.next = seq.wrapping_add((n - from) as u32);
            }
        }
        if m.truncated > 0 && !seq_lt(data_seq.wrapping_add((n + m.truncated) as u32), dir.next) {
            // Bytes nobody scanned: after them the context is unknown, and they are not
            // covered by the range history.
            dir.next = data_seq.wrapping_add((n + m.truncated) as u32);
            dir.line = Line::Unknown;
            dir.history.trusted_from = dir.next;
        }
        if m.fin {
            dir.finished = true;
        }
        self.masked_bytes += out.masked as u64;
    }

    /// Drops the least recently used half of the directions (finished ones first).
    fn evict(&mut self) {
        let rank = |d: &Dir| if d.finished { 0 } else { d.last_used };
        self.scratch.clear();
        self.scratch.extend(self.dirs.values().map(rank));
        if self.scratch.is_empty() {
            return;
        }
        let mid = self.scratch.len() / 2;
        let (_, &mut threshold, _) = self.scratch.select_nth_unstable(mid);
        self.dirs.retain(|_, d| rank(d) > threshold);
    }
}

/// Offset of the TCP checksum in `frame`, given the payload offset: the header is the
/// 20..=60 bytes before it whose ports and data offset agree.
fn tcp_checksum_offset(frame: &[u8], payload_off: usize, info: &SegmentInfo) -> Option<usize> {
    (5..=15usize).find_map(|doff| {
        let start = payload_off.checked_sub(doff * 4)?;
        let h = frame.get(start..start + 20)?;
        let ok = u16::from_be_bytes([h[0], h[1]]) == info.src.port()
            && u16::from_be_bytes([h[2], h[3]]) == info.dst.port()
            && usize::from(h[12] >> 4) == doff;
        ok.then_some(start + 16)
    })
}

/// Masks a traced command line for `--redact`: the program name and bare options
/// (`--long-name`, `-x`) stay, every other argument (option values, URLs, `-H` header
/// lines, `-uuser:pass` clusters) becomes `*`s of the same length.
pub fn mask_cmdline(args: &mut [OsString]) {
    fn bare_option(a: &[u8]) -> bool {
        match a {
            [b'-', b'-', first, rest @ ..] => {
                first.is_ascii_alphanumeric()
                    && rest.iter().all(|&b| b.is_ascii_alphanumeric() || b == b'-')
            }
            [b'-', c] => c.is_ascii_alphanumeric(),
            _ => false,
        }
    }
    use std::os::unix::ffi::OsStrExt;
    for a in args.iter_mut().skip(1) {
        if !bare_option(a.as_bytes()) {
            *a = OsString::from("*".repeat(a.len()));
        }
    }
}

/// Applies [`mask_cmdline`] to a process event.
pub fn mask_event(ev: &mut SyscallEvent) {
    if let SyscallEvent::Process(p) = ev {
        mask_cmdline(&mut p.cmdline);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NONE: &[&str] = &[];

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn info(seq: u32) -> SegmentInfo {
        SegmentInfo {
            src: addr("127.0.0.1:40000"),
            dst: addr("127.0.0.1:8080"),
            seq,
            syn: false,
            fin: false,
            rst: false,
            truncated: 0,
        }
    }

    fn syn(isn: u32) -> SegmentInfo {
        SegmentInfo {
            syn: true,
            ..info(isn)
        }
    }

    /// A redactor that has seen the SYN (ISN `isn`) of the test direction.
    fn started(extra: &[&str], isn: u32) -> Redactor {
        let mut r = Redactor::new(extra).unwrap();
        r.redact_segment(&syn(isn), &mut []);
        r
    }

    /// Masks `stream` in one piece after a SYN.
    fn whole(extra: &[&str], stream: &[u8]) -> Vec<u8> {
        let mut r = started(extra, 1000);
        let mut s = stream.to_vec();
        r.redact_segment(&info(1001), &mut s);
        s
    }

    /// Masks `stream` cut at `cuts` (in order) after a SYN with ISN `isn`.
    fn segmented(extra: &[&str], stream: &[u8], cuts: &[usize], isn: u32) -> Vec<u8> {
        let mut r = started(extra, isn);
        let mut out = Vec::new();
        let mut at = 0;
        for &c in cuts.iter().chain(std::iter::once(&stream.len())) {
            let mut seg = stream[at..c].to_vec();
            r.redact_segment(&info(isn.wrapping_add(1 + at as u32)), &mut seg);
            out.extend_from_slice(&seg);
            at = c;
        }
        out
    }

    fn contains(hay: &[u8], needle: &[u8]) -> bool {
        hay.windows(needle.len()).any(|w| w == needle)
    }

    const REQ: &[u8] = b"GET /a HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer SECRETTOKEN\r\n\
        cookie:  a=SECRETCOOKIE; b=2\r\nAccept: */*\r\n\r\n";
    const REQ_MASKED: &[u8] =
        b"GET /a HTTP/1.1\r\nHost: x\r\nAuthorization: ******************\r\n\
        cookie:  *******************\r\nAccept: */*\r\n\r\n";

    #[test]
    fn single_packet() {
        let out = whole(NONE, REQ);
        assert_eq!(
            String::from_utf8_lossy(&out),
            String::from_utf8_lossy(REQ_MASKED)
        );
        assert_eq!(out.len(), REQ.len());
    }

    #[test]
    fn response_set_cookie_and_proxy_authorization() {
        let resp = b"HTTP/1.1 200 OK\r\nSet-Cookie: sid=S1; Path=/\r\nSET-COOKIE:x=S2\r\n\
            Proxy-Authorization: Basic QQ==\r\nContent-Length: 0\r\n\r\n";
        let want = b"HTTP/1.1 200 OK\r\nSet-Cookie: **************\r\nSET-COOKIE:****\r\n\
            Proxy-Authorization: **********\r\nContent-Length: 0\r\n\r\n";
        assert_eq!(
            String::from_utf8_lossy(&whole(NONE, resp)),
            String::from_utf8_lossy(want)
        );
    }

    #[test]
    fn extra_names_any_case_and_validation() {
        let req = b"GET / HTTP/1.1\r\nx-api-KEY: k1\r\nX-Api-Keys: nope\r\n\r\n";
        let want = b"GET / HTTP/1.1\r\nx-api-KEY: **\r\nX-Api-Keys: nope\r\n\r\n";
        assert_eq!(whole(&["X-Api-Key"], req), want);
        assert_eq!(whole(&["x-api-key:"], req), want);
        assert!(Redactor::new(&["bad name"]).is_err());
        assert!(Redactor::new(&[""]).is_err());
        let many: Vec<String> = (0..61).map(|i| format!("h{i}")).collect();
        assert!(Redactor::new(&many).is_err());
        assert!(Redactor::new(&many[..60]).is_ok());
    }

    #[test]
    fn mid_line_mentions_and_near_names_are_untouched() {
        let body = b"POST / HTTP/1.1\r\nContent-Length: 60\r\n\r\n\
            my cookie: is tasty\r\nauthorization is nice\r\nCookies: 3\r\nXCookie: 4\r\n";
        assert_eq!(whole(NONE, body), body.to_vec());
    }

    #[test]
    fn body_line_starting_with_a_name_is_masked_and_obs_fold() {
        let s = b"X: 1\r\nCookie: a\r\n  folded\r\n\tmore\r\nNext: ok\r\n";
        let want = b"X: 1\r\nCookie: *\r\n  ******\r\n\t****\r\nNext: ok\r\n";
        assert_eq!(whole(NONE, s), want);
        // Blanks before the colon, empty value, bare LF line ends.
        let s = b"Cookie : v\nCookie:\nCookie:\r\nHost: h\n";
        let want = b"Cookie : *\nCookie:\nCookie:\r\nHost: h\n";
        assert_eq!(whole(NONE, s), want);
    }

    #[test]
    fn name_split_at_every_point() {
        let want = whole(NONE, REQ);
        for cut in 1..REQ.len() {
            assert_eq!(segmented(NONE, REQ, &[cut], 1000), want, "cut at {cut}");
        }
    }

    #[test]
    fn value_split_over_three_packets() {
        let start = REQ.windows(6).position(|w| w == b"SECRET").unwrap();
        let cuts = [start + 2, start + 7];
        assert_eq!(segmented(NONE, REQ, &cuts, 1000), REQ_MASKED);
        // Also every pair of cuts inside the Authorization line.
        let line = REQ
            .windows(14)
            .position(|w| w == b"Authorization:")
            .unwrap();
        for a in line..start + 11 {
            for b in a + 1..start + 12 {
                assert_eq!(segmented(NONE, REQ, &[a, b], 7), REQ_MASKED, "cuts {a} {b}");
            }
        }
    }

    #[test]
    fn sequence_wraparound() {
        for cut in [5, 20, 30, 40, 45, 60] {
            for isn in [u32::MAX - 30, u32::MAX, u32::MAX - 1] {
                assert_eq!(
                    segmented(NONE, REQ, &[cut], isn),
                    REQ_MASKED,
                    "isn {isn} cut {cut}"
                );
            }
        }
    }

    #[test]
    fn retransmission_is_masked_identically() {
        let mut r = started(NONE, 1000);
        let (a, b) = REQ.split_at(40); // inside "Authorization: Bearer SECRETTOKEN"
        let mut s1 = a.to_vec();
        let mut s2 = b.to_vec();
        r.redact_segment(&info(1001), &mut s1);
        r.redact_segment(&info(1041), &mut s2);
        // Same segments again, then re-segmented and overlapping the new data.
        let mut again = REQ.to_vec();
        r.redact_segment(&info(1001), &mut again);
        assert_eq!(again, REQ_MASKED);
        let mut s2b = b.to_vec();
        r.redact_segment(&info(1041), &mut s2b);
        assert_eq!(s2b, &REQ_MASKED[40..]);
        let mut mid = REQ[30..50].to_vec();
        r.redact_segment(&info(1031), &mut mid);
        assert_eq!(mid, &REQ_MASKED[30..50]);
        // A retransmission running into new data: old part from history, new part
        // streamed (it continues at the line start after the request).
        let mut more = REQ[REQ.len() - 10..].to_vec();
        more.extend_from_slice(b"Cookie: NEW\r\n");
        r.redact_segment(&info(1001 + REQ.len() as u32 - 10), &mut more);
        let mut want = REQ_MASKED[REQ.len() - 10..].to_vec();
        want.extend_from_slice(b"Cookie: ***\r\n");
        assert_eq!(more, want);
    }

    #[test]
    fn out_of_order_never_leaks() {
        // Three segments, the middle one late: the third follows a gap, the second
        // fills it.
        let start = REQ.windows(6).position(|w| w == b"SECRET").unwrap();
        for (c1, c2) in [
            (start - 10, start + 3),
            (start + 2, start + 8),
            (20, start + 3),
        ] {
            let mut r = started(NONE, 1000);
            let mut p1 = REQ[..c1].to_vec();
            let mut p2 = REQ[c1..c2].to_vec();
            let mut p3 = REQ[c2..].to_vec();
            r.redact_segment(&info(1001), &mut p1);
            r.redact_segment(&info(1001 + c2 as u32), &mut p3);
            r.redact_segment(&info(1001 + c1 as u32), &mut p2);
            let all = [p1, p2, p3].concat();
            assert!(
                !contains(&all, b"TOKEN") && !contains(&all, b"SECRET"),
                "{c1} {c2}"
            );
            for (x, y) in all.iter().zip(REQ_MASKED) {
                assert!(x == y || *x == MASK, "only extra masking: {all:?}");
            }
            // The tail after the first LF that follows the gap is streamed normally.
            assert!(all.ends_with(b"Accept: */*\r\n\r\n"));
        }
    }

    #[test]
    fn mid_stream_join_masks_the_unknown_first_line() {
        // Recording started inside a secret value: no SYN seen.
        let mut r = Redactor::new(NONE).unwrap();
        let mut seg = b"REST-OF-SECRET\r\nHost: a\r\nCookie: c\r\n".to_vec();
        r.redact_segment(&info(5), &mut seg);
        assert_eq!(seg, b"**************\r\nHost: a\r\nCookie: *\r\n");
        // ... but binary data is left alone.
        let mut r = Redactor::new(NONE).unwrap();
        let mut seg = b"\x00\x01binary\nCookie: c\n".to_vec();
        r.redact_segment(&info(5), &mut seg);
        assert_eq!(seg, b"\x00\x01binary\nCookie: *\n");
    }

    #[test]
    fn fin_keeps_history_rst_drops_state() {
        let mut r = started(NONE, 1000);
        let mut s = REQ.to_vec();
        r.redact_segment(
            &SegmentInfo {
                fin: true,
                ..info(1001)
            },
            &mut s,
        );
        assert_eq!(s, REQ_MASKED);
        let mut again = REQ.to_vec();
        r.redact_segment(&info(1001), &mut again);
        assert_eq!(again, REQ_MASKED);
        assert_eq!(r.tracked_directions(), 1);
        let rev = SegmentInfo {
            src: info(0).dst,
            dst: info(0).src,
            rst: true,
            ..info(77)
        };
        r.redact_segment(&rev, &mut []);
        assert_eq!(r.tracked_directions(), 0);
    }

    #[test]
    fn new_isn_resets_and_duplicate_syn_does_not() {
        let mut r = started(NONE, 1000);
        let mut s = b"Cookie: ab".to_vec();
        r.redact_segment(&info(1001), &mut s);
        r.redact_segment(&syn(1000), &mut []);
        let mut s = b"cd\r\n".to_vec();
        r.redact_segment(&info(1011), &mut s);
        assert_eq!(s, b"**\r\n");
        r.redact_segment(&syn(50), &mut []);
        let mut s = b"Host: h\r\n".to_vec();
        r.redact_segment(&info(51), &mut s);
        assert_eq!(s, b"Host: h\r\n");
    }

    #[test]
    fn directions_are_bounded() {
        let mut r = Redactor::with_max_directions(NONE, 100).unwrap();
        for port in 0..1000u16 {
            let mut i = syn(1);
            i.src = SocketAddr::new(i.src.ip(), port);
            r.redact_segment(&i, &mut []);
            assert!(r.tracked_directions() <= 100);
        }
        // An evicted direction comes back in unknown context: it over-masks, never leaks.
        let mut i = info(2);
        i.src = SocketAddr::new(i.src.ip(), 0);
        let mut s = b"SECRET\r\nHost: h\r\n".to_vec();
        r.redact_segment(&i, &mut s);
        assert_eq!(s, b"******\r\nHost: h\r\n");
    }

    #[test]
    fn truncated_segment_makes_context_unknown() {
        let mut r = started(NONE, 1000);
        let mut s = b"Host: a\r\nX: ".to_vec();
        r.redact_segment(
            &SegmentInfo {
                truncated: 100,
                ..info(1001)
            },
            &mut s,
        );
        let mut s = b"still a value\r\nHost: b\r\n".to_vec();
        r.redact_segment(&info(1001 + 12 + 100), &mut s);
        assert_eq!(s, b"*************\r\nHost: b\r\n");
    }

    #[test]
    fn history_forgets_oldest_and_stops_trusting() {
        let mut r = started(NONE, 1000);
        let mut stream = Vec::new();
        for i in 0..RANGES + 5 {
            stream.extend_from_slice(format!("Cookie: v{i}\r\n").as_bytes());
        }
        let mut s = stream.clone();
        r.redact_segment(&info(1001), &mut s);
        // The first lines' ranges were forgotten: a retransmission is scanned again
        // (unknown context), so it is still masked.
        let mut again = stream.clone();
        r.redact_segment(&info(1001), &mut again);
        assert!(
            !contains(&again, b"v0"),
            "{}",
            String::from_utf8_lossy(&again)
        );
        assert!(!contains(&again, b"v3"));
    }

    /// One's-complement TCP checksum over an IPv4 pseudo-header and `tcp`.
    fn tcp_checksum_v4(src: [u8; 4], dst: [u8; 4], tcp: &[u8]) -> u16 {
        let mut sum = 0u64;
        let mut add = |b: &[u8]| {
            for c in b.chunks(2) {
                sum += u64::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]));
            }
        };
        add(&src);
        add(&dst);
        add(&[0, 6]);
        add(&(tcp.len() as u16).to_be_bytes());
        add(tcp);
        !fold(sum)
    }

    /// A raw-IP (linktype 101) IPv4/TCP frame with a valid checksum; options make the
    /// TCP header 24 bytes.
    fn frame(seq: u32, flags: u8, payload: &[u8]) -> Vec<u8> {
        let (src, dst) = ([127, 0, 0, 1], [127, 0, 0, 2]);
        let tcp_len = 24 + payload.len();
        let mut f = vec![0x45, 0];
        f.extend_from_slice(&((20 + tcp_len) as u16).to_be_bytes());
        f.extend_from_slice(&[0, 0, 0x40, 0, 64, 6, 0, 0]);
        f.extend_from_slice(&src);
        f.extend_from_slice(&dst);
        let mut tcp = Vec::new();
        tcp.extend_from_slice(&40000u16.to_be_bytes());
        tcp.extend_from_slice(&8080u16.to_be_bytes());
        tcp.extend_from_slice(&seq.to_be_bytes());
        tcp.extend_from_slice(&0u32.to_be_bytes());
        tcp.extend_from_slice(&[6 << 4, flags, 0xff, 0xff, 0, 0, 0, 0]);
        tcp.extend_from_slice(&[1, 1, 1, 0]); // NOP NOP NOP EOL
        tcp.extend_from_slice(payload);
        let ck = tcp_checksum_v4(src, dst, &tcp);
        tcp[16..18].copy_from_slice(&ck.to_be_bytes());
        f.extend_from_slice(&tcp);
        f
    }

    #[test]
    fn frames_keep_length_and_a_valid_checksum() {
        let mut r = Redactor::new(NONE).unwrap();
        let mut s = frame(99, 0x02, b"");
        assert_eq!(r.redact_frame(101, &mut s), 0);
        // Odd and even offsets of masked bytes.
        for payload in [REQ, &REQ[1..]] {
            let mut r = Redactor::new(NONE).unwrap();
            r.redact_frame(101, &mut frame(99, 0x02, b""));
            let mut f = frame(100, 0x18, payload);
            let len = f.len();
            let masked = r.redact_frame(101, &mut f);
            assert!(masked > 0);
            assert_eq!(f.len(), len);
            let tcp = &f[20..];
            let mut zeroed = tcp.to_vec();
            zeroed[16..18].fill(0);
            let want = tcp_checksum_v4([127, 0, 0, 1], [127, 0, 0, 2], &zeroed);
            assert_eq!(u16::from_be_bytes([tcp[16], tcp[17]]), want);
            assert!(!contains(&f, b"SECRET"));
        }
        // Not TCP: untouched.
        let mut junk = b"not a frame at all".to_vec();
        assert_eq!(r.redact_frame(101, &mut junk), 0);
    }

    #[test]
    fn cmdline_keeps_program_and_bare_options() {
        let mut args: Vec<OsString> = [
            "curl",
            "-sS",
            "-H",
            "Authorization: Bearer T",
            "--cookie",
            "a=b",
            "--user=u:p",
            "-uuser:pw",
            "-v",
            "http://h/?token=x",
        ]
        .iter()
        .map(OsString::from)
        .collect();
        mask_cmdline(&mut args);
        let got: Vec<String> = args
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            got,
            [
                "curl",
                "***",
                "-H",
                "***********************",
                "--cookie",
                "***",
                "**********",
                "*********",
                "-v",
                "*****************"
            ]
        );
    }

    mod prop {
        use super::*;
        use proptest::prelude::*;

        const SECRETS: [&str; 4] = ["S3CRETAAA", "S3CRETBBB", "S3CRETCCC", "S3CRETDDD"];

        /// An HTTP/1.1 exchange with secrets in several headers, a folded line and a
        /// body that mentions the names mid-line.
        fn stream(filler: usize) -> Vec<u8> {
            let pad = "p".repeat(filler);
            format!(
                "GET /{pad} HTTP/1.1\r\nHost: h\r\nAuthorization: Bearer {}\r\n\
                 Cookie: a={pad}; b={}\r\nX-Api-Key:{}\r\nX-Other: cookie: no\r\n\r\n\
                 HTTP/1.1 200 OK\r\nSet-cookie: {};\r\n {}\r\nContent-Length: 5\r\n\r\nhello",
                SECRETS[0], SECRETS[1], SECRETS[2], SECRETS[3], SECRETS[0]
            )
            .into_bytes()
        }

        fn cuts_strategy() -> impl Strategy<Value = (usize, Vec<usize>, u32)> {
            (0usize..200).prop_flat_map(|filler| {
                let len = stream(filler).len();
                (
                    Just(filler),
                    proptest::collection::vec(1..len, 0..25),
                    any::<u32>(),
                )
            })
        }

        fn leaks(out: &[u8]) -> bool {
            SECRETS.iter().any(|s| contains(out, s.as_bytes()))
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(512))]

            #[test]
            fn random_segmentation_equals_whole(
                (filler, mut cuts, isn) in cuts_strategy()
            ) {
                let s = stream(filler);
                cuts.sort_unstable();
                cuts.dedup();
                let got = segmented(&["x-api-key"], &s, &cuts, isn);
                let mut r = started(&["x-api-key"], isn);
                let mut all = s.clone();
                r.redact_segment(&info(isn.wrapping_add(1)), &mut all);
                prop_assert_eq!(&got, &all);
                prop_assert!(!leaks(&got));
                prop_assert_eq!(got.len(), s.len());
            }

            #[test]
            fn reordering_and_duplicates_never_leak(
                (filler, mut cuts, isn) in cuts_strategy(),
                order in proptest::collection::vec(any::<u16>(), 1..60),
            ) {
                let s = stream(filler);
                cuts.sort_unstable();
                cuts.dedup();
                let mut bounds = vec![0];
                bounds.extend_from_slice(&cuts);
                bounds.push(s.len());
                let segs: Vec<(usize, usize)> =
                    bounds.windows(2).map(|w| (w[0], w[1])).collect();
                // Every segment at least once, in a shuffled order with duplicates.
                let mut sends: Vec<usize> = (0..segs.len()).collect();
                for (k, o) in order.iter().enumerate() {
                    let a = usize::from(*o) % segs.len();
                    if k % 2 == 0 {
                        sends.push(a);
                    } else {
                        let b = (k * 7) % sends.len();
                        let c = usize::from(*o) % sends.len();
                        sends.swap(b, c);
                    }
                }
                let mut r = started(&["X-API-KEY"], isn);
                let reference = {
                    let mut r = started(&["X-API-KEY"], isn);
                    let mut all = s.clone();
                    r.redact_segment(&info(isn.wrapping_add(1)), &mut all);
                    all
                };
                for &k in &sends {
                    let (a, b) = segs[k];
                    let mut p = s[a..b].to_vec();
                    r.redact_segment(&info(isn.wrapping_add(1 + a as u32)), &mut p);
                    prop_assert!(!leaks(&p), "segment {}..{} leaked: {:?}", a, b,
                        String::from_utf8_lossy(&p));
                    // Only ever more masking than the in-order result.
                    for (x, y) in p.iter().zip(&reference[a..b]) {
                        prop_assert!(x == y || *x == MASK);
                    }
                }
            }
        }
    }
}
