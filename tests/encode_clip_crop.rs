//! CLIP's `shortest_edge` + `crop_size` preprocessing on frames NOT already at the tower's
//! size, against `transformers`' CLIPImageProcessor (its PIL backend, what the venv has) on
//! the same images, built at test time.
//!
//! What is compared, and why so: vislaw resizes with ffmpeg's bicubic, the HF processor with
//! PIL's antialiased bicubic, so pixels cannot agree exactly (SigLIP's 97×61 → 32×32 resize
//! differs by 2.68/255 on average). The test therefore checks (1) the geometry exactly: the
//! size after the shortest-edge resize, from vislaw's own scale filter run through ffmpeg,
//! equals `get_resize_output_image_size`'s; (2) the crop's alignment statistically: shifting
//! vislaw's output by one pixel in any direction moves it further from HF's (a crop off by one
//! pixel, or a resize off by one, would make a shift the better match); (3) the pixels to a
//! tolerance: mean |Δ| under 1.5/255 and the 99th percentile under 8/255 in 0–255 units after
//! undoing the normalisation, twice what was measured here (mean 0.33–0.75, p99 2.3–4.0 on
//! these ≈ 2–5× downscales), on textured images whose one-pixel shift costs 17–29/255.
//! The 99×61 case failed both the geometry (52 vs 51 wide: ffmpeg's `-2` rounds to even) and
//! the alignment (the crop started at 10, not 9: ffmpeg's default offset rounds 9.5 up)
//! before `decode::scale_filter` spelled out HF's arithmetic.
use std::path::Path;
use std::process::Command;
use tch::{Kind, Tensor};
use vislaw::encode::decode::{scale_filter, FrameReader};
use vislaw::encode::preprocess::{Preprocess, Resize, CLIP_STD};

const EDGE: usize = 32;

/// Sizes (width, height): landscape, portrait, one whose long side after resizing is odd
/// (99×61 → 51.9…), and a 16:9 frame.
const SIZES: [(usize, usize); 4] = [(97, 61), (61, 97), (99, 61), (160, 90)];

const REFERENCE: &str = r#"
import sys, os, json, numpy as np
from PIL import Image
from safetensors.numpy import save_file
from transformers import CLIPImageProcessor
from transformers.image_transforms import get_resize_output_image_size
root, edge = sys.argv[1], int(sys.argv[2])
sizes = json.loads(sys.argv[3])
proc = CLIPImageProcessor(size={"shortest_edge": edge}, crop_size={"height": edge, "width": edge})
assert proc.do_center_crop and proc.resample == 3  # bicubic
json.dump(proc.to_dict(), open(os.path.join(root, "preprocessor_config.json"), "w"))
rng = np.random.default_rng(0)
out, dims = {}, {}
for w, h in sizes:
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.stack([128 + 100 * np.sin(xx / 4.0 + yy / 9.0), 128 + 100 * np.cos(yy / 3.5), (xx * 5 + yy * 3) % 256], -1) + rng.normal(0, 8, (h, w, 3))
    img = np.clip(img, 0, 255).astype(np.uint8)
    name = f"{w}x{h}"
    Image.fromarray(img).save(os.path.join(root, name + ".png"))
    out[name] = proc(images=Image.fromarray(img), return_tensors="np")["pixel_values"][0].astype(np.float32)
    dims[name] = list(get_resize_output_image_size(img, edge, default_to_square=False, input_data_format="channels_last"))
save_file(out, os.path.join(root, "hf.safetensors"))
json.dump(dims, open(os.path.join(root, "dims.json"), "w"))
"#;

fn python() -> std::path::PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    assert!(p.exists(), "{} is missing: run `make setup` (this test needs transformers)", p.display());
    p
}

