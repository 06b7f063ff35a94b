//! Maximum likelihood by BFGS on the logarithms of the parameters (all of them are
//! positive), with the models' analytic gradients, plus standard errors from the
//! observed information. Small and dependency-free: the models have three or four
//! parameters, so a dense inverse-Hessian update is all the machinery needed.

// Small dense matrices read most plainly with index loops.
#![allow(clippy::needless_range_loop)]

/// Where the optimiser stopped.
#[derive(Debug, Clone, PartialEq)]
pub struct Optimum {
    /// The parameters (natural scale).
    pub params: Vec<f64>,
    /// Objective (total log-likelihood) at `params`.
    pub log_likelihood: f64,
    /// Iterations used.
    pub iterations: u32,
    /// Gradient small enough (relative to the sample) when it stopped.
    pub converged: bool,
}

/// Largest gradient component, in log-parameter space and per unit of weight, at which
/// the search stops early; below CONVERGED it counts as a stationary point (scipy's BFGS
/// default is 1e-5). Between the two the search goes on while it still makes progress:
/// with tens of thousands of members the last digits of the gradient are rounding noise.
const GRADIENT_TOLERANCE: f64 = 1e-10;
const CONVERGED: f64 = 1e-6;
const MAX_ITERATIONS: u32 = 500;

/// Maximise `log_likelihood(params) -> (value, gradient)` from `start` (all positive).
/// `weight` is the sample size, used to scale the stopping rule.
pub fn maximise(
    log_likelihood: impl Fn(&[f64]) -> (f64, Vec<f64>),
    start: &[f64],
    weight: f64,
) -> Optimum {
    let n = start.len();
    let scale = weight.max(1.0);
    // Minimise f(θ) = -LL(e^θ) / weight.
    let objective = |theta: &[f64]| -> (f64, Vec<f64>) {
        let params: Vec<f64> = theta.iter().map(|t| t.exp()).collect();
        let (value, gradient) = log_likelihood(&params);
        let g = gradient
            .iter()
            .zip(&params)
            .map(|(g, p)| -g * p / scale)
            .collect();
        (-value / scale, g)
    };
    let mut theta: Vec<f64> = start.iter().map(|p| p.ln()).collect();
    let (mut f, mut g) = objective(&theta);
    let mut h = identity(n);
    let mut iterations = 0;
    let mut done = max_abs(&g) < GRADIENT_TOLERANCE;
    while !done && iterations < MAX_ITERATIONS && f.is_finite() {
        iterations += 1;
        let mut direction: Vec<f64> = mat_vec(&h, &g).iter().map(|v| -v).collect();
        let mut slope = dot(&direction, &g);
        if slope >= 0.0 {
            // Not a descent direction: restart from steepest descent.
            h = identity(n);
            direction = g.iter().map(|v| -v).collect();
            slope = dot(&direction, &g);
        }
        // Armijo backtracking; a step never moves a log-parameter by more than 5.
        let longest = max_abs(&direction);
        let mut step = if longest > 5.0 { 5.0 / longest } else { 1.0 };
        let mut accepted = None;
        for _ in 0..60 {
            let trial: Vec<f64> = theta
                .iter()
                .zip(&direction)
                .map(|(t, d)| t + step * d)
                .collect();
            let (ft, gt) = objective(&trial);
            if ft.is_finite() && ft <= f + 1e-4 * step * slope {
                accepted = Some((trial, ft, gt));
                break;
            }
            step *= 0.5;
        }
        let Some((next, f_next, g_next)) = accepted else {
            break;
        };
        let s: Vec<f64> = next.iter().zip(&theta).map(|(a, b)| a - b).collect();
        let y: Vec<f64> = g_next.iter().zip(&g).map(|(a, b)| a - b).collect();
        let sy = dot(&s, &y);
        if sy > 1e-300 {
            bfgs_update(&mut h, &s, &y, sy);
        }
        let stalled = f - f_next <= 1e-15 * f.abs();
        theta = next;
        f = f_next;
        g = g_next;
        done = max_abs(&g) < GRADIENT_TOLERANCE || (stalled && max_abs(&g) < CONVERGED);
    }
    Optimum {
        params: theta.iter().map(|t| t.exp()).collect(),
        log_likelihood: -f * scale,
        iterations,
        converged: max_abs(&g) < CONVERGED,
    }
}

