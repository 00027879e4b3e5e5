//! [`Transaction`]: one request/response exchange as reported to the analyzer.

use crate::{Flags, Token};

/// One HTTP exchange. Fields are `None` (or empty / 0) when the capture did not show them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Transaction {
    /// 0-based position of this transaction in its connection (Zeek's `trans_depth` - 1).
    pub index: u32,
    /// Request method, e.g. `GET`.
    pub method: Option<Token>,
    /// Request-target exactly as on the wire (lossy UTF-8; see [`Transaction::uri_raw`]).
    pub uri: Option<String>,
    /// The raw request-target bytes, only when they are not valid UTF-8.
    pub uri_raw: Option<Vec<u8>>,
    /// Request version as on the wire, e.g. `HTTP/1.1`.
    pub version: Option<Token>,
    /// Value of the request's first `Host` header.
    pub host: Option<String>,
    /// Request headers in wire order (empty when header capture is off).
    pub request_headers: Vec<(String, String)>,
    /// Decoded request body length (chunked framing excluded, gap bytes included).
    pub req_body_bytes: u64,
    /// Timestamp (ns) of the data carrying the request's first byte.
    pub req_first_ts: Option<u64>,
    /// Timestamp (ns) of the data carrying the request's last byte.
    pub req_last_ts: Option<u64>,
    /// Final (non-1xx) response status code.
    pub status: Option<u16>,
    /// Final response reason phrase (lossy UTF-8).
    pub reason: Option<Token>,
    /// Response version as on the wire.
    pub resp_version: Option<Token>,
    /// Final response headers in wire order (empty when header capture is off).
    pub response_headers: Vec<(String, String)>,
    /// Decoded response body length (chunked framing excluded, gap bytes included).
    pub resp_body_bytes: u64,
    /// Timestamp (ns) of the data carrying the final response's first byte.
    pub resp_first_ts: Option<u64>,
    /// Timestamp (ns) of the data carrying the response's last byte.
    pub resp_last_ts: Option<u64>,
    /// Status of the last 1xx interim response, if any (Zeek's `info_code`).
    pub info_code: Option<u16>,
    /// Markers: gap, incomplete, malformed, ...
    pub flags: Flags,
}
