//! End-to-end tests of what a sweep checks and keys on its inputs, through the binary: a
//! point's key covers the feature files and questions it reads, a NaN feature fails by name
//! and writes no row, `validate` fails wherever the sweep would before training, points over
//! the largest budget are skipped and listed alike everywhere, and sizes that cannot fit in
//! memory are refused before anything is written.
use polars::prelude::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use tch::{Kind, Tensor};

/// A `files` sweep of 4 points over a directory `DIR` (replaced at test time).
const FILES: &str = r#"
name: NAME
data: {generator: files, dir: DIR, frames: 4, grid: 4, dim: 8}
model:
  projector: {hidden: 16}
  lm: {layers: 1, heads: 2, width: 16, max_context: 64}
train: {steps: 3, batch: 4, lr: 0.003, warmup: 1, trainable: [projector, lm], prior_steps: 2, log_every: 1, eval_batch: 16}
sweep:
  frames: [2, 4]
  tokens_per_frame: [1, 4]
  spatial: [pool]
  temporal: [sample]
  seeds: [0]
"#;

const SYNTHETIC: &str = r#"
name: synth
data: {generator: synthetic, seed: 11, train_videos: 16, eval_videos: 8, frames: 8, grid: 6, dim: 8}
model:
  projector: {hidden: 16}
  lm: {layers: 1, heads: 2, width: 16, max_context: 80}
train: {steps: 3, batch: 8, lr: 0.003, warmup: 1, trainable: [projector, lm], prior_steps: 2, log_every: 1, eval_batch: 64}
sweep:
  frames: [2, 4]
  tokens_per_frame: [1, 4]
  spatial: [pool]
  temporal: [sample]
  budgets: [4]
  seeds: [0]
"#;

fn vislaw(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vislaw")).args(args).env("CUDA_VISIBLE_DEVICES", "").output().expect("binary runs")
}

fn text(out: &Output) -> (String, String) {
    (String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

fn write(path: &Path, text: &str) -> PathBuf {
    std::fs::write(path, text).unwrap();
    path.to_path_buf()
}

/// Writes video `v` of `[4, 4, 4, 8]` features, each value `value` (NaN-able).
fn write_video(dir: &Path, v: usize, value: f64) {
    let t = Tensor::full([4, 4, 4, 8], value, (Kind::Float, tch::Device::Cpu)) + Tensor::arange(8, (Kind::Float, tch::Device::Cpu)) * 0.1;
    Tensor::write_safetensors(&[("features", &t)], dir.join(format!("v{v}.safetensors"))).unwrap();
}

/// A feature directory of 4 train and 2 eval videos, one question each.
fn write_features(dir: &Path, seed: f64) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("dataset.json"), r#"{"vocab_size": 8}"#).unwrap();
    let mut lines = String::new();
    for v in 0..6 {
        let split = if v < 4 { "train" } else { "eval" };
        lines += &format!(
            "{{\"video\": \"v{v}\", \"split\": \"{split}\", \"family\": \"probe\", \"prompt\": [3, 1], \"options\": [[4, 2], [5, 2]], \"answer\": {}}}\n",
            v % 2
        );
        write_video(dir, v, seed + v as f64);
    }
    std::fs::write(dir.join("questions.jsonl"), lines).unwrap();
}

fn files_config(root: &Path, name: &str, data: &Path) -> PathBuf {
    write(&root.join(format!("{name}.yaml")), &FILES.replace("NAME", name).replace("DIR", data.to_str().unwrap()))
}

/// Runs a sweep that must succeed; returns (trained, already finished) from its summary.
fn sweep_counts(cfg: &Path, results: &Path) -> (usize, usize) {
    let out = vislaw(&["sweep", cfg.to_str().unwrap(), "--device", "cpu", "--no-analysis", "--results", results.to_str().unwrap()]);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "{stderr}");
    let line = stdout.lines().find(|l| l.starts_with("trained ")).unwrap_or_else(|| panic!("{stdout}"));
    let words: Vec<&str> = line.split_whitespace().collect();
    (words[1].parse().unwrap(), words[3].parse().unwrap())
}

