//! zstd output as a sequence of frames, laid out for tshark 4.0.
//!
//! tshark 4.0 (Debian 12's) reads zstd input in buffers of [`TSHARK_REGION`] bytes
//! (`ZSTD_DStreamInSize()`) and, when a frame ends, looks for the next frame's magic at
//! the start of its *buffer*, not where the frame ended (later Wireshark fixed this):
//! a frame that starts anywhere but at a multiple of that size after the first buffer
//! is taken for uncompressed data, and the capture looks corrupt from there on. So
//! every frame but the last ends exactly on such a multiple: once a frame holds
//! [`FRAME_BYTES`] of input, it is compressed with exact flushes until the next chunk
//! might not fit before the boundary, then filled up to it with empty blocks (3, 4 or 5
//! bytes each, decompressing to nothing) and ended.
//!
//! A frame's input is built in one buffer that zstd reads in place (no copy into a
//! window of its own: [`crate::zstd_cctx`]), handed over in whole blocks of [`CHUNK`]
//! as it grows, each call ending a block, so that a frame can always be ended. A
//! flush hands over the rest: the file is readable up to it (by tshark and
//! [`crate::CaptureReader`]) even if this process dies.

use std::io::{self, Write};

use zstd_sys::ZSTD_cParameter;

use crate::zstd_cctx::{End, InPlaceCCtx};

/// Input per frame, about: a frame ends at the first region boundary it can reach
/// after this much.
pub const FRAME_BYTES: usize = 4 << 20;

/// tshark 4.0's zstd input buffer: `ZSTD_DStreamInSize()`, 128 KiB + 3.
pub const TSHARK_REGION: usize = 131_075;

/// Input handed to the compressor at a time: zstd's largest block, so that handing
/// over whole ones ends no block early.
pub const CHUNK: usize = 128 << 10;

/// 8 MiB window: more than a frame's input, so matches reach across the whole frame.
const WINDOW_LOG: u32 = 23;

/// Address space reserved for a frame's input, so that appending never moves it while
/// zstd refers to it (pages are touched only as far as frames grow: ~5–8 MiB).
const STAGE_CAPACITY: usize = 32 << 20;

/// A frame ends early once less than this is left of [`STAGE_CAPACITY`]: room for the
/// largest piece appended between two [`ZstdFrames::staged`] calls (a packet block,
/// at most ~256 KiB of records, the 1 MiB of blocks held before the first packet). A
/// larger one moves the buffer, which costs a frame boundary, not data.
const STAGE_MARGIN: usize = 8 << 20;

/// The block that ends a frame after an exact flush: an empty raw block, the last.
pub const FRAME_END: &[u8] = &[1, 0, 0];

/// Its length.
const LAST_BLOCK: usize = FRAME_END.len();

/// Writes zstd frames of what it is given to `W`.
pub struct ZstdFrames<W: Write> {
    out: W,
    cctx: InPlaceCCtx,
    /// The open frame's input (zstd reads it in place), then what is staged for it.
    staged: Vec<u8>,
    compressed: Vec<u8>,
    /// Bytes written to `out`.
    written: u64,
}

/// Match finder tables: zstd's defaults for the level, or [`Tables::Small`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tables {
    /// What the level implies (2^13 hash entries at levels 1 and below).
    Default,
    /// 2^[`SMALL_HASH_LOG`] hash entries and [`SMALL_MIN_MATCH`]-byte matches: for input
    /// compressed in short bursts between other processes' work (a live capture), which
    /// evict the tables from the cache each time. Reloading 8 KiB instead of 32 KiB cut
    /// the recorder's CPU by 13–20 % for files ~5 % larger (BENCHMARKS.md).
    Small,
}

/// log2 of the hash table's entries with [`Tables::Small`].
pub const SMALL_HASH_LOG: i32 = 11;

/// Shortest match with [`Tables::Small`]: 5 bytes instead of the level's 6 wins back
/// part of what the smaller table loses on HTTP captures.
pub const SMALL_MIN_MATCH: i32 = 5;

