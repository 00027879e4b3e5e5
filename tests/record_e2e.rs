//! End to end: the real `l7rec` binary records inside a network namespace each test
//! creates (`ip netns exec NS l7rec record ...`), with real servers (nginx, python3
//! http.server) and clients (curl, python sockets); the file is then checked by an
//! independent reader (tshark) and by `l7rec analyze --format json`.
//!
//! Needs root, iproute2, nginx, python3, curl, tshark, ethtool (and mount/umount for the
//! disk-full test): a missing tool fails the test with the reason, never skips it.
//! Each test has its own namespace, deleted on drop (also on panic); processes are
//! killed by their own pid.

#[path = "common/e2e.rs"]
mod e2e;
#[path = "common/netns.rs"]
mod netns;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use e2e::*;
use l7rec_capture::Role;
use netns::{require_tools, Netns};

const NGINX_PORT: u16 = 8080;
const PY_PORT: u16 = 8000;
const ECHO_PORT: u16 = 9000;

/// Lets the last packets (FIN/ACK) of finished exchanges reach the file before a stop.
const SETTLE: Duration = Duration::from_millis(300);

fn base_tools() -> Vec<&'static str> {
    vec!["ip", "python3", "curl", "tshark"]
}

/// Parses the recorder's final summary: (packet drops, syscall event drops).
fn summary_drops(stderr: &str) -> Option<(u64, u64)> {
    let line = stderr.lines().find(|l| l.contains("drops:"))?;
    let rest = &line[line.find("drops:")? + "drops:".len()..];
    let mut nums = rest
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<u64>().ok());
    Some((nums.next()??, nums.next()??))
}

/// Zero drops in the recorder's summary and in every source of the last Stats record.
fn assert_no_drops(exit: &RecorderExit, contents: &FileContents) {
    assert_eq!(
        summary_drops(&exit.stderr),
        Some((0, 0)),
        "the recorder's summary must report 0 drops; it said:\n{}",
        exit.stderr
    );
    let last = contents
        .stats
        .last()
        .unwrap_or_else(|| panic!("no Stats record in the file: {contents:?}"));
    assert!(
        last.sources.iter().any(|s| s.name.starts_with("packets:")),
        "the Stats record has no packet source: {last:?}"
    );
    for s in &last.sources {
        assert_eq!(s.dropped, 0, "source {} dropped items: {last:?}", s.name);
    }
}

/// tshark must read the whole file without any complaint.
fn assert_tshark_clean(t: &Tshark, what: &str) {
    assert!(
        t.status.success() && t.errors.is_empty(),
        "tshark could not read the capture cleanly ({what}): status {}, stderr:\n{}",
        t.status,
        t.errors
    );
}

fn http_uris(file: &Path) -> Tshark {
    let t = tshark_fields(file, "http.request", &["http.request.uri"]);
    assert_tshark_clean(&t, "http.request uris");
    t
}

fn count(list: &[String], item: &str) -> usize {
    list.iter().filter(|u| u.as_str() == item).count()
}

fn short(s: &str) -> String {
    if s.len() > 80 {
        format!("{}...({} bytes)", &s[..60], s.len())
    } else {
        s.to_owned()
    }
}

/// Checks one analyzed transaction against the curl run and the server behind it.
fn assert_transaction(a: &Analysis, uri: &str, run: &CurlRun, server_comm: &str, server_pid: u32) {
    let rows = a.by_uri(uri);
    assert_eq!(
        rows.len(),
        1,
        "analyze must report exactly one transaction for {}; it reported:\n{}\nstderr: {}",
        short(uri),
        a.listing(),
        a.stderr
    );
    let r = rows[0];
    let ctx = || format!("transaction {}: {r}", short(uri));
    assert_eq!(r["method"].as_str(), Some("GET"), "{}", ctx());
    assert_eq!(
        r["status"].as_u64(),
        Some(u64::from(run.http_code)),
        "{}",
        ctx()
    );
    assert_eq!(
        r["resp_body_bytes"].as_u64(),
        Some(run.size_download),
        "{}",
        ctx()
    );
    assert_eq!(r["client_comm"].as_str(), Some("curl"), "{}", ctx());
    assert_eq!(
        r["client_pid"].as_u64(),
        Some(u64::from(run.pid)),
        "client pid must be curl's pid {}: {}",
        run.pid,
        ctx()
    );
    assert_eq!(r["server_comm"].as_str(), Some(server_comm), "{}", ctx());
    assert_eq!(
        r["server_pid"].as_u64(),
        Some(u64::from(server_pid)),
        "server pid must be {server_comm}'s pid {server_pid}: {}",
        ctx()
    );
}

/// What most tests start from: the tools they need (nginx among them), a namespace of
/// their own, and nginx serving a docroot on NGINX_PORT in it. Bind the three in this
/// order: they drop in reverse (nginx, then its files, then the namespace).
fn nginx_in_new_netns() -> (Netns, Docroot, Nginx) {
    let mut tools = base_tools();
    tools.push("nginx");
    require_tools(&tools);
    let ns = Netns::new();
    let www = Docroot::new();
    let nginx = Nginx::start(&ns, &www, &[NGINX_PORT]);
    (ns, www, nginx)
}

