//! The shared state of a sweep's points ([`Context`]): both splits' features on the device,
//! the text-only QA prior of the built-in LM (trained once per sweep, under a claim) and the
//! blind baseline (the same training as a point with no visual tokens), and the model of
//! each point initialised from the prior.
use crate::config::Config;
use crate::error::Result;
use crate::eval::EvalResult;
use crate::features::{FeatureSource, Split, SplitData};
use crate::lock::Claim;
use crate::model::{device_name, VisionLm};
use crate::results::{self, PointRow};
use crate::rundir::RunDir;
use crate::sweep;
use crate::sweep::events::{BaselineDone, SweepEvents};
use crate::train;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Instant;
use tch::{nn, Device};
/// Shared state of a sweep: encoded features of both splits and the warm-start checkpoint.
pub(crate) struct Context {
    pub(crate) train: SplitData,
    pub(crate) eval: SplitData,
    /// The reduced features of both splits, per point (`Store::reduced`).
    pub(crate) store: crate::features::stream::Store,
    pub(crate) vocab: usize,
    pub(crate) prior: PathBuf,
    /// Held while the warm start trains: concurrent shards wait for it, then reuse it.
    pub(crate) prior_claim: PathBuf,
    pub(crate) device: Device,
    pub(crate) haystacks: Option<crate::niah::Haystacks>,
    /// The feature source's content fingerprint, with an HF LM's checkpoint's (in every key).
    pub(crate) fingerprint: Option<String>,
    /// An HF LM's template prefix, tokenised (`None`: the built-in LM).
    pub(crate) hf_prefix: Option<Vec<i64>>,
    /// The LM's label on the LM axis (`None`: the sweep's one LM).
    pub(crate) lm: Option<String>,
    /// The LM's blind-baseline file (`RunDir::blind`).
    pub(crate) blind: PathBuf,
}

impl Context {
    /// The shared state of the single-LM config `cfg` (labelled `lm` on the LM axis): data
    /// loaded, the LM's prior and blind baseline trained unless current.
    pub(crate) fn prepare(cfg: &Config, lm: Option<&str>, source: &dyn FeatureSource, dir: &Path, device: Device, events: &dyn SweepEvents) -> Result<Context> {
        let started = Instant::now();
        let cache = crate::features::cache::ReducedCache::new(RunDir::new(dir).reduced_cache());
        let store = crate::features::stream::Store::open(source, &[Split::Train, Split::evaluated(cfg)], Some(cache), device)?;
        let (mut train, mut eval) = (store.split(Split::Train)?, store.split(Split::evaluated(cfg))?);
        let mut haystacks = match &cfg.niah {
            Some(n) => Some(crate::niah::Haystacks::build(cfg, n, device)?),
            None => None,
        };
        // An HF LM reads the questions in its own tokens, after the template's prefix.
        let hf_prefix = match cfg.model.lm.hf_dir() {
            None => None,
            Some(lm_dir) => {
                let text = crate::sweep::hf::HfText::open(cfg, lm_dir)?;
                let cells = haystacks.iter_mut().flat_map(|h| h.cells.iter_mut().map(|c| &mut c.2));
                for split in [&mut train, &mut eval].into_iter().chain(cells) {
                    split.questions = text.questions(&split.questions)?;
                }
                Some(text.prefix)
            }
        };
        events.data_ready(&source.describe(), started.elapsed().as_secs_f64());
        let fingerprint = crate::sweep::hf::key_fingerprint(cfg, source)?;
        let key = prior_key(cfg, fingerprint.as_deref());
        let (prior, prior_claim) = (RunDir::new(dir).prior(&key), RunDir::new(dir).prior_claim(&key));
        let (vocab, blind) = (source.vocab_size(), RunDir::new(dir).blind(lm));
        let ctx = Context { train, eval, store, vocab, prior, prior_claim, device, haystacks, fingerprint, hf_prefix, lm: lm.map(str::to_string), blind };
        ctx.ensure_prior(cfg, events)?;
        Ok(ctx)
    }

    /// Trains the text-only QA prior once, then the blind baseline: the same training as a
    /// point (steps, schedule, trainable parts) from the prior, with no visual tokens. An HF
    /// LM has no text-only prior (the checkpoint is one); with it frozen, nothing trains
    /// without visual tokens, so its blind baseline is the zero-shot score.
    fn ensure_prior(&self, cfg: &Config, events: &dyn SweepEvents) -> Result<()> {
        let hf = self.hf_prefix.is_some();
        let current = || (hf || self.prior.exists()) && blind_is_current(cfg, self.fingerprint.as_deref(), &self.blind);
        if current() {
            return Ok(());
        }
        let _claim = Claim::wait_take(&self.prior_claim)?;
        if current() {
            return Ok(());
        }
        let started = Instant::now();
        if !hf {
            train::train_prior(&cfg.model, &cfg.train, cfg.data.dim, self.vocab, &self.train.questions, self.device, &self.prior)?;
        }
        let (model, mut vs) = self.model_from_prior(cfg, 0)?;
        train::apply_trainable(&mut vs, &cfg.train.trainable);
        let lm_trains = cfg.train.trainable.iter().any(|t| *t != crate::config::Trainable::Projector);
        let outcome = if hf && !lm_trains {
            train::TrainOutcome { curve: Vec::new(), samples: 0, seconds: 0.0 }
        } else {
            train::train(&model, &vs, &cfg.train, None, &self.train.questions, 0, cfg.train.steps, &mut |_| {})?
        };
        let blind = crate::eval::evaluate(&model, None, &self.eval.questions, cfg.train.eval_batch, self.device);
        events.baseline_done(&BaselineDone {
            prior_steps: if hf { 0 } else { cfg.train.prior_steps },
            steps: if outcome.samples == 0 { 0 } else { cfg.train.steps },
            seconds: started.elapsed().as_secs_f64(),
            eval: blind.clone(),
        });
        let row = PointRow { lm: self.lm.clone(), ..blind_row(cfg, self.fingerprint.as_deref(), blind, &outcome, device_name(self.device)) };
        results::write_parquet(&self.blind, &mut row.to_frame()?)
    }

