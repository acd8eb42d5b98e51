//! End-to-end tests of `vislaw rank`: a results table with three seeds per strategy, built
//! here, ranked with the differences beyond twice their standard error; and bad input.
use std::path::Path;
use std::process::{Command, Output};

fn vislaw(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vislaw")).args(args).current_dir(env!("CARGO_MANIFEST_DIR")).output().expect("the vislaw binary runs")
}

/// Three strategies at T = 4, M = 4, seeds 0–2: each strategy's loss is its level plus 0, 0.02,
/// 0.04 (sd 0.02 around the level + 0.02), accuracy its level plus half that. Welch's SE of a
/// difference is √(2 · 0.02² / 3) = 0.0163 on loss: pool vs sample (gap 0.2) is 12 SE, pool
/// vs bilinear (gap 0.01) 0.6 SE. One point at another (T, M) has a single strategy.
fn write_table(path: &Path) {
    let mut csv = String::from("strategy,frames,tokens_per_frame,seed,loss,accuracy,accuracy_se\n");
    for (strategy, loss, acc) in [("pool/sample", 1.0, 0.60), ("sample/sample", 1.2, 0.50), ("bilinear/sample", 1.01, 0.60)] {
        for (seed, d) in [0.0, 0.02, 0.04].iter().enumerate() {
            csv.push_str(&format!("{strategy},4,4,{seed},{},{},0.02\n", loss + d, acc - d / 2.0));
        }
    }
    csv.push_str("pool/sample,8,4,0,0.9,0.7,0.02\n");
    std::fs::write(path, csv).unwrap();
}

#[test]
fn ranks_strategies_and_reports_only_the_differences_beyond_two_standard_errors() {
    let dir = tempfile::tempdir().unwrap();
    let table = dir.path().join("t.csv");
    write_table(&table);
    let out = vislaw(&["rank", table.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let md = String::from_utf8(out.stdout).unwrap();
    assert!(md.contains("T = 4, M = 4"), "{md}");
    assert!(!md.contains("T = 8"), "a cell one strategy reaches is not ranked: {md}");
    assert!(md.contains("loss: pool/sample better than sample/sample by 0.2000"), "{md}");
    assert!(md.contains("accuracy: pool/sample better than sample/sample by 0.1000"), "{md}");
    assert!(!md.contains("pool/sample better than bilinear/sample") && !md.contains("bilinear/sample better than pool/sample"), "{md}");

    let out = vislaw(&["rank", table.to_str().unwrap(), "--json"]);
    let cells: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let cell = &cells[0];
    assert_eq!(cell["pairs_compared"], 3);
    let first = &cell["entries"][0];
    assert_eq!(first["strategy"], "pool/sample");
    assert!((first["loss"]["sd"].as_f64().unwrap() - 0.02).abs() < 1e-12);
    let se = (2.0 * 0.02f64.powi(2) / 3.0).sqrt();
    let loss_gap =
        cell["beyond_2se"].as_array().unwrap().iter().find(|d| d["metric"] == "loss" && d["worse"] == "sample/sample" && d["better"] == "pool/sample").unwrap();
    assert!((loss_gap["se"].as_f64().unwrap() - se).abs() < 1e-12);
}

#[test]
fn a_table_without_a_loss_column_is_one_line_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let table = dir.path().join("t.csv");
    std::fs::write(&table, "strategy,frames,tokens_per_frame\npool/sample,4,4\n").unwrap();
    let out = vislaw(&["rank", table.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("column 'loss'"), "{err}");
}