/// Test 1: nginx and python3 http.server, curl as client, URLs of ~8 KB spanning
/// several packets (MTU 1280, offloads off): tshark finds every URI byte-exact, analyze
/// names curl/nginx/python3 with their pids, zero drops, mode 0600, exit 0 on SIGINT.
#[test]
fn nginx_and_python_long_urls_processes_and_no_drops() {
    let mut tools = base_tools();
    tools.extend(["nginx", "ethtool"]);
    require_tools(&tools);
    let ns = Netns::new();
    ns.ip(&["link", "set", "lo", "mtu", "1280"]);
    ns.run(
        &[
            "ethtool", "-K", "lo", "tso", "off", "gso", "off", "gro", "off",
        ],
        secs(10),
    );
    let www = Docroot::new();
    let nginx = Nginx::start(&ns, &www, &[NGINX_PORT]);
    let py = PyHttp::start(&ns, &www, "127.0.0.1", PY_PORT);
    let dir = temp_dir();
    let out = dir.path().join("cap.pcapng");

    let mut rec = Recorder::start(&ns, &out, &[]);
    rec.wait_ready(secs(10));

    let long_n = format!("/index.html?{}", long_query(8000, 1));
    let long_p = format!("/index.html?{}", long_query(8100, 2));
    // (uri, server base, server comm, server pid)
    let plan: Vec<(String, String, &str, u32)> = vec![
        (
            "/index.html?r=1".into(),
            format!("http://127.0.0.1:{NGINX_PORT}"),
            "nginx",
            nginx.pid,
        ),
        (
            "/big.bin?r=2".into(),
            format!("http://127.0.0.1:{NGINX_PORT}"),
            "nginx",
            nginx.pid,
        ),
        (
            long_n.clone(),
            format!("http://127.0.0.1:{NGINX_PORT}"),
            "nginx",
            nginx.pid,
        ),
        (
            "/index.html?r=4".into(),
            format!("http://[::1]:{NGINX_PORT}"),
            "nginx",
            nginx.pid,
        ),
        (
            "/index.html?r=5".into(),
            format!("http://127.0.0.1:{PY_PORT}"),
            "python3",
            py.pid,
        ),
        (
            "/big.bin?r=6".into(),
            format!("http://127.0.0.1:{PY_PORT}"),
            "python3",
            py.pid,
        ),
        (
            long_p.clone(),
            format!("http://127.0.0.1:{PY_PORT}"),
            "python3",
            py.pid,
        ),
    ];
    let mut runs = Vec::new();
    for (uri, base, _, _) in &plan {
        let url = format!("{base}{uri}");
        let run = curl(&ns, &["-g", &url]);
        assert_eq!(run.http_code, 200, "GET {} -> {run:?}", short(&url));
        runs.push(run);
    }
    thread::sleep(SETTLE);
    let exit = rec.stop(libc::SIGINT, secs(10));
    assert!(
        exit.status.success(),
        "l7rec must exit 0 after SIGINT, got {}; it said:\n{}",
        exit.status,
        exit.stderr
    );
    assert_eq!(file_mode(&out), 0o600, "capture file mode");

    // tshark: every request, full byte-exact URI (the long ones span several packets).
    let t = http_uris(&out);
    let uris = t.column(0);
    for (uri, ..) in &plan {
        assert_eq!(
            count(&uris, uri),
            1,
            "tshark must find the request {} exactly once (byte-exact); it found:\n{}",
            short(uri),
            uris.iter().map(|u| short(u)).collect::<Vec<_>>().join("\n")
        );
    }
    assert_eq!(
        uris.len(),
        plan.len(),
        "tshark found extra requests: {uris:?}"
    );
    // The long request lines really span several packets.
    let segs = tshark_fields(
        &out,
        &format!("http.request.uri == \"{long_n}\""),
        &["tcp.reassembled.length", "frame.len"],
    );
    assert_tshark_clean(&segs, "long URI reassembly");
    let reassembled: usize = segs
        .column(0)
        .first()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    assert!(
        reassembled > 8000,
        "the long request must be reassembled from several segments: {:?}",
        segs.rows
    );

    // analyze: status, sizes, client and server processes.
    let a = analyze_json(&out);
    assert!(a.status.success(), "analyze failed: {}", a.stderr);
    for ((uri, _, comm, pid), run) in plan.iter().zip(&runs) {
        assert_transaction(&a, uri, run, comm, *pid);
    }
    assert_eq!(
        a.rows.len(),
        plan.len(),
        "extra transactions:\n{}",
        a.listing()
    );

    // Zero drops: the summary on stderr and the Stats record in the file.
    let contents = read_capture(&out);
    assert!(
        contents.error.is_none(),
        "reading the capture: {contents:?}"
    );
    assert_no_drops(&exit, &contents);
    let (st, summary, serr) = analyze_summary(&out);
    assert!(st.success(), "analyze --summary failed: {serr}");
    assert!(
        summary.contains("0  dropped by the recorder: packets:lo"),
        "analyze --summary must show 0 packet drops on lo:\n{summary}"
    );
}

/// Test 2: Non-HTTP TCP traffic in the same namespace is not in the file.
#[test]
fn non_http_tcp_is_not_recorded() {
    let (ns, _www, nginx) = nginx_in_new_netns();
    let echo = format!(
        "import socket\n\
         s = socket.socket()\n\
         s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n\
         s.bind(('127.0.0.1', {ECHO_PORT}))\n\
         s.listen(8)\n\
         while True:\n\
         \x20   c, _ = s.accept()\n\
         \x20   while True:\n\
         \x20       d = c.recv(65536)\n\
         \x20       if not d:\n\
         \x20           break\n\
         \x20       c.sendall(d)\n\
         \x20   c.close()\n"
    );
    spawn_python(&ns, &echo, &[]);
    ns.wait_tcp("127.0.0.1", ECHO_PORT, secs(10));
    let dir = temp_dir();
    let out = dir.path().join("cap.pcapng");
    let mut rec = Recorder::start(&ns, &out, &[]);
    rec.wait_ready(secs(10));

    let client = format!(
        "import socket, time\n\
         msgs = [b'PING 1\\r\\n', b'\\x00\\x01\\x02\\x03 binary \\xff\\xfe', b'SSH-2.0-OpenSSH_9.2\\r\\n',\n\
         \x20       b'HELO example.org\\r\\n', bytes(range(256)) * 200, b'x-not-http / HTTP/1.1\\r\\n\\r\\n']\n\
         for round in range(3):\n\
         \x20   s = socket.create_connection(('127.0.0.1', {ECHO_PORT}), 5)\n\
         \x20   for m in msgs:\n\
         \x20       s.sendall(m)\n\
         \x20       got = b''\n\
         \x20       while len(got) < len(m):\n\
         \x20           d = s.recv(65536)\n\
         \x20           assert d, 'echo server closed'\n\
         \x20           got += d\n\
         \x20       assert got == m, (got[:40], m[:40])\n\
         \x20       time.sleep(0.01)\n\
         \x20   s.close()\n\
         print('echo ok')\n"
    );
    let echo_out = ns.run(&["python3", "-c", &client], secs(15));
    assert_eq!(String::from_utf8_lossy(&echo_out).trim(), "echo ok");
    // HTTP in the same namespace at the same time is recorded (the recorder works).
    let run = curl(
        &ns,
        &[&format!(
            "http://127.0.0.1:{NGINX_PORT}/index.html?alongside=1"
        )],
    );
    thread::sleep(SETTLE);
    rec.stop_ok(libc::SIGINT, secs(10));

    let on_echo = tshark_fields(
        &out,
        &format!("tcp.port == {ECHO_PORT}"),
        &["frame.number", "tcp.len"],
    );
    assert_tshark_clean(&on_echo, "echo port");
    assert!(
        on_echo.rows.is_empty(),
        "non-HTTP traffic on port {ECHO_PORT} must not be recorded; tshark found {} packets: {:?}",
        on_echo.rows.len(),
        on_echo.rows.iter().take(10).collect::<Vec<_>>()
    );
    let uris = http_uris(&out).column(0);
    assert_eq!(uris, vec!["/index.html?alongside=1".to_owned()]);
    let a = analyze_json(&out);
    assert!(a.status.success(), "analyze failed: {}", a.stderr);
    assert_transaction(&a, "/index.html?alongside=1", &run, "nginx", nginx.pid);
    assert_eq!(
        a.rows.len(),
        1,
        "only the HTTP transaction:\n{}",
        a.listing()
    );
}

