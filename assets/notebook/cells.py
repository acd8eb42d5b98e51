# %% setup
import json
import os
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

# Written by `vislaw export-notebook`; change RUN_DIR below (or set $VISLAW_RUN_DIR) to
# point the notebook at another copy of the run.
RUN_NAME = @RUN_NAME@
EXPORTED_FROM = @EXPORTED_FROM@
BUDGETS = @BUDGETS@  # the budgets L of the sweep (T·M <= L)
SOURCE_FRAMES = @SOURCE_FRAMES@  # F: the most frames a point can use
GRID = @GRID@  # g: the encoder's g×g token grid per frame
# The T and M each strategy's reducers can produce (what vislaw's discrete optimum searches).
FEASIBLE = @FEASIBLE@
# vislaw's optimum at BUDGETS as solved at export (used when the run has no optimum.json),
# and each joint law's continuous optimum path [[T, M], ...] over budgets 1 to F·g².
OPTIMA_AT_EXPORT = json.loads(@OPTIMA@)
OPTIMUM_PATH = json.loads(@OPTIMUM_PATH@)
# Okabe-Ito, the palette of vislaw's own figures (colour-blind safe).
PALETTE = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000"]
MARKERS = ["o", "s", "^", "D", "v"]


def find_run_dir():
    """The run directory: $VISLAW_RUN_DIR, the path at export, or results/<run> near here."""
    candidates = [os.environ.get("VISLAW_RUN_DIR"), EXPORTED_FROM,
                  Path("..") / "results" / RUN_NAME, Path("results") / RUN_NAME]
    for c in candidates:
        if c and (Path(c) / "results.parquet").exists():
            return Path(c).resolve()
    raise FileNotFoundError(
        f"cannot find the run '{RUN_NAME}': set VISLAW_RUN_DIR or RUN_DIR to its directory "
        f"(tried {[str(c) for c in candidates if c]})")


RUN_DIR = find_run_dir()
print("run directory:", RUN_DIR)

# %% load
results = pd.read_parquet(RUN_DIR / "results.parquet")
curves = pd.read_parquet(RUN_DIR / "curves.parquet") if (RUN_DIR / "curves.parquet").exists() else None
blind = pd.read_parquet(RUN_DIR / "blind.parquet") if (RUN_DIR / "blind.parquet").exists() else None
fits = json.loads((RUN_DIR / "fits.json").read_text())["fits"]
FAMILIES = sorted(c[4:] for c in results.columns if c.startswith("acc_") and not c.endswith("_se"))
STRATEGIES = sorted(results["strategy"].unique())
COLOR = {s: PALETTE[i % len(PALETTE)] for i, s in enumerate(STRATEGIES)}
MARKER = {s: MARKERS[i % len(MARKERS)] for i, s in enumerate(STRATEGIES)}
print(f"{len(results)} points, {len(fits)} fits, families: {', '.join(FAMILIES)}")
results[["strategy", "frames", "tokens_per_frame", "visual_tokens", "seed",
         "loss", "loss_se", "accuracy", "accuracy_se"]]

# %% params
def fit_table(fits):
    rows = []
    for f in fits:
        row = {"group": f["group"], "law": f["law"], "x": f["x"], "y": f.get("y", "")}
        for name, value in f["params"].items():
            lo, hi = f.get("ci95", {}).get(name, [np.nan, np.nan])
            row[name] = value
            row[f"{name} 95% CI"] = f"[{lo:.4g}, {hi:.4g}]"
        for k in ("n_points", "r2", "rmse_log", "aic", "converged"):
            row[k] = f.get(k)
        row["held-out max rel. error"] = (f.get("holdout") or {}).get("max_rel_error")
        rows.append(row)
    return pd.DataFrame(rows)


fit_table(fits)

# %% helpers
def factor(column, frames, tokens):
    return {"frames": np.asarray(frames, float), "tokens_per_frame": np.asarray(tokens, float)}[column]


def law_value(law, p, x, y):
    if law == "power":
        return p["E"] + p["A"] * x ** -p["alpha"]
    if law == "additive":
        return p["E"] + p["A"] * x ** -p["alpha"] + p["B"] * y ** -p["beta"]
    return p["E"] + p["A"] * x ** -p["alpha"] * y ** -p["beta"]


def predict(fit, frames, tokens, params=None):
    """The fitted loss at (T, M); `params` replaces the estimate (a bootstrap refit)."""
    x = factor(fit["x"], frames, tokens)
    y = factor(fit["y"], frames, tokens) if fit.get("y") else 1.0
    return law_value(fit["law"], params or fit["params"], x, y)


