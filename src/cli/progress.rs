//! The sweep's progress on stderr: a bar over points and one step bar per worker on a
//! terminal, plain lines otherwise (logs, CI).
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use vislaw::results::PointRow;
use vislaw::sweep::events::{BaselineDone, SweepStart};
use vislaw::sweep::{Point, SweepEvents};

/// Draws a sweep's events.
pub struct Progress {
    /// Whether stderr is a terminal (bars) or not (lines).
    terminal: bool,
    bars: Mutex<Option<Bars>>,
    total: AtomicUsize,
    counter: AtomicUsize,
}

struct Bars {
    multi: MultiProgress,
    points: ProgressBar,
    workers: Vec<ProgressBar>,
}

impl Progress {
    /// Bars when stderr is a terminal.
    pub fn new() -> Progress {
        Progress { terminal: std::io::stderr().is_terminal(), bars: Mutex::new(None), total: AtomicUsize::new(0), counter: AtomicUsize::new(0) }
    }

    fn with_bars(&self, f: impl FnOnce(&Bars)) {
        if let Ok(guard) = self.bars.lock() {
            if let Some(b) = guard.as_ref() {
                f(b);
            }
        }
    }
}

impl SweepEvents for Progress {
    fn started(&self, s: &SweepStart) {
        self.total.store(s.points, Ordering::SeqCst);
        self.counter.store(s.finished, Ordering::SeqCst);
        eprintln!("vislaw: {} — {} points ({} finished, {} to train) on {}", s.name, s.points, s.finished, s.to_train, s.device);
    }

    fn warning(&self, message: &str) {
        eprintln!("vislaw: warning: {message}");
    }

    fn data_ready(&self, description: &str, seconds: f64) {
        eprintln!("vislaw: encoded {description} ({seconds:.1} s)");
    }

    fn baseline_done(&self, b: &BaselineDone) {
        let prior = if b.prior_steps == 0 {
            "no text-only warm start (a pretrained LM)".to_string()
        } else {
            format!("text-only warm start ({} steps)", b.prior_steps)
        };
        let blind = if b.steps == 0 { "zero-shot".to_string() } else { format!("{} steps", b.steps) };
        eprintln!(
            "vislaw: {prior} and blind baseline ({blind}, no visual tokens) in {:.1} s: loss {:.4}, accuracy {:.3}",
            b.seconds, b.eval.loss, b.eval.accuracy
        );
    }

    fn training(&self, workers: usize, steps: usize) {
        if !self.terminal {
            return;
        }
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
        let points = multi.add(ProgressBar::new(self.total.load(Ordering::SeqCst) as u64));
        points.set_style(ProgressStyle::with_template("points {bar:30.cyan/blue} {pos}/{len}  eta {eta}").expect("static template"));
        points.set_position(self.counter.load(Ordering::SeqCst) as u64);
        let style = ProgressStyle::with_template("steps  {bar:30.green/white} {pos}/{len}  {per_sec}  {msg}").expect("static template");
        let workers = (0..workers).map(|_| multi.add(ProgressBar::new(steps as u64).with_style(style.clone()))).collect();
        if let Ok(mut guard) = self.bars.lock() {
            *guard = Some(Bars { multi, points, workers });
        }
    }

    fn point_started(&self, worker: usize, p: &Point) {
        self.with_bars(|b| {
            b.workers[worker].set_message(format!("{} T={} M={} seed={}", p.strategy(), p.shape.frames, p.shape.tokens_per_frame, p.seed));
            b.workers[worker].set_position(0);
        });
    }

    fn step(&self, worker: usize, step: usize) {
        self.with_bars(|b| b.workers[worker].set_position(step as u64));
    }

    fn point_finished(&self, p: &Point, row: &PointRow) {
        let count = self.counter.fetch_add(1, Ordering::SeqCst) + 1;
        let line = format!(
            "[{}/{}] {} T={} M={} seed={}: loss {:.4} ± {:.4}, accuracy {:.3} ({:.1} s)",
            count,
            self.total.load(Ordering::SeqCst),
            p.strategy(),
            p.shape.frames,
            p.shape.tokens_per_frame,
            p.seed,
            row.eval.loss,
            row.eval.loss_se,
            row.eval.accuracy,
            row.wall_s
        );
        let mut printed = false;
        self.with_bars(|b| {
            b.points.inc(1);
            let _ = b.multi.println(&line);
            printed = true;
        });
        if !printed {
            eprintln!("{line}");
        }
    }

    fn training_done(&self) {
        if let Ok(mut guard) = self.bars.lock() {
            if let Some(b) = guard.take() {
                b.workers.iter().for_each(ProgressBar::finish_and_clear);
                b.points.finish_and_clear();
                let _ = b.multi.clear();
            }
        }
    }
}
