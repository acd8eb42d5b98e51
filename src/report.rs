//! `report.md`: a run on one Markdown page — the config, every trained point, each fitted
//! law with its intervals and validation, the optimum at each budget, and the figures
//! (redrawn first, so the page never points at stale or missing images). The optimum is
//! the one saved in `optimum.json`, or solved by `crate::optimum` when that is absent.
use crate::config::Config;
use crate::disagreement::Measured;
use crate::error::Result;
use crate::fit::Fit;
use crate::plot::fits::{formula, main_loss_indices, symbol};
use crate::plot::style::tick_label;
use crate::run_data::{Point, RunData, ALL_QUESTIONS};
use std::fmt::Write;
use std::path::{Path, PathBuf};

pub mod joint;

/// File name of the report inside a run directory.
pub use crate::rundir::REPORT_FILE;

/// Draws the figures and writes `<run>/report.md`; returns the report's path.
pub fn write_report(run_dir: &Path) -> Result<PathBuf> {
    write_report_of(&RunData::load(run_dir)?)
}

/// Draws the figures and writes `report.md` of already loaded run data; returns its path.
pub fn write_report_of(data: &RunData) -> Result<PathBuf> {
    crate::plot::plot_data(data)?;
    let path = data.dir.join(REPORT_FILE);
    crate::io::write_atomic(&path, render(data).as_bytes())?;
    Ok(path)
}

/// The report's Markdown.
pub fn render(data: &RunData) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "# vislaw report: {}\n", data.name);
    let source = match &data.table {
        Some(t) => format!("Results table `{}`", t.display()),
        None => format!("Run directory `{}`", data.dir.display()),
    };
    let _ =
        writeln!(md, "{source}, {} measured point(s), {} fit(s); written by vislaw {}.\n", data.points.len(), data.fits.fits.len(), env!("CARGO_PKG_VERSION"));
    match &data.table {
        Some(_) => md.push_str("## Configuration\n\nA results table of one's own: the sweep that measured it is not known to vislaw.\n\n"),
        None => config_section(&mut md, data.config.as_ref()),
    }
    results_section(&mut md, data);
    families_section(&mut md, data);
    disagreement_section(&mut md, data);
    ranking_section(&mut md, data);
    fits_section(&mut md, data);
    optimum_section(&mut md, data);
    md.push_str(&data.optima.as_ref().map(|o| o.flops_markdown()).unwrap_or_default());
    accuracy_optimum_section(&mut md, data);
    md.push_str(&joint::joint_section(&data.dir));
    figures_section(&mut md);
    md
}

fn config_section(md: &mut String, cfg: Option<&Config>) {
    md.push_str("## Configuration\n\n");
    let Some(c) = cfg else {
        md.push_str("The run directory has no `config.yaml`; the sweep that made it is unknown.\n\n");
        return;
    };
    let d = &c.data;
    let data = match d.generator {
        crate::config::Generator::Synthetic => {
            format!("embedded synthetic video QA (seed {}), {} train / {} held-out videos", d.seed, d.train_videos, d.eval_videos)
        }
        crate::config::Generator::Files => format!("feature files in `{}`", d.dir.as_deref().map(|p| p.display().to_string()).unwrap_or_default()),
    };
    let t = &c.train;
    let lm = &c.model.lm;
    let s = &c.sweep;
    let center =
        s.center.as_ref().map(|ce| format!(", centre T = {}, M = {} ({}/{})", ce.frames, ce.tokens_per_frame, ce.spatial, ce.temporal)).unwrap_or_default();
    let rows = [
        ("run name", c.name.clone()),
        ("data", data),
        ("video", format!("F = {} source frames, {}×{} token grid, D = {}", d.frames, d.grid, d.grid, d.dim)),
        (
            "model",
            match lm.builtin() {
                Some(lm) => format!(
                    "projector MLP hidden {}; LM {} layers, {} heads, width {}, context {}",
                    c.model.projector.hidden, lm.layers, lm.heads, lm.width, lm.max_context
                ),
                None => format!(
                    "projector MLP hidden {}; Hugging Face LM `{}` ({}), template `{}`",
                    c.model.projector.hidden,
                    lm.hf_dir().map(|d| d.display().to_string()).unwrap_or_default(),
                    c.model.dtype_or_auto().name(),
                    c.model.template_text().escape_debug()
                ),
            },
        ),
        (
            "training",
            format!(
                "{} steps × batch {}, AdamW lr {} (warm-up {}, cosine to {}×), weight decay {}, trains {}; text-only warm start {} steps",
                t.steps,
                t.batch,
                t.lr,
                t.warmup,
                t.min_lr_ratio,
                t.weight_decay,
                t.trainable_label(),
                t.prior_steps
            ),
        ),
        ("design", format!("{}{center}", format!("{:?}", s.design).to_lowercase())),
        ("frames T", list(&s.frames)),
        ("tokens per frame M", list(&s.tokens_per_frame)),
        ("spatial strategies", s.spatial.iter().map(|x| x.to_string()).collect::<Vec<_>>().join(", ")),
        ("temporal strategies", s.temporal.iter().map(|x| x.to_string()).collect::<Vec<_>>().join(", ")),
        ("budgets L", if s.budgets.is_empty() { "none (the largest measured T·M is used)".to_string() } else { list(&s.budgets) }),
        ("seeds", list(&s.seeds)),
    ];
    md.push_str("| setting | value |\n|---|---|\n");
    for (k, v) in rows {
        let _ = writeln!(md, "| {k} | {} |", cell(&v));
    }
    md.push('\n');
}

