//! Helpers for end-to-end tests of the real `l7rec` binary inside a test network
//! namespace ([`crate::netns::Netns`]): real servers (nginx with a generated config,
//! `python3 -m http.server`), curl clients whose pid is known, the recorder in the
//! background stopped by a signal, and the two independent readers of its output
//! (tshark field extraction and `l7rec analyze --format json`).
//!
//! Every wait is bounded; every process is killed by its own pid (never by name).

#![allow(dead_code)] // Each test binary uses a different subset.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::netns::Netns;

/// The `l7rec` binary cargo built for these tests.
pub const L7REC: &str = env!("CARGO_BIN_EXE_l7rec");

/// Size of the large file every docroot serves (`/big.bin`).
pub const BIG_LEN: usize = 300 * 1024;
/// Body of `/index.html`.
pub const INDEX_BODY: &str = "<html><body>l7rec e2e test page</body></html>\n";

/// tshark's warning when run as root (not an error).
const TSHARK_ROOT_WARNING: &str =
    "Running as user \"root\" and group \"root\". This could be dangerous.";

pub fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// Nanoseconds since the Unix epoch (same clock as capture timestamps).
pub fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// A 0755 temporary directory (servers may read it), removed on drop.
pub fn temp_dir() -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("l7rec-e2e-")
        .tempdir()
        .expect("creating a temp dir");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
        .expect("chmod temp dir");
    dir
}

/// A document root with `index.html` and a 300 KiB `big.bin` (deterministic bytes).
pub struct Docroot {
    dir: tempfile::TempDir,
}

