//! Reading a capture and spreading its TCP segments over shards of connections.
//!
//! One thread parses (decompression and block parsing are sequential by nature),
//! decodes each frame down to TCP and appends the segment to the batch of the shard
//! its connection hashes to (its payload as a reference into the reader's chunk it
//! lies in, not a copy). Full rounds of batches go through a bounded channel
//! to where they are processed: with two threads, the calling thread; with three or
//! more, a rayon pool that runs the shards in parallel. A connection always lives in
//! the same shard, so shards never share state. The transactions of connections that
//! ended in a round are attributed to processes, sorted by start time and passed to
//! the caller's sink between rounds (with two threads, by whichever has time): memory
//! is bounded by a few rounds in flight plus the open connections' own buffers,
//! whatever the size of the file.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::fs::File;
use std::io::{self, Read};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{channel, sync_channel, SyncSender, TryRecvError, TrySendError};
use std::sync::{Arc, Mutex};

use l7rec_capture::{
    CaptureReader, Event, InputCompression, ReadError, Record, RecorderStats, SharedChunk, Step,
};
use rayon::prelude::*;

use crate::attribution::Attribution;
use crate::decode::{tcp_segment, Skip};
use crate::flows::{self, Endpoint, FlowTable, FlowTotals, SegmentMeta};
use crate::transaction::Transaction;
use crate::AnalyzeError;

/// Receives transactions batch by batch, each batch sorted by start time, and moves
/// out what it keeps (`Vec::append`). With two threads it is called from either, one
/// call at a time, whichever has time for it, and what it leaves in the batch is
/// dropped on the thread that built it (glibc frees memory of another thread's arena
/// under that arena's lock, which the two threads then contend for, string by
/// string).
pub type Sink<'a> = dyn FnMut(&mut Vec<Transaction>) -> io::Result<()> + Send + 'a;

/// Payload bytes per round before it is handed to the workers. Small enough that a
/// round's payloads are still in cache when they are parsed: 1 MiB instead of 8 made
/// one thread 7 % and two threads 17 % faster on the benchmark's pcap.
const ROUND_BYTES: usize = 1 << 20;
/// Segments per round before it is handed to the workers (rounds of small packets).
const ROUND_SEGMENTS: usize = 16 * 1024;
/// Full rounds queued for processing.
const ROUND_QUEUE: usize = 2;
/// Shards per worker thread: more shards than threads evens out uneven connections.
const SHARDS_PER_THREAD: usize = 8;
/// Bytes of emptied rounds' buffers held back before the oldest is filled again (see
/// [`Spares`]).
const SPARE_BYTES: usize = 8 << 20;
/// Emptied rounds held back at most, whatever their size (rounds of a few large
/// segments hold little).
const SPARE_ROUNDS: usize = 256;

/// Segments of one shard, and where each one's payload lies.
#[derive(Default)]
struct Batch {
    metas: Vec<SegmentMeta>,
    payloads: Vec<Payload>,
}

/// Where a segment's payload lies: `len` bytes at `start` of the round's shared input
/// chunk number `chunk`.
#[derive(Clone, Copy)]
struct Payload {
    chunk: u32,
    start: u32,
    len: u32,
}

/// What the reading thread hands over: segments per shard, the input chunks their
/// payloads lie in, and the metadata records read along with them (applied before the
/// segments are processed).
struct Round {
    batches: Vec<Batch>,
    chunks: Vec<SharedChunk>,
    records: Vec<Record>,
    /// Bytes of the file read (uncompressed) when the round was full.
    end_offset: u64,
}

impl Round {
    /// Bytes of segment buffers it holds.
    fn buffer_bytes(&self) -> usize {
        let batch = |b: &Batch| {
            b.metas.capacity() * std::mem::size_of::<SegmentMeta>()
                + b.payloads.capacity() * std::mem::size_of::<Payload>()
        };
        self.batches.iter().map(batch).sum()
    }
}

/// Emptied rounds kept for the reading thread to fill again, oldest first. The newest
/// is not the one to take: the thread that processed it has just read its buffers, and
/// writing lines that sit in another core's cache costs a round trip to that core for
/// each. On the benchmark VM, in the minutes when the host places its two vCPUs far
/// apart (a cache line's round trip 400–450 ns instead of 50), refilling the newest
/// round made the parsing thread 50 % slower (`RoundReader::fill` 53 → 106 ms of
/// samples); cycling through [`SPARE_BYTES`] of rounds took a two-thread run of the
/// 1 GB pcap from 0.27 to 0.24 s there, and left it at 0.21 s in calm minutes.
struct Spares {
    rounds: VecDeque<Round>,
    bytes: usize,
}

impl Spares {
    fn new() -> Self {
        Spares {
            rounds: VecDeque::new(),
            bytes: 0,
        }
    }

    /// Keeps an emptied round.
    fn put(&mut self, round: Round) {
        self.bytes += round.buffer_bytes();
        self.rounds.push_back(round);
    }

