//! Tremendous: a product (one way to pay a reward out), one entry of
//! `GET https://www.tremendous.com/api/v2/products` or the `product` of
//! `GET /api/v2/products/{id}` (<https://developers.tremendous.com/reference/products>;
//! field list as in Tremendous' own SDKs, e.g. `tremendous-python`'s `Product` model).
//!
//! - `category: "merchant_card"` (a brand's gift card) or `"visa_card"` (a prepaid debit
//!   card) → `GiftBundle`: the member receives its denomination, which is also the
//!   operator's cost of one redemption and its `compliance.stored_value`; the product id is
//!   the product given.
//! - `category: "charity"` → `CharityMatch`, costing the donation.
//! - Cash payouts (`ach`, `paypal`, `venmo`, `cash_app`, `international_bank`, `wallet`,
//!   `instant_debit_transfer`) fit no offer type and are dead-lettered.
//!
//! The docs' example product spells the category in the plural (`merchant_cards`), the SDKs
//! in the singular; both are read. Denominations are the `skus` bands: one band fixed at one
//! value (`min == max`) is the face value as stated; otherwise the sender chooses, and the
//! face value is taken as the largest allowed, the most one redemption can cost, marked
//! `Derived` until the operator's policy names the denomination
//! (`OfferPolicy.fixed_cost_minor`). A product payable in several `currency_codes` is read in
//! the first (also `Derived`); one naming none falls back on the store currency the vendor
//! offer names, and is rejected ("states an amount but no currency") without it.
//! `countries` are where it can be redeemed; the card image is preferred over the logo.

use loyalty_contracts::{Confidence, OfferType, StoredValue};
use serde_json::Value;

use super::{NormaliseError, Normalised, Reader};

pub fn normalise(r: &Reader) -> Result<Normalised, NormaliseError> {
    let id = r.required_id("id")?;
    let name = r.required_str("name")?;
    let offer_type = match r.required_str("category")? {
        "merchant_card" | "merchant_cards" | "visa_card" | "visa_cards" => OfferType::GiftBundle,
        "charity" | "charities" => OfferType::CharityMatch,
        cash @ ("ach"
        | "paypal"
        | "venmo"
        | "cash_app"
        | "international_bank"
        | "wallet"
        | "instant_debit_transfer") => {
            return Err(r.malformed(format!(
                "unsupported offer shape: {name:?} is a {cash} cash payout, which no offer type \
                 models"
            )));
        }
        other => {
            return Err(r.malformed(format!(
                "unsupported offer shape: category {other:?} of {name:?}"
            )));
        }
    };
    let currency = r.amount_currency("currency_codes/0")?;
    let several_currencies = r
        .get("currency_codes")
        .and_then(Value::as_array)
        .is_some_and(|codes| codes.len() > 1);
    let bands = r.get("skus").and_then(Value::as_array).map_or(0, Vec::len);
    let skus = (0..bands)
        .map(|i| -> Result<(i64, i64), NormaliseError> {
            let bound = |end: &str| -> Result<i64, NormaliseError> {
                let path = format!("skus/{i}/{end}");
                r.money(&path, &currency)?
                    .ok_or_else(|| r.malformed(format!("{path} is missing")))
            };
            Ok((bound("min")?, bound("max")?))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let (face_value, stated) = match skus.as_slice() {
        [] => {
            return Err(r.malformed("skus is missing or empty: the product states no denomination"));
        }
        [(min, max)] if min == max => (*max, true),
        all => (
            all.iter().map(|(_, max)| *max).max().unwrap_or_default(),
            false,
        ),
    };
    let mut n = Normalised::new(name, offer_type, &currency);
    n.value.product_sku = Some(id);
    n.value.fixed_cost_minor = face_value;
    n.value.confidence = if stated && !several_currencies {
        Confidence::Vendor
    } else {
        Confidence::Derived
    };
    if offer_type == OfferType::GiftBundle {
        n.compliance.stored_value = Some(StoredValue {
            amount_minor: face_value,
            currency,
            expires_on: None,
        });
    }
    n.eligibility.countries = r
        .get("countries")
        .and_then(Value::as_array)
        .map(|countries| {
            countries
                .iter()
                .filter_map(|country| country.get("abbr").and_then(Value::as_str))
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    if !n.eligibility.countries.is_empty() {
        n.eligibility.confidence = Confidence::Vendor;
    }
    if let Some(url) = image(r) {
        n.content.asset_url = Some(url.to_owned());
        n.content.confidence = Confidence::Vendor;
    }
    n.used = vec![
        "id",
        "name",
        "category",
        "currency_codes",
        "skus",
        "countries",
        "images",
    ];
    Ok(n)
}

/// The card image, else the logo, else the first image.
fn image<'a>(r: &Reader<'a>) -> Option<&'a str> {
    let images = r.get("images")?.as_array()?;
    let of_type = |kind: &str| {
        images
            .iter()
            .find(|image| image.get("type").and_then(Value::as_str) == Some(kind))
    };
    of_type("card")
        .or_else(|| of_type("logo"))
        .or_else(|| images.first())?
        .get("src")?
        .as_str()
}