/// (width, height) of `image` after only the resize part of vislaw's filter.
fn resized_dims(image: &Path, resize: &Resize) -> (usize, usize) {
    let filter = scale_filter(resize);
    let scale = filter.split(",crop=").next().unwrap();
    let out = Command::new("ffmpeg")
        .args(["-nostdin", "-v", "error", "-i"])
        .arg(image)
        .args(["-vf", scale, "-f", "rawvideo", "-pix_fmt", "rgb24", "-"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // ffmpeg's scale keeps the aspect ratio: the bytes give the long side from the short one.
    let (w, h) = probe_dims(image);
    let px = out.stdout.len() / 3;
    if w < h {
        (EDGE, px / EDGE)
    } else {
        (px / EDGE, EDGE)
    }
}

fn probe_dims(image: &Path) -> (usize, usize) {
    let out = Command::new("ffprobe").args(["-v", "error", "-show_entries", "stream=width,height", "-of", "csv=p=0"]).arg(image).output().unwrap();
    let s = String::from_utf8(out.stdout).unwrap();
    let v: Vec<usize> = s.trim().split(',').map(|x| x.parse().unwrap()).collect();
    (v[0], v[1])
}

/// Mean |a − b| over the overlap when `a` is shifted by (dy, dx), both `[3, H, W]`.
fn shifted_mean(a: &Tensor, b: &Tensor, dy: i64, dx: i64) -> f64 {
    let n = EDGE as i64;
    let (ha, hb) = (if dy >= 0 { (dy, 0) } else { (0, -dy) }, if dx >= 0 { (dx, 0) } else { (0, -dx) });
    let a = a.narrow(1, ha.0, n - dy.abs()).narrow(2, hb.0, n - dx.abs());
    let b = b.narrow(1, ha.1, n - dy.abs()).narrow(2, hb.1, n - dx.abs());
    (a - b).abs().mean(Kind::Double).double_value(&[])
}

#[test]
fn clip_shortest_edge_and_centre_crop_match_the_hf_processor() {
    let dir = tempfile::tempdir().unwrap();
    let sizes = serde_json::to_string(&SIZES.iter().map(|&(w, h)| [w, h]).collect::<Vec<_>>()).unwrap();
    let out = Command::new(python()).arg("-c").arg(REFERENCE).arg(dir.path()).arg(EDGE.to_string()).arg(&sizes).output().unwrap();
    assert!(out.status.success(), "reference script failed: {}", String::from_utf8_lossy(&out.stderr));
    // vislaw reads the processor file transformers wrote.
    let pre = Preprocess::from_dir(dir.path(), EDGE, true).unwrap();
    assert_eq!(pre.resize, Resize::ShortestEdge { edge: EDGE, crop_width: EDGE, crop_height: EDGE });
    let hf = Tensor::read_safetensors(dir.path().join("hf.safetensors")).unwrap();
    let dims: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.path().join("dims.json")).unwrap()).unwrap();
    // Back to 0–255 units: Δ(normalised) · std · 255.
    let scale = Tensor::from_slice(&CLIP_STD.map(|s| (s * 255.0) as f32)).view([3, 1, 1]);
    for (w, h) in SIZES {
        let name = format!("{w}x{h}");
        let image = dir.path().join(format!("{name}.png"));
        let hf_hw = (dims[&name][0].as_u64().unwrap() as usize, dims[&name][1].as_u64().unwrap() as usize);
        let (rw, rh) = resized_dims(&image, &pre.resize);
        assert_eq!((rh, rw), hf_hw, "{name}: vislaw resizes to {rw}×{rh}, HF to {}×{}", hf_hw.1, hf_hw.0);
        let mut reader = FrameReader::image(&image, &pre.resize, EDGE, EDGE).unwrap();
        let frame = reader.next_frame().unwrap().unwrap();
        assert!(reader.next_frame().unwrap().is_none());
        let ours = pre.apply(&Tensor::from_slice(&frame).view([1, EDGE as i64, EDGE as i64, 3]), Kind::Float).squeeze_dim(0) * &scale;
        let theirs = hf.iter().find(|(n, _)| *n == name).unwrap().1.shallow_clone() * &scale;
        let diff = (&ours - &theirs).abs().flatten(0, -1);
        let mean = diff.mean(Kind::Double).double_value(&[]);
        let p99 = diff.quantile_scalar(0.99, None, false, "linear").double_value(&[]);
        let at = shifted_mean(&ours, &theirs, 0, 0);
        let shifts: Vec<(i64, i64, f64)> = [(0, 1), (0, -1), (1, 0), (-1, 0)].iter().map(|&(dy, dx)| (dy, dx, shifted_mean(&ours, &theirs, dy, dx))).collect();
        eprintln!("{name}: resized {rw}×{rh}; mean |Δ| {mean:.3}, p99 {p99:.3} (0–255); one-pixel shifts {shifts:?}");
        for (dy, dx, m) in &shifts {
            assert!(*m > 1.5 * at, "{name}: shifting by ({dy}, {dx}) gives {m:.3}, no worse than unshifted {at:.3}: the crop is misaligned");
        }
        assert!(mean < 1.5 && p99 < 8.0, "{name}: vislaw vs HF CLIP processor: mean |Δ| {mean:.3}, p99 {p99:.3} (0–255)");
    }
}
