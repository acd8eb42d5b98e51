//! Sweep points: the axes of a config expanded into concrete (T, M, strategy, seed) points,
//! each keyed by a content hash of everything that determines its numbers; and the checks
//! of a config's fields against each other that planning needs (every point reachable by
//! its strategy and within the budget and the context), before any work starts.
use crate::config::{Config, Design, Spatial, SweepConfig, Temporal};
use crate::error::{Error, Result};
use crate::reduction::Strategy;
use serde::Serialize;
use std::path::Path;

/// Bumped whenever a change alters the numbers a point produces, so old results are not reused.
pub const PROTOCOL_VERSION: u32 = 3;

/// A (T, M, strategy) combination before seeds are applied.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Shape {
    /// Frames T.
    pub frames: usize,
    /// Tokens per frame M.
    pub tokens_per_frame: usize,
    /// Spatial reducer.
    pub spatial: Spatial,
    /// Temporal reducer.
    pub temporal: Temporal,
}

impl Shape {
    /// The shape's strategy.
    pub fn strategy(&self) -> Strategy {
        Strategy { spatial: self.spatial, temporal: self.temporal }
    }
}

/// One point of the sweep: a shape, a seed and its content key.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Point {
    /// The (T, M, strategy) combination.
    #[serde(flatten)]
    pub shape: Shape,
    /// Training seed.
    pub seed: u64,
    /// Content hash of the resolved point config (hex, 16 chars).
    pub key: String,
    /// The label of the point's LM on the LM axis (`sweep.lm`; `None` without it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lm: Option<String>,
}

impl Point {
    /// Visual tokens per sample, T·M.
    pub fn visual_tokens(&self) -> usize {
        self.shape.frames * self.shape.tokens_per_frame
    }

    /// The point's strategy (`Display` gives the `spatial/temporal` label fits group by).
    pub fn strategy(&self) -> Strategy {
        self.shape.strategy()
    }
}

/// Expands the axes into the shapes a sweep trains (deduplicated, sorted): those of the
/// design within the largest budget (see [`over_budget`] for the others).
pub fn plan_shapes(s: &SweepConfig) -> Vec<Shape> {
    let max_budget = s.budgets.iter().max().copied();
    design_shapes(s).into_iter().filter(|p| max_budget.is_none_or(|b| p.frames * p.tokens_per_frame <= b)).collect()
}

/// The shapes of the design that the sweep skips: T·M over the largest budget.
pub fn over_budget(s: &SweepConfig) -> Vec<Shape> {
    let max_budget = s.budgets.iter().max().copied();
    design_shapes(s).into_iter().filter(|p| max_budget.is_some_and(|b| p.frames * p.tokens_per_frame > b)).collect()
}

/// One line on the points the budget skips, for `validate`, dry runs and the sweep's
/// warning; `None` when none is skipped.
pub fn over_budget_note(s: &SweepConfig) -> Option<String> {
    let skipped = over_budget(s);
    let max_budget = s.budgets.iter().max()?;
    let pairs: std::collections::BTreeSet<(usize, usize)> = skipped.iter().map(|p| (p.frames, p.tokens_per_frame)).collect();
    let pairs: Vec<String> = pairs.iter().map(|(t, m)| format!("{t}×{m}")).collect();
    (!skipped.is_empty()).then(|| {
        format!(
            "{} point(s) skipped, T·M over the largest budget {max_budget} (sweep.budgets): T×M = {}",
            skipped.len() * s.seeds.len() * s.lm.len().max(1),
            pairs.join(", ")
        )
    })
}

