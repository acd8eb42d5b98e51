//! Held-out evaluation: language-modelling loss on the correct answers, and multiple-choice
//! accuracy by likelihood ranking of the options, with standard errors clustered by video.
use crate::features::Question;
use crate::model::VisionLm;
use crate::train::{text_batch, IGNORE};
use std::collections::BTreeMap;
use tch::{Device, Kind, Tensor};

/// Accuracy and loss of one question family.
#[derive(Debug, Clone, PartialEq)]
pub struct FamilyScore {
    /// Fraction answered correctly.
    pub accuracy: f64,
    /// Standard error of `accuracy`, clustered by video.
    pub accuracy_se: f64,
    /// Mean answer loss (nats per answer token).
    pub loss: f64,
    /// Questions in the family.
    pub n: usize,
}

/// Held-out metrics of one model.
#[derive(Debug, Clone, PartialEq)]
pub struct EvalResult {
    /// Mean over questions of the per-token loss of the correct answer.
    pub loss: f64,
    /// Standard error of `loss`, clustered by video.
    pub loss_se: f64,
    /// Overall accuracy.
    pub accuracy: f64,
    /// Standard error of `accuracy`, clustered by video.
    pub accuracy_se: f64,
    /// Per-family scores, by family name.
    pub families: BTreeMap<String, FamilyScore>,
    /// Questions evaluated.
    pub questions: usize,
    /// Distinct videos evaluated.
    pub videos: usize,
}

/// Per-question outcome: loss of the correct answer and whether it ranked first.
#[derive(Debug, Clone, Copy)]
struct Scored {
    loss: f64,
    correct: bool,
}

/// Evaluates `model` on `questions` about `features` (`[N, V, D]`, or `None` for blind).
pub fn evaluate(model: &VisionLm, features: Option<&Tensor>, questions: &[Question], batch: usize, device: Device) -> EvalResult {
    let _guard = tch::no_grad_guard();
    let mut scored = Vec::with_capacity(questions.len());
    for chunk in questions.chunks(batch.max(1)) {
        scored.extend(score_chunk(model, features, chunk, device));
    }
    summarise(questions, &scored)
}

/// Scores every option of every question in a chunk in one forward pass.
fn score_chunk(model: &VisionLm, features: Option<&Tensor>, chunk: &[Question], device: Device) -> Vec<Scored> {
    let rows: Vec<(usize, usize)> = chunk.iter().enumerate().flat_map(|(qi, q)| (0..q.options.len()).map(move |o| (qi, o))).collect();
    let pairs: Vec<(&[i64], &[i64])> = rows.iter().map(|&(qi, o)| (chunk[qi].prompt.as_slice(), chunk[qi].options[o].as_slice())).collect();
    let text = text_batch(&pairs, device);
    let visual = features.map(|f| {
        let videos: Vec<i64> = rows.iter().map(|&(qi, _)| chunk[qi].video as i64).collect();
        f.index_select(0, &Tensor::from_slice(&videos).to(f.device()))
    });
    let logits = model.forward(visual.as_ref(), &text.input);
    let (sum_logp, tokens) = sequence_log_likelihood(&logits, &text.target);
    let mut out = Vec::with_capacity(chunk.len());
    let mut row = 0;
    for q in chunk {
        let k = q.options.len();
        let logp = &sum_logp[row..row + k];
        let best = (0..k).fold(0, |b, i| if logp[i] > logp[b] { i } else { b });
        out.push(Scored { loss: -logp[q.answer] / tokens[row + q.answer], correct: best == q.answer });
        row += k;
    }
    out
}

/// Sum of answer-token log-probabilities per row, and the number of answer tokens.
fn sequence_log_likelihood(logits: &Tensor, target: &Tensor) -> (Vec<f64>, Vec<f64>) {
    let logp = logits.to_kind(Kind::Double).log_softmax(-1, Kind::Double);
    let mask = target.ne(IGNORE);
    let safe = target.where_self(&mask, &Tensor::zeros_like(target));
    let picked = logp.gather(2, &safe.unsqueeze(-1), false).squeeze_dim(-1) * mask.to_kind(Kind::Double);
    let sums = Vec::<f64>::try_from(picked.sum_dim_intlist(Some([1i64].as_slice()), false, Kind::Double).to(Device::Cpu)).expect("f64 row sums");
    let counts =
        Vec::<f64>::try_from(mask.to_kind(Kind::Double).sum_dim_intlist(Some([1i64].as_slice()), false, Kind::Double).to(Device::Cpu)).expect("f64 counts");
    (sums, counts)
}

