//! `vislaw plot INPUT`: draw every figure of a run directory into `<run>/plots/`, or of a
//! results table (with its fits.json) into `<table's dir>/plots/` or `--out DIR/plots/`.
use super::report::Source;
use vislaw::Result;

/// Draw the figures (PNG and SVG) of a run directory or of a results table.
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    source: Source,
}

/// Runs `vislaw plot`.
pub fn run(args: Args) -> Result<()> {
    let data = args.source.load()?;
    super::report::warn(&data);
    let written = vislaw::plot::plot_data(&data)?;
    for path in &written {
        outln!("{}", path.display());
    }
    outln!("wrote {} files to {}", written.len(), data.dir.join(vislaw::plot::PLOTS_DIR).display());
    Ok(())
}
