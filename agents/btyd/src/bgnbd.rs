//! The BG/NBD model (Fader, Hardie & Lee 2005, "Counting Your Customers the Easy Way"):
//! while alive a member buys at Poisson rate λ ~ Gamma(r, α); after each purchase they
//! drop out with probability p ~ Beta(a, b).
//!
//! Everything a forecast needs follows from one fact: given (x, t_x, T) and alive at T,
//! the posterior is again BG/NBD with (r + x, α + T, a, b + x). So the member's future is
//! the population formulas with updated parameters, weighted by P(alive).

use serde::{Deserialize, Serialize};

use crate::optimize::Sum;
use crate::special::{
    digamma, inc_beta, ln_beta, ln_gamma, ln_hyp2f1, sigmoid, softplus_and_sigmoid, trigamma,
};
use crate::{Distinct, Fit, FitError, RowLikelihood, Summary, fit_total};

/// Terms of the likelihood that depend only on the parameters.
struct ParamTerms {
    ln_gamma_r: f64,
    ln_alpha: f64,
    r_over_alpha: f64,
    ln_beta_ab: f64,
    ln_a: f64,
    inv_a: f64,
    inv_alpha: f64,
    digamma_r: f64,
    digamma_ab: f64,
    digamma_b: f64,
    trigamma_r: f64,
    trigamma_ab: f64,
    trigamma_b: f64,
}

impl ParamTerms {
    fn new(m: &BgNbd) -> Self {
        ParamTerms {
            ln_gamma_r: ln_gamma(m.r),
            ln_alpha: m.alpha.ln(),
            r_over_alpha: m.r / m.alpha,
            ln_beta_ab: ln_beta(m.a, m.b),
            ln_a: m.a.ln(),
            inv_a: 1.0 / m.a,
            inv_alpha: 1.0 / m.alpha,
            digamma_r: digamma(m.r),
            digamma_ab: digamma(m.a + m.b),
            digamma_b: digamma(m.b),
            trigamma_r: trigamma(m.r),
            trigamma_ab: trigamma(m.a + m.b),
            trigamma_b: trigamma(m.b),
        }
    }
}

/// Terms of the likelihood that depend on the parameters and x alone.
struct RepeatTerms {
    ln_gamma_rx: f64,
    ln_beta_abx: f64,
    digamma_rx: f64,
    digamma_bx: f64,
    digamma_abx: f64,
    trigamma_rx: f64,
    trigamma_bx: f64,
    trigamma_abx: f64,
    /// ln(b + x - 1) and its derivative, used only when x > 0.
    ln_bx1: f64,
    inv_bx1: f64,
}

impl RepeatTerms {
    fn new(m: &BgNbd, x: f64) -> Self {
        RepeatTerms {
            ln_gamma_rx: ln_gamma(m.r + x),
            ln_beta_abx: ln_beta(m.a, m.b + x),
            digamma_rx: digamma(m.r + x),
            digamma_bx: digamma(m.b + x),
            digamma_abx: digamma(m.a + m.b + x),
            trigamma_rx: trigamma(m.r + x),
            trigamma_bx: trigamma(m.b + x),
            trigamma_abx: trigamma(m.a + m.b + x),
            ln_bx1: if x > 0.0 { (m.b + x - 1.0).ln() } else { 0.0 },
            inv_bx1: if x > 0.0 { 1.0 / (m.b + x - 1.0) } else { 0.0 },
        }
    }
}

/// ln(α + d) and 1/(α + d) for a duration d (t_x or T): they depend on α and d alone.
#[derive(Clone, Copy)]
struct Elapsed {
    ln: f64,
    inv: f64,
}

impl Elapsed {
    fn new(m: &BgNbd, d: f64) -> Self {
        Elapsed {
            ln: (m.alpha + d).ln(),
            inv: 1.0 / (m.alpha + d),
        }
    }
}

/// Population parameters.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BgNbd {
    pub r: f64,
    pub alpha: f64,
    pub a: f64,
    pub b: f64,
}

impl BgNbd {
    pub fn params(&self) -> [f64; 4] {
        [self.r, self.alpha, self.a, self.b]
    }

    fn from_params(p: &[f64]) -> Self {
        BgNbd {
            r: p[0],
            alpha: p[1],
            a: p[2],
            b: p[3],
        }
    }

    /// Log-likelihood of one member with its gradient and Hessian in (r, α, a, b).
    pub fn log_likelihood(&self, s: &Summary) -> RowLikelihood<4> {
        self.row_log_likelihood(
            s.x,
            &RepeatTerms::new(self, s.x),
            Elapsed::new(self, s.t),
            Elapsed::new(self, s.t_x),
            &ParamTerms::new(self),
        )
    }

