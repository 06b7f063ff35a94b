//! Special functions the likelihoods and forecasts need, in log space where a member with
//! hundreds of purchases would overflow a plain `f64`.

/// ln Γ(x) for x > 0.
pub fn ln_gamma(x: f64) -> f64 {
    libm::lgamma(x)
}

/// ln B(a, b).
pub fn ln_beta(a: f64, b: f64) -> f64 {
    ln_gamma(a) + ln_gamma(b) - ln_gamma(a + b)
}

/// The digamma function ψ(x) = d/dx ln Γ(x), for x > 0: recurrence up to x ≥ 10, then the
/// asymptotic series (error below 1e-14 there).
pub fn digamma(mut x: f64) -> f64 {
    let mut shift = 0.0;
    while x < 10.0 {
        shift -= 1.0 / x;
        x += 1.0;
    }
    let inv = 1.0 / x;
    let inv2 = inv * inv;
    let series = inv2
        * (1.0 / 12.0
            - inv2 * (1.0 / 120.0 - inv2 * (1.0 / 252.0 - inv2 * (1.0 / 240.0 - inv2 / 132.0))));
    shift + x.ln() - 0.5 * inv - series
}

/// The trigamma function ψ₁(x) = d/dx ψ(x), for x > 0: recurrence up to x ≥ 10, then
/// the asymptotic series (error below 1e-14 there). The fitters' Hessians need it.
pub fn trigamma(mut x: f64) -> f64 {
    let mut shift = 0.0;
    while x < 10.0 {
        shift += 1.0 / (x * x);
        x += 1.0;
    }
    let inv = 1.0 / x;
    let inv2 = inv * inv;
    let series = inv
        * inv2
        * (1.0 / 6.0
            - inv2 * (1.0 / 30.0 - inv2 * (1.0 / 42.0 - inv2 * (1.0 / 30.0 - inv2 * 5.0 / 66.0))));
    shift + inv + 0.5 * inv2 + series
}

/// softplus(v) = ln(1 + e^v) without overflow, and its derivative sigmoid(v), from one
/// exponential: a fit needs both for every row of every evaluation.
pub fn softplus_and_sigmoid(v: f64) -> (f64, f64) {
    let e = (-v.abs()).exp();
    let u = 1.0 + e;
    let sigmoid = if v >= 0.0 { 1.0 / u } else { e / u };
    // ln(1 + e) to full precision from `ln` (Kahan's correction: u - 1 is exactly the
    // part of e that survived the rounding of u); libm's log1p was a fifth of a fit.
    let ln_1p = if u == 1.0 {
        e
    } else {
        u.ln() * (e / (u - 1.0))
    };
    (v.max(0.0) + ln_1p, sigmoid)
}

/// 1 / (1 + e^-v).
pub fn sigmoid(v: f64) -> f64 {
    if v >= 0.0 {
        1.0 / (1.0 + (-v).exp())
    } else {
        let e = v.exp();
        e / (1.0 + e)
    }
}

/// ln ₂F₁(a, b; c; z) for a, b, c > 0 and 0 ≤ z < 1, by the defining series summed with
/// rescaling, so large a and b (a member's r + x) neither overflow nor lose the tail.
/// `None` if the series has not converged after a million terms (z extremely close to 1).
pub fn ln_hyp2f1(a: f64, b: f64, c: f64, z: f64) -> Option<f64> {
    if !(0.0..1.0).contains(&z) || a <= 0.0 || b <= 0.0 || c <= 0.0 {
        return None;
    }
    const RESCALE: f64 = 1e250;
    let mut log_scale = 0.0;
    let mut sum = 1.0;
    let mut term = 1.0;
    for k in 0..1_000_000u32 {
        let k = f64::from(k);
        let ratio = (a + k) * (b + k) / ((c + k) * (k + 1.0)) * z;
        term *= ratio;
        sum += term;
        if sum > RESCALE {
            sum /= RESCALE;
            term /= RESCALE;
            log_scale += RESCALE.ln();
        }
        // Once terms shrink geometrically the rest of the tail is below term/(1-ratio).
        if ratio < 1.0 && term / (1.0 - ratio) <= sum * 1e-16 {
            return Some(sum.ln() + log_scale);
        }
    }
    None
}

/// The regularised incomplete beta function I_x(a, b) (Numerical Recipes' continued
/// fraction by modified Lentz, on the side of the symmetry where it converges fast).
pub fn inc_beta(x: f64, a: f64, b: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let ln_front = a * x.ln() + b * (-x).ln_1p() - ln_beta(a, b);
    if x < (a + 1.0) / (a + b + 2.0) {
        (ln_front.exp() * beta_cf(x, a, b) / a).clamp(0.0, 1.0)
    } else {
        (1.0 - ln_front.exp() * beta_cf(1.0 - x, b, a) / b).clamp(0.0, 1.0)
    }
}

