//! A tower's image preprocessing, as its `preprocessor_config.json` says: resize (ffmpeg does
//! it while decoding, see `decode`), rescale (`rescale_factor`, `do_rescale`) and normalise
//! (`image_mean`, `image_std`, `do_normalize`). Without the file, the family's defaults apply
//! (SigLIP: mean = std = 0.5; CLIP: the OpenAI mean and std) at the tower's `image_size`.
use crate::error::{Error, Result};
use serde::Deserialize;
use std::path::Path;
use tch::{Kind, Tensor};

/// The processor file of a checkpoint directory.
pub const PREPROCESSOR_FILE: &str = "preprocessor_config.json";
/// CLIP's (OpenAI's) normalisation mean.
pub const CLIP_MEAN: [f64; 3] = [0.48145466, 0.4578275, 0.40821073];
/// CLIP's (OpenAI's) normalisation std.
pub const CLIP_STD: [f64; 3] = [0.26862954, 0.26130258, 0.27577711];

/// How a frame is brought to the tower's input size.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub enum Resize {
    /// Straight to `width × height` (SigLIP's `size: {height, width}`).
    Exact {
        /// Output width.
        width: usize,
        /// Output height.
        height: usize,
    },
    /// The shorter side to `edge`, then a centre crop (CLIP's `shortest_edge` and `crop_size`).
    ShortestEdge {
        /// The shorter side after resizing.
        edge: usize,
        /// Crop width.
        crop_width: usize,
        /// Crop height.
        crop_height: usize,
    },
}

impl Resize {
    /// The output `(width, height)`.
    pub fn output(&self) -> (usize, usize) {
        match *self {
            Resize::Exact { width, height } => (width, height),
            Resize::ShortestEdge { crop_width, crop_height, .. } => (crop_width, crop_height),
        }
    }
}

/// Resize, rescale and normalisation of a tower.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Preprocess {
    /// How frames are resized.
    pub resize: Resize,
    /// Pixel values (0–255) are multiplied by this (1/255) when `do_rescale`.
    pub rescale_factor: Option<f64>,
    /// Per-channel mean and std when `do_normalize`.
    pub normalize: Option<([f64; 3], [f64; 3])>,
}

#[derive(Deserialize)]
struct Raw {
    #[serde(default)]
    do_resize: Option<bool>,
    #[serde(default)]
    size: Option<serde_json::Value>,
    #[serde(default)]
    crop_size: Option<serde_json::Value>,
    #[serde(default)]
    do_center_crop: Option<bool>,
    #[serde(default)]
    do_rescale: Option<bool>,
    #[serde(default)]
    rescale_factor: Option<f64>,
    #[serde(default)]
    do_normalize: Option<bool>,
    #[serde(default)]
    image_mean: Option<Vec<f64>>,
    #[serde(default)]
    image_std: Option<Vec<f64>>,
}

/// A size value: `(width, height)` when given, and the shortest edge when given.
type SizeSpec = (Option<(usize, usize)>, Option<usize>);

/// `(width, height)` of a size value: an integer, `{height, width}` or `{shortest_edge}`.
fn dims(v: &serde_json::Value) -> Option<SizeSpec> {
    let get = |k: &str| v.get(k).and_then(|x| x.as_u64()).map(|x| x as usize);
    if let Some(n) = v.as_u64() {
        return Some((Some((n as usize, n as usize)), Some(n as usize)));
    }
    match (get("width"), get("height"), get("shortest_edge")) {
        (Some(w), Some(h), _) => Some((Some((w, h)), None)),
        (_, _, Some(e)) => Some((None, Some(e))),
        _ => None,
    }
}

impl Preprocess {
    /// Reads `dir/preprocessor_config.json` (the family defaults when absent) for a tower of
    /// input `image_size`; `clip` picks CLIP's defaults. The resized size must be the tower's.
    pub fn from_dir(dir: &Path, image_size: usize, clip: bool) -> Result<Preprocess> {
        let (mean, std) = if clip { (CLIP_MEAN, CLIP_STD) } else { ([0.5; 3], [0.5; 3]) };
        let path = dir.join(PREPROCESSOR_FILE);
        if !path.exists() {
            let resize = Resize::Exact { width: image_size, height: image_size };
            return Ok(Preprocess { resize, rescale_factor: Some(1.0 / 255.0), normalize: Some((mean, std)) });
        }
        let raw: Raw = crate::hf::read_json(dir, PREPROCESSOR_FILE)?;
        let bad = |field: &str, msg: String| Error::file(&path, format!("{field}: {msg}"));
        let size = raw
            .size
            .as_ref()
            .map(|v| dims(v).ok_or_else(|| bad("size", format!("{v} is neither an integer, {{height, width}} nor {{shortest_edge}}"))))
            .transpose()?;
        let crop = raw.crop_size.as_ref().and_then(dims).and_then(|(wh, _)| wh);
        let resize = match size {
            _ if raw.do_resize == Some(false) => Resize::Exact { width: image_size, height: image_size },
            Some((_, Some(edge))) if raw.do_center_crop.unwrap_or(crop.is_some()) => {
                let (crop_width, crop_height) = crop.unwrap_or((image_size, image_size));
                Resize::ShortestEdge { edge, crop_width, crop_height }
            }
            Some((Some((width, height)), _)) => Resize::Exact { width, height },
            Some((None, Some(edge))) => Resize::Exact { width: edge, height: edge },
            _ => Resize::Exact { width: image_size, height: image_size },
        };
        if resize.output() != (image_size, image_size) {
            return Err(bad("size", format!("frames come out {:?}, the tower's image_size is {image_size}", resize.output())));
        }
        let three = |v: Option<Vec<f64>>, default: [f64; 3], field: &str| -> Result<[f64; 3]> {
            match v {
                None => Ok(default),
                Some(v) if v.len() == 3 => Ok([v[0], v[1], v[2]]),
                Some(v) => Err(bad(field, format!("{} values, expected 3 (RGB)", v.len()))),
            }
        };
        let normalize = match raw.do_normalize.unwrap_or(true) {
            true => Some((three(raw.image_mean, mean, "image_mean")?, three(raw.image_std, std, "image_std")?)),
            false => None,
        };
        if let Some((_, s)) = &normalize {
            if s.iter().any(|&x| x <= 0.0 || !x.is_finite()) {
                return Err(bad("image_std", format!("{s:?} must be positive")));
            }
        }
        let rescale_factor = raw.do_rescale.unwrap_or(true).then(|| raw.rescale_factor.unwrap_or(1.0 / 255.0));
        Ok(Preprocess { resize, rescale_factor, normalize })
    }

    /// `[B, H, W, 3]` u8 pixels → `[B, 3, H, W]` pixel values in `kind`.
    pub fn apply(&self, pixels: &Tensor, kind: Kind) -> Tensor {
        let mut x = pixels.to_kind(Kind::Float).permute([0, 3, 1, 2]);
        if let Some(f) = self.rescale_factor {
            x *= f;
        }
        if let Some((mean, std)) = &self.normalize {
            let m = Tensor::from_slice(&mean.map(|v| v as f32)).view([1, 3, 1, 1]).to_device(x.device());
            let s = Tensor::from_slice(&std.map(|v| v as f32)).view([1, 3, 1, 1]).to_device(x.device());
            x = (x - m) / s;
        }
        x.to_kind(kind).contiguous()
    }
}
