//! `loyalty.member-ltv.v1` (compacted): one member's lifetime value as the ltv agent
//! derives it — the baseline from the member's own purchase process, its decay curve, the
//! eight loyalty adjustments, six counterfactuals, the three-way reconciliation and the
//! signed attestation a regulator can re-check (`swarm ltv verify`). The README ("Lifetime
//! value") defines every quantity.

use apache_avro::AvroSchema;
use serde::{Deserialize, Serialize};

use crate::Timestamp;

/// Value over the standard horizons, revenue and margin kept apart; minor units.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AvroSchema)]
pub struct ValueHorizons {
    /// Expected revenue over the next 12 months (undiscounted).
    pub revenue_12m_minor: i64,
    /// Expected gross margin over the next 12 months (undiscounted).
    pub margin_12m_minor: i64,
    /// Expected revenue over the next 36 months (undiscounted).
    pub revenue_36m_minor: i64,
    /// Expected gross margin over the next 36 months (undiscounted).
    pub margin_36m_minor: i64,
    /// Discounted expected residual revenue over the lifetime horizon.
    pub lifetime_revenue_minor: i64,
    /// Discounted expected residual margin over the lifetime horizon.
    pub lifetime_margin_minor: i64,
}

/// One month of the decay curve.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AvroSchema)]
pub struct DecayPoint {
    /// Month after as_of, 1-based.
    pub month: i32,
    /// Probability the member is still alive (buying) at the end of the month.
    pub p_alive: f64,
    /// Expected transactions in the month.
    pub expected_transactions: f64,
    /// Expected revenue in the month, minor units.
    pub revenue_minor: i64,
    /// Expected margin in the month, minor units.
    pub margin_minor: i64,
}

/// The eight loyalty adjustments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, AvroSchema)]
pub enum AdjustmentKind {
    TierMultiplier,
    RedemptionBurnRate,
    PointVelocity,
    RedemptionVelocity,
    TierTenureBonus,
    StreakBonus,
    ReferralMultiplier,
    EarnRateMultiplier,
}

impl AdjustmentKind {
    pub const ALL: [AdjustmentKind; 8] = [
        AdjustmentKind::TierMultiplier,
        AdjustmentKind::RedemptionBurnRate,
        AdjustmentKind::PointVelocity,
        AdjustmentKind::RedemptionVelocity,
        AdjustmentKind::TierTenureBonus,
        AdjustmentKind::StreakBonus,
        AdjustmentKind::ReferralMultiplier,
        AdjustmentKind::EarnRateMultiplier,
    ];

    pub fn label(self) -> &'static str {
        match self {
            AdjustmentKind::TierMultiplier => "tier_multiplier",
            AdjustmentKind::RedemptionBurnRate => "redemption_burn_rate",
            AdjustmentKind::PointVelocity => "point_velocity",
            AdjustmentKind::RedemptionVelocity => "redemption_velocity",
            AdjustmentKind::TierTenureBonus => "tier_tenure_bonus",
            AdjustmentKind::StreakBonus => "streak_bonus",
            AdjustmentKind::ReferralMultiplier => "referral_multiplier",
            AdjustmentKind::EarnRateMultiplier => "earn_rate_multiplier",
        }
    }
}

/// One loyalty adjustment to the baseline lifetime margin.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AvroSchema)]
pub struct Adjustment {
    /// Which adjustment.
    pub kind: AdjustmentKind,
    /// Change to the discounted lifetime margin, minor units (negative for points costs).
    pub value_minor: i64,
    /// The multiplier or rate the value came from (its meaning is given in basis).
    pub factor: f64,
    /// How the value was derived, in words, with the inputs used.
    pub basis: String,
}

/// The six intervention types a counterfactual is computed for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, AvroSchema)]
pub enum InterventionType {
    Offer,
    TierPromotion,
    TierBridge,
    Redemption,
    StreakProtection,
    SurpriseAndDelight,
}

impl InterventionType {
    pub const ALL: [InterventionType; 6] = [
        InterventionType::Offer,
        InterventionType::TierPromotion,
        InterventionType::TierBridge,
        InterventionType::Redemption,
        InterventionType::StreakProtection,
        InterventionType::SurpriseAndDelight,
    ];

    /// The label used in `InterventionOutcome.intervention_type`.
    pub fn label(self) -> &'static str {
        match self {
            InterventionType::Offer => "offer",
            InterventionType::TierPromotion => "tier_promotion",
            InterventionType::TierBridge => "tier_bridge",
            InterventionType::Redemption => "redemption",
            InterventionType::StreakProtection => "streak_protection",
            InterventionType::SurpriseAndDelight => "surprise_and_delight",
        }
    }

    pub fn from_label(label: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.label() == label)
    }
}

