//! save-offer as processes on the embedded stack. save-offer-catalog turns two Stripe
//! coupons and the operator's policy into catalog offers; two save-offer instances then
//! share a flood of opportunities for members on every partition. The better offer has a
//! budget of N proposals: it is proposed exactly N times — never more, although two
//! instances decide at once, and no fewer, since demand exceeds it — and every other
//! member gets the fallback, with the budget's refusal in the explanation. Run on each
//! broker. Under `exactly_once`, one instance is killed with SIGKILL mid-flood and
//! restarted under its transactional id: the budget is still given exactly N times, and
//! a read_committed reader sees every proposal once.

use crate::common;

use common::record;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use apache_avro::AvroSchema;
use loyalty_contracts::{
    Budget, CatalogOffer, CostCaps, FxRate, InterventionOpportunity, OfferPolicy, OfferProposal,
    RejectionStage, Timestamp, VendorOffer, topics,
};
use loyalty_runtime::codec::decode;
use loyalty_runtime::kafka::{self, OutRecord};
use loyalty_runtime::registry::RegistryClient;
use loyalty_runtime::wire;
use save_offer::testkit;

const MEMBERS: usize = 240;
const BUDGET: i64 = 37;

fn coupon(id: &str, percent: u32) -> VendorOffer {
    let document = serde_json::json!({
        "id": id, "object": "coupon", "name": format!("{percent}% to stay"),
        "percent_off": percent, "amount_off": null, "currency": null,
        "duration": "once", "valid": true, "created": 1_700_000_000
    });
    VendorOffer {
        vendor: "stripe".into(),
        vendor_offer_id: id.into(),
        document_json: document.to_string(),
        received_at: Timestamp(testkit::NOW - 100 * testkit::DAY),
        store_currency: Some("USD".into()),
    }
}

common::on_each_broker!(two_instances_never_overspend_a_budget_and_use_all_of_it);
common::on_each_broker!(under_exactly_once_a_killed_instance_neither_overspends_nor_duplicates);

async fn two_instances_never_overspend_a_budget_and_use_all_of_it(broker: common::Broker) {
    flood_against_a_budget(broker, false).await;
}

async fn under_exactly_once_a_killed_instance_neither_overspends_nor_duplicates(
    broker: common::Broker,
) {
    flood_against_a_budget(broker, true).await;
}