fn beta_cf(x: f64, a: f64, b: f64) -> f64 {
    const TINY: f64 = 1e-300;
    let (qab, qap, qam) = (a + b, a + 1.0, a - 1.0);
    let mut c = 1.0;
    let mut d = 1.0 - qab * x / qap;
    if d.abs() < TINY {
        d = TINY;
    }
    d = 1.0 / d;
    let mut h = d;
    for m in 1..10_000 {
        let m = f64::from(m);
        let m2 = 2.0 * m;
        let aa = m * (b - m) * x / ((qam + m2) * (a + m2));
        d = 1.0 + aa * d;
        if d.abs() < TINY {
            d = TINY;
        }
        c = 1.0 + aa / c;
        if c.abs() < TINY {
            c = TINY;
        }
        d = 1.0 / d;
        h *= d * c;
        let aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
        d = 1.0 + aa * d;
        if d.abs() < TINY {
            d = TINY;
        }
        c = 1.0 + aa / c;
        if c.abs() < TINY {
            c = TINY;
        }
        d = 1.0 / d;
        let delta = d * c;
        h *= delta;
        if (delta - 1.0).abs() < 1e-15 {
            break;
        }
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol * b.abs().max(1.0)
    }

    #[test]
    fn digamma_matches_known_values() {
        // ψ(1) = -γ, ψ(0.5) = -γ - 2 ln 2, ψ(10) from tables.
        let euler = 0.577_215_664_901_532_9;
        assert!(close(digamma(1.0), -euler, 1e-13));
        assert!(close(digamma(0.5), -euler - 2.0 * 2f64.ln(), 1e-13));
        assert!(close(digamma(10.0), 2.251_752_589_066_721, 1e-13));
        assert!(close(digamma(0.01), -100.560_885_457_868_7, 1e-12));
    }

    #[test]
    fn softplus_and_sigmoid_agree_with_their_definitions_and_do_not_overflow() {
        for v in [-30.0, -1.5, 0.0, 0.3, 12.0] {
            let (s, w) = softplus_and_sigmoid(v);
            assert!(close(s, f64::exp(v).ln_1p(), 1e-15), "softplus {v}");
            assert!(close(w, sigmoid(v), 1e-15), "sigmoid {v}");
            assert!(close(w, 1.0 / (1.0 + f64::exp(-v)), 1e-15), "sigmoid {v}");
        }
        assert_eq!(softplus_and_sigmoid(800.0), (800.0, 1.0));
        assert_eq!(softplus_and_sigmoid(-800.0), (0.0, 0.0));
    }

    #[test]
    fn trigamma_matches_known_values() {
        // ψ₁(1) = π²/6, ψ₁(1/2) = π²/2, ψ₁(x) - ψ₁(x + 1) = 1/x².
        let pi2 = std::f64::consts::PI * std::f64::consts::PI;
        assert!(close(trigamma(1.0), pi2 / 6.0, 1e-13));
        assert!(close(trigamma(0.5), pi2 / 2.0, 1e-13));
        assert!(close(trigamma(10.0), 0.105_166_335_681_685_75, 1e-13));
        for x in [0.01, 0.7, 3.3, 9.99, 250.5] {
            assert!(
                close(trigamma(x) - trigamma(x + 1.0), 1.0 / (x * x), 1e-12),
                "{x}"
            );
        }
    }

    #[test]
    fn hyp2f1_matches_closed_forms() {
        // 2F1(1,1;2;z) = -ln(1-z)/z ; 2F1(a,b;b;z) = (1-z)^-a.
        for z in [0.0_f64, 0.1, 0.5, 0.9, 0.99] {
            let expected = if z == 0.0 { 1.0 } else { -(-z).ln_1p() / z };
            let got = ln_hyp2f1(1.0, 1.0, 2.0, z).map(f64::exp);
            assert!(
                got.is_some_and(|g| close(g, expected, 1e-12)),
                "z={z} {got:?}"
            );
            let got = ln_hyp2f1(250.5, 3.0, 3.0, z);
            let expected = -250.5 * (-z).ln_1p();
            assert!(
                got.is_some_and(|g| close(g, expected, 1e-12)),
                "z={z} {got:?}"
            );
        }
        assert!(ln_hyp2f1(1.0, 1.0, 2.0, 1.0).is_none());
    }

    #[test]
    fn incomplete_beta_matches_closed_forms() {
        // I_x(1, b) = 1 - (1-x)^b ; I_x(a, 1) = x^a ; I_x(a,b) = 1 - I_{1-x}(b,a).
        for x in [0.01, 0.3, 0.5, 0.77, 0.999] {
            assert!(close(
                inc_beta(x, 1.0, 3.5),
                1.0 - (1.0 - x).powf(3.5),
                1e-13
            ));
            assert!(close(inc_beta(x, 2.5, 1.0), x.powf(2.5), 1e-13));
            let (a, b) = (7.3, 0.4);
            assert!(close(
                inc_beta(x, a, b),
                1.0 - inc_beta(1.0 - x, b, a),
                1e-12
            ));
        }
    }
}