/// Value with and without one intervention.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AvroSchema)]
pub struct Counterfactual {
    /// The intervention.
    pub intervention: InterventionType,
    /// Adjusted lifetime margin without it, minor units.
    pub baseline_minor: i64,
    /// Expected adjusted lifetime margin with it, minor units.
    pub intervention_minor: i64,
    /// intervention - baseline.
    pub incremental_minor: i64,
    /// Lower end of the 80% interval of the incremental value.
    pub incremental_low_minor: i64,
    /// Upper end of the 80% interval of the incremental value.
    pub incremental_high_minor: i64,
    /// Posterior mean relative uplift (0.05 = +5% of value).
    pub uplift: f64,
    /// Posterior standard deviation of the relative uplift.
    pub uplift_sd: f64,
    /// Interventions of this type observed (treated + hold-out) in the population.
    pub outcomes_observed: i64,
    /// Share of the posterior precision that comes from the prior (1 = prior only).
    pub prior_share: f64,
}

/// A pair of sources that disagree beyond the configured tolerance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AvroSchema)]
pub struct Discrepancy {
    /// Which sources: own_history_vs_tier_forecast, own_history_vs_cohort, tier_forecast_vs_cohort.
    pub between: String,
    /// Value of the first source, minor units.
    pub left_minor: i64,
    /// Value of the second source, minor units.
    pub right_minor: i64,
    /// |left - right| / max(|left|, |right|).
    pub relative_difference: f64,
}

/// The member's 12-month revenue as three sources imply it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AvroSchema)]
pub struct Reconciliation {
    /// From the member's own purchase history (the baseline).
    pub own_history_minor: Option<i64>,
    /// From the tier forecast: members' mean value in each tier the member may hold, weighted by its probability.
    pub tier_forecast_minor: Option<i64>,
    /// From the cohort: members' mean value in the member's RFM segment.
    pub cohort_minor: Option<i64>,
    /// Weighted mean of the sources present.
    pub reconciled_minor: i64,
    /// 1 - mean relative deviation of the sources from the reconciled value, in [0, 1]; 1 = all agree.
    pub coherence: f64,
    /// Pairs beyond tolerance.
    pub discrepancies: Vec<Discrepancy>,
    /// The tolerance the pairs were judged against (relative difference).
    pub tolerance: f64,
}

/// Where one joined input came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AvroSchema)]
pub struct InputPosition {
    /// Topic.
    pub topic: String,
    /// Partition.
    pub partition: i32,
    /// Offset of the record that was joined.
    pub offset: i64,
}

/// Who computed the record from what, signed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AvroSchema)]
pub struct Attestation {
    /// Version of the population model the baseline used ("" when none was usable).
    pub model_version: String,
    /// SHA-256 (hex) of the model's parameters in a canonical text form.
    pub parameter_hash: String,
    /// Each joined input record.
    pub inputs: Vec<InputPosition>,
    /// SHA-256 (hex) of the record's canonical encoding (below).
    pub output_hash: String,
    /// Event time the record is valid at (the newest joined input), not the wall clock.
    pub attested_at: Timestamp,
    /// Identity of the attesting agent instance, from its configuration.
    pub attestor: String,
    /// SHA-256 (hex) of the Ed25519 public key that signed, to pick the verifying key.
    pub key_id: String,
    /// Why the record was written: which input changed.
    pub rationale: String,
    /// Ed25519 signature (hex) over the canonical encoding: the Avro binary of this record
    /// with output_hash and signature empty.
    pub signature: String,
}

/// One member's lifetime value; key = member id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AvroSchema)]
#[avro(namespace = "io.loyaltyswarm")]
pub struct MemberLtv {
    /// Member id.
    pub member_id: String,
    /// When the values are computed at: the member-state's as_of when one of the member's
    /// inputs changed; after a refresh, the newer of that and the population's newest
    /// member-state day (so a lapsed member is valued as lapsed).
    pub as_of: Timestamp,
    /// ISO 4217 currency of every minor-unit amount.
    pub currency: Option<String>,
    /// Joined inputs that have not arrived yet (member_state, tier_forecasts, cohorts).
    pub missing_inputs: Vec<String>,
    /// Model segment of the baseline ("" when no usable fit exists yet).
    pub model_segment: String,
    /// Probability the member is alive at as_of; null without a usable fit or purchase.
    pub p_alive: Option<f64>,
    /// Expected order value (Gamma-Gamma, conditional on the member's history), minor units.
    pub expected_order_value_minor: Option<f64>,
    /// Gross margin per unit of revenue used for margin values.
    pub margin_ratio: f64,
    /// The baseline from the member's own history.
    pub baseline: ValueHorizons,
    /// Expected value per month for the next 36 months.
    pub decay_curve: Vec<DecayPoint>,
    /// Current points balance at face value (balance x the program's point value), minor units.
    pub points_liability_minor: i64,
    /// The eight loyalty adjustments, each separately.
    pub adjustments: Vec<Adjustment>,
    /// Baseline lifetime margin plus every adjustment.
    pub adjusted_lifetime_margin_minor: i64,
    /// One counterfactual per intervention type.
    pub counterfactuals: Vec<Counterfactual>,
    /// Own-history, tier-forecast and cohort values reconciled.
    pub reconciliation: Reconciliation,
    /// Signed provenance.
    pub attestation: Attestation,
}
