//! The exported notebook: `notebooks-export/<run>.ipynb` (nbformat 4.5), which loads the
//! run's Parquet files, fits.json and optimum.json with pandas, shows the fitted parameters
//! and redraws the main figures with matplotlib, so that the analysis can go on in Jupyter.
//! It solves nothing: the optimum is vislaw's (`crate::optimum`), read from `optimum.json`
//! or, for a run without one, as solved at export.
//!
//! The Python lives in `assets/notebook/cells.py`, one script cut into cells at
//! `# %% <name>` lines; markdown cells are put in front of named cells. Only the first cell
//! is filled in per run.
use crate::error::{Error, Result};
use crate::run_data::RunData;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

/// Default directory of exported notebooks.
pub const EXPORT_DIR: &str = "notebooks-export";

/// Writes `<out_dir>/<run>.ipynb` for a run directory and returns its path.
pub fn export_notebook(run_dir: &Path, out_dir: &Path) -> Result<PathBuf> {
    export_notebook_of(&RunData::load(run_dir)?, out_dir)
}

/// Writes `<out_dir>/<run>.ipynb` for already loaded run data and returns its path.
pub fn export_notebook_of(data: &RunData, out_dir: &Path) -> Result<PathBuf> {
    let notebook = notebook(data)?;
    let path = out_dir.join(format!("{}.ipynb", data.name));
    let text = serde_json::to_string_pretty(&notebook)? + "\n";
    crate::io::write_atomic(&path, text.as_bytes())?;
    Ok(path)
}

/// Each strategy group's reachable T and M (`optimum::Feasible`), so the notebook's
/// discrete optimum searches the same settings as `vislaw optimum` and `report.md`.
fn feasible_sets(data: &RunData) -> std::collections::BTreeMap<String, crate::optimum::Feasible> {
    crate::optimum::strategy_sets(data.points.iter().map(|p| p.strategy.as_str()), data.source_frames(), data.grid())
}

/// The optima of every fit of the held-out loss at the run's budgets (what `report.md` shows).
fn optima_at_budgets(data: &RunData) -> Vec<crate::optimum::Optimum> {
    let fits = crate::plot::fits::main_loss_indices(&data.fits);
    data.optima(&fits, &data.budgets()).into_iter().flat_map(|r| r.unwrap_or_default()).collect()
}

/// The continuous optimum path of each joint law, `group · law` → [[T, M], ...], over the
/// budgets the joint figure draws it at.
fn optimum_paths(data: &RunData) -> std::collections::BTreeMap<String, Vec<[f64; 2]>> {
    let joint: Vec<usize> = crate::plot::fits::main_loss_indices(&data.fits).into_iter().filter(|&i| crate::plot::fits::is_joint(&data.fits.fits[i])).collect();
    let paths = data.optima(&joint, &crate::plot::joint::path_budgets(data, 80));
    joint
        .iter()
        .zip(paths)
        .map(|(&i, path)| {
            let f = &data.fits.fits[i];
            (format!("{} · {}", f.group, f.law.name()), path.unwrap_or_default().iter().map(|o| [o.continuous.t, o.continuous.m]).collect())
        })
        .collect()
}

/// The notebook as nbformat 4.5 JSON.
pub fn notebook(data: &RunData) -> Result<Value> {
    let abs = std::path::absolute(&data.dir).map_err(|e| Error::internal(format!("{}: {e}", data.dir.display())))?;
    let constants = [
        ("@RUN_NAME@", serde_json::to_string(&data.name)?),
        ("@EXPORTED_FROM@", serde_json::to_string(&abs.to_string_lossy())?),
        ("@BUDGETS@", serde_json::to_string(&data.budgets())?),
        ("@SOURCE_FRAMES@", data.source_frames().to_string()),
        ("@GRID@", data.grid().to_string()),
        ("@FEASIBLE@", serde_json::to_string(&feasible_sets(data))?),
        // JSON inside a Python string literal (a JSON string is one), read with json.loads.
        ("@OPTIMA@", serde_json::to_string(&serde_json::to_string(&optima_at_budgets(data))?)?),
        ("@OPTIMUM_PATH@", serde_json::to_string(&serde_json::to_string(&optimum_paths(data))?)?),
    ];
    let mut cells = vec![markdown(&intro(data, &abs))];
    for (name, code) in code_cells() {
        if let Some(text) = MARKDOWN.iter().find(|(n, _)| *n == name).map(|(_, t)| *t) {
            cells.push(markdown(text));
        }
        let code = constants.iter().fold(code.to_string(), |c, (k, v)| c.replace(k, v));
        cells.push(code_cell(&code));
    }
    for (i, c) in cells.iter_mut().enumerate() {
        c["id"] = json!(format!("cell-{i:02}"));
    }
    Ok(json!({
        "cells": cells,
        "metadata": {
            "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
            "language_info": {"name": "python"},
            "vislaw": {"run": data.name, "exported_from": abs.to_string_lossy(), "version": env!("CARGO_PKG_VERSION")}
        },
        "nbformat": 4,
        "nbformat_minor": 5
    }))
}

