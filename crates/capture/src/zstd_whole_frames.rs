//! zstd input decompressed a whole frame at a time, straight into the chunk the parser
//! reads.
//!
//! zstd's streaming decoder decompresses into a window buffer of its own and copies
//! out of it (a sixth of the analyzer's decompression thread on an l7rec capture,
//! whose frames hold ~4 MiB each). A frame that is wholly in memory and whose output
//! is known to be small can instead be decompressed in one call into a buffer of the
//! right size: the frame is walked first (block headers only) for its compressed
//! length and a bound on its output. Anything else — a frame too large to bound
//! usefully (an ordinary `zstd`-compressed pcap is often one frame of gigabytes), a
//! frame the input stops inside (a recorder killed or still writing), damage, a read
//! error — hands the rest of the input, from the start of that frame, to the
//! streaming decoder, which reads what can be read and reports what it always did.

use std::io::{self, Cursor, Read};
use std::ptr::NonNull;

use crate::chunks::{read_chunk, read_next, HEADROOM};
use crate::zstd_frames::FRAME_END;

/// Decompressed bytes a frame may be bounded to at most to be decompressed whole
/// (l7rec's frames: ~4 MiB, rarely up to ~24 MiB).
const MAX_FRAME_OUTPUT: usize = 32 << 20;
/// Compressed bytes of one frame buffered at most.
const MAX_FRAME_INPUT: usize = 32 << 20;
/// Compressed input read at a time.
const READ_SIZE: usize = 1 << 20;
/// Chunk size handed to the streaming decoder.
const STREAM_CHUNK: usize = 1 << 20;

const ZSTD_MAGIC: u32 = 0xFD2F_B528;
/// Skippable frames: magic 0x184D2A50..=0x184D2A5F, a u32 length, that many bytes.
const SKIPPABLE_MAGIC: u32 = 0x184D_2A50;
/// A block decompresses to at most this (less with a smaller window).
const BLOCK_MAX: usize = 128 << 10;

/// What the start of some zstd input holds, from its headers alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FrameScan {
    /// A whole frame: its length, a bound on its decompressed size, and where the run
    /// of empty blocks before its empty last block starts, if it has one (and no
    /// checksum): the frame cut there and ended by [`FRAME_END`] decompresses to the
    /// same bytes without zstd stepping through the run. l7rec's writer pads every
    /// frame with thousands of empty blocks for tshark 4.0 (`crate::zstd_frames`):
    /// walking them took ~5 % of an analysis of an l7rec capture.
    Whole {
        len: usize,
        bound: usize,
        trim: Option<usize>,
    },
    /// The start of a frame: its end is not in the input yet.
    Partial,
    /// Not something to decompress whole: no zstd frame, a reserved field, or a bound
    /// above `max_output`.
    Unsuitable,
}

