//! End-to-end tests of `vislaw plot`, `report` and `export-notebook` through the binary, on a
//! run directory built here: the quick sweep's cross design with two seeds, losses from a
//! planted additive law, and a fits.json in the fitter's schema.
use polars::prelude::*;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const FAMILIES: [&str; 5] = ["count", "detail", "motion", "needle", "order"];
/// The resolved config of the fixture run (the quick sweep's shape, fixed here so that
/// edits to configs/quick.yaml do not move the expected figures).
const CONFIG: &str = r#"
name: quick
data: {generator: synthetic, seed: 7, train_videos: 256, eval_videos: 96, frames: 16, grid: 8, dim: 32}
model:
  projector: {hidden: 64}
  lm: {layers: 2, heads: 4, width: 64, max_context: 160}
train: {steps: 150, batch: 32, lr: 0.003, warmup: 15, weight_decay: 0.01, trainable: [projector, lm], prior_steps: 200, log_every: 10}
sweep:
  design: cross
  center: {frames: 8, tokens_per_frame: 4, spatial: pool, temporal: sample}
  frames: [1, 2, 4, 8, 16]
  tokens_per_frame: [1, 4, 9, 16]
  spatial: [pool, sample]
  temporal: [sample, pool]
  budgets: [32, 64, 128]
  seeds: [0, 1]
"#;

/// The planted law: E + A·T^−α + B·M^−β.
const LAW: [f64; 5] = [1.2, 0.8, 0.6, 0.5, 0.7];

fn vislaw(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vislaw")).args(args).env("CUDA_VISIBLE_DEVICES", "").output().expect("binary runs")
}

