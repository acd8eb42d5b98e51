//! Where a run stands: each point of its config done, running (claimed by a live process),
//! failed (with its record) or pending; the temp files killed writers left; and the Slurm
//! jobs submitted for it (`slurm/jobs.txt`), whose states the CLI asks the scheduler for.
use crate::config::Config;
use crate::error::{Error, Result};
use crate::lock::Claim;
use crate::rundir::{RunDir, SLURM_JOBS_FILE, TEMP_PREFIX};
use crate::sweep::failure::{self, Failure};
use crate::sweep::Point;
use std::path::Path;

/// The state of one point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Its row is saved.
    Done,
    /// A live process holds its claim.
    Running,
    /// Its last try failed.
    Failed,
    /// Not tried yet (or its try was killed).
    Pending,
}

/// One point and its state.
#[derive(Debug, Clone)]
pub struct PointStatus {
    /// The point's key.
    pub key: String,
    /// `strategy, T = …, M = …, seed …`.
    pub point: String,
    /// Its state.
    pub state: State,
    /// Its failure record, when failed.
    pub failure: Option<Failure>,
}

/// A run's state.
#[derive(Debug, Clone)]
pub struct RunStatus {
    /// The run's name.
    pub name: String,
    /// Every point of the run's config, in plan order.
    pub points: Vec<PointStatus>,
    /// Temp files of interrupted writes (removed by the next process alone in the directory).
    pub torn_files: usize,
    /// The Slurm job ids recorded for the run, oldest first.
    pub jobs: Vec<String>,
}

impl RunStatus {
    /// How many points are in `state`.
    pub fn count(&self, state: State) -> usize {
        self.points.iter().filter(|p| p.state == state).count()
    }

    /// The points in `state`.
    pub fn with(&self, state: State) -> impl Iterator<Item = &PointStatus> {
        self.points.iter().filter(move |p| p.state == state)
    }
}

/// The config a run directory was swept with (`config.yaml`, written by every sweep).
pub fn run_config(run_dir: &Path) -> Result<Config> {
    let path = RunDir::new(run_dir).config();
    if !path.exists() {
        return Err(Error::file(run_dir, "not a run directory (no config.yaml: no sweep has run here)"));
    }
    crate::sweep::load(&path)
}

/// The points of a run's config, keyed as its sweep keys them.
pub fn run_points(cfg: &Config) -> Result<Vec<Point>> {
    let source = crate::sweep::open_source(cfg)?;
    Ok(crate::sweep::plan(cfg, source.fingerprint()))
}

/// The state of `point` in `run_dir`.
pub fn point_state(run_dir: &Path, point: &Point) -> (State, Option<Failure>) {
    if crate::results::is_done(run_dir, &point.key) {
        return (State::Done, None);
    }
    if Claim::is_held(&RunDir::new(run_dir).claim(&point.key)) {
        return (State::Running, None);
    }
    match Failure::load(run_dir, &point.key) {
        Some(f) => (State::Failed, Some(f)),
        None => (State::Pending, None),
    }
}

/// Reads where the run in `run_dir` stands.
pub fn status(run_dir: &Path) -> Result<RunStatus> {
    let cfg = run_config(run_dir)?;
    let points = run_points(&cfg)?
        .iter()
        .map(|p| {
            let (state, failure) = point_state(run_dir, p);
            PointStatus { key: p.key.clone(), point: failure::describe(p), state, failure }
        })
        .collect();
    let torn_files = RunDir::new(run_dir)
        .temp_file_dirs()
        .iter()
        .filter_map(|d| std::fs::read_dir(d).ok())
        .flat_map(|entries| entries.flatten())
        .filter(|e| e.file_name().to_string_lossy().starts_with(TEMP_PREFIX))
        .count();
    Ok(RunStatus { name: cfg.name.clone(), points, torn_files, jobs: recorded_jobs(run_dir) })
}

/// The job ids in `slurm/jobs.txt` (the first word of each line), oldest first.
pub fn recorded_jobs(run_dir: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(RunDir::new(run_dir).slurm().join(SLURM_JOBS_FILE)).unwrap_or_default();
    text.lines().filter_map(|l| l.split_whitespace().next()).filter(|w| !w.starts_with('#')).map(str::to_string).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_point_is_running_while_claimed_failed_with_a_record_and_done_once_saved() {
        let cfg: Config = serde_yaml::from_str(crate::config::tests::SMALL).unwrap();
        let point = crate::sweep::plan(&cfg, None).remove(0);
        let d = tempfile::tempdir().unwrap();
        assert_eq!(point_state(d.path(), &point).0, State::Pending);
        let claim = Claim::try_take(&RunDir::new(d.path()).claim(&point.key)).unwrap().unwrap();
        assert_eq!(point_state(d.path(), &point).0, State::Running);
        drop(claim);
        Failure::of(&point, &Error::internal("boom"), None).save(d.path()).unwrap();
        let (state, f) = point_state(d.path(), &point);
        assert_eq!(state, State::Failed);
        assert_eq!(f.unwrap().message, "boom");
    }
}
