//! Real-kernel test of the syscall tracer (needs root): python3 http.server and curl in a
//! network namespace made for the test are traced with correct pids, roles, 4-tuples
//! and byte counts; a concurrent curl/server pair in the host namespace is not. Process
//! identity (exe, cmdline) is right even for processes gone or zombies by the time their
//! event is decoded.

#[path = "../recorder/syscalls.rs"]
mod syscalls;

#[path = "../recorder/ring_events.rs"]
mod ring_events;

#[path = "common/proc_ns.rs"]
mod proc_ns;

use std::ffi::OsString;
use std::mem::size_of;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use proc_ns::{is_root, proc_start_ticks, setns_thread, start_http_server, Netns};
use syscalls::{
    IoOp, ProcessInfo, ProcessReason, Role, SyscallConfig, SyscallEvent, SyscallInfo, SyscallTracer,
};

const PYTHON: &str = "/usr/bin/python3";
const CURL: &str = "/usr/bin/curl";
const BODY_LEN: usize = 5000;
/// What the three counters of `SyscallTracer::drops_by_cause` count.
const DROP_CAUSES: &str = "drops: ring buffer full, thread table full, exit never seen";

fn epoch_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

struct Traced {
    events: Vec<SyscallEvent>,
    /// Ring buffer full, thread table full, exit never seen.
    drops: [u64; 3],
    malformed: u64,
}

/// Runs the tracer on its own thread, which first joins the namespace at `ns_path`, so
/// the default config ("the caller's netns") selects that namespace.
fn spawn_tracer(
    ns_path: PathBuf,
    stop: Arc<AtomicBool>,
) -> (
    mpsc::Receiver<u32>,
    std::thread::JoinHandle<anyhow::Result<Traced>>,
) {
    let (ready_tx, ready_rx) = mpsc::channel();
    let handle = std::thread::spawn(move || -> anyhow::Result<Traced> {
        setns_thread(&ns_path)?;
        let mut tracer = SyscallTracer::start(SyscallConfig::default())?;
        let _ = ready_tx.send(tracer.netns_ino());
        let mut events = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(120);
        while !stop.load(Ordering::SeqCst) && Instant::now() < deadline {
            tracer.poll(Duration::from_millis(50), &mut |ev| events.push(ev))?;
        }
        tracer.poll(Duration::ZERO, &mut |ev| events.push(ev))?;
        Ok(Traced {
            events,
            drops: tracer.drops_by_cause(),
            malformed: tracer.malformed(),
        })
    });
    (ready_rx, handle)
}

/// Held by each real-kernel test for its whole run: one tracer at a time on the syscall
/// tracepoints, so no test's workload overlaps another's attach or detach (the kernel
/// swaps a tracepoint's probe list then), and a failure cannot come from the others.
fn one_tracer_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn calls_of(events: &[SyscallEvent], pid: u32) -> impl Iterator<Item = &SyscallEvent> {
    events.iter().filter(move |ev| match ev {
        SyscallEvent::Process(p) => p.pid == pid,
        other => other.call().is_some_and(|call| call.pid == pid),
    })
}

/// (bytes received, bytes sent) by `pid` on the connection of `of` (same fd and
/// socket: a server reuses fd numbers for later connections).
fn io_totals(events: &[SyscallEvent], pid: u32, of: &SyscallInfo) -> (u64, u64) {
    let (mut rx, mut tx) = (0, 0);
    for ev in calls_of(events, pid) {
        if let SyscallEvent::Io { op, bytes, call } = ev {
            if call.fd == of.fd && call.socket == of.socket {
                if op.is_receive() {
                    rx += bytes;
                } else {
                    tx += bytes;
                }
            }
        }
    }
    (rx, tx)
}