/// Test 3: IPv6: curl -g http://[::1]:PORT/ is recorded and reported with a [::1] client.
#[test]
fn ipv6_loopback_is_recorded() {
    let (ns, _www, nginx) = nginx_in_new_netns();
    let dir = temp_dir();
    let out = dir.path().join("cap.pcapng");
    let mut rec = Recorder::start(&ns, &out, &[]);
    rec.wait_ready(secs(10));
    let run = curl(&ns, &["-g", &format!("http://[::1]:{NGINX_PORT}/")]);
    assert_eq!(run.http_code, 200);
    thread::sleep(SETTLE);
    rec.stop_ok(libc::SIGINT, secs(10));

    let t = tshark_fields(
        &out,
        "http.request",
        &["ipv6.src", "ipv6.dst", "http.request.uri"],
    );
    assert_tshark_clean(&t, "ipv6");
    assert_eq!(
        t.rows,
        vec![vec!["::1".to_owned(), "::1".to_owned(), "/".to_owned()]],
        "tshark must see the one IPv6 request"
    );
    let a = analyze_json(&out);
    assert!(a.status.success(), "analyze failed: {}", a.stderr);
    assert_transaction(&a, "/", &run, "nginx", nginx.pid);
    let r = a.by_uri("/")[0];
    assert!(
        r["client"]
            .as_str()
            .is_some_and(|c| c.starts_with("[::1]:")),
        "client must be [::1]:port: {r}"
    );
    assert_eq!(
        r["server"].as_str(),
        Some(format!("[::1]:{NGINX_PORT}").as_str()),
        "{r}"
    );
}

/// Test 4: A keep-alive connection opened before recording starts is picked up at its next
/// request, in `--syscalls calls` mode (the socket found from the fd of the call).
#[test]
fn keepalive_connection_opened_before_recording_is_picked_up() {
    keepalive_preopened(&["--syscalls", "calls"]);
}

/// Test 4b: the same in the default (connections) mode, where the connection is only
/// learned from each side's first receive after recording starts.
#[test]
fn keepalive_preopened_connection_attributed_in_default_mode() {
    keepalive_preopened(&[]);
}

fn keepalive_preopened(record_args: &[&str]) {
    let (ns, _www, nginx) = nginx_in_new_netns();
    let dir = temp_dir();
    let out = dir.path().join("cap.pcapng");
    let first_done = dir.path().join("first-done");
    let go = dir.path().join("go");
    let done = dir.path().join("done");
    let client = "import socket, sys, os, time\n\
         port, first_done, go, done = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]\n\
         s = socket.create_connection(('127.0.0.1', port), 5)\n\
         def req(uri):\n\
         \x20   s.sendall(('GET %s HTTP/1.1\\r\\nHost: ka\\r\\nUser-Agent: ka-test\\r\\n\\r\\n' % uri).encode())\n\
         \x20   buf = b''\n\
         \x20   while b'\\r\\n\\r\\n' not in buf:\n\
         \x20       d = s.recv(65536)\n\
         \x20       assert d, 'closed in head'\n\
         \x20       buf += d\n\
         \x20   head, body = buf.split(b'\\r\\n\\r\\n', 1)\n\
         \x20   n = [int(l.split(b':')[1]) for l in head.split(b'\\r\\n') if l.lower().startswith(b'content-length:')][0]\n\
         \x20   while len(body) < n:\n\
         \x20       d = s.recv(65536)\n\
         \x20       assert d, 'closed in body'\n\
         \x20       body += d\n\
         \x20   print(uri, head.split(b'\\r\\n')[0].decode(), len(body), flush=True)\n\
         req('/index.html?before=1')\n\
         open(first_done, 'w').close()\n\
         deadline = time.time() + 15\n\
         while not os.path.exists(go):\n\
         \x20   assert time.time() < deadline, 'no go signal'\n\
         \x20   time.sleep(0.01)\n\
         req('/index.html?after=2')\n\
         req('/big.bin?after=3')\n\
         open(done, 'w').close()\n\
         time.sleep(0.5)\n\
         s.close()\n";
    let port_s = NGINX_PORT.to_string();
    let client_pid = spawn_python(
        &ns,
        client,
        &[
            &port_s,
            &first_done.display().to_string(),
            &go.display().to_string(),
            &done.display().to_string(),
        ],
    );
    wait_for_file(&ns, &first_done, secs(10), "first request before recording");

    let mut rec = Recorder::start(&ns, &out, record_args);
    rec.wait_ready(secs(10));
    let calls_mode = record_args.contains(&"calls");
    let mode = if calls_mode { "calls" } else { "connections" };
    assert!(
        rec.stderr()
            .contains(&format!("(process attribution: {mode})")),
        "the recorder must say which attribution it uses: {}",
        rec.stderr()
    );
    std::fs::write(&go, b"").expect("writing the go file");
    wait_for_file(&ns, &done, secs(10), "requests after recording started");
    thread::sleep(SETTLE);
    rec.stop_ok(libc::SIGINT, secs(10));

    let per_call = read_capture(&out).syscalls;
    if calls_mode {
        assert!(per_call > 0, "calls mode wrote no per-call syscall records");
    } else {
        assert_eq!(
            per_call, 0,
            "{record_args:?} wrote per-call syscall records"
        );
    }
    let uris = http_uris(&out).column(0);
    for u in ["/index.html?after=2", "/big.bin?after=3"] {
        assert_eq!(
            count(&uris, u),
            1,
            "tshark must find {u} on the pre-opened connection; found {uris:?}; client said:\n{}",
            ns.log()
        );
    }
    assert_eq!(count(&uris, "/index.html?before=1"), 0, "{uris:?}");
    let a = analyze_json(&out);
    assert!(a.status.success(), "analyze failed: {}", a.stderr);
    for (u, len) in [
        ("/index.html?after=2", INDEX_BODY.len()),
        ("/big.bin?after=3", BIG_LEN),
    ] {
        let rows = a.by_uri(u);
        assert_eq!(
            rows.len(),
            1,
            "analyze must report {u}:\n{}\n{}",
            a.listing(),
            a.stderr
        );
        let r = rows[0];
        assert_eq!(r["status"].as_u64(), Some(200), "{r}");
        assert_eq!(r["resp_body_bytes"].as_u64(), Some(len as u64), "{r}");
        assert_eq!(r["server_comm"].as_str(), Some("nginx"), "{r}");
        assert_eq!(r["server_pid"].as_u64(), Some(u64::from(nginx.pid)), "{r}");
        assert_eq!(r["client_comm"].as_str(), Some("python3"), "{r}");
        assert_eq!(r["client_pid"].as_u64(), Some(u64::from(client_pid)), "{r}");
    }
}

