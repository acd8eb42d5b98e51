//! The weights of a Hugging Face checkpoint, memory-mapped.
//!
//! `model.safetensors`, or the shards that `model.safetensors.index.json` lists, are mapped
//! into memory, never read whole: a tensor is copied out only when asked for, so loading a
//! model holds at most the model plus one tensor, whatever the size of the shards. Every
//! error names the file, the tensor and, for a shape, both shapes.
use crate::error::{Error, Result};
use memmap2::Mmap;
use safetensors::{Dtype, SafeTensors};
use serde::de::DeserializeOwned;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use tch::{Kind, Tensor};

/// The single-file weights of a checkpoint.
pub const WEIGHTS_FILE: &str = "model.safetensors";
/// The index of a sharded checkpoint: `{"weight_map": {tensor: shard file}}`.
pub const INDEX_FILE: &str = "model.safetensors.index.json";

/// Reads and parses a JSON file of a checkpoint directory (`config.json`,
/// `preprocessor_config.json`, …); errors name the file.
pub fn read_json<T: DeserializeOwned>(dir: &Path, name: &str) -> Result<T> {
    let path = dir.join(name);
    let text = std::fs::read_to_string(&path).map_err(|e| Error::file(&path, format!("cannot read: {e}")))?;
    serde_json::from_str(&text).map_err(|e| Error::file(&path, e.to_string()))
}

/// Where one tensor lies.
#[derive(Debug, Clone)]
struct Entry {
    shard: usize,
    dtype: Dtype,
    shape: Vec<i64>,
    /// Byte range within the shard's mapping, header included.
    start: usize,
    end: usize,
}

/// One memory-mapped weights file.
#[derive(Debug)]
struct Shard {
    path: PathBuf,
    map: Mmap,
}

/// The weights of a checkpoint directory, memory-mapped.
#[derive(Debug)]
pub struct Checkpoint {
    dir: PathBuf,
    shards: Vec<Shard>,
    entries: BTreeMap<String, Entry>,
}

impl Checkpoint {
    /// Maps the weights of `dir`: its index's shards when `model.safetensors.index.json` is
    /// there, else `model.safetensors`.
    pub fn open(dir: &Path) -> Result<Checkpoint> {
        if !dir.is_dir() {
            return Err(Error::file(dir, "not a checkpoint directory"));
        }
        let files = if dir.join(INDEX_FILE).exists() {
            shard_files(dir)?
        } else if dir.join(WEIGHTS_FILE).exists() {
            vec![WEIGHTS_FILE.to_string()]
        } else {
            return Err(Error::file(dir, format!("no weights: neither {WEIGHTS_FILE} nor {INDEX_FILE}")));
        };
        let mut ck = Checkpoint { dir: dir.to_path_buf(), shards: Vec::new(), entries: BTreeMap::new() };
        for file in files {
            ck.map_shard(&dir.join(file))?;
        }
        Ok(ck)
    }

    fn map_shard(&mut self, path: &Path) -> Result<()> {
        let file = std::fs::File::open(path).map_err(|e| Error::file(path, format!("missing shard: {e}")))?;
        // Safety: the mapping is read-only; a checkpoint changed under a running process
        // is outside what any loader can guard against (transformers maps it the same way).
        let map = unsafe { Mmap::map(&file) }.map_err(|e| Error::file(path, format!("cannot map: {e}")))?;
        let (header_len, meta) = SafeTensors::read_metadata(&map).map_err(|e| Error::file(path, format!("not a safetensors file: {e}")))?;
        let base = 8 + header_len;
        let shard = self.shards.len();
        for (name, info) in meta.tensors() {
            let (start, end) = (base + info.data_offsets.0, base + info.data_offsets.1);
            let shape = info.shape.iter().map(|&d| d as i64).collect();
            self.entries.insert(name, Entry { shard, dtype: info.dtype, shape, start, end });
        }
        self.shards.push(Shard { path: path.to_path_buf(), map });
        Ok(())
    }

