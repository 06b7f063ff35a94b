//! The ltv agent's `handle` on real encoded inputs: the join reports missing sides, the
//! reconciliation names the view that disagrees, outcomes count once, bad records are
//! rejected, and every byte of a signed record is covered by its attestation.

use btyd::params::MODEL_PARAMS;
use loyalty_contracts::{
    AdjustmentKind, InterventionOutcome, InterventionResult, MemberEvent, MemberLtv, Payload,
    Segment, Timestamp, catalog, tables, topics,
};
use loyalty_runtime::codec::decode;
use loyalty_runtime::{Agent, HandleError, Harness, Population, Record, Topic};
use ltv::attest::{self, Canonical};
use ltv::population::{PopulationSummary, ValueSum};
use ltv::testkit::{cdnow_model, cohort, forecasts, member, program};
use ltv::{Ltv, MemberJoin, Settings};

const SEED: &str = "4242424242424242424242424242424242424242424242424242424242424242";

struct Rig {
    agent: Ltv,
    harness: Harness<Ltv>,
    _key: tempfile::NamedTempFile,
}

fn rig(values: &[(&str, i64)]) -> Rig {
    let key = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(key.path(), SEED).unwrap();
    let agent = Ltv::new(&Settings {
        signing_key_file: Some(key.path().to_owned()),
        ..Settings::default()
    });
    let mut harness = Harness::new(&agent).unwrap();
    harness.put_table(&MODEL_PARAMS, "all", cdnow_model("all-v1"));
    harness.put_table(&MODEL_PARAMS, "tier:gold", {
        let mut m = cdnow_model("gold-v1");
        m.purchases.b *= 2.0; // gold members drop out less often
        m
    });
    harness.put_table(&tables::PROGRAMS, "p", program());
    // Another partition's members: 100 per group with the given mean 12-month revenue.
    let mut other = PopulationSummary::default();
    for (group, mean) in values {
        other.values.insert(
            (*group).into(),
            ValueSum {
                members: 100,
                revenue_12m_minor: mean * 100,
                lifetime_margin_minor: mean * 100,
            },
        );
    }
    harness.population = Population {
        partitions: [(1, other)].into_iter().collect(),
        generation: 1,
    };
    Rig {
        agent,
        harness,
        _key: key,
    }
}

impl Rig {
    fn feed<T: serde::Serialize + apache_avro::AvroSchema + 'static>(
        &mut self,
        topic: &Topic<T>,
        key: &str,
        offset: i64,
        value: &T,
        state: &mut Option<MemberJoin>,
    ) -> Result<Option<MemberLtv>, HandleError> {
        let record = Record::new(topic, key, value).unwrap().at(offset);
        self.harness.emitted.clear();
        let mut ctx = self.harness.context();
        self.agent.handle(&record.input(), state, &mut ctx)?;
        Ok(self
            .harness
            .emitted
            .iter()
            .rfind(|e| e.topic == topics::MEMBER_LTV)
            .and_then(|e| e.payload.as_ref())
            .map(|p| decode(&ltv_schema(), &p[5..]).unwrap()))
    }
}

fn ltv_schema() -> apache_avro::Schema {
    <MemberLtv as apache_avro::AvroSchema>::get_schema()
}

#[test]
fn each_side_is_joined_as_it_arrives_and_says_what_is_missing() {
    let mut rig = rig(&[
        ("tier:gold", 9_000),
        ("tier:silver", 7_000),
        ("segment:loyal", 8_000),
    ]);
    let m = member("m1", 6, 30, 20, 4_000, "gold");
    let mut state = None;
    let first = rig
        .feed(&catalog::MEMBER_STATE, "m1", 10, &m, &mut state)
        .unwrap()
        .unwrap();
    assert_eq!(first.missing_inputs, ["tier_forecasts", "cohorts"]);
    assert!(first.p_alive.unwrap() > 0.5);
    assert_eq!(first.decay_curve.len(), 36);
    assert_eq!(first.adjustments.len(), 8);
    assert_eq!(first.counterfactuals.len(), 6);
    assert_eq!(first.attestation.inputs.len(), 1);
    assert_eq!(first.attestation.inputs[0].offset, 10);
    assert_eq!(first.attestation.model_version, "all-v1");
    // Gold's own fit keeps members longer: the tier adjustment is positive.
    let tier = &first.adjustments[0];
    assert_eq!(tier.kind, AdjustmentKind::TierMultiplier);
    assert!(tier.value_minor > 0 && tier.factor > 1.0, "{tier:?}");
    // Points: a liability at face value, and costs in the adjustments.
    assert_eq!(first.points_liability_minor, m.points.balance);
    assert!(first.adjustments[1].value_minor < 0);
    let sum: i64 = first.adjustments.iter().map(|a| a.value_minor).sum();
    assert_eq!(
        first.adjusted_lifetime_margin_minor,
        first.baseline.lifetime_margin_minor + sum
    );

    let f = forecasts(&m, (0.0, "gold"), (0.1, "silver"));
    let second = rig
        .feed(&catalog::TIER_FORECASTS, "m1", 3, &f, &mut state)
        .unwrap()
        .unwrap();
    assert_eq!(second.missing_inputs, ["cohorts"]);
    // 0.9 x gold's 9,000 + 0.1 x silver's 7,000.
    assert_eq!(second.reconciliation.tier_forecast_minor, Some(8_800));

    let c = cohort(&m, Segment::Loyal);
    let third = rig
        .feed(&catalog::COHORTS, "m1", 5, &c, &mut state)
        .unwrap()
        .unwrap();
    assert!(third.missing_inputs.is_empty());
    assert_eq!(third.reconciliation.cohort_minor, Some(8_000));
    let topics_joined: Vec<&str> = third
        .attestation
        .inputs
        .iter()
        .map(|i| i.topic.as_str())
        .collect();
    assert_eq!(
        topics_joined,
        [
            topics::MEMBER_STATE,
            topics::TIER_FORECASTS,
            topics::COHORTS
        ]
    );
}