impl Docroot {
    pub fn new() -> Self {
        let dir = temp_dir();
        std::fs::write(dir.path().join("index.html"), INDEX_BODY).expect("writing index.html");
        let big: Vec<u8> = (0..BIG_LEN as u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
            .collect();
        std::fs::write(dir.path().join("big.bin"), big).expect("writing big.bin");
        Self { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

/// nginx in the namespace, one process (`master_process off`), listening on
/// 127.0.0.1 and [::1] on each port. Killed by pid when the namespace is dropped.
pub struct Nginx {
    /// Pid of the one nginx process (it serves the connections itself).
    pub pid: u32,
    dir: tempfile::TempDir,
}

impl Nginx {
    /// nginx serving `docroot` on 127.0.0.1 and [::1] on each of `ports`.
    pub fn start(ns: &Netns, docroot: &Docroot, ports: &[u16]) -> Self {
        let listens: String = ports
            .iter()
            .map(|p| format!("listen 127.0.0.1:{p};\n listen [::1]:{p};\n"))
            .collect();
        let wait: Vec<(&str, u16)> = ports
            .iter()
            .flat_map(|&p| [("127.0.0.1", p), ("::1", p)])
            .collect();
        Self::start_server(ns, docroot, temp_dir(), &listens, &wait)
    }

    /// nginx serving `docroot` with `server` (listen lines and any other directives)
    /// as the body of its server block; `dir` holds the config and whatever files
    /// `server` names (certificates, ...). Waits until each (host, port) of `wait`
    /// accepts connections.
    pub fn start_server(
        ns: &Netns,
        docroot: &Docroot,
        dir: tempfile::TempDir,
        server: &str,
        wait: &[(&str, u16)],
    ) -> Self {
        let d = dir.path().display().to_string();
        let conf = format!(
            "daemon off;\n\
             master_process off;\n\
             worker_processes 1;\n\
             user root;\n\
             pid {d}/nginx.pid;\n\
             error_log {d}/error.log warn;\n\
             events {{ worker_connections 256; }}\n\
             http {{\n\
               access_log off;\n\
               default_type application/octet-stream;\n\
               types {{ text/html html; }}\n\
               client_body_temp_path {d}/client_body;\n\
               proxy_temp_path {d}/proxy;\n\
               fastcgi_temp_path {d}/fastcgi;\n\
               uwsgi_temp_path {d}/uwsgi;\n\
               scgi_temp_path {d}/scgi;\n\
               large_client_header_buffers 4 32k;\n\
               keepalive_timeout 60s;\n\
               server {{\n{server}\n    root {root};\n  }}\n\
             }}\n",
            root = docroot.path().display()
        );
        let conf_path = dir.path().join("nginx.conf");
        std::fs::write(&conf_path, conf).expect("writing nginx.conf");
        let conf_s = conf_path.display().to_string();
        let err_s = format!("{d}/error.log");
        // `ip netns exec` execs nginx: the spawned pid is nginx's pid.
        let pid = ns.spawn(&["nginx", "-c", &conf_s, "-e", &err_s]);
        for &(host, port) in wait {
            ns.wait_tcp(host, port, secs(10));
        }
        let pid_file = std::fs::read_to_string(dir.path().join("nginx.pid")).unwrap_or_default();
        assert_eq!(
            pid_file.trim(),
            pid.to_string(),
            "nginx pid file disagrees with the spawned pid (is master_process off honoured?); \
             nginx log:\n{}",
            std::fs::read_to_string(&err_s).unwrap_or_default()
        );
        Self { pid, dir }
    }
}

/// `python3 -m http.server PORT --bind ADDR --directory DOCROOT` in the namespace.
pub struct PyHttp {
    pub pid: u32,
}

impl PyHttp {
    pub fn start(ns: &Netns, docroot: &Docroot, bind: &str, port: u16) -> Self {
        let port_s = port.to_string();
        let root = docroot.path().display().to_string();
        let pid = ns.spawn(&[
            "python3",
            "-m",
            "http.server",
            &port_s,
            "--bind",
            bind,
            "--directory",
            &root,
        ]);
        ns.wait_tcp(bind, port, secs(10));
        Self { pid }
    }
}

/// Starts a python script (given as source) in the background in the namespace.
/// Returns the python process's pid.
pub fn spawn_python(ns: &Netns, script: &str, args: &[&str]) -> u32 {
    let mut full = vec!["python3", "-c", script];
    full.extend_from_slice(args);
    ns.spawn(&full)
}

/// What one curl run did.
#[derive(Debug)]
pub struct CurlRun {
    /// curl's own pid (`sh` prints `$$` and execs curl, keeping the pid).
    pub pid: u32,
    /// `%{http_code}`.
    pub http_code: u16,
    /// `%{size_download}`.
    pub size_download: u64,
}

/// Runs `curl -sS -o /dev/null ARGS... URL` in the namespace (10 s max) and returns its
/// pid, status code and body size; panics if curl fails.
pub fn curl(ns: &Netns, args: &[&str]) -> CurlRun {
    let mut full = vec![
        "sh",
        "-c",
        "echo $$; exec curl -sS -o /dev/null -w '%{http_code} %{size_download}\\n' \"$@\"",
        "sh",
    ];
    full.extend_from_slice(args);
    let out = ns.run_status(&full, secs(10));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "curl {args:?} failed ({}): stdout {stdout:?} stderr {}\nservers said:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr),
        ns.log()
    );
    let mut lines = stdout.lines();
    let pid = lines.next().and_then(|l| l.trim().parse().ok());
    let mut rest = lines.next().unwrap_or("").split_whitespace();
    let code = rest.next().and_then(|c| c.parse().ok());
    let size = rest.next().and_then(|c| c.parse().ok());
    match (pid, code, size) {
        (Some(pid), Some(http_code), Some(size_download)) => CurlRun {
            pid,
            http_code,
            size_download,
        },
        _ => panic!("unexpected output of curl {args:?}: {stdout:?}"),
    }
}

/// How the recorder ended.
#[derive(Debug)]
pub struct RecorderExit {
    pub status: ExitStatus,
    pub stderr: String,
    /// How long after the stop signal (or the wait call) it took to exit.
    pub took: Duration,
}

/// `l7rec record -o FILE ARGS...` running in the background in a namespace. Killed by
/// its pid on drop if still running.
pub struct Recorder {
    child: Option<Child>,
    output: PathBuf,
    stderr_file: tempfile::NamedTempFile,
    args: Vec<String>,
    started: Instant,
}

impl Recorder {
    /// Starts the recorder (does not wait until it is ready: see [`Recorder::wait_ready`]).
    pub fn start(ns: &Netns, output: &Path, extra: &[&str]) -> Self {
        Self::start_with_env(ns, output, extra, &[])
    }

    /// [`Recorder::start`] with extra environment variables.
    pub fn start_with_env(ns: &Netns, output: &Path, extra: &[&str], env: &[(&str, &str)]) -> Self {
        let stderr_file = tempfile::NamedTempFile::new().expect("creating a stderr file");
        let mut args: Vec<String> =
            vec!["record".into(), "-o".into(), output.display().to_string()];
        args.extend(extra.iter().map(|s| s.to_string()));
        let child = Command::new("ip")
            .args(["netns", "exec", ns.name(), L7REC])
            .args(&args)
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(stderr_file.reopen().expect("reopening the stderr file"))
            .stderr(stderr_file.reopen().expect("reopening the stderr file"))
            .spawn()
            .unwrap_or_else(|e| panic!("spawning l7rec {args:?}: {e}"));
        Self {
            child: Some(child),
            output: output.to_owned(),
            stderr_file,
            args,
            started: Instant::now(),
        }
    }

    /// The recorder's pid (`ip netns exec` execs it).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("recorder already reaped").id()
    }

    /// What the recorder printed so far (stdout and stderr).
    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.stderr_file.path()).unwrap_or_default()
    }

