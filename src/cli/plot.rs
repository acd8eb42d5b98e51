//! `vislaw plot RUN`: draw every figure of a run directory into `<run>/plots/`.
use std::path::PathBuf;
use vislaw::Result;

/// Draw the figures of a run (PNG and SVG) into `<run>/plots/`.
#[derive(clap::Args)]
pub struct Args {
    /// The run directory (e.g. results/quick), with results.parquet and fits.json.
    input: PathBuf,
}

/// Runs `vislaw plot`.
pub fn run(args: Args) -> Result<()> {
    let data = vislaw::run_data::RunData::load(&args.input)?;
    super::report::warn(&data);
    let written = vislaw::plot::plot_data(&data)?;
    for path in &written {
        outln!("{}", path.display());
    }
    outln!("wrote {} files to {}", written.len(), args.input.join(vislaw::plot::PLOTS_DIR).display());
    Ok(())
}
