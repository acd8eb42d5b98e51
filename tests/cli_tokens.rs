//! End-to-end tests of `vislaw tokens`: worked numbers through `--json`, and bad input giving a
//! one-line error that names the flag with exit code 2.
use std::process::{Command, Output};

fn vislaw(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vislaw")).arg("tokens").args(args).output().expect("the vislaw binary runs")
}

fn json(args: &[&str]) -> serde_json::Value {
    let out = vislaw(args);
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(text.trim().lines().count(), 1, "one JSON object on one line: {text}");
    serde_json::from_str(&text).unwrap()
}

fn fails_with(args: &[&str], flag: &str) {
    let out = vislaw(args);
    assert_eq!(out.status.code(), Some(2), "{args:?}");
    assert!(out.stdout.is_empty(), "{args:?}");
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
    assert!(stderr.contains(flag), "{args:?}: {stderr}");
}

#[test]
fn qwen2_vl_image_worked_number_via_json() {
    let v = json(&["--model", "qwen2-vl", "--size", "1280x720", "--json"]);
    assert_eq!(v["tokens"], 1196);
    assert_eq!(v["tokens_per_image"], 1196);
    assert_eq!(v["resized_width"], 1288);
    assert_eq!(v["resized_height"], 728);
    assert_eq!(v["family"], "qwen2-vl");
    assert_eq!(v["media"], "image");
}

#[test]
fn video_worked_numbers_via_json() {
    let v = json(&["--model", "qwen2-vl", "--video", "--size", "1280x720", "--fps", "30", "--duration", "60", "--json"]);
    assert_eq!((v["frames"].as_u64(), v["tokens"].as_u64()), (Some(120), Some(23_400)));
    let v = json(&["--model", "llava-onevision", "--video", "--size", "640x480", "--frames", "8", "--pooling", "average", "--json"]);
    assert_eq!(v["tokens_per_frame"], 169.0);
    assert_eq!(v["tokens"], 8 * 169 + 1);
    let v = json(&["--model", "internvl-1.5", "--size", "1920x1080", "--max-tiles", "6", "--json"]);
    assert_eq!(v["tokens"], 768);
}

#[test]
fn table_output_shows_the_counts() {
    let out = vislaw(&["--model", "llava-onevision", "--size", "1920x1080"]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("1920x1152"), "{text}");
    assert!(text.lines().any(|l| l.starts_with("tokens ") && l.trim_end().ends_with("7269")), "{text}");
}

#[test]
fn bad_input_is_one_line_naming_the_flag_with_exit_2() {
    fails_with(&["--model", "qwen2-vl", "--size", "1280by720"], "--size");
    fails_with(&["--model", "qwen2-vl", "--size", "0x720"], "--size");
    fails_with(&["--model", "qwen2-vl", "--size", "-1280x720"], "--size");
    fails_with(&["--model", "qwen2-vl", "--size", "30000x100"], "--size");
    fails_with(&["--model", "gpt-4v", "--size", "1280x720"], "--model");
    fails_with(&["--model", "oryx", "--video", "--size", "1280x720"], "--fps");
    fails_with(&["--model", "oryx", "--video", "--size", "1280x720", "--fps", "30"], "--duration");
    fails_with(&["--model", "oryx", "--video", "--size", "640x480", "--fps", "-3", "--duration", "5"], "--fps");
    fails_with(&["--model", "oryx", "--size", "640x480", "--compression", "8"], "--compression");
    fails_with(&["--model", "qwen2-vl", "--size", "640x480", "--max-tiles", "6"], "--max-tiles");
    fails_with(&["--model", "qwen2-vl", "--size", "640x480", "--frames", "8"], "--frames");
    fails_with(&["--model", "llava-onevision", "--video", "--size", "640x480", "--frames", "4", "--pooling", "max"], "--pooling");
}

fn table(args: &[&str]) -> String {
    let out = vislaw(args);
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn notes_explain_the_extra_newline_and_a_rounded_frame_count() {
    // LLaVA-OneVision: 10 frames × 196 tokens + the one newline after the video = 1,961.
    let llava = table(&["--model", "llava-onevision", "--size", "1280x720", "--video", "--fps", "1", "--duration", "10"]);
    assert!(llava.contains("note: tokens per video = 10 frames × 196 tokens + 1 extra token(s) (the newline token"), "{llava}");
    // Qwen2-VL: 2 fps × 10.5 s = 21 frames, counted as 20 (a multiple of its 2-frame patch).
    let qwen = table(&["--model", "qwen2-vl", "--size", "1280x720", "--video", "--fps", "2", "--duration", "10.5"]);
    assert!(qwen.contains("note: 21 frames asked") && qwen.contains("20 counted") && qwen.contains("FRAME_FACTOR 2"), "{qwen}");
    // Nothing to explain: no note.
    let even = table(&["--model", "qwen2-vl", "--size", "1280x720", "--video", "--fps", "2", "--duration", "10"]);
    assert!(!even.contains("note:"), "{even}");
}
