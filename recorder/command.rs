//! The command of `l7rec record -- CMD ARGS`: started once everything is attached, and
//! never left behind. The recording follows the command's life: when the command exits
//! first, recording stops and l7rec passes its exit status on; when recording stops
//! first (a signal to l7rec, `--duration`, `--count`, an error), l7rec stops the
//! command — the signal, a bounded wait, then SIGKILL — before it exits itself, so the
//! command never outlives the recording as an orphan that nobody records.

use std::fmt;
use std::io;
use std::os::fd::AsFd;
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, Command, ExitStatus};
use std::thread;
use std::time::{Duration, Instant};

/// How long a command may take to exit after l7rec passed it a stop signal, before
/// l7rec SIGKILLs it: long enough for a graceful shutdown (flushing, closing its
/// connections, which are then recorded too), short enough that stopping stays prompt.
pub const KILL_AFTER: Duration = Duration::from_secs(5);

/// Exit status of `l7rec record` when l7rec itself failed (capture file, BPF, packet
/// sockets...). The command's own status is passed on, so l7rec's failures need a code
/// that commands rarely use: 125, as `timeout`, `env`, `nice` and `chroot` use.
pub const EXIT_RECORD_FAILED: u8 = 125;
/// Exit status when the command was found but could not be run (as `timeout`, `env`).
pub const EXIT_CANNOT_RUN: u8 = 126;
/// Exit status when the command was not found (as `timeout`, `env`, the shell).
pub const EXIT_NOT_FOUND: u8 = 127;

/// The command could not be started: l7rec exits with [`CommandNotRun::exit_code`].
#[derive(Debug)]
pub struct CommandNotRun {
    prog: String,
    source: io::Error,
}

impl fmt::Display for CommandNotRun {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot run {:?}: {}", self.prog, self.source)
    }
}

impl std::error::Error for CommandNotRun {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

impl CommandNotRun {
    /// 127 if the program was not found, 126 otherwise (like `timeout` and `env`).
    pub fn exit_code(&self) -> u8 {
        if self.source.kind() == io::ErrorKind::NotFound {
            EXIT_NOT_FOUND
        } else {
            EXIT_CANNOT_RUN
        }
    }
}

/// The exit status a shell would report for `status`: the exit code, or 128 + N when
/// signal N killed the process (what `$?` shows, and what `time`/`strace` pass on).
pub fn shell_status(status: ExitStatus) -> u8 {
    match (status.code(), status.signal()) {
        // Exit codes are 0..=255 on Linux; the mask only documents it.
        (Some(code), _) => (code & 0xff) as u8,
        (None, Some(sig)) => (128 + sig).clamp(0, 255) as u8,
        // Neither: not possible for a reaped process; report a generic failure.
        (None, None) => 1,
    }
}

/// A running (or exited, not yet dropped) command.
#[derive(Debug)]
pub struct TracedCommand {
    child: Child,
    /// The exit status, once reaped.
    status: Option<ExitStatus>,
    /// When l7rec asked it to stop: the SIGKILL deadline.
    kill_at: Option<Instant>,
    /// Whether l7rec had to SIGKILL it.
    killed: bool,
}

impl TracedCommand {
    /// Starts `prog` with `args`, inheriting l7rec's stdio, environment and process
    /// group (so the terminal's Ctrl-C and job control reach it as they would without
    /// l7rec). With `stdout_to_stderr` (the capture goes to standard output, `-o -`),
    /// its standard output goes to l7rec's standard error instead, where it cannot mix
    /// into the capture.
    pub fn spawn(
        prog: &str,
        args: &[String],
        stdout_to_stderr: bool,
    ) -> Result<Self, CommandNotRun> {
        let not_run = |source| CommandNotRun {
            prog: prog.to_owned(),
            source,
        };
        let mut cmd = Command::new(prog);
        cmd.args(args);
        if stdout_to_stderr {
            let stderr = std::io::stderr()
                .as_fd()
                .try_clone_to_owned()
                .map_err(not_run)?;
            cmd.stdout(stderr);
        }
        let child = cmd.spawn().map_err(not_run)?;
        Ok(Self {
            child,
            status: None,
            kill_at: None,
            killed: false,
        })
    }

    /// The command's pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the command is (still) in l7rec's process group, so that signals the
    /// terminal sends to the foreground group (Ctrl-C) reach it without l7rec. False
    /// when unknown: then l7rec passes the signal on rather than risk not stopping it.
    pub fn shares_process_group(&self) -> bool {
        let Ok(pid) = libc::pid_t::try_from(self.child.id()) else {
            return false;
        };
        // SAFETY: getpgid(2) has no memory preconditions; the pid is our unreaped
        // child's (or, once reaped, the call fails harmlessly with ESRCH).
        let (theirs, ours) = unsafe { (libc::getpgid(pid), libc::getpgid(0)) };
        theirs >= 0 && theirs == ours
    }

    /// Whether l7rec had to SIGKILL it because it outlived [`KILL_AFTER`].
    pub fn was_killed(&self) -> bool {
        self.killed
    }

    /// The exit status if the command has exited (reaps it; never blocks).
    pub fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        if self.status.is_none() {
            self.status = self.child.try_wait()?;
        }
        Ok(self.status)
    }

