//! Results as polars frames: one row per finished sweep point, written atomically as
//! Parquet, merged into `results.parquet` + `results.csv`, and read back for analysis.
use crate::error::{Error, Result};
use crate::rundir::{RunDir, CURVES_DIR, CURVES_FILE, POINTS_DIR, RESULTS_CSV};
use polars::prelude::*;
use std::path::{Path, PathBuf};

/// The merged results table of a run directory.
pub use crate::rundir::RESULTS_FILE;

/// Resolves an analysis input: a run directory means its `results.parquet`; a file is itself.
pub fn resolve_table_path(input: &Path) -> Result<PathBuf> {
    if input.is_dir() {
        let p = input.join(RESULTS_FILE);
        if !p.exists() {
            return Err(Error::file(input, "run directory has no results.parquet (has the sweep finished a point?)"));
        }
        return Ok(p);
    }
    if !input.exists() {
        return Err(Error::file(input, "no such file or directory"));
    }
    Ok(input.to_path_buf())
}

/// Reads a run directory's results, or any `.parquet` / `.csv` file, into a DataFrame.
pub fn read_table(input: &Path) -> Result<DataFrame> {
    let path = resolve_table_path(input)?;
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
    let bad = |e: PolarsError| Error::file(&path, format!("cannot read table: {e}"));
    match ext.as_str() {
        "parquet" => {
            let f = std::fs::File::open(&path).map_err(|e| Error::file(&path, e))?;
            ParquetReader::new(f).finish().map_err(bad)
        }
        "csv" => CsvReadOptions::default().with_has_header(true).try_into_reader_with_file_path(Some(path.clone())).map_err(bad)?.finish().map_err(bad),
        _ => Err(Error::file(&path, "expected a run directory, a .parquet or a .csv file")),
    }
}

/// Reads column `name` as f64 values (integers are widened); names the column on error.
pub fn f64_column(df: &DataFrame, name: &str) -> Result<Vec<f64>> {
    let col = df.column(name).map_err(|_| Error::input(format!("column '{name}'"), format!("missing; the table has {:?}", column_names(df))))?;
    let cast = col.cast(&DataType::Float64).map_err(|e| Error::input(format!("column '{name}'"), format!("not numeric: {e}")))?;
    let ca = cast.f64().map_err(Error::internal)?;
    ca.iter().enumerate().map(|(i, v)| v.ok_or_else(|| Error::input(format!("column '{name}'"), format!("row {} is null", i + 1)))).collect()
}

/// Reads column `name` as strings (other types are formatted); names the column on error.
pub fn str_column(df: &DataFrame, name: &str) -> Result<Vec<String>> {
    let col = df.column(name).map_err(|_| Error::input(format!("column '{name}'"), format!("missing; the table has {:?}", column_names(df))))?;
    let cast = col.cast(&DataType::String).map_err(Error::internal)?;
    let ca = cast.str().map_err(Error::internal)?;
    Ok(ca.iter().map(|v| v.unwrap_or("").to_string()).collect())
}

/// The column names of a frame, for error messages.
pub fn column_names(df: &DataFrame) -> Vec<String> {
    df.get_column_names().iter().map(|s| s.to_string()).collect()
}

/// The `split` value of a config's rows: `None` for the held-out default (no column), else
/// the split's name.
pub fn split_label(cfg: &crate::config::Config) -> Option<String> {
    (cfg.eval.split != crate::config::EvalSplit::HeldOut).then(|| cfg.eval.split.name().to_string())
}

/// The group each row is fitted in: its `strategy`, or with an `lm` column (a sweep
/// along the LM axis) `{strategy} @ {lm}`, so that no law mixes models.
pub fn fit_groups(df: &DataFrame) -> Result<Vec<String>> {
    let strategy = str_column(df, "strategy")?;
    if df.column("lm").is_err() {
        return Ok(strategy);
    }
    Ok(strategy.into_iter().zip(str_column(df, "lm")?).map(|(s, lm)| lm_group(&s, &lm)).collect())
}

/// The fit group of a strategy under an LM of the LM axis.
pub fn lm_group(strategy: &str, lm: &str) -> String {
    format!("{strategy} @ {lm}")
}

/// The table with its `strategy` column replaced by the rows' [`fit_groups`] (itself
/// without an `lm` column), for fits that group by strategy.
pub fn with_fit_groups(df: &DataFrame) -> Result<DataFrame> {
    if df.column("lm").is_err() {
        return Ok(df.clone());
    }
    let mut out = df.clone();
    out.with_column(Column::new("strategy".into(), fit_groups(df)?))?;
    Ok(out)
}

