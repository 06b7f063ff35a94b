//! compliance-gate as processes. Members in New York who consented to texts only get a
//! proposal at 23:00 their time: every send is deferred (TCPA quiet hours), not dropped.
//! One of two instances is then killed with SIGKILL; the other takes its partitions,
//! restores their deferred sends from the changelog, and when stream time passes 08:00
//! sends every one for 08:00, decided again — one trigger per member, each with its own
//! idempotency key. `swarm audit verify` proves the audit chain intact; altered,
//! deleted, reordered and forged records are each caught at their offset, with exit
//! status 3; and Confluent's Python client reads the trigger and audit topics.

use crate::common;

use common::record;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use apache_avro::AvroSchema;
use compliance_gate::audit::Chain;
use compliance_gate::audit_record::{self, Canonical};
use compliance_gate::testkit;
use ed25519_dalek::SigningKey;
use loyalty_contracts::{
    AuditRecord, AuditedDecision, Channel, ConsentStatus, GateOutcome, MemberConsents,
    MemberProfile, OfferProposal, OfferType, Timestamp, Trigger, topics,
};
use loyalty_runtime::codec::decode;
use loyalty_runtime::kafka::{self, OutRecord};
use loyalty_runtime::registry::RegistryClient;
use loyalty_runtime::signing::to_hex;
use loyalty_runtime::wire;

const MEMBERS: usize = 24;
const SIGNING_SEED: [u8; 32] = [11; 32];

fn key_file(name: &str, bytes: &[u8; 32]) -> PathBuf {
    let path = std::env::temp_dir().join(format!("gate-e2e-{}-{name}.key", std::process::id()));
    std::fs::write(&path, to_hex(bytes)).unwrap();
    path
}

fn public_key() -> String {
    to_hex(
        SigningKey::from_bytes(&SIGNING_SEED)
            .verifying_key()
            .as_bytes(),
    )
}

/// Every value of `topic`, decoded with its writer schema.
async fn values<T: serde::de::DeserializeOwned>(stack: &common::Stack, topic: &str) -> Vec<T> {
    let registry = RegistryClient::new(&stack.registry_url).unwrap();
    let mut out = Vec::new();
    for r in swarm::inspect::positioned_records(&stack.bootstrap_servers, topic)
        .await
        .unwrap()
    {
        let bytes = r.value.expect("a value");
        let (id, body) = wire::split(&bytes).unwrap();
        out.push(decode(registry.schema(id).await.unwrap().as_ref(), body).unwrap());
    }
    out
}

async fn decisions(stack: &common::Stack) -> Vec<AuditedDecision> {
    values::<AuditRecord>(stack, topics::AUDIT_LOG)
        .await
        .into_iter()
        .filter_map(|r| r.decision)
        .collect()
}

/// Encoded records of `values` on `topic`, keyed by member, stamped `at`.
async fn records<T: serde::Serialize + AvroSchema>(
    registry: &RegistryClient,
    topic: &str,
    values: &[(String, T)],
    at: i64,
) -> Vec<OutRecord> {
    let encoder = swarm::replay::encoder(registry, topic, T::get_schema())
        .await
        .unwrap();
    values
        .iter()
        .map(|(member, v)| OutRecord {
            timestamp: Some(at),
            ..record(topic, member, encoder.encode(v).unwrap())
        })
        .collect()
}

fn swarm_audit_verify(stack: &common::Stack, topic: &str) -> (i32, String) {
    common::swarm_cli(
        stack,
        &["audit", "verify", topic, "--public-key", &public_key()],
    )
}

/// Each member's profile, as records logged at `at`.
async fn profile_records(registry: &RegistryClient, members: &[String], at: i64) -> Vec<OutRecord> {
    let profiles: Vec<(String, MemberProfile)> = members
        .iter()
        .map(|m| (m.clone(), testkit::profile(m)))
        .collect();
    records(registry, topics::MEMBER_PROFILES, &profiles, at).await
}

