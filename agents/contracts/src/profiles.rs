//! `loyalty.member-profiles.v1` (compacted): who the member is, as far as the math and the
//! compliance rules need to know.

use apache_avro::AvroSchema;
use serde::{Deserialize, Serialize};

use loyalty_runtime::Input;

use crate::{Date, Timestamp};

/// The newest profile of a member; key = member id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AvroSchema)]
#[avro(namespace = "io.loyaltyswarm")]
pub struct MemberProfile {
    /// Canonical member id.
    pub member_id: String,
    /// Program the member is enrolled in.
    pub program_id: String,
    /// When the member enrolled.
    pub enrolled_at: Timestamp,
    /// Date of birth, when known (age rules need it).
    pub birth_date: Option<Date>,
    /// ISO 3166-1 alpha-2 country.
    pub country: String,
    /// ISO 3166-2 subdivision (state, province).
    pub region: Option<String>,
    /// Postal code.
    pub postal_code: Option<String>,
    /// IANA time zone, e.g. America/New_York.
    pub time_zone: String,
    /// BCP 47 locale, e.g. en-US.
    pub locale: String,
    /// ISO 4217 currency the member is billed in.
    pub currency: String,
    /// The member objected to profiling (GDPR Art. 21): no individual scoring for marketing.
    pub objects_to_profiling: bool,
    /// When this profile version was written.
    pub updated_at: Timestamp,
    /// How the member was acquired: paid_search, social, referral, retail, partner, ... (v2).
    pub acquisition_channel: Option<String>,
    /// Payment method on file: card, paypal, bank_debit, invoice, ... (v2).
    pub payment_method: Option<String>,
    /// Billing frequency of the member's subscription: weekly, monthly, quarterly, annual (v2).
    pub billing_frequency: Option<String>,
    /// Buy-now-pay-later or credit status where the operator lends: none, current, past_due (v2).
    pub borrower_status: Option<String>,
    /// The operator's vertical the member belongs to (grocery, beauty, pet, ...) (v2).
    pub vertical: Option<String>,
    /// Subscription plan tier (basic, plus, premium), not the loyalty tier (v2).
    pub plan_tier: Option<String>,
    /// The member enrolled again after an erasure, at this time (v3). Set by the
    /// operator on the first profile of a returning member: the swarm then treats them
    /// as a fresh member, while their history before the erasure stays erased
    /// (`docs/architecture.md#erasure`).
    pub reenrolled_at: Option<Timestamp>,
}

/// When the profile in `input` re-enrols an erased member: its `reenrolled_at`. What
/// every agent that reads profiles answers to [`loyalty_runtime::Agent::reenrolment`].
pub fn reenrolment(input: &Input<'_>) -> Option<i64> {
    if input.topic != crate::topics::MEMBER_PROFILES || input.is_tombstone() {
        return None;
    }
    let profile: MemberProfile = input
        .decode_keyed("member_id", |p: &MemberProfile| &p.member_id)
        .ok()?;
    profile.reenrolled_at.map(|t| t.0)
}
