//! End to end: `l7rec record --redact` inside a network namespace this test creates,
//! nginx sending Set-Cookie headers and curl sending Authorization,
//! Proxy-Authorization, a ~3 KB Cookie and an X-Api-Key header (`--redact-header`).
//! `lo` has MTU 1280 and no offloads, so the cookie value and the big Set-Cookie value
//! span several packets. Checked: no part of any secret is in the file (plain, and
//! zstd after decompression), the header names are; tshark still parses every request
//! and shows the masked values; `l7rec analyze --format har` shows `*` values of the
//! original lengths. A control run without `--redact` finds the secrets, so the
//! checks can fail.
//!
//! Needs root, iproute2, nginx, curl, tshark, ethtool, python3: a missing tool fails
//! the test with the reason, never skips it.

#[path = "common/e2e.rs"]
mod e2e;
#[path = "common/netns.rs"]
mod netns;
#[path = "common/redact_util.rs"]
mod redact_util;

use std::path::Path;
use std::thread;
use std::time::Duration;

use e2e::*;
use netns::{require_tools, Netns};
use redact_util::*;

const PORT: u16 = 8080;
const SETCOOKIE: &str = "SECRETSETCOOKIEVALUE123";
const URIS: [&str; 2] = ["/index.html?r=1", "/index.html?r=2"];

/// The secrets of one run and the header values carrying them.
struct Secrets {
    token: String,
    proxy: String,
    cookie: String,
    apikey: String,
    setcookie_big: String,
}

impl Secrets {
    fn new() -> Self {
        Self {
            token: secret("SECRETTOKEN", 40, 1),
            proxy: secret("SECRETPROXY", 24, 2),
            cookie: secret("SECRETCOOKIE", 3000, 3),
            apikey: secret("SECRETAPIKEY", 32, 4),
            setcookie_big: secret("SECRETSETBIG", 2000, 5),
        }
    }

    /// Every secret string.
    fn all(&self) -> Vec<&str> {
        vec![
            &self.token,
            &self.proxy,
            &self.cookie,
            &self.apikey,
            &self.setcookie_big,
            SETCOOKIE,
        ]
    }

    /// (header name, value as sent) of the request.
    fn request_headers(&self) -> Vec<(&'static str, String)> {
        vec![
            ("Authorization", format!("Bearer {}", self.token)),
            ("Proxy-Authorization", format!("Basic {}", self.proxy)),
            ("Cookie", format!("session={}", self.cookie)),
            ("X-Api-Key", self.apikey.clone()),
        ]
    }

    /// Set-Cookie values as nginx sends them.
    fn set_cookies(&self) -> Vec<String> {
        vec![
            format!("sid={SETCOOKIE}; Path=/"),
            format!("big={}; Path=/", self.setcookie_big),
        ]
    }
}

/// A finished recording in its own namespace.
struct Recording {
    _dir: tempfile::TempDir,
    file: std::path::PathBuf,
    secrets: Secrets,
    recorder_said: String,
}

/// Records two keep-alive requests of one curl run against nginx with `extra`
/// recorder options; stops the recorder with SIGINT.
fn record(extra: &[&str]) -> Recording {
    require_tools(&["ip", "nginx", "curl", "tshark", "ethtool", "python3"]);
    let secrets = Secrets::new();
    let ns = Netns::new();
    ns.ip(&["link", "set", "lo", "mtu", "1280"]);
    ns.run(
        &[
            "ethtool", "-K", "lo", "tso", "off", "gso", "off", "gro", "off",
        ],
        secs(10),
    );
    let www = Docroot::new();
    let directives: String = secrets
        .set_cookies()
        .iter()
        .map(|v| format!("add_header Set-Cookie \"{v}\";\n"))
        .collect();
    let _nginx = nginx_with(&ns, &www, PORT, &directives);
    let dir = temp_dir();
    let file = dir.path().join("cap.pcapng");
    let mut args = vec!["-i", "lo", "--port", "8080"];
    args.extend_from_slice(extra);
    let mut rec = Recorder::start(&ns, &file, &args);
    rec.wait_ready(secs(10));

    let mut curl: Vec<String> = ["curl", "-sS", "-o", "/dev/null", "-o", "/dev/null"]
        .map(String::from)
        .to_vec();
    for (name, value) in secrets.request_headers() {
        if name == "Cookie" {
            curl.extend(["-b".into(), value]);
        } else {
            curl.extend(["-H".into(), format!("{name}: {value}")]);
        }
    }
    curl.extend(URIS.map(|u| format!("http://127.0.0.1:{PORT}{u}")));
    let curl: Vec<&str> = curl.iter().map(String::as_str).collect();
    ns.run(&curl, secs(10));

    thread::sleep(Duration::from_millis(300));
    let exit = rec.stop(libc::SIGINT, secs(10));
    assert!(
        exit.status.success(),
        "l7rec record {args:?} failed ({}): {}",
        exit.status,
        exit.stderr
    );
    Recording {
        _dir: dir,
        file,
        secrets,
        recorder_said: exit.stderr,
    }
}

