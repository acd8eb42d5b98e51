//! Benchmarks beside their Python references: training and reducer throughput against
//! PyTorch eager (`train`), and the full fit against SciPy (`fit`), both measured under the
//! one protocol of [`protocol`] (warm-up, interleaved repeats, min / median / max, the machine);
//! the vision tower and decoding of `vislaw encode` beside transformers and ffmpeg (`encode`);
//! and training a projector into a frozen Hugging Face LM beside transformers (`hf_train`).
//!
//! The library measures and returns results; the `vislaw-bench` binary prints them. The
//! references are the scripts in `benches/`, run as subprocesses with the project's Python.
pub mod encode;
pub mod fit;
pub mod hf_train;
pub mod protocol;
pub mod same_work;
pub mod serve;
pub mod train;

/// The Python that runs the references (the project's venv, made by `make setup`).
pub const PYTHON: &str = ".venv/bin/python";
