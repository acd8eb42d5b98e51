//! One group's rows before fitting: input checks, the `error` transform, the exclusion of the
//! highest losses, and the choice of law(s) and axes the group's columns support.
use super::law::Law;
use super::options::{FitOptions, GroupRows};
use super::report::{ExcludedRow, FixedAxis};

/// Validated rows of one group, after the `error` transform and the exclusion of the highest losses.
pub(super) struct Rows {
    pub(super) x: Vec<f64>,
    pub(super) y: Option<Vec<f64>>,
    pub(super) loss: Vec<f64>,
    pub(super) accuracy: Option<Vec<f64>>,
    pub(super) excluded: Vec<ExcludedRow>,
}

/// A law to fit and how the group's columns map onto its axes.
pub(super) struct Plan {
    pub(super) law: Law,
    /// Only y varies: the power law is fitted in y.
    pub(super) swap: bool,
    pub(super) fixed: Option<FixedAxis>,
    pub(super) notes: Vec<String>,
}

/// Checks a group's columns and applies the `error` transform and the exclusion.
pub(super) fn prepare_rows(g: &GroupRows, opts: &FitOptions) -> std::result::Result<Rows, String> {
    let response = |i: usize| if opts.error { 1.0 - g.loss[i] } else { g.loss[i] };
    let what = if opts.error { format!("1 - {}", opts.loss) } else { opts.loss.clone() };
    for i in 0..g.loss.len() {
        let v = response(i);
        if !v.is_finite() || v <= 0.0 {
            return Err(format!("row {}: {what} = {v}; values must be finite and > 0 to take logs", g.row_number(i)));
        }
        check_positive(&opts.x, g.row_number(i), g.x[i])?;
        if let Some(y) = &g.y {
            check_positive(&opts.y, g.row_number(i), y[i])?;
        }
    }
    let mut order: Vec<usize> = (0..g.loss.len()).collect();
    // Highest loss first; ties by row index so the exclusion is reproducible.
    order.sort_by(|&a, &b| response(b).total_cmp(&response(a)).then(a.cmp(&b)));
    if opts.exclude_top_loss >= order.len() && !order.is_empty() {
        return Err(format!("excluding the {} highest-loss rows would drop all {} rows", opts.exclude_top_loss, order.len()));
    }
    let (dropped, kept) = order.split_at(opts.exclude_top_loss.min(order.len()));
    let mut kept = kept.to_vec();
    kept.sort_unstable();
    let pick = |v: &[f64]| kept.iter().map(|&i| v[i]).collect::<Vec<f64>>();
    let rows = Rows {
        x: pick(&g.x),
        y: g.y.as_deref().map(pick),
        loss: kept.iter().map(|&i| response(i)).collect(),
        accuracy: g.accuracy.as_deref().map(pick),
        excluded: dropped.iter().map(|&i| ExcludedRow { x: g.x[i], y: g.y.as_ref().map(|y| y[i]), observed: response(i) }).collect(),
    };
    if rows.loss.is_empty() {
        return Err("no rows".into());
    }
    if rows.loss.iter().all(|&l| l == rows.loss[0]) {
        return Err(format!("{what} is constant ({}) over all {} rows: there is no trend to fit", rows.loss[0], rows.loss.len()));
    }
    Ok(rows)
}

/// `row` is the table's 1-based data row.
fn check_positive(column: &str, row: usize, v: f64) -> std::result::Result<(), String> {
    if v.is_finite() && v > 0.0 {
        Ok(())
    } else {
        Err(format!("row {row}: {column} = {v}; factors must be finite and > 0"))
    }
}

/// The distinct values of `v`, sorted.
pub(super) fn distinct(v: &[f64]) -> Vec<f64> {
    let mut d = v.to_vec();
    d.sort_by(f64::total_cmp);
    d.dedup();
    d
}