impl<W: Write> ZstdFrames<W> {
    /// Frames at compression `level` (zstd's scale: 1 fast ... 22; negative faster).
    pub fn new(out: W, level: i32, tables: Tables) -> io::Result<Self> {
        let mut params = vec![
            (ZSTD_cParameter::ZSTD_c_compressionLevel, level),
            (ZSTD_cParameter::ZSTD_c_windowLog, WINDOW_LOG as i32),
            (ZSTD_cParameter::ZSTD_c_checksumFlag, 0),
            (ZSTD_cParameter::ZSTD_c_contentSizeFlag, 0),
        ];
        if tables == Tables::Small {
            params.push((ZSTD_cParameter::ZSTD_c_hashLog, SMALL_HASH_LOG));
            params.push((ZSTD_cParameter::ZSTD_c_minMatch, SMALL_MIN_MATCH));
        }
        let cctx = InPlaceCCtx::new(&params)?;
        let staged = Vec::with_capacity(STAGE_CAPACITY);
        advise_huge_pages(&staged);
        Ok(Self {
            out,
            cctx,
            staged,
            compressed: Vec::new(),
            written: 0,
        })
    }

    /// The input of the current frame, to append to (never to change: zstd may still
    /// read what is there); call [`staged`](Self::staged) after appending.
    pub fn staging(&mut self) -> &mut Vec<u8> {
        &mut self.staged
    }

    /// Compresses what is staged in whole [`CHUNK`]s.
    pub fn staged(&mut self) -> io::Result<()> {
        if self.staged.len() - self.given() >= CHUNK {
            self.feed(false)?;
        }
        Ok(())
    }

    /// Compresses what is staged, ends the current block and flushes `W`: everything
    /// written so far can then be read back, whatever happens to this process.
    pub fn flush(&mut self) -> io::Result<()> {
        self.feed(true)?;
        self.out.flush()
    }

    /// Ends the last frame, flushes, and hands back `W`.
    pub fn finish(mut self) -> io::Result<W> {
        self.feed(true)?;
        if self.frame_open() {
            self.end_frame(false)?;
        }
        self.out.flush()?;
        Ok(self.out)
    }

    /// The output.
    pub fn get_ref(&self) -> &W {
        &self.out
    }

    /// The output, mutably (writing to it directly breaks the frame layout).
    pub fn get_mut(&mut self) -> &mut W {
        &mut self.out
    }

    /// Hands back `W` without writing what is staged (after an error).
    pub fn into_inner(self) -> W {
        self.out
    }

    /// Whether a frame is open: output cut after the last flush then needs
    /// [`FRAME_END`] to be a complete zstd stream.
    pub fn frame_open(&self) -> bool {
        self.cctx.given().is_some()
    }

    /// Input of `staged` given to the open frame (0 when none is open).
    fn given(&self) -> usize {
        self.cctx.given().unwrap_or(0)
    }

    /// Hands staged input to the compressor, whole chunks only unless `exact` (then
    /// all of it), ending a block each time: every byte given is then in the output,
    /// so a frame can always be ended, by zstd or by hand.
    fn feed(&mut self, exact: bool) -> io::Result<()> {
        if self.cctx.moved(&self.staged) {
            self.end_moved_frame()?;
        }
        let given = self.given();
        let size = if exact {
            self.staged.len()
        } else {
            given + (self.staged.len() - given) / CHUNK * CHUNK
        };
        if size == given {
            return Ok(());
        }
        self.compressed.clear();
        self.cctx
            .compress(&self.staged[..size], End::Block, &mut self.compressed)?;
        let n = self.emit()?;
        if self.staged.capacity() - self.staged.len() < STAGE_MARGIN {
            self.end_frame(true)?;
        } else if size >= FRAME_BYTES {
            // Positions are exact here: end the frame at the next boundary unless
            // another chunk like this one surely fits before it.
            let to_boundary = TSHARK_REGION - (self.written % TSHARK_REGION as u64) as usize;
            if to_boundary <= 2 * n + 64 {
                self.end_frame(true)?;
            }
        }
        Ok(())
    }

