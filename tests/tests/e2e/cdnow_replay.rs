//! The full CDNOW history through customer-graph, on each broker (embedded and Apache
//! Kafka): one member-state per customer, with buy-till-you-die summaries equal to an independent
//! computation from the raw file, whether a member's events were keyed by the member or,
//! for store-card holders, by the card and re-keyed.

use crate::common;

use std::time::Duration;

use common::*;
use loyalty_contracts::Date;

on_each_broker!(every_cdnow_customer_gets_a_member_state_matching_the_raw_file);

async fn every_cdnow_customer_gets_a_member_state_matching_the_raw_file(broker: Broker) {
    let stack = start_stack_on(broker).await;
    // Purged every second, so the run also shows the purge deleting only what was
    // handled (the states below are exact) and emptying the topic in the end.
    let agent = AgentProcess::spawn(
        "customer-graph",
        &stack,
        &["--set", "repartition_purge_interval_ms=1000"],
    );
    agent.wait_ready(Duration::from_secs(60)).await;
    let file = data("CDNOW_master.txt");
    let replayed = swarm::replay::replay(
        &stack.bootstrap_servers,
        &stack.registry_url,
        Some(&file),
        false,
    )
    .await
    .unwrap();
    assert_eq!(replayed.purchases, 69_659);
    wait_caught_up(&stack, "customer-graph", Duration::from_secs(900)).await;

    let states = member_state_bodies(&stack).await;
    let expected = independent_btyd(&file);
    assert_eq!(expected.len(), 23_570);
    assert_eq!(states.len(), 23_570, "one member-state per CDNOW customer");
    let end_of_data = Date::from_ymd(1998, 6, 30).unwrap().0 as i64;
    for (customer, body) in &states {
        let state = decode_state(body);
        let btyd = state
            .btyd
            .unwrap_or_else(|| panic!("{customer} has no BTYD summary"));
        let (x, t_x, first, mean) = expected[customer];
        assert_eq!(btyd.x, x, "{customer}: x");
        assert_eq!(btyd.t_x_days, t_x, "{customer}: t_x");
        assert_eq!(
            i64::from(btyd.first_purchase.0),
            first,
            "{customer}: first purchase"
        );
        // T at the end of the data, from the published first purchase.
        assert_eq!(
            end_of_data - i64::from(btyd.first_purchase.0),
            end_of_data - first,
            "{customer}: T"
        );
        assert!(
            (btyd.mean_repeat_value_minor - mean).abs() < 1e-6,
            "{customer}: mean repeat value"
        );
        // The profile's acquisition, payment and billing facts ride on the snapshot.
        let profile = swarm::cdnow::profile(customer, btyd.first_purchase);
        let attributes = state
            .attributes
            .unwrap_or_else(|| panic!("{customer} has no profile attributes"));
        assert_eq!(
            (
                attributes.acquisition_channel,
                attributes.payment_method,
                attributes.billing_frequency,
                attributes.borrower_status,
                attributes.plan_tier
            ),
            (
                profile.acquisition_channel,
                profile.payment_method,
                profile.billing_frequency,
                profile.borrower_status,
                profile.plan_tier
            ),
            "{customer}: attributes"
        );
    }
    // Store-card holders' events were keyed by the card; each was re-keyed to its member
    // exactly once (the states above already prove none was lost or counted twice) and
    // the card is the member's identity link.
    let purchases = swarm::cdnow::read_purchases(&file).unwrap();
    let carded_events = 2 * purchases
        .iter()
        .filter(|p| swarm::cdnow::store_card(&p.customer).is_some())
        .count() as i64;
    assert!(carded_events > 10_000, "{carded_events}");
    let repartition = "customer-graph.rekey-repartition";
    let ranges = wait_emptied(&stack, repartition, Duration::from_secs(60)).await;
    assert_eq!(
        ranges.values().map(|(_, high)| high).sum::<i64>(),
        carded_events,
        "every card event was forwarded once"
    );
    assert!(
        ranges.values().all(|(low, high)| low == high),
        "the handled forwards were purged: {ranges:?}"
    );
    for (customer, body) in &states {
        let links = decode_state(body).identity_links;
        match swarm::cdnow::store_card(customer) {
            Some(card) => assert_eq!(links, vec![format!("pos:{card}")], "{customer}"),
            None => assert!(links.is_empty(), "{customer}: {links:?}"),
        }
    }
    let dead =
        swarm::inspect::record_count(&stack.bootstrap_servers, "customer-graph.dlq").unwrap();
    assert_eq!(dead, 0, "clean data produces no dead letters");
    drop(agent);
    stack.shutdown().await;
}