    /// The log-likelihood of a member with `x` repeat purchases, with every term that
    /// depends only on the parameters (`p`), on x (`k`) or on one duration (`at_t`,
    /// `at_tx`) computed by the caller: a fit computes them once per evaluation and
    /// distinct value rather than once per row, leaving each row one exponential and one
    /// logarithm.
    fn row_log_likelihood(
        &self,
        x: f64,
        k: &RepeatTerms,
        at_t: Elapsed,
        at_tx: Elapsed,
        p: &ParamTerms,
    ) -> RowLikelihood<4> {
        let r = self.r;
        let base = k.ln_gamma_rx - p.ln_gamma_r + r * p.ln_alpha - (r + x) * at_t.ln
            + k.ln_beta_abx
            - p.ln_beta_ab;
        let mut g = [
            k.digamma_rx - p.digamma_r + p.ln_alpha - at_t.ln,
            p.r_over_alpha - (r + x) * at_t.inv,
            p.digamma_ab - k.digamma_abx,
            k.digamma_bx - k.digamma_abx - p.digamma_b + p.digamma_ab,
        ];
        let h_ab = p.trigamma_ab - k.trigamma_abx;
        let h_ralpha = p.inv_alpha - at_t.inv;
        let mut h = [
            [k.trigamma_rx - p.trigamma_r, h_ralpha, 0.0, 0.0],
            [
                h_ralpha,
                (r + x) * at_t.inv * at_t.inv - p.r_over_alpha * p.inv_alpha,
                0.0,
                0.0,
            ],
            [0.0, 0.0, h_ab, h_ab],
            [0.0, 0.0, h_ab, k.trigamma_bx - p.trigamma_b + h_ab],
        ];
        if x <= 0.0 {
            return (base, g, h);
        }
        // Second branch: dropped out right after the last purchase, in log space.
        // With d its log-odds, the branch adds softplus(d): gradient w ∇d and Hessian
        // w (1 - w) ∇d ∇dᵀ + w ∇²d, w = sigmoid(d).
        let ln_ratio = at_t.ln - at_tx.ln;
        let (dropped, w) = softplus_and_sigmoid(p.ln_a - k.ln_bx1 + (r + x) * ln_ratio);
        let inv_gap = at_t.inv - at_tx.inv;
        let grad_d = [ln_ratio, (r + x) * inv_gap, p.inv_a, -k.inv_bx1];
        for i in 0..4 {
            g[i] += w * grad_d[i];
            for j in 0..4 {
                h[i][j] += w * (1.0 - w) * grad_d[i] * grad_d[j];
            }
        }
        h[0][1] += w * inv_gap;
        h[1][0] += w * inv_gap;
        h[1][1] += w * (r + x) * (at_tx.inv * at_tx.inv - at_t.inv * at_t.inv);
        h[2][2] -= w * p.inv_a * p.inv_a;
        h[3][3] += w * k.inv_bx1 * k.inv_bx1;
        (base + dropped, g, h)
    }

    /// Fit by maximum likelihood on (summary, weight) pairs; see [`crate::group`].
    pub fn fit(data: &[(Summary, f64)]) -> Result<Fit<BgNbd>, FitError> {
        let model = |p: &[f64]| BgNbd::from_params(p);
        let xs = Distinct::new(data.iter().map(|(s, _)| s.x));
        // t_x and T share one table: both enter only as α + d.
        let durations = Distinct::new(data.iter().flat_map(|(s, _)| [s.t, s.t_x]));
        fit_total(data, &[1.0, 1.0, 1.0, 1.0], |params| {
            let m = model(params);
            let p = ParamTerms::new(&m);
            let repeat = xs.map(|x| RepeatTerms::new(&m, x));
            let elapsed = durations.map(|d| Elapsed::new(&m, d));
            let mut total = Sum::<4>::default();
            for (((s, weight), &i), at) in data
                .iter()
                .zip(&xs.index)
                .zip(durations.index.chunks_exact(2))
            {
                let (v, g, h) =
                    m.row_log_likelihood(s.x, &repeat[i], elapsed[at[0]], elapsed[at[1]], &p);
                total.add(*weight, v, &g, &h);
            }
            total.evaluation()
        })
        .map(|f| f.map(model))
    }

