//! The Gamma-Gamma spend model (Fader, Hardie & Lee 2005, "RFM and CLV"): a member's
//! order values are Gamma(p, ν) around their own mean, with ν ~ Gamma(q, γ) across the
//! population. Fitted on members with at least one repeat purchase and a positive mean
//! repeat value; independent of the purchase process.

use serde::{Deserialize, Serialize};

use crate::optimize::Sum;
use crate::special::{digamma, inc_beta, ln_gamma, trigamma};
use crate::{Distinct, Fit, FitError, RowLikelihood, fit_total};

/// Population parameters.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GammaGamma {
    pub p: f64,
    pub q: f64,
    pub gamma: f64,
}

/// Terms of the likelihood that depend only on the parameters.
struct ParamTerms {
    ln_gamma_q: f64,
    ln_gamma: f64,
    digamma_q: f64,
    trigamma_q: f64,
    q_over_gamma: f64,
    inv_gamma: f64,
}

impl ParamTerms {
    fn new(m: &GammaGamma) -> Self {
        ParamTerms {
            ln_gamma_q: ln_gamma(m.q),
            ln_gamma: m.gamma.ln(),
            digamma_q: digamma(m.q),
            trigamma_q: trigamma(m.q),
            q_over_gamma: m.q / m.gamma,
            inv_gamma: 1.0 / m.gamma,
        }
    }
}

/// Terms that depend on the parameters and the member's x alone.
struct ShapeTerms {
    /// ln Γ(px + q) - ln Γ(px).
    ln_gamma_ratio: f64,
    digamma_pxq: f64,
    /// ψ(px + q) - ψ(px).
    digamma_diff: f64,
    trigamma_pxq: f64,
    /// ψ₁(px + q) - ψ₁(px).
    trigamma_diff: f64,
}

impl ShapeTerms {
    fn new(m: &GammaGamma, x: f64) -> Self {
        let px = m.p * x;
        let digamma_pxq = digamma(px + m.q);
        let trigamma_pxq = trigamma(px + m.q);
        ShapeTerms {
            ln_gamma_ratio: ln_gamma(px + m.q) - ln_gamma(px),
            digamma_pxq,
            digamma_diff: digamma_pxq - digamma(px),
            trigamma_pxq,
            trigamma_diff: trigamma_pxq - trigamma(px),
        }
    }
}

/// Terms that depend on the member alone: constant through a fit.
struct RowTerms {
    ln_m: f64,
    ln_x: f64,
}

impl RowTerms {
    fn new(s: &Spend) -> Self {
        RowTerms {
            ln_m: s.mean_value.ln(),
            ln_x: s.x.ln(),
        }
    }
}

/// What the spend model needs of a member: repeat purchases and their mean value.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Spend {
    pub x: f64,
    pub mean_value: f64,
}

impl GammaGamma {
    pub fn params(&self) -> [f64; 3] {
        [self.p, self.q, self.gamma]
    }

    fn from_params(v: &[f64]) -> Self {
        GammaGamma {
            p: v[0],
            q: v[1],
            gamma: v[2],
        }
    }

    /// Log-likelihood of one member's mean repeat value with its gradient and Hessian in
    /// (p, q, γ). Only members with x ≥ 1 and a positive mean belong in the fit.
    pub fn log_likelihood(&self, s: &Spend) -> RowLikelihood<3> {
        self.row_log_likelihood(
            s,
            &ShapeTerms::new(self, s.x),
            &ParamTerms::new(self),
            &RowTerms::new(s),
        )
    }

    /// The log-likelihood with the terms that depend only on the parameters (`p`), on
    /// the parameters and x (`k`) or on the row (`c`) computed by the caller: a fit
    /// computes them once per evaluation, distinct x or row, leaving each row of each
    /// evaluation one logarithm.
    fn row_log_likelihood(
        &self,
        s: &Spend,
        k: &ShapeTerms,
        p: &ParamTerms,
        c: &RowTerms,
    ) -> RowLikelihood<3> {
        let (x, m) = (s.x, s.mean_value);
        let px = self.p * x;
        let inv_total = 1.0 / (self.gamma + m * x);
        let ln_total = (self.gamma + m * x).ln();
        let ll = k.ln_gamma_ratio - p.ln_gamma_q
            + self.q * p.ln_gamma
            + (px - 1.0) * c.ln_m
            + px * c.ln_x
            - (px + self.q) * ln_total;
        let g = [
            x * (k.digamma_diff + c.ln_m + c.ln_x - ln_total),
            k.digamma_pxq - p.digamma_q + p.ln_gamma - ln_total,
            p.q_over_gamma - (px + self.q) * inv_total,
        ];
        let h_pq = x * k.trigamma_pxq;
        let h_pgamma = -x * inv_total;
        let h_qgamma = p.inv_gamma - inv_total;
        let h = [
            [x * x * k.trigamma_diff, h_pq, h_pgamma],
            [h_pq, k.trigamma_pxq - p.trigamma_q, h_qgamma],
            [
                h_pgamma,
                h_qgamma,
                (px + self.q) * inv_total * inv_total - p.q_over_gamma * p.inv_gamma,
            ],
        ];
        (ll, g, h)
    }

