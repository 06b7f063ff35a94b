//! Voucherify: a voucher (`"object": "voucher"`). `DISCOUNT_VOUCHER`s with a `PERCENT`,
//! `AMOUNT` or `UNIT` discount and `GIFT_VOUCHER`s are normalised; `FIXED` discounts and
//! `LOYALTY_CARD`s are rejected, each with its reason.
//!
//! Documentation: <https://docs.voucherify.io/api-reference/vouchers/voucher-object>
//! (schemas `DiscountPercent`, `DiscountAmount`, `DiscountUnit`, `DiscountFixed`, `Gift`
//! of the public OpenAPI spec, <https://github.com/voucherifyio/voucherify-openapi>).
//!
//! Mapping decisions:
//! - Voucherify writes money "multiplied by 100 to precisely represent 2 decimal places"
//!   and a voucher never states its currency (it is the project's): amounts are hundredths
//!   of the store currency the vendor offer names, converted to its exponent (1000 is
//!   $10.00 = 1000 cents, ¥10 = 10 yen for a zero-decimal store currency such as JPY,
//!   rounded half up; 10.000 KWD = 10000 fils). An `AMOUNT` discount or a gift card when
//!   no store currency is known is rejected ("states an amount but no currency") rather
//!   than priced in a guessed one; a percent discount's `amount_limit` then stays raw.
//! - `AMOUNT`: `AmountOff` of `amount_off`; with `APPLY_TO_ITEMS_BY_QUANTITY` it comes off
//!   each unit, so the cost per order depends on the basket (`Derived`).
//! - `PERCENT`: `PercentOff`; `amount_limit` is `max_discount_minor`.
//! - A `UNIT` discount gives `unit_off` free units of one product: `BonusProduct`, whose
//!   `product_sku` is the SKU's `source_id`, else the product's, else Voucherify's product
//!   id in `unit_type`. Several products (`units`) are a `GiftBundle` (`Derived`).
//! - A `FIXED` discount sets the order total or the item price to `fixed_amount`: what it
//!   takes off depends on the order, which no offer type models, so it is rejected also
//!   when the currency is known.
//! - A discount computed by a formula (`*_formula`) varies per order; its fallback value
//!   is taken, `Derived`.
//! - A `GIFT_VOUCHER` is a `GiftBundle`: its `gift.balance` (else `gift.amount`) is both the
//!   stored value (lapsing on the voucher's `expires_on`) and the operator's cost of one
//!   redemption.
//! - A `LOYALTY_CARD` holds a points balance; it is not an offer.
//! - The title is the voucher's campaign name, or its code; `code` is the redemption code,
//!   the QR asset (`assets.qr.url`) its asset.
//! - `start_date` / `expiration_date` are `starts_at` / `ends_at` (its UTC day
//!   `expires_on`); `redemption.quantity` is the redemption cap.
//! - `used` lists the top-level fields the canonical record now carries in full; a field
//!   read only in part (`discount` with a formula, a limit left raw or an item effect,
//!   `gift` with its effect, `redemption` with its counters) stays raw as well.

use loyalty_contracts::{Confidence, OfferType, StoredValue};
use serde_json::Value;

use super::{NormaliseError, Normalised, Reader, hundredths_to_minor, narrowing_currency};

pub fn normalise(r: &Reader) -> Result<Normalised, NormaliseError> {
    if let Some(object) = r.str("object").filter(|o| *o != "voucher") {
        return Err(r.malformed(format!(
            "unsupported offer shape: a Voucherify {object:?} is not a voucher"
        )));
    }
    let code = r.required_str("code")?;
    let mut used = vec!["object", "code", "type"];
    let title = match r.str("campaign") {
        Some(campaign) => {
            used.push("campaign");
            campaign
        }
        None => code,
    };

    let mut n = match r.required_str("type")? {
        "DISCOUNT_VOUCHER" => discount(r, title, &mut used)?,
        "GIFT_VOUCHER" => gift(r, title)?,
        "LOYALTY_CARD" => {
            return Err(r.malformed(
                "unsupported offer shape: a LOYALTY_CARD holds a points balance, not an offer",
            ));
        }
        other => {
            return Err(r.malformed(format!(
                "type is not DISCOUNT_VOUCHER, GIFT_VOUCHER or LOYALTY_CARD: {other:?}"
            )));
        }
    };

    n.content.code = Some(code.to_owned());
    n.content.asset_url = r
        .str("assets/qr/url")
        .filter(|url| url.starts_with("https://") || url.starts_with("http://"))
        .map(str::to_owned);
    n.content.confidence = Confidence::Vendor;

    if let Some(cap) = r.int("redemption/quantity")? {
        if cap < 0 {
            return Err(r.malformed(format!("redemption/quantity is negative: {cap}")));
        }
        n.expiration.redemption_cap = Some(cap);
        n.expiration.confidence = Confidence::Vendor;
    }
    if let Some(start) = r.timestamp("start_date")? {
        n.starts_at = Some(start);
        used.push("start_date");
    }
    if let Some(end) = r.timestamp("expiration_date")? {
        n.ends_at = Some(end);
        n.expiration.expires_on = Some(end.day());
        n.expiration.confidence = Confidence::Vendor;
        used.push("expiration_date");
    }
    // A gift card's balance lapses with the voucher.
    if let Some(stored) = n.compliance.stored_value.as_mut() {
        stored.expires_on = n.expiration.expires_on;
    }
    n.used = used;
    Ok(n)
}

