//! What the parity commands compute: the logits of a right-padded batch of id sequences,
//! and the mean next-token negative log-likelihood of one sequence.
use super::llama::{check_ids, Decoder};
use crate::error::{Error, Result};
use tch::{Kind, Tensor};

/// Right-pads `seqs` with id 0 into `[B, n]` ids and a `[B, n]` int64 mask (1 = real).
pub fn pad_batch(seqs: &[Vec<i64>]) -> Result<(Tensor, Tensor)> {
    let n = seqs.iter().map(Vec::len).max().unwrap_or(0);
    if n == 0 {
        return Err(Error::input("ids", "no token ids"));
    }
    if let Some(i) = seqs.iter().position(Vec::is_empty) {
        return Err(Error::input("ids", format!("sequence {} is empty", i + 1)));
    }
    let mut ids = Vec::with_capacity(seqs.len() * n);
    let mut mask = Vec::with_capacity(seqs.len() * n);
    for s in seqs {
        ids.extend(s.iter().copied().chain(std::iter::repeat_n(0, n - s.len())));
        mask.extend((0..n).map(|j| i64::from(j < s.len())));
    }
    let shape = [seqs.len() as i64, n as i64];
    Ok((Tensor::from_slice(&ids).view(shape), Tensor::from_slice(&mask).view(shape)))
}

/// f32 logits `[B, n, vocab]` of the right-padded batch `seqs`, with its mask `[B, n]`.
pub fn batch_logits(model: &Decoder, seqs: &[Vec<i64>]) -> Result<(Tensor, Tensor)> {
    for (i, s) in seqs.iter().enumerate() {
        check_ids(&model.config, s, &format!("ids (sequence {})", i + 1))?;
    }
    let (ids, mask) = pad_batch(seqs)?;
    let device = model.device();
    let logits = tch::no_grad(|| model.forward_ids(&ids.to_device(device), Some(&mask.to_device(device)), false));
    Ok((logits.to_kind(Kind::Float).to_device(tch::Device::Cpu), mask))
}

/// The mean negative log-likelihood of each token of `ids` after the first, given those
/// before it (the loss `transformers` reports for `labels = input_ids`), in f64.
pub fn mean_nll(model: &Decoder, ids: &[i64]) -> Result<f64> {
    if ids.len() < 2 {
        return Err(Error::input("text", format!("{} token(s): scoring needs at least 2", ids.len())));
    }
    check_ids(&model.config, ids, "text")?;
    let n = ids.len() as i64;
    let device = model.device();
    let input = Tensor::from_slice(ids).view([1, n]).to_device(device);
    let logits = tch::no_grad(|| model.forward_ids(&input, None, false)).to_kind(Kind::Float);
    let pred = logits.narrow(1, 0, n - 1).reshape([n - 1, -1]);
    let target = input.narrow(1, 1, n - 1).reshape([n - 1]);
    let nll = pred.cross_entropy_for_logits(&target);
    Ok(nll.double_value(&[]))
}
