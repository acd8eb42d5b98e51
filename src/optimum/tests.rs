//! Tests of the optimum solver on fits of planted laws.
use super::continuous::{additive_closed_form, argmin_interval};
use super::surface::{Axes, Surface};
use super::*;
use crate::fit::{fit_groups, FitOptions, GroupRows, StartGrid};
use crate::reduction::{Spatial, Temporal};
use rand::SeedableRng;
use rand_distr::{Distribution, Normal};

/// The M of pooling a 27×27 grid, the options' default.
fn pooling_27_m() -> Vec<u64> {
    Spatial::Pool.reachable(27).into_iter().map(|m| m as u64).collect()
}

const PLANTED: [f64; 5] = [1.5, 2.0, 3.0, 0.6, 0.45];

/// A fit of `law` to rows generated from `p` on a T × M grid, with log-normal noise `sd`.
fn planted(law: Law, p: &[f64], sd: f64, swap: bool) -> FitReport {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(11);
    let noise = Normal::new(0.0, sd.max(1e-300)).unwrap();
    let mut g = GroupRows { name: "pool".into(), y: Some(vec![]), ..GroupRows::default() };
    for t in [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0] {
        for m in [1.0, 4.0, 9.0, 16.0, 49.0, 196.0, 729.0] {
            let eps = if sd > 0.0 { noise.sample(&mut rng) } else { 0.0 };
            let (x, y) = if swap { (m, t) } else { (t, m) };
            g.x.push(x);
            g.y.as_mut().unwrap().push(y);
            g.loss.push(law.predict(p, t, m) * f64::exp(eps));
        }
    }
    let (x, y) = if swap { ("tokens_per_frame", "frames") } else { ("frames", "tokens_per_frame") };
    let opts = FitOptions { law: Some(law), x: x.into(), y: y.into(), grid: StartGrid::coarse(), bootstrap: 60, ..FitOptions::default() };
    fit_groups(&[g], &opts).unwrap()
}

fn opts(budgets: &[f64]) -> OptimumOptions {
    OptimumOptions { budgets: budgets.to_vec(), ..OptimumOptions::default() }
}

fn rel(a: f64, b: f64) -> f64 {
    ((a - b) / b).abs()
}

#[test]
fn continuous_additive_optimum_is_the_closed_form() {
    let report = planted(Law::Additive, &PLANTED, 0.0, false);
    let f = &report.fits[0];
    let (e, a, b, al, be) = (f.params.e, f.params.a, f.params.b.unwrap(), f.params.alpha, f.params.beta.unwrap());
    for budget in [2_000.0, 6_000.0, 20_000.0] {
        let out = solve(&report, &opts(&[budget])).unwrap();
        let o = &out.optima[0];
        let g = (al * a / (be * b)).powf(1.0 / (al + be));
        let t = g * f64::powf(budget, be / (al + be));
        let m = budget / t;
        let loss = e + a * t.powf(-al) + b * m.powf(-be);
        assert!(rel(o.continuous.t, t) < 1e-9 && rel(o.continuous.m, m) < 1e-9 && rel(o.continuous.loss, loss) < 1e-9);
        assert!(o.boundary.is_none());
    }
}

#[test]
fn the_numeric_search_agrees_with_the_closed_form() {
    let p = PLANTED;
    let s = Surface { law: Law::Additive, p: &p, axes: Axes::Both { t_is_x: true } };
    for budget in [500.0, 6_000.0, 100_000.0] {
        let closed = additive_closed_form(&s, budget).unwrap();
        let slope = |t: f64| s.elasticities(t, budget / t).0 - s.elasticities(t, budget / t).1;
        let numeric = argmin_interval(|t| s.loss(t, budget / t), slope, 1.0, budget);
        assert!(rel(numeric, closed) < 1e-9, "{numeric} vs {closed}");
    }
}

#[test]
fn swapped_axes_give_the_same_optimum() {
    let normal = solve(&planted(Law::Additive, &PLANTED, 0.0, false), &opts(&[6_000.0])).unwrap();
    let swapped = solve(&planted(Law::Additive, &PLANTED, 0.0, true), &opts(&[6_000.0])).unwrap();
    let (a, b) = (&normal.optima[0].continuous, &swapped.optima[0].continuous);
    assert!(rel(a.t, b.t) < 1e-6 && rel(a.m, b.m) < 1e-6, "{a:?} vs {b:?}");
}

