//! Simulated environments with known conversion and margin per arm, for measuring each
//! policy's regret side by side with the Python peers (`bench/peers/bandits/`, which
//! documents the same environments and protocol).
//!
//! Protocol: T rounds in batches of B; every decision of a batch uses the statistics as
//! they stood at the batch's start (as save-offer decides with the population's bandit
//! as last refreshed), then the batch's outcomes are learned. The first batch is chosen
//! uniformly at random. Regret is pseudo-regret: the expected reward of the best arm for
//! the round's context minus that of the arm chosen.

use loyalty_contracts::BanditPolicy;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::{ArmStats, Tuning, choose};

/// An environment: per arm, the conversion probability given a context, and the margin
/// a conversion earns.
#[derive(Debug, Clone)]
pub struct Environment {
    pub name: &'static str,
    /// Per arm the coefficients of the conversion probability, clipped to [0, 1], over
    /// the context (a context-free environment has the single feature 1).
    pub theta: Vec<Vec<f64>>,
    pub margin: Vec<f64>,
    /// Features besides the leading 1, each Uniform[0, 1).
    pub features: usize,
}

impl Environment {
    /// Five arms; the best by margin (arm 4) is the worst by conversion.
    pub fn retention_5() -> Self {
        Environment {
            name: "retention-5",
            theta: [0.030, 0.045, 0.060, 0.050, 0.020]
                .iter()
                .map(|p| vec![*p])
                .collect(),
            margin: vec![40.0, 30.0, 25.0, 35.0, 90.0],
            features: 0,
        }
    }

    /// Three arms whose conversion depends on the member's context.
    pub fn retention_ctx() -> Self {
        Environment {
            name: "retention-ctx",
            theta: vec![
                vec![0.05, 0.10, 0.00, 0.00],
                vec![0.05, 0.00, 0.10, 0.00],
                vec![0.02, 0.05, 0.05, 0.08],
            ],
            margin: vec![30.0, 30.0, 25.0],
            features: 3,
        }
    }

    fn conversion(&self, arm: usize, x: &[f64]) -> f64 {
        self.theta[arm]
            .iter()
            .zip(x)
            .map(|(t, v)| t * v)
            .sum::<f64>()
            .clamp(0.0, 1.0)
    }

    fn expected(&self, arm: usize, x: &[f64]) -> f64 {
        self.conversion(arm, x) * self.margin[arm]
    }

    fn max_margin(&self) -> f64 {
        self.margin.iter().copied().fold(0.0, f64::max)
    }
}

/// Cumulative pseudo-regret at every `checkpoint` rounds, and at the end.
#[derive(Debug, Clone, PartialEq)]
pub struct Run {
    pub checkpoints: Vec<(usize, f64)>,
    pub regret: f64,
}

/// One run of `policy` on `env`, the linear policies at α = 1 (mabwiser's default).
pub fn run(
    env: &Environment,
    policy: BanditPolicy,
    rounds: usize,
    batch: usize,
    seed: u64,
    checkpoint: usize,
) -> Run {
    run_with_alpha(env, policy, rounds, batch, seed, checkpoint, 1.0)
}

/// [`run`] with LinUCB's width and linear Thompson sampling's posterior scale set to
/// `linear_alpha`.
pub fn run_with_alpha(
    env: &Environment,
    policy: BanditPolicy,
    rounds: usize,
    batch: usize,
    seed: u64,
    checkpoint: usize,
    linear_alpha: f64,
) -> Run {
    let mut world = ChaCha8Rng::seed_from_u64(seed);
    let mut chooser = ChaCha8Rng::seed_from_u64(seed ^ 0x5eed_0ff3_5a7e_0001);
    let k = env.margin.len();
    let linear = matches!(policy, BanditPolicy::LinUcb | BanditPolicy::LinThompson);
    let tuning = Tuning {
        reward_scale: env.max_margin(),
        exp3_horizon: rounds as f64,
        linear_alpha,
        ..Tuning::default()
    };
    let mut arms = vec![ArmStats::default(); k];
    let mut regret = 0.0;
    let mut checkpoints = Vec::new();
    let mut round = 0;
    while round < rounds {
        let size = batch.min(rounds - round);
        let frozen = arms.clone();
        let mut learned = Vec::with_capacity(size);
        for _ in 0..size {
            let mut x = vec![1.0];
            x.extend((0..env.features).map(|_| world.random::<f64>()));
            let context: &[f64] = if linear { &x } else { &[] };
            let choice = if round < batch {
                let arm = chooser.random_range(0..k);
                super::Choice {
                    arm,
                    probability: 1.0 / k as f64,
                }
            } else {
                choose(policy, &frozen, context, &tuning, &mut chooser)
            };
            let converted = world.random::<f64>() < env.conversion(choice.arm, &x);
            let reward = if converted {
                env.margin[choice.arm]
            } else {
                0.0
            };
            let best = (0..k)
                .map(|a| env.expected(a, &x))
                .fold(f64::NEG_INFINITY, f64::max);
            regret += best - env.expected(choice.arm, &x);
            learned.push((choice, reward, x));
            round += 1;
            if round % checkpoint == 0 {
                checkpoints.push((round, regret));
            }
        }
        for (choice, reward, x) in learned {
            let stats = &mut arms[choice.arm];
            let context: &[f64] = if linear { &x } else { &[] };
            stats.pull(context);
            stats.learn(reward, choice.probability, tuning.reward_scale, context);
        }
    }
    Run {
        checkpoints,
        regret,
    }
}