/// Each member's profile and consents (`given`), as records logged at `at`.
async fn member_records(
    registry: &RegistryClient,
    members: &[String],
    given: &[(Channel, ConsentStatus)],
    at: i64,
) -> Vec<OutRecord> {
    let consents: Vec<(String, MemberConsents)> = members
        .iter()
        .map(|m| (m.clone(), testkit::consents(m, given)))
        .collect();
    let mut joined = profile_records(registry, members, at).await;
    joined.extend(records(registry, topics::MEMBER_CONSENTS, &consents, at).await);
    joined
}

/// One proposal per member, `<member>:<name>`, decided and logged at `at`.
async fn proposal_records(
    registry: &RegistryClient,
    members: &[String],
    name: &str,
    at: i64,
) -> Vec<OutRecord> {
    let proposals: Vec<(String, OfferProposal)> = members
        .iter()
        .map(|m| {
            let id = format!("{m}:{name}");
            (
                m.clone(),
                testkit::proposal(m, &id, OfferType::PercentOff, at),
            )
        })
        .collect();
    records(registry, topics::OFFER_PROPOSALS, &proposals, at).await
}

/// A compliance-gate process with `settings` (`key=value` each).
fn spawn_gate(stack: &common::Stack, settings: &[String]) -> common::AgentProcess {
    let args: Vec<&str> = settings
        .iter()
        .flat_map(|s| ["--set", s.as_str()])
        .collect();
    common::AgentProcess::spawn("compliance-gate", stack, &args)
}

common::on_each_broker!(quiet_hours_defer_to_08_00_across_a_sigkill_and_a_takeover);