/// Standard errors of the parameters (natural scale) from the observed information: the
/// inverse of the negative Hessian, by central differences of the analytic gradient.
/// `None` when the information matrix is singular (a flat direction in the likelihood).
pub fn standard_errors(
    log_likelihood: impl Fn(&[f64]) -> (f64, Vec<f64>),
    params: &[f64],
) -> Option<Vec<f64>> {
    let n = params.len();
    let mut information = vec![vec![0.0; n]; n];
    for j in 0..n {
        let h = params[j] * 1e-5;
        let mut up = params.to_vec();
        let mut down = params.to_vec();
        up[j] += h;
        down[j] -= h;
        let (_, g_up) = log_likelihood(&up);
        let (_, g_down) = log_likelihood(&down);
        for i in 0..n {
            information[i][j] = -(g_up[i] - g_down[i]) / (2.0 * h);
        }
    }
    // Symmetrise away the finite-difference noise.
    for i in 0..n {
        for j in 0..i {
            let mean = 0.5 * (information[i][j] + information[j][i]);
            information[i][j] = mean;
            information[j][i] = mean;
        }
    }
    let covariance = invert(information)?;
    (0..n)
        .map(|i| {
            let v = covariance[i][i];
            (v.is_finite() && v > 0.0).then(|| v.sqrt())
        })
        .collect()
}

fn identity(n: usize) -> Vec<Vec<f64>> {
    (0..n)
        .map(|i| (0..n).map(|j| if i == j { 1.0 } else { 0.0 }).collect())
        .collect()
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn max_abs(v: &[f64]) -> f64 {
    v.iter().fold(0.0, |m, x| m.max(x.abs()))
}

fn mat_vec(m: &[Vec<f64>], v: &[f64]) -> Vec<f64> {
    m.iter().map(|row| dot(row, v)).collect()
}

/// H ← (I - ρ s yᵀ) H (I - ρ y sᵀ) + ρ s sᵀ.
fn bfgs_update(h: &mut [Vec<f64>], s: &[f64], y: &[f64], sy: f64) {
    let n = s.len();
    let rho = 1.0 / sy;
    let hy = mat_vec(h, y);
    let yhy = dot(y, &hy);
    for i in 0..n {
        for j in 0..n {
            h[i][j] += rho * ((1.0 + rho * yhy) * s[i] * s[j] - hy[i] * s[j] - s[i] * hy[j]);
        }
    }
}

/// Gauss-Jordan inversion with partial pivoting.
fn invert(mut m: Vec<Vec<f64>>) -> Option<Vec<Vec<f64>>> {
    let n = m.len();
    let mut inv = identity(n);
    for col in 0..n {
        let pivot = (col..n).max_by(|&a, &b| m[a][col].abs().total_cmp(&m[b][col].abs()))?;
        if m[pivot][col].abs() < 1e-300 {
            return None;
        }
        m.swap(col, pivot);
        inv.swap(col, pivot);
        let p = m[col][col];
        for j in 0..n {
            m[col][j] /= p;
            inv[col][j] /= p;
        }
        for row in 0..n {
            if row != col {
                let factor = m[row][col];
                for j in 0..n {
                    m[row][j] -= factor * m[col][j];
                    inv[row][j] -= factor * inv[col][j];
                }
            }
        }
    }
    Some(inv)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_maximum_of_a_known_likelihood() {
        // Exponential rates: LL(λ) = n ln λ - λ Σx, maximum at n / Σx = 0.25.
        let ll = |p: &[f64]| {
            let (n, sum) = (100.0, 400.0);
            (n * p[0].ln() - p[0] * sum, vec![n / p[0] - sum])
        };
        let optimum = maximise(ll, &[3.0], 100.0);
        assert!(optimum.converged);
        assert!((optimum.params[0] - 0.25).abs() < 1e-8);
        // Fisher information n/λ² → SE = λ/√n.
        let se = standard_errors(ll, &optimum.params).unwrap();
        assert!((se[0] - 0.025).abs() < 1e-6);
    }
}
