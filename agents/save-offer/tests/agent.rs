//! save-offer's `handle` on real encoded records: a cancellation request becomes a
//! proposal with its explanation; an offer under a budget goes through its ledger, which
//! grants up to the ceiling and then hands the claim to the next candidate; a proposal
//! seen becomes a held offer, pinned, that stacking and suppression respect; outcomes
//! teach the bandit; a downgrade-tier offer names the tier below from the programs
//! table; bad records are rejected.

use loyalty_contracts::{
    Budget, Channel, Experiment, InterventionOutcome, InterventionResult, MemberEvent,
    OfferProposal, OfferType, OrderPlaced, Payload, RejectionStage, StackRule, SuppressionTrigger,
    Timestamp, catalog, topics,
};
use loyalty_contracts::{Program, TierChange, tables};
use loyalty_runtime::codec::decode;
use loyalty_runtime::{Agent, HandleError, Harness, Record, Topic};
use save_offer::agent::CLAIMS;
use save_offer::agent::state::Entry;
use save_offer::ledger::LedgerClaim;
use save_offer::tables::{CATALOG, FX_RATES};
use save_offer::testkit::*;
use save_offer::{SaveOffer, Settings};

struct Rig {
    agent: SaveOffer,
    harness: Harness<SaveOffer>,
    offset: i64,
}

fn rig(offers: Vec<loyalty_contracts::CatalogOffer>) -> Rig {
    let agent = SaveOffer::new(&Settings::default());
    let harness = Harness::new(&agent).expect("harness");
    for o in offers {
        harness.put_table(&CATALOG, &o.offer_id.clone(), o);
    }
    harness.put_table(&FX_RATES, "USD", fx("USD", 1.0));
    harness.put_table(&FX_RATES, "EUR", fx("EUR", 0.9));
    Rig {
        agent,
        harness,
        offset: 0,
    }
}

impl Rig {
    /// Handle one record; what it emitted, as (topic, key, payload).
    fn feed<T: serde::Serialize + apache_avro::AvroSchema + 'static>(
        &mut self,
        topic: &Topic<T>,
        key: &str,
        value: &T,
        state: &mut Option<Entry>,
    ) -> Result<Vec<(String, String, Vec<u8>)>, HandleError> {
        self.offset += 1;
        let record = Record::new(topic, key, value)
            .expect("record")
            .at(self.offset);
        self.harness.emitted.clear();
        let mut ctx = self.harness.context();
        self.agent.handle(&record.input(), state, &mut ctx)?;
        Ok(self
            .harness
            .emitted
            .iter()
            .map(|e| {
                (
                    e.topic.to_owned(),
                    e.key.clone(),
                    e.payload.clone().unwrap_or_default(),
                )
            })
            .collect())
    }

    /// A member with profile, cohort and value in place.
    fn member(&mut self, id: &str) -> Option<Entry> {
        let mut state = None;
        self.feed(&catalog::MEMBER_PROFILES, id, &profile(id), &mut state)
            .expect("profile");
        self.feed(&catalog::COHORTS, id, &cohort(id), &mut state)
            .expect("cohort");
        self.feed(
            &catalog::MEMBER_LTV,
            id,
            &member_ltv(id, 5_000.0, 30_000, 90_000, 4_000),
            &mut state,
        )
        .expect("ltv");
        state
    }

    /// A fresh member (profile, cohort and value in place) and an opportunity for them:
    /// what the member's task emitted.
    fn member_with_opportunity(&mut self, id: &str) -> Vec<(String, String, Vec<u8>)> {
        let mut state = self.member(id);
        self.feed(
            &catalog::INTERVENTION_OPPORTUNITIES,
            id,
            &opportunity(id, "o", NOW),
            &mut state,
        )
        .expect("decided")
    }
}

fn proposal_of(emitted: &[(String, String, Vec<u8>)]) -> OfferProposal {
    let (_, _, bytes) = emitted
        .iter()
        .find(|(t, _, _)| t == topics::OFFER_PROPOSALS)
        .unwrap_or_else(|| {
            panic!(
                "no proposal among {:?}",
                emitted.iter().map(|e| &e.0).collect::<Vec<_>>()
            )
        });
    body(bytes)
}

