//! Buy-till-you-die models shared by the ltv and tier-transition agents
//! (`docs/architecture.md#agents`: one implementation, never two).
//!
//! Fits run on sufficient statistics: members with identical summaries are one row with a
//! weight ([`group`]), so a fit costs in distinct summaries, not in members. Likelihoods
//! are computed in log space with analytic gradients; forecasts come from the member's
//! posterior, so a member with hundreds of purchases is as well behaved as a newcomer.

pub mod bgnbd;
pub mod cdnow;
pub mod gamma_gamma;
pub mod optimize;
pub mod params;
pub mod special;

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::hash::Hash;

use serde::{Deserialize, Serialize};

pub use bgnbd::BgNbd;
pub use gamma_gamma::{GammaGamma, Spend};

/// A member's purchase summary in the model's time unit: `x` repeat transactions, the
/// last at `t_x` after the first, observed for `t` since the first.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub x: f64,
    pub t_x: f64,
    pub t: f64,
}

impl Summary {
    pub fn new(x: f64, t_x: f64, t: f64) -> Self {
        Summary { x, t_x, t }
    }

    /// Why this summary cannot come from a purchase history, if it cannot.
    pub fn problem(&self) -> Option<String> {
        let finite = self.x.is_finite() && self.t_x.is_finite() && self.t.is_finite();
        if !finite || self.x < 0.0 || self.t_x < 0.0 || self.t_x > self.t {
            return Some(format!(
                "summary x={} t_x={} T={} needs 0 ≤ x and 0 ≤ t_x ≤ T",
                self.x, self.t_x, self.t
            ));
        }
        if self.x == 0.0 && self.t_x != 0.0 {
            return Some(format!("t_x={} without a repeat purchase", self.t_x));
        }
        None
    }
}

/// A row the fitters can merge with its identical twins: its fields' exact bits.
pub trait Row: Copy {
    type Key: Eq + Hash;
    fn key(&self) -> Self::Key;
}

impl Row for Summary {
    type Key = [u64; 3];
    fn key(&self) -> [u64; 3] {
        [self.x.to_bits(), self.t_x.to_bits(), self.t.to_bits()]
    }
}

impl Row for Spend {
    type Key = [u64; 2];
    fn key(&self) -> [u64; 2] {
        [self.x.to_bits(), self.mean_value.to_bits()]
    }
}

/// Identical rows merged into one with the summed weight, in first-seen order. Keys are
/// a few machine words compared exactly, so a fast non-cryptographic hash suffices: at
/// 10M members grouping was half the fit time with a `Vec` key and SipHash.
pub fn group<T: Row>(rows: impl IntoIterator<Item = T>) -> Vec<(T, f64)> {
    let mut index: HashMap<T::Key, usize, foldhash::fast::FixedState> =
        HashMap::with_hasher(foldhash::fast::FixedState::default());
    let mut grouped: Vec<(T, f64)> = Vec::new();
    for row in rows {
        match index.entry(row.key()) {
            Entry::Occupied(i) => grouped[*i.get()].1 += 1.0,
            Entry::Vacant(slot) => {
                slot.insert(grouped.len());
                grouped.push((row, 1.0));
            }
        }
    }
    grouped
}

/// One row's log-likelihood with its gradient and Hessian in the model's parameters.
pub type RowLikelihood<const N: usize> = (f64, [f64; N], [[f64; N]; N]);

/// A fitted model with its diagnostics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fit<M> {
    pub model: M,
    /// Standard errors of the parameters, laid out like the model; `None` when the
    /// information matrix is singular.
    pub standard_errors: Option<M>,
    pub log_likelihood: f64,
    /// Members the fit represents (sum of the weights).
    pub sample_weight: f64,
    /// Distinct summaries the likelihood was evaluated on.
    pub distinct: usize,
    pub iterations: u32,
    pub converged: bool,
}