/// The laws to fit to a group (one, or every applicable one with `compare_laws`) and how its columns map onto their axes.
pub(super) fn plan_laws(rows: &Rows, opts: &FitOptions) -> std::result::Result<Vec<Plan>, String> {
    let dx = distinct(&rows.x);
    let dy = rows.y.as_deref().map(distinct);
    let x_varies = dx.len() > 1;
    let y_varies = dy.as_ref().is_some_and(|d| d.len() > 1);
    let one_value = |col: &str, d: &[f64]| format!("'{col}' has one distinct value ({}), so the law cannot be fitted in it", d[0]);
    let mut plans = Vec::new();
    let laws: Vec<Law> = match (opts.law, opts.compare_laws) {
        (Some(law), false) => vec![law],
        _ if x_varies && y_varies => {
            if opts.compare_laws {
                vec![Law::Additive, Law::Multiplicative, Law::Power]
            } else {
                vec![Law::Additive]
            }
        }
        _ => vec![Law::Power],
    };
    for law in laws {
        let mut plan = Plan { law, swap: false, fixed: None, notes: Vec::new() };
        if law.uses_y() {
            let Some(dy) = &dy else { return Err(format!("the {} law needs column '{}'", law.name(), opts.y)) };
            if !x_varies {
                return Err(one_value(&opts.x, &dx));
            }
            if !y_varies {
                return Err(one_value(&opts.y, dy));
            }
        } else if opts.law == Some(Law::Power) || x_varies {
            if !x_varies {
                return Err(one_value(&opts.x, &dx));
            }
            if let Some(dy) = dy.as_ref().filter(|d| d.len() == 1) {
                plan.fixed = Some(FixedAxis { column: opts.y.clone(), value: dy[0] });
            }
            if let Some(dy) = dy.as_ref().filter(|d| d.len() > 1) {
                plan.notes.push(pooling_note(&opts.x, &opts.y, dy));
            }
            if opts.law.is_none() && !y_varies && dy.is_some() {
                plan.notes.push(format!(
                    "only '{}' varies in this group ('{}' = {}), so the power law in '{}' was fitted",
                    opts.x,
                    opts.y,
                    dy.as_ref().map_or(f64::NAN, |d| d[0]),
                    opts.x
                ));
            }
        } else if y_varies {
            plan.swap = true;
            plan.fixed = Some(FixedAxis { column: opts.x.clone(), value: dx[0] });
            plan.notes.push(format!("only '{}' varies in this group ('{}' = {}), so the power law in '{}' was fitted", opts.y, opts.x, dx[0], opts.y));
        } else {
            return Err(format!("neither '{}' nor '{}' varies: nothing to fit a law in", opts.x, opts.y));
        }
        let need = law.n_params() + 1;
        if rows.loss.len() < need {
            return Err(format!("{} rows, but the {} law has {} parameters and needs at least {need}", rows.loss.len(), law.name(), law.n_params()));
        }
        plans.push(plan);
    }
    Ok(plans)
}

/// What a power law in `x` does with a `y` that varies too: every level of `y` goes into
/// one curve in `x`, as if `y` had no effect.
fn pooling_note(x: &str, y: &str, dy: &[f64]) -> String {
    let levels: Vec<String> = dy.iter().take(6).map(|v| format!("{v}")).collect();
    let more = if dy.len() > 6 { ", …" } else { "" };
    format!(
        "'{y}' varies too ({} values: {}{more}), and the power law in '{x}' pools them into one curve, as if '{y}' had no effect; \
         filter the rows to one value of '{y}' (e.g. {y}={}) to fit that level alone, or fit a two-factor law",
        dy.len(),
        levels.join(", "),
        dy[0]
    )
}

/// The axes a plan fits: (x values, y values or empty, x column, y column).
pub(super) fn axes<'a>(rows: &'a Rows, plan: &Plan, opts: &'a FitOptions) -> (&'a [f64], &'a [f64], String, Option<String>) {
    let y = rows.y.as_deref().unwrap_or(&[]);
    match (plan.law.uses_y(), plan.swap) {
        (true, _) => (&rows.x, y, opts.x.clone(), Some(opts.y.clone())),
        (false, false) => (&rows.x, &[], opts.x.clone(), None),
        (false, true) => (y, &[], opts.y.clone(), None),
    }
}
