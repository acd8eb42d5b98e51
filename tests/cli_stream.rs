//! End-to-end tests of streamed feature files through the binary: a sweep over seeds reduces
//! each video once per reduction (the second seed's points read `cache/reduced/`, not the
//! videos), a re-extracted video gets new entries of its own, a torn cache write is cleaned
//! up, and the memory preflight counts the reduced features, not the raw ones.
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use tch::{Kind, Tensor};

/// A `files` sweep over `DIR` of `F`-frame videos, `G`×`G` grids of dimension `DIM`.
const FILES: &str = r#"
name: stream
data: {generator: files, dir: DIR, frames: F, grid: G, dim: DIM}
model:
  projector: {hidden: 16}
  lm: {layers: 1, heads: 2, width: 16, max_context: 64}
train: {steps: 3, batch: 4, lr: 0.003, warmup: 1, trainable: [projector, lm], prior_steps: 2, log_every: 1, eval_batch: 16}
sweep:
  frames: [2]
  tokens_per_frame: [1, 4]
  spatial: [pool]
  temporal: [sample]
  seeds: SEEDS
"#;

fn vislaw(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vislaw")).args(args).env("CUDA_VISIBLE_DEVICES", "").output().expect("binary runs")
}

fn config(root: &Path, data: &Path, shape: [i64; 3], seeds: &str) -> PathBuf {
    let text = FILES
        .replace("DIR", data.to_str().unwrap())
        .replace("F,", &format!("{},", shape[0]))
        .replace("G,", &format!("{},", shape[1]))
        .replace("DIM}", &format!("{}}}", shape[2]))
        .replace("SEEDS", seeds);
    let p = root.join("sweep.yaml");
    std::fs::write(&p, text).unwrap();
    p
}

/// Writes video `v` `[f, g, g, dim]` of random values (seeded by `v` and `salt`) in `kind`.
fn write_video(dir: &Path, v: usize, [f, g, dim]: [i64; 3], kind: Kind, salt: i64) {
    tch::manual_seed(v as i64 * 31 + salt);
    let t = Tensor::randn([f, g, g, dim], (Kind::Float, tch::Device::Cpu)).to_kind(kind);
    Tensor::write_safetensors(&[("features", &t)], dir.join(format!("v{v}.safetensors"))).unwrap();
}

/// A feature directory of `train` + 2 eval videos, one question each.
fn write_features(dir: &Path, train: usize, shape: [i64; 3], kind: Kind) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("dataset.json"), r#"{"vocab_size": 8}"#).unwrap();
    let mut lines = String::new();
    for v in 0..train + 2 {
        let split = if v < train { "train" } else { "eval" };
        lines += &format!(
            "{{\"video\": \"v{v}\", \"split\": \"{split}\", \"family\": \"p\", \"prompt\": [3, 1], \"options\": [[4, 2], [5, 2]], \"answer\": {}}}\n",
            v % 2
        );
        write_video(dir, v, shape, kind, 0);
    }
    std::fs::write(dir.join("questions.jsonl"), lines).unwrap();
}

