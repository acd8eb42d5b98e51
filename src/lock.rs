//! Locks of a run directory, so that many sweep processes (shards of one sweep, on one
//! machine or many sharing a file system) work in one `results/<name>/` without training a
//! point twice or tearing each other's files.
//!
//! Every lock is an OS advisory lock (`flock` on Unix, `LockFileEx` on Windows, through
//! std's `File` locks), which the OS releases when the process ends, however it ends: a
//! killed process never leaves a stale lock behind.
//!
//! - [`RunLock`]: a *shared* lock on `<run>/.lock`, held by every sweep process while it
//!   works in the directory. A process that finds the lock free of any other holder takes it
//!   exclusively for a moment and removes the temp files killed writers left behind (no
//!   process can be writing one then); otherwise it leaves them, since they may be another
//!   process's writes in progress.
//! - [`Claim`]: an exclusive lock on one file (`points/<key>.claim`, say) held while a point
//!   trains. A claim that another live process holds is busy; the claim of a killed process is
//!   free again at once.
use crate::error::{Error, Result};
use std::fs::{File, OpenOptions, TryLockError};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The lock file inside a run directory.
pub use crate::rundir::LOCK_FILE;

/// How long a process waits for another's exclusive hold of the run directory (which lasts
/// as long as removing torn temp files) before it gives up.
const EXCLUSIVE_WAIT: Duration = Duration::from_secs(3);

/// A process's shared hold of one run directory, released when dropped.
#[derive(Debug)]
pub struct RunLock {
    /// Closing the file releases the lock.
    _file: File,
    /// Why the directory is not locked after all, when its file system has no locks.
    warning: Option<String>,
    /// Whether this process was the directory's only user when it joined.
    alone: bool,
}

impl RunLock {
    /// Joins the run directory `dir` (created when missing) under a shared lock. When no
    /// other process holds the directory, `when_alone` runs first under an exclusive lock (to
    /// remove torn temp files). Fails with an input error (exit 2) naming the directory when
    /// another process keeps it exclusively for more than a few seconds.
    pub fn join(dir: &Path, when_alone: impl FnOnce()) -> Result<RunLock> {
        std::fs::create_dir_all(dir).map_err(|e| Error::internal(format!("{}: cannot create directory: {e}", dir.display())))?;
        let path = dir.join(LOCK_FILE);
        let mut file = open_rw(&path)?;
        match file.try_lock() {
            Ok(()) => {
                record_holder(&mut file);
                when_alone();
                // Downgrade: other processes may join from now on.
                file.lock_shared().map_err(|e| Error::internal(format!("{}: cannot lock: {e}", path.display())))?;
                return Ok(RunLock { _file: file, warning: None, alone: true });
            }
            Err(TryLockError::Error(e)) if e.kind() == std::io::ErrorKind::Unsupported => {
                // A file system without locks (some network mounts) must not stop a sweep.
                let warning = Some(format!("{} cannot be locked ({e}); nothing stops two processes from training the same point", path.display()));
                return Ok(RunLock { _file: file, warning, alone: false });
            }
            Err(TryLockError::Error(e)) => return Err(Error::internal(format!("{}: cannot lock: {e}", path.display()))),
            Err(TryLockError::WouldBlock) => {}
        }
        let started = Instant::now();
        loop {
            match file.try_lock_shared() {
                Ok(()) => return Ok(RunLock { _file: file, warning: None, alone: false }),
                Err(TryLockError::WouldBlock) if started.elapsed() < EXCLUSIVE_WAIT => std::thread::sleep(Duration::from_millis(20)),
                Err(TryLockError::WouldBlock) => return Err(held_elsewhere(dir, &path)),
                Err(TryLockError::Error(e)) => return Err(Error::internal(format!("{}: cannot lock: {e}", path.display()))),
            }
        }
    }

    /// Why the directory is not locked after all (a file system without locks), if so.
    pub fn warning(&self) -> Option<&str> {
        self.warning.as_deref()
    }

    /// Whether this process was the directory's only user when it joined.
    pub fn was_alone(&self) -> bool {
        self.alone
    }
}

fn open_rw(path: &Path) -> Result<File> {
    OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(path)
        .map_err(|e| Error::internal(format!("{}: cannot open the lock file: {e}", path.display())))
}

/// Writes the holder's process id into the lock file, for the message a process waiting on
/// an exclusive holder prints. Best effort: the lock, not the content, is what excludes.
fn record_holder(file: &mut File) {
    let _ = file.set_len(0).and_then(|()| writeln!(file, "{}", std::process::id())).and_then(|()| file.flush());
}

/// The one-line error of a process that cannot join a directory held exclusively.
fn held_elsewhere(dir: &Path, path: &Path) -> Error {
    let pid = std::fs::read_to_string(path).ok().and_then(|s| s.trim().parse::<u32>().ok());
    let holder = pid.map(|p| format!(" (process {p})")).unwrap_or_default();
    Error::file(dir, format!("another vislaw sweep{holder} holds this run directory; wait for it to finish, or give this sweep another results directory"))
}

