//! `vislaw export-notebook RUN`: write a Jupyter notebook that continues the analysis.
use std::path::PathBuf;
use vislaw::Result;

/// Write `notebooks-export/<run>.ipynb`: load the run with pandas, show the fits, redraw the plots.
#[derive(clap::Args)]
pub struct Args {
    /// The run directory (e.g. results/quick), with results.parquet and fits.json.
    input: PathBuf,
    /// Directory to write the notebook into.
    #[arg(long, short = 'o', default_value = "notebooks-export")]
    out_dir: PathBuf,
}

/// Runs `vislaw export-notebook`.
pub fn run(args: Args) -> Result<()> {
    let data = vislaw::run_data::RunData::load(&args.input)?;
    super::report::warn(&data);
    let path = vislaw::export::export_notebook_of(&data, &args.out_dir)?;
    outln!("wrote {}", path.display());
    Ok(())
}