/// A value as `handle` emitted it: the wire header, then Avro in the type's own schema.
fn body<T: apache_avro::AvroSchema + serde::de::DeserializeOwned>(bytes: &[u8]) -> T {
    decode(&T::get_schema(), &bytes[5..]).expect("decodes with its schema")
}

fn claim_of(emitted: &[(String, String, Vec<u8>)]) -> (String, LedgerClaim) {
    let (_, key, bytes) = emitted
        .iter()
        .find(|(t, _, _)| t == CLAIMS.name)
        .expect("a claim");
    (key.clone(), body(bytes))
}

#[test]
fn a_cancellation_request_gets_the_offer_worth_most_with_every_other_explained() {
    let mut narrow = offer("stripe", "uk-only", OfferType::PercentOff, 20);
    narrow.eligibility.countries = vec!["GB".into()];
    let mut ten = offer("stripe", "ten", OfferType::PercentOff, 10);
    ten.channels = Some(vec![Channel::InApp, Channel::Email]);
    let mut rig = rig(vec![
        ten,
        offer("stripe", "thirty", OfferType::PercentOff, 30),
        narrow,
    ]);
    let mut state = rig.member("m1");
    let event = cancellation("m1", "e1", "too expensive for me", NOW);
    let out = rig
        .feed(&catalog::MEMBER_EVENTS, "m1", &event, &mut state)
        .expect("handled");
    let p = proposal_of(&out);
    assert_eq!(p.proposal_id, "cancellation:e1");
    // The member-ltv record it valued the member with, pinned by its attestation.
    assert_eq!(
        p.ltv_relied_on.as_ref().map(|l| l.output_hash.as_str()),
        Some("ab".repeat(32).as_str())
    );
    assert_eq!(
        p.reason_cluster,
        Some(loyalty_contracts::ReasonCluster::Price)
    );
    let chosen = p.offer.expect("an offer");
    // 10% costs 5.00 of a 50.00 order, 30% costs 15.00: incremental LTV 40.00 is the same.
    assert_eq!(chosen.offer_id, "stripe:ten");
    // The channels the catalog allows travel with the offer to the gate.
    assert_eq!(chosen.channels, Some(vec![Channel::InApp, Channel::Email]));
    assert_eq!(chosen.expected_cost.mean_minor, 500);
    assert_eq!(chosen.expected_incremental_ltv.mean_minor, 4_000);
    assert_eq!(p.rejected_offers, 2);
    let why: Vec<(String, RejectionStage, String)> = p
        .rejections
        .iter()
        .map(|r| (r.offer_id.clone(), r.stage, r.dimension.clone()))
        .collect();
    assert!(why.contains(&(
        "stripe:uk-only".into(),
        RejectionStage::Eligibility,
        "country".into()
    )));
    assert!(why.contains(&(
        "stripe:thirty".into(),
        RejectionStage::Outranked,
        "score".into()
    )));
    // The same request delivered twice proposes once.
    let again = rig
        .feed(&catalog::MEMBER_EVENTS, "m1", &event, &mut state)
        .expect("handled");
    assert!(again.is_empty());
}

#[test]
fn a_downgrade_tier_offer_names_the_tier_below_and_is_ruled_out_on_the_entry_tier() {
    let rig_with = |program: Option<Program>| {
        let rig = rig(vec![offer(
            "bold",
            "step-down",
            OfferType::DowngradeTier,
            0,
        )]);
        if let Some(program) = program {
            rig.harness.put_table(&tables::PROGRAMS, "p", program);
        }
        rig
    };
    // What a cancelling member in `tier` of program "p" is proposed.
    let proposed = |rig: &mut Rig, tier: &str| {
        let mut state = rig.member("m1");
        let held = loyalty_contracts::testkit::member("m1", 3, 30, 10, 5_000, tier);
        rig.feed(&catalog::MEMBER_STATE, "m1", &held, &mut state)
            .expect("member-state");
        let event = cancellation("m1", "e1", "too expensive for me", NOW);
        proposal_of(
            &rig.feed(&catalog::MEMBER_EVENTS, "m1", &event, &mut state)
                .expect("handled"),
        )
    };
    let three_tiers = Program::three_tier_spend("p");

    let p = proposed(&mut rig_with(Some(three_tiers.clone())), "gold");
    assert_eq!(
        p.offer.as_ref().map(|o| o.offer_id.as_str()),
        Some("bold:step-down")
    );
    assert_eq!(
        p.tier_change,
        Some(TierChange {
            program_id: "p".into(),
            from_tier_id: "gold".into(),
            to_tier_id: "silver".into(),
        })
    );

    let ruled_out = |p: &OfferProposal| {
        assert!(p.offer.is_none(), "{p:?}");
        assert_eq!(p.tier_change, None);
        let r = p.rejections.first().expect("the offer ruled out");
        assert_eq!(
            (r.stage, r.dimension.as_str()),
            (RejectionStage::Eligibility, "tier_below")
        );
        r.explanation.clone()
    };
    let entry = proposed(&mut rig_with(Some(three_tiers)), "member");
    assert!(
        ruled_out(&entry).contains("the member holds member, the entry tier of p"),
        "{entry:?}"
    );
    // No program in the table: the tier below cannot be named, so nothing is offered.
    let unknown = proposed(&mut rig_with(None), "gold");
    assert!(ruled_out(&unknown).contains("is unknown"), "{unknown:?}");
}

