//! `vislaw tokens`: count the visual tokens a real model family produces for an image or video.
//!
//! Every value is taken as text and parsed here, so a bad one gives a one-line error naming its
//! flag (exit code 2) instead of clap's multi-line usage error. The library names request
//! fields (`size`, `fps`, ...); [`flag_error`] writes them as this command's flags.
use clap::Args as ClapArgs;
use std::str::FromStr;
use vislaw::tokens::{self, Compression, Family, Field, ImageRequest, Knobs, Pooling, Size, TokenCount, VideoRequest};
use vislaw::{Error, Result};

/// Arguments of `vislaw tokens`.
#[derive(ClapArgs, Debug)]
pub struct Args {
    /// Model family: qwen2-vl, qwen2.5-vl, internvl-1.5, llava-onevision or oryx.
    #[arg(long, value_name = "FAMILY", allow_hyphen_values = true)]
    pub model: String,
    /// Image or frame size as WxH, e.g. 1280x720.
    #[arg(long, value_name = "WxH", allow_hyphen_values = true)]
    pub size: String,
    /// Count a video instead of an image (needs --fps and --duration, or --frames).
    #[arg(long)]
    pub video: bool,
    /// Video: the clip's native frame rate.
    #[arg(long, value_name = "F", allow_hyphen_values = true)]
    pub fps: Option<String>,
    /// Video: the clip's length in seconds.
    #[arg(long, value_name = "S", allow_hyphen_values = true)]
    pub duration: Option<String>,
    /// Video: frames to sample (default: the family's own sampling rule).
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    pub frames: Option<String>,
    /// Qwen: min_pixels per image or frame.
    #[arg(long, value_name = "PX", allow_hyphen_values = true)]
    pub min_pixels: Option<String>,
    /// Qwen: max_pixels per image or frame.
    #[arg(long, value_name = "PX", allow_hyphen_values = true)]
    pub max_pixels: Option<String>,
    /// InternVL: max_num tiles (default 12 for images, 1 per video frame).
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    pub max_tiles: Option<String>,
    /// InternVL: do not append the thumbnail tile.
    #[arg(long)]
    pub no_thumbnail: bool,
    /// LLaVA-OneVision video: frame pooling, bilinear (196 tokens) or average (169).
    #[arg(long, value_name = "MODE", allow_hyphen_values = true)]
    pub pooling: Option<String>,
    /// Oryx: compression ratio 1, 4 or 16 (videos default to 4; images are always 1).
    #[arg(long, value_name = "RATIO", allow_hyphen_values = true)]
    pub compression: Option<String>,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// Runs `vislaw tokens`.
pub fn run(args: Args) -> Result<()> {
    let family: Family = args.model.parse().map_err(flag_error)?;
    let size = Size::parse(&args.size).map_err(flag_error)?;
    let knobs = parse_knobs(&args)?;
    let (count, asked_frames) = if args.video {
        let request = video_request(&args, size, knobs)?;
        let asked = request.frames.map(|f| f as f64).or(request.fps.zip(request.duration_s).map(|(fps, d)| fps * d));
        (tokens::count_video(family, &request).map_err(flag_error)?, asked)
    } else {
        reject_video_flags(&args)?;
        (tokens::count_image(family, &ImageRequest { size, knobs }).map_err(flag_error)?, None)
    };
    if args.json {
        outln!("{}", serde_json::to_string(&count)?);
    } else {
        out!("{}", table(&count));
        for note in notes(&count, asked_frames) {
            outln!("note: {note}");
        }
    }
    Ok(())
}

/// What the table's numbers do not say by themselves: tokens beyond frames × tokens per
/// frame (LLaVA-OneVision's newline after the video), and a frame count other than the one
/// asked for (Qwen rounds to its temporal patch of 2 frames; families cap the frames).
fn notes(count: &TokenCount, asked_frames: Option<f64>) -> Vec<String> {
    let mut notes = Vec::new();
    if let (Some(frames), Some(per_frame), Some(video)) = (count.frames, count.tokens_per_frame, count.tokens_per_video) {
        let extra = video as f64 - frames as f64 * per_frame;
        if extra > 0.0 {
            notes.push(format!(
                "tokens per video = {frames} frames × {} tokens + {extra} extra token(s){}",
                format_per_frame(per_frame),
                if count.family == Family::LlavaOneVision { " (the newline token after the video, mm_newline_position \"one_token\")" } else { "" }
            ));
        }
        if let Some(asked) = asked_frames {
            if (asked - frames as f64).abs() >= 0.5 {
                let why = match count.family {
                    Family::Qwen2Vl | Family::Qwen25Vl => "qwen-vl-utils rounds the frame count to a multiple of its FRAME_FACTOR 2 (one temporal patch) and clamps it to [FPS_MIN_FRAMES, FPS_MAX_FRAMES]",
                    _ => "the family's own frame sampling and limits",
                };
                notes.push(format!("{asked} frames asked (fps × duration, or --frames); {frames} counted: {why}"));
            }
        }
    }
    notes
}

fn parse_knobs(args: &Args) -> Result<Knobs> {
    Ok(Knobs {
        min_pixels: parse_opt("--min-pixels", &args.min_pixels)?,
        max_pixels: parse_opt("--max-pixels", &args.max_pixels)?,
        max_tiles: parse_opt("--max-tiles", &args.max_tiles)?,
        no_thumbnail: args.no_thumbnail,
        pooling: args.pooling.as_deref().map(Pooling::from_str).transpose().map_err(flag_error)?,
        compression: args.compression.as_deref().map(Compression::from_str).transpose().map_err(flag_error)?,
    })
}

fn video_request(args: &Args, size: Size, knobs: Knobs) -> Result<VideoRequest> {
    Ok(VideoRequest {
        size,
        fps: parse_positive("--fps", &args.fps)?,
        duration_s: parse_positive("--duration", &args.duration)?,
        frames: parse_opt("--frames", &args.frames)?,
        knobs,
    })
}

fn reject_video_flags(args: &Args) -> Result<()> {
    let given = [("--fps", &args.fps), ("--duration", &args.duration), ("--frames", &args.frames)];
    match given.iter().find(|(_, value)| value.is_some()) {
        Some((flag, _)) => Err(Error::input(flag, "only applies with --video")),
        None => Ok(()),
    }
}

/// A token-counting error with every field it names written as the flag that sets it.
pub fn flag_error(e: tokens::Error) -> Error {
    match e {
        tokens::Error::Input(e) => Error::Input(e.render(flag)),
        tokens::Error::Internal(m) => Error::Internal(m),
    }
}

/// The flag of `vislaw tokens` that sets `field`; a budget target's own fields (never set here)
/// keep their names.
fn flag(field: Field) -> &'static str {
    match field {
        Field::Family => "--model",
        Field::Size => "--size",
        Field::Fps => "--fps",
        Field::Duration => "--duration",
        Field::Frames => "--frames",
        Field::MinPixels => "--min-pixels",
        Field::MaxPixels => "--max-pixels",
        Field::MaxTiles => "--max-tiles",
        Field::NoThumbnail => "--no-thumbnail",
        Field::Pooling => "--pooling",
        Field::Compression => "--compression",
        Field::Budget | Field::TokensPerFrame => field.name(),
    }
}

