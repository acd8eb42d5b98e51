//! `vislaw optimum INPUT --budget L`: the best (T, M) under T·M ≤ L from fitted laws; on
//! a run directory the answer is also saved as its `optimum.json`.
use std::path::PathBuf;
use vislaw::fit::FitReport;
use vislaw::optimum::{self, InvalidOption, OptimumOptions};
use vislaw::{tokens, Error, Result};

/// Largest --max-frames: the reachable frame counts of every strategy group are listed.
const MAX_FRAMES_LIMIT: u64 = 1 << 20;
/// Largest --grid: a learned reducer reaches every M up to g², and they are listed.
const MAX_GRID: usize = 1024;

/// Solve min L(T, M) s.t. T·M ≤ budget: continuous and discrete optima with 95% intervals.
#[derive(clap::Args)]
pub struct Args {
    /// A run directory (its fits.json; the optimum is saved as its optimum.json) or a fits.json file.
    input: PathBuf,
    /// Visual-token budget L (repeatable).
    #[arg(long = "budget")]
    budgets: Vec<f64>,
    /// Compute budget C in forward FLOPs per sample (repeatable): the optimum under
    /// cost(T, M) ≤ C, from the run's cost model (cost.json).
    #[arg(long = "budget-flops")]
    budgets_flops: Vec<f64>,
    /// The cost model for --budget-flops (default: cost.json in the run directory, or beside the fits.json).
    #[arg(long)]
    cost: Option<PathBuf>,
    /// Tokens per frame every group may use, comma-separated (default: per strategy group
    /// `spatial/temporal`, the M its spatial reducer reaches on the --grid; other groups:
    /// k×k pooling of the grid, 1,4,9,16,25,36,49,81,196,729 for 27).
    #[arg(long, value_delimiter = ',')]
    feasible_m: Vec<u64>,
    /// Frame counts every group may use, comma-separated (default: per strategy group, the T
    /// its temporal reducer reaches from --max-frames source frames; other groups: any T).
    #[arg(long, value_delimiter = ',')]
    feasible_t: Vec<u64>,
    /// Largest usable number of frames, and the source frames F temporal reducers divide
    /// (default: on a run directory, its sweep's `data.frames`, so that re-solving gives the
    /// sweep's own answer; else 1024).
    #[arg(long)]
    max_frames: Option<u64>,
    /// Encoder grid side g whose g×g patches the spatial reducers reduce (default: on a run
    /// directory, its sweep's `data.grid`; else 27).
    #[arg(long)]
    grid: Option<usize>,
    /// Smallest budget that reaches this loss (repeatable).
    #[arg(long = "target-loss")]
    target_loss: Vec<f64>,
    /// Only the fits of this group.
    #[arg(long)]
    group: Option<String>,
    /// Map each optimum to this model family's own settings (needs --video).
    #[arg(long, requires = "video")]
    model: Option<String>,
    /// The video the settings are for: WxH@FPS,DURATION (e.g. 1280x720@30,60).
    #[arg(long, requires = "model")]
    video: Option<String>,
    /// Search only inside each fit's measured ranges of T and M (continuous and discrete),
    /// instead of extrapolating the law past its data.
    #[arg(long)]
    within_data: bool,
    /// Print one JSON document instead of the table.
    #[arg(long)]
    json: bool,
}

