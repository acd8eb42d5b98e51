//! Real videos to the feature directory the sweep's `files` source reads: frames decoded by
//! ffmpeg (`decode`), preprocessed as the checkpoint says (`preprocess`), run through a SigLIP
//! or CLIP vision tower (`vit`), written one `<video>.safetensors` per video with a
//! `manifest.json` (`run`); and the question files beside them (`dataset`).
pub mod dataset;
pub mod decode;
pub mod preprocess;
pub mod run;
pub mod vit;

pub use run::{encode, EncodeEvents, EncodeOptions, EncodeSummary, Input, MANIFEST_FILE};

#[cfg(test)]
mod tests;
