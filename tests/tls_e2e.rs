//! End to end, TLS: nginx with a self-signed certificate and `curl -k` (one keep-alive
//! connection: a small page, a 300 KiB file, a ~4 KB URL) inside a network namespace the
//! test creates; `l7rec record` captures the plaintext through its uprobes on libssl.so.3.
//! Checked by tshark (the decrypted requests on the "l7rec-tls" interface, no keys) and by
//! `l7rec analyze --format json` (flag "tls", status, sizes, client and server process),
//! and by reading the file: the ciphertext of the same connection is there too.
//!
//! The ciphertext is not HTTP, so the socket filter keeps it only with `--all-tcp`; the
//! test records with `--all-tcp --port 8443`.
//!
//! Needs root, iproute2, nginx, openssl, python3, curl, tshark and Debian's
//! libssl.so.3: a missing tool fails the test with the reason, never skips it.

#[path = "common/e2e.rs"]
mod e2e;
#[path = "common/netns.rs"]
mod netns;

use std::path::Path;
use std::process::Command;
use std::thread;
use std::time::Duration;

use e2e::*;
use netns::{require_tools, Netns};

const TLS_PORT: u16 = 8443;
const TLS_IFACE: &str = "l7rec-tls";
const LIBSSL: &str = "/usr/lib/x86_64-linux-gnu/libssl.so.3";

/// nginx serving `docroot` over TLS on 127.0.0.1:8443 with a fresh self-signed
/// certificate (in its own temp dir). Killed by pid when `ns` is dropped.
struct TlsNginx {
    pid: u32,
    _nginx: Nginx,
}

impl TlsNginx {
    fn start(ns: &Netns, docroot: &Docroot) -> Self {
        let dir = temp_dir();
        let d = dir.path().display().to_string();
        let out = run_with_timeout(
            Command::new("openssl")
                .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes"])
                .args(["-subj", "/CN=localhost", "-days", "1"])
                .args([
                    "-keyout",
                    &format!("{d}/key.pem"),
                    "-out",
                    &format!("{d}/cert.pem"),
                ]),
            secs(60),
        );
        assert!(
            out.status.success(),
            "openssl req failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let server = format!(
            "listen 127.0.0.1:{TLS_PORT} ssl;\n\
             ssl_certificate {d}/cert.pem;\n\
             ssl_certificate_key {d}/key.pem;"
        );
        let nginx = Nginx::start_server(ns, docroot, dir, &server, &[("127.0.0.1", TLS_PORT)]);
        Self {
            pid: nginx.pid,
            _nginx: nginx,
        }
    }
}

/// `curl -k` fetching `paths` over one keep-alive connection; returns curl's pid and
/// one "CODE SIZE" line per transfer.
fn curl_keepalive(ns: &Netns, extra: &[&str], paths: &[String]) -> (u32, Vec<String>) {
    let mut args: Vec<String> = vec![
        "sh".into(),
        "-c".into(),
        "echo $$; exec curl -k -sS -w '%{http_code} %{size_download}\\n' \"$@\"".into(),
        "sh".into(),
    ];
    args.extend(extra.iter().map(|a| a.to_string()));
    for p in paths {
        args.push("-o".into());
        args.push("/dev/null".into());
        args.push(format!("https://127.0.0.1:{TLS_PORT}{p}"));
    }
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = ns.run_status(&argv, secs(20));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "curl failed ({}): {stdout} {}\nservers said:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
        ns.log()
    );
    let mut lines = stdout.lines();
    let pid = lines
        .next()
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or_else(|| panic!("no pid in curl's output {stdout:?}"));
    (pid, lines.map(str::to_owned).collect())
}

