//! Helpers for the `--redact` end-to-end test: nginx with extra server directives
//! (Set-Cookie headers), deterministic secrets, byte searches in (decompressed)
//! capture files and HAR header lookups.

#![allow(dead_code)]

use std::path::Path;

use crate::e2e::{temp_dir, Docroot, Nginx};
use crate::netns::Netns;

/// nginx (one process, `master_process off`) on 127.0.0.1:`port` with `directives`
/// added to its server block. Killed by pid when the namespace is dropped.
pub fn nginx_with(ns: &Netns, docroot: &Docroot, port: u16, directives: &str) -> Nginx {
    let server = format!("listen 127.0.0.1:{port};\n{directives}");
    Nginx::start_server(ns, docroot, temp_dir(), &server, &[("127.0.0.1", port)])
}

/// `prefix` followed by `len` deterministic alphanumerics (different for each `seed`),
/// so that any 16-byte window of the result is unlikely to occur anywhere else.
pub fn secret(prefix: &str, len: usize, seed: u64) -> String {
    const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut x = seed
        .wrapping_mul(6_364_136_223_846_793_005)
        .wrapping_add(1_442_695_040_888_963_407)
        | 1;
    let mut s = String::from(prefix);
    for _ in 0..len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        s.push(ALNUM[(x % ALNUM.len() as u64) as usize] as char);
    }
    s
}

/// Whether `needle` occurs in `hay`.
pub fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

/// The 16-byte windows (every 4 bytes) of `s`: a leak of any part of a secret that
/// spans packets shows up as one of them, even with packet headers in between.
pub fn windows(s: &str) -> Vec<&[u8]> {
    let b = s.as_bytes();
    if b.len() <= 16 {
        return vec![b];
    }
    let mut w: Vec<&[u8]> = (0..=b.len() - 16)
        .step_by(4)
        .map(|i| &b[i..i + 16])
        .collect();
    w.push(&b[b.len() - 16..]);
    w
}

/// The bytes of a capture file, zstd-decompressed if it is compressed.
pub fn capture_bytes(path: &Path) -> Vec<u8> {
    let raw = std::fs::read(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    if raw.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        zstd::stream::decode_all(&raw[..])
            .unwrap_or_else(|e| panic!("zstd-decompressing {}: {e}", path.display()))
    } else {
        raw
    }
}

/// Values of the HAR headers named `name` (case-insensitive) in a `headers` array.
pub fn har_values(headers: &serde_json::Value, name: &str) -> Vec<String> {
    headers
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|h| {
                    h["name"]
                        .as_str()
                        .is_some_and(|n| n.eq_ignore_ascii_case(name))
                })
                .filter_map(|h| h["value"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}
