//! Reading a capture and spreading its TCP segments over shards of connections.
//!
//! One thread reads (decompression and block parsing are sequential by nature),
//! decodes each frame down to TCP and appends the segment to the batch of the shard
//! its connection hashes to. Full rounds of batches go through a bounded channel to
//! the rayon pool, which runs the shards in parallel; a connection always lives in
//! the same shard, so shards never share state. After each round, the transactions of
//! connections that ended are attributed to processes, sorted by start time and handed
//! to the caller's sink: memory is bounded by two rounds in flight plus the open
//! connections' own buffers, whatever the size of the file.

use std::fs::File;
use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher, Hasher};
use std::io::{self, Read};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::sync_channel;
use std::sync::Arc;

use l7rec_capture::{CaptureReader, Event, Record, RecorderStats};
use rayon::prelude::*;

use crate::attribution::Attribution;
use crate::decode::{tcp_segment, Skip};
use crate::flows::{self, FlowTable, FlowTotals, SegmentMeta};
use crate::transaction::Transaction;
use crate::AnalyzeError;

/// Receives transactions batch by batch, each batch sorted by start time.
pub type Sink<'a> = dyn FnMut(Vec<Transaction>) -> io::Result<()> + 'a;

/// Payload bytes per round before it is handed to the workers.
const ROUND_BYTES: usize = 8 << 20;
/// Segments per round before it is handed to the workers.
const ROUND_SEGMENTS: usize = 64 * 1024;
/// Shards per worker thread: more shards than threads evens out uneven connections.
const SHARDS_PER_THREAD: usize = 8;

#[derive(Default)]
struct Batch {
    metas: Vec<SegmentMeta>,
    data: Vec<u8>,
}

