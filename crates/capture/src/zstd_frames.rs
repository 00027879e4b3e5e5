//! zstd output as a sequence of independent frames, laid out for tshark 4.0.
//!
//! A streaming encoder compresses out of a ring buffer: once it wraps, every block is
//! compressed against a split window (zstd's slower "extDict" path, a quarter of the
//! recorder's CPU), after a copy into that buffer. Staging about [`FRAME_BYTES`]
//! (built in place by the caller: [`ZstdFrames::staging`]) and compressing them in one
//! call per frame avoids both. A zstd file may hold any number of frames; tshark and
//! [`crate::CaptureReader`] read them in turn.
//!
//! But tshark 4.0 (Debian 12's) reads zstd input in buffers of [`TSHARK_REGION`] bytes
//! (`ZSTD_DStreamInSize()`) and, when a frame ends, looks for the next frame's magic at
//! the start of its *buffer*, not where the frame ended (later Wireshark fixed this):
//! any frame that starts after the first buffer was refilled mid-frame is taken for
//! uncompressed data, and the capture looks corrupt from there on. So the file is laid
//! out in regions of that size: every region begins with a frame, no frame crosses
//! into the next region, and a region's tail too small for the next frame is filled
//! with an empty frame. Frames are then at most one region (about 128 KiB) compressed;
//! how much input that takes is estimated from the previous frame's ratio.

use std::io::{self, Write};

/// Uncompressed bytes staged before they are compressed (into one frame or more), and
/// at every flush.
pub const FRAME_BYTES: usize = 4 << 20;

/// tshark 4.0's zstd input buffer: `ZSTD_DStreamInSize()`, 128 KiB + 3.
pub const TSHARK_REGION: usize = 131_075;

/// The smallest padding frame that can be built for any length (see [`padding_frame`]).
const MIN_PAD: usize = 17;

/// Region tails shorter than this are padded rather than given a small frame.
const PAD_BELOW: usize = 4096;

/// Writes zstd frames of what it is given to `W`.
pub struct ZstdFrames<W: Write> {
    out: W,
    compressor: zstd::bulk::Compressor<'static>,
    staged: Vec<u8>,
    compressed: Vec<u8>,
    /// Bytes left in the current region of the output.
    left: usize,
    /// Input bytes per output byte of the last frame: sizes the next one.
    ratio: f64,
}

impl<W: Write> ZstdFrames<W> {
    /// Frames at compression `level` (zstd's scale: 1 fast ... 22; negative faster).
    pub fn new(out: W, level: i32) -> io::Result<Self> {
        Ok(Self {
            out,
            compressor: zstd::bulk::Compressor::new(level)?,
            // Room for the piece that crosses FRAME_BYTES (a packet block is at most
            // about 256 KiB), so the buffer is allocated once.
            staged: Vec::with_capacity(FRAME_BYTES + FRAME_BYTES / 4),
            compressed: Vec::new(),
            left: TSHARK_REGION,
            ratio: 1.0,
        })
    }

    /// The input of the current frame, to append to; call [`staged`](Self::staged)
    /// after appending.
    pub fn staging(&mut self) -> &mut Vec<u8> {
        &mut self.staged
    }

    /// Writes frames if at least [`FRAME_BYTES`] are staged.
    pub fn staged(&mut self) -> io::Result<()> {
        if self.staged.len() >= FRAME_BYTES {
            self.write_staged()?;
        }
        Ok(())
    }

    /// Writes what is staged as complete frames and flushes `W`: everything written so
    /// far can then be read back, whatever happens to this process.
    pub fn flush(&mut self) -> io::Result<()> {
        self.write_staged()?;
        self.out.flush()
    }

    /// [`flush`](Self::flush), then hands back `W`.
    pub fn finish(mut self) -> io::Result<W> {
        self.flush()?;
        Ok(self.out)
    }

    /// Compresses the staged bytes into as many frames as their regions need.
    fn write_staged(&mut self) -> io::Result<()> {
        let mut done = 0;
        while done < self.staged.len() {
            if self.left < PAD_BELOW {
                self.out.write_all(&padding_frame(self.left))?;
                self.left = TSHARK_REGION;
            }
            // The frame must fill the region exactly or leave room for a padding frame.
            let room = self.left - MIN_PAD;
            let rest = self.staged.len() - done;
            let mut len = rest.min(((room as f64 * self.ratio * 0.9) as usize).max(1));
            loop {
                let piece = &self.staged[done..done + len];
                self.compressed.clear();
                self.compressed.reserve(zstd::compress_bound(len));
                self.compressor
                    .compress_to_buffer(piece, &mut self.compressed)?;
                let n = self.compressed.len();
                if n <= room || n == self.left {
                    break;
                }
                // Too big for the region: less input, in proportion, with a margin.
                // Strictly less each time; a 1-byte frame always fits.
                let shrunk = (len as f64 * room as f64 / n as f64 * 0.9) as usize;
                len = shrunk.clamp(1, len - 1);
            }
            let n = self.compressed.len();
            self.out.write_all(&self.compressed)?;
            self.ratio = len as f64 / n as f64;
            self.left -= n;
            if self.left == 0 {
                self.left = TSHARK_REGION;
            }
            done += len;
        }
        self.staged.clear();
        Ok(())
    }
}

