//! `vislaw report RUN`: write `<run>/report.md` (and the figures it embeds).
use std::path::PathBuf;
use vislaw::Result;

/// Write `<run>/report.md`: config, results, fits, optimum and the figures.
#[derive(clap::Args)]
pub struct Args {
    /// The run directory (e.g. results/quick), with results.parquet and fits.json.
    input: PathBuf,
}

/// Runs `vislaw report`.
pub fn run(args: Args) -> Result<()> {
    let data = vislaw::run_data::RunData::load(&args.input)?;
    warn(&data);
    let path = vislaw::report::write_report_of(&data)?;
    outln!("wrote {} (figures in {})", path.display(), args.input.join(vislaw::plot::PLOTS_DIR).display());
    Ok(())
}

/// Prints what reading the run directory warned about, one `vislaw: warning:` line each.
pub fn warn(data: &vislaw::run_data::RunData) {
    for w in &data.warnings {
        eprintln!("vislaw: warning: {w}");
    }
}
