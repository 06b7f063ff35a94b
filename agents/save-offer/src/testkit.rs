//! Records for exercising save-offer outside a live swarm — its tests, its benchmarks and
//! `swarm demo`'s synthetic save flows: a member's joined inputs, triggers, catalog
//! offers and FX rates, each a plain value a test changes the one field it is about.

use loyalty_contracts::{
    Attestation, CancellationRequested, CatalogOffer, Classification, ComplianceAttributes,
    CostCaps, Counterfactual, Date, Eligibility, Expiration, FxRate, InterventionOpportunity,
    InterventionType, Lifecycle, MemberCohort, MemberEvent, MemberLtv, MemberProfile, OfferContent,
    OfferType, OfferValue, OfferVersion, OpportunityKind, Payload, Reconciliation, Segment,
    Stacking, Timestamp, TransitionType, ValueHorizons,
};

/// 2025-06-15T12:00:00Z: when the test members' triggers happen.
pub const NOW: i64 = 1_749_988_800_000;
pub const DAY: i64 = 86_400_000;

/// A US member's profile (California, English, USD), enrolled two years before NOW.
pub fn profile(member: &str) -> MemberProfile {
    MemberProfile {
        member_id: member.into(),
        program_id: "p".into(),
        enrolled_at: Timestamp(NOW - 800 * DAY),
        birth_date: None,
        country: "US".into(),
        region: Some("CA".into()),
        postal_code: Some("94107".into()),
        time_zone: "America/Los_Angeles".into(),
        locale: "en-US".into(),
        currency: "USD".into(),
        objects_to_profiling: false,
        updated_at: Timestamp(NOW - 800 * DAY),
        acquisition_channel: Some("social".into()),
        payment_method: Some("card".into()),
        billing_frequency: Some("monthly".into()),
        borrower_status: Some("none".into()),
        vertical: Some("coffee".into()),
        plan_tier: Some("plus".into()),
        reenrolled_at: None,
    }
}

/// A member's cohort record: at risk and lapsing.
pub fn cohort(member: &str) -> MemberCohort {
    MemberCohort {
        member_id: member.into(),
        as_of: Timestamp(NOW - DAY),
        recency_score: 2,
        frequency_score: 3,
        monetary_score: 3,
        segment: Segment::AtRisk,
        lifecycle: Lifecycle::Lapsing,
        typical_interpurchase_days: 30.0,
        days_since_last_purchase: 60,
        acquisition_cohort: "2023-04".into(),
        first_purchase: Date(19_450),
        boundaries_version: "test".into(),
    }
}

/// A member's value: typical order `order_minor` USD, 12-month margin `margin_12m`,
/// lifetime margin `lifetime`, and `incremental` minor units of incremental margin (80%
/// interval ±75%) for every intervention type.
pub fn member_ltv(
    member: &str,
    order_minor: f64,
    margin_12m: i64,
    lifetime: i64,
    incremental: i64,
) -> MemberLtv {
    let zero = ValueHorizons {
        revenue_12m_minor: 0,
        margin_12m_minor: margin_12m,
        revenue_36m_minor: 0,
        margin_36m_minor: 0,
        lifetime_revenue_minor: 0,
        lifetime_margin_minor: lifetime,
    };
    MemberLtv {
        member_id: member.into(),
        as_of: Timestamp(NOW - DAY),
        currency: Some("USD".into()),
        missing_inputs: Vec::new(),
        model_segment: "all".into(),
        p_alive: Some(1.0),
        expected_order_value_minor: Some(order_minor),
        margin_ratio: 0.4,
        baseline: zero,
        decay_curve: Vec::new(),
        points_liability_minor: 0,
        adjustments: Vec::new(),
        adjusted_lifetime_margin_minor: lifetime,
        counterfactuals: InterventionType::ALL
            .iter()
            .map(|&intervention| Counterfactual {
                intervention,
                baseline_minor: lifetime,
                intervention_minor: lifetime + incremental,
                incremental_minor: incremental,
                incremental_low_minor: incremental / 4,
                incremental_high_minor: incremental * 7 / 4,
                uplift: 0.05,
                uplift_sd: 0.02,
                outcomes_observed: 100,
                prior_share: 0.1,
            })
            .collect(),
        reconciliation: Reconciliation {
            own_history_minor: None,
            tier_forecast_minor: None,
            cohort_minor: None,
            reconciled_minor: 0,
            coherence: 1.0,
            discrepancies: Vec::new(),
            tolerance: 0.5,
        },
        attestation: Attestation {
            model_version: String::new(),
            parameter_hash: String::new(),
            inputs: Vec::new(),
            // Not a real attestation: a value a proposal can be seen to carry.
            output_hash: "ab".repeat(32),
            attested_at: Timestamp(NOW - DAY),
            attestor: "test".into(),
            key_id: String::new(),
            rationale: String::new(),
            signature: String::new(),
        },
    }
}

