//! Parity of `vislaw::lm` with `transformers` on tiny random checkpoints built at test time
//! (weights of std 0.25, so that rotary-layout and head-grouping mistakes show): logits for
//! the same ids within 1e-4 absolute on the real positions of a right-padded batch, for a
//! Qwen2 with grouped-query attention, a tied Llama and a sharded save; the loss of a text
//! through the checkpoint's tokenizer.
mod lm_common;

use lm_common::{fixture, max_diff_on_real, reference, reference_loss, IDS, TEXT};
use std::path::Path;
use tch::Device;
use vislaw::hf::Precision;
use vislaw::lm::{score, HfLm, TextTokenizer, Weights};

/// Absolute tolerance on logits (f32; measured: 0, the same libtorch kernels in the same order).
const TOL: f64 = 1e-4;

fn root() -> &'static Path {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
}

fn seqs() -> Vec<Vec<i64>> {
    IDS.iter().map(|s| s.to_vec()).collect()
}

fn check_logits(arch: &str, seed: u64) -> HfLm {
    let dir = fixture(root(), arch, seed);
    let lm = HfLm::load(&dir, Device::Cpu, Precision::F32, Weights::Frozen).unwrap();
    let (logits, mask) = score::batch_logits(&lm.decoder, &seqs()).unwrap();
    let (want, want_mask) = reference(&dir);
    assert!(mask.equal(&want_mask), "the same padding mask");
    let diff = max_diff_on_real(&logits, &want, &mask);
    eprintln!("{arch}: max |logit − transformers| on real positions = {diff:e}");
    assert!(diff < TOL, "{arch}: max |Δlogit| = {diff:e} over {TOL:e}");
    // The logits are far from trivial: a mistake would have room to show.
    assert!(want.std(true).double_value(&[]) > 0.5);
    lm
}

#[test]
fn qwen2_with_grouped_query_attention_matches_transformers_on_a_padded_batch() {
    let lm = check_logits("qwen2", 1);
    let c = lm.config();
    assert_eq!((c.num_attention_heads, c.num_key_value_heads, c.qkv_bias, c.tie_word_embeddings), (4, 2, true, false));
    assert!(lm.decoder.lm_head.is_some());
}

#[test]
fn tied_llama_matches_transformers() {
    let lm = check_logits("llama_tied", 2);
    let dir = fixture(root(), "llama_tied", 2);
    let ck = vislaw::hf::Checkpoint::open(&dir).unwrap();
    assert!(!ck.contains("lm_head.weight") && lm.decoder.lm_head.is_none(), "the head is the embedding");
    assert_eq!((lm.config().head_dim, lm.config().num_key_value_heads), (16, 1), "explicit head_dim ≠ hidden/heads");
}

#[test]
fn sharded_checkpoint_matches_transformers() {
    check_logits("qwen2_sharded", 3);
    let dir = fixture(root(), "qwen2_sharded", 3);
    let shards = std::fs::read_dir(&dir).unwrap().filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().ends_with(".safetensors")).count();
    assert!(dir.join("model.safetensors.index.json").exists() && shards > 2, "{shards} files");
}

#[test]
fn text_loss_through_the_tokenizer_matches_transformers() {
    let dir = fixture(root(), "qwen2", 1);
    let lm = HfLm::load(&dir, Device::Cpu, Precision::F32, Weights::Frozen).unwrap();
    let ids = TextTokenizer::open(&dir).unwrap().encode(TEXT, true).unwrap();
    let (tokens, want) = reference_loss(&dir);
    assert_eq!(ids.len(), tokens);
    let loss = score::mean_nll(&lm.decoder, &ids).unwrap();
    assert!((loss - want).abs() < TOL, "loss {loss} vs transformers {want}");
}

#[test]
fn parameter_count_is_the_checkpoints() {
    for (arch, seed) in [("qwen2", 1), ("llama_tied", 2)] {
        let dir = fixture(root(), arch, seed);
        let lm = HfLm::load(&dir, Device::Cpu, Precision::F32, Weights::Frozen).unwrap();
        let ck = vislaw::hf::Checkpoint::open(&dir).unwrap();
        let stored: i64 = ck.names().map(|n| ck.shape(n).unwrap().iter().product::<i64>()).sum();
        let in_vs: i64 = lm.vs.variables().values().map(|t| t.numel() as i64).sum();
        assert_eq!((lm.config().parameter_count(), in_vs), (stored, stored), "{arch}");
    }
}
