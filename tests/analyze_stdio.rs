//! `l7rec analyze -` reads the capture from standard input: a pipe gives the same
//! report as the file, compressed or not; `-` twice is refused. `-o -` writes the
//! report to standard output, as `record -o -` writes the capture there.

use std::io::Write;
use std::process::{Command, Stdio};

fn analyze(args: &[&str], stdin: Option<&[u8]>) -> std::process::Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_l7rec"))
        .arg("analyze")
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("l7rec runs");
    // Written beside the reading of the report, so neither pipe can fill up and stall
    // the other; the pipe closes when the writer is done, as after `cat`.
    let writer = stdin.map(|bytes| {
        let mut pipe = child.stdin.take().expect("stdin piped");
        let bytes = bytes.to_vec();
        std::thread::spawn(move || pipe.write_all(&bytes))
    });
    let out = child.wait_with_output().expect("l7rec ends");
    if let Some(w) = writer {
        // l7rec may stop reading early (an error), which closes the pipe: not ours to judge.
        let _ = w.join().expect("writer thread");
    }
    out
}

#[test]
fn a_pipe_reads_like_the_file() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/http/keepalive.pcap");
    let pcap = std::fs::read(path).expect("fixture");
    let zst = zstd::encode_all(&pcap[..], 1).expect("zstd");
    let from_file = analyze(&["--format", "json", path], None);
    assert!(from_file.status.success());
    let rows = String::from_utf8_lossy(&from_file.stdout).lines().count();
    assert!(rows >= 2, "the fixture has transactions");
    for input in [&pcap, &zst] {
        let piped = analyze(&["--format", "json", "-"], Some(input));
        let stderr = String::from_utf8_lossy(&piped.stderr);
        assert!(piped.status.success(), "{:?}: {stderr}", piped.status);
        assert_eq!(piped.stdout, from_file.stdout, "{stderr}");
    }
}

#[test]
fn standard_input_is_read_once() {
    let out = analyze(&["-", "-"], Some(b""));
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("can be read only once"), "{stderr}");
}

#[test]
fn dash_output_is_standard_output() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/http/keepalive.pcap");
    let plain = analyze(&["--format", "csv", path], None);
    let out = Command::new(env!("CARGO_BIN_EXE_l7rec"))
        .current_dir(dir.path())
        .args(["analyze", "--format", "csv", "-o", "-", path])
        .output()
        .expect("l7rec runs");
    assert!(out.status.success());
    assert_eq!(out.stdout, plain.stdout);
    assert!(!dir.path().join("-").exists(), "no file named -");
}
