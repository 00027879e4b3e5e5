//! Every fixture capture, analyzed by l7rec, against two references:
//! - tshark as an independent oracle: per TCP connection, the multiset of
//!   (method, uri, final status) must be equal (`-2 -o tcp.reassemble_out_of_order:TRUE`);
//! - the checked-in expected output `<fixture>.expected.jsonl` (regenerate with
//!   `L7REC_BLESS=1 cargo test -p l7rec-analyzer --test fixtures_vs_tshark`).

use std::collections::{BTreeMap, HashMap};
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
    cmd.args(["-T", "fields", "-E", "separator=\t", "-E", "occurrence=f"]);
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

/// tshark's view: connection (client, server) → sorted exchanges.
fn tshark_view(path: &Path) -> BTreeMap<Conn, Vec<Exchange>> {
    let reqs = tshark_fields(
        path,
        "http.request",
        &[
            "frame.number",
            "ip.src",
            "ipv6.src",
            "tcp.srcport",
            "ip.dst",
            "ipv6.dst",
            "tcp.dstport",
            "http.request.method",
            "http.request.uri",
        ],
    );
    let resps = tshark_fields(
        path,
        "http.response",
        &["http.request_in", "http.response.code"],
    );
    // The final (non-1xx) response answers the request.
    let mut status: HashMap<String, String> = HashMap::new();
    for r in &resps {
        if r.len() >= 2 && !r[1].starts_with('1') {
            status.insert(r[0].clone(), r[1].clone());
        }
    }
    let mut view: BTreeMap<Conn, Vec<Exchange>> = BTreeMap::new();
    for r in reqs {
        let conn = (endpoint(&r[1], &r[2], &r[3]), endpoint(&r[4], &r[5], &r[6]));
        let st = status.get(&r[0]).cloned().unwrap_or_default();
        view.entry(conn)
            .or_default()
            .push((r[7].clone(), r[8].clone(), st));
    }
    for v in view.values_mut() {
        v.sort();
    }
    view
}

/// l7rec's view, same shape, and the JSON lines report.
fn l7rec_view(path: &Path) -> (BTreeMap<Conn, Vec<Exchange>>, String) {
    let opts = Options {
        threads: Some(2),
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
                method.clone(),
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

#[test]
fn every_fixture_agrees_with_tshark_and_expected_output() {
    let bless = std::env::var_os("L7REC_BLESS").is_some();
    let mut failures = Vec::new();
    for path in fixtures() {
        let name = path.display().to_string();
        let (ours, json) = l7rec_view(&path);
        let theirs = tshark_view(&path);
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
