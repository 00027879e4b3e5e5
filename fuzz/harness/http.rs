//! Harness of the `http` fuzz target (also replayed by
//! `crates/http/tests/fuzz_corpus.rs` on stable).
//!
//! Input: `[cfg] op*` fed to one [`Connection`], then `finish()`. `cfg` bit 0: start
//! midstream; bit 1: tiny limits (64-byte heads, 128 deferred bytes, 4 pending
//! transactions); bit 2: no header capture. Each op starts with a byte `k`; bit 7 is
//! the side (set: server), and `k & 7`:
//! * 0..=3: data: a length byte `n`, then `n` input bytes (fewer at the end of input);
//! * 4: a gap: a byte `g`; the length is `g & 0x7f` (0 allowed) or, when `g & 0x80`,
//!   an 8-byte LE `u64` (huge gaps);
//! * 5: close (FIN/RST) of that side;
//! * 6: take the transactions reported so far;
//! * 7: data with a timestamp going backwards.
//!
//! Checks: no panic; transaction indices are 0, 1, 2... in report order; after
//! `finish` later input is ignored and nothing more is reported.

use l7rec_http::{Config, Connection, Side, Transaction};

struct Cursor<'a>(&'a [u8]);

impl Cursor<'_> {
    fn byte(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }
    fn take(&mut self, n: usize) -> &[u8] {
        let n = n.min(self.0.len());
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        a
    }
}

/// Runs one input.
pub fn run(data: &[u8]) {
    let mut c = Cursor(data);
    let Some(cfg_byte) = c.byte() else {
        return;
    };
    let mut cfg = Config::default();
    if cfg_byte & 2 != 0 {
        cfg.max_head_bytes = 64;
        cfg.max_deferred_bytes = 128;
        cfg.max_pending = 4;
    }
    cfg.capture_headers = cfg_byte & 4 == 0;
    let mut conn = if cfg_byte & 1 != 0 {
        Connection::midstream_with_config(cfg)
    } else {
        Connection::with_config(cfg)
    };
    let mut all: Vec<Transaction> = Vec::new();
    let mut ts = 1_000u64;
    while let Some(k) = c.byte() {
        let side = if k & 0x80 != 0 {
            Side::Server
        } else {
            Side::Client
        };
        ts += 10;
        match k & 7 {
            0..=3 | 7 => {
                let n = usize::from(c.byte().unwrap_or(0));
                let at = if k & 7 == 7 { ts - 500 } else { ts };
                conn.data(side, c.take(n), at);
            }
            4 => {
                let g = c.byte().unwrap_or(0);
                let len = if g & 0x80 != 0 {
                    let b = c.take(8);
                    let mut a = [0u8; 8];
                    a[..b.len()].copy_from_slice(b);
                    u64::from_le_bytes(a)
                } else {
                    u64::from(g & 0x7f)
                };
                conn.gap(side, len);
            }
            5 => conn.close(side, ts),
            _ => all.extend(conn.take_transactions()),
        }
    }
    conn.finish();
    all.extend(conn.take_transactions());
    for (i, t) in all.iter().enumerate() {
        assert_eq!(t.index as usize, i, "transaction indices out of order");
    }
    // After finish, input is ignored.
    conn.data(Side::Client, b"GET / HTTP/1.1\r\n\r\n", ts);
    conn.gap(Side::Server, 5);
    conn.close(Side::Server, ts);
    conn.finish();
    assert!(conn.take_transactions().is_empty(), "reports after finish");
    assert!(
        !conn.is_upgraded()
            || all
                .iter()
                .any(|t| t.flags.contains(l7rec_http::Flags::UPGRADE))
    );
}
