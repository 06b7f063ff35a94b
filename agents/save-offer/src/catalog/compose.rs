//! One canonical offer from what the vendor said and what the operator set: the
//! normalised vendor document, overlaid part by part with the operator's policy, then
//! checked. A check that fails names every problem, and the record goes to the DLQ with
//! them; the catalog keeps the offer's previous version.

use loyalty_contracts::{CatalogOffer, Confidence, OfferPolicy, OfferVersion, VendorOffer};
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::vendors::{self, NormaliseError, Normalised};
use crate::money;
use crate::select::MAX_CYCLES;

/// The member attributes an experiment may stratify by.
pub const STRATA: [&str; 7] = [
    "country",
    "state",
    "plan_tier",
    "segment",
    "tier",
    "reason_cluster",
    "ltv_decile",
];

/// Why a vendor offer (with its policy) did not make a catalog entry.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ComposeError {
    #[error(transparent)]
    Normalise(#[from] NormaliseError),
    #[error("invalid offer: {}", .0.join("; "))]
    Invalid(Vec<String>),
}

/// Largest vendor document accepted: real offer documents are a few kilobytes, and the
/// catalog keeps the document and the offer made of it in one changelog entry.
pub const MAX_DOCUMENT_BYTES: usize = 256 * 1024;

/// The offer id a vendor offer is filed under, and the record key it must have.
pub fn offer_id(vendor: &str, vendor_offer_id: &str) -> String {
    format!("{vendor}:{vendor_offer_id}")
}

/// Hex SHA-256.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The canonical offer, without its version (the catalog's version history decides it).
pub fn compose(
    offer: &VendorOffer,
    policy: Option<&OfferPolicy>,
) -> Result<CatalogOffer, ComposeError> {
    if offer.document_json.len() > MAX_DOCUMENT_BYTES {
        return Err(ComposeError::Invalid(vec![format!(
            "the vendor document is {} bytes (at most {MAX_DOCUMENT_BYTES})",
            offer.document_json.len()
        )]));
    }
    let document: Value = serde_json::from_str(&offer.document_json)
        .map_err(|e| NormaliseError::NotJson(e.to_string()))?;
    let normalised = vendors::normalise(&offer.vendor, &document, offer.store_currency.as_deref())?;
    let vendor_fields_json = vendors::unused_fields(&document, &normalised.used);
    let Normalised {
        title,
        offer_type,
        mut value,
        content,
        eligibility,
        stacking,
        mut expiration,
        compliance,
        starts_at,
        ends_at,
        used: _,
    } = normalised;
    // An offer that states no amount of its own (a free product, a call) still costs
    // the operator something, in the shop's currency.
    if value.currency.is_empty()
        && let Some(store) = offer
            .store_currency
            .as_deref()
            .filter(|c| money::is_currency(c))
    {
        value.currency = store.to_owned();
    }
    // The vendor's end date is the offer's expiry unless it states one itself.
    if expiration.expires_on.is_none() {
        expiration.expires_on = ends_at.map(|t| t.day());
    }
    let mut composed = CatalogOffer {
        offer_id: offer_id(&offer.vendor, &offer.vendor_offer_id),
        vendor: offer.vendor.clone(),
        vendor_offer_id: offer.vendor_offer_id.clone(),
        brand_id: None,
        portfolio: None,
        title,
        offer_type,
        value: {
            if value.confidence == Confidence::Default {
                value.confidence = Confidence::Vendor;
            }
            value
        },
        classification: Default::default(),
        content,
        eligibility,
        caps: Default::default(),
        stacking,
        expiration,
        localisations: Vec::new(),
        compliance,
        experiment: None,
        channels: None,
        version: OfferVersion {
            version_id: 0,
            superseded_by: None,
            effective_from: starts_at.unwrap_or(offer.received_at),
            effective_to: ends_at,
            changelog: Vec::new(),
            legal_hold: false,
            audit_snapshot_sha256: String::new(),
        },
        vendor_fields_json,
        vendor_document_sha256: sha256_hex(offer.document_json.as_bytes()),
    };
    if let Some(policy) = policy {
        overlay(&mut composed, policy);
    }
    let problems = problems(&composed);
    if problems.is_empty() {
        Ok(composed)
    } else {
        Err(ComposeError::Invalid(problems))
    }
}

