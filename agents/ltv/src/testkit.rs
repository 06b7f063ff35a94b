//! Sample inputs for the agent's tests and benchmarks: the demo program's shape, members
//! with a regular purchase rhythm and the published CDNOW population models (the
//! runtime's `Record` turns them into inputs). Not used in processing.

use btyd::params::Published;
use btyd::{BgNbd, GammaGamma};
use loyalty_contracts::{
    BtydSummary, Date, MemberCohort, MemberState, PointsLedger, Program, Rfm, TierForecasts,
    TierProgress, Timestamp, TransitionForecast, TransitionType,
};

/// The shared three-tier spend program under id `p`.
pub fn program() -> Program {
    Program::three_tier_spend("p")
}

/// The published CDNOW fits (Fader, Hardie & Lee 2005; 2013 note), spend in cents.
pub fn cdnow_model(version: &str) -> Published {
    Published {
        purchases: BgNbd {
            r: 0.2426,
            alpha: 4.4136,
            a: 0.7929,
            b: 2.4259,
        },
        spend: Some(GammaGamma {
            p: 6.2496,
            q: 3.7442,
            gamma: 1544.35,
        }),
        unit_days: 7.0,
        version: version.into(),
    }
}

/// A member with `x` repeat purchases of `value` minor units every `gap` days, observed
/// `idle` days after the last, in `tier`.
pub fn member(id: &str, x: i32, gap: i32, idle: i32, value: i64, tier: &str) -> MemberState {
    let first = Date::from_ymd(1997, 1, 15).map_or(9876, |d| d.0);
    let last = first + x * gap;
    let spend = value * i64::from(x + 1);
    MemberState {
        member_id: id.into(),
        as_of: Date(last + idle).start(),
        events_applied: i64::from(x + 1),
        btyd: Some(BtydSummary {
            x,
            t_x_days: last - first,
            t_days: last + idle - first,
            first_purchase: Date(first),
            last_purchase: Date(last),
            mean_repeat_value_minor: if x > 0 { value as f64 } else { 0.0 },
        }),
        rfm: Some(Rfm {
            recency_days: idle,
            frequency: x + 1,
            monetary_minor: value as f64,
        }),
        spend_minor: spend,
        margin_minor: spend * 35 / 100,
        returns_minor: 0,
        returns_count: 0,
        currency: Some("USD".into()),
        tier: Some(TierProgress {
            program_id: "p".into(),
            tier_id: tier.into(),
            tier_rank: 0,
            tier_since: Date(first).start(),
            qualifying_amount: spend,
            next_tier_id: None,
            amount_to_next_tier: None,
            window_end: Timestamp(Date(first + 365).start().0),
            grace_until: None,
            manual_override: false,
            qualifying_days: None,
        }),
        points: PointsLedger {
            balance: spend / 100 / 2,
            earned: spend / 100,
            redeemed: spend / 100 / 2,
            expired: 0,
            earn_velocity_30d: 20.0,
            burn_velocity_30d: 10.0,
            redemptions: 1,
        },
        current_streak_months: 2,
        longest_streak_months: 3,
        referrals: 1,
        engagements: 0,
        subscription_status: None,
        identity_links: Vec::new(),
        brands: Vec::new(),
        attributes: None,
    }
}

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