fn ok(out: Output) -> String {
    assert!(out.status.success(), "failed: {}\n{}", String::from_utf8_lossy(&out.stderr), String::from_utf8_lossy(&out.stdout));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Deterministic noise in [−1, 1].
fn noise(i: usize) -> f64 {
    ((i as f64 * 12.9898).sin() * 43_758.545).fract() * 2.0 - 1.0
}

fn planted(p: &[f64], t: f64, m: f64) -> f64 {
    p[0] + p[1] * t.powf(-p[2]) + p[3] * m.powf(-p[4])
}

/// The quick sweep's points: (spatial, temporal, T, M).
fn points() -> Vec<(&'static str, &'static str, i64, i64)> {
    let mut p = Vec::new();
    for m in [1, 4, 9, 16] {
        p.push(("pool", "sample", 8, m));
        p.push(("sample", "sample", 8, m));
    }
    for t in [1, 2, 4, 16] {
        p.push(("pool", "sample", t, 4));
    }
    for t in [1, 2, 4, 8, 16] {
        p.push(("pool", "pool", t, 4));
    }
    p
}

struct Row {
    strategy: String,
    spatial: String,
    temporal: String,
    frames: i64,
    tokens: i64,
    seed: i64,
    loss: f64,
    accuracy: f64,
}

fn rows() -> Vec<Row> {
    let mut out = Vec::new();
    for (i, (s, t, frames, tokens)) in points().into_iter().enumerate() {
        for seed in 0..2 {
            let k = 2 * i + seed as usize;
            let mut law = LAW;
            if s == "sample" {
                law[3] = 0.7;
            }
            let loss = planted(&law, frames as f64, tokens as f64) * (1.0 + 0.01 * noise(k));
            out.push(Row {
                strategy: format!("{s}/{t}"),
                spatial: s.into(),
                temporal: t.into(),
                frames,
                tokens,
                seed,
                loss,
                accuracy: (1.6 - 0.55 * loss + 0.01 * noise(k + 100)).clamp(0.0, 1.0),
            });
        }
    }
    out
}

fn results_frame(rows: &[Row]) -> DataFrame {
    let n = rows.len();
    let s = |f: &dyn Fn(&Row) -> String| rows.iter().map(f).collect::<Vec<String>>();
    let i = |f: &dyn Fn(&Row) -> i64| rows.iter().map(f).collect::<Vec<i64>>();
    let x = |f: &dyn Fn(&Row) -> f64| rows.iter().map(f).collect::<Vec<f64>>();
    let mut cols = vec![
        Column::new("key".into(), s(&|r| format!("{}-{}-{}-{}", r.strategy.replace('/', "-"), r.frames, r.tokens, r.seed))),
        Column::new("run".into(), vec!["fixture".to_string(); n]),
        Column::new("strategy".into(), s(&|r| r.strategy.clone())),
        Column::new("spatial".into(), s(&|r| r.spatial.clone())),
        Column::new("temporal".into(), s(&|r| r.temporal.clone())),
        Column::new("frames".into(), i(&|r| r.frames)),
        Column::new("tokens_per_frame".into(), i(&|r| r.tokens)),
        Column::new("visual_tokens".into(), i(&|r| r.frames * r.tokens)),
        Column::new("seed".into(), i(&|r| r.seed)),
        Column::new("trainable".into(), vec!["projector+lm".to_string(); n]),
        Column::new("steps".into(), vec![150i64; n]),
        Column::new("loss".into(), x(&|r| r.loss)),
        Column::new("loss_se".into(), vec![0.02; n]),
        Column::new("accuracy".into(), x(&|r| r.accuracy)),
        Column::new("accuracy_se".into(), vec![0.03; n]),
        Column::new("train_loss_final".into(), x(&|r| 0.9 * r.loss)),
    ];
    for (k, f) in FAMILIES.iter().enumerate() {
        let acc = x(&|r| (r.accuracy + 0.02 * (k as f64 - 2.0)).clamp(0.0, 1.0));
        cols.push(Column::new(format!("acc_{f}").into(), acc));
        cols.push(Column::new(format!("acc_{f}_se").into(), vec![0.05; n]));
        cols.push(Column::new(format!("loss_{f}").into(), x(&|r| r.loss * (1.0 + 0.1 * k as f64))));
    }
    cols.extend([
        Column::new("n_questions".into(), vec![480i64; n]),
        Column::new("n_videos".into(), vec![96i64; n]),
        Column::new("wall_s".into(), vec![30.0; n]),
        Column::new("samples_per_s".into(), vec![150.0; n]),
        Column::new("tokens_per_s".into(), vec![9000.0; n]),
        Column::new("device".into(), vec!["cpu".to_string(); n]),
    ]);
    DataFrame::new(n, cols).unwrap()
}

fn curves_frame(rows: &[Row]) -> DataFrame {
    let (mut key, mut strategy, mut frames, mut tokens, mut seed, mut step, mut loss) = (vec![], vec![], vec![], vec![], vec![], vec![], vec![]);
    for (i, r) in rows.iter().enumerate() {
        for s in (0..=150).step_by(10) {
            key.push(format!("k{i}"));
            strategy.push(r.strategy.clone());
            frames.push(r.frames);
            tokens.push(r.tokens);
            seed.push(r.seed);
            step.push(s as i64);
            loss.push(0.9 * r.loss + 2.5 * (-(s as f64) / 30.0).exp());
        }
    }
    let n = key.len();
    DataFrame::new(
        n,
        vec![
            Column::new("key".into(), key),
            Column::new("strategy".into(), strategy),
            Column::new("frames".into(), frames),
            Column::new("tokens_per_frame".into(), tokens),
            Column::new("seed".into(), seed),
            Column::new("step".into(), step),
            Column::new("train_loss".into(), loss),
        ],
    )
    .unwrap()
}

/// The blind baseline: the results schema with no visual tokens.
fn blind_frame() -> DataFrame {
    let mut df = results_frame(&rows()[..1]);
    let set = |df: &mut DataFrame, _name: &str, col: Column| {
        df.with_column(col).unwrap();
    };
    set(&mut df, "strategy", Column::new("strategy".into(), ["none/none".to_string()]));
    set(&mut df, "frames", Column::new("frames".into(), [0i64]));
    set(&mut df, "tokens_per_frame", Column::new("tokens_per_frame".into(), [0i64]));
    set(&mut df, "visual_tokens", Column::new("visual_tokens".into(), [0i64]));
    set(&mut df, "loss", Column::new("loss".into(), [2.6]));
    set(&mut df, "accuracy", Column::new("accuracy".into(), [0.25]));
    for f in FAMILIES {
        let name = format!("acc_{f}");
        set(&mut df, &name, Column::new(name.as_str().into(), [0.25]));
    }
    df
}

/// A fit in the fitter's schema, with a bootstrap around the estimate and residuals.
fn fit(group: &str, law: &str, x: &str, y: Option<&str>, names: &[&str], params: &[f64], rows: &[Row]) -> Value {
    let predict = |p: &[f64], r: &Row| {
        let pick = |c: &str| if c == "frames" { r.frames as f64 } else { r.tokens as f64 };
        let get = |n: &str| p[names.iter().position(|m| *m == n).unwrap()];
        let (xv, yv) = (pick(x), y.map(pick).unwrap_or(1.0));
        match law {
            "power" => get("E") + get("A") * xv.powf(-get("alpha")),
            "additive" => get("E") + get("A") * xv.powf(-get("alpha")) + get("B") * yv.powf(-get("beta")),
            _ => unreachable!(),
        }
    };
    let mine: Vec<&Row> = rows.iter().filter(|r| r.strategy == group).collect();
    let samples: Vec<Vec<f64>> = (0..60).map(|k| params.iter().enumerate().map(|(j, v)| v * (1.0 + 0.03 * noise(k * 7 + j))).collect()).collect();
    let ci: serde_json::Map<String, Value> = names.iter().enumerate().map(|(j, n)| (n.to_string(), json!([params[j] * 0.95, params[j] * 1.05]))).collect();
    let largest = mine.iter().map(|r| r.frames * r.tokens).max().unwrap();
    let residuals: Vec<Value> = mine
        .iter()
        .map(|r| {
            let mut v = json!({"x": if x == "frames" { r.frames } else { r.tokens }, "observed": r.loss, "predicted": predict(params, r),
                               "held_out": r.frames * r.tokens == largest});
            if let Some(yc) = y {
                v["y"] = json!(if yc == "frames" { r.frames } else { r.tokens });
            }
            v
        })
        .collect();
    let named: serde_json::Map<String, Value> = names.iter().zip(params).map(|(n, v)| (n.to_string(), json!(v))).collect();
    let mut f = json!({
        "group": group, "law": law, "x": x, "loss_column": "loss", "param_names": names,
        "params": named.clone(),
        "ci95": ci, "objective": 1e-3, "grad_norm": 1e-8, "converged": true, "n_points": mine.len(),
        "stopping": {"grad_tol": true, "cost_tol": false, "max_iters": false}, "iterations": 40,
        "starts": {"total": 1, "converged": 1, "agreeing": 1, "best_index": 0},
        "r2": 0.99, "rmse_log": 0.01, "aic": -100.0, "vpnls": {"params": named.clone(), "max_rel_diff": 1e-6, "max_rel_pred_diff": 1e-6},
        "holdout": {"n": 2, "max_rel_error": 0.012, "mean_rel_error": 0.01, "min_budget": largest, "params": named, "converged": true},
        "bootstrap": {"samples": samples, "converged": 60},
        "residuals": residuals, "warnings": [],
        "method": {"objective": "Huber on log residuals", "huber_delta": 1e-3, "optimizer": "L-BFGS", "tol_grad": 1e-9, "tol_cost": 1e-12,
                   "tol_grad_stall": 1e-6, "max_iters": 1000, "start_grid": "coarse", "bootstrap": 60, "seed": 0, "excluded": []}
    });
    if let Some(yc) = y {
        f["y"] = json!(yc);
    }
    f
}

fn fits_json(rows: &[Row]) -> Value {
    json!({"fits": [
        fit("pool/sample", "additive", "frames", Some("tokens_per_frame"), &["E", "A", "B", "alpha", "beta"], &[1.2, 0.8, 0.5, 0.6, 0.7], rows),
        fit("sample/sample", "power", "tokens_per_frame", None, &["E", "A", "alpha"], &[1.45, 0.7, 0.7], rows),
        fit("pool/pool", "power", "frames", None, &["E", "A", "alpha"], &[1.3, 0.8, 0.6], rows),
    ]})
}

/// A complete run directory under `root`.
fn make_run(root: &Path) -> PathBuf {
    let run = root.join("quick");
    std::fs::create_dir_all(&run).unwrap();
    std::fs::write(run.join("config.yaml"), CONFIG).unwrap();
    let rows = rows();
    vislaw::results::write_parquet(&run.join("results.parquet"), &mut results_frame(&rows)).unwrap();
    vislaw::results::write_parquet(&run.join("curves.parquet"), &mut curves_frame(&rows)).unwrap();
    vislaw::results::write_parquet(&run.join("blind.parquet"), &mut blind_frame()).unwrap();
    std::fs::write(run.join("fits.json"), serde_json::to_string_pretty(&fits_json(&rows)).unwrap()).unwrap();
    run
}

/// Width and height from a PNG's IHDR chunk, after checking the signature, the chunk's
/// CRC and the closing IEND chunk.
fn png_size(bytes: &[u8]) -> (u32, u32) {
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "PNG signature");
    assert_eq!(&bytes[12..16], b"IHDR");
    let crc = u32::from_be_bytes(bytes[29..33].try_into().unwrap());
    assert_eq!(crc32(&bytes[12..29]), crc, "IHDR CRC");
    assert_eq!(&bytes[bytes.len() - 8..bytes.len() - 4], b"IEND", "PNG ends with IEND");
    (u32::from_be_bytes(bytes[16..20].try_into().unwrap()), u32::from_be_bytes(bytes[20..24].try_into().unwrap()))
}

