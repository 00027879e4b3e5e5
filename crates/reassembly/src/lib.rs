//! One-direction TCP stream reassembly.
//!
//! A [`Reassembler`] turns the captured segments of one direction of one TCP
//! connection into an ordered stream of [`Event`]s: contiguous [`Event::Data`],
//! [`Event::Gap`] for bytes that were never captured, and [`Event::Fin`] /
//! [`Event::Rst`] for the end of the stream.
//!
//! ```
//! use l7rec_reassembly::{Config, Event, Reassembler, Segment};
//! let mut r = Reassembler::new(Config::default());
//! let seg = |seq, payload| Segment { seq, syn: false, fin: false, rst: false, payload, ts_ns: 0 };
//! let mut out = Vec::new();
//! let mut sink = |e: Event<'_>| {
//!     if let Event::Data { bytes, .. } = e {
//!         out.extend_from_slice(bytes);
//!     }
//! };
//! r.segment(Segment { syn: true, ..seg(99, b"") }, &mut sink);
//! r.segment(seg(103, b"lo"), &mut sink); // out of order: buffered
//! r.segment(seg(100, b"hel"), &mut sink); // fills the hole: "hel" then "lo"
//! r.finish(&mut sink);
//! assert_eq!(out, b"hello");
//! ```
//!
//! # Model
//!
//! * **Stream offsets.** Every byte has a 64-bit stream offset, 0 being the
//!   first byte after the SYN (ISN + 1). Without a SYN (a capture that starts
//!   mid-connection) offset 0 is the first sequence number seen and
//!   [`Stats::midstream`] is set; bytes before it are treated as old
//!   retransmissions. Sequence numbers are mapped to offsets with serial-number
//!   arithmetic relative to the next expected byte, so 32-bit wraparound is
//!   transparent and offsets keep growing past 2^32.
//! * **Zero-copy fast path.** An in-order segment is passed straight to the
//!   sink as [`Event::Data`] borrowing the caller's payload. Only out-of-order
//!   bytes are copied, into a per-direction buffer.
//! * **Retransmissions and duplicates** (bytes before the next expected
//!   offset, or already buffered) are dropped and counted.
//! * **Overlap policy: first received wins.** When a segment overlaps bytes
//!   that were received earlier, the earlier bytes are kept. Overlaps with
//!   *buffered* bytes are compared and counted in
//!   [`Stats::inconsistent_overlaps`] when they differ. Bytes already delivered
//!   are not retained, so overlaps with them are counted as retransmissions but
//!   cannot be compared.
//! * **Bounded memory.** When buffered out-of-order data exceeds
//!   [`Config::max_buffered_bytes`] or [`Config::max_buffered_segments`], the
//!   reassembler gives up waiting for the oldest hole: it reports it as a
//!   [`Event::Gap`], delivers the buffered data that follows, and counts
//!   [`Stats::buffer_overflows`]. A late retransmission of the skipped bytes
//!   is then dropped as old.
//! * **FIN** is delivered only once every byte before it was delivered (or
//!   reported as a gap by [`Reassembler::finish`]). Bytes beyond the FIN and
//!   segments after the stream ended are ignored.
//! * **RST** is immediate: buffered data is flushed (holes reported as gaps),
//!   then [`Event::Rst`] ends the stream.
//! * [`Reassembler::finish`] (end of capture) flushes whatever is buffered,
//!   reporting holes as gaps, then a pending FIN.

#![deny(missing_docs)]

use std::collections::BTreeMap;

/// Limits of one [`Reassembler`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// Most out-of-order payload bytes buffered before skipping the oldest hole.
    pub max_buffered_bytes: usize,
    /// Most out-of-order buffer entries kept before skipping the oldest hole.
    pub max_buffered_segments: usize,
}

impl Default for Config {
    /// 4 MiB and 4096 segments per direction.
    fn default() -> Self {
        Config {
            max_buffered_bytes: 4 << 20,
            max_buffered_segments: 4096,
        }
    }
}

/// One captured TCP segment of the direction being reassembled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment<'a> {
    /// Sequence number from the TCP header.
    pub seq: u32,
    /// SYN flag (the payload, if any, starts at `seq + 1`).
    pub syn: bool,
    /// FIN flag (the FIN follows the payload).
    pub fin: bool,
    /// RST flag.
    pub rst: bool,
    /// TCP payload as captured.
    pub payload: &'a [u8],
    /// Capture timestamp in nanoseconds.
    pub ts_ns: u64,
}

