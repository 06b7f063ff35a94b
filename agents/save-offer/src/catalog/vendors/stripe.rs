//! Stripe: a coupon (`"object": "coupon"`, percent or amount off, `once` / `repeating` /
//! `forever`) and a promotion code (`"object": "promotion_code"`), the customer-facing
//! code that wraps a coupon.
//!
//! Documentation: <https://docs.stripe.com/api/coupons/object>,
//! <https://docs.stripe.com/api/promotion_codes/object>.
//!
//! Mapping decisions:
//! - Stripe amounts (`amount_off`, `restrictions.minimum_amount`) are already integers in
//!   the currency's smallest unit, so they are taken as minor units as they are, never
//!   through `Reader::money` (which expects major units). Stripe states their currency
//!   (`currency`, `minimum_amount_currency`); a document that lacks it falls back on the
//!   store currency the vendor offer names, and an amount-off coupon with neither is
//!   rejected ("states an amount but no currency").
//! - `duration_in_months` of a `repeating` coupon is the canonical `duration_cycles`. A
//!   `forever` coupon has no canonical length (`duration_cycles` null means one order), so
//!   its `duration` is not claimed and stays in the raw fields for the reader to see.
//!   `repeating` and `forever` discounts change what an auto-renewing plan charges at
//!   renewal, which the compliance gate must know (`changes_auto_renewal`).
//! - `redeem_by` / `expires_at` are the last moment the code can be redeemed: `ends_at`,
//!   and its UTC day is `expires_on`. A promotion code's own limits narrow its coupon's.
//! - API versions from 2025-09-30 nest the coupon under `promotion.coupon`, as an id
//!   unless the request expanded it; an unexpanded coupon says nothing about the value,
//!   so the document is rejected with the `expand[]` to ask for.
//! - `used` lists the top-level fields the canonical record now carries in full; a field
//!   read only in part (the nested coupon with its metadata, `restrictions` with a
//!   first-time-customer rule) is left out, so it is kept raw as well.

use loyalty_contracts::{Confidence, OfferType, Timestamp};
use serde_json::Value;

use super::{NormaliseError, Normalised, Reader, narrowing_currency};

pub fn normalise(r: &Reader) -> Result<Normalised, NormaliseError> {
    match r.required_str("object")? {
        "coupon" => coupon(r, "", None),
        "promotion_code" => promotion_code(r),
        other => Err(r.malformed(format!(
            "unsupported offer shape: a Stripe {other:?} object is neither a coupon nor a promotion code"
        ))),
    }
}

/// The coupon at `at` (`""` for the document itself, `"coupon/"` when nested); `used`
/// names its fields only when it is the document.
fn coupon(r: &Reader, at: &str, code: Option<&str>) -> Result<Normalised, NormaliseError> {
    let path = |field: &str| format!("{at}{field}");
    let top = at.is_empty();
    let mut used = vec!["object"];

    let title = match (r.str(&path("name")), code) {
        (Some(name), _) => {
            used.push("name");
            name.to_owned()
        }
        (None, Some(code)) => code.to_owned(),
        (None, None) => r.required_id(&path("id"))?,
    };

    let currency = r.currency(&path("currency"))?;
    let mut n = match (
        r.percent_bp(&path("percent_off"))?,
        r.int(&path("amount_off"))?,
    ) {
        (Some(bp), None) => {
            used.push("percent_off");
            let mut n = Normalised::new(
                title,
                OfferType::PercentOff,
                currency.as_deref().unwrap_or(""),
            );
            n.value.percent_off_bp = Some(bp);
            n
        }
        (None, Some(amount)) => {
            let currency = match currency {
                Some(stated) => stated,
                None => r.amount_currency(&path("currency"))?,
            };
            if amount < 0 {
                return Err(r.malformed(format!("{} is negative: {amount}", path("amount_off"))));
            }
            used.extend(["amount_off", "currency"]);
            let mut n = Normalised::new(title, OfferType::AmountOff, &currency);
            n.value.amount_off_minor = Some(amount);
            n
        }
        (Some(_), Some(_)) => {
            return Err(r.malformed(format!(
                "both {} and {} are set",
                path("percent_off"),
                path("amount_off")
            )));
        }
        (None, None) => {
            return Err(r.malformed(format!(
                "neither {} nor {} is set",
                path("percent_off"),
                path("amount_off")
            )));
        }
    };
    n.value.confidence = Confidence::Vendor;

    match r.required_str(&path("duration"))? {
        "once" => used.push("duration"),
        "repeating" => {
            let months = r
                .int(&path("duration_in_months"))?
                .filter(|m| *m > 0)
                .and_then(|m| i32::try_from(m).ok())
                .ok_or_else(|| {
                    r.malformed(format!(
                        "a repeating coupon needs a positive {}",
                        path("duration_in_months")
                    ))
                })?;
            n.value.duration_cycles = Some(months);
            n.compliance.changes_auto_renewal = true;
            used.extend(["duration", "duration_in_months"]);
        }
        "forever" => n.compliance.changes_auto_renewal = true,
        other => {
            return Err(r.malformed(format!(
                "{} is not once, repeating or forever: {other:?}",
                path("duration")
            )));
        }
    }

    if let Some(cap) = redemption_cap(r, &path("max_redemptions"))? {
        n.expiration.redemption_cap = Some(cap);
        n.expiration.confidence = Confidence::Vendor;
        used.push("max_redemptions");
    }
    if let Some(redeem_by) = r.timestamp(&path("redeem_by"))? {
        end_at(&mut n, redeem_by);
        used.push("redeem_by");
    }
    if top {
        n.used = used;
    }
    Ok(n)
}