async fn quiet_hours_defer_to_08_00_across_a_sigkill_and_a_takeover(broker: common::Broker) {
    let stack = common::start_stack_on(broker).await;
    let registry = RegistryClient::new(&stack.registry_url).unwrap();
    let producer = kafka::producer(&stack.bootstrap_servers, &Default::default()).unwrap();
    let signing = key_file("signing", &SIGNING_SEED);
    let pseudonym = key_file("pseudonym", &[12; 32]);
    // A night already past, so no record needs a timestamp in the future; release on
    // stream time only (as for a replay of history), so the releases wait for the
    // record that carries stream time past 08:00, after the kill.
    let night = testkit::new_york(2026, 11, 28, 23, 0);
    let morning = testkit::new_york(2026, 11, 29, 8, 0);

    let members: Vec<String> = (0..MEMBERS).map(|i| format!("member-{i:03}")).collect();
    let sms_only = [
        (Channel::Email, ConsentStatus::OptedOut),
        (Channel::Push, ConsentStatus::OptedOut),
        (Channel::Sms, ConsentStatus::ExpressWritten),
    ];
    let joined = member_records(&registry, &members, &sms_only, night - 3_600_000).await;
    kafka::produce_all(&producer, &joined).await.unwrap();

    let settings = [
        format!("agent.signing_key_file={}", signing.display()),
        format!("agent.pseudonym_key_file={}", pseudonym.display()),
        "agent.release_on_wall_clock=false".to_owned(),
        "agent.checkpoint_every=5".to_owned(),
    ];
    let spawn = || spawn_gate(&stack, &settings);
    let mut first = spawn();
    let mut second = spawn();
    first.wait_ready(Duration::from_secs(60)).await;
    second.wait_ready(Duration::from_secs(60)).await;

    kafka::produce_all(
        &producer,
        &proposal_records(&registry, &members, "night", night).await,
    )
    .await
    .unwrap();

    // Every send deferred to 08:00, none sent.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let deferred = decisions(&stack).await;
        if deferred.len() >= MEMBERS {
            assert_eq!(deferred.len(), MEMBERS);
            for d in &deferred {
                assert_eq!(d.outcome, GateOutcome::Deferred, "{d:?}");
                assert_eq!(d.release_at, Some(Timestamp(morning)));
                assert!(d.deciding.iter().any(|p| p.policy_id == "tcpa-quiet-hours"));
            }
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {MEMBERS} deferred; logs:\n{}\n{}",
            deferred.len(),
            first.log_tail(),
            second.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert!(
        values::<Trigger>(&stack, topics::TRIGGERS_SMS)
            .await
            .is_empty()
    );

    // The night's holder dies; the survivor takes its partitions and their timers.
    first.kill9();
    // Morning comes to every partition: a profile update per member, logged at 08:01.
    kafka::produce_all(
        &producer,
        &profile_records(&registry, &members, morning + 60_000).await,
    )
    .await
    .unwrap();

    let deadline = Instant::now() + Duration::from_secs(180);
    let triggers = loop {
        let triggers: Vec<Trigger> = values(&stack, topics::TRIGGERS_SMS).await;
        if triggers.len() >= MEMBERS {
            break triggers;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {MEMBERS} sent at 08:00; survivor's log:\n{}",
            triggers.len(),
            second.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let keys: BTreeSet<&str> = triggers
        .iter()
        .map(|t| t.idempotency_key.as_str())
        .collect();
    assert_eq!(
        keys.len(),
        MEMBERS,
        "one trigger per member, each its own key"
    );
    let released: BTreeSet<String> = decisions(&stack)
        .await
        .into_iter()
        .filter(|d| d.attempt == 1)
        .map(|d| d.decision_id)
        .collect();
    for t in &triggers {
        assert_eq!(t.send_after, Timestamp(morning), "{t:?}");
        assert_eq!(t.channel, Channel::Sms);
        assert!(
            released.contains(&t.decision_id),
            "decided again at release: {t:?}"
        );
    }
    assert!(
        values::<Trigger>(&stack, topics::TRIGGERS_EMAIL)
            .await
            .is_empty()
    );

    second.terminate(Duration::from_secs(30));
    let (status, report) = swarm_audit_verify(&stack, topics::AUDIT_LOG);
    assert_eq!(status, 0, "{report}");
    assert!(report.contains("intact"), "{report}");

    // An outside consumer: Confluent's Python client with the registry's deserializer.
    let read = common::python_read(&stack, &[topics::TRIGGERS_SMS, topics::AUDIT_LOG]);
    assert_eq!(read[topics::TRIGGERS_SMS]["records"], MEMBERS);
    assert_eq!(
        read[topics::TRIGGERS_SMS]["distinct_idempotency_keys"],
        MEMBERS
    );
    assert_eq!(read[topics::AUDIT_LOG]["decisions"], 2 * MEMBERS);
    let _ = std::fs::remove_file(signing);
    let _ = std::fs::remove_file(pseudonym);
    stack.shutdown().await;
}

/// A chain of ten decisions sealed every four, as the gate writes it; the first
/// checkpoint signed by `first_seal`.
fn chain_records(partition: i32, first_seal: &SigningKey) -> Vec<AuditRecord> {
    let canonical = Canonical::new().unwrap();
    let key = SigningKey::from_bytes(&SIGNING_SEED);
    let key_id = loyalty_runtime::signing::key_id(&key.verifying_key());
    let mut chain = Chain::new(partition);
    let mut out = Vec::new();
    for i in 0..10 {
        let decision = AuditedDecision {
            decision_id: format!("{i:032x}"),
            member_pseudonym: format!("{i:032x}"),
            proposal_ref: format!("{i:032x}"),
            attempt: 0,
            offer_id: Some("stripe:SAVE20".into()),
            offer_version_id: Some(3),
            relied_on: vec![],
            channel: Some(Channel::Email),
            outcome: GateOutcome::Approved,
            release_at: None,
            deciding: vec![],
            errors: vec![],
            policy_set_hash: "h".into(),
            decided_at: Timestamp(i),
        };
        let link = chain.decision(canonical.bytes(&decision).unwrap());
        out.push(audit_record::record(
            &link,
            audit_record::Content::Decision(decision),
            &key_id,
        ));
        if i % 4 == 3 {
            let link = chain.checkpoint(if i == 3 { first_seal } else { &key });
            out.push(audit_record::record(
                &link,
                audit_record::Content::Checkpoint,
                &key_id,
            ));
        }
    }
    out
}

/// A topic, its records, and where the report must say it broke (offset, words).
type Case<'a> = (&'a str, &'a [AuditRecord], Option<(i64, &'a str)>);

#[serial_test::serial]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swarm_audit_verify_catches_each_kind_of_tampering_at_its_offset() {
    let stack = common::start_stack().await;
    let registry = RegistryClient::new(&stack.registry_url).unwrap();
    let producer = kafka::producer(&stack.bootstrap_servers, &Default::default()).unwrap();
    let gate_key = SigningKey::from_bytes(&SIGNING_SEED);
    let intact = chain_records(0, &gate_key);
    let altered = {
        let mut r = intact.clone();
        if let Some(d) = r[2].decision.as_mut() {
            d.outcome = GateOutcome::Denied;
        }
        r
    };
    let deleted = {
        let mut r = intact.clone();
        r.remove(6);
        r
    };
    let reordered = {
        let mut r = intact.clone();
        r.swap(7, 8);
        r
    };
    // The same chain with its first checkpoint signed by another key.
    let forged = chain_records(0, &SigningKey::from_bytes(&[13; 32]));
    let cases: [Case<'_>; 5] = [
        ("audit.intact", &intact, None),
        ("audit.altered", &altered, Some((2, "altered"))),
        ("audit.deleted", &deleted, Some((6, "missing"))),
        ("audit.reordered", &reordered, Some((7, "reordered"))),
        ("audit.forged", &forged, Some((4, "forged checkpoint"))),
    ];
    let encoder = swarm::replay::encoder(&registry, topics::AUDIT_LOG, AuditRecord::get_schema())
        .await
        .unwrap();
    let specs: Vec<kafka::TopicSpec> = cases
        .iter()
        .map(|(topic, ..)| kafka::TopicSpec {
            name: (*topic).to_owned(),
            partitions: 1,
            replication: -1,
            compacted: false,
            retention_ms: Some(-1),
        })
        .collect();
    kafka::ensure_topics(&stack.bootstrap_servers, &Default::default(), &specs)
        .await
        .unwrap();
    for (topic, records, _) in &cases {
        let out: Vec<OutRecord> = records
            .iter()
            .map(|r| OutRecord {
                partition: Some(0),
                ..record(topic, "k", encoder.encode(r).unwrap())
            })
            .collect();
        kafka::produce_all(&producer, &out).await.unwrap();
    }
    for (topic, _, expected) in cases {
        let (status, report) = swarm_audit_verify(&stack, topic);
        match expected {
            None => {
                assert_eq!(status, 0, "{report}");
                assert!(
                    report.contains("intact, 10 decisions, 2 checkpoints, 2 unsealed"),
                    "{report}"
                );
            }
            Some((offset, words)) => {
                assert_eq!(status, 3, "{topic}: {report}");
                assert!(
                    report.contains(&format!("BROKEN at offset {offset}"))
                        && report.contains(words),
                    "{topic}: expected {words} at offset {offset}:\n{report}"
                );
            }
        }
    }
    stack.shutdown().await;
}