#[test]
fn a_budget_of_n_grants_n_proposals_then_the_next_candidate() {
    let mut budgeted = offer("stripe", "budgeted", OfferType::PercentOff, 5);
    budgeted.caps.budget = Some(Budget {
        budget_id: "winback".into(),
        ceiling_minor: None,
        ceiling_redemptions: Some(2),
    });
    let fallback = offer("stripe", "fallback", OfferType::PercentOff, 20);
    let mut rig = rig(vec![budgeted, fallback]);
    let mut ledger = None;
    let mut granted = 0;
    for i in 0..4 {
        let member = format!("m{i}");
        let out = rig.member_with_opportunity(&member);
        // The budgeted offer ranks first, so the member's task sends a claim to its ledger.
        let (key, claim) = claim_of(&out);
        assert_eq!(key, "ledger:winback");
        assert_eq!(claim.candidates.len(), 2);
        let settled = rig
            .feed(&CLAIMS, &key, &claim, &mut ledger)
            .expect("settled");
        let p = proposal_of(&settled);
        assert_eq!(p.member_id, member);
        match p.offer.as_ref().map(|o| o.offer_id.as_str()) {
            Some("stripe:budgeted") => granted += 1,
            Some("stripe:fallback") => {
                assert!(i >= 2, "the budget had room for member {i}");
                let refusal = p
                    .rejections
                    .iter()
                    .find(|r| r.stage == RejectionStage::Budget)
                    .expect("refusal");
                assert_eq!(
                    refusal.explanation,
                    "ledger:winback has given all 2 proposals it allows"
                );
            }
            other => panic!("unexpected offer {other:?}"),
        }
        // The same claim again (a replayed batch) is not charged twice.
        let again = rig
            .feed(&CLAIMS, &key, &claim, &mut ledger)
            .expect("settled");
        assert!(again.is_empty());
    }
    assert_eq!(granted, 2);
}

#[test]
fn a_ledger_decides_every_candidate_it_holds_without_sending_the_claim_to_itself() {
    // Two offers on one budget of one proposal, and a fallback without a budget.
    let budget = Budget {
        budget_id: "winback".into(),
        ceiling_minor: None,
        ceiling_redemptions: Some(1),
    };
    let mut first = offer("stripe", "first", OfferType::PercentOff, 5);
    first.caps.budget = Some(budget.clone());
    let mut second = offer("stripe", "second", OfferType::PercentOff, 10);
    second.caps.budget = Some(budget);
    let fallback = offer("stripe", "fallback", OfferType::PercentOff, 20);
    let mut rig = rig(vec![first, second, fallback]);
    let mut ledger = None;
    let mut offered = Vec::new();
    for member in ["m0", "m1"] {
        let out = rig.member_with_opportunity(member);
        let (key, claim) = claim_of(&out);
        assert_eq!(claim.candidates.len(), 3);
        let settled = rig
            .feed(&CLAIMS, &key, &claim, &mut ledger)
            .expect("settled");
        assert!(
            settled.iter().all(|(t, _, _)| t != CLAIMS.name),
            "the ledger sent a claim to itself"
        );
        let p = proposal_of(&settled);
        offered.push(p.offer.map(|o| o.offer_id));
        if member == "m1" {
            let refused: Vec<&str> = p
                .rejections
                .iter()
                .filter(|r| r.stage == RejectionStage::Budget)
                .map(|r| r.offer_id.as_str())
                .collect();
            assert_eq!(refused, ["stripe:first", "stripe:second"]);
        }
    }
    assert_eq!(
        offered,
        [Some("stripe:first".into()), Some("stripe:fallback".into())]
    );
}

