//! ltv's settings, under `[agent]`, and the problems that stop start-up.

use std::path::PathBuf;

use loyalty_runtime::AgentSettings;
use serde::{Deserialize, Serialize};

use crate::attest;

/// Settings under `[agent]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// Months the discounted lifetime value runs over.
    pub lifetime_months: usize,
    /// Annual discount rate of the lifetime value.
    pub annual_discount_rate: f64,
    /// Margin per unit of revenue for members whose orders carry no margin.
    pub default_margin_ratio: f64,
    /// Segments with fewer members are not fitted (their members use the population fit).
    pub min_segment_members: i64,
    /// A refit is published only when a parameter moved by more than this (relative) from
    /// the published fit: every publication re-scores the members, so fits that merely
    /// wobble as events arrive are not worth one.
    pub refit_tolerance: f64,
    /// A segment with a published fit is refitted at most this often (wall clock): a
    /// population model is a periodic batch, not a per-event update.
    pub refit_min_interval_ms: u64,
    /// Upper bounds (days since the first purchase) of the tenure bands; the last band is open.
    pub tenure_bands_days: Vec<i32>,
    /// Prior mean of every intervention type's relative uplift.
    pub uplift_prior_mean: f64,
    /// Prior standard deviation of the relative uplift.
    pub uplift_prior_sd: f64,
    /// Relative difference beyond which two value sources are a named discrepancy.
    pub reconciliation_tolerance: f64,
    /// Weight of the member's own history in the reconciled value.
    pub weight_own_history: f64,
    /// Weight of the tier-forecast view.
    pub weight_tier_forecast: f64,
    /// Weight of the cohort view.
    pub weight_cohort: f64,
    /// Share of earned points a member without redemptions is expected to redeem.
    pub default_burn_ratio: f64,
    /// Lifetime margin added per month of current purchase streak.
    pub streak_bonus_per_month: f64,
    /// Streak months beyond this add nothing.
    pub streak_bonus_cap_months: i32,
    /// Share of a referred member's value credited to the referrer.
    pub referral_credit: f64,
    /// Identity written into every attestation.
    pub attestor: String,
    /// File holding the Ed25519 signing key (64 hex digits); unset = the
    /// `LTV_SIGNING_KEY` environment variable.
    pub signing_key_file: Option<PathBuf>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            lifetime_months: 120,
            annual_discount_rate: 0.10,
            default_margin_ratio: 0.30,
            min_segment_members: 200,
            refit_tolerance: 0.01,
            refit_min_interval_ms: 60_000,
            tenure_bands_days: vec![180, 365],
            uplift_prior_mean: 0.0,
            uplift_prior_sd: 0.10,
            reconciliation_tolerance: 0.5,
            weight_own_history: 0.6,
            weight_tier_forecast: 0.2,
            weight_cohort: 0.2,
            default_burn_ratio: 0.6,
            streak_bonus_per_month: 0.01,
            streak_bonus_cap_months: 12,
            referral_credit: 0.5,
            attestor: "ltv".into(),
            signing_key_file: None,
        }
    }
}

impl AgentSettings for Settings {
    fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if !(36..=600).contains(&self.lifetime_months) {
            problems.push(format!(
                "lifetime_months: {} must be between 36 and 600",
                self.lifetime_months
            ));
        }
        if !(0.0..1.0).contains(&self.annual_discount_rate) {
            problems.push(format!(
                "annual_discount_rate: {} must be in [0, 1)",
                self.annual_discount_rate
            ));
        }
        for (name, v) in [
            ("default_margin_ratio", self.default_margin_ratio),
            ("default_burn_ratio", self.default_burn_ratio),
            ("referral_credit", self.referral_credit),
        ] {
            if !(0.0..=1.0).contains(&v) {
                problems.push(format!("{name}: {v} must be between 0 and 1"));
            }
        }
        if !(0.0..1.0).contains(&self.refit_tolerance) {
            problems.push(format!(
                "refit_tolerance: {} must be in [0, 1)",
                self.refit_tolerance
            ));
        }
        if self.min_segment_members < 10 {
            problems.push(format!(
                "min_segment_members: {} must be at least 10",
                self.min_segment_members
            ));
        }
        if self.tenure_bands_days.windows(2).any(|w| w[0] >= w[1])
            || self.tenure_bands_days.iter().any(|d| *d <= 0)
        {
            problems.push(format!(
                "tenure_bands_days: {:?} must be positive and strictly increasing",
                self.tenure_bands_days
            ));
        }
        if !(self.uplift_prior_sd > 0.0 && self.uplift_prior_sd.is_finite()) {
            problems.push(format!(
                "uplift_prior_sd: {} must be positive",
                self.uplift_prior_sd
            ));
        }
        if !(self.uplift_prior_mean > -1.0 && self.uplift_prior_mean.is_finite()) {
            problems.push(format!(
                "uplift_prior_mean: {} must be above -1",
                self.uplift_prior_mean
            ));
        }
        if !(self.reconciliation_tolerance > 0.0 && self.reconciliation_tolerance <= 1.0) {
            problems.push(format!(
                "reconciliation_tolerance: {} must be in (0, 1]",
                self.reconciliation_tolerance
            ));
        }
        let weights = [
            self.weight_own_history,
            self.weight_tier_forecast,
            self.weight_cohort,
        ];
        if weights.iter().any(|w| *w < 0.0) || weights.iter().sum::<f64>() <= 0.0 {
            problems.push(format!(
                "weight_own_history, weight_tier_forecast, weight_cohort: {weights:?} must be non-negative and not all zero"
            ));
        }
        if !(0.0..=1.0).contains(&self.streak_bonus_per_month) || self.streak_bonus_cap_months < 0 {
            problems.push(format!(
                "streak_bonus_per_month {} must be in [0, 1] and streak_bonus_cap_months {} non-negative",
                self.streak_bonus_per_month, self.streak_bonus_cap_months
            ));
        }
        if self.attestor.trim().is_empty() {
            problems.push("attestor: must not be empty".into());
        }
        if let Err(e) = attest::load_signing_key(self.signing_key_file.as_deref()) {
            problems.push(e.to_string());
        }
        problems
    }
}
