//! A closed pipe on stdout ends every command quietly: `vislaw fit … --json | head -c 1`
//! and `vislaw optimum … | head -1` exit 0 with nothing on stderr, as other command-line
//! tools do, instead of panicking with "failed printing to stdout".
//!
//! Each command here writes far more than a pipe's buffer (64 kB on Linux), so it is still
//! writing when the reader goes away: the test reads a little, closes its end, and waits.
use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};

/// Runs vislaw, reads `take` bytes of its stdout, closes the pipe; returns (exit code, stderr).
fn read_then_close(args: &[&str], take: usize) -> (Option<i32>, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_vislaw"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the vislaw binary runs");
    let mut head = vec![0u8; take];
    child.stdout.as_mut().unwrap().read_exact(&mut head).expect("the command writes at least that much");
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// A table of an additive law in T and M, exact (no noise), for `fit` and `optimum`.
fn planted_table(dir: &Path) -> String {
    let mut csv = String::from("frames,tokens_per_frame,loss\n");
    for t in [1.0, 2.0, 4.0, 8.0, 16.0] {
        for m in [1.0, 4.0, 9.0, 16.0, 36.0] {
            let loss: f64 = 0.5 + 2.0 * f64::powf(t, -0.4) + 1.5 * f64::powf(m, -0.6);
            csv += &format!("{t},{m},{loss}\n");
        }
    }
    let path = dir.join("table.csv");
    std::fs::write(&path, csv).unwrap();
    path.to_str().unwrap().to_string()
}

#[test]
fn fit_json_into_a_closed_pipe_exits_0_quietly() {
    // The bootstrap samples alone make the JSON several hundred kB.
    let (code, stderr) = read_then_close(&["fit", "tests/data/chinchilla.csv", "--x", "Model Size", "--y", "Training FLOP", "--json", "--no-save"], 1);
    assert_eq!(code, Some(0), "stderr: {stderr}");
    assert!(stderr.is_empty(), "stderr: {stderr}");
}

#[test]
fn optimum_into_a_closed_pipe_exits_0_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let table = planted_table(dir.path());
    let fits = dir.path().join("fits.json");
    let fit = Command::new(env!("CARGO_BIN_EXE_vislaw"))
        .args(["fit", &table, "--law", "additive", "--bootstrap", "50", "--out", fits.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(fit.status.success(), "{}", String::from_utf8_lossy(&fit.stderr));
    // 3,000 budgets: a table of several hundred kB.
    let mut args = vec!["optimum".to_string(), fits.to_str().unwrap().to_string(), "--max-frames".into(), "16".into(), "--grid".into(), "6".into()];
    for b in 0..3000 {
        args.extend(["--budget".to_string(), (16 + b).to_string()]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, stderr) = read_then_close(&args, 10);
    assert_eq!(code, Some(0), "stderr: {stderr}");
    assert!(stderr.is_empty(), "stderr: {stderr}");
}
