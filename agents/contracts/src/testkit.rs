//! Sample contract records for the agents' tests and benchmarks: one way to make a
//! member-state with a regular purchase rhythm, whichever agent reads it. Not used in
//! processing.

use crate::{BtydSummary, Date, MemberState, PointsLedger, Rfm, TierProgress, Timestamp};

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