    /// P(alive at T | x, t_x, T).
    pub fn p_alive(&self, s: &Summary) -> f64 {
        if s.x <= 0.0 {
            return 1.0;
        }
        let d = self.a.ln() - (self.b + s.x - 1.0).ln()
            + (self.r + s.x) * ((self.alpha + s.t).ln() - (self.alpha + s.t_x).ln());
        1.0 - sigmoid(d)
    }

    /// The member's posterior given alive at T: the population for their future.
    pub fn posterior(&self, s: &Summary) -> BgNbd {
        BgNbd {
            r: self.r + s.x,
            alpha: self.alpha + s.t,
            a: self.a,
            b: self.b + s.x,
        }
    }

    /// E[X(t)] for a member drawn from this population, just acquired.
    pub fn expected_purchases(&self, t: f64) -> Option<f64> {
        let BgNbd { r, alpha, a, b } = *self;
        if t <= 0.0 {
            return Some(0.0);
        }
        let z = t / (alpha + t);
        let ln_f = ln_hyp2f1(r, b, a + b - 1.0, z)?;
        let tail = (r * (alpha / (alpha + t)).ln() + ln_f).exp();
        Some((a + b - 1.0) / (a - 1.0) * (1.0 - tail))
    }

    /// E[X(T, T + t] | x, t_x, T]: expected purchases in the next `t`.
    pub fn conditional_expected_purchases(&self, s: &Summary, t: f64) -> Option<f64> {
        Some(self.p_alive(s) * self.posterior(s).expected_purchases(t)?)
    }

    /// P(X(t) = n) for a member drawn from this population, just acquired
    /// (Fader, Hardie & Lee 2005, equation 8).
    pub fn purchases_pmf(&self, t: f64, n: u32) -> f64 {
        let BgNbd { r, alpha, a, b } = *self;
        let nf = f64::from(n);
        if t <= 0.0 {
            return if n == 0 { 1.0 } else { 0.0 };
        }
        let ln_p = (alpha / (alpha + t)).ln();
        let ln_q = (t / (alpha + t)).ln();
        let still_alive = (ln_beta(a, b + nf) - ln_beta(a, b) + ln_gamma(r + nf)
            - ln_gamma(r)
            - ln_gamma(nf + 1.0)
            + r * ln_p
            + nf * ln_q)
            .exp();
        if n == 0 {
            return still_alive;
        }
        // Dropped out after the n-th purchase, which needs at least n Poisson events by t:
        // P(NBD(r, α/(α+t)) ≥ n) = I_q(n, r).
        let dropped = (ln_beta(a + 1.0, b + nf - 1.0) - ln_beta(a, b)).exp()
            * inc_beta(t / (alpha + t), nf, r);
        still_alive + dropped
    }

    /// P(X(t) = n) for n = 0..len, all at once, by recurrences in n (no special function
    /// inside the loop): the "alive" term's ratio is (b+n)/(a+b+n) · (r+n)/(n+1) · q, the
    /// "dropped" weight's is (b+n-1)/(a+b+n), and I_q(n+1, r) = I_q(n, r) - t_n with
    /// t_{n+1} = t_n · q (n+r)/(n+1).
    pub fn purchases_pmf_all(&self, t: f64, len: usize) -> Vec<f64> {
        let BgNbd { r, alpha, a, b } = *self;
        let mut pmf = Vec::with_capacity(len);
        if t <= 0.0 {
            pmf.extend((0..len).map(|n| if n == 0 { 1.0 } else { 0.0 }));
            return pmf;
        }
        let q = t / (alpha + t);
        let ln_p = (alpha / (alpha + t)).ln();
        // n = 0: alive with no purchase.
        let mut alive = (r * ln_p).exp();
        pmf.push(alive);
        // n = 1: dropped-out weight B(a+1, b)/B(a, b) = a/(a+b); tail I_q(1, r) = 1 - p^r;
        // the term leaving the tail between n = 1 and 2 is t_1 = q p^r r.
        let mut dropped = a / (a + b);
        let mut tail = inc_beta(q, 1.0, r);
        let mut leaving = q * (r * ln_p).exp() * r;
        for n in 1..len {
            let nf = n as f64;
            // alive(n) from alive(n-1).
            alive *= (b + nf - 1.0) / (a + b + nf - 1.0) * (r + nf - 1.0) / nf * q;
            if n >= 2 {
                dropped *= (b + nf - 2.0) / (a + b + nf - 1.0);
                tail -= leaving;
                leaving *= q * (nf - 1.0 + r) / nf;
            }
            pmf.push(alive + dropped * tail.max(0.0));
        }
        pmf
    }