/// Walks the frame at the start of `input`: frame header, block headers, checksum.
/// Raw and RLE blocks say their decompressed size; a compressed block counts as
/// [`BLOCK_MAX`] (l7rec's blocks are close to it; the empty blocks padding a frame
/// to tshark's read size count as nothing).
pub(crate) fn scan_frame(input: &[u8], max_output: usize) -> FrameScan {
    let u32_at = |at: usize| -> Option<u32> {
        let b = input.get(at..at + 4)?;
        Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    let Some(magic) = u32_at(0) else {
        return FrameScan::Partial;
    };
    if magic & 0xFFFF_FFF0 == SKIPPABLE_MAGIC {
        let Some(size) = u32_at(4) else {
            return FrameScan::Partial;
        };
        let len = 8 + size as usize;
        return if input.len() >= len {
            FrameScan::Whole {
                len,
                bound: 0,
                trim: None,
            }
        } else {
            FrameScan::Partial
        };
    }
    if magic != ZSTD_MAGIC {
        return FrameScan::Unsuitable;
    }
    let Some(&descriptor) = input.get(4) else {
        return FrameScan::Partial;
    };
    if descriptor & 0x08 != 0 {
        return FrameScan::Unsuitable; // reserved bit
    }
    let single_segment = descriptor & 0x20 != 0;
    let checksum = descriptor & 0x04 != 0;
    let dict_id_len = [0, 1, 2, 4][usize::from(descriptor & 3)];
    let content_size_len = match descriptor >> 6 {
        0 => usize::from(single_segment),
        1 => 2,
        2 => 4,
        _ => 8,
    };
    let content_size_at = 5 + usize::from(!single_segment) + dict_id_len;
    let Some(field) = input.get(content_size_at..content_size_at + content_size_len) else {
        return FrameScan::Partial;
    };
    // A declared size says at once that a frame is too large (`zstd file`).
    let declared = field.iter().rev().fold(0u64, |v, &b| v << 8 | u64::from(b))
        + if content_size_len == 2 { 256 } else { 0 };
    if content_size_len > 0 && declared > max_output as u64 {
        return FrameScan::Unsuitable;
    }
    let mut pos = content_size_at + content_size_len;
    let mut bound = 0usize;
    // Where the run of empty blocks that the last block read ended starts.
    let mut empties_from = None;
    let trim = loop {
        // Three zero bytes are an empty raw block (not the last): padding, stepped
        // over a run at a time.
        let zeros = input.get(pos..).map_or(0, zero_run) / 3 * 3;
        if zeros > 0 {
            empties_from.get_or_insert(pos);
            pos += zeros;
        }
        let Some(h) = input.get(pos..pos + 3) else {
            return FrameScan::Partial;
        };
        let header = u32::from(h[0]) | u32::from(h[1]) << 8 | u32::from(h[2]) << 16;
        let size = (header >> 3) as usize;
        let (stored, output, empty) = match (header >> 1) & 3 {
            0 => (size, size, size == 0), // raw
            1 => (1, size, size == 0),    // RLE: one byte, repeated
            2 => {
                // Compressed: no literals and no sequences is empty (the writer's
                // 5-byte padding block).
                let nothing = size == 2 && input.get(pos + 3..pos + 5) == Some(&[0, 0]);
                (size, BLOCK_MAX, nothing)
            }
            _ => return FrameScan::Unsuitable,
        };
        let at = pos;
        pos += 3 + stored;
        bound = bound.saturating_add(output);
        if bound > max_output {
            return FrameScan::Unsuitable;
        }
        if header & 1 != 0 {
            // The last block.
            break if empty && !checksum {
                empties_from
            } else {
                None
            };
        }
        if empty {
            empties_from.get_or_insert(at);
        } else {
            empties_from = None;
        }
    };
    if checksum {
        pos += 4;
    }
    if input.len() >= pos {
        FrameScan::Whole {
            len: pos,
            bound,
            trim,
        }
    } else {
        FrameScan::Partial
    }
}

/// How many zero bytes `b` starts with.
fn zero_run(b: &[u8]) -> usize {
    let words = b
        .chunks_exact(16)
        .take_while(|w| w.iter().fold(0, |acc, &x| acc | x) == 0)
        .count();
    let rest = &b[words * 16..];
    words * 16 + rest.iter().take_while(|&&x| x == 0).count()
}

/// A `ZSTD_DCtx`, for one-call decompression.
struct DCtx(NonNull<zstd_sys::ZSTD_DCtx>);

// SAFETY: a ZSTD_DCtx has no thread affinity; it is used through `&mut self` only.
unsafe impl Send for DCtx {}

impl DCtx {
    fn new() -> io::Result<Self> {
        // SAFETY: no preconditions; a null result is handled.
        let raw = unsafe { zstd_sys::ZSTD_createDCtx() };
        NonNull::new(raw)
            .map(DCtx)
            .ok_or_else(|| io::Error::other("zstd: out of memory"))
    }

    /// Decompresses the whole frame `src` after the first [`HEADROOM`] bytes of
    /// `chunk` (which it resizes), into at most `bound` bytes. `None` if zstd
    /// refused (damage, or a bound that was wrong): nothing of `chunk` is then valid.
    fn frame_into(&mut self, src: &[u8], chunk: &mut Vec<u8>, bound: usize) -> Option<()> {
        chunk.resize(HEADROOM, 0);
        chunk.reserve(bound);
        let dst = chunk.spare_capacity_mut();
        // SAFETY: a live context; `dst` is writable for `bound <= dst.len()` bytes and
        // `src` readable for its length; zstd writes at most `bound` bytes and
        // returns how many, or an error code.
        let got = unsafe {
            zstd_sys::ZSTD_decompressDCtx(
                self.0.as_ptr(),
                dst.as_mut_ptr().cast(),
                bound,
                src.as_ptr().cast(),
                src.len(),
            )
        };
        // SAFETY: any value may be tested.
        if unsafe { zstd_sys::ZSTD_isError(got) } != 0 || got > bound {
            return None;
        }
        // SAFETY: zstd initialised the first `got` bytes after the headroom.
        unsafe { chunk.set_len(HEADROOM + got) };
        Some(())
    }
}

impl Drop for DCtx {
    fn drop(&mut self) {
        // SAFETY: created by ZSTD_createDCtx, freed once.
        unsafe { zstd_sys::ZSTD_freeDCtx(self.0.as_ptr()) };
    }
}

/// A `Read` that fails once with the error that stopped the real input: the streaming
/// decoder meets it after the bytes that came before it, as it would have.
struct FailOnce(Option<io::Error>);

impl Read for FailOnce {
    fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
        self.0.take().map_or(Ok(0), Err)
    }
}