/// The operator's settings replace the vendor's, part by part.
fn overlay(offer: &mut CatalogOffer, policy: &OfferPolicy) {
    fn operator<T>(part: &Option<T>, set: impl FnOnce(T), mark: impl FnOnce(&mut T))
    where
        T: Clone,
    {
        if let Some(part) = part {
            let mut part = part.clone();
            mark(&mut part);
            set(part);
        }
    }
    if policy.brand_id.is_some() {
        offer.brand_id.clone_from(&policy.brand_id);
    }
    if policy.portfolio.is_some() {
        offer.portfolio.clone_from(&policy.portfolio);
    }
    if policy.channels.is_some() {
        offer.channels.clone_from(&policy.channels);
    }
    if let Some(offer_type) = policy.offer_type {
        offer.offer_type = offer_type;
    }
    if let Some(cost) = policy.fixed_cost_minor {
        offer.value.fixed_cost_minor = cost;
    }
    operator(
        &policy.classification,
        |p| offer.classification = p,
        |p| p.confidence = Confidence::Operator,
    );
    operator(
        &policy.content,
        |p| offer.content = p,
        |p| p.confidence = Confidence::Operator,
    );
    operator(
        &policy.eligibility,
        |p| offer.eligibility = p,
        |p| p.confidence = Confidence::Operator,
    );
    operator(
        &policy.caps,
        |p| offer.caps = p,
        |p| p.confidence = Confidence::Operator,
    );
    operator(
        &policy.stacking,
        |p| offer.stacking = p,
        |p| p.confidence = Confidence::Operator,
    );
    operator(
        &policy.expiration,
        |p| offer.expiration = p,
        |p| p.confidence = Confidence::Operator,
    );
    operator(&policy.compliance, |p| offer.compliance = p, |_| {});
    if !policy.localisations.is_empty() {
        offer.localisations.clone_from(&policy.localisations);
    }
    if policy.experiment.is_some() {
        offer.experiment.clone_from(&policy.experiment);
    }
}

