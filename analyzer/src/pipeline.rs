//! Reading a capture and spreading its TCP segments over shards of connections.
//!
//! One thread reads (decompression and block parsing are sequential by nature),
//! decodes each frame down to TCP and appends the segment to the batch of the shard
//! its connection hashes to. Full rounds of batches go through a bounded channel to
//! the rayon pool, which runs the shards in parallel; a connection always lives in
//! the same shard, so shards never share state. Memory is bounded by two rounds in
//! flight plus the connections' own buffers.

use std::fs::File;
use std::hash::{BuildHasher, Hasher};
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
use crate::flows::{FlowTable, FlowTotals, SegmentMeta};
use crate::transaction::Transaction;
use crate::AnalyzeError;

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

/// Result of analyzing one file.
pub struct FileAnalysis {
    /// Transactions found, attributed to processes where the file says.
    pub transactions: Vec<Transaction>,
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

/// Shard of a connection, the same for both directions.
fn shard_of(a: SocketAddr, b: SocketAddr, shards: usize, seed: &impl BuildHasher) -> usize {
    let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
    let mut h = seed.build_hasher();
    std::hash::Hash::hash(&lo, &mut h);
    std::hash::Hash::hash(&hi, &mut h);
    (h.finish() % shards as u64) as usize
}

/// Analyzes one capture file on `pool`. `on_progress(bytes_read)` is called per round.
pub fn analyze_file(
    path: &Path,
    pool: &rayon::ThreadPool,
    on_progress: &(dyn Fn(u64) + Sync),
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
    let (tx, rx) = sync_channel::<Vec<Batch>>(2);

    std::thread::scope(|s| {
        let producer = s.spawn(move || read_rounds(reader, shards, tx));
        let mut tables: Vec<FlowTable> = (0..shards).map(|i| FlowTable::new(i, shards)).collect();
        for round in rx {
            pool.install(|| {
                tables
                    .par_iter_mut()
                    .zip(round.into_par_iter())
                    .for_each(|(table, batch)| {
                        for m in &batch.metas {
                            let (start, len) = (m.payload.0 as usize, m.payload.1 as usize);
                            table.segment(m, &batch.data[start..start + len]);
                        }
                    })
            });
            on_progress(count.load(Ordering::Relaxed));
        }
        let (read, attribution, read_error) = match producer.join() {
            Ok(r) => r,
            Err(panic) => std::panic::resume_unwind(panic),
        };
        let finished: Vec<(Vec<Transaction>, FlowTotals)> =
            pool.install(|| tables.into_par_iter().map(FlowTable::finish).collect());
        let mut flows = FlowTotals::default();
        let mut transactions = Vec::new();
        for (txs, t) in finished {
            transactions.extend(txs);
            flows.add(&t);
        }
        if !attribution.is_empty() {
            pool.install(|| {
                transactions
                    .par_iter_mut()
                    .for_each(|t| attribution.attribute(t))
            });
        }
        transactions.par_sort_unstable_by_key(|t| (t.ts_ns().unwrap_or(u64::MAX), t.flow_id));
        Ok(FileAnalysis {
            transactions,
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
    tx: std::sync::mpsc::SyncSender<Vec<Batch>>,
) -> (ReadTotals, Attribution, Option<String>) {
    let mut totals = ReadTotals::default();
    let mut attribution = Attribution::default();
    let seed = std::hash::RandomState::new();
    let new_round = || (0..shards).map(|_| Batch::default()).collect::<Vec<_>>();
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
                let batch = &mut round[shard_of(seg.src, seg.dst, shards, &seed)];
                let start = batch.data.len() as u32;
                batch.data.extend_from_slice(seg.payload);
                batch.metas.push(SegmentMeta {
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
                if round_bytes >= ROUND_BYTES || round_segments >= ROUND_SEGMENTS {
                    let full = std::mem::replace(&mut round, new_round());
                    if tx.send(full).is_err() {
                        break;
                    }
                    round_bytes = 0;
                    round_segments = 0;
                }
            }
            Ok(Event::Records(records)) => {
                for r in &records {
                    match r {
                        Record::Process(p) => attribution.add_process(p),
                        Record::Connection(c) => attribution.add_connection(c),
                        Record::Stats(s) => totals.recorder_stats = Some(s.clone()),
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
    if round_segments > 0 {
        let _ = tx.send(round);
    }
    (totals, attribution, error)
}
