//! `loyalty.member-consents.v1` (compacted): per-channel consent with its proof, the only
//! basis on which the compliance gate lets a message out.

use apache_avro::AvroSchema;
use serde::{Deserialize, Serialize};

use crate::Timestamp;

/// Channels a trigger can go out on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, AvroSchema)]
pub enum Channel {
    Email,
    Sms,
    Push,
    Voice,
    InApp,
    DirectMail,
}

impl Channel {
    /// The channel's name in policies, logs and idempotency keys: stable, unlike `Debug`.
    pub fn label(self) -> &'static str {
        match self {
            Channel::Email => "email",
            Channel::Sms => "sms",
            Channel::Push => "push",
            Channel::Voice => "voice",
            Channel::InApp => "in_app",
            Channel::DirectMail => "direct_mail",
        }
    }
}

/// Consent states; unknown is treated as no consent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, AvroSchema)]
pub enum ConsentStatus {
    OptedIn,
    OptedOut,
    Unknown,
    // Signed, written agreement naming the sender and the channel: what TCPA asks of
    // marketing texts (47 CFR 64.1200(f)(9)). v2.
    ExpressWritten,
    // Contact details collected at a sale, with an opt-out offered then and in every
    // message: enough for email where the jurisdiction allows soft opt-in (ePrivacy
    // Art. 13(2), PECR reg. 22(3)). v2.
    SoftOptIn,
}

/// Consent for one channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AvroSchema)]
pub struct ChannelConsent {
    /// The channel.
    pub channel: Channel,
    /// Current status.
    pub status: ConsentStatus,
    /// When the status was given or withdrawn.
    pub changed_at: Timestamp,
    /// Where it was captured: checkout, preference_center, sms_keyword, ...
    pub source: String,
    /// Reference to the stored proof (form submission id, double opt-in message id).
    pub proof_ref: Option<String>,
}

/// All consents of one member; key = member id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AvroSchema)]
#[avro(namespace = "io.loyaltyswarm")]
pub struct MemberConsents {
    /// Canonical member id.
    pub member_id: String,
    /// One entry per channel the member has a recorded status for.
    pub channels: Vec<ChannelConsent>,
    /// Verified parental consent for members under the age of digital consent.
    pub parental_consent_verified: bool,
    /// When this consent set was written.
    pub updated_at: Timestamp,
}