#[test]
fn discrete_optimum_matches_brute_force() {
    let report = planted(Law::Additive, &PLANTED, 0.0, false);
    let f = &report.fits[0];
    for (budget, max_frames) in [(3.0, 64), (500.0, 64), (6_000.0, 1024), (6_000.0, 16), (1e6, 1024)] {
        let o = OptimumOptions { max_frames, ..opts(&[budget]) };
        let got = solve(&report, &o).unwrap().optima[0].discrete.clone().unwrap();
        let mut best: Option<Point> = None;
        for t in 1..=max_frames {
            for &m in &pooling_27_m() {
                let (t, m) = (t as f64, m as f64);
                if t * m > budget {
                    continue;
                }
                let loss = f.predict(t, m);
                if best.as_ref().is_none_or(|b| loss < b.loss) {
                    best = Some(Point { t, m, loss });
                }
            }
        }
        let best = best.unwrap();
        assert_eq!((got.t, got.m), (best.t, best.m), "budget {budget}");
        assert!(got.loss >= solve(&report, &o).unwrap().optima[0].continuous.loss - 1e-12);
    }
}

#[test]
fn multiplicative_optimum_lies_on_a_boundary() {
    // α > β: loss falls along T·M = L as T grows, so T goes to its upper limit.
    let report = planted(Law::Multiplicative, &[1.5, 2.0, 0.6, 0.3], 0.0, false);
    let o = &solve(&report, &opts(&[6_000.0])).unwrap().optima[0];
    assert!(rel(o.continuous.t, 1024.0) < 1e-9, "{o:?}");
    assert!(o.boundary.as_deref().unwrap().contains("no interior optimum"));
}

#[test]
fn closed_form_outside_the_box_is_clamped_and_reported() {
    // With a tiny budget T* < L/M_max would need M > 729.
    let report = planted(Law::Additive, &[1.5, 50.0, 0.01, 0.6, 0.45], 0.0, false);
    let o = &solve(&report, &opts(&[2_000.0])).unwrap().optima[0];
    let u = o.unconstrained.as_ref().expect("stationary point reported");
    assert_ne!(u.t, o.continuous.t);
    assert!(o.boundary.is_some());
}

#[test]
fn target_loss_gives_the_smallest_budget() {
    let report = planted(Law::Additive, &PLANTED, 0.0, false);
    let base = solve(&report, &opts(&[6_000.0])).unwrap().optima[0].continuous.loss;
    let o = OptimumOptions { target_loss: vec![base, 1.4], ..opts(&[]) };
    let out = solve(&report, &o).unwrap();
    let hit = out.targets[0].continuous.as_ref().unwrap();
    assert!(rel(hit.budget, 6_000.0) < 1e-9, "{hit:?}");
    let d = out.targets[0].discrete.as_ref().unwrap();
    assert!(report.fits[0].predict(d.t, d.m) <= base && d.budget >= 6_000.0);
    assert!(out.targets[1].continuous.is_none(), "below E = 1.5 is unreachable");
}

#[test]
fn intervals_come_from_the_bootstrap_and_bracket_the_estimate() {
    let report = planted(Law::Additive, &PLANTED, 0.01, false);
    let o = &solve(&report, &opts(&[6_000.0])).unwrap().optima[0];
    for (key, v) in [("T", o.continuous.t), ("M", o.continuous.m), ("loss", o.continuous.loss)] {
        let [lo, hi] = o.ci95[key];
        assert!(lo < hi && lo <= v * 1.02 && v <= hi * 1.02, "{key}: {v} not near [{lo}, {hi}]");
    }
    assert!(o.ci95.contains_key("discrete_loss"));
    assert_eq!(o.not_identified, None);
}

/// An optimum from a law its fit marks as not identified carries no interval, and says why.
#[test]
fn an_unidentified_law_gives_an_optimum_without_intervals() {
    let mut report = planted(Law::Additive, &PLANTED, 0.01, false);
    report.fits[0].identified = false;
    report.fits[0].not_identified.insert("beta".into(), "its profile is flat".into());
    let out = solve(&report, &OptimumOptions { target_loss: vec![2.0], ..opts(&[6_000.0]) }).unwrap();
    let o = &out.optima[0];
    assert!(o.ci95.is_empty(), "{:?}", o.ci95);
    assert!(o.not_identified.as_deref().is_some_and(|w| w.contains("beta")), "{:?}", o.not_identified);
    assert_eq!(out.targets[0].ci95_budget, None);
    assert!(out.render_table().contains("no intervals: the fit's law is not identified"));
}