/// Runs `vislaw optimum`.
pub fn run(args: Args) -> Result<()> {
    let mut report = FitReport::load(&args.input)?;
    if let Some(g) = &args.group {
        report.fits.retain(|f| &f.group == g);
        if report.fits.is_empty() {
            return Err(vislaw::Error::input("--group", format!("no fit of group '{g}' in {}", args.input.display())));
        }
    }
    let opts = optimum_options(&args, &report)?;
    opts.check().map_err(flag_error)?;
    let optima = optimum::solve(&report, &opts)?;
    if args.input.is_dir() {
        optima.save(&args.input)?;
    }
    let settings = match (&args.model, &args.video) {
        (Some(model), Some(video)) => Some(model_settings(&optima, &report, &opts, model, video)?),
        _ => None,
    };
    if args.json {
        let mut doc: serde_json::Value = serde_json::from_str(&optima.to_json()?)?;
        if let Some(s) = &settings {
            doc["model_settings"] = serde_json::Value::Array(s.iter().map(ModelSetting::to_json).collect());
        }
        outln!("{doc}");
    } else {
        out!("{}", optima.render_table());
        if optima.extrapolates() {
            outln!("note: an answer above lies outside the measured ranges of its fit; --within-data keeps the search inside them");
        }
        for s in settings.iter().flatten() {
            s.render(args.model.as_deref().unwrap_or(""));
        }
    }
    Ok(())
}

/// The solver's options: each strategy group's own reachable T and M unless the flags list
/// values for every group.
fn optimum_options(args: &Args, report: &FitReport) -> Result<OptimumOptions> {
    let (max_frames, grid) = source_shape(args)?;
    if max_frames > MAX_FRAMES_LIMIT {
        return Err(Error::input("--max-frames", format!("at most {MAX_FRAMES_LIMIT}")));
    }
    if !(1..=MAX_GRID).contains(&grid) {
        return Err(Error::input("--grid", format!("must be between 1 and {MAX_GRID}")));
    }
    let groups = report.fits.iter().map(|f| f.group.as_str());
    let mut opts = OptimumOptions::for_groups(groups, max_frames as usize, grid, args.budgets.clone());
    if !args.feasible_m.is_empty() {
        opts.feasible_m = args.feasible_m.clone();
    }
    for set in opts.groups.values_mut() {
        if !args.feasible_m.is_empty() {
            set.tokens = args.feasible_m.clone();
        }
        if !args.feasible_t.is_empty() {
            set.frames = args.feasible_t.clone();
        }
    }
    opts.feasible_t = args.feasible_t.clone();
    opts.target_loss = args.target_loss.clone();
    opts.within_data = args.within_data;
    opts.budgets_flops = args.budgets_flops.clone();
    if !args.budgets_flops.is_empty() {
        let path = match &args.cost {
            Some(p) => p.clone(),
            None if args.input.is_dir() => args.input.join(vislaw::cost::COST_FILE),
            None => args.input.parent().unwrap_or(std::path::Path::new(".")).join(vislaw::cost::COST_FILE),
        };
        if !path.exists() {
            return Err(Error::input("--budget-flops", format!("needs a cost model: {} does not exist (give --cost FILE)", path.display())));
        }
        opts.costs = vislaw::cost::RunCosts::load(&path)?.strategies;
    }
    Ok(opts)
}

/// Source frames F and grid side g: the flags, else a run directory's own sweep (its
/// `config.yaml`), else 1024 and 27. Without this, re-solving a run with the flags' defaults
/// would save in its `optimum.json` an answer for settings the sweep never had.
fn source_shape(args: &Args) -> Result<(u64, usize)> {
    let saved = vislaw::rundir::RunDir::new(&args.input).config();
    let run = if args.input.is_dir() && saved.exists() && (args.max_frames.is_none() || args.grid.is_none()) {
        Some(vislaw::config::Config::load(&saved)?)
    } else {
        None
    };
    let max_frames = args.max_frames.or(run.as_ref().map(|c| c.data.frames as u64)).unwrap_or(1024);
    let grid = args.grid.or(run.as_ref().map(|c| c.data.grid)).unwrap_or(27);
    Ok((max_frames, grid))
}

/// The solver's complaint about an option, in terms of the flag that set it.
fn flag_error(e: InvalidOption) -> Error {
    match e {
        InvalidOption::NothingToSolve => Error::input("optimum", "give at least one --budget, --budget-flops or --target-loss"),
        InvalidOption::Budget(b) => Error::input("--budget", format!("{b} is not a positive number")),
        InvalidOption::BudgetFlops(b) => Error::input("--budget-flops", format!("{b} is not a positive number")),
        InvalidOption::TargetLoss(t) => Error::input("--target-loss", format!("{t} is not a positive number")),
        InvalidOption::FeasibleM => Error::input("--feasible-m", "needs at least one value, all ≥ 1"),
        InvalidOption::FeasibleT => Error::input("--feasible-t", "values must be ≥ 1"),
        InvalidOption::GroupSets(g) => Error::input("optimum", format!("group {g}: reachable T and M must be ≥ 1")),
        InvalidOption::MaxFrames => Error::input("--max-frames", "must be ≥ 1"),
    }
}

