//! Failure records: a point whose training fails writes `points/<key>.failed` (its message,
//! the log it was reported in, when and where), and the sweep goes on with the other
//! points. A later run retries the point; its success removes the record.
use crate::error::{Error, Result};
use crate::rundir::RunDir;
use crate::sweep::Point;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The environment variable that makes the listed point keys (comma-separated) fail before
/// training: fault injection for tests of failure handling, never set in real runs.
pub const FAIL_POINTS_ENV: &str = "VISLAW_TEST_FAIL_POINTS";

/// Why one point's last try failed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Failure {
    /// The point's key.
    pub key: String,
    /// `strategy, T = …, M = …, seed …`.
    pub point: String,
    /// The error's one-line message.
    pub message: String,
    /// The process exit code the error maps to (2: bad input, 1: anything else).
    pub exit_code: i32,
    /// The log the failing process wrote to, when it knew it.
    pub log: Option<PathBuf>,
    /// The host and process id of the failing process.
    pub host: String,
    /// Its process id.
    pub pid: u32,
    /// Seconds since the Unix epoch.
    pub unix_time: u64,
}

impl Failure {
    /// The record of `error` on `point`.
    pub fn of(point: &Point, error: &Error, log: Option<&Path>) -> Failure {
        Failure {
            key: point.key.clone(),
            point: describe(point),
            message: error.to_string(),
            exit_code: error.exit_code(),
            log: log.map(Path::to_path_buf),
            host: hostname(),
            pid: std::process::id(),
            unix_time: std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs()),
        }
    }

    /// Writes the record atomically to `points/<key>.failed`.
    pub fn save(&self, run_dir: &Path) -> Result<()> {
        let text = serde_json::to_string_pretty(self).map_err(Error::internal)?;
        crate::io::write_atomic(&RunDir::new(run_dir).failed(&self.key), text.as_bytes())
    }

    /// The record of point `key`, if its last try failed (an unreadable record is reported
    /// as a failure with that reason).
    pub fn load(run_dir: &Path, key: &str) -> Option<Failure> {
        let path = RunDir::new(run_dir).failed(key);
        let text = std::fs::read_to_string(&path).ok()?;
        Some(serde_json::from_str(&text).unwrap_or_else(|e| Failure {
            key: key.to_string(),
            point: String::new(),
            message: format!("{}: unreadable failure record: {e}", path.display()),
            exit_code: 1,
            log: None,
            host: String::new(),
            pid: 0,
            unix_time: 0,
        }))
    }

    /// The error this record stands for, with its exit code.
    pub fn to_error(&self) -> Error {
        match self.exit_code {
            2 => Error::Input(self.message.clone()),
            _ => Error::Internal(self.message.clone()),
        }
    }
}

/// Removes a point's failure record (after it succeeded).
pub fn clear(run_dir: &Path, key: &str) -> Result<()> {
    match std::fs::remove_file(RunDir::new(run_dir).failed(key)) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e.into()),
        _ => Ok(()),
    }
}

/// A point for people: `pool/sample, T = 2, M = 1, seed 0`.
pub fn describe(point: &Point) -> String {
    format!("{}, T = {}, M = {}, seed {}", point.strategy(), point.shape.frames, point.shape.tokens_per_frame, point.seed)
}

/// The injected failure of `key`, when [`FAIL_POINTS_ENV`] lists it.
pub fn injected(key: &str) -> Option<Error> {
    let listed = std::env::var(FAIL_POINTS_ENV).ok()?;
    listed.split(',').any(|k| k.trim() == key).then(|| Error::internal(format!("point {key}: failure injected by {FAIL_POINTS_ENV}")))
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").map(|h| h.trim().to_string()).unwrap_or_else(|_| std::env::var("HOSTNAME").unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_round_trips_and_clearing_removes_it() {
        let cfg: crate::config::Config = serde_yaml::from_str(crate::config::tests::SMALL).unwrap();
        let point = crate::sweep::plan(&cfg, None).remove(0);
        let d = tempfile::tempdir().unwrap();
        let f = Failure::of(&point, &Error::input("train.lr", "diverged"), Some(Path::new("/logs/1_0.log")));
        f.save(d.path()).unwrap();
        let back = Failure::load(d.path(), &point.key).unwrap();
        assert_eq!(back, f);
        assert_eq!(back.to_error().exit_code(), 2);
        assert_eq!(back.message, "train.lr: diverged");
        clear(d.path(), &point.key).unwrap();
        assert!(Failure::load(d.path(), &point.key).is_none());
        clear(d.path(), &point.key).unwrap();
    }
}