/// Everything wrong with a composed offer, each problem in words.
pub fn problems(offer: &CatalogOffer) -> Vec<String> {
    let mut problems = Vec::new();
    let mut non_negative = |what: &str, amount: Option<i64>| {
        if let Some(amount) = amount.filter(|a| *a < 0) {
            problems.push(format!("{what} is negative ({amount})"));
        }
    };
    let v = &offer.value;
    non_negative("fixed_cost_minor", Some(v.fixed_cost_minor));
    non_negative("amount_off_minor", v.amount_off_minor);
    non_negative("max_discount_minor", v.max_discount_minor);
    non_negative("min_order_minor", v.min_order_minor);
    non_negative("points", v.points);
    let caps = &offer.caps;
    non_negative("fulfilment_cost_minor", caps.fulfilment_cost_minor);
    if let Some(budget) = &caps.budget {
        non_negative("budget ceiling_minor", budget.ceiling_minor);
        non_negative("budget ceiling_redemptions", budget.ceiling_redemptions);
    }
    if let Some(burn) = &caps.burn_rate {
        non_negative("burn_rate max_minor_per_day", Some(burn.max_minor_per_day));
    }
    non_negative("per_cart_cap_minor", offer.stacking.per_cart_cap_minor);
    non_negative("redemption_cap", offer.expiration.redemption_cap);
    non_negative("cohort_cap", offer.expiration.cohort_cap);
    let needs_currency = v.amount_off_minor.is_some()
        || v.max_discount_minor.is_some()
        || v.min_order_minor.is_some()
        || v.fixed_cost_minor > 0
        || caps
            .budget
            .as_ref()
            .is_some_and(|b| b.ceiling_minor.is_some());
    if needs_currency && !money::is_currency(&v.currency) {
        problems.push(format!(
            "value currency {:?} is not an ISO 4217 currency, and the offer states amounts",
            v.currency
        ));
    } else if !v.currency.is_empty() && !money::is_currency(&v.currency) {
        problems.push(format!(
            "value currency {:?} is not an ISO 4217 currency",
            v.currency
        ));
    }
    for l in &offer.localisations {
        if !money::is_currency(&l.currency) {
            problems.push(format!(
                "localisation {}-{}: currency {:?} is not an ISO 4217 currency",
                l.language, l.country, l.currency
            ));
        }
    }
    for (what, bp) in [
        ("percent_off_bp", v.percent_off_bp),
        ("margin_bound_bp", caps.margin_bound_bp),
        ("cogs_share_bp", caps.cogs_share_bp),
        ("payment_fee_bp", caps.payment_fee_bp),
        ("per_product_cap_bp", offer.stacking.per_product_cap_bp),
    ] {
        if let Some(bp) = bp.filter(|bp| !(0..=10_000).contains(bp)) {
            problems.push(format!("{what} is outside 0..=10000 ({bp})"));
        }
    }
    if let Some(zone) = &offer.expiration.time_zone
        && zone.parse::<chrono_tz::Tz>().is_err()
    {
        problems.push(format!("time zone {zone:?} is not an IANA time zone"));
    }
    if let Some(e) = &offer.experiment
        && !(0..=10_000).contains(&e.traffic_allocation_bp)
    {
        problems.push(format!(
            "experiment {} traffic_allocation_bp is outside 0..=10000 ({})",
            e.experiment_id, e.traffic_allocation_bp
        ));
    }
    if let Some(to) = offer.version.effective_to
        && to < offer.version.effective_from
    {
        problems.push(format!(
            "the offer ends ({}) before it starts ({})",
            to.0, offer.version.effective_from.0
        ));
    }
    if offer.title.trim().is_empty() {
        problems.push("title is empty".into());
    }
    let x = &offer.expiration;
    for (what, days) in [
        ("rolling_window_days", x.rolling_window_days),
        ("grace_days", x.grace_days),
        ("extension days", x.extension.as_ref().map(|e| e.days)),
        (
            "max_extensions",
            x.extension.as_ref().map(|e| e.max_extensions),
        ),
    ] {
        if let Some(days) = days.filter(|d| *d < 0) {
            problems.push(format!("{what} is negative ({days})"));
        }
    }
    for (what, cycles) in [
        ("duration_cycles", v.duration_cycles),
        ("pause_cycles", v.pause_cycles),
    ] {
        if let Some(n) = cycles.filter(|n| !(1..=MAX_CYCLES).contains(n)) {
            problems.push(format!("{what} is {n}, outside 1..={MAX_CYCLES}"));
        }
    }
    if let Some(cap) = offer.stacking.per_subscriber_cap.filter(|c| *c < 1) {
        problems.push(format!(
            "per_subscriber_cap is {cap}: no member could hold the offer"
        ));
    }
    for l in &offer.localisations {
        if let Some(bp) = l.tax_rate_bp.filter(|bp| !(0..=10_000).contains(bp)) {
            problems.push(format!(
                "localisation {}-{}: tax_rate_bp is outside 0..=10000 ({bp})",
                l.language, l.country
            ));
        }
    }
    if let Some(b) = &caps.budget
        && (b.budget_id.trim().is_empty() || b.budget_id.starts_with("offer:"))
    {
        // `offer:<id>` names an offer's own ledger.
        problems.push(format!(
            "budget id {:?} is empty or starts with \"offer:\"",
            b.budget_id
        ));
    }
    let has_ledger = caps.budget.is_some()
        || caps.burn_rate.is_some()
        || x.redemption_cap.is_some()
        || x.cohort_cap.is_some();
    if has_ledger && !money::is_currency(&v.currency) {
        problems.push(format!(
            "the offer has a budget or shared cap but no currency to charge it in ({:?})",
            v.currency
        ));
    }
    if let Some(e) = &offer.experiment {
        for attribute in &e.stratification {
            if !STRATA.contains(&attribute.as_str()) {
                problems.push(format!(
                    "experiment {} stratifies by {attribute:?}, which is not one of {STRATA:?}",
                    e.experiment_id
                ));
            }
        }
    }
    problems
}