    /// Fit by maximum likelihood on (spend, weight) pairs. Members with no repeat purchase
    /// or a zero mean carry no information about the spread and are skipped.
    pub fn fit(data: &[(Spend, f64)]) -> Result<Fit<GammaGamma>, FitError> {
        let usable: Vec<(Spend, f64)> = data
            .iter()
            .filter(|(s, _)| s.x >= 1.0 && s.mean_value > 0.0)
            .copied()
            .collect();
        let xs = Distinct::new(usable.iter().map(|(s, _)| s.x));
        let rows: Vec<RowTerms> = usable.iter().map(|(s, _)| RowTerms::new(s)).collect();
        fit_total(&usable, &[1.0, 1.0, 1.0], |v| {
            let model = GammaGamma::from_params(v);
            let p = ParamTerms::new(&model);
            let shape = xs.map(|x| ShapeTerms::new(&model, x));
            let mut total = Sum::<3>::default();
            for (((s, weight), &i), c) in usable.iter().zip(&xs.index).zip(&rows) {
                let (ll, g, h) = model.row_log_likelihood(s, &shape[i], &p, c);
                total.add(*weight, ll, &g, &h);
            }
            total.evaluation()
        })
        .map(|f| f.map(GammaGamma::from_params))
    }

    /// The member's posterior on ν: Gamma(shape, rate).
    fn posterior(&self, s: &Spend) -> (f64, f64) {
        (
            self.p * s.x + self.q,
            self.gamma + s.mean_value * s.x.max(0.0),
        )
    }

    /// E[order value | x, mean]: a weighted mean of the population mean and the member's.
    pub fn conditional_expected_value(&self, s: &Spend) -> f64 {
        let (shape, rate) = self.posterior(s);
        self.p * rate / (shape - 1.0)
    }

    /// P(the next `n` orders together are worth at least `amount` | x, mean). Given ν the
    /// sum is Gamma(np, ν); over the posterior of ν, sum / (sum + rate) ~ Beta(np, shape).
    pub fn p_total_at_least(&self, s: &Spend, n: u32, amount: f64) -> f64 {
        if amount <= 0.0 {
            return 1.0;
        }
        if n == 0 {
            return 0.0;
        }
        let (shape, rate) = self.posterior(s);
        inc_beta(rate / (amount + rate), shape, f64::from(n) * self.p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn analytic_gradient_and_hessian_match_finite_differences() {
        let model = GammaGamma {
            p: 6.0,
            q: 3.7,
            gamma: 15.0,
        };
        for s in [
            Spend {
                x: 1.0,
                mean_value: 12.0,
            },
            Spend {
                x: 40.0,
                mean_value: 80.5,
            },
        ] {
            crate::tests::derivatives_match_finite_differences(&model.params(), |v| {
                GammaGamma::from_params(v).log_likelihood(&s)
            });
        }
    }

    #[test]
    fn spend_tail_agrees_with_the_conditional_mean() {
        // E[sum of n orders] = n · E[value]; integrate the tail numerically to check it.
        let model = GammaGamma {
            p: 6.25,
            q: 3.74,
            gamma: 15.44,
        };
        let member = Spend {
            x: 3.0,
            mean_value: 40.0,
        };
        let n = 4;
        let step = 0.5;
        let mean: f64 = (0..20_000)
            .map(|i| step * model.p_total_at_least(&member, n, (f64::from(i) + 0.5) * step))
            .sum();
        let expected = f64::from(n) * model.conditional_expected_value(&member);
        assert!(
            (mean - expected).abs() < 1e-3 * expected,
            "{mean} vs {expected}"
        );
    }
}
