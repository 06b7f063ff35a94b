//! `loyalty.triggers.email.v1`, `.sms.v1`, `.push.v1`: what compliance-gate lets out to
//! a member, one topic per channel so each ESP's or SMS vendor's connector reads only
//! its own. Nothing reaches a member except through these topics.

use apache_avro::AvroSchema;
use serde::{Deserialize, Serialize};

use crate::{Channel, LocalisedContent, Timestamp};

/// One approved send; key = member id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AvroSchema)]
#[avro(namespace = "io.loyaltyswarm")]
pub struct Trigger {
    /// The same for every delivery of this send (a replay, a retry, a deferred send
    /// released): vendors deduplicate on it (Klaviyo `unique_id`, Attentive
    /// `externalEventId`).
    pub idempotency_key: String,
    /// The member's id in the operator's systems, as the ESP knows them.
    pub member_external_id: String,
    pub channel: Channel,
    /// The ESP's template (Klaviyo metric flow, Braze canvas, Attentive journey).
    pub template_id: Option<String>,
    /// Not to be sent before this instant: a deferred send's release time.
    pub send_after: Timestamp,
    pub proposal_id: String,
    pub offer_id: String,
    pub offer_version_id: i64,
    /// The offer as the member reads it.
    pub content: LocalisedContent,
    /// The decision that let it out (its audit record), and the policy set that made it.
    pub decision_id: String,
    pub policy_set_hash: String,
    pub decided_at: Timestamp,
}
