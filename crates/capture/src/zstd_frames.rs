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
//! Input is compressed as it comes, in chunks of [`CHUNK`], by one streaming context
//! whose window covers a whole frame: the compressor's buffer does not wrap within a
//! frame (zstd's slower split-window path). A flush ends a block, not the frame: the
//! file is readable up to it (by tshark and [`crate::CaptureReader`]) even if this
//! process dies.

use std::io::{self, Write};

use zstd::zstd_safe::{self, CCtx, CParameter, InBuffer, OutBuffer};

/// Input per frame, about: a frame ends at the first region boundary it can reach
/// after this much.
pub const FRAME_BYTES: usize = 4 << 20;

/// tshark 4.0's zstd input buffer: `ZSTD_DStreamInSize()`, 128 KiB + 3.
pub const TSHARK_REGION: usize = 131_075;

/// Input staged before it is handed to the compressor.
pub const CHUNK: usize = 128 << 10;

/// 8 MiB window: more than a frame's input, so the compressor's buffer never wraps.
const WINDOW_LOG: u32 = 23;

/// The block that ends a frame after an exact flush: an empty raw block, the last.
pub const FRAME_END: &[u8] = &[1, 0, 0];

/// Its length.
const LAST_BLOCK: usize = FRAME_END.len();

/// Writes zstd frames of what it is given to `W`.
pub struct ZstdFrames<W: Write> {
    out: W,
    cctx: CCtx<'static>,
    staged: Vec<u8>,
    compressed: Vec<u8>,
    /// Bytes written to `out`.
    written: u64,
    /// Input given to the open frame; `None` when no frame is open.
    frame_input: Option<usize>,
}

fn zstd_error(code: usize) -> io::Error {
    io::Error::other(format!("zstd: {}", zstd_safe::get_error_name(code)))
}

impl<W: Write> ZstdFrames<W> {
    /// Frames at compression `level` (zstd's scale: 1 fast ... 22; negative faster).
    pub fn new(out: W, level: i32) -> io::Result<Self> {
        let mut cctx = CCtx::create();
        for p in [
            CParameter::CompressionLevel(level),
            CParameter::WindowLog(WINDOW_LOG),
            CParameter::ChecksumFlag(false),
            CParameter::ContentSizeFlag(false),
        ] {
            cctx.set_parameter(p).map_err(zstd_error)?;
        }
        Ok(Self {
            out,
            cctx,
            // Room for the piece that crosses CHUNK (a packet block is at most about
            // 256 KiB), so the buffer is allocated once.
            staged: Vec::with_capacity(CHUNK + (512 << 10)),
            compressed: Vec::new(),
            written: 0,
            frame_input: None,
        })
    }

    /// The input of the current frame, to append to; call [`staged`](Self::staged)
    /// after appending.
    pub fn staging(&mut self) -> &mut Vec<u8> {
        &mut self.staged
    }

    /// Compresses what is staged once it reaches [`CHUNK`].
    pub fn staged(&mut self) -> io::Result<()> {
        if self.staged.len() >= CHUNK {
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
        if self.frame_input.is_some() {
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
        self.frame_input.is_some()
    }

    /// Hands the staged bytes to the compressor; `exact`: flush its output too.
    fn feed(&mut self, exact: bool) -> io::Result<()> {
        if self.staged.is_empty() && (!exact || self.frame_input.is_none()) {
            return Ok(());
        }
        let fed = self.frame_input.unwrap_or(0) + self.staged.len();
        let full = fed >= FRAME_BYTES;
        let directive = if exact || full {
            zstd_safe::zstd_sys::ZSTD_EndDirective::ZSTD_e_flush
        } else {
            zstd_safe::zstd_sys::ZSTD_EndDirective::ZSTD_e_continue
        };
        let input = std::mem::take(&mut self.staged);
        let n = self.compress(&input, directive);
        self.staged = input;
        self.staged.clear();
        let n = n?;
        self.frame_input = Some(fed);
        if full {
            // Positions are exact here: end the frame at the next boundary unless
            // another chunk like this one surely fits before it.
            let to_boundary = TSHARK_REGION - (self.written % TSHARK_REGION as u64) as usize;
            if to_boundary <= 2 * n + 64 {
                self.end_frame(true)?;
            }
        }
        Ok(())
    }

    /// Ends the open frame (after an exact flush); `pad`: so that it ends on a region
    /// boundary.
    fn end_frame(&mut self, pad: bool) -> io::Result<()> {
        if pad {
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
            let padding = empty_blocks(need);
            self.out.write_all(&padding)?;
            self.written += padding.len() as u64;
        }
        let n = self.compress(&[], zstd_safe::zstd_sys::ZSTD_EndDirective::ZSTD_e_end)?;
        if pad && n != LAST_BLOCK {
            return Err(io::Error::other(format!(
                "zstd ended a frame with {n} bytes, not {LAST_BLOCK}: frame layout lost"
            )));
        }
        self.frame_input = None;
        Ok(())
    }

    /// Runs the compressor over `input` with `directive` until it is done; writes and
    /// returns how many bytes it produced.
    fn compress(
        &mut self,
        input: &[u8],
        directive: zstd_safe::zstd_sys::ZSTD_EndDirective,
    ) -> io::Result<usize> {
        let mut src = InBuffer::around(input);
        let mut total = 0;
        loop {
            self.compressed.clear();
            self.compressed
                .reserve(zstd_safe::compress_bound(input.len() - src.pos()) + 1024);
            let mut dst = OutBuffer::around(&mut self.compressed);
            let left = self
                .cctx
                .compress_stream2(&mut dst, &mut src, directive)
                .map_err(zstd_error)?;
            let n = dst.pos();
            self.out.write_all(&self.compressed[..n])?;
            total += n;
            let consumed = src.pos() == input.len();
            let done = match directive {
                zstd_safe::zstd_sys::ZSTD_EndDirective::ZSTD_e_continue => consumed,
                _ => consumed && left == 0,
            };
            if done {
                break;
            }
        }
        self.written += total as u64;
        Ok(total)
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
        // Odd-sized pieces across chunk and frame boundaries, flushes in the middle.
        let pieces: Vec<Vec<u8>> = input.chunks(77_777).map(<[u8]>::to_vec).collect();
        let out = write(&pieces, 20);
        assert_eq!(zstd::stream::decode_all(&out[..]).unwrap(), input);
        // Flushing with nothing staged writes nothing.
        let mut w = ZstdFrames::new(Vec::new(), 1).unwrap();
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