#[test]
fn bad_options_are_input_errors() {
    let report = planted(Law::Additive, &PLANTED, 0.0, false);
    assert_eq!(solve(&report, &opts(&[])).unwrap_err().exit_code(), 2);
    assert_eq!(solve(&report, &opts(&[-5.0])).unwrap_err().exit_code(), 2);
    let zero = OptimumOptions { feasible_m: vec![4, 0], ..opts(&[100.0]) };
    assert_eq!(solve(&report, &zero).unwrap_err().exit_code(), 2);
    let unsorted = OptimumOptions { feasible_m: vec![49, 1, 49, 4], ..opts(&[100.0]) };
    let sorted = OptimumOptions { feasible_m: vec![1, 4, 49], ..opts(&[100.0]) };
    assert_eq!(solve(&report, &unsorted).unwrap(), solve(&report, &sorted).unwrap());
    // A budget below the smallest M leaves nothing to solve.
    let tiny = OptimumOptions { feasible_m: vec![4, 9], ..opts(&[2.0]) };
    assert_eq!(solve(&report, &tiny).unwrap_err().exit_code(), 2);
}

#[test]
fn one_factor_power_law_fixes_the_other_factor() {
    let mut g = GroupRows { name: "m-sweep".into(), y: Some(vec![]), ..GroupRows::default() };
    for m in [1.0, 4.0, 9.0, 16.0, 49.0, 196.0] {
        g.x.push(8.0);
        g.y.as_mut().unwrap().push(m);
        g.loss.push(2.0 + 3.0 * f64::powf(m, -0.5));
    }
    let fit_opts = FitOptions { grid: StartGrid::coarse(), bootstrap: 10, ..FitOptions::default() };
    let report = fit_groups(&[g], &fit_opts).unwrap();
    assert_eq!(report.fits[0].x, "tokens_per_frame");
    let o = &solve(&report, &opts(&[400.0])).unwrap().optima[0];
    assert_eq!(o.continuous.t, 8.0);
    assert!(rel(o.continuous.m, 50.0) < 1e-9, "{o:?}");
    let d = o.discrete.as_ref().unwrap();
    assert_eq!((d.t, d.m), (8.0, 49.0));
}

/// The planted additive law fitted once per group name.
fn planted_groups(groups: &[&str]) -> FitReport {
    let one = planted(Law::Additive, &PLANTED, 0.0, false);
    let fits = groups.iter().map(|g| Fit { group: g.to_string(), ..one.fits[0].clone() }).collect();
    FitReport { fits, ..one }
}

/// Options for F = 16 source frames on a 27×27 grid, each strategy with its own sets.
fn strategy_opts(report: &FitReport, budgets: &[f64]) -> OptimumOptions {
    let groups = strategy_sets(report.fits.iter().map(|f| f.group.as_str()), 16, 27);
    OptimumOptions { max_frames: 16, groups, ..opts(budgets) }
}

#[test]
fn pool_temporal_never_recommends_an_unreachable_frame_count() {
    let report = planted_groups(&["pool/pool", "pool/sample"]);
    let budgets = [20.0, 50.0, 80.0, 300.0, 500.0, 1_000.0, 2_000.0];
    let out = solve(&report, &strategy_opts(&report, &budgets)).unwrap();
    let reachable_t = Temporal::Pool.reachable(16);
    assert_eq!(reachable_t, vec![1, 2, 3, 4, 6, 8, 16]);
    let f = &report.fits[0];
    for o in out.optima.iter().filter(|o| o.group == "pool/pool") {
        let d = o.discrete.as_ref().unwrap();
        assert!(reachable_t.contains(&(d.t as usize)), "budget {}: T = {}", o.budget, d.t);
        let brute = reachable_t
            .iter()
            .flat_map(|&t| pooling_27_m().into_iter().map(move |m| (t as f64, m as f64)))
            .filter(|(t, m)| t * m <= o.budget)
            .map(|(t, m)| f.predict(t, m))
            .fold(f64::INFINITY, f64::min);
        assert_eq!(d.loss, brute, "budget {}", o.budget);
    }
    // At L = 80 the continuous optimum, T* ≈ 5.85, lies between the reachable 4 and 6, and
    // the best integer setting (T = 5, M = 16) is one temporal pooling cannot produce.
    let at = |group: &str| out.optima.iter().find(|o| o.group == group && o.budget == 80.0).unwrap();
    let (pooled, sampled) = (at("pool/pool"), at("pool/sample"));
    assert!(rel(pooled.continuous.t, 5.846) < 1e-3, "{pooled:?}");
    assert_eq!(pooled.continuous, sampled.continuous, "the continuous optimum ignores reachability");
    assert_eq!(sampled.discrete.as_ref().map(|d| (d.t, d.m)), Some((5.0, 16.0)), "sample reaches every T");
    assert_eq!(pooled.discrete.as_ref().map(|d| (d.t, d.m)), Some((8.0, 9.0)), "moved to a reachable T");
}

