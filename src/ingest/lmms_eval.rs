//! lmms-eval results as a scaling table: one row per (run, task, metric).
//!
//! Fields read from an aggregated `<date_id>_results.json` (what lmms-eval's evaluator and
//! its `EvaluationTracker` write):
//! - `results.<task>.<metric>,<filter>`: the metric's value (numbers only; `alias` and
//!   other text entries are skipped), and `results.<task>.<metric>_stderr,<filter>`, its
//!   standard error when numeric (lmms-eval writes `"N/A"` when it has none);
//! - `n-samples.<task>.effective`: the number of documents scored;
//! - `config.model` and `config.model_args` (a `k=v,k=v` string or an object): the frame
//!   count is read from `max_frames_num` (llava_vid, llava_onevision), `num_frame`
//!   (internvl2), `num_frames`, `nframes` or `max_num_frames`, unless given per file; the
//!   tokens per frame from `tokens_per_frame`, else they must be given.
//!
//! With `--log_samples`, `<date_id>_samples_<task>.jsonl` beside the results holds one line
//! per document; the value of metric `m` is `line[m]` when it is a number or a boolean, or,
//! when it is an object (video tasks such as Video-MME), `pred_answer == answer` or its
//! numeric `score`. The video of a line is the first of the cluster-key fields found at the
//! line's top level, in that object, or in `doc`. Then the standard error is clustered by
//! video (questions on one video are correlated), and `se_method` says which was used.
//!
//! Values above 1 mark a percentage metric (lmms-eval's video tasks report 0–100): `value`
//! keeps what the file says and `score` is the fraction in [0, 1], which `fit --error` reads.
use crate::error::{Error, Result};
use crate::eval::clustered_se;
use polars::prelude::*;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The keys of `model_args` that carry the frame count, in the order they are looked for.
pub const FRAME_KEYS: [&str; 5] = ["max_frames_num", "num_frame", "num_frames", "nframes", "max_num_frames"];
/// The key of `model_args` that carries the tokens per frame.
pub const TOKENS_KEY: &str = "tokens_per_frame";
/// The fields that name a sample's video, in the order they are looked for.
pub const DEFAULT_CLUSTER_KEYS: [&str; 4] = ["video_id", "videoID", "video", "video_name"];

/// Settings of one results file that its own record may lack.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunSettings {
    /// Frames per video; overrides `model_args`.
    pub frames: Option<i64>,
    /// Visual tokens per frame; overrides `model_args`.
    pub tokens_per_frame: Option<i64>,
}

/// What to ingest.
#[derive(Debug, Clone, Default)]
pub struct IngestOptions {
    /// Results files or directories searched for `*_results.json`.
    pub paths: Vec<PathBuf>,
    /// Per path (one entry: for every path), settings that override the file's record.
    pub settings: Vec<RunSettings>,
    /// The sample fields that name a video (empty: [`DEFAULT_CLUSTER_KEYS`]).
    pub cluster_keys: Vec<String>,
}

/// One (run, task, metric) of an lmms-eval results file.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricRow {
    /// The results file.
    pub source: String,
    /// `config.model`.
    pub model: String,
    /// The task.
    pub task: String,
    /// The metric's name, before the comma.
    pub metric: String,
    /// The filter, after the comma (`none` mostly).
    pub filter: String,
    /// Frames per video.
    pub frames: i64,
    /// Visual tokens per frame.
    pub tokens_per_frame: i64,
    /// The value as reported.
    pub value: f64,
    /// The value as a fraction in [0, 1] (a metric whose value exceeds 1 in any run is a
    /// percentage, divided by 100 in every run).
    pub score: f64,
    /// The standard error of `score`.
    pub score_se: f64,
    /// How `score_se` was obtained: `clustered`, `per-sample`, `reported` or `none`.
    pub se_method: &'static str,
    /// Documents scored.
    pub samples: i64,
}

