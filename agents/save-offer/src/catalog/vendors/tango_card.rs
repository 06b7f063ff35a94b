//! Tango Card (RaaS API v2): a catalog reward, as
//! `GET {URI}/catalogs?utid={utid}&verbose=true` returns it
//! (<https://developers.tangocard.com/docs/view-catalog>): one entry of `brands[]` (brand
//! name, description, terms, `imageUrls`, ...) whose `items[]` holds the one reward item
//! (UTID) this offer is. A brand with several items is several offers and
//! must be split by the caller, one document per UTID.
//!
//! - A gift card, prepaid card or any other stored-value item → `GiftBundle`: the member
//!   receives its face value, which is also the operator's cost of one redemption and its
//!   `compliance.stored_value`; the UTID is the product given.
//! - A donation item (`rewardType` naming a donation or charity) → `CharityMatch`, costing
//!   its face value.
//!
//! `valueType: "FIXED_VALUE"` states the face value (`faceValue`). `"VARIABLE_VALUE"` lets
//! the sender choose any amount from `minValue` to `maxValue`: the face value is taken as
//! `maxValue`, the most one redemption can cost, marked `Derived`, until the operator's
//! policy names the denomination sent (`OfferPolicy.fixed_cost_minor`). Catalog items state
//! no expiry (Tango's gift cards do not expire), so the stored value has none. The item's
//! `countries` are where it can be redeemed, hence the eligible countries. Amounts are in
//! the item's `currencyCode`; an item lacking one falls back on the store currency the
//! vendor offer names, and is rejected ("states an amount but no currency") without it.

use loyalty_contracts::{Confidence, OfferType, StoredValue};
use serde_json::Value;

use super::{NormaliseError, Normalised, Reader};

/// `imageUrls` keys, largest first.
const IMAGE_SIZES: [&str; 6] = [
    "1200w-326ppi",
    "300w-326ppi",
    "278w-326ppi",
    "200w-326ppi",
    "130w-326ppi",
    "80w-326ppi",
];

pub fn normalise(r: &Reader) -> Result<Normalised, NormaliseError> {
    match r.get("items").and_then(Value::as_array).map(Vec::len) {
        Some(1) => {}
        Some(count) => {
            return Err(r.malformed(format!(
                "items holds {count} reward items: one document per UTID is expected"
            )));
        }
        None => return Err(r.malformed("items is missing or not an array")),
    }
    let utid = r.required_str("items/0/utid")?;
    let title = r.required_str("items/0/rewardName")?;
    let currency = r.amount_currency("items/0/currencyCode")?;
    let (face_value, confidence) = match r.required_str("items/0/valueType")? {
        "FIXED_VALUE" => (r.money("items/0/faceValue", &currency)?, Confidence::Vendor),
        "VARIABLE_VALUE" => (r.money("items/0/maxValue", &currency)?, Confidence::Derived),
        other => {
            return Err(r.malformed(format!(
                "items/0/valueType {other:?} is neither FIXED_VALUE nor VARIABLE_VALUE"
            )));
        }
    };
    let face_value = face_value.ok_or_else(|| {
        r.malformed("items/0 states no face value (faceValue, or maxValue when variable)")
    })?;
    let reward_type = r.required_str("items/0/rewardType")?.to_lowercase();
    let charity = reward_type.contains("donation") || reward_type.contains("charit");
    let offer_type = if charity {
        OfferType::CharityMatch
    } else {
        OfferType::GiftBundle
    };
    let mut n = Normalised::new(title, offer_type, &currency);
    n.value.product_sku = Some(utid.to_owned());
    n.value.fixed_cost_minor = face_value;
    n.value.confidence = confidence;
    if !charity {
        n.compliance.stored_value = Some(StoredValue {
            amount_minor: face_value,
            currency,
            expires_on: None,
        });
    }
    n.eligibility.countries = r
        .get("items/0/countries")
        .and_then(Value::as_array)
        .map(|countries| {
            countries
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    if !n.eligibility.countries.is_empty() {
        n.eligibility.confidence = Confidence::Vendor;
    }
    let image = r.get("imageUrls").and_then(|urls| {
        IMAGE_SIZES
            .iter()
            .find_map(|size| urls.get(*size).and_then(Value::as_str))
    });
    if let Some(url) = image {
        n.content.asset_url = Some(url.to_owned());
        n.content.confidence = Confidence::Vendor;
    }
    n.used = vec!["items", "imageUrls"];
    Ok(n)
}
