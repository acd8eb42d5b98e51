//! End-to-end tests of the literature's reduction strategies through the binary: a tiny
//! equal-budget comparison of every strategy, the needle grid, and validation errors.
use polars::prelude::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const TINY: &str = r#"
name: strategies
data: {generator: synthetic, seed: 11, train_videos: 16, eval_videos: 8, frames: 8, grid: 4, dim: 8}
model:
  projector: {hidden: 16}
  lm: {layers: 1, heads: 2, width: 16, max_context: 80}
train: {steps: 4, batch: 8, lr: 0.003, warmup: 1, weight_decay: 0.01, trainable: [projector, lm], prior_steps: 3, log_every: 2, eval_batch: 64}
sweep:
  design: cross
  center: {frames: 2, tokens_per_frame: 4, spatial: pool, temporal: sample}
  frames: [2, 4]
  tokens_per_frame: [1, 4]
  spatial: [pool, sample, bilinear, visionzip, resampler, summary]
  temporal: [sample, pool, fps]
  budgets: [16]
  seeds: [0]
strategies:
  resampler: {heads: 2}
  fps: {source_fps: 4.0, rate: 2.0}
"#;

fn vislaw(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vislaw")).args(args).env("CUDA_VISIBLE_DEVICES", "").output().expect("binary runs")
}

fn write_config(dir: &Path, text: &str) -> PathBuf {
    let p = dir.join("sweep.yaml");
    std::fs::write(&p, text).unwrap();
    p
}

fn read(path: &Path) -> DataFrame {
    ParquetReader::new(std::fs::File::open(path).unwrap()).finish().unwrap()
}

fn strings(df: &DataFrame, name: &str) -> Vec<String> {
    df.column(name).unwrap().str().unwrap().iter().map(|s| s.unwrap_or("").to_string()).collect()
}