/// Every shape of the design, whatever the budgets.
fn design_shapes(s: &SweepConfig) -> Vec<Shape> {
    let mut shapes = match (s.design, &s.center) {
        (Design::Cross, Some(c)) => {
            let along_m = s
                .spatial
                .iter()
                .flat_map(|sp| s.tokens_per_frame.iter().map(move |&m| Shape { frames: c.frames, tokens_per_frame: m, spatial: *sp, temporal: c.temporal }));
            let along_t = s
                .temporal
                .iter()
                .flat_map(|tp| s.frames.iter().map(move |&t| Shape { frames: t, tokens_per_frame: c.tokens_per_frame, spatial: c.spatial, temporal: *tp }));
            along_m.chain(along_t).collect::<Vec<_>>()
        }
        _ => grid_shapes(s),
    };
    shapes.sort();
    shapes.dedup();
    shapes
}

fn grid_shapes(s: &SweepConfig) -> Vec<Shape> {
    let mut out = Vec::new();
    for sp in &s.spatial {
        for tp in &s.temporal {
            for &t in &s.frames {
                for &m in &s.tokens_per_frame {
                    out.push(Shape { frames: t, tokens_per_frame: m, spatial: *sp, temporal: *tp });
                }
            }
        }
    }
    out
}

/// All points of a validated config, with their keys, in a stable order. `fingerprint` is
/// the feature source's content fingerprint (`FeatureSource::fingerprint`: `None` for the
/// synthetic benchmark, whose config is its content).
pub fn plan(cfg: &Config, fingerprint: Option<&str>) -> Vec<Point> {
    plan_by_lm(cfg, |_| Ok(fingerprint.map(str::to_string))).expect("a fixed fingerprint cannot fail")
}

/// All points of a validated config along its LM axis (`Config::lm_axis`), LM by LM, each
/// keyed with `fingerprint` of its single-LM config (an HF LM's keys carry its checkpoint's).
/// The LM is in every key through its config (`model.lm`), so LMs never share a key.
pub fn plan_by_lm(cfg: &Config, fingerprint: impl Fn(&Config) -> Result<Option<String>>) -> Result<Vec<Point>> {
    let mut points = Vec::new();
    for (lm, c) in cfg.lm_axis() {
        let fp = fingerprint(&c)?;
        for shape in plan_shapes(&c.sweep) {
            for &seed in &c.sweep.seeds {
                let key = point_key(&c, fp.as_deref(), &shape, seed);
                points.push(Point { shape: shape.clone(), seed, key, lm: lm.clone() });
            }
        }
    }
    Ok(points)
}

/// What determines a point's numbers; its hash is the point's key. `S` is the shape:
/// the point's own, or the shape its twins share (see [`compute_key`]).
#[derive(Serialize)]
struct KeyMaterial<'a, S> {
    protocol: u32,
    data: &'a crate::config::DataConfig,
    /// The content fingerprint of a `files` source (absent for the synthetic benchmark, so
    /// its keys are unchanged).
    #[serde(skip_serializing_if = "Option::is_none")]
    source: Option<&'a str>,
    model: &'a crate::config::ModelConfig,
    train: &'a crate::config::TrainConfig,
    shape: S,
    seed: u64,
    /// Parameters of the point's strategies, only for strategies that have any (so
    /// `pool`/`sample` keys are unchanged).
    #[serde(skip_serializing_if = "Option::is_none")]
    strategy: Option<serde_json::Value>,
    /// The needle grid, when enabled (its tables are written with the point).
    #[serde(skip_serializing_if = "Option::is_none")]
    niah: Option<&'a crate::config::NiahConfig>,
    /// The split evaluated, only when not the held-out default (so existing keys are unchanged).
    #[serde(skip_serializing_if = "Option::is_none")]
    eval_split: Option<&'static str>,
}

impl<'a, S: Serialize> KeyMaterial<'a, S> {
    fn new(cfg: &'a Config, fingerprint: Option<&'a str>, shape: S, strategy: Strategy, seed: u64) -> Self {
        KeyMaterial {
            protocol: PROTOCOL_VERSION,
            data: &cfg.data,
            source: fingerprint,
            model: &cfg.model,
            train: &cfg.train,
            shape,
            seed,
            strategy: cfg.strategies.key_params(strategy.spatial, strategy.temporal),
            niah: cfg.niah.as_ref(),
            eval_split: (cfg.eval.split != crate::config::EvalSplit::HeldOut).then(|| cfg.eval.split.name()),
        }
    }
}

