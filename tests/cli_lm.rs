//! End-to-end tests of `vislaw lm logits` and `vislaw lm score` on tiny random checkpoints
//! built at test time with `transformers`: the outputs equal transformers' within 1e-4, and
//! bad input is one line naming the file, field or flag, exit 2, nothing written.
mod lm_common;

use lm_common::{fixture, ids_arg, max_diff_on_real, reference, reference_loss, TEXT};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const TOL: f64 = 1e-4;

fn root() -> &'static Path {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
}

fn vislaw(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vislaw")).arg("lm").args(args).output().expect("the vislaw binary runs")
}

fn ids_flags() -> Vec<String> {
    ids_arg().split(';').flat_map(|s| ["--ids".to_string(), s.to_string()]).collect()
}

/// A copy of fixture `arch` that a test may break.
fn copy_of(arch: &str, seed: u64) -> tempfile::TempDir {
    let src = fixture(root(), arch, seed);
    let dst = tempfile::tempdir().unwrap();
    for e in std::fs::read_dir(&src).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), dst.path().join(e.file_name())).unwrap();
    }
    dst
}

fn fails_with(args: &[&str], needles: &[&str], not_written: &Path) {
    let out = vislaw(args);
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
    assert!(out.stdout.is_empty(), "{args:?}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
    for n in needles {
        assert!(stderr.contains(n), "{args:?}: '{n}' not in {stderr}");
    }
    assert!(!not_written.exists(), "{} was written", not_written.display());
}

#[test]
fn logits_of_a_padded_batch_match_transformers() {
    for (arch, seed) in [("qwen2", 1), ("qwen2_sharded", 3)] {
        let dir = fixture(root(), arch, seed);
        let out_dir = tempfile::tempdir().unwrap();
        let out = out_dir.path().join("logits.safetensors");
        let mut args = vec!["logits".to_string(), "--model".into(), dir.display().to_string(), "-o".into(), out.display().to_string()];
        args.extend(ids_flags());
        let res = vislaw(&args.iter().map(String::as_str).collect::<Vec<_>>());
        assert!(res.status.success(), "{}", String::from_utf8_lossy(&res.stderr));
        let got = tch::Tensor::read_safetensors(&out).unwrap();
        let get = |n: &str| got.iter().find(|(k, _)| k == n).unwrap().1.shallow_clone();
        let (want, want_mask) = reference(&dir);
        assert_eq!(get("logits").kind(), tch::Kind::Float);
        assert!(get("attention_mask").equal(&want_mask));
        let diff = max_diff_on_real(&get("logits"), &want, &want_mask);
        assert!(diff < TOL, "{arch}: {diff:e}");
    }
}

#[test]
fn score_json_matches_transformers_loss() {
    let dir = fixture(root(), "llama_tied", 2);
    let out = vislaw(&["score", "--model", &dir.display().to_string(), "--text", TEXT, "--json"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text.trim().lines().count(), 1, "{text}");
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let (tokens, loss) = reference_loss(&dir);
    assert_eq!(v["tokens"].as_u64(), Some(tokens as u64));
    let got = v["loss"].as_f64().unwrap();
    assert!((got - loss).abs() < TOL, "loss {got} vs transformers {loss}");
}

#[test]
fn bad_checkpoints_are_one_line_naming_the_file_exit_2_nothing_written() {
    let out_dir = tempfile::tempdir().unwrap();
    let out: PathBuf = out_dir.path().join("logits.safetensors");
    let o = out.display().to_string();
    let logits = |dir: &Path| vec!["logits".to_string(), "--model".into(), dir.display().to_string(), "--ids".into(), "1,2,3".into(), "-o".into(), o.clone()];
    let run = |args: Vec<String>, needles: &[&str]| fails_with(&args.iter().map(String::as_str).collect::<Vec<_>>(), needles, &out);

    let d = copy_of("qwen2", 1);
    std::fs::remove_file(d.path().join("config.json")).unwrap();
    run(logits(d.path()), &["config.json", "missing"]);

    let d = copy_of("qwen2", 1);
    std::fs::remove_file(d.path().join("tokenizer.json")).unwrap();
    run(vec!["score".into(), "--model".into(), d.path().display().to_string(), "--text".into(), TEXT.into()], &["tokenizer.json", "missing"]);

    let d = copy_of("qwen2_sharded", 3);
    std::fs::remove_file(d.path().join("model-00002-of-00007.safetensors")).unwrap();
    run(logits(d.path()), &["model-00002-of-00007.safetensors", "missing shard"]);

    let d = copy_of("qwen2", 1);
    let cfg = std::fs::read_to_string(d.path().join("config.json")).unwrap();
    std::fs::write(d.path().join("config.json"), cfg.replace("Qwen2ForCausalLM", "MistralForCausalLM")).unwrap();
    run(logits(d.path()), &["config.json", "'MistralForCausalLM'", "Qwen2ForCausalLM, LlamaForCausalLM"]);

    let d = copy_of("qwen2", 1);
    std::fs::write(d.path().join("config.json"), cfg.replace("\"intermediate_size\": 64", "\"intermediate_size\": 48")).unwrap();
    run(logits(d.path()), &["model.layers.0.mlp.gate_proj.weight", "[64, 32]", "[48, 32]"]);

    let d = fixture(root(), "qwen2", 1);
    let mut args = logits(&d);
    args[4] = "1,2,128".into();
    run(args.clone(), &["--ids", "128", "128"]);
    args[4] = "1,x".into();
    run(args, &["--ids", "'1,x'"]);
}
