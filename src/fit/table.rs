//! The polars side of fitting: derived columns, then per-group column vectors out of a table.
use super::derive::Derivation;
use super::law::Law;
use super::options::{names, FitOptions, GroupRows};
use super::pipeline::fit_groups;
use super::report::FitReport;
use crate::error::{Error, Result};
use crate::results::{column_names, f64_column, read_table, str_column};
use polars::prelude::*;
use std::path::Path;

/// Fits a results table (any frame with the option's columns).
pub fn fit_table(df: &DataFrame, opts: &FitOptions) -> Result<FitReport> {
    let df = with_derived(df.clone(), &opts.derive)?;
    // Each kept row's 1-based number in the table as read, so that errors after a filter
    // or a grouping still name the row a spreadsheet shows.
    let numbers: Vec<usize> = match keep_mask(&df, &opts.filters)? {
        Some(keep) => (0..keep.len()).filter(|&i| keep[i]).map(|i| i + 1).collect(),
        None => (1..=df.height()).collect(),
    };
    let df = keep_rows(&df, &opts.filters)?;
    fit_groups(&group_rows(&df, &numbers, opts)?, opts)
}

/// A `COLUMN=VALUE` row filter: keep the rows whose column equals the value (as a
/// number for numeric columns, as text otherwise).
#[derive(Debug, Clone, PartialEq)]
pub struct RowFilter {
    /// The column compared.
    pub column: String,
    /// The value kept.
    pub value: String,
}

impl RowFilter {
    /// Parses `COLUMN=VALUE`.
    pub fn parse(text: &str) -> Result<RowFilter> {
        match text.split_once('=') {
            Some((column, value)) if !column.trim().is_empty() => Ok(RowFilter { column: column.trim().to_string(), value: value.trim().to_string() }),
            _ => Err(Error::input(names::FILTER, format!("'{text}' is not COLUMN=VALUE"))),
        }
    }

    fn mask(&self, df: &DataFrame) -> Result<Vec<bool>> {
        let column = df.column(&self.column).map_err(|_| Error::input(names::FILTER, format!("no column '{}' in the table", self.column)))?;
        if column.dtype().is_primitive_numeric() {
            let want: f64 =
                self.value.parse().map_err(|_| Error::input(names::FILTER, format!("'{}' is numeric, and '{}' is not a number", self.column, self.value)))?;
            Ok(f64_column(df, &self.column)?.into_iter().map(|v| v == want).collect())
        } else {
            Ok(str_column(df, &self.column)?.into_iter().map(|v| v == self.value).collect())
        }
    }
}

/// The rows that pass every filter; an error when none does.
pub fn keep_rows(df: &DataFrame, filters: &[RowFilter]) -> Result<DataFrame> {
    let Some(keep) = keep_mask(df, filters)? else { return Ok(df.clone()) };
    let mask = BooleanChunked::from_slice(PlSmallStr::from("keep"), &keep);
    df.filter(&mask).map_err(|e| Error::internal(format!("filtering rows: {e}")))
}

/// Which rows pass every filter (`None` without filters); an error when none does.
fn keep_mask(df: &DataFrame, filters: &[RowFilter]) -> Result<Option<Vec<bool>>> {
    if filters.is_empty() {
        return Ok(None);
    }
    let mut keep = vec![true; df.height()];
    for f in filters {
        for (k, pass) in keep.iter_mut().zip(f.mask(df)?) {
            *k &= pass;
        }
    }
    if !keep.contains(&true) {
        let all: Vec<String> = filters.iter().map(|f| format!("{}={}", f.column, f.value)).collect();
        return Err(Error::input(names::FILTER, format!("no row has {}", all.join(" and "))));
    }
    Ok(Some(keep))
}

/// Fits a run directory's results.parquet, or a .parquet/.csv file.
pub fn fit_input(path: &Path, opts: &FitOptions) -> Result<FitReport> {
    fit_table(&read_table(path)?, opts)
}

