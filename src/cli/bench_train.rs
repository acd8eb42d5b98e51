//! `vislaw bench-train`: training throughput at a fixed point and reducer throughput,
//! printed beside the same model and batch in PyTorch eager (benches/train_torch.py).
use std::path::PathBuf;
use std::time::Instant;
use tch::nn::{self, OptimizerConfig};
use tch::{Device, Kind, Tensor};
use vislaw::config::Config;
use vislaw::features::synthetic::vocab;
use vislaw::model::VisionLm;
use vislaw::reduction::{Spatial, Temporal};
use vislaw::{Error, Result};

/// Measure training samples/s and tokens/s, and reducer throughput, beside PyTorch eager.
#[derive(clap::Args)]
pub struct Args {
    /// Sweep file whose model and batch are measured.
    #[arg(long, default_value = "configs/quick.yaml")]
    config: PathBuf,
    /// Frames T of the measured point (default: the quick sweep's largest, T = 2, M = 16).
    #[arg(long, default_value_t = 2)]
    frames: usize,
    /// Tokens per frame M of the measured point.
    #[arg(long, default_value_t = 16)]
    tokens_per_frame: usize,
    /// Timed optimiser steps (after 5 untimed warm-up steps).
    #[arg(long, default_value_t = 60)]
    steps: usize,
    /// Skip the PyTorch side.
    #[arg(long)]
    skip_torch: bool,
}

/// Runs `vislaw bench-train`.
pub fn run(args: Args) -> Result<()> {
    let cfg = Config::load(&args.config)?;
    let threads = tch::get_num_threads();
    let visual = args.frames * args.tokens_per_frame;
    let room = cfg.model.lm.max_context.saturating_sub(vislaw::features::MAX_TEXT_TOKENS);
    if visual > room {
        return Err(Error::input("--frames", format!("{} frames × {} tokens = {visual} visual tokens exceed the {room} the context of {} leaves", args.frames, args.tokens_per_frame, args.config.display())));
    }
    let rate = train_rate(&cfg, visual, args.steps);
    let tokens = (visual + 3) as f64;
    println!("training: {} (B = {}, visual tokens = {visual}, D = {}, width = {}, layers = {}), {threads} threads", args.config.display(), cfg.train.batch, cfg.data.dim, cfg.model.lm.width, cfg.model.lm.layers);
    println!("  {:<16} {:>12} {:>14} {:>10}", "implementation", "samples/s", "tokens/s", "ms/step");
    print_rate("vislaw (tch)", rate, tokens, cfg.train.batch);
    let reduce_rates = reducer_rates();
    let torch = if args.skip_torch { None } else { torch_reference(&cfg, visual, args.steps, threads) };
    if let Some(t) = &torch {
        print_rate("pytorch eager", t["train_samples_per_s"].as_f64().unwrap_or(f64::NAN), tokens, cfg.train.batch);
    }
    println!("reducers: [4 videos, 32 frames, 27×27, D = 64] → T = 16 frames, M = 49 tokens");
    println!("  {:<16} {:>16} {:>16}", "strategy", "vislaw frames/s", "pytorch frames/s");
    for (name, r) in reduce_rates {
        let t = torch.as_ref().and_then(|t| t["reduce_frames_per_s"][&name].as_f64());
        println!("  {:<16} {:>16.0} {:>16}", name, r, t.map_or("—".into(), |v| format!("{v:.0}")));
    }
    Ok(())
}

fn print_rate(name: &str, samples_per_s: f64, tokens: f64, batch: usize) {
    println!("  {:<16} {:>12.1} {:>14.0} {:>10.2}", name, samples_per_s, samples_per_s * tokens, 1000.0 * batch as f64 / samples_per_s);
}

/// Samples per second of the training step (projector + LM trainable) on random data.
fn train_rate(cfg: &Config, visual: usize, steps: usize) -> f64 {
    tch::manual_seed(0);
    let vs = nn::VarStore::new(Device::Cpu);
    let model = VisionLm::new(&vs, &cfg.model, cfg.data.dim, vocab::SIZE);
    let mut opt = nn::AdamW { beta2: 0.95, ..Default::default() }.wd(cfg.train.weight_decay).build(&vs, cfg.train.lr).expect("optimizer");
    let b = cfg.train.batch as i64;
    let feats = Tensor::randn([b, visual as i64, cfg.data.dim as i64], (Kind::Float, Device::Cpu));
    let text = Tensor::from_slice(&[vocab::QUESTION[0], vocab::COLORS[0], vocab::EOS]).repeat([b, 1]);
    let target = Tensor::from_slice(&[vocab::COLORS[0], vocab::EOS, -100i64]).repeat([b, 1]);
    let mut step = || {
        let loss = vislaw::train::answer_loss(&model.forward(Some(&feats), &text), &target);
        opt.backward_step_clip_norm(&loss, 1.0);
    };
    (0..5).for_each(|_| step());
    let t = Instant::now();
    (0..steps).for_each(|_| step());
    (steps * cfg.train.batch) as f64 / t.elapsed().as_secs_f64()
}

/// Frames per second of each reduction at paper size.
fn reducer_rates() -> Vec<(String, f64)> {
    let _guard = tch::no_grad_guard();
    tch::manual_seed(0);
    let x = Tensor::randn([4, 32, 27, 27, 64], (Kind::Float, Device::Cpu));
    let mut out = Vec::new();
    for temporal in [Temporal::Sample, Temporal::Pool] {
        for spatial in [Spatial::Pool, Spatial::Sample] {
            let run = || vislaw::reduction::reduce(&x, temporal, 16, spatial, 49).sum(Kind::Float).double_value(&[]);
            run();
            let reps = 20;
            let t = Instant::now();
            (0..reps).for_each(|_| {
                run();
            });
            out.push((format!("{}/{}", spatial.name(), temporal.name()), (reps * 4 * 32) as f64 / t.elapsed().as_secs_f64()));
        }
    }
    out
}

/// Runs benches/train_torch.py with the same shapes; None (with a note) when it cannot.
fn torch_reference(cfg: &Config, visual: usize, steps: usize, threads: i32) -> Option<serde_json::Value> {
    let python = ".venv/bin/python";
    let m = &cfg.model;
    let out = std::process::Command::new(python)
        .arg("benches/train_torch.py")
        .args(["--batch", &cfg.train.batch.to_string(), "--visual", &visual.to_string(), "--dim", &cfg.data.dim.to_string()])
        .args(["--hidden", &m.projector.hidden.to_string(), "--width", &m.lm.width.to_string(), "--layers", &m.lm.layers.to_string()])
        .args(["--heads", &m.lm.heads.to_string(), "--vocab", &vocab::SIZE.to_string(), "--max-context", &m.lm.max_context.to_string()])
        .args(["--steps", &steps.to_string(), "--threads", &threads.to_string(), "--lr", &cfg.train.lr.to_string(), "--weight-decay", &cfg.train.weight_decay.to_string()])
        .output();
    match out {
        Ok(o) if o.status.success() => serde_json::from_slice(&o.stdout).map_err(|e| eprintln!("bench: cannot parse the PyTorch output: {e}")).ok(),
        Ok(o) => {
            eprintln!("bench: the PyTorch reference failed: {}", String::from_utf8_lossy(&o.stderr).lines().last().unwrap_or(""));
            None
        }
        Err(e) => {
            eprintln!("bench: cannot run {python} ({}); run `make setup` first", Error::internal(e));
            None
        }
    }
}