fn list<T: std::fmt::Display>(v: &[T]) -> String {
    v.iter().map(|x| x.to_string()).collect::<Vec<_>>().join(", ")
}

/// A table cell: pipes escaped so that a value can never break the table.
fn cell(s: &str) -> String {
    s.replace('|', "\\|")
}

/// The header of the results table; the test of the report parses these columns.
pub const RESULTS_HEADER: &str = "| strategy | T | M | T·M | seed | loss | loss SE | accuracy | accuracy SE | train loss |";

fn results_section(md: &mut String, data: &RunData) {
    md.push_str("## Results\n\n");
    match &data.table {
        Some(t) => {
            let _ = writeln!(
                md,
                "One row per row of `{}`: the loss and, where the table has them, its standard error, accuracy and \
                 seed (columns it lacks read as 0, or NaN for values with no neutral one).\n",
                t.display()
            );
        }
        None => md.push_str(
            "One row per trained point of `results.parquet`: held-out loss in nats per answer token and \
             multiple-choice accuracy, each with its standard error (clustered by video); the blind \
             baseline (no visual tokens) last.\n\n",
        ),
    }
    md.push_str(RESULTS_HEADER);
    md.push_str("\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for p in &data.points {
        md.push_str(&result_row(p, &p.strategy));
    }
    if let Some(b) = &data.blind {
        md.push_str(&result_row(b, "blind (no visual tokens)"));
    }
    md.push('\n');
}

fn result_row(p: &Point, name: &str) -> String {
    let (acc, acc_se) = p.accuracy.get(ALL_QUESTIONS).copied().unwrap_or((f64::NAN, f64::NAN));
    format!(
        "| {} | {} | {} | {} | {} | {:.4} | {:.4} | {:.4} | {:.4} | {:.4} |\n",
        cell(name),
        tick_label(p.frames),
        tick_label(p.tokens),
        tick_label(p.visual_tokens()),
        p.seed,
        p.loss.0,
        p.loss.1,
        acc,
        acc_se,
        p.train_loss_final
    )
}

fn families_section(md: &mut String, data: &RunData) {
    if data.families.is_empty() {
        return;
    }
    md.push_str("### Accuracy per question family\n\n");
    md.push_str("Accuracy ± standard error per question family (`acc_<family>` columns).\n\n");
    let _ = writeln!(md, "| strategy | T | M | seed | {} |", data.families.join(" | "));
    let _ = writeln!(md, "|---|---:|---:|---:|{}", "---:|".repeat(data.families.len()));
    let rows = data.points.iter().map(|p| (p, p.strategy.as_str())).chain(data.blind.iter().map(|b| (b, "blind (no visual tokens)")));
    for (p, name) in rows {
        let accs: Vec<String> =
            data.families.iter().map(|f| p.accuracy.get(f).map(|(a, se)| format!("{a:.3} ± {se:.3}")).unwrap_or_else(|| "–".to_string())).collect();
        let _ = writeln!(md, "| {} | {} | {} | {} | {} |", cell(name), tick_label(p.frames), tick_label(p.tokens), p.seed, accs.join(" | "));
    }
    md.push('\n');
}

