//! `vislaw reduce`: the sweep's reducers as a command, for features prepared offline.
use std::path::PathBuf;
use tch::Tensor;
use vislaw::features::FEATURES_TENSOR;
use vislaw::reduction::{Spatial, Temporal};
use vislaw::{Error, Result};

/// Reduce a `[frames, g, g, D]` feature file to `[T, M, D]`.
#[derive(clap::Args)]
pub struct Args {
    /// Input safetensors file with a tensor named `features`, shape [frames, g, g, D].
    input: PathBuf,
    /// Spatial reducer: pool, sample or bilinear (visionzip needs the encoder's attention and
    /// keys, resampler and summary are trained: those run in a sweep).
    #[arg(long)]
    spatial: String,
    /// Tokens per frame M.
    #[arg(long)]
    tokens_per_frame: usize,
    /// Temporal reducer: sample, pool or fps (at the default 4 source fps and 1 fps; default:
    /// keep every frame).
    #[arg(long, requires = "frames")]
    temporal: Option<String>,
    /// Frames T (with --temporal).
    #[arg(long, requires = "temporal")]
    frames: Option<usize>,
    /// Output safetensors file (tensor `features`, shape [T, M, D]).
    #[arg(short, long)]
    output: PathBuf,
}

/// Runs `vislaw reduce`.
pub fn run(args: Args) -> Result<()> {
    let spatial = Spatial::parse(&args.spatial).map_err(|m| Error::input("--spatial", m))?;
    if spatial.is_learned() || !spatial.needs_tensors().is_empty() {
        return Err(Error::input(
            "--spatial",
            format!("{} is not available offline (learned, or needs encoder attention/keys): use it in a sweep", spatial.name()),
        ));
    }
    let x = read_features(&args.input)?;
    let size = x.size();
    if size.len() != 4 || size[1] != size[2] {
        return Err(Error::file(&args.input, format!("tensor '{FEATURES_TENSOR}' has shape {size:?}, expected [frames, g, g, D]")));
    }
    let (source, grid) = (size[0] as usize, size[1] as usize);
    spatial.check(grid, args.tokens_per_frame).map_err(|m| Error::input("--tokens-per-frame", m))?;
    let x = match (&args.temporal, args.frames) {
        (Some(name), Some(t)) => {
            let temporal = Temporal::parse(name).map_err(|m| Error::input("--temporal", m))?;
            temporal.check(source, t).map_err(|m| Error::input("--frames", m))?;
            temporal.apply(&x, t)
        }
        _ => x,
    };
    let out = spatial.apply(&x, args.tokens_per_frame).contiguous();
    vislaw::io::write_atomic_via_path(&args.output, |tmp| Tensor::write_safetensors(&[(FEATURES_TENSOR, &out)], tmp).map_err(Error::from))?;
    outln!("{} → {}: {:?} → {:?}", args.input.display(), args.output.display(), size, out.size());
    Ok(())
}

fn read_features(path: &PathBuf) -> Result<Tensor> {
    if !path.exists() {
        return Err(Error::file(path, "no such file"));
    }
    let named = Tensor::read_safetensors(path).map_err(|e| Error::file(path, format!("cannot read safetensors: {e}")))?;
    named
        .into_iter()
        .find(|(n, _)| n == FEATURES_TENSOR)
        .map(|(_, t)| t.to_kind(tch::Kind::Float))
        .ok_or_else(|| Error::file(path, format!("no tensor named '{FEATURES_TENSOR}'")))
}