/// Adds each derived column in order (later ones may use earlier ones).
pub fn with_derived(mut df: DataFrame, derivations: &[Derivation]) -> Result<DataFrame> {
    for d in derivations {
        let values = d.eval(&|name| f64_column(&df, name))?;
        df.with_column(Column::new(PlSmallStr::from(d.name.as_str()), values))
            .map_err(|e| Error::input(names::DERIVE, format!("cannot add column '{}': {e}", d.name)))?;
    }
    Ok(df)
}

/// Splits the frame into groups (sorted by group value) with the columns the fit needs;
/// `numbers` are the frame's rows' numbers in the table read (1-based).
fn group_rows(df: &DataFrame, numbers: &[usize], opts: &FitOptions) -> Result<Vec<GroupRows>> {
    let x = f64_column(df, &opts.x)?;
    let has = |name: &str| column_names(df).iter().any(|c| c == name);
    let y = if opts.law != Some(Law::Power) || has(&opts.y) { Some(f64_column(df, &opts.y)?) } else { None };
    let loss = f64_column(df, &opts.loss)?;
    let (accuracy, accuracy_column) = accuracy_column(df, opts)?;
    let keys = match &opts.group_by {
        Some(col) => str_column(df, col)?,
        None => vec!["all".to_string(); loss.len()],
    };
    let mut names = keys.clone();
    names.sort();
    names.dedup();
    Ok(names
        .into_iter()
        .map(|name| {
            let idx: Vec<usize> = (0..keys.len()).filter(|&i| keys[i] == name).collect();
            let pick = |v: &[f64]| idx.iter().map(|&i| v[i]).collect::<Vec<f64>>();
            GroupRows {
                x: pick(&x),
                y: y.as_deref().map(pick),
                loss: pick(&loss),
                accuracy: accuracy.as_deref().map(pick),
                accuracy_column: accuracy_column.clone(),
                row_numbers: idx.iter().map(|&i| numbers[i]).collect(),
                name,
            }
        })
        .collect())
}