/// Room handed to the streaming decoder per read: what it can lose before damage.
const DECODER_READ: usize = 16 << 10;

/// Reads at most [`DECODER_READ`] bytes at a time. The zstd crate's decoder drops the
/// output of a read that ends in an error, so with a 1 MiB read a damaged block would
/// take the good blocks decoded before it in the same call along with it.
struct SmallReads<R>(R);

impl<R: Read> Read for SmallReads<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = buf.len().min(DECODER_READ);
        self.0.read(&mut buf[..n])
    }
}

/// zstd input, decompressed frame by frame into chunks; see the module documentation.
pub(crate) struct WholeFrames {
    /// The compressed input not read yet; `None` once handed to `streaming`.
    input: Option<Box<dyn Read + Send>>,
    /// Compressed input read but not decompressed yet: `buf[start..]`.
    buf: Vec<u8>,
    start: usize,
    /// The input reached its end (or `read_error`).
    ended: bool,
    read_error: Option<io::Error>,
    dctx: DCtx,
    /// The streaming decoder, once a frame was not for one call.
    streaming: Option<Box<dyn Read + Send>>,
}

impl WholeFrames {
    /// Decompresses `input`, zstd frames (possibly followed by damage).
    pub(crate) fn new(input: Box<dyn Read + Send>) -> io::Result<Self> {
        Ok(WholeFrames {
            input: Some(input),
            buf: Vec::new(),
            start: 0,
            ended: false,
            read_error: None,
            dctx: DCtx::new()?,
            streaming: None,
        })
    }

    /// The next chunk ([`HEADROOM`] free bytes, then data) in `spare`, as
    /// [`read_next`]: the chunk if any byte came, and what stopped the input if it
    /// stopped (`Ok` at its end).
    pub(crate) fn next_chunk(
        &mut self,
        mut spare: Vec<u8>,
    ) -> (Option<Vec<u8>>, Option<io::Result<()>>) {
        loop {
            if let Some(stream) = self.streaming.as_mut() {
                return read_next(stream.as_mut(), spare, STREAM_CHUNK);
            }
            match scan_frame(&self.buf[self.start..], MAX_FRAME_OUTPUT) {
                FrameScan::Whole { len, bound, trim } => {
                    if !self.decompress(len, bound, trim, &mut spare) {
                        self.stream_from_here();
                        continue;
                    }
                    self.start += len;
                    if spare.len() > HEADROOM {
                        return (Some(spare), None);
                    }
                    // An empty or skippable frame: on to the next.
                }
                FrameScan::Partial if self.ended && self.start == self.buf.len() => {
                    return match self.read_error.take() {
                        Some(e) => (None, Some(Err(e))),
                        None => (None, Some(Ok(()))),
                    };
                }
                FrameScan::Partial
                    if !self.ended && self.buf.len() - self.start < MAX_FRAME_INPUT =>
                {
                    self.read_more();
                }
                FrameScan::Partial | FrameScan::Unsuitable => self.stream_from_here(),
            }
        }
    }

