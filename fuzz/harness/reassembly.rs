//! Harness of the `reassembly` fuzz target (also replayed by
//! `crates/reassembly/tests/fuzz_corpus.rs` on stable).
//!
//! Input: `[cfg] [isn: 4 bytes LE] op*`, one direction of one connection. `cfg` bit 0
//! picks tiny buffer caps (64 bytes, 4 segments) so overflow handling is reached.
//! Each op starts with a byte `k`:
//! * `k % 4 == 0 | 1`: a segment: 2 bytes LE signed offset from the ISN, times 1 or
//!   (when `k & 0x10`) 4096 so wraparound and far-away sequence numbers show up;
//!   `k & 0x20` SYN, `k & 0x40` FIN, `k & 0x80` RST (RST only when `k & 4` too, to keep
//!   streams alive); then a length byte `n` (0..=63) and the payload: `n` input bytes
//!   when `k & 8`, else bytes derived from the stream position (consistent
//!   retransmissions);
//! * `k % 4 == 2`: `lost(seq, len)`: 2 bytes offset as above, 1 byte length;
//! * `k % 4 == 3`: `finish()` (later ops must be ignored).
//!
//! Checks: no panic; events are in stream order (each Data/Gap starts where the
//! previous ended, gaps are non-empty); nothing follows Fin/Rst; the counters agree
//! with the events; buffered bytes stay within the cap after every call.

use l7rec_reassembly::{Config, Event, Reassembler, Segment};

struct Cursor<'a>(&'a [u8]);

impl Cursor<'_> {
    fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }
    fn take(&mut self, n: usize) -> &[u8] {
        let n = n.min(self.0.len());
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        a
    }
    fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.byte().unwrap_or(0), self.byte().unwrap_or(0)])
    }
}

/// What the sink saw, to check the event order.
#[derive(Default)]
struct Seen {
    next: u64,
    ended: bool,
    data_bytes: u64,
    gaps: u64,
    gap_bytes: u64,
}

impl Seen {
    fn event(&mut self, ev: Event<'_>) {
        assert!(!self.ended, "event after Fin/Rst: {ev:?}");
        match ev {
            Event::Data { offset, bytes, .. } => {
                assert_eq!(offset, self.next, "data out of order");
                self.next += bytes.len() as u64;
                self.data_bytes += bytes.len() as u64;
            }
            Event::Gap { offset, len } => {
                assert_eq!(offset, self.next, "gap out of order");
                assert!(len > 0, "empty gap at {offset}");
                self.next += len;
                self.gaps += 1;
                self.gap_bytes += len;
            }
            Event::Fin { .. } | Event::Rst { .. } => self.ended = true,
        }
    }
}

/// Runs one input.
pub fn run(data: &[u8]) {
    let mut c = Cursor(data);
    let Some(cfg_byte) = c.byte() else {
        return;
    };
    let cfg = if cfg_byte & 1 != 0 {
        Config {
            max_buffered_bytes: 64,
            max_buffered_segments: 4,
        }
    } else {
        Config::default()
    };
    let isn = u32::from_le_bytes([
        c.byte().unwrap_or(0),
        c.byte().unwrap_or(0),
        c.byte().unwrap_or(0),
        c.byte().unwrap_or(0),
    ]);
    let mut r = Reassembler::new(cfg);
    let mut seen = Seen::default();
    let mut ts = 0u64;
    let mut payload = Vec::new();
    while let Some(k) = c.byte() {
        ts += 1;
        let seq_of = |c: &mut Cursor<'_>| {
            let rel = i32::from(c.u16() as i16);
            let scale = if k & 0x10 != 0 { 4096 } else { 1 };
            isn.wrapping_add((rel * scale) as u32)
        };
        match k % 4 {
            0 | 1 => {
                let seq = seq_of(&mut c);
                let n = usize::from(c.byte().unwrap_or(0) & 63);
                payload.clear();
                if k & 8 != 0 {
                    payload.extend_from_slice(c.take(n));
                } else {
                    let syn = u32::from(k & 0x20 != 0);
                    let start = seq.wrapping_add(syn).wrapping_sub(isn);
                    payload.extend((0..n as u32).map(|i| start.wrapping_add(i) as u8));
                }
                let seg = Segment {
                    seq,
                    syn: k & 0x20 != 0,
                    fin: k & 0x40 != 0,
                    rst: k & 0x80 != 0 && k & 4 != 0,
                    payload: &payload,
                    ts_ns: ts,
                };
                r.segment(seg, &mut |ev| seen.event(ev));
            }
            2 => {
                let seq = seq_of(&mut c);
                let len = u32::from(c.byte().unwrap_or(0));
                r.lost(seq, len, ts, &mut |ev| seen.event(ev));
            }
            _ => r.finish(&mut |ev| seen.event(ev)),
        }
        assert!(
            r.buffered_bytes() <= cfg.max_buffered_bytes,
            "{} bytes buffered over the {} cap",
            r.buffered_bytes(),
            cfg.max_buffered_bytes
        );
        assert_eq!(
            r.next_offset(),
            seen.next,
            "next offset disagrees with events"
        );
    }
    r.finish(&mut |ev| seen.event(ev));
    assert!(r.is_closed());
    assert_eq!(r.buffered_bytes(), 0, "finish left bytes buffered");
    let s = r.stats();
    assert_eq!(s.delivered_bytes, seen.data_bytes);
    assert_eq!(s.gaps, seen.gaps);
    assert_eq!(s.gap_bytes, seen.gap_bytes);
}