    /// The oldest round once [`SPARE_BYTES`] or [`SPARE_ROUNDS`] are held, else
    /// `new()`.
    fn take(&mut self, new: impl FnOnce() -> Round) -> Round {
        if self.bytes < SPARE_BYTES && self.rounds.len() < SPARE_ROUNDS {
            return new();
        }
        match self.rounds.pop_front() {
            Some(round) => {
                self.bytes -= round.buffer_bytes();
                round
            }
            None => new(),
        }
    }
}

/// Packets of one interface skipped because its link type is not decoded.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct UnsupportedLink {
    /// Interface id within its pcapng section; `None` in a legacy pcap, whose file
    /// is the one interface.
    pub interface: Option<u32>,
    /// The link type (pcap LINKTYPE_ number).
    pub linktype: u16,
    /// Packets skipped.
    pub packets: u64,
}

impl std::fmt::Display for UnsupportedLink {
    /// `interface 0 (link type 105, IEEE 802.11) is not supported: 18 packets skipped`
    /// in a pcapng, `link type 105 (IEEE 802.11) is not supported: ...` in a pcap.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (lt, name) = (
            self.linktype,
            crate::decode::unsupported_linktype_name(self.linktype),
        );
        let what = match (self.interface, name) {
            (Some(i), Some(n)) => format!("interface {i} (link type {lt}, {n})"),
            (Some(i), None) => format!("interface {i} (link type {lt})"),
            (None, Some(n)) => format!("link type {lt} ({n})"),
            (None, None) => format!("link type {lt}"),
        };
        let s = if self.packets == 1 { "" } else { "s" };
        write!(
            f,
            "{what} is not supported: {} packet{s} skipped",
            self.packets
        )
    }
}

/// Counters of one file's reading.
#[derive(Debug, Clone, Default)]
pub struct ReadTotals {
    /// Packets read.
    pub packets: u64,
    /// Bytes of pcap/pcapng read (uncompressed).
    pub bytes: u64,
    /// Packets that were not TCP over IP (or not decodable), by reason.
    pub skipped: SkipCounts,
    /// The recorder's own counters (last statistics record), for l7rec captures.
    pub recorder_stats: Option<RecorderStats>,
    /// Packets the capturing OS dropped, from Interface Statistics Blocks.
    pub isb_os_drops: u64,
    /// Custom blocks whose records could not be decoded.
    pub bad_records: u64,
}

/// Packets skipped per reason.
#[derive(Debug, Clone, Default)]
pub struct SkipCounts {
    /// Unknown link type.
    pub link_type: u64,
    /// Not IP.
    pub not_ip: u64,
    /// IP but not TCP.
    pub not_tcp: u64,
    /// IP fragments.
    pub fragments: u64,
    /// Malformed or cut headers.
    pub malformed: u64,
}

/// Why reading a file ended before its clean end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadStop {
    /// Cut inside a block, or damaged: the rest of the file was not read.
    Damaged(String),
    /// A compressed stream that stops between blocks without its end marker (a
    /// recorder killed or still writing): nothing read was cut.
    Unfinished(String),
}

/// Counters of analyzing one file (its transactions went to the sink).
pub struct FileAnalysis {
    /// Reading counters.
    pub read: ReadTotals,
    /// Connection counters.
    pub flows: FlowTotals,
    /// Why reading stopped before a clean end, if it did (everything before was
    /// analyzed).
    pub read_error: Option<ReadStop>,
    /// Interfaces whose packets were all skipped for their link type.
    pub unsupported_links: Vec<UnsupportedLink>,
}

/// Counts bytes pulled from the file, for the progress bar.
struct CountingRead<R> {
    inner: R,
    count: Arc<AtomicU64>,
}

impl<R: Read> Read for CountingRead<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// A read error as the user sees it: the reader's byte offsets count the stream
/// after decompression, which the file's own offsets do not match, so say so.
fn locate(e: ReadError, compression: InputCompression) -> String {
    let codec = match compression {
        InputCompression::None => return e.to_string(),
        InputCompression::Zstd => "zstd",
        InputCompression::Gzip => "gzip",
    };
    format!("{e} (bytes counted after {codec} decompression)")
}

/// Shard of a connection, the same for both directions and for every run. Runs once
/// per packet on the reading thread, so it is a cheap symmetric mix, not SipHash.
fn shard_of(a: Endpoint, b: Endpoint, shards: usize) -> usize {
    fn fold(e: Endpoint) -> u64 {
        let bits = e.bits();
        let ip = (bits as u64) ^ ((bits >> 64) as u64);
        (ip << 16) ^ u64::from(e.port)
    }
    // Symmetric: both directions give the same value.
    let x = fold(a).wrapping_add(fold(b)) ^ (fold(a) ^ fold(b)).rotate_left(29);
    let h = x.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    ((h >> 32) % shards as u64) as usize
}

/// How much further into the file (bytes read, uncompressed) process and connection
/// records may lie than the packets they describe and still be applied. The recorder
/// writes records in blocks (of up to 512, or when it is idle), so under load a short
/// connection can end in the file before its records appear; its transactions wait
/// until this much more has been read.
const RECORD_LAG_BYTES: u64 = 8 << 20;

