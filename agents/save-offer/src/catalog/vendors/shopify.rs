//! Shopify: a REST Admin price rule (the document has `value_type`) and a GraphQL Admin
//! discount (the document is the `codeDiscount` / `automaticDiscount` object, queried
//! with `__typename`): amount-off discounts (`DiscountCodeBasic`,
//! `DiscountAutomaticBasic`) and buy-X-get-Y discounts (`DiscountCodeBxgy`,
//! `DiscountAutomaticBxgy`).
//!
//! Documentation: <https://shopify.dev/docs/api/admin-rest/2024-10/resources/pricerule>,
//! <https://shopify.dev/docs/api/admin-graphql/2025-10/objects/DiscountCodeBasic>,
//! <https://shopify.dev/docs/api/admin-graphql/2025-10/objects/DiscountCodeBxgy>,
//! <https://shopify.dev/docs/api/admin-graphql/2025-10/objects/DiscountCombinesWith>.
//!
//! Mapping decisions:
//! - A REST price rule's `value` is negative (`"-10.0"` is 10% or 10 off); the sign is
//!   dropped. A REST `fixed_amount` (and `prerequisite_subtotal_range`) is in "the store's
//!   currency", which the price rule does not name: it is the store currency the vendor
//!   offer names. A `fixed_amount` rule when no store currency is known is rejected ("states
//!   an amount but no currency") rather than priced in a guessed one; a percentage rule's
//!   minimum subtotal then stays raw. With `allocation_method: each` the amount comes off
//!   each entitled item, so the cost per order depends on the basket (`Derived`). The
//!   GraphQL discount states `currencyCode` on every amount.
//! - GraphQL `DiscountPercentage.percentage` is a fraction (0.2 is 20%; the input is
//!   documented as 0.00 to 1.00), not a percent as in REST.
//! - A buy-X-get-Y rule is a `BonusProduct`: `percent_off_bp` (`amount_off_minor` for a
//!   REST `fixed_amount` rule) is the discount on the item given (10000 = free) and
//!   `product_sku` the one entitled product or variant id, when there is exactly one.
//!   What must be bought stays in the raw fields.
//! - Free shipping (`target_type: shipping_line`, `DiscountCodeFreeShipping`) and app
//!   discounts (computed by a Shopify Function) fit no offer kind and are rejected.
//! - `combinesWith` with no class → `Exclusive`; with any class → `Additive` (which
//!   classes is kept raw). `once_per_customer` / `appliesOncePerCustomer` →
//!   `per_subscriber_cap` 1. `recurringCycleLimit` is `duration_cycles`; 0 means "every
//!   cycle", which has no canonical length, so it stays raw and marks the offer as
//!   changing what the plan charges at renewal.
//! - An `ends_at` / `endsAt` instant is `ends_at`; its UTC day is `expires_on`.
//! - `used` lists the top-level fields the canonical record now carries in full; a field
//!   read only in part stays raw as well.

use loyalty_contracts::{Confidence, OfferType, StackRule, Timestamp};
use serde_json::Value;

use super::{NormaliseError, Normalised, Reader, narrowing_currency, number};
use crate::money;

/// What a REST price rule takes off.
enum RuleValue {
    /// Basis points.
    Percent(i32),
    /// Minor units of `currency`.
    Amount { minor: i64, currency: String },
}

pub fn normalise(r: &Reader) -> Result<Normalised, NormaliseError> {
    if let Some(typename) = r.str("__typename") {
        return graphql(r, typename);
    }
    if r.get("value_type").is_some() {
        return price_rule(r);
    }
    Err(r.malformed(
        "unsupported offer shape: neither a REST price rule (value_type) nor a GraphQL discount (__typename)",
    ))
}