/// The flood; with `exactly_once`, under transactions and with one instance killed.
async fn flood_against_a_budget(broker: common::Broker, exactly_once: bool) {
    let stack = common::start_stack_on(broker).await;
    let registry = RegistryClient::new(&stack.registry_url).unwrap();
    let producer = kafka::producer(&stack.bootstrap_servers, &BTreeMap::new()).unwrap();

    // The catalog: 5% under a budget of N proposals (cheapest, so first for everyone),
    // and 20% without one.
    let offers =
        swarm::replay::encoder(&registry, topics::VENDOR_OFFERS, VendorOffer::get_schema())
            .await
            .unwrap();
    let policies =
        swarm::replay::encoder(&registry, topics::OFFER_POLICIES, OfferPolicy::get_schema())
            .await
            .unwrap();
    let rates = swarm::replay::encoder(&registry, topics::FX_RATES, FxRate::get_schema())
        .await
        .unwrap();
    let policy = OfferPolicy {
        offer_id: "stripe:BUDGETED".into(),
        caps: Some(CostCaps {
            budget: Some(Budget {
                budget_id: "winback-q3".into(),
                ceiling_minor: None,
                ceiling_redemptions: Some(BUDGET),
            }),
            ..CostCaps::default()
        }),
        updated_at: Timestamp(testkit::NOW - 99 * testkit::DAY),
        ..OfferPolicy::default()
    };
    let mut setup: Vec<OutRecord> = vec![
        record(
            topics::OFFER_POLICIES,
            "stripe:BUDGETED",
            policies.encode(&policy).unwrap(),
        ),
        record(
            topics::FX_RATES,
            "USD",
            rates.encode(&testkit::fx("USD", 1.0)).unwrap(),
        ),
    ];
    for (id, percent) in [("BUDGETED", 5), ("FALLBACK", 20)] {
        setup.push(record(
            topics::VENDOR_OFFERS,
            &format!("stripe:{id}"),
            offers.encode(&coupon(id, percent)).unwrap(),
        ));
    }
    kafka::produce_all(&producer, &setup).await.unwrap();
    let catalog = common::AgentProcess::spawn("save-offer-catalog", &stack, &[]);
    catalog.wait_ready(Duration::from_secs(60)).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let published: BTreeMap<String, CatalogOffer> =
            swarm::demo::decode_latest(&stack.bootstrap_servers, &registry, topics::OFFER_CATALOG)
                .await
                .unwrap();
        if published
            .get("stripe:BUDGETED")
            .is_some_and(|o| o.caps.budget.is_some())
            && published.contains_key("stripe:FALLBACK")
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the catalog never published: {:?}\n{}",
            published.keys(),
            catalog.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Members on every partition, with what save-offer joins.
    let members: Vec<String> = (0..MEMBERS).map(|i| format!("member-{i:04}")).collect();
    swarm::offers::publish_members(&stack.bootstrap_servers, &stack.registry_url, &members)
        .await
        .unwrap();

    let args = |instance: usize| -> Vec<String> {
        let mut args = vec!["--set".to_owned(), "batch_max_records=25".to_owned()];
        if exactly_once {
            args.extend([
                "--set".to_owned(),
                "processing_guarantee=exactly_once".to_owned(),
                "--set".to_owned(),
                format!("transactional_id=save-offer-test-{instance}"),
            ]);
        }
        args
    };
    let spawn = |instance: usize| {
        let args = args(instance);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        common::AgentProcess::spawn("save-offer", &stack, &args)
    };
    let mut first = spawn(0);
    let second = spawn(1);
    first.wait_ready(Duration::from_secs(60)).await;
    second.wait_ready(Duration::from_secs(60)).await;

    // The flood: one opportunity per member, all partitions at once.
    let opportunities = swarm::replay::encoder(
        &registry,
        topics::INTERVENTION_OPPORTUNITIES,
        InterventionOpportunity::get_schema(),
    )
    .await
    .unwrap();
    let flood: Vec<OutRecord> = members
        .iter()
        .map(|m| {
            let o = testkit::opportunity(m, "flood", testkit::NOW);
            record(
                topics::INTERVENTION_OPPORTUNITIES,
                m,
                opportunities.encode(&o).unwrap(),
            )
        })
        .collect();
    kafka::produce_all(&producer, &flood).await.unwrap();
    if exactly_once {
        // Mid-flood: the killed instance's open transaction (claims, proposals, ledger
        // charges) is aborted when its successor starts under the same transactional id.
        tokio::time::sleep(Duration::from_millis(500)).await;
        first.kill9();
        first = spawn(0);
        first.wait_ready(Duration::from_secs(60)).await;
    }

    // Every opportunity answered once: claims settled, proposals seen back.
    let deadline = Instant::now() + Duration::from_secs(180);
    let proposals = loop {
        common::wait_caught_up(&stack, "save-offer", Duration::from_secs(180)).await;
        let mut proposals: BTreeMap<String, OfferProposal> = BTreeMap::new();
        for record in
            swarm::inspect::positioned_records(&stack.bootstrap_servers, topics::OFFER_PROPOSALS)
                .await
                .unwrap()
        {
            let bytes = record.value.expect("a proposal");
            let (id, body) = wire::split(&bytes).unwrap();
            let p: OfferProposal =
                decode(registry.schema(id).await.unwrap().as_ref(), body).unwrap();
            if let Some(earlier) = proposals.get(&p.proposal_id) {
                // Under transactions a replayed batch's writes were aborted; otherwise a
                // replay may write a proposal again: the same bytes, one decision.
                assert!(!exactly_once, "{} committed twice", p.proposal_id);
                assert_eq!(earlier, &p, "a proposal written twice differs");
            }
            proposals.insert(p.proposal_id.clone(), p);
        }
        if proposals.len() == MEMBERS {
            break proposals;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {MEMBERS} proposals; logs:\n{}\n{}",
            proposals.len(),
            first.log_tail(),
            second.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };

    let mut by_offer: BTreeMap<String, usize> = BTreeMap::new();
    for p in proposals.values() {
        let offer = p
            .offer
            .as_ref()
            .map_or("none".to_owned(), |o| o.offer_id.clone());
        *by_offer.entry(offer).or_default() += 1;
        if p.offer
            .as_ref()
            .is_some_and(|o| o.offer_id == "stripe:FALLBACK")
        {
            let refusal = p
                .rejections
                .iter()
                .find(|r| r.stage == RejectionStage::Budget)
                .expect("the budget's refusal explains the fallback");
            // Refused by the ledger itself, or where the member is once the ledger had
            // published that the budget was used up.
            let refused = format!("ledger:winback-q3 has given all {BUDGET} proposals it allows");
            assert!(
                refusal.explanation == refused
                    || refusal.explanation == format!("{refused} (as the ledger last published)"),
                "{}",
                refusal.explanation
            );
        }
    }
    assert_eq!(
        by_offer.get("stripe:BUDGETED").copied(),
        Some(BUDGET as usize),
        "{by_offer:?}"
    );
    assert_eq!(
        by_offer.get("stripe:FALLBACK").copied(),
        Some(MEMBERS - BUDGET as usize),
        "{by_offer:?}"
    );
    // Both instances worked: each owned partitions, and the ledger's key one of them.
    let members_answered: BTreeSet<&str> =
        proposals.values().map(|p| p.member_id.as_str()).collect();
    assert_eq!(members_answered.len(), MEMBERS);
    for agent in [&first, &second] {
        let metrics = agent.get("/metrics").await.unwrap().1;
        assert!(
            common::metric(
                &metrics,
                "loyalty_swarm_records_consumed_total",
                &[("topic", topics::INTERVENTION_OPPORTUNITIES)]
            )
            .is_some()
                || metrics.contains(&format!("topic=\"{}\"", topics::INTERVENTION_OPPORTUNITIES)),
            "an instance took no opportunities"
        );
        common::promtool_check_metrics(&metrics);
    }
    let dead = swarm::inspect::record_count(&stack.bootstrap_servers, "save-offer.dlq").unwrap();
    assert_eq!(dead, 0);
    drop((first, second, catalog));
    stack.shutdown().await;
}

/// `swarm bench-offers` end to end at a small rate: every request answered, percentiles
/// in order, and save-offer's own write steps read from its metrics.
#[serial_test::serial]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bench_offers_answers_every_request_and_reports_where_the_time_went() {
    let report = swarm::offer_latency::bench_offers(&swarm::offer_latency::LatencyOptions {
        rate_per_second: 40,
        seconds: 3,
        members: 50,
        partitions: 4,
        batch_max_wait_ms: 5,
        fetch_wait_max_ms: None,
    })
    .await
    .unwrap();
    assert_eq!(report.requests, 120);
    assert_eq!(report.proposals, report.requests, "{report:?}");
    assert!(report.timings.ordered(), "{report:?}");
    assert!(report.timings.records_per_batch >= 1.0, "{report:?}");
    for step in ["outputs", "changelog", "commit"] {
        assert!(
            report
                .timings
                .write_mean_ms
                .get(step)
                .is_some_and(|ms| *ms > 0.0),
            "no {step} step in {report:?}"
        );
    }
}
