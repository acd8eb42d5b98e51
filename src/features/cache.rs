//! The on-disk cache of reduced features: one safetensors file per (video, reduction),
//! `results/<run>/cache/reduced/<key>.safetensors` (the directory comes from
//! `crate::rundir::RunDir::reduced_cache`), holding tensor `reduced` `[V, D]` f32.
//!
//! An entry's key hashes the video file's fingerprint (its name, byte size, modification
//! time and header, as `files::Files::open` computes them) with the reduction's own key
//! material (strategy, its parameters, T, M, device): a re-extracted video gets new keys, so
//! its old entries are never read again. Entries are written to a temp file and renamed into
//! place, so a killed write leaves a `.tmp-` file (removed on the next start) and never a
//! torn entry; two processes writing one entry write the same bytes and the last rename
//! wins. An entry that does not parse as the expected `[V, D]` f32 tensor is treated as
//! missing and rewritten.
//!
//! Beside the entries, `<video fingerprint>.checked` marks a video whose values were read
//! once and found finite, so a sweep's start does not read every video again.
use crate::error::{Error, Result};
use std::path::{Path, PathBuf};
use tch::{Kind, Tensor};

/// Name of the tensor inside a cache entry.
pub const REDUCED_TENSOR: &str = "reduced";

/// A directory of reduced-feature entries.
#[derive(Debug, Clone)]
pub struct ReducedCache {
    dir: PathBuf,
}

impl ReducedCache {
    /// The cache in `dir` (created on the first write).
    pub fn new(dir: impl Into<PathBuf>) -> ReducedCache {
        ReducedCache { dir: dir.into() }
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The key of video `video_fingerprint` under reduction key material `reduction`.
    pub fn key(video_fingerprint: &str, reduction: &str) -> String {
        let material = serde_json::json!({"cache": 1, "video": video_fingerprint, "reduction": reduction});
        blake3::hash(material.to_string().as_bytes()).to_hex()[..32].to_string()
    }

    /// The file of entry `key`.
    pub fn entry(&self, key: &str) -> PathBuf {
        self.dir.join(format!("{key}.safetensors"))
    }

    /// Entry `key` as a `[tokens, dim]` f32 tensor on the CPU; `None` when it is absent or
    /// not such a tensor (then it is recomputed and rewritten).
    pub fn read(&self, key: &str, tokens: usize, dim: usize) -> Option<Tensor> {
        let bytes = std::fs::read(self.entry(key)).ok()?;
        let st = safetensors::SafeTensors::deserialize(&bytes).ok()?;
        let view = st.tensor(REDUCED_TENSOR).ok()?;
        if view.dtype() != safetensors::Dtype::F32 || view.shape() != [tokens, dim] {
            return None;
        }
        Some(Tensor::from_data_size(view.data(), &[tokens as i64, dim as i64], Kind::Float))
    }

    /// Writes entry `key` (`[V, D]` f32) atomically.
    pub fn write(&self, key: &str, reduced: &Tensor) -> Result<()> {
        let t = reduced.to_device(tch::Device::Cpu).to_kind(Kind::Float).contiguous();
        let shape: Vec<usize> = t.size().iter().map(|&s| s as usize).collect();
        let values = Vec::<f32>::try_from(t.flatten(0, -1)).map_err(Error::internal)?;
        let data: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        let view = safetensors::tensor::TensorView::new(safetensors::Dtype::F32, shape, &data).map_err(Error::internal)?;
        let bytes = safetensors::serialize([(REDUCED_TENSOR, view)], None).map_err(Error::internal)?;
        crate::io::write_atomic(&self.entry(key), &bytes)
    }

    fn checked_marker(&self, video_fingerprint: &str) -> PathBuf {
        self.dir.join(format!("{video_fingerprint}.checked"))
    }

    /// Whether video `video_fingerprint`'s values were found finite before.
    pub fn is_checked(&self, video_fingerprint: &str) -> bool {
        self.checked_marker(video_fingerprint).exists()
    }

    /// Records that video `video_fingerprint`'s values are finite.
    pub fn mark_checked(&self, video_fingerprint: &str) -> Result<()> {
        crate::io::write_atomic(&self.checked_marker(video_fingerprint), b"finite\n")
    }

    /// Entries in the cache (files ending in `.safetensors`), for tests and status.
    pub fn entries(&self) -> usize {
        std::fs::read_dir(&self.dir).map_or(0, |d| d.flatten().filter(|e| e.file_name().to_string_lossy().ends_with(".safetensors")).count())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_round_trips_bitwise_and_a_torn_one_reads_as_missing() {
        let d = tempfile::tempdir().unwrap();
        let cache = ReducedCache::new(d.path().join("reduced"));
        tch::manual_seed(1);
        let t = Tensor::randn([6, 5], (Kind::Float, tch::Device::Cpu));
        let key = ReducedCache::key("video-a", "pool/sample T=2 M=3");
        assert!(cache.read(&key, 6, 5).is_none());
        cache.write(&key, &t).unwrap();
        assert!(cache.read(&key, 6, 5).unwrap().equal(&t), "bitwise round trip");
        assert!(cache.read(&key, 5, 6).is_none(), "another shape is a miss");
        assert_ne!(key, ReducedCache::key("video-b", "pool/sample T=2 M=3"));
        assert_ne!(key, ReducedCache::key("video-a", "pool/sample T=2 M=4"));
        // A half-written file (as a crash without the rename would leave) is not an entry.
        let bytes = std::fs::read(cache.entry(&key)).unwrap();
        std::fs::write(cache.entry(&key), &bytes[..bytes.len() / 2]).unwrap();
        assert!(cache.read(&key, 6, 5).is_none());
        assert_eq!(cache.entries(), 1);
        let leftovers: Vec<_> = std::fs::read_dir(cache.dir()).unwrap().flatten().filter(|e| e.file_name().to_string_lossy().starts_with(".tmp-")).collect();
        assert!(leftovers.is_empty(), "the atomic write leaves no temp file");
        assert!(!cache.is_checked("video-a"));
        cache.mark_checked("video-a").unwrap();
        assert!(cache.is_checked("video-a") && !cache.is_checked("video-b"));
    }
}