/// The opening markdown: what the notebook is and how it finds the run.
fn intro(data: &RunData, abs: &Path) -> String {
    format!(
        "# vislaw run `{name}`\n\n\
         Exported by `vislaw export-notebook` from `{dir}`: {points} trained points and {fits} fits. \
         The cells load the run's tables with pandas, show the fitted laws and redraw the figures of \
         `vislaw plot` with matplotlib (numpy, pandas, pyarrow and matplotlib are all it needs).\n\n\
         **Where the data come from.** The notebook reads `results.parquet`, `curves.parquet`, \
         `blind.parquet`, `fits.json` and `optimum.json` from the run directory and never writes there. It looks, in \
         order, at `$VISLAW_RUN_DIR`, at the absolute path above (recorded at export), then at \
         `../results/{name}` and `results/{name}` relative to the directory Jupyter runs it in — so it \
         keeps working when moved to another directory of the same checkout. If you move the run or \
         open the notebook elsewhere, set `VISLAW_RUN_DIR` or assign `RUN_DIR` in the first code \
         cell.",
        name = data.name,
        dir = abs.display(),
        points = data.points.len(),
        fits = data.fits.fits.len()
    )
}

/// Markdown put in front of the named code cells.
const MARKDOWN: [(&str, &str); 8] = [
    ("load", "## The run's tables\n\nOne row per trained point; `blind` is the baseline without visual tokens."),
    ("params", "## Fitted laws\n\nParameters with their 95% bootstrap intervals and the fit diagnostics, one row per fit in `fits.json`."),
    ("helpers", "Helpers: the laws evaluated from their parameters, the bootstrap band, the lowest-AIC fit per strategy, and seed means with 95% intervals."),
    ("loss plots", "## Loss against tokens per frame and against frames\n\nSeed means with 95% intervals, the lowest-AIC law of each strategy and its pointwise 95% bootstrap band."),
    ("joint", "## The budget trade-off\n\nThe fitted loss over (T, M), the iso-budget lines T·M = L, the continuous optimum path (orange) and the best reachable setting at each budget (◆: the T and M the strategy's own reducers can produce), with the optimum table. The optima are vislaw's own (`vislaw::optimum`, as in `report.md`): read from `optimum.json`, or as solved at export when the run has none."),
    ("accuracy", "## Accuracy per question family\n\nSolid lines vary M at fixed T, dashed lines vary T at fixed M; the dotted line is the blind baseline."),
    ("curves", "## Training curves\n\nEvery point's training loss, coloured by visual tokens T·M."),
    ("residuals", "## Fit residuals\n\nln(observed) − ln(predicted) against the predicted loss; held-out points are hollow diamonds."),
];

fn markdown(text: &str) -> Value {
    json!({"cell_type": "markdown", "metadata": {}, "source": lines(text)})
}

fn code_cell(code: &str) -> Value {
    json!({"cell_type": "code", "execution_count": null, "metadata": {}, "outputs": [], "source": lines(code)})
}

/// nbformat stores sources as lines that keep their newlines.
fn lines(text: &str) -> Vec<String> {
    text.trim_matches('\n').split_inclusive('\n').map(str::to_string).collect()
}

/// The code cells as (name, source), cut from [`SCRIPT`] at its `# %% <name>` lines.
fn code_cells() -> Vec<(&'static str, &'static str)> {
    SCRIPT
        .split("# %% ")
        .filter(|c| !c.trim().is_empty())
        .map(|c| {
            let (name, body) = c.split_once('\n').unwrap_or((c, ""));
            (name.trim(), body.trim_matches('\n'))
        })
        .collect()
}

/// The notebook's Python, one `# %% <name>` line before each cell (`assets/notebook/cells.py`).
const SCRIPT: &str = include_str!("../assets/notebook/cells.py");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_script_cuts_into_named_cells_with_markdown_for_each_section() {
        let cells = code_cells();
        let names: Vec<&str> = cells.iter().map(|c| c.0).collect();
        for (n, _) in MARKDOWN {
            assert!(names.contains(&n), "{n} has no code cell");
        }
        assert_eq!(names[0], "setup");
        assert!(cells.iter().all(|c| !c.1.contains("# %%")));
    }

    #[test]
    fn only_the_first_cell_has_placeholders() {
        let cells = code_cells();
        assert!(cells[0].1.contains("@RUN_NAME@") && cells[0].1.contains("@GRID@"));
        assert!(cells[1..].iter().all(|c| !c.1.contains('@')));
    }

    #[test]
    fn sources_are_lines_with_newlines_kept() {
        assert_eq!(lines("a\nb\n"), vec!["a\n".to_string(), "b".to_string()]);
    }
}
