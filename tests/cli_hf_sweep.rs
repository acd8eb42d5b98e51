//! A sweep over a Hugging Face LM (a tiny random Qwen2 built at test time by
//! tests/lm_fixture.py with the venv's transformers): end to end on CPU through the binary
//! (rows, fits, plots, report; a rerun trains nothing), LoRA and full fine-tuning, bad
//! input refused in one line with exit 2 and nothing written; and through the library, a
//! frozen LM bitwise unchanged by a point's training and micro-batches giving the loss
//! curve of the whole batch.
mod lm_common;

use lm_common::fixture;
use polars::prelude::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use tch::{nn, Device, Kind, Tensor};
use vislaw::config::{ModelConfig, TrainConfig};
use vislaw::features::Question;
use vislaw::model::VisionLm;

fn qwen2() -> PathBuf {
    fixture(Path::new(env!("CARGO_TARGET_TMPDIR")), "qwen2", 7)
}

/// A tiny synthetic sweep with the fixture as its LM: 9 points, enough for the fits.
fn config(lm: &Path, trainable: &str) -> String {
    format!(
        r#"
name: hf
data: {{generator: synthetic, seed: 11, train_videos: 24, eval_videos: 8, frames: 8, grid: 6, dim: 8}}
model:
  projector: {{hidden: 16}}
  lm: {{hf: {}}}
  template: "cat {{video}} dog {{question}} the{{answer}} mat"
train: {{steps: 6, batch: 4, lr: 0.003, warmup: 1, weight_decay: 0.01, {trainable}, prior_steps: 4, log_every: 2, eval_batch: 16}}
sweep:
  frames: [2, 4, 8]
  tokens_per_frame: [1, 4, 9]
  spatial: [pool]
  temporal: [sample]
  seeds: [0]
"#,
        lm.display()
    )
}

fn vislaw(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vislaw")).args(args).env("CUDA_VISIBLE_DEVICES", "").output().expect("binary runs")
}

fn write(dir: &Path, text: &str) -> PathBuf {
    let p = dir.join("sweep.yaml");
    std::fs::write(&p, text).unwrap();
    p
}

fn sweep(cfg: &Path, results: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["sweep", cfg.to_str().unwrap(), "--device", "cpu", "--results", results.to_str().unwrap()];
    args.extend_from_slice(extra);
    vislaw(&args)
}

fn read(path: &Path) -> DataFrame {
    ParquetReader::new(std::fs::File::open(path).unwrap()).finish().unwrap()
}

fn strings(df: &DataFrame, name: &str) -> Vec<String> {
    df.column(name).unwrap().str().unwrap().iter().map(|k| k.unwrap().to_string()).collect()
}