/// Attributes finished transactions to processes once the records that may trail them
/// have been read, sorts them and hands them over, in the order of their rounds.
struct Delivery {
    attribution: Attribution,
    flow_base: u64,
    /// Finished transactions of processed rounds, each with the input offset where its
    /// round ended, oldest first.
    waiting: VecDeque<(u64, Vec<Transaction>)>,
    /// Input offset where the last round taken in ended.
    read_to: u64,
}

impl Delivery {
    fn new(flow_base: u64) -> Self {
        Delivery {
            attribution: Attribution::default(),
            flow_base,
            waiting: VecDeque::new(),
            read_to: 0,
        }
    }

    /// Takes in a processed round (its records, and `done`, the transactions of its
    /// connections that ended) and hands over those that have waited long enough.
    fn round(
        &mut self,
        done: Vec<Transaction>,
        round: &mut Round,
        sink: &mut Sink<'_>,
    ) -> io::Result<()> {
        self.take_in(done, round.records.drain(..), round.end_offset);
        while self.deliver_ready(sink)?.is_some() {}
        Ok(())
    }

    /// Applies the records of a processed round that ended at input offset
    /// `end_offset`, and queues `done`, the transactions of its connections that ended.
    fn take_in(
        &mut self,
        done: Vec<Transaction>,
        records: impl IntoIterator<Item = Record>,
        end_offset: u64,
    ) {
        for r in records {
            match r {
                Record::Process(p) => self.attribution.add_process(&p),
                Record::Connection(c) => self.attribution.add_connection(&c),
                _ => {}
            }
        }
        if !done.is_empty() {
            self.waiting.push_back((end_offset, done));
        }
        self.read_to = end_offset;
    }

    /// Hands over the oldest batch of transactions if it has waited long enough;
    /// the batch, with what the sink left in it, if there was one.
    fn deliver_ready(&mut self, sink: &mut Sink<'_>) -> io::Result<Option<Vec<Transaction>>> {
        let ready = self
            .waiting
            .front()
            .is_some_and(|(end, _)| end + RECORD_LAG_BYTES <= self.read_to);
        if !ready {
            return Ok(None);
        }
        self.waiting
            .pop_front()
            .map(|(_, txs)| self.deliver(txs, sink))
            .transpose()
    }

    /// Hands over everything still waiting, then `rest`: the file has been read, no
    /// more records can come.
    fn finish(&mut self, rest: Vec<Transaction>, sink: &mut Sink<'_>) -> io::Result<()> {
        while let Some((_, txs)) = self.waiting.pop_front() {
            self.deliver(txs, sink)?;
        }
        self.deliver(rest, sink).map(drop)
    }

    /// Attributes, sorts and hands over a batch of finished transactions; the batch,
    /// with what the sink left in it.
    fn deliver(
        &self,
        mut txs: Vec<Transaction>,
        sink: &mut Sink<'_>,
    ) -> io::Result<Vec<Transaction>> {
        if txs.is_empty() {
            return Ok(txs);
        }
        for t in &mut txs {
            t.flow_id += self.flow_base;
            if !self.attribution.is_empty() {
                self.attribution.attribute(t);
            }
        }
        txs.sort_by_key(|t| (t.ts_ns().unwrap_or(u64::MAX), t.flow_id));
        sink(&mut txs)?;
        Ok(txs)
    }
}

