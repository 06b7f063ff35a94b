//! Members, consents and proposals as the gate's tests, the end-to-end tests and the
//! benchmarks build them: a New York member, their consents per channel, and a
//! proposal with a percent-off offer and its disclosures.

use chrono::{NaiveDate, TimeZone};
use loyalty_contracts::*;

/// Unix ms of a wall-clock time in New York (0 for one the zone skips or repeats).
pub fn new_york(y: i32, m: u32, d: u32, h: u32, min: u32) -> i64 {
    NaiveDate::from_ymd_opt(y, m, d)
        .and_then(|day| day.and_hms_opt(h, min, 0))
        .and_then(|wall| {
            chrono_tz::America::New_York
                .from_local_datetime(&wall)
                .single()
        })
        .map_or(0, |t| t.timestamp_millis())
}

pub fn profile(member: &str) -> MemberProfile {
    MemberProfile {
        member_id: member.into(),
        program_id: "p".into(),
        enrolled_at: Timestamp(0),
        birth_date: Date::from_ymd(1980, 5, 1),
        country: "US".into(),
        region: Some("US-NY".into()),
        postal_code: None,
        time_zone: "America/New_York".into(),
        locale: "en-US".into(),
        currency: "USD".into(),
        objects_to_profiling: false,
        updated_at: Timestamp(0),
        acquisition_channel: None,
        payment_method: None,
        billing_frequency: None,
        borrower_status: None,
        vertical: None,
        plan_tier: None,
        reenrolled_at: None,
    }
}

pub fn consents(member: &str, given: &[(Channel, ConsentStatus)]) -> MemberConsents {
    MemberConsents {
        member_id: member.into(),
        channels: given
            .iter()
            .map(|&(channel, status)| ChannelConsent {
                channel,
                status,
                changed_at: Timestamp(0),
                source: "checkout".into(),
                proof_ref: Some("form-1".into()),
            })
            .collect(),
        parental_consent_verified: false,
        updated_at: Timestamp(0),
    }
}

pub fn proposal(member: &str, id: &str, offer_type: OfferType, at: i64) -> OfferProposal {
    let money = |mean| MoneyInterval {
        mean_minor: mean,
        low_minor: mean / 2,
        high_minor: mean * 2,
        level: 0.8,
    };
    OfferProposal {
        proposal_id: id.into(),
        member_id: member.into(),
        trigger: ProposalTrigger::Opportunity,
        trigger_id: format!("opportunity-{id}"),
        opportunity_kind: None,
        reason_cluster: None,
        decided_at: Timestamp(at),
        offer: Some(ChosenOffer {
            offer_id: "stripe:SAVE20".into(),
            version_id: 3,
            vendor: "stripe".into(),
            offer_type,
            experiment_id: None,
            arm: None,
            policy: None,
            expected_incremental_ltv: money(4_000),
            expected_cost: money(500),
            currency: "USD".into(),
            budget_id: None,
            expires_at: None,
            content: LocalisedContent {
                country: "US".into(),
                language: "en".into(),
                currency: "USD".into(),
                title: "20% off your next box".into(),
                body: "Stay with us".into(),
                value_minor: 600,
                disclosure: Some("Renews monthly at the regular price.".into()),
                cancellation_rule: Some("Cancel online any time.".into()),
                tax_inclusive: false,
                tax_rate_bp: None,
                return_policy: None,
                template_id: Some("winback".into()),
                asset_url: None,
                code: Some("SAVE20".into()),
            },
            compliance: ComplianceAttributes::default(),
            channels: None,
        }),
        rejections: vec![],
        rejected_offers: 0,
        rejection_tally: vec![],
        stacking_explanation: String::new(),
        held_offers: vec![],
        ltv_relied_on: Some(LtvReference {
            as_of: Timestamp(at - 86_400_000),
            output_hash: "ab".repeat(32),
        }),
        tier_change: None,
    }
}
