//! Both sides of each benchmark do the same work: benches/train_torch.py, started from the
//! weights and batch vislaw wrote, gives the losses vislaw's training step gives; and
//! benches/fit_scipy.py, on the same rows from the same starts under a matched stopping rule,
//! finds the parameters vislaw's fit finds. The Python side is the project's venv; when it is
//! missing or fails, these tests fail (they never skip).
use std::path::{Path, PathBuf};
use std::process::Command;
use tch::{Device, Kind, Tensor};
use vislaw::bench::{fit, same_work, train};
use vislaw::fit::Law;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The project's Python, or a failure that says how to get it.
fn python() -> PathBuf {
    let p = root().join(vislaw::bench::PYTHON);
    assert!(p.exists(), "{} is missing: the same-work tests need the Python reference; run `make setup`", p.display());
    p
}

/// Runs a reference script and parses its one JSON document, or fails with its stderr.
fn run_json(cmd: &mut Command) -> serde_json::Value {
    let out = cmd.current_dir(root()).output().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(out.status.success(), "{cmd:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{cmd:?}: not one JSON document ({e}): {}", String::from_utf8_lossy(&out.stdout)))
}

fn floats(v: &serde_json::Value) -> Vec<f64> {
    v.as_array().unwrap_or_else(|| panic!("not an array: {v}")).iter().map(|x| x.as_f64().unwrap()).collect()
}

#[test]
fn torch_and_vislaw_training_losses_agree_from_the_same_weights() {
    let config = root().join("configs/quick.yaml");
    let cfg = vislaw::sweep::load(&config).unwrap();
    // The quick sweep's largest point, T = 2 × M = 16, as `vislaw-bench train` measures it.
    let visual = train::visual_tokens(&cfg, &config, 2, 16).unwrap();
    let steps = 12;
    tch::set_num_threads(1);
    let dir = tempfile::tempdir().unwrap();
    let init = dir.path().join("init.safetensors");
    let ours = same_work::write_train_fixture(&cfg, visual, steps, 0, &init).unwrap();
    // The benchmark's own arguments (shapes, text length, learning rate, weight decay), plus
    // the fixture: the same path `vislaw-bench train` takes to the script.
    let torch =
        run_json(Command::new(python()).arg(train::SCRIPT).args(train::reference_args(&cfg, visual, steps, 1)).arg("--init").arg(&init).arg("--dump-losses"));
    let (t32, t64) = (floats(&torch["losses"]), floats(&torch["losses_float64"]));
    assert_eq!((ours.len(), t32.len(), t64.len()), (steps, steps, steps));
    // Tolerance from the float32 rounding noise actually present: the float64 run from the
    // same start is the reference the float32 runs round away from, so |vislaw − torch| is at
    // most |vislaw − exact| + |torch − exact| ≈ 2·|torch32 − torch64| at each step. Allow 4×
    // that (the two float32 runs reassociate differently, so their errors need not be equal),
    // and at least 4 float32 ulps of the loss (float32 ε = 1.19e-7), for steps where the
    // float32 and float64 runs happen to round alike.
    let noise = t32.iter().zip(&t64).map(|(a, b)| (a - b).abs()).fold(0.0f64, f64::max);
    let mut worst = 0.0f64;
    for (k, ((v, t), d)) in ours.iter().zip(&t32).zip(&t64).enumerate() {
        let tol = (4.0 * noise).max(4.0 * f32::EPSILON as f64 * d.abs());
        worst = worst.max((v - t).abs() / tol);
        assert!((v - t).abs() <= tol, "step {k}: vislaw {v} vs torch {t} (float64 {d}), |Δ| = {:e} > tolerance {tol:e}", (v - t).abs());
    }
    // The losses move: agreement is not two runs that both stand still.
    assert!(ours[0] - ours[steps - 1] > 100.0 * noise.max(1e-6), "training did not lower the loss: {ours:?}");
    eprintln!("float32 noise {noise:e}, worst |Δ| / tolerance {worst:.3}, losses {ours:?}");
}

/// ‖∇f(θ)‖₂ of the objective at θ.
fn grad_norm(setup: &fit::Setup, theta: &[f64]) -> f64 {
    let g = fit::objective_and_gradient(setup, theta).1;
    g.iter().map(|v| v * v).sum::<f64>().sqrt()
}

/// The smallest eigenvalue of the objective's Hessian at θ (central differences of the
/// analytic gradient, step 1e-6).
fn smallest_curvature(setup: &fit::Setup, theta: &[f64]) -> f64 {
    let n = theta.len();
    let h = 1e-6;
    let mut hess = vec![0.0; n * n];
    for j in 0..n {
        let (mut up, mut down) = (theta.to_vec(), theta.to_vec());
        up[j] += h;
        down[j] -= h;
        let (gu, gd) = (fit::objective_and_gradient(setup, &up).1, fit::objective_and_gradient(setup, &down).1);
        for i in 0..n {
            hess[i * n + j] = (gu[i] - gd[i]) / (2.0 * h);
        }
    }
    let sym: Vec<f64> = (0..n * n).map(|k| 0.5 * (hess[k] + hess[(k % n) * n + k / n])).collect();
    let t = Tensor::from_slice(&sym).reshape([n as i64, n as i64]).to_kind(Kind::Double).to_device(Device::Cpu);
    t.linalg_eigvalsh("L").min().double_value(&[])
}