#[test]
fn sample_temporal_may_take_any_frame_count() {
    let report = planted_groups(&["pool/sample"]);
    let out = solve(&report, &strategy_opts(&report, &[20.0, 50.0, 300.0, 2_000.0])).unwrap();
    let ts: Vec<f64> = out.optima.iter().map(|o| o.discrete.as_ref().unwrap().t).collect();
    assert_eq!(ts, vec![5.0, 5.0, 12.0, 10.0], "the integer optimum, unreachable by temporal pooling");
}

#[test]
fn the_inverse_problem_also_keeps_to_reachable_frame_counts() {
    let report = planted_groups(&["pool/pool", "pool/sample"]);
    // The loss of (T = 5, M = 16): that is the cheapest way to reach it with any T.
    let target = report.fits[0].predict(5.0, 16.0);
    let o = OptimumOptions { target_loss: vec![target], ..strategy_opts(&report, &[]) };
    let out = solve(&report, &o).unwrap();
    let cheapest = |group: &str| out.targets.iter().find(|t| t.group == group).unwrap().discrete.clone().unwrap();
    assert_eq!(cheapest("pool/sample"), BudgetPoint { budget: 80.0, t: 5.0, m: 16.0 });
    let d = cheapest("pool/pool");
    assert!(Temporal::Pool.reachable(16).contains(&(d.t as usize)) && d.budget > 80.0, "{d:?}");
    assert!(report.fits[0].predict(d.t, d.m) <= target);
}

#[test]
fn each_strategy_gets_its_reducers_sets() {
    let of = |name: &str| Feasible::of_strategy(name, 8, 4).unwrap();
    let every_t: Vec<u64> = (1..=8).collect();
    assert_eq!(of("pool/pool"), Feasible { frames: vec![1, 2, 3, 4, 8], tokens: vec![1, 4, 16] });
    assert_eq!(of("sample/sample"), Feasible { frames: every_t.clone(), tokens: vec![1, 4, 16] });
    assert_eq!(of("bilinear/fps").frames, every_t);
    assert_eq!(of("bilinear/fps").tokens, vec![1, 4, 9, 16]);
    assert_eq!(of("visionzip/sample").tokens, (1..=16).collect::<Vec<u64>>());
    assert_eq!(of("resampler/sample").tokens, (1..=16).collect::<Vec<u64>>());
    assert_eq!(of("summary/pool").tokens, vec![1, 2, 4, 8, 16]);
    for not_a_strategy in ["all", "pool", "pool/uniform", "smaple/pool"] {
        assert!(Feasible::of_strategy(not_a_strategy, 8, 4).is_none(), "{not_a_strategy}");
    }
    let sets = strategy_sets(["pool/pool", "all"], 8, 4);
    assert_eq!(sets.keys().collect::<Vec<_>>(), vec!["pool/pool"], "other groups keep the defaults");
}

#[test]
fn listed_frame_counts_bound_the_search_and_are_checked() {
    let report = planted(Law::Additive, &PLANTED, 0.0, false);
    let only = OptimumOptions { feasible_t: vec![4, 2], max_frames: 16, ..opts(&[80.0]) };
    let o = &solve(&report, &only).unwrap().optima[0];
    assert!(o.continuous.t <= 4.0, "the box ends at the largest listed T: {o:?}");
    assert!([2.0, 4.0].contains(&o.discrete.as_ref().unwrap().t));
    let zero = OptimumOptions { feasible_t: vec![0, 2], ..opts(&[80.0]) };
    assert_eq!(solve(&report, &zero).unwrap_err().exit_code(), 2);
    // Listed counts above max_frames leave the group nothing to choose: a warning, then no optimum.
    let beyond = OptimumOptions { feasible_t: vec![32], max_frames: 16, ..opts(&[80.0]) };
    let e = solve(&report, &beyond).unwrap_err();
    assert!(e.to_string().contains("no reachable frame count"), "{e}");
}

#[test]
fn the_default_m_is_pooling_a_27_grid() {
    assert_eq!(OptimumOptions::default().feasible_m, vec![1, 4, 9, 16, 25, 36, 49, 81, 196, 729]);
}

