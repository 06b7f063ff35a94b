//! Counterfactuals: what an intervention adds to a member's value, learned from observed
//! outcomes. Each `InterventionOutcome` belongs to a treated member or to a hold-out
//! member (chosen, but not sent); the relative uplift of an intervention type is the
//! ratio of the arms' mean converted value minus one. That estimate (with its
//! delta-method variance) is combined with a Normal prior by precision weighting, so a
//! type with few outcomes stays near the stated prior and a type with many follows the
//! data; the member's incremental value is their adjusted value times the uplift.

use loyalty_contracts::{Counterfactual, InterventionType};

use crate::population::{ArmStats, Arms};
use crate::value::minor;

/// z of the two-sided 80% interval.
const Z80: f64 = 1.281_551_565_545;

/// Normal prior on the relative uplift of every intervention type.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Prior {
    pub mean: f64,
    pub sd: f64,
}

/// The posterior of one type's relative uplift.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Posterior {
    pub mean: f64,
    pub sd: f64,
    /// Interventions observed, both arms.
    pub observed: i64,
    /// Share of the posterior precision from the prior.
    pub prior_share: f64,
}

fn mean_and_variance(arm: &ArmStats) -> Option<(f64, f64)> {
    if arm.n < 2 {
        return None;
    }
    let n = arm.n as f64;
    let mean = arm.sum as f64 / n;
    let variance = ((arm.sum_sq as f64 - n * mean * mean) / (n - 1.0)).max(0.0);
    Some((mean, variance))
}

/// The data's estimate of the relative uplift and its variance, when both arms have
/// converted value to compare.
pub fn estimate(arms: &Arms) -> Option<(f64, f64)> {
    let (mt, vt) = mean_and_variance(&arms.treated)?;
    let (mc, vc) = mean_and_variance(&arms.holdout)?;
    if mc <= 0.0 {
        return None;
    }
    let (nt, nc) = (arms.treated.n as f64, arms.holdout.n as f64);
    let uplift = mt / mc - 1.0;
    // Delta method for a ratio of independent means.
    let variance = vt / nt / (mc * mc) + mt * mt * vc / nc / (mc * mc * mc * mc);
    // A variance of zero (every value equal) would swamp the prior; floor it.
    Some((uplift, variance.max(1e-12)))
}

pub fn posterior(arms: &Arms, prior: Prior) -> Posterior {
    let prior_precision = 1.0 / (prior.sd * prior.sd);
    let observed = arms.treated.n + arms.holdout.n;
    match estimate(arms) {
        Some((uplift, variance)) => {
            let data_precision = 1.0 / variance;
            let precision = prior_precision + data_precision;
            Posterior {
                mean: (prior.mean * prior_precision + uplift * data_precision) / precision,
                sd: precision.sqrt().recip(),
                observed,
                prior_share: prior_precision / precision,
            }
        }
        None => Posterior {
            mean: prior.mean,
            sd: prior.sd,
            observed,
            prior_share: 1.0,
        },
    }
}

