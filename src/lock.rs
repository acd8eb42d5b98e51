//! An exclusive lock on a run directory, so that two sweeps never write into the same
//! `results/<name>/` at once (each would delete the other's temp files when it starts).
//!
//! The lock is an OS advisory lock (`flock` on Unix, `LockFileEx` on Windows, through
//! std's `File::try_lock`) on `<run>/.lock`, held while the [`RunLock`] lives. The OS
//! releases it when the process ends, however it ends, so a killed sweep never leaves a
//! stale lock behind; the file itself stays and is simply locked again by the next sweep.
use crate::error::{Error, Result};
use std::fs::{File, OpenOptions, TryLockError};
use std::io::Write;
use std::path::Path;

/// The lock file inside a run directory.
pub use crate::rundir::LOCK_FILE;

/// The lock of one run directory, held until dropped.
#[derive(Debug)]
pub struct RunLock {
    /// Closing the file releases the lock.
    _file: File,
    /// Why the directory is not locked after all, when its file system has no locks.
    warning: Option<String>,
}

impl RunLock {
    /// Takes the lock of `dir`, creating the directory and its lock file when missing. Fails
    /// at once, with an input error (exit 2) naming the directory, when another process
    /// holds it; a second sweep never waits, since the first may run for hours.
    pub fn acquire(dir: &Path) -> Result<RunLock> {
        std::fs::create_dir_all(dir).map_err(|e| Error::internal(format!("{}: cannot create directory: {e}", dir.display())))?;
        let path = dir.join(LOCK_FILE);
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .read(true)
            .write(true)
            .open(&path)
            .map_err(|e| Error::internal(format!("{}: cannot open the lock file: {e}", path.display())))?;
        let mut warning = None;
        match file.try_lock() {
            Ok(()) => record_holder(&mut file),
            Err(TryLockError::WouldBlock) => return Err(held_elsewhere(dir, &path)),
            // A file system without locks (some network mounts) must not stop a sweep.
            Err(TryLockError::Error(e)) if e.kind() == std::io::ErrorKind::Unsupported => {
                warning = Some(format!("{} cannot be locked ({e}); nothing stops a second sweep from using this directory", path.display()));
            }
            Err(TryLockError::Error(e)) => return Err(Error::internal(format!("{}: cannot lock: {e}", path.display()))),
        }
        Ok(RunLock { _file: file, warning })
    }

    /// Why the directory is not locked after all (a file system without locks), if so.
    pub fn warning(&self) -> Option<&str> {
        self.warning.as_deref()
    }
}

/// Writes the holder's process id into the lock file, for the message a second sweep prints.
/// Best effort: the lock, not the file's content, is what excludes other sweeps.
fn record_holder(file: &mut File) {
    let _ = file.set_len(0).and_then(|()| writeln!(file, "{}", std::process::id())).and_then(|()| file.flush());
}

/// The one-line error of a second sweep on a locked directory.
fn held_elsewhere(dir: &Path, path: &Path) -> Error {
    let pid = std::fs::read_to_string(path).ok().and_then(|s| s.trim().parse::<u32>().ok());
    let holder = pid.map(|p| format!(" (process {p})")).unwrap_or_default();
    Error::file(dir, format!("another vislaw sweep{holder} holds this run directory; wait for it to finish, or give this sweep another results directory"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_fails_at_once_naming_the_directory() {
        let d = tempfile::tempdir().unwrap();
        let run = d.path().join("results/tiny");
        let first = RunLock::acquire(&run).unwrap();
        let e = RunLock::acquire(&run).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        let msg = e.to_string();
        assert!(msg.starts_with(&run.display().to_string()) && msg.contains("another vislaw sweep"), "{msg}");
        assert!(msg.contains(&format!("process {}", std::process::id())), "{msg}");
        assert_eq!(msg.lines().count(), 1);
        drop(first);
        RunLock::acquire(&run).expect("dropping the lock releases it");
    }
}
