//! The three law forms, their parameter layouts, and prediction on both scales.
//!
//! The optimiser works on θ = (e, a, [b,] α, [β]) with e = log E, a = log A, b = log B, so
//! that E, A, B stay positive; the log prediction is a log-sum-exp of the law's terms. The
//! natural parameters use the same order with the log entries exponentiated, which is the
//! order of `param_names` in fits.json.
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};

/// A scaling-law form in one factor x or two factors x, y.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Law {
    /// L = E + A·x^−α.
    Power,
    /// L = E + A·x^−α + B·y^−β (Chinchilla's form).
    Additive,
    /// L = E + A·x^−α·y^−β.
    Multiplicative,
}

impl Law {
    /// Every law, in the order reports list them.
    pub const ALL: [Law; 3] = [Law::Power, Law::Additive, Law::Multiplicative];

    /// The lower-case name used on the command line and in JSON.
    pub fn name(self) -> &'static str {
        match self {
            Law::Power => "power",
            Law::Additive => "additive",
            Law::Multiplicative => "multiplicative",
        }
    }

    /// Parses a law's name.
    pub fn parse(s: &str) -> Result<Law> {
        Law::ALL
            .into_iter()
            .find(|l| l.name() == s)
            .ok_or_else(|| Error::input(super::options::names::LAW, format!("'{s}' is not one of power, additive, multiplicative")))
    }

    /// Whether the law has a second factor y.
    pub fn uses_y(self) -> bool {
        self != Law::Power
    }

    /// The number of fitted parameters.
    pub fn n_params(self) -> usize {
        self.param_names().len()
    }

    /// How many leading entries of θ are logs (e, a and, for additive, b).
    pub fn n_log_params(self) -> usize {
        match self {
            Law::Additive => 3,
            _ => 2,
        }
    }

    /// Natural-scale parameter names in storage order.
    pub fn param_names(self) -> &'static [&'static str] {
        match self {
            Law::Power => &["E", "A", "alpha"],
            Law::Additive => &["E", "A", "B", "alpha", "beta"],
            Law::Multiplicative => &["E", "A", "alpha", "beta"],
        }
    }

    /// Natural parameters (E, A, [B,] α, [β]) from the optimiser's θ.
    pub fn to_natural(self, theta: &[f64]) -> Vec<f64> {
        let k = self.n_log_params();
        theta.iter().enumerate().map(|(i, &v)| if i < k { v.exp() } else { v }).collect()
    }

    /// The optimiser's θ from natural parameters; E, A, B must be positive.
    pub fn to_theta(self, natural: &[f64]) -> Vec<f64> {
        let k = self.n_log_params();
        natural.iter().enumerate().map(|(i, &v)| if i < k { v.ln() } else { v }).collect()
    }

    /// L̂ at (x, y) from natural parameters; `y` is ignored by the power law.
    pub fn predict(self, p: &[f64], x: f64, y: f64) -> f64 {
        match self {
            Law::Power => p[0] + p[1] * x.powf(-p[2]),
            Law::Additive => p[0] + p[1] * x.powf(-p[3]) + p[2] * y.powf(-p[4]),
            Law::Multiplicative => p[0] + p[1] * x.powf(-p[2]) * y.powf(-p[3]),
        }
    }

    /// (x·∂L̂/∂x, y·∂L̂/∂y) from natural parameters: the slopes of L̂ in log x and log y.
    pub fn elasticities(self, p: &[f64], x: f64, y: f64) -> (f64, f64) {
        match self {
            Law::Power => (-p[2] * p[1] * x.powf(-p[2]), 0.0),
            Law::Additive => (-p[3] * p[1] * x.powf(-p[3]), -p[4] * p[2] * y.powf(-p[4])),
            Law::Multiplicative => {
                let term = p[1] * x.powf(-p[2]) * y.powf(-p[3]);
                (-p[2] * term, -p[3] * term)
            }
        }
    }

    /// log L̂ at (log x, log y) from θ, in the overflow-safe log-sum-exp form.
    pub fn log_predict(self, theta: &[f64], lx: f64, ly: f64) -> f64 {
        match self {
            Law::Power => log_sum_exp(&[theta[0], theta[1] - theta[2] * lx]),
            Law::Additive => log_sum_exp(&[theta[0], theta[1] - theta[3] * lx, theta[2] - theta[4] * ly]),
            Law::Multiplicative => log_sum_exp(&[theta[0], theta[1] - theta[2] * lx - theta[3] * ly]),
        }
    }

    /// The index of α in θ and in the natural parameters.
    pub fn alpha_index(self) -> usize {
        self.n_log_params()
    }

    /// The index of β, for laws that have one.
    pub fn beta_index(self) -> Option<usize> {
        match self {
            Law::Power => None,
            Law::Additive => Some(4),
            Law::Multiplicative => Some(3),
        }
    }

    /// The index of B, for the additive law.
    pub fn b_index(self) -> Option<usize> {
        (self == Law::Additive).then_some(2)
    }
}

