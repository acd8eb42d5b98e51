//! The text of the two batch scripts of a submission.
//!
//! The array's script runs `vislaw sweep` in the background and waits on it, so that the
//! warning signal Slurm sends the batch shell before the time limit (`--signal=B:USR1@S`)
//! is handled at once: the shell passes it to vislaw, which finishes and saves the points in
//! flight and takes no new one, then the shell requeues its task (`--requeue`), which later
//! resumes the points still missing. A task killed outright loses only its points in flight
//! (their claims go with the process; nothing half-written is ever read as a result).
use crate::config::Config;
use crate::rundir::RunDir;
use crate::slurm::{parse_time, SlurmOptions};
use std::path::Path;

/// Seconds before the time limit the warning signal comes, at most.
const SIGNAL_LEAD_S: u64 = 300;

/// A word for a POSIX shell, single-quoted when it needs to be.
pub fn quote(word: &str) -> String {
    if !word.is_empty() && word.chars().all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c)) {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// How long before the limit the task is warned: 300 s, or a fifth of a shorter limit.
pub fn signal_lead(time: Option<&str>) -> u64 {
    match time.and_then(|t| parse_time(t).ok()) {
        Some(limit) => SIGNAL_LEAD_S.min((limit / 5).max(1)),
        None => SIGNAL_LEAD_S,
    }
}

/// `#SBATCH` lines both scripts share: where to run and on whose account.
fn placement(opts: &SlurmOptions) -> String {
    let mut out = String::new();
    for (flag, value) in [("partition", &opts.partition), ("account", &opts.account), ("qos", &opts.qos), ("time", &opts.time)] {
        if let Some(v) = value {
            out += &format!("#SBATCH --{flag}={v}\n");
        }
    }
    out
}

fn extra(opts: &SlurmOptions) -> String {
    opts.sbatch_args.iter().map(|a| format!("#SBATCH {a}\n")).collect()
}

/// `sweep.sbatch`: an array of `tasks` tasks, task `i` training shard `i` of `points_file`.
pub fn sweep_script(cfg: &Config, opts: &SlurmOptions, run: &RunDir, points_file: &Path, tasks: usize) -> String {
    let logs = run.slurm_logs();
    let mut s = String::from("#!/bin/bash\n");
    s += &format!("#SBATCH --job-name=vislaw-{}\n", cfg.name);
    let limit = opts.array_parallelism.map(|k| format!("%{k}")).unwrap_or_default();
    s += &format!("#SBATCH --array=0-{}{limit}\n", tasks - 1);
    s += &format!("#SBATCH --output={}\n", logs.join("sweep-%A_%a.log").display());
    s += "#SBATCH --open-mode=append\n#SBATCH --requeue\n";
    s += &format!("#SBATCH --signal=B:USR1@{}\n", signal_lead(opts.time.as_deref()));
    s += &placement(opts);
    if let Some(g) = opts.gpus_per_task {
        s += &format!("#SBATCH --gpus-per-task={g}\n");
    }
    if let Some(c) = opts.cpus_per_task {
        s += &format!("#SBATCH --cpus-per-task={c}\n");
    }
    if let Some(m) = &opts.mem {
        s += &format!("#SBATCH --mem={m}\n");
    }
    s += &extra(opts);
    s += &format!("# vislaw: run '{}', {tasks} task(s), each a shard of {}\n", cfg.name, points_file.display());
    s += "set -u\n";
    s += &format!("log={}/sweep-\"${{SLURM_ARRAY_JOB_ID}}_${{SLURM_ARRAY_TASK_ID}}\".log\n", quote(&logs.display().to_string()));
    s += "echo \"vislaw: task ${SLURM_ARRAY_TASK_ID} on $(hostname), restart ${SLURM_RESTART_COUNT:-0}, $(date -u +%FT%TZ)\"\n";
    let mut cmd = vec![
        quote(&opts.exe.display().to_string()),
        "sweep".into(),
        quote(&opts.config.display().to_string()),
        "--results".into(),
        quote(&opts.results_root.display().to_string()),
        "--points".into(),
        quote(&points_file.display().to_string()),
        "--shard".into(),
        format!("auto/{tasks}"),
        "--device".into(),
        quote(&opts.device),
        "--no-analysis".into(),
    ];
    if let Some(c) = opts.cpus_per_task {
        cmd.extend(["--jobs".into(), c.to_string()]);
    }
    s += &format!("VISLAW_LOG=\"$log\" {} &\n", cmd.join(" "));
    s += "child=$!\n";
    s += "on_usr1() {\n";
    s += "  echo \"vislaw: USR1 before the time limit: saving the points in flight, then requeueing\"\n";
    s += "  kill -USR1 \"$child\" 2>/dev/null\n";
    s += "  wait \"$child\"\n";
    s += "  scontrol requeue \"${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}\"\n";
    s += "  exit 0\n";
    s += "}\n";
    s += "trap on_usr1 USR1\n";
    s += "wait \"$child\"\n";
    s
}

/// `analyze.sbatch`: `vislaw analyze RUN`, submitted with `afterany` on the array.
pub fn analyze_script(cfg: &Config, opts: &SlurmOptions, run: &RunDir) -> String {
    let mut s = String::from("#!/bin/bash\n");
    s += &format!("#SBATCH --job-name=vislaw-{}-analyze\n", cfg.name);
    s += &format!("#SBATCH --output={}\n", run.slurm_logs().join("analyze-%j.log").display());
    s += "#SBATCH --open-mode=append\n";
    s += &placement(opts);
    s += &extra(opts);
    s += "set -u\n";
    s += &format!("exec {} analyze {}\n", quote(&opts.exe.display().to_string()), quote(&run.root().display().to_string()));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_words_are_quoted_only_when_needed() {
        assert_eq!(quote("/a/b-c.yaml"), "/a/b-c.yaml");
        assert_eq!(quote("a b"), "'a b'");
        assert_eq!(quote("it's"), r"'it'\''s'");
        assert_eq!(quote(""), "''");
    }

    #[test]
    fn the_warning_comes_before_a_short_limit() {
        assert_eq!(signal_lead(None), 300);
        assert_eq!(signal_lead(Some("10")), 120);
        assert_eq!(signal_lead(Some("2-00:00:00")), 300);
    }
}