/// One optimum as a family's concrete settings for the video, with what the fit predicts
/// for them and why they spend what they do.
struct ModelSetting<'a> {
    family: tokens::Family,
    optimum: &'a optimum::Optimum,
    plan: tokens::BudgetPlan,
    knobs: tokens::Knobs,
    /// The optimum's M when no family setting costs that little per frame (the plan is then
    /// the family's best use of the budget).
    unreachable_m: Option<f64>,
    /// (T, M) the settings really give.
    t: f64,
    m: f64,
    /// The fit's loss there, and how far (T, M) lies outside its measured ranges.
    at: Option<(f64, Option<optimum::Extrapolation>)>,
}

impl ModelSetting<'_> {
    fn gap(&self) -> (Option<f64>, Option<f64>) {
        let loss = self.at.map(|a| a.0);
        (loss.map(|l| l - self.optimum.continuous.loss), Option::zip(loss, self.optimum.discrete.as_ref()).map(|(l, d)| l - d.loss))
    }

    fn native(&self) -> Vec<(&'static str, tokens::Native)> {
        tokens::native_settings(self.family, &self.plan.settings, &self.knobs)
    }

    fn to_json(&self) -> serde_json::Value {
        let (vs_continuous, vs_discrete) = self.gap();
        let native: serde_json::Map<String, serde_json::Value> = self.native().into_iter().map(|(k, v)| (k.to_string(), serde_json::json!(v))).collect();
        let caps: Vec<serde_json::Value> = self
            .plan
            .caps
            .iter()
            .map(|c| {
                let mut v = serde_json::json!(c);
                v["words"] = self.cap_words(c).into();
                v
            })
            .collect();
        serde_json::json!({
            "group": self.optimum.group, "law": self.optimum.law, "budget": self.optimum.budget,
            "settings": self.plan.settings, "native_settings": native, "tokens": self.plan.count.tokens, "count": self.plan.count,
            "T": self.t, "M": self.m, "predicted_loss": self.at.map(|a| a.0),
            "gap": {"continuous": vs_continuous, "discrete": vs_discrete},
            "extrapolation": self.at.and_then(|a| a.1),
            "caps": caps, "unreachable_m": self.unreachable_m,
        })
    }

    fn cap_words(&self, c: &tokens::Cap) -> String {
        c.words(self.family)
    }

    fn render(&self, model: &str) {
        let o = self.optimum;
        let plan = &self.plan;
        let settings = serde_json::to_string(&plan.settings).unwrap_or_default();
        outln!("{} at L = {}: {} settings {} → {} visual tokens", o.group, o.budget, model, settings, plan.count.tokens);
        let native: Vec<String> = self.native().iter().map(|(k, v)| format!("{k}={v}")).collect();
        outln!("  as {} names them: {}", code_of(self.family), native.join(", "));
        let gap = |g: Option<f64>, what: &str| g.map(|g| format!(", {g:+.4} vs the {what} optimum")).unwrap_or_default();
        let (vs_continuous, vs_discrete) = self.gap();
        match self.at {
            Some((loss, _)) => outln!(
                "  predicted loss {loss:.4} at T = {}, M = {}{}{}",
                short(self.t),
                short(self.m),
                gap(vs_continuous, "continuous"),
                gap(vs_discrete, "discrete")
            ),
            None => outln!("  T = {}, M = {} (the fit does not read T and M, so no loss is predicted)", short(self.t), short(self.m)),
        }
        if let Some(m) = self.unreachable_m {
            outln!(
                "  cap: no {} setting costs at most M = {} tokens per frame for this clip; the budget is spent the family's own best way",
                self.family,
                short(m)
            );
        }
        for c in &plan.caps {
            outln!("  cap: {}", self.cap_words(c));
        }
        if plan.caps.is_empty() && plan.count.tokens < o.budget.floor() as u64 && self.unreachable_m.is_none() {
            outln!("  uses {} of {} tokens", plan.count.tokens, o.budget.floor());
        }
        if let (Some(b), Some((_, Some(e)))) = (&o.measured, self.at) {
            if e.outside() {
                outln!("  EXTRAPOLATED: {}", optimum::extrapolation_words(b, self.t, self.m, &e));
            }
        }
    }
}

