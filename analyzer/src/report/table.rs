//! Aligned columns for a terminal, printed in chunks. Cells are escaped
//! ([`escape_text`]): the table is read on a terminal, and its text comes from captures.

use std::borrow::Cow;
use std::io::{self, Write};

use super::{addr, escape_text, ms, opt, proc_label, rfc3339_ns, TABLE_CHUNK};
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
    let cells = [
        time,
        addr(t.client),
        proc_label(&t.client_process),
        addr(t.server),
        proc_label(&t.server_process),
        t.method.as_deref().unwrap_or("-").to_owned(),
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
    ];
    // Every cell, since the method, process names and URL come from the capture and
    // the rest costs only a scan: no terminal control sequence reaches the screen.
    cells.map(|c| match escape_text(&c) {
        Cow::Borrowed(_) => c,
        Cow::Owned(escaped) => escaped,
    })
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::sample_tx;
    use crate::transaction::ProcessRef;

    fn render(txs: &[Transaction]) -> String {
        let mut out = Vec::new();
        let mut table = Table::default();
        table.push(txs, &mut out).expect("push");
        table.finish(&mut out).expect("finish");
        String::from_utf8(out).expect("UTF-8")
    }

    #[test]
    fn capture_text_is_escaped_in_every_cell() {
        let mut t = sample_tx("GET", Some("h\x1b]0;title\x07"), "/\x1b[31mRED\r\t\0\x7f");
        t.client_process = Some(ProcessRef {
            pid: 7,
            comm: Some("cu\x1b[2Jrl".into()),
        });
        let s = render(&[t]);
        assert!(
            !s.chars().any(|c| c.is_control() && c != '\n'),
            "control characters reach the terminal: {s:?}"
        );
        assert!(s.contains("cu\\x1b[2Jrl[7]"), "{s}");
        assert!(
            s.ends_with("  h\\x1b]0;title\\x07/\\x1b[31mRED\\r\\t\\x00\\x7f\n"),
            "{s}"
        );
    }

    #[test]
    fn a_tab_does_not_break_the_columns() {
        // A terminal moves a tab to the next multiple of 8, wherever the padding
        // (which counts it as one character) expected it: the escape has a known width.
        let mut tab = sample_tx("GET", Some("h"), "/x");
        tab.client_process = Some(ProcessRef {
            pid: 1,
            comm: Some("a\tb".into()),
        });
        let s = render(&[tab, sample_tx("GET", Some("h"), "/x")]);
        assert!(!s.contains('\t'), "{s:?}");
        let line = s.lines().nth(1).expect("row");
        assert!(line.contains("  a\\tb[1]  "), "{line}");
        let starts: Vec<_> = s.lines().map(|l| l.find("10.0.0.2:8080")).collect();
        assert_eq!(starts[1], starts[2], "{s}");
    }
}
