//! Writing transactions as a table, JSON lines, CSV or HAR, and the summary.

use std::collections::{BTreeMap, HashMap};
use std::io::{self, Write};

use serde::Serialize;
use serde_json::json;

use crate::transaction::{ProcessRef, Transaction};
use crate::Analysis;

/// Output format of the transaction list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Aligned columns.
    Table,
    /// One JSON object per line.
    Json,
    /// Comma-separated values with a header row.
    Csv,
    /// HAR 1.2.
    Har,
}

/// `2026-11-25T12:00:00.123456789Z` from ns since the Unix epoch.
pub fn rfc3339_ns(ns: u64) -> String {
    let secs = ns / 1_000_000_000;
    let frac = ns % 1_000_000_000;
    let (days, sod) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{frac:09}Z",
        sod / 3600,
        sod / 60 % 60,
        sod % 60
    )
}

/// Proleptic Gregorian date of a day count since 1970-01-01 (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

fn ms(ns: Option<u64>) -> Option<f64> {
    ns.map(|n| n as f64 / 1e6)
}

fn addr(a: std::net::SocketAddr) -> String {
    a.to_string()
}

#[derive(Serialize)]
struct JsonRow<'a> {
    ts: Option<String>,
    client: String,
    server: String,
    method: Option<&'a str>,
    host: Option<&'a str>,
    uri: Option<&'a str>,
    version: Option<&'a str>,
    status: Option<u16>,
    reason: Option<&'a str>,
    req_body_bytes: Option<u64>,
    resp_body_bytes: Option<u64>,
    latency_ms: Option<f64>,
    duration_ms: Option<f64>,
    client_pid: Option<u32>,
    client_comm: Option<&'a str>,
    server_pid: Option<u32>,
    server_comm: Option<&'a str>,
    flags: Vec<&'static str>,
}

fn pid(p: &Option<ProcessRef>) -> Option<u32> {
    p.as_ref().map(|p| p.pid)
}

fn comm(p: &Option<ProcessRef>) -> Option<&str> {
    p.as_ref().and_then(|p| p.comm.as_deref())
}

fn json_row(t: &Transaction) -> JsonRow<'_> {
    JsonRow {
        ts: t.ts_ns().map(rfc3339_ns),
        client: addr(t.client),
        server: addr(t.server),
        method: t.method.as_deref(),
        host: t.host.as_deref(),
        uri: t.uri.as_deref(),
        version: t.version.as_deref(),
        status: t.status,
        reason: t.reason.as_deref(),
        req_body_bytes: t.req_body_bytes,
        resp_body_bytes: t.resp_body_bytes,
        latency_ms: ms(t.latency_ns()),
        duration_ms: ms(t.duration_ns()),
        client_pid: pid(&t.client_process),
        client_comm: comm(&t.client_process),
        server_pid: pid(&t.server_process),
        server_comm: comm(&t.server_process),
        flags: t.flags.iter().map(|f| f.as_str()).collect(),
    }
}

/// Writes the transactions of `a` in `format`.
pub fn write_transactions(a: &Analysis, format: Format, out: &mut dyn Write) -> io::Result<()> {
    match format {
        Format::Json => {
            for t in &a.transactions {
                serde_json::to_writer(&mut *out, &json_row(t))?;
                out.write_all(b"\n")?;
            }
            Ok(())
        }
        Format::Csv => write_csv(a, out),
        Format::Table => write_table(a, out),
        Format::Har => write_har(a, out),
    }
}

const CSV_COLUMNS: [&str; 18] = [
    "ts",
    "client",
    "server",
    "method",
    "host",
    "uri",
    "version",
    "status",
    "reason",
    "req_body_bytes",
    "resp_body_bytes",
    "latency_ms",
    "duration_ms",
    "client_pid",
    "client_comm",
    "server_pid",
    "server_comm",
    "flags",
];

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_owned()
    }
}

fn opt<T: ToString>(v: Option<T>) -> String {
    v.map(|v| v.to_string()).unwrap_or_default()
}

fn write_csv(a: &Analysis, out: &mut dyn Write) -> io::Result<()> {
    writeln!(out, "{}", CSV_COLUMNS.join(","))?;
    for t in &a.transactions {
        let r = json_row(t);
        let fields = [
            opt(r.ts),
            r.client,
            r.server,
            opt(r.method),
            opt(r.host),
            opt(r.uri),
            opt(r.version),
            opt(r.status),
            opt(r.reason),
            opt(r.req_body_bytes),
            opt(r.resp_body_bytes),
            opt(r.latency_ms.map(|v| format!("{v:.3}"))),
            opt(r.duration_ms.map(|v| format!("{v:.3}"))),
            opt(r.client_pid),
            opt(r.client_comm),
            opt(r.server_pid),
            opt(r.server_comm),
            r.flags.join(" "),
        ];
        let line: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
        writeln!(out, "{}", line.join(","))?;
    }
    Ok(())
}