fn price_rule(r: &Reader) -> Result<Normalised, NormaliseError> {
    let title = r.required_str("title")?;
    match r.required_str("target_type")? {
        "line_item" => {}
        "shipping_line" => {
            return Err(r.malformed(
                "unsupported offer shape: a shipping_line price rule discounts shipping, which fits no offer kind",
            ));
        }
        other => {
            return Err(r.malformed(format!(
                "target_type is not line_item or shipping_line: {other:?}"
            )));
        }
    }
    let value = match r.required_str("value_type")? {
        "percentage" => RuleValue::Percent(
            r.percent_bp("value")?
                .ok_or_else(|| r.malformed("value is missing"))?,
        ),
        "fixed_amount" => {
            let currency = r.amount_currency("currency")?;
            RuleValue::Amount {
                minor: unsigned_money(r, "value", &currency)?,
                currency,
            }
        }
        other => {
            return Err(r.malformed(format!(
                "value_type is not percentage or fixed_amount: {other:?}"
            )));
        }
    };
    let mut used = vec!["title", "target_type", "value_type", "value"];

    let buy = r.int("prerequisite_to_entitlement_quantity_ratio/prerequisite_quantity")?;
    let get = r.int("prerequisite_to_entitlement_quantity_ratio/entitled_quantity")?;
    let bxgy = buy.is_some() && get.is_some();
    let mut n = match value {
        RuleValue::Percent(bp) => {
            let offer_type = if bxgy {
                OfferType::BonusProduct
            } else {
                OfferType::PercentOff
            };
            let mut n = Normalised::new(title, offer_type, "");
            n.value.percent_off_bp = Some(bp);
            n.value.confidence = Confidence::Vendor;
            n
        }
        RuleValue::Amount { minor, currency } => {
            let offer_type = if bxgy {
                OfferType::BonusProduct
            } else {
                OfferType::AmountOff
            };
            let mut n = Normalised::new(title, offer_type, &currency);
            n.value.amount_off_minor = Some(minor);
            // Taken off each entitled item, the cost per order depends on the basket.
            n.value.confidence = if r.str("allocation_method") == Some("each") {
                Confidence::Derived
            } else {
                Confidence::Vendor
            };
            n
        }
    };
    if bxgy {
        n.value.product_sku =
            only_id(r, "entitled_variant_ids").or_else(|| only_id(r, "entitled_product_ids"));
    }

    // The minimum subtotal is in the store's currency; without one known it stays raw.
    let subtotal = "prerequisite_subtotal_range/greater_than_or_equal_to";
    let minimum_currency = match r.get(subtotal) {
        Some(_) => narrowing_currency(r, "currency")?,
        None => None,
    };
    if let Some(currency) = minimum_currency
        .filter(|currency| n.value.currency.is_empty() || n.value.currency == *currency)
    {
        n.value.min_order_minor = Some(unsigned_money(r, subtotal, &currency)?);
        n.value.currency = currency;
        let only_minimum = r
            .get("prerequisite_subtotal_range")
            .and_then(Value::as_object)
            .is_some_and(|range| range.len() == 1);
        if only_minimum {
            used.push("prerequisite_subtotal_range");
        }
    }

    if let Some(once) = r.bool("once_per_customer") {
        once_per_customer(&mut n, once);
        used.push("once_per_customer");
    }
    if let Some(cap) = redemption_cap(r, "usage_limit")? {
        n.expiration.redemption_cap = Some(cap);
        n.expiration.confidence = Confidence::Vendor;
        used.push("usage_limit");
    }
    if let Some(start) = r.timestamp("starts_at")? {
        n.starts_at = Some(start);
        used.push("starts_at");
    }
    if let Some(end) = r.timestamp("ends_at")? {
        end_at(&mut n, end);
        used.push("ends_at");
    }
    n.used = used;
    Ok(n)
}

fn graphql(r: &Reader, typename: &str) -> Result<Normalised, NormaliseError> {
    let title = r.required_str("title")?;
    let mut used = vec!["__typename", "title"];
    let mut n = match typename {
        "DiscountCodeBasic" | "DiscountAutomaticBasic" => basic(r, title, &mut used)?,
        "DiscountCodeBxgy" | "DiscountAutomaticBxgy" => {
            let mut n = Normalised::new(title, OfferType::BonusProduct, "");
            let bp = fraction_bp(r, "customerGets/value/effect/percentage")?.ok_or_else(|| {
                r.malformed("customerGets/value/effect/percentage is missing (only a percentage effect is read)")
            })?;
            n.value.percent_off_bp = Some(bp);
            n.value.product_sku = only_id(r, "customerGets/items/productVariants/nodes")
                .or_else(|| only_id(r, "customerGets/items/products/nodes"));
            n.value.confidence = Confidence::Vendor;
            n
        }
        "DiscountCodeFreeShipping" | "DiscountAutomaticFreeShipping" => {
            return Err(r.malformed(format!(
                "unsupported offer shape: {typename} discounts shipping, which fits no offer kind"
            )));
        }
        other => {
            return Err(r.malformed(format!(
                "unsupported offer shape: {other} (an app discount's value is computed by its Shopify Function)"
            )));
        }
    };

    match r.get("combinesWith").and_then(Value::as_object) {
        Some(classes) if classes.values().all(|v| v.as_bool() != Some(true)) => {
            n.stacking.rule = StackRule::Exclusive;
            n.stacking.confidence = Confidence::Vendor;
            used.push("combinesWith");
        }
        Some(_) => {
            n.stacking.rule = StackRule::Additive;
            n.stacking.confidence = Confidence::Vendor;
        }
        None => {}
    }
    if let Some(once) = r.bool("appliesOncePerCustomer") {
        once_per_customer(&mut n, once);
        used.push("appliesOncePerCustomer");
    }
    if let Some(cap) = redemption_cap(r, "usageLimit")? {
        n.expiration.redemption_cap = Some(cap);
        n.expiration.confidence = Confidence::Vendor;
        used.push("usageLimit");
    }
    // A connection lists its codes as `nodes` or as `edges` of `node`s.
    let codes: Vec<&str> = r
        .get("codes/nodes")
        .or_else(|| r.get("codes/edges"))
        .and_then(Value::as_array)
        .map(|list| {
            list.iter()
                .filter_map(|item| item.get("node").unwrap_or(item).get("code")?.as_str())
                .collect()
        })
        .unwrap_or_default();
    if let Some(code) = codes.first() {
        n.content.code = Some((*code).to_owned());
        n.content.confidence = Confidence::Vendor;
        if codes.len() == 1 && r.bool("codes/pageInfo/hasNextPage") != Some(true) {
            used.push("codes");
        }
    }
    match r.int("recurringCycleLimit")? {
        Some(cycles) if cycles > 0 => {
            n.value.duration_cycles =
                Some(i32::try_from(cycles).map_err(|_| {
                    r.malformed(format!("recurringCycleLimit is too large: {cycles}"))
                })?);
            used.push("recurringCycleLimit");
        }
        Some(0) => n.compliance.changes_auto_renewal = true,
        Some(cycles) => {
            return Err(r.malformed(format!("recurringCycleLimit is negative: {cycles}")));
        }
        None => {}
    }
    if let Some(start) = r.timestamp("startsAt")? {
        n.starts_at = Some(start);
        used.push("startsAt");
    }
    if let Some(end) = r.timestamp("endsAt")? {
        end_at(&mut n, end);
        used.push("endsAt");
    }
    n.used = used;
    Ok(n)
}

