//! One point of a sweep, top to bottom ([`train_point`]): reduce both splits' features to
//! the point's shape, initialise the model, train, evaluate (and the needle grid), and the
//! row it records.
use crate::config::Config;
use crate::error::{Error, Result};
use crate::eval::EvalResult;
use crate::features::Split;
use crate::features::SplitData;
use crate::model::device_name;
use crate::reduction::{per_video::PointReduction, reduce_split};
use crate::results::PointRow;
use crate::sweep::context::Context;
use crate::sweep::events::SweepEvents;
use crate::sweep::Point;
use crate::train;
use std::path::Path;
use std::time::Instant;
/// One point, top to bottom: reduce, initialise from the prior, train, evaluate.
pub(crate) fn train_point(cfg: &Config, ctx: &Context, point: &Point, events: &dyn SweepEvents, worker: usize, dir: &Path) -> Result<PointRow> {
    let started = Instant::now();
    events.point_started(worker, point);
    let reduce = |split: &SplitData| reduce_split(split, point.strategy(), point.shape.frames, point.shape.tokens_per_frame, &cfg.strategies);
    let reduction = PointReduction::new(point.strategy(), point.shape.frames, point.shape.tokens_per_frame, cfg.data.grid, &cfg.strategies);
    let train_feats = ctx.store.reduced(Split::Train, &reduction)?;
    let eval_feats = ctx.store.reduced(Split::evaluated(cfg), &reduction)?;
    let spec = crate::reduction::learned::LearnedSpec::for_point(
        point.shape.spatial,
        point.shape.frames,
        point.shape.tokens_per_frame,
        cfg.data.grid,
        &cfg.strategies,
    );
    let (model, mut vs) = ctx.model_for(cfg, point.seed, spec.as_ref())?;
    train::apply_trainable(&mut vs, &cfg.train.trainable);
    let outcome =
        train::train(&model, &vs, &cfg.train, Some(&train_feats), &ctx.train.questions, point.seed, cfg.train.steps, &mut |s| events.step(worker, s))?;
    let eval = crate::eval::evaluate(&model, Some(&eval_feats), &ctx.eval.questions, cfg.train.eval_batch, ctx.device);
    check_finite_scores(point, &eval)?;
    if let Some(h) = &ctx.haystacks {
        let scores: Vec<crate::niah::CellScore> = h
            .cells
            .iter()
            .map(|(length, depth, data)| {
                let feats = reduce(data);
                let e = crate::eval::evaluate(&model, Some(&feats), &data.questions, cfg.train.eval_batch, ctx.device);
                crate::niah::CellScore { length: *length, depth: *depth, accuracy: e.accuracy, accuracy_se: e.accuracy_se, n: e.questions }
            })
            .collect();
        let id = crate::niah::PointId {
            key: &point.key,
            strategy: point.strategy(),
            frames: point.shape.frames,
            tokens_per_frame: point.shape.tokens_per_frame,
            seed: point.seed,
        };
        crate::niah::save_point(dir, &id, &scores)?;
    }
    let text_tokens = ctx.text_tokens();
    let tokens_per_sample = point.visual_tokens() as f64 + text_tokens;
    let rate = outcome.samples as f64 / outcome.seconds.max(1e-9);
    let costs = crate::sweep::run_costs(cfg, ctx.vocab, text_tokens)?;
    // An LM of the axis: the sweep records every LM's costs in cost.json (`run`).
    if ctx.lm.is_none() {
        costs.save(dir)?;
    }
    let cost = costs.get(&point.strategy().to_string()).map(|c| c.breakdown(point.shape.frames as f64, point.shape.tokens_per_frame as f64));
    Ok(PointRow {
        key: point.key.clone(),
        run: cfg.name.clone(),
        spatial: point.shape.spatial.to_string(),
        temporal: point.shape.temporal.to_string(),
        frames: point.shape.frames,
        tokens_per_frame: point.shape.tokens_per_frame,
        seed: point.seed,
        trainable: cfg.train.trainable_label(),
        steps: cfg.train.steps,
        train_loss_final: outcome.curve.last().map_or(f64::NAN, |c| c.loss),
        eval,
        wall_s: started.elapsed().as_secs_f64(),
        samples_per_s: rate,
        tokens_per_s: rate * tokens_per_sample,
        device: device_name(ctx.device),
        curve: outcome.curve,
        split: crate::results::split_label(cfg),
        cost,
        lm: point.lm.clone(),
    })
}

/// A point whose held-out loss or accuracy is not finite fails, naming it, and is not
/// recorded (its features were checked finite on loading: training diverged).
fn check_finite_scores(point: &Point, eval: &EvalResult) -> Result<()> {
    if eval.loss.is_finite() && eval.accuracy.is_finite() {
        return Ok(());
    }
    Err(Error::Input(format!(
        "point {} ({}, T = {}, M = {}, seed {}): held-out loss {} and accuracy {} are not both finite, so the point is not recorded; its features are finite, so training diverged (try a lower train.lr)",
        point.key,
        point.strategy(),
        point.shape.frames,
        point.shape.tokens_per_frame,
        point.seed,
        eval.loss,
        eval.accuracy
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_point_with_a_nan_loss_fails_by_name() {
        let cfg: Config = serde_yaml::from_str(crate::config::tests::SMALL).unwrap();
        let point = crate::sweep::plan(&cfg, None).remove(0);
        let eval = EvalResult { loss: f64::NAN, loss_se: f64::NAN, accuracy: 0.5, accuracy_se: 0.1, families: Default::default(), questions: 4, videos: 4 };
        let msg = check_finite_scores(&point, &eval).unwrap_err().to_string();
        assert!(msg.contains(&point.key) && msg.contains("pool/sample, T = 2, M = 1, seed 0") && msg.contains("NaN"), "{msg}");
        assert!(check_finite_scores(&point, &EvalResult { loss: 1.0, ..eval }).is_ok());
    }
}