    /// Decompresses the whole frame at `start`, `len` bytes long, into `chunk` (see
    /// [`DCtx::frame_into`]); a frame with a `trim` is cut there first, the bytes
    /// cut over put back if zstd refuses it (the streaming decoder then reads the
    /// frame as it was). Whether zstd took it.
    fn decompress(
        &mut self,
        len: usize,
        bound: usize,
        trim: Option<usize>,
        chunk: &mut Vec<u8>,
    ) -> bool {
        let Some(cut) = trim.map(|t| self.start + t) else {
            let frame = &self.buf[self.start..self.start + len];
            return self.dctx.frame_into(frame, chunk, bound).is_some();
        };
        let end = cut + FRAME_END.len();
        let mut kept = [0u8; 3];
        kept.copy_from_slice(&self.buf[cut..end]);
        self.buf[cut..end].copy_from_slice(FRAME_END);
        let ok = self
            .dctx
            .frame_into(&self.buf[self.start..end], chunk, bound)
            .is_some();
        if !ok {
            self.buf[cut..end].copy_from_slice(&kept);
        }
        ok
    }

    /// Reads more compressed input after what is buffered.
    fn read_more(&mut self) {
        let Some(input) = self.input.as_mut() else {
            self.ended = true;
            return;
        };
        self.buf.drain(..self.start);
        self.start = 0;
        let have = self.buf.len();
        self.buf.resize(have + READ_SIZE, 0);
        let (got, error) = read_chunk(input.as_mut(), &mut self.buf[have..]);
        self.buf.truncate(have + got);
        if error.is_some() || got < READ_SIZE {
            self.ended = true;
            self.read_error = error;
        }
    }