fn summarise(questions: &[Question], scored: &[Scored]) -> EvalResult {
    let videos: Vec<usize> = questions.iter().map(|q| q.video).collect();
    let losses: Vec<f64> = scored.iter().map(|s| s.loss).collect();
    let hits: Vec<f64> = scored.iter().map(|s| s.correct as u8 as f64).collect();
    let mut families = BTreeMap::new();
    let mut names: Vec<&str> = questions.iter().map(|q| q.family.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    for name in names {
        let idx: Vec<usize> = (0..questions.len()).filter(|&i| questions[i].family == name).collect();
        let pick = |v: &[f64]| idx.iter().map(|&i| v[i]).collect::<Vec<_>>();
        let (fh, fl, fv) = (pick(&hits), pick(&losses), idx.iter().map(|&i| videos[i]).collect::<Vec<_>>());
        families.insert(name.to_string(), FamilyScore { accuracy: mean(&fh), accuracy_se: clustered_se(&fh, &fv), loss: mean(&fl), n: idx.len() });
    }
    let mut distinct = videos.clone();
    distinct.sort_unstable();
    distinct.dedup();
    EvalResult {
        loss: mean(&losses),
        loss_se: clustered_se(&losses, &videos),
        accuracy: mean(&hits),
        accuracy_se: clustered_se(&hits, &videos),
        families,
        questions: questions.len(),
        videos: distinct.len(),
    }
}

fn mean(v: &[f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.iter().sum::<f64>() / v.len() as f64
}

/// Cluster-robust standard error of a mean: SE² = G/(G−1) · Σ_g (Σ_{i∈g} (x_i − x̄))² / n².
pub fn clustered_se(values: &[f64], clusters: &[usize]) -> f64 {
    let n = values.len();
    if n < 2 {
        return f64::NAN;
    }
    let m = mean(values);
    let mut sums: BTreeMap<usize, f64> = BTreeMap::new();
    for (&x, &c) in values.iter().zip(clusters) {
        *sums.entry(c).or_insert(0.0) += x - m;
    }
    let g = sums.len() as f64;
    if g < 2.0 {
        return f64::NAN;
    }
    let ss: f64 = sums.values().map(|s| s * s).sum();
    (g / (g - 1.0) * ss).sqrt() / n as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clustered_se_equals_the_plain_se_with_singleton_clusters() {
        let x = [1.0, 0.0, 1.0, 1.0, 0.0, 1.0];
        let se = clustered_se(&x, &[0, 1, 2, 3, 4, 5]);
        let m = 4.0 / 6.0;
        let var = x.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / 5.0;
        assert!((se - (var / 6.0f64).sqrt()).abs() < 1e-12);
    }

    #[test]
    fn clustering_correlated_answers_widens_the_se() {
        // Each video's two questions agree: the effective sample is half as big.
        let x = [1.0, 1.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0];
        let plain = clustered_se(&x, &[0, 1, 2, 3, 4, 5, 6, 7]);
        let clustered = clustered_se(&x, &[0, 0, 1, 1, 2, 2, 3, 3]);
        assert!(clustered > plain * 1.3, "{clustered} vs {plain}");
    }

    /// A model whose logits are `ln w` at every position, whatever the input: every weight
    /// zero (so the final layer norm outputs 0 and the head outputs its bias), the head's bias
    /// `ln w`. Then log p(token t) = ln w_t exactly, as Σ w = 1.
    fn constant_logit_model(w: &[f64]) -> (tch::nn::VarStore, VisionLm) {
        let cfg: crate::config::ModelConfig = serde_yaml::from_str("{projector: {hidden: 4}, lm: {layers: 1, heads: 2, width: 8, max_context: 40}}").unwrap();
        let vs = tch::nn::VarStore::new(Device::Cpu);
        let model = VisionLm::new(&vs, &cfg, 3, w.len());
        let _guard = tch::no_grad_guard();
        for (name, mut var) in vs.variables() {
            if name == "lm.head.bias" {
                let b: Vec<f32> = w.iter().map(|x| x.ln() as f32).collect();
                var.copy_(&Tensor::from_slice(&b));
            } else {
                let _ = var.zero_();
            }
        }
        (vs, model)
    }

    fn question(video: usize, family: &str, options: &[&[i64]], answer: usize) -> Question {
        Question { video, family: family.into(), prompt: vec![1, 2], options: options.iter().map(|o| o.to_vec()).collect(), answer, text: None }
    }

    #[test]
    fn evaluate_matches_a_hand_computed_case() {
        // p(token) for tokens 0..5; log-likelihood of an option = Σ ln p over its tokens.
        let w = [0.05, 0.05, 0.1, 0.2, 0.4, 0.2];
        let (_vs, model) = constant_logit_model(&w);
        let ln = |t: usize| w[t].ln();
        let questions = vec![
            // [4] (ln .4) beats [3] (ln .2): right; loss −ln .4.
            question(0, "a", &[&[4], &[3]], 0),
            // [2] (ln .1 = −2.303) beats [3, 4] (ln .08 = −2.526): ranking sums, no length
            // normalisation, so the correct two-token answer loses; loss −ln .08 / 2 per token.
            question(1, "a", &[&[2], &[3, 4]], 1),
            // [4] beats [5] and [3]: right; loss −ln .4.
            question(1, "b", &[&[5], &[3], &[4]], 2),
            // [4] beats [5]: the correct [5] loses; loss −ln .2.
            question(2, "b", &[&[4], &[5]], 1),
        ];
        let losses = [-ln(4), -(ln(3) + ln(4)) / 2.0, -ln(4), -ln(5)];
        // Logits are f32 (ln w rounded to ~6e-8 relative), summed in f64: 1e-6 is ample.
        let tol = 1e-6;
        for batch in [1, 3, 16] {
            for features in [None, Some(Tensor::randn([3, 2, 3], (Kind::Float, Device::Cpu)))] {
                let r = evaluate(&model, features.as_ref(), &questions, batch, Device::Cpu);
                assert_eq!((r.questions, r.videos), (4, 3));
                assert_eq!(r.accuracy, 0.5, "right: questions 0 and 2");
                // Hits [1, 0, 1, 0] in videos [0, 1, 1, 2]: cluster sums of (x − ½) are ½, 0, −½,
                // so SE² = 3/2 · (¼ + 0 + ¼) / 4² and SE = √0.75 / 4.
                assert!((r.accuracy_se - 0.75f64.sqrt() / 4.0).abs() < 1e-12, "{}", r.accuracy_se);
                let mean_loss = losses.iter().sum::<f64>() / 4.0;
                assert!((r.loss - mean_loss).abs() < tol, "{} vs {mean_loss}", r.loss);
                let a = &r.families["a"];
                assert_eq!((a.n, a.accuracy), (2, 0.5));
                assert!((a.loss - (losses[0] + losses[1]) / 2.0).abs() < tol, "{}", a.loss);
                let b = &r.families["b"];
                assert_eq!((b.n, b.accuracy), (2, 0.5));
                assert!((b.loss - (losses[2] + losses[3]) / 2.0).abs() < tol, "{}", b.loss);
                assert_eq!(r.families.len(), 2);
            }
        }
    }

    #[test]
    fn likelihood_ranking_picks_the_most_likely_option() {
        // Logits favouring token 3 at the answer position.
        let mut l = vec![0f32; 2 * 2 * 5];
        l[5 + 3] = 5.0; // row 0, position 1, token 3
        l[20 / 2 + 5 + 3] = 5.0; // row 1, position 1, token 3
        let logits = Tensor::from_slice(&l).reshape([2, 2, 5]);
        let target = Tensor::from_slice(&[IGNORE, 3, IGNORE, 4]).reshape([2, 2]);
        let (s, n) = sequence_log_likelihood(&logits, &target);
        assert_eq!(n, vec![1.0, 1.0]);
        assert!(s[0] > s[1]);
    }
}
