//! vislaw: scaling laws for the visual context of video MLLMs.
//!
//! Data flows one way through the top-level modules (no import cycles; `tests/layout.rs`
//! checks it):
//!
//! `config` (the YAML schema, a leaf) → `sweep::plan` (points and their keys, the checks
//! across fields; `sweep::preflight`, everything checked before training) → `features`
//! (synthetic, files) → `reduction` (spatial, temporal, learned reducers) → `model`
//! (projector, LM, FLOP count) → `train` → `eval` (and `niah`, the needle grid) → `results`
//! → `sweep::run` (drives a sweep, reporting through `sweep::SweepEvents`; `lock` keeps one
//! sweep per run directory) → `fit` → `optimum` → `run_data` → `plot` / `report` / `export`
//! → `analysis` (what a sweep does after its last point).
//! `hf` reads Hugging Face checkpoint directories (memory-mapped weights, JSON configs);
//! `lm` runs the decoder LMs they hold (Qwen2, Llama), with LoRA and their tokenizer.
//! `rundir` owns every path under `results/<run>/`; `tokens` holds the token rules of real
//! model families; `bench` the benchmarks beside their Python references.
//!
//! The library never prints and never names a command-line flag: it returns values and
//! typed errors, and the binary (`src/main.rs`, `src/cli/`) turns flags into options.
#![warn(missing_docs)]

pub mod analysis;
pub mod bench;
pub mod config;
pub mod error;
pub mod eval;
pub mod export;
pub mod features;
pub mod fit;
pub mod hf;
pub mod io;
pub mod lm;
pub mod lock;
pub mod model;
pub mod niah;
pub mod optimum;
pub mod plot;
pub mod reduction;
pub mod report;
pub mod results;
pub mod run_data;
pub mod rundir;
pub mod sweep;
pub mod tokens;
pub mod train;

pub use error::{Error, Result};