/// What the reassembler reports, in stream order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event<'a> {
    /// Contiguous bytes starting at stream `offset`.
    Data {
        /// Stream offset of `bytes[0]`.
        offset: u64,
        /// The bytes (borrowed from the segment or the reassembly buffer).
        bytes: &'a [u8],
        /// Timestamp of the segment that carried them.
        ts_ns: u64,
    },
    /// `len` bytes starting at `offset` were never captured.
    Gap {
        /// Stream offset of the first missing byte.
        offset: u64,
        /// Number of missing bytes.
        len: u64,
    },
    /// The sender closed the stream after all preceding bytes.
    Fin {
        /// Timestamp of the FIN segment.
        ts_ns: u64,
    },
    /// The connection was reset.
    Rst {
        /// Timestamp of the RST segment.
        ts_ns: u64,
    },
}

/// Counters of one direction.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// Segments fed to [`Reassembler::segment`].
    pub segments: u64,
    /// Payload bytes delivered as [`Event::Data`].
    pub delivered_bytes: u64,
    /// Segments carrying no new byte (full retransmissions and duplicates).
    pub retransmitted_segments: u64,
    /// Payload bytes received more than once.
    pub retransmitted_bytes: u64,
    /// Segments that arrived ahead of a hole and were buffered.
    pub out_of_order_segments: u64,
    /// Contiguous ranges of a segment that overlapped bytes received earlier
    /// (a segment overlapping two earlier ones counts once per range it overlaps
    /// in order, at most once per buffered range).
    pub overlaps: u64,
    /// Overlaps whose bytes differed from the buffered ones.
    pub inconsistent_overlaps: u64,
    /// [`Event::Gap`]s reported.
    pub gaps: u64,
    /// Bytes reported missing in gaps.
    pub gap_bytes: u64,
    /// Times the buffer cap forced skipping a hole.
    pub buffer_overflows: u64,
    /// Segments (or segment tails) ignored because they lie after the FIN or RST.
    pub ignored_after_close: u64,
    /// No SYN was seen first: the stream starts at the first segment captured.
    pub midstream: bool,
}

/// Out-of-order bytes waiting for the hole before them to be filled.
#[derive(Debug)]
struct Buffered {
    data: Vec<u8>,
    ts_ns: u64,
}

/// Reassembler for one direction of one TCP connection.
#[derive(Debug)]
pub struct Reassembler {
    cfg: Config,
    /// Sequence number of stream offset 0 (None until the first segment).
    base: Option<u32>,
    /// Next stream offset to deliver.
    next: u64,
    /// Non-overlapping out-of-order data keyed by stream offset (all keys > `next`).
    buffered: BTreeMap<u64, Buffered>,
    buffered_bytes: usize,
    /// Stream offset and timestamp of the FIN, once seen.
    fin: Option<(u64, u64)>,
    closed: bool,
    /// Scratch list of uncovered ranges, kept to avoid reallocating.
    scratch: Vec<(u64, u64)>,
    stats: Stats,
}

impl Default for Reassembler {
    fn default() -> Self {
        Self::new(Config::default())
    }
}

impl Reassembler {
    /// A reassembler that has seen nothing yet.
    pub fn new(cfg: Config) -> Self {
        Reassembler {
            cfg,
            base: None,
            next: 0,
            buffered: BTreeMap::new(),
            buffered_bytes: 0,
            fin: None,
            closed: false,
            scratch: Vec::new(),
            stats: Stats::default(),
        }
    }

    /// Counters so far.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Stream offset of the next byte to be delivered.
    pub fn next_offset(&self) -> u64 {
        self.next
    }

    /// Out-of-order bytes currently buffered.
    pub fn buffered_bytes(&self) -> usize {
        self.buffered_bytes
    }