/// Analyzes one capture file with `threads` threads, handing transactions to `sink` as
/// their connections end. Flow ids are offset by `flow_base`. With one thread, reading
/// and processing take turns on the calling thread (a truly single-threaded analysis).
/// With two, a parsing thread reads (and decompresses) the file and fills rounds, the
/// calling thread processes them, and whichever waits for the other delivers. With
/// more, the calling thread reads rounds and delivers them while a rayon pool of
/// `threads - 1` processes them, fed by a thread of its own, and a read-ahead thread
/// decompresses a compressed file. Segments refer to the reader's chunks instead of
/// copies.
/// `on_progress(bytes_read)` is called per round.
pub fn analyze_file(
    path: &Path,
    threads: usize,
    cfg: flows::Config,
    flow_base: u64,
    on_progress: &(dyn Fn(u64) + Sync),
    sink: &mut Sink<'_>,
) -> Result<FileAnalysis, AnalyzeError> {
    let file = File::open(path).map_err(|e| AnalyzeError::Open {
        path: path.to_owned(),
        source: e,
    })?;
    let count = Arc::new(AtomicU64::new(0));
    let input = CountingRead {
        inner: file,
        count: count.clone(),
    };
    // With a pool, decompression runs on a thread of its own beside the parser (it
    // would make the parser the pipeline's bottleneck); a plain file's read() stays on
    // the parser's core, where it leaves the data in cache. With two threads the
    // parser decompresses too, parsing each frame while it is in cache: decompressing
    // on a third thread cost 13 % more CPU and was 7 % slower (two CPUs shared three
    // ways).
    let reader = if threads <= 2 {
        CaptureReader::new(input)
    } else {
        CaptureReader::with_decompression_ahead(input)
    }
    .map_err(|e| AnalyzeError::Read {
        path: path.to_owned(),
        source: e,
    })?;
    let inline = threads <= 1;
    // Two threads: one parses, this one processes, either delivers
    // (`Work::parsed_beside`).
    let parse_beside = threads == 2;
    // The reading and parsing thread keeps about one core busy.
    let workers = if inline { 1 } else { threads - 1 };
    let shard_workers = if workers > 1 {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(workers)
            .thread_name(|i| format!("l7rec-analyze-{i}"))
            .build()
            .map_err(|e| AnalyzeError::Threads {
                threads,
                reason: e.to_string(),
            })?;
        Workers::Pool(pool)
    } else {
        Workers::Here
    };
    let shard_workers = &shard_workers;
    // Shards exist to spread connections over a pool; one thread needs only one.
    let shards = match shard_workers {
        Workers::Here => 1,
        Workers::Pool(_) => workers * SHARDS_PER_THREAD,
    };
    let mut rounds = RoundReader::new(reader, shards);
    let mut work = Work {
        tables: (0..shards).map(|_| FlowTable::new(cfg)).collect(),
        delivery: Delivery::new(flow_base),
        shard_workers,
    };
    let progress = || on_progress(count.load(Ordering::Relaxed));

    let failed = if inline {
        let mut round = rounds.empty_round();
        loop {
            let Some(filled) = rounds.fill(round) else {
                break None;
            };
            round = filled;
            let result = work.round(&mut round, sink);
            progress();
            if let Err(e) = result {
                break Some(e);
            }
        }
    } else if parse_beside {
        work.parsed_beside(&mut rounds, sink, &progress).err()
    } else {
        work.threaded(&mut rounds, sink, &progress).err()
    };
    let (read, read_error, unsupported_links) = rounds.finish();
    if let Some(e) = failed {
        return Err(AnalyzeError::Output { source: e });
    }
    let finished: Vec<(Vec<Transaction>, FlowTotals)> = match shard_workers {
        Workers::Here => work.tables.into_iter().map(FlowTable::finish).collect(),
        Workers::Pool(pool) => {
            pool.install(|| work.tables.into_par_iter().map(FlowTable::finish).collect())
        }
    };
    let mut flows = FlowTotals::default();
    let mut rest = Vec::new();
    for (txs, t) in finished {
        rest.extend(txs);
        flows.add(&t);
    }
    work.delivery
        .finish(rest, sink)
        .map_err(|source| AnalyzeError::Output { source })?;
    Ok(FileAnalysis {
        read,
        flows,
        read_error,
        unsupported_links,
    })
}

/// Where the shards of a round are processed.
enum Workers {
    /// On the thread that has the round: a pool of one would only move the work (and
    /// the round's data) to another core and back.
    Here,
    /// In parallel on a pool of several threads.
    Pool(rayon::ThreadPool),
}

/// The connection shards and what applies to all of them.
struct Work<'p> {
    tables: Vec<FlowTable>,
    delivery: Delivery,
    shard_workers: &'p Workers,
}

