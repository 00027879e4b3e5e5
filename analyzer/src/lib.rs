//! # l7rec-analyzer
//!
//! Offline HTTP/1.x transaction analysis of captures: l7rec's own files and any
//! pcap/pcapng from tcpdump, tshark or Wireshark (link types Ethernet, Linux cooked
//! SLL and SLL2, raw IP, BSD loopback/null). No BPF and no privileges.
//!
//! Pipeline: [`l7rec_capture::CaptureReader`] → frame decoding down to TCP
//! (`decode`) → connections sharded over a rayon pool (`pipeline`) → per-direction
//! reassembly ([`l7rec_reassembly`]) → HTTP parsing ([`l7rec_http`]) → process
//! attribution from l7rec's connection records (`attribution`) → reports ([`report`]).

mod attribution;
pub mod decode;
mod flows;
mod pipeline;
pub mod report;
mod transaction;

use std::path::{Path, PathBuf};

use thiserror::Error;

pub use flows::FlowTotals;
pub use pipeline::{ReadStop, ReadTotals, Sink, SkipCounts, UnsupportedLink};
pub use transaction::{Flag, ProcessRef, Transaction};

/// Why an analysis could not run.
#[derive(Debug, Error)]
pub enum AnalyzeError {
    /// The file could not be opened.
    #[error("cannot open {path}: {source}")]
    Open {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not a readable capture.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: l7rec_capture::ReadError,
    },
    /// The sink (report output) failed.
    #[error("writing the report: {source}")]
    Output {
        /// The cause.
        source: std::io::Error,
    },
    /// The worker pool could not start.
    #[error("cannot start {threads} worker threads: {reason}")]
    Threads {
        /// Requested threads.
        threads: usize,
        /// The cause.
        reason: String,
    },
}

/// Options of an analysis.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Worker threads; `None` = one per core.
    pub threads: Option<usize>,
    /// Skip keeping request and response headers (they are needed only for HAR);
    /// parsing is then about twice as fast on small messages.
    pub without_headers: bool,
}

/// Counters over all analyzed files.
#[derive(Debug, Clone, Default)]
pub struct Totals {
    /// Reading counters (summed over files; the last recorder statistics kept).
    pub read: ReadTotals,
    /// Connection counters.
    pub flows: FlowTotals,
}

/// Everything an analysis found, kept in memory (see [`analyze_with`] to stream).
#[derive(Debug, Default)]
pub struct Analysis {
    /// Transactions of all files, each file's sorted by start time.
    pub transactions: Vec<Transaction>,
    /// Counters and read errors.
    pub outcome: Outcome,
}

/// Counters of an analysis, and the files whose reading stopped early.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Counters.
    pub totals: Totals,
    /// Files whose reading stopped early, with why (what preceded was analyzed).
    pub read_errors: Vec<(PathBuf, String)>,
    /// Compressed files that end without their end marker (a recorder killed or still
    /// writing), with where: all they hold was analyzed.
    pub unfinished: Vec<(PathBuf, String)>,
    /// Per file, the interfaces whose packets were skipped because their link type is
    /// not decoded (worth a warning: otherwise the report is just empty).
    pub unsupported_links: Vec<(PathBuf, UnsupportedLink)>,
}

/// Analyzes `files` in order and keeps every transaction.
pub fn analyze(
    files: &[impl AsRef<Path>],
    opts: &Options,
    on_progress: &(dyn Fn(usize, u64) + Sync),
) -> Result<Analysis, AnalyzeError> {
    let mut transactions = Vec::new();
    let outcome = analyze_with(files, opts, on_progress, &mut |batch| {
        transactions.append(batch);
        Ok(())
    })?;
    Ok(Analysis {
        transactions,
        outcome,
    })
}

/// Analyzes `files` in order, handing transactions to `sink` in batches as their
/// connections end (each batch sorted by start time), so memory stays bounded
/// however large the files are. `on_progress(file_index, bytes_read)` reports progress.
pub fn analyze_with(
    files: &[impl AsRef<Path>],
    opts: &Options,
    on_progress: &(dyn Fn(usize, u64) + Sync),
    sink: &mut pipeline::Sink<'_>,
) -> Result<Outcome, AnalyzeError> {
    let threads = match opts.threads {
        Some(n) => n.max(1),
        None => std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    let cfg = flows::Config {
        http: l7rec_http::Config {
            capture_headers: !opts.without_headers,
            ..Default::default()
        },
        ..Default::default()
    };
    let mut all = Outcome::default();
    for (i, path) in files.iter().enumerate() {
        let path = path.as_ref();
        // Flow ids (first packet numbers) stay unique across files.
        let base = (i as u64) << 40;
        let fa = pipeline::analyze_file(
            path,
            threads,
            cfg,
            base,
            &|bytes| on_progress(i, bytes),
            sink,
        )?;
        let r = &mut all.totals.read;
        r.packets += fa.read.packets;
        r.bytes += fa.read.bytes;
        r.isb_os_drops += fa.read.isb_os_drops;
        r.bad_records += fa.read.bad_records;
        let (s, o) = (&mut r.skipped, &fa.read.skipped);
        s.link_type += o.link_type;
        s.not_ip += o.not_ip;
        s.not_tcp += o.not_tcp;
        s.fragments += o.fragments;
        s.malformed += o.malformed;
        if fa.read.recorder_stats.is_some() {
            r.recorder_stats = fa.read.recorder_stats;
        }
        all.totals.flows.add(&fa.flows);
        all.unsupported_links.extend(
            fa.unsupported_links
                .into_iter()
                .map(|u| (path.to_owned(), u)),
        );
        match fa.read_error {
            Some(ReadStop::Damaged(e)) => all.read_errors.push((path.to_owned(), e)),
            Some(ReadStop::Unfinished(e)) => all.unfinished.push((path.to_owned(), e)),
            None => {}
        }
    }
    Ok(all)
}