MIN_REFITS = 50        # fewest valid bootstrap refits a band is drawn from (as `vislaw plot`)
MAX_BAND_FACTOR = 2.0  # a band beyond ×2 or ÷2 of the fitted loss counts as unbounded


def band(fit, frames, tokens):
    """Pointwise 95% band: 2.5th and 97.5th percentiles of the bootstrap refits' predictions."""
    names = fit.get("param_names", [])
    samples = [s for s in (fit.get("bootstrap") or {}).get("samples", []) if len(s) == len(names)]
    if len(samples) < 2:
        return None
    preds = np.array([predict(fit, frames, tokens, dict(zip(names, s))) for s in samples])
    with np.errstate(all="ignore"):
        return np.nanpercentile(preds, 2.5, axis=0), np.nanpercentile(preds, 97.5, axis=0)


def band_or_why(fit, frames, tokens):
    """(band, None) when the band can be drawn, else (None, why): too few valid refits, or
    an interval beyond MAX_BAND_FACTOR of the fitted loss somewhere (the figures' rule)."""
    valid = len((fit.get("bootstrap") or {}).get("samples", []))
    requested = max((fit.get("method") or {}).get("bootstrap", valid), valid)
    if valid < MIN_REFITS or 2 * valid < requested:
        return None, f"no band: {valid}/{requested} refits valid"
    b = band(fit, frames, tokens)
    pred = predict(fit, frames, tokens)
    if b is None or not (np.all(np.isfinite(b[0])) and np.all(np.isfinite(b[1]))
                         and np.all(b[1] <= pred * MAX_BAND_FACTOR) and np.all(b[0] >= pred / MAX_BAND_FACTOR)):
        return None, "no band: 95% CI unbounded"
    return b, None


def points_label(summary, what):
    """The measured markers' legend as the run measured them (one seed or several)."""
    seeds = results.groupby(["strategy", "frames", "tokens_per_frame"]).size()
    if seeds.max() > 1:
        return f"{what}: mean of {seeds.min()}–{seeds.max()} seeds ± 95% CI" if seeds.min() != seeds.max() else f"{what}: mean of {seeds.max()} seeds ± 95% CI"
    return f"one seed: {what} ± 95% CI"


def main_fits(group):
    return [f for f in fits if f["group"] == group and f.get("loss_column", "loss") == "loss" and not f.get("response")]


def lowest_aic(candidates):
    return min(candidates, key=lambda f: f.get("aic") if f.get("aic") is not None else np.inf) if candidates else None


def best_fit(group, column):
    """The lowest-AIC law of `group` using `column` (the `all` group's stands in)."""
    return (lowest_aic([f for f in main_fits(group) if column in (f["x"], f.get("y"))])
            or lowest_aic([f for f in main_fits("all") if column in (f["x"], f.get("y"))]))


def seed_means(df, value, se):
    """Seed means with 95% half-widths counting the evaluation SE and the seed spread."""
    def agg(g):
        n = len(g)
        var = (g[se] ** 2).sum() / n ** 2 + (g[value].var(ddof=1) / n if n > 1 else 0.0)
        return pd.Series({"mean": g[value].mean(), "ci": 1.96 * np.sqrt(var)})
    return (df.groupby(["strategy", "frames", "tokens_per_frame"])[[value, se]]
              .apply(agg).reset_index())


def lines_along(summary, axis):
    """(strategy, fixed value, points) for each strategy with >= 2 values of `axis` at a fixed other factor."""
    other = "frames" if axis == "tokens_per_frame" else "tokens_per_frame"
    out = []
    for (strategy, fixed), g in summary.groupby(["strategy", other]):
        if g[axis].nunique() >= 2:
            out.append((strategy, fixed, g.sort_values(axis)))
    return out


loss_summary = seed_means(results, "loss", "loss_se")
loss_summary

# %% loss plots
def plot_loss_along(axis, symbol, other_symbol, xlabel):
    fig, ax = plt.subplots(figsize=(9, 5.5))
    for strategy, fixed, g in lines_along(loss_summary, axis):
        c = COLOR[strategy]
        label = f"{strategy}, {other_symbol} = {fixed:g}"
        ax.errorbar(g[axis], g["mean"], yerr=g["ci"], fmt=MARKER[strategy], color=c, capsize=4, label=label)
        fit = best_fit(strategy, axis)
        if fit is None:
            ax.plot(g[axis], g["mean"], "--", color=c)
            continue
        v = np.geomspace(g[axis].min(), g[axis].max(), 100)
        frames, tokens = (v, np.full_like(v, fixed)) if axis == "frames" else (np.full_like(v, fixed), v)
        b, why = band_or_why(fit, frames, tokens)
        ax.plot(v, predict(fit, frames, tokens), color=c, lw=2, label=f"{label}: {why}" if why else None)
        if b is not None:
            ax.fill_between(v, b[0], b[1], color=c, alpha=0.2, lw=0)
    if blind is not None:
        ax.axhline(blind["loss"].iloc[0], color="0.4", ls="--", label="blind (no visual tokens)")
    ax.set_xscale("log", base=2)
    ax.xaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v:g}"))
    ax.set_xlabel(xlabel)
    ax.set_ylabel("held-out loss (nats / answer token)")
    ax.set_title(f"Held-out loss vs {symbol}: {points_label(loss_summary, 'loss')};\n"
                 "the lowest-AIC law (Akaike information criterion) ± 95% bootstrap band")
    ax.grid(alpha=0.3)
    ax.legend(loc="center left", bbox_to_anchor=(1.02, 0.5), frameon=False)
    plt.show()