/// The steps where loss falls while accuracy falls beyond its error: a law on loss alone
/// would recommend them.
fn disagreement_section(md: &mut String, data: &RunData) {
    let rows: Vec<Measured> = data
        .points
        .iter()
        .filter_map(|p| {
            let &(accuracy, accuracy_se) = p.accuracy.get(ALL_QUESTIONS)?;
            Some(Measured { strategy: p.strategy.clone(), frames: p.frames, tokens_per_frame: p.tokens, loss: p.loss.0, accuracy, accuracy_se })
        })
        .collect();
    if rows.is_empty() {
        return;
    }
    md.push_str(
        "### Where loss and accuracy disagree

",
    );
    let flags = crate::disagreement::find_in(&rows);
    if flags.is_empty() {
        md.push_str("No step along an axis lowers the loss while lowering the accuracy by more than the standard error of the difference: here loss and accuracy recommend the same direction.\n\n");
        return;
    }
    md.push_str("Steps along an axis where the held-out loss falls but the accuracy falls by more than the standard error of the difference (seed means; Du et al. saw this going from 49 to 196 tokens per frame). A law fitted to loss alone recommends these steps; check them against the accuracy before following it.\n\n");
    for line in crate::disagreement::render(&flags) {
        let _ = writeln!(md, "- {line}");
    }
    md.push('\n');
}

/// The strategies ranked across seeds at each (T, M) that several reach, with the
/// differences beyond twice their standard error (only when some point has two seeds).
fn ranking_section(md: &mut String, data: &RunData) {
    let rows = ranking_rows(data);
    let cells = crate::ranking::rank(&rows);
    if !cells.iter().any(|c| c.pairs_compared > 0) {
        return;
    }
    md.push_str("### Strategies ranked across seeds\n\n");
    md.push_str("At each (T, M) that several strategies reach: seed means and standard deviations of the held-out loss and accuracy, and the pairs whose difference exceeds twice Welch's standard error over the seeds (training noise; the eval SE column is the evaluated videos' sampling noise, shared by every strategy).\n\n");
    md.push_str(&crate::ranking::render(&cells));
}

/// A run's points as the ranking reads them.
pub fn ranking_rows(data: &RunData) -> Vec<crate::ranking::SeedRow> {
    data.points
        .iter()
        .map(|p| {
            let (accuracy, accuracy_se) = p.accuracy.get(ALL_QUESTIONS).copied().unwrap_or((f64::NAN, f64::NAN));
            crate::ranking::SeedRow { strategy: p.strategy.clone(), frames: p.frames, tokens_per_frame: p.tokens, loss: p.loss.0, accuracy, accuracy_se }
        })
        .collect()
}

/// The discrete optimum on loss beside the one on the error rate, per (strategy, budget):
/// where they differ, loss alone would recommend another allocation than accuracy.
fn accuracy_optimum_section(md: &mut String, data: &RunData) {
    let (Some(loss), Some(acc)) = (&data.optima, &data.accuracy_optima) else { return };
    md.push_str("### Loss-optimal and accuracy-optimal allocations\n\n");
    md.push_str("The same laws fitted to the error rate 1 − accuracy (`fits_accuracy.json`), solved at the same budgets over the same reachable settings (`optimum_accuracy.json`).\n\n");
    md.push_str("| strategy | L | loss-optimal (T, M) | accuracy-optimal (T, M) | |\n|---|---:|---|---|---|\n");
    let at = |o: &crate::optimum::Optimum| o.discrete.as_ref().map(|p| format!("({}, {})", tick_label(p.t), tick_label(p.m)));
    let mut differ = 0;
    for l in &loss.optima {
        let Some(a) = acc.optima.iter().find(|a| a.group == l.group && a.budget == l.budget) else { continue };
        let (lp, ap) = (at(l), at(a));
        let verdict = match (&lp, &ap) {
            (Some(x), Some(y)) if x == y => "agree",
            (Some(_), Some(_)) => {
                differ += 1;
                "**differ**"
            }
            _ => "–",
        };
        let none = || "–".to_string();
        let _ = writeln!(md, "| {} | {} | {} | {} | {verdict} |", cell(&l.group), l.budget, lp.unwrap_or_else(none), ap.unwrap_or_else(none));
    }
    if differ > 0 {
        let _ = writeln!(md, "\nAt {differ} (strategy, budget) the loss and the accuracy recommend different allocations: check the accuracy laws' intervals before trusting either.\n");
    } else {
        md.push('\n');
    }
}

