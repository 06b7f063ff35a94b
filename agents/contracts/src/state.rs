//! `loyalty.member-state.v1` (compacted): the customer-graph's snapshot of one member,
//! the common input of cohort, tier-transition and ltv.
//!
//! Buy-till-you-die conventions (Fader, Hardie & Lee 2005): purchases on the same UTC day
//! are one transaction, `x` counts transactions after the first, `t_x_days` is the time
//! from first to last transaction and `t_days` the time from the first transaction to
//! `as_of`. Days rather than weeks keep the summary exact; the models divide by 7.

use apache_avro::AvroSchema;
use serde::{Deserialize, Serialize};

use crate::{Date, Timestamp};

/// Buy-till-you-die sufficient statistics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AvroSchema)]
pub struct BtydSummary {
    /// Repeat transactions: distinct purchase days after the first.
    pub x: i32,
    /// Days from the first to the last transaction.
    pub t_x_days: i32,
    /// Days from the first transaction to as_of.
    pub t_days: i32,
    /// Day of the first transaction.
    pub first_purchase: Date,
    /// Day of the last transaction.
    pub last_purchase: Date,
    /// Mean value of the repeat transactions in minor units (Gamma-Gamma input); 0 when x = 0.
    pub mean_repeat_value_minor: f64,
}

/// Recency, frequency and monetary value, raw (cohort turns them into scores).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AvroSchema)]
pub struct Rfm {
    /// Days from the last transaction to as_of.
    pub recency_days: i32,
    /// Number of transactions (x + 1).
    pub frequency: i32,
    /// Mean transaction value in minor units.
    pub monetary_minor: f64,
}

/// Where the member stands in the program's tiers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AvroSchema)]
pub struct TierProgress {
    /// Program the member is in.
    pub program_id: String,
    /// Tier the member holds now.
    pub tier_id: String,
    /// Rank of that tier (0 = entry).
    pub tier_rank: i32,
    /// Since when the member holds it.
    pub tier_since: Timestamp,
    /// Qualifying amount in the current window (minor units or points, per the program).
    pub qualifying_amount: i64,
    /// Next tier up, if there is one.
    pub next_tier_id: Option<String>,
    /// Qualifying amount still missing for the next tier.
    pub amount_to_next_tier: Option<i64>,
    /// When the current window closes (calendar windows) or the oldest qualifying amount drops out (rolling).
    pub window_end: Timestamp,
    /// Set while the member is below the held tier's threshold: the tier is kept until this instant.
    pub grace_until: Option<Timestamp>,
    /// The tier was set by an operator TierChanged event rather than by qualification.
    pub manual_override: bool,
    /// Qualifying amount per day still inside the window, oldest first: when each part of
    /// qualifying_amount drops out (rolling windows). Null from producers before schema v2.
    pub qualifying_days: Option<Vec<QualifyingDay>>,
}

/// One day's qualifying amount.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AvroSchema)]
pub struct QualifyingDay {
    /// The UTC day.
    pub day: Date,
    /// Qualifying amount earned that day (minor units or points; negative after a return).
    pub amount: i64,
}

/// Points position.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AvroSchema)]
pub struct PointsLedger {
    /// Current balance.
    pub balance: i64,
    /// Lifetime points earned.
    pub earned: i64,
    /// Lifetime points redeemed (burned).
    pub redeemed: i64,
    /// Lifetime points expired.
    pub expired: i64,
    /// Points earned per 30 days since the member's first event.
    pub earn_velocity_30d: f64,
    /// Points redeemed per 30 days since the member's first event.
    pub burn_velocity_30d: f64,
    /// Number of redemptions.
    pub redemptions: i32,
}

/// The member snapshot; key = member id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AvroSchema)]
#[avro(namespace = "io.loyaltyswarm")]
pub struct MemberState {
    /// Canonical member id.
    pub member_id: String,
    /// Event time this snapshot is valid at: the newest occurred_at applied to it.
    pub as_of: Timestamp,
    /// Number of distinct events applied (duplicates excluded).
    pub events_applied: i64,
    /// Buy-till-you-die summary; null until the first purchase.
    pub btyd: Option<BtydSummary>,
    /// Raw RFM; null until the first purchase.
    pub rfm: Option<Rfm>,
    /// Gross spend in minor units (orders, before returns).
    pub spend_minor: i64,
    /// Gross margin in minor units, over orders that reported one.
    pub margin_minor: i64,
    /// Refunded value in minor units.
    pub returns_minor: i64,
    /// Number of returns.
    pub returns_count: i32,
    /// ISO 4217 currency of the money fields (the first order's currency).
    pub currency: Option<String>,
    /// Tier position; null until the member's program is known.
    pub tier: Option<TierProgress>,
    /// Points position.
    pub points: PointsLedger,
    /// Consecutive calendar months (UTC) with a purchase, ending at the month of as_of or the month before.
    pub current_streak_months: i32,
    /// Longest run of consecutive calendar months with a purchase.
    pub longest_streak_months: i32,
    /// Completed referrals.
    pub referrals: i32,
    /// Engagement events (opens, clicks, visits, reviews, shares).
    pub engagements: i32,
    /// Subscription status, when the member has a subscription.
    pub subscription_status: Option<crate::SubscriptionStatus>,
    /// Source-system ids linked to this member, as `<source>:<id>`.
    pub identity_links: Vec<String>,
    /// Brands the member has bought from or engaged with.
    pub brands: Vec<String>,
    /// How the member buys and pays, as their newest profile states it; null until a
    /// profile states any of it (v3).
    pub attributes: Option<MemberAttributes>,
}

/// What a member's profile says about how they were acquired, buy and pay: the
/// eligibility facts offers are targeted on, carried on the member's snapshot so every
/// consumer of member-state has them.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, AvroSchema)]
#[avro(namespace = "io.loyaltyswarm")]
pub struct MemberAttributes {
    /// paid_search, social, referral, retail, partner, ...
    pub acquisition_channel: Option<String>,
    /// card, paypal, bank_debit, invoice, ...
    pub payment_method: Option<String>,
    /// weekly, monthly, quarterly, annual.
    pub billing_frequency: Option<String>,
    /// none, current, past_due (where the operator lends).
    pub borrower_status: Option<String>,
    /// The operator's vertical: grocery, beauty, pet, ...
    pub vertical: Option<String>,
    /// Subscription plan tier (basic, plus, premium), not the loyalty tier.
    pub plan_tier: Option<String>,
}

impl MemberAttributes {
    /// The attributes a profile states, or `None` if it states none.
    pub fn of(profile: &crate::MemberProfile) -> Option<Self> {
        let attributes = MemberAttributes {
            acquisition_channel: profile.acquisition_channel.clone(),
            payment_method: profile.payment_method.clone(),
            billing_frequency: profile.billing_frequency.clone(),
            borrower_status: profile.borrower_status.clone(),
            vertical: profile.vertical.clone(),
            plan_tier: profile.plan_tier.clone(),
        };
        (attributes != MemberAttributes::default()).then_some(attributes)
    }
}

/// An identity link: the source system and the id it knows the member by (the key its
/// records arrive under), written `<source>:<id>`.
pub fn identity_link(source: &str, id: &str) -> String {
    format!("{source}:{id}")
}

/// The id an identity link names (what the source keys its records by); `None` for a
/// link without a source.
pub fn linked_id(link: &str) -> Option<&str> {
    link.split_once(':').map(|(_, id)| id)
}