#[test]
fn a_budget_its_ledger_published_as_used_up_is_ruled_out_without_a_claim() {
    let mut budgeted = offer("stripe", "budgeted", OfferType::PercentOff, 5);
    budgeted.caps.budget = Some(Budget {
        budget_id: "winback".into(),
        ceiling_minor: None,
        ceiling_redemptions: Some(1),
    });
    let fallback = offer("stripe", "fallback", OfferType::PercentOff, 20);
    let mut rig = rig(vec![budgeted, fallback]);
    let mut ledger = None;
    let out = rig.member_with_opportunity("m0");
    let (key, claim) = claim_of(&out);
    rig.feed(&CLAIMS, &key, &claim, &mut ledger)
        .expect("granted");
    // Before the ledger's standing is published, the next member's task still asks it.
    let out = rig.member_with_opportunity("m1");
    assert_eq!(claim_of(&out).0, "ledger:winback");
    // Once it is (the ledger's partition summary, as every instance follows it), the
    // used-up budget is ruled out where the member is, and the proposal written at once.
    let published = rig.harness.summary.clone();
    rig.harness.population.partitions.insert(7, published);
    rig.harness.population.generation += 1;
    let out = rig.member_with_opportunity("m2");
    assert!(out.iter().all(|(t, _, _)| t != CLAIMS.name));
    let p = proposal_of(&out);
    assert_eq!(
        p.offer.map(|o| o.offer_id).as_deref(),
        Some("stripe:fallback")
    );
    let refusal = p
        .rejections
        .iter()
        .find(|r| r.stage == RejectionStage::Budget)
        .expect("refusal");
    assert_eq!(
        refusal.explanation,
        "ledger:winback has given all 1 proposals it allows (as the ledger last published)"
    );
}

#[test]
fn a_held_offer_is_pinned_stacks_and_is_withdrawn_by_its_suppression_trigger() {
    let mut exclusive = offer("stripe", "exclusive", OfferType::PercentOff, 10);
    exclusive.stacking.rule = StackRule::Exclusive;
    exclusive.expiration.suppress_on = vec![SuppressionTrigger::OrderPlaced];
    let mut rig = rig(vec![exclusive.clone()]);
    let mut state = rig.member("m1");
    let out = rig
        .feed(
            &catalog::MEMBER_EVENTS,
            "m1",
            &cancellation("m1", "e1", "price", NOW),
            &mut state,
        )
        .expect("decided");
    let first = proposal_of(&out);
    assert_eq!(first.offer.as_ref().map(|o| o.version_id), Some(1));
    // The proposal comes back on its topic: the member now holds version 1.
    rig.feed(&catalog::OFFER_PROPOSALS, "m1", &first, &mut state)
        .expect("seen");
    // A second request: the exclusive offer is held, with no extension rule.
    let out = rig
        .feed(
            &catalog::MEMBER_EVENTS,
            "m1",
            &cancellation("m1", "e2", "price", NOW + DAY),
            &mut state,
        )
        .expect("decided");
    let second = proposal_of(&out);
    assert!(second.offer.is_none());
    assert_eq!(second.held_offers, vec!["stripe:exclusive@1".to_owned()]);
    assert_eq!(second.rejections[0].dimension, "extension");
    // An order suppresses the held offer; the next request may propose it again, now
    // at the catalog's version 2.
    let mut v2 = exclusive;
    v2.version.version_id = 2;
    rig.harness.put_table(&CATALOG, "stripe:exclusive", v2);
    let order = MemberEvent {
        event_id: "o1".into(),
        member_id: "m1".into(),
        brand_id: "b".into(),
        occurred_at: Timestamp(NOW + 2 * DAY),
        source: "shop".into(),
        source_member_id: None,
        payload: Payload::OrderPlaced(OrderPlaced {
            order_id: "o1".into(),
            amount_minor: 5_000,
            currency: "USD".into(),
            margin_minor: None,
            items: 1,
            location_id: None,
            product_line: Some("espresso".into()),
        }),
    };
    rig.feed(&catalog::MEMBER_EVENTS, "m1", &order, &mut state)
        .expect("order");
    let out = rig
        .feed(
            &catalog::MEMBER_EVENTS,
            "m1",
            &cancellation("m1", "e3", "price", NOW + 3 * DAY),
            &mut state,
        )
        .expect("decided");
    assert_eq!(proposal_of(&out).offer.map(|o| o.version_id), Some(2));
}

