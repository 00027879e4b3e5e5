//! `l7rec analyze`: runs the analyzer crate and writes the report.

use std::fs::File;
use std::io::{self, BufWriter, IsTerminal, Write};
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use l7rec_analyzer::report::{Format, Kind, ReportWriter};
use l7rec_analyzer::AnalyzeError;

use crate::cli::{AnalyzeArgs, ReportFormat};
use crate::files::same_file;

/// Exit status when the report is complete but some input was cut short or damaged:
/// the report covers what came before (as tshark, which exits 2 then; 2 is clap's).
pub const EXIT_INPUT_DAMAGED: u8 = 3;

/// Runs the analysis and writes the report to stdout or `--output`; returns the exit
/// status: 0, or [`EXIT_INPUT_DAMAGED`].
pub fn run(args: AnalyzeArgs) -> Result<u8> {
    let files = inputs(&args.files)?;
    let sizes: Vec<u64> = files
        .iter()
        .map(|f| {
            std::fs::metadata(f)
                .with_context(|| format!("cannot read {}", f.display()))
                .map(|m| m.len())
        })
        .collect::<Result<_>>()?;
    let bar = progress_bar(sizes.iter().sum());
    let done_before: Vec<u64> = sizes
        .iter()
        .scan(0, |acc, s| {
            let before = *acc;
            *acc += s;
            Some(before)
        })
        .collect();
    let kind = if args.summary {
        Kind::Summary
    } else {
        Kind::Transactions(match args.format {
            ReportFormat::Table => Format::Table,
            ReportFormat::Json => Format::Json,
            ReportFormat::Csv => Format::Csv,
            ReportFormat::Har => Format::Har,
        })
    };
    let opts = l7rec_analyzer::Options {
        threads: args.threads.map(NonZeroUsize::get),
        without_headers: kind != Kind::Transactions(Format::Har),
    };
    // `-o -` is standard output, as for `record`.
    let output = args
        .output
        .as_ref()
        .filter(|p| p.as_path() != Path::new("-"));
    if let Some(p) = output {
        if let Some(input) = files.iter().find(|f| same_file(f, p)) {
            bail!(
                "-o {} is the input {}: refusing to overwrite a capture",
                p.display(),
                input.display()
            );
        }
    }
    // Send: either analysis thread may write the report (see `l7rec_analyzer::Sink`).
    let mut out: Box<dyn Write + Send> = match output {
        Some(p) => Box::new(BufWriter::new(
            File::create(p).with_context(|| format!("cannot create {}", p.display()))?,
        )),
        None => Box::new(BufWriter::new(io::stdout())),
    };
    let mut report = ReportWriter::new(kind, &mut out).context("writing the report")?;
    let mut rows = 0usize;
    let result = l7rec_analyzer::analyze_with(
        &files,
        &opts,
        &|file, bytes| {
            if let Some(b) = &bar {
                b.set_position(done_before[file] + bytes);
            }
        },
        &mut |batch| {
            rows += batch.len();
            report.write(batch)
        },
    );
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let outcome = match result {
        // A closed pipe (`| head`) is the reader's choice, not an error.
        Err(AnalyzeError::Output { source }) if source.kind() == io::ErrorKind::BrokenPipe => {
            return Ok(0)
        }
        other => other?,
    };
    // One line per interface whose link type is not decoded: without it, a capture
    // of such an interface gives a report with no rows and no reason.
    for (path, link) in &outcome.unsupported_links {
        eprintln!("l7rec: warning: {}: {link}", path.display());
    }
    for (path, msg) in &outcome.unfinished {
        eprintln!("l7rec: warning: {}: {msg}", path.display());
    }
    for (path, err) in &outcome.read_errors {
        eprintln!(
            "l7rec: warning: {}: reading stopped early, analyzed what came before: {err}",
            path.display()
        );
    }
    match report.finish(&outcome) {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {}
        other => other.context("writing the report")?,
    }
    // An empty list says nothing about why (unless a warning above did); the summary
    // shows its totals itself.
    let warned = !outcome.unsupported_links.is_empty() || !outcome.read_errors.is_empty();
    if rows == 0 && kind != Kind::Summary && !warned {
        eprintln!("l7rec: note: {}", why_empty(&outcome.totals));
    }
    // After the report, so a script gets both the rows and a status that says they
    // may be incomplete.
    Ok(if outcome.read_errors.is_empty() {
        0
    } else {
        EXIT_INPUT_DAMAGED
    })
}

/// The files to read: `-` is standard input (`tcpdump -w - | l7rec analyze -`,
/// `ssh host cat cap.pcapng | l7rec analyze -`), opened as `/dev/stdin`, which reads a
/// pipe and a redirected file alike; messages name it so.
fn inputs(files: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let stdin = Path::new("-");
    let from_stdin = files.iter().filter(|f| *f == stdin).count();
    if from_stdin > 1 {
        bail!("- (standard input) can be read only once");
    }
    if from_stdin == 1 && io::stdin().is_terminal() {
        bail!(
            "- reads the capture from standard input, which is a terminal; \
             pipe or redirect a capture into it (tcpdump -w - ... | l7rec analyze -)"
        );
    }
    Ok(files
        .iter()
        .map(|f| {
            if f == stdin {
                PathBuf::from("/dev/stdin")
            } else {
                f.clone()
            }
        })
        .collect())
}

/// Why a transaction list came out empty, from what was read.
fn why_empty(t: &l7rec_analyzer::Totals) -> String {
    let count = |n: u64, what: &str| format!("{n} {what}{}", if n == 1 { "" } else { "s" });
    match (t.read.packets, t.flows.flows) {
        (0, _) => "no packets in the input, so no transactions".to_owned(),
        (p, 0) => format!(
            "no transactions: no TCP over IPv4/IPv6 in {}",
            count(p, "packet")
        ),
        (p, f) => format!(
            "no HTTP/1.x transactions in {} ({}); HTTP/2, TLS ciphertext (record it with \
             --tls for its plaintext) and other protocols are not decoded",
            count(f, "TCP connection"),
            count(p, "packet")
        ),
    }
}

/// A byte-based progress bar on stderr when it is a terminal and the input is large.
fn progress_bar(total: u64) -> Option<ProgressBar> {
    if !io::stderr().is_terminal() || total < (64 << 20) {
        return None;
    }
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} analyzing [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
        )
        .ok()?
        .progress_chars("=> "),
    );
    Some(bar)
}