impl Work<'_> {
    /// Processes a round and delivers the finished transactions, leaving the round
    /// empty for reuse.
    fn round(&mut self, round: &mut Round, sink: &mut Sink<'_>) -> io::Result<()> {
        let done = process(self.shard_workers, &mut self.tables, round);
        self.delivery.round(done, round, sink)
    }

    /// Fills rounds on a thread of its own while this thread processes them: the
    /// two-thread layout. Finished transactions are delivered by whichever thread
    /// has time ([`Outbox`]): this one while it waits for a round, the parsing
    /// thread while it waits for room in the queue. Which of reading and processing
    /// is the longer depends on the input (decompression), and even on how the
    /// kernel caches the file (read()'s copy cost twice as much out of a page cache
    /// filled by reads as out of one filled by writing the file). Stops at the
    /// sink's first error.
    fn parsed_beside(
        &mut self,
        rounds: &mut RoundReader,
        sink: &mut Sink<'_>,
        progress: &dyn Fn(),
    ) -> io::Result<()> {
        let (tx, rx) = sync_channel::<Round>(ROUND_QUEUE);
        // Room for every round in flight (queued, being filled, being processed), so
        // an emptied round is always kept for reuse.
        let (back_tx, back_rx) = sync_channel::<Round>(ROUND_QUEUE + 2);
        let mut spares = Spares::new();
        let outbox = Outbox::new(&mut self.delivery, sink);
        let (workers, tables) = (self.shard_workers, &mut self.tables);
        std::thread::scope(|s| {
            let outbox = &outbox;
            s.spawn(move || loop {
                while let Ok(emptied) = back_rx.try_recv() {
                    spares.put(emptied);
                }
                let spare = spares.take(|| rounds.empty_round());
                let Some(round) = rounds.fill(spare) else {
                    break;
                };
                // While the queue is full, deliver.
                let Ok(sent) = send_or(&tx, round, || Ok::<_, Infallible>(outbox.deliver_one()));
                if !sent || outbox.failed() {
                    break;
                }
            });
            // Owned here, so that stopping early ends the parsing thread (its next
            // send fails), which the scope joins.
            let (rx, back_tx) = (rx, back_tx);
            loop {
                let mut round = match rx.try_recv() {
                    Ok(round) => round,
                    Err(TryRecvError::Disconnected) => break,
                    // Waiting for the parser: deliver.
                    Err(TryRecvError::Empty) if outbox.deliver_one() => continue,
                    Err(TryRecvError::Empty) => match rx.recv() {
                        Ok(round) => round,
                        Err(_) => break,
                    },
                };
                if outbox.failed() {
                    break;
                }
                let done = process(workers, tables, &mut round);
                outbox.post(done, &mut round);
                progress();
                let _ = back_tx.try_send(round);
            }
        });
        outbox.finish()
    }

    /// Processes rounds through the pool, fed from a thread of its own, while this
    /// thread fills the next rounds and delivers the processed ones: with three
    /// threads or more, processing is spread over the pool and no longer the longest
    /// stage. Stops at the sink's first error.
    fn threaded(
        &mut self,
        rounds: &mut RoundReader,
        sink: &mut Sink<'_>,
        progress: &dyn Fn(),
    ) -> io::Result<()> {
        let (tx, rx) = sync_channel::<Round>(ROUND_QUEUE);
        // Unbounded, but rounds come back only as fast as this thread fills them.
        let (done_tx, done_rx) = channel::<(Vec<Transaction>, Round)>();
        let (workers, tables, delivery) =
            (self.shard_workers, &mut self.tables, &mut self.delivery);
        std::thread::scope(|s| {
            s.spawn(move || {
                for mut round in rx.iter() {
                    let done = process(workers, tables, &mut round);
                    if done_tx.send((done, round)).is_err() {
                        break;
                    }
                }
            });
            // Owned here, so that returning early ends the processing thread, which
            // the scope joins.
            let (tx, done_rx) = (tx, done_rx);
            // Emptied rounds, for reuse: their buffers are allocated once.
            let mut spares = Spares::new();
            let mut delivered = |(done, mut round): (Vec<Transaction>, Round)| {
                delivery.round(done, &mut round, sink)?;
                progress();
                io::Result::Ok(round)
            };
            loop {
                while let Ok(processed) = done_rx.try_recv() {
                    spares.put(delivered(processed)?);
                }
                let spare = spares.take(|| rounds.empty_round());
                let Some(round) = rounds.fill(spare) else {
                    break;
                };
                // While the queue is full, deliver what the processing thread finishes.
                let sent: io::Result<bool> = send_or(&tx, round, || match done_rx.recv() {
                    Ok(processed) => {
                        spares.put(delivered(processed)?);
                        Ok(true)
                    }
                    Err(_) => Ok(false),
                });
                // Not sent: the processing thread panicked; the scope passes that on.
                if !sent? {
                    return Ok(());
                }
            }
            drop(tx);
            for processed in done_rx {
                delivered(processed)?;
            }
            Ok(())
        })
    }
}

/// Sends `round` on `tx`, calling `meanwhile` while the queue is full; once
/// `meanwhile` has nothing to do (`Ok(false)`), waits for room instead. Whether the
/// round was sent (`false`: the receiver is gone); `meanwhile`'s first error.
fn send_or<E>(
    tx: &SyncSender<Round>,
    mut round: Round,
    mut meanwhile: impl FnMut() -> Result<bool, E>,
) -> Result<bool, E> {
    loop {
        match tx.try_send(round) {
            Ok(()) => return Ok(true),
            Err(TrySendError::Full(r)) => round = r,
            Err(TrySendError::Disconnected(_)) => return Ok(false),
        }
        if !meanwhile()? {
            return Ok(tx.send(round).is_ok());
        }
    }
}

/// What the delivery needs of a processed round: the transactions of its connections
/// that ended, its records, and where it ended in the input.
struct Processed {
    done: Vec<Transaction>,
    records: Vec<Record>,
    end_offset: u64,
}

/// Processed rounds queued for delivery at which the processing thread delivers
/// instead of leaving it to whichever thread waits: two threads that never wait for
/// each other (evenly matched) would otherwise hold every transaction until one does,
/// the end at worst. The 1 GB benchmark pcap queues up to 13–45 rounds in a calm
/// minute, up to 79 in the host's slow stretches.
const MAX_UNDELIVERED: usize = 64;

/// Finished transactions on their way from the processing thread to the sink, handed
/// over by whichever of the two threads has nothing else to do (see
/// [`Work::parsed_beside`]). Both only ever try the delivery lock: a thread with work
/// of its own never waits for the other's delivery.
struct Outbox<'d, 's> {
    /// Processed rounds not yet taken in by the delivery, oldest first.
    inbox: Mutex<Vec<Processed>>,
    /// Held while taking in and delivering.
    delivery: Mutex<(&'d mut Delivery, &'d mut Sink<'s>)>,
    /// Delivered batches (what the sink left of them), to be dropped on the
    /// processing thread, where they were built.
    spent: Mutex<Vec<Vec<Transaction>>>,
    /// The sink's first error.
    error: Mutex<Option<io::Error>>,
    failed: AtomicBool,
}

impl<'d, 's> Outbox<'d, 's> {
    fn new(delivery: &'d mut Delivery, sink: &'d mut Sink<'s>) -> Self {
        Outbox {
            inbox: Mutex::new(Vec::new()),
            delivery: Mutex::new((delivery, sink)),
            spent: Mutex::new(Vec::new()),
            error: Mutex::new(None),
            failed: AtomicBool::new(false),
        }
    }

