//! The offer as this member will read it: the localisation for the member's country
//! (in the member's language when there is one, else the first listed for the
//! country), the value shown in the localisation's currency through the FX table and
//! with tax when amounts are shown tax-inclusive, and the disclosure, cancellation rule
//! and return policy the country needs. An offer with localisations has none for other
//! countries: it is not shown there. An offer without any is shown as the vendor wrote it.

use loyalty_contracts::{
    CatalogOffer, LocalisedContent, OfferRejection, OfferType, RejectionStage,
};

use super::{Pricing, reject};
use crate::member::MemberView;
use crate::money::{self, Rates};

pub(super) fn content(
    offer: &CatalogOffer,
    member: &MemberView,
    pricing: &Pricing,
    rates: &impl Rates,
) -> Result<LocalisedContent, OfferRejection> {
    let (country, language) = member
        .profile
        .as_ref()
        .map(|p| (p.country.as_str(), p.language.as_str()))
        .unwrap_or(("", ""));
    let c = &offer.content;
    let value = pricing
        .discount_per_order_minor
        .max(pricing.fixed_cost_minor);
    if offer.localisations.is_empty() {
        return Ok(LocalisedContent {
            country: country.to_owned(),
            language: language.to_owned(),
            currency: pricing.currency.clone(),
            title: offer.title.clone(),
            body: String::new(),
            value_minor: value,
            disclosure: None,
            cancellation_rule: None,
            tax_inclusive: false,
            tax_rate_bp: None,
            return_policy: None,
            template_id: c.template_id.clone(),
            asset_url: c.asset_url.clone(),
            code: c.code.clone(),
        });
    }
    let for_country: Vec<_> = offer
        .localisations
        .iter()
        .filter(|l| l.country.eq_ignore_ascii_case(country))
        .collect();
    let Some(l) = for_country
        .iter()
        .find(|l| l.language.eq_ignore_ascii_case(language))
        .or(for_country.first())
    else {
        let listed: Vec<&str> = offer
            .localisations
            .iter()
            .map(|l| l.country.as_str())
            .collect();
        return Err(reject(
            offer,
            RejectionStage::Localisation,
            "country",
            if country.is_empty() {
                "unknown"
            } else {
                country
            },
            format!("the offer is localised for {listed:?} only"),
        ));
    };
    let needs = |what: &str, present: bool, why: &str| {
        if present {
            Ok(())
        } else {
            Err(reject(
                offer,
                RejectionStage::Localisation,
                what,
                format!("{}-{}", l.language, l.country),
                format!(
                    "the {}-{} localisation has no {}, which {why}",
                    l.language,
                    l.country,
                    what.replace('_', " ")
                ),
            ))
        }
    };
    needs(
        "disclosure",
        l.disclosure.is_some() || offer.compliance.claims.is_empty(),
        "the offer's savings claims need",
    )?;
    needs(
        "cancellation_rule",
        l.cancellation_rule.is_some() || !offer.compliance.changes_auto_renewal,
        "an offer that changes an auto-renewing plan needs",
    )?;
    needs(
        "return_policy",
        l.return_policy.is_some()
            || !matches!(
                offer.offer_type,
                OfferType::BonusProduct | OfferType::GiftBundle
            ),
        "an offer that ships goods needs",
    )?;
    let mut shown = money::convert(value, &pricing.currency, &l.currency, rates).map_err(|e| {
        reject(
            offer,
            RejectionStage::Localisation,
            "currency",
            l.currency.clone(),
            format!("cannot show the value in {}: {e}", l.currency),
        )
    })?;
    if l.tax_inclusive
        && let Some(rate) = l.tax_rate_bp
    {
        shown = (i128::from(shown) * i128::from(10_000 + rate) / 10_000) as i64;
    }
    Ok(LocalisedContent {
        country: l.country.clone(),
        language: l.language.clone(),
        currency: l.currency.clone(),
        title: l.title.clone(),
        body: l.body.clone(),
        value_minor: shown,
        disclosure: l.disclosure.clone(),
        cancellation_rule: l.cancellation_rule.clone(),
        tax_inclusive: l.tax_inclusive,
        tax_rate_bp: l.tax_rate_bp,
        return_policy: l.return_policy.clone(),
        template_id: c.template_id.clone(),
        asset_url: c.asset_url.clone(),
        code: c.code.clone(),
    })
}
