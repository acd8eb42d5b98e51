//! Tests of the FLOPs optimum that chooses the LM: brute force, exhaustive reachable search, budgets, refusals.
use super::*;
use crate::cost::{Linear, LmCost};
use crate::fit::joint::{fit_joint, JointOptions, JointPoints};
use rand::SeedableRng;
use rand_distr::{Distribution, Normal};

const ADDITIVE: [f64; 7] = [1.5, 400.0, 1.2, 2.0, 0.34, 0.5, 0.6];
const NS: [f64; 3] = [1e8, 5e8, 2.5e9];

/// A planted additive law over 3 N × 4 T (1–8) × 4 M (1–64), noise 0.2%, fitted.
fn fitted(bootstrap: usize) -> JointFit {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(4);
    let z = Normal::new(0.0, 1.0).unwrap();
    let mut pts = JointPoints::default();
    for n in NS {
        for t in [1.0, 2.0, 4.0, 8.0] {
            for m in [1.0, 4.0, 16.0, 64.0] {
                pts.ntm.push([n, t, m]);
                pts.loss.push(predict(JointForm::Additive, &ADDITIVE, n, t, m) * (1.0 + 0.002 * z.sample(&mut rng)));
            }
        }
    }
    fit_joint("pool/sample", JointForm::Additive, &pts, &JointOptions { bootstrap, seed: 0 }).unwrap()
}

/// An LM of N parameters: 2N FLOPs per token, attention 4·layers·w per squared token, a ViT
/// of 2 GFLOPs per frame and a projector into width w, 32 text tokens.
fn lm(label: &str, n: f64, w: f64, layers: f64) -> LmChoice {
    let cost = CostModel {
        encoder: Linear { per_frame: 2e9, ..Linear::default() },
        reducer: Linear::default(),
        projector: Linear { per_token: 2.0 * (768.0 * 1024.0 + 1024.0 * w), ..Linear::default() },
        lm: LmCost { fixed: 0.0, per_token: 2.0 * n, per_token_sq: 4.0 * layers * w, text_tokens: 32.0, params: n },
    };
    (label.to_string(), n, cost)
}

fn lms() -> Vec<LmChoice> {
    vec![lm("small", NS[0], 512.0, 8.0), lm("medium", NS[1], 1024.0, 16.0), lm("large", NS[2], 2048.0, 24.0)]
}

/// Grid points per axis of the brute force: log-spaced over the measured box.
const GRID: usize = 4001;

/// min L(N, T, M) over a log grid of GRID × GRID (T, M) in the box with cost ≤ budget.
fn brute(fit: &JointFit, lm: &LmChoice, budget: f64, bx: Bounds) -> Option<f64> {
    let axis = |[lo, hi]: [f64; 2]| (0..GRID).map(move |i| lo * (hi / lo).powf(i as f64 / (GRID - 1) as f64)).collect::<Vec<_>>();
    let (ts, ms) = (axis(bx.t), axis(bx.m));
    let mut best: Option<f64> = None;
    for &t in &ts {
        for &m in &ms {
            if lm.2.total(t, m) <= budget {
                let l = fit.predict(lm.1, t, m);
                best = Some(best.map_or(l, |b: f64| b.min(l)));
            }
        }
    }
    best
}

#[test]
fn the_joint_optimum_equals_a_brute_force_search() {
    let fit = fitted(20);
    let bx = Bounds::of(&fit).unwrap();
    let p = fit.natural();
    // The grid's best lies within one step of the true optimum, so it is above it by at most
    // |∂L/∂ln T|·Δ_T + |∂L/∂ln M|·Δ_M with both slopes at their largest in the box (at the
    // smallest T and M for this law): β·B·T_min^−β·Δ_T + γ·C·M_min^−γ·Δ_M, Δ the grid's log step.
    let step = |r: [f64; 2]| (r[1] / r[0]).ln() / (GRID - 1) as f64;
    let tol = p[5] * p[2] * bx.t[0].powf(-p[5]) * step(bx.t) + p[6] * p[3] * bx.m[0].powf(-p[6]) * step(bx.m);
    assert!(tol < 2e-3, "{tol}");
    for budget in [3e10, 2e11, 1e12, 5e12] {
        let o = joint_optimum_at(&fit, &lms(), budget, None).unwrap();
        let mut brute_best: Option<(usize, f64)> = None;
        for (i, (lm, best)) in lms().iter().zip(&o.per_lm).enumerate() {
            let want = brute(&fit, lm, budget, bx);
            match (&best.continuous, want) {
                (Some(got), Some(want)) => {
                    assert!(got.loss <= want + 1e-12 && want - got.loss <= tol, "{} at {budget}: {} vs brute {want}", lm.0, got.loss);
                    assert!(best.continuous_flops.unwrap() <= budget * (1.0 + 1e-12));
                }
                (None, None) => assert!(best.why.is_some()),
                (got, want) => panic!("{} at {budget}: {got:?} vs brute {want:?}", lm.0),
            }
            if let Some(w) = want {
                if brute_best.is_none_or(|(_, b)| w < b) {
                    brute_best = Some((i, w));
                }
            }
        }
        assert_eq!(o.chosen.as_deref(), brute_best.map(|(i, _)| lms()[i].0.clone()).as_deref(), "at {budget}");
    }
}

