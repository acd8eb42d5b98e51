//! `vislaw slurm CONFIG`: writes the run's `slurm/sweep.sbatch` (a job array over the
//! pending points) and `slurm/analyze.sbatch` (after the array, whatever its tasks' fates),
//! submits both with `sbatch --parsable` and prints the job ids; `--dry-run` prints the
//! scripts and the point-to-task table and submits nothing.
use std::path::PathBuf;
use std::process::Command;
use vislaw::slurm::{self, SlurmOptions};
use vislaw::status::State;
use vislaw::{sweep, Error, Result};

/// Submit a sweep's pending points as a Slurm job array, then its analysis.
#[derive(clap::Args)]
pub struct Args {
    /// The sweep file.
    config: PathBuf,
    /// Parent directory of run directories.
    #[arg(long, default_value = "results")]
    results: PathBuf,
    /// Slurm partition.
    #[arg(long)]
    partition: Option<String>,
    /// Slurm account.
    #[arg(long)]
    account: Option<String>,
    /// Slurm quality of service.
    #[arg(long)]
    qos: Option<String>,
    /// Time limit of each task (HH:MM:SS, D-HH:MM, minutes, …).
    #[arg(long)]
    time: Option<String>,
    /// GPUs per task.
    #[arg(long)]
    gpus_per_task: Option<u32>,
    /// CPUs per task (also the points a task trains at once on CPU).
    #[arg(long)]
    cpus_per_task: Option<u32>,
    /// Memory per task (Slurm's --mem, e.g. 16G).
    #[arg(long)]
    mem: Option<String>,
    /// At most this many tasks at once (--array=…%K).
    #[arg(long, value_name = "K")]
    array_parallelism: Option<usize>,
    /// Points per task [default: 1, or as many as keep the array within --max-array-size].
    #[arg(long, value_name = "P")]
    points_per_task: Option<usize>,
    /// The largest array to submit [default: MaxArraySize of `scontrol show config`, else 1000].
    #[arg(long, value_name = "N")]
    max_array_size: Option<usize>,
    /// A further #SBATCH line for both scripts (repeatable), e.g. --sbatch-arg=--constraint=a100.
    #[arg(long, value_name = "ARG", allow_hyphen_values = true)]
    sbatch_arg: Vec<String>,
    /// The tasks' compute device: auto, cpu or cuda.
    #[arg(long, default_value = "auto")]
    device: String,
    /// Print the scripts and the point-to-task table; submit nothing.
    #[arg(long)]
    dry_run: bool,
}

