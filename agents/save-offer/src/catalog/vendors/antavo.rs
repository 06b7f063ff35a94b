//! Antavo: a reward, as the Entities API returns it
//! (`GET /entities/rewards/reward/{id}`, <https://apidocs.antavo.com/docs/intro/rewards.html>
//! and the reward schema of <https://developers.antavo.com/reference/about-entities-api>) or
//! as the Rewards/Display API lists it (`id`, `name`, `price`, `image_url`, ...).
//!
//! - `type: "coupon"`: the codes come from a coupon pool and the reward states its value
//!   only in words ("20% Off on Winter Collection"), so the offer is read from the name,
//!   then the description: `PercentOff` or `AmountOff`, `Derived`.
//! - a gift card: `GiftBundle`, its stored value the amount its name states, else its
//!   business `cost` (`Derived` either way);
//! - a physical item: `BonusProduct` costing the operator its business `cost` (`Vendor`);
//! - a bundle (several coupons at once): `GiftBundle` costing its `cost` (`Vendor`);
//! - a downloadable item (ebooks, wallpapers): `EducationContent`;
//! - bidding, badges, dynamic and custom rewards fit no offer type and are dead-lettered.
//!
//! Antavo documents the types by their names in the Management UI; only `coupon` is shown
//! as an API value, so the others are matched loosely (`gift_card`, "Gift card",
//! `physical_item`, ...).
//!
//! `price` is the point price; the entity API may send it per currency account
//! (`{"EUR": 500, "USD": 500}`), which is used when all accounts agree (else it stays raw).
//! `name` and `description` are plain or translated (`{"en": ..., "de": ...}`; English is
//! preferred).
//! `starts_at`/`ends_at` bound claiming; `stock` caps claims overall.
//!
//! A reward names no currency: `cost` ("150.5", major units) and an amount written with a
//! bare "$" are in the store currency the vendor offer names ("€25 gift card" names its
//! own). A reward stating such an amount when no store currency is known is dead-lettered
//! ("states an amount but no currency"), since the amount cannot be put in minor units.

use loyalty_contracts::{Confidence, OfferType, StoredValue};
use serde_json::Value;

use super::{
    NormaliseError, Normalised, Reader, TextDiscount, discount_in_text, last_day, text_amount,
};

pub fn normalise(r: &Reader) -> Result<Normalised, NormaliseError> {
    let title = text(r, "name").ok_or_else(|| r.malformed("name is missing or not text"))?;
    let kind = r
        .required_str("type")?
        .to_ascii_lowercase()
        .replace([' ', '-'], "_");
    let mut n = match kind.as_str() {
        "coupon" => coupon(r, title)?,
        "gift_card" | "giftcard" => gift_card(r, title)?,
        "physical" | "physical_item" => costed(r, title, OfferType::BonusProduct)?,
        "bundle" | "bundle_reward" => costed(r, title, OfferType::GiftBundle)?,
        "downloadable" | "downloadable_item" => {
            Normalised::new(title, OfferType::EducationContent, "")
        }
        _ => {
            return Err(r.malformed(format!(
                "unsupported offer shape: {title:?} is a {kind} reward, which no offer type models"
            )));
        }
    };
    // A translated name keeps its other languages raw.
    let mut used = if matches!(r.get("name"), Some(Value::String(_))) {
        vec!["name", "type"]
    } else {
        vec!["type"]
    };
    used.append(&mut n.used);
    n.value.points = points(r)?;
    if n.value.points.is_some() {
        used.push("price");
    }
    n.starts_at = r.timestamp("starts_at")?;
    n.ends_at = r.timestamp("ends_at")?;
    n.expiration.expires_on = n.ends_at.map(last_day);
    n.expiration.redemption_cap = r.int("stock")?;
    if n.expiration.expires_on.is_some() || n.expiration.redemption_cap.is_some() {
        n.expiration.confidence = Confidence::Vendor;
    }
    if let Some(url) = r.str("image_url") {
        n.content.asset_url = Some(url.to_owned());
        n.content.confidence = Confidence::Vendor;
    }
    used.extend(["starts_at", "ends_at", "stock", "image_url"]);
    n.used = used;
    Ok(n)
}

/// A coupon reward's value from its name, else its description (which stays raw: it is
/// copy, only a value inferred from it is mapped).
fn coupon(r: &Reader<'_>, title: &str) -> Result<Normalised, NormaliseError> {
    let stated = discount_in_text(title)
        .or_else(|| text(r, "description").and_then(discount_in_text))
        .ok_or_else(|| {
            r.malformed(format!(
                "unsupported offer shape: coupon reward {title:?} states no percent or amount in \
                 its name or description; its value lives in its coupon pool"
            ))
        })?;
    stated.offer(title, r, "currency")
}

fn gift_card(r: &Reader<'_>, title: &str) -> Result<Normalised, NormaliseError> {
    let (amount, currency, used) = match discount_in_text(title) {
        Some(TextDiscount::Amount { major, currency }) => {
            let (amount, currency) = text_amount(r, &major, currency, "currency")?;
            (amount, currency, vec![])
        }
        _ => {
            let (cost, currency) = cost(r)?.ok_or_else(|| {
                r.malformed(format!(
                    "gift card {title:?} states no value: no amount in its name and no cost"
                ))
            })?;
            (cost, currency, vec!["cost"])
        }
    };
    let mut n = Normalised::new(title, OfferType::GiftBundle, &currency);
    n.value.fixed_cost_minor = amount;
    n.value.confidence = Confidence::Derived;
    n.compliance.stored_value = Some(StoredValue {
        amount_minor: amount,
        currency,
        expires_on: None,
    });
    n.used = used;
    Ok(n)
}

/// A reward whose value to the member is the thing itself, costing the operator `cost`.
fn costed(
    r: &Reader<'_>,
    title: &str,
    offer_type: OfferType,
) -> Result<Normalised, NormaliseError> {
    let mut n = match cost(r)? {
        Some((cost, currency)) => {
            let mut n = Normalised::new(title, offer_type, &currency);
            n.value.fixed_cost_minor = cost;
            n.value.confidence = Confidence::Vendor;
            n
        }
        None => Normalised::new(title, offer_type, ""),
    };
    n.used = vec!["cost"];
    Ok(n)
}

/// The business cost of one reward (major units) in minor units of the store currency,
/// and that currency.
fn cost(r: &Reader<'_>) -> Result<Option<(i64, String)>, NormaliseError> {
    if r.get("cost").is_none() {
        return Ok(None);
    }
    let currency = r.amount_currency("currency")?;
    Ok(r.money("cost", &currency)?.map(|cost| (cost, currency)))
}

/// The point price: a number, or one per currency account when all accounts agree.
fn points(r: &Reader<'_>) -> Result<Option<i64>, NormaliseError> {
    let Some(Value::Object(accounts)) = r.get("price") else {
        return r.int("price");
    };
    let prices = accounts
        .values()
        .map(Value::as_i64)
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| r.malformed("price holds a non-integer point price"))?;
    Ok(match prices.split_first() {
        Some((first, rest)) if rest.iter().all(|p| p == first) => Some(*first),
        _ => None,
    })
}

/// A text Antavo sends plain or translated: the English text, else the first translation.
fn text<'a>(r: &Reader<'a>, path: &str) -> Option<&'a str> {
    match r.get(path)? {
        Value::String(text) => Some(text.as_str()),
        Value::Object(translations) => translations
            .get("en")
            .and_then(Value::as_str)
            .or_else(|| translations.values().find_map(Value::as_str)),
        _ => None,
    }
}
