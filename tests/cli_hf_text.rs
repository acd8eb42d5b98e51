//! Text questions (`"question"` and string `"options"` in questions.jsonl) swept over a
//! Hugging Face LM (a tiny random Qwen2 built at test time by tests/lm_fixture.py): tokenised
//! by the checkpoint's tokenizer around the template, trained and scored end to end; and the
//! built-in LM, which has no tokenizer, refusing them in one line with exit 2.
mod lm_common;

use lm_common::fixture;
use polars::prelude::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use tch::{Device, Kind, Tensor};

fn vislaw(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vislaw")).args(args).env("CUDA_VISIBLE_DEVICES", "").output().expect("binary runs")
}

/// Six train and three eval videos `[4, 3, 3, 8]` whose features carry their class (0 or 1),
/// one text question each; `dataset.json` without a vocab_size (no token ids).
fn write_dataset(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("dataset.json"), "{}").unwrap();
    let mut lines = String::new();
    for v in 0..9 {
        let (split, class) = (if v < 6 { "train" } else { "eval" }, v % 2);
        lines += &format!(
            r#"{{"video": "v{v}", "split": "{split}", "family": "colour", "question": "What colour is the ball?", "options": [" red", " blue"], "answer": {class}}}"#
        );
        lines += "\n";
        let t = Tensor::randn([4, 3, 3, 8], (Kind::Float, Device::Cpu)) + class as f64;
        Tensor::write_safetensors(&[("features", &t)], dir.join(format!("v{v}.safetensors"))).unwrap();
    }
    std::fs::write(dir.join("questions.jsonl"), lines).unwrap();
}

fn config(data: &Path, lm: Option<&Path>) -> String {
    let lm_lines = match lm {
        Some(lm) => format!("  lm: {{hf: {}}}\n  template: \"Video: {{video}} Q: {{question}} A:{{answer}}.\"", lm.display()),
        None => "  lm: {layers: 1, heads: 2, width: 16, max_context: 40}".into(),
    };
    format!(
        "name: text\ndata: {{generator: files, dir: {}, frames: 4, grid: 3, dim: 8}}\nmodel:\n  projector: {{hidden: 16}}\n{lm_lines}\n\
         train: {{steps: 4, batch: 4, lr: 0.003, warmup: 1, trainable: [projector], prior_steps: 2, log_every: 2, eval_batch: 8}}\n\
         sweep: {{frames: [1, 2], tokens_per_frame: [1], spatial: [pool], temporal: [sample], seeds: [0]}}\n",
        data.display()
    )
}

fn write_config(dir: &Path, text: &str) -> PathBuf {
    let p = dir.join("sweep.yaml");
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn text_questions_sweep_over_an_hf_lm_and_are_scored() {
    let d = tempfile::tempdir().unwrap();
    let data = d.path().join("data");
    tch::manual_seed(0);
    write_dataset(&data);
    let lm = fixture(Path::new(env!("CARGO_TARGET_TMPDIR")), "qwen2", 7);
    let cfg = write_config(d.path(), &config(&data, Some(&lm)));
    let results = d.path().join("results");
    let out = vislaw(&["sweep", cfg.to_str().unwrap(), "--device", "cpu", "--results", results.to_str().unwrap(), "--no-analysis"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let rows = ParquetReader::new(std::fs::File::open(results.join("text/results.parquet")).unwrap()).finish().unwrap();
    assert_eq!(rows.height(), 2);
    let loss: Vec<f64> = rows.column("loss").unwrap().f64().unwrap().into_no_null_iter().collect();
    let acc: Vec<f64> = rows.column("accuracy").unwrap().f64().unwrap().into_no_null_iter().collect();
    // Two options: a loss per answer token that is finite and positive, accuracy a multiple
    // of 1/3 (three held-out questions).
    assert!(loss.iter().all(|l| l.is_finite() && *l > 0.0), "{loss:?}");
    assert!(acc.iter().all(|a| ((a * 3.0).round() - a * 3.0).abs() < 1e-9), "{acc:?}");
}

#[test]
fn the_built_in_lm_and_mixed_lines_refuse_text_questions_in_one_line() {
    let d = tempfile::tempdir().unwrap();
    let data = d.path().join("data");
    write_dataset(&data);
    let cfg = write_config(d.path(), &config(&data, None));
    let v = vislaw(&["validate", cfg.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&v.stderr);
    assert_eq!(v.status.code(), Some(2), "{err}");
    assert!(err.contains("questions.jsonl") && err.contains("text") && err.trim().lines().count() == 1, "{err}");

    let lines = std::fs::read_to_string(data.join("questions.jsonl")).unwrap();
    let mixed = lines.replacen(r#""question": "What colour is the ball?""#, r#""prompt": [3, 4]"#, 1);
    std::fs::write(data.join("questions.jsonl"), mixed).unwrap();
    let v = vislaw(&["validate", cfg.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&v.stderr);
    assert_eq!(v.status.code(), Some(2), "{err}");
    assert!(err.contains("questions.jsonl") && err.contains("line 1") && err.contains("either"), "{err}");
}