#[test]
fn a_larger_budget_chooses_a_larger_lm() {
    let fit = fitted(40);
    let small = joint_optimum_at(&fit, &lms(), 3e10, None).unwrap();
    let large = joint_optimum_at(&fit, &lms(), 5e12, None).unwrap();
    let n = |o: &JointOptimum| o.chosen_params.unwrap();
    assert!(n(&small) < n(&large), "{:?} then {:?}", small.chosen, large.chosen);
    // The wins count every refit that chose an LM; on 0.2% noise the point estimate's LM wins most.
    for o in [&small, &large] {
        assert_eq!(o.wins.values().sum::<usize>(), o.refits);
        assert_eq!(o.refits, fit.bootstrap.samples.len());
        let top = o.wins.iter().max_by_key(|(_, &c)| c).unwrap().0;
        assert_eq!(Some(top), o.chosen.as_ref());
        let c = o.continuous.as_ref().unwrap();
        assert!(o.ci95["loss"][0] <= c.loss && c.loss <= o.ci95["loss"][1], "{:?} {c:?}", o.ci95);
    }
}

#[test]
fn the_reachable_optimum_equals_an_exhaustive_search() {
    let fit = fitted(4);
    let reach = Feasible { frames: vec![1, 2, 4, 8], tokens: vec![1, 4, 16, 64] };
    for budget in [3e10, 2e11, 1e12] {
        let o = joint_optimum_at(&fit, &lms(), budget, Some(&reach)).unwrap();
        let mut all: Vec<(f64, String)> = Vec::new();
        for lm in lms() {
            for &t in &reach.frames {
                for &m in &reach.tokens {
                    if lm.2.total(t as f64, m as f64) <= budget {
                        all.push((fit.predict(lm.1, t as f64, m as f64), lm.0.clone()));
                    }
                }
            }
        }
        let best = all.iter().min_by(|a, b| a.0.total_cmp(&b.0)).unwrap();
        assert_eq!(o.discrete.as_ref().unwrap().loss, best.0);
        assert_eq!(o.discrete_chosen.as_ref(), Some(&best.1));
    }
}

#[test]
fn an_unaffordable_lm_says_why_and_a_bad_budget_is_refused() {
    let fit = fitted(4);
    let o = joint_optimum_at(&fit, &lms(), 1e9, None).unwrap();
    assert!(o.chosen.is_none() && o.per_lm.iter().all(|b| b.why.as_deref().is_some_and(|w| w.contains("below the cost"))));
    let fits = JointFitsReport { fits: vec![fit], preferred: BTreeMap::new(), bootstrap: 4, seed: 0 };
    let e = solve_joint(&fits, &BTreeMap::new(), &[0.0], &BTreeMap::new()).unwrap_err();
    assert_eq!(e.exit_code(), 2);
    let r = solve_joint(&fits, &BTreeMap::new(), &[1e11], &BTreeMap::new()).unwrap();
    assert!(r.optima.is_empty() && r.warnings.len() == 1, "{r:?}");
    let costs = BTreeMap::from([("pool/sample".to_string(), lms())]);
    let r = solve_joint(&fits, &costs, &[1e11, 1e12], &BTreeMap::new()).unwrap();
    assert_eq!(r.optima.len(), 2);
    let back: JointOptimaReport = serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap();
    assert_eq!(back, r);
}

#[test]
fn the_analysis_needs_several_lms() {
    use polars::prelude::*;
    let (mut n, mut t, mut m, mut loss) = (vec![], vec![], vec![], vec![]);
    for &nn in &NS {
        for tt in [1i64, 2, 4, 8] {
            for mm in [1i64, 4, 16, 64] {
                n.push(nn as i64);
                t.push(tt);
                m.push(mm);
                loss.push(predict(JointForm::Additive, &ADDITIVE, nn, tt as f64, mm as f64) * (1.0 + 0.001 * ((tt + mm) % 3 - 1) as f64));
            }
        }
    }
    let rows = n.len();
    let strategy = vec!["pool/sample"; rows];
    let df = df!("strategy" => strategy.clone(), "frames" => t.clone(), "tokens_per_frame" => m.clone(), "loss" => loss.clone()).unwrap();
    let costs = BTreeMap::from([("pool/sample".to_string(), lms())]);
    assert_eq!(joint_analysis(&df, &costs, &[1e11], &BTreeMap::new()).unwrap(), None);
    let one =
        df!("strategy" => strategy.clone(), "lm_params" => vec![1i64; rows], "frames" => t.clone(), "tokens_per_frame" => m.clone(), "loss" => loss.clone())
            .unwrap();
    assert_eq!(joint_analysis(&one, &costs, &[1e11], &BTreeMap::new()).unwrap(), None);
    let all = df!("strategy" => strategy, "lm_params" => n, "frames" => t, "tokens_per_frame" => m, "loss" => loss).unwrap();
    let r = joint_analysis(&all, &costs, &[1e11, 1e12], &BTreeMap::new()).unwrap().unwrap();
    assert_eq!((r.fits.fits.len(), r.optimum.optima.len()), (2, 4));
}
