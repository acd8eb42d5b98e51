//! LoRA and the frozen LM on a tiny random Qwen2 built at test time: at initialisation the
//! adapters change nothing (bitwise); training them leaves the base weights bitwise
//! unchanged; a frozen LM holds no gradients yet passes them to its input embeddings.
mod lm_common;

use lm_common::{fixture, IDS};
use std::path::Path;
use tch::nn::OptimizerConfig;
use tch::{nn, Device, Kind, Tensor};
use vislaw::hf::Precision;
use vislaw::lm::{HfLm, LoraConfig, Weights};

fn lm(weights: Weights) -> HfLm {
    let dir = fixture(Path::new(env!("CARGO_TARGET_TMPDIR")), "qwen2", 1);
    HfLm::load(&dir, Device::Cpu, Precision::F32, weights).unwrap()
}

fn ids() -> Tensor {
    Tensor::from_slice(IDS[0]).view([1, -1])
}

fn next_token_loss(lm: &HfLm, train: bool) -> Tensor {
    let ids = ids();
    let n = ids.size()[1];
    let logits = lm.decoder.forward_ids(&ids, None, train);
    logits.narrow(1, 0, n - 1).reshape([n - 1, -1]).cross_entropy_for_logits(&ids.narrow(1, 1, n - 1).reshape([n - 1]))
}

fn snapshot(vs: &nn::VarStore) -> Vec<(String, Tensor)> {
    let mut v: Vec<_> = vs.variables().into_iter().map(|(k, t)| (k, t.detach().copy())).collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

const ALL: [&str; 7] = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"];

#[test]
fn lora_at_initialisation_gives_the_base_logits_bitwise() {
    let mut lm = lm(Weights::Frozen);
    let base = tch::no_grad(|| lm.decoder.forward_ids(&ids(), None, false));
    let lora_vs = nn::VarStore::new(Device::Cpu);
    tch::manual_seed(7);
    let n = lm.decoder.add_lora(&lora_vs.root(), &LoraConfig::new(4, 8.0, 0.1, &ALL).unwrap()).unwrap();
    assert_eq!(n, 7 * 2, "every target in both layers");
    assert_eq!(lora_vs.trainable_variables().len(), 2 * n);
    for train in [false, true] {
        let with = tch::no_grad(|| lm.decoder.forward_ids(&ids(), None, train));
        assert!(with.equal(&base), "train={train}: LoRA at init changed the logits");
    }
    // The adapters are live: a nonzero B changes the logits.
    let b = lora_vs.variables()["layers.0.v_proj.lora_b"].shallow_clone();
    let _ = tch::no_grad(|| b.shallow_clone().fill_(0.1));
    let moved = tch::no_grad(|| lm.decoder.forward_ids(&ids(), None, false));
    assert!(!moved.equal(&base));
}

#[test]
fn training_lora_only_leaves_the_base_weights_bitwise_unchanged() {
    let mut lm = lm(Weights::Frozen);
    let before = snapshot(&lm.vs);
    let lora_vs = nn::VarStore::new(Device::Cpu);
    tch::manual_seed(3);
    lm.decoder.add_lora(&lora_vs.root(), &LoraConfig::new(2, 4.0, 0.0, &["q_proj", "v_proj", "down_proj"]).unwrap()).unwrap();
    let mut opt = nn::Adam::default().build(&lora_vs, 1e-2).unwrap();
    let first = next_token_loss(&lm, true).double_value(&[]);
    for _ in 0..10 {
        let loss = next_token_loss(&lm, true);
        opt.backward_step(&loss);
    }
    let last = next_token_loss(&lm, false).double_value(&[]);
    assert!(last < first, "LoRA training lowers the loss: {first} → {last}");
    for ((name, old), (_, now)) in before.iter().zip(snapshot(&lm.vs)) {
        assert!(old.equal(&now), "base weight {name} changed");
    }
    let b = &lora_vs.variables()["layers.1.down_proj.lora_b"];
    assert!(b.abs().sum(Kind::Float).double_value(&[]) > 0.0, "B trained");
}

#[test]
fn a_frozen_lm_holds_no_gradients_but_passes_them_to_its_inputs() {
    let lm = lm(Weights::Frozen);
    assert!(lm.vs.trainable_variables().is_empty());
    let embeds = lm.decoder.embed(&ids()).detach().set_requires_grad(true);
    let hidden = lm.decoder.forward_embeds(&embeds, None, true);
    lm.decoder.logits(&hidden).log_softmax(-1, Kind::Float).select(-1, 5).sum(Kind::Float).backward();
    let g = embeds.grad();
    assert!(g.defined() && g.abs().sum(Kind::Float).double_value(&[]) > 0.0, "gradient reaches the input embeddings");
    for (name, t) in lm.vs.variables() {
        assert!(!t.requires_grad() && !t.grad().defined(), "{name} holds a gradient");
    }
}

#[test]
fn a_trainable_lm_registers_every_weight_for_the_optimizer() {
    let lm = lm(Weights::Trainable);
    let vars = lm.vs.variables();
    assert_eq!(lm.vs.trainable_variables().len(), vars.len());
    assert!(vars.values().all(Tensor::requires_grad));
    assert!(vars.contains_key("model.layers.1.self_attn.q_proj.bias"), "HF keys: {:?}", vars.keys().take(3).collect::<Vec<_>>());
}