/// Test 4c: the default attribution (`--syscalls connections`) names client and server
/// processes of new connections (nginx and python3, IPv4 and IPv6) from connection
/// records alone: the file holds no per-call syscall records.
#[test]
fn default_mode_attributes_without_per_call_records() {
    let (ns, www, nginx) = nginx_in_new_netns();
    let py = PyHttp::start(&ns, &www, "127.0.0.1", PY_PORT);
    let dir = temp_dir();
    let out = dir.path().join("cap.pcapng");

    let mut rec = Recorder::start(&ns, &out, &[]);
    rec.wait_ready(secs(10));
    let plan = [
        (
            format!("http://127.0.0.1:{NGINX_PORT}/index.html?c=1"),
            "nginx",
            nginx.pid,
        ),
        (
            format!("http://[::1]:{NGINX_PORT}/big.bin?c=2"),
            "nginx",
            nginx.pid,
        ),
        (
            format!("http://127.0.0.1:{PY_PORT}/index.html?c=3"),
            "python3",
            py.pid,
        ),
    ];
    let runs: Vec<CurlRun> = plan.iter().map(|(url, ..)| curl(&ns, &[url])).collect();
    thread::sleep(SETTLE);
    rec.stop_ok(libc::SIGINT, secs(10));

    let contents = read_capture(&out);
    assert!(contents.error.is_none(), "{:?}", contents.error);
    assert_eq!(
        contents.syscalls, 0,
        "connections mode wrote per-call records"
    );
    // Each connection is described by both ends, opened and (after the FIN exchange)
    // closed: curl closed them all before SETTLE.
    let conns = &contents.connections;
    for ((url, _, server_pid), run) in plan.iter().zip(&runs) {
        for (pid, role) in [(run.pid, Role::Client), (*server_pid, Role::Server)] {
            let mine: Vec<_> = conns.iter().filter(|c| c.pid == pid).collect();
            let opened = mine.iter().find(|c| c.close_ns == 0 && c.role == role);
            let closed = mine.iter().find(|c| {
                c.close_ns != 0 && c.role == role && Some(c.remote) == opened.map(|o| o.remote)
            });
            assert!(
                opened.is_some() && closed.is_some(),
                "{url}: {role:?} pid {pid} lacks an open or a close record: {mine:#?}"
            );
            if let (Some(o), Some(c)) = (opened, closed) {
                assert_eq!((c.local, c.fd, c.netns), (o.local, o.fd, o.netns), "{url}");
                assert!(
                    o.open_ns == 0 || o.open_ns < c.close_ns,
                    "{url}: {o:?} {c:?}"
                );
            }
        }
    }
    let a = analyze_json(&out);
    assert!(a.status.success(), "analyze failed: {}", a.stderr);
    for ((url, comm, pid), run) in plan.iter().zip(&runs) {
        let uri = &url[url.rfind('/').unwrap_or(0)..];
        assert_transaction(&a, uri, run, comm, *pid);
    }
}

/// Test 4c': in the default mode only receives are hooked, so a client is named from its
/// `connect()`: one that sends a request and closes without ever receiving is still the
/// request's client, with the fd it connected and the connection's open time.
#[test]
fn default_mode_names_a_client_that_never_receives() {
    let (ns, _www, nginx) = nginx_in_new_netns();
    let dir = temp_dir();
    let out = dir.path().join("cap.pcapng");
    let sent = dir.path().join("sent");
    let client = "import socket, sys, time\n\
         s = socket.create_connection(('127.0.0.1', int(sys.argv[1])), 5)\n\
         s.sendall(b'GET /index.html?mute=1 HTTP/1.1\\r\\nHost: m\\r\\nUser-Agent: mute\\r\\n\\r\\n')\n\
         open(sys.argv[2], 'w').close()\n\
         time.sleep(0.5)\n\
         s.close()\n";
    let mut rec = Recorder::start(&ns, &out, &[]);
    rec.wait_ready(secs(10));
    let client_pid = spawn_python(
        &ns,
        client,
        &[&NGINX_PORT.to_string(), &sent.display().to_string()],
    );
    wait_for_file(&ns, &sent, secs(10), "the request sent");
    thread::sleep(Duration::from_millis(500) + SETTLE);
    rec.stop_ok(libc::SIGINT, secs(10));

    let contents = read_capture(&out);
    assert!(contents.error.is_none(), "{:?}", contents.error);
    let mine: Vec<_> = contents
        .connections
        .iter()
        .filter(|c| c.pid == client_pid)
        .collect();
    assert!(
        mine.iter()
            .any(|c| c.role == Role::Client && c.fd != u32::MAX && c.open_ns != 0),
        "no client record with an fd and open time for pid {client_pid}: {:#?}",
        contents.connections
    );
    let a = analyze_json(&out);
    assert!(a.status.success(), "analyze failed: {}", a.stderr);
    let rows = a.by_uri("/index.html?mute=1");
    assert_eq!(rows.len(), 1, "{}\n{}", a.listing(), a.stderr);
    let r = rows[0];
    assert_eq!(r["client_comm"].as_str(), Some("python3"), "{r}");
    assert_eq!(r["client_pid"].as_u64(), Some(u64::from(client_pid)), "{r}");
    assert_eq!(r["server_pid"].as_u64(), Some(u64::from(nginx.pid)), "{r}");
}

