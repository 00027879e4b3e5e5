//! zstd output as a sequence of independent frames.
//!
//! A streaming encoder compresses out of a ring buffer: once it wraps, every block is
//! compressed against a split window (zstd's slower "extDict" path, a quarter of the
//! recorder's CPU), after a copy into that buffer. Staging about [`FRAME_BYTES`]
//! (built in place by the caller: [`ZstdFrames::staging`]) and compressing them in one
//! call, as one complete frame, avoids both. A zstd file may hold any number of
//! frames; tshark and [`crate::CaptureReader`] read them in turn.

use std::io::{self, Write};

/// Uncompressed bytes per frame: a frame ends once this many are staged (so it may
/// exceed them by the last piece staged), and at every flush.
pub const FRAME_BYTES: usize = 4 << 20;

/// Writes zstd frames of what it is given to `W`.
pub struct ZstdFrames<W: Write> {
    out: W,
    compressor: zstd::bulk::Compressor<'static>,
    staged: Vec<u8>,
    compressed: Vec<u8>,
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
        })
    }

    /// The input of the current frame, to append to; call [`staged`](Self::staged)
    /// after appending.
    pub fn staging(&mut self) -> &mut Vec<u8> {
        &mut self.staged
    }

    /// Writes a frame if at least [`FRAME_BYTES`] are staged.
    pub fn staged(&mut self) -> io::Result<()> {
        if self.staged.len() >= FRAME_BYTES {
            self.end_frame()?;
        }
        Ok(())
    }

    /// Writes what is staged as a complete frame and flushes `W`: everything written so
    /// far can then be read back, whatever happens to this process.
    pub fn flush(&mut self) -> io::Result<()> {
        self.end_frame()?;
        self.out.flush()
    }

    /// [`flush`](Self::flush), then hands back `W`.
    pub fn finish(mut self) -> io::Result<W> {
        self.flush()?;
        Ok(self.out)
    }

    fn end_frame(&mut self) -> io::Result<()> {
        if self.staged.is_empty() {
            return Ok(());
        }
        self.compressed.clear();
        self.compressed
            .reserve(zstd::compress_bound(self.staged.len()));
        self.compressor
            .compress_to_buffer(&self.staged, &mut self.compressed)?;
        self.out.write_all(&self.compressed)?;
        self.staged.clear();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_decode_to_the_input_in_order() {
        let mut input = Vec::new();
        for i in 0..(FRAME_BYTES / 8 * 2 + 1000) {
            input.extend_from_slice(&(i as u64 % 1000).to_le_bytes());
        }
        let mut w = ZstdFrames::new(Vec::new(), 1).unwrap();
        // Odd-sized pieces across frame boundaries, and a flush in the middle.
        let (a, b) = input.split_at(12345);
        w.staging().extend_from_slice(a);
        w.staged().unwrap();
        w.flush().unwrap();
        for chunk in b.chunks(777_777) {
            w.staging().extend_from_slice(chunk);
            w.staged().unwrap();
        }
        let out = w.finish().unwrap();
        assert_eq!(zstd::stream::decode_all(&out[..]).unwrap(), input);
        // Flushing with nothing staged writes no empty frame.
        let mut w = ZstdFrames::new(Vec::new(), 1).unwrap();
        w.flush().unwrap();
        assert!(w.finish().unwrap().is_empty());
    }
}
