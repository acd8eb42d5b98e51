//! The sweep: its points planned from a config (`plan`), and run (`run`): every pending
//! point trained, evaluated and saved at once, finished points never redone.
pub mod events;
pub mod plan;
pub mod run;

pub use events::{Silent, SweepEvents};
pub use plan::*;
pub use run::*;
