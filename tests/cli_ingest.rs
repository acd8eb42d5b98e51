//! End-to-end tests of `vislaw ingest lmms-eval`: lmms-eval-format results of one model at
//! several frame and token counts, ingested, then fitted and solved with `vislaw fit` and
//! `vislaw optimum`; and bad input giving a one-line error with exit code 2.
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn vislaw(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vislaw")).args(args).current_dir(env!("CARGO_MANIFEST_DIR")).output().expect("the vislaw binary runs")
}

fn ok(args: &[&str]) -> String {
    let out = vislaw(args);
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// The planted error rate (1 − accuracy) of the runs: additive in T and M.
fn planted_error(t: f64, m: f64) -> f64 {
    0.2 + 0.5 * t.powf(-0.5) + 0.3 * m.powf(-0.4)
}

/// One run as lmms-eval writes it: `<out>/<model>/<date_id>_results.json`, its accuracy a
/// percentage (as Video-MME reports it), the frame count in `model_args`.
fn write_run(root: &Path, t: i64, m: i64, with_args: bool) -> PathBuf {
    let dir = root.join(format!("run_t{t}_m{m}")).join("llava_onevision");
    std::fs::create_dir_all(&dir).unwrap();
    let acc = 100.0 * (1.0 - planted_error(t as f64, m as f64));
    let args =
        if with_args { format!("pretrained=lmms-lab/llava-onevision-qwen2-7b-ov,max_frames_num={t},tokens_per_frame={m}") } else { "pretrained=x".into() };
    let text = format!(
        r#"{{"results": {{"videomme": {{"alias": "videomme", "videomme_perception_score,none": {acc}, "videomme_perception_score_stderr,none": "N/A"}}}},
           "n-samples": {{"videomme": {{"original": 2700, "effective": 2700}}}},
           "config": {{"model": "llava_onevision", "model_args": "{args}", "batch_size": "1", "device": "cuda"}},
           "date": "20260101_120000"}}"#
    );
    let path = dir.join("20260101_120000_results.json");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn ingested_lmms_eval_runs_fit_back_their_planted_law_and_solve_an_optimum() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("logs");
    for t in [1, 2, 4, 8, 16, 32] {
        for m in [4, 16, 49, 196] {
            write_run(&root, t, m, true);
        }
    }
    let table = dir.path().join("lmms.parquet");
    let said = ok(&["ingest", "lmms-eval", root.to_str().unwrap(), "-o", table.to_str().unwrap()]);
    assert!(said.contains("24 rows from 24 results files"), "{said}");
    let t = table.to_str().unwrap();
    let v: Value =
        serde_json::from_str(&ok(&["fit", t, "--metric", "score", "--error", "--coarse-grid", "--bootstrap", "0", "--holdout", "0", "--json"])).unwrap();
    let fit = &v["fits"][0];
    let p = &fit["params"];
    // Noise-free data on 24 points: the planted parameters come back to well within 1%.
    for (name, want) in [("E", 0.2), ("A", 0.5), ("alpha", 0.5), ("B", 0.3), ("beta", 0.4)] {
        let got = p[name].as_f64().unwrap_or_else(|| panic!("{name} in {p}"));
        assert!((got - want).abs() < 0.01 * want, "{name}: {got} vs {want}");
    }
    let fits = dir.path().join("fits.json");
    assert!(fits.exists());
    let o: Value = serde_json::from_str(&ok(&[
        "optimum",
        fits.to_str().unwrap(),
        "--budget",
        "1024",
        "--feasible-m",
        "4,16,49,196",
        "--feasible-t",
        "1,2,4,8,16,32",
        "--json",
    ]))
    .unwrap();
    let best = &o["optima"][0]["discrete"];
    let (bt, bm) = (best["T"].as_f64().unwrap(), best["M"].as_f64().unwrap());
    // The brute-force best of the reachable settings with T·M ≤ 1024 under the planted law.
    let mut want = (f64::INFINITY, 0.0, 0.0);
    for t in [1.0, 2.0, 4.0, 8.0, 16.0, 32.0] {
        for m in [4.0, 16.0, 49.0, 196.0] {
            if t * m <= 1024.0 && planted_error(t, m) < want.0 {
                want = (planted_error(t, m), t, m);
            }
        }
    }
    assert_eq!((bt, bm), (want.1, want.2), "{o}");
}

#[test]
fn frames_and_tokens_per_file_override_model_args() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (write_run(dir.path(), 1, 1, false), write_run(dir.path(), 2, 2, false));
    let table = dir.path().join("t.csv");
    let (a, b, t) = (a.to_str().unwrap(), b.to_str().unwrap(), table.to_str().unwrap());
    ok(&["ingest", "lmms-eval", a, b, "-o", t, "--frames", "8", "--frames", "16", "--tokens-per-frame", "196"]);
    let csv = std::fs::read_to_string(&table).unwrap();
    let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let rows: Vec<Vec<&str>> = csv.lines().skip(1).map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.iter().map(|r| (r[col("frames")], r[col("tokens_per_frame")])).collect::<Vec<_>>(), [("8", "196"), ("16", "196")]);
    assert_eq!(rows[0][col("se_method")], "none");
}

#[test]
fn bad_input_is_one_line_naming_the_file_or_flag() {
    let dir = tempfile::tempdir().unwrap();
    let a = write_run(dir.path(), 1, 1, false);
    let a = a.to_str().unwrap();
    let out_path = dir.path().join("t.parquet");
    let o = out_path.to_str().unwrap();
    for (args, needle) in [
        (vec!["ingest", "lmms-eval", a, "-o", o], "no frame count"),
        (vec!["ingest", "lmms-eval", a, "-o", o, "--frames", "4", "--frames", "8"], "--frames"),
        (vec!["ingest", "lmms-eval", a, "-o", "t.json", "--frames", "4", "--tokens-per-frame", "9"], "--out"),
        (vec!["ingest", "lmms-eval", "/no/such/dir", "-o", o], "/no/such/dir"),
    ] {
        let out = vislaw(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
        assert!(!out_path.exists(), "nothing written on bad input");
    }
}
