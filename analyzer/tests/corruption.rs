//! Truncated and corrupted captures through `analyze`: what precedes the damage is
//! analyzed exactly as if the file ended there, the read error names the byte offset
//! of the damaged block, nothing panics, and a length field claiming gigabytes does
//! not make the analyzer allocate them (checked in a child process under a small
//! `RLIMIT_AS`).
//!
//! Input: `fixtures/l7rec/nginx-python.pcapng` (an l7rec recording: zstd pcapng with
//! l7rec custom blocks), decompressed here.

use std::path::{Path, PathBuf};
use std::process::Command;

use l7rec_analyzer::{analyze, Analysis, Options, Transaction};

fn fixture_plain() -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/l7rec/nginx-python.pcapng");
    let compressed = std::fs::read(&path).expect("fixture present");
    zstd::decode_all(&compressed[..]).expect("fixture is zstd")
}

/// (offset, total length) of every pcapng block (the fixture is little-endian).
fn blocks(plain: &[u8]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut off = 0;
    while off < plain.len() {
        let len = u32::from_le_bytes(plain[off + 4..off + 8].try_into().unwrap()) as usize;
        out.push((off, len));
        off += len;
    }
    assert_eq!(off, plain.len());
    out
}

struct Scratch {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

impl Scratch {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("capture.pcapng");
        Scratch { _dir: dir, path }
    }

    fn try_analyze(&self, bytes: &[u8]) -> Result<Analysis, l7rec_analyzer::AnalyzeError> {
        std::fs::write(&self.path, bytes).expect("write");
        let opts = Options {
            threads: Some(1),
            without_headers: false,
        };
        analyze(&[&self.path], &opts, &|_, _| {})
    }

    fn analyze(&self, bytes: &[u8]) -> Analysis {
        self.try_analyze(bytes)
            .expect("a damaged capture still analyzes")
    }
}

fn read_error(a: &Analysis) -> Option<&str> {
    assert!(a.outcome.read_errors.len() <= 1);
    a.outcome.read_errors.first().map(|(_, e)| e.as_str())
}

fn txs(a: &Analysis) -> &[Transaction] {
    &a.transactions
}

#[test]
fn truncation_at_many_offsets() {
    let plain = fixture_plain();
    let blocks = blocks(&plain);
    let s = Scratch::new();
    let full = s.analyze(&plain);
    assert!(read_error(&full).is_none());
    assert!(full.transactions.len() >= 4, "fixture has transactions");

    // Cut at every block boundary, and inside every block at a few places (just after
    // the type, inside the length, inside the body, one byte short of the end).
    let mut cuts = Vec::new();
    for &(off, len) in &blocks {
        cuts.push((off, None));
        for d in [1, 6, 11, len / 2, len - 1] {
            if d > 0 && d < len {
                cuts.push((off + d, Some(off)));
            }
        }
    }
    cuts.push((plain.len(), None));
    let mut boundary_result: Option<Vec<Transaction>> = None;
    for (cut, inside) in cuts {
        if cut < 4 {
            // Not even a magic number: not a capture (an error, not a panic).
            let err = s.try_analyze(&plain[..cut]).expect_err("too short");
            let want = if cut == 0 {
                "the file is empty"
            } else {
                "not a pcap"
            };
            assert!(err.to_string().contains(want), "cut {cut}: {err}");
            continue;
        }
        let a = s.analyze(&plain[..cut]);
        assert!(a.transactions.len() <= full.transactions.len(), "cut {cut}");
        match inside {
            None => {
                assert!(
                    read_error(&a).is_none(),
                    "cut {cut} at a boundary: {:?}",
                    read_error(&a)
                );
                boundary_result = Some(a.transactions);
            }
            Some(block) => {
                let err = read_error(&a).unwrap_or_else(|| panic!("cut {cut}: no error"));
                assert!(
                    err.contains("truncated") && err.contains(&format!("at byte {block}")),
                    "cut {cut} inside the block at {block}: {err}"
                );
                // Exactly what the file up to the damaged block gives.
                if let Some(prefix) = &boundary_result {
                    assert_eq!(txs(&a), &prefix[..], "cut {cut}");
                }
            }
        }
    }
    // The cut at the end is the whole file.
    assert_eq!(boundary_result.as_deref(), Some(txs(&full)));

    // Compressed: cutting the zstd stream anywhere reads a prefix and says so.
    let zst = zstd::encode_all(&plain[..], 3).unwrap();
    for cut in (8..zst.len()).step_by(zst.len() / 97 + 1) {
        match s.try_analyze(&zst[..cut]) {
            Ok(a) => {
                assert!(a.transactions.len() <= full.transactions.len());
                assert!(read_error(&a).is_some(), "zstd cut at {cut} not reported");
            }
            // Cut before the first decompressed bytes: the file cannot be opened as a
            // capture at all, and the error says where.
            Err(e) => assert!(
                e.to_string().contains("at byte 0"),
                "zstd cut at {cut}: {e}"
            ),
        }
    }
}

/// A block whose leading length is replaced by `len`.
fn with_len(plain: &[u8], off: usize, len: u32) -> Vec<u8> {
    let mut b = plain.to_vec();
    b[off + 4..off + 8].copy_from_slice(&len.to_le_bytes());
    b
}

