//! `loyalty.member-events.v1`: one envelope per thing that happened to a member.
//!
//! The envelope carries what every consumer needs for ordering and deduplication
//! (`event_id`, `occurred_at`); the payload is an Avro union so a new event kind is a new
//! branch appended at the end, which old readers can still resolve.

use apache_avro::AvroSchema;
use serde::{Deserialize, Serialize};

use crate::Timestamp;

/// A member event as the operator's systems publish it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AvroSchema)]
#[avro(namespace = "io.loyaltyswarm")]
pub struct MemberEvent {
    /// Globally unique id of this event; a second record with the same id is a duplicate and is ignored.
    pub event_id: String,
    /// Canonical member id. Records are keyed by it (UTF-8); a record keyed by another id, such as a source system's own customer id, is re-keyed to this member before any state changes.
    pub member_id: String,
    /// Brand or banner the event happened under.
    pub brand_id: String,
    /// When the event happened in the real world (event time, UTC).
    pub occurred_at: Timestamp,
    /// System that produced the event: shopify, recharge, pos, app, esp, ...
    pub source: String,
    /// The member's id in the source system, when it differs from member_id; kept as one of the member's identity links.
    pub source_member_id: Option<String>,
    /// What happened.
    pub payload: Payload,
}

/// The event kinds; new kinds are appended, never inserted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AvroSchema)]
#[avro(repr = "bare_union")]
pub enum Payload {
    OrderPlaced(OrderPlaced),
    OrderReturned(OrderReturned),
    PointsEarned(PointsEarned),
    PointsRedeemed(PointsRedeemed),
    PointsExpired(PointsExpired),
    TierChanged(TierChanged),
    SubscriptionChanged(SubscriptionChanged),
    Engagement(Engagement),
    ReferralCompleted(ReferralCompleted),
    InterventionOutcome(InterventionOutcome),
    CancellationRequested(CancellationRequested),
}

/// A purchase. Same-day orders of one member count as one transaction in the buy-till-you-die summary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AvroSchema)]
pub struct OrderPlaced {
    /// Order id in the source system.
    pub order_id: String,
    /// Order value in minor currency units (cents), after discounts, before tax; never negative.
    pub amount_minor: i64,
    /// ISO 4217 currency of amount_minor.
    pub currency: String,
    /// Gross margin of the order in minor units, when the source knows it.
    pub margin_minor: Option<i64>,
    /// Number of items (units) in the order.
    pub items: i32,
    /// Store or location id for in-person orders.
    pub location_id: Option<String>,
    /// Product line or vertical of the order.
    pub product_line: Option<String>,
}

/// A (partial) return of an earlier order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AvroSchema)]
pub struct OrderReturned {
    /// The order the return belongs to.
    pub order_id: String,
    /// Refunded value in minor currency units; never negative.
    pub amount_minor: i64,
    /// ISO 4217 currency of amount_minor.
    pub currency: String,
}

/// Points credited to the member.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AvroSchema)]
pub struct PointsEarned {
    /// Points credited; never negative.
    pub points: i64,
    /// Why: purchase, bonus, referral, review, birthday, ...
    pub reason: String,
    /// Whether these points count towards tier qualification.
    pub qualifying: bool,
}

/// Points spent on a reward.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AvroSchema)]
pub struct PointsRedeemed {
    /// Points debited; never negative.
    pub points: i64,
    /// Reward the points were spent on.
    pub reward_id: Option<String>,
}

/// Points removed because they expired.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AvroSchema)]
pub struct PointsExpired {
    /// Points removed; never negative.
    pub points: i64,
}

/// The member's tier was changed by the program operator.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AvroSchema)]
pub struct TierChanged {
    /// Program whose tier changed.
    pub program_id: String,
    /// Tier the member left, if any.
    pub from_tier: Option<String>,
    /// Tier the member is now in; must exist in the program.
    pub to_tier: String,
    /// Why: qualification, manual, promotion, migration, ...
    pub reason: String,
}

/// Subscription lifecycle states.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, AvroSchema)]
pub enum SubscriptionStatus {
    Active,
    Paused,
    PastDue,
    Cancelled,
}

/// A subscription started, paused, resumed, failed to bill or was cancelled.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AvroSchema)]
pub struct SubscriptionChanged {
    /// Subscription id in the source system.
    pub subscription_id: String,
    /// New status.
    pub status: SubscriptionStatus,
    /// Plan or product of the subscription.
    pub plan: Option<String>,
    /// Billing interval in days (30 for monthly).
    pub billing_interval_days: Option<i32>,
}

/// Kinds of non-purchase engagement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, AvroSchema)]
pub enum EngagementKind {
    EmailOpen,
    EmailClick,
    AppOpen,
    SiteVisit,
    Review,
    SocialShare,
}

/// A non-purchase interaction.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AvroSchema)]
pub struct Engagement {
    /// What the member did.
    pub kind: EngagementKind,
    /// Campaign or message id the engagement belongs to.
    pub campaign_id: Option<String>,
}

/// Someone the member referred completed their first purchase.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AvroSchema)]
pub struct ReferralCompleted {
    /// The referred member.
    pub referred_member_id: String,
}

/// How a member responded to an intervention.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, AvroSchema)]
pub enum InterventionResult {
    Delivered,
    Opened,
    Accepted,
    Declined,
    Converted,
}

/// The observed outcome of an intervention the swarm proposed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AvroSchema)]
pub struct InterventionOutcome {
    /// Id of the proposal or trigger this outcome answers.
    pub intervention_id: String,
    /// Intervention type: offer, tier_promotion, tier_bridge, redemption, streak_protection, surprise_and_delight.
    pub intervention_type: String,
    /// What the member did.
    pub result: InterventionResult,
    /// Attributed value in minor units, when the outcome was a conversion.
    pub value_minor: Option<i64>,
    /// True when the member was in the hold-out (control) arm: the intervention was chosen
    /// for them but withheld, and the outcome is what they did anyway. Null or false: the
    /// member received it. Uplift is learned from the difference (schema v2).
    pub holdout: Option<bool>,
}

/// A subscriber asked to cancel and is still on the cancel page: save-offer answers with
/// an offer while they are (schema v3).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AvroSchema)]
pub struct CancellationRequested {
    /// Subscription the member wants to cancel.
    pub subscription_id: String,
    /// The reason code the cancel form offered (`too_expensive`, `not_using`, ...), if any.
    pub reason_code: Option<String>,
    /// What the member typed, if anything.
    pub reason_text: Option<String>,
    /// Where the request came from: web, app, phone, chat, email.
    pub channel: String,
}
