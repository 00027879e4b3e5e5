//! Aligned columns for a terminal, printed in chunks.

use std::io::{self, Write};

use super::{addr, ms, opt, proc_label, rfc3339_ns, TABLE_CHUNK};
use crate::transaction::Transaction;

const HEADER: [&str; 12] = [
    "TIME",
    "CLIENT",
    "CLIENT PROC",
    "SERVER",
    "SERVER PROC",
    "METHOD",
    "STATUS",
    "LAT ms",
    "REQ B",
    "RESP B",
    "FLAGS",
    "URL",
];

/// Rows waiting to be printed, and column widths that only ever grow, so chunks
/// printed later stay aligned with earlier ones as far as possible.
pub(super) struct Table {
    rows: Vec<[String; 12]>,
    widths: [usize; 12],
    header_done: bool,
}

impl Default for Table {
    fn default() -> Self {
        Table {
            rows: Vec::new(),
            widths: HEADER.map(str::len),
            header_done: false,
        }
    }
}

fn row(t: &Transaction) -> [String; 12] {
    let time = t
        .ts_ns()
        .map(|ns| rfc3339_ns(ns)[11..23].to_owned())
        .unwrap_or_else(|| "-".into());
    let url = super::url::display(t);
    [
        time,
        addr(t.client),
        proc_label(&t.client_process),
        addr(t.server),
        proc_label(&t.server_process),
        t.method.clone().unwrap_or_else(|| "-".into()),
        opt(t.status),
        ms(t.latency_ns()).map_or("-".into(), |v| format!("{v:.3}")),
        opt(t.req_body_bytes),
        opt(t.resp_body_bytes),
        t.flags
            .iter()
            .map(|f| f.as_str())
            .collect::<Vec<_>>()
            .join(","),
        url,
    ]
}

impl Table {
    pub(super) fn push(&mut self, txs: &[Transaction], out: &mut dyn Write) -> io::Result<()> {
        for t in txs {
            self.rows.push(row(t));
            if self.rows.len() >= TABLE_CHUNK {
                self.print(out)?;
            }
        }
        Ok(())
    }

    pub(super) fn finish(mut self, out: &mut dyn Write) -> io::Result<()> {
        self.print(out)
    }

    fn print(&mut self, out: &mut dyn Write) -> io::Result<()> {
        for r in &self.rows {
            for (w, c) in self.widths.iter_mut().zip(r.iter()) {
                *w = (*w).max(c.chars().count());
            }
        }
        if !self.header_done {
            self.header_done = true;
            self.line(&HEADER, out)?;
        }
        for r in std::mem::take(&mut self.rows) {
            self.line(&r, out)?;
        }
        Ok(())
    }

    fn line<S: AsRef<str>>(&self, cells: &[S; 12], out: &mut dyn Write) -> io::Result<()> {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            let (c, w) = (c.as_ref(), self.widths[i]);
            match i {
                11 => s.push_str(c),
                // Numbers align right.
                6..=9 => s.push_str(&format!("{c:>w$}  ")),
                _ => s.push_str(&format!("{c:<w$}  ")),
            }
        }
        writeln!(out, "{}", s.trim_end())
    }
}