fn proc_label(p: &Option<ProcessRef>) -> String {
    match p {
        Some(ProcessRef { pid, comm: Some(c) }) => format!("{c}[{pid}]"),
        Some(ProcessRef { pid, comm: None }) => format!("[{pid}]"),
        None => "-".into(),
    }
}

fn write_table(a: &Analysis, out: &mut dyn Write) -> io::Result<()> {
    let header = [
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
    let rows: Vec<[String; 12]> = a
        .transactions
        .iter()
        .map(|t| {
            let time = t
                .ts_ns()
                .map(|ns| rfc3339_ns(ns)[11..23].to_owned())
                .unwrap_or_else(|| "-".into());
            let url = format!(
                "{}{}",
                t.host.as_deref().unwrap_or(""),
                t.uri.as_deref().unwrap_or("-")
            );
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
        })
        .collect();
    let mut widths = header.map(str::len);
    for r in &rows {
        for (w, c) in widths.iter_mut().zip(r.iter()) {
            *w = (*w).max(c.chars().count());
        }
    }
    let right = |i: usize| matches!(i, 6..=9);
    let line = |cells: Vec<&str>, out: &mut dyn Write| -> io::Result<()> {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i == cells.len() - 1 {
                s.push_str(c);
            } else if right(i) {
                s.push_str(&format!("{c:>w$}  ", w = widths[i]));
            } else {
                s.push_str(&format!("{c:<w$}  ", w = widths[i]));
            }
        }
        writeln!(out, "{}", s.trim_end())
    };
    line(header.to_vec(), out)?;
    for r in &rows {
        line(r.iter().map(String::as_str).collect(), out)?;
    }
    Ok(())
}

fn har_url(t: &Transaction) -> String {
    let uri = t.uri.as_deref().unwrap_or("");
    if uri.starts_with("http://") || uri.starts_with("https://") {
        return uri.to_owned();
    }
    let scheme = if t.flags.contains(&crate::Flag::Tls) {
        "https"
    } else {
        "http"
    };
    let host = t.host.clone().unwrap_or_else(|| addr(t.server));
    format!("{scheme}://{host}{uri}")
}

fn har_headers(h: &[(String, String)]) -> serde_json::Value {
    h.iter()
        .map(|(n, v)| json!({"name": n, "value": v}))
        .collect()
}

fn header<'a>(h: &'a [(String, String)], name: &str) -> Option<&'a str> {
    h.iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

fn write_har(a: &Analysis, out: &mut dyn Write) -> io::Result<()> {
    let entries: Vec<serde_json::Value> = a
        .transactions
        .iter()
        .map(|t| {
            let url = har_url(t);
            let query: Vec<serde_json::Value> = url
                .split_once('?')
                .map(|(_, q)| {
                    q.split('&')
                        .filter(|p| !p.is_empty())
                        .map(|p| {
                            let (n, v) = p.split_once('=').unwrap_or((p, ""));
                            json!({"name": n, "value": v})
                        })
                        .collect()
                })
                .unwrap_or_default();
            let latency = ms(t.latency_ns()).unwrap_or(0.0);
            let total = ms(t.duration_ns()).unwrap_or(latency);
            json!({
                "startedDateTime": t.ts_ns().map(rfc3339_ns),
                "time": total,
                "request": {
                    "method": t.method.as_deref().unwrap_or(""),
                    "url": url,
                    "httpVersion": t.version.as_deref().unwrap_or("HTTP/1.1"),
                    "cookies": [],
                    "headers": har_headers(&t.request_headers),
                    "queryString": query,
                    "headersSize": -1,
                    "bodySize": t.req_body_bytes.map_or(-1, |v| v as i64),
                },
                "response": {
                    "status": t.status.unwrap_or(0),
                    "statusText": t.reason.as_deref().unwrap_or(""),
                    "httpVersion": t.version.as_deref().unwrap_or("HTTP/1.1"),
                    "cookies": [],
                    "headers": har_headers(&t.response_headers),
                    "content": {
                        "size": t.resp_body_bytes.unwrap_or(0),
                        "mimeType": header(&t.response_headers, "content-type").unwrap_or(""),
                    },
                    "redirectURL": header(&t.response_headers, "location").unwrap_or(""),
                    "headersSize": -1,
                    "bodySize": t.resp_body_bytes.map_or(-1, |v| v as i64),
                },
                "cache": {},
                "timings": {
                    "send": 0,
                    "wait": latency,
                    "receive": (total - latency).max(0.0),
                },
                "serverIPAddress": t.server.ip().to_string(),
                "connection": t.flow_id.to_string(),
                "_client": addr(t.client),
                "_clientPid": pid(&t.client_process),
                "_clientComm": comm(&t.client_process),
                "_serverPid": pid(&t.server_process),
                "_serverComm": comm(&t.server_process),
                "_flags": t.flags.iter().map(|f| f.as_str()).collect::<Vec<_>>(),
            })
        })
        .collect();
    let har = json!({
        "log": {
            "version": "1.2",
            "creator": {"name": "l7rec", "version": env!("CARGO_PKG_VERSION")},
            "pages": [],
            "entries": entries,
        }
    });
    serde_json::to_writer_pretty(&mut *out, &har)?;
    writeln!(out)
}