#[test]
fn outcomes_teach_the_experiment_and_count_redemptions() {
    let arm = |id: &str, name: &str| {
        let mut o = offer("stripe", id, OfferType::PercentOff, 10);
        o.experiment = Some(Experiment {
            experiment_id: "x1".into(),
            variant_id: "v1".into(),
            arm: name.into(),
            traffic_allocation_bp: 10_000,
            stratification: Vec::new(),
            readout_cadence_hours: 0,
            policy: loyalty_contracts::BanditPolicy::ThompsonSampling,
        });
        o
    };
    let mut rig = rig(vec![arm("a", "A"), arm("b", "B")]);
    let mut state = rig.member("m1");
    let out = rig
        .feed(
            &catalog::MEMBER_EVENTS,
            "m1",
            &cancellation("m1", "e1", "price", NOW),
            &mut state,
        )
        .expect("decided");
    let p = proposal_of(&out);
    let chosen = p.offer.clone().expect("an arm");
    assert_eq!(chosen.experiment_id.as_deref(), Some("x1"));
    let other = p
        .rejections
        .iter()
        .find(|r| r.stage == RejectionStage::Experiment)
        .expect("the other arm");
    assert_eq!(other.dimension, "bandit");
    assert!(
        other
            .explanation
            .contains("experiment x1 (thompson_sampling, stratum all) chose arm")
    );
    rig.feed(&catalog::OFFER_PROPOSALS, "m1", &p, &mut state)
        .expect("seen");
    let key = save_offer::bandit::ArmKey {
        experiment: "x1".into(),
        stratum: "all".into(),
        offer_id: chosen.offer_id.clone(),
    };
    assert_eq!(rig.harness.summary.arms[&key].pulls, 1);
    let outcome = MemberEvent {
        event_id: "out1".into(),
        member_id: "m1".into(),
        brand_id: "b".into(),
        occurred_at: Timestamp(NOW + DAY),
        source: "esp".into(),
        source_member_id: None,
        payload: Payload::InterventionOutcome(InterventionOutcome {
            intervention_id: p.proposal_id.clone(),
            intervention_type: "offer".into(),
            result: InterventionResult::Converted,
            value_minor: Some(2_500),
            holdout: None,
        }),
    };
    rig.feed(&catalog::MEMBER_EVENTS, "m1", &outcome, &mut state)
        .expect("outcome");
    let stats = &rig.harness.summary.arms[&key];
    // Incremental margin: 25.00 at the member's 40% margin, less the offer's expected
    // cost of 5.00.
    assert_eq!((stats.conversions, stats.reward), (1, 500.0));
    // The same outcome again teaches nothing more.
    let mut again = outcome.clone();
    again.event_id = "out2".into();
    rig.feed(&catalog::MEMBER_EVENTS, "m1", &again, &mut state)
        .expect("outcome");
    assert_eq!(rig.harness.summary.arms[&key].conversions, 1);
    let Some(Entry::Member(m)) = &state else {
        panic!("member state")
    };
    assert_eq!(m.prior_redemptions, 1);

    // Erased: the member's pull and reward leave the arm, their value the decile sketch.
    let forgotten = rig
        .agent
        .forget("m1", &state, &mut rig.harness.context())
        .expect("forgotten");
    assert_eq!(
        forgotten.counts(),
        [("summary:lifetime_margin", 1), ("summary:bandit_arms", 1)]
    );
    assert!(!rig.harness.summary.arms.contains_key(&key));
    assert_eq!(
        rig.harness.summary.lifetime_margin,
        Default::default(),
        "the only member's value is gone from the sketch"
    );
}

