//! A plain offer and a plain member for the selection tests: each test changes the one
//! thing it is about and checks that the stage rejects (or changes) the proposal, with
//! the explanation it gives.

use std::collections::BTreeMap;

use loyalty_contracts::{
    CatalogOffer, Lifecycle, OfferRejection, OfferType, Segment, StackRule, Timestamp,
};

use crate::member::{
    CohortFacts, HeldOffer, Incremental, LtvFacts, MemberView, ProfileFacts, StateFacts, TierBelow,
};
use crate::money::Rates;

pub use crate::testkit::{DAY, NOW};

pub struct Fx(pub Vec<(&'static str, f64)>);

impl Rates for Fx {
    fn rate(&self, currency: &str) -> Option<f64> {
        self.0.iter().find(|(c, _)| *c == currency).map(|(_, r)| *r)
    }
}

pub fn fx() -> Fx {
    Fx(vec![
        ("USD", 1.0),
        ("EUR", 0.9),
        ("GBP", 0.8),
        ("JPY", 150.0),
    ])
}

/// 15% off, USD, from vendor "stripe", in effect since a year before NOW.
pub fn offer(id: &str) -> CatalogOffer {
    crate::testkit::offer("stripe", id, OfferType::PercentOff, 15)
}

/// A US member in California, two years in, typical order 50.00 USD, 12-month margin
/// 300.00 USD, incremental LTV 40.00 USD for every intervention type.
pub fn member() -> MemberView {
    let incremental = Incremental {
        mean: 4_000,
        low: 1_000,
        high: 7_000,
    };
    MemberView {
        member_id: "m1".into(),
        now: Timestamp(NOW),
        profile: Some(ProfileFacts {
            country: "US".into(),
            state: Some("US-CA".into()),
            postal_code: Some("94107".into()),
            language: "en".into(),
            currency: "USD".into(),
            time_zone: "America/Los_Angeles".into(),
            enrolled_at: Timestamp(NOW - 800 * DAY),
            program_id: "p".into(),
            acquisition_channel: Some("social".into()),
            payment_method: Some("card".into()),
            billing_frequency: Some("monthly".into()),
            borrower_status: Some("none".into()),
            vertical: Some("coffee".into()),
            plan_tier: Some("plus".into()),
        }),
        state: Some(StateFacts {
            loyalty_tier: Some("gold".into()),
            first_purchase: Some(Timestamp(NOW - 800 * DAY)),
            as_of: Timestamp(NOW),
        }),
        cohort: Some(CohortFacts {
            segment: Segment::AtRisk,
            lifecycle: Lifecycle::Lapsing,
        }),
        ltv: Some(LtvFacts {
            as_of_ms: 0,
            output_hash: String::new(),
            currency: "USD".into(),
            expected_order_value_minor: Some(5_000.0),
            margin_ratio: 0.4,
            margin_12m_minor: 30_000,
            adjusted_lifetime_margin_minor: 90_000,
            p_alive: Some(1.0),
            incremental: loyalty_contracts::InterventionType::ALL
                .iter()
                .map(|t| (t.label().to_owned(), incremental))
                .collect::<BTreeMap<_, _>>(),
        }),
        ltv_decile: Some(7),
        product_lines: vec!["espresso".into()],
        prior_redemptions: 1,
        reason_cluster: None,
        held: Vec::new(),
        tier_below: TierBelow::Tier(loyalty_contracts::TierChange {
            program_id: "p".into(),
            from_tier_id: "gold".into(),
            to_tier_id: "silver".into(),
        }),
        explain: true,
    }
}

/// An offer the member holds: 10% off from `vendor`, additive, until NOW + 10 days.
pub fn held(id: &str, vendor: &str) -> HeldOffer {
    HeldOffer {
        proposal_id: format!("proposal-{id}"),
        offer_id: format!("{vendor}:{id}"),
        version_id: 1,
        vendor: vendor.into(),
        offer_type: OfferType::PercentOff,
        rule: StackRule::Additive,
        stack_group: None,
        loyalty_program_id: None,
        referral_program_id: None,
        product_lines: Vec::new(),
        percent_off_bp: Some(1000),
        amount_off_minor: 0,
        value_to_member_minor: 500,
        held_since: Timestamp(NOW - DAY),
        expires_at: Some(Timestamp(NOW + 10 * DAY)),
        grace_until: None,
        extensions: 0,
        suppress_on: Vec::new(),
        replaces: Vec::new(),
        arm_key: None,
        arm_probability: 1.0,
        context: Vec::new(),
        rewarded: false,
        redeemed: false,
        shown: None,
    }
}

/// The rejection of `offer` for `member`, which the test expects.
#[track_caller]
pub fn rejection(offer: &CatalogOffer, member: &MemberView) -> OfferRejection {
    match super::evaluate(
        &std::sync::Arc::new(offer.clone()),
        member,
        super::Moment::Cancellation,
        &fx(),
    ) {
        Err(r) => r,
        Ok(e) => panic!(
            "expected a rejection, got an eligible offer scoring {}",
            e.score()
        ),
    }
}

/// The offer, eligible for the member.
#[track_caller]
pub fn eligible(offer: &CatalogOffer, member: &MemberView) -> super::Eligible {
    match super::evaluate(
        &std::sync::Arc::new(offer.clone()),
        member,
        super::Moment::Cancellation,
        &fx(),
    ) {
        Ok(e) => e,
        Err(r) => panic!("expected an eligible offer, got {r:?}"),
    }
}