fn percentile(sorted: &[u64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1] as f64 / 1e6)
}

fn who(addr: std::net::SocketAddr, p: &Option<ProcessRef>, with_port: bool) -> String {
    match p {
        Some(ProcessRef { comm: Some(c), .. }) => c.clone(),
        _ if with_port => addr.to_string(),
        _ => addr.ip().to_string(),
    }
}

/// Writes per-endpoint statistics and totals.
pub fn write_summary(a: &Analysis, out: &mut dyn Write) -> io::Result<()> {
    #[derive(Default)]
    struct Ep {
        count: u64,
        errors: u64,
        latencies: Vec<u64>,
        req_bytes: u64,
        resp_bytes: u64,
    }
    let mut eps: BTreeMap<(String, String, String), Ep> = BTreeMap::new();
    let mut statuses: BTreeMap<String, u64> = BTreeMap::new();
    let mut clients: HashMap<String, u64> = HashMap::new();
    let mut servers: HashMap<String, u64> = HashMap::new();
    let (mut req_total, mut resp_total) = (0u64, 0u64);
    for t in &a.transactions {
        let path = t
            .uri
            .as_deref()
            .map(|u| u.split('?').next().unwrap_or(u).to_owned())
            .unwrap_or_else(|| "-".into());
        let key = (
            t.method.clone().unwrap_or_else(|| "-".into()),
            t.host.clone().unwrap_or_else(|| "-".into()),
            path,
        );
        let e = eps.entry(key).or_default();
        e.count += 1;
        e.errors += u64::from(t.is_error());
        if let Some(l) = t.latency_ns() {
            e.latencies.push(l);
        }
        e.req_bytes += t.req_body_bytes.unwrap_or(0);
        e.resp_bytes += t.resp_body_bytes.unwrap_or(0);
        req_total += t.req_body_bytes.unwrap_or(0);
        resp_total += t.resp_body_bytes.unwrap_or(0);
        *statuses.entry(opt(t.status)).or_default() += 1;
        *clients
            .entry(who(t.client, &t.client_process, false))
            .or_default() += 1;
        *servers
            .entry(who(t.server, &t.server_process, true))
            .or_default() += 1;
    }
    writeln!(out, "Endpoints")?;
    writeln!(
        out,
        "{:>8} {:>7} {:>10} {:>10} {:>10} {:>12} {:>12}  ENDPOINT",
        "COUNT", "ERR %", "P50 ms", "P90 ms", "P99 ms", "REQ B", "RESP B"
    )?;
    let fmt = |v: Option<f64>| v.map_or("-".to_owned(), |v| format!("{v:.3}"));
    for ((method, host, path), e) in &mut eps {
        e.latencies.sort_unstable();
        writeln!(
            out,
            "{:>8} {:>7.1} {:>10} {:>10} {:>10} {:>12} {:>12}  {method} {host}{path}",
            e.count,
            100.0 * e.errors as f64 / e.count as f64,
            fmt(percentile(&e.latencies, 50.0)),
            fmt(percentile(&e.latencies, 90.0)),
            fmt(percentile(&e.latencies, 99.0)),
            e.req_bytes,
            e.resp_bytes,
        )?;
    }
    writeln!(out, "\nStatus codes")?;
    for (s, n) in &statuses {
        let label = if s.is_empty() { "none" } else { s.as_str() };
        writeln!(out, "{n:>8}  {label}")?;
    }
    for (title, map) in [("Top clients", &clients), ("Top servers", &servers)] {
        writeln!(out, "\n{title}")?;
        let mut v: Vec<_> = map.iter().collect();
        v.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        for (k, n) in v.into_iter().take(10) {
            writeln!(out, "{n:>8}  {k}")?;
        }
    }
    let t = &a.totals;
    writeln!(out, "\nTotals")?;
    writeln!(out, "{:>12}  transactions", a.transactions.len())?;
    writeln!(out, "{:>12}  request body bytes", req_total)?;
    writeln!(out, "{:>12}  response body bytes", resp_total)?;
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
                src.dropped, src.name, src.received
            )?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_with_nanoseconds() {
        assert_eq!(rfc3339_ns(0), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(
            rfc3339_ns(1_764_072_000_123_456_789),
            "2025-11-25T12:00:00.123456789Z"
        );
        assert_eq!(
            rfc3339_ns(951_782_400_000_000_001),
            "2000-02-29T00:00:00.000000001Z"
        );
    }

    #[test]
    fn csv_quoting() {
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("plain"), "plain");
    }

    #[test]
    fn percentiles_nearest_rank() {
        let v: Vec<u64> = (1..=100).map(|i| i * 1_000_000).collect();
        assert_eq!(percentile(&v, 50.0), Some(50.0));
        assert_eq!(percentile(&v, 99.0), Some(99.0));
        assert_eq!(percentile(&[], 50.0), None);
    }
}