#[test]
fn a_claim_whose_member_was_erased_on_the_way_charges_and_proposes_nothing() {
    let mut only = offer("stripe", "only", OfferType::PercentOff, 5);
    only.caps.budget = Some(Budget {
        budget_id: "winback".into(),
        ceiling_minor: None,
        ceiling_redemptions: Some(1),
    });
    let mut rig = rig(vec![only]);
    let mut ledger = None;
    let (key, claim) = claim_of(&rig.member_with_opportunity("m0"));
    rig.harness.erase("m0", NOW);
    let settled = rig
        .feed(&CLAIMS, &key, &claim, &mut ledger)
        .expect("settled");
    assert!(settled.is_empty(), "{settled:?}");
    assert!(ledger.is_none(), "nothing charged");
    // The budget of one is still there for the next member.
    let (key, claim) = claim_of(&rig.member_with_opportunity("m1"));
    let settled = rig
        .feed(&CLAIMS, &key, &claim, &mut ledger)
        .expect("settled");
    let offered = proposal_of(&settled).offer.map(|o| o.offer_id);
    assert_eq!(offered.as_deref(), Some("stripe:only"));
}

#[test]
fn bad_records_are_rejected_with_the_reason() {
    let mut rig = rig(vec![offer("stripe", "ten", OfferType::PercentOff, 10)]);
    let mut state = rig.member("m1");
    // A value naming another member than its key.
    let e = rig
        .feed(&catalog::MEMBER_PROFILES, "m1", &profile("m2"), &mut state)
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("member_id \"m2\" differs from the record key \"m1\""),
        "{e}"
    );
    // Text no real profile holds, which kept in state would grow it without bound.
    let mut huge = profile("m1");
    huge.region = Some("x".repeat(1_000));
    let e = rig
        .feed(&catalog::MEMBER_PROFILES, "m1", &huge, &mut state)
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("region is 1000 bytes long (at most 256)"),
        "{e}"
    );
    // A member id in the ledgers' key space.
    let mut fresh = None;
    let e = rig
        .feed(
            &catalog::MEMBER_PROFILES,
            "ledger:x",
            &profile("ledger:x"),
            &mut fresh,
        )
        .unwrap_err();
    assert!(
        e.to_string().contains("reserved for save-offer's ledgers"),
        "{e}"
    );
    // A claim whose key is not its candidate's ledger.
    let mut budgeted = offer("stripe", "b", OfferType::PercentOff, 5);
    budgeted.caps.budget = Some(Budget {
        budget_id: "w".into(),
        ceiling_minor: None,
        ceiling_redemptions: Some(1),
    });
    rig.harness.put_table(&CATALOG, "stripe:b", budgeted);
    let out = rig
        .feed(
            &catalog::INTERVENTION_OPPORTUNITIES,
            "m1",
            &opportunity("m1", "o", NOW),
            &mut state,
        )
        .expect("decided");
    let (_, claim) = claim_of(&out);
    let e = rig
        .feed(&CLAIMS, "ledger:other", &claim, &mut None)
        .unwrap_err();
    assert!(
        e.to_string().contains("is for ledger:w, not ledger:other"),
        "{e}"
    );
}