/// Parses a whole number, naming the flag on failure.
fn parse_opt<T: FromStr>(flag: &str, value: &Option<String>) -> Result<Option<T>> {
    value.as_deref().map(|text| text.trim().parse::<T>().map_err(|_| Error::input(flag, format!("expected a positive whole number, got '{text}'")))).transpose()
}

/// Parses a positive finite number, naming the flag on failure.
fn parse_positive(flag: &str, value: &Option<String>) -> Result<Option<f64>> {
    value
        .as_deref()
        .map(|text| match text.trim().parse::<f64>() {
            Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
            _ => Err(Error::input(flag, format!("expected a positive number, got '{text}'"))),
        })
        .transpose()
}

/// The human-readable table: one labelled row per field the family filled in.
fn table(count: &TokenCount) -> String {
    let mut rows: Vec<(&str, String)> = vec![
        ("model", count.family.to_string()),
        ("input", format!("{:?} {}x{}", count.media, count.width, count.height).to_lowercase()),
        ("resized (WxH)", format!("{}x{}", count.resized_width, count.resized_height)),
        ("grid (cols x rows)", format!("{}x{}", count.grid_cols, count.grid_rows)),
    ];
    let mut push = |label, value: Option<String>| {
        if let Some(v) = value {
            rows.push((label, v));
        }
    };
    push("tiles", count.tiles.map(|t| t.to_string()));
    push("thumbnail", count.thumbnail.map(|t| if t { "yes" } else { "no" }.to_string()));
    push("low-res view (WxH)", pair(count.lowres_width, count.lowres_height));
    push("unpadded map (cols x rows)", pair(count.unpadded_cols, count.unpadded_rows));
    push("feature map (cols x rows)", pair(count.feature_cols, count.feature_rows));
    push("pooling", count.pooling.map(|p| p.name().to_string()));
    push("compression", count.compression.map(|c| format!("{}x", c.ratio())));
    push("frames", count.frames.map(|f| f.to_string()));
    push("tokens per image", count.tokens_per_image.map(|t| t.to_string()));
    push("tokens per 2-frame group", count.tokens_per_group.map(|t| t.to_string()));
    push("tokens per frame", count.tokens_per_frame.map(format_per_frame));
    push("tokens per video", count.tokens_per_video.map(|t| t.to_string()));
    if count.special_tokens > 0 {
        rows.push(("template tokens (not counted)", count.special_tokens.to_string()));
    }
    rows.push(("tokens", count.tokens.to_string()));
    let width = rows.iter().map(|(label, _)| label.len()).max().unwrap_or(0);
    rows.iter().map(|(label, value)| format!("{label:<width$}  {value}\n")).collect()
}

fn pair(a: Option<u32>, b: Option<u32>) -> Option<String> {
    Some(format!("{}x{}", a?, b?))
}

fn format_per_frame(tokens: f64) -> String {
    if tokens.fract() == 0.0 {
        format!("{tokens:.0}")
    } else {
        format!("{tokens:.1}")
    }
}
