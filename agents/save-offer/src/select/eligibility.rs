//! The fifteen eligibility dimensions, the tier a downgrade-tier offer needs below the
//! member's, and the offer's classification. Every list is an
//! allow-list: empty means anyone; set, the member's value must be in it, and a member
//! whose value is unknown is not eligible (an offer restricted to California is not
//! shown to a member whose state nobody knows).

use loyalty_contracts::{CatalogOffer, OfferRejection, OfferType, RejectionStage};

use super::{Moment, reject};
use crate::member::{MemberView, TierBelow};

/// One dimension's verdict: the member's value (or `None`) against the allowed values.
fn allow(
    explain: bool,
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
        _ if !explain => Err(super::unexplained(
            offer,
            RejectionStage::Eligibility,
            dimension,
        )),
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

/// A downgrade-tier offer moves the member one tier down their program: there must be a
/// tier below theirs, which the proposal then names.
fn tier_below(offer: &CatalogOffer, member: &MemberView) -> Result<(), OfferRejection> {
    let rule = "tier_below";
    match &member.tier_below {
        TierBelow::Tier(_) => Ok(()),
        _ if !member.explain => Err(super::unexplained(
            offer,
            RejectionStage::Eligibility,
            rule,
        )),
        TierBelow::Entry {
            program_id,
            tier_id,
        } => Err(reject(
            offer,
            RejectionStage::Eligibility,
            rule,
            tier_id,
            format!(
                "the member holds {tier_id}, the entry tier of {program_id}: there is no tier to move down to"
            ),
        )),
        TierBelow::Unknown => Err(reject(
            offer,
            RejectionStage::Eligibility,
            rule,
            "unknown",
            "a downgrade-tier offer names the tier below the member's, and the member's tier or program (loyalty.programs.v1) is unknown".to_owned(),
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
    // Member values are turned into text only for a list that is set: most offers set
    // few dimensions, and a decision looks at every offer in the catalog.
    let decile = || member.ltv_decile.map(|d| d.to_string());
    let cluster = || member.reason_cluster.map(|c| format!("{c:?}"));
    allow(
        member.explain,
        offer,
        "ltv_decile",
        &e.ltv_deciles.iter().map(i32::to_string).collect::<Vec<_>>(),
        if e.ltv_deciles.is_empty() {
            None
        } else {
            decile()
        }
        .as_deref(),
    )?;
    allow(
        member.explain,
        offer,
        "tenure_cohort",
        &e.tenure_cohorts,
        member.tenure_cohort(),
    )?;
    allow(
        member.explain,
        offer,
        "acquisition_channel",
        &e.acquisition_channels,
        p(|p| p.acquisition_channel.as_deref()),
    )?;
    allow(
        member.explain,
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
        member.explain,
        offer,
        "plan_tier",
        &e.plan_tiers,
        p(|p| p.plan_tier.as_deref()),
    )?;
    let state = p(|p| p.state.as_deref());
    allow(member.explain, offer, "state", &e.states, state)?;
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
        member.explain,
        offer,
        "country",
        &e.countries,
        p(|p| Some(p.country.as_str())),
    )?;
    let tier = member
        .state
        .as_ref()
        .and_then(|s| s.loyalty_tier.as_deref());
    allow(
        member.explain,
        offer,
        "loyalty_tier",
        &e.loyalty_tiers,
        tier,
    )?;
    allow(
        member.explain,
        offer,
        "payment_method",
        &e.payment_methods,
        p(|p| p.payment_method.as_deref()),
    )?;
    allow(
        member.explain,
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
    allow(
        member.explain,
        offer,
        "reason_cluster",
        &labels(&e.reason_clusters),
        if e.reason_clusters.is_empty() {
            None
        } else {
            cluster()
        }
        .as_deref(),
    )?;
    allow(
        member.explain,
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
    if offer.offer_type == OfferType::DowngradeTier {
        tier_below(offer, member)?;
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
    let explain = member.explain;
    if !c.retention_stages.is_empty() {
        let stage = format!("{:?}", moment.stage());
        let allowed = labels(&c.retention_stages);
        allow(
            explain,
            offer,
            "classification.retention_stage",
            &allowed,
            Some(&stage),
        )?;
    }
    let segment = member.cohort.map(|c| c.segment.label());
    allow(explain, offer, "classification.cohort", &c.cohorts, segment)?;
    if !c.reason_clusters.is_empty() {
        let cluster = member.reason_cluster.map(|c| format!("{c:?}"));
        let allowed = labels(&c.reason_clusters);
        allow(
            explain,
            offer,
            "classification.reason_cluster",
            &allowed,
            cluster.as_deref(),
        )?;
    }
    if !c.ltv_deciles.is_empty() {
        let decile = member.ltv_decile.map(|d| d.to_string());
        let allowed: Vec<String> = c.ltv_deciles.iter().map(i32::to_string).collect();
        allow(
            explain,
            offer,
            "classification.ltv_decile",
            &allowed,
            decile.as_deref(),
        )?;
    }
    Ok(())
}
