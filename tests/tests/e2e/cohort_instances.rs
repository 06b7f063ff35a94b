//! Two cohort instances give the same scores and segments as one (issue 3): population
//! boundaries come from sketches shared through the summaries topic, and every member is
//! re-scored when they move, so once the input is processed the output does not depend
//! on how the partitions were spread.

use crate::common;

use std::collections::BTreeMap;
use std::time::Duration;

use apache_avro::AvroSchema;
use loyalty_contracts::{MemberCohort, topics};

/// Run `instances` cohort agents over the CDNOW sample's member-states until the cohorts
/// topic stops changing; the newest record per member.
async fn cohorts_with(
    instances: usize,
    states: &BTreeMap<String, Vec<u8>>,
) -> BTreeMap<String, MemberCohort> {
    let stack = common::start_stack().await;
    common::produce_member_states(&stack, states).await;
    let agents: Vec<common::AgentProcess> = (0..instances)
        .map(|_| {
            common::AgentProcess::spawn("cohort", &stack, &["--set", "refresh_interval_ms=500"])
        })
        .collect();
    common::wait_caught_up_on(
        &stack,
        "cohort",
        &[topics::MEMBER_STATE],
        Duration::from_secs(120),
    )
    .await;
    // Settled: the same newest records twice in a row, two refresh intervals apart.
    let mut previous = BTreeMap::new();
    for _ in 0..60 {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let latest = swarm::inspect::latest_values(&stack.bootstrap_servers, topics::COHORTS)
            .await
            .unwrap()
            .into_iter()
            .collect::<BTreeMap<_, _>>();
        if latest == previous && latest.len() == states.len() {
            drop(agents);
            return latest
                .into_iter()
                .map(|(k, v)| {
                    let c: MemberCohort =
                        loyalty_runtime::codec::decode(&MemberCohort::get_schema(), &v[5..])
                            .unwrap();
                    (k, c)
                })
                .collect();
        }
        previous = latest;
    }
    panic!(
        "cohorts never settled ({} of {} members); log:\n{}",
        previous.len(),
        states.len(),
        agents[0].log_tail()
    );
}

#[serial_test::serial]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_score_and_segment_like_one() {
    let states = common::reference_bodies(&common::data("CDNOW_sample.txt"));
    let one = cohorts_with(1, &states).await;
    let two = cohorts_with(2, &states).await;
    assert_eq!(one.len(), 2357);
    for (member, cohort) in &one {
        assert_eq!(two.get(member), Some(cohort), "member {member}");
    }
    // The scores spread over the population and most segments are populated.
    let mut segments: BTreeMap<&str, usize> = BTreeMap::new();
    for c in one.values() {
        *segments.entry(c.segment.label()).or_default() += 1;
        assert!((1..=5).contains(&c.recency_score) && (1..=5).contains(&c.monetary_score));
    }
    assert!(segments.len() >= 7, "{segments:?}");
    let recent = one.values().filter(|c| c.recency_score == 5).count();
    assert!(
        recent > 200 && recent < 800,
        "{recent} members with recency 5"
    );
}
