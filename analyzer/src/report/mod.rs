//! Writing transactions as a table, JSON lines, CSV or HAR, and the summary —
//! streamed batch by batch, so reports of huge captures need little memory.

mod har;
mod summary;
mod table;
mod url;

use std::borrow::Cow;
use std::fmt::{self, Write as _};
use std::io::{self, Write};

/// Rows the table buffers before aligning and printing them.
const TABLE_CHUNK: usize = 4096;

#[cfg(test)]
use serde::Serialize;

use crate::transaction::{ProcessRef, Transaction};
use crate::Outcome;

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

/// What a [`ReportWriter`] produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// One row per transaction, in this format.
    Transactions(Format),
    /// Per-endpoint statistics and totals.
    Summary,
}

enum State {
    Plain(Format),
    Table(table::Table),
    Har { entries: usize },
    Summary(Box<summary::Summary>),
}

/// Streams a report out: [`write`](Self::write) each batch of transactions, then
/// [`finish`](Self::finish) once. JSON lines and CSV rows go out as they come; the
/// table aligns chunks of rows on the widest cells seen so far; HAR entries go inside
/// one document; the summary aggregates and prints at the end.
pub struct ReportWriter<'w> {
    out: &'w mut (dyn Write + Send),
    state: State,
    /// Rows serialized here and written out in pieces of about [`PIECE`] bytes: the
    /// serializer's many small writes then cost no dynamic dispatch each.
    buf: Vec<u8>,
}

/// Bytes of serialized rows handed to the output at once.
const PIECE: usize = 64 * 1024;

impl<'w> ReportWriter<'w> {
    /// A writer of `kind` to `out`; writes any header right away. `out` is `Send`: with
    /// two analysis threads, either may write the rows.
    pub fn new(kind: Kind, out: &'w mut (dyn Write + Send)) -> io::Result<Self> {
        let state = match kind {
            Kind::Transactions(Format::Table) => State::Table(table::Table::default()),
            Kind::Transactions(Format::Har) => {
                har::begin(out)?;
                State::Har { entries: 0 }
            }
            Kind::Transactions(Format::Csv) => {
                writeln!(out, "{}", CSV_COLUMNS.join(","))?;
                State::Plain(Format::Csv)
            }
            Kind::Transactions(f) => State::Plain(f),
            Kind::Summary => State::Summary(Box::default()),
        };
        Ok(ReportWriter {
            out,
            state,
            buf: Vec::new(),
        })
    }

    /// Writes (or aggregates) a batch of transactions.
    pub fn write(&mut self, txs: &[Transaction]) -> io::Result<()> {
        match &mut self.state {
            State::Plain(Format::Json) => {
                for t in txs {
                    json_row(t).write_json(&mut self.buf)?;
                    self.buf.push(b'\n');
                    if self.buf.len() >= PIECE {
                        self.out.write_all(&self.buf)?;
                        self.buf.clear();
                    }
                }
                self.out.write_all(&self.buf)?;
                self.buf.clear();
                Ok(())
            }
            State::Plain(_) => txs.iter().try_for_each(|t| write_csv_row(t, self.out)),
            State::Table(table) => table.push(txs, self.out),
            State::Har { entries } => {
                for t in txs {
                    har::entry(t, *entries > 0, self.out)?;
                    *entries += 1;
                }
                Ok(())
            }
            State::Summary(s) => {
                s.add(txs);
                Ok(())
            }
        }
    }

    /// Ends the report (the summary needs the analysis' counters).
    pub fn finish(self, outcome: &Outcome) -> io::Result<()> {
        match self.state {
            State::Plain(_) => Ok(()),
            State::Table(table) => table.finish(self.out),
            State::Har { .. } => har::end(self.out),
            State::Summary(s) => s.write(outcome, self.out),
        }?;
        self.out.flush()
    }
}