    /// True once FIN or RST was delivered or [`finish`](Self::finish) ran.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Feeds one captured segment; calls `sink` with the events it makes ready, in order.
    pub fn segment(&mut self, seg: Segment<'_>, sink: &mut impl FnMut(Event<'_>)) {
        self.stats.segments += 1;
        if self.closed {
            self.stats.ignored_after_close += 1;
            return;
        }
        let data_seq = seg.seq.wrapping_add(u32::from(seg.syn));
        if self.base.is_none() {
            self.stats.midstream = !seg.syn;
            self.base = Some(data_seq);
        }
        let mut start = self.offset_of(data_seq);
        let mut payload = seg.payload;
        let end = start + payload.len() as i64;

        if seg.fin && self.fin.is_none() {
            self.set_fin(end.max(self.next as i64) as u64, seg.ts_ns);
        }
        if let Some((fin_off, _)) = self.fin {
            let keep = (fin_off as i64 - start).clamp(0, payload.len() as i64) as usize;
            if keep < payload.len() {
                self.stats.ignored_after_close += 1;
                payload = &payload[..keep];
            }
        }

        let next = self.next as i64;
        if !payload.is_empty() {
            if end <= next {
                self.stats.retransmitted_segments += 1;
                self.stats.retransmitted_bytes += payload.len() as u64;
            } else {
                if start < next {
                    let old = (next - start) as usize;
                    self.stats.overlaps += 1;
                    self.stats.retransmitted_bytes += old as u64;
                    payload = &payload[old..];
                    start = next;
                }
                if start == next {
                    self.deliver(payload, seg.ts_ns, sink);
                } else {
                    self.buffer(start as u64, payload, seg.ts_ns, sink);
                }
            }
        }

        if seg.rst {
            self.flush(sink);
            sink(Event::Rst { ts_ns: seg.ts_ns });
            self.closed = true;
            return;
        }
        self.deliver_fin_if_ready(sink);
    }

    /// Declares that `len` bytes starting at sequence `seq` were sent but not captured
    /// (a snap length cut a segment's tail). If they are the next bytes due, a
    /// [`Event::Gap`] is reported at once instead of waiting for the end of capture,
    /// and buffered data after them is delivered; otherwise nothing happens (the hole
    /// is reported when it would have been anyway).
    pub fn lost(&mut self, seq: u32, len: u32, ts_ns: u64, sink: &mut impl FnMut(Event<'_>)) {
        if self.closed || len == 0 || self.base.is_none() || self.offset_of(seq) != self.next as i64
        {
            return;
        }
        // Bytes of the lost range may have been captured in another segment that is
        // already buffered (found by fuzzing): jumping `next` over them would leave
        // buffered entries behind `next`, breaking the "all keys > next" invariant
        // (underflow in `deliver`, bytes stuck in the buffer). Report only the holes
        // between buffered entries as gaps, delivering the entries in between. Nothing
        // past a known FIN is reported.
        let mut to = self.next + u64::from(len);
        if let Some((fin_off, _)) = self.fin {
            to = to.min(fin_off.max(self.next));
        }
        while self.next < to {
            let hole_end = self
                .buffered
                .first_key_value()
                .map_or(to, |(&k, _)| k.min(to));
            if hole_end > self.next {
                self.skip_to(hole_end, sink);
            }
            self.deliver(&[], ts_ns, sink);
        }
        self.deliver_fin_if_ready(sink);
    }

    /// End of capture: delivers everything buffered (holes become gaps), then a pending FIN.
    pub fn finish(&mut self, sink: &mut impl FnMut(Event<'_>)) {
        if self.closed {
            return;
        }
        self.flush(sink);
        if let Some((fin_off, _)) = self.fin {
            if fin_off > self.next {
                self.skip_to(fin_off, sink);
            }
        }
        self.deliver_fin_if_ready(sink);
        self.closed = true;
    }

    /// Stream offset of sequence number `seq` (may be negative: before the stream start).
    fn offset_of(&self, seq: u32) -> i64 {
        let base = self.base.unwrap_or(seq);
        let next_seq = base.wrapping_add(self.next as u32);
        self.next as i64 + i64::from(seq.wrapping_sub(next_seq) as i32)
    }

    /// Delivers `data` (which starts at `self.next`) and then any buffered data that
    /// became contiguous. Buffered bytes win over `data` where they overlap.
    fn deliver(&mut self, mut data: &[u8], ts_ns: u64, sink: &mut impl FnMut(Event<'_>)) {
        loop {
            if !data.is_empty() {
                let room = self
                    .buffered
                    .first_key_value()
                    .map_or(u64::MAX, |(k, _)| k - self.next);
                let n = (data.len() as u64).min(room) as usize;
                if n > 0 {
                    self.emit_data(&data[..n], ts_ns, sink);
                    data = &data[n..];
                }
            }
            let Some(entry) = self.buffered.first_entry() else {
                break;
            };
            if *entry.key() != self.next {
                break;
            }
            let b = entry.remove();
            self.buffered_bytes -= b.data.len();
            if !data.is_empty() {
                let m = data.len().min(b.data.len());
                self.note_overlap(data[..m] != b.data[..m], m);
                data = &data[m..];
            }
            self.emit_data(&b.data, b.ts_ns, sink);
        }
    }

    fn emit_data(&mut self, bytes: &[u8], ts_ns: u64, sink: &mut impl FnMut(Event<'_>)) {
        sink(Event::Data {
            offset: self.next,
            bytes,
            ts_ns,
        });
        self.next += bytes.len() as u64;
        self.stats.delivered_bytes += bytes.len() as u64;
    }

    fn note_overlap(&mut self, inconsistent: bool, len: usize) {
        self.stats.overlaps += 1;
        self.stats.retransmitted_bytes += len as u64;
        if inconsistent {
            self.stats.inconsistent_overlaps += 1;
        }
    }

    /// Buffers the bytes of `data` (starting at `start > next`) not already buffered.
    fn buffer(&mut self, start: u64, data: &[u8], ts_ns: u64, sink: &mut impl FnMut(Event<'_>)) {
        let end = start + data.len() as u64;
        let mut uncovered = std::mem::take(&mut self.scratch);
        uncovered.clear();
        let from = self
            .buffered
            .range(..=start)
            .next_back()
            .filter(|(k, b)| *k + b.data.len() as u64 > start)
            .map_or(start, |(k, _)| *k);
        let (mut pos, mut covered, mut inconsistent) = (start, 0usize, false);
        for (&k, b) in self.buffered.range(from..end) {
            let k_end = k + b.data.len() as u64;
            if k > pos {
                uncovered.push((pos, k));
            }
            let (os, oe) = (k.max(start), k_end.min(end));
            if os < oe {
                covered += (oe - os) as usize;
                let new = &data[(os - start) as usize..(oe - start) as usize];
                let old = &b.data[(os - k) as usize..(oe - k) as usize];
                inconsistent |= new != old;
            }
            pos = pos.max(k_end);
        }
        if pos < end {
            uncovered.push((pos, end));
        }
        if covered > 0 {
            self.note_overlap(inconsistent, covered);
        }
        if uncovered.is_empty() {
            self.stats.retransmitted_segments += 1;
        } else {
            self.stats.out_of_order_segments += 1;
        }
        for &(a, b) in &uncovered {
            let piece = data[(a - start) as usize..(b - start) as usize].to_vec();
            self.buffered_bytes += piece.len();
            self.buffered.insert(a, Buffered { data: piece, ts_ns });
        }
        self.scratch = uncovered;

        if self.over_cap() {
            self.stats.buffer_overflows += 1;
            while self.over_cap() {
                self.skip_hole(sink);
            }
        }
    }

    fn over_cap(&self) -> bool {
        !self.buffered.is_empty()
            && (self.buffered_bytes > self.cfg.max_buffered_bytes
                || self.buffered.len() > self.cfg.max_buffered_segments)
    }

    /// Reports the hole before the first buffered entry as a gap and delivers what follows it.
    fn skip_hole(&mut self, sink: &mut impl FnMut(Event<'_>)) {
        if let Some(&k) = self.buffered.keys().next() {
            self.skip_to(k, sink);
            self.deliver(&[], 0, sink);
        }
    }

    /// Delivers all buffered data, reporting holes as gaps.
    fn flush(&mut self, sink: &mut impl FnMut(Event<'_>)) {
        while !self.buffered.is_empty() {
            self.skip_hole(sink);
        }
    }

    fn skip_to(&mut self, to: u64, sink: &mut impl FnMut(Event<'_>)) {
        let len = to - self.next;
        sink(Event::Gap {
            offset: self.next,
            len,
        });
        self.stats.gaps += 1;
        self.stats.gap_bytes += len;
        self.next = to;
    }

    /// Records the FIN offset and drops buffered bytes beyond it.
    fn set_fin(&mut self, fin_off: u64, ts_ns: u64) {
        self.fin = Some((fin_off, ts_ns));
        let beyond = self.buffered.split_off(&fin_off);
        if !beyond.is_empty() {
            self.stats.ignored_after_close += beyond.len() as u64;
        }
        self.buffered_bytes -= beyond.values().map(|b| b.data.len()).sum::<usize>();
        if let Some((&k, b)) = self.buffered.iter_mut().next_back() {
            let keep = (fin_off - k) as usize;
            if keep < b.data.len() {
                self.buffered_bytes -= b.data.len() - keep;
                b.data.truncate(keep);
            }
        }
    }

    fn deliver_fin_if_ready(&mut self, sink: &mut impl FnMut(Event<'_>)) {
        if let Some((fin_off, ts_ns)) = self.fin {
            if fin_off <= self.next {
                sink(Event::Fin { ts_ns });
                self.closed = true;
            }
        }
    }
}

#[cfg(test)]
mod tests;