impl Fit<Vec<f64>> {
    fn map<M>(self, model: impl Fn(&[f64]) -> M) -> Fit<M> {
        Fit {
            model: model(&self.model),
            standard_errors: self.standard_errors.map(|se| model(&se)),
            log_likelihood: self.log_likelihood,
            sample_weight: self.sample_weight,
            distinct: self.distinct,
            iterations: self.iterations,
            converged: self.converged,
        }
    }
}

/// Why a fit could not run.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum FitError {
    #[error("no data to fit")]
    Empty,
    #[error("row {row}: {reason}")]
    BadRow { row: usize, reason: String },
    #[error("the likelihood is not finite at the starting point")]
    NotFinite,
}

/// The distinct values of one column of the fit's rows, and where each row's value sits
/// among them. Likelihood terms that depend on the parameters and on that column alone
/// (purchase counts, whole-day durations) are then computed once per distinct value and
/// evaluation instead of once per row: CDNOW's 8,685 distinct summaries have 37 distinct
/// purchase counts and 273 distinct durations.
struct Distinct {
    values: Vec<f64>,
    index: Vec<usize>,
}

impl Distinct {
    fn new(column: impl Iterator<Item = f64> + Clone) -> Self {
        let mut values: Vec<f64> = column.clone().collect();
        values.sort_unstable_by(f64::total_cmp);
        values.dedup();
        let index = column.map(|v| values.partition_point(|d| *d < v)).collect();
        Distinct { values, index }
    }

    /// `term` of every distinct value, for [`Distinct::index`] to look up.
    fn map<T>(&self, term: impl Fn(f64) -> T) -> Vec<T> {
        self.values.iter().map(|&v| term(v)).collect()
    }
}

/// Maximise `total(params)`, the weighted log-likelihood of `data` with its derivatives,
/// from `start`; each model sums its rows its own way (shared terms computed once).
fn fit_total<T>(
    data: &[(T, f64)],
    start: &[f64],
    total: impl Fn(&[f64]) -> optimize::Evaluation,
) -> Result<Fit<Vec<f64>>, FitError> {
    if data.is_empty() {
        return Err(FitError::Empty);
    }
    if let Some(row) = data.iter().position(|(_, w)| !(w.is_finite() && *w > 0.0)) {
        return Err(FitError::BadRow {
            row,
            reason: format!("weight {} is not positive", data[row].1),
        });
    }
    let sample_weight: f64 = data.iter().map(|(_, w)| w).sum();
    let optimum = optimize::maximise(&total, start, sample_weight).ok_or(FitError::NotFinite)?;
    let standard_errors = optimize::standard_errors(&optimum.information);
    Ok(Fit {
        model: optimum.params,
        standard_errors,
        log_likelihood: optimum.log_likelihood,
        sample_weight,
        distinct: data.len(),
        iterations: optimum.iterations,
        converged: optimum.converged,
    })
}

#[cfg(test)]
mod tests {
    /// Central differences of `ll`'s value agree with its gradient, and of its gradient
    /// with its Hessian, at `params`.
    pub(crate) fn derivatives_match_finite_differences<const N: usize>(
        params: &[f64; N],
        ll: impl Fn(&[f64]) -> super::RowLikelihood<N>,
    ) {
        let (_, g, h) = ll(params);
        for i in 0..N {
            let step = params[i] * 1e-6;
            let (mut up, mut down) = (*params, *params);
            up[i] += step;
            down[i] -= step;
            let (v_up, g_up, _) = ll(&up);
            let (v_down, g_down, _) = ll(&down);
            let numeric = (v_up - v_down) / (2.0 * step);
            assert!(
                (numeric - g[i]).abs() < 1e-5 * g[i].abs().max(1.0),
                "gradient {i}: {numeric} vs {}",
                g[i]
            );
            for j in 0..N {
                let numeric = (g_up[j] - g_down[j]) / (2.0 * step);
                assert!(
                    (numeric - h[j][i]).abs() < 1e-5 * h[j][i].abs().max(1.0),
                    "hessian {j},{i}: {numeric} vs {}",
                    h[j][i]
                );
            }
        }
    }
}
