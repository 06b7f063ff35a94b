//! Bold Subscriptions (V1): a cancellation-flow offer, one entry of a cancel reason's
//! `cancel_offers` as the Manage Subscription API returns it in
//! `general_settings.cancel_reasons` (`id`, `offer_type`, `discount_code_id`,
//! `discount_code`, `discount_detail`).
//!
//! Documentation: the Manage Subscription API
//! (<https://developer.boldcommerce.com/default/guides/archive/subscriptions_v1_msp>); the
//! offer fields and `offer_type` values are those Bold's own open-source Manage
//! Subscriptions page reads
//! (<https://github.com/bold-commerce/bold-subscriptions-manage-subscriptions-app/blob/master/src/components/v1/OrderCancellationCancelOffers.js>,
//! `src/constants/OrderCancellationStates.js`), the cancellation flow is described at
//! <https://support.boldcommerce.com/hc/en-us/articles/360045215411>.
//!
//! Mapping decisions:
//! - `offer_type_skip_shipment` skips the next order: `PauseOneCycle`, one cycle.
//! - `offer_type_pause_subscription` pauses until the subscriber resumes; its length is
//!   theirs to choose, so it is priced as the shortest, one cycle (`Derived`).
//! - `offer_type_modify_quantity` lets a subscriber leaving over price or too much
//!   product take fewer units: a cheaper plan, `DowngradeTier` (`Derived`).
//! - `offer_type_discount_code` names a code and shows `discount_detail`, display text;
//!   a percentage written in it ("20% off") is read as `percent_off_bp`, an amount
//!   ("$5.00 off") as `amount_off_minor` (both `Derived`). The offer states no currency:
//!   an amount is in the one its text names ("€5", "5 EUR"), else in the store currency
//!   the vendor offer names, and is dead-lettered when neither is known ("states an amount
//!   but no currency"). A detail stating neither a percentage nor an amount rejects the
//!   offer.
//! - `offer_type_swap_product` lets the subscriber pick another product, which fits no
//!   offer kind, and is rejected.
//! - Titles are Bold's own labels for each offer (the page's English translations), or
//!   "code - detail" as the page shows a discount.

use loyalty_contracts::{Confidence, OfferType};

use super::{NormaliseError, Normalised, Reader, discount_in_text};

pub fn normalise(r: &Reader) -> Result<Normalised, NormaliseError> {
    let (title, offer_type, pause_cycles, confidence) = match r.required_str("offer_type")? {
        "offer_type_skip_shipment" => (
            "Skip an order",
            OfferType::PauseOneCycle,
            Some(1),
            Confidence::Vendor,
        ),
        "offer_type_pause_subscription" => (
            "Pause subscription",
            OfferType::PauseOneCycle,
            Some(1),
            Confidence::Derived,
        ),
        "offer_type_modify_quantity" => (
            "Change quantity",
            OfferType::DowngradeTier,
            None,
            Confidence::Derived,
        ),
        "offer_type_discount_code" => return discount_code(r),
        "offer_type_swap_product" => {
            return Err(r.malformed(
                "unsupported offer shape: offer_type_swap_product lets the subscriber pick another product, which fits no offer kind",
            ));
        }
        other => {
            return Err(r.malformed(format!(
                "offer_type is not a known cancellation offer: {other:?}"
            )));
        }
    };
    let mut n = Normalised::new(title, offer_type, "");
    n.value.pause_cycles = pause_cycles;
    n.value.confidence = confidence;
    n.used = vec!["offer_type"];
    Ok(n)
}

fn discount_code(r: &Reader) -> Result<Normalised, NormaliseError> {
    let code = r.required_str("discount_code")?;
    let detail = r.str("discount_detail").unwrap_or_default();
    let title = format!("{code} - {detail}");
    let mut n = match percent_in(detail) {
        Some(Some(bp)) => {
            let mut n = Normalised::new(title, OfferType::PercentOff, "");
            n.value.percent_off_bp = Some(bp);
            n.value.confidence = Confidence::Derived;
            n
        }
        Some(None) => {
            return Err(r.malformed(format!(
                "discount_detail {detail:?} states a percentage above 100%"
            )));
        }
        // No currency field: an amount the text does not name one for is in the store's.
        None => discount_in_text(detail)
            .ok_or_else(|| {
                r.malformed(format!(
                    "unsupported offer shape: discount_detail {detail:?} states no percentage or amount"
                ))
            })?
            .offer(&title, r, "currency")?,
    };
    n.content.code = Some(code.to_owned());
    n.content.confidence = Confidence::Vendor;
    n.used = vec!["offer_type", "discount_code", "discount_detail"];
    Ok(n)
}

/// The first percentage written in `text` ("Save 12.5% on every order") in basis points:
/// `None` when there is none, `Some(None)` when it is above 100%.
fn percent_in(text: &str) -> Option<Option<i32>> {
    let sign = text.find('%')?;
    let head = text.get(..sign)?.trim_end();
    let start = head
        .char_indices()
        .rev()
        .find(|(_, c)| !(c.is_ascii_digit() || *c == '.'))
        .map_or(0, |(i, c)| i + c.len_utf8());
    let percent: f64 = head.get(start..)?.parse().ok()?;
    Some((percent <= 100.0).then(|| (percent * 100.0).round() as i32))
}