fn crc32(data: &[u8]) -> u32 {
    let mut c = 0xFFFF_FFFFu32;
    for &b in data {
        c ^= b as u32;
        for _ in 0..8 {
            c = if c & 1 != 0 { 0xEDB8_8320 ^ (c >> 1) } else { c >> 1 };
        }
    }
    !c
}

/// (stem, size, strings its SVG must contain) for the fixture run.
fn expected_figures() -> Vec<(&'static str, (u32, u32), Vec<&'static str>)> {
    vec![
        ("loss_vs_tokens_per_frame", (1280, 760), vec!["pool/sample, T=8", "sample/sample, T=8", "blind, no visual tokens", "tokens per frame M"]),
        ("loss_vs_frames", (1280, 760), vec!["pool/pool, M=4", "pool/sample, M=4", "frames T"]),
        ("budget_tradeoff", (1080, 800), vec!["pool/sample · additive law", "L=32", "L=64", "L=128", "continuous optimum path", "best reachable"]),
        ("budget_optima", (1280, 760), vec!["pool/sample (additive)", "pool/pool (power)", "L=32", "L=128", "best loss measured with T·M ≤ L"]),
        (
            "accuracy_vs_visual_tokens",
            (1600, 920),
            vec!["all questions", "family: detail", "family: order", "pool/sample, vary M (T=8)", "pool/pool, vary T (M=4)"],
        ),
        ("training_curves", (1400, 1050), vec!["pool/pool", "sample/sample", "T=8, M=16 (128)", "optimiser step"]),
        ("fit_residuals", (1400, 820), vec!["pool/sample · additive", "sample/sample · power", "held-out point", "log residual"]),
    ]
}

