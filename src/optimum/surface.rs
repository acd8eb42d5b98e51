//! A fitted law as a function of (T, M): which of the fit's axes is T, its loss and
//! slopes there, and the feasible box of the continuous problem.
use super::{Measured, OptimumOptions};
use crate::fit::report::num;
use crate::fit::{Fit, Law};

/// How a fit's axes map onto (T, M).
#[derive(Clone, Copy, Debug)]
pub(super) enum Axes {
    /// Two-factor law; `t_is_x` says which of x, y is T.
    Both { t_is_x: bool },
    /// Power law in T with M held at a value.
    OnlyT { m: f64 },
    /// Power law in M with T held at a value.
    OnlyM { t: f64 },
}

/// A law with one parameter vector, as a function of (T, M).
#[derive(Clone, Copy)]
pub(super) struct Surface<'a> {
    pub(super) law: Law,
    pub(super) p: &'a [f64],
    pub(super) axes: Axes,
}

impl Surface<'_> {
    pub(super) fn loss(&self, t: f64, m: f64) -> f64 {
        match self.axes {
            Axes::Both { t_is_x: true } => self.law.predict(self.p, t, m),
            Axes::Both { t_is_x: false } => self.law.predict(self.p, m, t),
            Axes::OnlyT { .. } => self.law.predict(self.p, t, 1.0),
            Axes::OnlyM { .. } => self.law.predict(self.p, m, 1.0),
        }
    }

    /// (T·∂L/∂T, M·∂L/∂M): slopes in log T and log M.
    pub(super) fn elasticities(&self, t: f64, m: f64) -> (f64, f64) {
        match self.axes {
            Axes::Both { t_is_x: true } => self.law.elasticities(self.p, t, m),
            Axes::Both { t_is_x: false } => {
                let (em, et) = self.law.elasticities(self.p, m, t);
                (et, em)
            }
            Axes::OnlyT { .. } => (self.law.elasticities(self.p, t, 1.0).0, 0.0),
            Axes::OnlyM { .. } => (0.0, self.law.elasticities(self.p, m, 1.0).0),
        }
    }

    /// (α, A, β, B) with α, A belonging to T, for the additive closed form.
    pub(super) fn additive_by_axis(&self) -> Option<(f64, f64, f64, f64)> {
        match (self.law, self.axes) {
            (Law::Additive, Axes::Both { t_is_x: true }) => Some((self.p[3], self.p[1], self.p[4], self.p[2])),
            (Law::Additive, Axes::Both { t_is_x: false }) => Some((self.p[4], self.p[2], self.p[3], self.p[1])),
            _ => None,
        }
    }
}

/// The feasible box of the continuous problem.
#[derive(Clone, Copy, Debug)]
pub(super) struct Box2 {
    pub(super) t_min: f64,
    pub(super) m_min: f64,
    pub(super) m_max: f64,
    pub(super) t_max: f64,
    /// Whether the box was cut down to the fit's measured ranges.
    pub(super) measured: bool,
}

impl Box2 {
    /// The part of the box inside the measured ranges (T only for a fit that varies only T,
    /// M only for one that varies only M); why not, when nothing is left.
    pub(super) fn within(self, measured: &Measured, axes: Axes) -> std::result::Result<Box2, String> {
        let mut b = Box2 { measured: true, ..self };
        if !matches!(axes, Axes::OnlyM { .. }) {
            (b.t_min, b.t_max) = (b.t_min.max(measured.t[0]), b.t_max.min(measured.t[1]));
        }
        if !matches!(axes, Axes::OnlyT { .. }) {
            (b.m_min, b.m_max) = (b.m_min.max(measured.m[0]), b.m_max.min(measured.m[1]));
        }
        if b.t_min > b.t_max {
            return Err(format!("no usable T inside the measured range [{}, {}]", num(measured.t[0]), num(measured.t[1])));
        }
        if b.m_min > b.m_max {
            return Err(format!("no usable M inside the measured range [{}, {}]", num(measured.m[0]), num(measured.m[1])));
        }
        Ok(b)
    }
}

/// The measured box of a fit in (T, M), from the ranges it records: a fit that varies only
/// one factor has the other's held value as its range.
pub(super) fn measured_of(fit: &Fit, axes: Axes) -> Option<Measured> {
    let r = fit.measured_ranges()?;
    let (t, m) = match axes {
        Axes::Both { t_is_x: true } => (r.x, r.y?),
        Axes::Both { t_is_x: false } => (r.y?, r.x),
        Axes::OnlyT { m } => (r.x, [m, m]),
        Axes::OnlyM { t } => ([t, t], r.x),
    };
    Some(Measured { t, m })
}

pub(super) fn axes_of(fit: &Fit, opts: &OptimumOptions) -> std::result::Result<Axes, String> {
    if fit.law.uses_y() {
        let t_is_x = !(fit.x == opts.tokens_column || fit.y.as_deref() == Some(opts.frames_column.as_str()));
        return Ok(Axes::Both { t_is_x });
    }
    let Some(fixed) = &fit.fixed else {
        return Err(format!("a power law in '{}' alone says nothing about how to split a budget between T and M", fit.x));
    };
    if fit.x == opts.tokens_column {
        Ok(Axes::OnlyM { t: fixed.value })
    } else {
        Ok(Axes::OnlyT { m: fixed.value })
    }
}