    /// Empty blocks that bring the output to `LAST_BLOCK` bytes before a region
    /// boundary, so that the frame ends on it.
    fn padding(&self) -> Vec<u8> {
        let to_boundary = TSHARK_REGION - (self.written % TSHARK_REGION as u64) as usize;
        let mut need = if to_boundary >= LAST_BLOCK {
            to_boundary - LAST_BLOCK
        } else {
            to_boundary + TSHARK_REGION - LAST_BLOCK
        };
        // No empty block is 1 or 2 bytes long.
        if need == 1 || need == 2 {
            need += TSHARK_REGION;
        }
        empty_blocks(need)
    }

    /// Ends the open frame; `pad`: so that it ends on a region boundary.
    fn end_frame(&mut self, pad: bool) -> io::Result<()> {
        self.compressed.clear();
        if pad {
            self.compressed = self.padding();
        }
        let padded = self.compressed.len();
        let given = self.given();
        self.cctx
            .compress(&self.staged[..given], End::Frame, &mut self.compressed)?;
        if pad && self.compressed.len() - padded != LAST_BLOCK {
            return Err(io::Error::other(format!(
                "zstd ended a frame with {} bytes, not {LAST_BLOCK}: frame layout lost",
                self.compressed.len() - padded
            )));
        }
        self.emit()?;
        // The frame's input is done with; what it was not given opens the next one.
        self.staged.drain(..given);
        Ok(())
    }

    /// The frame's input moved (a piece larger than [`STAGE_MARGIN`] was appended):
    /// zstd must not read it again. Every block it was given is in the output, so the
    /// frame is ended by hand, on a region boundary, and the next one starts with what
    /// zstd was not given. Nothing is lost.
    fn end_moved_frame(&mut self) -> io::Result<()> {
        let given = self.given();
        self.cctx.reset();
        self.compressed = self.padding();
        self.compressed.extend_from_slice(FRAME_END);
        self.emit()?;
        // The frame's input is done with; what it was not given opens the next one.
        self.staged.drain(..given);
        Ok(())
    }

    /// Writes `compressed` out; returns its length.
    fn emit(&mut self) -> io::Result<usize> {
        self.out.write_all(&self.compressed)?;
        self.written += self.compressed.len() as u64;
        Ok(self.compressed.len())
    }
}

/// Transparent huge pages' size on x86-64 and arm64 with 4 KiB pages.
const HUGE_PAGE: usize = 2 << 20;

/// The whole huge pages inside `len` bytes at `addr`, as (start, length).
fn huge_page_range(addr: usize, len: usize) -> Option<(usize, usize)> {
    let start = addr.checked_next_multiple_of(HUGE_PAGE)?;
    let end = (addr.checked_add(len)? / HUGE_PAGE) * HUGE_PAGE;
    (end > start).then(|| (start, end - start))
}

/// Asks for transparent huge pages behind `buf`'s capacity: zstd reads a frame's
/// input (megabytes) in place, and a live capture touches it in bursts between other
/// processes' work; with 2 MiB pages the recorder's CPU per request fell 11–17 %
/// (BENCHMARKS.md), presumably fewer TLB misses. Only advice: ignored without THP.
fn advise_huge_pages(buf: &Vec<u8>) {
    if let Some((start, len)) = huge_page_range(buf.as_ptr() as usize, buf.capacity()) {
        // SAFETY: the range lies inside `buf`'s allocation, and MADV_HUGEPAGE changes
        // how its pages are backed, never their contents. Failure (no THP) is harmless.
        unsafe {
            libc::madvise(start as *mut libc::c_void, len, libc::MADV_HUGEPAGE);
        }
    }
}

/// Empty zstd blocks (not last) of `len` bytes in all (0 or at least 3): raw blocks of
/// 3 bytes, an RLE block of 4 (0 repeats), a compressed block of 5 (no literals, no
/// sequences).
fn empty_blocks(len: usize) -> Vec<u8> {
    debug_assert!(len != 1 && len != 2);
    let mut b = Vec::with_capacity(len);
    let mut need = len;
    while need > 0 {
        match need {
            4 | 7 => {
                b.extend_from_slice(&[1 << 1, 0, 0, 0]);
                need -= 4;
            }
            5 | 8 => {
                b.extend_from_slice(&[(2 << 3) | (2 << 1), 0, 0, 0, 0]);
                need -= 5;
            }
            _ => {
                b.extend_from_slice(&[0, 0, 0]);
                need -= 3;
            }
        }
    }
    b
}

