//! Message heads: finding where a head ends, checking that bytes can start a
//! message, and parsing start line + headers (headers with `httparse`).

use crate::{Flags, Side};
use std::borrow::Cow;

/// Longest method token accepted.
const MAX_METHOD: usize = 20;

fn is_method_byte(b: u8) -> bool {
    b.is_ascii_uppercase() || b == b'-' || b == b'_'
}

/// Number of leading method bytes in `b` (at most `MAX_METHOD + 1`).
fn method_len(b: &[u8]) -> usize {
    b.iter()
        .take(MAX_METHOD + 1)
        .take_while(|&&c| is_method_byte(c))
        .count()
}

/// True if `bytes` start like a request line: a method token (uppercase
/// letters, `-`, `_`; at most 20) followed by a space.
pub fn looks_like_request(bytes: &[u8]) -> bool {
    let n = method_len(bytes);
    (1..=MAX_METHOD).contains(&n) && bytes.get(n) == Some(&b' ')
}

/// True if `bytes` start like a status line (`HTTP/1.`).
pub fn looks_like_response(bytes: &[u8]) -> bool {
    bytes.starts_with(b"HTTP/1.")
}

/// False if `h` (bytes from a message start, maybe incomplete) cannot begin a message of `side`.
pub(crate) fn prefix_ok(side: Side, h: &[u8]) -> bool {
    match side {
        Side::Client => {
            let n = method_len(h);
            if n == h.len() {
                n <= MAX_METHOD
            } else {
                (1..=MAX_METHOD).contains(&n) && h[n] == b' '
            }
        }
        Side::Server => {
            let n = h.len().min(7);
            h[..n] == b"HTTP/1."[..n]
        }
    }
}

/// A parsed first line, borrowing the head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StartLine<'a> {
    Request {
        method: &'a [u8],
        target: &'a [u8],
        version: &'a [u8],
    },
    Response {
        version: &'a [u8],
        status: u16,
        reason: &'a [u8],
    },
}

fn is_version(v: &[u8]) -> bool {
    matches!(v, [b'H', b'T', b'T', b'P', b'/', b'1', b'.', d] if d.is_ascii_digit())
}

/// Parses a start line (without its LF; a trailing CR is ignored).
pub(crate) fn parse_start_line(side: Side, line: &[u8]) -> Option<StartLine<'_>> {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    match side {
        Side::Client => {
            let n = method_len(line);
            if !(1..=MAX_METHOD).contains(&n) || line.get(n) != Some(&b' ') {
                return None;
            }
            let rest = &line[n + 1..];
            let sp = rest.iter().rposition(|&b| b == b' ')?;
            let version = &rest[sp + 1..];
            let target = rest[..sp].trim_ascii();
            (is_version(version) && !target.is_empty()).then_some(StartLine::Request {
                method: &line[..n],
                target,
                version,
            })
        }
        Side::Server => {
            let version = line.get(..8)?;
            let code = line.get(9..12)?;
            if !is_version(version) || line[8] != b' ' || !code.iter().all(u8::is_ascii_digit) {
                return None;
            }
            let status = code
                .iter()
                .fold(0u16, |acc, d| acc * 10 + u16::from(d - b'0'));
            let reason = match line.get(12) {
                None => &[][..],
                Some(b' ') => line[13..].trim_ascii(),
                Some(_) => return None,
            };
            Some(StartLine::Response {
                version,
                status,
                reason,
            })
        }
    }
}

/// The start line of a possibly incomplete head, if its first line is complete and valid.
pub(crate) fn partial_start_line(side: Side, h: &[u8]) -> Option<StartLine<'_>> {
    let lf = memchr::memchr(b'\n', h)?;
    parse_start_line(side, &h[..lf])
}

/// Result of scanning the bytes of a head received so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scan {
    /// No end yet; keep the bytes.
    More,
    /// Not a plausible message start.
    Reject,
    /// Larger than the cap: discard `h[..skip]` (through the head's end if seen).
    Oversized { skip: usize },
    /// The head is `h[..len]` (blank line included).
    Done(usize),
}

/// Scans `h` (head bytes from the message start) for the blank line ending the head.
/// Bytes before `from` were scanned by an earlier call; `line_ok` records that the
/// start line was already found complete and valid.
pub(crate) fn scan(side: Side, h: &[u8], from: usize, line_ok: &mut bool, max: usize) -> Scan {
    if !*line_ok && !prefix_ok(side, h) {
        return Scan::Reject;
    }
    for i in memchr::memchr_iter(b'\n', &h[from..]).map(|i| i + from) {
        if !*line_ok {
            if parse_start_line(side, &h[..i]).is_none() {
                return Scan::Reject;
            }
            *line_ok = true;
        } else if matches!(&h[..i], [.., b'\n'] | [.., b'\n', b'\r']) {
            return if i < max {
                Scan::Done(i + 1)
            } else {
                Scan::Oversized { skip: i + 1 }
            };
        }
    }
    if h.len() > max {
        Scan::Oversized { skip: h.len() }
    } else {
        Scan::More
    }
}

