//! Recharge (API 2021-11): a discount (the document has `value_type`) and a cancellation
//! retention strategy (it has `reason` and `prevention_text`), the incentive offered to a
//! subscriber who gives that reason for cancelling.
//!
//! Documentation: <https://developer.rechargepayments.com/2021-11/discounts/discount_object>,
//! <https://developer.rechargepayments.com/2021-11/retention_strategies/retention_strategy_object>.
//!
//! Mapping decisions:
//! - A discount states no currency: its amounts (`value` of a `fixed_amount` discount,
//!   `prerequisite_subtotal_min`) are in the store currency the vendor offer names. A
//!   `fixed_amount` discount when no store currency is known is rejected ("states an amount
//!   but no currency") rather than priced in a guessed one; a `percentage` discount's
//!   minimum subtotal then stays raw. `shipping` discounts fit no offer kind.
//! - A discount has no name: its `code` is both the title and the redemption code.
//! - `usage_limits.max_subsequent_redemptions` counts the recurring charges after the
//!   first one, so the discount lasts that many cycles plus one (`Derived`).
//!   `usage_limits.one_application_per_customer` → `per_subscriber_cap` 1.
//! - Retention strategies: `skip_charge` skips the next charge (`PauseOneCycle`);
//!   `delay_subscription` delays it by a number of days the store sets elsewhere, counted
//!   as one cycle (`Derived`); a strategy with no incentive only asks why and shows its
//!   prevention text, a `WinBackSurvey` (`Derived`). A `discount` strategy names a
//!   discount code but not its value (normalise that discount instead), and
//!   `swap_product` lets the subscriber pick another product, which fits no offer kind.
//! - An `ends_at` with a time is `ends_at` (its UTC day `expires_on`); a bare date is the
//!   last valid day, so the offer ends at the start of the next.
//! - `used` lists the top-level fields the canonical record now carries in full; a field
//!   read only in part (`usage_limits` with a first-time-customer rule) stays raw as well.

use loyalty_contracts::{Confidence, Date, OfferType, Timestamp};
use serde_json::Value;

use super::{NormaliseError, Normalised, Reader, narrowing_currency};

pub fn normalise(r: &Reader) -> Result<Normalised, NormaliseError> {
    if r.get("value_type").is_some() {
        discount(r)
    } else if r.get("reason").is_some() || r.get("prevention_text").is_some() {
        retention_strategy(r)
    } else {
        Err(r.malformed(
            "unsupported offer shape: neither a discount (value_type) nor a retention strategy (reason)",
        ))
    }
}

