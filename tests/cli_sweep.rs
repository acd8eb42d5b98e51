//! End-to-end tests of `vislaw sweep`, `validate` and `reduce` through the binary, and of
//! `vislaw-bench train`.
use polars::prelude::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The tiny sweep the CLI tests share (tests/data/tiny.yaml): 8 points, seconds each.
const TINY: &str = include_str!("data/tiny.yaml");

fn vislaw(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vislaw")).args(args).env("CUDA_VISIBLE_DEVICES", "").output().expect("binary runs")
}

fn vislaw_bench(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vislaw-bench")).args(args).env("CUDA_VISIBLE_DEVICES", "").output().expect("binary runs")
}

fn write_config(dir: &Path, text: &str) -> PathBuf {
    let p = dir.join("sweep.yaml");
    std::fs::write(&p, text).unwrap();
    p
}

fn sweep(config: &Path, results: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["sweep", config.to_str().unwrap(), "--device", "cpu", "--results", results.to_str().unwrap()];
    args.extend_from_slice(extra);
    let out = vislaw(&args);
    assert!(out.status.success(), "sweep failed: {}", String::from_utf8_lossy(&out.stderr));
    out
}

fn read(path: &Path) -> DataFrame {
    ParquetReader::new(std::fs::File::open(path).unwrap()).finish().unwrap()
}

fn column_f64(df: &DataFrame, name: &str) -> Vec<f64> {
    df.column(name).unwrap().f64().unwrap().into_no_null_iter().collect()
}

fn keys(df: &DataFrame) -> Vec<String> {
    df.column("key").unwrap().str().unwrap().iter().map(|k| k.unwrap().to_string()).collect()
}

#[test]
fn sweep_writes_one_row_per_point_and_a_rerun_trains_nothing() {
    let d = tempfile::tempdir().unwrap();
    let cfg = write_config(d.path(), TINY);
    let results = d.path().join("results");
    sweep(&cfg, &results, &[]);
    let run = results.join("tiny");
    let first = read(&run.join("results.parquet"));
    assert_eq!(first.height(), 8);
    for file in ["results.csv", "curves.parquet", "blind.parquet", "config.yaml"] {
        assert!(run.join(file).exists(), "{file} missing");
    }
    let loss = column_f64(&first, "loss");
    assert!(loss.iter().all(|l| l.is_finite() && *l > 0.0));
    for fam in ["needle", "order", "count", "detail", "motion"] {
        assert!(first.column(&format!("acc_{fam}")).is_ok(), "acc_{fam} missing");
    }

    let again = sweep(&cfg, &results, &[]);
    let stdout = String::from_utf8_lossy(&again.stdout);
    assert!(stdout.contains("trained 0 point(s), 8 already finished"), "{stdout}");
    let second = read(&run.join("results.parquet"));
    assert!(first.equals(&second), "a rerun must return the same rows");
}

#[test]
fn same_seed_gives_bitwise_identical_rows_whatever_the_number_of_jobs() {
    let d = tempfile::tempdir().unwrap();
    let cfg = write_config(d.path(), TINY);
    sweep(&cfg, &d.path().join("a"), &["--jobs", "1"]);
    sweep(&cfg, &d.path().join("b"), &["--jobs", "3"]);
    let a = read(&d.path().join("a/tiny/results.parquet"));
    let b = read(&d.path().join("b/tiny/results.parquet"));
    for col in ["loss", "accuracy", "train_loss_final", "acc_needle"] {
        let (x, y) = (column_f64(&a, col), column_f64(&b, col));
        assert_eq!(x.iter().map(|v| v.to_bits()).collect::<Vec<_>>(), y.iter().map(|v| v.to_bits()).collect::<Vec<_>>(), "{col}");
    }
}