fn fits_section(md: &mut String, data: &RunData) {
    md.push_str("## Fitted laws\n\n");
    md.push_str(
        "From `fits.json`. Intervals are 95%: percentile bootstrap intervals over every refit requested (a refit \
         that ran out of range counts at the range's edge), or on few rows (fewer than three per parameter) \
         profile-likelihood intervals with the F threshold t²(n − p; 0.975); each fit's rows say which. A \
         parameter whose interval reaches the search bound is *not identified* and has none; a law with an \
         unidentified exponent is not usable (no band, no optimum interval). R², RMSE and AIC are on log \
         loss; the held-out check refits without the largest budgets and predicts them.\n\n",
    );
    if data.fits.fits.is_empty() {
        md.push_str("`fits.json` lists no fits.\n\n");
    }
    for f in &data.fits.fits {
        fit_section(md, f);
    }
    for s in &data.fits.skipped {
        let _ = writeln!(md, "- group `{}` was not fitted: {}", s.group, s.reason);
    }
    if !data.fits.skipped.is_empty() {
        md.push('\n');
    }
}

fn fit_section(md: &mut String, f: &Fit) {
    let _ = writeln!(md, "### {} · {} law\n", f.group, f.law.name());
    let factors = match &f.y {
        Some(y) => format!("{} = `{}`, {} = `{}`", symbol(&f.x), f.x, symbol(y), y),
        None => format!("{} = `{}`", symbol(&f.x), f.x),
    };
    let fixed = f.fixed.as_ref().map(|x| format!(", `{}` fixed at {}", x.column, tick_label(x.value))).unwrap_or_default();
    let response = f.response.as_deref().map(|r| format!(" (response `{r}`)")).unwrap_or_default();
    let _ = writeln!(md, "L = {} with {factors}{fixed}; fitted to `{}`{response}.\n", formula(f), f.loss_column);
    if !f.identified {
        let names: Vec<&str> = f.not_identified.keys().map(String::as_str).collect();
        let _ = writeln!(md, "**Not identified — not a usable law:** {} without a bounded 95% interval; no band is drawn from it.\n", names.join(", "));
    }
    md.push_str("| parameter | estimate | 95% CI |\n|---|---:|---|\n");
    let values = f.natural();
    for name in param_order(f) {
        let v = f.param_names.iter().position(|n| *n == name).map_or(f64::NAN, |i| values[i]);
        let ci = if f.not_identified.contains_key(&name) { "not identified".to_string() } else { interval(f.ci95.get(&name)) };
        let _ = writeln!(md, "| {} | {} | {} |", param_symbol(&name), num(v), ci);
    }
    for (name, v) in &f.derived {
        let _ = writeln!(md, "| {} (derived) | {} | {} |", cell(name), num(*v), interval(f.ci95.get(name)));
    }
    md.push('\n');
    md.push_str("| validation | value |\n|---|---|\n");
    for (k, v) in validation_rows(f) {
        let _ = writeln!(md, "| {k} | {} |", cell(&v));
    }
    md.push('\n');
    for w in &f.warnings {
        let _ = writeln!(md, "> ⚠ {}", w.replace('\n', " "));
    }
    if !f.warnings.is_empty() {
        md.push('\n');
    }
}

/// Parameters in the law's reading order (E, A, α, B, β), then anything else.
fn param_order(f: &Fit) -> Vec<String> {
    let known = ["E", "A", "alpha", "B", "beta"];
    let mut out: Vec<String> = known.iter().filter(|k| f.param_names.iter().any(|n| n == *k)).map(|k| k.to_string()).collect();
    let mut others: Vec<String> = f.param_names.iter().filter(|k| !known.contains(&k.as_str())).cloned().collect();
    others.sort();
    out.extend(others);
    out
}