#[test]
fn a_trigger_before_the_members_value_waits_for_it_or_for_the_join_window() {
    let mut rig = rig(vec![offer("stripe", "ten", OfferType::PercentOff, 10)]);
    let mut state = None;
    rig.feed(&catalog::MEMBER_PROFILES, "m1", &profile("m1"), &mut state)
        .expect("profile");
    let out = rig
        .feed(
            &catalog::MEMBER_EVENTS,
            "m1",
            &cancellation("m1", "e1", "price", NOW),
            &mut state,
        )
        .expect("kept");
    assert!(out.is_empty(), "decided without the member's value");
    // ltv's first record, written before any fit scores the member, does not end the wait.
    let out = rig
        .feed(&catalog::MEMBER_LTV, "m1", &unvalued_ltv("m1"), &mut state)
        .expect("kept");
    assert!(out.is_empty(), "decided on a record that values nothing");
    // The value arrives: the waiting request is decided, as of its own time.
    let out = rig
        .feed(
            &catalog::MEMBER_LTV,
            "m1",
            &member_ltv("m1", 5_000.0, 30_000, 90_000, 4_000),
            &mut state,
        )
        .expect("joined");
    let p = proposal_of(&out);
    assert_eq!(
        (p.proposal_id.as_str(), p.decided_at),
        ("cancellation:e1", Timestamp(NOW))
    );
    assert_eq!(p.offer.map(|o| o.offer_id), Some("stripe:ten".into()));

    // Without a value before the wait ends, the timer decides with what is known.
    let mut other = None;
    rig.feed(&catalog::MEMBER_PROFILES, "m2", &profile("m2"), &mut other)
        .expect("profile");
    rig.feed(
        &catalog::MEMBER_EVENTS,
        "m2",
        &cancellation("m2", "e2", "price", NOW),
        &mut other,
    )
    .expect("kept");
    rig.harness.emitted.clear();
    let timer = loyalty_runtime::Timer {
        name: "join-wait".into(),
        clock: loyalty_runtime::Clock::WallClock,
        at: NOW,
    };
    // Catching up, stream time is behind the wait: it goes on waiting, in stream time.
    let mut ctx = rig.harness.context();
    rig.agent
        .on_timer("m2", &timer, &mut other, &mut ctx)
        .expect("rescheduled");
    assert!(rig.harness.emitted.is_empty());
    rig.harness.stream_time = NOW;
    let mut ctx = rig.harness.context();
    rig.agent
        .on_timer("m2", &timer, &mut other, &mut ctx)
        .expect("fired");
    let bytes = rig
        .harness
        .emitted
        .first()
        .and_then(|e| e.payload.clone())
        .expect("a proposal");
    let p: OfferProposal = body(&bytes);
    assert!(p.offer.is_none());
    assert_eq!(p.rejections[0].dimension, "member_ltv");

    // The wait runs out on an unvalued record: the discount cannot be priced, and is not
    // priced on a zero order (it would look free).
    let mut third = None;
    rig.feed(&catalog::MEMBER_PROFILES, "m3", &profile("m3"), &mut third)
        .expect("profile");
    rig.feed(&catalog::MEMBER_LTV, "m3", &unvalued_ltv("m3"), &mut third)
        .expect("unvalued");
    rig.feed(
        &catalog::MEMBER_EVENTS,
        "m3",
        &cancellation("m3", "e3", "price", NOW),
        &mut third,
    )
    .expect("kept");
    rig.harness.emitted.clear();
    let mut ctx = rig.harness.context();
    rig.agent
        .on_timer("m3", &timer, &mut third, &mut ctx)
        .expect("fired");
    let p: OfferProposal = body(
        &rig.harness
            .emitted
            .first()
            .and_then(|e| e.payload.clone())
            .expect("a proposal"),
    );
    assert!(p.offer.is_none());
    let r = &p.rejections[0];
    assert_eq!(
        (r.dimension.as_str(), r.value.as_str()),
        ("member_ltv", "unvalued")
    );
    assert!(
        r.explanation.contains("ltv has not valued the member yet"),
        "{}",
        r.explanation
    );

    // A member with no orders has no currency, which no fit gives them: nothing to wait
    // for, so their request is decided at once.
    let mut fourth = None;
    rig.feed(&catalog::MEMBER_PROFILES, "m4", &profile("m4"), &mut fourth)
        .expect("profile");
    let no_orders = loyalty_contracts::MemberLtv {
        currency: None,
        ..unvalued_ltv("m4")
    };
    rig.feed(&catalog::MEMBER_LTV, "m4", &no_orders, &mut fourth)
        .expect("no orders");
    let out = rig
        .feed(
            &catalog::MEMBER_EVENTS,
            "m4",
            &cancellation("m4", "e4", "price", NOW),
            &mut fourth,
        )
        .expect("decided");
    let p = proposal_of(&out);
    assert_eq!(
        (
            p.rejections[0].dimension.as_str(),
            p.rejections[0].value.as_str()
        ),
        ("member_ltv", "no currency")
    );
}

