//! Smile.io: a points product (a way to spend points), one entry of
//! `GET https://api.smile.io/v1/points_products` or the `points_product` of
//! `GET /v1/points_products/{id}`
//! (<https://dev.smile.io/api/resources/points-products/points-product-object>), with its
//! nested reward (<https://dev.smile.io/js/resources/rewards/object>).
//!
//! - `exchange_type: "fixed"`: `points_price` points buy the reward. Smile's reward object
//!   has a name, description and image but no value or kind, so the offer is read from the
//!   reward's name (then description): "$5 off coupon" → `AmountOff`, "10% off" →
//!   `PercentOff`, another "Free ..." → `BonusProduct` (the product is not named in the
//!   API). All `Derived`. "Free shipping" fits no offer type and is dead-lettered.
//! - `exchange_type: "variable"`: every `variable_points_step` points buy
//!   `variable_points_step_reward_value` off (Smile's example: 100 points, 1 = $1 off), up
//!   to `variable_points_max` points. That is an `AmountOff` of one step's value for one
//!   step's points, with the whole slider's value as `max_discount_minor`.
//!
//! Smile states no currency: amounts are in the store's. The step value's currency is the
//! one the symbol in `exchange_description` names ("100 Points = £1 off") when it names one
//! unambiguously, else the store currency the vendor offer names; a reward name's "$5 off"
//! is in the store currency too. An amount with neither is dead-lettered ("states an amount
//! but no currency"), since it cannot be put in minor units.

use loyalty_contracts::{Confidence, OfferType};

use super::{NormaliseError, Normalised, Reader, TextDiscount, discount_in_text};

pub fn normalise(r: &Reader) -> Result<Normalised, NormaliseError> {
    let name = r.required_str("reward/name")?;
    let mut n = match r.required_str("exchange_type")? {
        "fixed" => fixed(r, name)?,
        "variable" => variable(r, name)?,
        other => {
            return Err(r.malformed(format!(
                "exchange_type {other:?} is neither \"fixed\" nor \"variable\""
            )));
        }
    };
    if let Some(url) = r.str("reward/image_url") {
        n.content.asset_url = Some(url.to_owned());
        n.content.confidence = Confidence::Vendor;
    }
    n.used.push("reward");
    Ok(n)
}

fn fixed(r: &Reader<'_>, name: &str) -> Result<Normalised, NormaliseError> {
    let points = r
        .int("points_price")?
        .ok_or_else(|| r.malformed("points_price is missing: a fixed points product states it"))?;
    let lower = name.to_lowercase();
    if lower.contains("free shipping") {
        return Err(r.malformed(format!(
            "unsupported offer shape: {name:?} is free shipping, which no offer type models"
        )));
    }
    let stated =
        discount_in_text(name).or_else(|| r.str("reward/description").and_then(discount_in_text));
    let mut n = match stated {
        // Smile states no currency: an amount in "$" is in the store's.
        Some(discount) => discount.offer(name, r, "currency")?,
        None if lower.contains("free") => {
            let mut n = Normalised::new(name, OfferType::BonusProduct, "");
            n.value.confidence = Confidence::Derived;
            n
        }
        None => {
            return Err(r.malformed(format!(
                "unsupported offer shape: reward {name:?} states no percent, amount or free product"
            )));
        }
    };
    n.value.points = Some(points);
    n.used = vec!["exchange_type", "points_price"];
    Ok(n)
}

fn variable(r: &Reader<'_>, name: &str) -> Result<Normalised, NormaliseError> {
    let step = r
        .int("variable_points_step")?
        .filter(|step| *step > 0)
        .ok_or_else(|| r.malformed("variable_points_step is missing or not positive"))?;
    if r.get("variable_points_step_reward_value").is_none() {
        return Err(r.malformed("variable_points_step_reward_value is missing"));
    }
    let named = match r.str("exchange_description").and_then(discount_in_text) {
        Some(TextDiscount::Amount {
            currency: Some(code),
            ..
        }) => Some(code),
        _ => None,
    };
    let currency = match named {
        Some(code) => code,
        None => r.amount_currency("currency")?,
    };
    let per_step = r
        .money("variable_points_step_reward_value", &currency)?
        .ok_or_else(|| r.malformed("variable_points_step_reward_value is missing"))?;
    let mut n = Normalised::new(name, OfferType::AmountOff, &currency);
    n.value.amount_off_minor = Some(per_step);
    n.value.points = Some(step);
    n.value.max_discount_minor = r
        .int("variable_points_max")?
        .and_then(|max| (max / step).checked_mul(per_step));
    n.value.confidence = Confidence::Vendor;
    n.used = vec![
        "exchange_type",
        "exchange_description",
        "variable_points_step",
        "variable_points_step_reward_value",
        "variable_points_max",
    ];
    Ok(n)
}