/// The record ltv writes for a member before any fit can score them: their currency,
/// but no baseline (no expected order value, P(alive) or model segment).
pub fn unvalued_ltv(member: &str) -> MemberLtv {
    MemberLtv {
        model_segment: String::new(),
        p_alive: None,
        expected_order_value_minor: None,
        ..member_ltv(member, 0.0, 0, 0, 0)
    }
}

/// A reactivation opportunity for `member` at `at`.
pub fn opportunity(member: &str, id: &str, at: i64) -> InterventionOpportunity {
    InterventionOpportunity {
        opportunity_id: format!("{member}:reactivation_offer:{id}"),
        member_id: member.into(),
        program_id: "p".into(),
        kind: OpportunityKind::ReactivationOffer,
        transition: TransitionType::DownTier,
        probability: 0.7,
        threshold: 0.5,
        as_of: Timestamp(at),
        act_before: Timestamp(at + 30 * DAY),
        tier_id: "gold".into(),
        amount_gap: None,
    }
}

/// A member on the cancel page, saying why.
pub fn cancellation(member: &str, event_id: &str, reason: &str, at: i64) -> MemberEvent {
    MemberEvent {
        event_id: event_id.into(),
        member_id: member.into(),
        brand_id: "b".into(),
        occurred_at: Timestamp(at),
        source: "web".into(),
        source_member_id: None,
        payload: Payload::CancellationRequested(CancellationRequested {
            subscription_id: format!("sub-{member}"),
            reason_code: None,
            reason_text: Some(reason.into()),
            channel: "web".into(),
        }),
    }
}

/// `percent` off from `vendor`, USD, in effect since a year before NOW: an offer as the
/// catalog publishes it.
pub fn offer(vendor: &str, id: &str, offer_type: OfferType, percent: i32) -> CatalogOffer {
    CatalogOffer {
        offer_id: format!("{vendor}:{id}"),
        vendor: vendor.into(),
        vendor_offer_id: id.into(),
        brand_id: None,
        portfolio: None,
        title: format!("{} {id}", offer_type.label()),
        offer_type,
        value: OfferValue {
            percent_off_bp: (percent > 0).then_some(percent * 100),
            currency: "USD".into(),
            ..OfferValue::default()
        },
        classification: Classification::default(),
        content: OfferContent::default(),
        eligibility: Eligibility::default(),
        caps: CostCaps::default(),
        stacking: Stacking::default(),
        expiration: Expiration::default(),
        localisations: Vec::new(),
        compliance: ComplianceAttributes::default(),
        experiment: None,
        channels: None,
        version: OfferVersion {
            version_id: 1,
            superseded_by: None,
            effective_from: Timestamp(NOW - 365 * DAY),
            effective_to: None,
            changelog: vec!["first version".into()],
            legal_hold: false,
            audit_snapshot_sha256: String::new(),
        },
        vendor_fields_json: "{}".into(),
        vendor_document_sha256: String::new(),
    }
}

/// An FX rate against USD.
pub fn fx(currency: &str, rate: f64) -> FxRate {
    FxRate {
        currency: currency.into(),
        base: "USD".into(),
        rate,
        as_of: Timestamp(NOW - DAY),
    }
}
