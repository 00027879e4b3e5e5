//! Per-endpoint statistics and totals, aggregated batch by batch. Text from the
//! capture (methods, URLs, process and source names) is escaped ([`escape_text`]) as
//! it is written: the summary is read on a terminal.

use std::collections::{BTreeMap, HashMap};
use std::io::{self, Write};

use super::{escape_text, opt};
use crate::transaction::{ProcessRef, Transaction};
use crate::Outcome;

pub(super) fn percentile(sorted: &[u64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1] as f64 / 1e6)
}

fn who(addr: std::net::SocketAddr, p: &Option<ProcessRef>, with_port: bool) -> String {
    match p {
        Some(ProcessRef { comm: Some(c), .. }) => c.to_string(),
        _ if with_port => addr.to_string(),
        _ => addr.ip().to_string(),
    }
}

#[derive(Default)]
struct Endpoint {
    count: u64,
    errors: u64,
    latencies: Vec<u64>,
    req_bytes: u64,
    resp_bytes: u64,
}

/// Aggregates transactions for the summary report.
#[derive(Default)]
pub(super) struct Summary {
    /// (method, URL without query) → statistics.
    eps: BTreeMap<(String, String), Endpoint>,
    statuses: BTreeMap<String, u64>,
    clients: HashMap<String, u64>,
    servers: HashMap<String, u64>,
    count: u64,
    req_total: u64,
    resp_total: u64,
}

impl Summary {
    pub(super) fn add(&mut self, txs: &[Transaction]) {
        for t in txs {
            // The table's URL without its query: the same URL everywhere.
            let mut url = super::url::display(t);
            if let Some(q) = url.find('?') {
                url.truncate(q);
            }
            let key = (t.method.as_deref().unwrap_or("-").to_owned(), url);
            let e = self.eps.entry(key).or_default();
            e.count += 1;
            e.errors += u64::from(t.is_error());
            if let Some(l) = t.latency_ns() {
                e.latencies.push(l);
            }
            e.req_bytes += t.req_body_bytes.unwrap_or(0);
            e.resp_bytes += t.resp_body_bytes.unwrap_or(0);
            self.count += 1;
            self.req_total += t.req_body_bytes.unwrap_or(0);
            self.resp_total += t.resp_body_bytes.unwrap_or(0);
            *self.statuses.entry(opt(t.status)).or_default() += 1;
            *self
                .clients
                .entry(who(t.client, &t.client_process, false))
                .or_default() += 1;
            *self
                .servers
                .entry(who(t.server, &t.server_process, true))
                .or_default() += 1;
        }
    }

    pub(super) fn write(mut self, outcome: &Outcome, out: &mut dyn Write) -> io::Result<()> {
        writeln!(out, "Endpoints")?;
        writeln!(
            out,
            "{:>8} {:>7} {:>10} {:>10} {:>10} {:>12} {:>12}  ENDPOINT",
            "COUNT", "ERR %", "P50 ms", "P90 ms", "P99 ms", "REQ B", "RESP B"
        )?;
        let fmt = |v: Option<f64>| v.map_or("-".to_owned(), |v| format!("{v:.3}"));
        for ((method, url), e) in &mut self.eps {
            e.latencies.sort_unstable();
            writeln!(
                out,
                "{:>8} {:>7.1} {:>10} {:>10} {:>10} {:>12} {:>12}  {} {}",
                e.count,
                100.0 * e.errors as f64 / e.count as f64,
                fmt(percentile(&e.latencies, 50.0)),
                fmt(percentile(&e.latencies, 90.0)),
                fmt(percentile(&e.latencies, 99.0)),
                e.req_bytes,
                e.resp_bytes,
                escape_text(method),
                escape_text(url),
            )?;
        }
        writeln!(out, "\nStatus codes")?;
        for (s, n) in &self.statuses {
            let label = if s.is_empty() { "none" } else { s.as_str() };
            writeln!(out, "{n:>8}  {label}")?;
        }
        for (title, map) in [
            ("Top clients", &self.clients),
            ("Top servers", &self.servers),
        ] {
            writeln!(out, "\n{title}")?;
            let mut v: Vec<_> = map.iter().collect();
            v.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
            for (k, n) in v.into_iter().take(10) {
                writeln!(out, "{n:>8}  {}", escape_text(k))?;
            }
        }
        let t = &outcome.totals;
        writeln!(out, "\nTotals")?;
        writeln!(out, "{:>12}  transactions", self.count)?;
        writeln!(out, "{:>12}  request body bytes", self.req_total)?;
        writeln!(out, "{:>12}  response body bytes", self.resp_total)?;
        writeln!(out, "{:>12}  packets", t.read.packets)?;
        writeln!(
            out,
            "{:>12}  TCP connections ({} with HTTP)",
            t.flows.flows, t.flows.http_flows
        )?;
        writeln!(
            out,
            "{:>12}  gaps ({} bytes missing)",
            t.flows.gaps, t.flows.gap_bytes
        )?;
        writeln!(
            out,
            "{:>12}  retransmitted segments",
            t.flows.retransmissions
        )?;
        writeln!(
            out,
            "{:>12}  packets dropped by the capturing OS (ISB)",
            t.read.isb_os_drops
        )?;
        if let Some(s) = &t.read.recorder_stats {
            for src in &s.sources {
                writeln!(
                    out,
                    "{:>12}  dropped by the recorder: {} (of {} received)",
                    src.dropped,
                    escape_text(&src.name),
                    src.received
                )?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::sample_tx;
    use l7rec_capture::{RecorderStats, SourceStats};

    #[test]
    fn capture_text_is_escaped() {
        let mut t = sample_tx("GET", Some("h"), "/\x1b[31mRED\x1b]0;pwned\x07?q=\r");
        t.server_process = Some(ProcessRef {
            pid: 9,
            comm: Some("ng\x1b[2Jinx".into()),
        });
        let mut outcome = Outcome::default();
        outcome.totals.read.recorder_stats = Some(RecorderStats {
            sources: vec![SourceStats {
                name: "packets:\x1b[5mlo".into(),
                ..Default::default()
            }],
            ..Default::default()
        });
        let mut s = Summary::default();
        s.add(&[t]);
        let mut out = Vec::new();
        s.write(&outcome, &mut out).expect("summary");
        let s = String::from_utf8(out).expect("UTF-8");
        assert!(
            !s.chars().any(|c| c.is_control() && c != '\n'),
            "control characters reach the terminal: {s:?}"
        );
        assert!(
            s.contains("  GET h/\\x1b[31mRED\\x1b]0;pwned\\x07\n"),
            "{s}"
        );
        assert!(s.contains("  ng\\x1b[2Jinx\n"), "{s}");
        assert!(
            s.contains("dropped by the recorder: packets:\\x1b[5mlo"),
            "{s}"
        );
    }
}