#[test]
fn members_whose_views_disagree_are_flagged_and_agreeing_ones_are_not() {
    // Own history first, to learn this member's 12-month value.
    let probe = {
        let mut rig = rig(&[]);
        let m = member("m1", 6, 30, 20, 4_000, "gold");
        rig.feed(&catalog::MEMBER_STATE, "m1", 1, &m, &mut None)
            .unwrap()
            .unwrap()
            .baseline
            .revenue_12m_minor
    };
    let m = member("m1", 6, 30, 20, 4_000, "gold");
    let run = |tier_mean: i64, cohort_mean: i64| {
        let mut rig = rig(&[("tier:gold", tier_mean), ("segment:champions", cohort_mean)]);
        let mut state = None;
        rig.feed(&catalog::MEMBER_STATE, "m1", 1, &m, &mut state)
            .unwrap();
        rig.feed(
            &catalog::TIER_FORECASTS,
            "m1",
            1,
            &forecasts(&m, (0.0, "gold"), (0.0, "silver")),
            &mut state,
        )
        .unwrap();
        rig.feed(
            &catalog::COHORTS,
            "m1",
            1,
            &cohort(&m, Segment::Champions),
            &mut state,
        )
        .unwrap()
        .unwrap()
        .reconciliation
    };
    let agreeing = run(probe * 11 / 10, probe * 9 / 10);
    assert!(agreeing.discrepancies.is_empty(), "{agreeing:?}");
    assert!(agreeing.coherence > 0.9);

    let cohort_off = run(probe, probe / 5);
    let named: Vec<&str> = cohort_off
        .discrepancies
        .iter()
        .map(|d| d.between.as_str())
        .collect();
    assert_eq!(named, ["own_history_vs_cohort", "tier_forecast_vs_cohort"]);

    let tier_off = run(probe * 4, probe);
    let named: Vec<&str> = tier_off
        .discrepancies
        .iter()
        .map(|d| d.between.as_str())
        .collect();
    assert_eq!(
        named,
        ["own_history_vs_tier_forecast", "tier_forecast_vs_cohort"]
    );
}

fn outcome(
    id: &str,
    kind: &str,
    result: InterventionResult,
    value: Option<i64>,
    holdout: bool,
) -> MemberEvent {
    MemberEvent {
        event_id: format!("{id}-{result:?}"),
        member_id: "m1".into(),
        brand_id: "b".into(),
        occurred_at: Timestamp(0),
        source: "esp".into(),
        source_member_id: None,
        payload: Payload::InterventionOutcome(InterventionOutcome {
            intervention_id: id.into(),
            intervention_type: kind.into(),
            result,
            value_minor: value,
            holdout: Some(holdout),
        }),
    }
}

#[test]
fn outcomes_count_once_per_intervention_and_bad_ones_are_rejected() {
    let mut rig = rig(&[]);
    let mut state = None;
    let events = [
        outcome("i1", "offer", InterventionResult::Delivered, None, false),
        outcome(
            "i1",
            "offer",
            InterventionResult::Converted,
            Some(5_000),
            false,
        ),
        // A duplicate delivery of the conversion changes nothing.
        outcome(
            "i1",
            "offer",
            InterventionResult::Converted,
            Some(5_000),
            false,
        ),
        outcome("i2", "offer", InterventionResult::Delivered, None, true),
    ];
    for (i, e) in events.iter().enumerate() {
        let emitted = rig
            .feed(&catalog::MEMBER_EVENTS, "m1", i as i64, e, &mut state)
            .unwrap();
        assert!(emitted.is_none(), "outcomes alone do not re-score");
    }
    let summary = &rig.harness.summary;
    let arms = summary.outcomes["offer"];
    assert_eq!((arms.treated.n, arms.treated.sum), (1, 5_000));
    assert_eq!(arms.treated.sum_sq, 25_000_000);
    assert_eq!((arms.holdout.n, arms.holdout.sum), (1, 0));

    for bad in [
        outcome(
            "i3",
            "coupon_blast",
            InterventionResult::Delivered,
            None,
            false,
        ),
        outcome(
            "i4",
            "offer",
            InterventionResult::Converted,
            Some(-1),
            false,
        ),
        // i1 was treated; it cannot turn into a hold-out.
        outcome("i1", "offer", InterventionResult::Opened, None, true),
    ] {
        assert!(matches!(
            rig.feed(&catalog::MEMBER_EVENTS, "m1", 9, &bad, &mut state),
            Err(HandleError::Rejected(_))
        ));
    }
    // A member-state under another member's key breaks the contract.
    let stray = member("m2", 1, 10, 10, 100, "member");
    assert!(matches!(
        rig.feed(&catalog::MEMBER_STATE, "m1", 10, &stray, &mut state),
        Err(HandleError::Rejected(_))
    ));
}