    /// Polls until the recorder said "recording on" and the output file is non-empty:
    /// the recorder replaces an existing file and says so only once the filter, rings
    /// and tracepoints are set up (an old file's contents do not mean it is ready).
    pub fn wait_ready(&mut self, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let len = std::fs::metadata(&self.output).map_or(0, |m| m.len());
            if len > 0 && self.stderr().contains("l7rec: recording on ") {
                return;
            }
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                self.child = None;
                panic!(
                    "l7rec {:?} exited ({status}) before it was ready; it said:\n{}",
                    self.args,
                    self.stderr()
                );
            }
            assert!(
                Instant::now() < deadline,
                "l7rec {:?} did not write {} within {timeout:?}; it said:\n{}",
                self.args,
                self.output.display(),
                self.stderr()
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Sends `sig` to the recorder (by its pid).
    pub fn signal(&self, sig: i32) {
        let pid = self.pid();
        // SAFETY: plain kill(2) on the pid of our own unreaped child.
        let rc = unsafe { libc::kill(pid as libc::pid_t, sig) };
        assert_eq!(
            rc,
            0,
            "kill({pid}, {sig}): {}",
            std::io::Error::last_os_error()
        );
    }

    /// Waits for the recorder to exit, at most `timeout` (then kills it and panics).
    pub fn wait(&mut self, timeout: Duration) -> RecorderExit {
        let t0 = Instant::now();
        let child = self.child.as_mut().expect("recorder already reaped");
        loop {
            match child.try_wait() {
                Ok(Some(status)) => {
                    self.child = None;
                    return RecorderExit {
                        status,
                        stderr: self.stderr(),
                        took: t0.elapsed(),
                    };
                }
                Ok(None) if t0.elapsed() < timeout => thread::sleep(Duration::from_millis(10)),
                Ok(None) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    self.child = None;
                    panic!(
                        "l7rec {:?} did not exit within {timeout:?} (killed); it said:\n{}",
                        self.args,
                        self.stderr()
                    );
                }
                Err(e) => panic!("waiting for l7rec: {e}"),
            }
        }
    }

    /// The exit, if the recorder has already exited (does not block).
    pub fn try_wait(&mut self) -> Option<RecorderExit> {
        let child = self.child.as_mut()?;
        match child.try_wait() {
            Ok(Some(status)) => {
                self.child = None;
                Some(RecorderExit {
                    status,
                    stderr: self.stderr(),
                    took: Duration::ZERO,
                })
            }
            _ => None,
        }
    }

    /// Sends `sig` and waits for the exit.
    pub fn stop(&mut self, sig: i32, timeout: Duration) -> RecorderExit {
        self.signal(sig);
        self.wait(timeout)
    }

    /// [`Recorder::stop`], asserting the recorder exited with status 0.
    pub fn stop_ok(&mut self, sig: i32, timeout: Duration) -> RecorderExit {
        let exit = self.stop(sig, timeout);
        assert!(
            exit.status.success(),
            "l7rec exit {}: {}",
            exit.status,
            exit.stderr
        );
        exit
    }

    /// Time since the recorder was started.
    pub fn age(&self) -> Duration {
        self.started.elapsed()
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // Only our own child, by pid (std's kill uses the pid of the unreaped child).
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A tmpfs of `size` mounted on a fresh temp dir; unmounted on drop (declare it before
/// the recorder writing into it, so the recorder is dropped first).
pub struct Tmpfs {
    dir: tempfile::TempDir,
    mounted: bool,
}

impl Tmpfs {
    pub fn mount(size: &str) -> Self {
        let dir = temp_dir();
        let mut t = Self {
            dir,
            mounted: false,
        };
        let out = run_with_timeout(
            Command::new("mount").args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0755"),
                "l7rec-e2e",
                &t.dir.path().display().to_string(),
            ]),
            secs(10),
        );
        assert!(
            out.status.success(),
            "mounting a {size} tmpfs on {} failed: {}",
            t.dir.path().display(),
            String::from_utf8_lossy(&out.stderr)
        );
        t.mounted = true;
        t
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        if self.mounted {
            let ok = Command::new("umount")
                .arg(self.dir.path())
                .status()
                .is_ok_and(|s| s.success());
            if !ok {
                // Something still has a file open there: detach it, it goes when closed.
                let _ = Command::new("umount")
                    .arg("-l")
                    .arg(self.dir.path())
                    .status();
            }
        }
    }
}

/// Runs a host command with a timeout (killing it then), capturing its output.
pub fn run_with_timeout(cmd: &mut Command, timeout: Duration) -> Output {
    let out_file = tempfile::NamedTempFile::new().expect("temp file");
    let err_file = tempfile::NamedTempFile::new().expect("temp file");
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(out_file.reopen().expect("reopen"))
        .stderr(err_file.reopen().expect("reopen"))
        .spawn()
        .unwrap_or_else(|e| panic!("spawning {cmd:?}: {e}"));
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(10)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{cmd:?} did not finish within {timeout:?}");
            }
            Err(e) => panic!("waiting for {cmd:?}: {e}"),
        }
    };
    Output {
        status,
        stdout: std::fs::read(out_file.path()).unwrap_or_default(),
        stderr: std::fs::read(err_file.path()).unwrap_or_default(),
    }
}