/// The reference code whose names [`tokens::native_settings`] uses.
fn code_of(family: tokens::Family) -> &'static str {
    match family {
        tokens::Family::Qwen2Vl | tokens::Family::Qwen25Vl => "qwen-vl-utils (video element keys)",
        tokens::Family::InternVl15 => "InternVL's load_video",
        tokens::Family::LlavaOneVision => "LLaVA-NeXT (load_video, model config)",
        tokens::Family::Oryx => "Oryx",
    }
}

fn short(v: f64) -> String {
    if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

/// Turns every optimum's tokens per frame into the family's real settings for the video,
/// keeping the real token total within the budget, with the fit's loss at the (T, M) they give.
fn model_settings<'a>(optima: &'a optimum::OptimaReport, report: &FitReport, opts: &OptimumOptions, model: &str, video: &str) -> Result<Vec<ModelSetting<'a>>> {
    let family: tokens::Family = model.parse().map_err(super::tokens::flag_error)?;
    let clip = parse_video(video)?;
    optima
        .optima
        .iter()
        .map(|o| {
            let m = o.discrete.as_ref().map_or(o.continuous.m, |d| d.m);
            let budget = o.budget.floor() as u64;
            let knobs = tokens::Knobs::default();
            let at_m = tokens::BudgetTarget { budget, frames: None, tokens_per_frame: Some(m) };
            // A family whose cheapest frame costs more than M (LLaVA-OneVision: 169) can only
            // spend the budget its own way: then the best use of L is taken instead.
            let any = tokens::BudgetTarget { budget, frames: None, tokens_per_frame: None };
            let (plan, unreachable_m) = match tokens::settings_for_budget(family, &clip, &at_m, &knobs) {
                Ok(plan) => (plan, None),
                Err(_) => (tokens::settings_for_budget(family, &clip, &any, &knobs).map_err(super::tokens::flag_error)?, Some(m)),
            };
            let t = f64::from(plan.settings.frames);
            let m_real = plan.count.tokens_per_frame.unwrap_or(plan.count.tokens as f64 / t.max(1.0));
            let fit = report.fits.iter().find(|f| f.group == o.group && f.law == o.law);
            let at = fit.and_then(|f| optimum::at_setting(f, opts, t, m_real));
            Ok(ModelSetting { family, optimum: o, plan, knobs, unreachable_m, t, m: m_real, at })
        })
        .collect()
}

/// Parses `WxH@FPS,DURATION`.
fn parse_video(text: &str) -> Result<tokens::Clip> {
    let bad = || Error::input("--video", format!("'{text}' is not WxH@FPS,DURATION (e.g. 1280x720@30,60)"));
    let (size, rest) = text.split_once('@').ok_or_else(bad)?;
    let (fps, duration) = rest.split_once(',').ok_or_else(bad)?;
    let fps: f64 = fps.trim().parse().map_err(|_| bad())?;
    let duration_s: f64 = duration.trim().parse().map_err(|_| bad())?;
    if !(fps > 0.0 && fps.is_finite() && duration_s > 0.0 && duration_s.is_finite()) {
        return Err(bad());
    }
    Ok(tokens::Clip { size: tokens::Size::parse(size).map_err(|e| Error::input("--video", super::tokens::flag_error(e)))?, fps, duration_s })
}