fn discount(
    r: &Reader,
    title: &str,
    used: &mut Vec<&'static str>,
) -> Result<Normalised, NormaliseError> {
    let kind = r.required_str("discount/type")?;
    let formula = [
        "percent_off_formula",
        "amount_off_formula",
        "unit_off_formula",
    ]
    .iter()
    .any(|f| r.get(&format!("discount/{f}")).is_some());
    let mut said = vec!["type", "is_dynamic"];
    let mut n = match kind {
        "PERCENT" => {
            let bp = r
                .percent_bp("discount/percent_off")?
                .ok_or_else(|| r.malformed("a PERCENT discount needs discount/percent_off"))?;
            said.push("percent_off");
            let mut n = Normalised::new(title, OfferType::PercentOff, "");
            n.value.percent_off_bp = Some(bp);
            // The cap is in the project's currency; without one known it stays raw.
            let limit = r.int("discount/amount_limit")?;
            let limit_currency = match limit {
                Some(_) => narrowing_currency(r, "currency")?,
                None => None,
            };
            if let (Some(limit), Some(currency)) = (limit, limit_currency) {
                n.value.max_discount_minor =
                    Some(minor(r, "discount/amount_limit", limit, &currency)?);
                n.value.currency = currency;
                said.push("amount_limit");
            }
            n
        }
        "AMOUNT" => {
            let hundredths = r
                .int("discount/amount_off")?
                .ok_or_else(|| r.malformed("an AMOUNT discount needs discount/amount_off"))?;
            let currency = r.amount_currency("currency")?;
            said.push("amount_off");
            let mut n = Normalised::new(title, OfferType::AmountOff, &currency);
            n.value.amount_off_minor =
                Some(minor(r, "discount/amount_off", hundredths, &currency)?);
            // Taken off each unit, the cost per order depends on the basket.
            if r.str("discount/effect") == Some("APPLY_TO_ITEMS_BY_QUANTITY") {
                n.value.confidence = Confidence::Derived;
            }
            n
        }
        "UNIT" => unit(r, title, &mut said)?,
        "FIXED" => {
            return Err(r.malformed(
                "unsupported offer shape: a FIXED discount sets the order total or item price to discount/fixed_amount; what it takes off depends on the order, which no offer type models",
            ));
        }
        other => {
            return Err(r.malformed(format!(
                "discount/type is not PERCENT, AMOUNT, UNIT or FIXED: {other:?}"
            )));
        }
    };
    if n.value.confidence == Confidence::Default {
        n.value.confidence = if formula {
            Confidence::Derived
        } else {
            Confidence::Vendor
        };
    }
    // An effect on the whole order is what the canonical offer means already.
    if r.str("discount/effect") == Some("APPLY_TO_ORDER") {
        said.push("effect");
    }
    if says_only(r, "discount", &said) {
        used.push("discount");
    }
    Ok(n)
}

/// A gift card: its balance is both the member's stored value and the operator's cost.
fn gift(r: &Reader, title: &str) -> Result<Normalised, NormaliseError> {
    let path = if r.get("gift/balance").is_some() {
        "gift/balance"
    } else {
        "gift/amount"
    };
    let hundredths = r
        .int(path)?
        .ok_or_else(|| r.malformed("a GIFT_VOUCHER needs gift/balance or gift/amount"))?;
    let currency = r.amount_currency("currency")?;
    let value = minor(r, path, hundredths, &currency)?;
    let mut n = Normalised::new(title, OfferType::GiftBundle, &currency);
    n.value.fixed_cost_minor = value;
    n.value.confidence = Confidence::Vendor;
    n.compliance.stored_value = Some(StoredValue {
        amount_minor: value,
        currency,
        expires_on: None,
    });
    Ok(n)
}

/// Voucherify's hundredths at `path` as minor units of `currency`.
fn minor(r: &Reader, path: &str, hundredths: i64, currency: &str) -> Result<i64, NormaliseError> {
    hundredths_to_minor(hundredths, currency).ok_or_else(|| {
        r.malformed(format!(
            "{path} is not an amount of {currency}: {hundredths}"
        ))
    })
}

/// Free units: one product is a `BonusProduct`, several (`units`) a `GiftBundle`.
fn unit(
    r: &Reader,
    title: &str,
    said: &mut Vec<&'static str>,
) -> Result<Normalised, NormaliseError> {
    let at = match r
        .get("discount/units")
        .map(|units| units.as_array().map(Vec::len))
    {
        None => "discount/",
        Some(Some(1)) => "discount/units/0/",
        Some(Some(count)) if count > 1 => {
            let mut n = Normalised::new(title, OfferType::GiftBundle, "");
            n.value.confidence = Confidence::Derived;
            return Ok(n);
        }
        Some(_) => return Err(r.malformed("discount/units is not a list of units")),
    };
    let path = |field: &str| format!("{at}{field}");
    if let Some(units) = r.int(&path("unit_off"))?.filter(|u| *u < 1) {
        return Err(r.malformed(format!(
            "{} is not a positive number of units: {units}",
            path("unit_off")
        )));
    }
    let product = r
        .str(&path("sku/source_id"))
        .or_else(|| r.str(&path("product/source_id")))
        .or_else(|| r.str(&path("unit_type")))
        .ok_or_else(|| r.malformed(format!("a UNIT discount needs {}", path("unit_type"))))?;
    if at == "discount/" {
        said.extend(["unit_off", "unit_type"]);
    }
    let mut n = Normalised::new(title, OfferType::BonusProduct, "");
    n.value.product_sku = Some(product.to_owned());
    Ok(n)
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
