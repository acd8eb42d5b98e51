//! End-to-end tests of the LM axis (`sweep.lm`) through the binary: a tiny sweep of two
//! built-in LM sizes, its rows, priors, blind baselines, cost models and fits, its resume,
//! and the errors of a bad axis.
use polars::prelude::*;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// tests/data/tiny.yaml with one strategy on a 3 × 3 grid (a law per LM needs 6 rows):
/// 9 points per LM, a fraction of a second each.
const SINGLE: &str = r#"
name: sizes
data: {generator: synthetic, seed: 11, train_videos: 24, eval_videos: 8, frames: 8, grid: 6, dim: 8}
model:
  projector: {hidden: 16}
  lm: {layers: 1, heads: 2, width: 16, max_context: 80}
train: {steps: 6, batch: 8, lr: 0.003, warmup: 1, weight_decay: 0.01, trainable: [projector, lm], prior_steps: 4, log_every: 2, eval_batch: 64}
sweep:
  frames: [1, 2, 4]
  tokens_per_frame: [1, 4, 9]
  spatial: [pool]
  temporal: [sample]
  seeds: [0]
  budgets_flops: [3e5, 1e6]
"#;

/// The two LMs of the axis: the first is SINGLE's `model.lm`, the second larger.
const AXIS: &str = "  lm:\n    - {layers: 1, heads: 2, width: 16, max_context: 80}\n    - {layers: 2, heads: 2, width: 24, max_context: 80}\n";

fn two_lms() -> String {
    SINGLE.replace("sweep:\n", &format!("sweep:\n{AXIS}"))
}

fn vislaw(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vislaw")).args(args).env("CUDA_VISIBLE_DEVICES", "").output().expect("binary runs")
}