/// Content hash of the resolved point config: same inputs, same key, across runs and names.
pub fn point_key(cfg: &Config, fingerprint: Option<&str>, shape: &Shape, seed: u64) -> String {
    hash_key(&KeyMaterial::new(cfg, fingerprint, shape, shape.strategy(), seed))
}

/// A shape whose identity reducers are named by what they keep (`all-frames`,
/// `all-tokens`), so that twins meet and no real point collides with them.
#[derive(Serialize)]
struct TwinShape {
    frames: usize,
    tokens_per_frame: usize,
    spatial: &'static str,
    temporal: &'static str,
}

/// Key of the computation a point performs: its [`point_key`], except that reducers that
/// are the identity at the point's size count as one, so the sweep trains such twins once
/// and records the row under every strategy: temporal `sample` and `pool` at T = F (when
/// every video has all F frames), and spatial `pool`, `sample` and `bilinear` at M = g²
/// (each keeps the grid as it is, bitwise).
pub fn compute_key(cfg: &Config, fingerprint: Option<&str>, point: &Point, all_full_length: bool) -> String {
    let s = &point.shape;
    let keeps_every_frame = all_full_length && s.frames == cfg.data.frames && s.temporal.is_identity_at_full_length();
    let keeps_every_token = s.tokens_per_frame == cfg.data.grid * cfg.data.grid && s.spatial.is_identity_at_full_grid();
    if !keeps_every_frame && !keeps_every_token {
        return point.key.clone();
    }
    let shape = TwinShape {
        frames: s.frames,
        tokens_per_frame: s.tokens_per_frame,
        spatial: if keeps_every_token { "all-tokens" } else { s.spatial.name() },
        temporal: if keeps_every_frame { "all-frames" } else { s.temporal.name() },
    };
    hash_key(&KeyMaterial::new(cfg, fingerprint, shape, s.strategy(), point.seed))
}

/// The first 16 hex digits of the blake3 hash of `material`'s JSON.
fn hash_key(material: &impl Serialize) -> String {
    let json = serde_json::to_vec(material).expect("plain data serialises");
    blake3::hash(&json).to_hex()[..16].to_string()
}

/// Rough cost of one point, for `--dry-run`.
#[derive(Debug, Clone, Copy)]
pub struct Cost {
    /// Floating-point operations of training and evaluation.
    pub flops: f64,
}

/// Reads a sweep file and runs every check a sweep runs before it trains: each field on its
/// own (`Config::load`), then the fields against each other ([`check`]).
pub fn load(path: &Path) -> Result<Config> {
    let cfg = Config::load(path)?;
    check(&cfg).map_err(|e| match e {
        Error::Input(m) => Error::Input(format!("{}: {m}", path.display())),
        other => other,
    })?;
    Ok(cfg)
}

/// Checks a config's fields against each other: some point lies within the largest budget
/// (those over it are skipped, see [`over_budget`]), every planned point is reachable by its
/// strategy and within the LM's context, the strategies'
/// parameters suit the data, and the needle grid suits the points. Names the field.
pub fn check(cfg: &Config) -> Result<()> {
    if !cfg.sweep.lm.is_empty() {
        // Each LM of the axis as its own sweep, errors naming its entry.
        for i in 0..cfg.sweep.lm.len() {
            check(&cfg.for_lm(i)).map_err(|e| crate::config::rename_lm_field(e, &format!("sweep.lm[{i}]")))?;
        }
        return Ok(());
    }
    let shapes = plan_shapes(&cfg.sweep);
    let Some(lm) = cfg.model.lm.builtin() else {
        check_shapes(cfg, &shapes)?;
        crate::sweep::hf::check(cfg, cfg.model.lm.hf_dir().unwrap_or(Path::new(".")), &shapes)?;
        return check_strategies(cfg, &shapes);
    };
    let text = crate::features::MAX_TEXT_TOKENS;
    if lm.max_context <= text {
        return Err(Error::input("model.lm.max_context", format!("must exceed the {text} text tokens")));
    }
    check_shapes(cfg, &shapes)?;
    let max_visual = lm.max_context - text;
    for s in &shapes {
        let (t, m) = (s.frames, s.tokens_per_frame);
        if t * m > max_visual {
            return Err(Error::input(
                "model.lm.max_context",
                format!("{t} frames × {m} tokens = {} visual tokens do not fit (at most {max_visual} after {text} text tokens)", t * m),
            ));
        }
    }
    check_strategies(cfg, &shapes)
}

