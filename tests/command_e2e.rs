//! End to end: `l7rec record -- CMD` and the command's life. The real recorder runs in
//! a network namespace each test creates; the command is a shell that writes its pid
//! to a file and then `exec`s a `sleep` with a test-unique duration (the pid stays the
//! same, and the marker in its command line tells it apart from any other process).
//!
//! Checked: a SIGTERM or SIGINT to l7rec alone stops the command (passed on, not left
//! running as an orphan) and still finishes the capture file; a command that ignores
//! the signal is SIGKILLed after the grace period; --duration stops it too; the
//! command's exit status is l7rec's, while l7rec's own failures exit 125/126/127.
//!
//! Needs root, iproute2, nginx, python3, curl, tshark: a missing tool fails the test
//! with the reason, never skips it. Every wait is bounded; every process is killed by
//! its own pid, also when a test fails (the namespace and [`CommandProcess`] guards).

#[path = "common/e2e.rs"]
mod e2e;
#[path = "common/netns.rs"]
mod netns;

use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use e2e::*;
use netns::{require_tools, Netns};

const NGINX_PORT: u16 = 8080;
/// l7rec's grace period between passing a stop signal on and SIGKILL
/// (`recorder/command.rs`, KILL_AFTER).
const KILL_AFTER: Duration = Duration::from_secs(5);
/// Lets the last packets (FIN/ACK) of finished exchanges reach the file before a stop.
const SETTLE: Duration = Duration::from_millis(300);

/// The recorded command's process: killed (SIGKILL, by pid) on drop if it is still
/// running — which is the bug these tests look for, so a failing test must not leave
/// it behind. Its command line must hold `marker`, so a recycled pid is never touched.
struct CommandProcess {
    pid: u32,
    marker: String,
}

impl CommandProcess {
    /// Waits (bounded) for the pid the command wrote to `pid_file`.
    fn from_pid_file(ns: &Netns, pid_file: &Path, marker: &str) -> Self {
        wait_for_file(ns, pid_file, secs(15), "the command's pid file");
        // The shell writes the file with one write(2), but it may be seen empty first.
        let read_pid = || {
            let text = std::fs::read_to_string(pid_file).unwrap_or_default();
            text.trim().parse::<u32>().map_err(|_| text)
        };
        poll_until(secs(5), || read_pid().is_ok());
        let pid =
            read_pid().unwrap_or_else(|text| panic!("no pid in {}: {text:?}", pid_file.display()));
        let cmd = Self {
            pid,
            marker: marker.to_owned(),
        };
        // The pid file is written just before the exec, and a command line read while
        // execve runs comes back empty: `running` would then say "gone" (a CI run
        // failed on that once). So wait until the shell has become the `sleep`, or
        // has ended.
        let execed = poll_until(secs(5), || {
            cmd.cmdline().starts_with("sleep\0") || !cmd.alive()
        });
        assert!(
            execed,
            "pid {} did not exec sleep within 5 s: {:?}",
            cmd.pid,
            cmd.cmdline()
        );
        cmd
    }

    fn cmdline(&self) -> String {
        let cmdline = std::fs::read(format!("/proc/{}/cmdline", self.pid)).unwrap_or_default();
        String::from_utf8_lossy(&cmdline).into_owned()
    }

    /// Whether the pid exists and is not a zombie (a zombie has ended).
    fn alive(&self) -> bool {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid)).unwrap_or_default();
        // The state follows the ")" that ends the command name.
        stat.rsplit_once(')')
            .is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z'))
    }

    /// Whether the process still runs.
    fn running(&self) -> bool {
        self.cmdline().contains(&self.marker) && self.alive()
    }

    /// Polls until the process is gone, at most `timeout`; whether it is.
    fn wait_gone(&self, timeout: Duration) -> bool {
        poll_until(timeout, || !self.running())
    }
}

/// Polls `cond` every 10 ms until it holds, at most `timeout`; whether it held.
fn poll_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(10));
    }
}

