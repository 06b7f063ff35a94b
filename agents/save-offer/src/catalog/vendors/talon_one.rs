//! Talon.One: an effect as the Integration API returns it (`effectType` and `props`, one
//! entry of `effects` from updating a customer session), the concrete thing a campaign's
//! rules grant. `addFreeItem`, `awardGiveaway`, `addLoyaltyPoints`, `setDiscount` and
//! `setDiscountPerItem` are normalised; discounts on additional costs and coupons are
//! rejected, each with its reason.
//!
//! Documentation: <https://docs.talon.one/docs/dev/integration-api/api-effects> (the
//! `Effect`, `AddFreeItemEffectProps`, `AwardGiveawayEffectProps`,
//! `AddLoyaltyPointsEffectProps` and `Coupon` models of the SDKs,
//! <https://github.com/talon-one/talon_one.js/tree/master/docs>), campaign evaluation
//! groups: <https://docs.talon.one/docs/product/applications/managing-campaign-evaluation>.
//!
//! Mapping decisions:
//! - `addFreeItem` adds a free item: `BonusProduct`, `product_sku` from `props.sku`.
//! - `awardGiveaway` hands out a code from a giveaway pool (typically a gift card or
//!   voucher from a partner): `GiftBundle`, the code as the offer's code. The pool says
//!   nothing about its value.
//! - `addLoyaltyPoints` gives points; none of the fourteen kinds is "bonus points", and a
//!   `GiftBundle` is the reward it is priced like (`Derived`; the operator's policy can
//!   set another type). Fractional points are rounded (`Derived` too).
//! - `setDiscount` (on the session total) and `setDiscountPerItem` (on one cart item) are
//!   an `AmountOff` of `props.value`, money in major units of the Application's currency,
//!   which the effect does not state: it is the store currency the vendor offer names, and
//!   the effect is rejected ("states an amount but no currency") when none is known rather
//!   than priced in a guessed one. The value is what the rule computed for the session it
//!   was evaluated on (a "10% off" rule gives another amount on another cart; the
//!   percentage exists only inside the campaign's Talang rule), hence `Derived`.
//! - `setDiscountPerAdditionalCost` and `setDiscountPerAdditionalCostPerItem` discount an
//!   additional cost (shipping, a fee), which fits no offer kind: rejected.
//! - A coupon is only a code: what it grants is in its campaign's rules (its
//!   `discountLimit` only caps the total discount), which it does not carry. Rejected:
//!   normalise the effects it triggers instead.
//! - The campaign evaluation group decides stacking: `stackable` → `Additive`;
//!   `highestDiscount` → `BestOf` within the group (`stack_group`), and `listOrder` /
//!   `lowestDiscount`, where also only one campaign of the group applies, likewise
//!   (`Derived`: the canonical rule has no "first" or "lowest").
//! - `used` lists the top-level fields the canonical record now carries in full; `props`
//!   read only in part (the recipient, a pool id) stays raw as well.

use loyalty_contracts::{Confidence, OfferType, StackRule};
use serde_json::Value;

use super::{NormaliseError, Normalised, Reader, number};

/// The members of each effect's `props` the canonical record holds.
const FREE_ITEM_PROPS: &[&str] = &["sku", "name"];
const GIVEAWAY_PROPS: &[&str] = &["code", "poolName"];
const POINTS_PROPS: &[&str] = &["name", "value"];
const DISCOUNT_PROPS: &[&str] = &["name", "value"];

pub fn normalise(r: &Reader) -> Result<Normalised, NormaliseError> {
    if r.get("effectType").is_some() {
        effect(r)
    } else if r.get("campaignId").is_some() && r.get("usageLimit").is_some() {
        Err(coupon(r))
    } else {
        Err(r.malformed("unsupported offer shape: neither an effect (effectType) nor a coupon (campaignId, usageLimit)"))
    }
}