#[test]
fn readouts_report_each_arm_of_an_experiment_once_per_cadence() {
    let arm = |id: &str, name: &str| {
        let mut o = offer("stripe", id, OfferType::PercentOff, 10);
        o.experiment = Some(Experiment {
            experiment_id: "x1".into(),
            variant_id: "v1".into(),
            arm: name.into(),
            traffic_allocation_bp: 10_000,
            stratification: vec!["segment".into()],
            readout_cadence_hours: 24,
            policy: loyalty_contracts::BanditPolicy::ThompsonSampling,
        });
        o
    };
    let mut rig = rig(vec![arm("a", "A"), arm("b", "B")]);
    // Another partition's members: arm A converts 30 of 100 at 10.00, arm B 5 of 100.
    let mut other = save_offer::agent::state::OfferSummary {
        newest_ms: NOW,
        ..Default::default()
    };
    for (offer, conversions) in [("stripe:a", 30), ("stripe:b", 5)] {
        let stats = other
            .arms
            .entry(save_offer::bandit::ArmKey {
                experiment: "x1".into(),
                stratum: "segment=at_risk".into(),
                offer_id: offer.into(),
            })
            .or_default();
        for i in 0..100 {
            stats.pull(&[]);
            if i < conversions {
                stats.learn(1_000.0, 1.0, 10_000.0, &[]);
            }
        }
    }
    rig.harness.population = loyalty_runtime::Population {
        partitions: [(3, other)].into_iter().collect(),
        generation: 7,
    };
    let mut ctx = rig.harness.context();
    rig.agent.publish(&mut ctx).expect("published");
    let bytes = rig
        .harness
        .emitted
        .first()
        .and_then(|e| e.payload.clone())
        .expect("a readout");
    let r: loyalty_contracts::OfferReadout = body(&bytes);
    assert_eq!(r.experiment_id, "x1");
    let a = &r.arms[0];
    assert_eq!((a.arm.as_str(), a.proposals, a.rewards), ("A", 100, 30));
    assert!((a.mean_reward_minor - 300.0).abs() < 1e-9);
    assert!((a.traffic_share - 0.5).abs() < 1e-9);
    assert!(a.probability_best > 0.99, "{a:?}");
    // Nothing changed: nothing published again within the cadence.
    rig.harness.emitted.clear();
    let mut ctx = rig.harness.context();
    rig.agent.publish(&mut ctx).expect("published");
    assert!(rig.harness.emitted.is_empty());
}

#[test]
fn the_ltv_decile_is_the_members_place_in_the_whole_population() {
    let mut top = offer("stripe", "top", OfferType::PercentOff, 10);
    top.eligibility.ltv_deciles = vec![10];
    let mut rig = rig(vec![top]);
    let mut state = rig.member("m0");
    // This partition, as every instance sees it: m0 and nine members worth less, so m0
    // is in the top decile.
    let mut alone = rig.harness.summary.clone();
    for _ in 0..9 {
        alone.lifetime_margin.add(cohort::sketch::log_bucket(10.0));
    }
    rig.harness.population.partitions.insert(0, alone);
    rig.harness.population.generation += 1;
    let out = rig
        .feed(
            &catalog::INTERVENTION_OPPORTUNITIES,
            "m0",
            &opportunity("m0", "o1", NOW),
            &mut state,
        )
        .expect("decided");
    let first = proposal_of(&out);
    assert_eq!(
        first.offer.map(|o| o.offer_id).as_deref(),
        Some("stripe:top"),
        "{:?}",
        first.rejections
    );
    // Another partition's 99 members, each worth more: the same member, with the same
    // value, is now in the bottom decile and the offer is ruled out, saying so.
    let mut richer = save_offer::agent::state::OfferSummary::default();
    for _ in 0..99 {
        richer
            .lifetime_margin
            .add(cohort::sketch::log_bucket(1_000_000_000.0));
    }
    rig.harness.population.partitions.insert(5, richer);
    rig.harness.population.generation += 1;
    let out = rig
        .feed(
            &catalog::INTERVENTION_OPPORTUNITIES,
            "m0",
            &opportunity("m0", "o2", NOW),
            &mut state,
        )
        .expect("decided");
    let p = proposal_of(&out);
    assert_eq!(p.offer, None);
    let rejection = p
        .rejections
        .iter()
        .find(|r| r.dimension == "ltv_decile")
        .expect("ruled out by its decile");
    assert_eq!(rejection.value, "1", "{}", rejection.explanation);
}