plot_loss_along("tokens_per_frame", "tokens per frame M", "T", "tokens per frame M (log scale)")

# %% loss vs T
plot_loss_along("frames", "frames T", "M", "frames T (log scale)")

# %% joint
def load_optima():
    """vislaw's optimum (`vislaw::optimum`): the run's optimum.json, else the one solved at export."""
    path = RUN_DIR / "optimum.json"
    return json.loads(path.read_text())["optima"] if path.exists() else OPTIMA_AT_EXPORT


optima = load_optima()


def optimum_at(fit, budget):
    """The solved optimum of this fit (its group and law) at budget L, or None."""
    return next((o for o in optima if o["group"] == fit["group"] and o["law"] == fit["law"] and o["budget"] == budget), None)


# Every joint law of the held-out loss gets a panel, as in vislaw's figure.
joint = [(f["group"], f) for f in fits if f in main_fits(f["group"])
         and f["law"] != "power" and {f["x"], f.get("y")} == {"frames", "tokens_per_frame"}]
if not joint:
    print("No law in both frames and tokens per frame in fits.json.")
else:
    cols = min(3, len(joint))
    fig, axes = plt.subplots(-(-len(joint) // cols), cols, figsize=(7 * cols, 6 * -(-len(joint) // cols)), squeeze=False)
    T, M = np.meshgrid(np.geomspace(1, SOURCE_FRAMES, 120), np.geomspace(1, GRID ** 2, 120))
    rows = []
    for ax, (group, fit) in zip(axes.flat, joint):
        Z = predict(fit, T, M)
        measured = results[results["strategy"] == group]
        hi = float(np.nanmax(predict(fit, measured["frames"], measured["tokens_per_frame"])))
        mesh = ax.pcolormesh(T, M, Z, cmap="viridis_r", vmin=np.nanmin(Z), vmax=hi, shading="auto")
        ax.contour(T, M, Z, levels=8, colors="k", linewidths=0.5, alpha=0.4)
        for b in BUDGETS:
            t = np.geomspace(max(1, b / GRID ** 2), min(SOURCE_FRAMES, b), 50)
            ax.plot(t, b / t, "k--", lw=1.5)
            ax.annotate(f"L={b:g}", (t[-1], b / t[-1]), textcoords="offset points", xytext=(-4, 4),
                        ha="right", va="bottom", fontsize=9, backgroundcolor=(1, 1, 1, 0.7))
        path = np.array(OPTIMUM_PATH.get(f"{group} · {fit['law']}", []), dtype=float).reshape(-1, 2)
        ax.plot(path[:, 0], path[:, 1], color="#D55E00", lw=2.5, label="continuous optimum path")
        for b in BUDGETS:
            o = optimum_at(fit, b)
            if o is None:
                continue
            c, d = o["continuous"], o.get("discrete")
            rows.append({"strategy": group, "law": fit["law"], "L": b, "T*": c["T"], "M*": c["M"], "loss*": c["loss"],
                         "loss* 95% CI": o.get("ci95", {}).get("loss"),
                         "T": d and d["T"], "M": d and d["M"], "loss": d and d["loss"]})
            if d:
                ax.plot(d["T"], d["M"], "D", ms=10, color="#E69F00", mec="k", zorder=5, clip_on=False)
        ax.plot(measured["frames"], measured["tokens_per_frame"], "o", mfc="white", mec="k", ms=6, zorder=4,
                clip_on=False, label="measured")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log", base=2)
        for a in (ax.xaxis, ax.yaxis):
            a.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v:g}"))
        ax.set_xlabel("frames T (log scale)")
        ax.set_ylabel("tokens per frame M (log scale)")
        ax.set_title(f"{group} · {fit['law']} law · R² {fit.get('r2', np.nan):.3f} (log loss); ◆ best reachable")
        fig.colorbar(mesh, ax=ax, label="fitted held-out loss (nats/token)")
    for ax in axes.flat[len(joint):]:
        ax.set_visible(False)
    plt.show()
    display(pd.DataFrame(rows))

# %% accuracy
acc_keys = [("accuracy", "accuracy_se", "all questions")] + [(f"acc_{f}", f"acc_{f}_se", f"family: {f}") for f in FAMILIES]
cols = 3 if len(acc_keys) > 4 else 2
rows_n = -(-len(acc_keys) // cols)
fig, axes = plt.subplots(rows_n, cols, figsize=(5 * cols, 4 * rows_n), squeeze=False)
for ax, (col, se, title) in zip(axes.flat, acc_keys):
    s = seed_means(results, col, se if se in results.columns else col)
    for axis, style in (("tokens_per_frame", "-"), ("frames", "--")):
        for strategy, fixed, g in lines_along(s, axis):
            vary = "M" if axis == "tokens_per_frame" else "T"
            other = "T" if vary == "M" else "M"
            ax.errorbar(g["frames"] * g["tokens_per_frame"], g["mean"], yerr=g["ci"], fmt=MARKER[strategy] + style,
                        color=COLOR[strategy], capsize=3, label=f"{strategy}, vary {vary} ({other}={fixed:g})")
    if blind is not None and col in blind.columns:
        ax.axhline(blind[col].iloc[0], color="0.4", ls=":", label="blind (no visual tokens)")
    ax.set_xscale("log", base=2)
    ax.xaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v:g}"))
    ax.set_title(title)
    ax.set_xlabel("visual tokens T·M (log scale)")
    ax.set_ylabel("accuracy")
    ax.grid(alpha=0.3)
for ax in axes.flat[len(acc_keys):]:
    ax.set_visible(False)
handles, labels = axes.flat[0].get_legend_handles_labels()
fig.legend(handles, labels, loc="lower center", ncol=3, frameon=False, bbox_to_anchor=(0.5, -0.02))
fig.tight_layout(rect=(0, 0.08, 1, 1))
plt.show()

# %% curves
if curves is None or curves.empty:
    print("No training curves in this run.")
else:
    groups = sorted(curves["strategy"].unique())
    fig, axes = plt.subplots(len(groups), 1, figsize=(10, 3.2 * len(groups)), squeeze=False, sharex=True)
    for ax, strategy in zip(axes[:, 0], groups):
        c = curves[curves["strategy"] == strategy]
        shapes = sorted({(t, m) for t, m in zip(c["frames"], c["tokens_per_frame"])}, key=lambda s: (s[0] * s[1], s[0]))
        cmap = plt.get_cmap("viridis")
        for (key, seed), g in c.groupby(["key", "seed"]):
            k = shapes.index((g["frames"].iloc[0], g["tokens_per_frame"].iloc[0]))
            t, m = shapes[k]
            ax.plot(g["step"], g["train_loss"], color=cmap(0.85 * k / max(1, len(shapes) - 1)),
                    label=f"T={t}, M={m}" if seed == c["seed"].min() else None)
        ax.set_title(strategy)
        ax.set_ylabel("training loss")
        ax.grid(alpha=0.3)
        ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False, fontsize=8)
    axes[-1, 0].set_xlabel("optimiser step")
    fig.tight_layout()
    plt.show()