#[test]
fn corrupted_blocks_stop_reading_at_their_offset() {
    let plain = fixture_plain();
    let blocks = blocks(&plain);
    let s = Scratch::new();
    // Every block but the first (the section header), then some.
    for (i, &(off, len)) in blocks.iter().enumerate().skip(1) {
        let before = s.analyze(&plain[..off]);
        let last = i == blocks.len() - 1;
        let mut variants: Vec<(&str, Vec<u8>)> = vec![
            ("huge length", with_len(&plain, off, 0xffff_fff0)),
            ("length 0", with_len(&plain, off, 0)),
            ("length 8", with_len(&plain, off, 8)),
            ("misaligned length", with_len(&plain, off, len as u32 + 1)),
            ("misaligned length", with_len(&plain, off, len as u32 - 2)),
            (
                "length past the limit",
                with_len(&plain, off, (64 << 20) + 4),
            ),
        ];
        let mut trailing = plain.clone();
        trailing[off + len - 4..off + len].copy_from_slice(&(len as u32 + 4).to_le_bytes());
        variants.push(("trailing length", trailing));
        if !last {
            variants.push(("longer length", with_len(&plain, off, len as u32 + 4)));
        }
        // Section-header magic where a block starts, with a bad byte-order magic.
        let mut shb = plain.clone();
        shb[off..off + 4].copy_from_slice(&0x0a0d_0d0au32.to_le_bytes());
        shb[off + 8..off + 12].copy_from_slice(b"XXXX");
        variants.push(("bad byte-order magic", shb));
        for (what, bytes) in variants {
            let a = s.analyze(&bytes);
            let err =
                read_error(&a).unwrap_or_else(|| panic!("block {i} at {off}, {what}: no error"));
            assert!(
                err.contains(&format!("at byte {off}")),
                "block {i} at {off}, {what}: {err}"
            );
            assert!(
                err.contains("corrupt") || (err.contains("truncated") && what != "huge length"),
                "block {i} at {off}, {what}: {err}"
            );
            assert_eq!(
                txs(&a),
                txs(&before),
                "block {i} at {off}, {what}: not what precedes the damage"
            );
        }
    }
}

#[test]
fn bad_magic_is_not_a_capture_but_no_panic() {
    let mut plain = fixture_plain();
    plain[0] ^= 0xff;
    let s = Scratch::new();
    std::fs::write(&s.path, &plain).unwrap();
    let err = analyze(&[&s.path], &Options::default(), &|_, _| {})
        .expect_err("not a capture any more")
        .to_string();
    assert!(err.contains("not a pcap or pcapng"), "{err}");
}

// ---- bounded memory, in a child process under RLIMIT_AS ----

const CHILD_ENV: &str = "L7REC_CORRUPTION_CHILD";
/// Address-space limit of the child (virtual memory, so with headroom for thread
/// stacks and malloc arenas; far below what the hostile lengths claim).
const LIMIT_KIB: u64 = 768 * 1024;

/// Runs this test binary's `test` in a child under `ulimit -v`; returns whether it passed.
fn run_limited_child(test: &str, mode: &str) -> bool {
    let exe = std::env::current_exe().unwrap();
    let status = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ulimit -v {LIMIT_KIB} && exec \"$0\" --exact {test} --nocapture --test-threads 1"
        ))
        .arg(exe)
        .env(CHILD_ENV, mode)
        .env("MALLOC_ARENA_MAX", "2")
        .stderr(if mode == "control" {
            std::process::Stdio::null()
        } else {
            std::process::Stdio::inherit()
        })
        .status()
        .expect("spawn the child");
    status.success()
}

/// In the child: hostile lengths (pcapng block length 0xFFFFFFF0 and just under the
/// reader's 64 MiB limit, pcap record length 0xFFFFFFF0 and 60 MiB) in small files,
/// analyzed with 1 and 2 threads.
fn hostile_inputs() {
    let plain = fixture_plain();
    let off = blocks(&plain)[3].0;
    let mut files = vec![
        with_len(&plain, off, 0xffff_fff0),
        with_len(&plain, off, (64 << 20) - 4),
    ];
    for incl in [0xffff_fff0u32, 60 << 20] {
        let mut p = Vec::new();
        for v in [0xa1b2_c3d4u32, 0x0004_0002, 0, 0, 262_144, 1] {
            p.extend_from_slice(&v.to_le_bytes());
        }
        for v in [0u32, 0, incl, incl] {
            p.extend_from_slice(&v.to_le_bytes());
        }
        p.extend_from_slice(&[0u8; 100]);
        files.push(p);
    }
    let s = Scratch::new();
    for (i, bytes) in files.iter().enumerate() {
        for threads in [1, 2] {
            std::fs::write(&s.path, bytes).unwrap();
            let opts = Options {
                threads: Some(threads),
                without_headers: false,
            };
            let a = analyze(&[&s.path], &opts, &|_, _| {}).expect("analyzes");
            let err = read_error(&a).unwrap_or_else(|| panic!("file {i}: no error"));
            assert!(
                err.contains("corrupt") || err.contains("truncated"),
                "{err}"
            );
        }
    }
}

#[test]
fn hostile_lengths_do_not_allocate() {
    match std::env::var(CHILD_ENV).as_deref() {
        Ok("hostile") => return hostile_inputs(),
        Ok("control") => {
            // Negative control: allocating what a hostile length claims must fail
            // under the limit, or the limit proves nothing.
            let v = vec![1u8; 0xffff_fff0];
            std::hint::black_box(&v);
            return;
        }
        _ => {}
    }
    assert!(
        !run_limited_child("hostile_lengths_do_not_allocate", "control"),
        "the child's RLIMIT_AS does not stop a 4 GiB allocation"
    );
    assert!(
        run_limited_child("hostile_lengths_do_not_allocate", "hostile"),
        "analyzing hostile lengths failed under a {LIMIT_KIB} KiB address-space limit"
    );
}
