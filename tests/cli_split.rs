//! The validation split through `vislaw sweep` (issue 13, item 4): a sweep with
//! `eval.split: validation` writes rows that carry `split = validation` under keys of their
//! own, measured on other videos than the held-out run's; the held-out run's point files
//! stay byte for byte what they were, and adding `data.validation_videos` alone leaves the
//! held-out numbers bitwise unchanged.
use polars::prelude::*;
use std::path::Path;
use std::process::Command;

const TINY: &str = r#"
name: split
data: {generator: synthetic, seed: 11, train_videos: 24, eval_videos: 8, frames: 8, grid: 6, dim: 8}
model:
  projector: {hidden: 16}
  lm: {layers: 1, heads: 2, width: 16, max_context: 80}
train: {steps: 6, batch: 8, lr: 0.003, warmup: 1, weight_decay: 0.01, trainable: [projector, lm], prior_steps: 4, log_every: 2, eval_batch: 64}
sweep:
  design: grid
  frames: [2]
  tokens_per_frame: [1, 4]
  spatial: [pool]
  temporal: [sample]
  seeds: [0]
"#;

/// `TINY` with a validation split of `videos` and, when `validation`, measured on it.
fn config(videos: usize, validation: bool) -> String {
    let mut text = TINY.replace("eval_videos: 8,", &format!("eval_videos: 8, validation_videos: {videos},"));
    if validation {
        text.push_str("eval: {split: validation}\n");
    }
    text
}

fn sweep(dir: &Path, name: &str, text: &str, results: &Path) {
    let cfg = dir.join(format!("{name}.yaml"));
    std::fs::write(&cfg, text).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_vislaw"))
        .args(["sweep", cfg.to_str().unwrap(), "--device", "cpu", "--results", results.to_str().unwrap(), "--no-analysis", "--jobs", "1"])
        .env("CUDA_VISIBLE_DEVICES", "")
        .output()
        .expect("binary runs");
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "sweep {name} failed: {said}");
    // The start says which split is measured: a validation run must not read as held-out results.
    assert_eq!(said.contains("evaluated on the validation split"), text.contains("split: validation"), "{said}");
    assert!(said.contains(" validation / 8 held-out videos") == text.contains("validation_videos"), "{said}");
}

fn read(path: &Path) -> DataFrame {
    ParquetReader::new(std::fs::File::open(path).unwrap()).finish().unwrap()
}

fn strings(df: &DataFrame, name: &str) -> Vec<String> {
    df.column(name).unwrap().str().unwrap().iter().map(|k| k.unwrap().to_string()).collect()
}

fn floats(df: &DataFrame, name: &str) -> Vec<f64> {
    df.column(name).unwrap().f64().unwrap().into_no_null_iter().collect()
}

/// Every file under `dir` (relative path → bytes).
fn snapshot(dir: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    let mut out = std::collections::BTreeMap::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let p = entry.unwrap().path();
        out.insert(p.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read(&p).unwrap());
    }
    out
}

#[test]
fn validation_rows_carry_their_split_and_keys_and_leave_the_held_out_run_alone() {
    let d = tempfile::tempdir().unwrap();
    let results = d.path().join("results");
    let run = results.join("split");

    // The held-out run, configured as before the split existed.
    sweep(d.path(), "held_out", TINY, &results);
    let held = read(&run.join("results.parquet"));
    assert!(held.column("split").is_err(), "held-out rows keep the columns they had: {:?}", held.get_column_names());
    let held_keys = strings(&held, "key");
    assert_eq!(held_keys.len(), 2);
    let held_points = snapshot(&run.join("points"));
    let held_blind = read(&run.join("blind.parquet"));
    assert!(held_blind.column("split").is_err());

    // The same run measured on the validation split, in the same run directory.
    sweep(d.path(), "validation", &config(8, true), &results);
    let val = read(&run.join("results.parquet"));
    let val_keys = strings(&val, "key");
    assert_eq!(val_keys.len(), 2, "the merge holds this run's points only: {val_keys:?}");
    assert!(strings(&val, "split").iter().all(|s| s == "validation"));
    assert!(val_keys.iter().all(|k| !held_keys.contains(k)), "validation keys {val_keys:?} must differ from held-out keys {held_keys:?}");
    // Other videos, so other numbers (same points, same order: sorted by strategy, T, M, seed).
    assert_eq!(strings(&val, "strategy"), strings(&held, "strategy"));
    assert_ne!(floats(&val, "loss"), floats(&held, "loss"), "validation rows must be measured on other videos");
    // The held-out run's files are untouched: every point file is still there, byte for byte.
    let after = snapshot(&run.join("points"));
    for (name, bytes) in &held_points {
        assert_eq!(after.get(name), Some(bytes), "held-out point file {name} changed");
    }
    assert_eq!(after.len(), held_points.len() + 2, "the validation run adds its own 2 point files");
    // The run directory's blind baseline is this run's, measured on validation, keyed apart.
    let val_blind = read(&run.join("blind.parquet"));
    assert_eq!(strings(&val_blind, "split"), vec!["validation".to_string()]);
    assert!(strings(&val_blind, "key")[0].ends_with("-validation"), "{:?}", strings(&val_blind, "key"));
    assert_ne!(floats(&val_blind, "loss"), floats(&held_blind, "loss"));

    // Back to the held-out config: nothing retrains, and the rows and blind baseline are the held-out ones again.
    sweep(d.path(), "held_out", TINY, &results);
    let again = read(&run.join("results.parquet"));
    assert_eq!(strings(&again, "key"), held_keys);
    assert_eq!(floats(&again, "loss"), floats(&held, "loss"));
    let blind_again = read(&run.join("blind.parquet"));
    assert!(blind_again.column("split").is_err(), "the held-out run reports the held-out blind baseline, not the validation one");
    assert_eq!(strings(&blind_again, "key"), strings(&held_blind, "key"));

    // A validation split that is only declared (results still held out) changes no number.
    let other = d.path().join("declared");
    sweep(d.path(), "declared", &config(8, false), &other);
    let declared = read(&other.join("split/results.parquet"));
    assert!(declared.column("split").is_err());
    for col in ["loss", "loss_se", "accuracy", "acc_needle", "train_loss_final"] {
        let (a, b) = (floats(&held, col), floats(&declared, col));
        assert_eq!(a.iter().map(|v| v.to_bits()).collect::<Vec<_>>(), b.iter().map(|v| v.to_bits()).collect::<Vec<_>>(), "{col}: {a:?} vs {b:?}");
    }
}