/// Writes `txs` as a complete report of `kind` (convenience for small inputs).
pub fn write_all(
    kind: Kind,
    txs: &[Transaction],
    outcome: &Outcome,
    out: &mut (dyn Write + Send),
) -> io::Result<()> {
    let mut w = ReportWriter::new(kind, out)?;
    w.write(txs)?;
    w.finish(outcome)
}

/// `2026-11-25T12:00:00.123456789Z` from ns since the Unix epoch.
pub fn rfc3339_ns(ns: u64) -> String {
    Rfc3339(ns).to_string()
}

/// Displays ns since the Unix epoch as [`rfc3339_ns`] does, without a `String`.
struct Rfc3339(u64);

impl Rfc3339 {
    /// Bytes of the text: always 30, since ns in a `u64` end in the year 2554.
    fn bytes(&self) -> [u8; 30] {
        let secs = self.0 / 1_000_000_000;
        let (days, sod) = (secs / 86_400, secs % 86_400);
        let (y, m, d) = civil_from_days(days as i64);
        let mut b = *b"0000-00-00T00:00:00.000000000Z";
        let mut put = |at: usize, width: usize, mut v: u64| {
            for i in (at..at + width).rev() {
                b[i] = b'0' + (v % 10) as u8;
                v /= 10;
            }
        };
        put(0, 4, y.unsigned_abs());
        put(5, 2, m.into());
        put(8, 2, d.into());
        put(11, 2, sod / 3600);
        put(14, 2, sod / 60 % 60);
        put(17, 2, sod % 60);
        put(20, 9, self.0 % 1_000_000_000);
        b
    }
}

impl fmt::Display for Rfc3339 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.bytes();
        // Only ASCII digits and punctuation were written.
        f.write_str(std::str::from_utf8(&b).map_err(|_| fmt::Error)?)
    }
}

/// Appends `v` in decimal.
fn push_decimal(out: &mut Vec<u8>, mut v: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

/// Appends `a` as its `Display` does: `10.0.0.1:80`, `[::1]:80`.
fn push_addr(out: &mut Vec<u8>, a: &std::net::SocketAddr) -> io::Result<()> {
    match a {
        std::net::SocketAddr::V4(v4) => {
            for (i, o) in v4.ip().octets().into_iter().enumerate() {
                if i > 0 {
                    out.push(b'.');
                }
                push_decimal(out, o.into());
            }
            out.push(b':');
            push_decimal(out, v4.port().into());
            Ok(())
        }
        // Rarer, and with zero compression and scope ids to get right: std does it.
        std::net::SocketAddr::V6(v6) => write!(out, "{v6}"),
    }
}

/// A value that reports as its `Display`: as text in CSV, as a JSON string in the
/// serde_json rows the tests compare `JsonRow::write_json` with.
struct AsStr<T>(T);

impl<T: fmt::Display> fmt::Display for AsStr<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
impl<T: fmt::Display> Serialize for AsStr<T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0)
    }
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

pub(crate) fn ms(ns: Option<u64>) -> Option<f64> {
    ns.map(|n| n as f64 / 1e6)
}

pub(crate) fn addr(a: std::net::SocketAddr) -> String {
    a.to_string()
}

/// One transaction's fields as reported (JSON lines and CSV).
#[cfg_attr(test, derive(Serialize))]
struct JsonRow<'a> {
    ts: Option<AsStr<Rfc3339>>,
    client: AsStr<std::net::SocketAddr>,
    server: AsStr<std::net::SocketAddr>,
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