fn write_config(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn sweep(config: &Path, results: &Path) -> String {
    let out = vislaw(&["sweep", config.to_str().unwrap(), "--device", "cpu", "--results", results.to_str().unwrap()]);
    assert!(out.status.success(), "sweep failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn read(path: &Path) -> DataFrame {
    ParquetReader::new(std::fs::File::open(path).unwrap()).finish().unwrap()
}

fn strings(df: &DataFrame, name: &str) -> Vec<String> {
    df.column(name).unwrap().str().unwrap().iter().map(|k| k.unwrap().to_string()).collect()
}

/// (key → (lm, lm_params, loss)) of a results table.
fn rows(df: &DataFrame) -> BTreeMap<String, (String, i64, f64)> {
    let lm = if df.column("lm").is_ok() { strings(df, "lm") } else { vec![String::new(); df.height()] };
    let params: Vec<i64> = df.column("lm_params").unwrap().i64().unwrap().into_no_null_iter().collect();
    let loss: Vec<f64> = df.column("loss").unwrap().f64().unwrap().into_no_null_iter().collect();
    strings(df, "key").into_iter().enumerate().map(|(i, k)| (k, (lm[i].clone(), params[i], loss[i]))).collect()
}

/// The parameter count of a built-in LM from its own variables: every tensor `model::Lm`
/// creates (embeddings, blocks, norms, head), for the benchmark's vocabulary.
fn lm_parameters(lm: &vislaw::config::LmChoice, data: &vislaw::config::DataConfig) -> i64 {
    let vocab = vislaw::features::open(data).unwrap().vocab_size();
    let vs = tch::nn::VarStore::new(tch::Device::Cpu);
    let _lm = vislaw::model::Lm::new(&vs.root(), lm.builtin().expect("built-in LMs"), vocab);
    vs.variables().values().map(|t| t.numel() as i64).sum()
}

#[test]
fn two_lms_train_apart_with_their_own_prior_baseline_costs_and_fits() {
    let d = tempfile::tempdir().unwrap();
    let (single_results, results) = (d.path().join("single"), d.path().join("results"));
    let single_cfg = write_config(d.path(), "single.yaml", SINGLE);
    let cfg_path = write_config(d.path(), "sizes.yaml", &two_lms());
    sweep(&single_cfg, &single_results);
    let cfg: vislaw::config::Config = serde_yaml::from_str(&two_lms()).unwrap();
    let labels: Vec<String> = cfg.sweep.lm.iter().map(|l| l.label()).collect();
    // A dry run lists the LM axis: each LM's 9 points under its label.
    let dry = vislaw(&["sweep", cfg_path.to_str().unwrap(), "--dry-run", "--results", results.to_str().unwrap()]);
    let listing = String::from_utf8_lossy(&dry.stdout);
    for label in &labels {
        assert_eq!(listing.lines().filter(|l| l.ends_with(&format!("pending  {label}"))).count(), 9, "{label}: {listing}");
    }
    let out = sweep(&cfg_path, &results);
    assert!(out.contains("trained 18 point(s)"), "{out}");
    let run = results.join("sizes");
    let got = rows(&read(&run.join("results.parquet")));
    assert_eq!(got.len(), 18, "2 LMs × 9 points, every key distinct");
    for (i, label) in labels.iter().enumerate() {
        let of_lm: Vec<_> = got.values().filter(|r| &r.0 == label).collect();
        assert_eq!(of_lm.len(), 9, "{label}");
        let n = lm_parameters(&cfg.sweep.lm[i], &cfg.data);
        assert!(of_lm.iter().all(|r| r.1 == n), "{label}: lm_params {:?} vs the VarStore's {n}", of_lm.iter().map(|r| r.1).collect::<Vec<_>>());
    }
    assert_ne!(lm_parameters(&cfg.sweep.lm[0], &cfg.data), lm_parameters(&cfg.sweep.lm[1], &cfg.data));

    // The first LM is the single sweep's: the same computation, so the same keys and,
    // same seed, the same numbers bitwise; the single sweep's rows carry no `lm` column.
    let single = read(&single_results.join("sizes/results.parquet"));
    assert!(single.column("lm").is_err(), "a sweep without sweep.lm keeps its schema");
    for (key, (_, params, loss)) in rows(&single) {
        let (lm, p, l) = &got[&key];
        assert_eq!((lm, *p, l.to_bits()), (&labels[0], params, loss.to_bits()), "{key}");
    }

    // Each LM has its own prior and blind baseline.
    let priors = std::fs::read_dir(run.join("cache")).unwrap().flatten().filter(|e| e.file_name().to_string_lossy().starts_with("prior-")).count();
    assert_eq!(priors, 2);
    for label in &labels {
        let blind = read(&run.join(format!("blind-{label}.parquet")));
        assert_eq!(strings(&blind, "lm"), vec![label.clone()]);
    }
    assert!(!run.join("blind.parquet").exists());

    // cost.json: both LMs, their parameter counts those of the rows.
    let costs = vislaw::cost::RunCosts::load(&run).unwrap();
    let recorded: BTreeSet<(String, i64)> = costs.lms().iter().map(|l| (l.label.clone(), l.params as i64)).collect();
    let from_rows: BTreeSet<(String, i64)> = got.values().map(|r| (r.0.clone(), r.1)).collect();
    assert_eq!(recorded, from_rows);
    assert!(costs.lms().iter().all(|l| l.strategies.contains_key("pool/sample")));
    assert_eq!(costs.strategies, costs.lms().iter().find(|l| l.label == labels[0]).unwrap().strategies, "the default LM's, model.lm's");

    // One fit per strategy and LM, and the report written from them.
    let fits: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(run.join("fits.json")).unwrap()).unwrap();
    let groups: BTreeSet<String> = fits["fits"].as_array().unwrap().iter().map(|f| f["group"].as_str().unwrap().to_string()).collect();
    let expected: BTreeSet<String> = labels.iter().map(|l| format!("pool/sample @ {l}")).collect();
    assert_eq!(groups, expected);
    assert!(std::fs::read_to_string(run.join("report.md")).unwrap().contains(&format!("pool/sample @ {}", labels[1])));
    // Each group's FLOPs optimum costs what its own LM's cost model says at its (T, M).
    let optimum: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(run.join("optimum.json")).unwrap()).unwrap();
    let flops = optimum["flops_optima"].as_array().unwrap();
    for label in &labels {
        let model = costs.get_for(Some(label), "pool/sample").unwrap();
        let mine: Vec<_> = flops.iter().filter(|o| o["group"] == format!("pool/sample @ {label}").as_str()).collect();
        assert_eq!(mine.len(), 2, "{label}: one per budget");
        for o in mine {
            let (t, m) = (o["discrete"]["T"].as_f64().unwrap(), o["discrete"]["M"].as_f64().unwrap());
            assert_eq!(o["discrete_flops"].as_f64().unwrap(), model.total(t, m), "{label} at T = {t}, M = {m}");
        }
    }

    // The joint law over (N, T, M) takes both LMs together, in both forms, and its FLOPs
    // optimum picks, per budget, the LM whose best affordable (T, M) the law rates lowest.
    assert!(out.contains("== joint law over (N, T, M)"), "{out}");
    let joint = vislaw::fit::joint::JointFitsReport::load(&run.join("fits_joint.json")).unwrap();
    let forms: BTreeSet<&str> = joint.fits.iter().map(|f| f.form.name()).collect();
    assert_eq!(forms, BTreeSet::from(["additive", "interact"]));
    assert!(
        joint.fits.iter().all(|f| f.group == "pool/sample" && f.n_points == 18),
        "{:?}",
        joint.fits.iter().map(|f| (&f.group, f.n_points)).collect::<Vec<_>>()
    );
    let optima = vislaw::optimum::joint::JointOptimaReport::load(&run.join("optimum_joint.json")).unwrap();
    assert_eq!(optima.optima.len(), 4, "two forms × two budgets");
    for o in &optima.optima {
        assert_eq!(o.per_lm.len(), 2, "every LM's best is listed");
        for best in &o.per_lm {
            let model = costs.get_for(Some(&best.label), "pool/sample").unwrap();
            if let (Some(p), Some(c)) = (&best.discrete, best.discrete_flops) {
                assert_eq!(c, model.total(p.t, p.m), "{}: the cost of its reachable best", best.label);
                assert!(c <= o.budget_flops, "{} spends {c} of {}", best.label, o.budget_flops);
            }
        }
        let lowest = o.per_lm.iter().filter_map(|b| b.continuous.as_ref().map(|p| (p.loss, &b.label))).min_by(|a, b| a.0.total_cmp(&b.0));
        assert_eq!(o.chosen.as_ref(), lowest.map(|l| l.1), "the chosen LM is the one with the lowest predicted loss");
    }
    assert!(std::fs::read_to_string(run.join("report.md")).unwrap().contains("## Joint law over (N, T, M)"));

    // A rerun trains nothing: every point and both baselines are current.
    let modified = |label: &String| std::fs::metadata(run.join(format!("blind-{label}.parquet"))).unwrap().modified().unwrap();
    let before: Vec<_> = labels.iter().map(modified).collect();
    let again = sweep(&cfg_path, &results);
    assert!(again.contains("trained 0 point(s), 18 already finished"), "{again}");
    assert_eq!(labels.iter().map(modified).collect::<Vec<_>>(), before, "no blind baseline retrained");
}

#[test]
fn a_bad_lm_axis_names_its_entry() {
    let d = tempfile::tempdir().unwrap();
    let entry1 = "    - {layers: 2, heads: 2, width: 24, max_context: 80}\n";
    let cases = [
        (entry1.to_string(), "    - {layers: 1, heads: 2, width: 16, max_context: 80}\n".to_string(), "sweep.lm[1]: label '1x16-h2-c80' repeats sweep.lm[0]"),
        (entry1.to_string(), "    - {layers: 2, heads: 5, width: 24, max_context: 80}\n".to_string(), "sweep.lm[1].heads"),
        (entry1.to_string(), "    - {layers: 2, heads: 2, width: 24, max_context: 30}\n".to_string(), "sweep.lm[1].max_context"),
        (entry1.to_string(), "    - {layers: 2, heads: 2}\n".to_string(), "sweep.lm[1]"),
    ];
    for (from, to, field) in cases {
        let cfg = write_config(d.path(), "bad.yaml", &two_lms().replace(&from, &to));
        let out = vislaw(&["validate", cfg.to_str().unwrap()]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{to}: {err}");
        assert!(err.contains(field), "{to}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
    }
}