/// Test 4d: `--comm` and `--pid` narrow attribution, in both modes: only the named
/// process has connection records and a name in `analyze`; the packets are all kept.
#[test]
fn comm_and_pid_filters_narrow_attribution() {
    let (ns, _www, nginx) = nginx_in_new_netns();
    let dir = temp_dir();
    let nginx_pid = nginx.pid.to_string();
    for mode in ["connections", "calls"] {
        for filter in ["--comm", "--pid"] {
            let out = dir.path().join(format!("{mode}{filter}.pcapng"));
            let value = if filter == "--comm" {
                "curl"
            } else {
                &nginx_pid
            };
            let mut rec = Recorder::start(&ns, &out, &["--syscalls", mode, filter, value]);
            rec.wait_ready(secs(10));
            let uri = format!("/index.html?{mode}{filter}");
            let run = curl(&ns, &[&format!("http://127.0.0.1:{NGINX_PORT}{uri}")]);
            thread::sleep(SETTLE);
            rec.stop_ok(libc::SIGINT, secs(10));

            let what = format!("{mode} {filter} {value}");
            let wanted = if filter == "--comm" {
                run.pid
            } else {
                nginx.pid
            };
            let contents = read_capture(&out);
            assert!(contents.error.is_none(), "{what}: {:?}", contents.error);
            assert!(
                !contents.connections.is_empty(),
                "{what}: no connection records"
            );
            for c in &contents.connections {
                assert_eq!(c.pid, wanted, "{what}: a record of another process: {c:?}");
            }
            let a = analyze_json(&out);
            let rows = a.by_uri(&uri);
            assert_eq!(
                rows.len(),
                1,
                "{what}: packets must all be kept:\n{}",
                a.listing()
            );
            let r = rows[0];
            let (named, unnamed) = if filter == "--comm" {
                (("client_comm", "curl"), "server_comm")
            } else {
                (("server_comm", "nginx"), "client_comm")
            };
            assert_eq!(r[named.0].as_str(), Some(named.1), "{what}: {r}");
            assert!(
                r[unnamed].is_null(),
                "{what}: {unnamed} must be unknown: {r}"
            );
        }
    }
}

/// Test 5: `l7rec record -o F -- curl -s URL` exits by itself when curl exits, status 0.
#[test]
fn command_mode_stops_when_command_exits() {
    let (ns, _www, nginx) = nginx_in_new_netns();
    let dir = temp_dir();
    let out = dir.path().join("cap.pcapng");
    let pid_file = dir.path().join("curl.pid");
    let url = format!("http://127.0.0.1:{NGINX_PORT}/index.html?cmd=1");
    let script = format!(
        "echo $$ > {}; exec curl -s -o /dev/null \"$1\"",
        pid_file.display()
    );
    let mut rec = Recorder::start(&ns, &out, &["--", "sh", "-c", &script, "sh", &url]);
    let exit = rec.wait(secs(15));
    assert!(
        exit.status.success(),
        "l7rec -- curl must exit 0 by itself, got {}; it said:\n{}",
        exit.status,
        exit.stderr
    );
    let curl_pid: u64 = std::fs::read_to_string(&pid_file)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or_else(|| {
            panic!(
                "the command did not run (no pid file); l7rec said:\n{}",
                exit.stderr
            )
        });
    let uris = http_uris(&out).column(0);
    assert_eq!(
        uris,
        vec!["/index.html?cmd=1".to_owned()],
        "tshark requests"
    );
    let a = analyze_json(&out);
    assert!(a.status.success(), "analyze failed: {}", a.stderr);
    let rows = a.by_uri("/index.html?cmd=1");
    assert_eq!(rows.len(), 1, "{}", a.listing());
    let r = rows[0];
    assert_eq!(r["status"].as_u64(), Some(200), "{r}");
    assert_eq!(r["client_comm"].as_str(), Some("curl"), "{r}");
    assert_eq!(r["client_pid"].as_u64(), Some(curl_pid), "{r}");
    assert_eq!(r["server_pid"].as_u64(), Some(u64::from(nginx.pid)), "{r}");
    let contents = read_capture(&out);
    assert!(contents.error.is_none(), "{contents:?}");
    assert_eq!(
        contents.last_event, "records:Stats",
        "a clean finish ends with Stats"
    );
}

