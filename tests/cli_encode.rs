//! End to end through the binary: mp4s made with ffmpeg → `vislaw encode` (a tiny random
//! SigLIP tower built with transformers) → `vislaw dataset` → `vislaw sweep` on the result;
//! and the one-line, exit-2, nothing-written errors of bad input.
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn vislaw(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vislaw")).args(args).env("CUDA_VISIBLE_DEVICES", "").output().expect("binary runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn assert_one_line_exit_2(o: &Output, needle: &str) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");
    assert!(err.contains(needle), "'{needle}' not in: {err}");
}

/// A tiny random SiglipVisionModel (32×32 input, patch 8: a 4×4 grid of width 32, 2 layers).
fn tiny_tower(dir: &Path) -> PathBuf {
    let python = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    assert!(python.exists(), "{} is missing: run scripts/setup.sh", python.display());
    let out_dir = dir.join("tower");
    let script = "import sys, torch\nfrom transformers import SiglipVisionConfig, SiglipVisionModel\ntorch.manual_seed(0)\n\
        m = SiglipVisionModel(SiglipVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4, image_size=32, patch_size=8))\n\
        m.save_pretrained(sys.argv[1])\n";
    let out = Command::new(python).arg("-c").arg(script).arg(&out_dir).output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    out_dir
}

fn make_video(path: &Path, source: &str) {
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-f", "lavfi", "-i", &format!("{source}=duration=2:size=48x40:rate=10"), "-pix_fmt", "yuv420p", "-y"])
        .arg(path)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
}

const SWEEP: &str = r#"
name: encoded
data: {generator: files, dir: DIR, frames: 3, grid: 4, dim: 32}
model:
  projector: {hidden: 16}
  lm: {layers: 1, heads: 2, width: 16, max_context: 64}
train: {steps: 3, batch: 4, lr: 0.003, warmup: 1, trainable: [projector, lm], prior_steps: 2, log_every: 1, eval_batch: 16}
sweep:
  frames: [3]
  tokens_per_frame: [4]
  spatial: [pool, visionzip]
  temporal: [sample]
  seeds: [0]
"#;

