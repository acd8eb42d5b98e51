//! Many `vislaw sweep` processes on one results directory, without a scheduler: shards and
//! whole copies run at once, some are SIGKILLed at random moments and restarted, one stops
//! on SIGUSR1; every point ends present exactly once, with the rows of a clean run, and no
//! temp file, claim or failure record is left. Failure records and `vislaw status` too.
use polars::prelude::*;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The tiny sweep the CLI tests share (tests/data/tiny.yaml): 8 points, seconds each.
const TINY: &str = include_str!("data/tiny.yaml");

fn command(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_vislaw"));
    c.args(args).env("CUDA_VISIBLE_DEVICES", "").env_remove("SLURM_ARRAY_TASK_ID").env_remove("JOB_COMPLETION_INDEX");
    c
}

fn vislaw(args: &[&str]) -> Output {
    command(args).output().expect("binary runs")
}

fn write_config(dir: &Path, text: &str) -> PathBuf {
    let p = dir.join("sweep.yaml");
    std::fs::write(&p, text).unwrap();
    p
}

fn sweep_args<'a>(cfg: &'a Path, results: &'a Path, extra: &[&'a str]) -> Vec<&'a str> {
    let mut a = vec!["sweep", cfg.to_str().unwrap(), "--device", "cpu", "--results", results.to_str().unwrap(), "--jobs", "1"];
    a.extend_from_slice(extra);
    a
}

fn spawn(cfg: &Path, results: &Path, extra: &[&str]) -> Child {
    command(&sweep_args(cfg, results, extra)).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap()
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

/// Every file under `dir` whose name starts with `.tmp-`, or ends with `.claim` or `.failed`.
fn leftovers(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let (p, name) = (e.path(), e.file_name().to_string_lossy().into_owned());
            if p.is_dir() {
                stack.push(p);
            } else if name.starts_with(".tmp-") || name.ends_with(".claim") || name.ends_with(".failed") {
                out.push(p);
            }
        }
    }
    out
}

/// The point keys of the config, from the dry run's first column.
fn point_keys(cfg: &Path) -> Vec<String> {
    let out = vislaw(&["sweep", cfg.to_str().unwrap(), "--dry-run"]);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .skip(1)
        .filter(|l| l.ends_with("pending") || l.ends_with("done"))
        .map(|l| l.split_whitespace().next().unwrap().to_string())
        .collect()
}

fn finished_lines(stderr: &[u8]) -> usize {
    String::from_utf8_lossy(stderr).lines().filter(|l| l.starts_with('[') && l.contains("loss")).count()
}

/// A clean single-process sweep's results, to compare with.
fn clean_rows(d: &Path, cfg: &Path) -> DataFrame {
    let clean = d.join("clean");
    let out = vislaw(&sweep_args(cfg, &clean, &["--no-analysis"]));
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    read(&clean.join("tiny/results.parquet"))
}

#[test]
fn concurrent_shards_and_whole_copies_train_every_point_once() {
    let d = tempfile::tempdir().unwrap();
    let cfg = write_config(d.path(), TINY);
    let results = d.path().join("r");
    // Three shards and two whole copies of the sweep (`0/1`), all at once.
    let children: Vec<Child> = ["0/3", "1/3", "2/3", "0/1", "0/1"].iter().map(|s| spawn(&cfg, &results, &["--shard", s])).collect();
    let outputs: Vec<Output> = children.into_iter().map(|c| c.wait_with_output().unwrap()).collect();
    let mut trained = 0;
    for o in &outputs {
        let stdout = String::from_utf8_lossy(&o.stdout);
        assert!(o.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&o.stderr));
        let n: usize = stdout.split("trained ").nth(1).and_then(|r| r.split_whitespace().next()).unwrap().parse().unwrap();
        trained += n;
    }
    assert_eq!(trained, 8, "each of the 8 points trained by exactly one process");
    assert_eq!(outputs.iter().map(|o| finished_lines(&o.stderr)).sum::<usize>(), 8);
    // A sharded sweep leaves merging to `vislaw analyze`.
    let run = results.join("tiny");
    assert!(!run.join("results.parquet").exists());
    let out = vislaw(&["analyze", run.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("held-out loss") && (said.contains("analysis skipped") || said.contains("fits.json")), "{said}");
    let rows = read(&run.join("results.parquet"));
    let clean = clean_rows(d.path(), &cfg);
    assert_eq!(keys(&rows), keys(&clean));
    for col in ["loss", "accuracy", "train_loss_final"] {
        assert_eq!(bits(&rows, col), bits(&clean, col), "{col}");
    }
    assert_eq!(leftovers(&run), Vec::<PathBuf>::new());
}