/// Test 6: SIGKILL at a random moment while traffic flows: tshark and analyze read the file,
/// and at most about one second of data is lost.
#[test]
fn sigkill_leaves_a_readable_file_losing_at_most_a_second() {
    let mut tools = base_tools();
    tools.extend(["nginx", "sh", "date", "seq"]);
    require_tools(&tools);
    let ns = Netns::new();
    let www = Docroot::new();
    let _nginx = Nginx::start(&ns, &www, &[NGINX_PORT]);
    let dir = temp_dir();
    let out = dir.path().join("cap.pcapng");
    let log = dir.path().join("client.log");
    let mut rec = Recorder::start(&ns, &out, &[]);
    rec.wait_ready(secs(10));

    // 200 requests, each logged (index, send time in ns) just before curl starts.
    let script = format!(
        "for i in $(seq 1 200); do echo \"$i $(date +%s%N)\" >> {log}; \
         curl -s -o /dev/null \"http://127.0.0.1:{NGINX_PORT}/index.html?i=$i\"; done; \
         echo end >> {log}",
        log = log.display()
    );
    let traffic_start = Instant::now();
    ns.spawn(&["sh", "-c", &script]);
    // A "random" moment in [1.5 s, 2.5 s).
    let delay_ms = 1500 + (now_ns() / 1000 % 1000);
    thread::sleep(Duration::from_millis(delay_ms).saturating_sub(traffic_start.elapsed()));
    let kill_ns = now_ns();
    let exit = rec.stop(libc::SIGKILL, secs(10));
    assert!(
        !exit.status.success(),
        "the recorder was killed: {}",
        exit.status
    );

    let sent: BTreeMap<u32, u64> = std::fs::read_to_string(&log)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let mut it = l.split_whitespace();
            Some((it.next()?.parse().ok()?, it.next()?.parse().ok()?))
        })
        .collect();
    // Requests sent at least 1.3 s before the kill must all be in the file (1 s flush
    // interval, plus the ring's retire timeout and scheduling slack).
    let must_have: Vec<u32> = sent
        .iter()
        .filter(|(_, &t)| t + 1_300_000_000 < kill_ns)
        .map(|(&i, _)| i)
        .collect();
    let ctx = format!(
        "killed {delay_ms} ms after traffic started; {} requests started before the kill, \
         {} of them ≥1.3 s before",
        sent.values().filter(|&&t| t < kill_ns).count(),
        must_have.len()
    );
    assert!(
        !must_have.is_empty(),
        "too little traffic before the kill to judge ({ctx}); client log:\n{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );

    // tshark reads the file: exit 0, nothing on stderr but the root warning.
    let t = http_uris(&out);
    let uris = t.column(0);
    // analyze reads it: exit 0 (a truncation warning on stderr is allowed), > 0 rows.
    let a = analyze_json(&out);
    assert!(
        a.status.success(),
        "analyze must read a killed recorder's file ({ctx}): {}",
        a.stderr
    );
    assert!(
        !a.rows.is_empty(),
        "analyze found no transaction ({ctx}): {}",
        a.stderr
    );
    let missing_t: Vec<u32> = must_have
        .iter()
        .copied()
        .filter(|i| count(&uris, &format!("/index.html?i={i}")) == 0)
        .collect();
    let missing_a: Vec<u32> = must_have
        .iter()
        .copied()
        .filter(|i| a.by_uri(&format!("/index.html?i={i}")).is_empty())
        .collect();
    assert!(
        missing_t.is_empty() && missing_a.is_empty(),
        "more than ~1 s of data lost ({ctx}): missing in tshark {missing_t:?}, in analyze \
         {missing_a:?}; tshark saw {} requests, analyze {} (stderr: {}); recorder said:\n{}",
        uris.len(),
        a.rows.len(),
        a.stderr,
        exit.stderr
    );
    let last_seen = sent
        .iter()
        .filter(|(i, _)| !a.by_uri(&format!("/index.html?i={i}")).is_empty())
        .map(|(_, &t)| t)
        .max()
        .unwrap_or(0);
    eprintln!(
        "sigkill: {ctx}; newest recorded request was sent {} ms before the kill",
        (kill_ns.saturating_sub(last_seen)) / 1_000_000
    );
    // What was sent well before the kill is complete and attributed like a normal
    // capture (the newest ones may legitimately lack their response: no_response).
    for i in &must_have {
        let r = a.by_uri(&format!("/index.html?i={i}"))[0];
        assert_eq!(r["status"].as_u64(), Some(200), "request {i} ({ctx}): {r}");
        assert_eq!(
            r["client_comm"].as_str(),
            Some("curl"),
            "request {i} ({ctx}): {r}"
        );
        assert_eq!(
            r["server_comm"].as_str(),
            Some("nginx"),
            "request {i} ({ctx}): {r}"
        );
    }
}

/// Test 7: SIGTERM: clean finish, exit 0, Stats as the last record; an existing file with
/// wider permissions is tightened to 0600.
#[test]
fn sigterm_finishes_cleanly_with_stats_last() {
    let (ns, _www, nginx) = nginx_in_new_netns();
    let dir = temp_dir();
    let out = dir.path().join("cap.pcapng");
    write_file_mode(&out, b"old contents, world readable\n", 0o644);
    let mut rec = Recorder::start(&ns, &out, &[]);
    // The old contents are truncated at start: wait for the first real flush.
    thread::sleep(Duration::from_millis(200));
    rec.wait_ready(secs(10));
    let mut runs = Vec::new();
    for i in 0..3 {
        runs.push(curl(
            &ns,
            &[&format!(
                "http://127.0.0.1:{NGINX_PORT}/index.html?term={i}"
            )],
        ));
    }
    thread::sleep(SETTLE);
    let exit = rec.stop(libc::SIGTERM, secs(10));
    assert!(
        exit.status.success(),
        "l7rec must exit 0 after SIGTERM, got {}; it said:\n{}",
        exit.status,
        exit.stderr
    );
    assert!(
        exit.stderr.contains("signal 15"),
        "summary names the signal:\n{}",
        exit.stderr
    );
    assert_eq!(
        file_mode(&out),
        0o600,
        "an existing capture file must become 0600"
    );
    let contents = read_capture(&out);
    assert!(
        contents.error.is_none(),
        "reading the capture: {contents:?}"
    );
    assert_eq!(
        contents.last_event, "records:Stats",
        "the last record of a cleanly stopped capture is a Stats record: {contents:?}"
    );
    assert_no_drops(&exit, &contents);
    let t = http_uris(&out);
    assert_eq!(t.rows.len(), 3, "{:?}", t.rows);
    let a = analyze_json(&out);
    assert!(
        a.status.success() && a.stderr.is_empty(),
        "analyze: {}",
        a.stderr
    );
    for (i, run) in runs.iter().enumerate() {
        assert_transaction(
            &a,
            &format!("/index.html?term={i}"),
            run,
            "nginx",
            nginx.pid,
        );
    }
}