    /// The checkpoint's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Every tensor name, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.entries.keys().map(String::as_str)
    }

    /// Whether the checkpoint holds `name`.
    pub fn contains(&self, name: &str) -> bool {
        self.entries.contains_key(name)
    }

    /// The stored shape of `name`, when present.
    pub fn shape(&self, name: &str) -> Option<&[i64]> {
        self.entries.get(name).map(|e| e.shape.as_slice())
    }

    /// Whether any tensor name starts with `prefix` (a full `SiglipModel` prefixes its
    /// vision tower with `vision_model.`).
    pub fn has_prefix(&self, prefix: &str) -> bool {
        self.entries.range(prefix.to_string()..).next().is_some_and(|(k, _)| k.starts_with(prefix))
    }

    /// Copies tensor `name` out of its mapping, on the CPU in its stored type, after checking
    /// that its shape is `shape`.
    pub fn tensor(&self, name: &str, shape: &[i64]) -> Result<Tensor> {
        let e = self.entries.get(name).ok_or_else(|| Error::file(&self.dir, format!("tensor '{name}' is missing")))?;
        let path = &self.shards[e.shard].path;
        if e.shape != shape {
            return Err(Error::file(path, format!("tensor '{name}' has shape {:?}, the config needs {:?}", e.shape, shape)));
        }
        let kind = kind_of(e.dtype).ok_or_else(|| Error::file(path, format!("tensor '{name}' has dtype {:?}; supported: F32, F16, BF16", e.dtype)))?;
        let bytes = &self.shards[e.shard].map[e.start..e.end];
        Ok(Tensor::from_data_size(bytes, shape, kind))
    }
}

/// The distinct shard files of an index, in the order of first appearance.
fn shard_files(dir: &Path) -> Result<Vec<String>> {
    #[derive(serde::Deserialize)]
    struct Index {
        weight_map: BTreeMap<String, String>,
    }
    let index: Index = read_json(dir, INDEX_FILE)?;
    let mut files: Vec<String> = index.weight_map.into_values().collect();
    files.sort();
    files.dedup();
    if files.iter().any(|f| f.contains('/') || f.contains("..")) {
        return Err(Error::file(&dir.join(INDEX_FILE), "a shard name leaves the checkpoint directory"));
    }
    Ok(files)
}

fn kind_of(dtype: Dtype) -> Option<Kind> {
    match dtype {
        Dtype::F32 => Some(Kind::Float),
        Dtype::F16 => Some(Kind::Half),
        Dtype::BF16 => Some(Kind::BFloat16),
        Dtype::F64 => Some(Kind::Double),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tch::Device;

    fn random(shape: &[i64], seed: i64) -> Tensor {
        tch::manual_seed(seed);
        Tensor::randn(shape, (Kind::Float, Device::Cpu))
    }

    #[test]
    fn single_file_tensors_come_back_bitwise_in_their_stored_type() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (random(&[3, 4], 1), random(&[5], 2).to_kind(Kind::BFloat16));
        Tensor::write_safetensors(&[("x.a", &a), ("y.b", &b)], dir.path().join(WEIGHTS_FILE)).unwrap();
        let ck = Checkpoint::open(dir.path()).unwrap();
        assert_eq!(ck.names().collect::<Vec<_>>(), ["x.a", "y.b"]);
        assert!(ck.tensor("x.a", &[3, 4]).unwrap().equal(&a));
        let back = ck.tensor("y.b", &[5]).unwrap();
        assert_eq!(back.kind(), Kind::BFloat16);
        assert!(back.equal(&b));
        assert!(ck.has_prefix("y.") && !ck.has_prefix("z."));
    }

    #[test]
    fn shards_of_an_index_are_all_mapped() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (random(&[2, 2], 3), random(&[7], 4));
        Tensor::write_safetensors(&[("a", &a)], dir.path().join("model-00001-of-00002.safetensors")).unwrap();
        Tensor::write_safetensors(&[("b", &b)], dir.path().join("model-00002-of-00002.safetensors")).unwrap();
        let index = r#"{"metadata": {}, "weight_map": {"a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}}"#;
        std::fs::write(dir.path().join(INDEX_FILE), index).unwrap();
        let ck = Checkpoint::open(dir.path()).unwrap();
        assert!(ck.tensor("a", &[2, 2]).unwrap().equal(&a));
        assert!(ck.tensor("b", &[7]).unwrap().equal(&b));
    }

    #[test]
    fn missing_files_tensors_and_wrong_shapes_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let err = Checkpoint::open(dir.path()).unwrap_err().to_string();
        assert!(err.contains("neither model.safetensors"), "{err}");
        std::fs::write(dir.path().join(INDEX_FILE), r#"{"weight_map": {"a": "gone.safetensors"}}"#).unwrap();
        let err = Checkpoint::open(dir.path()).unwrap_err().to_string();
        assert!(err.contains("gone.safetensors") && err.contains("missing shard"), "{err}");
        std::fs::remove_file(dir.path().join(INDEX_FILE)).unwrap();
        Tensor::write_safetensors(&[("a", &random(&[2, 3], 5))], dir.path().join(WEIGHTS_FILE)).unwrap();
        let ck = Checkpoint::open(dir.path()).unwrap();
        let err = ck.tensor("a", &[3, 2]).unwrap_err().to_string();
        assert!(err.contains("'a'") && err.contains("[2, 3]") && err.contains("[3, 2]"), "{err}");
        let err = ck.tensor("b", &[1]).unwrap_err().to_string();
        assert!(err.contains("'b' is missing"), "{err}");
    }
}