/// How a message's body is delimited, as announced by its headers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Framing {
    /// `Content-Length`, if present and valid.
    pub content_length: Option<u64>,
    /// A `Content-Length` was present but invalid or conflicting.
    pub bad_length: bool,
    /// A `Transfer-Encoding` header was present.
    pub te: bool,
    /// The final transfer coding is `chunked`.
    pub chunked: bool,
    /// An `Upgrade` header was present.
    pub upgrade: bool,
}

/// An owned, parsed message head.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct MsgHead {
    pub method: Option<Token>,
    pub target: Option<String>,
    pub target_raw: Option<Vec<u8>>,
    pub version: Option<Token>,
    pub status: Option<u16>,
    pub reason: Option<Token>,
    pub host: Option<String>,
    pub headers: Vec<(String, String)>,
    pub framing: Framing,
    /// MALFORMED (headers did not parse), NON_UTF8.
    pub flags: Flags,
}

fn lossy(b: &[u8], flags: &mut Flags) -> String {
    match String::from_utf8_lossy(b) {
        Cow::Borrowed(s) => s.to_owned(),
        Cow::Owned(s) => {
            flags.insert(Flags::NON_UTF8);
            s
        }
    }
}

/// A method, version or reason phrase: one of a few values in nearly every message,
/// so those are shared instead of allocated per message.
pub type Token = Cow<'static, str>;

/// The common values of [`Token`] fields.
const COMMON_TOKENS: [&str; 17] = [
    "GET",
    "POST",
    "PUT",
    "DELETE",
    "HEAD",
    "OPTIONS",
    "PATCH",
    "HTTP/1.1",
    "HTTP/1.0",
    "OK",
    "Created",
    "No Content",
    "Moved Permanently",
    "Found",
    "Not Modified",
    "Not Found",
    "Internal Server Error",
];

/// `b` as a [`Token`]: a shared one when it is common, else as [`lossy`] makes it.
fn token(b: &[u8], flags: &mut Flags) -> Token {
    match COMMON_TOKENS.iter().find(|t| t.as_bytes() == b) {
        Some(t) => Cow::Borrowed(t),
        None => Cow::Owned(lossy(b, flags)),
    }
}

impl MsgHead {
    /// Fills the start-line fields.
    pub(crate) fn from_start_line(start: Option<StartLine<'_>>) -> MsgHead {
        let mut m = MsgHead::default();
        match start {
            Some(StartLine::Request {
                method,
                target,
                version,
            }) => {
                m.method = Some(token(method, &mut m.flags));
                m.target = Some(lossy(target, &mut m.flags));
                if m.flags.contains(Flags::NON_UTF8) {
                    m.target_raw = Some(target.to_vec());
                }
                m.version = Some(token(version, &mut m.flags));
            }
            Some(StartLine::Response {
                version,
                status,
                reason,
            }) => {
                m.version = Some(token(version, &mut m.flags));
                m.status = Some(status);
                m.reason = Some(token(reason, &mut m.flags));
            }
            None => m.flags.insert(Flags::MALFORMED),
        }
        m
    }

    fn header(&mut self, name: &str, value: &[u8], capture: bool) {
        let value = value.trim_ascii();
        if name.eq_ignore_ascii_case("content-length") {
            let n = std::str::from_utf8(value).ok().and_then(|s| {
                s.bytes()
                    .all(|b| b.is_ascii_digit())
                    .then(|| s.parse::<u64>().ok())
                    .flatten()
            });
            match (n, self.framing.content_length) {
                (Some(n), None) => self.framing.content_length = Some(n),
                (Some(n), Some(old)) if n == old => {}
                _ => self.framing.bad_length = true,
            }
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            self.framing.te = true;
            let last = value.rsplit(|&b| b == b',').next().unwrap_or_default();
            self.framing.chunked = last.trim_ascii().eq_ignore_ascii_case(b"chunked");
        } else if name.eq_ignore_ascii_case("upgrade") {
            self.framing.upgrade = true;
        } else if self.host.is_none() && name.eq_ignore_ascii_case("host") {
            self.host = Some(lossy(value, &mut self.flags));
        }
        if capture {
            let v = lossy(value, &mut self.flags);
            self.headers.push((name.to_owned(), v));
        }
    }
}

/// Runs `httparse::parse_headers` on `bytes`, retrying with a header array
/// large enough for any head when the default one is too small.
fn parse_headers(bytes: &[u8], mut each: impl FnMut(&str, &[u8])) -> bool {
    let mut small = [httparse::EMPTY_HEADER; 64];
    let mut large;
    let headers = match httparse::parse_headers(bytes, &mut small) {
        Err(httparse::Error::TooManyHeaders) => {
            large = vec![httparse::EMPTY_HEADER; bytes.len() / 3 + 1];
            httparse::parse_headers(bytes, &mut large)
        }
        other => other,
    };
    match headers {
        Ok(httparse::Status::Complete((_, hs))) => {
            for h in hs {
                each(h.name, h.value);
            }
            true
        }
        _ => false,
    }
}