#[test]
fn plot_writes_every_figure_as_png_and_svg_with_its_series() {
    let d = tempfile::tempdir().unwrap();
    let run = make_run(d.path());
    let stdout = ok(vislaw(&["plot", run.to_str().unwrap()]));
    assert!(stdout.contains("plots"), "{stdout}");
    for (stem, size, names) in expected_figures() {
        let png = std::fs::read(run.join("plots").join(format!("{stem}.png"))).unwrap();
        assert_eq!(png_size(&png), size, "{stem}.png");
        assert!(png.len() > 20_000, "{stem}.png is nearly empty ({} bytes)", png.len());
        let svg = std::fs::read_to_string(run.join("plots").join(format!("{stem}.svg"))).unwrap();
        assert!(svg.contains(&format!("width=\"{}\"", size.0)) && svg.trim_end().ends_with("</svg>"), "{stem}.svg");
        for name in names {
            assert!(svg.contains(name), "{stem}.svg lacks '{name}'");
        }
    }
    let files = std::fs::read_dir(run.join("plots")).unwrap().count();
    assert_eq!(files, 14, "exactly a PNG and an SVG per figure, no temp files left");
}

#[test]
fn plot_degrades_without_optional_files_or_a_joint_law() {
    let d = tempfile::tempdir().unwrap();
    let run = make_run(d.path());
    for f in ["config.yaml", "curves.parquet", "blind.parquet"] {
        std::fs::remove_file(run.join(f)).unwrap();
    }
    let mut fits = fits_json(&rows());
    fits["fits"].as_array_mut().unwrap().remove(0);
    std::fs::write(run.join("fits.json"), fits.to_string()).unwrap();
    ok(vislaw(&["plot", run.to_str().unwrap()]));
    let joint = std::fs::read_to_string(run.join("plots/budget_tradeoff.svg")).unwrap();
    assert!(joint.contains("no joint law in fits.json"));
    let curves = std::fs::read_to_string(run.join("plots/training_curves.svg")).unwrap();
    assert!(curves.contains("No training curves"));
    // Without a fit for pool/sample its means are joined instead of a curve being drawn.
    let m = std::fs::read_to_string(run.join("plots/loss_vs_tokens_per_frame.svg")).unwrap();
    assert!(m.contains("no fit: means joined"));
}

