//! Tests of the joint (N, T, M) law: planted laws recovered inside their intervals, nested forms compared, flat axes not identified, same seed same numbers.
use super::*;
use polars::prelude::*;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};

/// The planted laws' parameters, in storage order.
const ADDITIVE: [f64; 7] = [1.5, 400.0, 1.2, 2.0, 0.34, 0.5, 0.6];
const INTERACT: [f64; 8] = [1.5, 400.0, 1.2, 2.0, 900.0, 0.34, 0.5, 0.6];
/// D < 0 (down to −A): the LM-size term fades where the model sees few tokens.
const INTERACT_NEGATIVE: [f64; 8] = [1.5, 400.0, 1.2, 2.0, -300.0, 0.34, 0.5, 0.6];
const NS: [f64; 3] = [1e8, 5e8, 2.5e9];
const TS: [f64; 4] = [1.0, 2.0, 4.0, 8.0];
const MS: [f64; 4] = [1.0, 4.0, 16.0, 64.0];
/// Multiplicative noise: 0.2% of the loss (about the seed-to-seed spread of a short run).
const NOISE: f64 = 0.002;

/// 3 N × 4 T × 4 M points of a planted law, times (1 + NOISE·z), z standard normal.
pub(crate) fn planted(form: JointForm, p: &[f64], noise: f64, seed: u64) -> JointPoints {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let z = Normal::new(0.0, 1.0).unwrap();
    let mut pts = JointPoints::default();
    for n in NS {
        for t in TS {
            for m in MS {
                pts.ntm.push([n, t, m]);
                pts.loss.push(predict(form, p, n, t, m) * (1.0 + noise * z.sample(&mut rng)));
            }
        }
    }
    pts
}

fn inside(iv: [f64; 2], v: f64) -> bool {
    iv[0] <= v && v <= iv[1]
}

fn assert_recovered(form: JointForm, truth: &[f64]) {
    let f = fit_joint("s", form, &planted(form, truth, NOISE, 11), &JointOptions::default()).unwrap();
    assert_eq!(f.bootstrap.requested, 200);
    assert_eq!(f.bootstrap.converged + f.bootstrap.failed + f.bootstrap.out_of_range, 200);
    for (name, &want) in form.param_names().iter().zip(truth) {
        let iv = f.ci95[*name];
        assert!(inside(iv, want), "{form:?} {name}: {want} outside the bootstrap interval {iv:?} (fit {:?})", f.params);
    }
    // The exponents to within 0.05: the planted noise of 0.2% on 48 points leaves their
    // bootstrap spread at about a hundredth, so 0.05 is several standard errors.
    for (j, name) in EXPONENTS.iter().enumerate() {
        let want = truth[form.n_coef() + j];
        assert!((f.params[*name] - want).abs() < 0.05, "{form:?} {name}: {} vs {want}", f.params[*name]);
        let prof = f.profile[*name].bounded().unwrap_or_else(|| panic!("{name} unbounded"));
        assert!(inside(prof, want), "{form:?} {name}: {want} outside the profile interval {prof:?}");
    }
    assert!(f.identified && f.not_identified.is_empty(), "{:?}", f.not_identified);
    assert!(f.r2 > 0.99 && f.loo.as_ref().unwrap().max_rel_error < 0.02, "r2 {} loo {:?}", f.r2, f.loo);
}

#[test]
fn a_planted_additive_law_is_recovered_inside_its_intervals() {
    assert_recovered(JointForm::Additive, &ADDITIVE);
}

#[test]
fn a_planted_interacting_law_is_recovered_inside_its_intervals() {
    assert_recovered(JointForm::Interact, &INTERACT);
}

#[test]
fn a_planted_negative_interaction_is_recovered_inside_its_intervals() {
    assert_recovered(JointForm::Interact, &INTERACT_NEGATIVE);
}

#[test]
fn additive_data_gives_no_spurious_interaction() {
    let pts = planted(JointForm::Additive, &ADDITIVE, NOISE, 11);
    let f = fit_joint("s", JointForm::Interact, &pts, &JointOptions::default()).unwrap();
    assert!(inside(f.ci95["D"], 0.0), "D = {} with interval {:?}", f.params["D"], f.ci95["D"]);
    assert!(f.params["D"] >= -f.params["A"], "D ≥ −A: {:?}", f.params);
}