impl Drop for CommandProcess {
    fn drop(&mut self) {
        if self.running() {
            if let Ok(pid) = libc::pid_t::try_from(self.pid) {
                // SAFETY: kill(2) on the pid of the command this test started, checked
                // by its command line just above.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
    }
}

/// A `sleep` duration no other process uses: the marker of the test's command.
fn unique_sleep(test: u32) -> String {
    format!("61.{}{test}", std::process::id() % 1000)
}

/// A signal to l7rec alone (not to the command; no terminal involved) must stop the
/// command: passed on, so it ends at once, not after the SIGKILL grace. The capture
/// file is finished cleanly and holds the command's traffic.
fn signal_to_recorder_stops_the_command(sig: i32, test: u32) {
    require_tools(&["ip", "nginx", "curl", "tshark"]);
    let ns = Netns::new();
    let www = Docroot::new();
    let nginx = Nginx::start(&ns, &www, &[NGINX_PORT]);
    let dir = temp_dir();
    let out = dir.path().join("cap.pcapng");
    let pid_file = dir.path().join("cmd.pid");
    let marker = unique_sleep(test);
    let url = format!("http://127.0.0.1:{NGINX_PORT}/index.html?sig={sig}");
    // The pid file appears after curl is done: the traffic is then over.
    let script = format!(
        "curl -s -o /dev/null \"$1\"; echo $$ > {}; exec sleep {marker}",
        pid_file.display()
    );
    let mut rec = Recorder::start(&ns, &out, &["--", "sh", "-c", &script, "sh", &url]);
    let cmd = CommandProcess::from_pid_file(&ns, &pid_file, &marker);
    assert!(cmd.running(), "the command must run until l7rec is stopped");
    thread::sleep(SETTLE);

    let exit = rec.stop(sig, KILL_AFTER + secs(10));
    let gone = cmd.wait_gone(secs(2));
    assert!(
        gone,
        "after signal {sig} to l7rec (exit {}), its command (pid {}) still runs; l7rec said:\n{}",
        exit.status, cmd.pid, exit.stderr
    );
    assert!(
        exit.status.success(),
        "l7rec stopped by signal {sig} must exit 0, got {}; it said:\n{}",
        exit.status,
        exit.stderr
    );
    assert!(
        exit.took < KILL_AFTER,
        "the command must get the signal, not wait out the SIGKILL grace: took {:?}; l7rec \
         said:\n{}",
        exit.took,
        exit.stderr
    );
    assert!(
        !exit.stderr.contains("SIGKILL:") && !exit.stderr.contains("killed it"),
        "sleep dies of the passed-on signal, no SIGKILL needed:\n{}",
        exit.stderr
    );

    let contents = read_capture(&out);
    assert!(
        contents.error.is_none(),
        "reading the capture: {contents:?}"
    );
    assert_eq!(
        contents.last_event, "records:Stats",
        "a cleanly finished capture ends with a Stats record: {contents:?}"
    );
    let a = analyze_json(&out);
    assert!(a.status.success(), "analyze failed: {}", a.stderr);
    let rows = a.by_uri(&format!("/index.html?sig={sig}"));
    assert_eq!(rows.len(), 1, "{}", a.listing());
    assert_eq!(rows[0]["status"].as_u64(), Some(200), "{}", rows[0]);
    assert_eq!(
        rows[0]["server_pid"].as_u64(),
        Some(u64::from(nginx.pid)),
        "{}",
        rows[0]
    );
}

/// `kill -TERM <l7rec>`: the command is stopped, the file finished (QA's report).
#[test]
fn sigterm_to_recorder_stops_the_command() {
    signal_to_recorder_stops_the_command(libc::SIGTERM, 1);
}

/// `kill -INT <l7rec>` (not from a terminal, so the command did not get it): the same.
#[test]
fn sigint_to_recorder_stops_the_command() {
    signal_to_recorder_stops_the_command(libc::SIGINT, 2);
}

/// A command that ignores the signal is SIGKILLed after the grace period; l7rec still
/// exits 0 (it stopped the command on purpose) with a finished file.
#[test]
fn command_ignoring_the_signal_is_killed_after_the_grace_period() {
    require_tools(&["ip"]);
    let ns = Netns::new();
    let dir = temp_dir();
    let out = dir.path().join("cap.pcapng");
    let pid_file = dir.path().join("cmd.pid");
    let marker = unique_sleep(3);
    // An ignored signal stays ignored across exec: sleep ignores SIGTERM too.
    let script = format!(
        "trap '' TERM; echo $$ > {}; exec sleep {marker}",
        pid_file.display()
    );
    let mut rec = Recorder::start(&ns, &out, &["--", "sh", "-c", &script]);
    let cmd = CommandProcess::from_pid_file(&ns, &pid_file, &marker);
    let exit = rec.stop(libc::SIGTERM, KILL_AFTER + secs(10));
    let gone = cmd.wait_gone(secs(2));
    assert!(
        gone,
        "the command (pid {}) outlived l7rec (exit {}); it said:\n{}",
        cmd.pid, exit.status, exit.stderr
    );
    assert!(
        exit.status.success(),
        "exit {}: {}",
        exit.status,
        exit.stderr
    );
    assert!(
        exit.took >= KILL_AFTER - Duration::from_millis(500) && exit.took < KILL_AFTER + secs(5),
        "SIGKILL comes after the grace period: took {:?}; l7rec said:\n{}",
        exit.took,
        exit.stderr
    );
    assert!(
        exit.stderr.contains("SIGKILL"),
        "l7rec says it killed the command:\n{}",
        exit.stderr
    );
    let contents = read_capture(&out);
    assert!(contents.error.is_none(), "{contents:?}");
    assert_eq!(contents.last_event, "records:Stats", "{contents:?}");
}

/// `--duration` stops the command (with SIGTERM, as `timeout` does) and exits 0.
#[test]
fn duration_stops_the_command() {
    require_tools(&["ip"]);
    let ns = Netns::new();
    let dir = temp_dir();
    let out = dir.path().join("cap.pcapng");
    let pid_file = dir.path().join("cmd.pid");
    let marker = unique_sleep(4);
    let script = format!("echo $$ > {}; exec sleep {marker}", pid_file.display());
    let mut rec = Recorder::start(&ns, &out, &["--duration", "1s", "--", "sh", "-c", &script]);
    let cmd = CommandProcess::from_pid_file(&ns, &pid_file, &marker);
    let exit = rec.wait(KILL_AFTER + secs(15));
    let gone = cmd.wait_gone(secs(2));
    assert!(
        gone,
        "--duration ended, the command (pid {}) still runs; l7rec (exit {}) said:\n{}",
        cmd.pid, exit.status, exit.stderr
    );
    assert!(
        exit.status.success(),
        "exit {}: {}",
        exit.status,
        exit.stderr
    );
    assert!(
        exit.took < secs(1) + KILL_AFTER,
        "sleep dies of SIGTERM at once: took {:?}",
        exit.took
    );
    let contents = read_capture(&out);
    assert!(contents.error.is_none(), "{contents:?}");
    assert_eq!(contents.last_event, "records:Stats", "{contents:?}");
}

/// l7rec exits with the command's status when the command ended the recording; its
/// own failures are 125 (recording), 126/127 (the command cannot be run).
#[test]
fn command_exit_status_is_passed_on() {
    require_tools(&["ip"]);
    let ns = Netns::new();
    let dir = temp_dir();
    let out = dir.path().join("cap.pcapng").display().to_string();
    let record = |extra: &[&str]| {
        let mut argv = vec![L7REC, "record", "-o", &out];
        argv.extend_from_slice(extra);
        let o = ns.run_status(&argv, secs(30));
        let stderr = String::from_utf8_lossy(&o.stderr).into_owned();
        (o.status.code(), stderr)
    };
    for (cmd, want) in [
        ("exit 0", 0),
        ("exit 7", 7),
        ("exit 255", 255),
        // Killed by a signal: 128 + its number, as the shell reports it.
        ("kill -KILL $$", 128 + 9),
        ("kill -TERM $$", 128 + 15),
    ] {
        let (code, stderr) = record(&["--", "sh", "-c", cmd]);
        assert_eq!(code, Some(want), "-- sh -c {cmd:?}; l7rec said:\n{stderr}");
        let contents = read_capture(Path::new(&out));
        assert!(contents.error.is_none(), "{cmd}: {contents:?}");
        assert_eq!(contents.last_event, "records:Stats", "{cmd}: {contents:?}");
    }
    let (code, stderr) = record(&["--", "/nonexistent/l7rec-no-such-program"]);
    assert_eq!(code, Some(127), "command not found; l7rec said:\n{stderr}");
    assert!(stderr.contains("l7rec: error:"), "{stderr}");
    let (code, stderr) = record(&["--", "/"]);
    assert_eq!(
        code,
        Some(126),
        "command not executable; l7rec said:\n{stderr}"
    );
    // A recording failure is told apart from any command's usual codes.
    let (code, stderr) = record(&["-i", "nosuchif", "--", "true"]);
    assert_eq!(code, Some(125), "recording failed; l7rec said:\n{stderr}");
    assert!(stderr.contains("nosuchif"), "{stderr}");
}