fn param_symbol(name: &str) -> String {
    match name {
        "alpha" => "α".to_string(),
        "beta" => "β".to_string(),
        other => cell(other),
    }
}

/// A parameter value with four significant digits, plain for ordinary magnitudes.
pub fn num(v: f64) -> String {
    if v == 0.0 || (1e-3..1e5).contains(&v.abs()) {
        let digits = (3 - v.abs().log10().floor() as i32).clamp(0, 6) as usize;
        format!("{v:.digits$}")
    } else {
        format!("{v:.3e}")
    }
}

fn interval(ci: Option<&[f64; 2]>) -> String {
    ci.map(|[lo, hi]| format!("[{}, {}]", num(*lo), num(*hi))).unwrap_or_else(|| "–".to_string())
}

fn validation_rows(f: &Fit) -> Vec<(&'static str, String)> {
    let mut rows = vec![
        ("points fitted", f.n_points.to_string()),
        ("R² (log loss)", format!("{:.4}", f.r2)),
        ("RMSE (log loss)", format!("{:.4}", f.rmse_log)),
        ("AIC", format!("{:.2}", f.aic)),
        ("objective", format!("{:.4e}", f.objective)),
        ("converged", format!("{} (gradient norm {:.2e})", if f.converged { "yes" } else { "no" }, f.grad_norm)),
    ];
    if let Some(v) = &f.vpnls {
        rows.push(("VPNLS cross-check", format!("largest relative parameter difference {:.2e}", v.max_rel_diff)));
    }
    if let Some(h) = &f.holdout {
        let err = format!(", largest relative error {:.2}%", 100.0 * h.max_rel_error);
        rows.push(("held-out points", format!("{}{err}", h.n)));
    }
    let b = &f.bootstrap;
    if b.method.is_empty() {
        rows.push(("bootstrap refits", b.samples.len().to_string()));
    } else {
        rows.push((
            "bootstrap",
            format!(
                "{}: {} requested, {} converged, {} did not converge, {} out of range (counted at the range's edge); {}",
                b.method, b.requested, b.converged, b.failed, b.out_of_range, b.reason
            ),
        ));
    }
    let mut sources: Vec<String> = f.ci95_source.iter().map(|(k, v)| format!("{} {v}", param_symbol(k))).collect();
    sources.extend(f.not_identified.iter().map(|(k, why)| format!("{} not identified: {why}", param_symbol(k))));
    if !sources.is_empty() {
        rows.push(("intervals from", sources.join("; ")));
    }
    if let Some(p) = &f.profile {
        rows.push(("profile likelihood", p.scaling.clone()));
    }
    rows
}

/// The header of the optimum table; the test of the report parses these columns.
pub const OPTIMUM_HEADER: &str = "| strategy | law | L | T* | M* | loss* | loss* 95% CI | T | M | T·M | loss | note |";

