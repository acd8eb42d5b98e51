//! One file per subcommand: its clap arguments and the glue to the library.
pub mod dataset;
pub mod encode;
pub mod export_notebook;
pub mod fit;
pub mod ingest;
pub mod lm;
pub mod optimum;
pub mod plot;
pub mod progress;
pub mod rank;
pub mod reduce;
pub mod report;
pub mod slurm;
pub mod status;
pub mod sweep;
pub mod tokens;

/// The device a `--device` value names.
pub fn device(choice: &str) -> vislaw::Result<tch::Device> {
    use vislaw::model::DeviceChoice;
    let choice = match choice {
        "auto" => DeviceChoice::Auto,
        "cpu" => DeviceChoice::Cpu,
        "cuda" => DeviceChoice::Cuda,
        other => return Err(vislaw::Error::input("--device", format!("'{other}' is not one of auto, cpu, cuda"))),
    };
    vislaw::model::device(choice).ok_or_else(|| vislaw::Error::input("--device", "cuda requested but libtorch sees no CUDA device"))
}
