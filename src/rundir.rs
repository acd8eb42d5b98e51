//! The layout of a run directory, `results/<run>/`: every path under it has its one
//! definition here, so the writers (the sweep, the fit, the optimum, the figures, the
//! report) and the readers (analysis, the notebook, tests) cannot drift apart.
//!
//! ```text
//! results/<run>/
//!   config.yaml            the resolved sweep config
//!   .lock                  the OS lock every sweep process holds shared
//!   points/<key>.parquet   one finished point (atomic)
//!   points/<key>.claim     the OS lock of the process training the point
//!   points/<key>.failed    why the point's last try failed (JSON; removed once it succeeds)
//!   curves/<key>.parquet   its training curve
//!   niah/<key>.parquet     its needle-grid cells (with a `niah:` section)
//!   cache/prior-<k>.safetensors  the text-only warm start
//!   cache/reduced/<k>.safetensors  one video's reduced features under one reduction (feature files)
//!   cache/reduced/<v>.checked      a video found finite
//!   blind.parquet          the blind baseline
//!   blind-<lm>.parquet     the blind baseline of each LM of the LM axis (`sweep.lm`)
//!   cost.json              the cost models of the strategies (and of each LM of the axis)
//!   cache/cost.claim       the OS lock of the process merging an LM into cost.json
//!   results.parquet, results.csv, curves.parquet, niah.parquet   the merged tables
//!   fits.json, optimum.json, report.md, plots/
//!   slurm/sweep.sbatch, slurm/analyze.sbatch, slurm/points-<h>.txt, slurm/jobs.txt, slurm/logs/
//! ```
use std::path::{Path, PathBuf};

/// The resolved config of the run.
pub const CONFIG_FILE: &str = "config.yaml";
/// The run directory's lock file.
pub const LOCK_FILE: &str = ".lock";
/// Directory of per-point result tables.
pub const POINTS_DIR: &str = "points";
/// Directory of per-point training curves.
pub const CURVES_DIR: &str = "curves";
/// Directory of per-point needle-grid tables.
pub const NIAH_DIR: &str = "niah";
/// Directory of caches (the text-only warm start).
pub const CACHE_DIR: &str = "cache";
/// Directory, inside `cache/`, of the reduced features of feature-file videos.
pub const REDUCED_DIR: &str = "reduced";
/// The blind (no visual tokens) baseline.
pub const BLIND_FILE: &str = "blind.parquet";
/// The merged results table.
pub const RESULTS_FILE: &str = "results.parquet";
/// The merged results table as CSV.
pub const RESULTS_CSV: &str = "results.csv";
/// The merged training curves.
pub const CURVES_FILE: &str = "curves.parquet";
/// The merged needle-grid table.
pub const NIAH_FILE: &str = "niah.parquet";
/// The fitted laws.
pub const FITS_FILE: &str = "fits.json";
/// The solved optimum.
pub const OPTIMUM_FILE: &str = "optimum.json";
/// The laws fitted to the error rate (1 − accuracy), beside the loss's.
pub const ACCURACY_FITS_FILE: &str = "fits_accuracy.json";
/// The optimum of the accuracy laws.
pub const ACCURACY_OPTIMUM_FILE: &str = "optimum_accuracy.json";
/// The joint (N, T, M) laws, one per strategy and form.
pub const JOINT_FITS_FILE: &str = "fits_joint.json";
/// The FLOPs optimum of the joint laws, choosing the LM as well as T and M.
pub const JOINT_OPTIMUM_FILE: &str = "optimum_joint.json";
/// The run's report.
pub const REPORT_FILE: &str = "report.md";
/// Directory of the run's figures.
pub const PLOTS_DIR: &str = "plots";
/// Extension of a point's claim file.
pub const CLAIM_EXT: &str = "claim";
/// Extension of a point's failure record.
pub const FAILED_EXT: &str = "failed";
/// Directory of the Slurm scripts, job records and logs.
pub const SLURM_DIR: &str = "slurm";
/// The submitted jobs, one line each, inside `slurm/`.
pub const SLURM_JOBS_FILE: &str = "jobs.txt";
/// Prefix of temp files that atomic writes leave behind when killed mid-write.
pub const TEMP_PREFIX: &str = ".tmp-";

/// A run directory: typed paths to everything in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunDir {
    root: PathBuf,
}

impl RunDir {
    /// The run directory at `root` (nothing is created).
    pub fn new(root: impl Into<PathBuf>) -> RunDir {
        RunDir { root: root.into() }
    }