/// Everything measured at one sweep point: one row of `results.parquet`.
#[derive(Debug, Clone)]
pub struct PointRow {
    /// The point's content key.
    pub key: String,
    /// The run name.
    pub run: String,
    /// Spatial reducer.
    pub spatial: String,
    /// Temporal reducer.
    pub temporal: String,
    /// Frames T.
    pub frames: usize,
    /// Tokens per frame M.
    pub tokens_per_frame: usize,
    /// Training seed.
    pub seed: u64,
    /// Trainable set, e.g. `projector+lm`.
    pub trainable: String,
    /// Optimiser steps.
    pub steps: usize,
    /// Held-out metrics.
    pub eval: crate::eval::EvalResult,
    /// Mean training loss over the last logging window.
    pub train_loss_final: f64,
    /// Wall time of the whole point (reduce, train, eval), seconds.
    pub wall_s: f64,
    /// Training samples per second.
    pub samples_per_s: f64,
    /// Training tokens (visual + text) per second.
    pub tokens_per_s: f64,
    /// Device the point ran on.
    pub device: String,
    /// The split the metrics come from, when not the held-out default (`eval.split`); the
    /// column `split` is written only then, so held-out rows keep their schema.
    pub split: Option<String>,
    /// The training-loss curve.
    pub curve: Vec<crate::train::CurvePoint>,
    /// Forward FLOPs of one sample by part and the LM's parameter count (columns
    /// `flops_encoder`, `flops_reducer`, `flops_projector`, `flops_lm`, `flops`, `lm_params`);
    /// `None` writes none of them (rows of runs from before they existed read back null).
    pub cost: Option<crate::cost::Breakdown>,
    /// The label of the point's LM on the LM axis (`sweep.lm`); the column `lm` is written
    /// only then, so rows of single-LM sweeps keep their schema.
    pub lm: Option<String>,
}

impl PointRow {
    /// The `spatial/temporal` label fits group by (`none/none` for the blind baseline).
    pub fn strategy_label(&self) -> String {
        format!("{}/{}", self.spatial, self.temporal)
    }

    /// The row as a one-row DataFrame (the results schema).
    pub fn to_frame(&self) -> Result<DataFrame> {
        let e = &self.eval;
        let mut cols = vec![
            str_col("key", &self.key),
            str_col("run", &self.run),
            str_col("strategy", &self.strategy_label()),
            str_col("spatial", &self.spatial),
            str_col("temporal", &self.temporal),
            i64_col("frames", self.frames as i64),
            i64_col("tokens_per_frame", self.tokens_per_frame as i64),
            i64_col("visual_tokens", (self.frames * self.tokens_per_frame) as i64),
            i64_col("seed", self.seed as i64),
            str_col("trainable", &self.trainable),
            i64_col("steps", self.steps as i64),
            f64_col("loss", e.loss),
            f64_col("loss_se", e.loss_se),
            f64_col("accuracy", e.accuracy),
            f64_col("accuracy_se", e.accuracy_se),
            f64_col("train_loss_final", self.train_loss_final),
        ];
        for (name, f) in &e.families {
            cols.push(f64_col(&format!("acc_{name}"), f.accuracy));
            cols.push(f64_col(&format!("acc_{name}_se"), f.accuracy_se));
            cols.push(f64_col(&format!("loss_{name}"), f.loss));
        }
        cols.extend([
            i64_col("n_questions", e.questions as i64),
            i64_col("n_videos", e.videos as i64),
            f64_col("wall_s", self.wall_s),
            f64_col("samples_per_s", self.samples_per_s),
            f64_col("tokens_per_s", self.tokens_per_s),
            str_col("device", &self.device),
        ]);
        if let Some(c) = &self.cost {
            cols.extend([
                f64_col("flops_encoder", c.encoder),
                f64_col("flops_reducer", c.reducer),
                f64_col("flops_projector", c.projector),
                f64_col("flops_lm", c.lm),
                f64_col("flops", c.total),
                i64_col("lm_params", c.lm_params as i64),
            ]);
        }
        if let Some(split) = &self.split {
            cols.push(str_col("split", split));
        }
        if let Some(lm) = &self.lm {
            cols.push(str_col("lm", lm));
        }
        Ok(DataFrame::new(1, cols)?)
    }