    /// Sends `sig` to the command unless it has exited.
    fn signal(&mut self, sig: libc::c_int) -> io::Result<()> {
        if self.try_wait()?.is_some() {
            return Ok(());
        }
        let pid = libc::pid_t::try_from(self.child.id()).map_err(io::Error::other)?;
        // SAFETY: kill(2) has no memory preconditions. The pid is that of our own child,
        // which is not reaped (try_wait above said so; only this struct reaps it), so it
        // cannot have been reused by another process.
        if unsafe { libc::kill(pid, sig) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Starts stopping the command: sends it `sig` (`None`: it already got the signal,
    /// e.g. from the terminal) and arms the SIGKILL deadline, [`KILL_AFTER`] from now.
    /// The caller keeps recording and calls [`TracedCommand::poll_stop`] until it is
    /// gone, so the command's shutdown traffic is recorded too.
    pub fn begin_stop(&mut self, sig: Option<libc::c_int>) -> io::Result<()> {
        if self.kill_at.is_none() {
            self.kill_at = Some(Instant::now() + KILL_AFTER);
        }
        match sig {
            Some(sig) => self.signal(sig),
            None => Ok(()),
        }
    }

    /// While stopping: the exit status once the command is gone. SIGKILLs it when the
    /// deadline of [`TracedCommand::begin_stop`] has passed.
    pub fn poll_stop(&mut self) -> io::Result<Option<ExitStatus>> {
        if let Some(status) = self.try_wait()? {
            return Ok(Some(status));
        }
        if self.kill_at.is_some_and(|t| Instant::now() >= t) {
            self.kill_now()?;
        }
        self.try_wait()
    }

    /// SIGKILLs the command now (unless it has exited).
    pub fn kill_now(&mut self) -> io::Result<()> {
        if self.try_wait()?.is_some() {
            return Ok(());
        }
        self.killed = true;
        self.kill_at = Some(Instant::now());
        self.signal(libc::SIGKILL)
    }

    /// Stops the command and waits for it, blocking at most [`KILL_AFTER`] plus the
    /// moment SIGKILL takes: for when recording is over (`--count`, an error).
    pub fn stop_blocking(&mut self, sig: libc::c_int) -> io::Result<ExitStatus> {
        self.begin_stop(Some(sig))?;
        // Bounded: after the deadline it is SIGKILLed, which cannot be ignored; the
        // extra second only guards against a process stuck in the kernel (D state).
        let give_up = Instant::now() + KILL_AFTER + Duration::from_secs(1);
        loop {
            if let Some(status) = self.poll_stop()? {
                return Ok(status);
            }
            if Instant::now() >= give_up {
                return Err(io::Error::other(format!(
                    "the command (pid {}) did not exit even after SIGKILL",
                    self.pid()
                )));
            }
            thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for TracedCommand {
    /// The safety net for early returns on errors: the command must not outlive l7rec.
    fn drop(&mut self) {
        if self.status.is_none() {
            // std's kill is a no-op for a reaped child; wait reaps it (SIGKILL is prompt).
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    fn status_of(script: &str) -> ExitStatus {
        Command::new("sh")
            .args(["-c", script])
            .status()
            .expect("running sh")
    }

    #[test]
    fn shell_status_is_code_or_128_plus_signal() {
        assert_eq!(shell_status(status_of("exit 0")), 0);
        assert_eq!(shell_status(status_of("exit 7")), 7);
        assert_eq!(shell_status(status_of("exit 255")), 255);
        assert_eq!(shell_status(status_of("kill -TERM $$")), 128 + 15);
        assert_eq!(shell_status(status_of("kill -KILL $$")), 128 + 9);
    }

    #[test]
    fn cannot_run_codes_follow_timeout_and_env() {
        let missing = TracedCommand::spawn("/nonexistent/l7rec-test-prog", &[], false);
        assert_eq!(missing.map(drop).map_err(|e| e.exit_code()), Err(127));
        // A directory exists but cannot be executed.
        let not_exec = TracedCommand::spawn("/", &[], false);
        assert_eq!(not_exec.map(drop).map_err(|e| e.exit_code()), Err(126));
    }

    #[test]
    fn stop_forwards_the_signal_before_killing() {
        let mut cmd = TracedCommand::spawn("sleep", &["30".into()], false).expect("spawning sleep");
        let t0 = Instant::now();
        let status = cmd.stop_blocking(libc::SIGTERM).expect("stopping sleep");
        assert_eq!(status.signal(), Some(libc::SIGTERM), "{status}");
        assert!(!cmd.was_killed());
        assert!(t0.elapsed() < KILL_AFTER, "{:?}", t0.elapsed());
    }

    #[test]
    fn stop_kills_a_command_that_ignores_the_signal() {
        // `exec` keeps the pid: the shell that ignores SIGTERM is the child itself.
        let mut cmd = TracedCommand::spawn(
            "sh",
            &["-c".into(), "trap '' TERM; exec sleep 30".into()],
            false,
        )
        .expect("spawning sh");
        // Let the shell set up its trap before the signal arrives.
        thread::sleep(Duration::from_millis(200));
        let t0 = Instant::now();
        let status = cmd.stop_blocking(libc::SIGTERM).expect("stopping sh");
        assert_eq!(status.signal(), Some(libc::SIGKILL), "{status}");
        assert!(cmd.was_killed());
        let took = t0.elapsed();
        assert!(took >= KILL_AFTER && took < KILL_AFTER + Duration::from_secs(1));
    }

    #[test]
    fn an_exited_command_is_not_signalled() {
        let mut cmd = TracedCommand::spawn("true", &[], false).expect("spawning true");
        let deadline = Instant::now() + Duration::from_secs(10);
        while cmd.try_wait().expect("waiting").is_none() {
            assert!(Instant::now() < deadline, "`true` did not exit");
            thread::sleep(Duration::from_millis(5));
        }
        let status = cmd.stop_blocking(libc::SIGTERM).expect("stopping");
        assert!(status.success());
        assert!(!cmd.was_killed());
    }
}
