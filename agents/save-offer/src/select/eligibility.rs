//! The fifteen eligibility dimensions and the offer's classification. Every list is an
//! allow-list: empty means anyone; set, the member's value must be in it, and a member
//! whose value is unknown is not eligible (an offer restricted to California is not
//! shown to a member whose state nobody knows).

use loyalty_contracts::{CatalogOffer, OfferRejection, RejectionStage};

use super::{Moment, reject};
use crate::member::MemberView;

/// One dimension's verdict: the member's value (or `None`) against the allowed values.
fn allow(
    offer: &CatalogOffer,
    dimension: &str,
    allowed: &[String],
    value: Option<&str>,
) -> Result<(), OfferRejection> {
    if allowed.is_empty() {
        return Ok(());
    }
    match value {
        Some(v) if allowed.iter().any(|a| a.eq_ignore_ascii_case(v)) => Ok(()),
        Some(v) => Err(reject(
            offer,
            RejectionStage::Eligibility,
            dimension,
            v,
            format!("{dimension} {v:?} is not among {allowed:?}"),
        )),
        None => Err(reject(
            offer,
            RejectionStage::Eligibility,
            dimension,
            "unknown",
            format!("the offer is limited to {dimension} {allowed:?} and the member's is unknown"),
        )),
    }
}

fn labels<T: std::fmt::Debug>(values: &[T]) -> Vec<String> {
    values.iter().map(|v| format!("{v:?}")).collect()
}

pub(super) fn check(
    offer: &CatalogOffer,
    member: &MemberView,
    moment: Moment,
) -> Result<(), OfferRejection> {
    let e = &offer.eligibility;
    let profile = member.profile.as_ref();
    let p = |f: fn(&crate::member::ProfileFacts) -> Option<&str>| profile.and_then(f);
    let decile = member.ltv_decile.map(|d| d.to_string());
    allow(
        offer,
        "ltv_decile",
        &e.ltv_deciles.iter().map(i32::to_string).collect::<Vec<_>>(),
        decile.as_deref(),
    )?;
    allow(
        offer,
        "tenure_cohort",
        &e.tenure_cohorts,
        member.tenure_cohort(),
    )?;
    allow(
        offer,
        "acquisition_channel",
        &e.acquisition_channels,
        p(|p| p.acquisition_channel.as_deref()),
    )?;
    allow(
        offer,
        "vertical",
        &e.verticals,
        p(|p| p.vertical.as_deref()),
    )?;
    if !e.product_lines.is_empty() {
        let bought = e.product_lines.iter().find(|line| {
            member
                .product_lines
                .iter()
                .any(|m| m.eq_ignore_ascii_case(line))
        });
        if bought.is_none() {
            let value = if member.product_lines.is_empty() {
                "none".to_owned()
            } else {
                member.product_lines.join(",")
            };
            return Err(reject(
                offer,
                RejectionStage::Eligibility,
                "product_line",
                value.clone(),
                format!(
                    "the offer is for buyers of {:?}; the member bought {value}",
                    e.product_lines
                ),
            ));
        }
    }
    allow(
        offer,
        "plan_tier",
        &e.plan_tiers,
        p(|p| p.plan_tier.as_deref()),
    )?;
    let state = p(|p| p.state.as_deref());
    allow(offer, "state", &e.states, state)?;
    if let Some(state) = state
        && e.excluded_states
            .iter()
            .any(|s| s.eq_ignore_ascii_case(state))
    {
        return Err(reject(
            offer,
            RejectionStage::Eligibility,
            "state",
            state,
            format!("the offer may not be shown in {state}"),
        ));
    }
    allow(
        offer,
        "country",
        &e.countries,
        p(|p| Some(p.country.as_str())),
    )?;
    let tier = member
        .state
        .as_ref()
        .and_then(|s| s.loyalty_tier.as_deref());
    allow(offer, "loyalty_tier", &e.loyalty_tiers, tier)?;
    allow(
        offer,
        "payment_method",
        &e.payment_methods,
        p(|p| p.payment_method.as_deref()),
    )?;
    allow(
        offer,
        "billing_frequency",
        &e.billing_frequencies,
        p(|p| p.billing_frequency.as_deref()),
    )?;
    if !e.shipping_zip_prefixes.is_empty() {
        let zip = p(|p| p.postal_code.as_deref());
        if !zip.is_some_and(|z| {
            e.shipping_zip_prefixes
                .iter()
                .any(|prefix| z.starts_with(prefix.as_str()))
        }) {
            return Err(reject(
                offer,
                RejectionStage::Eligibility,
                "shipping_zip",
                zip.unwrap_or("unknown"),
                format!(
                    "the offer ships only to postal codes starting {:?}",
                    e.shipping_zip_prefixes
                ),
            ));
        }
    }
    let cluster = member.reason_cluster.map(|c| format!("{c:?}"));
    allow(
        offer,
        "reason_cluster",
        &labels(&e.reason_clusters),
        cluster.as_deref(),
    )?;
    allow(
        offer,
        "borrower_status",
        &e.borrower_statuses,
        p(|p| p.borrower_status.as_deref()),
    )?;
    if let Some(max) = e.max_prior_redemptions
        && member.prior_redemptions > max
    {
        return Err(reject(
            offer,
            RejectionStage::Eligibility,
            "prior_redemptions",
            member.prior_redemptions.to_string(),
            format!(
                "the member redeemed {} offers before; the offer allows at most {max}",
                member.prior_redemptions
            ),
        ));
    }
    classification(offer, member, moment)
}

/// The moments and members the offer is meant for.
fn classification(
    offer: &CatalogOffer,
    member: &MemberView,
    moment: Moment,
) -> Result<(), OfferRejection> {
    let c = &offer.classification;
    let stage = format!("{:?}", moment.stage());
    allow(
        offer,
        "classification.retention_stage",
        &labels(&c.retention_stages),
        Some(&stage),
    )?;
    let segment = member.cohort.map(|c| c.segment.label());
    allow(offer, "classification.cohort", &c.cohorts, segment)?;
    let cluster = member.reason_cluster.map(|c| format!("{c:?}"));
    allow(
        offer,
        "classification.reason_cluster",
        &labels(&c.reason_clusters),
        cluster.as_deref(),
    )?;
    let decile = member.ltv_decile.map(|d| d.to_string());
    allow(
        offer,
        "classification.ltv_decile",
        &c.ltv_deciles.iter().map(i32::to_string).collect::<Vec<_>>(),
        decile.as_deref(),
    )
}