/// The counterfactual of one intervention for a member worth `baseline_minor`.
pub fn counterfactual(
    intervention: InterventionType,
    baseline_minor: f64,
    posterior: &Posterior,
) -> Counterfactual {
    let incremental = baseline_minor * posterior.mean;
    let spread = baseline_minor.abs() * Z80 * posterior.sd;
    Counterfactual {
        intervention,
        baseline_minor: minor(baseline_minor),
        intervention_minor: minor(baseline_minor + incremental),
        incremental_minor: minor(incremental),
        incremental_low_minor: minor(incremental - spread),
        incremental_high_minor: minor(incremental + spread),
        uplift: posterior.mean,
        uplift_sd: posterior.sd,
        outcomes_observed: posterior.observed,
        prior_share: posterior.prior_share,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// splitmix64: a small, seeded generator so the simulation is the same on every run.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> f64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
        }
    }

    /// One arm's outcomes: converts with probability `p`, value exponential around `mean`.
    fn simulate(rng: &mut Rng, n: i64, p: f64, mean: f64) -> ArmStats {
        let mut arm = ArmStats::default();
        for _ in 0..n {
            arm.n += 1;
            if rng.next() < p {
                let v = (-mean * (1.0 - rng.next()).ln()).round() as i64;
                arm.sum += v;
                arm.sum_sq += i128::from(v) * i128::from(v);
            }
        }
        arm
    }

    const PRIOR: Prior = Prior { mean: 0.0, sd: 0.1 };
    /// True uplift per intervention type, in InterventionType::ALL order.
    const TRUTH: [f64; 6] = [0.15, 0.30, 0.08, -0.05, 0.02, 0.20];

    fn arms(rng: &mut Rng, n: i64, uplift: f64) -> Arms {
        // Uplift acts on conversion: the hold-out converts at 20%, value ~ 5,000 minor.
        Arms {
            treated: simulate(rng, n, 0.2 * (1.0 + uplift), 5000.0),
            holdout: simulate(rng, n, 0.2, 5000.0),
        }
    }

    #[test]
    fn estimated_incremental_value_converges_to_the_true_uplift() {
        let mut rng = Rng(7);
        let (mut draws, mut covered) = (0, 0);
        for (kind, truth) in InterventionType::ALL.into_iter().zip(TRUTH) {
            let mut sds = Vec::new();
            for n in [100, 1_000, 10_000, 100_000] {
                let post = posterior(&arms(&mut rng, n, truth), PRIOR);
                let cf = counterfactual(kind, 10_000.0, &post);
                let true_incremental = 10_000.0 * truth;
                sds.push(post.sd);
                if n >= 1_000 {
                    draws += 1;
                    if cf.incremental_low_minor as f64 <= true_incremental + 1.0
                        && true_incremental - 1.0 <= cf.incremental_high_minor as f64
                    {
                        covered += 1;
                    }
                }
                if n == 100_000 {
                    assert!(post.prior_share < 0.05, "{kind:?}: data should dominate");
                    assert!((post.mean - truth).abs() < 0.05, "{kind:?}: {}", post.mean);
                    // Well inside a 99.9% interval, whatever the draw.
                    assert!((post.mean - truth).abs() < 3.3 * post.sd + 0.01, "{kind:?}");
                }
            }
            // The posterior narrows as outcomes accumulate (by about sqrt(10) per step once
            // the data outweighs the prior), while staying centred on the truth (above).
            assert!(
                sds.windows(2).all(|w| w[1] < w[0]) && sds[3] < sds[1] / 5.0,
                "{kind:?}: the posterior did not narrow: {sds:?}"
            );
        }
        // Each 80% interval covers its truth with probability 0.8: 18 draws, ~14 expected.
        assert!(
            covered >= 11,
            "{covered} of {draws} intervals covered the truth"
        );
    }

    #[test]
    fn the_80_percent_interval_covers_the_truth_about_80_percent_of_the_time() {
        let mut rng = Rng(11);
        let (trials, truth) = (400, 0.25);
        // A flat-ish prior so the interval is the data's.
        let prior = Prior {
            mean: 0.0,
            sd: 10.0,
        };
        let covered = (0..trials)
            .filter(|_| {
                let post = posterior(&arms(&mut rng, 4_000, truth), prior);
                (post.mean - truth).abs() <= Z80 * post.sd
            })
            .count();
        let rate = covered as f64 / f64::from(trials);
        assert!((0.74..=0.86).contains(&rate), "coverage {rate}");
    }

    #[test]
    fn without_outcomes_the_prior_is_the_answer() {
        let post = posterior(&Arms::default(), PRIOR);
        assert_eq!((post.mean, post.sd, post.prior_share), (0.0, 0.1, 1.0));
        let cf = counterfactual(InterventionType::Offer, 10_000.0, &post);
        assert_eq!(cf.incremental_minor, 0);
        assert_eq!(cf.incremental_high_minor, 1282);
    }
}
