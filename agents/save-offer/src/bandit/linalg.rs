//! The little dense linear algebra the linear policies need, for symmetric positive
//! definite matrices of a handful of rows (row-major `Vec<f64>`): Cholesky factor and
//! inverse. A ridge matrix λI + Σxxᵀ with λ > 0 is always positive definite; a pivot
//! that rounding pushes to zero or below is clamped to a tiny positive value rather
//! than producing NaN.

const TINY: f64 = 1e-12;

/// Lower-triangular L with L Lᵀ = m.
pub fn cholesky(m: &[f64], d: usize) -> Vec<f64> {
    let mut l = vec![0.0; d * d];
    for i in 0..d {
        for j in 0..=i {
            let sum: f64 = (0..j).map(|k| l[i * d + k] * l[j * d + k]).sum();
            if i == j {
                l[i * d + i] = (m[i * d + i] - sum).max(TINY).sqrt();
            } else {
                l[i * d + j] = (m[i * d + j] - sum) / l[j * d + j];
            }
        }
    }
    l
}

/// m⁻¹ through its Cholesky factor.
pub fn inverse_spd(m: &[f64], d: usize) -> Vec<f64> {
    let l = cholesky(m, d);
    let mut inverse = vec![0.0; d * d];
    for col in 0..d {
        // Solve L y = e_col, then Lᵀ x = y.
        let mut y = vec![0.0; d];
        for i in 0..d {
            let e = if i == col { 1.0 } else { 0.0 };
            let sum: f64 = (0..i).map(|k| l[i * d + k] * y[k]).sum();
            y[i] = (e - sum) / l[i * d + i];
        }
        let mut x = vec![0.0; d];
        for i in (0..d).rev() {
            let sum: f64 = (i + 1..d).map(|k| l[k * d + i] * x[k]).sum();
            x[i] = (y[i] - sum) / l[i * d + i];
        }
        for i in 0..d {
            inverse[i * d + col] = x[i];
        }
    }
    inverse
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inverse_times_matrix_is_identity() {
        let m = [4.0, 2.0, 0.6, 2.0, 5.0, 1.0, 0.6, 1.0, 3.0];
        let inv = inverse_spd(&m, 3);
        for i in 0..3 {
            for j in 0..3 {
                let p: f64 = (0..3).map(|k| m[i * 3 + k] * inv[k * 3 + j]).sum();
                assert!((p - if i == j { 1.0 } else { 0.0 }).abs() < 1e-12);
            }
        }
        let l = cholesky(&m, 3);
        for i in 0..3 {
            for j in 0..3 {
                let p: f64 = (0..3).map(|k| l[i * 3 + k] * l[j * 3 + k]).sum();
                assert!((p - m[i * 3 + j]).abs() < 1e-12);
            }
        }
    }
}