/// An exclusive claim on one file, held until dropped; dropping it removes the file.
#[derive(Debug)]
pub struct Claim {
    file: File,
    path: PathBuf,
}

impl Claim {
    /// Takes the claim at `path` (created when missing), or `None` when another live process
    /// holds it. Never waits.
    pub fn try_take(path: &Path) -> Result<Option<Claim>> {
        Self::take(path, false)
    }

    /// Takes the claim at `path`, waiting while another process holds it.
    pub fn wait_take(path: &Path) -> Result<Claim> {
        Self::take(path, true).map(|c| c.expect("a blocking claim is always taken"))
    }

    fn take(path: &Path, wait: bool) -> Result<Option<Claim>> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| Error::internal(format!("{}: cannot create directory: {e}", dir.display())))?;
        }
        loop {
            let file = open_rw(path)?;
            let locked = if wait { file.lock().map_err(TryLockError::Error) } else { file.try_lock() };
            match locked {
                Ok(()) => {}
                Err(TryLockError::WouldBlock) => return Ok(None),
                Err(TryLockError::Error(e)) if e.kind() == std::io::ErrorKind::Unsupported => {}
                Err(TryLockError::Error(e)) => return Err(Error::internal(format!("{}: cannot lock: {e}", path.display()))),
            }
            // The holder before us removes the file before it lets go: a lock on a file no
            // longer at `path` claims nothing, so open the path again.
            if same_file(&file, path) {
                return Ok(Some(Claim { file, path: path.to_path_buf() }));
            }
        }
    }

    /// Whether another process holds the claim at `path` now (a file left by nobody is free).
    pub fn is_held(path: &Path) -> bool {
        let Ok(file) = File::open(path) else { return false };
        matches!(file.try_lock_shared(), Err(TryLockError::WouldBlock))
    }

    /// The claim's file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        // Removed while still locked: whoever locks the old file next sees it gone.
        if same_file(&self.file, &self.path) {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Whether the open `file` is the file now at `path`.
fn same_file(file: &File, path: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        match (file.metadata(), std::fs::metadata(path)) {
            (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
            _ => false,
        }
    }
    #[cfg(not(unix))]
    {
        let _ = file;
        path.exists()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_exclusive_holder_keeps_a_second_process_out_with_a_one_line_error() {
        let d = tempfile::tempdir().unwrap();
        let run = d.path().join("results/tiny");
        std::fs::create_dir_all(&run).unwrap();
        let holder = open_rw(&run.join(LOCK_FILE)).unwrap();
        holder.try_lock().unwrap();
        std::fs::write(run.join(LOCK_FILE), "4242\n").unwrap();
        let e = RunLock::join(&run, || {}).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        let msg = e.to_string();
        assert!(msg.starts_with(&run.display().to_string()) && msg.contains("another vislaw sweep (process 4242)"), "{msg}");
        assert_eq!(msg.lines().count(), 1);
        drop(holder);
        assert!(RunLock::join(&run, || {}).unwrap().was_alone(), "dropping the holder frees the directory");
    }

    #[test]
    fn processes_share_the_directory_and_only_a_lone_one_cleans() {
        let d = tempfile::tempdir().unwrap();
        let mut cleaned = 0;
        let first = RunLock::join(d.path(), || cleaned += 1).unwrap();
        assert!(first.was_alone());
        let second = RunLock::join(d.path(), || cleaned += 10).unwrap();
        assert!(!second.was_alone());
        assert_eq!(cleaned, 1);
        drop((first, second));
        let third = RunLock::join(d.path(), || cleaned += 100).unwrap();
        assert!(third.was_alone());
        assert_eq!(cleaned, 101);
    }

    #[test]
    fn a_claim_is_busy_while_held_and_free_once_dropped() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("points/k.claim");
        let first = Claim::try_take(&path).unwrap().expect("free");
        assert!(Claim::is_held(&path));
        assert!(Claim::try_take(&path).unwrap().is_none(), "a held claim is busy");
        drop(first);
        assert!(!path.exists(), "a released claim leaves no file");
        assert!(!Claim::is_held(&path));
        let again = Claim::try_take(&path).unwrap().expect("free again");
        assert_eq!(again.path(), path);
    }

    #[test]
    fn a_claim_on_a_removed_file_is_not_mistaken_for_the_claim() {
        let d = tempfile::tempdir().unwrap();
        let path = d.path().join("k.claim");
        // A process that opened the file before its holder removed it, then locks the old file.
        let holder = Claim::try_take(&path).unwrap().unwrap();
        let stale = File::open(&path).unwrap();
        drop(holder);
        stale.try_lock().unwrap();
        let fresh = Claim::try_take(&path).unwrap().expect("the path's new file is free");
        assert!(!same_file(&stale, &path));
        assert!(same_file(&fresh.file, &path));
    }
}