#[test]
fn every_strategy_runs_at_equal_budgets_and_gets_its_rows() {
    let d = tempfile::tempdir().unwrap();
    let cfg = write_config(d.path(), TINY);
    let results = d.path().join("results");
    let out = vislaw(&["sweep", cfg.to_str().unwrap(), "--device", "cpu", "--results", results.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let df = read(&results.join("strategies").join("results.parquet"));
    // 6 spatial × 2 M at T = 2, 3 temporal × 2 T at M = 4, the shared centre once.
    assert_eq!(df.height(), 6 * 2 + 3 * 2 - 1);
    let strategies = strings(&df, "strategy");
    let count = |s: &str| strategies.iter().filter(|x| *x == s).count();
    for s in ["sample/sample", "bilinear/sample", "visionzip/sample", "resampler/sample", "summary/sample"] {
        assert_eq!(count(s), 2, "{s}");
    }
    assert_eq!(count("pool/sample"), 3);
    assert_eq!(count("pool/pool"), 2);
    assert_eq!(count("pool/fps"), 2);
    let loss: Vec<f64> = df.column("loss").unwrap().f64().unwrap().into_no_null_iter().collect();
    assert!(loss.iter().all(|l| l.is_finite() && *l > 0.0), "{loss:?}");
    // Equal budgets: at each M every spatial strategy sees the same T·M.
    let visual: Vec<i64> = df.column("visual_tokens").unwrap().i64().unwrap().into_no_null_iter().collect();
    let spatial = strings(&df, "spatial");
    for (i, s) in spatial.iter().enumerate() {
        if s == "resampler" || s == "summary" {
            assert!(visual[i] == 2 || visual[i] == 8, "{s}: {}", visual[i]);
        }
    }
}

#[test]
fn the_needle_grid_writes_one_row_per_cell() {
    let d = tempfile::tempdir().unwrap();
    let text = TINY
        .replace("spatial: [pool, sample, bilinear, visionzip, resampler, summary]", "spatial: [pool, summary]")
        .replace("temporal: [sample, pool, fps]", "temporal: [sample]")
        + "niah: {lengths: [8, 12], depths: [0, 50, 100], videos_per_cell: 3}\n";
    let cfg = write_config(d.path(), &text);
    let results = d.path().join("results");
    let out = vislaw(&["sweep", cfg.to_str().unwrap(), "--device", "cpu", "--results", results.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let run = results.join("strategies");
    let points = read(&run.join("results.parquet")).height();
    let niah = read(&run.join("niah.parquet"));
    assert_eq!(niah.height(), points * 2 * 3);
    let acc: Vec<f64> = niah.column("accuracy").unwrap().f64().unwrap().into_no_null_iter().collect();
    assert!(acc.iter().all(|a| (0.0..=1.0).contains(a)));
    let n: Vec<i64> = niah.column("n").unwrap().i64().unwrap().into_no_null_iter().collect();
    assert!(n.iter().all(|&x| x == 3));
    // The heat map `vislaw plot` draws (called directly: the full plot also needs fits).
    let written = vislaw::plot::niah::plot(&run, &run.join("plots")).unwrap();
    assert_eq!(written.len(), 2, "{written:?}");
    assert!(run.join("plots").join("niah_heatmap.png").exists());
}

fn assert_one_line_exit_2(out: &Output, needle: &str) {
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains(needle), "{err}");
}

#[test]
fn unknown_or_unsupported_strategies_fail_validation_in_one_line() {
    let d = tempfile::tempdir().unwrap();
    let results = d.path().join("results");
    let unknown = write_config(d.path(), &TINY.replace("bilinear, visionzip", "bilinear, tome"));
    assert_one_line_exit_2(&vislaw(&["validate", unknown.to_str().unwrap()]), "'tome'");
    assert_one_line_exit_2(&vislaw(&["sweep", unknown.to_str().unwrap(), "--device", "cpu", "--results", results.to_str().unwrap()]), "'tome'");
    let unknown_t = write_config(d.path(), &TINY.replace("temporal: [sample, pool, fps]", "temporal: [sample, keyframes]"));
    assert_one_line_exit_2(&vislaw(&["validate", unknown_t.to_str().unwrap()]), "'keyframes'");
    let unreachable = write_config(
        d.path(),
        &TINY
            .replace("tokens_per_frame: [1, 4]", "tokens_per_frame: [1, 3]")
            .replace("spatial: [pool, sample, bilinear, visionzip, resampler, summary]", "spatial: [summary]"),
    );
    assert_one_line_exit_2(&vislaw(&["validate", unreachable.to_str().unwrap()]), "1, 2, 4, 8, 16");
    assert!(!results.exists(), "nothing is written before validation passes");
}

#[test]
fn visionzip_on_features_without_attention_fails_before_training() {
    let d = tempfile::tempdir().unwrap();
    let data = d.path().join("feats");
    std::fs::create_dir(&data).unwrap();
    std::fs::write(data.join("dataset.json"), r#"{"vocab_size": 8}"#).unwrap();
    let mut lines = String::new();
    for v in 0..4 {
        let split = if v < 3 { "train" } else { "eval" };
        lines += &format!(
            "{{\"video\": \"v{v}\", \"split\": \"{split}\", \"family\": \"probe\", \"prompt\": [3, 1], \"options\": [[4, 2], [5, 2]], \"answer\": {}}}\n",
            v % 2
        );
        let t = tch::Tensor::ones([8, 4, 4, 8], (tch::Kind::Float, tch::Device::Cpu));
        tch::Tensor::write_safetensors(&[("features", &t)], data.join(format!("v{v}.safetensors"))).unwrap();
    }
    std::fs::write(data.join("questions.jsonl"), lines).unwrap();
    let text = TINY.replace("generator: synthetic, seed: 11, train_videos: 16, eval_videos: 8,", &format!("generator: files, dir: {},", data.display()));
    let cfg = write_config(d.path(), &text);
    let results = d.path().join("results");
    assert_one_line_exit_2(&vislaw(&["validate", cfg.to_str().unwrap()]), "strategy 'visionzip' needs the encoder tensors 'attention' and 'keys'");
    let out = vislaw(&["sweep", cfg.to_str().unwrap(), "--device", "cpu", "--results", results.to_str().unwrap()]);
    assert_one_line_exit_2(&out, "'visionzip'");
    assert!(!results.exists(), "nothing is written before validation passes");
}