/// The accuracy column for the logistic link: the named one, or `accuracy` when the table
/// has it and the response is a loss.
fn accuracy_column(df: &DataFrame, opts: &FitOptions) -> Result<(Option<Vec<f64>>, Option<String>)> {
    if opts.error {
        return Ok((None, None));
    }
    match &opts.accuracy {
        Some(col) => Ok((Some(f64_column(df, col)?), Some(col.clone()))),
        None if column_names(df).iter().any(|c| c == "accuracy") && opts.loss != "accuracy" => {
            Ok((f64_column(df, "accuracy").ok(), Some("accuracy".to_string())))
        }
        None => Ok((None, None)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame() -> DataFrame {
        let mut frames = vec![];
        let mut tokens = vec![];
        let mut loss = vec![];
        let mut strategy = vec![];
        for (s, scale) in [("pool/uniform", 1.0), ("sample/uniform", 1.3)] {
            for t in [1.0, 2.0, 4.0, 8.0, 16.0, 32.0] {
                for m in [1.0, 4.0, 16.0, 49.0, 196.0] {
                    frames.push(t as i64);
                    tokens.push(m as i64);
                    loss.push(Law::Additive.predict(&[1.5, 2.0 * scale, 3.0, 0.6, 0.45], t, m));
                    strategy.push(s);
                }
            }
        }
        let n = frames.len();
        DataFrame::new(
            n,
            vec![
                Column::new("frames".into(), frames),
                Column::new("tokens_per_frame".into(), tokens),
                Column::new("loss".into(), loss),
                Column::new("strategy".into(), strategy),
            ],
        )
        .unwrap()
    }

    #[test]
    fn a_bad_row_is_named_by_its_table_row_after_filters_and_groups() {
        let mut df = frame();
        // Index 37 is sample/uniform at T=2, M=16: the 38th data row of the table.
        let mut loss = f64_column(&df, "loss").unwrap();
        loss[37] = -1.0;
        df.with_column(Column::new("loss".into(), loss)).unwrap();
        let opts = FitOptions {
            group_by: Some("strategy".into()),
            filters: vec![RowFilter::parse("frames=2").unwrap()],
            grid: super::super::StartGrid::coarse(),
            bootstrap: 0,
            holdout_fraction: 0.0,
            ..FitOptions::default()
        };
        let report = fit_table(&df, &opts).unwrap();
        assert_eq!(report.skipped.len(), 1, "{:?}", report.skipped);
        assert!(report.skipped[0].reason.contains(": row 38: loss = -1;"), "{}", report.skipped[0].reason);
    }

    #[test]
    fn where_filters_keep_matching_rows_by_number_or_text() {
        let df = frame();
        let kept = keep_rows(&df, &[RowFilter::parse("frames=4").unwrap(), RowFilter::parse("strategy = pool/uniform").unwrap()]).unwrap();
        assert_eq!(kept.height(), 5);
        assert!(f64_column(&kept, "frames").unwrap().iter().all(|&t| t == 4.0));
        assert!(str_column(&kept, "strategy").unwrap().iter().all(|s| s == "pool/uniform"));
        assert_eq!(keep_rows(&df, &[]).unwrap().height(), df.height());
    }

    #[test]
    fn filter_errors_name_the_option_and_the_problem() {
        let df = frame();
        for (filter, says) in [("frames=3", "no row has frames=3"), ("nope=1", "no column 'nope'"), ("frames=four", "not a number")] {
            let e = keep_rows(&df, &[RowFilter::parse(filter).unwrap()]).unwrap_err();
            assert_eq!(e.exit_code(), 2);
            assert!(e.to_string().starts_with(names::FILTER) && e.to_string().contains(says), "{e}");
        }
        assert!(RowFilter::parse("frames").unwrap_err().to_string().contains("COLUMN=VALUE"));
    }

    #[test]
    fn a_filtered_axis_fits_its_own_power_law() {
        // M axis at T = 4 only: loss = E + A·M^(−α) with this group's constants.
        let opts = FitOptions {
            law: Some(Law::Power),
            x: "tokens_per_frame".into(),
            filters: vec![RowFilter::parse("frames=4").unwrap(), RowFilter::parse("strategy=pool/uniform").unwrap()],
            ..quick()
        };
        let report = fit_table(&frame(), &opts).unwrap();
        assert_eq!(report.fits.len(), 1);
        let fit = &report.fits[0];
        assert_eq!(fit.n_points, 5);
        // The T term is a constant at T = 4: E' = 1.5 + 2·4^−0.6, A = 3, α = 0.45.
        assert!((fit.params.e - (1.5 + 2.0 * 4f64.powf(-0.6))).abs() < 1e-3, "{:?}", fit.params);
        assert!((fit.params.a - 3.0).abs() < 1e-3 && (fit.params.alpha - 0.45).abs() < 1e-3, "{:?}", fit.params);
    }

    fn quick() -> FitOptions {
        FitOptions { grid: crate::fit::lbfgs::StartGrid::coarse(), bootstrap: 20, ..FitOptions::default() }
    }

    #[test]
    fn one_fit_per_strategy_in_sorted_order() {
        let opts = FitOptions { group_by: Some("strategy".into()), ..quick() };
        let report = fit_table(&frame(), &opts).unwrap();
        let groups: Vec<&str> = report.fits.iter().map(|f| f.group.as_str()).collect();
        assert_eq!(groups, ["pool/uniform", "sample/uniform"]);
        let a = report.fits[1].params.a;
        assert!((a - 2.6).abs() < 1e-6, "A = {a}");
    }

    #[test]
    fn derived_columns_are_fittable() {
        let opts = FitOptions { derive: vec![Derivation::parse("budget = frames * tokens_per_frame").unwrap()], y: "budget".into(), ..quick() };
        let report = fit_table(&frame(), &opts).unwrap();
        assert_eq!(report.fits[0].y.as_deref(), Some("budget"));
    }

    #[test]
    fn missing_column_is_an_input_error_naming_it() {
        let opts = FitOptions { loss: "nope".into(), ..quick() };
        let e = fit_table(&frame(), &opts).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(e.to_string().contains("'nope'"), "{e}");
    }
}