#[test]
fn videos_to_features_to_questions_to_a_sweep() {
    let d = tempfile::tempdir().unwrap();
    let tower = tiny_tower(d.path());
    let videos = d.path().join("videos");
    std::fs::create_dir(&videos).unwrap();
    for (name, src) in [("a", "testsrc"), ("b", "testsrc2"), ("c", "smptebars"), ("d", "rgbtestsrc")] {
        make_video(&videos.join(format!("{name}.mp4")), src);
    }
    std::fs::write(videos.join("broken.mp4"), b"no video here").unwrap();
    let feats = d.path().join("features");
    let (t, f) = (tower.to_str().unwrap(), feats.to_str().unwrap());
    let enc = |extra: &[&str]| {
        let mut a = vec!["encode", videos.to_str().unwrap(), "--encoder", t, "--out", f, "--fps", "2", "--max-frames", "3", "--dtype", "f32"];
        a.extend_from_slice(extra);
        vislaw(&a)
    };
    // One unreadable video: named, the others encoded, non-zero exit.
    let out = enc(&[]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("broken: failed") && err.contains("broken.mp4"), "{err}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("4 encoded, 0 skipped, 1 failed"), "{}", String::from_utf8_lossy(&out.stdout));
    let manifest: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(feats.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["layer"], 2);
    for v in ["a", "b", "c", "d"] {
        let frames = manifest["videos"][v]["frames"].as_array().unwrap();
        // 2 fps over 0.0–1.9 s gives 0, 0.5, 1.0, 1.5; three kept: 0, 0.5, 1.5 (linspace floors).
        let times: Vec<f64> = frames.iter().map(|x| x["time"].as_f64().unwrap()).collect();
        assert_eq!(times, [0.0, 0.5, 1.5], "{v}");
        assert_eq!(manifest["videos"][v]["blake3"].as_str().unwrap(), blake3::hash(&std::fs::read(videos.join(format!("{v}.mp4"))).unwrap()).to_hex().as_str());
        let t: std::collections::HashMap<String, tch::Tensor> =
            tch::Tensor::read_safetensors(feats.join(format!("{v}.safetensors"))).unwrap().into_iter().collect();
        assert_eq!(t["features"].size(), [3, 4, 4, 32]);
        assert_eq!(t["attention"].size(), [3, 16]);
        assert_eq!(t["keys"].size(), [3, 16, 8]);
    }
    assert!(!feats.join("broken.safetensors").exists());
    // A re-run skips what is done (the broken one fails again).
    std::fs::remove_file(videos.join("broken.mp4")).unwrap();
    let out = enc(&[]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("0 encoded, 4 skipped, 0 failed"));

    // Questions in text; a missing video is named.
    let mut lines = String::new();
    for (v, split) in [("a", "train"), ("b", "train"), ("c", "eval"), ("d", "eval")] {
        for (q, answer) in [("Is the clip bright?", 0), ("Does it move?", 1)] {
            lines += &serde_json::json!({"video": v, "split": split, "family": "probe", "question": q, "options": ["yes", "no"], "answer": answer}).to_string();
            lines.push('\n');
        }
    }
    let qs = d.path().join("questions.text.jsonl");
    std::fs::write(
        &qs,
        format!("{lines}{}\n", serde_json::json!({"video": "zz", "split": "eval", "family": "p", "question": "q?", "options": ["a", "b"], "answer": 0})),
    )
    .unwrap();
    assert_one_line_exit_2(&vislaw(&["dataset", qs.to_str().unwrap(), "--features", f]), "video 'zz'");
    assert!(!feats.join("questions.jsonl").exists(), "nothing written on a missing video");
    std::fs::write(&qs, &lines).unwrap();
    let data = d.path().join("data");
    let out = vislaw(&["dataset", qs.to_str().unwrap(), "--features", f, "-o", data.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("frames: 3, grid: 4, dim: 32"));
    let first: serde_json::Value = serde_json::from_str(std::fs::read_to_string(data.join("questions.jsonl")).unwrap().lines().next().unwrap()).unwrap();
    // Sorted vocabulary after the pad (id 0): ? bright clip does is it move no the yes.
    assert_eq!(first["prompt"], serde_json::json!([5, 9, 3, 2, 1]));
    assert_eq!(first["options"], serde_json::json!([[10], [8]]));

    // The sweep reads it, VisionZip included (it needs the attention and keys).
    let cfg = d.path().join("sweep.yaml");
    std::fs::write(&cfg, SWEEP.replace("DIR", data.to_str().unwrap())).unwrap();
    let results = d.path().join("results");
    let out = vislaw(&["sweep", cfg.to_str().unwrap(), "--device", "cpu", "--results", results.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(results.join("encoded").join("results.parquet").exists());
}

#[test]
fn bad_encoder_input_is_one_line_exit_2_and_writes_nothing() {
    let d = tempfile::tempdir().unwrap();
    let video = d.path().join("v.mp4");
    make_video(&video, "testsrc");
    let out_dir = d.path().join("out");
    let (v, o) = (video.to_str().unwrap(), out_dir.to_str().unwrap());
    let empty = d.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    assert_one_line_exit_2(&vislaw(&["encode", v, "--encoder", empty.to_str().unwrap(), "--out", o]), "no config.json");
    std::fs::write(empty.join("config.json"), r#"{"architectures": ["ViTModel"]}"#).unwrap();
    assert_one_line_exit_2(
        &vislaw(&["encode", v, "--encoder", empty.to_str().unwrap(), "--out", o]),
        "supported: SiglipVisionModel, SiglipModel, CLIPVisionModel, CLIPModel",
    );
    let tower = tiny_tower(d.path());
    let t = tower.to_str().unwrap();
    assert_one_line_exit_2(&vislaw(&["encode", v, "--encoder", t, "--out", o, "--layer", "3"]), "--layer: 3 is outside the tower's hidden states 0..=2");
    assert_one_line_exit_2(&vislaw(&["encode", v, "--encoder", t, "--out", o, "--layer", "-4"]), "--layer");
    assert_one_line_exit_2(&vislaw(&["encode", "/nonexistent.mp4", "--encoder", t, "--out", o]), "/nonexistent.mp4");
    std::fs::remove_file(tower.join("model.safetensors")).unwrap();
    assert_one_line_exit_2(&vislaw(&["encode", v, "--encoder", t, "--out", o]), "no weights");
    assert!(!out_dir.exists(), "nothing written on bad input");
}