/// Test 8: `--port 8081` with servers on 8080 and 8081: only 8081 traffic, SYNs included.
#[test]
fn port_option_narrows_capture() {
    let mut tools = base_tools();
    tools.push("nginx");
    require_tools(&tools);
    let ns = Netns::new();
    let www = Docroot::new();
    let _nginx = Nginx::start(&ns, &www, &[8080, 8081]);
    let dir = temp_dir();
    let out = dir.path().join("cap.pcapng");
    let mut rec = Recorder::start(&ns, &out, &["--port", "8081"]);
    rec.wait_ready(secs(10));
    let mut client_ports = HashMap::new();
    for i in 0..3 {
        for port in [8080u16, 8081] {
            let uri = format!("/index.html?port={port}&i={i}");
            let run = curl(&ns, &[&format!("http://127.0.0.1:{port}{uri}")]);
            assert_eq!(run.http_code, 200);
            client_ports.insert(uri, port);
        }
    }
    thread::sleep(SETTLE);
    rec.stop_ok(libc::SIGINT, secs(10));

    let other = tshark_fields(
        &out,
        "tcp && !(tcp.port == 8081)",
        &["tcp.srcport", "tcp.dstport"],
    );
    assert_tshark_clean(&other, "non-8081");
    assert!(
        other.rows.is_empty(),
        "only port 8081 may be recorded: {:?}",
        other.rows
    );
    let syns = tshark_fields(
        &out,
        "tcp.flags.syn == 1 && tcp.flags.ack == 0 && tcp.dstport == 8081",
        &["tcp.stream"],
    );
    assert_tshark_clean(&syns, "SYNs");
    assert_eq!(
        syns.rows.len(),
        3,
        "the SYN of each of the 3 flows to 8081: {:?}",
        syns.rows
    );
    let mut uris = http_uris(&out).column(0);
    uris.sort();
    let mut want: Vec<String> = client_ports
        .iter()
        .filter(|(_, &p)| p == 8081)
        .map(|(u, _)| u.clone())
        .collect();
    want.sort();
    assert_eq!(uris, want, "tshark requests");
    let a = analyze_json(&out);
    assert!(a.status.success(), "analyze failed: {}", a.stderr);
    assert_eq!(a.rows.len(), 3, "{}", a.listing());
    for r in &a.rows {
        assert_eq!(r["server"].as_str(), Some("127.0.0.1:8081"), "{r}");
    }
}

/// Test 9: Clear errors: unwritable output, unknown interface, not a capture.
#[test]
fn errors_are_clear() {
    require_tools(&["ip"]);
    let ns = Netns::new();
    let dir = temp_dir();

    let bad = "/nonexistent-dir/x.pcapng";
    let o = ns.run_status(&[L7REC, "record", "-o", bad], secs(15));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "record -o {bad} must fail: {err}");
    assert!(err.contains(bad), "the error must name {bad}: {err}");

    let ok_path = dir.path().join("x.pcapng");
    let o = ns.run_status(
        &[
            L7REC,
            "record",
            "-o",
            &ok_path.display().to_string(),
            "-i",
            "nosuchif",
        ],
        secs(15),
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success(), "-i nosuchif must fail: {err}");
    assert!(
        err.contains("nosuchif"),
        "the error must name the interface: {err}"
    );

    let text = dir.path().join("notes.txt");
    std::fs::write(&text, "this is a text file, not a capture\n".repeat(10)).unwrap();
    let o = run_with_timeout(
        std::process::Command::new(L7REC).arg("analyze").arg(&text),
        secs(15),
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success(),
        "analyze on a text file must fail (exit {}); stdout: {} stderr: {err}",
        o.status,
        String::from_utf8_lossy(&o.stdout)
    );
    assert!(
        err.contains("not a pcap"),
        "the error must say \"not a pcap\": {err}"
    );
}

/// Test 10: Disk full: the recorder stops with a clear error, the file is cut back to
/// its last flush and reads cleanly.
#[test]
fn disk_full_stops_with_error_and_valid_file() {
    let mut tools = base_tools();
    tools.extend(["nginx", "mount", "umount"]);
    require_tools(&tools);
    let ns = Netns::new();
    let www = Docroot::new();
    let _nginx = Nginx::start(&ns, &www, &[NGINX_PORT]);
    let fs = Tmpfs::mount("2m");
    let out = fs.path().join("cap.pcapng");
    let mut rec = Recorder::start(&ns, &out, &["--no-compress"]);
    rec.wait_ready(secs(10));
    let deadline = Instant::now() + secs(15);
    let mut downloads = 0;
    let exit = loop {
        let run = curl(
            &ns,
            &[&format!(
                "http://127.0.0.1:{NGINX_PORT}/big.bin?n={downloads}"
            )],
        );
        assert_eq!(run.http_code, 200);
        downloads += 1;
        // Paced so that flushes (every second at most) fall between downloads: the file
        // is cut back to the last one, so a disk filled within a second holds nothing.
        thread::sleep(Duration::from_millis(250));
        if let Some(exit) = rec.try_wait() {
            break exit;
        }
        assert!(
            Instant::now() < deadline,
            "the 2 MiB disk never filled after {downloads} downloads of {BIG_LEN} bytes; \
             recorder said:\n{}",
            rec.stderr()
        );
    };
    assert!(
        !exit.status.success(),
        "a full disk must make the recorder fail; it said:\n{}",
        exit.stderr
    );
    let err_line = exit
        .stderr
        .lines()
        .find(|l| l.contains("error"))
        .unwrap_or_else(|| panic!("no error line from the recorder:\n{}", exit.stderr));
    assert!(
        err_line.contains(&out.display().to_string())
            && (err_line.contains("No space left on device") || err_line.contains("disk full")),
        "the error must name the file and the full disk: {err_line}"
    );

    // The file was cut back to the last flush: tshark and l7rec's reader read it to
    // its end without complaint (no packet cut short).
    let t = tshark_fields(&out, "http.request", &["http.request.uri"]);
    assert!(
        t.status.success() && t.errors.is_empty(),
        "tshark must read the whole file cleanly (status {}): {}",
        t.status,
        t.errors
    );
    let contents = read_capture(&out);
    assert_eq!(contents.error, None, "the file must end on a whole block");
    eprintln!(
        "disk full after {downloads} downloads; tshark: status {}, {} requests, stderr {:?}",
        t.status,
        t.rows.len(),
        t.errors
    );
    assert!(
        !t.rows.is_empty(),
        "tshark found no request before the failure"
    );
    let a = analyze_json(&out);
    assert!(
        a.status.success(),
        "analyze must read the file up to the failure: {}",
        a.stderr
    );
    let complete = a
        .rows
        .iter()
        .filter(|r| r["status"].as_u64() == Some(200))
        .count();
    assert!(
        complete >= 1,
        "no complete transaction before the failure:\n{}",
        a.listing()
    );
}

