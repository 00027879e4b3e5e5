//! HTTP/1.0 and HTTP/1.1 transaction extraction from the two reassembled
//! directions of one TCP connection.
//!
//! Feed a [`Connection`] the in-order bytes of each [`Side`] (as delivered by
//! TCP reassembly) with [`Connection::data`], missing ranges with
//! [`Connection::gap`], FIN/RST with [`Connection::close`] and the end of the
//! capture with [`Connection::finish`]; collect [`Transaction`]s with
//! [`Connection::take_transactions`]. The caller says which side is the
//! client; [`looks_like_request`] and [`looks_like_response`] help decide when
//! the capture has no SYN.
//!
//! ```
//! use l7rec_http::{Connection, Side};
//! let mut conn = Connection::new();
//! conn.data(Side::Client, b"GET /x HTTP/1.1\r\nHost: h\r\n\r\n", 1_000);
//! conn.data(Side::Server, b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", 2_000);
//! conn.finish();
//! let txs = conn.take_transactions();
//! assert_eq!(txs[0].uri.as_deref(), Some("/x"));
//! assert_eq!((txs[0].status, txs[0].resp_body_bytes), (Some(200), 2));
//! ```
//!
//! # Model
//!
//! * **Heads** (start line + headers) are the only bytes ever copied, and only
//!   when a head spans several `data` calls. The start line is parsed here (so
//!   the request-target is reported byte-exact, even when not UTF-8); header
//!   fields are parsed by `httparse`, retried with a larger header array when
//!   there are more than 64. A head is parsed once, when its blank line has
//!   been seen; the start line is checked as soon as it is complete so garbage
//!   is rejected early. Heads larger than [`Config::max_head_bytes`] are
//!   reported `malformed` + `oversized`.
//! * **Bodies** are counted, never copied: Content-Length, chunked (extensions
//!   and trailers skipped; the decoded length is reported) or, for responses,
//!   until the server closes. Requests without Content-Length or chunked
//!   coding have no body. Responses to HEAD, 1xx, 204 and 304 have no body.
//! * **Pairing.** Requests queue up in order; each final response belongs to
//!   the oldest request still without one (pipelining, keep-alive). 1xx
//!   interim responses are recorded (`informational`, [`Transaction::info_code`])
//!   and the exchange continues. 101, or 2xx to CONNECT, reports the
//!   transaction with `upgrade` and stops parsing the connection. A response
//!   that began before the oldest waiting request did, or arrives when no
//!   request can come any more, is reported alone (`no_request`). When server
//!   bytes were discarded unparsed (resynchronisation, or a gap it cannot
//!   account for), requests seen no later than those bytes may have had their
//!   response there: they are reported `no_response` rather than given the
//!   next response found, which would shift every later pair by one.
//! * **Waiting for the other direction.** Response framing depends on the
//!   request (HEAD), so a complete response head is held back, with everything
//!   the server sends after it, until a request is waiting for it (or the
//!   client closed, or [`Config::max_deferred_bytes`] is exceeded, or the
//!   capture ends). Likewise client bytes after a request carrying `Upgrade`
//!   (or CONNECT) wait for its response. The order in which the caller
//!   interleaves the two directions therefore does not matter, within that cap.
//! * **Gaps.** A gap inside a body just advances the body counter (`gap`). A gap
//!   in or at the start of a head loses that message: a transaction flagged
//!   `gap` stands for it (so later responses still pair with the right
//!   requests), and the side resynchronises: it discards bytes until, at a line
//!   start or at the start of a `data` call (a TCP segment: a capture that
//!   starts inside a body not ending with a newline still finds the next
//!   message), something looks like a message start (a method token and a space
//!   for requests, `HTTP/1.` for responses) and then parses a valid start
//!   line. Candidates that turn out not to be messages are skipped silently.
//! * **Malformed input** (bad start line, header syntax, conflicting
//!   Content-Length, bad chunk framing, unsupported transfer coding in a
//!   request) is reported as a `malformed` transaction and the side
//!   resynchronises the same way. Nothing derived from input can panic.
//! * **Not HTTP at all.** The parser does not judge the protocol: bytes of
//!   another protocol make the first message of each side a `malformed`
//!   transaction, then are skipped as resynchronisation. A caller fed arbitrary
//!   TCP asks [`Connection::saw_start_line`] (a request or status line parsed in
//!   either direction) and drops the transactions of connections where it stays
//!   false.
//! * **Timestamps** are those passed with the data call carrying the first and
//!   the last byte of each message; `resp_first_ts` is the final response's
//!   first byte. `pipelined` is set when a request began before the previous
//!   response ended.
//! * **Memory** per connection is bounded by the head cap, the deferral cap and
//!   [`Config::max_pending`] waiting transactions, plus reported transactions
//!   not yet taken.

#![deny(missing_docs)]

mod body;
mod conn;
mod flags;
mod head;
mod transaction;

pub use conn::{Config, Connection};
pub use flags::Flags;
pub use head::{looks_like_request, looks_like_response, Token};
pub use transaction::Transaction;

/// Which end of the connection sent the bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    /// The side that sends requests.
    Client,
    /// The side that sends responses.
    Server,
}

#[cfg(test)]
mod tests;
