//! Test support shared by `tests/lm_*.rs` and `tests/cli_lm.rs`: tiny random Hugging Face
//! checkpoints built at test time by `tests/lm_fixture.py` with the venv's `transformers`,
//! with their reference logits and loss. A missing venv fails the test, never skips it.
#![allow(dead_code)] // each test binary uses part of it
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};

/// The id batch every fixture's reference logits are computed for (right-padded).
pub const IDS: [&[i64]; 3] = [&[5, 17, 3, 99, 42, 8, 64, 1, 127, 30, 11, 2], &[7, 7, 120, 3], &[90, 4, 56, 23, 23, 71, 0, 9]];
/// The text every fixture's reference loss is computed for.
pub const TEXT: &str = "the quick brown fox sat on the mat in the park";

/// The venv's Python.
pub fn venv_python() -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    assert!(p.exists(), "{} is missing: run scripts/setup.sh (the parity tests need transformers)", p.display());
    p
}

/// `IDS` as the fixture script's argument.
pub fn ids_arg() -> String {
    IDS.iter().map(|s| s.iter().map(i64::to_string).collect::<Vec<_>>().join(",")).collect::<Vec<_>>().join(";")
}

/// The directory of fixture `arch` (`qwen2`, `llama_tied`, `qwen2_sharded`), built once per
/// test binary under `root` (fresh each run).
pub fn fixture(root: &Path, arch: &str, seed: u64) -> PathBuf {
    static BUILT: OnceLock<Mutex<Vec<String>>> = OnceLock::new();
    let built = BUILT.get_or_init(|| Mutex::new(Vec::new()));
    let mut built = built.lock().unwrap_or_else(|e| e.into_inner());
    let dir = root.join(format!("lm-fixture-{arch}-{seed}"));
    let key = dir.display().to_string();
    if !built.contains(&key) {
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/lm_fixture.py");
        let out = Command::new(venv_python()).arg(script).arg(&dir).args([arch, &seed.to_string(), &ids_arg(), TEXT]).output().unwrap();
        assert!(out.status.success(), "lm_fixture.py {arch}: {}", String::from_utf8_lossy(&out.stderr));
        built.push(key);
    }
    dir
}

/// The reference `(logits [B, n, V], attention_mask [B, n])` of a fixture.
pub fn reference(dir: &Path) -> (tch::Tensor, tch::Tensor) {
    let t = tch::Tensor::read_safetensors(dir.join("reference.safetensors")).unwrap();
    let get = |n: &str| t.iter().find(|(k, _)| k == n).unwrap_or_else(|| panic!("reference has no {n}")).1.shallow_clone();
    (get("logits"), get("attention_mask"))
}

/// `{"tokens", "loss"}` of the fixture's `TEXT` under transformers.
pub fn reference_loss(dir: &Path) -> (usize, f64) {
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.join("reference.json")).unwrap()).unwrap();
    (v["tokens"].as_u64().unwrap() as usize, v["loss"].as_f64().unwrap())
}

/// The largest |a − b| over the positions `mask` `[B, n]` marks real, for logits `[B, n, V]`.
pub fn max_diff_on_real(a: &tch::Tensor, b: &tch::Tensor, mask: &tch::Tensor) -> f64 {
    assert_eq!(a.size(), b.size());
    let keep = mask.ne(0).unsqueeze(-1).expand_as(a);
    (a - b).abs().masked_select(&keep).max().double_value(&[])
}