#[test]
fn scipy_and_vislaw_fits_agree_on_parameters_from_the_same_starts() {
    let dir = tempfile::tempdir().unwrap();
    let setup = fit::prepare(dir.path(), 40, 2, 0).unwrap();
    // 410 of the 4,500 starts: np.linspace(0, 4499, 410) steps by exactly 11, so no rounding
    // chooses them; SciPy reports the indices it ran and vislaw runs the same ones.
    let opts = fit::matched_scipy_options(&setup, Some(410));
    let run = |o: &fit::ScipyOptions| {
        let mut cmd = Command::new(python());
        cmd.arg(fit::SCRIPT).arg("--csv").arg(&setup.csv).arg("--counts").arg(&setup.counts_path).arg("--processes").arg("1");
        cmd.arg("--starts").arg(o.starts.unwrap().to_string());
        for (flag, v) in [("--gtol", o.gtol), ("--ftol", o.ftol)] {
            if let Some(v) = v {
                cmd.arg(flag).arg(format!("{v:e}"));
            }
        }
        if let Some(m) = o.maxiter {
            cmd.arg("--maxiter").arg(m.to_string());
        }
        run_json(&mut cmd)
    };
    let scipy = run(&opts);
    let indices: Vec<usize> = scipy["start_indices"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as usize).collect();
    assert_eq!(indices.len(), 410);
    assert!(indices.iter().enumerate().all(|(k, &i)| i == 11 * k), "SciPy ran other starts: {indices:?}");
    let (ours, our_obj, our_start) = fit::fit_from_starts(&setup, &indices, &fit::matched_search()).unwrap();
    let names = Law::Additive.param_names();
    let theirs: Vec<f64> = names.iter().map(|n| scipy["params"][*n].as_f64().unwrap_or_else(|| panic!("SciPy gave no {n}: {scipy}"))).collect();
    let (tv, ts) = (Law::Additive.to_theta(&ours), Law::Additive.to_theta(&theirs));
    // Tolerance from the stopping rules: near a minimum θ*, f is quadratic with Hessian H, so
    // ‖θ − θ*‖ ≤ ‖∇f(θ)‖₂ / λ_min(H) for each side, and the two are apart by at most the sum.
    // vislaw's side enters with the gradient it reached; SciPy's with the gradient its
    // requested pgtol allows (a bound on the largest of 5 components: ‖∇f‖₂ ≤ √5·gtol), so a
    // SciPy side that stops earlier than asked, fits other data or other starts fails. 2× for
    // the quadratic approximation and the finite-difference Hessian.
    let gtol = opts.gtol.unwrap();
    let (gv, gs) = (grad_norm(&setup, &tv), grad_norm(&setup, &ts));
    assert!(gs <= 5f64.sqrt() * gtol, "SciPy stopped at ‖∇f‖ = {gs:e}, above its pgtol {gtol:e}: {scipy}");
    let lambda = smallest_curvature(&setup, &tv);
    assert!(lambda > 0.0, "the Hessian at vislaw's minimum is not positive definite: λ_min = {lambda:e}");
    let tol = 2.0 * (gv + 5f64.sqrt() * gtol) / lambda;
    let dist = tv.iter().zip(&ts).map(|(a, b)| (a - b).powi(2)).sum::<f64>().sqrt();
    eprintln!("‖θ_vislaw − θ_scipy‖ = {dist:e}, tolerance {tol:e} (‖∇f‖ {gv:e} / {gs:e}, λ_min {lambda:e}); params {ours:?} vs {theirs:?}");
    assert!(dist <= tol, "vislaw {ours:?} vs SciPy {theirs:?}: ‖Δθ‖ = {dist:e} > {tol:e}");
    // The objectives agree to what that distance allows: |Δf| ≤ max ‖∇f‖ · tolerance, plus
    // the rounding of a sum of 40 terms (64 ε·f). Many starts reach this minimum, so which
    // start each side keeps is decided at rounding level and is not compared.
    let their_obj = scipy["objective"].as_f64().unwrap();
    let f_tol = gv.max(gs) * tol + 64.0 * f64::EPSILON * our_obj.abs();
    assert!((our_obj - their_obj).abs() <= f_tol, "objective {our_obj:e} vs {their_obj:e}, tolerance {f_tol:e}");
    assert!(our_start % 11 == 0 && scipy["best_start"].as_u64().is_some_and(|s| s % 11 == 0));
    // SciPy's own defaults (pgtol 1e-5, factr 1e7) stop earlier.
    let loose = run(&fit::ScipyOptions { starts: Some(410), ..Default::default() });
    let ld: Vec<f64> = names.iter().map(|n| loose["params"][*n].as_f64().unwrap()).collect();
    let lt = Law::Additive.to_theta(&ld);
    let loose_dist = tv.iter().zip(&lt).map(|(a, b)| (a - b).powi(2)).sum::<f64>().sqrt();
    eprintln!("SciPy defaults: ‖Δθ‖ = {loose_dist:e}");
    // The tolerance is tight enough to tell SciPy's defaults from the matched rule.
    assert!(loose_dist > tol, "SciPy's defaults land within the matched tolerance: {loose_dist:e} ≤ {tol:e}");
}
