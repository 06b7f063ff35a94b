//! Bandit policies choosing among an experiment's arms, learning from rewards measured in
//! incremental margin (an `InterventionOutcome`'s value), not clicks.
//!
//! An arm's statistics are sums ([`ArmStats`]): pulls, conversions, reward, EXP3's
//! importance-weighted reward, and for the linear policies Σxxᵀ and Σrx. Sums merge by
//! addition, so every partition keeps its own and the population's bandit is the merge
//! of all of them (`docs/architecture.md#partition-summaries-and-population`), however
//! the partitions are spread over instances. Random draws come from a generator seeded
//! by the caller (save-offer seeds it from the proposal id), so a replay draws the same.
//!
//! Thompson sampling uses the structure of the reward: a Beta posterior on the
//! conversion rate times the arm's mean margin per conversion. UCB1 and EXP3 see rewards
//! scaled to [0, 1] by a reward scale. LinUCB and linear Thompson sampling are ridge
//! regressions of the reward on the member's context (Li et al. 2010; Agrawal & Goyal 2013).

mod linalg;
pub mod simulate;

use loyalty_contracts::BanditPolicy;
use rand::Rng;
use rand_distr::{Beta, Distribution, StandardNormal};
use serde::{Deserialize, Serialize};

/// One arm as the population learns it: an offer of an experiment, in one stratum.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ArmKey {
    pub experiment: String,
    pub stratum: String,
    pub offer_id: String,
}

/// Additive statistics of one arm.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ArmStats {
    pub pulls: u64,
    /// Outcomes with a positive reward.
    pub conversions: u64,
    /// Sum of rewards (minor units).
    pub reward: f64,
    /// EXP3's Σ r̂ = Σ (scaled reward / probability of the pull).
    pub weighted: f64,
    /// Σ x xᵀ (row-major, d × d) and Σ r x, for the linear policies; empty until used.
    pub xx: Vec<f64>,
    pub rx: Vec<f64>,
}

impl ArmStats {
    /// Count a decision (the pull), with the member's features for the linear policies:
    /// every pull enters Σxxᵀ, rewarded or not, or the estimate would only ever see the
    /// members who answered. The reward comes later, with the outcome.
    pub fn pull(&mut self, context: &[f64]) {
        self.pulls += 1;
        if !context.is_empty() {
            let d = context.len();
            if self.xx.len() != d * d {
                self.xx = vec![0.0; d * d];
                self.rx = vec![0.0; d];
            }
            for i in 0..d {
                for j in 0..d {
                    self.xx[i * d + j] += context[i] * context[j];
                }
            }
        }
    }

    /// Learn an outcome: `reward` in minor units, `probability` the chance the arm had
    /// when chosen (EXP3), `context` the member's features at the pull (linear policies).
    pub fn learn(&mut self, reward: f64, probability: f64, scale: f64, context: &[f64]) {
        if reward > 0.0 {
            self.conversions += 1;
        }
        self.reward += reward;
        if probability > 0.0 {
            self.weighted += (reward / scale).clamp(0.0, 1.0) / probability;
        }
        if !context.is_empty() && self.rx.len() == context.len() {
            for (rx, x) in self.rx.iter_mut().zip(context) {
                *rx += reward * x;
            }
        }
    }

    pub fn merge(&mut self, other: &ArmStats) {
        self.pulls += other.pulls;
        self.conversions += other.conversions;
        self.reward += other.reward;
        self.weighted += other.weighted;
        if !other.xx.is_empty() {
            if self.xx.len() != other.xx.len() {
                self.xx = vec![0.0; other.xx.len()];
                self.rx = vec![0.0; other.rx.len()];
            }
            self.xx.iter_mut().zip(&other.xx).for_each(|(a, b)| *a += b);
            self.rx.iter_mut().zip(&other.rx).for_each(|(a, b)| *a += b);
        }
    }

    /// Take `other` (one member's share, merged in by `pull` and `learn`) back out: the
    /// reverse of `merge`, for erasure. Sums of floats come back to within rounding.
    pub fn withdraw(&mut self, other: &ArmStats) {
        self.pulls = self.pulls.saturating_sub(other.pulls);
        self.conversions = self.conversions.saturating_sub(other.conversions);
        self.reward -= other.reward;
        self.weighted -= other.weighted;
        if self.xx.len() == other.xx.len() && self.rx.len() == other.rx.len() {
            self.xx.iter_mut().zip(&other.xx).for_each(|(a, b)| *a -= b);
            self.rx.iter_mut().zip(&other.rx).for_each(|(a, b)| *a -= b);
        }
    }

    /// One Thompson draw of the reward per pull: a conversion rate from the Beta
    /// posterior times the margin per conversion (the arm's own mean once it has
    /// converted, else `prior_margin`).
    pub fn thompson_draw(&self, prior_margin: f64, rng: &mut impl Rng) -> f64 {
        let beta = Beta::new(
            1.0 + self.conversions as f64,
            1.0 + self.pulls.saturating_sub(self.conversions) as f64,
        );
        let rate = beta.map_or(0.5, |b| b.sample(rng));
        let margin = if self.conversions > 0 {
            self.reward / self.conversions as f64
        } else {
            prior_margin
        };
        rate * margin
    }

    pub fn mean_reward(&self) -> f64 {
        if self.pulls == 0 {
            0.0
        } else {
            self.reward / self.pulls as f64
        }
    }
}