/// Runs `vislaw slurm`.
pub fn run(args: Args) -> Result<()> {
    if !["auto", "cpu", "cuda"].contains(&args.device.as_str()) {
        return Err(Error::input("--device", format!("'{}' is not one of auto, cpu, cuda", args.device)));
    }
    let cfg = sweep::load(&args.config)?;
    // Every check of the sweep but the memory one: the tasks run on other machines.
    let prepared = sweep::prepare(&cfg, &sweep::Limits { max_memory: Some(u64::MAX), workers: 1 })?;
    let results_root = std::path::absolute(&args.results).map_err(|e| Error::file(&args.results, e))?;
    let run_dir = sweep::run_dir(&cfg, &results_root);
    let pending = slurm::pending(&run_dir, &prepared.points);
    if pending.is_empty() {
        let running = prepared.points.iter().filter(|p| vislaw::status::point_state(&run_dir, p).0 == State::Running).count();
        let n = prepared.points.len();
        if running > 0 {
            outln!("{} of {n} points of run '{}' are done and {running} are being trained; nothing submitted", n - running, cfg.name);
        } else {
            outln!("all {n} points of run '{}' are done; nothing submitted (vislaw analyze {} redoes the analysis)", cfg.name, run_dir.display());
        }
        return Ok(());
    }
    if !args.dry_run {
        warn_if_queued(&run_dir);
    }
    let max_array_size = match args.max_array_size {
        Some(0) => return Err(Error::input("--max-array-size", "must be at least 1")),
        Some(n) => n,
        None => cluster_max_array_size().unwrap_or(slurm::DEFAULT_MAX_ARRAY_SIZE),
    };
    let opts = SlurmOptions {
        partition: args.partition,
        account: args.account,
        qos: args.qos,
        time: args.time,
        gpus_per_task: args.gpus_per_task,
        cpus_per_task: args.cpus_per_task,
        mem: args.mem,
        array_parallelism: args.array_parallelism,
        points_per_task: args.points_per_task,
        max_array_size,
        sbatch_args: args.sbatch_arg,
        exe: std::env::current_exe().map_err(|e| Error::internal(format!("cannot find the vislaw binary: {e}")))?,
        config: std::fs::canonicalize(&args.config).map_err(|e| Error::file(&args.config, e))?,
        results_root,
        device: args.device,
    };
    if opts.array_parallelism == Some(0) {
        return Err(Error::input("--array-parallelism", "must be at least 1"));
    }
    let plan = slurm::plan(&cfg, &pending, &opts).map_err(flag_names)?;
    let summary = format!(
        "{} pending point(s) of {} in {} task(s) of at most {} point(s)",
        pending.len(),
        prepared.points.len(),
        plan.tasks.len(),
        plan.tasks.iter().map(Vec::len).max().unwrap_or(0)
    );
    if args.dry_run {
        outln!("# {}\n{}", plan.sweep_path.display(), plan.sweep_script);
        outln!("# {}\n{}", plan.analyze_path.display(), plan.analyze_script);
        outln!("{summary} (array limit {max_array_size}):\n{}", plan.table());
        outln!("dry run: nothing written, nothing submitted");
        return Ok(());
    }
    plan.write(&cfg)?;
    let array = sbatch(&["--parsable".to_string(), plan.sweep_path.display().to_string()])?;
    slurm::record_job(&plan.run_dir, &array, "sweep", &format!("{} tasks, {}", plan.tasks.len(), plan.points_file.display()))?;
    let analysis = sbatch(&plan.analyze_sbatch_args(&array))?;
    slurm::record_job(&plan.run_dir, &analysis, "analyze", &format!("afterany:{array}"))?;
    outln!("{summary}");
    outln!("submitted array job {array} ({}) and analysis job {analysis} (afterany:{array})", plan.sweep_path.display());
    outln!("logs in {}; progress: vislaw status {}", vislaw::rundir::RunDir::new(&plan.run_dir).slurm_logs().display(), plan.run_dir.display());
    Ok(())
}

/// The library names options in words; the command line names its flags.
fn flag_names(e: Error) -> Error {
    let text = e.to_string();
    let flagged = [("points per task", "--points-per-task"), ("max array size", "--max-array-size"), ("time", "--time")]
        .iter()
        .find_map(|(name, flag)| text.strip_prefix(&format!("{name}: ")).map(|rest| Error::input(flag, rest)));
    flagged.unwrap_or(e)
}

/// Warns when jobs submitted earlier for the run are still queued or running: their points
/// count as pending until they start, so they go again (the claims still train each once).
fn warn_if_queued(run_dir: &std::path::Path) {
    let jobs = vislaw::status::recorded_jobs(run_dir);
    if jobs.is_empty() {
        return;
    }
    let Ok(out) = Command::new("squeue").args(["-h", "-j", &jobs.join(","), "-t", "PD,R,CG,CF,RQ,S", "-o", "%i"]).output() else { return };
    let active: Vec<String> = String::from_utf8_lossy(&out.stdout).split_whitespace().map(str::to_string).collect();
    if !active.is_empty() {
        eprintln!(
            "vislaw: warning: jobs {} of this run are still queued or running; their pending points are submitted again (each is still trained once)",
            active.join(", ")
        );
    }
}

/// `MaxArraySize` of the cluster, when `scontrol` answers.
fn cluster_max_array_size() -> Option<usize> {
    let out = Command::new("scontrol").args(["show", "config"]).output().ok()?;
    slurm::max_array_size(&String::from_utf8_lossy(&out.stdout))
}

/// Submits with `sbatch ARGS`; returns the job id.
fn sbatch(args: &[String]) -> Result<String> {
    let out =
        Command::new("sbatch").args(args).output().map_err(|e| Error::internal(format!("cannot run sbatch ({e}); is Slurm installed and SLURM_CONF set?")))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    match slurm::parsable_job_id(&stdout) {
        Some(id) if out.status.success() => Ok(id),
        _ => Err(Error::internal(format!("sbatch {} failed: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim().replace('\n', "; ")))),
    }
}