    /// The training curve in long format: key, strategy, frames, tokens_per_frame, seed, step, train_loss.
    pub fn curve_frame(&self) -> Result<DataFrame> {
        let n = self.curve.len();
        let rep_str = |name: &str, v: &str| Column::new(name.into(), vec![v.to_string(); n]);
        let rep_i64 = |name: &str, v: i64| Column::new(name.into(), vec![v; n]);
        let mut cols = vec![
            rep_str("key", &self.key),
            rep_str("strategy", &self.strategy_label()),
            rep_i64("frames", self.frames as i64),
            rep_i64("tokens_per_frame", self.tokens_per_frame as i64),
            rep_i64("seed", self.seed as i64),
            Column::new("step".into(), self.curve.iter().map(|c| c.step as i64).collect::<Vec<_>>()),
            Column::new("train_loss".into(), self.curve.iter().map(|c| c.loss).collect::<Vec<_>>()),
        ];
        if let Some(lm) = &self.lm {
            cols.push(rep_str("lm", lm));
        }
        Ok(DataFrame::new(n, cols)?)
    }

    /// Writes the point's curve, then its row: the row file's existence marks the point done.
    pub fn save(&self, run_dir: &Path) -> Result<()> {
        write_parquet(&RunDir::new(run_dir).curve(&self.key), &mut self.curve_frame()?)?;
        write_parquet(&point_path(run_dir, &self.key), &mut self.to_frame()?)
    }
}

fn str_col(name: &str, v: &str) -> Column {
    Column::new(name.into(), [v.to_string()])
}
fn i64_col(name: &str, v: i64) -> Column {
    Column::new(name.into(), [v])
}
fn f64_col(name: &str, v: f64) -> Column {
    Column::new(name.into(), [v])
}

/// Where a finished point's row lives.
pub fn point_path(run_dir: &Path, key: &str) -> PathBuf {
    RunDir::new(run_dir).point(key)
}

/// Whether a point has a readable finished row (a torn or foreign file counts as not done).
pub fn is_done(run_dir: &Path, key: &str) -> bool {
    let p = point_path(run_dir, key);
    p.exists() && read_parquet(&p).map(|df| df.height() == 1).unwrap_or(false)
}

/// Writes a frame as Parquet, atomically.
pub fn write_parquet(path: &Path, df: &mut DataFrame) -> Result<()> {
    crate::io::write_atomic_with(path, |f| {
        ParquetWriter::new(f).finish(df)?;
        Ok(())
    })
}

/// Writes a frame as CSV with a header, atomically.
pub fn write_csv(path: &Path, df: &mut DataFrame) -> Result<()> {
    crate::io::write_atomic_with(path, |f| {
        CsvWriter::new(f).include_header(true).finish(df)?;
        Ok(())
    })
}

/// Reads a Parquet file.
pub fn read_parquet(path: &Path) -> Result<DataFrame> {
    let f = std::fs::File::open(path).map_err(|e| Error::file(path, e))?;
    ParquetReader::new(f).finish().map_err(|e| Error::file(path, format!("cannot read parquet: {e}")))
}

/// Stacks every Parquet file of `dir` whose stem is in `keys`, sorted by `sort_by`.
fn stack(dir: &Path, keys: &[String], sort_by: &[&str]) -> Result<Option<DataFrame>> {
    let mut out: Option<DataFrame> = None;
    for key in keys {
        let df = read_parquet(&dir.join(format!("{key}.parquet")))?;
        match &mut out {
            None => out = Some(df),
            Some(acc) => {
                let df = align(acc, df)?;
                acc.vstack_mut(&df)?;
            }
        }
    }
    match out {
        Some(df) => Ok(Some(df.sort(sort_by.iter().copied(), SortMultipleOptions::default())?)),
        None => Ok(None),
    }
}

/// Makes `df` stackable under `acc`: a column only one of them has is added to the other
/// as nulls (a run resumed across a schema change: rows written before the FLOPs columns
/// existed read back with those columns null), and `df`'s columns follow `acc`'s order.
fn align(acc: &mut DataFrame, mut df: DataFrame) -> Result<DataFrame> {
    let (a, b) = (column_names(acc), column_names(&df));
    for c in df.columns().iter().filter(|c| !a.contains(&c.name().to_string())).cloned().collect::<Vec<_>>() {
        acc.with_column(Column::full_null(c.name().clone(), acc.height(), c.dtype()))?;
    }
    for c in acc.columns().iter().filter(|c| !b.contains(&c.name().to_string())).cloned().collect::<Vec<_>>() {
        df.with_column(Column::full_null(c.name().clone(), df.height(), c.dtype()))?;
    }
    Ok(df.select(column_names(acc))?)
}

