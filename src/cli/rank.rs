//! `vislaw rank INPUT`: the strategies ranked across seeds at each (T, M) several reach, with
//! the differences beyond twice their standard error (the report's section, on its own).
use vislaw::Result;

/// Rank the strategies at equal (T, M) across seeds.
#[derive(clap::Args)]
pub struct Args {
    /// A run directory (its results.parquet) or a results table (.csv or .parquet) with
    /// columns frames, tokens_per_frame and loss (strategy, accuracy, accuracy_se optional).
    input: std::path::PathBuf,
    /// Print the cells as JSON instead of Markdown.
    #[arg(long)]
    json: bool,
}

/// Runs `vislaw rank`.
pub fn run(args: Args) -> Result<()> {
    let table = vislaw::results::read_table(&args.input)?;
    let cells = vislaw::ranking::rank(&vislaw::ranking::rows_of(&table)?);
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&cells_json(&cells))?);
        return Ok(());
    }
    if cells.is_empty() {
        outln!("no (T, M) is reached by two strategies: nothing to rank");
        return Ok(());
    }
    out!("{}", vislaw::ranking::render(&cells));
    Ok(())
}

fn cells_json(cells: &[vislaw::ranking::Cell]) -> serde_json::Value {
    let spread = |s: vislaw::ranking::Spread| serde_json::json!({"mean": finite(s.mean), "sd": finite(s.sd)});
    serde_json::Value::Array(
        cells
            .iter()
            .map(|c| {
                serde_json::json!({
                    "frames": c.frames,
                    "tokens_per_frame": c.tokens_per_frame,
                    "pairs_compared": c.pairs_compared,
                    "entries": c.entries.iter().map(|e| serde_json::json!({
                        "strategy": e.strategy, "seeds": e.seeds, "loss": spread(e.loss), "accuracy": spread(e.accuracy), "eval_se": finite(e.eval_se),
                    })).collect::<Vec<_>>(),
                    "beyond_2se": c.beyond_2se.iter().map(|d| serde_json::json!({
                        "metric": d.metric.name(), "better": d.better, "worse": d.worse, "gap": d.gap, "se": d.se,
                    })).collect::<Vec<_>>(),
                })
            })
            .collect(),
    )
}

/// JSON has no NaN: unknown values are null.
fn finite(v: f64) -> serde_json::Value {
    if v.is_finite() {
        v.into()
    } else {
        serde_json::Value::Null
    }
}