fn optimum_section(md: &mut String, data: &RunData) {
    md.push_str("## Optimum under T·M ≤ L\n\n");
    let fits = main_loss_indices(&data.fits);
    let budgets = data.budgets();
    let solved = data.optima(&fits, &budgets);
    let (source_frames, grid) = (data.source_frames(), data.grid());
    let _ = writeln!(
        md,
        "For each fit of the held-out loss. Continuous (T*, M*): the best real-valued setting on T·M = L with \
         1 ≤ T ≤ {} and {} ≤ M ≤ {}, with the 95% bootstrap interval of its loss. Discrete (T, M): the best \
         setting with T·M ≤ L that the strategy's own reducers produce — T from its temporal reducer on F = {} \
         source frames, M from its spatial reducer on the {g}×{g} grid; a group that names no strategy may use \
         every integer T ≤ F and the M of pooling the grid, ⌈g/k⌉².",
        tick_label(source_frames.max(1) as f64),
        crate::reduction::Spatial::Pool.reachable(grid).first().copied().unwrap_or(1),
        tick_label((grid * grid).max(1) as f64),
        source_frames,
        g = grid,
    );
    md.push('\n');
    allowed_settings_table(md, data, &fits);
    md.push_str(
        "Solved by `vislaw::optimum`, as `vislaw optimum` does. An optimum outside the T and M its fit was measured on \
         is marked *extrapolated* in the note, with how far (the ratio to the nearest end of the measured range).\n\n",
    );
    md.push_str(OPTIMUM_HEADER);
    md.push_str("\n|---|---|---:|---:|---:|---:|---|---:|---:|---:|---:|---|\n");
    let dash = || "–".to_string();
    for (&i, result) in fits.iter().zip(&solved) {
        let f = &data.fits.fits[i];
        match result {
            Ok(rows) if !rows.is_empty() => {
                for s in rows {
                    let c = &s.continuous;
                    let d = s.discrete.as_ref();
                    let loss_ci95 = s.ci95.get("loss");
                    let _ = writeln!(
                        md,
                        "| {} | {} | {} | {:.2} | {:.2} | {:.4} | {} | {} | {} | {} | {} | {} |",
                        cell(&f.group),
                        f.law.name(),
                        tick_label(s.budget),
                        c.t,
                        c.m,
                        c.loss,
                        loss_ci95.map(|[lo, hi]| format!("[{lo:.4}, {hi:.4}]")).unwrap_or_else(dash),
                        d.map(|o| tick_label(o.t)).unwrap_or_else(dash),
                        d.map(|o| tick_label(o.m)).unwrap_or_else(dash),
                        d.map(|o| tick_label(o.t * o.m)).unwrap_or_else(dash),
                        d.map(|o| format!("{:.4}", o.loss)).unwrap_or_else(dash),
                        cell(&optimum_note(s)),
                    );
                }
            }
            Ok(_) => {
                let _ = writeln!(md, "| {} | {} | – | – | – | – | – | – | – | – | – | no budget could be solved |", cell(&f.group), f.law.name());
            }
            Err(why) => {
                let _ = writeln!(md, "| {} | {} | – | – | – | – | – | – | – | – | – | {} |", cell(&f.group), f.law.name(), cell(why));
            }
        }
    }
    md.push('\n');
}

/// The note of one optimum row: why it sits on a boundary, and where it extrapolates.
fn optimum_note(o: &crate::optimum::Optimum) -> String {
    let mut parts: Vec<String> = o.boundary.iter().cloned().collect();
    let answers = [
        ("continuous", Some((o.continuous.t, o.continuous.m)), o.extrapolation),
        ("discrete", o.discrete.as_ref().map(|d| (d.t, d.m)), o.discrete_extrapolation),
    ];
    for (name, at, e) in answers {
        if let (Some(b), Some((t, m)), Some(e)) = (&o.measured, at, e) {
            if e.outside() {
                parts.push(format!("*extrapolated* ({name}): {}", crate::optimum::extrapolation_words(b, t, m, &e)));
            }
        }
    }
    parts.join("; ")
}

/// The header of the table of the T and M each group's discrete optimum may use.
pub const ALLOWED_HEADER: &str = "| strategy | allowed T | allowed M |";

fn allowed_settings_table(md: &mut String, data: &RunData, fits: &[usize]) {
    let mut groups: Vec<&str> = fits.iter().map(|&i| data.fits.fits[i].group.as_str()).collect();
    groups.sort_unstable();
    groups.dedup();
    if groups.is_empty() {
        return;
    }
    md.push_str(ALLOWED_HEADER);
    md.push_str("\n|---|---|---|\n");
    let opts = data.optimum_options(Vec::new());
    for group in groups {
        let d = opts.feasible(group);
        let _ = writeln!(md, "| {} | {} | {} |", cell(group), value_set(&d.frames), value_set(&d.tokens));
    }
    md.push('\n');
}

/// A set of settings for people: a long unbroken run of integers as a range, else the list.
fn value_set(values: &[u64]) -> String {
    match (values.first(), values.last()) {
        (Some(&lo), Some(&hi)) if values.len() > 8 && hi - lo + 1 == values.len() as u64 => format!("every integer {lo} to {hi}"),
        _ => list(values),
    }
}