#[test]
fn optimum_json_round_trips_at_full_precision() {
    let report = planted(Law::Additive, &PLANTED, 0.01, false);
    let out = solve(&report, &OptimumOptions { target_loss: vec![2.0], ..opts(&[6_000.0, 1e5 / 3.0]) }).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = out.save(dir.path()).unwrap();
    assert_eq!(path, dir.path().join(crate::rundir::OPTIMUM_FILE));
    assert_eq!(OptimaReport::load(dir.path()).unwrap(), out);
    assert_eq!(OptimaReport::load(&path).unwrap(), out);
    assert_eq!(out.of_fit("pool", Law::Additive).count(), 2);
}

#[test]
fn option_errors_name_fields_not_flags() {
    let report = planted(Law::Additive, &PLANTED, 0.0, false);
    for bad in [
        opts(&[]),
        opts(&[-5.0]),
        OptimumOptions { target_loss: vec![f64::NAN], ..opts(&[1.0]) },
        OptimumOptions { feasible_m: vec![], ..opts(&[100.0]) },
        OptimumOptions { feasible_t: vec![0], ..opts(&[100.0]) },
        OptimumOptions { max_frames: 0, ..opts(&[100.0]) },
    ] {
        let e = solve(&report, &bad).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(!e.to_string().contains("--"), "{e}");
        assert!(bad.check().is_err());
    }
}

#[test]
fn the_measured_box_maps_onto_t_and_m_whichever_axis_is_x() {
    for swap in [false, true] {
        let report = planted(Law::Additive, &PLANTED, 0.0, swap);
        let o = &solve(&report, &opts(&[6_000.0])).unwrap().optima[0];
        assert_eq!(o.measured, Some(Measured { t: [1.0, 64.0], m: [1.0, 729.0] }), "swap {swap}");
        assert_eq!(o.extrapolation, Some(Extrapolation { t: 1.0, m: 1.0 }), "inside the box: {o:?}");
    }
}

#[test]
fn the_extrapolation_factor_is_the_ratio_to_the_nearer_end() {
    let b = Measured { t: [2.0, 16.0], m: [4.0, 196.0] };
    assert_eq!(b.extrapolation(40.0, 100.0), Extrapolation { t: 2.5, m: 1.0 });
    assert_eq!(b.extrapolation(1.0, 1.0), Extrapolation { t: 2.0, m: 4.0 });
    assert!(!b.extrapolation(16.0 * (1.0 + 1e-12), 4.0).outside(), "rounding at the edge is inside");
}

#[test]
fn within_data_keeps_every_answer_inside_the_measured_box() {
    let mut report = planted(Law::Additive, &PLANTED, 0.0, false);
    report.fits[0].ranges = Some(crate::fit::FactorRanges { x: [2.0, 8.0], y: Some([4.0, 49.0]) });
    let budgets = [4.0, 30.0, 100.0, 300.0, 6_000.0];
    let free = solve(&report, &OptimumOptions { target_loss: vec![2.6], ..opts(&budgets) }).unwrap();
    assert!(free.extrapolates(), "the planted optimum at 6000 lies past T = 8");
    let within = OptimumOptions { within_data: true, target_loss: vec![2.6], ..opts(&budgets) };
    let out = solve(&report, &within).unwrap();
    assert!(out.within_data && !out.extrapolates(), "{out:?}");
    let inside = |t: f64, m: f64| (2.0..=8.0).contains(&t) && (4.0 * (1.0 - 1e-12)..=49.0 * (1.0 + 1e-12)).contains(&m);
    // L = 4 is below the box's smallest T·M = 8: a warning, not an answer outside it.
    assert_eq!(out.optima.len(), 4);
    assert!(out.warnings.iter().any(|w| w.contains("budget 4") && w.contains("smallest T·M")), "{:?}", out.warnings);
    for o in &out.optima {
        let d = o.discrete.as_ref().unwrap();
        assert!(inside(o.continuous.t, o.continuous.m) && inside(d.t, d.m), "{o:?}");
        assert!((d.t * d.m) <= o.budget && [4.0, 9.0, 16.0, 25.0, 36.0, 49.0].contains(&d.m), "{d:?}");
    }
    let t = &out.targets[0];
    let (c, d) = (t.continuous.as_ref().unwrap(), t.discrete.as_ref().unwrap());
    assert!(inside(c.t, c.m) && inside(d.t, d.m), "{t:?}");
    // The box's own best setting holds where the budget does not bind.
    let top = out.optima.iter().find(|o| o.budget == 6_000.0).unwrap();
    assert_eq!((top.continuous.t, top.continuous.m), (8.0, 49.0));
    assert!(top.boundary.as_deref().unwrap().contains("largest measured T × M"));
}
