//! Scaling-law fitting: Chinchilla's Approach 3 with Epoch's fixes and the checks that came
//! after it.
//!
//! Huber loss on log residuals with the law in log-sum-exp form, argmin's L-BFGS from the full
//! start grid in parallel, a bootstrap (rows, or residuals on few rows) and profile-likelihood
//! intervals that say when a parameter is not identified, held-out validation on the largest
//! budgets, and a variable-projection solver as an independent cross-check.
//! `table` is the only part that touches polars; everything else works on plain vectors.
//! `pipeline` runs the steps for each group: `options` → `plan` → `lbfgs` → `bootstrap` /
//! `profile` / `intervals` → `checks` → `diagnose` → a `report::Fit`. The solver internals are
//! crate-private; the public surface is the options, the table entry points and the report.
pub(crate) mod accuracy;
pub(crate) mod bootstrap;
mod checks;
pub mod derive;
mod diagnose;
mod fastmath;
mod intervals;
pub mod joint;
pub mod law;
pub(crate) mod lbfgs;
pub(crate) mod objective;
mod options;
mod pipeline;
mod plan;
pub mod profile;
mod render;
pub mod report;
mod table;
pub(crate) mod validate;
pub(crate) mod vpnls;

pub use derive::Derivation;
pub use law::Law;
pub use lbfgs::{Search, SolverSettings, StartGrid, Stopping};
pub use options::{names, FitOptions, GroupRows};
pub use pipeline::fit_groups;
pub use report::{FactorRanges, Fit, FitReport, LawRanking, Params, FITS_FILE};
pub use table::{fit_input, fit_table, keep_rows, with_derived, RowFilter};