/// Parses a complete head (start line through the blank line).
pub(crate) fn parse_head(side: Side, head: &[u8], capture_headers: bool) -> MsgHead {
    let lf = memchr::memchr(b'\n', head).unwrap_or(head.len());
    let mut m = MsgHead::from_start_line(parse_start_line(side, &head[..lf]));
    if m.flags.contains(Flags::MALFORMED) {
        return m;
    }
    let rest = head.get(lf + 1..).unwrap_or_default();
    if !parse_headers(rest, |n, v| m.header(n, v, capture_headers)) {
        m.flags.insert(Flags::MALFORMED);
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_tokens_are_shared_and_the_rest_kept_as_they_came() {
        let mut flags = Flags::default();
        assert!(matches!(token(b"GET", &mut flags), Cow::Borrowed("GET")));
        assert!(matches!(
            token(b"Not Found", &mut flags),
            Cow::Borrowed("Not Found")
        ));
        assert!(matches!(token(b"get", &mut flags), Cow::Owned(s) if s == "get"));
        assert!(matches!(token(b"HTTP/1.12", &mut flags), Cow::Owned(s) if s == "HTTP/1.12"));
        assert!(!flags.contains(Flags::NON_UTF8));
        assert_eq!(token(b"O\xffK", &mut flags), "O\u{fffd}K");
        assert!(flags.contains(Flags::NON_UTF8));
    }

    #[test]
    fn start_lines() {
        assert_eq!(
            parse_start_line(Side::Client, b"GET /a b HTTP/1.1\r"),
            Some(StartLine::Request {
                method: b"GET",
                target: b"/a b",
                version: b"HTTP/1.1"
            })
        );
        assert_eq!(parse_start_line(Side::Client, b"GET / HTTP/2.0"), None);
        assert_eq!(parse_start_line(Side::Client, b"get / HTTP/1.1"), None);
        assert_eq!(parse_start_line(Side::Client, b"GET  HTTP/1.1"), None);
        assert_eq!(
            parse_start_line(Side::Server, b"HTTP/1.0 404"),
            Some(StartLine::Response {
                version: b"HTTP/1.0",
                status: 404,
                reason: b""
            })
        );
        assert_eq!(parse_start_line(Side::Server, b"HTTP/1.1 20x OK"), None);
        assert_eq!(parse_start_line(Side::Server, b"HTTP/1.1 2000 OK"), None);
    }

    #[test]
    fn prefixes() {
        assert!(prefix_ok(Side::Client, b"GE"));
        assert!(prefix_ok(Side::Client, b"GET /"));
        assert!(!prefix_ok(Side::Client, b"GET/"));
        assert!(!prefix_ok(Side::Client, b" GET"));
        assert!(!prefix_ok(Side::Client, &[b'A'; 21]));
        assert!(prefix_ok(Side::Server, b"HTT"));
        assert!(!prefix_ok(Side::Server, b"HTTX"));
        assert!(looks_like_request(b"M-SEARCH * HTTP/1.1"));
        assert!(!looks_like_request(b"GET"));
        assert!(looks_like_response(b"HTTP/1.1 200 OK"));
        assert!(!looks_like_response(b"HTTP/2 200"));
    }

    #[test]
    fn scan_finds_head_end_across_calls() {
        let full = b"GET / HTTP/1.1\r\nHost: a\r\n\r\nbody";
        for split in 0..full.len() {
            let mut ok = false;
            let first = scan(Side::Client, &full[..split], 0, &mut ok, 1000);
            assert!(!matches!(first, Scan::Reject), "split {split}");
            if let Scan::Done(n) = first {
                assert_eq!(n, 27);
                continue;
            }
            assert_eq!(
                scan(Side::Client, full, split, &mut ok, 1000),
                Scan::Done(27)
            );
        }
        let mut ok = false;
        assert_eq!(
            scan(Side::Server, b"HTTP/1.1 200 OK\n\n", 0, &mut ok, 100),
            Scan::Done(17)
        );
        let mut ok = false;
        assert_eq!(
            scan(Side::Client, b"GET / HTTP/1.1\r\nA: b\r\n", 0, &mut ok, 10),
            Scan::Oversized { skip: 22 }
        );
    }

    #[test]
    fn headers_and_framing() {
        let h = parse_head(
            Side::Client,
            b"POST /x HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\ncontent-length: 5\r\n\r\n",
            true,
        );
        assert_eq!(h.framing.content_length, Some(5));
        assert!(!h.framing.bad_length);
        assert_eq!(h.host.as_deref(), Some("h"));
        assert_eq!(h.headers.len(), 3);
        let h = parse_head(
            Side::Server,
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
            false,
        );
        assert!(h.framing.bad_length && h.framing.chunked && h.headers.is_empty());
        let h = parse_head(Side::Server, b"HTTP/1.1 200 OK\r\nBad Header\r\n\r\n", true);
        assert!(h.flags.contains(Flags::MALFORMED));
        let mut many = b"GET / HTTP/1.1\r\n".to_vec();
        for i in 0..500 {
            many.extend_from_slice(format!("X-{i}: {i}\r\n").as_bytes());
        }
        many.extend_from_slice(b"\r\n");
        let h = parse_head(Side::Client, &many, true);
        assert_eq!(h.headers.len(), 500);
        assert!(h.flags.is_empty());
    }
}
