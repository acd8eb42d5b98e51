//! `vislaw-bench hf-train` on a tiny random checkpoint (built at test time by
//! tests/lm_fixture.py): vislaw and both transformers attention implementations run under the
//! protocol and every row has numbers; a missing checkpoint, a sequence longer than the
//! model's context, an unknown attention implementation and a missing Python side are one-line
//! errors with exit code 2.
mod lm_common;

use std::process::{Command, Output};

fn vislaw_bench(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vislaw-bench")).args(args).current_dir(env!("CARGO_MANIFEST_DIR")).output().expect("the vislaw-bench binary runs")
}

/// min, median and max of the table row whose label and side start `prefix`.
fn row(stdout: &str, prefix: &str) -> [f64; 3] {
    let line = stdout.lines().find(|l| l.trim_start().starts_with(prefix)).unwrap_or_else(|| panic!("no row '{prefix}' in:\n{stdout}"));
    let nums: Vec<f64> = line.split_whitespace().rev().take(3).map(|x| x.parse().unwrap_or_else(|_| panic!("not a number in '{line}'"))).collect();
    [nums[2], nums[1], nums[0]]
}

fn assert_input_error(out: &Output, needle: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.trim().lines().count(), 1, "not one line: {stderr}");
    assert!(stderr.contains(needle), "'{needle}' not in: {stderr}");
}

#[test]
fn both_sides_run_and_bad_input_is_a_one_line_error() {
    let dir = tempfile::tempdir().unwrap();
    let ck = lm_common::fixture(dir.path(), "llama_tied", 3);
    let ck = ck.to_str().unwrap();
    let tiny =
        ["hf-train", "--model", ck, "--batch", "2", "--visual", "4", "--dim", "8", "--hidden", "16", "--text-tokens", "3", "--steps", "2", "--threads", "1"];
    let mut args = tiny.to_vec();
    args.extend(["--repeats", "2"]);
    let out = vislaw_bench(&args);
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "{}\n{stdout}", String::from_utf8_lossy(&out.stderr));
    for prefix in ["samples/s                      vislaw (tch)", "samples/s                      transformers", "tokens/s                       transformers"]
    {
        let [min, median, max] = row(&stdout, prefix);
        assert!(min > 0.0 && min <= median && median <= max && max.is_finite(), "{prefix}: {min} {median} {max}");
    }
    for attn in ["sdpa", "eager"] {
        assert!(stdout.contains(&format!("attn {attn}")) && stdout.contains(&format!("vislaw / transformers ({attn}): ")), "{attn}: {stdout}");
    }
    assert!(stdout.contains("2 timed repeat(s) per side, interleaved: vislaw, transformers") && stdout.contains("threads: 1 intra-op"), "{stdout}");
    assert!(stdout.contains("sequence 7") && stdout.contains("logical cores"), "{stdout}");

    let missing = dir.path().join("no-such-model");
    assert_input_error(&vislaw_bench(&["hf-train", "--model", missing.to_str().unwrap(), "--skip-torch"]), "config.json");
    let mut long = tiny.to_vec();
    long[6] = "300"; // --visual 300 + 3 answer tokens > max_position_embeddings 256
    assert_input_error(&vislaw_bench(&long), "--visual");
    let mut attn = tiny.to_vec();
    attn.extend(["--attn", "flash"]);
    assert_input_error(&vislaw_bench(&attn), "--attn");
    let mut no_python = tiny.to_vec();
    no_python.extend(["--repeats", "1", "--python", "/nonexistent/python"]);
    assert_input_error(&vislaw_bench(&no_python), "--skip-torch");
}
