//! Body framing: counting (never copying) body bytes delimited by
//! Content-Length, chunked transfer coding (extensions and trailers skipped)
//! or the end of the connection.

/// Where a message body ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Body {
    /// This many bytes remain.
    Length(u64),
    /// Chunked transfer coding, at this point of its grammar.
    Chunked(Chunk),
    /// Until the sender closes the connection.
    UntilClose,
}

/// Position inside a chunked body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Chunk {
    /// In a chunk-size line: value so far, hex digits seen, in extension/whitespace.
    Size { value: u64, digits: u8, ext: bool },
    /// This many chunk-data bytes remain.
    Data(u64),
    /// Expecting the CR (or LF) after chunk data.
    DataCr,
    /// Expecting the LF after chunk data.
    DataLf,
    /// In the trailer section; `empty` while the current line has only CRs.
    Trailer { empty: bool },
}

const SIZE_START: Chunk = Chunk::Size {
    value: 0,
    digits: 0,
    ext: false,
};

/// How a call to [`Body::advance`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum End {
    /// All input consumed, body not finished.
    More,
    /// The body ended after `consumed` bytes.
    Done,
    /// Invalid chunked framing at byte `consumed`.
    Error,
}

/// Result of [`Body::advance`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Advance {
    pub consumed: usize,
    pub decoded: u64,
    pub end: End,
}

/// Result of [`Body::skip`] (a gap inside a body).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Skip {
    /// The gap lies inside the body; this many body bytes were lost.
    Within(u64),
    /// The body ended exactly at the gap's end, after this many lost bytes.
    Exact(u64),
    /// The gap reaches past the body (or framing was lost); known lost body bytes.
    Lost(u64),
}

impl Body {
    /// A chunked body at its start.
    pub(crate) fn chunked() -> Body {
        Body::Chunked(SIZE_START)
    }

    /// Consumes body bytes from the start of `data`.
    pub(crate) fn advance(&mut self, data: &[u8]) -> Advance {
        match self {
            Body::Length(rem) => {
                let n = (*rem).min(data.len() as u64);
                *rem -= n;
                Advance {
                    consumed: n as usize,
                    decoded: n,
                    end: if *rem == 0 { End::Done } else { End::More },
                }
            }
            Body::UntilClose => Advance {
                consumed: data.len(),
                decoded: data.len() as u64,
                end: End::More,
            },
            Body::Chunked(c) => chunked(c, data),
        }
    }

    /// Accounts for `len` missing bytes inside the body.
    pub(crate) fn skip(&mut self, len: u64) -> Skip {
        match self {
            Body::Length(rem) => {
                if len < *rem {
                    *rem -= len;
                    Skip::Within(len)
                } else if len == *rem {
                    Skip::Exact(len)
                } else {
                    Skip::Lost(*rem)
                }
            }
            Body::UntilClose => Skip::Within(len),
            Body::Chunked(Chunk::Data(rem)) if len <= *rem => {
                *rem -= len;
                if *rem == 0 {
                    *self = Body::Chunked(Chunk::DataCr);
                }
                Skip::Within(len)
            }
            Body::Chunked(Chunk::Data(rem)) => Skip::Lost(*rem),
            Body::Chunked(_) => Skip::Lost(0),
        }
    }
}

fn hex(b: u8) -> Option<u64> {
    (b as char).to_digit(16).map(u64::from)
}

