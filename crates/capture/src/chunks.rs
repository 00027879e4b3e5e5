//! Input read in chunks that callers can share: a packet's data is handed on as a
//! reference into the chunk it lies in, never copied. The chunks are read either on
//! the caller's thread when the parser needs the next one, or ahead of the parser on a
//! thread of its own, so that decompression runs beside it. A chunk is a fixed amount
//! of a byte stream, or one whole zstd frame ([`WholeFrames`]).

use std::collections::VecDeque;
use std::io::{self, Read};
use std::ops::{Deref, Range};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Arc;

use crate::zstd_whole_frames::WholeFrames;

/// Bytes left free at the front of every chunk, where the parser puts the unconsumed
/// tail of the previous chunk so a unit that straddles the two is contiguous.
pub(crate) const HEADROOM: usize = 64 * 1024;
/// Data bytes per chunk, after the headroom.
const CHUNK: usize = 1 << 20;
/// Data bytes of the first chunk read on the caller's thread; each next one doubles up
/// to [`CHUNK`], so a small input (a fuzzing run, a short capture) costs little.
const FIRST_CHUNK: usize = 16 * 1024;
/// Bytes of chunks read ahead but not yet taken, about: bounds the memory read ahead.
const IN_FLIGHT_BYTES: usize = 8 << 20;
/// Used chunks kept for reuse (a fresh one costs page faults): enough for the chunks
/// that callers holding [`SharedChunk`]s release together.
const SPARES: usize = 32;

/// What the chunks hold.
pub(crate) enum Input {
    /// A byte stream, in chunks of a size of our choosing.
    Stream(Box<dyn Read + Send>),
    /// zstd frames, each decompressed whole into a chunk of its own (when it can be).
    ZstdFrames(WholeFrames),
}

impl Input {
    /// The usual data size of a chunk.
    fn typical_chunk(&self) -> usize {
        match self {
            Input::Stream(_) => CHUNK,
            Input::ZstdFrames(_) => crate::zstd_frames::FRAME_BYTES,
        }
    }

    /// The next chunk in `spare`, as [`read_next`].
    fn next_chunk(
        &mut self,
        spare: Vec<u8>,
        size: usize,
    ) -> (Option<Vec<u8>>, Option<io::Result<()>>) {
        match self {
            Input::Stream(src) => read_next(src.as_mut(), spare, size),
            Input::ZstdFrames(frames) => frames.next_chunk(spare),
        }
    }
}

/// Where the chunks come from.
enum Source {
    /// Read on the caller's thread, in [`Chunks::next`].
    Here {
        src: Input,
        /// Data bytes of the next chunk.
        size: usize,
        spares: Vec<Vec<u8>>,
        /// The error that ended the reading, passed on after the data before it.
        error: Option<io::Error>,
        ended: bool,
    },
    /// Read ahead by a background thread. It ends at the end of the input, at its first
    /// error (passed on), or when the receiver is dropped.
    Ahead {
        chunks: Receiver<io::Result<Vec<u8>>>,
        spares: SyncSender<Vec<u8>>,
    },
}

/// The chunks of a source, in order, each with [`HEADROOM`] free bytes before its data.
pub(crate) struct Chunks {
    source: Source,
    /// Chunks the parser is done with that callers still share, oldest first.
    shared: VecDeque<Arc<Vec<u8>>>,
}

impl Chunks {
    /// Reads `src` on the caller's thread, a chunk per [`next`](Self::next).
    pub(crate) fn here(src: Input) -> Self {
        Self {
            source: Source::Here {
                src,
                size: FIRST_CHUNK,
                spares: Vec::new(),
                error: None,
                ended: false,
            },
            shared: VecDeque::new(),
        }
    }

    /// Whether a background thread reads the chunks.
    #[cfg(test)]
    pub(crate) fn reads_ahead(&self) -> bool {
        matches!(self.source, Source::Ahead { .. })
    }

    /// Starts reading `src` ahead on a new thread.
    pub(crate) fn ahead(mut src: Input) -> io::Result<Self> {
        let (chunk_tx, chunks) = sync_channel(IN_FLIGHT_BYTES / src.typical_chunk());
        let (spares, spare_rx) = sync_channel::<Vec<u8>>(SPARES);
        std::thread::Builder::new()
            .name("l7rec-read-ahead".into())
            .spawn(move || loop {
                let spare = spare_rx.try_recv().unwrap_or_default();
                let (chunk, stop) = src.next_chunk(spare, CHUNK);
                // What was read before an error is passed on first.
                if let Some(chunk) = chunk {
                    if chunk_tx.send(Ok(chunk)).is_err() {
                        return; // the reader is gone
                    }
                }
                match stop {
                    None => {}
                    Some(Ok(())) => return,
                    Some(Err(e)) => {
                        let _ = chunk_tx.send(Err(e));
                        return;
                    }
                }
            })?;
        Ok(Self {
            source: Source::Ahead { chunks, spares },
            shared: VecDeque::new(),
        })
    }

