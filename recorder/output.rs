//! Where `l7rec record` writes its capture: a file, or standard output for `-o -`.
//!
//! Nothing that was there is destroyed until recording starts. [`Output::open`]
//! opens the file early (so a path that cannot be written is reported before the slow
//! BPF set-up) without truncating it, and locks it; everything the capture writer
//! produces meanwhile (the header, interface blocks) is kept in memory. Only
//! [`Output::commit`], once every start-up step has succeeded, truncates the file and
//! writes that out. If start-up fails instead, an existing file is left as it was, and
//! one that `open` created is removed when the `Output` is dropped.

use std::fs::{File, OpenOptions};
use std::io::{self, IsTerminal, Write};
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

/// The capture's destination; see the module documentation.
pub struct Output {
    dest: Dest,
    /// What was written before [`Output::commit`]; `None` once committed.
    pending: Option<Vec<u8>>,
}

enum Dest {
    /// `-o -`: a duplicate of descriptor 1 (so writes are not line-buffered by
    /// `io::Stdout`). Never truncated, chmod-ed or locked: it is not ours.
    Stdout(File),
    /// A named file.
    File {
        file: File,
        path: PathBuf,
        /// Whether [`Output::open`] created it: then a failed start-up removes it.
        created: bool,
        /// A regular file (not `/dev/null`, a FIFO...): locked, truncated, chmod-ed.
        regular: bool,
    },
}

/// How many times [`Output::open`] tries when the file appears or disappears between
/// its create and open attempts (another process racing on the same name).
const OPEN_ATTEMPTS: usize = 3;

impl Output {
    /// Opens `path` for writing without truncating it (`-` is standard output), and
    /// takes an exclusive lock on a regular file, refusing the file if another process
    /// holds one: two recorders writing one file would interleave into garbage.
    pub fn open(path: &Path) -> Result<Output> {
        if path == Path::new("-") {
            return Self::stdout();
        }
        let (file, created) = open_or_create(path)
            .with_context(|| format!("cannot create capture file {}", path.display()))?;
        let meta = file.metadata();
        let regular = meta.as_ref().is_ok_and(|m| m.is_file());
        if regular {
            // Before anything else, so a refused file is never removed or changed.
            lock(&file).with_context(|| {
                format!(
                    "{} is being written by another process (another l7rec record?); \
                     refusing to write it too",
                    path.display()
                )
            })?;
            // (Had we just created it, losing the lock means someone opened and locked
            // it since: it is theirs now, and is left in place.)
        }
        // From here on, dropping `out` removes a file we created.
        let out = Output {
            dest: Dest::File {
                file,
                path: path.to_owned(),
                created,
                regular,
            },
            pending: Some(Vec::new()),
        };
        meta.with_context(|| format!("cannot stat {}", path.display()))?;
        Ok(out)
    }

    /// `-o -`: refused on a terminal, where a binary capture is of no use.
    fn stdout() -> Result<Output> {
        let stdout = io::stdout();
        if stdout.is_terminal() {
            bail!(
                "-o - writes the capture to standard output, which is a terminal; \
                 redirect it to a file or a pipe (l7rec record -o - | ...)"
            );
        }
        let fd = stdout
            .as_fd()
            .try_clone_to_owned()
            .context("cannot duplicate standard output")?;
        Ok(Output {
            dest: Dest::Stdout(File::from(fd)),
            pending: Some(Vec::new()),
        })
    }

    /// Whether this is standard output (`-o -`).
    pub fn is_stdout(&self) -> bool {
        matches!(self.dest, Dest::Stdout(_))
    }

    /// How messages name the output.
    pub fn name(&self) -> String {
        match &self.dest {
            Dest::Stdout(_) => "standard output".to_owned(),
            Dest::File { path, .. } => path.display().to_string(),
        }
    }

    /// Recording starts: a regular file is emptied and given mode 0600 (captures hold
    /// cookies and tokens; a wider mode it had is not kept), then what was written so
    /// far goes out. Other files (`/dev/null`, a FIFO) are written to as they are: their
    /// mode is shared with every other user of them.
    pub fn commit(&mut self) -> Result<()> {
        let Some(pending) = &self.pending else {
            return Ok(());
        };
        let name = self.name();
        match &mut self.dest {
            Dest::Stdout(out) => out.write_all(pending),
            Dest::File { file, regular, .. } => {
                if *regular {
                    file.set_len(0)
                        .with_context(|| format!("cannot truncate {name}"))?;
                    file.set_permissions(std::fs::Permissions::from_mode(0o600))
                        .with_context(|| format!("cannot restrict permissions of {name}"))?;
                }
                file.write_all(pending)
            }
        }
        .with_context(|| format!("writing {name}"))?;
        // Committed only now: had this failed, a file we created would still be removed.
        self.pending = None;
        Ok(())
    }

    /// Cuts a regular file back to `len` bytes after a failed write, so it ends where
    /// the last flush ended, then appends `tail` (what completes the zstd frame that
    /// flush left open). `Ok(false)`: this output cannot be cut (standard output,
    /// a FIFO...); what was written stays.
    pub fn cut_back(&self, len: u64, tail: &[u8]) -> io::Result<bool> {
        use std::os::unix::fs::FileExt;
        match &self.dest {
            Dest::File {
                file,
                regular: true,
                ..
            } => {
                file.set_len(len)?;
                // The cut freed at least what the failed write left behind.
                file.write_all_at(tail, len)?;
                Ok(true)
            }
            _ => Ok(false),
        }
    }
}

