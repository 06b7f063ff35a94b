//! Sample inputs for the agent's tests and benchmarks: the demo program's shape, members
//! with a regular purchase rhythm and the published CDNOW population models (the
//! runtime's `Record` turns them into inputs). Not used in processing.

use btyd::params::Published;
use loyalty_contracts::{
    Date, MemberCohort, MemberState, Program, TierForecasts, Timestamp, TransitionForecast,
    TransitionType,
};

/// The shared three-tier spend program under id `p`.
pub fn program() -> Program {
    Program::three_tier_spend("p")
}

/// The published CDNOW fits (Fader, Hardie & Lee 2005; 2013 note), spend in cents.
pub fn cdnow_model(version: &str) -> Published {
    Published::cdnow(version)
}

pub use loyalty_contracts::testkit::member;

/// Tier forecasts with the given up- and down-tier probabilities.
pub fn forecasts(m: &MemberState, up: (f64, &str), down: (f64, &str)) -> TierForecasts {
    let forecast = |transition, (p, tier): (f64, &str)| TransitionForecast {
        transition,
        not_applicable: None,
        probability: Some(p),
        raw_probability: Some(p),
        expected_date: None,
        date_low: None,
        date_high: None,
        target_tier_id: Some(tier.into()),
        amount_gap: None,
    };
    TierForecasts {
        member_id: m.member_id.clone(),
        program_id: "p".into(),
        as_of: m.as_of,
        horizon_end: Timestamp(m.as_of.0 + 365 * loyalty_contracts::MILLIS_PER_DAY),
        tier_id: m
            .tier
            .as_ref()
            .map_or_else(String::new, |t| t.tier_id.clone()),
        model_version: "cdnow".into(),
        calibration_version: "identity".into(),
        forecasts: vec![
            forecast(TransitionType::UpTier, up),
            forecast(TransitionType::DownTier, down),
        ],
    }
}

/// A cohort record in `segment`.
pub fn cohort(m: &MemberState, segment: loyalty_contracts::Segment) -> MemberCohort {
    MemberCohort {
        member_id: m.member_id.clone(),
        as_of: m.as_of,
        recency_score: 3,
        frequency_score: 3,
        monetary_score: 3,
        segment,
        lifecycle: loyalty_contracts::Lifecycle::Active,
        typical_interpurchase_days: 30.0,
        days_since_last_purchase: 10,
        acquisition_cohort: "1997-01".into(),
        first_purchase: m.btyd.as_ref().map_or(Date(0), |b| b.first_purchase),
        boundaries_version: "test".into(),
    }
}