    /// The next chunk, data from [`HEADROOM`] on; `None` at the end of the input, and
    /// from then on (after an error too).
    pub(crate) fn next(&mut self) -> Option<io::Result<Vec<u8>>> {
        match &mut self.source {
            Source::Ahead { chunks, .. } => chunks.recv().ok(),
            Source::Here {
                src,
                size,
                spares,
                error,
                ended,
            } => {
                if *ended {
                    return error.take().map(Err);
                }
                let spare = spares.pop().unwrap_or_default();
                let (chunk, stop) = src.next_chunk(spare, *size);
                *size = (*size * 2).min(CHUNK);
                if let Some(stop) = stop {
                    *ended = true;
                    *error = stop.err();
                }
                chunk.map(Ok).or_else(|| error.take().map(Err))
            }
        }
    }

    /// Gives a used chunk back, so chunks are allocated once; a chunk callers still
    /// share is taken back when they have all let go of it.
    pub(crate) fn recycle(&mut self, chunk: Arc<Vec<u8>>) {
        match Arc::try_unwrap(chunk) {
            Ok(chunk) => self.reuse(chunk),
            Err(shared) => self.shared.push_back(shared),
        }
        // Callers release chunks in about the order they got them.
        while self
            .shared
            .front()
            .is_some_and(|c| Arc::strong_count(c) == 1)
        {
            if let Some(Ok(chunk)) = self.shared.pop_front().map(Arc::try_unwrap) {
                self.reuse(chunk);
            }
        }
    }

    fn reuse(&mut self, chunk: Vec<u8>) {
        match &mut self.source {
            Source::Here { spares, .. } => {
                if spares.len() < SPARES {
                    spares.push(chunk);
                }
            }
            Source::Ahead { spares, .. } => {
                let _ = spares.try_send(chunk);
            }
        }
    }
}

/// Reads the next `size` bytes of `src` into `chunk`: the chunk if any byte came, and
/// what stopped the reading if it stopped (`Ok` at the end of the input).
pub(crate) fn read_next(
    src: &mut dyn Read,
    mut chunk: Vec<u8>,
    size: usize,
) -> (Option<Vec<u8>>, Option<io::Result<()>>) {
    chunk.resize(HEADROOM + size, 0);
    let (got, error) = read_chunk(src, &mut chunk[HEADROOM..]);
    chunk.truncate(HEADROOM + got);
    let stop = match error {
        Some(e) => Some(Err(e)),
        // read_chunk stops short of a full chunk only at the end of the input.
        None if got < size => Some(Ok(())),
        None => None,
    };
    ((got > 0).then_some(chunk), stop)
}

/// A chunk of input, shared between the reader and whoever keeps bytes of
/// it beyond the next event ([`Packet::chunk`]): packet data without a copy.
///
/// [`Packet::chunk`]: crate::Packet::chunk
#[derive(Clone)]
pub struct SharedChunk(pub(crate) Arc<Vec<u8>>);

impl std::fmt::Debug for SharedChunk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SharedChunk({} bytes)", self.0.len())
    }
}

impl SharedChunk {
    /// Where `part` (e.g. a packet's data) lies in this chunk, if it lies there.
    pub fn range_of(&self, part: &[u8]) -> Option<Range<usize>> {
        let base = self.0.as_ptr() as usize;
        let start = (part.as_ptr() as usize).checked_sub(base)?;
        let end = start + part.len();
        (end <= self.0.len()).then_some(start..end)
    }

    /// Whether both are the same chunk.
    pub fn same(&self, other: &SharedChunk) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Deref for SharedChunk {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        &self.0
    }
}

/// Fills `buf` from `src` until it is full, the input ends or an error occurs: the
/// bytes read, and the error if there was one.
pub(crate) fn read_chunk(src: &mut dyn Read, buf: &mut [u8]) -> (usize, Option<io::Error>) {
    let mut got = 0;
    while got < buf.len() {
        match src.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return (got, Some(e)),
        }
    }
    (got, None)
}