/// An amount-off discount: `customerGets.value` is a `DiscountPercentage` or a
/// `DiscountAmount`; a minimum subtotal in the same currency is `min_order_minor`.
fn basic(
    r: &Reader,
    title: &str,
    used: &mut Vec<&'static str>,
) -> Result<Normalised, NormaliseError> {
    let mut n = if let Some(bp) = fraction_bp(r, "customerGets/value/percentage")? {
        let mut n = Normalised::new(title, OfferType::PercentOff, "");
        n.value.percent_off_bp = Some(bp);
        n.value.confidence = Confidence::Vendor;
        n
    } else if r.get("customerGets/value/amount").is_some() {
        let currency = r.amount_currency("customerGets/value/amount/currencyCode")?;
        let amount = r
            .money("customerGets/value/amount/amount", &currency)?
            .ok_or_else(|| r.malformed("customerGets/value/amount/amount is missing"))?;
        let mut n = Normalised::new(title, OfferType::AmountOff, &currency);
        n.value.amount_off_minor = Some(amount);
        // Taken off each entitled item, the cost per order depends on the basket.
        n.value.confidence = if r.bool("customerGets/value/appliesOnEachItem") == Some(true) {
            Confidence::Derived
        } else {
            Confidence::Vendor
        };
        n
    } else {
        return Err(r.malformed("customerGets/value has neither percentage nor amount"));
    };

    let subtotal = "minimumRequirement/greaterThanOrEqualToSubtotal";
    if r.get(subtotal).is_some() {
        let currency = r.amount_currency(&format!("{subtotal}/currencyCode"))?;
        let minimum = r.money(&format!("{subtotal}/amount"), &currency)?;
        if let Some(minimum) =
            minimum.filter(|_| n.value.currency.is_empty() || n.value.currency == currency)
        {
            n.value.min_order_minor = Some(minimum);
            n.value.currency = currency;
            used.push("minimumRequirement");
        }
    }
    Ok(n)
}

/// A REST amount in major units, negative (`"-10.0"`) or not, as minor units of `currency`.
fn unsigned_money(r: &Reader, path: &str, currency: &str) -> Result<i64, NormaliseError> {
    let magnitude = match r.get(path) {
        Some(Value::String(text)) => text.trim().trim_start_matches('-').to_owned(),
        Some(Value::Number(n)) => n.to_string().trim_start_matches('-').to_owned(),
        Some(other) => return Err(r.malformed(format!("{path} is not an amount: {other}"))),
        None => return Err(r.malformed(format!("{path} is missing"))),
    };
    money::major_to_minor(&Value::String(magnitude), currency)
        .map_err(|e| r.malformed(format!("{path}: {e}")))
}

/// A GraphQL percentage (a fraction, 0.2 = 20%) as basis points.
fn fraction_bp(r: &Reader, path: &str) -> Result<Option<i32>, NormaliseError> {
    let Some(value) = r.get(path) else {
        return Ok(None);
    };
    let fraction =
        number(value).ok_or_else(|| r.malformed(format!("{path} is not a number: {value}")))?;
    if !(0.0..=1.0).contains(&fraction) {
        return Err(r.malformed(format!(
            "{path} is not a fraction between 0 and 1: {fraction}"
        )));
    }
    Ok(Some((fraction * 10_000.0).round() as i32))
}

/// The id in `path` (an array of ids, or of GraphQL nodes with `id`) when it holds
/// exactly one.
fn only_id(r: &Reader, path: &str) -> Option<String> {
    match r.get(path)?.as_array()?.as_slice() {
        [one] => match one.get("id").unwrap_or(one) {
            Value::String(id) => Some(id.clone()),
            Value::Number(id) => Some(id.to_string()),
            _ => None,
        },
        _ => None,
    }
}

fn once_per_customer(n: &mut Normalised, once: bool) {
    if once {
        n.stacking.per_subscriber_cap = Some(1);
        n.stacking.confidence = Confidence::Vendor;
    }
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
