//! Klaviyo: coupons, coupon codes and email templates, as the Klaviyo REST API returns them
//! (JSON:API documents: the resource in `data`, related resources in `included`).
//!
//! - A coupon, `GET /api/coupons/{id}`
//!   (<https://developers.klaviyo.com/en/reference/get_coupon>), has only an `external_id`
//!   and a free-text `description`: its value lives in the store that issues its codes.
//!   The type and value are read from the description ("10% off", "$5 off") and marked
//!   `Derived`; a description that states neither is dead-lettered, since no offer type
//!   can be chosen for it.
//! - A coupon code, `GET /api/coupon-codes/{id}?include=coupon`
//!   (<https://developers.klaviyo.com/en/reference/get_coupon_code>): its coupon (from
//!   `included`) plus the unique code and its `expires_at`. Codes Klaviyo reports as used,
//!   being deleted or of an inactive version are refused: proposing one would fail at
//!   checkout.
//! - A template, `GET /api/templates/{id}`
//!   (<https://developers.klaviyo.com/en/reference/get_template>): an email the ESP renders,
//!   so `EducationContent` carrying the template id; a template whose name says "survey" is
//!   a `WinBackSurvey` (Klaviyo has no template kind, so that split is read from the name).
//!
//! The value is read from the text by the helpers shared with the Smile.io, Antavo and
//! Bold normalisers ([`super::discount_in_text`]): "€", "£", ISO codes after the number and
//! "US$"/"CA$"/"A$" name the currency; a bare "$", shared by a dozen currencies, is the
//! store currency the vendor offer names. A coupon stating an amount in "$" when no store
//! currency is known is dead-lettered, since the amount cannot be put in minor units.

use loyalty_contracts::{Confidence, OfferType};
use serde_json::Value;

use super::{NormaliseError, Normalised, Reader, discount_in_text, last_day};

pub fn normalise(r: &Reader) -> Result<Normalised, NormaliseError> {
    match r.required_str("data/type")? {
        "coupon" => {
            let mut n = coupon(r, "data")?;
            n.used = vec!["data"];
            Ok(n)
        }
        "coupon-code" => coupon_code(r),
        "template" => template(r),
        other => Err(r.malformed(format!(
            "unsupported offer shape: data.type {other:?} is not a coupon, coupon-code or template"
        ))),
    }
}

/// The coupon resource at `at` (`data`, or an entry of `included`).
fn coupon(r: &Reader<'_>, at: &str) -> Result<Normalised, NormaliseError> {
    let external_id = r.required_str(&format!("{at}/attributes/external_id"))?;
    let description = r.str(&format!("{at}/attributes/description"));
    match description.and_then(|text| discount_in_text(text).map(|d| (text, d))) {
        // Klaviyo states no currency: an amount is in the store's.
        Some((text, discount)) => discount.offer(text, r, "currency"),
        None => Err(r.malformed(format!(
            "unsupported offer shape: coupon {external_id:?} states no percent or amount in \
             {at}/attributes/description; its value lives in the store that issues its codes"
        ))),
    }
}

fn coupon_code(r: &Reader<'_>) -> Result<Normalised, NormaliseError> {
    let code = r.required_str("data/attributes/unique_code")?;
    if let Some(status @ ("USED" | "DELETING" | "VERSION_NOT_ACTIVE")) =
        r.str("data/attributes/status")
    {
        return Err(r.malformed(format!(
            "coupon code {code:?} is {status}: it can no longer be proposed"
        )));
    }
    let coupon_id = r.required_id("data/relationships/coupon/data/id")?;
    let index = r
        .get("included")
        .and_then(Value::as_array)
        .and_then(|included| {
            included.iter().position(|resource| {
                resource.get("type").and_then(Value::as_str) == Some("coupon")
                    && resource.get("id").and_then(Value::as_str) == Some(coupon_id.as_str())
            })
        })
        .ok_or_else(|| {
            r.malformed(format!(
                "included has no coupon {coupon_id:?}: fetch the code with ?include=coupon"
            ))
        })?;
    let mut n = coupon(r, &format!("included/{index}"))?;
    n.content.code = Some(code.to_owned());
    n.content.confidence = Confidence::Vendor;
    n.ends_at = r.timestamp("data/attributes/expires_at")?;
    if let Some(end) = n.ends_at {
        n.expiration.expires_on = Some(last_day(end));
        n.expiration.confidence = Confidence::Vendor;
    }
    n.used = vec!["data", "included"];
    Ok(n)
}

fn template(r: &Reader<'_>) -> Result<Normalised, NormaliseError> {
    let id = r.required_id("data/id")?;
    let name = r.required_str("data/attributes/name")?;
    let offer_type = if name.to_lowercase().contains("survey") {
        OfferType::WinBackSurvey
    } else {
        OfferType::EducationContent
    };
    let mut n = Normalised::new(name, offer_type, "");
    n.content.template_id = Some(id);
    n.content.confidence = Confidence::Vendor;
    n.used = vec!["data"];
    Ok(n)
}