fn chunked(c: &mut Chunk, data: &[u8]) -> Advance {
    let (mut i, mut decoded) = (0usize, 0u64);
    let result = |consumed, decoded, end| Advance {
        consumed,
        decoded,
        end,
    };
    while i < data.len() {
        match c {
            Chunk::Size { value, digits, ext } => {
                if *ext {
                    match memchr::memchr(b'\n', &data[i..]) {
                        Some(j) => i += j,
                        None => return result(data.len(), decoded, End::More),
                    }
                }
                let b = data[i];
                match (b, hex(b)) {
                    (_, Some(d)) if !*ext => {
                        *digits += 1;
                        if *digits > 16 {
                            return result(i, decoded, End::Error);
                        }
                        *value = (*value << 4) | d;
                    }
                    (b'\n', _) if *digits > 0 => {
                        *c = if *value == 0 {
                            Chunk::Trailer { empty: true }
                        } else {
                            Chunk::Data(*value)
                        };
                    }
                    (b';' | b' ' | b'\t' | b'\r', _) if *digits > 0 => *ext = true,
                    _ => return result(i, decoded, End::Error),
                }
                i += 1;
            }
            Chunk::Data(rem) => {
                let n = (*rem).min((data.len() - i) as u64);
                *rem -= n;
                decoded += n;
                i += n as usize;
                if *rem == 0 {
                    *c = Chunk::DataCr;
                }
            }
            Chunk::DataCr | Chunk::DataLf => {
                *c = match (data[i], *c) {
                    (b'\r', Chunk::DataCr) => Chunk::DataLf,
                    (b'\n', _) => SIZE_START,
                    _ => return result(i, decoded, End::Error),
                };
                i += 1;
            }
            Chunk::Trailer { empty } => {
                let rest = &data[i..];
                let line_end = memchr::memchr(b'\n', rest);
                let line = &rest[..line_end.unwrap_or(rest.len())];
                *empty = *empty && line.iter().all(|&b| b == b'\r');
                match line_end {
                    Some(j) if *empty => return result(i + j + 1, decoded, End::Done),
                    Some(j) => {
                        *empty = true;
                        i += j + 1;
                    }
                    None => i = data.len(),
                }
            }
        }
    }
    result(i, decoded, End::More)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `data` in pieces of `step` bytes; returns (consumed, decoded, end).
    fn feed(mut body: Body, data: &[u8], step: usize) -> (usize, u64, End) {
        let (mut pos, mut dec) = (0, 0);
        while pos < data.len() {
            let piece = &data[pos..(pos + step).min(data.len())];
            let a = body.advance(piece);
            pos += a.consumed;
            dec += a.decoded;
            if a.end != End::More {
                return (pos, dec, a.end);
            }
        }
        (pos, dec, End::More)
    }

    #[test]
    fn chunked_with_extensions_and_trailers() {
        let data =
            b"5;name=val\r\nhello\r\n1A \r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nX-T: 1\r\n\r\nNEXT";
        for step in [1, 2, 3, 7, data.len()] {
            assert_eq!(
                feed(Body::chunked(), data, step),
                (data.len() - 4, 31, End::Done),
                "step {step}"
            );
        }
        let bare = b"3\nabc\n0\n\nX";
        assert_eq!(
            feed(Body::chunked(), bare, 1),
            (bare.len() - 1, 3, End::Done)
        );
    }

    #[test]
    fn chunked_errors() {
        assert_eq!(feed(Body::chunked(), b"zz\r\n", 4).2, End::Error);
        assert_eq!(feed(Body::chunked(), b"\r\n", 4).2, End::Error);
        assert_eq!(
            feed(Body::chunked(), b"11111111111111111\r\n", 40).2,
            End::Error
        );
        assert_eq!(feed(Body::chunked(), b"2\r\nabX", 40), (5, 2, End::Error));
    }

    #[test]
    fn length_and_close() {
        assert_eq!(feed(Body::Length(3), b"abcdef", 2), (3, 3, End::Done));
        assert_eq!(feed(Body::UntilClose, b"abcdef", 4), (6, 6, End::More));
    }

    #[test]
    fn gaps_in_bodies() {
        let mut b = Body::Length(10);
        assert_eq!(b.skip(4), Skip::Within(4));
        assert_eq!(b.skip(6), Skip::Exact(6));
        assert_eq!(Body::Length(3).skip(5), Skip::Lost(3));
        let mut c = Body::Chunked(Chunk::Data(4));
        assert_eq!(c.skip(4), Skip::Within(4));
        assert_eq!(feed(c, b"\r\n0\r\n\r\n", 1), (7, 0, End::Done));
        assert_eq!(Body::chunked().skip(1), Skip::Lost(0));
        assert_eq!(Body::UntilClose.skip(9), Skip::Within(9));
    }
}
