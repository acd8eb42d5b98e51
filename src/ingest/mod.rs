//! Results made elsewhere, turned into tables that `fit` and `optimum` read: today the
//! aggregated results (and per-sample logs) of lmms-eval runs at several frame counts.
pub mod lmms_eval;

pub use lmms_eval::{ingest, IngestOptions, RunSettings};