/// A zstd frame of exactly `len` bytes (at least [`MIN_PAD`], or 9, 12, 13, 15, 16)
/// that decompresses to nothing: a frame header whose size sets `len` modulo 3, then
/// empty raw blocks of 3 bytes each.
fn padding_frame(len: usize) -> Vec<u8> {
    const MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];
    let mut f = MAGIC.to_vec();
    match len % 3 {
        // Single segment, 1-byte content size 0: 6-byte header.
        0 => f.extend_from_slice(&[0x20, 0]),
        // Window descriptor and 4-byte content size 0: 10-byte header.
        1 => f.extend_from_slice(&[0x80, 0, 0, 0, 0, 0]),
        // Window descriptor and 8-byte content size 0: 14-byte header.
        _ => f.extend_from_slice(&[0xc0, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
    }
    while f.len() + 3 < len {
        f.extend_from_slice(&[0, 0, 0]); // empty raw block
    }
    f.extend_from_slice(&[1, 0, 0]); // empty raw block, the last
    debug_assert_eq!(f.len(), len);
    f
}

#[cfg(test)]
mod tests {
    use super::*;

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
            at += zstd::zstd_safe::find_frame_compressed_size(&out[at..]).unwrap();
        }
        starts
    }

    /// What tshark 4.0 needs: every frame starts in a region that begins with a frame,
    /// with its 4-byte magic inside that region.
    fn assert_tshark_layout(out: &[u8]) {
        let starts = frame_starts(out);
        for &s in &starts {
            let region = s - s % TSHARK_REGION;
            assert!(
                starts.contains(&region),
                "frame at {s}: region {region} starts mid-frame"
            );
            assert!(
                s - region + 4 <= TSHARK_REGION,
                "frame at {s}: magic crosses a region"
            );
        }
    }

    fn write(pieces: &[Vec<u8>], flush_every: usize) -> Vec<u8> {
        let mut w = ZstdFrames::new(Vec::new(), 1).unwrap();
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
    fn frames_decode_to_the_input_in_order() {
        let mut input = Vec::new();
        for i in 0..(FRAME_BYTES / 8 * 2 + 1000) {
            input.extend_from_slice(&(i as u64 % 1000).to_le_bytes());
        }
        // Odd-sized pieces across frame boundaries, and flushes in the middle.
        let pieces: Vec<Vec<u8>> = input.chunks(777_777).map(<[u8]>::to_vec).collect();
        let out = write(&pieces, 2);
        assert_eq!(zstd::stream::decode_all(&out[..]).unwrap(), input);
        assert_tshark_layout(&out);
        // Flushing with nothing staged writes no empty frame.
        let mut w = ZstdFrames::new(Vec::new(), 1).unwrap();
        w.flush().unwrap();
        assert!(w.finish().unwrap().is_empty());
    }

    #[test]
    fn incompressible_and_mixed_input_keeps_the_tshark_layout() {
        // Incompressible, compressible and tiny pieces; flushes at varied points.
        let pieces: Vec<Vec<u8>> = (0..200)
            .map(|i| match i % 4 {
                0 => noise(60_000 + i * 997, i as u64 + 1),
                1 => vec![b'a'; 300_000],
                2 => noise(37, i as u64 + 7),
                _ => noise(5_000_000 * (i % 8 / 7), 3),
            })
            .collect();
        let input = pieces.concat();
        for flush_every in [1, 3, 50] {
            let out = write(&pieces, flush_every);
            assert_eq!(zstd::stream::decode_all(&out[..]).unwrap(), input);
            assert_tshark_layout(&out);
            assert!(out.len() < input.len(), "{} >= {}", out.len(), input.len());
        }
    }

    #[test]
    fn padding_frames_have_the_asked_size_and_no_content() {
        for len in [9, 12, 13, 15, 16]
            .into_iter()
            .chain(MIN_PAD..PAD_BELOW + 10)
        {
            let f = padding_frame(len);
            assert_eq!(f.len(), len);
            assert_eq!(
                zstd::zstd_safe::find_frame_compressed_size(&f).unwrap(),
                len
            );
            assert!(
                zstd::stream::decode_all(&f[..]).unwrap().is_empty(),
                "{len}"
            );
        }
    }
}
