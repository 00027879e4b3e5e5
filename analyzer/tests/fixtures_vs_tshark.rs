//! Every fixture capture, analyzed by l7rec, against two references:
//! - tshark as an independent oracle: per TCP connection, the multiset of
//!   (method, uri, final status) must be equal (`-2 -o tcp.reassemble_out_of_order:TRUE`);
//! - the checked-in expected output `<fixture>.expected.jsonl` (regenerate with
//!   `L7REC_BLESS=1 cargo test -p l7rec-analyzer --test fixtures_vs_tshark`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use l7rec_analyzer::{analyze, report, Options};

type Conn = (String, String);
type Exchange = (String, String, String);

fn fixtures() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures");
    let mut out = Vec::new();
    for dir in ["http", "l7rec", "reader"] {
        let Ok(entries) = std::fs::read_dir(root.join(dir)) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            if name.ends_with(".pcap") || name.ends_with(".pcapng") || name.ends_with(".pcapng.gz")
            {
                out.push(p);
            }
        }
    }
    out.sort();
    assert!(out.len() >= 4, "fixtures missing under {}", root.display());
    out
}

fn tshark_fields(path: &Path, filter: &str, fields: &[&str]) -> Vec<Vec<String>> {
    let mut cmd = Command::new("tshark");
    cmd.arg("-r").arg(path);
    cmd.args(["-2", "-o", "tcp.reassemble_out_of_order:TRUE", "-Y", filter]);
    // Several messages in one frame give several values per field, joined by \x01.
    cmd.args(["-T", "fields", "-E", "separator=\t", "-E", "occurrence=a"]);
    cmd.args(["-E", "aggregator=\u{1}"]);
    for f in fields {
        cmd.args(["-e", f]);
    }
    let out = cmd
        .output()
        .expect("tshark is required (apt-get install tshark; .ci/run installs it)");
    assert!(
        out.status.success(),
        "tshark: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.split('\t').map(str::to_owned).collect())
        .collect()
}

fn endpoint(ip4: &str, ip6: &str, port: &str) -> String {
    if ip4.is_empty() {
        format!("[{ip6}]:{port}")
    } else {
        format!("{ip4}:{port}")
    }
}

/// tshark's view: connection (client, server) → sorted exchanges. tshark extracts
/// the messages; requests and final (non-1xx) responses of a connection are paired
/// in order, as HTTP/1.1 requires (tshark's own `http.request_in` pairing gives up on
/// pipelined requests).
fn tshark_view(path: &Path) -> BTreeMap<Conn, Vec<Exchange>> {
    let addr_fields = [
        "ip.src",
        "ipv6.src",
        "tcp.srcport",
        "ip.dst",
        "ipv6.dst",
        "tcp.dstport",
    ];
    let mut req_fields = addr_fields.to_vec();
    req_fields.extend(["http.request.method", "http.request.uri"]);
    let mut resp_fields = addr_fields.to_vec();
    resp_fields.push("http.response.code");
    let src = |r: &[String]| endpoint(&r[0], &r[1], &r[2]);
    let dst = |r: &[String]| endpoint(&r[3], &r[4], &r[5]);
    let mut requests: BTreeMap<Conn, Vec<(String, String)>> = BTreeMap::new();
    for r in tshark_fields(path, "http.request", &req_fields) {
        let list = requests.entry((src(&r), dst(&r))).or_default();
        // Several messages in one frame: values in message order.
        for (method, uri) in r[6].split('\u{1}').zip(r[7].split('\u{1}')) {
            list.push((method.to_owned(), uri.to_owned()));
        }
    }
    let mut statuses: BTreeMap<Conn, Vec<String>> = BTreeMap::new();
    for r in tshark_fields(path, "http.response", &resp_fields) {
        let list = statuses.entry((dst(&r), src(&r))).or_default();
        list.extend(
            r[6].split('\u{1}')
                .filter(|c| !c.starts_with('1'))
                .map(str::to_owned),
        );
    }
    let mut view: BTreeMap<Conn, Vec<Exchange>> = BTreeMap::new();
    let conns: std::collections::BTreeSet<Conn> =
        requests.keys().chain(statuses.keys()).cloned().collect();
    for conn in conns {
        let reqs = requests.remove(&conn).unwrap_or_default();
        let codes = statuses.remove(&conn).unwrap_or_default();
        let n = reqs.len().max(codes.len());
        let v = view.entry(conn).or_default();
        for i in 0..n {
            let (m, u) = reqs.get(i).cloned().unwrap_or_default();
            v.push((m, u, codes.get(i).cloned().unwrap_or_default()));
        }
    }
    for v in view.values_mut() {
        v.sort();
    }
    view
}

/// l7rec's view with `threads` threads, same shape, and the JSON lines report.
fn l7rec_view(path: &Path, threads: usize) -> (BTreeMap<Conn, Vec<Exchange>>, String) {
    let opts = Options {
        threads: Some(threads),
        without_headers: true,
    };
    let a = analyze(&[path], &opts, &|_, _| {}).unwrap();
    assert!(
        a.outcome.read_errors.is_empty(),
        "{}: {:?}",
        path.display(),
        a.outcome.read_errors
    );
    let mut view: BTreeMap<Conn, Vec<Exchange>> = BTreeMap::new();
    for t in &a.transactions {
        let Some(method) = &t.method else { continue };
        view.entry((t.client.to_string(), t.server.to_string()))
            .or_default()
            .push((
                method.to_string(),
                t.uri.clone().unwrap_or_default(),
                t.status.map(|s| s.to_string()).unwrap_or_default(),
            ));
    }
    for v in view.values_mut() {
        v.sort();
    }
    let mut json = Vec::new();
    let kind = report::Kind::Transactions(report::Format::Json);
    report::write_all(kind, &a.transactions, &a.outcome, &mut json).unwrap();
    (view, String::from_utf8(json).unwrap())
}

/// `<fixture>.tshark-misses.tsv` lists requests tshark does not report although they
/// are in the capture (client, server, method, uri, status; `#` lines say why). Each
/// replaces tshark's response-only entry with that status on that connection (or is
/// added); everything else must agree.
fn add_documented_differences(path: &Path, view: &mut BTreeMap<Conn, Vec<Exchange>>) {
    let notes = PathBuf::from(format!("{}.tshark-misses.tsv", path.display()));
    let Ok(text) = std::fs::read_to_string(&notes) else {
        return;
    };
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
    {
        let c: Vec<&str> = line.split('\t').collect();
        assert_eq!(c.len(), 5, "{}: bad line {line:?}", notes.display());
        let v = view.entry((c[0].to_owned(), c[1].to_owned())).or_default();
        let orphan = (String::new(), String::new(), c[4].to_owned());
        if let Some(i) = v.iter().position(|e| e == &orphan) {
            v.remove(i);
        }
        v.push((c[2].to_owned(), c[3].to_owned(), c[4].to_owned()));
        v.sort();
    }
}

#[test]
fn every_fixture_agrees_with_tshark_and_expected_output() {
    let bless = std::env::var_os("L7REC_BLESS").is_some();
    let mut failures = Vec::new();
    for path in fixtures() {
        let name = path.display().to_string();
        let (ours, json) = l7rec_view(&path, 2);
        let mut theirs = tshark_view(&path);
        add_documented_differences(&path, &mut theirs);
        assert!(
            !theirs.is_empty(),
            "{name}: tshark sees no HTTP request; fixture broken?"
        );
        if ours != theirs {
            failures.push(format!("{name}:\n  l7rec:  {ours:?}\n  tshark: {theirs:?}"));
        }
        let expected = PathBuf::from(format!("{}.expected.jsonl", path.display()));
        if bless {
            std::fs::write(&expected, &json).unwrap();
        } else {
            match std::fs::read_to_string(&expected) {
                Ok(want) if want == json => {}
                Ok(want) => failures.push(format!(
                    "{name}: output differs from {}\n--- expected\n{want}--- got\n{json}",
                    expected.display()
                )),
                Err(e) => failures.push(format!(
                    "{}: {e} (run with L7REC_BLESS=1)",
                    expected.display()
                )),
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// One thread (reading, parsing and processing taking turns), two (each on a thread of
/// its own) and three (shards processed on a pool) must report the same, byte for byte.
#[test]
fn every_thread_count_reports_the_same() {
    for path in fixtures() {
        let (_, two) = l7rec_view(&path, 2);
        for threads in [1, 3] {
            let (_, json) = l7rec_view(&path, threads);
            assert!(
                json == two,
                "{}: --threads {threads} differs from --threads 2\n--- 2\n{two}--- {threads}\n{json}",
                path.display()
            );
        }
    }
}