/// Test 11: Stop right after traffic (no pause): every packet the kernel accepted into the
/// capture ring is in the file or counted as dropped (never lost silently), and the
/// exchange that finished before the signal is complete in the file.
#[test]
fn sigint_right_after_traffic_loses_nothing_silently() {
    let (ns, _www, nginx) = nginx_in_new_netns();
    let dir = temp_dir();
    let out = dir.path().join("cap.pcapng");
    let mut rec = Recorder::start(&ns, &out, &[]);
    rec.wait_ready(secs(10));
    // Let a stats/flush cycle pass so the signal does not race the first flush.
    thread::sleep(Duration::from_millis(1200));
    let run = curl(
        &ns,
        &[&format!("http://127.0.0.1:{NGINX_PORT}/index.html?last=1")],
    );
    // curl has its whole response: stop now, as a user pressing Ctrl-C would.
    let exit = rec.stop_ok(libc::SIGINT, secs(10));

    let contents = read_capture(&out);
    assert!(contents.error.is_none(), "{contents:?}");
    let isb = contents
        .last_isb
        .values()
        .next()
        .unwrap_or_else(|| panic!("no interface statistics block: {contents:?}"));
    let accepted = isb.filter_accept.unwrap_or(0);
    let dropped = isb.os_drop.unwrap_or(0);
    let delivered = isb.usr_deliv.unwrap_or(0);
    assert_eq!(
        accepted,
        delivered + dropped,
        "packets accepted by the kernel ({accepted}) must be written ({delivered}) or counted \
         as dropped ({dropped}); {} packets are in the file; last ISB {isb:?}; recorder said:\n{}",
        contents.packets,
        exit.stderr
    );
    assert_eq!(
        contents.packets as u64, delivered,
        "packets in the file vs usr_deliv"
    );
    let a = analyze_json(&out);
    assert!(a.status.success(), "analyze failed: {}", a.stderr);
    assert_transaction(&a, "/index.html?last=1", &run, "nginx", nginx.pid);
}

/// Test 12: `-i lo -i lo` captures lo once (a warning says so): each packet is in the
/// file once, and analyze reports the request once.
#[test]
fn repeated_interface_is_captured_once() {
    let (ns, _www, nginx) = nginx_in_new_netns();
    let dir = temp_dir();
    let out = dir.path().join("cap.pcapng");
    let mut rec = Recorder::start(&ns, &out, &["-i", "lo", "-i", "lo"]);
    rec.wait_ready(secs(10));
    let run = curl(
        &ns,
        &[&format!("http://127.0.0.1:{NGINX_PORT}/index.html?twice=1")],
    );
    thread::sleep(SETTLE);
    let exit = rec.stop_ok(libc::SIGINT, secs(10));
    assert!(
        exit.stderr.contains("lo is given more than once"),
        "a warning names the repeated interface:\n{}",
        exit.stderr
    );
    assert!(
        exit.stderr.contains("recording on lo to"),
        "lo once in the list of interfaces:\n{}",
        exit.stderr
    );
    let uris = http_uris(&out);
    assert_tshark_clean(&uris, "requests");
    assert_eq!(
        uris.column(0),
        vec!["/index.html?twice=1".to_owned()],
        "the request packet once"
    );
    // Every packet once: no two frames with the same TCP sequence, ack, flags and length
    // in the same direction (a second capture of lo would duplicate all of them).
    let tcp = tshark_fields(
        &out,
        "tcp",
        &[
            "frame.interface_id",
            "tcp.srcport",
            "tcp.seq_raw",
            "tcp.ack_raw",
            "tcp.flags",
            "tcp.len",
        ],
    );
    assert_tshark_clean(&tcp, "tcp");
    assert!(!tcp.rows.is_empty(), "no TCP packets recorded");
    let mut seen = std::collections::HashSet::new();
    for row in &tcp.rows {
        assert_eq!(row[0], "0", "one interface only: {row:?}");
        assert!(
            seen.insert(row[1..].to_vec()),
            "packet recorded twice: {row:?}"
        );
    }
    let a = analyze_json(&out);
    assert!(a.status.success(), "analyze failed: {}", a.stderr);
    assert_eq!(a.by_uri("/index.html?twice=1").len(), 1, "{}", a.listing());
    assert_transaction(&a, "/index.html?twice=1", &run, "nginx", nginx.pid);
}

/// `-o -` writes the capture to standard output (as `tcpdump -w -`), and the traced
/// command's standard output goes to standard error, out of the capture's way.
#[test]
fn output_dash_writes_the_capture_to_stdout() {
    let (ns, _www, nginx) = nginx_in_new_netns();
    let dir = temp_dir();
    let url = format!("http://127.0.0.1:{NGINX_PORT}/index.html?stdout=1");
    // curl prints the page to its standard output: it must not land in the capture.
    let o = run_with_timeout(
        std::process::Command::new("ip")
            .args(["netns", "exec", ns.name(), L7REC, "record", "-o", "-"])
            .args(["--", "curl", "-s", &url])
            .current_dir(dir.path()),
        secs(30),
    );
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "exit {}: {stderr}", o.status);
    assert!(
        stderr.contains(INDEX_BODY),
        "the command's output goes to standard error: {stderr}"
    );
    assert!(
        stderr.contains("written to standard output"),
        "the summary names standard output: {stderr}"
    );
    assert!(
        !dir.path().join("-").exists(),
        "-o - must not create a file named -"
    );
    let out = dir.path().join("from-stdout.pcapng");
    std::fs::write(&out, &o.stdout).expect("saving the captured stdout");
    let contents = read_capture(&out);
    assert_eq!(contents.error, None, "stdout must hold a clean capture");
    assert_eq!(contents.last_event, "records:Stats", "{contents:?}");
    let a = analyze_json(&out);
    assert!(a.status.success() && a.stderr.is_empty(), "{}", a.stderr);
    let rows = a.by_uri("/index.html?stdout=1");
    assert_eq!(rows.len(), 1, "{}", a.listing());
    assert_eq!(rows[0]["status"].as_u64(), Some(200), "{}", rows[0]);
    assert_eq!(
        rows[0]["server_pid"].as_u64(),
        Some(u64::from(nginx.pid)),
        "{}",
        rows[0]
    );
}