/// log Σ exp(z) without overflow.
pub fn log_sum_exp(z: &[f64]) -> f64 {
    let m = z.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if !m.is_finite() {
        return m;
    }
    m + z.iter().map(|&v| (v - m).exp()).sum::<f64>().ln()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_prediction_matches_natural_prediction() {
        let cases: [(Law, Vec<f64>); 3] =
            [(Law::Power, vec![1.7, 400.0, 0.3]), (Law::Additive, vec![1.7, 400.0, 2000.0, 0.34, 0.37]), (Law::Multiplicative, vec![1.7, 40.0, 0.3, 0.2])];
        for (law, p) in cases {
            let theta = law.to_theta(&p);
            for (x, y) in [(1.0, 1.0), (8.0, 49.0), (1e9, 2e10)] {
                let direct = law.predict(&p, x, y);
                let via_lse = law.log_predict(&theta, f64::ln(x), f64::ln(y)).exp();
                assert!((direct - via_lse).abs() <= 1e-13 * direct, "{law:?} at ({x},{y})");
            }
        }
    }

    #[test]
    fn elasticities_match_finite_differences() {
        let cases: [(Law, Vec<f64>); 3] =
            [(Law::Power, vec![1.7, 400.0, 0.3]), (Law::Additive, vec![1.7, 400.0, 2000.0, 0.34, 0.37]), (Law::Multiplicative, vec![1.7, 40.0, 0.3, 0.2])];
        for (law, p) in cases {
            let (x, y) = (12.0, 49.0);
            let (ex, ey) = law.elasticities(&p, x, y);
            let h = 1e-6;
            let nx = (law.predict(&p, x * f64::exp(h), y) - law.predict(&p, x * f64::exp(-h), y)) / (2.0 * h);
            let ny = (law.predict(&p, x, y * f64::exp(h)) - law.predict(&p, x, y * f64::exp(-h))) / (2.0 * h);
            assert!((ex - nx).abs() < 1e-7 * (1.0 + nx.abs()) && (ey - ny).abs() < 1e-7 * (1.0 + ny.abs()), "{law:?}");
        }
    }

    #[test]
    fn log_sum_exp_survives_huge_terms() {
        let v = log_sum_exp(&[1000.0, 1000.0]);
        assert!((v - (1000.0 + std::f64::consts::LN_2)).abs() < 1e-12);
        assert_eq!(log_sum_exp(&[f64::NEG_INFINITY, f64::NEG_INFINITY]), f64::NEG_INFINITY);
    }

    #[test]
    fn parses_names_and_rejects_others() {
        assert_eq!(Law::parse("additive").unwrap(), Law::Additive);
        let e = Law::parse("linear").unwrap_err();
        assert_eq!(e.exit_code(), 2);
    }
}
