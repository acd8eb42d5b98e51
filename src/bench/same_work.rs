//! The checks that both sides of a benchmark do the same work: vislaw writes the initial
//! weights and the batch of the training benchmark, benches/train_torch.py loads them and
//! runs the same steps, and the losses of the two must agree (tests/bench_same_work.rs); the
//! fit side's agreement on parameters uses [`crate::bench::fit`] directly.
use crate::bench::train::{optimizer, TARGET, TEXT};
use crate::config::Config;
use crate::features::synthetic::vocab;
use crate::model::VisionLm;
use crate::{Error, Result};
use std::path::Path;
use tch::nn;
use tch::{Device, Kind, Tensor};

/// The name under which the fixture stores the batch's visual features `[B, V, D]`.
pub const FEATS: &str = "input.feats";
/// The name of the batch's text tokens `[B, 3]`.
pub const TEXT_NAME: &str = "input.text";
/// The name of the batch's targets `[B, 3]` (−100: no target).
pub const TARGET_NAME: &str = "input.target";

/// Builds the training benchmark's model and batch from `seed` (the config's model and
/// batch, `visual` visual tokens), writes the initial weights (vislaw's variable names) and the
/// batch to `path` as safetensors, then runs `steps` steps of the benchmark's training step
/// (the same as [`crate::bench::train::train_rate`] times) and returns the loss before each.
pub fn write_train_fixture(cfg: &Config, visual: usize, steps: usize, seed: i64, path: &Path) -> Result<Vec<f64>> {
    tch::manual_seed(seed);
    let vs = nn::VarStore::new(Device::Cpu);
    let model = VisionLm::new(&vs, &cfg.model, cfg.data.dim, vocab::SIZE);
    let b = cfg.train.batch as i64;
    let feats = Tensor::randn([b, visual as i64, cfg.data.dim as i64], (Kind::Float, Device::Cpu));
    let text = Tensor::from_slice(&TEXT).repeat([b, 1]);
    let target = Tensor::from_slice(&TARGET).repeat([b, 1]);
    let mut named: Vec<(String, Tensor)> = vs.variables().into_iter().map(|(n, t)| (n, t.detach().copy())).collect();
    named.extend([
        (FEATS.to_string(), feats.shallow_clone()),
        (TEXT_NAME.to_string(), text.shallow_clone()),
        (TARGET_NAME.to_string(), target.shallow_clone()),
    ]);
    named.sort_by(|a, b| a.0.cmp(&b.0));
    crate::io::write_atomic_via_path(path, |tmp| {
        Tensor::write_safetensors(&named, tmp).map_err(|e| Error::internal(format!("{}: cannot write: {e}", path.display())))
    })?;
    let mut opt = optimizer(cfg, &vs)?;
    let mut losses = Vec::with_capacity(steps);
    for _ in 0..steps {
        let loss = crate::train::answer_loss(&model.forward(Some(&feats), &text), &target);
        losses.push(loss.double_value(&[]));
        opt.backward_step_clip_norm(&loss, 1.0);
    }
    Ok(losses)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fixture_holds_every_variable_and_the_batch_and_the_losses_repeat() {
        let cfg: Config = crate::sweep::load(Path::new("configs/quick.yaml")).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("init.safetensors");
        let a = write_train_fixture(&cfg, 8, 3, 0, &path).unwrap();
        let saved = Tensor::read_safetensors(&path).unwrap();
        let names: Vec<&str> = saved.iter().map(|(n, _)| n.as_str()).collect();
        for n in [FEATS, TEXT_NAME, TARGET_NAME, "projector.fc1.weight", "lm.tokens.weight", "lm.blocks.0.qkv.weight", "lm.head.bias"] {
            assert!(names.contains(&n), "{n} missing from {names:?}");
        }
        // Same seed, same losses, bit for bit; the steps change the loss.
        let b = write_train_fixture(&cfg, 8, 3, 0, &path).unwrap();
        assert_eq!(a, b);
        assert!(a[2] != a[0], "{a:?}");
    }
}
