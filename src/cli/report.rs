//! `vislaw report INPUT`: write `report.md` (and the figures it embeds) of a run directory,
//! or of a results table with its fits.json.
use std::path::PathBuf;
use vislaw::run_data::RunData;
use vislaw::{Error, Result};

/// What `plot` and `report` read: a run directory, or a table of one's own with its fits.
#[derive(clap::Args)]
pub struct Source {
    /// A run directory (e.g. results/quick, with results.parquet and fits.json), or a
    /// results table (.csv or .parquet) with columns frames, tokens_per_frame and loss.
    input: PathBuf,
    /// The fits of a results table (default: fits.json beside the table, where `vislaw
    /// fit TABLE` writes it).
    #[arg(long, value_name = "FILE")]
    fits: Option<PathBuf>,
    /// Where a results table's plots/ and report.md go (default: the table's directory).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
}

impl Source {
    /// Reads the run directory, or the table with its fits.
    pub fn load(&self) -> Result<RunData> {
        if !self.input.exists() {
            return Err(Error::file(&self.input, "no such run directory or results table (.csv or .parquet)"));
        }
        if self.input.is_dir() {
            if let Some(flag) = [("--fits", self.fits.is_some()), ("--out", self.out.is_some())].iter().find(|f| f.1).map(|f| f.0) {
                return Err(Error::input(
                    flag,
                    format!("applies to a results table; {} is a run directory, whose own fits.json and folder are used", self.input.display()),
                ));
            }
            return RunData::load(&self.input);
        }
        let dir = match self.input.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let fits = self.fits.clone().unwrap_or_else(|| dir.join(vislaw::fit::FITS_FILE));
        RunData::load_table(&self.input, &fits, self.out.as_ref().unwrap_or(&dir))
    }
}

/// Write `report.md`: config, results, fits, optimum and the figures.
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    source: Source,
}

/// Runs `vislaw report`.
pub fn run(args: Args) -> Result<()> {
    let data = args.source.load()?;
    warn(&data);
    let path = vislaw::report::write_report_of(&data)?;
    outln!("wrote {} (figures in {})", path.display(), data.dir.join(vislaw::plot::PLOTS_DIR).display());
    Ok(())
}

/// Prints what reading the run directory warned about, one `vislaw: warning:` line each.
pub fn warn(data: &RunData) {
    for w in &data.warnings {
        eprintln!("vislaw: warning: {w}");
    }
}