impl Write for Output {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if let Some(pending) = &mut self.pending {
            pending.extend_from_slice(buf);
            return Ok(buf.len());
        }
        match &mut self.dest {
            Dest::Stdout(f) | Dest::File { file: f, .. } => f.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        if self.pending.is_some() {
            return Ok(());
        }
        match &mut self.dest {
            Dest::Stdout(f) | Dest::File { file: f, .. } => f.flush(),
        }
    }
}

impl Drop for Output {
    /// Start-up failed (never committed): removes the file if we created it, and it is
    /// still the one at `path` (not replaced meanwhile by someone else's).
    fn drop(&mut self) {
        if self.pending.is_none() {
            return;
        }
        if let Dest::File {
            file,
            path,
            created: true,
            ..
        } = &self.dest
        {
            let ours = match (file.metadata(), std::fs::symlink_metadata(path)) {
                (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
                _ => false,
            };
            if ours {
                if let Err(e) = std::fs::remove_file(path) {
                    eprintln!(
                        "l7rec: warning: cannot remove {} after the failed start: {e}",
                        path.display()
                    );
                }
            }
        }
    }
}

/// Opens `path` for writing, creating it (mode 0600) if it does not exist; says whether
/// it did. Never truncates. O_EXCL tells "created" from "was there", which matters:
/// only a file we created may be removed after a failed start.
fn open_or_create(path: &Path) -> io::Result<(File, bool)> {
    let mut last = io::Error::other("not tried");
    for _ in 0..OPEN_ATTEMPTS {
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
        {
            Ok(f) => return Ok((f, true)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e),
        }
        match OpenOptions::new().write(true).open(path) {
            Ok(f) => return Ok((f, false)),
            // Removed since (or a dangling symlink): try creating it again.
            Err(e) if e.kind() == io::ErrorKind::NotFound => last = e,
            Err(e) => return Err(e),
        }
    }
    Err(last)
}

/// `flock(LOCK_EX | LOCK_NB)`: advisory, so it only keeps out other l7rec recorders
/// (and tools that lock too); held until the file is closed at exit. Not inherited by
/// the traced command: the descriptor is close-on-exec.
fn lock(file: &File) -> io::Result<()> {
    // SAFETY: flock(2) on a descriptor we own; no memory is passed.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn an_existing_file_is_untouched_until_commit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keep.txt");
        std::fs::write(&path, b"precious").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        {
            let mut out = Output::open(&path).unwrap();
            out.write_all(b"header").unwrap();
            out.flush().unwrap();
            // Dropped uncommitted: a failed start.
        }
        assert_eq!(std::fs::read(&path).unwrap(), b"precious");
        assert_eq!(mode(&path), 0o644);
        let mut out = Output::open(&path).unwrap();
        out.write_all(b"header").unwrap();
        out.commit().unwrap();
        out.write_all(b"+rest").unwrap();
        drop(out);
        assert_eq!(std::fs::read(&path).unwrap(), b"header+rest");
        assert_eq!(mode(&path), 0o600);
    }

    #[test]
    fn a_created_file_is_removed_after_a_failed_start() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("new.pcapng");
        drop(Output::open(&path).unwrap());
        assert!(!path.exists(), "an uncommitted new file must be removed");
        let mut out = Output::open(&path).unwrap();
        out.commit().unwrap();
        drop(out);
        assert!(path.exists(), "a committed file stays");
        assert_eq!(mode(&path), 0o600);
    }

    #[test]
    fn a_file_being_written_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cap.pcapng");
        let mut first = Output::open(&path).unwrap();
        first.write_all(b"first").unwrap();
        first.commit().unwrap();
        let err = Output::open(&path)
            .err()
            .expect("a second writer is refused");
        let msg = format!("{err:#}");
        assert!(msg.contains("another"), "{msg}");
        // The refusal neither removed nor touched the first writer's file.
        assert_eq!(std::fs::read(&path).unwrap(), b"first");
        drop(first);
        // Free again once the first writer is gone.
        Output::open(&path).unwrap().commit().unwrap();
    }

    #[test]
    fn a_device_node_is_written_as_it_is() {
        let dir = tempfile::tempdir().unwrap();
        // A device node of our own (like /dev/null).
        let dev = dir.path().join("null");
        let c = std::ffi::CString::new(dev.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a valid path; makedev(1, 3) is the null device.
        if unsafe { libc::mknod(c.as_ptr(), libc::S_IFCHR | 0o666, libc::makedev(1, 3)) } != 0 {
            eprintln!("skipped: mknod needs root ({})", io::Error::last_os_error());
            return;
        }
        std::fs::set_permissions(&dev, std::fs::Permissions::from_mode(0o666)).unwrap();
        let mut null = Output::open(&dev).unwrap();
        null.write_all(b"capture").unwrap();
        null.commit().unwrap();
        // Not locked: a second writer is fine.
        let mut second = Output::open(&dev).unwrap();
        second.commit().unwrap();
        drop((null, second));
        // Neither chmod-ed nor removed.
        assert_eq!(mode(&dev), 0o666);
    }

    #[test]
    fn only_regular_files_are_cut_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cap.pcapng");
        let mut out = Output::open(&path).unwrap();
        out.commit().unwrap();
        out.write_all(b"complete+partial").unwrap();
        assert!(out.cut_back(8, &[]).unwrap());
        assert_eq!(std::fs::read(&path).unwrap(), b"complete");
        let dev = dir.path().join("null");
        let c = std::ffi::CString::new(dev.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: a valid path; makedev(1, 3) is the null device.
        if unsafe { libc::mknod(c.as_ptr(), libc::S_IFCHR | 0o666, libc::makedev(1, 3)) } == 0 {
            let mut null = Output::open(&dev).unwrap();
            null.commit().unwrap();
            assert!(!null.cut_back(0, &[]).unwrap());
        }
    }
}
