//! Sweeps as Slurm job arrays: the plan of a submission (the pending points packed into
//! array tasks, each a shard of a points list), the two batch scripts (`sweep.sbatch`, the
//! array; `analyze.sbatch`, run after it whatever its tasks' fates), and the parsing of what
//! the scheduler says. The library returns text and plans; the CLI writes, submits and asks
//! the scheduler.
//!
//! Each task runs `vislaw sweep` on its shard of `slurm/points-<h>.txt` (the points pending
//! at submission, named by their content so a later submission never changes an earlier
//! array's list). Points are claimed as they train, so a requeued, resubmitted or duplicated
//! task never trains a point twice.
pub mod script;

use crate::config::Config;
use crate::error::{Error, Result};
use crate::rundir::{RunDir, SLURM_JOBS_FILE};
use crate::status::State;
use crate::sweep::Point;
use std::path::{Path, PathBuf};

pub use script::{analyze_script, sweep_script};

/// The array size a cluster allows when `scontrol show config` cannot be read.
pub const DEFAULT_MAX_ARRAY_SIZE: usize = 1000;

/// How to submit a sweep.
#[derive(Debug, Clone, Default)]
pub struct SlurmOptions {
    /// `--partition`.
    pub partition: Option<String>,
    /// `--account`.
    pub account: Option<String>,
    /// `--qos`.
    pub qos: Option<String>,
    /// `--time` of each task (Slurm's formats: `MM`, `HH:MM:SS`, `D-HH:MM`, …).
    pub time: Option<String>,
    /// `--gpus-per-task`.
    pub gpus_per_task: Option<u32>,
    /// `--cpus-per-task` (also the points each task trains at once on CPU).
    pub cpus_per_task: Option<u32>,
    /// `--mem` of each task.
    pub mem: Option<String>,
    /// At most this many tasks at once (`--array=…%K`).
    pub array_parallelism: Option<usize>,
    /// Points per task (default: one, or as many as keep the array within `max_array_size`).
    pub points_per_task: Option<usize>,
    /// The largest array the cluster accepts (its `MaxArraySize`).
    pub max_array_size: usize,
    /// Further `#SBATCH` lines, as given (`--constraint=a100`).
    pub sbatch_args: Vec<String>,
    /// The `vislaw` binary the tasks run (absolute).
    pub exe: PathBuf,
    /// The sweep file (absolute).
    pub config: PathBuf,
    /// The results root (absolute).
    pub results_root: PathBuf,
    /// The tasks' compute device (`auto`, `cpu`, `cuda`).
    pub device: String,
}

/// A submission, ready to write and submit.
#[derive(Debug, Clone)]
pub struct Submission {
    /// The run directory.
    pub run_dir: PathBuf,
    /// The keys each array task trains (task `i` is `tasks[i]`), longest first.
    pub tasks: Vec<Vec<String>>,
    /// Estimated cost of each task, FLOP.
    pub task_flops: Vec<f64>,
    /// `slurm/points-<h>.txt`: the pending points' keys, one per line.
    pub points_file: PathBuf,
    /// Its content.
    pub points_text: String,
    /// `slurm/sweep.sbatch`.
    pub sweep_path: PathBuf,
    /// Its content.
    pub sweep_script: String,
    /// `slurm/analyze.sbatch`.
    pub analyze_path: PathBuf,
    /// Its content.
    pub analyze_script: String,
}

/// The points of `points` a submission must run in `run_dir`: neither done nor claimed by a
/// live process (failed points are retried).
pub fn pending<'a>(run_dir: &Path, points: &'a [Point]) -> Vec<&'a Point> {
    points.iter().filter(|p| matches!(crate::status::point_state(run_dir, p).0, State::Pending | State::Failed)).collect()
}

/// Plans the submission of `pending` (non-empty) for `cfg` under `opts`: the packing of the
/// points into at most `max_array_size` tasks and both scripts.
pub fn plan(cfg: &Config, pending: &[&Point], opts: &SlurmOptions) -> Result<Submission> {
    if pending.is_empty() {
        return Err(Error::internal("a submission needs a pending point"));
    }
    if opts.max_array_size == 0 {
        return Err(Error::input("max array size", "must be at least 1"));
    }
    let n = pending.len();
    let per_task = match opts.points_per_task {
        Some(0) => return Err(Error::input("points per task", "must be at least 1")),
        Some(p) => p,
        None => n.div_ceil(opts.max_array_size),
    };
    let count = n.div_ceil(per_task);
    if count > opts.max_array_size {
        return Err(Error::input(
            "points per task",
            format!("{per_task} point(s) per task make {count} tasks for {n} pending points, more than the max array size {}", opts.max_array_size),
        ));
    }
    if let Some(t) = &opts.time {
        parse_time(t).map_err(|m| Error::input("time", m))?;
    }
    let cost: std::collections::HashMap<&str, f64> = pending.iter().map(|p| (p.key.as_str(), crate::sweep::estimate_cost(cfg, p).flops)).collect();
    let items: Vec<(String, f64)> = pending.iter().map(|p| (p.key.clone(), cost[p.key.as_str()])).collect();
    let tasks = crate::shard::split(&items, count);
    let task_flops = tasks.iter().map(|ks| ks.iter().map(|k| cost[k.as_str()]).sum()).collect();
    let mut sorted: Vec<&str> = items.iter().map(|(k, _)| k.as_str()).collect();
    sorted.sort_unstable();
    let points_text: String = sorted.iter().map(|k| format!("{k}\n")).collect();
    let hash = blake3::hash(points_text.as_bytes()).to_hex()[..12].to_string();
    let run = RunDir::of(&opts.results_root, &cfg.name);
    let points_file = run.slurm().join(format!("points-{hash}.txt"));
    let sweep_script = sweep_script(cfg, opts, &run, &points_file, count);
    let analyze_script = analyze_script(cfg, opts, &run);
    Ok(Submission {
        run_dir: run.root().to_path_buf(),
        tasks,
        task_flops,
        points_file,
        points_text,
        sweep_path: run.slurm().join("sweep.sbatch"),
        sweep_script,
        analyze_path: run.slurm().join("analyze.sbatch"),
        analyze_script,
    })
}

