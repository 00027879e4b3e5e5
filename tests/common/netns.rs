//! Test helper: a throw-away network namespace (`ip netns add l7t-<pid>-<n>`) with `lo`
//! up, commands run inside it, and cleanup on drop (also on panic): the processes it
//! started are killed by pid and the namespace is deleted.
//!
//! Needs root and iproute2. Tools a test needs are checked with [`require_tools`],
//! which fails the test with the reason (never skips).

#![allow(dead_code)]

use std::io::Read;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

static NEXT_ID: AtomicU32 = AtomicU32::new(0);

/// Panics with an actionable message if a tool is not on PATH or we are not root.
pub fn require_tools(tools: &[&str]) {
    // SAFETY: geteuid cannot fail.
    assert_eq!(
        unsafe { libc::geteuid() },
        0,
        "these tests need root (network namespaces, BPF, AF_PACKET)"
    );
    let path = std::env::var_os("PATH").unwrap_or_default();
    for tool in tools {
        let found = std::env::split_paths(&path).any(|dir| dir.join(tool).is_file());
        assert!(
            found,
            "required tool `{tool}` is not on PATH; install it (CI: apt-get install \
             iproute2 curl python3 ethtool) — refusing to skip this test silently"
        );
    }
}

/// A network namespace owned by the test.
pub struct Netns {
    name: String,
    children: Mutex<Vec<Child>>,
    /// Output of the background processes, shown when a test step fails.
    log: tempfile::NamedTempFile,
}

impl Netns {
    /// Creates the namespace and brings `lo` up in it.
    pub fn new() -> Self {
        let name = format!(
            "l7t-{}-{}",
            std::process::id(),
            NEXT_ID.fetch_add(1, Ordering::Relaxed)
        );
        run_host(&["ip", "netns", "add", &name]);
        // From here on Drop deletes it, even if a later step panics.
        let ns = Self {
            name,
            children: Mutex::new(Vec::new()),
            log: tempfile::NamedTempFile::new().expect("creating a log file"),
        };
        ns.ip(&["link", "set", "lo", "up"]);
        ns
    }

    /// The namespace name (as in `ip netns list`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The bind-mounted namespace file, for `setns`.
    pub fn path(&self) -> PathBuf {
        Path::new("/run/netns").join(&self.name)
    }

    /// `ip -n NS ARGS...`, which must succeed.
    pub fn ip(&self, args: &[&str]) {
        let mut full = vec!["ip", "-n", &self.name];
        full.extend_from_slice(args);
        run_host(&full);
    }

    /// Runs `ARGS...` inside the namespace, waiting at most `timeout`; panics if it
    /// fails or times out. Returns its stdout.
    pub fn run(&self, args: &[&str], timeout: Duration) -> Vec<u8> {
        let out = self.run_status(args, timeout);
        assert!(
            out.status.success(),
            "`{}` in {} failed ({}): {}",
            args.join(" "),
            self.name,
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        out.stdout
    }

    /// Like [`Netns::run`] but returns the outcome instead of checking it.
    pub fn run_status(&self, args: &[&str], timeout: Duration) -> Output {
        let child = self
            .command(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawning `{}`: {e}", args.join(" ")));
        wait_output(child, timeout, args)
    }

    /// Starts `ARGS...` in the namespace in the background; it is killed (by pid) when
    /// the namespace is dropped. Its stdout/stderr go to [`Netns::log`].
    pub fn spawn(&self, args: &[&str]) -> u32 {
        let log = || {
            std::fs::OpenOptions::new()
                .append(true)
                .open(self.log.path())
                .expect("opening the log file")
        };
        let child = self
            .command(args)
            .stdin(Stdio::null())
            .stdout(log())
            .stderr(log())
            .spawn()
            .unwrap_or_else(|e| panic!("spawning `{}`: {e}", args.join(" ")));
        let pid = child.id();
        self.children
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(child);
        pid
    }

    /// What the background processes printed so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log.path()).unwrap_or_default()
    }

    /// Moves the calling thread into the namespace (sockets it creates then belong to
    /// the namespace). Use a dedicated thread: it cannot go back.
    pub fn enter_current_thread(&self) {
        enter_netns(&self.path());
    }

    /// Polls until a TCP connect to `host`:`port` (e.g. `::1`, 8080) succeeds inside the
    /// namespace, at most `timeout`.
    pub fn wait_tcp(&self, host: &str, port: u16, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        let script =
            format!("import socket; socket.create_connection(('{host}', {port}), 1).close()");
        loop {
            let out = self.run_status(&["python3", "-c", &script], Duration::from_secs(5));
            if out.status.success() {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "nothing listens on [{host}]:{port} in {} after {timeout:?}: {}\n\
                 background processes said:\n{}",
                self.name,
                String::from_utf8_lossy(&out.stderr),
                self.log()
            );
            thread::sleep(Duration::from_millis(100));
        }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.name]).args(args);
        cmd
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let children = std::mem::take(self.children.get_mut().unwrap_or_else(|p| p.into_inner()));
        for mut child in children {
            // Only processes this helper started, by their pid.
            let _ = child.kill();
            let _ = child.wait();
        }
        let status = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
        if !matches!(status, Ok(s) if s.success()) {
            eprintln!("warning: could not delete network namespace {}", self.name);
        }
    }
}

/// Moves the calling thread into the network namespace bound at `path`
/// (`/run/netns/NAME`). Use a dedicated thread: it cannot go back.
pub fn enter_netns(path: &Path) {
    let f = std::fs::File::open(path).unwrap_or_else(|e| panic!("opening {}: {e}", path.display()));
    // SAFETY: valid namespace fd; affects only the calling thread.
    let rc = unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) };
    assert_eq!(
        rc,
        0,
        "setns into {}: {}",
        path.display(),
        std::io::Error::last_os_error()
    );
}

/// Runs a host command that must succeed (within 30 s).
fn run_host(args: &[&str]) {
    let child = Command::new(args[0])
        .args(&args[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawning `{}`: {e}", args.join(" ")));
    let out = wait_output(child, Duration::from_secs(30), args);
    assert!(
        out.status.success(),
        "`{}` failed ({}): {}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Waits for a child with piped stdout/stderr, killing it after `timeout`.
fn wait_output(mut child: Child, timeout: Duration, args: &[&str]) -> Output {
    // Readers on their own threads so a chatty child cannot block on a full pipe.
    let mut stdout = child.stdout.take();
    let mut stderr = child.stderr.take();
    let out_t = thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(s) = stdout.as_mut() {
            let _ = s.read_to_end(&mut buf);
        }
        buf
    });
    let err_t = thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(s) = stderr.as_mut() {
            let _ = s.read_to_end(&mut buf);
        }
        buf
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(10)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("`{}` did not finish within {timeout:?}", args.join(" "));
            }
            Err(e) => panic!("waiting for `{}`: {e}", args.join(" ")),
        }
    };
    Output {
        status,
        stdout: out_t.join().unwrap_or_default(),
        stderr: err_t.join().unwrap_or_default(),
    }
}
