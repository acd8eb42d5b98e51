//! The optima as text tables for people (what `vislaw optimum` and the sweep print).
use super::{OptimaReport, Optimum, TargetBudget};
use crate::fit::report::num;
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
            render_target(&mut out, t);
        }
        for w in &self.warnings {
            let _ = writeln!(out, "warning: {w}");
        }
        out
    }
}

fn ci(map: &BTreeMap<String, [f64; 2]>, key: &str) -> String {
    map.get(key).map(|[lo, hi]| format!(" [{}, {}]", num(*lo), num(*hi))).unwrap_or_default()
}

fn render_optimum(out: &mut String, o: &Optimum) {
    let c = &o.continuous;
    let _ = writeln!(out, "group {} ({} law), budget {}:", o.group, o.law.name(), num(o.budget));
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
}

fn render_target(out: &mut String, t: &TargetBudget) {
    let _ = writeln!(out, "group {} ({} law), target loss {}:", t.group, t.law.name(), num(t.target_loss));
    match &t.continuous {
        Some(c) => {
            let iv = t.ci95_budget.map(|[lo, hi]| format!(" [{}, {}]", num(lo), num(hi))).unwrap_or_default();
            let _ = writeln!(out, "  continuous  budget {}{} at T = {}, M = {}", num(c.budget), iv, num(c.t), num(c.m));
        }
        None => {
            let _ = writeln!(out, "  continuous  unreachable within max frames × largest M");
        }
    }
    match &t.discrete {
        Some(d) => {
            let _ = writeln!(out, "  discrete    budget {} at T = {}, M = {}", num(d.budget), d.t, d.m);
        }
        None => {
            let _ = writeln!(out, "  discrete    unreachable on the feasible grid");
        }
    }
    let _ = writeln!(out, "  reachable under {:.1}% of bootstrap fits", 100.0 * t.reachable_share);
}