impl Submission {
    /// Writes the points list, both scripts, the run's `config.yaml` and the logs directory.
    pub fn write(&self, cfg: &Config) -> Result<()> {
        let run = RunDir::new(&self.run_dir);
        std::fs::create_dir_all(run.slurm_logs()).map_err(|e| Error::internal(format!("{}: cannot create directory: {e}", run.slurm_logs().display())))?;
        crate::io::write_atomic(&run.config(), serde_yaml::to_string(cfg).map_err(Error::internal)?.as_bytes())?;
        crate::io::write_atomic(&self.points_file, self.points_text.as_bytes())?;
        crate::io::write_atomic(&self.sweep_path, self.sweep_script.as_bytes())?;
        crate::io::write_atomic(&self.analyze_path, self.analyze_script.as_bytes())
    }

    /// The point-to-task table for people.
    pub fn table(&self) -> String {
        let mut out = format!("{:>6} {:>6} {:>10}  keys\n", "task", "points", "GFLOP");
        for (i, (keys, flops)) in self.tasks.iter().zip(&self.task_flops).enumerate() {
            out += &format!("{i:>6} {:>6} {:>10.1}  {}\n", keys.len(), flops / 1e9, keys.join(" "));
        }
        out
    }

    /// The arguments of `sbatch` for the analysis job after array job `array_id`.
    pub fn analyze_sbatch_args(&self, array_id: &str) -> Vec<String> {
        vec!["--parsable".into(), format!("--dependency=afterany:{array_id}"), self.analyze_path.display().to_string()]
    }
}

/// Appends a submitted job to `slurm/jobs.txt` (`ID KIND NOTE`).
pub fn record_job(run_dir: &Path, id: &str, kind: &str, note: &str) -> Result<()> {
    let path = RunDir::new(run_dir).slurm().join(SLURM_JOBS_FILE);
    let mut text = std::fs::read_to_string(&path).unwrap_or_default();
    text += &format!("{id} {kind} {note}\n");
    crate::io::write_atomic(&path, text.as_bytes())
}

/// The job id in `sbatch --parsable`'s output (`ID` or `ID;CLUSTER`).
pub fn parsable_job_id(stdout: &str) -> Option<String> {
    let id = stdout.trim().split(';').next()?.trim();
    (!id.is_empty() && id.chars().all(|c| c.is_ascii_digit())).then(|| id.to_string())
}

/// `MaxArraySize` in the output of `scontrol show config`.
pub fn max_array_size(show_config: &str) -> Option<usize> {
    show_config.lines().find_map(|l| {
        let (k, v) = l.split_once('=')?;
        (k.trim() == "MaxArraySize").then(|| v.trim().parse().ok()).flatten()
    })
}

/// Seconds of a Slurm time limit: `M`, `M:S`, `H:M:S`, `D-H`, `D-H:M`, `D-H:M:S`.
pub fn parse_time(text: &str) -> std::result::Result<u64, String> {
    let bad = || format!("'{text}' is not a Slurm time (minutes, MM:SS, HH:MM:SS, D-HH, D-HH:MM or D-HH:MM:SS)");
    let num = |s: &str| s.trim().parse::<u64>().map_err(|_| bad());
    let (days, rest) = match text.split_once('-') {
        Some((d, r)) => (Some(num(d)?), r),
        None => (None, text),
    };
    let parts: Vec<u64> = rest.split(':').map(num).collect::<std::result::Result<_, _>>()?;
    let secs = match (days, parts.as_slice()) {
        (None, [m]) => m * 60,
        (None, [m, s]) => m * 60 + s,
        (None, [h, m, s]) => h * 3600 + m * 60 + s,
        (Some(d), [h]) => d * 86400 + h * 3600,
        (Some(d), [h, m]) => d * 86400 + h * 3600 + m * 60,
        (Some(d), [h, m, s]) => d * 86400 + h * 3600 + m * 60 + s,
        _ => return Err(bad()),
    };
    if secs == 0 {
        return Err(format!("'{text}' is no time at all"));
    }
    Ok(secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slurm_times_parse_to_seconds() {
        assert_eq!(parse_time("90"), Ok(5400));
        assert_eq!(parse_time("01:30:00"), Ok(5400));
        assert_eq!(parse_time("2:30"), Ok(150));
        assert_eq!(parse_time("1-2"), Ok(93600));
        assert_eq!(parse_time("1-00:00:10"), Ok(86410));
        assert!(parse_time("1:2:3:4").is_err());
        assert!(parse_time("soon").unwrap_err().contains("'soon'"));
        assert!(parse_time("0").is_err());
    }

    #[test]
    fn scheduler_outputs_are_read() {
        assert_eq!(max_array_size("Foo = 1\nMaxArraySize            = 10001\nMaxJobCount = 5\n"), Some(10001));
        assert_eq!(max_array_size("MaxJobCount = 5\n"), None);
        assert_eq!(parsable_job_id("1234\n").as_deref(), Some("1234"));
        assert_eq!(parsable_job_id("1234;cluster\n").as_deref(), Some("1234"));
        assert_eq!(parsable_job_id("sbatch: error\n"), None);
    }
}
