//! Reading ahead on a thread of its own: the source's `read()` (the kernel's copy out
//! of the page cache, or decompression) runs beside the parser, and each chunk is
//! handed over whole, without another copy.

use std::collections::VecDeque;
use std::io::{self, Read};
use std::ops::{Deref, Range};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::Arc;

/// Bytes left free at the front of every chunk, where the parser puts the unconsumed
/// tail of the previous chunk so a unit that straddles the two is contiguous.
pub(crate) const HEADROOM: usize = 64 * 1024;
/// Data bytes per chunk, after the headroom.
const CHUNK: usize = 1 << 20;
/// Chunks read but not yet taken: bounds the memory read ahead.
const IN_FLIGHT: usize = 8;
/// Used chunks kept for reuse (a fresh one costs page faults): enough for the chunks
/// that callers holding [`SharedChunk`]s release together.
const SPARES: usize = 32;

/// Chunks of a source read by a background thread. The thread ends at the end of the
/// input, at its first error (passed on), or when this handle is dropped.
pub(crate) struct ReadAhead {
    chunks: Receiver<io::Result<Vec<u8>>>,
    spares: SyncSender<Vec<u8>>,
    /// Chunks the parser is done with that callers still share, oldest first.
    shared: VecDeque<Arc<Vec<u8>>>,
}

impl ReadAhead {
    /// Starts reading `src` on a new thread.
    pub(crate) fn spawn(mut src: Box<dyn Read + Send>) -> io::Result<Self> {
        let (chunk_tx, chunks) = sync_channel(IN_FLIGHT);
        let (spares, spare_rx) = sync_channel::<Vec<u8>>(SPARES);
        std::thread::Builder::new()
            .name("l7rec-read-ahead".into())
            .spawn(move || loop {
                let mut chunk = spare_rx.try_recv().unwrap_or_default();
                chunk.resize(HEADROOM + CHUNK, 0);
                let (got, error) = read_chunk(&mut src, &mut chunk[HEADROOM..]);
                // What was read before an error is passed on first, as a direct
                // reader would have it.
                if got > 0 {
                    chunk.truncate(HEADROOM + got);
                    if chunk_tx.send(Ok(chunk)).is_err() {
                        return; // the reader is gone
                    }
                }
                if let Some(e) = error {
                    let _ = chunk_tx.send(Err(e));
                    return;
                }
                if got == 0 {
                    return; // end of input
                }
            })?;
        Ok(Self {
            chunks,
            spares,
            shared: VecDeque::new(),
        })
    }

    /// The next chunk, data from [`HEADROOM`] on; `None` at the end of the input.
    pub(crate) fn next(&mut self) -> Option<io::Result<Vec<u8>>> {
        self.chunks.recv().ok()
    }

    /// Gives a used chunk back, so chunks are allocated once; a chunk callers still
    /// share is taken back when they have all let go of it.
    pub(crate) fn recycle(&mut self, chunk: Arc<Vec<u8>>) {
        match Arc::try_unwrap(chunk) {
            Ok(chunk) => {
                let _ = self.spares.try_send(chunk);
            }
            Err(shared) => self.shared.push_back(shared),
        }
        // Callers release chunks in about the order they got them.
        while self
            .shared
            .front()
            .is_some_and(|c| Arc::strong_count(c) == 1)
        {
            if let Some(Ok(chunk)) = self.shared.pop_front().map(Arc::try_unwrap) {
                let _ = self.spares.try_send(chunk);
            }
        }
    }
}

/// A chunk of input read ahead, shared between the reader and whoever keeps bytes of
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