    /// Text tokens per sample beside the visual ones: an HF LM's template prefix and the
    /// mean question + answer (the cost models' `text_tokens`).
    pub(crate) fn text_tokens(&self) -> f64 {
        let q = &self.train.questions;
        let text = q.iter().map(|q| (q.prompt.len() + q.target().len() - 1) as f64).sum::<f64>() / q.len() as f64;
        self.hf_prefix.as_ref().map_or(0, Vec::len) as f64 + text
    }

    /// A handle on the same data for another worker thread (tensors are shared, not copied).
    pub(crate) fn share(&self) -> Context {
        Context {
            train: self.train.share(),
            eval: self.eval.share(),
            store: self.store.clone(),
            vocab: self.vocab,
            prior: self.prior.clone(),
            prior_claim: self.prior_claim.clone(),
            device: self.device,
            haystacks: self.haystacks.as_ref().map(|h| h.share()),
            fingerprint: self.fingerprint.clone(),
            hf_prefix: self.hf_prefix.clone(),
            lm: self.lm.clone(),
            blind: self.blind.clone(),
        }
    }

    fn model_from_prior(&self, cfg: &Config, seed: u64) -> Result<(VisionLm, nn::VarStore)> {
        self.model_for(cfg, seed, None)
    }

    /// The model of a point (with its learned reducer, if any), LM from the prior (or the
    /// HF checkpoint).
    pub(crate) fn model_for(&self, cfg: &Config, seed: u64, reducer: Option<&crate::reduction::learned::LearnedSpec>) -> Result<(VisionLm, nn::VarStore)> {
        // libtorch's generator is global: seeding and initialising must not interleave
        // between workers, or a point's weights would depend on its neighbours.
        static INIT: Mutex<()> = Mutex::new(());
        let _init = INIT.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        tch::manual_seed(seed as i64);
        let mut vs = nn::VarStore::new(self.device);
        if let Some(prefix) = &self.hf_prefix {
            let model = VisionLm::hf(&vs, &cfg.model, &cfg.train, cfg.data.dim, reducer, prefix)?;
            return Ok((model, vs));
        }
        let model = VisionLm::with_reducer(&vs, &cfg.model, cfg.data.dim, self.vocab, reducer);
        train::load_lm(&mut vs, &self.prior)?;
        Ok((model, vs))
    }
}

fn blind_key(cfg: &Config, fingerprint: Option<&str>) -> String {
    format!("blind-{}{}", prior_key(cfg, fingerprint), crate::results::split_label(cfg).map_or(String::new(), |s| format!("-{s}")))
}

/// Whether `file` holds this config's blind baseline (its key, not just a file).
pub(crate) fn blind_is_current(cfg: &Config, fingerprint: Option<&str>, file: &Path) -> bool {
    let Ok(df) = results::read_parquet(file) else { return false };
    df.column("key").ok().and_then(|c| c.str().ok()?.get(0).map(|k| k == blind_key(cfg, fingerprint))).unwrap_or(false)
}

fn blind_row(cfg: &Config, fingerprint: Option<&str>, eval: EvalResult, outcome: &train::TrainOutcome, device: String) -> PointRow {
    PointRow {
        key: blind_key(cfg, fingerprint),
        run: cfg.name.clone(),
        spatial: "none".into(),
        temporal: "none".into(),
        frames: 0,
        tokens_per_frame: 0,
        seed: 0,
        trainable: cfg.train.trainable_label(),
        steps: cfg.train.steps,
        train_loss_final: outcome.curve.last().map_or(f64::NAN, |c| c.loss),
        eval,
        wall_s: outcome.seconds,
        samples_per_s: outcome.samples as f64 / outcome.seconds.max(1e-9),
        tokens_per_s: f64::NAN,
        device,
        curve: outcome.curve.clone(),
        split: crate::results::split_label(cfg),
        cost: None,
        lm: None,
    }
}

/// The prior depends on the data (its config and, for files, its content fingerprint), the
/// model shape and the training settings, not on points.
fn prior_key(cfg: &Config, fingerprint: Option<&str>) -> String {
    let mut material = serde_json::json!({"protocol": sweep::PROTOCOL_VERSION, "data": cfg.data, "model": cfg.model, "train": cfg.train});
    if let Some(f) = fingerprint {
        material["source"] = f.into();
    }
    blake3::hash(material.to_string().as_bytes()).to_hex()[..16].to_string()
}