#[test]
fn an_interrupted_sweep_resumes_without_duplicates_or_gaps() {
    let d = tempfile::tempdir().unwrap();
    let cfg = write_config(d.path(), TINY);
    let results = d.path().join("results");
    sweep(&cfg, &results, &["--max-points", "3"]);
    let partial = read(&results.join("tiny/results.parquet"));
    assert_eq!(partial.height(), 3);

    // A hard kill mid-sweep: wait for a fourth finished point, then SIGKILL.
    let mut child = Command::new(env!("CARGO_BIN_EXE_vislaw"))
        .args(["sweep", cfg.to_str().unwrap(), "--device", "cpu", "--results", results.to_str().unwrap()])
        .stderr(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let points = results.join("tiny/points");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while std::fs::read_dir(&points).unwrap().filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().ends_with(".parquet")).count() < 4 {
        assert!(std::time::Instant::now() < deadline, "no progress");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();

    sweep(&cfg, &results, &[]);
    let full = read(&results.join("tiny/results.parquet"));
    let mut k = keys(&full);
    assert_eq!(k.len(), 8);
    k.sort();
    k.dedup();
    assert_eq!(k.len(), 8, "duplicate rows");
    // The resumed rows equal a clean run's rows.
    sweep(&cfg, &d.path().join("clean"), &[]);
    let clean = read(&d.path().join("clean/tiny/results.parquet"));
    assert_eq!(column_f64(&full, "loss"), column_f64(&clean, "loss"));
}

#[test]
fn dry_run_lists_points_and_trains_nothing() {
    let d = tempfile::tempdir().unwrap();
    let cfg = write_config(d.path(), TINY);
    let results = d.path().join("results");
    let out = sweep(&cfg, &results, &["--dry-run"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text.matches("pending").count(), 8, "{text}");
    assert!(text.contains("GFLOP"));
    assert!(!results.exists(), "a dry run writes nothing");
}

#[test]
fn bad_configs_fail_with_one_line_exit_2_and_write_nothing() {
    let cases = [
        ("spatial: [pool, sample]", "spatial: [pool, smaple]", "sweep.spatial"),
        ("tokens_per_frame: [1, 4]", "tokens_per_frame: [1, 5]", "reachable: 1, 4, 9, 36"),
        ("frames: [2, 4]", "frames: [2, 9]", "sweep.frames"),
        ("steps: 6", "steps: 0", "train.steps"),
        ("seeds: [0]", "seeds: []", "sweep.seeds"),
        ("seeds: [0]", "seeds: [0]\n  budgets: [1]", "budget"),
        ("name: tiny", "name: tiny\nextra: 1", "extra"),
        ("name: tiny", "name: [tiny", "sweep.yaml"),
    ];
    for (from, to, needle) in cases {
        let d = tempfile::tempdir().unwrap();
        let cfg = write_config(d.path(), &TINY.replace(from, to));
        let results = d.path().join("results");
        let out = vislaw(&["sweep", cfg.to_str().unwrap(), "--results", results.to_str().unwrap()]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{to}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{to}: {err}");
        assert!(err.contains(needle), "{to}: {err}");
        assert!(!results.exists(), "{to}: wrote results");
    }
}

#[test]
fn missing_config_and_missing_feature_files_exit_2() {
    let out = vislaw(&["validate", "/nonexistent/sweep.yaml"]);
    assert_eq!(out.status.code(), Some(2));
    let d = tempfile::tempdir().unwrap();
    let files_cfg = TINY.replace(
        "{generator: synthetic, seed: 11, train_videos: 24, eval_videos: 8,",
        &format!("{{generator: files, dir: {},", d.path().join("feats").display()),
    );
    let cfg = write_config(d.path(), &files_cfg);
    let out = vislaw(&["validate", cfg.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("feats"), "{err}");
}

#[test]
fn reduce_command_pools_a_feature_file() {
    use tch::{Kind, Tensor};
    let d = tempfile::tempdir().unwrap();
    let input = d.path().join("in.safetensors");
    // 4 frames of a 3×3 grid, D = 1; frame f holds (f+1)·(1..9).
    let base = Tensor::arange_start(1, 10, (Kind::Float, tch::Device::Cpu)).reshape([1, 3, 3, 1]);
    let frames = Tensor::cat(&(1..=4).map(|f| &base * f as f64).collect::<Vec<_>>(), 0);
    Tensor::write_safetensors(&[("features", &frames)], &input).unwrap();
    let output = d.path().join("out.safetensors");
    let out = vislaw(&[
        "reduce",
        input.to_str().unwrap(),
        "--spatial",
        "pool",
        "--tokens-per-frame",
        "4",
        "--temporal",
        "pool",
        "--frames",
        "2",
        "-o",
        output.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let t = Tensor::read_safetensors(&output).unwrap().remove(0).1;
    assert_eq!(t.size(), vec![2, 4, 1]);
    let v = Vec::<f32>::try_from(t.reshape([-1])).unwrap();
    // Temporal pool: frames (1,2) → 1.5·base, (3,4) → 3.5·base; spatial pool of base (k = 2,
    // zero padded): 3, 2.25, 3.75, 2.25.
    let want: Vec<f32> = [1.5f32, 3.5].iter().flat_map(|s| [3.0, 2.25, 3.75, 2.25].map(|x| x * s)).collect();
    assert_eq!(v, want);

    let bad = vislaw(&["reduce", input.to_str().unwrap(), "--spatial", "pool", "--tokens-per-frame", "5", "-o", output.to_str().unwrap()]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--tokens-per-frame"));
}

#[test]
fn a_second_sweep_on_a_locked_run_directory_fails_at_once_and_writes_nothing() {
    let d = tempfile::tempdir().unwrap();
    let cfg = write_config(d.path(), TINY);
    let results = d.path().join("results");
    let run = results.join("tiny");
    std::fs::create_dir_all(&run).unwrap();
    // Hold the lock the way a running sweep does: an OS lock on <run>/.lock.
    let holder = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(run.join(".lock")).unwrap();
    holder.try_lock().unwrap();

    let started = std::time::Instant::now();
    let out = vislaw(&["sweep", cfg.to_str().unwrap(), "--device", "cpu", "--results", results.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains(&run.display().to_string()) && err.contains("another vislaw sweep holds this run directory"), "{err}");
    assert!(started.elapsed() < std::time::Duration::from_secs(30), "the second sweep must not wait");
    let left: Vec<String> = std::fs::read_dir(&run).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert_eq!(left, vec![".lock"], "the second sweep wrote nothing");

    // Once the holder lets go, the directory is free again.
    drop(holder);
    sweep(&cfg, &results, &["--max-points", "0"]);
    assert!(run.join("config.yaml").exists());
}

#[test]
fn temporal_twins_at_all_frames_are_trained_once_and_recorded_under_both_strategies() {
    let d = tempfile::tempdir().unwrap();
    let text = TINY
        .replace("frames: [2, 4]", "frames: [8]")
        .replace("spatial: [pool, sample]", "spatial: [pool]")
        .replace("temporal: [sample]", "temporal: [sample, pool]");
    let cfg = write_config(d.path(), &text);
    let out = sweep(&cfg, &d.path().join("r"), &["--no-analysis"]);
    let df = read(&d.path().join("r/tiny/results.parquet"));
    assert_eq!(df.height(), 4, "two M values × two temporal strategies");
    let temporal: Vec<String> = df.column("temporal").unwrap().str().unwrap().iter().map(|t| t.unwrap().to_string()).collect();
    assert_eq!(temporal.iter().filter(|t| *t == "pool").count(), 2);
    let mut keys = keys(&df);
    keys.sort();
    keys.dedup();
    assert_eq!(keys.len(), 4, "each twin keeps its own key");
    let loss = column_f64(&df, "loss");
    let by = |t: &str, m: i64| {
        let ms: Vec<i64> = df.column("tokens_per_frame").unwrap().cast(&DataType::Int64).unwrap().i64().unwrap().into_no_null_iter().collect();
        (0..df.height()).find(|&i| temporal[i] == t && ms[i] == m).map(|i| loss[i]).unwrap()
    };
    assert_eq!(by("sample", 4).to_bits(), by("pool", 4).to_bits());
    // Trained once: a second training would have its own wall time.
    let wall = column_f64(&df, "wall_s");
    let mut distinct: Vec<u64> = wall.iter().map(|w| w.to_bits()).collect();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), 2, "two trainings for four rows: {wall:?}");
    assert_ne!(by("pool", 1).to_bits(), by("pool", 4).to_bits());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.matches("[").count(), 4, "every point is reported: {stderr}");
}

#[test]
fn bench_train_measures_the_quick_model_and_rejects_a_point_beyond_its_context() {
    let out = vislaw_bench(&["train", "--steps", "2", "--repeats", "3", "--warmup", "0", "--skip-torch"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("visual tokens = 32") && stdout.contains("vislaw (tch)"), "{stdout}");
    assert!(stdout.contains("machine: ") && stdout.contains("3 timed repeat(s) per side"), "{stdout}");
    // Every vislaw row (training and the four reducers) is min ≤ median ≤ max, positive and finite.
    let rows: Vec<Vec<f64>> = stdout
        .lines()
        .filter(|l| l.contains("vislaw (tch)"))
        .map(|l| l.split_whitespace().rev().take(3).map(|v| v.parse::<f64>().unwrap()).collect::<Vec<_>>().into_iter().rev().collect())
        .collect();
    assert_eq!(rows.len(), 6, "samples/s, tokens/s and four reducers: {stdout}");
    for r in rows {
        assert!(r.iter().all(|v| v.is_finite() && *v > 0.0) && r[0] <= r[1] && r[1] <= r[2], "{r:?}: {stdout}");
    }
    let out = vislaw_bench(&["train", "--frames", "8", "--steps", "2", "--skip-torch"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("--frames") && stderr.contains("128 visual tokens"), "{stderr}");
}

#[test]
fn an_unknown_device_is_a_one_line_error_naming_the_flag() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), TINY);
    let out = vislaw(&["sweep", cfg.to_str().unwrap(), "--device", "tpu", "--results", dir.path().join("r").to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--device") && err.contains("'tpu'"), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(!dir.path().join("r").exists(), "nothing written");
}

#[test]
fn a_closed_pipe_on_stdout_exits_0_with_nothing_on_stderr() {
    use std::io::Read;
    // 4,000 points of dry run: ≈ 400 kB, far beyond a pipe's buffer, so the writer is
    // still writing when the reader goes away.
    let dir = tempfile::tempdir().unwrap();
    let seeds: Vec<String> = (0..1000).map(|s| s.to_string()).collect();
    let cfg = write_config(dir.path(), &TINY.replace("seeds: [0]", &format!("seeds: [{}]", seeds.join(", "))));
    let mut child = Command::new(env!("CARGO_BIN_EXE_vislaw"))
        .args(["sweep", cfg.to_str().unwrap(), "--dry-run"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = [0u8; 1];
    child.stdout.as_mut().unwrap().read_exact(&mut first).unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "stderr: {}", String::from_utf8_lossy(&out.stderr));
    assert!(out.stderr.is_empty(), "stderr: {}", String::from_utf8_lossy(&out.stderr));
}