#[test]
fn an_outcome_keyed_by_a_source_id_is_rekeyed_and_other_events_are_ignored() {
    let mut rig = rig(&[]);
    let mut state = None;
    let converted = outcome(
        "i1",
        "offer",
        InterventionResult::Converted,
        Some(900),
        false,
    );
    let mut order = converted.clone();
    order.payload = Payload::PointsEarned(loyalty_contracts::PointsEarned {
        points: 9,
        reason: "purchase".into(),
        qualifying: false,
    });
    for (event, rekeyed) in [(&converted, Some("m1")), (&order, None)] {
        let record = Record::new(&catalog::MEMBER_EVENTS, "esp-77", event).unwrap();
        let mut ctx = rig.harness.context();
        rig.agent
            .handle(&record.input(), &mut state, &mut ctx)
            .unwrap();
        assert_eq!(ctx.rekeyed(), rekeyed);
    }
    assert!(state.is_none(), "nothing applied under the source id");
}

#[test]
fn every_byte_of_a_signed_record_is_covered_and_another_key_is_detected() {
    let mut rig = rig(&[("tier:gold", 9_000)]);
    let m = member("m1", 6, 30, 20, 4_000, "gold");
    rig.feed(&catalog::MEMBER_STATE, "m1", 1, &m, &mut None)
        .unwrap()
        .unwrap();
    let framed = rig.harness.emitted.last().unwrap().payload.clone().unwrap();
    let body = &framed[5..];
    let key =
        ed25519_dalek::SigningKey::from_bytes(&attest::from_hex(SEED).unwrap().try_into().unwrap())
            .verifying_key();
    let canonical = Canonical::new().unwrap();
    let schema = ltv_schema();
    assert_eq!(
        attest::verify_body(&schema, body, &key, &canonical),
        Vec::<String>::new()
    );
    for i in 0..body.len() {
        let mut tampered = body.to_vec();
        tampered[i] ^= 0x01;
        assert!(
            !attest::verify_body(&schema, &tampered, &key, &canonical).is_empty(),
            "flipping byte {i} went unnoticed"
        );
    }
    let other = ed25519_dalek::SigningKey::from_bytes(&[7; 32]).verifying_key();
    let problems = attest::verify_body(&schema, body, &other, &canonical);
    assert!(
        problems
            .iter()
            .any(|p| p.contains("signature does not verify"))
    );
    assert!(problems.iter().any(|p| p.contains("signed with key")));
}

#[test]
fn an_erased_member_leaves_the_fit_rows_values_and_outcomes_as_if_never_seen() {
    let mut both = rig(&[]);
    let mut m1 = member("m1", 4, 30, 20, 5_000, "gold");
    m1.identity_links = vec!["esp:contact-9".into()];
    let m2 = member("m2", 2, 45, 60, 3_000, "member");
    let mut erased = None;
    let mut kept = None;
    both.feed(&catalog::MEMBER_STATE, "m1", 0, &m1, &mut erased)
        .unwrap();
    for (i, e) in [
        outcome(
            "i1",
            "offer",
            InterventionResult::Converted,
            Some(5_000),
            false,
        ),
        outcome("i2", "offer", InterventionResult::Delivered, None, true),
    ]
    .iter()
    .enumerate()
    {
        both.feed(&catalog::MEMBER_EVENTS, "m1", 1 + i as i64, e, &mut erased)
            .unwrap();
    }
    both.feed(&catalog::MEMBER_STATE, "m2", 0, &m2, &mut kept)
        .unwrap();
    let mut never = rig(&[]);
    let mut alone = None;
    never
        .feed(&catalog::MEMBER_STATE, "m2", 0, &m2, &mut alone)
        .unwrap();
    assert_ne!(both.harness.summary, never.harness.summary);

    let forgotten = both
        .agent
        .forget("m1", &erased, &mut both.harness.context())
        .unwrap();
    assert_eq!(forgotten.linked_ids, vec!["contact-9".to_owned()]);
    assert_eq!(
        forgotten.counts(),
        [
            ("summary:fit_rows_and_values", 1),
            ("summary:intervention_outcomes", 2)
        ]
    );
    // The newest day seen is the partition's high-water mark, not the member's.
    both.harness.summary.stream_day = never.harness.summary.stream_day;
    assert_eq!(both.harness.summary, never.harness.summary);
}