/// Output of a tshark field extraction.
#[derive(Debug)]
pub struct Tshark {
    pub status: ExitStatus,
    /// One entry per displayed packet, its fields in order.
    pub rows: Vec<Vec<String>>,
    /// stderr without the "running as root" warning, trimmed.
    pub errors: String,
}

impl Tshark {
    /// Column `i` of every row.
    pub fn column(&self, i: usize) -> Vec<String> {
        self.rows
            .iter()
            .map(|r| r.get(i).cloned().unwrap_or_default())
            .collect()
    }
}

/// Test ports tshark is told to decode as HTTP (`-d tcp.port==N,http`): on ports it does
/// not know (8000, 8081) its heuristic misses request lines longer than one segment,
/// even in a tcpdump capture of the same traffic.
pub const DECODE_AS_HTTP: [u16; 3] = [8000, 8080, 8081];

/// `tshark -r FILE -2 -o tcp.reassemble_out_of_order:TRUE -d tcp.port==N,http...
/// -Y FILTER -T fields -e ...`.
pub fn tshark_fields(file: &Path, filter: &str, fields: &[&str]) -> Tshark {
    let mut cmd = Command::new("tshark");
    cmd.arg("-r")
        .arg(file)
        .args(["-2", "-o", "tcp.reassemble_out_of_order:TRUE"]);
    for p in DECODE_AS_HTTP {
        cmd.args(["-d", &format!("tcp.port=={p},http")]);
    }
    cmd.args(["-Y", filter])
        .args(["-T", "fields", "-E", "separator=/t"]);
    for f in fields {
        cmd.args(["-e", f]);
    }
    let out = run_with_timeout(&mut cmd, secs(60));
    let text = String::from_utf8_lossy(&out.stdout);
    let rows = text
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| l.split('\t').map(str::to_owned).collect())
        .collect();
    Tshark {
        status: out.status,
        rows,
        errors: strip_tshark_warning(&String::from_utf8_lossy(&out.stderr)),
    }
}