/// The figures in reading order, with their captions.
const FIGURES: [(&str, &str, &str); 7] = [
    (
        "loss_vs_tokens_per_frame",
        "Loss vs tokens per frame",
        "Held-out loss against M at fixed T, per strategy: the measured points (seed means with 95% intervals when there are several seeds; \
         one seed's evaluation interval otherwise, as the legend says), the fitted law with the lowest AIC (the Akaike information \
         criterion, n·ln(RSS/n) + 2k on log residuals: fit quality penalised by parameter count) and its 95% bootstrap band. A band is \
         left out, and the legend says why, where fewer than 50 bootstrap refits (or fewer than half of those requested) gave finite \
         parameters, or where the interval reaches beyond twice or below half the fitted loss anywhere along the curve; its edges are \
         averaged over 5 neighbouring samples (about ±3% of the span).",
    ),
    ("loss_vs_frames", "Loss vs frames", "Held-out loss against T at fixed M, per strategy, drawn the same way."),
    (
        "budget_tradeoff",
        "Budget trade-off",
        "The fitted loss over (T, M), iso-budget lines T·M = L, the continuous optimum path and the best reachable setting at each budget; \
         each measured setting is filled with its observed loss on the same colour scale, so a point that stands out from the surface \
         around it is one the law misses.",
    ),
    (
        "budget_optima",
        "Strategies' optima side by side",
        "At each budget L, every strategy's best reachable (T, M) under its lowest-AIC law (labelled T×M), its predicted loss with the \
         95% bootstrap interval, and as a hollow marker the best loss actually measured with T·M ≤ L.",
    ),
    (
        "accuracy_vs_visual_tokens",
        "Accuracy per question family",
        "Accuracy against visual tokens per sample, solid lines varying M, dashed lines varying T; the dotted line is the blind baseline.",
    ),
    ("training_curves", "Training curves", "Training loss of every point, per strategy, coloured by visual tokens."),
    (
        "fit_residuals",
        "Fit residuals",
        "log(observed) − log(predicted) against the predicted loss, per fit, every panel on one scale; held-out points are hollow diamonds.",
    ),
];

