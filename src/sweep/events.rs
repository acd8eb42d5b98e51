//! What a running sweep reports as it goes. The library never prints: the CLI implements
//! [`SweepEvents`] (bars on a terminal, lines otherwise), tests use [`Silent`].
use crate::eval::EvalResult;
use crate::results::PointRow;
use crate::sweep::Point;

/// A sweep's state when it starts.
#[derive(Debug, Clone)]
pub struct SweepStart {
    /// The run's name.
    pub name: String,
    /// Points of the whole sweep.
    pub points: usize,
    /// Points finished before this run.
    pub finished: usize,
    /// Points this run trains.
    pub to_train: usize,
    /// The compute device's name.
    pub device: String,
}

/// The text-only warm start and the blind baseline, once trained.
#[derive(Debug, Clone)]
pub struct BaselineDone {
    /// Steps of the text-only warm start.
    pub prior_steps: usize,
    /// Steps of the blind baseline (as a point's).
    pub steps: usize,
    /// Wall time of both.
    pub seconds: f64,
    /// The blind baseline's held-out scores.
    pub eval: EvalResult,
}

/// Receives a sweep's progress. Every method has an empty default; implementations must be
/// `Sync` because training workers report from their own threads.
pub trait SweepEvents: Sync {
    /// The sweep has planned its points and locked its directory.
    fn started(&self, _start: &SweepStart) {}
    /// Something the user should know that does not stop the sweep.
    fn warning(&self, _message: &str) {}
    /// Both splits are loaded (or rendered and encoded).
    fn data_ready(&self, _description: &str, _seconds: f64) {}
    /// The warm start and the blind baseline are trained.
    fn baseline_done(&self, _baseline: &BaselineDone) {}
    /// Training begins on `workers` threads, each point `steps` steps long.
    fn training(&self, _workers: usize, _steps: usize) {}
    /// `worker` starts training `point`.
    fn point_started(&self, _worker: usize, _point: &Point) {}
    /// `worker` has taken `step` optimiser steps of its point.
    fn step(&self, _worker: usize, _step: usize) {}
    /// A point is saved (trained, or recorded as the twin of a trained one).
    fn point_finished(&self, _point: &Point, _row: &PointRow) {}
    /// A point's training failed with `message` (recorded in `points/<key>.failed`); the
    /// others go on.
    fn point_failed(&self, _point: &Point, _message: &str) {}
    /// Every point of this run is done (or a worker failed).
    fn training_done(&self) {}
}

/// Reports nothing.
pub struct Silent;

impl SweepEvents for Silent {}