impl JsonRow<'_> {
    /// The row as one JSON object, byte for byte what serde_json makes of it, without
    /// escaping the keys and the many strings that need no escape one byte at a time
    /// (serde_json's escape loop was 13 % of a run on captures of small requests).
    fn write_json(&self, out: &mut Vec<u8>) -> io::Result<()> {
        /// `,"name":` (keys are plain identifiers).
        fn key(out: &mut Vec<u8>, name: &str) {
            out.extend_from_slice(b",\"");
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(b"\":");
        }
        // Timestamps and socket addresses: digits, letters and punctuation that JSON
        // strings take as they are.
        fn endpoint(
            out: &mut Vec<u8>,
            name: &str,
            a: &AsStr<std::net::SocketAddr>,
        ) -> io::Result<()> {
            key(out, name);
            out.push(b'"');
            push_addr(out, &a.0)?;
            out.push(b'"');
            Ok(())
        }
        fn text(out: &mut Vec<u8>, name: &str, v: Option<&str>) -> io::Result<()> {
            key(out, name);
            string(out, v)
        }
        fn string(out: &mut Vec<u8>, v: Option<&str>) -> io::Result<()> {
            match v {
                Some(s) if !s.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\') => {
                    out.push(b'"');
                    out.extend_from_slice(s.as_bytes());
                    out.push(b'"');
                    Ok(())
                }
                _ => Ok(serde_json::to_writer(&mut *out, &v)?),
            }
        }
        fn integer(out: &mut Vec<u8>, name: &str, v: Option<impl Into<u64>>) {
            key(out, name);
            match v {
                Some(v) => push_decimal(out, v.into()),
                None => out.extend_from_slice(b"null"),
            }
        }
        fn float(out: &mut Vec<u8>, name: &str, v: Option<f64>) -> io::Result<()> {
            key(out, name);
            Ok(serde_json::to_writer(&mut *out, &v)?)
        }
        out.extend_from_slice(b"{\"ts\":");
        match &self.ts {
            Some(ts) => {
                out.push(b'"');
                out.extend_from_slice(&ts.0.bytes());
                out.push(b'"');
            }
            None => out.extend_from_slice(b"null"),
        }
        endpoint(out, "client", &self.client)?;
        endpoint(out, "server", &self.server)?;
        text(out, "method", self.method)?;
        text(out, "host", self.host)?;
        text(out, "uri", self.uri)?;
        text(out, "version", self.version)?;
        integer(out, "status", self.status);
        text(out, "reason", self.reason)?;
        integer(out, "req_body_bytes", self.req_body_bytes);
        integer(out, "resp_body_bytes", self.resp_body_bytes);
        float(out, "latency_ms", self.latency_ms)?;
        float(out, "duration_ms", self.duration_ms)?;
        integer(out, "client_pid", self.client_pid);
        text(out, "client_comm", self.client_comm)?;
        integer(out, "server_pid", self.server_pid);
        text(out, "server_comm", self.server_comm)?;
        key(out, "flags");
        out.push(b'[');
        for (i, f) in self.flags.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            string(out, Some(f))?;
        }
        out.extend_from_slice(b"]}");
        Ok(())
    }
}

pub(crate) fn pid(p: &Option<ProcessRef>) -> Option<u32> {
    p.as_ref().map(|p| p.pid)
}

pub(crate) fn comm(p: &Option<ProcessRef>) -> Option<&str> {
    p.as_ref().and_then(|p| p.comm.as_deref())
}

