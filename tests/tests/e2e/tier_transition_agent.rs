//! tier-transition as a process on the embedded stack: it is not ready until a usable
//! population fit is on `loyalty.model-params.v1`; then every member gets all twelve
//! transition forecasts. A program with overlapping tier thresholds and a fit that did
//! not converge go to `tier-transition.dlq` with the reason, never guessed around.

use crate::common;

use common::record;

use std::collections::BTreeMap;
use std::time::Duration;

use apache_avro::AvroSchema;
use loyalty_contracts::{ModelParams, Program, TierForecasts, TransitionType, topics};
use loyalty_runtime::codec::{Encoder, leak};
use loyalty_runtime::kafka;
use loyalty_runtime::registry::RegistryClient;

async fn encoder(registry: &RegistryClient, topic: &str, schema: apache_avro::Schema) -> Encoder {
    let id = registry
        .register(&format!("{topic}-value"), &schema)
        .await
        .unwrap();
    Encoder::new(id, leak(schema)).unwrap()
}

#[serial_test::serial]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forecasts_every_member_once_a_fit_exists_and_dead_letters_bad_rules() {
    let stack = common::start_stack().await;
    let registry = RegistryClient::new(&stack.registry_url).unwrap();
    let producer = kafka::producer(&stack.bootstrap_servers, &BTreeMap::new()).unwrap();
    let bodies = common::reference_bodies(&common::data("CDNOW_sample.txt"));
    common::produce_member_states(&stack, &bodies).await;

    let programs = encoder(&registry, topics::PROGRAMS, Program::get_schema()).await;
    let demo = swarm::cdnow::demo_program();
    let mut overlapping = demo.clone();
    overlapping.program_id = "overlapping".into();
    overlapping.tiers[2].threshold = 5_000; // gold below silver
    kafka::produce_all(
        &producer,
        &[
            record(
                topics::PROGRAMS,
                &demo.program_id,
                programs.encode(&demo).unwrap(),
            ),
            record(
                topics::PROGRAMS,
                "overlapping",
                programs.encode(&overlapping).unwrap(),
            ),
        ],
    )
    .await
    .unwrap();

    let agent = common::AgentProcess::spawn("tier-transition", &stack, &[]);
    // Without a population fit the agent cannot forecast, so it is not ready.
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert!(
        matches!(agent.get("/readyz").await, Some((503, _))),
        "ready without a model; log:\n{}",
        agent.log_tail()
    );

    // A fit that did not converge is refused; a good one under the configured segment
    // ("all") lets the agent start.
    let states: BTreeMap<String, _> = bodies
        .iter()
        .map(|(k, v)| (k.clone(), common::decode_state(v)))
        .collect();
    let fit =
        swarm::fit::publish_population(&stack.bootstrap_servers, &stack.registry_url, &states)
            .await
            .unwrap();
    let mut broken = fit.clone();
    broken.segment = "broken".into();
    broken.bgnbd.converged = false;
    let params = encoder(&registry, topics::MODEL_PARAMS, ModelParams::get_schema()).await;
    kafka::produce_all(
        &producer,
        &[record(
            topics::MODEL_PARAMS,
            "broken",
            params.encode(&broken).unwrap(),
        )],
    )
    .await
    .unwrap();
    agent.wait_ready(Duration::from_secs(60)).await;
    common::wait_caught_up_on(
        &stack,
        "tier-transition",
        &[topics::MEMBER_STATE],
        Duration::from_secs(180),
    )
    .await;

    let forecasts = swarm::inspect::latest_values(&stack.bootstrap_servers, topics::TIER_FORECASTS)
        .await
        .unwrap();
    assert_eq!(
        forecasts.len(),
        bodies.len(),
        "one forecast record per member"
    );
    let mut top_tier = 0;
    for (member, bytes) in &forecasts {
        let f: TierForecasts =
            loyalty_runtime::codec::decode(&TierForecasts::get_schema(), &bytes[5..]).unwrap();
        assert_eq!(f.forecasts.len(), 12, "{member}");
        assert_eq!(f.model_version, fit.version);
        for t in &f.forecasts {
            match (&t.not_applicable, t.probability) {
                (None, Some(p)) => assert!((0.0..=1.0).contains(&p), "{member} {t:?}"),
                (Some(reason), None) => assert!(!reason.is_empty()),
                _ => panic!("{member}: a forecast is either made or says why not: {t:?}"),
            }
        }
        let up = &f.forecasts[0];
        assert_eq!(up.transition, TransitionType::UpTier);
        if f.tier_id == "gold" {
            top_tier += 1;
            assert_eq!(
                up.not_applicable.as_deref(),
                Some("already in the top tier")
            );
        }
    }
    assert!(top_tier > 0, "the sample has gold members");

    // Opportunities are counted, and the exposition passes Prometheus' linter.
    let (_, metrics) = agent.get("/metrics").await.unwrap();
    assert!(
        metrics.contains("loyalty_swarm_opportunities_total{"),
        "no opportunities counted:\n{metrics}"
    );
    common::promtool_check_metrics(&metrics);

    let dead = swarm::inspect::all_records(&stack.bootstrap_servers, "tier-transition.dlq")
        .await
        .unwrap();
    let reasons: Vec<String> = dead
        .iter()
        .flat_map(|(_, h)| {
            h.iter()
                .filter(|(k, _)| k == "dlq.error.reason")
                .map(|(_, v)| v.clone())
        })
        .collect();
    assert!(reasons.iter().any(|r| r.contains("overlap")), "{reasons:?}");
    assert!(
        reasons.iter().any(|r| r.contains("did not converge")),
        "{reasons:?}"
    );
}
