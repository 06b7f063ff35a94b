//! `loyalty.erasure-requests.v1`: GDPR Art. 17 / CCPA deletion requests. Every agent
//! deletes what it holds about the member and confirms with a receipt.

use apache_avro::AvroSchema;
use serde::{Deserialize, Serialize};

use crate::Timestamp;

/// A request to erase a member; key = member id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AvroSchema)]
#[avro(namespace = "io.loyaltyswarm")]
pub struct ErasureRequest {
    /// Id of the request, quoted on every receipt.
    pub request_id: String,
    /// Member to erase.
    pub member_id: String,
    /// Legal basis: gdpr_art17, ccpa, ...
    pub basis: String,
    /// When the request was received.
    pub requested_at: Timestamp,
}
