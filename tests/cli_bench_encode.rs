//! `vislaw-bench encode` at a tiny size: both sides run (the transformers tower and the plain
//! ffmpeg pipe through the project's Python), every row has numbers, and a missing Python side
//! is an error, never a silent vislaw-only run.
use std::process::{Command, Output};

fn vislaw_bench(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vislaw-bench")).args(args).current_dir(env!("CARGO_MANIFEST_DIR")).output().expect("the vislaw-bench binary runs")
}

/// A tiny tower; the frames and fps follow.
const TINY: [&str; 16] =
    ["encode", "--batch", "2", "--image-size", "32", "--patch", "8", "--width", "32", "--layers", "2", "--heads", "4", "--warmup", "0", "--repeats"];

/// min, median and max of the table row whose label and side start `prefix`.
fn row(stdout: &str, prefix: &str) -> [f64; 3] {
    let line = stdout.lines().find(|l| l.trim_start().starts_with(prefix)).unwrap_or_else(|| panic!("no row '{prefix}' in:\n{stdout}"));
    let nums: Vec<f64> = line.split_whitespace().rev().take(3).map(|x| x.parse().unwrap_or_else(|_| panic!("not a number in '{line}'"))).collect();
    [nums[2], nums[1], nums[0]]
}

#[test]
fn both_sides_run_on_the_same_frames_and_report_min_median_max() {
    let dir = tempfile::tempdir().unwrap();
    let mut args = TINY.to_vec();
    args.extend(["2", "--frames", "5", "--fps", "5", "--out", dir.path().to_str().unwrap()]);
    let out = vislaw_bench(&args);
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{}\n{stdout}", String::from_utf8_lossy(&out.stderr));
    for prefix in [
        "frames/s                       vislaw (tch)",
        "frames/s                       transformers",
        "frames/s                       vislaw (ffprobe",
        "frames/s                       vislaw (ffmpeg select only)",
        "frames/s                       plain ffmpeg",
    ] {
        let [min, median, max] = row(&stdout, prefix);
        assert!(min > 0.0 && min <= median && median <= max && max.is_finite(), "{prefix}: {min} {median} {max}");
    }
    assert!(stdout.contains("machine: ") && stdout.contains("logical cores"), "{stdout}");
    assert!(stdout.contains("2 timed repeat(s) per side, interleaved: vislaw, transformers"), "{stdout}");
    assert!(stdout.contains("ratio of medians, tower frames/s vislaw / transformers"), "{stdout}");
    // The frames both towers read: 5 frames of 32×32×3 u8 after a 64-byte-aligned .npy header.
    let npy = std::fs::read(dir.path().join("frames.npy")).unwrap();
    let header = u16::from_le_bytes([npy[8], npy[9]]) as usize;
    assert_eq!(npy.len() - 10 - header, 5 * 32 * 32 * 3);
    assert!(npy[10 + header..].iter().any(|&b| b != npy[10 + header]), "the frames are not blank");
    assert!(dir.path().join("tower/config.json").exists());
}

#[test]
fn a_missing_python_side_is_an_error() {
    let mut args = TINY.to_vec();
    args.extend(["1", "--frames", "5", "--fps", "5", "--python", "/nonexistent/python"]);
    let out = vislaw_bench(&args);
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
    assert!(stderr.contains("/nonexistent/python"), "{stderr}");
    assert!(!String::from_utf8_lossy(&out.stdout).contains("frames/s"), "no vislaw-only figures: {}", String::from_utf8_lossy(&out.stdout));
}

#[test]
fn bad_sizes_are_one_line_errors_naming_the_flag() {
    for (extra, needle) in [(["--frames", "0", "--fps", "5"], "--frames"), (["--frames", "5", "--fps", "0"], "--fps")] {
        let mut args = TINY.to_vec();
        args.push("1");
        args.extend(extra);
        let out = vislaw_bench(&args);
        let stderr = String::from_utf8_lossy(&out.stderr).to_string();
        assert_eq!(out.status.code(), Some(2), "{extra:?}: {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
        assert!(stderr.contains(needle), "{extra:?}: {stderr}");
    }
}
