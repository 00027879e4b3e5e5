//! Reading ahead on a thread of its own: the source's `read()` (the kernel's copy out
//! of the page cache, or decompression) runs beside the parser, and each chunk is
//! handed over whole, without another copy.

use std::io::{self, Read};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};

/// Bytes left free at the front of every chunk, where the parser puts the unconsumed
/// tail of the previous chunk so a unit that straddles the two is contiguous.
pub(crate) const HEADROOM: usize = 64 * 1024;
/// Data bytes per chunk, after the headroom.
const CHUNK: usize = 1 << 20;
/// Chunks read but not yet taken: bounds the memory read ahead.
const IN_FLIGHT: usize = 2;

/// Chunks of a source read by a background thread. The thread ends at the end of the
/// input, at its first error (passed on), or when this handle is dropped.
pub(crate) struct ReadAhead {
    chunks: Receiver<io::Result<Vec<u8>>>,
    spares: SyncSender<Vec<u8>>,
}

impl ReadAhead {
    /// Starts reading `src` on a new thread.
    pub(crate) fn spawn(mut src: Box<dyn Read + Send>) -> io::Result<Self> {
        let (chunk_tx, chunks) = sync_channel(IN_FLIGHT);
        let (spares, spare_rx) = sync_channel::<Vec<u8>>(IN_FLIGHT + 2);
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
        Ok(Self { chunks, spares })
    }

    /// The next chunk, data from [`HEADROOM`] on; `None` at the end of the input.
    pub(crate) fn next(&mut self) -> Option<io::Result<Vec<u8>>> {
        self.chunks.recv().ok()
    }

    /// Gives a used chunk back, so chunks are allocated once.
    pub(crate) fn recycle(&self, chunk: Vec<u8>) {
        let _ = self.spares.try_send(chunk);
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
