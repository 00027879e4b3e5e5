//! One reported HTTP exchange, with its connection and processes.

use std::net::SocketAddr;
use std::sync::Arc;

use l7rec_http::Token;

/// A condition worth knowing about a transaction. Reported as lower-case strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Flag {
    /// Bytes of the exchange were never captured.
    Gap,
    /// The connection had retransmitted segments.
    Retransmission,
    /// The exchange did not complete within the capture.
    Incomplete,
    /// The response switched protocols (101); HTTP parsing stopped there.
    Upgrade,
    /// A message could not be parsed as HTTP/1.x.
    Malformed,
    /// The capture started in the middle of the connection.
    Midstream,
    /// A 1xx interim response preceded the final one.
    Informational,
    /// The request was sent before the previous response had arrived.
    Pipelined,
    /// A response whose request was not captured.
    NoRequest,
    /// A request whose response was not captured.
    NoResponse,
    /// A message head exceeded the parser's size cap.
    Oversized,
    /// The request-target or a header was not valid UTF-8 (shown lossily).
    NonUtf8,
    /// Decrypted TLS (captured from the TLS library, not the wire).
    Tls,
}

impl Flag {
    /// The name used in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Flag::Gap => "gap",
            Flag::Retransmission => "retransmission",
            Flag::Incomplete => "incomplete",
            Flag::Upgrade => "upgrade",
            Flag::Malformed => "malformed",
            Flag::Midstream => "midstream",
            Flag::Informational => "informational",
            Flag::Pipelined => "pipelined",
            Flag::NoRequest => "no_request",
            Flag::NoResponse => "no_response",
            Flag::Oversized => "oversized",
            Flag::NonUtf8 => "non_utf8",
            Flag::Tls => "tls",
        }
    }
}

/// A process at one end of a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessRef {
    /// Process id.
    pub pid: u32,
    /// Process name, when the capture described the process (shared by all the
    /// transactions of the process: two fewer allocations per transaction).
    pub comm: Option<Arc<str>>,
}

/// One HTTP request/response exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transaction {
    /// Connection id, unique within one analysis.
    pub flow_id: u64,
    /// Client end of the connection.
    pub client: SocketAddr,
    /// Server end of the connection.
    pub server: SocketAddr,
    /// Request method.
    pub method: Option<Token>,
    /// Host header.
    pub host: Option<String>,
    /// Request target exactly as on the wire.
    pub uri: Option<String>,
    /// Protocol version of the request (or of the response without request).
    pub version: Option<Token>,
    /// Final status code.
    pub status: Option<u16>,
    /// Reason phrase of the final response.
    pub reason: Option<Token>,
    /// Request headers in order.
    pub request_headers: Vec<(String, String)>,
    /// Final response headers in order.
    pub response_headers: Vec<(String, String)>,
    /// Decoded request body length.
    pub req_body_bytes: Option<u64>,
    /// Decoded response body length.
    pub resp_body_bytes: Option<u64>,
    /// Request first byte, ns since the Unix epoch.
    pub req_first_ns: Option<u64>,
    /// Request last byte.
    pub req_last_ns: Option<u64>,
    /// Final response first byte.
    pub resp_first_ns: Option<u64>,
    /// Response last byte.
    pub resp_last_ns: Option<u64>,
    /// Client process, when the capture says.
    pub client_process: Option<ProcessRef>,
    /// Server process, when the capture says.
    pub server_process: Option<ProcessRef>,
    /// Conditions, sorted, without duplicates.
    pub flags: Vec<Flag>,
}

impl Transaction {
    /// A transaction of connection `flow_id` from what the HTTP parser found.
    pub fn from_http(
        t: l7rec_http::Transaction,
        flow_id: u64,
        client: SocketAddr,
        server: SocketAddr,
    ) -> Self {
        use l7rec_http::Flags as F;
        let mut flags: Vec<Flag> = [
            (F::GAP, Flag::Gap),
            (F::INCOMPLETE, Flag::Incomplete),
            (F::UPGRADE, Flag::Upgrade),
            (F::MALFORMED, Flag::Malformed),
            (F::OVERSIZED, Flag::Oversized),
            (F::INFORMATIONAL, Flag::Informational),
            (F::PIPELINED, Flag::Pipelined),
            (F::NO_REQUEST, Flag::NoRequest),
            (F::NO_RESPONSE, Flag::NoResponse),
            (F::NON_UTF8, Flag::NonUtf8),
        ]
        .into_iter()
        .filter(|(f, _)| t.flags.contains(*f))
        .map(|(_, flag)| flag)
        .collect();
        flags.sort_unstable();
        let has_request = t.method.is_some();
        let has_response = t.status.is_some();
        Transaction {
            flow_id,
            client,
            server,
            method: t.method,
            host: t.host,
            uri: t.uri,
            version: t.version.or(t.resp_version),
            status: t.status,
            reason: t.reason,
            request_headers: t.request_headers,
            response_headers: t.response_headers,
            req_body_bytes: has_request.then_some(t.req_body_bytes),
            resp_body_bytes: has_response.then_some(t.resp_body_bytes),
            req_first_ns: t.req_first_ts,
            req_last_ns: t.req_last_ts,
            resp_first_ns: t.resp_first_ts,
            resp_last_ns: t.resp_last_ts,
            client_process: None,
            server_process: None,
            flags,
        }
    }

    /// When the exchange started: request first byte, else response first byte.
    pub fn ts_ns(&self) -> Option<u64> {
        self.req_first_ns.or(self.resp_first_ns)
    }

    /// Request first byte to response first byte.
    pub fn latency_ns(&self) -> Option<u64> {
        Some(self.resp_first_ns?.saturating_sub(self.req_first_ns?))
    }

    /// Request first byte to response last byte.
    pub fn duration_ns(&self) -> Option<u64> {
        Some(self.resp_last_ns?.saturating_sub(self.req_first_ns?))
    }

    /// Adds a flag, keeping the list sorted and unique.
    pub fn add_flag(&mut self, f: Flag) {
        if let Err(at) = self.flags.binary_search(&f) {
            self.flags.insert(at, f);
        }
    }

    /// Whether the status is 4xx/5xx or no response was seen.
    pub fn is_error(&self) -> bool {
        self.status.is_none_or(|s| s >= 400)
    }
}