fn promotion_code(r: &Reader) -> Result<Normalised, NormaliseError> {
    let code = r.required_str("code")?;
    let at = if r.get("coupon").is_some() {
        "coupon"
    } else {
        "promotion/coupon"
    };
    match r.get(at) {
        Some(Value::Object(_)) => {}
        Some(Value::String(id)) => {
            return Err(r.malformed(format!(
                "{at} names coupon {id:?} without its terms; fetch the promotion code with expand[]={}",
                at.replace('/', ".")
            )));
        }
        _ => {
            return Err(
                r.malformed("the promotion code has no coupon (coupon or promotion/coupon)")
            );
        }
    }
    let mut n = coupon(r, &format!("{at}/"), Some(code))?;
    n.used = vec!["object", "code"];
    n.content.code = Some(code.to_owned());
    n.content.confidence = Confidence::Vendor;

    if let Some(cap) = redemption_cap(r, "max_redemptions")? {
        n.expiration.redemption_cap = Some(n.expiration.redemption_cap.map_or(cap, |c| c.min(cap)));
        n.expiration.confidence = Confidence::Vendor;
        n.used.push("max_redemptions");
    }
    if let Some(expires_at) = r.timestamp("expires_at")? {
        if n.ends_at.is_none_or(|end| expires_at < end) {
            end_at(&mut n, expires_at);
        }
        n.used.push("expires_at");
    }

    // The minimum order counts only in the offer's currency (a percent coupon takes it on).
    let minimum = r.int("restrictions/minimum_amount")?;
    let minimum_currency = match minimum {
        Some(_) => narrowing_currency(r, "restrictions/minimum_amount_currency")?,
        None => None,
    };
    let minimum_read = match (minimum, minimum_currency) {
        (None, _) => true,
        (Some(minimum), _) if minimum < 0 => {
            return Err(r.malformed(format!(
                "restrictions/minimum_amount is negative: {minimum}"
            )));
        }
        (Some(minimum), Some(currency))
            if n.value.currency.is_empty() || n.value.currency == currency =>
        {
            n.value.currency = currency;
            n.value.min_order_minor = Some(minimum);
            true
        }
        (Some(_), _) => false,
    };
    let said = ["minimum_amount", "minimum_amount_currency"];
    if minimum_read && says_only(r, "restrictions", &said) {
        n.used.push("restrictions");
    }
    Ok(n)
}

fn redemption_cap(r: &Reader, path: &str) -> Result<Option<i64>, NormaliseError> {
    match r.int(path)? {
        Some(cap) if cap < 0 => Err(r.malformed(format!("{path} is negative: {cap}"))),
        cap => Ok(cap),
    }
}

/// The offer stops at `end`: the last valid day is its UTC day.
fn end_at(n: &mut Normalised, end: Timestamp) {
    n.ends_at = Some(end);
    n.expiration.expires_on = Some(end.day());
    n.expiration.confidence = Confidence::Vendor;
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