#[test]
fn the_interaction_wins_on_interacting_data_and_not_on_additive_data() {
    let by_bic = |form: JointForm, truth: &[f64]| {
        let pts = planted(form, truth, NOISE, 5);
        let opts = JointOptions { bootstrap: 4, ..Default::default() };
        let [a, i] = JointForm::ALL.map(|g| fit_joint("s", g, &pts, &opts).unwrap().bic);
        (a, i)
    };
    let (a, i) = by_bic(JointForm::Interact, &INTERACT);
    assert!(i < a - 10.0, "interacting data: additive BIC {a}, interact BIC {i}");
    let (a, i) = by_bic(JointForm::Additive, &ADDITIVE);
    assert!(a < i, "additive data: additive BIC {a}, interact BIC {i}");
}

#[test]
fn a_flat_lm_axis_leaves_its_exponent_not_identified() {
    // A = 0: the loss does not move with N, so no α fits better than another.
    let flat = [1.5, 0.0, 1.2, 2.0, 0.34, 0.5, 0.6];
    let f = fit_joint("s", JointForm::Additive, &planted(JointForm::Additive, &flat, NOISE, 3), &JointOptions { bootstrap: 20, ..Default::default() }).unwrap();
    assert!(f.not_identified.contains_key("alpha") && !f.identified, "{:?} {:?}", f.profile, f.params);
    assert!(!f.not_identified.contains_key("beta"), "{:?}", f.not_identified);
}

fn table(pts: &JointPoints, lm_params: impl Fn(f64) -> f64) -> DataFrame {
    let n = pts.loss.len();
    df!(
        "strategy" => vec!["pool/sample"; n],
        "lm" => pts.ntm.iter().map(|p| format!("lm{}", p[0])).collect::<Vec<_>>(),
        "lm_params" => pts.ntm.iter().map(|p| lm_params(p[0]) as i64).collect::<Vec<_>>(),
        "frames" => pts.ntm.iter().map(|p| p[1] as i64).collect::<Vec<_>>(),
        "tokens_per_frame" => pts.ntm.iter().map(|p| p[2] as i64).collect::<Vec<_>>(),
        "loss" => pts.loss.clone(),
        "loss_se" => vec![0.01; n],
        "seed" => vec![0i64; n]
    )
    .unwrap()
}

#[test]
fn one_lm_gives_no_joint_fit() {
    let pts = planted(JointForm::Additive, &ADDITIVE, NOISE, 1);
    let opts = JointOptions { bootstrap: 4, ..Default::default() };
    assert_eq!(fit_joint_table(&table(&pts, |_| 1e8), &opts).unwrap(), None);
    let both = fit_joint_table(&table(&pts, |n| n), &opts).unwrap().unwrap();
    assert_eq!(both.fits.len(), 2);
    assert!(both.preferred.contains_key("pool/sample"));
}

#[test]
fn seeds_of_a_point_are_averaged_and_bad_values_named() {
    let df = df!(
        "strategy" => ["s", "s", "s"], "lm_params" => [1i64, 1, 2], "frames" => [2i64, 2, 2],
        "tokens_per_frame" => [4i64, 4, 4], "loss" => [1.0, 2.0, 3.0]
    )
    .unwrap();
    let g = &joint_points(&df).unwrap()["s"];
    assert_eq!(g.ntm, vec![[1.0, 2.0, 4.0], [2.0, 2.0, 4.0]]);
    assert_eq!(g.loss, vec![1.5, 3.0]);
    let bad = df!("strategy" => ["s"], "lm_params" => [1i64], "frames" => [0i64], "tokens_per_frame" => [4i64], "loss" => [1.0]).unwrap();
    let e = joint_points(&bad).unwrap_err();
    assert_eq!(e.exit_code(), 2);
    assert!(e.to_string().contains("frames"), "{e}");
}

#[test]
fn same_seed_same_numbers() {
    let pts = planted(JointForm::Interact, &INTERACT, NOISE, 2);
    let opts = JointOptions { bootstrap: 30, seed: 9 };
    let a = fit_joint("s", JointForm::Interact, &pts, &opts).unwrap();
    let b = fit_joint("s", JointForm::Interact, &pts, &opts).unwrap();
    assert_eq!(serde_json::to_string(&a).unwrap(), serde_json::to_string(&b).unwrap());
    assert_eq!(
        a.bootstrap.samples.iter().flatten().map(|v| v.to_bits()).collect::<Vec<_>>(),
        b.bootstrap.samples.iter().flatten().map(|v| v.to_bits()).collect::<Vec<_>>()
    );
    let c = fit_joint("s", JointForm::Interact, &pts, &JointOptions { seed: 10, ..opts }).unwrap();
    assert_ne!(a.bootstrap.samples, c.bootstrap.samples);
}