#[test]
fn a_sweep_over_a_frozen_hf_lm_runs_end_to_end_and_resumes() {
    let d = tempfile::tempdir().unwrap();
    let cfg = write(d.path(), &config(&qwen2(), "trainable: [projector]"));
    let results = d.path().join("results");
    let out = sweep(&cfg, &results, &[]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let run = results.join("hf");
    let rows = read(&run.join("results.parquet"));
    assert_eq!(rows.height(), 9);
    let loss: Vec<f64> = rows.column("loss").unwrap().f64().unwrap().into_no_null_iter().collect();
    assert!(loss.iter().all(|l| l.is_finite() && *l > 0.0), "{loss:?}");
    assert!(strings(&rows, "trainable").iter().all(|t| t == "projector"));
    for file in ["blind.parquet", "curves.parquet", "report.md", "fits.json"] {
        assert!(run.join(file).exists(), "{file} missing");
    }
    assert!(std::fs::read_dir(run.join("plots")).unwrap().count() > 0, "no figures");
    let report = std::fs::read_to_string(run.join("report.md")).unwrap();
    assert!(report.contains("Hugging Face LM"), "{report}");
    // The frozen LM's blind baseline trains nothing: it is the zero-shot score.
    let blind = read(&run.join("blind.parquet"));
    assert!(blind.column("loss").unwrap().f64().unwrap().get(0).unwrap().is_finite());
    let again = sweep(&cfg, &results, &["--no-analysis"]);
    assert!(again.status.success());
    let text = String::from_utf8_lossy(&again.stderr);
    assert!(text.contains("9 points (9 finished, 0 to train)"), "{text}");
    assert_eq!(read(&run.join("results.parquet")).height(), 9);
}

#[test]
fn lora_and_full_fine_tuning_run() {
    for (trainable, label) in [
        ("trainable: [projector, lora], lora: {r: 2, alpha: 4, targets: [q_proj, v_proj, down_proj]}", "projector+lora"),
        ("trainable: [projector, lm]", "projector+lm"),
    ] {
        let d = tempfile::tempdir().unwrap();
        let text = config(&qwen2(), trainable).replace("frames: [2, 4, 8]", "frames: [2]").replace("[1, 4, 9]", "[1, 4]");
        let cfg = write(d.path(), &text);
        let out = sweep(&cfg, &d.path().join("r"), &["--no-analysis"]);
        assert!(out.status.success(), "{trainable}: {}", String::from_utf8_lossy(&out.stderr));
        let rows = read(&d.path().join("r/hf/results.parquet"));
        assert_eq!(rows.height(), 2);
        assert!(strings(&rows, "trainable").iter().all(|t| t == label), "{trainable}");
        // Something trains without visual tokens, so the blind baseline has a loss curve.
        let blind = read(&d.path().join("r/hf/blind.parquet"));
        assert!(blind.column("train_loss_final").unwrap().f64().unwrap().get(0).unwrap().is_finite(), "{trainable}");
    }
}

#[test]
fn bad_input_is_one_line_naming_the_field_or_file_with_nothing_written() {
    let lm = qwen2();
    let no_config = tempfile::tempdir().unwrap();
    for f in ["model.safetensors", "tokenizer.json"] {
        std::fs::copy(lm.join(f), no_config.path().join(f)).unwrap();
    }
    let good = config(&lm, "trainable: [projector]");
    let cases = [
        (good.replace("cat {video} dog", "cat dog"), "model.template".to_string()),
        (good.replace("trainable: [projector]", "trainable: [projector, lora], lora: {r: 2, alpha: 4, targets: [c_attn]}"), "train.lora.targets".to_string()),
        (config(no_config.path(), "trainable: [projector]"), "config.json".to_string()),
        (good.replace("tokens_per_frame: [1, 4, 9]", "tokens_per_frame: [36]"), "max_position_embeddings".to_string()),
    ];
    for (text, needle) in cases {
        let d = tempfile::tempdir().unwrap();
        let cfg = write(d.path(), &text);
        let v = vislaw(&["validate", cfg.to_str().unwrap()]);
        let err = String::from_utf8_lossy(&v.stderr);
        assert_eq!(v.status.code(), Some(2), "{needle}: {err}");
        assert!(err.contains(&needle) && err.trim().lines().count() == 1, "{needle}: {err}");
        let results = d.path().join("results");
        let s = sweep(&cfg, &results, &[]);
        assert_eq!(s.status.code(), Some(2), "{needle}: {}", String::from_utf8_lossy(&s.stderr));
        assert!(!results.exists(), "{needle}: something was written");
    }
}

fn model_cfg(lm: &Path) -> ModelConfig {
    serde_yaml::from_str(&format!("{{projector: {{hidden: 8}}, lm: {{hf: {}}}}}", lm.display())).unwrap()
}

fn train_cfg(extra: &str) -> TrainConfig {
    serde_yaml::from_str(&format!(
        "{{steps: 5, batch: 4, lr: 0.01, warmup: 1, weight_decay: 0.1, trainable: [projector], prior_steps: 1, log_every: 1{extra}}}"
    ))
    .unwrap()
}

/// Eight videos with two visual tokens `[2, 4]` each, one question each (ids of the
/// fixture's 128-token vocabulary).
fn task() -> (Tensor, Vec<Question>) {
    tch::manual_seed(3);
    let feats = Tensor::randn([8, 2, 4], (Kind::Float, Device::Cpu));
    let questions = (0..8)
        .map(|v| Question { video: v, family: "f".into(), prompt: vec![5, 17], options: (0..3).map(|c| vec![40 + c, 2]).collect(), answer: v % 3, text: None })
        .collect();
    (feats, questions)
}

fn train_point(train: &TrainConfig) -> (nn::VarStore, Vec<(String, Tensor)>, Vec<f64>) {
    tch::set_num_threads(1);
    tch::manual_seed(11);
    let mut vs = nn::VarStore::new(Device::Cpu);
    let model = VisionLm::hf(&vs, &model_cfg(&qwen2()), train, 4, None, &[9, 3]).unwrap();
    vislaw::train::apply_trainable(&mut vs, &train.trainable);
    let before: Vec<(String, Tensor)> = vs.variables().into_iter().map(|(n, t)| (n, t.detach().copy())).collect();
    let (feats, questions) = task();
    let out = vislaw::train::train(&model, &vs, train, Some(&feats), &questions, 0, train.steps, &mut |_| {}).unwrap();
    (vs, before, out.curve.iter().map(|c| c.loss).collect())
}

#[test]
fn a_frozen_lm_is_bitwise_unchanged_and_the_projector_trains() {
    let (vs, before, _) = train_point(&train_cfg(""));
    let after = vs.variables();
    let (mut lm, mut projector) = (0, 0);
    for (name, old) in &before {
        let same = old.equal(&after[name]);
        if name.starts_with("lm.") {
            assert!(same, "{name} changed with the LM frozen");
            assert!(!after[name].requires_grad(), "{name} requires a gradient");
            lm += 1;
        } else {
            assert!(name.starts_with("projector."), "{name}");
            assert!(!same, "{name} did not change");
            projector += 1;
        }
    }
    assert_eq!(projector, 4);
    // 2 layers × (2 norms + q/k/v weight and bias + o + 3 MLP) + embedding + norm + head.
    assert_eq!(lm, 2 * 12 + 3);
    assert!(before.iter().any(|(n, _)| n == "lm.model.layers.0.self_attn.q_proj.weight"));
}

#[test]
fn micro_batches_give_the_loss_curve_of_the_whole_batch() {
    let (_, _, whole) = train_point(&train_cfg(""));
    let (_, _, micro) = train_point(&train_cfg(", micro_batch: 2"));
    let (_, _, single) = train_point(&train_cfg(", micro_batch: 1"));
    assert_eq!(whole.len(), 5);
    for (i, ((w, m), s)) in whole.iter().zip(&micro).zip(&single).enumerate() {
        assert!((w - m).abs() < 1e-5 && (w - s).abs() < 1e-5, "step {}: {w} vs {m} vs {s}", i + 1);
    }
    // The curve moves, so agreeing is not trivial.
    assert!((whole[0] - whole[4]).abs() > 1e-3, "{whole:?}");
}
