//! A fitted law as a function of (T, M): which of the fit's axes is T, its loss and
//! slopes there, and the feasible box of the continuous problem.
use super::OptimumOptions;
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
    pub(super) m_min: f64,
    pub(super) m_max: f64,
    pub(super) t_max: f64,
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