fn keys(run: &Path) -> Vec<String> {
    let df = ParquetReader::new(std::fs::File::open(run.join("results.parquet")).unwrap()).finish().unwrap();
    let mut k: Vec<String> = df.column("key").unwrap().str().unwrap().iter().map(|k| k.unwrap().to_string()).collect();
    k.sort();
    k
}

fn assert_one_line_exit_2(out: &Output, needles: &[&str]) {
    let (_, err) = text(out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    for n in needles {
        assert!(err.contains(n), "{n}: {err}");
    }
}

#[test]
fn editing_one_feature_file_or_one_question_retrains_the_points_that_read_it() {
    let d = tempfile::tempdir().unwrap();
    let (a_data, b_data) = (d.path().join("a"), d.path().join("b"));
    write_features(&a_data, 1.0);
    write_features(&b_data, 2.0);
    let (a, b) = (files_config(d.path(), "a", &a_data), files_config(d.path(), "b", &b_data));
    let results = d.path().join("results");
    assert_eq!(sweep_counts(&a, &results), (4, 0));
    assert_eq!(sweep_counts(&b, &results), (4, 0));
    assert_eq!(sweep_counts(&a, &results), (0, 4), "nothing changed: nothing retrains");
    let (a_keys, b_keys) = (keys(&results.join("a")), keys(&results.join("b")));
    // Every point reads every video and question of its directory: re-extracting one video
    // retrains all of a's points, none of b's.
    write_video(&a_data, 2, 7.0);
    assert_eq!(sweep_counts(&a, &results), (4, 0));
    let a_after_video = keys(&results.join("a"));
    assert!(a_after_video.iter().all(|k| !a_keys.contains(k)), "{a_keys:?} vs {a_after_video:?}");
    assert_eq!(sweep_counts(&b, &results), (0, 4));
    assert_eq!(keys(&results.join("b")), b_keys, "another source keeps its keys");
    // Editing one question: the same.
    let q = std::fs::read_to_string(a_data.join("questions.jsonl")).unwrap().replacen("\"answer\": 0", "\"answer\": 1", 1);
    std::fs::write(a_data.join("questions.jsonl"), q).unwrap();
    assert_eq!(sweep_counts(&a, &results), (4, 0));
    let a_after_question = keys(&results.join("a"));
    assert_eq!(a_after_question.len(), 4, "the table holds the current points only");
    assert!(a_after_question.iter().all(|k| !a_after_video.contains(k)));
    assert_eq!(sweep_counts(&a, &results), (0, 4));
}

#[test]
fn a_nan_feature_fails_by_file_in_validate_and_sweep_and_writes_no_row() {
    let d = tempfile::tempdir().unwrap();
    let data = d.path().join("feats");
    write_features(&data, 1.0);
    write_video(&data, 3, f64::NAN);
    let cfg = files_config(d.path(), "nan", &data);
    assert_one_line_exit_2(&vislaw(&["validate", cfg.to_str().unwrap()]), &["v3.safetensors", "NaN", "frame 0"]);
    let results = d.path().join("results");
    let out = vislaw(&["sweep", cfg.to_str().unwrap(), "--device", "cpu", "--results", results.to_str().unwrap()]);
    let (_, err) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    // The sweep's start line, then the error in one line.
    let errors: Vec<&str> = err.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "{err}");
    assert!(errors[0].contains("v3.safetensors") && errors[0].contains("NaN"), "{err}");
    let run = results.join("nan");
    assert!(!run.join("results.parquet").exists());
    let rows = std::fs::read_dir(run.join("points")).map_or(0, |d| d.count());
    assert_eq!(rows, 0, "no point recorded as finished");
}