#[test]
fn bad_inputs_are_one_line_errors_with_exit_code_2() {
    let d = tempfile::tempdir().unwrap();
    for cmd in ["plot", "report", "export-notebook"] {
        let out = vislaw(&[cmd, d.path().join("missing").to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(2), "{cmd}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(err.contains("missing"), "{err}");
    }
    let run = make_run(d.path());
    std::fs::remove_file(run.join("fits.json")).unwrap();
    let out = vislaw(&["report", run.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("fits.json") && err.contains("vislaw fit"), "{err}");
    std::fs::remove_file(run.join("results.parquet")).unwrap();
    let err = String::from_utf8_lossy(&vislaw(&["plot", run.to_str().unwrap()]).stderr).into_owned();
    assert!(err.contains("results.parquet") && err.contains("vislaw sweep"), "{err}");
}

/// The rows of the Markdown table that starts with `header`, split into trimmed cells.
fn table(md: &str, header: &str) -> Vec<Vec<String>> {
    let start = md.find(header).unwrap_or_else(|| panic!("no table '{header}'"));
    md[start..].lines().skip(2).take_while(|l| l.starts_with('|')).map(|l| l.trim_matches('|').split('|').map(|c| c.trim().to_string()).collect()).collect()
}

fn close(a: f64, b: f64, tol: f64) -> bool {
    (a - b).abs() <= tol * b.abs().max(1.0)
}

#[test]
fn report_tables_match_results_and_fits_and_embed_every_plot() {
    let d = tempfile::tempdir().unwrap();
    let run = make_run(d.path());
    let stdout = ok(vislaw(&["report", run.to_str().unwrap()]));
    assert!(stdout.contains("report.md"));
    let md = std::fs::read_to_string(run.join("report.md")).unwrap();

    let df = vislaw::results::read_table(&run).unwrap();
    let strategy = vislaw::results::str_column(&df, "strategy").unwrap();
    let frames = vislaw::results::f64_column(&df, "frames").unwrap();
    let tokens = vislaw::results::f64_column(&df, "tokens_per_frame").unwrap();
    let loss = vislaw::results::f64_column(&df, "loss").unwrap();
    let acc = vislaw::results::f64_column(&df, "accuracy").unwrap();
    let results = table(&md, vislaw::report::RESULTS_HEADER);
    assert_eq!(results.len(), df.height() + 1, "one row per point plus the blind baseline");
    for i in 0..df.height() {
        let r = &results[i];
        assert_eq!(r[0], strategy[i]);
        assert_eq!(r[1].parse::<f64>().unwrap(), frames[i]);
        assert_eq!(r[2].parse::<f64>().unwrap(), tokens[i]);
        assert_eq!(r[3].parse::<f64>().unwrap(), frames[i] * tokens[i]);
        assert!(close(r[5].parse().unwrap(), loss[i], 1e-4), "loss row {i}: {} vs {}", r[5], loss[i]);
        assert!(close(r[7].parse().unwrap(), acc[i], 1e-4), "accuracy row {i}");
    }
    assert!(results.last().unwrap()[0].starts_with("blind") && results.last().unwrap()[5] == "2.6000");

    let fits: Value = serde_json::from_str(&std::fs::read_to_string(run.join("fits.json")).unwrap()).unwrap();
    for f in fits["fits"].as_array().unwrap() {
        let heading = format!("### {} · {} law", f["group"].as_str().unwrap(), f["law"].as_str().unwrap());
        let section = &md[md.find(&heading).unwrap_or_else(|| panic!("no section {heading}"))..];
        let params = table(section, "| parameter | estimate | 95% CI |");
        for (name, value) in f["params"].as_object().unwrap() {
            let symbol = match name.as_str() {
                "alpha" => "α",
                "beta" => "β",
                n => n,
            };
            let row = params.iter().find(|r| r[0] == symbol).unwrap_or_else(|| panic!("{heading}: no row {symbol}"));
            assert!(close(row[1].parse().unwrap(), value.as_f64().unwrap(), 1e-3), "{heading} {name}");
            let ci: Vec<f64> = row[2].trim_matches(['[', ']']).split(',').map(|v| v.trim().parse().unwrap()).collect();
            for (got, want) in ci.iter().zip(f["ci95"][name].as_array().unwrap()) {
                assert!(close(*got, want.as_f64().unwrap(), 1e-3), "{heading} {name} CI {}", row[2]);
            }
        }
        let validation = table(section, "| validation | value |");
        let r2 = validation.iter().find(|r| r[0].starts_with("R²")).unwrap();
        assert!(close(r2[1].parse().unwrap(), f["r2"].as_f64().unwrap(), 1e-3));
    }

    // The optimum of the additive fit: the discrete setting is the best reachable one.
    let optimum: Vec<Vec<String>> = table(&md, vislaw::report::OPTIMUM_HEADER).into_iter().filter(|r| r[1] == "additive").collect();
    assert_eq!(optimum.len(), 3, "one row per budget of the config");
    let p = [1.2, 0.8, 0.6, 0.5, 0.7];
    let reachable_m = [1.0, 4.0, 9.0, 16.0, 64.0];
    for (row, budget) in optimum.iter().zip([32.0, 64.0, 128.0]) {
        assert_eq!(row[0], "pool/sample");
        assert_eq!(row[2].parse::<f64>().unwrap(), budget);
        let (t, m): (f64, f64) = (row[7].parse().unwrap(), row[8].parse().unwrap());
        assert!(t * m <= budget);
        let best = (1..=16)
            .flat_map(|t| reachable_m.iter().map(move |&m| (t as f64, m)))
            .filter(|(t, m)| t * m <= budget)
            .map(|(t, m)| planted(&p, t, m))
            .fold(f64::INFINITY, f64::min);
        assert!(close(row[10].parse().unwrap(), best, 1e-4), "L={budget}: {} vs {best}", row[10]);
        // Continuous: on the budget line, and no worse than the discrete optimum.
        let (ct, cm, cl): (f64, f64, f64) = (row[3].parse().unwrap(), row[4].parse().unwrap(), row[5].parse().unwrap());
        assert!(close(ct * cm, budget, 1e-2) && cl <= best + 1e-4, "{row:?}");
    }

    for stem in vislaw::plot::FIGURES {
        let link = format!("](plots/{stem}.png)");
        assert!(md.contains(&link), "report does not embed {stem}");
        assert!(run.join("plots").join(format!("{stem}.png")).exists());
    }
}

#[test]
fn report_solves_fits_from_vislaw_fit_with_the_optimum_module() {
    let d = tempfile::tempdir().unwrap();
    let run = make_run(d.path());
    std::fs::remove_file(run.join("fits.json")).unwrap();
    let r = run.to_str().unwrap();
    ok(vislaw(&["fit", r, "--group-by", "strategy", "--compare-laws", "--coarse-grid", "--bootstrap", "100"]));
    ok(vislaw(&["report", r]));
    let md = std::fs::read_to_string(run.join("report.md")).unwrap();
    assert!(md.contains("Solved by `vislaw::optimum`"), "the fitter's fits.json is read as its report");
    let fits: Value = serde_json::from_str(&std::fs::read_to_string(run.join("fits.json")).unwrap()).unwrap();
    let additive = fits["fits"].as_array().unwrap().iter().find(|f| f["group"] == "pool/sample" && f["law"] == "additive").expect("an additive fit");
    let p: Vec<f64> = ["E", "A", "alpha", "B", "beta"].iter().map(|k| additive["params"][k].as_f64().unwrap()).collect();
    let rows: Vec<Vec<String>> = table(&md, vislaw::report::OPTIMUM_HEADER).into_iter().filter(|r| r[0] == "pool/sample" && r[1] == "additive").collect();
    assert_eq!(rows.len(), 3);
    for (row, budget) in rows.iter().zip([32.0, 64.0, 128.0]) {
        let best = (1..=16)
            .flat_map(|t| [1.0, 4.0, 9.0, 16.0, 64.0].map(move |m| (t as f64, m)))
            .filter(|(t, m)| t * m <= budget)
            .map(|(t, m)| planted(&p, t, m))
            .fold(f64::INFINITY, f64::min);
        assert!(close(row[10].parse().unwrap(), best, 1e-4), "L={budget}: {} vs {best}", row[10]);
        assert!(row[5].parse::<f64>().unwrap() <= best + 1e-4, "the continuous optimum is no worse: {row:?}");
    }
    let joint = std::fs::read_to_string(run.join("plots/budget_tradeoff.svg")).unwrap();
    assert!(joint.contains("pool/sample · additive law") && joint.contains("pool/sample · multiplicative law"), "a panel per joint law");
}

#[test]
fn the_report_takes_the_saved_optimum_while_it_belongs_to_the_fits() {
    let d = tempfile::tempdir().unwrap();
    let run = make_run(d.path());
    let r = run.to_str().unwrap();
    // The run's own options (F = 16, g = 8, the config's budgets): what the sweep saves.
    let args = ["optimum", r, "--budget", "32", "--budget", "64", "--budget", "128", "--max-frames", "16", "--grid", "8"];
    let printed: Value = serde_json::from_str(&ok(vislaw(&[&args[..], &["--json"]].concat()))).unwrap();
    let saved: Value = serde_json::from_str(&std::fs::read_to_string(run.join("optimum.json")).unwrap()).unwrap();
    assert_eq!(printed, saved, "optimum.json holds what `vislaw optimum` found");
    // On a run directory F and g default to its sweep's own (config.yaml), not to 1024 and 27:
    // the same answer without the two flags, and a different one at the old defaults.
    let budgets = &args[..8];
    let defaults: Value = serde_json::from_str(&ok(vislaw(&[budgets, &["--json"]].concat()))).unwrap();
    assert_eq!(defaults, printed, "re-solving with the defaults gives the sweep's own optimum");
    let old: Value = serde_json::from_str(&ok(vislaw(&[budgets, &["--max-frames", "1024", "--grid", "27", "--json"]].concat()))).unwrap();
    assert_ne!(old, printed, "F = 1024 and g = 27 are other settings");
    ok(vislaw(&[&args[..], &["--json"]].concat()));
    ok(vislaw(&["report", r]));
    let solved_here = std::fs::read_to_string(run.join("report.md")).unwrap();
    // A marked note shows that the report reads the file rather than solving again ...
    let marked = std::fs::read_to_string(run.join("optimum.json")).unwrap().replace("T at its upper limit", "MARKED T at its upper limit");
    std::fs::write(run.join("optimum.json"), marked).unwrap();
    ok(vislaw(&["report", r]));
    let md = std::fs::read_to_string(run.join("report.md")).unwrap();
    assert!(md.contains("MARKED"), "the saved optimum is used");
    assert_eq!(md.replace("MARKED ", ""), solved_here, "and it is the one the report would solve");
    // ... until the fits change: a stale optimum is solved anew.
    let mut fits: Value = serde_json::from_str(&std::fs::read_to_string(run.join("fits.json")).unwrap()).unwrap();
    fits["fits"][0]["params"]["E"] = json!(1.25);
    std::fs::write(run.join("fits.json"), fits.to_string()).unwrap();
    ok(vislaw(&["report", r]));
    assert!(!std::fs::read_to_string(run.join("report.md")).unwrap().contains("MARKED"), "a refit is not shown a stale optimum");
}

fn venv(tool: &str) -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin").join(tool);
    assert!(p.exists(), "{} is missing: run scripts/setup.sh (make setup) first", p.display());
    p
}

#[test]
fn exported_notebook_validates_and_executes_top_to_bottom() {
    let d = tempfile::tempdir().unwrap();
    let run = make_run(d.path());
    let out_dir = d.path().join("export");
    let stdout = ok(vislaw(&["export-notebook", run.to_str().unwrap(), "--out-dir", out_dir.to_str().unwrap()]));
    let nb = out_dir.join("quick.ipynb");
    assert!(stdout.contains("quick.ipynb") && nb.exists(), "{stdout}");
    // The notebook's discrete optimum searches each strategy's reachable settings, as
    // `vislaw optimum` does: temporal pooling of 16 frames reaches only some T.
    let source: Value = serde_json::from_str(&std::fs::read_to_string(&nb).unwrap()).unwrap();
    let code: String = source["cells"].as_array().unwrap().iter().flat_map(|c| c["source"].as_array().unwrap()).map(|l| l.as_str().unwrap()).collect();
    let line = code.lines().find_map(|l| l.strip_prefix("FEASIBLE = ")).expect("FEASIBLE is declared");
    let feasible: Value = serde_json::from_str(line).unwrap();
    let frames = |group: &str| -> Vec<u64> { feasible[group]["frames"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap()).collect() };
    assert_eq!(frames("pool/pool"), vec![1, 2, 3, 4, 6, 8, 16]);
    assert_eq!(frames("pool/sample"), (1..=16).collect::<Vec<u64>>());

    let validate = Command::new(venv("python"))
        .args(["-c", "import sys, nbformat; nbformat.validate(nbformat.read(sys.argv[1], as_version=4)); print('valid')"])
        .arg(&nb)
        .output()
        .unwrap();
    assert!(validate.status.success(), "nbformat: {}", String::from_utf8_lossy(&validate.stderr));

    // Execute a copy somewhere else: the notebook must find the run from anywhere.
    let elsewhere = d.path().join("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    std::fs::copy(&nb, elsewhere.join("quick.ipynb")).unwrap();
    let exec = Command::new(venv("jupyter"))
        .args(["nbconvert", "--to", "notebook", "--execute", "--ExecutePreprocessor.timeout=120", "--output", "executed.ipynb", "quick.ipynb"])
        .current_dir(&elsewhere)
        // The kernel's own inline backend (headless) captures the figures as outputs.
        .env_remove("MPLBACKEND")
        .env_remove("VISLAW_RUN_DIR")
        .output()
        .unwrap();
    assert!(exec.status.success(), "nbconvert --execute failed:\n{}", String::from_utf8_lossy(&exec.stderr));
    let executed: Value = serde_json::from_str(&std::fs::read_to_string(elsewhere.join("executed.ipynb")).unwrap()).unwrap();
    let outputs: Vec<&Value> = executed["cells"].as_array().unwrap().iter().filter_map(|c| c["outputs"].as_array()).flatten().collect();
    assert!(outputs.iter().all(|o| o["output_type"] != "error"));
    let figures = outputs.iter().filter(|o| o["data"]["image/png"].is_string()).count();
    assert!(figures >= 6, "every main figure is redrawn ({figures} images)");
    let text = serde_json::to_string(&executed).unwrap();
    assert!(text.contains("additive") && text.contains("pool/sample"), "the fitted parameters are shown");
}

#[test]
fn the_pngs_decode_to_drawn_images_and_the_svgs_parse() {
    let d = tempfile::tempdir().unwrap();
    let run = make_run(d.path());
    ok(vislaw(&["plot", run.to_str().unwrap()]));
    // A full decode by an independent reader (Pillow, from matplotlib) and an XML parse.
    let script = r#"
import sys, pathlib, xml.etree.ElementTree as ET
from PIL import Image
for p in sorted(pathlib.Path(sys.argv[1]).glob('*.png')):
    im = Image.open(p); im.load()
    lo, hi = im.convert('L').getextrema()
    assert hi - lo > 100, f'{p.name} is blank'
    ET.parse(p.with_suffix('.svg'))
    print(p.name, im.size)
"#;
    let out = Command::new(venv("python")).args(["-c", script]).arg(run.join("plots")).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), vislaw::plot::FIGURES.len());
}

/// A results table of one's own, as a lab would write it: no seed, no standard errors, no
/// accuracy, two strategies on a T × M grid.
fn own_csv(dir: &Path) -> PathBuf {
    let mut text = String::from("strategy,frames,tokens_per_frame,loss\n");
    for (s, scale) in [("mine/a", 1.0), ("mine/b", 1.3)] {
        for t in [1, 2, 4, 8] {
            for m in [1, 4, 9, 16] {
                let i = text.len();
                let l = planted(&[LAW[0], LAW[1] * scale, LAW[2], LAW[3], LAW[4]], t as f64, m as f64) * (1.0 + 0.003 * noise(i));
                text.push_str(&format!("{s},{t},{m},{l}\n"));
            }
        }
    }
    let path = dir.join("mine.csv");
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn plot_and_report_work_on_a_csv_with_its_fits() {
    let d = tempfile::tempdir().unwrap();
    let table = own_csv(d.path());
    let t = table.to_str().unwrap();
    // Without its fits the table is refused, naming the file and the command that makes it.
    let out = vislaw(&["plot", t]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("fits.json") && err.contains("vislaw fit") && err.trim().lines().count() == 1, "{err}");
    ok(vislaw(&["fit", t, "--group-by", "strategy", "--coarse-grid", "--bootstrap", "80"]));
    assert!(d.path().join("fits.json").exists());
    // `plot TABLE`: the figures beside the table.
    let stdout = ok(vislaw(&["plot", t]));
    assert!(stdout.contains("wrote 14 files"), "{stdout}");
    for stem in vislaw::plot::FIGURES {
        let png = std::fs::read(d.path().join("plots").join(format!("{stem}.png"))).unwrap();
        assert!(png.len() > 10_000, "{stem}.png");
    }
    let m = std::fs::read_to_string(d.path().join("plots/loss_vs_tokens_per_frame.svg")).unwrap();
    assert!(m.contains("mine/a, T=4") && m.contains("mine/b, T=4"), "one line per strategy and T");
    // One seed and no standard errors: the legend says what the markers are, not "seed mean ± 95% CI".
    assert!(!m.contains("seed mean") && m.contains("measured loss, one seed, no CI"), "legend");
    // `report TABLE --out DIR`: the report and its figures there, the fits named by --fits.
    let out_dir = d.path().join("elsewhere");
    let fits = d.path().join("fits.json");
    let stdout = ok(vislaw(&["report", t, "--fits", fits.to_str().unwrap(), "--out", out_dir.to_str().unwrap()]));
    assert!(stdout.contains("report.md"), "{stdout}");
    let md = std::fs::read_to_string(out_dir.join("report.md")).unwrap();
    assert!(md.contains("Results table `") && md.contains("mine.csv"), "{md}");
    assert!(md.contains("mine/a") && md.contains("additive"), "the fits are in the report");
    assert!(out_dir.join("plots/budget_tradeoff.png").exists());
    // --fits/--out belong to a table: on a run directory they are refused.
    let run = make_run(d.path());
    let out = vislaw(&["plot", run.to_str().unwrap(), "--out", out_dir.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--out: applies to a results table"));
}
