//! `loyalty.vendor-offers.v1`: offers as a vendor sends them, before save-offer maps them
//! into the canonical catalog. The vendor's own document is kept verbatim so nothing is
//! lost in translation.

use apache_avro::AvroSchema;
use serde::{Deserialize, Serialize};

use crate::Timestamp;

/// One offer from one vendor system.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, AvroSchema)]
#[avro(namespace = "io.loyaltyswarm")]
pub struct VendorOffer {
    /// Vendor system: shopify, stripe, recharge, voucherify, talon_one, klaviyo, yotpo, smile_io, ...
    pub vendor: String,
    /// The offer's id in the vendor system.
    pub vendor_offer_id: String,
    /// The vendor's offer document as JSON, unchanged.
    pub document_json: String,
    /// When the vendor sent it.
    pub received_at: Timestamp,
    /// ISO 4217 currency of the shop the offer belongs to, for vendors whose documents
    /// state amounts without one (Shopify price rules, Smile.io rewards, ...) (v2).
    pub store_currency: Option<String>,
}