#[test]
fn validate_fails_wherever_the_sweep_would_before_training() {
    let d = tempfile::tempdir().unwrap();
    let results = d.path().join("results");
    // No eval questions.
    let data = d.path().join("feats");
    write_features(&data, 1.0);
    let q = std::fs::read_to_string(data.join("questions.jsonl")).unwrap().replace("\"eval\"", "\"train\"");
    std::fs::write(data.join("questions.jsonl"), q).unwrap();
    let files = files_config(d.path(), "noeval", &data);
    // Too few frames for the synthetic benchmark's events.
    let short = write(&d.path().join("short.yaml"), &SYNTHETIC.replace("frames: 8,", "frames: 4,").replace("frames: [2, 4]", "frames: [2]"));
    for (cfg, needle) in [(&files, "no questions in split 'eval'"), (&short, "data.frames")] {
        assert_one_line_exit_2(&vislaw(&["validate", cfg.to_str().unwrap()]), &[needle]);
        assert_one_line_exit_2(&vislaw(&["sweep", cfg.to_str().unwrap(), "--dry-run", "--results", results.to_str().unwrap()]), &[needle]);
        assert_one_line_exit_2(&vislaw(&["sweep", cfg.to_str().unwrap(), "--device", "cpu", "--results", results.to_str().unwrap()]), &[needle]);
    }
    assert!(!results.exists(), "nothing is written before validation passes");
}

#[test]
fn points_over_the_largest_budget_are_skipped_and_listed_alike_by_validate_dry_run_and_sweep() {
    let d = tempfile::tempdir().unwrap();
    let cfg = write(&d.path().join("synth.yaml"), SYNTHETIC);
    let results = d.path().join("results");
    let note = "2 point(s) skipped, T·M over the largest budget 4 (sweep.budgets): T×M = 2×4, 4×4";
    let (stdout, stderr) = text(&vislaw(&["validate", cfg.to_str().unwrap()]));
    assert!(stdout.contains("valid — 2 points") && stdout.contains(note), "{stdout}{stderr}");
    let (dry, _) = text(&vislaw(&["sweep", cfg.to_str().unwrap(), "--dry-run", "--results", results.to_str().unwrap()]));
    assert!(dry.contains(note) && dry.matches("pending").count() == 2, "{dry}");
    let out = vislaw(&["sweep", cfg.to_str().unwrap(), "--device", "cpu", "--no-analysis", "--results", results.to_str().unwrap()]);
    let (_, stderr) = text(&out);
    assert!(out.status.success() && stderr.contains(&format!("warning: {note}")), "{stderr}");
    assert_eq!(keys(&results.join("synth")).len(), 2);
    // A budget no point fits stops the run.
    let none = write(&d.path().join("none.yaml"), &SYNTHETIC.replace("budgets: [4]", "budgets: [1]"));
    assert_one_line_exit_2(&vislaw(&["validate", none.to_str().unwrap()]), &["sweep.budgets"]);
}

#[test]
fn sizes_that_cannot_fit_are_refused_with_exit_2_and_no_run_directory() {
    let d = tempfile::tempdir().unwrap();
    let results = d.path().join("results");
    let grid = write(&d.path().join("grid.yaml"), &SYNTHETIC.replace("grid: 6", "grid: 100000").replace("tokens_per_frame: [1, 4]", "tokens_per_frame: [1]"));
    let videos = write(&d.path().join("videos.yaml"), &SYNTHETIC.replace("train_videos: 16", "train_videos: 4000000000"));
    for (cfg, key) in [(&grid, "data.grid"), (&videos, "data.train_videos")] {
        let cfg = cfg.to_str().unwrap();
        assert_one_line_exit_2(&vislaw(&["validate", cfg]), &[key, "of memory", "features of both splits"]);
        assert_one_line_exit_2(&vislaw(&["sweep", cfg, "--device", "cpu", "--results", results.to_str().unwrap()]), &[key]);
        assert_one_line_exit_2(&vislaw(&["sweep", cfg, "--dry-run", "--results", results.to_str().unwrap()]), &[key]);
    }
    // A limit of one's own, and a malformed one.
    let small = write(&d.path().join("small.yaml"), SYNTHETIC).to_str().unwrap().to_string();
    assert_one_line_exit_2(&vislaw(&["validate", &small, "--max-memory", "1K"]), &["max_memory", "1.0 KiB"]);
    assert_one_line_exit_2(&vislaw(&["sweep", &small, "--max-memory", "1K", "--results", results.to_str().unwrap()]), &["max_memory"]);
    assert_one_line_exit_2(&vislaw(&["validate", &small, "--max-memory", "lots"]), &["--max-memory"]);
    assert!(vislaw(&["validate", &small, "--max-memory", "4G"]).status.success());
    assert!(!results.exists(), "nothing is written");
}
