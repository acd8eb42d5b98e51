//! Atomic file writes: a temp file in the target's directory, then a rename, so a
//! reader (or an interrupted run) never sees a half-written file.
use crate::error::{Error, Result};
use std::io::Write;
use std::path::Path;

/// Writes `bytes` to `path` atomically, creating parent directories.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic_with(path, |w| w.write_all(bytes).map_err(Error::from))
}

/// Writes to `path` atomically through `fill`, which gets the temp file to write into.
pub fn write_atomic_with<F>(path: &Path, fill: F) -> Result<()>
where
    F: FnOnce(&mut std::fs::File) -> Result<()>,
{
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir).map_err(|e| Error::internal(format!("{}: cannot create directory: {e}", dir.display())))?;
    let mut tmp =
        tempfile::Builder::new().prefix(".tmp-").tempfile_in(dir).map_err(|e| Error::internal(format!("{}: cannot create temp file: {e}", dir.display())))?;
    fill(tmp.as_file_mut())?;
    tmp.as_file_mut().sync_all()?;
    readable_by_all(tmp.path())?;
    tmp.persist(path).map_err(|e| Error::internal(format!("{}: cannot write: {}", path.display(), e.error)))?;
    Ok(())
}

/// Writes `path` atomically through a writer that needs a path of its own (libtorch,
/// safetensors): `fill` writes the temp path given, which is then renamed into place.
pub fn write_atomic_via_path<F>(path: &Path, fill: F) -> Result<()>
where
    F: FnOnce(&Path) -> Result<()>,
{
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir).map_err(|e| Error::internal(format!("{}: cannot create directory: {e}", dir.display())))?;
    let tmp =
        tempfile::Builder::new().prefix(".tmp-").tempfile_in(dir).map_err(|e| Error::internal(format!("{}: cannot create temp file: {e}", dir.display())))?;
    fill(tmp.path())?;
    readable_by_all(tmp.path())?;
    tmp.persist(path).map_err(|e| Error::internal(format!("{}: cannot write: {}", path.display(), e.error)))?;
    Ok(())
}

/// Temp files are created private (0600); results are ordinary files (0644).
fn readable_by_all(path: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o644))?;
    }
    let _ = path;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_fill_leaves_no_file_and_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("out.txt");
        let r = write_atomic_with(&target, |_| Err(Error::internal("boom")));
        assert!(r.is_err());
        assert!(!target.exists());
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn replaces_existing_content_whole() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("a/b.txt");
        write_atomic(&target, b"first version, longer").unwrap();
        write_atomic(&target, b"second").unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"second");
    }
}
