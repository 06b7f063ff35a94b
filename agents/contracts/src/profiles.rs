//! `loyalty.member-profiles.v1` (compacted): who the member is, as far as the math and the
//! compliance rules need to know.

use apache_avro::AvroSchema;
use serde::{Deserialize, Serialize};

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
}
