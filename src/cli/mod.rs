//! One file per subcommand: its clap arguments and the glue to the library.
pub mod reduce;
pub mod sweep;
pub mod tokens;
pub mod export_notebook;
pub mod plot;
pub mod report;
pub mod fit;
pub mod optimum;