/// Runs a sweep; returns (success, stdout, stderr).
fn sweep(cfg: &Path, results: &Path, extra: &[&str]) -> (bool, String, String) {
    let mut args = vec!["sweep", cfg.to_str().unwrap(), "--device", "cpu", "--no-analysis", "--results", results.to_str().unwrap()];
    args.extend_from_slice(extra);
    let out = vislaw(&args);
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

fn trained(stdout: &str) -> usize {
    let line = stdout.lines().find(|l| l.starts_with("trained ")).unwrap_or_else(|| panic!("{stdout}"));
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

fn cache_files(run: &Path, suffix: &str) -> usize {
    std::fs::read_dir(run.join("cache").join("reduced")).map_or(0, |d| d.flatten().filter(|e| e.file_name().to_string_lossy().ends_with(suffix)).count())
}

/// Overwrites a video file's tensor bytes with NaN, keeping its header, size and
/// modification time: its fingerprint (and so every key) is unchanged, and any read of it
/// now fails.
fn poison_keeping_fingerprint(path: &Path) {
    let modified = std::fs::metadata(path).unwrap().modified().unwrap();
    let mut bytes = std::fs::read(path).unwrap();
    let header = 8 + u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    for chunk in bytes[header..].chunks_exact_mut(4) {
        chunk.copy_from_slice(&f32::NAN.to_le_bytes());
    }
    std::fs::write(path, &bytes).unwrap();
    std::fs::File::options().write(true).open(path).unwrap().set_modified(modified).unwrap();
    assert_eq!(std::fs::metadata(path).unwrap().modified().unwrap(), modified);
}

#[test]
fn a_sweep_over_seeds_reduces_each_video_once_and_a_changed_video_only_itself() {
    let d = tempfile::tempdir().unwrap();
    let (data, results) = (d.path().join("feats"), d.path().join("results"));
    let shape = [4, 4, 8];
    write_features(&data, 4, shape, Kind::Float);
    let run = results.join("stream");
    let (ok, out, err) = sweep(&config(d.path(), &data, shape, "[0]"), &results, &[]);
    assert!(ok, "{err}");
    assert_eq!(trained(&out), 2);
    // 6 videos × 2 reductions (M = 1, 4), and each video marked finite once.
    assert_eq!((cache_files(&run, ".safetensors"), cache_files(&run, ".checked")), (12, 6));
    // Every video now holds NaN under its old fingerprint: the seed-1 points can only train
    // if they never read a video, taking all 12 reductions from the cache.
    for v in 0..6 {
        poison_keeping_fingerprint(&data.join(format!("v{v}.safetensors")));
    }
    let leftover = run.join("cache").join("reduced").join(".tmp-torn");
    std::fs::write(&leftover, b"half an entry").unwrap();
    let (ok, out, err) = sweep(&config(d.path(), &data, shape, "[0, 1]"), &results, &[]);
    assert!(ok, "the second seed reads the cache, not the (poisoned) videos: {err}");
    assert_eq!(trained(&out), 2);
    assert_eq!(cache_files(&run, ".safetensors"), 12, "no entry added");
    assert!(!leftover.exists(), "a torn cache write is removed at the start");
    // Without the cache the same sweep must read the videos, and fails on them by name.
    std::fs::remove_dir_all(run.join("cache").join("reduced")).unwrap();
    let (ok, _, err) = sweep(&config(d.path(), &data, shape, "[0, 1, 2]"), &results, &[]);
    assert!(!ok && err.contains("v0.safetensors") && err.contains("NaN"), "{err}");
    // Re-extract every video (new values), then one of them again: only its entries are new.
    write_features(&data, 4, shape, Kind::Float);
    let (ok, out, err) = sweep(&config(d.path(), &data, shape, "[0]"), &results, &[]);
    assert!(ok, "{err}");
    assert_eq!(trained(&out), 2, "new data, new keys");
    assert_eq!(cache_files(&run, ".safetensors"), 12);
    write_video(&data, 3, shape, Kind::Float, 5);
    let (ok, out, err) = sweep(&config(d.path(), &data, shape, "[0]"), &results, &[]);
    assert!(ok, "{err}");
    assert_eq!(trained(&out), 2);
    assert_eq!(cache_files(&run, ".safetensors"), 14, "v3's two reductions, nothing else");
}

#[test]
fn raw_features_over_the_memory_limit_pass_preflight_when_the_reduced_ones_fit() {
    let d = tempfile::tempdir().unwrap();
    let (data, results) = (d.path().join("feats"), d.path().join("results"));
    // 10 + 2 videos of [16, 12, 12, 64], f16 on disk: 590 KB each as f32, 7 MB in all.
    let shape = [16, 12, 64];
    write_features(&data, 10, shape, Kind::Half);
    let cfg_path = config(d.path(), &data, shape, "[0]");
    let cfg = vislaw::sweep::plan::load(&cfg_path).unwrap();
    let prepared = vislaw::sweep::prepare(&cfg, &vislaw::sweep::Limits { max_memory: Some(u64::MAX), workers: 1 }).unwrap();
    let estimate = prepared.memory.total();
    use vislaw::features::Split;
    let raw = prepared.source.loaded_bytes(Split::Train) + prepared.source.loaded_bytes(Split::Eval);
    assert!(prepared.memory.parts.iter().any(|p| p.what.contains("one video at a time")), "{:?}", prepared.memory.parts);
    assert!(prepared.memory.parts.iter().all(|p| !p.what.contains("as loaded")), "{:?}", prepared.memory.parts);
    // The estimate before streaming: both splits as loaded plus the copy stacking one makes,
    // in place of the one-video part; every other part (model, activations, the process) is
    // common to both. A limit halfway between them admits only the streamed sweep.
    let per_video = prepared.memory.parts.iter().find(|p| p.what.contains("one video at a time")).unwrap().bytes;
    let stacking = prepared.source.loaded_bytes(Split::Train).max(prepared.source.loaded_bytes(Split::Eval));
    let old = estimate - per_video + raw + stacking;
    let limit = ((estimate + old) / 2.0) as u64;
    assert!(old > limit as f64 && limit as f64 > estimate, "the old estimate ({old} B) exceeds the limit ({limit} B) the streamed one ({estimate} B) fits in");
    let (ok, out, err) = sweep(&cfg_path, &results, &["--jobs", "1", "--max-memory", &limit.to_string()]);
    assert!(ok, "{err}");
    assert_eq!(trained(&out), 2);
    // And a limit under the streamed estimate is still refused, by the per-video part.
    let (ok, _, err) = sweep(&cfg_path, &results.join("refused"), &["--jobs", "1", "--max-memory", &((estimate * 0.5) as u64).to_string()]);
    assert!(!ok && err.contains("memory"), "{err}");
}