fn process_of(events: &[SyscallEvent], pid: u32) -> &ProcessInfo {
    events
        .iter()
        .find_map(|ev| match ev {
            SyscallEvent::Process(p) if p.pid == pid => Some(p),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no process event for pid {pid}"))
}

fn assert_cmdline_has(p: &ProcessInfo, arg: &str) {
    assert!(
        p.cmdline.iter().any(|a| a == &OsString::from(arg)),
        "cmdline of {} lacks {arg:?}: {:?}",
        p.pid,
        p.cmdline
    );
}

#[test]
fn traces_http_in_own_netns_only() {
    if !is_root() {
        eprintln!("skipping traces_http_in_own_netns_only: needs root (BPF, netns)");
        return;
    }
    let _serial = one_tracer_at_a_time();
    for tool in [PYTHON, CURL] {
        assert!(Path::new(tool).exists(), "{tool} is needed for this test");
    }
    let t_start = epoch_ns();
    let ns = Netns::create(&format!("l7s-{}", std::process::id()));
    let ns_ino = u32::try_from(ns.inode()).expect("32-bit netns inode");

    let docroot = tempfile::tempdir().expect("tempdir");
    std::fs::write(docroot.path().join("data.bin"), vec![b'x'; BODY_LEN]).expect("write body");

    let stop = Arc::new(AtomicBool::new(false));
    let (ready, tracer) = spawn_tracer(ns.path(), Arc::clone(&stop));
    let Ok(tracer_ino) = ready.recv_timeout(Duration::from_secs(30)) else {
        match tracer.join() {
            Ok(Err(e)) => panic!("tracer failed to start: {e:#}"),
            _ => panic!("tracer did not start"),
        }
    };
    assert_eq!(
        tracer_ino, ns_ino,
        "default config must use the caller's netns"
    );

    let (server, port) = start_http_server(ns.command(PYTHON), docroot.path());
    let (host_server, host_port) = start_http_server(Command::new(PYTHON), docroot.path());

    // Outsider: the same kind of traffic on the host's loopback, at the same time.
    let mut host_curl = Command::new(CURL)
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}"])
        .args(["--limit-rate", "20k"]) // keep it running while the traced curl does
        .arg(format!("http://127.0.0.1:{host_port}/data.bin"))
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn host curl");
    let url = format!("http://127.0.0.1:{port}/data.bin");
    let curl = ns
        .command(CURL)
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code} %{size_request} %{size_header} %{size_download}",
        ])
        .arg(&url)
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn curl in netns");
    let curl_pid = curl.id();
    let host_curl_pid = host_curl.id();
    let out = curl.wait_with_output().expect("wait curl");
    let host_status = host_curl.wait().expect("wait host curl");
    let mut host_code = String::new();
    if let Some(mut o) = host_curl.stdout.take() {
        use std::io::Read;
        let _ = o.read_to_string(&mut host_code);
    }
    assert!(
        host_status.success() && host_code == "200",
        "host curl failed: {host_code}"
    );

    let stats = String::from_utf8_lossy(&out.stdout).into_owned();
    let nums: Vec<u64> = stats
        .split_whitespace()
        .filter_map(|v| v.parse().ok())
        .collect();
    let [code, size_request, size_header, size_download] = nums[..] else {
        panic!("unexpected curl -w output {stats:?}");
    };
    assert_eq!(code, 200, "curl in netns failed: {stats}");
    assert_eq!(size_download, BODY_LEN as u64);

    // A process seen on a socket that then execs is reported again, as the new image.
    let exec_out = ns
        .command("/bin/bash")
        .arg("-c")
        .arg(format!(
            "exec 3<>/dev/tcp/127.0.0.1/{port} && printf 'GET / HTTP/1.0\\r\\n\\r\\n' >&3 && \
             exec {CURL} -s -o /dev/null {url}"
        ))
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn bash -> curl");
    let bash_pid = exec_out.id();
    let exec_out = exec_out.wait_with_output().expect("run bash -> curl");
    assert!(exec_out.status.success(), "bash/exec curl failed");

    // Let the server finish its close(), then stop tracing.
    std::thread::sleep(Duration::from_millis(800));
    let python_start_ticks = proc_start_ticks(server.pid());
    stop.store(true, Ordering::SeqCst);
    let traced = match tracer.join() {
        Ok(Ok(t)) => t,
        Ok(Err(e)) => panic!("tracer failed: {e:#}"),
        Err(_) => panic!("tracer thread panicked"),
    };
    let server_pid = server.pid();
    let host_server_pid = host_server.pid();
    drop(server);
    drop(host_server);
    let t_end = epoch_ns();
    let events = &traced.events;
    if std::env::var_os("L7_DUMP").is_some() {
        for ev in events {
            eprintln!("{ev:?}");
        }
    }

    assert_eq!(traced.drops, [0; 3], "{DROP_CAUSES}");
    assert_eq!(traced.malformed, 0, "undecodable records");

    // Nothing from outside the namespace.
    for pid in [host_curl_pid, host_server_pid] {
        let leaked: Vec<_> = calls_of(events, pid).collect();
        assert!(
            leaked.is_empty(),
            "events from host-netns pid {pid}: {leaked:?}"
        );
    }
    for ev in events {
        match ev {
            SyscallEvent::Seen { .. } | SyscallEvent::Ended { .. } => {
                panic!("connections-mode event in calls mode: {ev:?}")
            }
            SyscallEvent::Io { call, .. }
            | SyscallEvent::Connect { call }
            | SyscallEvent::Accept { call, .. }
            | SyscallEvent::Close { call } => {
                assert_eq!(
                    call.socket.netns, ns_ino,
                    "socket outside the netns: {ev:?}"
                );
                assert!(
                    t_start <= call.enter_ns
                        && call.enter_ns <= call.exit_ns
                        && call.exit_ns <= t_end,
                    "timestamps outside the test window: {ev:?}"
                );
                assert_ne!(call.pid, std::process::id(), "recorder traced itself");
            }
            SyscallEvent::Process(p) => assert_eq!(p.netns, ns_ino, "process outside: {p:?}"),
        }
    }

    let lo = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let server_addr = SocketAddr::new(lo, port);

    // curl: client side.
    let connect: &SyscallInfo = calls_of(events, curl_pid)
        .find_map(|ev| match ev {
            SyscallEvent::Connect { call } if call.socket.remote == server_addr => Some(call),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no connect to {server_addr} from curl {curl_pid}: {events:#?}"));
    assert_eq!(connect.comm, "curl");
    assert_eq!(connect.role, Role::Client);
    assert!(
        connect.ret == 0 || connect.ret == -115,
        "connect ret {}",
        connect.ret
    );
    assert_eq!(connect.socket.local.ip(), lo);
    assert_ne!(connect.socket.local.port(), 0);
    let (curl_rx, curl_tx) = io_totals(events, curl_pid, connect);
    assert_eq!(curl_tx, size_request, "curl bytes sent");
    assert_eq!(curl_rx, size_header + size_download, "curl bytes received");
    assert!(
        calls_of(events, curl_pid).any(|ev| matches!(ev,
            SyscallEvent::Io { op: IoOp::Sendto, call, .. } if call.fd == connect.fd)),
        "curl's sendto not seen"
    );
    assert!(
        calls_of(events, curl_pid).any(|ev| matches!(ev,
            SyscallEvent::Close { call } if call.fd == connect.fd
                && call.role == Role::Client && call.socket == connect.socket)),
        "curl's close of its socket not seen"
    );

    // python: server side, the same connection seen from the other end.
    let accept: &SyscallInfo = calls_of(events, server_pid)
        .find_map(|ev| match ev {
            SyscallEvent::Accept { call, .. } if call.socket.remote == connect.socket.local => {
                Some(call)
            }
            _ => None,
        })
        .unwrap_or_else(|| panic!("no accept of curl's connection in python {server_pid}"));
    assert_eq!(accept.role, Role::Server);
    assert_eq!(accept.socket.local, server_addr);
    assert_eq!(i64::from(accept.fd), accept.ret);
    let (py_rx, py_tx) = io_totals(events, server_pid, accept);
    assert_eq!(py_rx, size_request, "python bytes received");
    assert_eq!(py_tx, size_header + size_download, "python bytes sent");
    assert!(calls_of(events, server_pid).any(|ev| matches!(ev,
        SyscallEvent::Io { op, call, .. } if call.fd == accept.fd && call.role == Role::Server
            && call.socket == accept.socket && op.is_receive())));

    // Process info, completed from /proc.
    let curl_info = process_of(events, curl_pid);
    assert_eq!(curl_info.comm, "curl");
    assert_eq!(curl_info.exe.as_deref(), Some(Path::new(CURL)));
    assert_cmdline_has(curl_info, &url);
    assert_eq!(curl_info.cmdline.first(), Some(&OsString::from(CURL)));

    let py_info = process_of(events, server_pid);
    let py_exe = std::fs::canonicalize(PYTHON).expect("canonicalize python");
    assert_eq!(py_info.comm, "python3");
    assert_eq!(py_info.exe.as_deref(), Some(py_exe.as_path()));
    assert_cmdline_has(py_info, "http.server");
    // Process start vs /proc/PID/stat (clock ticks): same instant within a few ticks.
    // SAFETY: sysconf has no preconditions.
    let hz = u64::try_from(unsafe { libc::sysconf(libc::_SC_CLK_TCK) }).unwrap_or(100);
    let boot_ns = (clock_ns(libc::CLOCK_REALTIME) - clock_ns(libc::CLOCK_BOOTTIME)) as i128;
    let proc_start = python_start_ticks as i128 * 1_000_000_000 / hz as i128 + boot_ns;
    let diff = (py_info.start_ns as i128 - proc_start).abs();
    assert!(
        diff < 3 * 1_000_000_000 / hz as i128,
        "python start time off by {diff} ns"
    );
    // bash used a socket (reported as bash), then exec'd curl (reported again as curl).
    let bash_ops: Vec<&str> = calls_of(events, bash_pid)
        .filter_map(|ev| match ev {
            SyscallEvent::Connect { call } if call.comm == "bash" => Some("connect"),
            SyscallEvent::Io { call, .. } if call.comm == "bash" => Some("write"),
            _ => None,
        })
        .collect();
    assert!(
        !bash_ops.is_empty(),
        "bash {bash_pid}: neither its connect nor its write seen; its events: {:#?}",
        calls_of(events, bash_pid).collect::<Vec<_>>()
    );
    let procs: Vec<&ProcessInfo> = calls_of(events, bash_pid)
        .filter_map(|ev| match ev {
            SyscallEvent::Process(p) => Some(p),
            _ => None,
        })
        .collect();
    assert!(
        matches!(&procs[..], [first, exec]
            if first.comm == "bash" && first.reason == ProcessReason::FirstSeen
            // bash's identity, even when decoded after the exec (same pid, same start)
            && first.exe.as_deref().is_some_and(|e| e.ends_with("bash"))
            && first.cmdline.first().is_some_and(|a| a == "/bin/bash")
            && exec.comm == "curl" && exec.reason == ProcessReason::Exec
            && exec.exe.as_deref() == Some(Path::new(CURL))
            && exec.start_ns == first.start_ns),
        "bash -> curl process events: {procs:#?}"
    );

    // The process event precedes the process's first syscall event.
    let first = calls_of(events, server_pid).next();
    assert!(
        matches!(first, Some(SyscallEvent::Process(_))),
        "first: {first:?}"
    );
}

fn clock_ns(clock: libc::clockid_t) -> i64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    ts.tv_sec * 1_000_000_000 + ts.tv_nsec
}

/// `struct l7_flow_key` bytes by the shared convention: endpoint "a" is the lower
/// (address bytes, port) pair, IPv4 as IPv4-mapped IPv6, ports in host byte order.
fn flow_key(netns: u32, x: SocketAddr, y: SocketAddr) -> Vec<u8> {
    let mapped = |a: SocketAddr| match a.ip() {
        IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
        IpAddr::V6(v6) => v6.octets(),
    };
    let (a, b) = if (mapped(x), x.port()) <= (mapped(y), y.port()) {
        (x, y)
    } else {
        (y, x)
    };
    let mut key = Vec::with_capacity(40);
    key.extend_from_slice(&netns.to_ne_bytes());
    key.extend_from_slice(&a.port().to_ne_bytes());
    key.extend_from_slice(&b.port().to_ne_bytes());
    key.extend_from_slice(&mapped(a));
    key.extend_from_slice(&mapped(b));
    key
}

#[test]
fn only_kept_flows_and_comm_filter() {
    use libbpf_rs::{MapCore, MapFlags, MapHandle, MapType};
    use std::os::fd::AsFd;

    if !is_root() {
        eprintln!("skipping only_kept_flows_and_comm_filter: needs root (BPF, netns)");
        return;
    }
    let _serial = one_tracer_at_a_time();
    for tool in [PYTHON, CURL] {
        assert!(Path::new(tool).exists(), "{tool} is needed for this test");
    }
    let ns = Netns::create(&format!("l7s-{}-k", std::process::id()));
    let ns_ino = u32::try_from(ns.inode()).expect("32-bit netns inode");
    let docroot = tempfile::tempdir().expect("tempdir");
    std::fs::write(docroot.path().join("data.bin"), vec![b'x'; BODY_LEN]).expect("write body");
    let (server, port) = start_http_server(ns.command(PYTHON), docroot.path());
    let lo = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let server_addr = SocketAddr::new(lo, port);
    let (kept_port, other_port) = (40111u16, 40112u16);

    // Stands in for the socket filter's flow map; one flow is "kept".
    let opts = libbpf_rs::libbpf_sys::bpf_map_create_opts {
        sz: size_of::<libbpf_rs::libbpf_sys::bpf_map_create_opts>() as _,
        ..Default::default()
    };
    let flows = MapHandle::create(MapType::LruHash, Some("l7_flows"), 40, 1, 1024, &opts)
        .expect("create flow map");
    let key = flow_key(ns_ino, SocketAddr::new(lo, kept_port), server_addr);
    flows
        .update(&key, &[1], MapFlags::ANY)
        .expect("insert kept flow");

    // A map the programs cannot adopt is refused with an error, not a panic.
    let wrong = MapHandle::create(MapType::LruHash, Some("other"), 40, 1, 16, &opts)
        .expect("create wrong map");
    let cfg = SyscallConfig::default()
        .with_flows_map(wrong.as_fd().try_clone_to_owned().expect("dup map fd"));
    match SyscallTracer::start(cfg) {
        Err(e) => assert!(format!("{e:#}").contains("l7_flows"), "{e:#}"),
        Ok(_) => panic!("a flow map named \"other\" was accepted"),
    }

    // Explicit netns inode from a thread that stays in the host namespace.
    let cfg = SyscallConfig {
        netns_ino: Some(ns_ino),
        comm: Some("curl".into()),
        only_kept_flows: true,
        ..Default::default()
    }
    .with_flows_map(flows.as_fd().try_clone_to_owned().expect("dup map fd"));
    let mut tracer = SyscallTracer::start(cfg).expect("start tracer");

    for local_port in [kept_port, other_port] {
        let out = ns
            .command(CURL)
            .args([
                "-s",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "--local-port",
            ])
            .arg(local_port.to_string())
            .arg(format!("http://{server_addr}/data.bin"))
            .output()
            .expect("run curl");
        assert_eq!(String::from_utf8_lossy(&out.stdout), "200", "curl failed");
    }

    let mut events = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    let closes = |evs: &[SyscallEvent]| {
        evs.iter()
            .filter(|e| matches!(e, SyscallEvent::Close { .. }))
            .count()
    };
    while closes(&events) < 2 && Instant::now() < deadline {
        tracer
            .poll(Duration::from_millis(50), &mut |ev| events.push(ev))
            .expect("poll");
    }
    assert_eq!(tracer.drops_by_cause(), [0; 3], "{DROP_CAUSES}");
    let server_pid = server.pid();
    drop(server);

    assert!(
        calls_of(&events, server_pid).next().is_none(),
        "comm filter let python through"
    );
    let by_local = |lport: u16| -> Vec<&SyscallEvent> {
        events
            .iter()
            .filter(|ev| {
                ev.call()
                    .is_some_and(|call| call.socket.local.port() == lport)
            })
            .collect()
    };
    let kept = by_local(kept_port);
    let other = by_local(other_port);
    let count =
        |evs: &[&SyscallEvent], f: fn(&SyscallEvent) -> bool| evs.iter().filter(|e| f(e)).count();
    let is_io: fn(&SyscallEvent) -> bool = |e| matches!(e, SyscallEvent::Io { .. });
    let is_conn: fn(&SyscallEvent) -> bool = |e| matches!(e, SyscallEvent::Connect { .. });
    let is_close: fn(&SyscallEvent) -> bool = |e| matches!(e, SyscallEvent::Close { .. });
    assert_eq!(count(&kept, is_conn), 1, "kept flow connect: {kept:#?}");
    assert_eq!(count(&kept, is_close), 1, "kept flow close: {kept:#?}");
    assert!(count(&kept, is_io) >= 2, "kept flow I/O: {kept:#?}");
    assert_eq!(count(&other, is_conn), 1, "other flow connect: {other:#?}");
    assert_eq!(count(&other, is_close), 1, "other flow close: {other:#?}");
    assert_eq!(
        count(&other, is_io),
        0,
        "I/O of a flow not kept: {other:#?}"
    );
    let procs = events
        .iter()
        .filter(|e| matches!(e, SyscallEvent::Process(p) if p.comm == "curl"))
        .count();
    assert_eq!(procs, 2, "one process event per curl");
}

/// The process event of `pid`, polling `tracer` until it arrives (or 10 s pass).
fn poll_process(
    tracer: &mut SyscallTracer,
    events: &mut Vec<SyscallEvent>,
    pid: u32,
) -> ProcessInfo {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(p) = events.iter().find_map(|ev| match ev {
            SyscallEvent::Process(p) if p.pid == pid => Some(p.clone()),
            _ => None,
        }) {
            return p;
        }
        assert!(
            Instant::now() < deadline,
            "no process event for pid {pid}: {events:#?}"
        );
        tracer
            .poll(Duration::from_millis(50), &mut |ev| events.push(ev))
            .expect("poll");
    }
}

