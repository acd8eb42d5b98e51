//! End-to-end tests of `vislaw optimum` on a table measured at T ≤ 16: an optimum outside
//! the measured ranges is flagged (text and JSON), `--within-data` keeps it inside,
//! and the model-aware settings carry their predicted loss, their gap and the caps that bind.
use serde_json::Value;
use std::process::{Command, Output};

fn vislaw(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vislaw")).args(args).current_dir(env!("CARGO_MANIFEST_DIR")).output().expect("the vislaw binary runs")
}

fn text(args: &[&str]) -> String {
    let out = vislaw(args);
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

fn json(args: &[&str]) -> Value {
    serde_json::from_str(&text(args)).expect("one JSON document on stdout")
}

/// The planted additive law: its optimum at L = 6272 is T* ≈ 40, far past T = 16.
fn planted(t: f64, m: f64) -> f64 {
    1.5 + 2.0 * t.powf(-0.6) + 3.0 * m.powf(-0.45)
}

const TS: [i64; 5] = [1, 2, 4, 8, 16];
const MS: [i64; 6] = [1, 4, 9, 16, 49, 196];

fn wiggle(t: i64, m: i64) -> f64 {
    1.0 + 0.004 * (((t * 7 + m * 3) % 11) as f64 - 5.0) / 5.0
}

/// A CSV measured at T ≤ 16 and M ≤ 196, fitted; returns the directory holding both files.
fn fitted_csv() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let mut csv = String::from("frames,tokens_per_frame,loss\n");
    for t in TS {
        for m in MS {
            csv += &format!("{t},{m},{}\n", planted(t as f64, m as f64) * wiggle(t, m));
        }
    }
    let path = dir.path().join("results.csv");
    std::fs::write(&path, csv).unwrap();
    let out = vislaw(&["fit", path.to_str().unwrap(), "--bootstrap", "30", "--coarse-grid"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    dir
}

fn fits(dir: &tempfile::TempDir) -> String {
    dir.path().join("fits.json").to_str().unwrap().to_string()
}

fn num(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

#[test]
fn a_fit_records_the_ranges_it_was_fitted_on() {
    let dir = fitted_csv();
    let v: Value = serde_json::from_str(&std::fs::read_to_string(fits(&dir)).unwrap()).unwrap();
    let r = &v["fits"][0]["ranges"];
    assert_eq!((num(&r["x"][0]), num(&r["x"][1])), (1.0, 16.0), "{r}");
    assert_eq!((num(&r["y"][0]), num(&r["y"][1])), (1.0, 196.0), "{r}");
}

#[test]
fn an_optimum_outside_the_measured_box_is_flagged_in_text_and_json() {
    let dir = fitted_csv();
    let f = fits(&dir);
    let v = json(&["optimum", &f, "--budget", "6272", "--target-loss", "1.75", "--json"]);
    let o = &v["optima"][0];
    assert_eq!(o["measured"]["T"], serde_json::json!([1.0, 16.0]));
    assert_eq!(o["measured"]["M"], serde_json::json!([1.0, 196.0]));
    let t = num(&o["continuous"]["T"]);
    assert!(t > 30.0, "the planted optimum lies far past T = 16: {o}");
    // The factor is T / 16 for a T above the range; M* stays inside and reads 1.
    assert!((num(&o["extrapolation"]["T"]) - t / 16.0).abs() < 1e-9, "{o}");
    assert_eq!(num(&o["extrapolation"]["M"]), 1.0);
    assert!((num(&o["discrete_extrapolation"]["T"]) - num(&o["discrete"]["T"]) / 16.0).abs() < 1e-12, "{o}");
    // The target-loss answer carries the same record.
    let target = &v["targets"][0];
    assert!(num(&target["extrapolation"]["T"]) > 1.0 && num(&target["extrapolation"]["M"]) > 1.0, "{target}");
    assert!(v.get("within_data").is_none(), "not restricted: {v}");

    let table = text(&["optimum", &f, "--budget", "6272", "--target-loss", "1.75"]);
    assert!(table.contains("measured    T in [1, 16], M in [1, 196]"), "{table}");
    let flagged: Vec<&str> = table.lines().filter(|l| l.contains("EXTRAPOLATED continuous: T = ")).collect();
    assert_eq!(flagged.len(), 2, "the optimum and the target budget: {table}");
    assert!(flagged[0].contains(&format!("is {:.2}× the largest measured T (16)", t / 16.0)), "{table}");
    assert!(table.contains("EXTRAPOLATED discrete: T = "), "{table}");
    assert!(table.contains("--within-data keeps the search inside them"), "{table}");
}

#[test]
fn within_data_keeps_the_optimum_inside_the_measured_box() {
    let dir = fitted_csv();
    let f = fits(&dir);
    let v = json(&["optimum", &f, "--budget", "6272", "--budget", "100", "--within-data", "--json"]);
    assert_eq!(v["within_data"], true);
    for o in v["optima"].as_array().unwrap() {
        for key in ["continuous", "discrete"] {
            let (t, m) = (num(&o[key]["T"]), num(&o[key]["M"]));
            assert!((1.0..=16.0).contains(&t) && (1.0..=196.0).contains(&m), "{key} outside the box: {o}");
            assert!(t * m <= num(&o["budget"]) * (1.0 + 1e-12), "{o}");
        }
        for key in ["extrapolation", "discrete_extrapolation"] {
            assert_eq!((num(&o[key]["T"]), num(&o[key]["M"])), (1.0, 1.0), "{o}");
        }
    }
    // At L = 100 the optimum is interior to the box, so it is the unrestricted one.
    let free = json(&["optimum", &f, "--budget", "100", "--json"]);
    let inside = v["optima"].as_array().unwrap().iter().find(|o| num(&o["budget"]) == 100.0).unwrap();
    assert_eq!(free["optima"][0]["continuous"], inside["continuous"]);
    assert_eq!(free["optima"][0]["discrete"], inside["discrete"]);

    // A target the box cannot reach is unreachable, not answered by extrapolating.
    let t = json(&["optimum", &f, "--target-loss", "1.75", "--within-data", "--json"]);
    assert!(t["targets"][0]["continuous"].is_null() && t["targets"][0]["discrete"].is_null(), "{t}");
    let table = text(&["optimum", &f, "--budget", "6272", "--target-loss", "1.75", "--within-data"]);
    assert!(!table.contains("EXTRAPOLATED"), "{table}");
    assert!(table.contains("unreachable within the measured ranges"), "{table}");
    assert!(table.contains("T* = 16.0000"), "{table}");
}

#[test]
fn a_fits_file_without_recorded_ranges_reads_them_from_its_rows() {
    let dir = fitted_csv();
    let path = fits(&dir);
    let mut v: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    v["fits"][0].as_object_mut().unwrap().remove("ranges");
    let old = dir.path().join("old.json");
    std::fs::write(&old, v.to_string()).unwrap();
    let o = json(&["optimum", old.to_str().unwrap(), "--budget", "6272", "--json"]);
    assert_eq!(o["optima"][0]["measured"]["T"], serde_json::json!([1.0, 16.0]));
    assert!(num(&o["optima"][0]["extrapolation"]["T"]) > 1.0);
}

/// The fitted additive law of `fits.json` at (T, M).
fn fitted_loss(fits: &Value, t: f64, m: f64) -> f64 {
    let p = &fits["fits"][0]["params"];
    let g = |k: &str| num(&p[k]);
    g("E") + g("A") * t.powf(-g("alpha")) + g("B") * m.powf(-g("beta"))
}

#[test]
fn model_settings_carry_their_predicted_loss_and_gap_under_the_familys_own_names() {
    let dir = fitted_csv();
    let f = fits(&dir);
    let law: Value = serde_json::from_str(&std::fs::read_to_string(&f).unwrap()).unwrap();
    let names = [
        ("qwen2-vl", vec!["max_pixels", "min_pixels", "nframes"]),
        ("qwen2.5-vl", vec!["max_pixels", "min_pixels", "nframes"]),
        ("internvl-1.5", vec!["max_num", "num_segments"]),
        ("llava-onevision", vec!["max_frames_num", "mm_spatial_pool_mode"]),
        ("oryx", vec!["frames_upbound", "modality"]),
    ];
    for (model, keys) in names {
        let v = json(&["optimum", &f, "--budget", "6272", "--model", model, "--video", "1280x720@30,60", "--json"]);
        let (o, s) = (&v["optima"][0], &v["model_settings"][0]);
        let native = s["native_settings"].as_object().unwrap();
        assert_eq!(native.keys().collect::<Vec<_>>(), keys, "{model}: {s}");
        let frames_key = *keys.iter().find(|k| ["nframes", "num_segments", "max_frames_num", "frames_upbound"].contains(k)).unwrap();
        let frames = &native[frames_key];
        assert_eq!(frames, &s["settings"]["frames"], "{model}");
        // The loss is the fit's at the (T, M) the settings really give.
        let (t, m) = (num(&s["T"]), num(&s["M"]));
        assert_eq!(t, num(&s["settings"]["frames"]));
        assert_eq!(m, num(&s["count"]["tokens_per_frame"]));
        let loss = num(&s["predicted_loss"]);
        assert!((loss - fitted_loss(&law, t, m)).abs() < 1e-9, "{model}: {s}");
        assert!((num(&s["gap"]["continuous"]) - (loss - num(&o["continuous"]["loss"]))).abs() < 1e-12);
        assert!((num(&s["gap"]["discrete"]) - (loss - num(&o["discrete"]["loss"]))).abs() < 1e-12);
        assert!(num(&s["gap"]["continuous"]) >= -1e-12, "no setting within the budget beats the optimum: {s}");
        assert!((num(&s["extrapolation"]["T"]) - (t / 16.0).max(1.0)).abs() < 1e-9, "{model}: {s}");

        let table = text(&["optimum", &f, "--budget", "6272", "--model", model, "--video", "1280x720@30,60"]);
        let line = table
            .lines()
            .find(|l| l.starts_with(&format!("all at L = 6272: {model} settings {{")))
            .unwrap_or_else(|| panic!("the existing line stays: {table}"));
        assert!(line.ends_with(&format!("→ {} visual tokens", s["tokens"])), "{line}");
        let pasted: Vec<String> = keys.iter().map(|k| format!("{k}={}", native[*k])).collect();
        assert!(pasted.iter().all(|p| table.contains(p.as_str())), "{pasted:?} in {table}");
        assert!(table.contains(&format!("predicted loss {loss:.4} at T = ")), "{table}");
        assert!(table.contains(&format!("{:+.4} vs the continuous optimum", num(&s["gap"]["continuous"]))), "{table}");
    }
}

#[test]
fn every_cap_that_binds_is_explained() {
    let dir = fitted_csv();
    let f = fits(&dir);
    // 2 fps for 5 s has 10 frames: far from what 20000 tokens could pay for.
    let v = json(&["optimum", &f, "--budget", "20000", "--model", "qwen2-vl", "--video", "1280x720@2,5", "--json"]);
    let s = &v["model_settings"][0];
    let caps = s["caps"].as_array().unwrap();
    assert!(caps.iter().any(|c| c["cap"] == "clip_frames" && c["frames"] == 10 && c["clip_frames"] == 10), "{s}");
    assert!(num(&s["tokens"]) < 10_000.0);
    let table = text(&["optimum", &f, "--budget", "20000", "--model", "qwen2-vl", "--video", "1280x720@2,5"]);
    assert!(table.contains("cap: the clip has only 10 frames (fps × duration), and all 10 are used"), "{table}");

    // Qwen2.5-VL's total_pixels limits the frames of a long clip at a large per-frame cost.
    let v = json(&["optimum", &f, "--budget", "200000", "--model", "qwen2.5-vl", "--video", "1280x720@30,600", "--json"]);
    let caps = v["model_settings"][0]["caps"].as_array().unwrap().clone();
    assert!(caps.iter().any(|c| c["cap"] == "total_pixels" && c["words"].as_str().unwrap().contains("total_pixels = 90316800")), "{caps:?}");

    // LLaVA-OneVision's cheapest frame (169) costs more than the optimum's M at L = 300.
    let v = json(&["optimum", &f, "--budget", "300", "--model", "llava-onevision", "--video", "1280x720@30,60", "--json"]);
    let (o, s) = (&v["optima"][0], &v["model_settings"][0]);
    assert!(num(&o["discrete"]["M"]) < 169.0, "{o}");
    assert_eq!(num(&s["unreachable_m"]), num(&o["discrete"]["M"]));
    let table = text(&["optimum", &f, "--budget", "300", "--model", "llava-onevision", "--video", "1280x720@30,60"]);
    assert!(table.contains("cap: no llava-onevision setting costs at most M = "), "{table}");
    // The per-frame step below M and the remainder are named too.
    let table = text(&["optimum", &f, "--budget", "6272", "--model", "qwen2-vl", "--video", "1280x720@30,60"]);
    assert!(table.contains("cap: qwen2-vl's largest per-frame cost at or below M = 196 is 195 tokens"), "{table}");
    assert!(table.contains("less than one more group of 2 frames (390 tokens)"), "{table}");
}