/// The strategies' parameters against the data, and the needle grid against the points.
fn check_strategies(cfg: &Config, shapes: &[Shape]) -> Result<()> {
    let spatial: Vec<Spatial> = shapes.iter().map(|s| s.spatial).collect();
    let temporal: Vec<Temporal> = shapes.iter().map(|s| s.temporal).collect();
    cfg.strategies.validate(&spatial, &temporal, cfg.data.dim)?;
    if let Some(niah) = &cfg.niah {
        let frames: Vec<(Temporal, usize)> = shapes.iter().map(|s| (s.temporal, s.frames)).collect();
        crate::niah::validate(niah, &cfg.data, &frames)?;
    }
    Ok(())
}

/// Some shape within the largest budget, and every one reachable by its reducers.
fn check_shapes(cfg: &Config, shapes: &[Shape]) -> Result<()> {
    let max_budget = cfg.sweep.budgets.iter().max().copied();
    if shapes.is_empty() {
        return Err(Error::input("sweep.budgets", format!("no (frames, tokens_per_frame) pair fits within the largest budget {}", max_budget.unwrap_or(0))));
    }
    for p in shapes {
        p.spatial.check(cfg.data.grid, p.tokens_per_frame).map_err(|m| Error::input("sweep.tokens_per_frame", m))?;
        p.temporal.check(cfg.data.frames, p.frames).map_err(|m| Error::input("sweep.frames", m))?;
    }
    Ok(())
}

/// The run's cost models (`cost.json`): the encoder from the source (the synthetic
/// benchmark's frozen encoder; for files, the one `manifest.json` names, else unknown), for
/// a vocabulary of `vocab` and `text_tokens` text tokens per sample.
pub fn run_costs(cfg: &Config, vocab: usize, text_tokens: f64) -> Result<crate::cost::RunCosts> {
    let encoder = match cfg.data.generator {
        crate::config::Generator::Synthetic => Some(crate::features::synthetic::encoder_shape(cfg.data.grid, cfg.data.dim)),
        crate::config::Generator::Files => cfg.data.dir.as_deref().and_then(crate::cost::EncoderShape::from_feature_dir),
    };
    crate::cost::RunCosts::of(cfg, encoder, vocab, text_tokens)
}

