//! Both sides of `vislaw-bench hf-train` do the same work: benches/hf_train_torch.py, started
//! from the projector weights and batch vislaw wrote and the same tiny random checkpoint
//! (built at test time by tests/lm_fixture.py with transformers), gives the losses vislaw's
//! training step gives, over the first steps; the same script with another learning rate or
//! a shorter answer does not. The Python side is the project's venv; when it is missing or
//! fails, the test fails (it never skips).
mod lm_common;

use std::path::{Path, PathBuf};
use std::process::Command;
use vislaw::bench::hf_train::{self, Settings, Shape};
use vislaw::hf::Precision;
use vislaw::lm::{HfLm, Weights};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The losses (float32, float64) the reference gives from `init` with `args`.
fn reference_losses(args: &[String], init: &Path) -> (Vec<f64>, Vec<f64>) {
    let mut cmd = Command::new(lm_common::venv_python());
    cmd.current_dir(root()).arg(hf_train::SCRIPT).args(args).args(["--attn", "sdpa", "--dump-losses", "--init"]).arg(init);
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(out.status.success(), "{cmd:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&out.stdout)));
    let floats = |k: &str| v[k].as_array().unwrap_or_else(|| panic!("no {k}: {v}")).iter().map(|x| x.as_f64().unwrap()).collect::<Vec<_>>();
    (floats("losses"), floats("losses_float64"))
}

/// The arguments with `flag`'s value replaced.
fn with(args: &[String], flag: &str, value: &str) -> Vec<String> {
    let mut a = args.to_vec();
    let i = a.iter().position(|x| x == flag).unwrap_or_else(|| panic!("no {flag} in {a:?}"));
    a[i + 1] = value.to_string();
    a
}

#[test]
fn transformers_and_vislaw_hf_training_losses_agree_from_the_same_weights() {
    let dir = tempfile::tempdir().unwrap();
    let ck: PathBuf = lm_common::fixture(dir.path(), "qwen2", 7);
    tch::set_num_threads(1);
    let lm = HfLm::load(&ck, tch::Device::Cpu, Precision::F32, Weights::Frozen).unwrap();
    let shape = Shape { batch: 3, visual: 6, dim: 12, hidden: 24, text_tokens: 5 };
    shape.check(&lm.decoder).unwrap();
    let settings = Settings { lr: 1e-2, weight_decay: 0.01 };
    let steps = 8;
    let init = dir.path().join("init.safetensors");
    let ours = hf_train::write_fixture(&lm, &shape, &settings, steps, 0, &init).unwrap();
    // The benchmark's own arguments (checkpoint, shapes, text length, learning rate, weight
    // decay): the same path `vislaw-bench hf-train` takes to the script.
    let args = hf_train::reference_args(&ck, &shape, &settings, steps, 0, 1);
    let (t32, t64) = reference_losses(&args, &init);
    assert_eq!((ours.len(), t32.len(), t64.len()), (steps, steps, steps));
    // Tolerance from the float32 rounding noise actually present: the float64 run from the
    // same start is the reference both float32 runs round away from, so |vislaw − torch| ≤
    // |vislaw − exact| + |torch − exact| ≈ 2·|torch32 − torch64| at each step; allow 4× the
    // largest such gap (the two float32 runs reassociate differently, so their errors need not
    // be equal), and at least 8 float32 ulps of the loss where the two happen to round alike.
    let noise = t32.iter().zip(&t64).map(|(a, b)| (a - b).abs()).fold(0.0f64, f64::max);
    let tol = |d: f64| (4.0 * noise).max(8.0 * f32::EPSILON as f64 * d.abs());
    let apart = |theirs: &[f64]| ours.iter().zip(theirs).zip(&t64).map(|((v, t), d)| (v - t).abs() / tol(*d)).fold(0.0f64, f64::max);
    let worst = apart(&t32);
    eprintln!("float32 noise {noise:e}, worst |Δ| / tolerance {worst:.3}, losses {ours:?} vs {t32:?}");
    assert!(worst <= 1.0, "vislaw {ours:?} vs transformers {t32:?} (float64 {t64:?}): worst |Δ| / tolerance {worst}");
    // The losses move: agreement is not two runs that both stand still.
    assert!(ours[0] - ours[steps - 1] > 100.0 * noise.max(1e-6), "training did not lower the loss: {ours:?}");
    // Mutations of the Python side fail the same comparison: a doubled learning rate (equal
    // first loss, then apart), and one answer token fewer (apart from the first step).
    let (lr2, _) = reference_losses(&with(&args, "--lr", &(2.0 * settings.lr).to_string()), &init);
    assert!(apart(&lr2) > 1.0, "a doubled learning rate went unnoticed: {lr2:?}");
    assert!((lr2[0] - ours[0]).abs() <= tol(t64[0]), "the learning rate changed the loss before the first step");
    let (short, _) = reference_losses(&with(&args, "--text-tokens", &(shape.text_tokens - 1).to_string()), &init);
    assert!((short[0] - ours[0]).abs() > tol(t64[0]), "a shorter answer went unnoticed: {short:?}");
}