    /// The run directory of run `name` under a results root (`results/`).
    pub fn of(results_root: &Path, name: &str) -> RunDir {
        RunDir::new(results_root.join(name))
    }

    /// The directory itself.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// A file or directory directly under the run directory.
    pub fn join(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    /// `config.yaml`.
    pub fn config(&self) -> PathBuf {
        self.join(CONFIG_FILE)
    }

    /// One finished point's row.
    pub fn point(&self, key: &str) -> PathBuf {
        self.root.join(POINTS_DIR).join(format!("{key}.parquet"))
    }

    /// The claim of the process training a point.
    pub fn claim(&self, key: &str) -> PathBuf {
        self.root.join(POINTS_DIR).join(format!("{key}.{CLAIM_EXT}"))
    }

    /// Why a point's last try failed.
    pub fn failed(&self, key: &str) -> PathBuf {
        self.root.join(POINTS_DIR).join(format!("{key}.{FAILED_EXT}"))
    }

    /// The claim of the process training the text-only warm start of prior key `key`.
    pub fn prior_claim(&self, key: &str) -> PathBuf {
        self.root.join(CACHE_DIR).join(format!("prior-{key}.{CLAIM_EXT}"))
    }

    /// The claim of the process updating `cost.json` along the LM axis (read, merge, write).
    pub fn cost_claim(&self) -> PathBuf {
        self.root.join(CACHE_DIR).join(format!("cost.{CLAIM_EXT}"))
    }

    /// `slurm/`: scripts, job records and logs.
    pub fn slurm(&self) -> PathBuf {
        self.join(SLURM_DIR)
    }

    /// `slurm/logs/`.
    pub fn slurm_logs(&self) -> PathBuf {
        self.slurm().join("logs")
    }

    /// One point's training curve.
    pub fn curve(&self, key: &str) -> PathBuf {
        self.root.join(CURVES_DIR).join(format!("{key}.parquet"))
    }

    /// One point's needle-grid cells.
    pub fn niah_point(&self, key: &str) -> PathBuf {
        self.root.join(NIAH_DIR).join(format!("{key}.parquet"))
    }

    /// The cached text-only warm start of prior key `key`.
    pub fn prior(&self, key: &str) -> PathBuf {
        self.root.join(CACHE_DIR).join(format!("prior-{key}.safetensors"))
    }

    /// `cache/reduced/`: one file per (video, reduction), see `features::cache`.
    pub fn reduced_cache(&self) -> PathBuf {
        self.root.join(CACHE_DIR).join(REDUCED_DIR)
    }

    /// The blind baseline of the LM labelled `lm` on the LM axis (`None`: the sweep's one LM).
    pub fn blind(&self, lm: Option<&str>) -> PathBuf {
        match lm {
            None => self.join(BLIND_FILE),
            Some(label) => self.join(&format!("blind-{label}.parquet")),
        }
    }

    /// The figures' directory.
    pub fn plots(&self) -> PathBuf {
        self.join(PLOTS_DIR)
    }

    /// The directories where an interrupted atomic write may leave a temp file.
    pub fn temp_file_dirs(&self) -> [PathBuf; 6] {
        [self.join(POINTS_DIR), self.join(CURVES_DIR), self.join(NIAH_DIR), self.root.clone(), self.join(CACHE_DIR), self.reduced_cache()]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_sit_under_the_root() {
        let d = RunDir::of(Path::new("results"), "quick");
        assert_eq!(d.point("abc"), Path::new("results/quick/points/abc.parquet"));
        assert_eq!(d.curve("abc"), Path::new("results/quick/curves/abc.parquet"));
        assert_eq!(d.niah_point("abc"), Path::new("results/quick/niah/abc.parquet"));
        assert_eq!(d.prior("k"), Path::new("results/quick/cache/prior-k.safetensors"));
        assert_eq!(d.reduced_cache(), Path::new("results/quick/cache/reduced"));
        assert_eq!(d.claim("abc"), Path::new("results/quick/points/abc.claim"));
        assert_eq!(d.failed("abc"), Path::new("results/quick/points/abc.failed"));
        assert_eq!(d.slurm_logs(), Path::new("results/quick/slurm/logs"));
        assert_eq!(d.join(OPTIMUM_FILE), Path::new("results/quick/optimum.json"));
        assert_eq!(d.blind(None), Path::new("results/quick/blind.parquet"));
        assert_eq!(d.cost_claim(), Path::new("results/quick/cache/cost.claim"));
        assert_eq!(d.blind(Some("1x8-h2-c40")), Path::new("results/quick/blind-1x8-h2-c40.parquet"));
    }
}