/// Parameters of the policies.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tuning {
    /// Rewards are divided by this for UCB1 and EXP3 (which assume rewards in [0, 1]).
    pub reward_scale: f64,
    /// UCB1's exploration factor (1 = the classic bound).
    pub ucb_alpha: f64,
    /// LinUCB's width and linear Thompson sampling's posterior scale.
    pub linear_alpha: f64,
    /// Ridge penalty of the linear policies.
    pub ridge: f64,
    /// EXP3's horizon, which sets its exploration rate γ = min(1, √(K ln K / ((e − 1) T))).
    pub exp3_horizon: f64,
}

impl Default for Tuning {
    fn default() -> Self {
        Tuning {
            reward_scale: 10_000.0,
            ucb_alpha: 1.0,
            linear_alpha: 1.0,
            ridge: 1.0,
            exp3_horizon: 100_000.0,
        }
    }
}

/// The arm chosen and the probability it had of being chosen (1 for the deterministic
/// policies; EXP3 needs it to weigh the reward).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Choice {
    pub arm: usize,
    pub probability: f64,
}

/// Choose one of `arms` for a member with features `context`.
pub fn choose(
    policy: BanditPolicy,
    arms: &[ArmStats],
    context: &[f64],
    tuning: &Tuning,
    rng: &mut impl Rng,
) -> Choice {
    let k = arms.len();
    if k <= 1 {
        return Choice {
            arm: 0,
            probability: 1.0,
        };
    }
    match policy {
        // An unproven arm is judged at the reward scale: optimistically.
        BanditPolicy::ThompsonSampling => argmax(
            arms.iter()
                .map(|a| a.thompson_draw(tuning.reward_scale, rng)),
        ),
        BanditPolicy::Ucb1 => {
            if let Some(untried) = arms.iter().position(|a| a.pulls == 0) {
                return Choice {
                    arm: untried,
                    probability: 1.0,
                };
            }
            let total: u64 = arms.iter().map(|a| a.pulls).sum();
            let log_total = (total.max(1) as f64).ln();
            argmax(arms.iter().map(|a| {
                let n = a.pulls as f64;
                a.reward / tuning.reward_scale / n + tuning.ucb_alpha * (2.0 * log_total / n).sqrt()
            }))
        }
        BanditPolicy::Exp3 => {
            let p = exp3_probabilities(arms, tuning);
            let draw: f64 = rng.random();
            let mut cumulative = 0.0;
            for (arm, pk) in p.iter().enumerate() {
                cumulative += pk;
                if draw < cumulative {
                    return Choice {
                        arm,
                        probability: *pk,
                    };
                }
            }
            Choice {
                arm: k - 1,
                probability: p[k - 1],
            }
        }
        BanditPolicy::LinUcb => argmax(arms.iter().map(|a| {
            let (theta, inverse) = ridge(a, context.len(), tuning.ridge);
            let width = quadratic(&inverse, context).max(0.0).sqrt();
            dot(&theta, context) + tuning.linear_alpha * width
        })),
        BanditPolicy::LinThompson => argmax(arms.iter().map(|a| {
            let d = context.len();
            let (theta, inverse) = ridge(a, d, tuning.ridge);
            let z: Vec<f64> = (0..d).map(|_| StandardNormal.sample(rng)).collect();
            let l = linalg::cholesky(&inverse, d);
            let mut sample = theta;
            for i in 0..d {
                let shift: f64 = (0..=i).map(|j| l[i * d + j] * z[j]).sum();
                sample[i] += tuning.linear_alpha * shift;
            }
            dot(&sample, context)
        })),
    }
}

/// EXP3's probabilities: (1 − γ)·softmax(γ/K · Σr̂) + γ/K.
pub fn exp3_probabilities(arms: &[ArmStats], tuning: &Tuning) -> Vec<f64> {
    let k = arms.len() as f64;
    let gamma = (k * k.ln() / ((std::f64::consts::E - 1.0) * tuning.exp3_horizon))
        .sqrt()
        .min(1.0);
    let logits: Vec<f64> = arms.iter().map(|a| gamma / k * a.weighted).collect();
    let top = logits.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let weights: Vec<f64> = logits.iter().map(|l| (l - top).exp()).collect();
    let total: f64 = weights.iter().sum();
    weights
        .iter()
        .map(|w| (1.0 - gamma) * w / total + gamma / k)
        .collect()
}

fn argmax(scores: impl Iterator<Item = f64>) -> Choice {
    let mut best = (0, f64::NEG_INFINITY);
    for (arm, score) in scores.enumerate() {
        // Ties go to the first arm, so a tie is decided by the order the caller gives.
        if score > best.1 {
            best = (arm, score);
        }
    }
    Choice {
        arm: best.0,
        probability: 1.0,
    }
}

/// The ridge estimate θ = A⁻¹ b and A⁻¹, with A = λI + Σxxᵀ.
fn ridge(a: &ArmStats, d: usize, lambda: f64) -> (Vec<f64>, Vec<f64>) {
    let mut matrix = vec![0.0; d * d];
    for i in 0..d {
        matrix[i * d + i] = lambda;
    }
    if a.xx.len() == d * d {
        matrix.iter_mut().zip(&a.xx).for_each(|(m, x)| *m += x);
    }
    let inverse = linalg::inverse_spd(&matrix, d);
    let b = if a.rx.len() == d {
        a.rx.clone()
    } else {
        vec![0.0; d]
    };
    let theta = (0..d)
        .map(|i| (0..d).map(|j| inverse[i * d + j] * b[j]).sum())
        .collect();
    (theta, inverse)
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// xᵀ M x.
fn quadratic(m: &[f64], x: &[f64]) -> f64 {
    let d = x.len();
    (0..d)
        .map(|i| x[i] * (0..d).map(|j| m[i * d + j] * x[j]).sum::<f64>())
        .sum()
}
