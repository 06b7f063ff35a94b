//! Chargebee (API v2): a coupon (`"object": "coupon"`), `percentage` or `fixed_amount`,
//! for `one_time`, `limited_period` or `forever`.
//!
//! Documentation: <https://apidocs.chargebee.com/docs/api/coupons/coupon-object>.
//!
//! Mapping decisions:
//! - `discount_amount` is documented "in cents": already minor units of `currency_code`
//!   (Chargebee's smallest unit, so yen for JPY), so it is taken as it is, never through
//!   `Reader::money` (which expects major units). A coupon lacking `currency_code` falls
//!   back on the store currency the vendor offer names; with neither, a `fixed_amount`
//!   coupon is rejected ("states an amount but no currency").
//! - `limited_period` lasts `period` `period_unit`s from the first invoice it applies to;
//!   months are billing cycles (as Stripe's `duration_in_months`), years twelve of them.
//!   Days and weeks have no cycle count, so they (and `forever`) stay raw; the deprecated
//!   `duration_month` is read when `period` is absent. A `limited_period` or `forever`
//!   coupon changes what the plan charges at renewal (`changes_auto_renewal`).
//! - The coupon `id` is the code a customer or the API applies (`Derived`: a site may
//!   also issue coupon codes from a coupon set, which are separate objects).
//! - `offer_quantity` coupons give free units of an item the coupon does not name here;
//!   they are rejected.
//! - `valid_till` (Unix seconds) is `ends_at`, its UTC day `expires_on`; `valid_from` is
//!   `starts_at`; `max_redemptions` is the redemption cap.
//! - `used` lists the top-level fields the canonical record now carries in full.

use loyalty_contracts::{Confidence, OfferType};

use super::{NormaliseError, Normalised, Reader};

pub fn normalise(r: &Reader) -> Result<Normalised, NormaliseError> {
    if let Some(object) = r.str("object").filter(|o| *o != "coupon") {
        return Err(r.malformed(format!(
            "unsupported offer shape: a Chargebee {object:?} is not a coupon"
        )));
    }
    let id = r.required_id("id")?;
    let title = r.required_str("name")?;
    let mut used = vec!["object", "name"];

    let mut n = match r.required_str("discount_type")? {
        "percentage" => {
            let bp = r
                .percent_bp("discount_percentage")?
                .ok_or_else(|| r.malformed("a percentage coupon needs discount_percentage"))?;
            used.extend(["discount_type", "discount_percentage"]);
            let mut n = Normalised::new(title, OfferType::PercentOff, "");
            n.value.percent_off_bp = Some(bp);
            n
        }
        "fixed_amount" => {
            let amount = r
                .int("discount_amount")?
                .ok_or_else(|| r.malformed("a fixed_amount coupon needs discount_amount"))?;
            let currency = r.amount_currency("currency_code")?;
            if amount < 0 {
                return Err(r.malformed(format!("discount_amount is negative: {amount}")));
            }
            used.extend(["discount_type", "discount_amount", "currency_code"]);
            let mut n = Normalised::new(title, OfferType::AmountOff, &currency);
            n.value.amount_off_minor = Some(amount);
            n
        }
        "offer_quantity" => {
            return Err(r.malformed(
                "unsupported offer shape: an offer_quantity coupon gives free units of an item it does not name",
            ));
        }
        other => {
            return Err(r.malformed(format!(
                "discount_type is not percentage, fixed_amount or offer_quantity: {other:?}"
            )));
        }
    };
    n.value.confidence = Confidence::Vendor;
    n.content.code = Some(id);
    n.content.confidence = Confidence::Derived;

    match r.required_str("duration_type")? {
        "one_time" => used.push("duration_type"),
        "forever" => n.compliance.changes_auto_renewal = true,
        "limited_period" => {
            n.compliance.changes_auto_renewal = true;
            let months = match (r.int("period")?, r.str("period_unit")) {
                (Some(period), Some("month")) => Some((period, "period")),
                (Some(period), Some("year")) => period.checked_mul(12).map(|m| (m, "period")),
                (Some(_), _) => None,
                (None, _) => r.int("duration_month")?.map(|m| (m, "duration_month")),
            };
            if let Some((months, field)) = months {
                let cycles = i32::try_from(months)
                    .ok()
                    .filter(|c| *c > 0)
                    .ok_or_else(|| {
                        r.malformed(format!(
                            "{field} is not a positive number of months: {months}"
                        ))
                    })?;
                n.value.duration_cycles = Some(cycles);
                used.push("duration_type");
                if field == "period" {
                    used.extend(["period", "period_unit"]);
                } else {
                    used.push("duration_month");
                }
            }
        }
        other => {
            return Err(r.malformed(format!(
                "duration_type is not one_time, limited_period or forever: {other:?}"
            )));
        }
    }

    if let Some(cap) = r.int("max_redemptions")? {
        if cap < 0 {
            return Err(r.malformed(format!("max_redemptions is negative: {cap}")));
        }
        n.expiration.redemption_cap = Some(cap);
        n.expiration.confidence = Confidence::Vendor;
        used.push("max_redemptions");
    }
    if let Some(start) = r.timestamp("valid_from")? {
        n.starts_at = Some(start);
        used.push("valid_from");
    }
    if let Some(end) = r.timestamp("valid_till")? {
        n.ends_at = Some(end);
        n.expiration.expires_on = Some(end.day());
        n.expiration.confidence = Confidence::Vendor;
        used.push("valid_till");
    }
    n.used = used;
    Ok(n)
}
