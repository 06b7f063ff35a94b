//! Selection: every offer in the catalog is put through the same stages, in order —
//! version, eligibility (with classification), expiration, cost caps, localisation,
//! stacking — and the first stage that fails names the rule and the value that failed
//! it. What passes is priced (expected incremental LTV and expected cost, each with an
//! interval) and ranked by incremental LTV minus cost. Budgets and global caps are
//! decided afterwards, by the ledger that owns them (`crate::ledger`), and experiment
//! arms by the bandit (`crate::bandit`).
//!
//! Everything here is a pure function of the offer, the member and the FX table, so a
//! replay decides the same.

mod eligibility;
mod expiration;
mod localise;
mod pricing;
mod stacking;

use std::sync::Arc;

use loyalty_contracts::{
    CatalogOffer, LocalisedContent, MoneyInterval, OfferRejection, OpportunityKind, RejectionStage,
    RetentionStage, Timestamp,
};

pub use expiration::end_of_day;
pub use pricing::{MAX_CYCLES, Pricing, basis_points};

use crate::member::MemberView;
use crate::money::Rates;

/// What opened the save flow, as selection needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Moment {
    Opportunity(OpportunityKind),
    Cancellation,
}

impl Moment {
    /// The retention stage an offer's classification is matched against.
    pub fn stage(self) -> RetentionStage {
        match self {
            Moment::Cancellation => RetentionStage::Cancelling,
            Moment::Opportunity(OpportunityKind::ReactivationOffer) => RetentionStage::AtRisk,
            Moment::Opportunity(OpportunityKind::TopUpNudge | OpportunityKind::GraceExtension) => {
                RetentionStage::AtRisk
            }
            Moment::Opportunity(OpportunityKind::ThankYou | OpportunityKind::Bridge) => {
                RetentionStage::Active
            }
        }
    }
}

/// An offer that passed every stage, priced for the member.
#[derive(Debug, Clone, PartialEq)]
pub struct Eligible {
    pub offer: Arc<CatalogOffer>,
    pub pricing: Pricing,
    pub content: LocalisedContent,
    pub expires_at: Option<Timestamp>,
    pub grace_until: Option<Timestamp>,
    /// Held offers this one replaces (best-of).
    pub replaces: Vec<String>,
    /// The held proposal this one extends instead of being proposed anew.
    pub extends: Option<String>,
    pub stacking_explanation: String,
}

impl Eligible {
    /// Expected incremental LTV minus expected cost: what selection maximises.
    pub fn score(&self) -> i64 {
        self.pricing
            .incremental
            .mean_minor
            .saturating_sub(self.pricing.cost.mean_minor)
    }
}

/// A rejection at `stage` by rule `dimension`, for `value`, explained.
pub(crate) fn reject(
    offer: &CatalogOffer,
    stage: RejectionStage,
    dimension: &str,
    value: impl Into<String>,
    explanation: impl Into<String>,
) -> OfferRejection {
    OfferRejection {
        offer_id: offer.offer_id.clone(),
        version_id: offer.version.version_id,
        stage,
        dimension: dimension.to_owned(),
        value: value.into(),
        explanation: explanation.into(),
    }
}

/// A rejection counted but not explained: past the proposal's listing limit only the
/// stage and rule are kept, since formatting ten thousand explanations nobody reads was
/// most of a decision's time.
pub fn unexplained(offer: &CatalogOffer, stage: RejectionStage, dimension: &str) -> OfferRejection {
    OfferRejection {
        offer_id: offer.offer_id.clone(),
        version_id: offer.version.version_id,
        stage,
        dimension: dimension.to_owned(),
        value: String::new(),
        explanation: String::new(),
    }
}

/// Put one offer through every stage.
pub fn evaluate(
    offer: &Arc<CatalogOffer>,
    member: &MemberView,
    moment: Moment,
    rates: &impl Rates,
) -> Result<Eligible, OfferRejection> {
    version_in_effect(offer, member.now)?;
    eligibility::check(offer, member, moment)?;
    let window = expiration::window(offer, member)?;
    let currency = member.currency().ok_or_else(|| {
        reject(
            offer,
            RejectionStage::Localisation,
            "member_currency",
            "unknown",
            "the member has neither a profile nor an ltv record naming a currency",
        )
    })?;
    let pricing = pricing::price(offer, member, currency, rates)?;
    pricing::check_caps(offer, &pricing)?;
    let content = localise::content(offer, member, &pricing, rates)?;
    let stack = stacking::check(offer, member, &pricing)?;
    Ok(Eligible {
        offer: Arc::clone(offer),
        pricing,
        content,
        expires_at: window.expires_at,
        grace_until: window.grace_until,
        replaces: stack.replaces,
        extends: window.extends,
        stacking_explanation: stack.explanation,
    })
}

/// The version must be in effect at the moment of decision.
fn version_in_effect(offer: &CatalogOffer, now: Timestamp) -> Result<(), OfferRejection> {
    let v = &offer.version;
    if now < v.effective_from {
        return Err(reject(
            offer,
            RejectionStage::Version,
            "effective_from",
            v.effective_from.0.to_string(),
            format!(
                "version {} takes effect at {} ms, after the decision at {} ms",
                v.version_id, v.effective_from.0, now.0
            ),
        ));
    }
    if let Some(to) = v.effective_to.filter(|to| now > *to) {
        return Err(reject(
            offer,
            RejectionStage::Version,
            "effective_to",
            to.0.to_string(),
            format!("version {} ended at {} ms", v.version_id, to.0),
        ));
    }
    Ok(())
}

/// Every offer evaluated: the eligible ones best first (ties by offer id, so the order
/// never depends on the catalog's iteration order), and every rejection.
/// The first `explain_first` rejections (in offer-id order) carry their explanation;
/// later ones only their stage and rule.
pub fn rank<'a>(
    offers: impl IntoIterator<Item = &'a Arc<CatalogOffer>>,
    member: &MemberView,
    moment: Moment,
    rates: &impl Rates,
    explain_first: usize,
) -> (Vec<Eligible>, Vec<OfferRejection>) {
    let mut eligible = Vec::new();
    let mut rejected = Vec::new();
    let mut quiet: Option<MemberView> = None;
    for offer in offers {
        let view = if rejected.len() < explain_first {
            member
        } else {
            quiet.get_or_insert_with(|| MemberView {
                explain: false,
                ..member.clone()
            })
        };
        match evaluate(offer, view, moment, rates) {
            Ok(e) => eligible.push(e),
            Err(r) => rejected.push(r),
        }
    }
    eligible.sort_by(|a, b| {
        b.score()
            .cmp(&a.score())
            .then_with(|| a.offer.offer_id.cmp(&b.offer.offer_id))
    });
    rejected.sort_by(|a, b| a.offer_id.cmp(&b.offer_id));
    (eligible, rejected)
}

/// A money interval from three amounts.
pub(crate) fn interval(mean: i64, low: i64, high: i64) -> MoneyInterval {
    MoneyInterval {
        mean_minor: mean,
        low_minor: low.min(mean),
        high_minor: high.max(mean),
        level: 0.8,
    }
}

#[cfg(test)]
pub(crate) mod testkit;
#[cfg(test)]
mod tests;