/// `l7rec analyze --format har FILE` as JSON.
fn har(file: &Path) -> serde_json::Value {
    let out = run_with_timeout(
        std::process::Command::new(L7REC)
            .args(["analyze", "--format", "har"])
            .arg(file),
        secs(60),
    );
    assert!(
        out.status.success(),
        "l7rec analyze --format har failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "analyze --format har printed no JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// The HAR entries, in request order, one per URI of [`URIS`].
fn har_entries(file: &Path) -> Vec<serde_json::Value> {
    let h = har(file);
    let entries = h["log"]["entries"].as_array().cloned().unwrap_or_default();
    let mut by_uri = Vec::new();
    for uri in URIS {
        let found: Vec<_> = entries
            .iter()
            .filter(|e| {
                e["request"]["url"]
                    .as_str()
                    .is_some_and(|u| u.ends_with(uri))
            })
            .cloned()
            .collect();
        assert_eq!(found.len(), 1, "one HAR entry for {uri}; HAR: {h}");
        by_uri.extend(found);
    }
    by_uri
}

/// tshark's view of the requests: (uri, authorization, cookie length, segment count).
fn tshark_requests(file: &Path) -> Tshark {
    let t = tshark_fields(
        file,
        "http.request",
        &[
            "http.request.uri",
            "http.authorization",
            "http.proxy_authorization",
            "http.cookie",
            "tcp.segment.count",
        ],
    );
    assert!(t.status.success(), "tshark failed: {}", t.errors);
    t
}

fn stars(s: &str) -> String {
    "*".repeat(s.len())
}

/// Checks a redacted recording (`bytes`: the decompressed file).
fn assert_redacted(r: &Recording) {
    let bytes = capture_bytes(&r.file);
    for s in r.secrets.all() {
        for w in windows(s) {
            assert!(
                !contains(&bytes, w),
                "part {:?} of secret {:?}... is in the redacted capture {}; recorder said:\n{}",
                String::from_utf8_lossy(w),
                &s[..20.min(s.len())],
                r.file.display(),
                r.recorder_said
            );
        }
    }
    for name in [
        "Authorization: ",
        "Proxy-Authorization: ",
        "Cookie: ",
        "X-Api-Key: ",
        "Set-Cookie: ",
        "Host: 127.0.0.1:8080",
    ] {
        assert!(
            contains(&bytes, name.as_bytes()),
            "header {name:?} must stay readable in the redacted capture"
        );
    }

    // tshark still parses both requests (reassembled over several packets) and shows
    // the masked values.
    let t = tshark_requests(&r.file);
    let uris = t.column(0);
    assert_eq!(uris, URIS, "tshark must find both requests: {:?}", t.rows);
    let headers = r.secrets.request_headers();
    for row in &t.rows {
        assert_eq!(row[1], stars(&headers[0].1), "tshark http.authorization");
        assert_eq!(
            row[2],
            stars(&headers[1].1),
            "tshark http.proxy_authorization"
        );
        assert_eq!(row[3], stars(&headers[2].1), "tshark http.cookie");
        let segments: usize = row[4].parse().unwrap_or(1);
        assert!(
            segments >= 3,
            "the request must span several packets (MTU 1280), tshark says {segments}"
        );
    }

    // analyze: the same headers, `*` values of the original lengths.
    for e in har_entries(&r.file) {
        let req = &e["request"]["headers"];
        for (name, value) in &headers {
            assert_eq!(
                har_values(req, name),
                [stars(value)],
                "HAR request header {name}: {e}"
            );
        }
        assert_eq!(har_values(req, "Host"), ["127.0.0.1:8080"]);
        let resp = &e["response"]["headers"];
        let want: Vec<String> = r.secrets.set_cookies().iter().map(|v| stars(v)).collect();
        assert_eq!(har_values(resp, "Set-Cookie"), want, "HAR Set-Cookie: {e}");
        assert_eq!(e["response"]["status"].as_u64(), Some(200));
        assert_eq!(
            e["response"]["content"]["size"].as_u64(),
            Some(INDEX_BODY.len() as u64),
            "the body is untouched: {e}"
        );
    }
}

#[test]
fn redact_plain_file_has_no_secret_bytes() {
    let r = record(&["--redact", "--redact-header", "X-Api-Key", "--no-compress"]);
    assert!(
        !capture_bytes(&r.file).starts_with(&[0x28, 0xb5, 0x2f, 0xfd]),
        "--no-compress must write plain pcapng"
    );
    assert_redacted(&r);
}

#[test]
fn redact_zstd_file_has_no_secret_bytes() {
    let r = record(&["--redact-header", "x-api-key"]); // implies --redact
    let raw = std::fs::read(&r.file).expect("reading the capture");
    assert!(
        raw.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]),
        "the default mode writes zstd"
    );
    assert_redacted(&r);
}

/// Without `--redact` the same run stores the secrets: the checks above can fail.
#[test]
fn control_without_redact_stores_the_secrets() {
    let r = record(&["--no-compress"]);
    let bytes = capture_bytes(&r.file);
    for s in r.secrets.all() {
        let found = windows(s).iter().filter(|w| contains(&bytes, w)).count();
        assert!(
            found > 0,
            "secret {:?}... must be in an unredacted capture",
            &s[..20.min(s.len())]
        );
    }
    let t = tshark_requests(&r.file);
    assert_eq!(t.column(0), URIS);
    let headers = r.secrets.request_headers();
    for row in &t.rows {
        assert_eq!(row[1], headers[0].1);
        assert_eq!(row[3], headers[2].1);
    }
    for e in har_entries(&r.file) {
        assert_eq!(
            har_values(&e["request"]["headers"], "X-Api-Key"),
            std::slice::from_ref(&r.secrets.apikey)
        );
        assert_eq!(
            har_values(&e["response"]["headers"], "Set-Cookie"),
            r.secrets.set_cookies()
        );
    }
}

/// A header name that cannot be one is refused before anything is recorded.
#[test]
fn invalid_redact_header_is_refused() {
    require_tools(&[]);
    let dir = temp_dir();
    let file = dir.path().join("never.pcapng");
    let out = run_with_timeout(
        std::process::Command::new(L7REC)
            .args(["record", "-o"])
            .arg(&file)
            .args(["--redact-header", "Bad Name"]),
        secs(10),
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--redact-header") && err.contains("Bad Name"),
        "{err}"
    );
    assert!(!file.exists(), "no capture file is created");
}
