//! HAR 1.2 output, written entry by entry.

use std::io::{self, Write};

use serde_json::json;

use super::{addr, comm, ms, pid, rfc3339_ns};
use crate::transaction::Transaction;

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

/// Starts the HAR document, up to the opening of its entries array.
pub(super) fn begin(out: &mut dyn Write) -> io::Result<()> {
    write!(
        out,
        "{{\"log\":{{\"version\":\"1.2\",\"creator\":{{\"name\":\"l7rec\",\"version\":\"{}\"}},\"pages\":[],\"entries\":[",
        env!("CARGO_PKG_VERSION")
    )
}

/// Writes one entry, preceded by a comma unless it is the first.
pub(super) fn entry(t: &Transaction, comma: bool, out: &mut dyn Write) -> io::Result<()> {
    if comma {
        out.write_all(b",")?;
    }
    out.write_all(b"\n")?;
    serde_json::to_writer(&mut *out, &entry_value(t))?;
    Ok(())
}

/// Closes the entries array and the document.
pub(super) fn end(out: &mut dyn Write) -> io::Result<()> {
    out.write_all(b"\n]}}\n")
}

fn entry_value(t: &Transaction) -> serde_json::Value {
    let url = super::url::absolute(t);
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
}
