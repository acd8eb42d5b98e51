//! FLOPs per point and optima under FLOPs budgets, end to end: the tiny sweep's rows carry
//! the cost columns its `cost.json` gives, the analysis solves `sweep.budgets_flops`, and
//! `vislaw optimum --budget-flops` answers within the budget, with its errors named.
use polars::prelude::*;
use std::process::{Command, Output};

const TINY: &str = include_str!("data/tiny.yaml");

fn vislaw(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vislaw")).args(args).env("CUDA_VISIBLE_DEVICES", "").output().expect("binary runs")
}

fn ok(out: &Output) -> String {
    assert!(out.status.success(), "stdout: {}\nstderr: {}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn f64s(df: &DataFrame, name: &str) -> Vec<f64> {
    df.column(name).unwrap().cast(&DataType::Float64).unwrap().f64().unwrap().iter().map(|v| v.unwrap()).collect()
}

/// total = k0 + k_T·T + k_V·V + k_VV·V² from cost.json's parts, evaluated here on their own.
fn total(model: &serde_json::Value, t: f64, m: f64) -> [f64; 4] {
    let lin = |part: &str| {
        let p = &model[part];
        p["fixed"].as_f64().unwrap() + p["per_frame"].as_f64().unwrap() * t + p["per_token"].as_f64().unwrap() * t * m
    };
    let lm = &model["lm"];
    let n = t * m + lm["text_tokens"].as_f64().unwrap();
    let lm_flops = lm["fixed"].as_f64().unwrap() + lm["per_token"].as_f64().unwrap() * n + lm["per_token_sq"].as_f64().unwrap() * n * n;
    [lin("encoder"), lin("reducer") + lin("projector"), lm_flops, lin("encoder") + lin("reducer") + lin("projector") + lm_flops]
}

#[test]
fn rows_carry_flops_and_the_optimum_stays_within_flops_budgets() {
    let d = tempfile::tempdir().unwrap();
    let cfg = d.path().join("tiny.yaml");
    std::fs::write(
        &cfg,
        TINY.replace("seeds: [0]", "seeds: [0]\n  budgets_flops: [6.0e5, 1.5e6]")
            .replace("frames: [2, 4]", "frames: [1, 2, 4]")
            .replace("tokens_per_frame: [1, 4]", "tokens_per_frame: [1, 4, 9]"),
    )
    .unwrap();
    let results = d.path().join("results");
    ok(&vislaw(&["sweep", cfg.to_str().unwrap(), "--device", "cpu", "--results", results.to_str().unwrap(), "--jobs", "2"]));
    let run = results.join("tiny");
    let df = ParquetReader::new(std::fs::File::open(run.join("results.parquet")).unwrap()).finish().unwrap();
    let costs: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(run.join("cost.json")).unwrap()).unwrap();
    let strategy: Vec<String> = df.column("strategy").unwrap().str().unwrap().iter().map(|s| s.unwrap().to_string()).collect();
    let (t, m) = (f64s(&df, "frames"), f64s(&df, "tokens_per_frame"));
    let (enc, red, proj, lm, all) =
        (f64s(&df, "flops_encoder"), f64s(&df, "flops_reducer"), f64s(&df, "flops_projector"), f64s(&df, "flops_lm"), f64s(&df, "flops"));
    for i in 0..df.height() {
        let [e, rp, l, tot] = total(&costs["strategies"][&strategy[i]], t[i], m[i]);
        assert!((enc[i] - e).abs() <= 1e-9 * e && (red[i] + proj[i] - rp).abs() <= 1e-9 * rp && (lm[i] - l).abs() <= 1e-9 * l, "row {i}");
        assert!((all[i] - tot).abs() <= 1e-9 * tot && (enc[i] + red[i] + proj[i] + lm[i] - all[i]).abs() <= 1e-9 * all[i]);
        assert!(e > 0.0, "the synthetic encoder is counted for deployment");
    }
    // Pooling sums the grid; sampling does not compute.
    let pool = strategy.iter().position(|s| s == "pool/sample").unwrap();
    let sample = strategy.iter().position(|s| s == "sample/sample").unwrap();
    assert!(red[pool] > 0.0 && red[sample] == 0.0);
    assert!(f64s(&df, "lm_params").iter().all(|&n| n == f64s(&df, "lm_params")[0] && n > 0.0));

    // The analysis solved the config's FLOPs budgets beside the T·M optimum.
    let saved: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(run.join("optimum.json")).unwrap()).unwrap();
    let flops = saved["flops_optima"].as_array().map_or(0, |a| a.len());
    assert!(flops > 0, "{}", saved["warnings"]);

    let report = std::fs::read_to_string(run.join("report.md")).unwrap();
    assert!(report.contains("## Optimum under a FLOPs budget") && report.contains("| pool/sample |"), "{report}");

    // On the command line: every answer within its budget.
    let budget = total(&costs["strategies"]["pool/sample"], 3.0, 2.0)[3];
    let out = ok(&vislaw(&["optimum", run.to_str().unwrap(), "--budget-flops", &budget.to_string(), "--json"]));
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    let optima = doc["flops_optima"].as_array().unwrap();
    assert!(!optima.is_empty(), "{}", doc["warnings"]);
    for o in optima {
        assert!(o["continuous_flops"].as_f64().unwrap() <= budget * (1.0 + 1e-9));
        if let Some(f) = o["discrete_flops"].as_f64() {
            let (dt, dm) = (o["discrete"]["T"].as_f64().unwrap(), o["discrete"]["M"].as_f64().unwrap());
            assert!(f <= budget && (f - total(&costs["strategies"][o["group"].as_str().unwrap()], dt, dm)[3]).abs() <= 1e-6 * f);
        }
    }
    let table = ok(&vislaw(&["optimum", run.to_str().unwrap(), "--budget-flops", &budget.to_string()]));
    assert!(table.contains("FLOPs budget"), "{table}");

    // Errors: a bad budget and a missing cost model name what is wrong, exit 2.
    let bad = vislaw(&["optimum", run.to_str().unwrap(), "--budget-flops=-3"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("--budget-flops"));
    let lone = d.path().join("lone");
    std::fs::create_dir(&lone).unwrap();
    std::fs::copy(run.join("fits.json"), lone.join("fits.json")).unwrap();
    let missing = vislaw(&["optimum", lone.join("fits.json").to_str().unwrap(), "--budget-flops", "1e6"]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("cost.json"), "{}", String::from_utf8_lossy(&missing.stderr));
    let given = vislaw(&[
        "optimum",
        lone.join("fits.json").to_str().unwrap(),
        "--budget-flops",
        &budget.to_string(),
        "--cost",
        run.join("cost.json").to_str().unwrap(),
    ]);
    ok(&given);
}