fn os_args<I: IntoIterator<Item = S>, S: Into<OsString>>(args: I) -> Vec<OsString> {
    args.into_iter().map(Into::into).collect()
}

/// Short-lived clients are gone (or zombies) by the time user space decodes their
/// process event; exe and cmdline must then come from what the kernel captured in the
/// process's own context.
#[test]
fn identity_of_processes_gone_before_decoding() {
    if !is_root() {
        eprintln!("skipping identity_of_processes_gone_before_decoding: needs root (BPF, netns)");
        return;
    }
    let _serial = one_tracer_at_a_time();
    for tool in [PYTHON, CURL, "/bin/sh"] {
        assert!(Path::new(tool).exists(), "{tool} is needed for this test");
    }
    let ns = Netns::create(&format!("l7s-{}-g", std::process::id()));
    let ns_ino = u32::try_from(ns.inode()).expect("32-bit netns inode");
    let docroot = tempfile::tempdir().expect("tempdir");
    std::fs::write(docroot.path().join("data.bin"), vec![b'x'; BODY_LEN]).expect("write body");
    let (server, port) = start_http_server(ns.command(PYTHON), docroot.path());
    let url = format!("http://127.0.0.1:{port}/data.bin");
    let curl_exe = std::fs::canonicalize(CURL).expect("canonicalize curl");

    let cfg = SyscallConfig {
        netns_ino: Some(ns_ino),
        comm: Some("curl".into()),
        ..Default::default()
    };
    let mut tracer = SyscallTracer::start(cfg).expect("start tracer");
    let mut events = Vec::new();

    // 1. curl run to completion and reaped before the ringbuf is read. An argument
    //    with spaces checks the split at NULs.
    let args = os_args(["-s", "-o", "/dev/null", "-H", "X-Note: two words", &url]);
    let out = ns.command(CURL).args(&args).output().expect("run curl");
    assert!(out.status.success(), "curl failed");
    // `ip netns exec` execs curl: the child's pid is curl's.
    // (pid of a reaped child: from the tracer's events, matched by the unique header.)

    // 2. sh that execs curl (the pid is sh's; only curl touched a socket), reaped.
    let sh = ns
        .command("/bin/sh")
        .arg("-c")
        .arg(format!("exec {CURL} -s -o /dev/null {url}?via=sh"))
        .spawn()
        .expect("spawn sh");
    let sh_pid = sh.id();
    assert!(sh.wait_with_output().expect("wait sh").status.success());

    // 3. A command line longer than the kernel keeps (1 KiB).
    let long_url = format!("{url}?q={}", "a".repeat(2000));
    let long = ns
        .command(CURL)
        .args(["-s", "-o", "/dev/null", &long_url])
        .spawn()
        .expect("spawn long curl");
    let long_pid = long.id();
    assert!(long.wait_with_output().expect("wait").status.success());

    // 4. A zombie: exited but not reaped while its event is decoded (/proc/PID/stat
    //    still exists and matches, but exe and cmdline are empty there).
    let mut zombie = ns
        .command(CURL)
        .args([
            "-s",
            "-o",
            "/dev/null",
            &url,
            "--next",
            "-s",
            "-o",
            "/dev/null",
        ])
        .arg(format!("{url}?zombie"))
        .spawn()
        .expect("spawn zombie curl");
    let zombie_pid = zombie.id();
    // SAFETY: siginfo_t is plain data; waitid writes it. WNOWAIT leaves the child
    // waitable (a zombie) until zombie.wait() below.
    let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
    let rc = unsafe {
        libc::waitid(
            libc::P_PID,
            zombie_pid,
            &mut info,
            libc::WEXITED | libc::WNOWAIT,
        )
    };
    assert_eq!(rc, 0, "waitid: {}", std::io::Error::last_os_error());
    let zombie_state = std::fs::read_to_string(format!("/proc/{zombie_pid}/stat"))
        .expect("zombie's /proc/PID/stat");
    assert!(
        zombie_state.contains(") Z "),
        "not a zombie: {zombie_state}"
    );
    assert!(std::fs::read_link(format!("/proc/{zombie_pid}/exe")).is_err());

    // 5. An executable on another mount: a tmpfs in a private mount namespace, which
    //    vanishes with it. The kernel's path walk must cross the mount point.
    let mnt_dir = tempfile::tempdir().expect("tempdir");
    let mnt_point = std::fs::canonicalize(mnt_dir.path())
        .expect("canonicalize tempdir")
        .join("m");
    std::fs::create_dir(&mnt_point).expect("mkdir mount point");
    let deep = mnt_point.join("a/b/c");
    let mounted = Command::new("unshare")
        .args(["-m", "--propagation", "private", "/bin/sh", "-c"])
        .arg(format!(
            "mount -t tmpfs l7rec-test {m} && mkdir -p {d} && cp {CURL} {d}/curl && \
             exec ip netns exec {ns} {d}/curl -s -o /dev/null {url}?mnt",
            m = mnt_point.display(),
            d = deep.display(),
            ns = ns.name(),
        ))
        .spawn()
        .expect("spawn unshare");
    // unshare, sh and ip all exec: the pid ends up curl's.
    let mounted_pid = mounted.id();
    assert!(mounted.wait_with_output().expect("wait").status.success());
    assert!(
        !deep.exists(),
        "the tmpfs leaked into the host mount namespace"
    );

    // Only now read the ringbuf.
    for pid in [sh_pid, long_pid, mounted_pid] {
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists(),
            "pid {pid} still (or again) exists"
        );
    }
    let zombie_info = poll_process(&mut tracer, &mut events, zombie_pid);
    let sh_info = poll_process(&mut tracer, &mut events, sh_pid);
    let long_info = poll_process(&mut tracer, &mut events, long_pid);
    let mounted_info = poll_process(&mut tracer, &mut events, mounted_pid);
    zombie.wait().expect("reap zombie");
    // The first curl: the only process event whose cmdline carries the header.
    let deadline = Instant::now() + Duration::from_secs(10);
    let direct = loop {
        let found = events.iter().find_map(|ev| match ev {
            SyscallEvent::Process(p) if p.cmdline.iter().any(|a| a == "X-Note: two words") => {
                Some(p.clone())
            }
            _ => None,
        });
        if let Some(p) = found {
            break p;
        }
        assert!(
            Instant::now() < deadline,
            "no event for the first curl: {events:#?}"
        );
        tracer
            .poll(Duration::from_millis(50), &mut |ev| events.push(ev))
            .expect("poll");
    };
    assert_eq!(tracer.drops_by_cause(), [0; 3], "{DROP_CAUSES}");
    assert_eq!(tracer.malformed(), 0, "undecodable records");
    drop(server);
    if std::env::var_os("L7_DUMP").is_some() {
        for p in [&direct, &sh_info, &long_info, &zombie_info, &mounted_info] {
            eprintln!("{p:?}");
        }
    }

    let mut expect_direct = os_args([CURL]);
    expect_direct.extend(args);
    let expect_sh = os_args([CURL, "-s", "-o", "/dev/null", &format!("{url}?via=sh")]);
    let expect_zombie = os_args([
        CURL,
        "-s",
        "-o",
        "/dev/null",
        &url,
        "--next",
        "-s",
        "-o",
        "/dev/null",
        &format!("{url}?zombie"),
    ]);
    for (p, cmdline) in [
        (&direct, &expect_direct),
        (&sh_info, &expect_sh),
        (&zombie_info, &expect_zombie),
    ] {
        assert_eq!(p.comm, "curl", "{p:?}");
        assert_eq!(p.netns, ns_ino, "{p:?}");
        assert!(
            p.exe.as_deref().is_some_and(|e| e.ends_with("curl")),
            "exe: {p:?}"
        );
        assert_eq!(p.exe.as_deref(), Some(curl_exe.as_path()), "{p:?}");
        assert_eq!(&p.cmdline, cmdline, "{p:?}");
        assert!(!p.cmdline_truncated, "{p:?}");
    }
    assert_eq!(sh_info.reason, ProcessReason::FirstSeen);

    let on_tmpfs = deep.join("curl");
    assert_eq!(
        mounted_info.exe.as_deref(),
        Some(on_tmpfs.as_path()),
        "{mounted_info:?}"
    );
    assert_eq!(
        mounted_info.cmdline,
        os_args([
            on_tmpfs.as_os_str(),
            "-s".as_ref(),
            "-o".as_ref(),
            "/dev/null".as_ref(),
            format!("{url}?mnt").as_ref(),
        ])
    );

    // The long one: the first 1 KiB, marked as cut.
    assert_eq!(long_info.exe.as_deref(), Some(curl_exe.as_path()));
    assert!(long_info.cmdline_truncated, "{long_info:?}");
    let full = [CURL, "-s", "-o", "/dev/null", &long_url].join("\0");
    let got: Vec<String> = long_info
        .cmdline
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let got = got.join("\0");
    assert_eq!(got.len(), 1024, "kept bytes");
    assert!(full.starts_with(&got), "not a prefix: {got:?}");
}
