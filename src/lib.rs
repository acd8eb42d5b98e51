//! vislaw: scaling laws for the visual context of video MLLMs.
//!
//! Data flows one way through the modules:
//! config → sweep (points) → features → reduce → model → train → eval → results → fit →
//! optimum → plot / report / export; `tokens` holds the token rules of real model families.

pub mod analysis;
pub mod config;
pub mod error;
pub mod eval;
pub mod export;
pub mod features;
pub mod fit;
pub mod io;
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
