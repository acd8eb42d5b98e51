//! The exported notebook.
use crate::error::Result;
use std::path::{Path, PathBuf};

/// Writes `<out_dir>/<run>.ipynb` and returns its path.
pub fn export_notebook(run_dir: &Path, out_dir: &Path) -> Result<PathBuf> {
    let _ = (run_dir, out_dir);
    Err(crate::Error::internal("export: not written yet"))
}