/// Reads every results file the options name, in path order.
pub fn ingest(opts: &IngestOptions) -> Result<Vec<MetricRow>> {
    if opts.paths.is_empty() {
        return Err(Error::input("paths", "no results file given"));
    }
    if opts.settings.len() > 1 && opts.settings.len() != opts.paths.len() {
        return Err(Error::input("settings", format!("{} given for {} paths: give one for all, or one per path", opts.settings.len(), opts.paths.len())));
    }
    let keys: Vec<String> = if opts.cluster_keys.is_empty() { DEFAULT_CLUSTER_KEYS.map(String::from).to_vec() } else { opts.cluster_keys.clone() };
    let mut rows = Vec::new();
    for (i, path) in opts.paths.iter().enumerate() {
        let settings = opts.settings.get(i).or(opts.settings.first()).cloned().unwrap_or_default();
        for file in results_files(path)? {
            rows.extend(read_results(&file, &settings, &keys)?);
        }
    }
    to_fractions(&mut rows);
    Ok(rows)
}

/// Divides `score` and `score_se` by 100 for every (task, metric, filter) with a value
/// above 1 in any run: one scale per metric, whatever the runs' values.
fn to_fractions(rows: &mut [MetricRow]) {
    let mut percent: BTreeMap<(String, String, String), bool> = BTreeMap::new();
    for r in rows.iter() {
        *percent.entry((r.task.clone(), r.metric.clone(), r.filter.clone())).or_default() |= r.value > 1.0;
    }
    for r in rows.iter_mut() {
        if percent[&(r.task.clone(), r.metric.clone(), r.filter.clone())] {
            r.score = r.value / 100.0;
            r.score_se /= 100.0;
        }
    }
}

/// The results files of a path: itself, or the `*_results.json` under a directory, sorted.
fn results_files(path: &Path) -> Result<Vec<PathBuf>> {
    if path.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    if !path.is_dir() {
        return Err(Error::file(path, "no such file or directory"));
    }
    let mut out = Vec::new();
    let mut stack = vec![path.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).map_err(|e| Error::file(&dir, format!("cannot list: {e}")))? {
            let p = entry?.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.ends_with("_results.json") || n == "results.json") {
                out.push(p);
            }
        }
    }
    if out.is_empty() {
        return Err(Error::file(path, "no *_results.json under this directory"));
    }
    out.sort();
    Ok(out)
}

fn read_results(path: &Path, settings: &RunSettings, cluster_keys: &[String]) -> Result<Vec<MetricRow>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::file(path, format!("cannot read: {e}")))?;
    let doc: Value = serde_json::from_str(&text).map_err(|e| Error::file(path, format!("not JSON: {e}")))?;
    let results = doc.get("results").and_then(Value::as_object).ok_or_else(|| Error::file(path, "no 'results' object: not an lmms-eval results file"))?;
    let config = doc.get("config").cloned().unwrap_or(Value::Null);
    let args = model_args(config.get("model_args"));
    let frames = settings.frames.or_else(|| FRAME_KEYS.iter().find_map(|k| args.get(*k).and_then(|v| v.parse().ok())));
    let frames = frames.ok_or_else(|| Error::file(path, format!("no frame count: model_args has none of {}; give it per file", FRAME_KEYS.join(", "))))?;
    let tokens = settings.tokens_per_frame.or_else(|| args.get(TOKENS_KEY).and_then(|v| v.parse().ok()));
    let tokens = tokens.ok_or_else(|| Error::file(path, format!("no tokens per frame: model_args has no {TOKENS_KEY}; give it per file")))?;
    if frames < 1 || tokens < 1 {
        return Err(Error::file(path, format!("frames ({frames}) and tokens per frame ({tokens}) must be at least 1")));
    }
    let model = config.get("model").and_then(Value::as_str).unwrap_or("").to_string();
    let mut rows = Vec::new();
    for (task, metrics) in results {
        let Some(metrics) = metrics.as_object() else { continue };
        let samples = doc.pointer(&format!("/n-samples/{}/effective", escape_pointer(task))).and_then(Value::as_i64);
        let per_sample = read_samples(&samples_file(path, task), cluster_keys)?;
        for (name, value) in metrics {
            let (Some(value), Some((metric, filter))) = (value.as_f64(), name.split_once(',')) else { continue };
            if metric.ends_with("_stderr") {
                continue;
            }
            let reported = metrics.get(&format!("{metric}_stderr,{filter}")).and_then(Value::as_f64);
            let from_samples = per_sample.get(metric).and_then(|s| s.se_in_units_of(value).map(|se| (se, s.method(), s.values.len() as i64)));
            let (value_se, se_method, n) = match (from_samples, reported) {
                (Some(s), _) => s,
                (None, Some(se)) => (se, "reported", samples.unwrap_or(-1)),
                (None, None) => (f64::NAN, "none", samples.unwrap_or(-1)),
            };
            rows.push(MetricRow {
                source: path.display().to_string(),
                model: model.clone(),
                task: task.clone(),
                metric: metric.to_string(),
                filter: filter.to_string(),
                frames,
                tokens_per_frame: tokens,
                value,
                score: value,
                score_se: value_se,
                se_method,
                samples: n,
            });
        }
    }
    Ok(rows)
}

