//! Yotpo Loyalty & Referrals: a redemption option (what members spend points on), one entry
//! of `GET https://loyalty.yotpo.com/api/v2/redemption_options`
//! (<https://loyaltyapi.yotpo.com/reference/fetch-active-redemption-options>).
//!
//! - `discount_type: "fixed_amount"` → `AmountOff` of `discount_amount_cents`;
//! - `discount_type: "percentage"` → `PercentOff` of `discount_percentage`;
//! - free shipping, and any other discount type, fits no offer type and is dead-lettered.
//!
//! Yotpo documents the option's `id`, `name`, `description`, `icon`, `cost_text`, `amount`,
//! `applies_to_product_type` and `duration`; the discount fields (`discount_type`,
//! `discount_amount_cents`, `discount_percentage`, ...) are not in that table but are in
//! every response, as integrations that read them show (Bolt's cart `loyalty_rewards`
//! example carries a full redemption option). `amount` is the option's price in points
//! (`cost_text` is the same number rendered for display). An option names no currency:
//! `discount_amount_cents` is in the store currency the vendor offer names, and a
//! fixed-amount option when no store currency is known is dead-lettered ("states an amount
//! but no currency"). The cents are taken as the currency's minor units as they are, as
//! Stripe's and Chargebee's "cents" are: Yotpo does not document them as hundredths of
//! every currency, so for a zero-decimal store currency such as JPY 500 is read as ¥500,
//! not ¥5 (an assumption no Yotpo example for such a store confirms). `icon` is an image
//! only when it is an https URL (otherwise it is a Font Awesome class name).

use loyalty_contracts::{Confidence, OfferType};

use super::{NormaliseError, Normalised, Reader};

pub fn normalise(r: &Reader) -> Result<Normalised, NormaliseError> {
    let name = r.required_str("name")?;
    let mut n = match r.required_str("discount_type")? {
        "fixed_amount" => {
            let cents = r
                .int("discount_amount_cents")?
                .ok_or_else(|| r.malformed("discount_amount_cents is missing"))?;
            if cents < 0 {
                return Err(r.malformed(format!("discount_amount_cents is negative: {cents}")));
            }
            let currency = r.amount_currency("currency")?;
            let mut n = Normalised::new(name, OfferType::AmountOff, &currency);
            n.value.amount_off_minor = Some(cents);
            n.used = vec!["name", "discount_type", "discount_amount_cents"];
            n
        }
        "percentage" => {
            let mut n = Normalised::new(name, OfferType::PercentOff, "");
            n.value.percent_off_bp = Some(
                r.percent_bp("discount_percentage")?
                    .ok_or_else(|| r.malformed("discount_percentage is missing"))?,
            );
            n.used = vec!["name", "discount_type", "discount_percentage"];
            n
        }
        "free_shipping" => {
            return Err(r.malformed(format!(
                "unsupported offer shape: {name:?} is free shipping, which no offer type models"
            )));
        }
        other => {
            return Err(r.malformed(format!(
                "unsupported offer shape: discount_type {other:?} of {name:?}"
            )));
        }
    };
    n.value.confidence = Confidence::Vendor;
    n.value.points = r.int("amount")?;
    if let Some(icon) = r.str("icon").filter(|icon| icon.starts_with("https://")) {
        n.content.asset_url = Some(icon.to_owned());
        n.content.confidence = Confidence::Vendor;
    }
    n.used.extend(["amount", "icon"]);
    Ok(n)
}