/// What the reading thread hands over: segments per shard, and the metadata records
/// read along with them (applied before the segments are processed).
struct Round {
    batches: Vec<Batch>,
    records: Vec<Record>,
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

/// Counters of analyzing one file (its transactions went to the sink).
pub struct FileAnalysis {
    /// Reading counters.
    pub read: ReadTotals,
    /// Connection counters.
    pub flows: FlowTotals,
    /// Why reading stopped early, if it did (everything before was analyzed).
    pub read_error: Option<String>,
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

/// Deterministic hashing: the same file always spreads the same way.
type ShardHasher = BuildHasherDefault<DefaultHasher>;

/// Shard of a connection, the same for both directions.
fn shard_of(a: SocketAddr, b: SocketAddr, shards: usize, seed: &ShardHasher) -> usize {
    let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
    let mut h = seed.build_hasher();
    std::hash::Hash::hash(&lo, &mut h);
    std::hash::Hash::hash(&hi, &mut h);
    (h.finish() % shards as u64) as usize
}

/// Attributes, sorts and hands over a batch of finished transactions.
fn deliver(
    mut txs: Vec<Transaction>,
    attribution: &Attribution,
    flow_base: u64,
    sink: &mut Sink<'_>,
) -> io::Result<()> {
    if txs.is_empty() {
        return Ok(());
    }
    for t in &mut txs {
        t.flow_id += flow_base;
        if !attribution.is_empty() {
            attribution.attribute(t);
        }
    }
    txs.sort_by_key(|t| (t.ts_ns().unwrap_or(u64::MAX), t.flow_id));
    sink(txs)
}

/// Analyzes one capture file on `pool`, handing transactions to `sink` as their
/// connections end. Flow ids are offset by `flow_base`. `on_progress(bytes_read)` is
/// called per round.
pub fn analyze_file(
    path: &Path,
    pool: &rayon::ThreadPool,
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
    let reader = CaptureReader::new(CountingRead {
        inner: file,
        count: count.clone(),
    })
    .map_err(|e| AnalyzeError::Read {
        path: path.to_owned(),
        source: e,
    })?;
    let shards = pool.current_num_threads().max(1) * SHARDS_PER_THREAD;
    let (tx, rx) = sync_channel::<Round>(2);
    let output_error = |source| AnalyzeError::Output { source };

    std::thread::scope(|s| {
        let producer = s.spawn(move || read_rounds(reader, shards, tx));
        let mut tables: Vec<FlowTable> = (0..shards).map(|_| FlowTable::new(cfg)).collect();
        let mut attribution = Attribution::default();
        let mut failed = None;
        for round in rx {
            for r in &round.records {
                match r {
                    Record::Process(p) => attribution.add_process(p),
                    Record::Connection(c) => attribution.add_connection(c),
                    _ => {}
                }
            }
            let done: Vec<Transaction> = pool.install(|| {
                tables
                    .par_iter_mut()
                    .zip(round.batches.into_par_iter())
                    .flat_map_iter(|(table, batch)| {
                        for m in &batch.metas {
                            let (start, len) = (m.payload.0 as usize, m.payload.1 as usize);
                            table.segment(m, &batch.data[start..start + len]);
                        }
                        table.take_done()
                    })
                    .collect()
            });
            on_progress(count.load(Ordering::Relaxed));
            if let Err(e) = deliver(done, &attribution, flow_base, sink) {
                // Dropping the receiver stops the reader; report after it ends.
                failed = Some(e);
                break;
            }
        }
        let (read, read_error) = match producer.join() {
            Ok(r) => r,
            Err(panic) => std::panic::resume_unwind(panic),
        };
        if let Some(e) = failed {
            return Err(output_error(e));
        }
        let finished: Vec<(Vec<Transaction>, FlowTotals)> =
            pool.install(|| tables.into_par_iter().map(FlowTable::finish).collect());
        let mut flows = FlowTotals::default();
        let mut rest = Vec::new();
        for (txs, t) in finished {
            rest.extend(txs);
            flows.add(&t);
        }
        deliver(rest, &attribution, flow_base, sink).map_err(output_error)?;
        Ok(FileAnalysis {
            read,
            flows,
            read_error,
        })
    })
}

/// The reading thread: frames → TCP segments → per-shard batches → rounds.
fn read_rounds(
    mut reader: CaptureReader,
    shards: usize,
    tx: std::sync::mpsc::SyncSender<Round>,
) -> (ReadTotals, Option<String>) {
    let mut totals = ReadTotals::default();
    let seed = ShardHasher::default();
    let new_round = || Round {
        batches: (0..shards).map(|_| Batch::default()).collect(),
        records: Vec::new(),
    };
    let mut round = new_round();
    let (mut round_bytes, mut round_segments) = (0usize, 0usize);
    let mut error = None;
    let mut isb_drops = std::collections::HashMap::new();
    while let Some(ev) = reader.next_event() {
        match ev {
            Ok(Event::Packet(p)) => {
                totals.packets += 1;
                let seg = match tcp_segment(p.linktype, p.data) {
                    Ok(seg) => seg,
                    Err(skip) => {
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
                let batch = &mut round.batches[shard_of(seg.src, seg.dst, shards, &seed)];
                let start = batch.data.len() as u32;
                batch.data.extend_from_slice(seg.payload);
                batch.metas.push(SegmentMeta {
                    packet_no: totals.packets,
                    ts_ns: p.ts_ns,
                    src: seg.src,
                    dst: seg.dst,
                    seq: seg.seq,
                    syn: seg.syn,
                    ack: seg.ack,
                    fin: seg.fin,
                    rst: seg.rst,
                    truncated: seg.truncated.min(u32::MAX as usize) as u32,
                    payload: (start, seg.payload.len() as u32),
                });
                round_bytes += seg.payload.len();
                round_segments += 1;
                if round_bytes >= ROUND_BYTES
                    || round_segments >= ROUND_SEGMENTS
                    || round.records.len() >= ROUND_SEGMENTS
                {
                    let full = std::mem::replace(&mut round, new_round());
                    if tx.send(full).is_err() {
                        break;
                    }
                    round_bytes = 0;
                    round_segments = 0;
                }
            }
            Ok(Event::Records(records)) => {
                for r in records {
                    match r {
                        Record::Stats(s) => totals.recorder_stats = Some(s),
                        r @ (Record::Process(_) | Record::Connection(_)) => round.records.push(r),
                        Record::Syscall(_) | Record::Unknown { .. } => {}
                    }
                }
            }
            Ok(Event::BadRecords { .. }) => totals.bad_records += 1,
            Ok(Event::InterfaceStats(s)) => {
                // Counters are cumulative: the last block per interface counts.
                isb_drops.insert(s.interface_id, s.os_drop.unwrap_or(0));
            }
            Err(e) => error = Some(e.to_string()),
        }
    }
    totals.bytes = reader.offset();
    totals.isb_os_drops = isb_drops.values().sum();
    if round_segments > 0 || !round.records.is_empty() {
        let _ = tx.send(round);
    }
    (totals, error)
}