# %% residuals
with_res = [f for f in fits if f.get("residuals")]
if not with_res:
    print("No residuals in fits.json.")
else:
    cols = min(2, len(with_res))
    rows_n = -(-len(with_res) // cols)
    # One residual scale for every panel, as in `vislaw plot`.
    fig, axes = plt.subplots(rows_n, cols, figsize=(6 * cols, 3.8 * rows_n), squeeze=False, sharey=True)
    for ax, f in zip(axes.flat, with_res):
        r = pd.DataFrame(f["residuals"])
        r["resid"] = np.log(r["observed"]) - np.log(r["predicted"])
        held = r["held_out"].astype(bool)
        ax.axhline(0, color="0.4")
        ax.plot(r.loc[~held, "predicted"], r.loc[~held, "resid"], "o", color=COLOR.get(f["group"], "0.3"), label="fitted")
        ax.plot(r.loc[held, "predicted"], r.loc[held, "resid"], "D", mfc="white", mec="k", ms=8, label="held out")
        ax.set_title(f"{f['group']} · {f['law']}")
        ax.set_xlabel("predicted loss")
        ax.set_ylabel("ln(observed) − ln(predicted)")
        ax.grid(alpha=0.3)
        ax.legend(frameon=False)
    for ax in axes.flat[len(with_res):]:
        ax.set_visible(False)
    fig.tight_layout()
    plt.show()