    /// P(alive at t) for a member drawn from this population, just acquired. Summing the
    /// "still alive after n purchases" part of the PMF, B(a, b+n)/B(a, b) = (b)_n/(a+b)_n
    /// turns the sum into a Gauss series: P = p^r ₂F₁(r, b; a+b; q), p = α/(α+t), q = 1-p.
    pub fn p_alive_after(&self, t: f64) -> f64 {
        let BgNbd { r, alpha, a, b } = *self;
        if t <= 0.0 {
            return 1.0;
        }
        match ln_hyp2f1(r, b, a + b, t / (alpha + t)) {
            Some(ln_f) => (r * (alpha / (alpha + t)).ln() + ln_f).exp().min(1.0),
            None => 0.0,
        }
    }

    /// P(X(T, T + t] = n | x, t_x, T): the member's own distribution of future purchases.
    pub fn conditional_purchases_pmf(&self, s: &Summary, t: f64, n: u32) -> f64 {
        let alive = self.p_alive(s);
        let posterior = self.posterior(s).purchases_pmf(t, n);
        let dead = if n == 0 { 1.0 - alive } else { 0.0 };
        dead + alive * posterior
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn published() -> BgNbd {
        BgNbd {
            r: 0.243,
            alpha: 4.414,
            a: 0.793,
            b: 2.426,
        }
    }

    #[test]
    fn analytic_gradient_and_hessian_match_finite_differences() {
        let model = BgNbd {
            r: 0.7,
            alpha: 3.1,
            a: 0.9,
            b: 2.2,
        };
        for s in [
            Summary::new(0.0, 0.0, 30.0),
            Summary::new(3.0, 20.5, 38.0),
            Summary::new(400.0, 70.0, 71.0),
        ] {
            crate::tests::derivatives_match_finite_differences(&model.params(), |p| {
                BgNbd::from_params(p).log_likelihood(&s)
            });
        }
    }

    #[test]
    fn pmf_sums_to_one_and_its_mean_is_the_expectation() {
        let model = published();
        let member = Summary::new(2.0, 30.43, 38.86);
        let (mut total, mut mean) = (0.0, 0.0);
        for n in 0..400 {
            let p = model.conditional_purchases_pmf(&member, 39.0, n);
            assert!(p >= 0.0);
            total += p;
            mean += f64::from(n) * p;
        }
        assert!((total - 1.0).abs() < 1e-9, "{total}");
        let expected = model.conditional_expected_purchases(&member, 39.0).unwrap();
        assert!((mean - expected).abs() < 1e-7, "{mean} vs {expected}");
    }

    #[test]
    fn pmf_recurrence_matches_the_direct_formula() {
        let model = published().posterior(&Summary::new(7.0, 30.0, 38.0));
        let all = model.purchases_pmf_all(52.0, 60);
        for (n, p) in all.iter().enumerate() {
            let direct = model.purchases_pmf(52.0, n as u32);
            assert!((p - direct).abs() < 1e-12, "{n}: {p} vs {direct}");
        }
        // Alive after t is at most 1 and falls with t.
        let (early, late) = (model.p_alive_after(4.0), model.p_alive_after(52.0));
        assert!(early <= 1.0 && late < early && late > 0.0, "{early} {late}");
        // The alive part of P(X(t) = n), summed term by term with log-gamma functions.
        let (r, alpha, a, b, t) = (model.r, model.alpha, model.a, model.b, 52.0);
        let direct: f64 = (0..2000)
            .map(|n| {
                let nf = f64::from(n);
                (ln_beta(a, b + nf) - ln_beta(a, b) + ln_gamma(r + nf)
                    - ln_gamma(r)
                    - ln_gamma(nf + 1.0)
                    + r * (alpha / (alpha + t)).ln()
                    + nf * (t / (alpha + t)).ln())
                .exp()
            })
            .sum();
        assert!((late - direct).abs() < 1e-10, "{late} vs {direct}");
        // A heavy buyer's posterior, where p^r alone underflows.
        let heavy = published().posterior(&Summary::new(900.0, 77.0, 78.0));
        let alive = heavy.p_alive_after(520.0);
        assert!(alive.is_finite() && alive > 0.0 && alive < 1.0, "{alive}");
    }

    #[test]
    fn members_with_hundreds_of_purchases_stay_finite() {
        let model = published();
        let heavy = Summary::new(600.0, 77.0, 78.0);
        let (ll, g, _) = model.log_likelihood(&heavy);
        assert!(ll.is_finite() && g.iter().all(|v| v.is_finite()));
        let e = model.conditional_expected_purchases(&heavy, 52.0).unwrap();
        assert!(e.is_finite() && e > 100.0, "{e}");
    }
}
