//! `vislaw slurm` against a real single-node Slurm (slurmctld, slurmd and munge from
//! Debian's packages, started by `scripts/slurm-local.sh` in a temp directory and stopped at
//! the end even when a check fails): the array's rows are bitwise a local sweep's; a
//! cancelled task's points are resubmitted, and only those; a failing point shows in
//! `vislaw status` while the analysis runs on the rest. The dry-run packing needs no cluster.
//! Skipped, saying so, only where `sbatch` is missing and cannot be installed.
use polars::prelude::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// The tiny sweep the CLI tests share (tests/data/tiny.yaml): 8 points, seconds each.
const TINY: &str = include_str!("data/tiny.yaml");

fn write_config(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn read(path: &Path) -> DataFrame {
    ParquetReader::new(std::fs::File::open(path).unwrap()).finish().unwrap()
}

fn bits(df: &DataFrame, col: &str) -> Vec<u64> {
    df.column(col).unwrap().f64().unwrap().into_no_null_iter().map(f64::to_bits).collect()
}

fn keys(df: &DataFrame) -> Vec<String> {
    df.column("key").unwrap().str().unwrap().iter().map(|k| k.unwrap().to_string()).collect()
}

fn text(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

/// The local cluster, stopped when dropped (a failed assertion included).
struct Cluster {
    dir: tempfile::TempDir,
    conf: PathBuf,
    port: u16,
}

impl Cluster {
    /// Starts the cluster, or `None` (with the reason printed) where Slurm cannot be had.
    fn start() -> Option<Cluster> {
        let dir = tempfile::Builder::new().prefix("vislaw-slurm-").tempdir().unwrap();
        // Two free ports in a row for slurmctld and slurmd.
        let port = (0..50)
            .find_map(|_| {
                let a = std::net::TcpListener::bind("127.0.0.1:0").ok()?;
                let p = a.local_addr().ok()?.port();
                std::net::TcpListener::bind(("127.0.0.1", p.checked_add(1)?)).ok().map(|_| p)
            })
            .expect("free ports");
        let out = Command::new(script()).args(["start", dir.path().to_str().unwrap()]).env("SLURM_LOCAL_PORT", port.to_string()).output().unwrap();
        let all = text(&out);
        if !out.status.success() && (all.contains("cannot install them") || all.contains("cannot start a cluster here")) {
            eprintln!("SKIPPED: the Slurm tests need sbatch: {}", all.trim());
            return None;
        }
        assert!(out.status.success(), "slurm-local.sh start failed: {all}");
        let conf = dir.path().join("slurm.conf");
        Some(Cluster { dir, conf, port })
    }

    fn vislaw(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut c = Command::new(env!("CARGO_BIN_EXE_vislaw"));
        c.args(args).env("SLURM_CONF", &self.conf).env("CUDA_VISIBLE_DEVICES", "").env_remove("VISLAW_TEST_FAIL_POINTS");
        for (k, v) in env {
            c.env(k, v);
        }
        c.output().unwrap()
    }

    fn slurm(&self, cfg: &Path, results: &Path, extra: &[&str], env: &[(&str, &str)]) -> (String, Vec<String>) {
        let mut args = vec!["slurm", cfg.to_str().unwrap(), "--results", results.to_str().unwrap(), "--device", "cpu", "--cpus-per-task", "1"];
        args.extend_from_slice(extra);
        let out = self.vislaw(&args, env);
        let all = text(&out);
        assert!(out.status.success(), "vislaw slurm failed: {all}");
        let ids = all
            .lines()
            .filter_map(|l| l.strip_prefix("submitted array job "))
            .flat_map(|l| {
                let array = l.split_whitespace().next().unwrap().to_string();
                let analysis = l.split("analysis job ").nth(1).unwrap().split_whitespace().next().unwrap().to_string();
                [array, analysis]
            })
            .collect();
        (all, ids)
    }

    fn cmd(&self, program: &str, args: &[&str]) -> Output {
        Command::new(program).args(args).env("SLURM_CONF", &self.conf).output().unwrap()
    }

    /// Jobs of `ids` still queued or running.
    fn active(&self, ids: &[String]) -> String {
        let out = self.cmd("squeue", &["-h", "-j", &ids.join(","), "-t", "PD,R,CG,CF,RQ,RS,S,RH,RF,SO,SE", "-o", "%i %T"]);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn wait(&self, ids: &[String], limit: Duration) {
        let deadline = Instant::now() + limit;
        while !self.active(ids).trim().is_empty() {
            assert!(Instant::now() < deadline, "jobs {ids:?} still active: {}", self.active(ids));
            std::thread::sleep(Duration::from_millis(300));
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let out = Command::new(script()).args(["stop", self.dir.path().to_str().unwrap()]).env("SLURM_LOCAL_PORT", self.port.to_string()).output();
        if let Ok(o) = out {
            if !o.status.success() {
                eprintln!("slurm-local.sh stop: {}", text(&o));
            }
        }
    }
}

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/slurm-local.sh")
}

fn log_text(run: &Path) -> String {
    let logs = run.join("slurm/logs");
    std::fs::read_dir(&logs)
        .map_or(String::new(), |r| r.flatten().map(|e| std::fs::read_to_string(e.path()).unwrap_or_default()).collect::<Vec<_>>().join("\n"))
}

#[test]
fn slurm_arrays_match_a_local_sweep_resume_after_scancel_and_record_failures() {
    let Some(cluster) = Cluster::start() else { return };
    let d = tempfile::tempdir().unwrap();
    let cfg = write_config(d.path(), "tiny.yaml", TINY);

    // 1. The array's rows are bitwise those of a local sweep.
    let local = d.path().join("local");
    let out = cluster.vislaw(&["sweep", cfg.to_str().unwrap(), "--device", "cpu", "--results", local.to_str().unwrap(), "--no-analysis"], &[]);
    assert!(out.status.success(), "{}", text(&out));
    let want = read(&local.join("tiny/results.parquet"));
    let results = d.path().join("slurm");
    let run = results.join("tiny");
    let (said, ids) = cluster.slurm(&cfg, &results, &["--points-per-task", "4"], &[]);
    assert!(said.contains("8 pending point(s) of 8 in 2 task(s)"), "{said}");
    assert_eq!(ids.len(), 2, "{said}");
    cluster.wait(&ids, Duration::from_secs(150));
    assert!(run.join("results.parquet").exists(), "the analysis job merged the rows: {}", log_text(&run));
    let got = read(&run.join("results.parquet"));
    assert_eq!(keys(&got), keys(&want));
    for col in ["loss", "loss_se", "accuracy", "train_loss_final", "acc_needle"] {
        assert_eq!(bits(&got, col), bits(&want, col), "{col}");
    }
    let (said, ids) = cluster.slurm(&cfg, &results, &[], &[]);
    assert!(said.contains("all 8 points of run 'tiny' are done; nothing submitted") && ids.is_empty(), "{said}");
    let status = cluster.vislaw(&["status", run.to_str().unwrap()], &[]);
    let st = text(&status);
    assert!(st.contains("8 done, 0 running, 0 failed, 0 pending") && st.contains("COMPLETED"), "{st}");

    // 2. scancel of a running task, then the same command: only the missing points go again.
    // Points of ≈ 0.2 s rather than a few ms, so that the task squeue shows running is still
    // running when scancel reaches it, on a fast machine too.
    let small = write_config(
        d.path(),
        "small.yaml",
        &TINY.replace("name: tiny", "name: small").replace("spatial: [pool, sample]", "spatial: [pool]").replace("steps: 6,", "steps: 40,"),
    );
    let results2 = d.path().join("cancel");
    let run2 = results2.join("small");
    let (_, ids) = cluster.slurm(&small, &results2, &["--points-per-task", "2"], &[]);
    let array = &ids[0];
    let deadline = Instant::now() + Duration::from_secs(60);
    let running = loop {
        let out = cluster.cmd("squeue", &["-h", "-j", array, "-t", "R", "-o", "%i"]);
        if let Some(task) = String::from_utf8_lossy(&out.stdout).lines().next().map(|t| t.trim().to_string()) {
            break task;
        }
        assert!(Instant::now() < deadline, "no task of {array} ever ran");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(cluster.cmd("scancel", &[&running]).status.success());
    cluster.wait(&ids, Duration::from_secs(120));
    let state = cluster.cmd("scontrol", &["show", "job", &running]);
    assert!(String::from_utf8_lossy(&state.stdout).contains("JobState=CANCELLED"), "{}", String::from_utf8_lossy(&state.stdout));
    let done_before = std::fs::read_dir(run2.join("points")).unwrap().flatten().filter(|e| e.file_name().to_string_lossy().ends_with(".parquet")).count();
    let (said, ids) = cluster.slurm(&small, &results2, &["--points-per-task", "2"], &[]);
    if done_before < 4 {
        assert!(said.contains(&format!("{} pending point(s) of 4", 4 - done_before)), "{said}");
        cluster.wait(&ids, Duration::from_secs(120));
    }
    let rows = read(&run2.join("results.parquet"));
    let mut k = keys(&rows);
    k.sort();
    k.dedup();
    assert_eq!((rows.height(), k.len()), (4, 4), "every point once");
    let (said, _) = cluster.slurm(&small, &results2, &[], &[]);
    assert!(said.contains("nothing submitted"), "{said}");

    // 3. A failing point: recorded, shown by status with its message, the analysis on the rest.
    let results3 = d.path().join("fail");
    let run3 = results3.join("small");
    let dry = cluster.vislaw(&["sweep", small.to_str().unwrap(), "--dry-run"], &[]);
    let bad = String::from_utf8_lossy(&dry.stdout).lines().nth(2).unwrap().split_whitespace().next().unwrap().to_string();
    let (_, ids) = cluster.slurm(&small, &results3, &["--points-per-task", "2"], &[("VISLAW_TEST_FAIL_POINTS", &bad)]);
    cluster.wait(&ids, Duration::from_secs(120));
    let st = text(&cluster.vislaw(&["status", run3.to_str().unwrap()], &[]));
    assert!(st.contains("4 points — 3 done, 0 running, 1 failed, 0 pending"), "{st}");
    assert!(st.contains(&bad) && st.contains("failure injected") && st.contains("slurm/logs/sweep-"), "{st}");
    assert!(st.contains("FAILED"), "the failing task's job state: {st}");
    assert_eq!(read(&run3.join("results.parquet")).height(), 3, "the analysis ran on the rest: {}", log_text(&run3));
    assert!(log_text(&run3).contains("analysing 3 of 4 points"));

    // 4. The warning before a time limit (USR1 to the batch shell, as `--signal=B:USR1@…`
    // sends it): the task saves its point in flight, stops, requeues itself and, restarted,
    // trains the rest.
    let slow = write_config(
        d.path(),
        "slow.yaml",
        &TINY.replace("name: tiny", "name: slow").replace("spatial: [pool, sample]", "spatial: [pool]").replace("steps: 6,", "steps: 120,"),
    );
    let results4 = d.path().join("requeue");
    let run4 = results4.join("slow");
    let (_, ids) = cluster.slurm(&slow, &results4, &["--points-per-task", "4"], &[]);
    let task = format!("{}_0", ids[0]);
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::fs::read_dir(run4.join("points")).map_or(0, |r| r.flatten().filter(|e| e.file_name().to_string_lossy().ends_with(".parquet")).count()) < 1 {
        assert!(Instant::now() < deadline, "no point finished: {}", log_text(&run4));
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(cluster.cmd("scancel", &["--batch", "--signal=USR1", &task]).status.success());
    cluster.wait(&ids, Duration::from_secs(120));
    let logs = log_text(&run4);
    assert!(logs.contains("USR1 before the time limit") && logs.contains("stopped on SIGUSR1"), "{logs}");
    assert!(logs.contains("restart 1"), "the task was requeued and restarted: {logs}");
    let job = String::from_utf8_lossy(&cluster.cmd("scontrol", &["show", "job", &task]).stdout).into_owned();
    assert!(job.contains("Restarts=1") && job.contains("JobState=COMPLETED"), "{job}");
    let rows = read(&run4.join("results.parquet"));
    let mut k = keys(&rows);
    k.sort();
    k.dedup();
    assert_eq!((rows.height(), k.len()), (4, 4), "every point once after the requeue");
}

#[test]
fn dry_run_packs_2500_points_into_arrays_within_the_max_array_size() {
    let d = tempfile::tempdir().unwrap();
    let seeds: Vec<String> = (0..625).map(|s| s.to_string()).collect();
    let text_cfg = TINY.replace("spatial: [pool, sample]", "spatial: [pool]").replace("seeds: [0]", &format!("seeds: [{}]", seeds.join(", ")));
    let cfg = write_config(d.path(), "big.yaml", &text_cfg);
    let results = d.path().join("r");
    for (max, per_task, tasks) in [("1000", 3, 834), ("7", 358, 7), ("2500", 1, 2500)] {
        let out = Command::new(env!("CARGO_BIN_EXE_vislaw"))
            .args(["slurm", cfg.to_str().unwrap(), "--results", results.to_str().unwrap(), "--max-array-size", max, "--dry-run"])
            .output()
            .unwrap();
        let all = text(&out);
        assert!(out.status.success(), "{all}");
        assert!(all.contains(&format!("#SBATCH --array=0-{}\n", tasks - 1)), "{max}: {}", &all[..all.len().min(2000)]);
        assert!(all.contains(&format!("2500 pending point(s) of 2500 in {tasks} task(s) of at most {per_task} point(s)")), "{max}");
        // The table: one row per task, every key exactly once.
        let table: Vec<&str> = all
            .lines()
            .skip_while(|l| !l.trim_start().starts_with("task"))
            .skip(1)
            .take_while(|l| !l.starts_with("dry run"))
            .filter(|l| !l.trim().is_empty())
            .collect();
        assert_eq!(table.len(), tasks);
        let mut all_keys: Vec<&str> = table.iter().flat_map(|l| l.split_whitespace().skip(3)).collect();
        assert_eq!(all_keys.len(), 2500);
        all_keys.sort_unstable();
        all_keys.dedup();
        assert_eq!(all_keys.len(), 2500, "a key in two tasks");
        assert!(table.iter().all(|l| l.split_whitespace().nth(1).unwrap().parse::<usize>().unwrap() <= per_task));
    }
    assert!(!results.exists(), "a dry run writes nothing");
    let out = Command::new(env!("CARGO_BIN_EXE_vislaw"))
        .args(["slurm", cfg.to_str().unwrap(), "--results", results.to_str().unwrap(), "--max-array-size", "1000", "--points-per-task", "1", "--dry-run"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("--points-per-task: 1 point(s) per task make 2500 tasks") && err.trim().lines().count() == 1, "{err}");
}