/// stderr of tshark without the harmless root warning.
pub fn strip_tshark_warning(stderr: &str) -> String {
    stderr
        .lines()
        .filter(|l| l.trim() != TSHARK_ROOT_WARNING && !l.trim().is_empty())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Output of `l7rec analyze --format json`.
#[derive(Debug)]
pub struct Analysis {
    pub status: ExitStatus,
    pub rows: Vec<serde_json::Value>,
    pub stderr: String,
    pub raw: String,
}

impl Analysis {
    /// Rows whose `uri` is exactly `uri`.
    pub fn by_uri(&self, uri: &str) -> Vec<&serde_json::Value> {
        self.rows
            .iter()
            .filter(|r| r["uri"].as_str() == Some(uri))
            .collect()
    }

    /// A short listing for assertion messages (long URIs abbreviated).
    pub fn listing(&self) -> String {
        self.rows
            .iter()
            .map(|r| {
                let mut r = r.clone();
                if let Some(u) = r["uri"].as_str() {
                    if u.len() > 80 {
                        r["uri"] = format!("{}...({} bytes)", &u[..60], u.len()).into();
                    }
                }
                r.to_string()
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// `l7rec analyze --format json FILE`; every stdout line must be a JSON object.
pub fn analyze_json(file: &Path) -> Analysis {
    let out = run_with_timeout(
        Command::new(L7REC)
            .args(["analyze", "--format", "json"])
            .arg(file),
        secs(60),
    );
    let raw = String::from_utf8_lossy(&out.stdout).into_owned();
    let rows = raw
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("analyze printed a line that is not JSON ({e}): {l:?}"))
        })
        .collect();
    Analysis {
        status: out.status,
        rows,
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        raw,
    }
}

/// `l7rec analyze --summary FILE`: (status, stdout, stderr).
pub fn analyze_summary(file: &Path) -> (ExitStatus, String, String) {
    let out = run_with_timeout(
        Command::new(L7REC).args(["analyze", "--summary"]).arg(file),
        secs(60),
    );
    (
        out.status,
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// What the l7rec capture reader (the code behind the `dump` example) finds in a file.
#[derive(Debug, Default)]
pub struct FileContents {
    pub packets: usize,
    /// Every `Stats` record, in file order.
    pub stats: Vec<l7rec_capture::RecorderStats>,
    /// Kind of the last event: "packet", "records:<last record kind>", "isb", "bad-records".
    pub last_event: String,
    /// The reader's error, if reading stopped early.
    pub error: Option<String>,
    /// The last interface statistics block (ISB) of each interface id.
    pub last_isb: BTreeMap<u32, l7rec_capture::InterfaceStats>,
    /// The connection records, in file order.
    pub connections: Vec<l7rec_capture::ConnectionInfo>,
    /// Number of syscall records.
    pub syscalls: usize,
}

/// Reads every event of a capture with `l7rec_capture::CaptureReader`.
pub fn read_capture(path: &Path) -> FileContents {
    use l7rec_capture::{CaptureReader, Event, Record};
    let mut c = FileContents::default();
    let mut r = match CaptureReader::open(path) {
        Ok(r) => r,
        Err(e) => {
            c.error = Some(e.to_string());
            return c;
        }
    };
    while let Some(ev) = r.next_event() {
        match ev {
            Ok(Event::Packet(_)) => {
                c.packets += 1;
                c.last_event = "packet".into();
            }
            Ok(Event::Records(recs)) => {
                for rec in &recs {
                    match rec {
                        Record::Stats(s) => c.stats.push(s.clone()),
                        Record::Connection(conn) => c.connections.push(conn.clone()),
                        Record::Syscall(_) => c.syscalls += 1,
                        _ => {}
                    }
                }
                let kind = match recs.last() {
                    Some(Record::Stats(_)) => "Stats",
                    Some(Record::Process(_)) => "Process",
                    Some(Record::Connection(_)) => "Connection",
                    Some(Record::Syscall(_)) => "Syscall",
                    Some(_) => "other",
                    None => "empty",
                };
                c.last_event = format!("records:{kind}");
            }
            Ok(Event::BadRecords { offset, error }) => {
                c.last_event = format!("bad-records at {offset}: {error}");
            }
            Ok(Event::InterfaceStats(isb)) => {
                c.last_isb.insert(isb.interface_id, isb.clone());
                c.last_event = "isb".into();
            }
            Err(e) => {
                c.error = Some(e.to_string());
                break;
            }
        }
    }
    c
}

/// A deterministic URL-safe string of `len` bytes (unreserved characters and a few
/// `&`, `=`, `%2F` sequences), different for each `seed`.
pub fn long_query(len: usize, seed: u64) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~";
    let mut x = seed
        .wrapping_mul(6_364_136_223_846_793_005)
        .wrapping_add(1_442_695_040_888_963_407)
        | 1;
    let mut s = String::with_capacity(len);
    let mut i = 0u64;
    while s.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        i += 1;
        let token = if i.is_multiple_of(97) {
            format!("&k{i}=")
        } else if i.is_multiple_of(251) {
            "%2F".to_owned()
        } else {
            (ALPHABET[(x % ALPHABET.len() as u64) as usize] as char).to_string()
        };
        if s.len() + token.len() > len {
            // Pad instead of cutting a token (never a broken percent escape).
            s.extend(std::iter::repeat_n('x', len - s.len()));
        } else {
            s.push_str(&token);
        }
    }
    s
}

/// Writes `contents` to a file with `mode`.
pub fn write_file_mode(path: &Path, contents: &[u8], mode: u32) {
    let mut f = File::create(path).unwrap_or_else(|e| panic!("creating {}: {e}", path.display()));
    f.write_all(contents).expect("writing");
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

/// Polls until `path` exists, at most `timeout`; panics with `what` and `ns`'s log.
pub fn wait_for_file(ns: &Netns, path: &Path, timeout: Duration, what: &str) {
    let deadline = Instant::now() + timeout;
    while !path.exists() {
        assert!(
            Instant::now() < deadline,
            "{what}: {} did not appear within {timeout:?}; background processes said:\n{}",
            path.display(),
            ns.log()
        );
        thread::sleep(Duration::from_millis(10));
    }
}

/// Mode bits of a file.
pub fn file_mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("stat {}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o7777
}