    /// Queues a processed round's finished transactions and records, and drops the
    /// batches delivered since the last call (called on the processing thread). When
    /// [`MAX_UNDELIVERED`] rounds are queued, neither thread has had a moment for
    /// delivery that long: this one then delivers everything ready.
    fn post(&self, done: Vec<Transaction>, round: &mut Round) {
        let queued = {
            let mut inbox = lock(&self.inbox);
            inbox.push(Processed {
                done,
                records: std::mem::take(&mut round.records),
                end_offset: round.end_offset,
            });
            inbox.len()
        };
        let spent = std::mem::take(&mut *lock(&self.spent));
        drop(spent); // outside the lock
        if queued >= MAX_UNDELIVERED {
            while self.deliver_one() {}
        }
    }

    /// Delivers one batch of transactions that has waited long enough, unless the
    /// other thread is delivering; whether it did.
    fn deliver_one(&self) -> bool {
        let Ok(mut guard) = self.delivery.try_lock() else {
            return false;
        };
        let (delivery, sink) = &mut *guard;
        for p in std::mem::take(&mut *lock(&self.inbox)) {
            delivery.take_in(p.done, p.records, p.end_offset);
        }
        match delivery.deliver_ready(sink) {
            Ok(Some(spent)) => {
                lock(&self.spent).push(spent);
                !self.failed()
            }
            Ok(None) => false,
            Err(e) => {
                lock(&self.error).get_or_insert(e);
                self.failed.store(true, Ordering::Relaxed);
                false
            }
        }
    }

    /// Whether the sink failed: both threads stop.
    fn failed(&self) -> bool {
        self.failed.load(Ordering::Relaxed)
    }

