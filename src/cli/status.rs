//! `vislaw status RUN`: points done / running / failed / pending, the failures' messages,
//! and the state of the run's Slurm jobs when `squeue` is on the PATH.
use std::path::PathBuf;
use std::process::Command;
use vislaw::status::State;
use vislaw::Result;

/// Where a run stands.
#[derive(clap::Args)]
pub struct Args {
    /// The run directory (results/<name>).
    run: PathBuf,
}

/// Runs `vislaw status`.
pub fn run(args: Args) -> Result<()> {
    let st = vislaw::status::status(&args.run)?;
    let [done, running, failed, pending] = [State::Done, State::Running, State::Failed, State::Pending].map(|s| st.count(s));
    outln!("run {}: {} points — {done} done, {running} running, {failed} failed, {pending} pending", st.name, st.points.len());
    if failed > 0 {
        outln!("failed:");
        for p in st.with(State::Failed) {
            let f = p.failure.as_ref().expect("a failed point has its record");
            let log = f.log.as_ref().map(|l| format!(" (log {})", l.display())).unwrap_or_default();
            outln!("  {} {}: {}{log}", p.key, p.point, f.message);
        }
    }
    if running > 0 {
        outln!("running:");
        for p in st.with(State::Running) {
            outln!("  {} {}", p.key, p.point);
        }
    }
    if st.torn_files > 0 {
        outln!("{} temp file(s) of interrupted writes (the next process alone in the directory removes them)", st.torn_files);
    }
    if !st.jobs.is_empty() {
        match squeue(&st.jobs) {
            Some(lines) if !lines.trim().is_empty() => outln!("slurm jobs (squeue):\n{}", lines.trim_end()),
            Some(_) => outln!("slurm jobs {}: no longer known to squeue", st.jobs.join(", ")),
            None => outln!("slurm jobs {} (squeue not found: no job states)", st.jobs.join(", ")),
        }
    }
    Ok(())
}

/// `squeue`'s lines for `jobs` (every state it still knows), or `None` when it cannot run.
fn squeue(jobs: &[String]) -> Option<String> {
    let out = Command::new("squeue").args(["-h", "-t", "all", "-j", &jobs.join(","), "-o", "  %i %j %T %r"]).output().ok()?;
    // squeue fails on ids it has forgotten: then nothing is known of them.
    Some(if out.status.success() { String::from_utf8_lossy(&out.stdout).into_owned() } else { String::new() })
}
