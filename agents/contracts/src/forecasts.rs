//! `loyalty.tier-forecasts.v1` (compacted) and `loyalty.intervention-opportunities.v1`:
//! what tier-transition predicts for each member and which forecasts call for action.
//! The README ("Tier transitions") defines each transition type precisely.

use apache_avro::AvroSchema;
use serde::{Deserialize, Serialize};

use crate::{Date, Timestamp};

/// The twelve tier transitions (`docs/architecture.md#tier-transition`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, AvroSchema)]
pub enum TransitionType {
    UpTier,
    DownTier,
    Renewal,
    Expiration,
    Stagnation,
    BridgeCrossing,
    CrossBanner,
    CrossLocation,
    CrossVertical,
    CrossProduct,
    GracePeriodEntry,
    Reinstatement,
}

impl TransitionType {
    pub const ALL: [TransitionType; 12] = [
        TransitionType::UpTier,
        TransitionType::DownTier,
        TransitionType::Renewal,
        TransitionType::Expiration,
        TransitionType::Stagnation,
        TransitionType::BridgeCrossing,
        TransitionType::CrossBanner,
        TransitionType::CrossLocation,
        TransitionType::CrossVertical,
        TransitionType::CrossProduct,
        TransitionType::GracePeriodEntry,
        TransitionType::Reinstatement,
    ];

    /// snake_case name, for metric labels and logs.
    pub fn label(self) -> &'static str {
        match self {
            TransitionType::UpTier => "up_tier",
            TransitionType::DownTier => "down_tier",
            TransitionType::Renewal => "renewal",
            TransitionType::Expiration => "expiration",
            TransitionType::Stagnation => "stagnation",
            TransitionType::BridgeCrossing => "bridge_crossing",
            TransitionType::CrossBanner => "cross_banner",
            TransitionType::CrossLocation => "cross_location",
            TransitionType::CrossVertical => "cross_vertical",
            TransitionType::CrossProduct => "cross_product",
            TransitionType::GracePeriodEntry => "grace_period_entry",
            TransitionType::Reinstatement => "reinstatement",
        }
    }
}

/// One transition's forecast for one member.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AvroSchema)]
pub struct TransitionForecast {
    /// Which transition.
    pub transition: TransitionType,
    /// Why the data cannot support this forecast for this member; null when it is forecast.
    pub not_applicable: Option<String>,
    /// Calibrated probability that the transition happens by horizon_end.
    pub probability: Option<f64>,
    /// The model's probability before calibration.
    pub raw_probability: Option<f64>,
    /// Median date of the transition, given that it happens by horizon_end.
    pub expected_date: Option<Date>,
    /// 10th percentile of that date (lower end of the 80% interval).
    pub date_low: Option<Date>,
    /// 90th percentile of that date (upper end of the 80% interval).
    pub date_high: Option<Date>,
    /// Tier the member would hold after the transition, for tier moves.
    pub target_tier_id: Option<String>,
    /// Qualifying amount (the program's metric) that decides the transition: still to earn
    /// for up-tier, bridge and reinstatement, to keep for down-tier and grace entry.
    pub amount_gap: Option<i64>,
}

/// All transition forecasts for one member; key = member id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AvroSchema)]
#[avro(namespace = "io.loyaltyswarm")]
pub struct TierForecasts {
    /// Member id.
    pub member_id: String,
    /// Program the tiers belong to.
    pub program_id: String,
    /// Event time the forecasts are made at (the member-state's as_of).
    pub as_of: Timestamp,
    /// Probabilities are over (as_of, horizon_end].
    pub horizon_end: Timestamp,
    /// Tier held at as_of.
    pub tier_id: String,
    /// Version of the population buy-till-you-die fit the forecasts come from.
    pub model_version: String,
    /// Version of the calibration maps applied.
    pub calibration_version: String,
    /// One entry per transition type, in the order of TransitionType.
    pub forecasts: Vec<TransitionForecast>,
}

/// What an operator might do about a forecast: TopUpNudge (likely to fall short of
/// keeping the tier: nudge before the window closes), ThankYou (likely to move up),
/// ReactivationOffer (likely to drop a tier: act before it happens), GraceExtension (in
/// grace and unlikely to requalify in time), Bridge (close to the next tier).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, AvroSchema)]
pub enum OpportunityKind {
    TopUpNudge,
    ThankYou,
    ReactivationOffer,
    GraceExtension,
    Bridge,
}

impl OpportunityKind {
    pub fn label(self) -> &'static str {
        match self {
            OpportunityKind::TopUpNudge => "top_up_nudge",
            OpportunityKind::ThankYou => "thank_you",
            OpportunityKind::ReactivationOffer => "reactivation_offer",
            OpportunityKind::GraceExtension => "grace_extension",
            OpportunityKind::Bridge => "bridge",
        }
    }
}

/// A forecast that crossed an operator threshold; key = member id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AvroSchema)]
#[avro(namespace = "io.loyaltyswarm")]
pub struct InterventionOpportunity {
    /// Deterministic id (member, kind, as_of): the idempotency key downstream.
    pub opportunity_id: String,
    /// Member id.
    pub member_id: String,
    /// Program id.
    pub program_id: String,
    /// What to do.
    pub kind: OpportunityKind,
    /// The forecast behind it.
    pub transition: TransitionType,
    /// Calibrated probability of that transition.
    pub probability: f64,
    /// The configured threshold it crossed.
    pub threshold: f64,
    /// Event time of the forecast.
    pub as_of: Timestamp,
    /// After this the opportunity is moot (the forecast's horizon or grace end).
    pub act_before: Timestamp,
    /// Tier involved.
    pub tier_id: String,
    /// Qualifying amount that decides it (as in the forecast).
    pub amount_gap: Option<i64>,
}