    /// Hands the rest of the input, from the frame at `start` on, to the streaming
    /// decoder.
    fn stream_from_here(&mut self) {
        let rest = Cursor::new(self.buf.split_off(self.start));
        self.buf = Vec::new();
        self.start = 0;
        let input = self.input.take().unwrap_or_else(|| Box::new(io::empty()));
        let fail = FailOnce(self.read_error.take());
        let decoder: Box<dyn Read + Send> =
            match zstd::stream::read::Decoder::new(rest.chain(input).chain(fail)) {
                Ok(d) => Box::new(SmallReads(d)),
                // Without a decoder, the error is what the rest reads as.
                Err(e) => Box::new(FailOnce(Some(e))),
            };
        self.streaming = Some(decoder);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all_chunks(mut f: WholeFrames) -> (Vec<u8>, Vec<usize>, Option<io::Error>) {
        let (mut data, mut sizes) = (Vec::new(), Vec::new());
        loop {
            let (chunk, stop) = f.next_chunk(Vec::new());
            if let Some(c) = chunk {
                sizes.push(c.len() - HEADROOM);
                data.extend_from_slice(&c[HEADROOM..]);
            }
            match stop {
                None => {}
                Some(Ok(())) => return (data, sizes, None),
                Some(Err(e)) => return (data, sizes, Some(e)),
            }
        }
    }

    fn frames_of(parts: &[&[u8]]) -> Vec<u8> {
        let mut out = Vec::new();
        for p in parts {
            out.extend(zstd::encode_all(*p, 3).expect("compress"));
        }
        out
    }

    fn sample(n: usize, seed: u8) -> Vec<u8> {
        (0..n)
            .map(|i| (i as u8).wrapping_mul(seed) ^ (i / 7) as u8)
            .collect()
    }

    #[test]
    fn each_frame_is_one_chunk() {
        let (a, b) = (sample(300_000, 3), sample(5_000, 5));
        let f = WholeFrames::new(Box::new(Cursor::new(frames_of(&[&a, &[], &b])))).unwrap();
        let (data, sizes, err) = all_chunks(f);
        assert!(err.is_none());
        assert_eq!(sizes, [a.len(), b.len()], "the empty frame gave no chunk");
        assert_eq!(data, [a, b].concat());
    }

    #[test]
    fn skippable_frames_are_skipped() {
        let a = sample(10_000, 7);
        let mut file = vec![0x5a, 0x2a, 0x4d, 0x18, 3, 0, 0, 0, 1, 2, 3];
        file.extend(frames_of(&[&a]));
        let f = WholeFrames::new(Box::new(Cursor::new(file))).unwrap();
        let (data, _, err) = all_chunks(f);
        assert!(err.is_none());
        assert_eq!(data, a);
    }

    #[test]
    fn the_bound_holds_for_every_block_kind() {
        // Incompressible (raw blocks), runs (RLE blocks), text (compressed blocks).
        let noise: Vec<u8> = (0..400_000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        for input in [noise, vec![9u8; 700_000], sample(1_000_000, 11)] {
            let file = frames_of(&[&input]);
            match scan_frame(&file, usize::MAX) {
                FrameScan::Whole { len, bound, .. } => {
                    assert_eq!(len, file.len());
                    assert!(bound >= input.len(), "bound {bound} < {}", input.len());
                }
                other => panic!("{other:?}"),
            }
            let f = WholeFrames::new(Box::new(Cursor::new(file))).unwrap();
            assert_eq!(all_chunks(f).0, input);
        }
    }

    #[test]
    fn every_cut_reads_as_the_streaming_decoder_reads_it() {
        let (a, b) = (sample(200_000, 3), sample(150_000, 13));
        let file = frames_of(&[&a, &b]);
        // The reader hands over input that starts with a zstd magic number.
        for cut in (4..file.len()).step_by(997).chain([file.len() - 1]) {
            let part = file[..cut].to_vec();
            let f = WholeFrames::new(Box::new(Cursor::new(part.clone()))).unwrap();
            let (data, _, err) = all_chunks(f);
            let mut streamed = Vec::new();
            let expected = zstd::stream::read::Decoder::new(Cursor::new(part))
                .and_then(|mut d| d.read_to_end(&mut streamed));
            assert_eq!(data, streamed, "cut at {cut}");
            assert_eq!(err.is_some(), expected.is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn damage_and_large_frames_go_to_the_streaming_decoder() {
        let (a, b) = (sample(200_000, 3), sample(150_000, 13));
        let mut file = frames_of(&[&a, &b]);
        let last = file.len() - 10;
        file[last] ^= 0xff; // inside the second frame
        let f = WholeFrames::new(Box::new(Cursor::new(file))).unwrap();
        let (data, _, err) = all_chunks(f);
        assert!(err.is_some(), "the damage is reported");
        assert!(data.starts_with(&a), "the first frame is read whole");

        // A frame whose output bound exceeds the limit is streamed, in smaller chunks,
        // whether it declares its size (encode_all does) or not.
        let big = sample(1 << 20, 5);
        assert_eq!(
            scan_frame(&frames_of(&[&big]), 512 << 10),
            FrameScan::Unsuitable
        );
        let mut e = zstd::stream::write::Encoder::new(Vec::new(), 3).unwrap();
        e.include_contentsize(false).unwrap();
        std::io::Write::write_all(&mut e, &big).unwrap();
        let undeclared = e.finish().unwrap();
        assert_eq!(scan_frame(&undeclared, 512 << 10), FrameScan::Unsuitable);
        assert!(matches!(
            scan_frame(&undeclared, 2 << 20),
            FrameScan::Whole { .. }
        ));
    }

    /// Damage in a frame's second block (found by the proptest below): its first
    /// block, 128 KiB of good data, is read, less at most one read of the decoder.
    #[test]
    fn damage_keeps_the_blocks_before_it() {
        let (a, b) = (sample(163_844, 85), sample(163_846, 141));
        let first = zstd::encode_all(&a[..], 0).unwrap();
        let mut second = zstd::encode_all(&b[..], -3).unwrap();
        let at = second.len() - 14;
        second[at] ^= 31;
        let f = WholeFrames::new(Box::new(Cursor::new([first, second].concat()))).unwrap();
        let (data, _, err) = all_chunks(f);
        assert!(err.is_some(), "the damage is reported");
        assert!(data.starts_with(&a));
        assert!(
            data.len() + DECODER_READ > a.len() + (128 << 10),
            "{} bytes",
            data.len()
        );
        assert_eq!(data[a.len()..], b[..data.len() - a.len()]);
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

        /// Frames of any content and level, padded like l7rec's or not, any byte
        /// changed, any cut: the bytes the streaming decoder gives, and an error
        /// exactly when it has one. Before damage each may lose what its last read
        /// decoded (a read that fails drops its output): ours at most
        /// [`DECODER_READ`] bytes.
        #[test]
        fn reads_what_the_streaming_decoder_reads(
            parts in proptest::collection::vec(
                (0usize..300_000, 1u8..=255, -5i32..=5, proptest::option::of(0usize..3_000)),
                1..4,
            ),
            flip in proptest::option::of((proptest::prelude::any::<usize>(), 1u8..=255)),
            cut in proptest::option::of(proptest::prelude::any::<usize>()),
        ) {
            let mut file = Vec::new();
            for (len, seed, level, pad) in &parts {
                let data = sample(*len, *seed);
                match pad {
                    Some(n) => file.extend(padded_frame(&data, &padding(*n), false)),
                    None => file.extend(zstd::encode_all(&data[..], *level).expect("compress")),
                }
            }
            if let Some((at, x)) = flip {
                let at = 4 + at % (file.len() - 4);
                file[at] ^= x;
            }
            if let Some(c) = cut {
                file.truncate(4 + c % (file.len() - 3));
            }
            let f = WholeFrames::new(Box::new(Cursor::new(file.clone()))).unwrap();
            let (data, _, err) = all_chunks(f);
            let mut streamed = Vec::new();
            let expected = zstd::stream::read::Decoder::new(Cursor::new(file))
                .and_then(|mut d| d.read_to_end(&mut streamed));
            proptest::prop_assert_eq!(err.is_some(), expected.is_err());
            if err.is_none() {
                proptest::prop_assert_eq!(data, streamed);
            } else {
                let common = data.len().min(streamed.len());
                proptest::prop_assert_eq!(&data[..common], &streamed[..common]);
                proptest::prop_assert!(
                    data.len() + DECODER_READ > streamed.len(),
                    "{} bytes, the streaming decoder {}", data.len(), streamed.len()
                );
            }
        }
    }

    /// `data` as one frame (with a checksum if `checksum`): its data blocks, then
    /// `padding`, then an empty last block.
    fn padded_frame(data: &[u8], padding: &[u8], checksum: bool) -> Vec<u8> {
        let mut e = zstd::stream::write::Encoder::new(Vec::new(), 3).unwrap();
        e.include_checksum(checksum).unwrap();
        std::io::Write::write_all(&mut e, data).unwrap();
        std::io::Write::flush(&mut e).unwrap();
        let mut frame = e.finish().unwrap();
        let tail = if checksum { 7 } else { 3 };
        assert_eq!(&frame[frame.len() - tail..][..3], FRAME_END);
        let at = frame.len() - tail;
        frame.splice(at..at, padding.iter().copied());
        frame
    }

    /// Empty blocks of every kind: raw (three zero bytes), RLE, compressed.
    fn padding(raw: usize) -> Vec<u8> {
        let mut p = vec![0u8; 3 * raw];
        p.extend_from_slice(&[1 << 1, 0, 0, 0x55]);
        p.extend_from_slice(&[(2 << 3) | (2 << 1), 0, 0, 0, 0]);
        p.extend_from_slice(&[0, 0, 0]);
        p
    }

    /// A frame padded with empty blocks is cut where they start, and reads the same.
    #[test]
    fn padding_before_the_last_block_is_cut() {
        let a = sample(300_000, 3);
        let unpadded = padded_frame(&a, &[], false);
        let file = padded_frame(&a, &padding(20_000), false);
        let FrameScan::Whole { len, trim, .. } = scan_frame(&file, usize::MAX) else {
            panic!("{:?}", scan_frame(&file, usize::MAX));
        };
        assert_eq!((len, trim), (file.len(), Some(unpadded.len() - 3)));
        let f = WholeFrames::new(Box::new(Cursor::new([&file[..], &file[..]].concat())));
        assert_eq!(all_chunks(f.unwrap()).0, [&a[..], &a[..]].concat());

        // With a checksum after the last block, or padding followed by data, nothing
        // is cut.
        let summed = padded_frame(&a, &padding(100), true);
        assert!(matches!(
            scan_frame(&summed, usize::MAX),
            FrameScan::Whole { trim: None, .. }
        ));
        let f = WholeFrames::new(Box::new(Cursor::new(summed))).unwrap();
        assert_eq!(all_chunks(f).0, a);
        let last_is_data = {
            let mut e = zstd::stream::write::Encoder::new(Vec::new(), 3).unwrap();
            e.include_checksum(false).unwrap();
            std::io::Write::write_all(&mut e, &a[..1000]).unwrap();
            std::io::Write::flush(&mut e).unwrap();
            let mut v = e.get_ref().clone();
            v.extend_from_slice(&padding(50));
            // A raw last block with 3 bytes of data.
            v.extend_from_slice(&[1 | (3 << 3), 0, 0, 7, 8, 9]);
            v
        };
        assert!(matches!(
            scan_frame(&last_is_data, usize::MAX),
            FrameScan::Whole { trim: None, .. }
        ));
        let f = WholeFrames::new(Box::new(Cursor::new(last_is_data))).unwrap();
        assert_eq!(all_chunks(f).0, [&a[..1000], &[7, 8, 9]].concat());

        // Padding between two data blocks, none before the last one.
        let between = {
            let mut e = zstd::stream::write::Encoder::new(Vec::new(), 3).unwrap();
            e.include_checksum(false).unwrap();
            std::io::Write::write_all(&mut e, &a[..1000]).unwrap();
            std::io::Write::flush(&mut e).unwrap();
            let first = e.get_ref().len();
            std::io::Write::write_all(&mut e, &a[1000..5000]).unwrap();
            std::io::Write::flush(&mut e).unwrap();
            let mut v = e.finish().unwrap();
            v.splice(first..first, padding(50));
            v
        };
        assert!(matches!(
            scan_frame(&between, usize::MAX),
            FrameScan::Whole { trim: None, .. }
        ));
        let f = WholeFrames::new(Box::new(Cursor::new(between))).unwrap();
        assert_eq!(all_chunks(f).0, a[..5000]);
    }

    /// l7rec's own frames are cut before their padding and read back whole.
    #[test]
    fn the_writers_frames_are_cut() {
        use crate::zstd_frames::{Tables, ZstdFrames};
        // Half noise: frames of ~4 MiB of input reach their region boundaries.
        let mut x = 0x9E37_79B9_7F4A_7C15u64;
        let input: Vec<u8> = (0..12u32 << 20)
            .map(|i| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                if i % 2 == 0 {
                    x as u8
                } else {
                    (i / 64) as u8
                }
            })
            .collect();
        let mut w = ZstdFrames::new(Vec::new(), 1, Tables::Small).unwrap();
        for piece in input.chunks(100_000) {
            w.staging().extend_from_slice(piece);
            w.staged().unwrap();
        }
        let file = w.finish().unwrap();
        let FrameScan::Whole { len, trim, .. } = scan_frame(&file, MAX_FRAME_OUTPUT) else {
            panic!("first frame not whole");
        };
        assert!(len < file.len(), "one frame only");
        let trim = trim.expect("the first frame is padded");
        assert!(trim < len - FRAME_END.len(), "{len} {trim}");
        let f = WholeFrames::new(Box::new(Cursor::new(file))).unwrap();
        assert_eq!(all_chunks(f).0, input);
    }

    /// Damage in a padded frame's data: what is read, and the error, are what the
    /// streaming decoder makes of the file as it is.
    #[test]
    fn damage_before_the_padding_is_read_as_before() {
        let a = sample(300_000, 5);
        let mut file = padded_frame(&a, &padding(5_000), false);
        // The end of the first block (its sequences): zstd refuses it.
        let first_block_end =
            9 + (u32::from_le_bytes([file[6], file[7], file[8], 0]) >> 3) as usize;
        file[first_block_end - 40..first_block_end].fill(0xff);
        assert!(matches!(
            scan_frame(&file, usize::MAX),
            FrameScan::Whole { trim: Some(_), .. }
        ));
        let f = WholeFrames::new(Box::new(Cursor::new(file.clone()))).unwrap();
        let (data, _, err) = all_chunks(f);
        let mut streamed = Vec::new();
        let expected = zstd::stream::read::Decoder::new(Cursor::new(file))
            .and_then(|mut d| d.read_to_end(&mut streamed));
        assert_eq!(err.is_some(), expected.is_err());
        assert!(err.is_some(), "the damage is reported");
        let common = data.len().min(streamed.len());
        assert_eq!(data[..common], streamed[..common]);
    }

    #[test]
    fn a_read_error_comes_after_the_data_before_it() {
        struct Failing(Cursor<Vec<u8>>);
        impl Read for Failing {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                match self.0.read(buf)? {
                    0 => Err(io::Error::other("disk on fire")),
                    n => Ok(n),
                }
            }
        }
        let a = sample(100_000, 3);
        let f = WholeFrames::new(Box::new(Failing(Cursor::new(frames_of(&[&a]))))).unwrap();
        let (data, _, err) = all_chunks(f);
        assert_eq!(data, a);
        assert!(err.is_some_and(|e| e.to_string().contains("disk on fire")));
    }
}
