//! LoyaltyLion: a reward (something members spend points on), the Admin API's Reward
//! resource (<https://developers.loyaltylion.com/api/resources/rewards>).
//!
//! - `discount_type: "flat"` → `AmountOff` of `discount_amount` currency units;
//! - `discount_type: "percentage"` → `PercentOff` of `discount_amount` percent;
//! - `method: "gift_card"` → `GiftBundle`: the card's value (`discount_amount`) is both its
//!   stored value and the operator's cost of one redemption;
//! - free shipping (`target_type: "shipping"`, or a `max_free_shipping` cap) and
//!   `discount_type: "custom"` ("implementation-defined") fit no offer type and are
//!   dead-lettered.
//!
//! `point_cost` is the points price, `minimum_spend` the smallest order. LoyaltyLion states
//! amounts as unit-less major currency units ("if the discount amount is £5 ... this
//! returns 5") and names no currency on the reward: they are in the store currency the
//! vendor offer names, read in its exponent (5 is 500 cents, or ¥5). A flat reward when no
//! store currency is known is dead-lettered ("states an amount but no currency"); a
//! percentage needs none, and its `minimum_spend` then stays raw.

use loyalty_contracts::{Confidence, OfferType, StoredValue};

use super::{NormaliseError, Normalised, Reader, narrowing_currency};

pub fn normalise(r: &Reader) -> Result<Normalised, NormaliseError> {
    let title = r.required_str("title")?;
    let points = r.int("point_cost")?;
    if r.str("target_type") == Some("shipping") || r.get("max_free_shipping").is_some() {
        return Err(r.malformed(format!(
            "unsupported offer shape: {title:?} is free shipping, which no offer type models"
        )));
    }
    let gift_card = r.str("method") == Some("gift_card");
    let mut n = match r.required_str("discount_type")? {
        "flat" if gift_card => {
            let (value, currency) = required_amount(r, "discount_amount")?;
            let mut n = Normalised::new(title, OfferType::GiftBundle, &currency);
            n.value.fixed_cost_minor = value;
            n.compliance.stored_value = Some(StoredValue {
                amount_minor: value,
                currency,
                expires_on: None,
            });
            n.value.confidence = Confidence::Vendor;
            n
        }
        "flat" => {
            let (value, currency) = required_amount(r, "discount_amount")?;
            let mut n = Normalised::new(title, OfferType::AmountOff, &currency);
            n.value.amount_off_minor = Some(value);
            n.value.confidence = Confidence::Vendor;
            n
        }
        "percentage" if !gift_card => {
            let mut n = Normalised::new(title, OfferType::PercentOff, "");
            n.value.percent_off_bp = Some(
                r.percent_bp("discount_amount")?
                    .ok_or_else(|| r.malformed("discount_amount is missing"))?,
            );
            n.value.confidence = Confidence::Vendor;
            n
        }
        other => {
            return Err(r.malformed(format!(
                "unsupported offer shape: discount_type {other:?} of {title:?} states no value \
                 an offer type can carry"
            )));
        }
    };
    n.value.points = points;
    n.used = vec![
        "title",
        "point_cost",
        "target_type",
        "max_free_shipping",
        "method",
        "discount_type",
        "discount_amount",
    ];
    // The smallest order, in the offer's currency; without one known it stays raw.
    if r.get("minimum_spend").is_none() {
        n.used.push("minimum_spend");
    } else if let Some(currency) = narrowing_currency(r, "currency")?
        .filter(|currency| n.value.currency.is_empty() || n.value.currency == *currency)
    {
        n.value.min_order_minor = r.money("minimum_spend", &currency)?;
        n.value.currency = currency;
        n.used.push("minimum_spend");
    }
    Ok(n)
}

/// An amount in major units of the store currency at `path`, as minor units and that
/// currency; required.
fn required_amount(r: &Reader<'_>, path: &str) -> Result<(i64, String), NormaliseError> {
    if r.get(path).is_none() {
        return Err(r.malformed(format!("{path} is missing")));
    }
    let currency = r.amount_currency("currency")?;
    let value = r
        .money(path, &currency)?
        .ok_or_else(|| r.malformed(format!("{path} is missing")))?;
    Ok((value, currency))
}