fn json_row(t: &Transaction) -> JsonRow<'_> {
    JsonRow {
        ts: t.ts_ns().map(|ns| AsStr(Rfc3339(ns))),
        client: AsStr(t.client),
        server: AsStr(t.server),
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

pub(crate) fn opt<T: ToString>(v: Option<T>) -> String {
    v.map(|v| v.to_string()).unwrap_or_default()
}

fn write_csv_row(t: &Transaction, out: &mut dyn Write) -> io::Result<()> {
    {
        let r = json_row(t);
        let fields = [
            opt(r.ts),
            r.client.to_string(),
            r.server.to_string(),
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

/// `s` made safe for a terminal, for the table and the summary: control characters
/// (C0, DEL, C1) and Unicode bidirectional formatting characters come out as escapes
/// (`\t`, `\r`, `\n`, `\x1b`, `\u{9b}`, `\u{202e}`), and a backslash as `\\`,
/// so an escape in the output always stands for such a character. Request-targets,
/// headers, reason phrases and process names come from the capture: raw, an
/// `ESC [ 31m` recolours the terminal, `ESC ] 0 ;` sets its title, a CR overwrites the
/// line, a tab breaks the columns, and bidi overrides make text read in another order.
/// JSON, CSV and HAR escape by their own rules and do not use this.
pub fn escape_text(s: &str) -> Cow<'_, str> {
    fn needs_escape(c: char) -> bool {
        c.is_control()
            || c == '\\'
            || matches!(c, '\u{200e}' | '\u{200f}' | '\u{061c}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
    }
    if !s.contains(needs_escape) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\n' => out.push_str("\\n"),
            '\\' => out.push_str("\\\\"),
            c if c.is_ascii_control() => {
                // Infallible: writing into a String.
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if needs_escape(c) => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

pub(crate) fn proc_label(p: &Option<ProcessRef>) -> String {
    match p {
        Some(ProcessRef { pid, comm: Some(c) }) => format!("{c}[{pid}]"),
        Some(ProcessRef { pid, comm: None }) => format!("[{pid}]"),
        None => "-".into(),
    }
}

/// A complete GET-like exchange to build report tests on.
#[cfg(test)]
pub(crate) fn sample_tx(method: &str, host: Option<&str>, uri: &str) -> Transaction {
    Transaction {
        flow_id: 1,
        client: "10.0.0.1:40000".parse().expect("address"),
        server: "10.0.0.2:8080".parse().expect("address"),
        method: Some(method.to_owned().into()),
        host: host.map(Into::into),
        uri: Some(uri.into()),
        version: Some("HTTP/1.1".into()),
        status: Some(200),
        reason: Some("OK".into()),
        request_headers: Vec::new(),
        response_headers: Vec::new(),
        req_body_bytes: Some(0),
        resp_body_bytes: Some(0),
        req_first_ns: Some(1),
        req_last_ns: Some(1),
        resp_first_ns: Some(2),
        resp_last_ns: Some(2),
        client_process: None,
        server_process: None,
        flags: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The hand-written JSON row is serde_json's, byte for byte, whatever the strings
    /// from the capture hold.
    fn same_json_as_serde(t: &Transaction) {
        let row = json_row(t);
        let mut ours = Vec::new();
        row.write_json(&mut ours).unwrap();
        assert_eq!(
            String::from_utf8(ours).unwrap(),
            serde_json::to_string(&row).unwrap()
        );
    }

    #[test]
    fn json_rows_match_serde_json() {
        let mut t = sample_tx(
            "GET",
            Some("example.com"),
            "/a?b=\"c\"&d=\\e\u{1}\u{7f}é\u{202e}",
        );
        same_json_as_serde(&t);
        t.reason = Some("tab\there\r\n".into());
        t.client_process = Some(ProcessRef {
            pid: 7,
            comm: Some("cu\"rl".into()),
        });
        t.server_process = Some(ProcessRef { pid: 8, comm: None });
        t.flags = vec![
            crate::transaction::Flag::Gap,
            crate::transaction::Flag::Pipelined,
        ];
        t.client = "[fe80::1%2]:443".parse().unwrap();
        same_json_as_serde(&t);
        t.method = None;
        t.host = None;
        t.uri = None;
        t.version = None;
        t.status = None;
        t.reason = None;
        t.req_body_bytes = None;
        t.resp_first_ns = None;
        t.req_first_ns = None;
        same_json_as_serde(&t);
    }

    /// Any IPv4 or IPv6 socket address (with flow labels and scope ids).
    fn any_addr() -> impl proptest::strategy::Strategy<Value = std::net::SocketAddr> {
        use proptest::prelude::*;
        use std::net::{SocketAddrV4, SocketAddrV6};
        prop_oneof![
            any::<([u8; 4], u16)>()
                .prop_map(|(ip, port)| SocketAddrV4::new(ip.into(), port).into()),
            any::<([u16; 8], u16, u32, u32)>().prop_map(|(ip, port, flow, scope)| {
                let ip = std::net::Ipv6Addr::from(ip);
                SocketAddrV6::new(ip, port, flow, scope).into()
            }),
        ]
    }

    proptest::proptest! {
        #[test]
        fn json_rows_match_serde_json_for_any_strings(
            uri in ".*", reason in ".*", comm in ".*", latency in 0u64..u64::MAX,
        ) {
            let mut t = sample_tx("GET", Some(&comm), &uri);
            t.reason = Some(reason.into());
            t.resp_first_ns = Some(latency);
            t.client_process = Some(ProcessRef { pid: 1, comm: Some(comm.into()) });
            same_json_as_serde(&t);
        }

        #[test]
        fn json_rows_match_serde_json_for_any_numbers(
            ts: u64, client in any_addr(), server in any_addr(), status: Option<u16>,
            sizes: (Option<u64>, Option<u64>), pids: (u32, u32),
        ) {
            let mut t = sample_tx("GET", None, "/");
            t.req_first_ns = Some(ts);
            t.resp_first_ns = ts.checked_add(1);
            (t.client, t.server) = (client, server);
            t.status = status;
            (t.req_body_bytes, t.resp_body_bytes) = sizes;
            t.client_process = Some(ProcessRef { pid: pids.0, comm: None });
            t.server_process = Some(ProcessRef { pid: pids.1, comm: None });
            same_json_as_serde(&t);
            // The timestamp's digits, against the format string they replace.
            let (secs, frac) = (ts / 1_000_000_000, ts % 1_000_000_000);
            let (y, m, d) = civil_from_days((secs / 86_400) as i64);
            let sod = secs % 86_400;
            let (h, mi, s) = (sod / 3600, sod / 60 % 60, sod % 60);
            let want = format!("{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{frac:09}Z");
            proptest::prop_assert_eq!(rfc3339_ns(ts), want);
        }
    }

    #[test]
    fn rfc3339_with_nanoseconds() {
        assert_eq!(rfc3339_ns(0), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(rfc3339_ns(u64::MAX), "2554-07-21T23:34:33.709551615Z");
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
    fn text_escapes_control_characters() {
        assert!(matches!(
            escape_text("/plain/ünïcode?a=1"),
            Cow::Borrowed(_)
        ));
        assert_eq!(
            escape_text("/\x1b[31mRED\x1b[0m\x1b]0;pwned\x07"),
            "/\\x1b[31mRED\\x1b[0m\\x1b]0;pwned\\x07"
        );
        assert_eq!(escape_text("/a\rb\tc\nd"), "/a\\rb\\tc\\nd");
        assert_eq!(escape_text("/nul\0x"), "/nul\\x00x");
        assert_eq!(escape_text("/vt\x0b\x0cx\x7f"), "/vt\\x0b\\x0cx\\x7f");
        // C1 CSI, which some terminals obey like ESC [, and a bidi override.
        assert_eq!(escape_text("a\u{9b}31mb"), "a\\u{9b}31mb");
        assert_eq!(escape_text("x\u{202e}y"), "x\\u{202e}y");
        // A backslash is doubled, so `\\x1b` on screen is never a literal text.
        assert_eq!(escape_text("/a\\x1b"), "/a\\\\x1b");
    }

    #[test]
    fn percentiles_nearest_rank() {
        use super::summary::percentile;
        let v: Vec<u64> = (1..=100).map(|i| i * 1_000_000).collect();
        assert_eq!(percentile(&v, 50.0), Some(50.0));
        assert_eq!(percentile(&v, 99.0), Some(99.0));
        assert_eq!(percentile(&[], 50.0), None);
    }
}
