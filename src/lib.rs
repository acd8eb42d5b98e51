//! vislaw: scaling laws for the visual context of video MLLMs.
//!
//! Data flows one way through the top-level modules (no import cycles; `tests/layout.rs`
//! checks it):
//!
//! `config` (the YAML schema, a leaf) → `sweep::plan` (points and their keys, the checks
//! across fields; `sweep::preflight`, everything checked before training) → `features`
//! (synthetic, files) → `reduction` (spatial, temporal, learned reducers) → `model`
//! (projector, LM, FLOP count) → `train` → `eval` (and `niah`, the needle grid) → `results`
//! → `sweep::run` (drives a sweep, reporting through `sweep::SweepEvents`; `lock` holds the
//! run directory and each point's claim, so shards share one directory; `shard` splits the
//! points) → `fit` → `optimum` → `run_data` → `plot` / `report` / `export` → `analysis` (what
//! a sweep does after its last point). `status` reads where a run stands; `slurm` plans job
//! arrays of its pending points.
//! `ingest` turns results made elsewhere (lmms-eval) into tables `fit` reads;
//! `disagreement` finds the steps where loss and accuracy point different ways; `ranking`
//! ranks the strategies at equal (T, M) across seeds, beyond seed noise.
//! `hf` reads Hugging Face checkpoint directories (memory-mapped weights, JSON configs);
//! `encode` turns videos into feature directories with SigLIP/CLIP towers (`hf` → `encode` → `features`' file format).
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
pub mod cost;
pub mod disagreement;
pub mod encode;
pub mod error;
pub mod eval;
pub mod export;
pub mod features;
pub mod fit;
pub mod hf;
pub mod ingest;
pub mod io;
pub mod lm;
pub mod lock;
pub mod model;
pub mod niah;
pub mod optimum;
pub mod plot;
pub mod ranking;
pub mod reduction;
pub mod report;
pub mod results;
pub mod run_data;
pub mod rundir;
pub mod shard;
pub mod slurm;
pub mod status;
pub mod sweep;
pub mod tokens;
pub mod train;

pub use error::{Error, Result};
