//! save-offer's settings, under `[agent]`, and the problems that stop start-up.

use loyalty_runtime::AgentSettings;
use serde::{Deserialize, Serialize};

use crate::bandit::Tuning;

/// Settings under `[agent]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// Rewards (incremental margin, minor units) are divided by this for UCB1 and EXP3,
    /// which assume rewards in [0, 1]; also the margin Thompson sampling assumes for an
    /// arm that has not converted yet.
    pub reward_scale_minor: f64,
    /// UCB1's exploration factor.
    pub ucb_alpha: f64,
    /// LinUCB's width and linear Thompson sampling's posterior scale, in reward units
    /// (minor units): about the standard deviation of one reward.
    pub linear_alpha: f64,
    /// Ridge penalty of the linear policies.
    pub ridge: f64,
    /// Proposals an EXP3 experiment is expected to run for (sets its exploration rate).
    pub exp3_horizon: f64,
    /// Rejections listed in a proposal; every one is counted in its tally.
    pub max_listed_rejections: usize,
    /// Trigger ids remembered per member, so a trigger delivered twice proposes once.
    pub remembered_triggers: usize,
    /// Claim decisions remembered per budget, so a claim sent twice is charged once.
    pub remembered_claims: usize,
    /// How long a trigger for a member without a value (no member-ltv record yet, or only
    /// the one ltv writes before a fit values the member: a new member, or ltv still
    /// catching up) waits for it before it is decided anyway, in wall-clock milliseconds
    /// after the trigger's record was logged; 0 decides at once.
    pub join_wait_ms: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            reward_scale_minor: 10_000.0,
            ucb_alpha: 1.0,
            linear_alpha: 1_000.0,
            ridge: 1.0,
            exp3_horizon: 100_000.0,
            max_listed_rejections: 256,
            remembered_triggers: 64,
            remembered_claims: 10_000,
            join_wait_ms: 60_000,
        }
    }
}

impl Settings {
    pub fn tuning(&self) -> Tuning {
        Tuning {
            reward_scale: self.reward_scale_minor,
            ucb_alpha: self.ucb_alpha,
            linear_alpha: self.linear_alpha,
            ridge: self.ridge,
            exp3_horizon: self.exp3_horizon,
        }
    }
}

impl AgentSettings for Settings {
    fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        let positive = [
            ("reward_scale_minor", self.reward_scale_minor),
            ("ridge", self.ridge),
            ("exp3_horizon", self.exp3_horizon),
        ];
        for (name, value) in positive {
            if !(value.is_finite() && value > 0.0) {
                problems.push(format!(
                    "agent.{name} must be a positive number, not {value}"
                ));
            }
        }
        for (name, value) in [
            ("ucb_alpha", self.ucb_alpha),
            ("linear_alpha", self.linear_alpha),
        ] {
            if !(value.is_finite() && value >= 0.0) {
                problems.push(format!("agent.{name} must not be negative, not {value}"));
            }
        }
        if self.remembered_triggers == 0 {
            problems.push("agent.remembered_triggers must be at least 1".into());
        }
        if self.remembered_claims == 0 {
            problems.push("agent.remembered_claims must be at least 1".into());
        }
        problems
    }
}