    /// Takes in the last processed rounds (delivering what is ready) once both threads
    /// are done; the sink's first error.
    fn finish(self) -> io::Result<()> {
        while self.deliver_one() {}
        match self.error.into_inner().unwrap_or_else(|e| e.into_inner()) {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

/// Locks a mutex whose data stays consistent whatever panics (a panic is passed on
/// by the thread scope anyway).
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Runs the round's segments through their shards (emptying its batches); returns the
/// transactions of connections that ended.
fn process(workers: &Workers, tables: &mut [FlowTable], round: &mut Round) -> Vec<Transaction> {
    let chunks = &round.chunks;
    let shard = |(table, batch): (&mut FlowTable, &mut Batch)| {
        for (m, p) in batch.metas.iter().zip(&batch.payloads) {
            let from = &chunks[p.chunk as usize];
            table.segment(m, &from[p.start as usize..][..p.len as usize]);
        }
        batch.metas.clear();
        batch.payloads.clear();
        table.take_done()
    };
    let batches = &mut round.batches;
    let done = match workers {
        // The first table's list as it is (here there is one: see `shards`), not
        // copied into another.
        Workers::Here => tables
            .iter_mut()
            .zip(batches.iter_mut())
            .map(shard)
            .reduce(|mut all, mut more| {
                all.append(&mut more);
                all
            })
            .unwrap_or_default(),
        Workers::Pool(pool) => pool.install(|| {
            tables
                .par_iter_mut()
                .zip(batches.par_iter_mut())
                .flat_map_iter(shard)
                .collect()
        }),
    };
    // The reader reuses a chunk once nothing holds it.
    round.chunks.clear();
    done
}

/// Where `payload` will be found by the workers: in `chunk`, the reader's shared input
/// chunk it lies in (added to the round's `chunks` once). `None` if it lies elsewhere,
/// which the reader never does (packet data is parsed in place).
fn payload_of(
    payload: &[u8],
    chunk: &SharedChunk,
    chunks: &mut Vec<SharedChunk>,
) -> Option<Payload> {
    let range = chunk.range_of(payload)?;
    if !chunks.last().is_some_and(|last| last.same(chunk)) {
        chunks.push(chunk.clone());
    }
    Some(Payload {
        chunk: (chunks.len() - 1) as u32,
        start: range.start as u32,
        len: payload.len() as u32,
    })
}

/// Reads frames, decodes them down to TCP and fills rounds of per-shard batches.
struct RoundReader {
    reader: CaptureReader,
    shards: usize,
    totals: ReadTotals,
    error: Option<ReadStop>,
    isb_drops: std::collections::HashMap<u32, u64>,
    done: bool,
    /// Per interface id of the current section: is it l7rec's TLS plaintext interface?
    tls_ifaces: Vec<bool>,
    /// Packets skipped per (interface id, link type) the decoder does not know: a
    /// capture of only those used to give an empty report and no word why. (The
    /// link type is part of the key because ids restart in each pcapng section.)
    unsupported: std::collections::BTreeMap<(u32, u16), u64>,
}

impl RoundReader {
    fn new(reader: CaptureReader, shards: usize) -> Self {
        RoundReader {
            reader,
            shards,
            totals: ReadTotals::default(),
            error: None,
            isb_drops: Default::default(),
            done: false,
            tls_ifaces: Vec::new(),
            unsupported: Default::default(),
        }
    }

    fn empty_round(&self) -> Round {
        Round {
            batches: (0..self.shards).map(|_| Batch::default()).collect(),
            chunks: Vec::new(),
            records: Vec::new(),
            end_offset: 0,
        }
    }

    /// Fills `round` (empty) until it is full or the input ends; `None` when there
    /// was nothing left.
    fn fill(&mut self, mut round: Round) -> Option<Round> {
        if self.done {
            return None;
        }
        let (mut round_bytes, mut round_segments) = (0usize, 0usize);
        let totals = &mut self.totals;
        loop {
            let mut unknown_iface = None;
            // `advance` and `packet`, not `next_event`: a packet is read in place.
            let Some(step) = self.reader.advance() else {
                self.done = true;
                break;
            };
            match step {
                Ok(Step::Packet) => {
                    let Some(p) = self.reader.packet() else {
                        continue;
                    };
                    totals.packets += 1;
                    let seg = match tcp_segment(p.linktype, p.data) {
                        Ok(seg) => seg,
                        Err(skip) => {
                            if skip == Skip::LinkType {
                                *self
                                    .unsupported
                                    .entry((p.interface_id, p.linktype))
                                    .or_default() += 1;
                            }
                            let c = &mut totals.skipped;
                            *match skip {
                                Skip::LinkType => &mut c.link_type,
                                Skip::NotIp => &mut c.not_ip,
                                Skip::NotTcp => &mut c.not_tcp,
                                Skip::Fragment => &mut c.fragments,
                                Skip::Malformed => &mut c.malformed,
                            } += 1;
                            continue;
                        }
                    };
                    let meta = SegmentMeta {
                        packet_no: totals.packets,
                        ts_ns: p.ts_ns,
                        src: Endpoint::of(seg.src),
                        dst: Endpoint::of(seg.dst),
                        seq: seg.seq,
                        syn: seg.syn,
                        ack: seg.ack,
                        fin: seg.fin,
                        rst: seg.rst,
                        truncated: seg.truncated.min(u32::MAX as usize) as u32,
                        tls: self.tls_ifaces.get(p.interface_id as usize) == Some(&true),
                    };
                    // The flow table would ignore it: not worth passing on.
                    if meta.only_acknowledges(seg.payload) {
                        continue;
                    }
                    let Some(payload) = payload_of(seg.payload, p.chunk, &mut round.chunks) else {
                        debug_assert!(false, "packet data outside the reader's chunk");
                        totals.skipped.malformed += 1;
                        continue;
                    };
                    let shard = if self.shards == 1 {
                        0
                    } else {
                        shard_of(meta.src, meta.dst, self.shards)
                    };
                    let batch = &mut round.batches[shard];
                    batch.payloads.push(payload);
                    batch.metas.push(meta);
                    if p.interface_id as usize >= self.tls_ifaces.len() {
                        // Interface described in this very call: patched below.
                        unknown_iface = Some((shard, batch.metas.len() - 1, p.interface_id));
                    }
                    round_bytes += seg.payload.len();
                    round_segments += 1;
                }
                Ok(Step::Other) => match self.reader.take_event() {
                    Some(Event::Records(records)) => {
                        for r in records {
                            match r {
                                Record::Stats(s) => totals.recorder_stats = Some(s),
                                r @ (Record::Process(_) | Record::Connection(_)) => {
                                    round.records.push(r)
                                }
                                Record::Syscall(_) | Record::Unknown { .. } => {}
                            }
                        }
                    }
                    Some(Event::BadRecords { .. }) => totals.bad_records += 1,
                    Some(Event::InterfaceStats(s)) => {
                        // Counters are cumulative: the last block per interface counts.
                        self.isb_drops
                            .insert(s.interface_id, s.os_drop.unwrap_or(0));
                    }
                    Some(Event::Packet(_)) | None => {}
                },
                Err(e @ ReadError::Unfinished { .. }) => {
                    self.error = Some(ReadStop::Unfinished(e.to_string()))
                }
                Err(e) => {
                    self.error = Some(ReadStop::Damaged(locate(e, self.reader.compression())))
                }
            }
            if let Some((shard, i, id)) = unknown_iface {
                self.tls_ifaces = self
                    .reader
                    .interfaces()
                    .map(|i| i.name == flows::TLS_INTERFACE)
                    .collect();
                round.batches[shard].metas[i].tls = self.tls_ifaces.get(id as usize) == Some(&true);
            }
            if round_bytes >= ROUND_BYTES
                || round_segments >= ROUND_SEGMENTS
                || round.records.len() >= ROUND_SEGMENTS
            {
                break;
            }
        }
        round.end_offset = self.reader.offset();
        (round_segments > 0 || !round.records.is_empty()).then_some(round)
    }

    /// Reading counters, why reading stopped early if it did, and the interfaces
    /// skipped for their link type.
    fn finish(mut self) -> (ReadTotals, Option<ReadStop>, Vec<UnsupportedLink>) {
        self.totals.bytes = self.reader.offset();
        self.totals.isb_os_drops = self.isb_drops.values().sum();
        // A legacy pcap has no interface ids: its header's link type is the file's.
        let pcapng = self.reader.format() == l7rec_capture::Format::PcapNg;
        let unsupported = self
            .unsupported
            .into_iter()
            .map(|((id, linktype), packets)| UnsupportedLink {
                interface: pcapng.then_some(id),
                linktype,
                packets,
            })
            .collect();
        (self.totals, self.error, unsupported)
    }
}

#[cfg(test)]
mod tests {
    use super::{Batch, Delivery, Outbox, Round, Spares, Transaction, UnsupportedLink};
    use super::{MAX_UNDELIVERED, RECORD_LAG_BYTES, SPARE_BYTES, SPARE_ROUNDS};
    use crate::report::sample_tx;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// Two threads that never wait for each other never call `deliver_one`: the
    /// processing thread's posts then deliver, so that no more than
    /// `MAX_UNDELIVERED` rounds (and those within the records' lag) are held.
    #[test]
    fn posts_deliver_when_neither_thread_waits() {
        const ROUND: u64 = 1 << 20;
        let mut delivery = Delivery::new(0);
        let delivered = AtomicUsize::new(0);
        let mut sink = |batch: &mut Vec<Transaction>| {
            delivered.fetch_add(batch.len(), Ordering::Relaxed);
            Ok(())
        };
        let outbox = Outbox::new(&mut delivery, &mut sink);
        let lag = (RECORD_LAG_BYTES / ROUND) as usize;
        let mut most = 0;
        for i in 1..=1000 {
            let mut round = Round {
                batches: Vec::new(),
                chunks: Vec::new(),
                records: Vec::new(),
                end_offset: i as u64 * ROUND,
            };
            outbox.post(vec![sample_tx("GET", None, "/")], &mut round);
            most = most.max(i - delivered.load(Ordering::Relaxed));
        }
        assert!(most <= MAX_UNDELIVERED + lag, "{most} rounds undelivered");
        outbox.finish().unwrap();
        assert_eq!(delivered.load(Ordering::Relaxed), 1000 - lag);
    }

    /// A round numbered `id` (its end offset) whose buffers hold `segments` segments.
    fn round_of(id: u64, segments: usize) -> Round {
        Round {
            batches: vec![Batch {
                metas: Vec::with_capacity(segments),
                payloads: Vec::with_capacity(segments),
            }],
            chunks: Vec::new(),
            records: Vec::new(),
            end_offset: id,
        }
    }

    /// Emptied rounds are filled again oldest first, and only once `SPARE_BYTES` of
    /// them (or `SPARE_ROUNDS`) are held: never the one just emptied.
    #[test]
    fn spare_rounds_are_reused_oldest_first_past_the_budget() {
        const NEW: u64 = u64::MAX;
        let segments = 1000;
        let per_round = round_of(0, segments).buffer_bytes();
        let held = SPARE_BYTES.div_ceil(per_round) as u64;
        let mut spares = Spares::new();
        for id in 0..held {
            assert_eq!(spares.take(|| round_of(NEW, 0)).end_offset, NEW);
            spares.put(round_of(id, segments));
        }
        for id in 0..3 * held {
            assert_eq!(spares.take(|| round_of(NEW, 0)).end_offset, id);
            spares.put(round_of(held + id, segments));
        }

        // Rounds that hold little: at most SPARE_ROUNDS of them.
        let mut spares = Spares::new();
        for id in 0..SPARE_ROUNDS as u64 {
            assert_eq!(spares.take(|| round_of(NEW, 0)).end_offset, NEW);
            spares.put(round_of(id, 1));
        }
        assert_eq!(spares.take(|| round_of(NEW, 0)).end_offset, 0);
    }

    #[test]
    fn unsupported_link_warnings_name_interface_and_link_type() {
        let link = |interface, linktype, packets| UnsupportedLink {
            interface,
            linktype,
            packets,
        };
        assert_eq!(
            link(Some(0), 105, 18).to_string(),
            "interface 0 (link type 105, IEEE 802.11) is not supported: 18 packets skipped"
        );
        assert_eq!(
            link(None, 105, 1).to_string(),
            "link type 105 (IEEE 802.11) is not supported: 1 packet skipped"
        );
        assert_eq!(
            link(Some(3), 4242, 2).to_string(),
            "interface 3 (link type 4242) is not supported: 2 packets skipped"
        );
        assert_eq!(
            link(None, 4242, 2).to_string(),
            "link type 4242 is not supported: 2 packets skipped"
        );
    }
}