/// `model_args` as key → value text, from lmms-eval's `k=v,k=v` string or an object.
fn model_args(v: Option<&Value>) -> BTreeMap<String, String> {
    match v {
        Some(Value::String(s)) => s.split(',').filter_map(|kv| kv.split_once('=')).map(|(k, v)| (k.trim().to_string(), v.trim().to_string())).collect(),
        Some(Value::Object(m)) => m.iter().map(|(k, v)| (k.clone(), v.as_str().map(String::from).unwrap_or_else(|| v.to_string()))).collect(),
        _ => BTreeMap::new(),
    }
}

fn escape_pointer(s: &str) -> String {
    s.replace('~', "~0").replace('/', "~1")
}

/// `<date_id>_samples_<task>.jsonl` beside `<date_id>_results.json`.
fn samples_file(results: &Path, task: &str) -> PathBuf {
    let name = results.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let date_id = name.strip_suffix("_results.json").unwrap_or("");
    results.with_file_name(format!("{date_id}_samples_{task}.jsonl"))
}

/// The per-document values of one metric, and their videos when known.
#[derive(Debug, Default)]
struct Samples {
    values: Vec<f64>,
    videos: Vec<Option<String>>,
}

impl Samples {
    fn clustered(&self) -> bool {
        self.videos.iter().all(Option::is_some)
    }
    fn method(&self) -> &'static str {
        if self.clustered() {
            "clustered"
        } else {
            "per-sample"
        }
    }
    /// The standard error in the units of the aggregate `value`: the documents' mean must be
    /// the value, or the value a percentage of it; otherwise (an aggregation other than
    /// the mean) the samples cannot give it.
    fn se_in_units_of(&self, value: f64) -> Option<f64> {
        let mean = self.values.iter().sum::<f64>() / self.values.len() as f64;
        let close = |a: f64, b: f64| (a - b).abs() <= 1e-6 * a.abs().max(b.abs()).max(1e-12);
        if close(value, mean) {
            Some(self.se())
        } else if close(value, 100.0 * mean) {
            Some(100.0 * self.se())
        } else {
            None
        }
    }

    /// Clustered by video when every line names one, else with each document its own cluster.
    fn se(&self) -> f64 {
        let clusters: Vec<usize> = if self.clustered() {
            let mut ids = BTreeMap::new();
            self.videos
                .iter()
                .map(|v| {
                    let n = ids.len();
                    *ids.entry(v.clone()).or_insert(n)
                })
                .collect()
        } else {
            (0..self.values.len()).collect()
        };
        clustered_se(&self.values, &clusters)
    }
}

/// Reads a samples file, when there is one, into per-metric values.
fn read_samples(path: &Path, cluster_keys: &[String]) -> Result<BTreeMap<String, Samples>> {
    // Bookkeeping fields (`doc_id`) are numbers too: harmless, since only the metrics of
    // the results are looked up.
    let mut out: BTreeMap<String, Samples> = BTreeMap::new();
    let Ok(text) = std::fs::read_to_string(path) else { return Ok(out) };
    for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let v: Map<String, Value> = serde_json::from_str(line).map_err(|e| Error::file(path, format!("line {}: {e}", i + 1)))?;
        for (name, value) in &v {
            let Some(x) = sample_value(value) else { continue };
            let video = cluster_keys.iter().find_map(|k| video_of(&v, value, k));
            let s = out.entry(name.clone()).or_default();
            s.values.push(x);
            s.videos.push(video);
        }
    }
    Ok(out)
}

/// A document's score: a number, a boolean, or an object's `pred_answer == answer` or `score`.
fn sample_value(v: &Value) -> Option<f64> {
    match v {
        Value::Bool(b) => Some(f64::from(u8::from(*b))),
        Value::Number(n) => n.as_f64(),
        Value::Object(m) => match (m.get("pred_answer"), m.get("answer")) {
            (Some(p), Some(a)) => Some(f64::from(u8::from(p == a))),
            _ => m.get("score").and_then(Value::as_f64).map(|s| if s > 1.0 { s / 100.0 } else { s }),
        },
        _ => None,
    }
}

