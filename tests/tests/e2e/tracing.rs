//! A W3C `traceparent` on a member event comes out on the member-state record it caused,
//! in the same trace under a new span, and that span reaches an OTLP/HTTP collector.

use crate::common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use loyalty_contracts::topics;
use loyalty_runtime::kafka::{self, OutRecord};

const TRACE_ID: &str = "0af7651916cd43dd8448eb211c80319c";
const PARENT_SPAN: &str = "b7ad6b7169203331";

/// The smallest OTLP/HTTP collector: keeps every body POSTed to /v1/traces.
async fn collector() -> (String, Arc<Mutex<Vec<Vec<u8>>>>) {
    let bodies: Arc<Mutex<Vec<Vec<u8>>>> = Arc::default();
    let kept = bodies.clone();
    let app = axum::Router::new().route(
        "/v1/traces",
        axum::routing::post(move |body: axum::body::Bytes| async move {
            kept.lock().unwrap().push(body.to_vec());
            ""
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, bodies)
}

#[serial_test::serial]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn traceparent_flows_through_and_spans_reach_the_collector() {
    let stack = start_stack().await;
    let (collector_url, bodies) = collector().await;
    let events = member_event_encoder(&stack).await;
    let event = order_event("e-traced", "m-traced", 2_500);
    let producer = kafka::producer(&stack.bootstrap_servers, &BTreeMap::new()).unwrap();
    kafka::produce_all(
        &producer,
        &[OutRecord {
            headers: vec![(
                "traceparent".into(),
                format!("00-{TRACE_ID}-{PARENT_SPAN}-01"),
            )],
            ..record(
                topics::MEMBER_EVENTS,
                "m-traced",
                events.encode(&event).unwrap(),
            )
        }],
    )
    .await
    .unwrap();

    // Sample ratio 0: the span is exported only because its parent was sampled.
    let endpoint = format!("otlp_endpoint={collector_url}");
    let mut agent = AgentProcess::spawn(
        "customer-graph",
        &stack,
        &["--set", &endpoint, "--set", "trace_sample_ratio=0"],
    );
    wait_caught_up(&stack, "customer-graph", Duration::from_secs(120)).await;

    let states = swarm::inspect::all_records(&stack.bootstrap_servers, topics::MEMBER_STATE)
        .await
        .unwrap();
    assert_eq!(states.len(), 1);
    let traceparent = states[0]
        .1
        .iter()
        .find(|(k, _)| k == "traceparent")
        .map(|(_, v)| v.clone())
        .expect("member-state carries a traceparent");
    let parts: Vec<&str> = traceparent.split('-').collect();
    assert_eq!(parts[1], TRACE_ID, "same trace: {traceparent}");
    assert_ne!(
        parts[2], PARENT_SPAN,
        "customer-graph's own span: {traceparent}"
    );
    assert_eq!(parts[3], "01", "sampled: {traceparent}");

    // SIGTERM flushes the batch exporter; the collector must hold both ids.
    assert!(agent.terminate(Duration::from_secs(30)).success());
    let hex = |s: &str| -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    };
    let (trace_id, span_id) = (hex(TRACE_ID), hex(parts[2]));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let seen =
            bodies.lock().unwrap().iter().any(|b| {
                b.windows(16).any(|w| w == trace_id) && b.windows(8).any(|w| w == span_id)
            });
        if seen {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no span reached the collector; log:\n{}",
            agent.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    stack.shutdown().await;
}