/// Until a `.claim` file sits in `points` (a point in flight) or every child has exited.
fn wait_for_claim(points: &Path, children: &mut [Child]) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline && children.iter_mut().any(|c| c.try_wait().unwrap().is_none()) {
        let claimed = std::fs::read_dir(points).is_ok_and(|r| r.flatten().any(|e| e.file_name().to_string_lossy().ends_with(".claim")));
        if claimed {
            return;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

#[test]
fn shards_killed_at_random_moments_and_restarted_end_with_every_point_once() {
    let d = tempfile::tempdir().unwrap();
    // Points of ≈ 0.1 s, so that a kill finds one in flight.
    let cfg = write_config(d.path(), &TINY.replace("steps: 6,", "steps: 30,"));
    let results = d.path().join("r");
    let run = results.join("tiny");
    let seed = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64;
    eprintln!("kill schedule seed {seed}");
    let mut rng = seed | 1;
    let mut next = move |n: u64| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng % n
    };
    let shards = ["0/2", "1/2", "0/1"];
    let mut kills = 0;
    let deadline = Instant::now() + Duration::from_secs(240);
    for round in 0.. {
        assert!(Instant::now() < deadline, "no end after {round} rounds");
        let mut children: Vec<Child> = shards.iter().map(|s| spawn(&cfg, &results, &["--shard", s])).collect();
        // Kill up to two of them at random moments of the first rounds, and go on until a
        // kill has landed: on a fast machine a fixed delay can outlast the whole sweep, so the
        // first kill of a round waits for a point to be in flight (a claim on disk), and each
        // victim is drawn from the processes still running.
        if round < 4 || kills == 0 {
            for i in 0..=next(2) {
                if i == 0 {
                    wait_for_claim(&run.join("points"), &mut children);
                }
                std::thread::sleep(Duration::from_millis(next(if i == 0 { 300 } else { 1500 })));
                let running: Vec<usize> = (0..children.len()).filter(|&c| children[c].try_wait().unwrap().is_none()).collect();
                if !running.is_empty() {
                    children[running[next(running.len() as u64) as usize]].kill().unwrap();
                    kills += 1;
                }
            }
        }
        let mut all_ok = true;
        for c in children {
            let o = c.wait_with_output().unwrap();
            all_ok &= o.status.success();
        }
        let done = std::fs::read_dir(run.join("points")).map_or(0, |r| r.flatten().filter(|e| e.file_name().to_string_lossy().ends_with(".parquet")).count());
        if all_ok && done == 8 {
            if kills > 0 {
                break;
            }
            // Every process finished before a kill landed: start over in an empty directory.
            std::fs::remove_dir_all(&run).unwrap();
        }
    }
    eprintln!("{kills} kill(s) landed");
    assert!(kills > 0, "the schedule killed nothing");
    // A process alone in the directory removes what the killed writers left.
    let out = vislaw(&["analyze", run.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let rows = read(&run.join("results.parquet"));
    let mut k = keys(&rows);
    k.sort();
    k.dedup();
    assert_eq!(k.len(), 8, "every point exactly once");
    assert_eq!(rows.height(), 8);
    let clean = clean_rows(d.path(), &cfg);
    assert_eq!(bits(&rows, "loss"), bits(&clean, "loss"));
    assert_eq!(leftovers(&run), Vec::<PathBuf>::new(), "stray temp files, claims or failure records");
}

#[test]
fn sigusr1_stops_after_the_point_in_flight_is_saved() {
    let d = tempfile::tempdir().unwrap();
    // Points long enough (≈ 0.5 s each) that the signal comes while one is in flight.
    let cfg = write_config(d.path(), &TINY.replace("steps: 6,", "steps: 120,"));
    let results = d.path().join("r");
    let points = results.join("tiny/points");
    let child = spawn(&cfg, &results, &["--shard", "0/1"]);
    let deadline = Instant::now() + Duration::from_secs(120);
    while std::fs::read_dir(&points).map_or(0, |r| r.flatten().filter(|e| e.file_name().to_string_lossy().ends_with(".parquet")).count()) < 1 {
        assert!(Instant::now() < deadline, "no progress");
        std::thread::sleep(Duration::from_millis(10));
    }
    let pid = child.id().to_string();
    assert!(Command::new("kill").args(["-USR1", &pid]).status().unwrap().success());
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("stopped on SIGUSR1"), "{stdout}");
    let saved = std::fs::read_dir(&points).unwrap().flatten().filter(|e| e.file_name().to_string_lossy().ends_with(".parquet")).count();
    assert!((1..8).contains(&saved), "{saved} points saved");
    assert_eq!(finished_lines(&out.stderr), saved, "every point it started was saved");
    assert_eq!(leftovers(&results.join("tiny")), Vec::<PathBuf>::new());
    let again = vislaw(&sweep_args(&cfg, &results, &["--no-analysis"]));
    let stdout = String::from_utf8_lossy(&again.stdout);
    assert!(stdout.contains(&format!("trained {} point(s), {saved} already finished", 8 - saved)), "{stdout}");
}

#[test]
fn a_failing_point_is_recorded_shown_by_status_and_retried_while_the_others_finish() {
    let d = tempfile::tempdir().unwrap();
    let cfg = write_config(d.path(), TINY);
    let results = d.path().join("r");
    let run = results.join("tiny");
    let keys_all = point_keys(&cfg);
    assert_eq!(keys_all.len(), 8);
    let bad = &keys_all[3];
    let out = command(&sweep_args(&cfg, &results, &[])).env("VISLAW_TEST_FAIL_POINTS", bad).env("VISLAW_LOG", "/logs/task-3.log").output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("1 point(s) failed") && err.contains("failure injected"), "{err}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("trained 7 point(s)"));
    let record: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(run.join(format!("points/{bad}.failed"))).unwrap()).unwrap();
    assert!(record["message"].as_str().unwrap().contains("failure injected"), "{record}");
    assert_eq!(record["log"], "/logs/task-3.log");

    let status = vislaw(&["status", run.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(status.status.success(), "{}", String::from_utf8_lossy(&status.stderr));
    assert!(text.contains("8 points — 7 done, 0 running, 1 failed, 0 pending"), "{text}");
    assert!(text.contains(bad.as_str()) && text.contains("failure injected") && text.contains("/logs/task-3.log"), "{text}");

    // The analysis runs on the rest.
    let out = vislaw(&["analyze", run.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("analysing 7 of 8 points"));
    assert_eq!(read(&run.join("results.parquet")).height(), 7);

    // A rerun retries it; its success removes the record.
    let out = vislaw(&sweep_args(&cfg, &results, &["--no-analysis"]));
    assert!(String::from_utf8_lossy(&out.stdout).contains("trained 1 point(s), 7 already finished"), "{}", String::from_utf8_lossy(&out.stdout));
    assert!(!run.join(format!("points/{bad}.failed")).exists());
    let text = String::from_utf8_lossy(&vislaw(&["status", run.to_str().unwrap()]).stdout).into_owned();
    assert!(text.contains("8 done, 0 running, 0 failed, 0 pending"), "{text}");
}

#[test]
fn bad_shards_and_point_lists_are_one_line_errors_exit_2() {
    let d = tempfile::tempdir().unwrap();
    let cfg = write_config(d.path(), TINY);
    let results = d.path().join("r");
    for (shard, needle) in [("3/3", "not below"), ("auto/2", "SLURM_ARRAY_TASK_ID"), ("a/b", "not a whole number")] {
        let out = vislaw(&sweep_args(&cfg, &results, &["--shard", shard]));
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{shard}: {err}");
        assert!(err.starts_with("error: --shard: ") && err.contains(needle) && err.trim().lines().count() == 1, "{shard}: {err}");
    }
    let list = d.path().join("points.txt");
    std::fs::write(&list, "nosuchkey\n").unwrap();
    let out = vislaw(&sweep_args(&cfg, &results, &["--points", list.to_str().unwrap()]));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("points.txt: line 1: 'nosuchkey' is not a point"), "{err}");
    assert!(!results.exists(), "nothing written");
    // auto/N reads the Slurm array index; a points list restricts the sweep to its keys.
    let keys_all = point_keys(&cfg);
    std::fs::write(&list, format!("{}\n{}\n", keys_all[0], keys_all[5])).unwrap();
    let out =
        command(&sweep_args(&cfg, &results, &["--points", list.to_str().unwrap(), "--shard", "auto/2"])).env("SLURM_ARRAY_TASK_ID", "1").output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("shard 1/2: trained 1 point(s)"), "{}", String::from_utf8_lossy(&out.stdout));
}
