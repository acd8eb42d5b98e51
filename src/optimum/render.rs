//! The optima as text tables for people (what `vislaw optimum` and the sweep print).
use super::{Extrapolation, Measured, OptimaReport, Optimum, TargetBudget};
use crate::fit::report::{budget_text, num};
use std::collections::BTreeMap;
use std::fmt::Write as _;

impl OptimaReport {
    /// The optima as a table for people.
    pub fn render_table(&self) -> String {
        let mut out = String::new();
        for o in &self.optima {
            render_optimum(&mut out, o);
        }
        for t in &self.targets {
            render_target(&mut out, t, self.within_data);
        }
        for o in &self.flops_optima {
            render_flops(&mut out, o);
        }
        if self.within_data {
            let _ = writeln!(out, "(searched only inside each fit's measured ranges of T and M)");
        }
        for w in &self.warnings {
            let _ = writeln!(out, "warning: {w}");
        }
        out
    }
}

impl OptimaReport {
    /// The optima under FLOPs budgets as a report section (empty when there are none).
    pub fn flops_markdown(&self) -> String {
        if self.flops_optima.is_empty() {
            return String::new();
        }
        let mut md = String::from(
            "## Optimum under a FLOPs budget

",
        );
        md.push_str(
            "cost(T, M) is the forward FLOPs of one sample (`cost.json`): the vision encoder per frame it runs on (counted for \
             deployment even when features are precomputed), the reducer, the projector and the LM's prefill over T·M visual plus \
             the text tokens, its attention quadratic in the context. Continuous: the best real-valued (T*, M*) with cost ≤ C (95% \
             bootstrap intervals); discrete: the best setting the strategy's reducers reach within C.\n\n",
        );
        md.push_str("| group | law | C (FLOPs) | T* | M* | loss | discrete (T, M) | its loss | its FLOPs |\n|---|---|---|---|---|---|---|---|---|\n");
        for o in &self.flops_optima {
            let c = &o.continuous;
            let (dp, dl, df) = match (&o.discrete, o.discrete_flops) {
                (Some(d), Some(f)) => (format!("({}, {})", d.t, d.m), format!("{}{}", num(d.loss), ci(&o.ci95, "discrete_loss")), format!("{f:.3e}")),
                _ => ("none within C".into(), String::new(), String::new()),
            };
            let _ = writeln!(
                md,
                "| {} | {} | {:.3e} | {}{} | {}{} | {}{} | {dp} | {dl} | {df} |",
                o.group,
                o.law.name(),
                o.budget_flops,
                num(c.t),
                ci(&o.ci95, "T"),
                num(c.m),
                ci(&o.ci95, "M"),
                num(c.loss),
                ci(&o.ci95, "loss")
            );
        }
        md.push('\n');
        md
    }
}

fn ci(map: &BTreeMap<String, [f64; 2]>, key: &str) -> String {
    map.get(key).map(|[lo, hi]| format!(" [{}, {}]", num(*lo), num(*hi))).unwrap_or_default()
}

fn render_optimum(out: &mut String, o: &Optimum) {
    let c = &o.continuous;
    let _ = writeln!(out, "group {} ({} law), budget {}:", o.group, o.law.name(), budget_text(o.budget));
    let _ = writeln!(
        out,
        "  continuous  T* = {}{}  M* = {}{}  loss {}{}",
        num(c.t),
        ci(&o.ci95, "T"),
        num(c.m),
        ci(&o.ci95, "M"),
        num(c.loss),
        ci(&o.ci95, "loss")
    );
    if let Some(u) = &o.unconstrained {
        let _ = writeln!(out, "  (stationary point outside the box: T = {}, M = {}, loss {})", num(u.t), num(u.m), num(u.loss));
    }
    match (&o.discrete, o.discreteness_cost) {
        (Some(d), Some(cost)) => {
            let _ = writeln!(
                out,
                "  discrete    T = {}  M = {}  loss {}{}  (+{} for discreteness)",
                d.t,
                d.m,
                num(d.loss),
                ci(&o.ci95, "discrete_loss"),
                num(cost)
            );
        }
        _ => {
            let _ = writeln!(out, "  discrete    no feasible setting fits this budget");
        }
    }
    if let Some(b) = &o.boundary {
        let _ = writeln!(out, "  boundary: {b}");
    }
    if let Some(why) = &o.not_identified {
        let _ = writeln!(out, "  no intervals: {why}");
    }
    render_extrapolation(
        out,
        o.measured.as_ref(),
        [("continuous", Some((c.t, c.m)), o.extrapolation), ("discrete", o.discrete.as_ref().map(|d| (d.t, d.m)), o.discrete_extrapolation)],
    );
}