#[cfg(test)]
mod tests {
    use super::*;
    use zstd::zstd_safe;

    /// Pseudo-random bytes (xorshift): incompressible.
    fn noise(len: usize, mut x: u64) -> Vec<u8> {
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    /// Start offsets of the frames of `out`.
    fn frame_starts(out: &[u8]) -> Vec<usize> {
        let mut starts = Vec::new();
        let mut at = 0;
        while at < out.len() {
            starts.push(at);
            at += zstd_safe::find_frame_compressed_size(&out[at..]).unwrap();
        }
        starts
    }

    fn write(pieces: &[Vec<u8>], flush_every: usize) -> Vec<u8> {
        let mut w = ZstdFrames::new(Vec::new(), 1, Tables::Default).unwrap();
        for (i, p) in pieces.iter().enumerate() {
            w.staging().extend_from_slice(p);
            w.staged().unwrap();
            if i % flush_every == flush_every - 1 {
                w.flush().unwrap();
            }
        }
        w.finish().unwrap()
    }

    #[test]
    fn huge_pages_are_advised_only_inside_the_buffer() {
        let mb = 1 << 20;
        assert_eq!(huge_page_range(4 * mb, 32 * mb), Some((4 * mb, 32 * mb)));
        assert_eq!(
            huge_page_range(4 * mb + 1, 32 * mb),
            Some((6 * mb, 30 * mb))
        );
        assert_eq!(huge_page_range(5 * mb, 3 * mb), Some((6 * mb, 2 * mb)));
        assert_eq!(huge_page_range(5 * mb, 2 * mb), None);
        assert_eq!(huge_page_range(usize::MAX - mb, 4 * mb), None);
    }

    /// Small tables are what they say: with more distinct repeated words than they
    /// have entries, they find fewer matches; and everything still decodes.
    #[test]
    fn small_tables_remember_less_and_lose_nothing() {
        let words = noise(4096 * 12, 5);
        let input: Vec<u8> = noise(20_000 * 2, 11)
            .chunks(2)
            .flat_map(|i| {
                let w = usize::from(u16::from_le_bytes([i[0], i[1]])) % 4096;
                words[w * 12..][..12].to_vec()
            })
            .collect();
        let size = |tables| {
            let mut w = ZstdFrames::new(Vec::new(), -1, tables).unwrap();
            w.staging().extend_from_slice(&input);
            let out = w.finish().unwrap();
            assert_eq!(zstd::stream::decode_all(&out[..]).unwrap(), input);
            out.len()
        };
        let (default, small) = (size(Tables::Default), size(Tables::Small));
        assert!(default < input.len() / 2, "{default}");
        assert!(
            small > default + (4 << 10),
            "small {small}, default {default}"
        );
    }

    #[test]
    fn frames_decode_to_the_input_in_order() {
        let mut input = Vec::new();
        for i in 0..(FRAME_BYTES / 8 * 2 + 1000) {
            input.extend_from_slice(&(i as u64 % 1000).to_le_bytes());
        }
        // Odd-sized pieces across chunk and frame boundaries, flushes in the middle.
        let pieces: Vec<Vec<u8>> = input.chunks(77_777).map(<[u8]>::to_vec).collect();
        let out = write(&pieces, 20);
        assert_eq!(zstd::stream::decode_all(&out[..]).unwrap(), input);
        // Flushing with nothing staged writes nothing.
        let mut w = ZstdFrames::new(Vec::new(), 1, Tables::Default).unwrap();
        w.flush().unwrap();
        assert!(w.finish().unwrap().is_empty());
    }

    /// What tshark 4.0 needs: every frame starts at a multiple of its input buffer.
    /// Frames are still large: about FRAME_BYTES of input each.
    #[test]
    fn frames_start_on_region_boundaries_whatever_the_input() {
        let pieces: Vec<Vec<u8>> = (0..240)
            .map(|i| match i % 4 {
                0 => noise(60_000 + i * 997, i as u64 + 1),
                1 => vec![b'a'; 300_000],
                2 => noise(37, i as u64 + 7),
                _ => noise(300_000 * (i % 8 / 7), 3),
            })
            .collect();
        let input = pieces.concat();
        for flush_every in [1, 3, 50] {
            let out = write(&pieces, flush_every);
            assert_eq!(zstd::stream::decode_all(&out[..]).unwrap(), input);
            let starts = frame_starts(&out);
            assert!(
                starts.iter().all(|s| s % TSHARK_REGION == 0),
                "flush every {flush_every}: frames at {starts:?}"
            );
            assert!(starts.len() <= input.len() / FRAME_BYTES + 1, "{starts:?}");
            assert!(out.len() < input.len(), "{} >= {}", out.len(), input.len());
        }
    }

    /// Input so compressible that a frame's output would take ~100 MiB of it to reach
    /// a region boundary: the frame ends when its buffer runs short of margin instead,
    /// and the buffer zstd reads in place is never reallocated.
    #[test]
    fn highly_compressible_input_never_moves_the_buffer() {
        let mut w = ZstdFrames::new(Vec::new(), 1, Tables::Default).unwrap();
        let piece = vec![b'a'; 100 << 10];
        for _ in 0..400 {
            w.staging().extend_from_slice(&piece);
            w.staged().unwrap();
            assert_eq!(w.staged.capacity(), STAGE_CAPACITY);
        }
        let out = w.finish().unwrap();
        assert_eq!(
            zstd::stream::decode_all(&out[..]).unwrap().len(),
            400 * piece.len()
        );
        assert!(frame_starts(&out).len() >= 2);
        assert!(frame_starts(&out).iter().all(|s| s % TSHARK_REGION == 0));
    }

    /// A piece larger than the margin moves the buffer under an open frame: the frame
    /// is ended by hand, on a region boundary, and nothing is lost or read from the
    /// old buffer.
    #[test]
    fn a_huge_piece_costs_a_frame_boundary_not_data() {
        let input = noise(STAGE_CAPACITY + (3 << 20), 9);
        let mut w = ZstdFrames::new(Vec::new(), 1, Tables::Default).unwrap();
        w.staging().extend_from_slice(&input[..(1 << 20) + 5]);
        w.staged().unwrap();
        assert!(w.frame_open());
        w.staging().extend_from_slice(&input[(1 << 20) + 5..]);
        // realloc may have grown the buffer in place (mremap): move it for sure.
        let mut elsewhere = Vec::with_capacity(w.staged.capacity());
        elsewhere.extend_from_slice(&w.staged);
        w.staged = elsewhere;
        assert!(
            w.cctx.moved(&w.staged),
            "the piece must have moved the buffer"
        );
        w.staged().unwrap();
        let out = w.finish().unwrap();
        assert_eq!(zstd::stream::decode_all(&out[..]).unwrap(), input);
        let starts = frame_starts(&out);
        assert!(starts.len() >= 2, "{starts:?}");
        assert!(starts.iter().all(|s| s % TSHARK_REGION == 0), "{starts:?}");
    }

    #[test]
    fn empty_blocks_have_the_asked_size_and_no_content() {
        for len in (0..2000).filter(|l| *l != 1 && *l != 2) {
            let mut frame = vec![0x28, 0xb5, 0x2f, 0xfd, 0x00, (WINDOW_LOG as u8 - 10) << 3];
            frame.extend_from_slice(&empty_blocks(len));
            frame.extend_from_slice(&[1, 0, 0]); // empty raw block, the last
            assert_eq!(frame.len(), 6 + len + LAST_BLOCK);
            assert_eq!(
                zstd_safe::find_frame_compressed_size(&frame).unwrap(),
                frame.len()
            );
            assert!(
                zstd::stream::decode_all(&frame[..]).unwrap().is_empty(),
                "{len}"
            );
        }
    }
}
