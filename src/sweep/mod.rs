//! The sweep: its points planned from a config (`plan`), checked against the data and the
//! machine (`preflight`), and run (`run`): every pending
//! point trained (`point`, from the shared `context`), evaluated and saved at once,
//! finished points never redone.
pub mod context;
pub mod events;
pub mod failure;
pub mod hf;
pub mod plan;
pub mod point;
pub mod preflight;
pub mod run;

pub use events::{Silent, SweepEvents};
pub use plan::*;
pub use preflight::{open_source, prepare, Limits, Prepared};
pub use run::*;