fn render_flops(out: &mut String, o: &super::FlopsOptimum) {
    let c = &o.continuous;
    let _ = writeln!(out, "group {} ({} law), FLOPs budget {:.4e} per sample:", o.group, o.law.name(), o.budget_flops);
    let _ = writeln!(
        out,
        "  continuous  T* = {}{}  M* = {}{}  loss {}{}  ({:.4e} FLOPs)",
        num(c.t),
        ci(&o.ci95, "T"),
        num(c.m),
        ci(&o.ci95, "M"),
        num(c.loss),
        ci(&o.ci95, "loss"),
        o.continuous_flops
    );
    match (&o.discrete, o.discrete_flops) {
        (Some(d), Some(f)) => {
            let _ = writeln!(out, "  discrete    T = {}  M = {}  loss {}{}  ({f:.4e} FLOPs)", d.t, d.m, num(d.loss), ci(&o.ci95, "discrete_loss"));
        }
        _ => {
            let _ = writeln!(out, "  discrete    no feasible setting fits this budget");
        }
    }
    if let Some(b) = &o.boundary {
        let _ = writeln!(out, "  boundary: {b}");
    }
    if let Some(why) = &o.not_identified {
        let _ = writeln!(out, "  no intervals: {why}");
    }
    render_extrapolation(
        out,
        o.measured.as_ref(),
        [("continuous", Some((c.t, c.m)), o.extrapolation), ("discrete", o.discrete.as_ref().map(|d| (d.t, d.m)), o.discrete_extrapolation)],
    );
}

/// An answer's name, its (T, M) and how far it lies outside the measured box.
type Answer<'a> = (&'a str, Option<(f64, f64)>, Option<Extrapolation>);

/// The measured box, and for each answer outside it which factor and by how much.
fn render_extrapolation(out: &mut String, measured: Option<&Measured>, answers: [Answer; 2]) {
    let Some(b) = measured else {
        return;
    };
    let _ = writeln!(out, "  measured    T in [{}, {}], M in [{}, {}]", short(b.t[0]), short(b.t[1]), short(b.m[0]), short(b.m[1]));
    for (name, at, e) in answers {
        let (Some((t, m)), Some(e)) = (at, e) else {
            continue;
        };
        if e.outside() {
            let _ = writeln!(out, "  EXTRAPOLATED {name}: {}", extrapolation_words(b, t, m, &e));
        }
    }
}

/// "T = 72.8 is 4.55× the largest measured T (16)"-style words for the factors outside the box.
pub fn extrapolation_words(b: &Measured, t: f64, m: f64, e: &Extrapolation) -> String {
    let one = |name: &str, v: f64, f: f64, [lo, hi]: [f64; 2]| {
        if v > hi {
            format!("{name} = {} is {}× the largest measured {name} ({})", short(v), num_short(f), short(hi))
        } else {
            format!("{name} = {} is 1/{} of the smallest measured {name} ({})", short(v), num_short(f), short(lo))
        }
    };
    let mut parts = Vec::new();
    if e.t > 1.0 {
        parts.push(one("T", t, e.t, b.t));
    }
    if e.m > 1.0 {
        parts.push(one("M", m, e.m, b.m));
    }
    format!("{}; the law is used outside its data", parts.join(", "))
}

/// Whole numbers without decimals, others as [`num`].
fn short(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else {
        num(v)
    }
}

fn num_short(v: f64) -> String {
    if v < 100.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.0}")
    }
}

fn render_target(out: &mut String, t: &TargetBudget, within_data: bool) {
    let _ = writeln!(out, "group {} ({} law), target loss {}:", t.group, t.law.name(), num(t.target_loss));
    match &t.continuous {
        Some(c) => {
            let iv = t.ci95_budget.map(|[lo, hi]| format!(" [{}, {}]", num(lo), num(hi))).unwrap_or_default();
            let _ = writeln!(out, "  continuous  budget {}{} at T = {}, M = {}", num(c.budget), iv, num(c.t), num(c.m));
        }
        None => {
            let box_words = if within_data { "the measured ranges" } else { "max frames × largest M" };
            let _ = writeln!(out, "  continuous  unreachable within {box_words}");
        }
    }
    match &t.discrete {
        Some(d) => {
            let _ = writeln!(out, "  discrete    budget {} at T = {}, M = {}", budget_text(d.budget), d.t, d.m);
        }
        None => {
            let grid = if within_data { "the feasible grid inside the measured ranges" } else { "the feasible grid" };
            let _ = writeln!(out, "  discrete    unreachable on {grid}");
        }
    }
    let _ = writeln!(out, "  reachable under {:.1}% of bootstrap fits", 100.0 * t.reachable_share);
    let at = |b: &Option<super::BudgetPoint>| b.as_ref().map(|b| (b.t, b.m));
    render_extrapolation(
        out,
        t.measured.as_ref(),
        [("continuous", at(&t.continuous), t.extrapolation), ("discrete", at(&t.discrete), t.discrete_extrapolation)],
    );
}