fn video_of(line: &Map<String, Value>, metric: &Value, key: &str) -> Option<String> {
    let text = |v: &Value| match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    };
    line.get(key).and_then(text).or_else(|| metric.get(key).and_then(text)).or_else(|| line.get("doc").and_then(|d| d.get(key)).and_then(text))
}

/// The rows as a frame with the columns `fit` and `optimum` read (`frames`,
/// `tokens_per_frame`, `score`, `score_se`) and the ones that tell rows apart.
pub fn to_frame(rows: &[MetricRow]) -> Result<DataFrame> {
    let s = |name: &str, f: &dyn Fn(&MetricRow) -> String| Column::new(name.into(), rows.iter().map(f).collect::<Vec<_>>());
    let i = |name: &str, f: &dyn Fn(&MetricRow) -> i64| Column::new(name.into(), rows.iter().map(f).collect::<Vec<_>>());
    let x = |name: &str, f: &dyn Fn(&MetricRow) -> f64| Column::new(name.into(), rows.iter().map(f).collect::<Vec<_>>());
    DataFrame::new(
        rows.len(),
        vec![
            s("source", &|r| r.source.clone()),
            s("model", &|r| r.model.clone()),
            s("task", &|r| r.task.clone()),
            s("metric", &|r| r.metric.clone()),
            s("filter", &|r| r.filter.clone()),
            i("frames", &|r| r.frames),
            i("tokens_per_frame", &|r| r.tokens_per_frame),
            x("value", &|r| r.value),
            x("score", &|r| r.score),
            x("score_se", &|r| r.score_se),
            s("se_method", &|r| r.se_method.to_string()),
            i("samples", &|r| r.samples),
        ],
    )
    .map_err(|e| Error::internal(format!("building the ingest table: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An aggregated results file in lmms-eval's layout, with one task.
    fn results_json(model_args: &str, acc: f64, stderr: &str) -> String {
        format!(
            r#"{{"results": {{"videomme": {{"alias": "videomme", "acc,none": {acc}, "acc_stderr,none": {stderr}}}}},
               "n-samples": {{"videomme": {{"original": 6, "effective": 6}}}},
               "config": {{"model": "llava_onevision", "model_args": "{model_args}", "batch_size": "1"}},
               "date": "20260101_000000"}}"#
        )
    }

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    fn opts(paths: Vec<PathBuf>, settings: Vec<RunSettings>) -> IngestOptions {
        IngestOptions { paths, settings, cluster_keys: vec![] }
    }

    #[test]
    fn frames_come_from_model_args_and_the_reported_stderr_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(dir.path(), "a_results.json", &results_json("pretrained=x,max_frames_num=16,tokens_per_frame=196", 0.5, "0.1"));
        let rows = ingest(&opts(vec![p], vec![])).unwrap();
        assert_eq!(rows.len(), 1);
        let r = &rows[0];
        assert_eq!((r.task.as_str(), r.metric.as_str(), r.filter.as_str()), ("videomme", "acc", "none"));
        assert_eq!((r.frames, r.tokens_per_frame, r.samples), (16, 196, 6));
        assert_eq!((r.value, r.score, r.score_se, r.se_method), (0.5, 0.5, 0.1, "reported"));
    }

    #[test]
    fn per_file_settings_override_model_args_and_na_stderr_is_none() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(dir.path(), "a_results.json", &results_json("pretrained=x,num_frame=8", 0.25, "\"N/A\""));
        let rows = ingest(&opts(vec![p], vec![RunSettings { frames: Some(32), tokens_per_frame: Some(49) }])).unwrap();
        assert_eq!((rows[0].frames, rows[0].tokens_per_frame, rows[0].se_method), (32, 49, "none"));
        assert!(rows[0].score_se.is_nan());
    }

    #[test]
    fn samples_give_a_standard_error_clustered_by_video_and_percentages_become_fractions() {
        let dir = tempfile::tempdir().unwrap();
        // Six questions on three videos, four right: 66.67 %, as Video-MME reports it.
        let p = write(dir.path(), "d1_results.json", &results_json("max_frames_num=4,tokens_per_frame=9", 400.0 / 6.0, "\"N/A\""));
        let hits = [(1, "v1", 1.0), (2, "v1", 1.0), (3, "v2", 0.0), (4, "v2", 1.0), (5, "v3", 0.0), (6, "v3", 1.0)];
        let lines: String = hits
            .iter()
            .map(|(id, v, h)| {
                let pred = if *h == 1.0 { "A" } else { "B" };
                format!("{{\"doc_id\": {id}, \"acc\": {{\"video_id\": \"{v}\", \"pred_answer\": \"{pred}\", \"answer\": \"A\"}}}}\n")
            })
            .collect();
        write(dir.path(), "d1_samples_videomme.jsonl", &lines);
        let r = &ingest(&opts(vec![p], vec![])).unwrap()[0];
        assert_eq!(r.se_method, "clustered");
        assert!((r.score - 4.0 / 6.0).abs() < 1e-12, "{}", r.score);
        // By hand: residuals per video (1−m)+(1−m), (0−m)+(1−m), (0−m)+(1−m) with m = 2/3:
        // 2/3, −1/3, −1/3; SE² = 3/2 · (4/9 + 1/9 + 1/9) / 36 = 1/36, so SE = 1/6.
        assert!((r.score_se - 1.0 / 6.0).abs() < 1e-12, "{}", r.score_se);
        assert_eq!(r.samples, 6);
    }

    #[test]
    fn without_video_ids_each_document_is_its_own_cluster() {
        let dir = tempfile::tempdir().unwrap();
        let p = write(dir.path(), "d1_results.json", &results_json("max_frames_num=4,tokens_per_frame=9", 0.5, "0.3"));
        write(
            dir.path(),
            "d1_samples_videomme.jsonl",
            "{\"doc_id\": 0, \"acc\": 1}\n{\"doc_id\": 1, \"acc\": 0}\n{\"doc_id\": 2, \"acc\": true}\n{\"doc_id\": 3, \"acc\": false}\n",
        );
        let r = &ingest(&opts(vec![p], vec![])).unwrap()[0];
        assert_eq!(r.se_method, "per-sample");
        // Singleton clusters: SE² = 4/3 · Σ(x−m)² / 16 = 4/3 · 1 / 16 = 1/12.
        assert!((r.score_se - (1.0f64 / 12.0).sqrt()).abs() < 1e-12);
    }

    #[test]
    fn a_percentage_in_one_run_makes_the_metric_a_percentage_in_all() {
        let dir = tempfile::tempdir().unwrap();
        let a = write(dir.path(), "a_results.json", &results_json("max_frames_num=4,tokens_per_frame=9", 0.9, "0.2"));
        let b = write(dir.path(), "b_results.json", &results_json("max_frames_num=8,tokens_per_frame=9", 55.0, "2.0"));
        let rows = ingest(&opts(vec![a, b], vec![])).unwrap();
        let want = [(0.009, 0.002), (0.55, 0.02)];
        for (r, (score, se)) in rows.iter().zip(want) {
            assert!((r.score - score).abs() < 1e-15 && (r.score_se - se).abs() < 1e-15, "{r:?}");
        }
    }

    #[test]
    fn a_directory_is_searched_and_bad_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("model")).unwrap();
        write(&dir.path().join("model"), "x_results.json", &results_json("max_frames_num=2,tokens_per_frame=4", 0.3, "0.1"));
        assert_eq!(ingest(&opts(vec![dir.path().to_path_buf()], vec![])).unwrap()[0].frames, 2);
        let p = write(dir.path(), "n_results.json", &results_json("pretrained=x", 0.3, "0.1"));
        let err = ingest(&opts(vec![p.clone()], vec![])).unwrap_err().to_string();
        assert!(err.contains("n_results.json") && err.contains("no frame count"), "{err}");
        let q = write(dir.path(), "q_results.json", "{\"config\": {}}");
        let err = ingest(&opts(vec![q], vec![])).unwrap_err().to_string();
        assert!(err.contains("q_results.json") && err.contains("no 'results'"), "{err}");
        let two = vec![RunSettings::default(), RunSettings::default()];
        assert!(ingest(&opts(vec![p.clone(), p.clone(), p], two)).unwrap_err().to_string().contains("one per path"));
    }
}