fn figures_section(md: &mut String) {
    md.push_str("## Figures\n\nEach figure is also in `plots/` as SVG.\n\n");
    for (stem, title, caption) in FIGURES {
        let _ = writeln!(md, "### {title}\n\n![{title}](plots/{stem}.png)\n\n{caption}\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_keep_four_significant_digits() {
        assert_eq!(num(1.23456), "1.235");
        assert_eq!(num(0.0123456), "0.01235");
        assert_eq!(num(1234.4), "1234");
        assert_eq!(num(1.5e-7), "1.500e-7");
    }

    #[test]
    fn every_report_figure_is_drawn() {
        for (stem, _, _) in FIGURES {
            assert!(crate::plot::FIGURES.contains(&stem), "{stem}");
        }
    }

    #[test]
    fn long_integer_runs_read_as_ranges() {
        assert_eq!(value_set(&[1, 2, 3, 4, 6, 8, 16]), "1, 2, 3, 4, 6, 8, 16");
        assert_eq!(value_set(&(1..=16).collect::<Vec<_>>()), "every integer 1 to 16");
        assert_eq!(value_set(&[1, 2, 3]), "1, 2, 3");
        assert_eq!(value_set(&[]), "");
    }

    #[test]
    fn cells_cannot_break_a_table() {
        assert_eq!(cell("a|b"), "a\\|b");
    }

    #[test]
    fn an_optimum_outside_its_measured_ranges_is_marked_with_how_far() {
        let mut doc = serde_json::json!({
            "group": "g", "law": "additive", "budget": 6272.0, "ci95": {}, "boundary": "T at its upper limit 64",
            "continuous": {"T": 40.0, "M": 156.8, "loss": 2.0}, "discrete": {"T": 32.0, "M": 196.0, "loss": 2.1},
            "measured": {"T": [1.0, 16.0], "M": [1.0, 196.0]},
            "extrapolation": {"T": 2.5, "M": 1.0}, "discrete_extrapolation": {"T": 2.0, "M": 1.0},
        });
        let o: crate::optimum::Optimum = serde_json::from_value(doc.clone()).unwrap();
        let note = optimum_note(&o);
        assert!(note.starts_with("T at its upper limit 64; *extrapolated* (continuous): T = 40 is 2.50× the largest measured T (16)"), "{note}");
        assert!(note.contains("*extrapolated* (discrete): T = 32 is 2.00× the largest measured T (16)"), "{note}");
        doc["extrapolation"] = serde_json::json!({"T": 1.0, "M": 1.0});
        doc["discrete_extrapolation"] = serde_json::json!({"T": 1.0, "M": 1.0});
        let inside: crate::optimum::Optimum = serde_json::from_value(doc).unwrap();
        assert_eq!(optimum_note(&inside), "T at its upper limit 64");
    }

    fn run_with(points: &[(f64, f64, f64)]) -> RunData {
        let points = points
            .iter()
            .map(|&(m, loss, acc)| Point {
                strategy: "pool/sample".into(),
                frames: 4.0,
                tokens: m,
                seed: 0.0,
                loss: (loss, 0.01),
                train_loss_final: loss,
                accuracy: [(ALL_QUESTIONS.to_string(), (acc, 0.02))].into_iter().collect(),
            })
            .collect();
        RunData {
            dir: PathBuf::from("r"),
            table: None,
            name: "r".into(),
            config: None,
            points,
            blind: None,
            curves: vec![],
            fits: Default::default(),
            optima: None,
            accuracy_optima: None,
            families: vec![],
            warnings: vec![],
        }
    }

    #[test]
    fn the_report_ranks_strategies_only_when_seeds_allow_it() {
        let mut data = run_with(&[(4.0, 1.0, 0.6), (4.0, 1.02, 0.61)]);
        let mut md = String::new();
        ranking_section(&mut md, &data);
        assert!(md.is_empty(), "one strategy: nothing to rank: {md}");
        let other: Vec<Point> = data.points.iter().map(|p| Point { strategy: "sample/sample".into(), loss: (p.loss.0 + 0.3, 0.01), ..p.clone() }).collect();
        data.points.extend(other);
        ranking_section(&mut md, &data);
        assert!(md.contains("### Strategies ranked across seeds"), "{md}");
        assert!(md.contains("loss: pool/sample better than sample/sample by 0.3000"), "{md}");
    }

    #[test]
    fn the_report_lists_steps_where_loss_and_accuracy_disagree() {
        let mut md = String::new();
        disagreement_section(&mut md, &run_with(&[(16.0, 1.3, 0.5), (49.0, 1.2, 0.6), (196.0, 1.15, 0.52)]));
        assert!(md.contains("- pool/sample: M 49 → 196 at T = 4: loss falls 1.2000 → 1.1500 while accuracy falls 0.600 → 0.520"), "{md}");
        let mut md = String::new();
        disagreement_section(&mut md, &run_with(&[(16.0, 1.3, 0.5), (49.0, 1.2, 0.6), (196.0, 1.15, 0.65)]));
        assert!(md.contains("recommend the same direction") && !md.contains("- pool/sample"), "{md}");
    }

    fn optima(points: &[(&str, f64, f64, f64)]) -> crate::optimum::OptimaReport {
        let optima = points
            .iter()
            .map(|&(group, budget, t, m)| {
                serde_json::from_value(serde_json::json!({
                    "group": group, "law": "additive", "budget": budget, "ci95": {},
                    "continuous": {"T": t, "M": m, "loss": 1.0}, "discrete": {"T": t, "M": m, "loss": 1.0},
                }))
                .unwrap()
            })
            .collect();
        crate::optimum::OptimaReport { optima, targets: vec![], warnings: vec![], within_data: false, flops_optima: vec![] }
    }

    #[test]
    fn loss_and_accuracy_optima_are_set_side_by_side_and_differences_counted() {
        let mut data = run_with(&[]);
        data.optima = Some(optima(&[("pool/sample", 64.0, 4.0, 16.0), ("pool/sample", 32.0, 2.0, 16.0)]));
        data.accuracy_optima = Some(optima(&[("pool/sample", 64.0, 16.0, 4.0), ("pool/sample", 32.0, 2.0, 16.0)]));
        let mut md = String::new();
        accuracy_optimum_section(&mut md, &data);
        assert!(md.contains("| pool/sample | 64 | (4, 16) | (16, 4) | **differ** |"), "{md}");
        assert!(md.contains("| pool/sample | 32 | (2, 16) | (2, 16) | agree |"), "{md}");
        assert!(md.contains("At 1 (strategy, budget)"), "{md}");
        data.accuracy_optima = None;
        let mut md = String::new();
        accuracy_optimum_section(&mut md, &data);
        assert!(md.is_empty());
    }
}