fn discount(r: &Reader) -> Result<Normalised, NormaliseError> {
    let code = r.required_str("code")?;
    let mut n = match r.required_str("value_type")? {
        "percentage" => {
            let mut n = Normalised::new(code, OfferType::PercentOff, "");
            n.value.percent_off_bp = Some(
                r.percent_bp("value")?
                    .ok_or_else(|| r.malformed("value is missing"))?,
            );
            n
        }
        "fixed_amount" => {
            let currency = r.amount_currency("currency")?;
            let amount = r
                .money("value", &currency)?
                .ok_or_else(|| r.malformed("value is missing"))?;
            let mut n = Normalised::new(code, OfferType::AmountOff, &currency);
            n.value.amount_off_minor = Some(amount);
            n
        }
        "shipping" => {
            return Err(r.malformed(
                "unsupported offer shape: a shipping discount discounts shipping, which fits no offer kind",
            ));
        }
        other => {
            return Err(r.malformed(format!(
                "value_type is not percentage, fixed_amount or shipping: {other:?}"
            )));
        }
    };
    let mut used = vec!["code", "value_type", "value"];
    n.value.confidence = Confidence::Vendor;
    n.content.code = Some(code.to_owned());
    n.content.confidence = Confidence::Vendor;

    if let Some(after_first) = r.int("usage_limits/max_subsequent_redemptions")? {
        let cycles = after_first
            .checked_add(1)
            .filter(|c| *c > 0)
            .and_then(|c| i32::try_from(c).ok())
            .ok_or_else(|| {
                r.malformed(format!(
                    "usage_limits/max_subsequent_redemptions is out of range: {after_first}"
                ))
            })?;
        n.value.duration_cycles = Some(cycles);
        n.value.confidence = Confidence::Derived;
    }
    if r.bool("usage_limits/one_application_per_customer") == Some(true) {
        n.stacking.per_subscriber_cap = Some(1);
        n.stacking.confidence = Confidence::Vendor;
    }
    let said = ["max_subsequent_redemptions", "one_application_per_customer"];
    if says_only(r, "usage_limits", &said) {
        used.push("usage_limits");
    }

    // The minimum subtotal is in the store's currency; without one known it stays raw.
    let minimum_currency = match r.get("prerequisite_subtotal_min") {
        Some(_) => narrowing_currency(r, "currency")?,
        None => None,
    };
    if let Some(currency) = minimum_currency
        .filter(|currency| n.value.currency.is_empty() || n.value.currency == *currency)
    {
        n.value.min_order_minor = r.money("prerequisite_subtotal_min", &currency)?;
        n.value.currency = currency;
        used.push("prerequisite_subtotal_min");
    }

    if let Some(start) = r.timestamp("starts_at")? {
        n.starts_at = Some(start);
        used.push("starts_at");
    }
    if let Some((end, last_day)) = end(r, "ends_at")? {
        n.ends_at = Some(end);
        n.expiration.expires_on = Some(last_day);
        n.expiration.confidence = Confidence::Vendor;
        used.push("ends_at");
    }
    n.used = used;
    Ok(n)
}

fn retention_strategy(r: &Reader) -> Result<Normalised, NormaliseError> {
    let reason = r.required_str("reason")?;
    let (offer_type, pause_cycles, confidence) = match r.str("incentive_type").unwrap_or("") {
        "skip_charge" => (OfferType::PauseOneCycle, Some(1), Confidence::Vendor),
        "delay_subscription" => (OfferType::PauseOneCycle, Some(1), Confidence::Derived),
        "" => (OfferType::WinBackSurvey, None, Confidence::Derived),
        "discount" => {
            let code = r.str("discount_code").unwrap_or_default();
            return Err(r.malformed(format!(
                "a discount retention strategy names discount code {code:?} but not its value; normalise that Recharge discount"
            )));
        }
        "swap_product" => {
            return Err(r.malformed(
                "unsupported offer shape: a swap_product incentive lets the subscriber pick another product, which fits no offer kind",
            ));
        }
        other => {
            return Err(r.malformed(format!(
                "incentive_type is not a known incentive: {other:?}"
            )));
        }
    };
    let mut n = Normalised::new(reason, offer_type, "");
    n.value.pause_cycles = pause_cycles;
    n.value.confidence = confidence;
    n.used = vec!["reason", "incentive_type"];
    Ok(n)
}

/// When the offer stops and its last valid day: an instant, or a bare date (valid through
/// that day).
fn end(r: &Reader, path: &str) -> Result<Option<(Timestamp, Date)>, NormaliseError> {
    let Some(text) = r.str(path) else {
        return Ok(None);
    };
    if text.trim().len() == 10 {
        let day = r
            .date(path)?
            .ok_or_else(|| r.malformed(format!("{path} is not a date: {text:?}")))?;
        return Ok(Some((Date(day.0.saturating_add(1)).start(), day)));
    }
    let end = r
        .timestamp(path)?
        .ok_or_else(|| r.malformed(format!("{path} is not a time: {text:?}")))?;
    Ok(Some((end, end.day())))
}

/// Whether `field` is an object saying nothing beyond `keys` (a member that is null or
/// false says nothing).
fn says_only(r: &Reader, field: &str, keys: &[&str]) -> bool {
    r.get(field)
        .and_then(Value::as_object)
        .is_some_and(|members| {
            members.iter().all(|(key, value)| {
                keys.contains(&key.as_str()) || matches!(value, Value::Null | Value::Bool(false))
            })
        })
}
