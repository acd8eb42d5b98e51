//! What `fit_groups` takes: the options of a fit and one group's columns, and the checks of
//! the options that do not depend on the data.
use super::derive::Derivation;
use super::law::Law;
use super::lbfgs::{Search, StartGrid};
use super::table::RowFilter;
use crate::error::{Error, Result};

/// The names input errors give to options, so that a front end can map them to its own
/// spelling (the CLI to its flags) without the library knowing any flag.
pub mod names {
    /// [`super::FitOptions::law`] and [`crate::fit::Law::parse`].
    pub const LAW: &str = "law";
    /// [`super::FitOptions::derive`] and [`crate::fit::Derivation::parse`].
    pub const DERIVE: &str = "derived column";
    /// [`super::FitOptions::filters`] and [`crate::fit::RowFilter::parse`].
    pub const FILTER: &str = "row filter";
    /// [`super::FitOptions::huber_delta`].
    pub const HUBER_DELTA: &str = "Huber delta";
}

/// How to fit: what `vislaw fit`'s flags set, as a struct.
#[derive(Clone, Debug)]
pub struct FitOptions {
    /// Law to fit; `None` picks additive when both factors vary, else power.
    pub law: Option<Law>,
    /// x column.
    pub x: String,
    /// y column.
    pub y: String,
    /// Response column (loss, or a metric with `error`).
    pub loss: String,
    /// Fit 1 − value instead of the value (error rate from accuracy).
    pub error: bool,
    /// One fit per value of this column.
    pub group_by: Option<String>,
    /// Huber δ on log residuals.
    pub huber_delta: f64,
    /// Drop this many highest-loss rows per group.
    pub exclude_top_loss: usize,
    /// Bootstrap resamples.
    pub bootstrap: usize,
    /// RNG seed.
    pub seed: u64,
    /// Multi-start grid.
    pub grid: StartGrid,
    /// L-BFGS settings: screening of the grid, then polishing (also used by the bootstrap).
    pub search: Search,
    /// Share of rows (whole top budget levels) held out for validation; 0 disables it.
    pub holdout_fraction: f64,
    /// Run the VPNLS cross-check.
    pub vpnls: bool,
    /// Accuracy column for the logistic link (`None`: `accuracy` when the table has it).
    pub accuracy: Option<String>,
    /// Chance accuracy for the link.
    pub chance: f64,
    /// Fit every applicable law per group (compare them by AIC).
    pub compare_laws: bool,
    /// Columns to derive before fitting (`NAME=EXPR` each).
    pub derive: Vec<Derivation>,
    /// Rows to keep (`COLUMN=VALUE` each, all must hold), after the derivations.
    pub filters: Vec<RowFilter>,
}

impl Default for FitOptions {
    fn default() -> Self {
        FitOptions {
            law: None,
            x: "frames".into(),
            y: "tokens_per_frame".into(),
            loss: "loss".into(),
            error: false,
            group_by: None,
            huber_delta: 1e-3,
            exclude_top_loss: 0,
            bootstrap: 1000,
            seed: 0,
            grid: StartGrid::default(),
            search: Search::default(),
            holdout_fraction: 0.1,
            vpnls: true,
            accuracy: None,
            chance: 0.0,
            compare_laws: false,
            derive: Vec::new(),
            filters: Vec::new(),
        }
    }
}

/// One group's columns, as read from a table.
#[derive(Clone, Debug, Default)]
pub struct GroupRows {
    /// Group value (`all` without grouping).
    pub name: String,
    /// x per row.
    pub x: Vec<f64>,
    /// y per row, when the table has the y column.
    pub y: Option<Vec<f64>>,
    /// Response per row (before the `error` transform).
    pub loss: Vec<f64>,
    /// Accuracy per row, for the logistic link.
    pub accuracy: Option<Vec<f64>>,
    /// Name of the accuracy column.
    pub accuracy_column: Option<String>,
    /// Each row's number in the table read, 1-based data rows as a spreadsheet numbers
    /// them below its header (empty: the position in this group, plus one).
    pub row_numbers: Vec<usize>,
}

impl GroupRows {
    /// The table's number of the row at position `i` of this group (1-based).
    pub fn row_number(&self, i: usize) -> usize {
        self.row_numbers.get(i).copied().unwrap_or(i + 1)
    }
}

/// Checks the options that do not depend on the data.
pub(crate) fn validate_options(opts: &FitOptions) -> Result<()> {
    if !(opts.huber_delta > 0.0 && opts.huber_delta.is_finite()) {
        return Err(Error::input(names::HUBER_DELTA, "must be a positive number"));
    }
    if !(0.0..0.5).contains(&opts.holdout_fraction) {
        return Err(Error::input("holdout fraction", "must be in [0, 0.5)"));
    }
    if opts.grid.exponents.is_empty() || opts.grid.log_e.is_empty() || opts.grid.log_coef.is_empty() {
        return Err(Error::input("start grid", "every axis needs at least one value"));
    }
    Ok(())
}