/// TCP payloads of port-8443 packets on interface `lo`, in file order: (from the
/// client?, payload).
fn ciphertext_on_lo(file: &Path) -> Vec<(bool, Vec<u8>)> {
    use l7rec_capture::{CaptureReader, Event};
    let mut r = CaptureReader::open(file).expect("opening the capture");
    let mut lo_ids = Vec::new();
    let mut out = Vec::new();
    while let Some(ev) = r.next_event() {
        let Ok(Event::Packet(p)) = ev else { continue };
        let (id, lt, data) = (p.interface_id, p.linktype, p.data.to_vec());
        if !lo_ids.contains(&id) {
            // The interface list grows as IDBs are read; refresh it when needed.
            lo_ids = r
                .interfaces()
                .enumerate()
                .filter(|(_, i)| i.name == "lo")
                .map(|(n, _)| n as u32)
                .collect();
            if !lo_ids.contains(&id) {
                continue;
            }
        }
        let Ok(seg) = l7rec_analyzer::decode::tcp_segment(lt, &data) else {
            continue;
        };
        if seg.payload.is_empty() || (seg.src.port() != TLS_PORT && seg.dst.port() != TLS_PORT) {
            continue;
        }
        out.push((seg.dst.port() == TLS_PORT, seg.payload.to_vec()));
    }
    out
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn https_between_curl_and_nginx_is_recorded_in_the_clear() {
    require_tools(&["ip", "nginx", "openssl", "python3", "curl", "tshark"]);
    assert!(
        Path::new(LIBSSL).exists(),
        "{LIBSSL} missing (Debian's libssl3); TLS capture cannot be tested"
    );
    let ns = Netns::new();
    let docroot = Docroot::new();
    let nginx = TlsNginx::start(&ns, &docroot);
    let dir = temp_dir();
    let out = dir.path().join("tls.pcapng");

    let mut rec = Recorder::start(&ns, &out, &["--all-tcp", "--port", &TLS_PORT.to_string()]);
    rec.wait_ready(secs(20));
    assert!(
        rec.stderr().contains("TLS plaintext from"),
        "TLS capture must be on by default when libssl.so.3 exists; l7rec said:\n{}",
        rec.stderr()
    );

    let long = format!("/index.html?q={}", long_query(4000, 7));
    let paths = [
        "/index.html".to_owned(),
        "/big.bin".to_owned(),
        long.clone(),
    ];
    let (curl_pid, results) = curl_keepalive(&ns, &[], &paths);
    assert_eq!(
        results,
        [
            format!("200 {}", INDEX_BODY.len()),
            format!("200 {BIG_LEN}"),
            format!("200 {}", INDEX_BODY.len())
        ],
        "curl's own view of the three transfers"
    );
    thread::sleep(Duration::from_millis(300));
    let exit = rec.stop(libc::SIGINT, secs(10));
    assert!(exit.status.success(), "l7rec: {}", exit.stderr);

    // tshark, no keys: the decrypted requests on the TLS interface. Wireshark tracks
    // TCP conversations by 4-tuple, not interface, and this file also holds the
    // ciphertext (--all-tcp): depending on how the two interleave, it may take later
    // plaintext requests for continuations of the merged conversation. So, as
    // docs/TLS.md tells users, the plaintext interface is split off first.
    let plain = dir.path().join("plain.pcapng");
    let split = run_with_timeout(
        Command::new("tshark")
            .arg("-r")
            .arg(&out)
            .args(["-Y", &format!("frame.interface_name == \"{TLS_IFACE}\"")])
            .arg("-w")
            .arg(&plain),
        secs(60),
    );
    assert!(
        split.status.success(),
        "tshark could not split the capture: {}",
        String::from_utf8_lossy(&split.stderr)
    );
    let t = tshark_fields(
        &plain,
        "http.request",
        &["http.request.uri", "tcp.dstport", "frame.comment"],
    );
    assert!(t.status.success(), "tshark failed: {}", t.errors);
    assert_eq!(
        t.column(0),
        paths,
        "URIs tshark dissects on {TLS_IFACE}; recorder said:\n{}",
        exit.stderr
    );
    assert!(t.column(1).iter().all(|p| p == &TLS_PORT.to_string()));
    assert!(
        t.column(2)
            .iter()
            .all(|c| c.starts_with("pid=") && c.ends_with(" tls")),
        "packet comments: {:?}",
        t.column(2)
    );

    // The analyzer, through the same path as plaintext HTTP.
    let a = analyze_json(&out);
    assert!(a.status.success(), "analyze failed: {}", a.stderr);
    for (path, body) in [
        (&paths[0], INDEX_BODY.len()),
        (&paths[1], BIG_LEN),
        (&paths[2], INDEX_BODY.len()),
    ] {
        let rows = a.by_uri(path);
        assert_eq!(
            rows.len(),
            1,
            "one transaction for {path}:\n{}",
            a.listing()
        );
        let r = rows[0];
        assert_eq!(r["status"], 200, "{r}");
        assert_eq!(r["resp_body_bytes"], body as u64, "{r}");
        assert_eq!(r["flags"], serde_json::json!(["tls"]), "{r}");
        assert_eq!(r["client_comm"], "curl", "{r}");
        assert_eq!(r["client_pid"], curl_pid, "{r}");
        assert_eq!(r["server_comm"], "nginx", "{r}");
        assert_eq!(r["server_pid"], nginx.pid, "{r}");
        assert_eq!(r["server"], format!("127.0.0.1:{TLS_PORT}"), "{r}");
    }
    assert_eq!(
        a.rows.len(),
        3,
        "only the three decrypted transactions (the ciphertext flow is not HTTP):\n{}",
        a.listing()
    );

    // The ciphertext of the same connection is in the file too, and it is ciphertext.
    let cipher = ciphertext_on_lo(&out);
    let from_client: Vec<&Vec<u8>> = cipher.iter().filter(|(c, _)| *c).map(|(_, p)| p).collect();
    let server_bytes: usize = cipher
        .iter()
        .filter(|(c, _)| !*c)
        .map(|(_, p)| p.len())
        .sum();
    assert!(
        from_client
            .first()
            .is_some_and(|p| p.starts_with(&[0x16, 0x03])),
        "the client's first bytes on lo must be a TLS handshake record"
    );
    assert!(
        server_bytes > BIG_LEN,
        "ciphertext from the server: {server_bytes} bytes"
    );
    assert!(
        !cipher.iter().any(|(_, p)| contains(p, b"GET /big.bin")),
        "plaintext on lo?"
    );

    // Counted, and nothing lost.
    let contents = read_capture(&out);
    let stats = contents.stats.last().expect("a Stats record");
    for name in ["tls", "tls-bytes"] {
        let s = stats
            .sources
            .iter()
            .find(|s| s.name == name)
            .unwrap_or_else(|| panic!("no {name:?} source in {stats:?}"));
        assert!(s.received > 0 && s.dropped == 0, "{s:?}");
    }
}

#[test]
fn no_tls_means_no_tls_interface() {
    require_tools(&["ip", "nginx", "openssl", "python3", "curl"]);
    let ns = Netns::new();
    let docroot = Docroot::new();
    let _nginx = TlsNginx::start(&ns, &docroot);
    let dir = temp_dir();
    let out = dir.path().join("notls.pcapng");
    let mut rec = Recorder::start(&ns, &out, &["--no-tls"]);
    rec.wait_ready(secs(20));
    curl_keepalive(&ns, &[], &["/index.html".to_owned()]);
    thread::sleep(Duration::from_millis(200));
    let exit = rec.stop(libc::SIGINT, secs(10));
    assert!(exit.status.success(), "l7rec: {}", exit.stderr);
    assert!(!exit.stderr.contains("TLS"), "{}", exit.stderr);
    let mut r = l7rec_capture::CaptureReader::open(&out).expect("open");
    while let Some(ev) = r.next_event() {
        ev.expect("reading");
    }
    assert!(
        r.interfaces().all(|i| i.name != TLS_IFACE),
        "--no-tls must not add the TLS interface"
    );
    // Nothing decrypted, and (without --all-tcp) no ciphertext either.
    let a = analyze_json(&out);
    assert!(a.rows.is_empty(), "{}", a.listing());
}

/// Stops the recorder and checks it exited cleanly having found the socket of every TLS
/// chunk (its summary's "N chunks without socket" is 0).
fn stop_with_every_chunk_placed(mut rec: Recorder, mode: &str) {
    let exit = rec.stop(libc::SIGINT, secs(10));
    assert!(exit.status.success(), "l7rec: {}", exit.stderr);
    let without_socket = exit
        .stderr
        .split(" chunks without socket")
        .next()
        .and_then(|before| before.rsplit(' ').next())
        .and_then(|n| n.parse::<u64>().ok());
    assert_eq!(
        without_socket,
        Some(0),
        "--syscalls {mode}: {}",
        exit.stderr
    );
}

/// Each socket mode of the TLS tracer finds the socket of an SSL call: its own
/// receive program (`--syscalls calls` and `off`), or the connections-mode program of
/// the syscall tracer, which notes sockets for it (the default; the test above).
/// Without the socket, plaintext would have no addresses.
#[test]
fn tls_sockets_are_found_in_every_attribution_mode() {
    require_tools(&["ip", "nginx", "openssl", "python3", "curl"]);
    let ns = Netns::new();
    let docroot = Docroot::new();
    let nginx = TlsNginx::start(&ns, &docroot);
    let dir = temp_dir();
    // The last run attaches one uprobe per function, as on kernels before 6.6.
    let each = [("L7REC_NO_UPROBE_MULTI", "1")];
    for (mode, env) in [("calls", &[][..]), ("off", &[]), ("calls", &each)] {
        let out = dir.path().join(format!("tls-{mode}-{}.pcapng", env.len()));
        let mut rec = Recorder::start_with_env(&ns, &out, &["--tls", "--syscalls", mode], env);
        rec.wait_ready(secs(20));
        let attach = if env.is_empty() {
            "(uprobe.multi links)"
        } else {
            "(one uprobe per function)"
        };
        assert!(rec.stderr().contains(attach), "{}", rec.stderr());
        let (curl_pid, _) = curl_keepalive(&ns, &[], &["/index.html".to_owned()]);
        thread::sleep(Duration::from_millis(300));
        stop_with_every_chunk_placed(rec, mode);
        let a = analyze_json(&out);
        assert_eq!(a.rows.len(), 1, "--syscalls {mode}: {}", a.listing());
        let row = &a.rows[0];
        assert_eq!(row["flags"], serde_json::json!(["tls"]), "{row}");
        assert_eq!(row["server"], format!("127.0.0.1:{TLS_PORT}"), "{row}");
        assert_eq!(row["status"], 200, "{row}");
        if mode == "calls" {
            assert_eq!(row["client_pid"], curl_pid, "{row}");
            assert_eq!(row["server_pid"], nginx.pid, "{row}");
        }
    }
}

/// Only receives are watched, so the socket of an SSL object is learned in its
/// handshake: a TLS client that writes a request and closes without ever calling
/// SSL_read still has every chunk placed on its connection, in every attribution mode.
#[test]
fn tls_client_that_never_reads_has_its_socket_and_the_response() {
    require_tools(&["ip", "nginx", "openssl", "python3"]);
    let ns = Netns::new();
    let docroot = Docroot::new();
    let _nginx = TlsNginx::start(&ns, &docroot);
    let dir = temp_dir();
    let client = "import socket, ssl, sys, time\n\
         ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)\n\
         ctx.check_hostname = False\n\
         ctx.verify_mode = ssl.CERT_NONE\n\
         s = ctx.wrap_socket(socket.create_connection(('127.0.0.1', int(sys.argv[1])), 5))\n\
         s.sendall(('GET /index.html?%s HTTP/1.1\\r\\nHost: w\\r\\n\\r\\n' % sys.argv[2]).encode())\n\
         open(sys.argv[3], 'w').close()\n\
         time.sleep(0.3)\n\
         s.close()\n";
    for mode in ["connections", "calls", "off"] {
        let out = dir.path().join(format!("{mode}.pcapng"));
        let sent = dir.path().join(format!("{mode}.sent"));
        let mut rec = Recorder::start(&ns, &out, &["--tls", "--syscalls", mode]);
        rec.wait_ready(secs(20));
        let query = format!("writeonly={mode}");
        spawn_python(
            &ns,
            client,
            &[&TLS_PORT.to_string(), &query, &sent.display().to_string()],
        );
        wait_for_file(&ns, &sent, secs(10), "the TLS request sent");
        thread::sleep(Duration::from_millis(600));
        stop_with_every_chunk_placed(rec, mode);
        let a = analyze_json(&out);
        let uri = format!("/index.html?{query}");
        let rows = a.by_uri(&uri);
        assert_eq!(rows.len(), 1, "--syscalls {mode}: {}", a.listing());
        let row = rows[0];
        let flags = row["flags"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default();
        assert!(flags.contains(&serde_json::json!("tls")), "{row}");
        // The client never reads the response: it comes from nginx's writes.
        assert_eq!(row["status"], 200, "--syscalls {mode}: {row}");
        if mode != "off" {
            assert_eq!(row["client_comm"], "python3", "{row}");
        }
    }
}

#[test]
fn redact_masks_secrets_in_tls_plaintext() {
    require_tools(&["ip", "nginx", "openssl", "python3", "curl", "tshark"]);
    let ns = Netns::new();
    let docroot = Docroot::new();
    let _nginx = TlsNginx::start(&ns, &docroot);
    let dir = temp_dir();
    let out = dir.path().join("redact.pcapng");
    let mut rec = Recorder::start(&ns, &out, &["--redact", "--tls"]);
    rec.wait_ready(secs(20));
    const SECRET: &str = "s3cr3t-t0ken-over-tls";
    let auth = format!("Authorization: Bearer {SECRET}");
    curl_keepalive(&ns, &["-H", &auth], &["/index.html".to_owned()]);
    thread::sleep(Duration::from_millis(300));
    let exit = rec.stop(libc::SIGINT, secs(10));
    assert!(exit.status.success(), "l7rec: {}", exit.stderr);

    let mut r = l7rec_capture::CaptureReader::open(&out).expect("open");
    let mut tls_packets = 0;
    while let Some(ev) = r.next_event() {
        if let Ok(l7rec_capture::Event::Packet(p)) = ev {
            assert!(
                !contains(p.data, SECRET.as_bytes()),
                "secret in a stored packet"
            );
            tls_packets += usize::from(p.linktype == l7rec_capture::linktype::RAW);
        }
    }
    assert!(tls_packets > 0, "no TLS plaintext packets: {}", exit.stderr);
    let t = tshark_fields(
        &out,
        &format!("http.request && frame.interface_name == \"{TLS_IFACE}\""),
        &["http.request.uri", "http.authorization"],
    );
    assert_eq!(t.column(0), ["/index.html"], "{}", t.errors);
    // Default mode (no --all-tcp): no ciphertext kept, the plaintext still attributed.
    let a = analyze_json(&out);
    assert_eq!(a.rows.len(), 1, "{}", a.listing());
    let row = &a.rows[0];
    assert_eq!(row["flags"], serde_json::json!(["tls"]), "{row}");
    assert_eq!(row["client_comm"], "curl", "{row}");
    assert_eq!(row["server_comm"], "nginx", "{row}");
    let masked = t.column(1);
    assert!(
        masked[0].chars().all(|c| c == '*'),
        "Authorization value as stored: {masked:?}"
    );
}