common::on_each_broker!(a_gate_killed_mid_stream_loses_no_trigger_under_exactly_once);
common::on_each_broker!(a_gate_killed_mid_stream_loses_no_trigger_under_effectively_once);

async fn a_gate_killed_mid_stream_loses_no_trigger_under_exactly_once(broker: common::Broker) {
    killed_mid_stream(broker, true).await;
}

async fn a_gate_killed_mid_stream_loses_no_trigger_under_effectively_once(broker: common::Broker) {
    killed_mid_stream(broker, false).await;
}

/// Proposals for many members in the afternoon, all approved by email; the gate is
/// killed with SIGKILL once the first triggers are out and started again. Every member
/// gets their trigger. Under `exactly_once` a read_committed reader sees each
/// idempotency key once; under `effectively_once` a replayed batch may write a trigger
/// again, byte for byte the same, so the ESP deduplicates it on its key. Either way the
/// audit chain verifies (a replay's links are the same links).
async fn killed_mid_stream(broker: common::Broker, exactly_once: bool) {
    const FLOOD: usize = 600;
    let stack = common::start_stack_on(broker).await;
    let registry = RegistryClient::new(&stack.registry_url).unwrap();
    let producer = kafka::producer(&stack.bootstrap_servers, &Default::default()).unwrap();
    let signing = key_file("crash-signing", &SIGNING_SEED);
    let pseudonym = key_file("crash-pseudonym", &[14; 32]);
    let afternoon = testkit::new_york(2026, 11, 27, 14, 0);
    let members: Vec<String> = (0..FLOOD).map(|i| format!("member-{i:04}")).collect();
    let email = [(Channel::Email, ConsentStatus::OptedIn)];
    let mut all = member_records(&registry, &members, &email, afternoon - 60_000).await;
    all.extend(proposal_records(&registry, &members, "afternoon", afternoon).await);
    kafka::produce_all(&producer, &all).await.unwrap();

    let mut settings = vec![
        format!("agent.signing_key_file={}", signing.display()),
        format!("agent.pseudonym_key_file={}", pseudonym.display()),
        "agent.checkpoint_every=50".to_owned(),
        "batch_max_records=10".to_owned(),
    ];
    if exactly_once {
        settings.push("processing_guarantee=exactly_once".to_owned());
        settings.push("transactional_id=compliance-gate-crash-test".to_owned());
    }
    let spawn = || spawn_gate(&stack, &settings);
    let mut gate = spawn();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let sent =
            swarm::inspect::positioned_records(&stack.bootstrap_servers, topics::TRIGGERS_EMAIL)
                .await
                .unwrap()
                .len();
        if sent > 0 {
            assert!(sent < FLOOD, "the gate finished before it could be killed");
            break;
        }
        if Instant::now() >= deadline {
            let dead: Vec<String> =
                swarm::inspect::all_records(&stack.bootstrap_servers, "compliance-gate.dlq")
                    .await
                    .unwrap_or_default()
                    .into_iter()
                    .take(3)
                    .map(|(_, headers)| format!("{headers:?}"))
                    .collect();
            panic!(
                "no trigger; {} audit decisions; dead letters {dead:?}; log:\n{}",
                decisions(&stack).await.len(),
                gate.log_tail()
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    gate.kill9();
    let mut gate = spawn();

    let deadline = Instant::now() + Duration::from_secs(240);
    let written = loop {
        let written =
            swarm::inspect::positioned_records(&stack.bootstrap_servers, topics::TRIGGERS_EMAIL)
                .await
                .unwrap();
        let keys: BTreeSet<Vec<u8>> = written.iter().filter_map(|r| r.value.clone()).collect();
        if keys.len() >= FLOOD {
            break written;
        }
        assert!(
            Instant::now() < deadline,
            "{} of {FLOOD} triggers; log:\n{}",
            keys.len(),
            gate.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    gate.terminate(Duration::from_secs(30));
    let mut by_key: std::collections::BTreeMap<String, Vec<u8>> = Default::default();
    for r in &written {
        let bytes = r.value.clone().expect("a trigger");
        let (id, body) = wire::split(&bytes).unwrap();
        let t: Trigger = decode(registry.schema(id).await.unwrap().as_ref(), body).unwrap();
        if let Some(earlier) = by_key.insert(t.idempotency_key.clone(), bytes.clone()) {
            assert!(!exactly_once, "{} committed twice", t.idempotency_key);
            assert_eq!(earlier, bytes, "a trigger written twice differs");
        }
    }
    assert_eq!(by_key.len(), FLOOD, "every member's trigger, none lost");
    let (status, report) = swarm_audit_verify(&stack, topics::AUDIT_LOG);
    assert_eq!(status, 0, "{report}");
    let _ = std::fs::remove_file(signing);
    let _ = std::fs::remove_file(pseudonym);
    stack.shutdown().await;
}

/// `swarm bench-gate` end to end at a small rate: every proposal becomes a trigger,
/// percentiles in order, and the gate's transaction step read from its metrics.
#[serial_test::serial]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bench_gate_times_every_proposal_to_its_trigger() {
    let report = swarm::gate_latency::bench_gate(&swarm::gate_latency::GateLatencyOptions {
        rate_per_second: 40,
        seconds: 3,
        members: 50,
        partitions: 4,
        batch_max_wait_ms: 5,
        exactly_once: true,
    })
    .await
    .unwrap();
    assert_eq!(report.proposals, 120);
    assert_eq!(report.triggers, report.proposals, "{report:?}");
    assert!(report.timings.ordered(), "{report:?}");
    assert!(
        report
            .timings
            .write_mean_ms
            .get("transaction")
            .is_some_and(|ms| *ms > 0.0),
        "no transaction step in {report:?}"
    );
}