fn effect(r: &Reader) -> Result<Normalised, NormaliseError> {
    let effect_type = r.required_str("effectType")?;
    let mut used = vec!["effectType"];
    // The effect's own name, else the name of the rule that triggered it.
    let named = |field: &str, used: &mut Vec<&'static str>| -> Result<String, NormaliseError> {
        match r.str(field) {
            Some(name) => Ok(name.to_owned()),
            None => {
                used.push("ruleName");
                r.required_str("ruleName").map(str::to_owned)
            }
        }
    };
    let (mut n, said) = match effect_type {
        "addFreeItem" => {
            let sku = r.required_str("props/sku")?;
            let mut n =
                Normalised::new(named("props/name", &mut used)?, OfferType::BonusProduct, "");
            n.value.product_sku = Some(sku.to_owned());
            n.value.confidence = Confidence::Vendor;
            (n, FREE_ITEM_PROPS)
        }
        "awardGiveaway" => {
            let code = r.required_str("props/code")?;
            let mut n = Normalised::new(
                named("props/poolName", &mut used)?,
                OfferType::GiftBundle,
                "",
            );
            n.content.code = Some(code.to_owned());
            n.content.confidence = Confidence::Vendor;
            (n, GIVEAWAY_PROPS)
        }
        "addLoyaltyPoints" => {
            let value = r
                .get("props/value")
                .ok_or_else(|| r.malformed("props/value is missing"))?;
            let points = number(value)
                .filter(|p| (0.0..1e15).contains(p))
                .ok_or_else(|| {
                    r.malformed(format!("props/value is not a number of points: {value}"))
                })?;
            let mut n = Normalised::new(named("props/name", &mut used)?, OfferType::GiftBundle, "");
            n.value.points = Some(points.round() as i64);
            n.value.confidence = Confidence::Derived;
            (n, POINTS_PROPS)
        }
        "setDiscount" | "setDiscountPerItem" => {
            if r.get("props/value").is_none() {
                return Err(r.malformed("props/value is missing"));
            }
            // The effect states no currency: the Application's is the store's.
            let currency = r.amount_currency("currency")?;
            let amount = r
                .money("props/value", &currency)?
                .ok_or_else(|| r.malformed("props/value is missing"))?;
            let mut n = Normalised::new(
                named("props/name", &mut used)?,
                OfferType::AmountOff,
                &currency,
            );
            n.value.amount_off_minor = Some(amount);
            n.value.confidence = Confidence::Derived;
            (n, DISCOUNT_PROPS)
        }
        "setDiscountPerAdditionalCost" | "setDiscountPerAdditionalCostPerItem" => {
            return Err(r.malformed(format!(
                "unsupported offer shape: a {effect_type} effect discounts an additional cost (shipping, a fee), which fits no offer kind"
            )));
        }
        other => {
            return Err(r.malformed(format!(
                "unsupported offer shape: a {other} effect grants no offer (handled: addFreeItem, awardGiveaway, addLoyaltyPoints, setDiscount, setDiscountPerItem)"
            )));
        }
    };
    if says_only(r, "props", said) {
        used.push("props");
    }

    let group = match r.get("evaluationGroupID") {
        Some(_) => Some(r.required_id("evaluationGroupID")?),
        None => None,
    };
    let (rule, confidence) = match r.str("evaluationGroupMode") {
        Some("stackable") => (Some(StackRule::Additive), Confidence::Vendor),
        Some("highestDiscount") => (Some(StackRule::BestOf), Confidence::Vendor),
        Some("listOrder" | "lowestDiscount") => (Some(StackRule::BestOf), Confidence::Derived),
        _ => (None, Confidence::Default),
    };
    if let Some(rule) = rule {
        n.stacking.rule = rule;
        n.stacking.confidence = confidence;
        used.push("evaluationGroupMode");
        if let Some(id) = group.filter(|_| rule == StackRule::BestOf) {
            n.stacking.stack_group = Some(format!("talon_one:evaluation-group:{id}"));
            used.push("evaluationGroupID");
        }
    }
    n.used = used;
    Ok(n)
}

fn coupon(r: &Reader) -> NormaliseError {
    let code = r.str("value").unwrap_or_default();
    r.malformed(format!(
        "unsupported offer shape: coupon {code:?} is a code; what it grants is in its campaign's rules, which it does not carry (normalise the effects it triggers)"
    ))
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