/// Merges the finished points named by `keys` into `results.parquet`, `results.csv` and
/// `curves.parquet`; returns the merged results.
pub fn merge(run_dir: &Path, keys: &[String]) -> Result<DataFrame> {
    let order = ["strategy", "frames", "tokens_per_frame", "seed"];
    let mut results = stack(&run_dir.join(POINTS_DIR), keys, &order)?.ok_or_else(|| Error::internal("no finished points to merge"))?;
    write_parquet(&run_dir.join(RESULTS_FILE), &mut results)?;
    write_csv(&run_dir.join(RESULTS_CSV), &mut results)?;
    if let Some(mut curves) = stack(&run_dir.join(CURVES_DIR), keys, &["strategy", "frames", "tokens_per_frame", "seed", "step"])? {
        write_parquet(&run_dir.join(CURVES_FILE), &mut curves)?;
    }
    Ok(results)
}

/// A compact terminal table of a results frame: strategy, T, M, T·M, seed, loss, accuracy.
pub fn summary_table(df: &DataFrame) -> Result<String> {
    let strategy = str_column(df, "strategy")?;
    let frames = f64_column(df, "frames")?;
    let tokens = f64_column(df, "tokens_per_frame")?;
    let seed = f64_column(df, "seed")?;
    let loss = f64_column(df, "loss")?;
    let loss_se = f64_column(df, "loss_se")?;
    let acc = f64_column(df, "accuracy")?;
    let acc_se = f64_column(df, "accuracy_se")?;
    let mut out = format!("{:<16} {:>5} {:>5} {:>6} {:>5}  {:>17}  {:>15}\n", "strategy", "T", "M", "T·M", "seed", "held-out loss", "accuracy");
    for i in 0..df.height() {
        out += &format!(
            "{:<16} {:>5} {:>5} {:>6} {:>5}  {:>8.4} ± {:<6.4}  {:>6.3} ± {:<6.3}\n",
            strategy[i],
            frames[i],
            tokens[i],
            frames[i] * tokens[i],
            seed[i],
            loss[i],
            loss_se[i],
            acc[i],
            acc_se[i]
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A run resumed across the FLOPs columns: the old point's row reads them back null,
    /// whichever order the points stack in.
    #[test]
    fn rows_without_the_flops_columns_stack_with_rows_that_have_them() {
        let dir = tempfile::tempdir().unwrap();
        let old = DataFrame::new(1, vec![str_col("key", "a"), f64_col("loss", 1.5)]).unwrap();
        let new = DataFrame::new(1, vec![str_col("key", "b"), f64_col("loss", 1.25), f64_col("flops", 3.0e6), i64_col("lm_params", 5219)]).unwrap();
        for (name, mut df) in [("a", old), ("b", new)] {
            write_parquet(&dir.path().join(format!("{name}.parquet")), &mut df).unwrap();
        }
        for keys in [["a", "b"], ["b", "a"]] {
            let keys: Vec<String> = keys.iter().map(|k| k.to_string()).collect();
            let df = stack(dir.path(), &keys, &["key"]).unwrap().unwrap();
            assert_eq!(df.height(), 2);
            let flops: Vec<Option<f64>> = df.column("flops").unwrap().f64().unwrap().iter().collect();
            assert_eq!(flops, vec![None, Some(3.0e6)]);
            assert_eq!(f64_column(&df, "loss").unwrap(), vec![1.5, 1.25]);
            assert_eq!(df.column("lm_params").unwrap().i64().unwrap().get(0), None);
        }
    }

    #[test]
    fn rows_of_an_lm_axis_are_grouped_by_strategy_and_lm() {
        let plain = DataFrame::new(2, vec![Column::new("strategy".into(), ["pool/sample", "sample/sample"]), Column::new("loss".into(), [1.0, 2.0])]).unwrap();
        assert_eq!(fit_groups(&plain).unwrap(), vec!["pool/sample", "sample/sample"]);
        assert_eq!(with_fit_groups(&plain).unwrap(), plain);
        let mut axis = plain.clone();
        axis.with_column(Column::new("lm".into(), ["small", "big"])).unwrap();
        assert_eq!(fit_groups(&axis).unwrap(), vec!["pool/sample @ small", "sample/sample @ big"]);
        let grouped = with_fit_groups(&axis).unwrap();
        assert_eq!(str_column(&grouped, "strategy").unwrap(), fit_groups(&axis).unwrap());
        assert_eq!(f64_column(&grouped, "loss").unwrap(), vec![1.0, 2.0]);
    }
}
