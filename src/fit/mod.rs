//! Scaling-law fitting: Chinchilla's Approach 3 with Epoch's fixes and the checks that came
//! after it.
//!
//! Huber loss on log residuals with the law in log-sum-exp form, argmin's L-BFGS from the full
//! start grid in parallel, a case-resampling bootstrap for intervals, held-out validation on
//! the largest budgets, and a variable-projection solver as an independent cross-check.
//! `table` is the only part that touches polars; everything else works on plain vectors.
pub mod accuracy;
pub mod bootstrap;
pub mod derive;
mod fastmath;
pub mod law;
pub mod lbfgs;
pub mod objective;
pub mod pipeline;
pub mod report;
mod table;
pub mod validate;
pub mod vpnls;

pub use derive::Derivation;
pub use law::Law;
pub use lbfgs::{Search, SolverSettings, StartGrid, Stopping};
pub use pipeline::{fit_groups, FitOptions, GroupRows};
pub use report::{Fit, FitReport, Params, FITS_FILE};
pub use table::{fit_input, fit_table, keep_rows, with_derived, RowFilter};