/// Estimates a point's training + evaluation FLOPs from the model shape and sequence length.
pub fn estimate_cost(cfg: &Config, point: &Point) -> Cost {
    let seq = point.visual_tokens() + crate::features::MAX_TEXT_TOKENS;
    let model = cfg.of_lm(point.lm.as_deref()).model;
    let forward_per_sample = crate::model::VisionLm::forward_flops(&model, cfg.data.dim, seq);
    // Backward costs about twice the forward.
    let train = 3.0 * forward_per_sample * (cfg.train.steps * cfg.train.batch) as f64;
    // Evaluation scores every option of every held-out question (4 per question, 5 per video).
    let eval = forward_per_sample * (cfg.data.eval_videos * 5 * 5) as f64;
    Cost { flops: train + eval }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn small() -> Config {
        serde_yaml::from_str(crate::config::tests::SMALL).unwrap()
    }

    #[test]
    fn grid_is_the_cartesian_product() {
        let c = small();
        let p = plan(&c, None);
        assert_eq!(p.len(), 4);
        assert!(p.iter().all(|x| x.key.len() == 16));
    }

    #[test]
    fn the_lm_axis_multiplies_the_points_and_keys_them_apart() {
        let single = small();
        let mut c = small();
        let mut larger = c.model.lm.clone();
        if let crate::config::LmChoice::Builtin(l) = &mut larger {
            (l.layers, l.width) = (2, 48);
        }
        c.sweep.lm = vec![c.model.lm.clone(), larger.clone()];
        let p = plan(&c, None);
        assert_eq!(p.len(), 8);
        let keys: std::collections::BTreeSet<&str> = p.iter().map(|x| x.key.as_str()).collect();
        assert_eq!(keys.len(), 8, "no two LMs share a key");
        // The entry equal to model.lm is the single-LM sweep's computation: its keys.
        let first: Vec<&str> = p.iter().filter(|x| x.lm.as_deref() == Some(&c.model.lm.label())).map(|x| x.key.as_str()).collect();
        assert_eq!(first, plan(&single, None).iter().map(|x| x.key.as_str()).collect::<Vec<_>>());
        assert!(plan(&single, None).iter().all(|x| x.lm.is_none()));
        // The cost estimate follows each point's LM.
        let cost = |lm: &str| p.iter().filter(|x| x.lm.as_deref() == Some(lm)).map(|x| estimate_cost(&c, x).flops).sum::<f64>();
        assert!(cost(&larger.label()) > 2.0 * cost(&c.model.lm.label()));
    }

    #[test]
    fn an_axis_entry_too_short_for_the_points_is_refused_by_name() {
        let mut c = small();
        c.sweep.lm = vec![c.model.lm.clone(), crate::config::LmChoice::Builtin(crate::config::LmConfig { layers: 1, heads: 2, width: 32, max_context: 30 })];
        // 30 − 24 text tokens leave 6 visual ones; the first shape over them is T = 2, M = 4.
        let e = check(&c).unwrap_err().to_string();
        assert!(e.starts_with("sweep.lm[1].max_context: 2 frames × 4 tokens = 8 visual tokens do not fit (at most 6"), "{e}");
    }

    #[test]
    fn budgets_filter_the_grid() {
        let mut c = small();
        c.sweep.budgets = vec![8];
        let shapes: Vec<_> = plan(&c, None).iter().map(|p| (p.shape.frames, p.shape.tokens_per_frame)).collect();
        assert_eq!(shapes, vec![(2, 1), (2, 4), (4, 1)]);
    }

    #[test]
    fn cross_design_varies_one_factor_at_a_time_and_shares_the_center() {
        let mut c = small();
        c.sweep.design = Design::Cross;
        c.sweep.spatial = vec![Spatial::Pool, Spatial::Sample];
        c.sweep.temporal = vec![Temporal::Sample, Temporal::Pool];
        c.sweep.center = Some(crate::config::Center { frames: 4, tokens_per_frame: 4, spatial: Spatial::Pool, temporal: Temporal::Sample });
        let p = plan(&c, None);
        // 2 spatial × 2 M + 2 temporal × 2 T, minus the shared centre (4, 4, pool, sample).
        assert_eq!(p.len(), 7);
        let centre = p.iter().filter(|x| x.shape.frames == 4 && x.shape.tokens_per_frame == 4 && x.strategy().to_string() == "pool/sample").count();
        assert_eq!(centre, 1);
    }

    #[test]
    fn temporal_sample_and_pool_share_a_computation_only_when_they_keep_every_frame() {
        let cfg: Config = serde_yaml::from_str(YAML_FOR_COMPUTE_KEY).unwrap();
        let points = plan(&cfg, None);
        let at = |t: usize, temporal: Temporal| points.iter().find(|p| p.shape.frames == t && p.shape.temporal == temporal).unwrap();
        let (sample_all, pool_all) = (at(8, Temporal::Sample), at(8, Temporal::Pool));
        assert_ne!(sample_all.key, pool_all.key);
        assert_eq!(compute_key(&cfg, None, sample_all, true), compute_key(&cfg, None, pool_all, true));
        assert_ne!(compute_key(&cfg, None, sample_all, false), compute_key(&cfg, None, pool_all, false), "short videos make them differ");
        assert_ne!(compute_key(&cfg, None, at(4, Temporal::Sample), true), compute_key(&cfg, None, at(4, Temporal::Pool), true));
        assert_eq!(compute_key(&cfg, None, at(4, Temporal::Pool), true), at(4, Temporal::Pool).key);
    }

    #[test]
    fn spatial_pool_sample_and_bilinear_share_a_computation_only_at_the_full_grid() {
        let yaml = YAML_FOR_COMPUTE_KEY
            .replace("tokens_per_frame: [4]", "tokens_per_frame: [4, 16]")
            .replace("spatial: [pool]", "spatial: [pool, sample, bilinear, visionzip]")
            .replace("temporal: [sample, pool]", "temporal: [sample]");
        let cfg: Config = serde_yaml::from_str(&yaml).unwrap();
        let points = plan(&cfg, None);
        let key = |m: usize, spatial: Spatial| {
            let p = points.iter().find(|p| p.shape.frames == 4 && p.shape.tokens_per_frame == m && p.shape.spatial == spatial).unwrap();
            compute_key(&cfg, None, p, true)
        };
        // g = 4: M = 16 keeps every token.
        assert_eq!(key(16, Spatial::Pool), key(16, Spatial::Sample));
        assert_eq!(key(16, Spatial::Pool), key(16, Spatial::Bilinear));
        assert_ne!(key(16, Spatial::Pool), key(16, Spatial::VisionZip), "VisionZip merges tokens even at g²");
        assert_ne!(key(4, Spatial::Pool), key(4, Spatial::Sample));
    }

    const YAML_FOR_COMPUTE_KEY: &str = "
name: twins
data: {generator: synthetic, seed: 1, train_videos: 8, eval_videos: 4, frames: 8, grid: 4, dim: 8}
model: {projector: {hidden: 8}, lm: {layers: 1, heads: 2, width: 8, max_context: 64}}
train: {steps: 2, batch: 2, lr: 0.001, warmup: 1, trainable: [projector, lm], prior_steps: 1}
sweep: {frames: [4, 8], tokens_per_frame: [4], spatial: [pool], temporal: [sample, pool], seeds: [0]}
";

    #[test]
    fn the_evaluated_split_enters_the_key_only_when_not_held_out() {
        let c = small();
        let s = plan_shapes(&c.sweep)[0].clone();
        let k = point_key(&c, None, &s, 0);
        // Written out, the defaults serialise to nothing: the key of a config without them.
        let mut explicit = c.clone();
        explicit.eval = serde_yaml::from_str("{split: held_out}").unwrap();
        explicit.data.validation_videos = 0;
        assert_eq!(k, point_key(&explicit, None, &s, 0));
        let mut tuning = c.clone();
        tuning.eval.split = crate::config::EvalSplit::Validation;
        tuning.data.validation_videos = 4;
        assert_ne!(k, point_key(&tuning, None, &s, 0));
        assert!(tuning.validate().is_ok());
        tuning.data.validation_videos = 0;
        assert!(tuning.validate().unwrap_err().to_string().contains("data.validation_videos"));
    }

    #[test]
    fn key_changes_with_anything_that_changes_numbers_but_not_the_name() {
        let c = small();
        let s = plan_shapes(&c.sweep)[0].clone();
        let k = point_key(&c, None, &s, 0);
        assert_ne!(k, point_key(&c, None, &s, 1));
        let mut c2 = c.clone();
        c2.train.lr *= 2.0;
        assert_ne!(k, point_key(&c2, None, &s, 0));
        let mut c3 = c.clone();
        c3.name = "renamed".into();
        assert_eq!(k, point_key(&c3, None, &s, 0));
    }
}
