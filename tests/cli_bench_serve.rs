//! The persistent references of `vislaw-bench train` and `vislaw-bench fit`: a request gets
//! an answer of the expected shape, a bad request is an error (never a hang), a child that
//! dies is an error with its stderr, and a closed child is reaped; and `vislaw-bench train`
//! with the reference prints min / median / max per side, the ratios and the machine.
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use vislaw::bench::serve::Server;
use vislaw::bench::train::{ReferenceError, TorchServer, TRAIN_FIGURE};
use vislaw::bench::{fit, train};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The project's Python, or a failure that says how to get it (the references are part of
/// the benchmarks: these tests never skip).
fn python() -> PathBuf {
    let p = root().join(vislaw::bench::PYTHON);
    assert!(p.exists(), "{} is missing: run `make setup`", p.display());
    p
}

fn torch_server() -> TorchServer {
    std::env::set_current_dir(root()).unwrap();
    let config = root().join("configs/quick.yaml");
    let cfg = vislaw::sweep::load(&config).unwrap();
    let visual = train::visual_tokens(&cfg, &config, 2, 16).unwrap();
    TorchServer::start(&python(), &cfg, visual, 2, 1).unwrap_or_else(|e| panic!("{e:?}"))
}

#[test]
fn the_torch_reference_answers_every_figure_and_refuses_a_bad_request() {
    let mut s = torch_server();
    assert!(s.train_rate(2).unwrap() > 0.0);
    for (label, _, _) in train::reducers() {
        assert!(s.reducer_rate(&label, 1).unwrap() > 0.0, "{label}");
    }
    // Refusals are answers: the server goes on answering afterwards.
    match s.reducer_rate("blur/sample", 1) {
        Err(ReferenceError::Failed(m)) => assert!(m.contains("blur/sample"), "{m}"),
        other => panic!("an unknown reducer must be refused: {other:?}"),
    }
    let raw = s.server().request_raw("not json").unwrap();
    assert!(raw.contains("\"error\""), "{raw}");
    // The script's figure is "train"; the label the output prints is not a request.
    let unknown: Result<serde_json::Value, _> = s.server().request(&serde_json::json!({"figure": TRAIN_FIGURE}));
    assert!(matches!(unknown, Err(ReferenceError::Failed(_))), "{unknown:?}");
    assert!(s.train_rate(1).unwrap() > 0.0, "still answering after the refusals");
}

#[test]
fn a_closed_reference_is_reaped_and_a_dead_one_is_an_error_with_its_stderr() {
    let mut s = torch_server();
    assert!(s.train_rate(1).unwrap() > 0.0, "up and answering before it is closed");
    let pid = s.server().id();
    let server = std::mem::replace(s.server(), dead_server());
    let status = server.close().expect("exits by itself once its stdin closes");
    assert!(status.success(), "{status}");
    // Reaped: not even a zombie is left under its pid.
    assert!(!Path::new(&format!("/proc/{pid}")).exists(), "process {pid} is still there");
    let mut dead = dead_server();
    let t = std::time::Instant::now();
    match dead.request::<serde_json::Value>(&serde_json::json!({})) {
        Err(ReferenceError::Failed(m)) => assert!(m.contains("boom") && m.contains("exit status: 3"), "{m}"),
        other => panic!("a dead reference must be an error: {other:?}"),
    }
    assert!(t.elapsed().as_secs() < 10, "no hang");
}

/// A "reference" that prints to stderr and exits 3 without reading a request.
fn dead_server() -> Server {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("dead.py");
    std::fs::write(&script, "import sys\nprint('boom', file=sys.stderr)\nsys.exit(3)\n").unwrap();
    let s = Server::start(&python(), &script, &[]).unwrap();
    // The script has been read by the time its first line is; keep the file until then.
    std::thread::sleep(std::time::Duration::from_millis(500));
    s
}

#[test]
fn the_scipy_reference_answers_one_fit_per_request() {
    let dir = tempfile::tempdir().unwrap();
    let setup = fit::prepare(dir.path(), 40, 3, 0).unwrap();
    let opts = fit::ScipyOptions { starts: Some(12), ..Default::default() };
    let mut s = fit::ScipyServer::start(&python(), &root().join(fit::SCRIPT), &setup, 1, &opts).unwrap_or_else(|e| panic!("{e:?}"));
    let (a, b) = (s.fit(0.0).unwrap(), s.fit(0.0).unwrap());
    for r in [&a, &b] {
        assert!(r.grid_seconds > 0.0 && r.bootstrap_seconds > 0.0 && r.fits == 1 && r.extrapolated, "{r:?}");
        assert_eq!((r.params.len(), r.ci95.len(), r.starts_run), (5, 5, 12));
    }
    // The same fit twice: same parameters, bit for bit.
    assert_eq!(a.params, b.params);
    s.close();
}

fn vislaw_bench(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vislaw-bench")).args(args).current_dir(root()).output().expect("the vislaw-bench binary runs")
}

#[test]
fn bench_train_prints_both_sides_per_figure_with_the_ratios_and_the_machine() {
    let out = vislaw_bench(&["train", "--steps", "2", "--repeats", "3", "--warmup", "1", "--reduce-ms", "5"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("machine: ") && text.contains("3 timed repeat(s) per side") && text.contains("alternating"), "{text}");
    // Training (samples/s, tokens/s) and four reducers, on each side.
    for side in ["vislaw (tch)", "pytorch eager"] {
        let rows: Vec<Vec<f64>> = text
            .lines()
            .filter(|l| l.starts_with("  ") && l.contains(side) && !l.contains("ratio"))
            .map(|l| l.split_whitespace().rev().take(3).map(|v| v.parse::<f64>().unwrap()).collect::<Vec<_>>().into_iter().rev().collect())
            .collect();
        assert_eq!(rows.len(), 6, "{side}: {text}");
        for r in rows {
            assert!(r.iter().all(|v| v.is_finite() && *v > 0.0) && r[0] <= r[1] && r[1] <= r[2], "{r:?}: {text}");
        }
    }
    assert_eq!(text.matches("ratio of medians").count(), 5, "{text}");
    assert_eq!(text.matches("per-pair ratio: median").count(), 5, "{text}");
}
