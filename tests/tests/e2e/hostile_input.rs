//! No record stops an agent (issue 15, "no poison pills"): 10,000 random byte strings and
//! 10,000 schema-valid records with hostile values — `i64::MAX` amounts twice on one
//! member, dates in year 1 and 9999, 1 MB strings, empty, over-long and non-ASCII ids,
//! every branch of the event union — go into `loyalty.member-events.v1` and
//! `loyalty.member-profiles.v1` with all six agents running (save-offer reads both
//! directly, compliance-gate the profiles). No agent exits; every
//! rejected record is in customer-graph's DLQ with a reason; every accepted one is in the
//! member's state, which equals the same records applied in process by the same code.
//! What save-offer and compliance-gate refused is in their DLQs, each with a reason and
//! its position.
//!
//! `cargo test -p loyalty-e2e --test e2e hostile_input -- --nocapture` prints the counts
//! the README quotes.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use apache_avro::AvroSchema;
use customer_graph::{CustomerGraph, MemberFold, Settings};
use loyalty_contracts::{
    Date, Engagement, EngagementKind, InterventionOutcome, InterventionResult, MemberEvent,
    MemberProfile, OrderPlaced, OrderReturned, Payload, PointsEarned, PointsExpired,
    PointsRedeemed, ReferralCompleted, SubscriptionChanged, SubscriptionStatus, TierChanged,
    Timestamp, tables, topics,
};
use loyalty_runtime::codec::{Decoder, Encoder, leak};
use loyalty_runtime::kafka;
use loyalty_runtime::registry::RegistryClient;
use loyalty_runtime::{Agent, HandleError, Harness, Input, RejectionKind, wire};
use swarm::cdnow;

use crate::common::*;

const RANDOM_RECORDS: usize = 10_000;
const HOSTILE_RECORDS: usize = 10_000;

/// splitmix64: a small deterministic generator, so a failure replays exactly.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<T: Clone>(&mut self, options: &[T]) -> T {
        options[self.below(options.len())].clone()
    }

    /// Nothing, or what `make` makes, half the time each.
    fn maybe<T>(&mut self, make: impl FnOnce(&mut Rng) -> T) -> Option<T> {
        (self.below(2) == 1).then(|| make(self))
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

/// One produced record: where it goes, its key and value bytes as written.
struct Raw {
    topic: &'static str,
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
}

/// Random bytes in the shapes a reader meets: no wire header, a header naming an id the
/// registry never gave, one naming a real schema followed by garbage, tombstones, and
/// keys that are empty or not UTF-8.
fn random_records(rng: &mut Rng, ids: &[u32]) -> Vec<Raw> {
    (0..RANDOM_RECORDS)
        .map(|i| {
            let topic = if i % 2 == 0 {
                topics::MEMBER_EVENTS
            } else {
                topics::MEMBER_PROFILES
            };
            let key = match rng.below(6) {
                0 => None,
                1 => Some(Vec::new()),
                2 => {
                    let n = 1 + rng.below(12);
                    Some(rng.bytes(n)) // mostly not UTF-8
                }
                _ => Some(format!("r{}", rng.below(40)).into_bytes()),
            };
            let body_len = rng.below(80);
            let value = match rng.below(5) {
                0 => None,
                1 => Some(rng.bytes(body_len)),
                2 => {
                    // Byte 0x00, then an id of any size: above i32::MAX included.
                    let mut v = vec![0u8];
                    v.extend(rng.bytes(4 + body_len));
                    Some(v)
                }
                _ => {
                    let mut v = vec![0u8];
                    v.extend(rng.pick(ids).to_be_bytes());
                    v.extend(rng.bytes(body_len));
                    Some(v)
                }
            };
            Raw { topic, key, value }
        })
        .collect()
}

const MEGABYTE: usize = 1_000_000;

/// Members the hostile records are about: plain, non-ASCII, one id over the contract's
/// limit, and an empty one.
fn members() -> Vec<String> {
    let mut ids: Vec<String> = (0..30).map(|i| format!("h{i}")).collect();
    ids.extend(
        ["ünïcødé-ß", "会员-7", "🙂-member", "tab\tand\nnewline"]
            .into_iter()
            .map(String::from),
    );
    ids.push("x".repeat(300));
    ids.push(String::new());
    ids
}

/// Event times from the first to the last day a `date` can name, around now.
fn times(rng: &mut Rng, now: i64) -> Timestamp {
    let at = |y, m, d| Timestamp(Date::from_ymd(y, m, d).map_or(0, |d| d.start().0));
    rng.pick(&[
        at(1, 1, 1),
        at(1969, 12, 31),
        at(1997, 6, 1),
        at(1998, 2, 14),
        Timestamp(now - 86_400_000),
        Timestamp(now + 7_200_000), // two hours past its log timestamp
        at(9999, 12, 31),
        Timestamp(i64::MAX),
        Timestamp(i64::MIN),
    ])
}

fn amount(rng: &mut Rng) -> i64 {
    rng.pick(&[0, 1, 1_999, 250_000, -1, i64::MAX, i64::MIN, i64::MAX / 2])
}

fn text(rng: &mut Rng, big: bool) -> String {
    if big {
        "€".repeat(MEGABYTE / 3)
    } else {
        rng.pick(&["", "x", "ok", "ünï", "a b"]).to_owned()
    }
}

/// Every branch of the event union, with values picked to break things.
fn payload(rng: &mut Rng, big: bool) -> Payload {
    match rng.below(10) {
        0 => Payload::OrderPlaced(OrderPlaced {
            order_id: text(rng, false),
            amount_minor: amount(rng),
            currency: rng.pick(&["USD", "usd", "", "EURO", "€€€"]).to_owned(),
            margin_minor: rng.maybe(amount),
            items: rng.pick(&[0, 1, -3, i32::MAX, i32::MIN]),
            location_id: rng.maybe(|r| text(r, big)),
            product_line: rng.maybe(|r| text(r, false)),
        }),
        1 => Payload::OrderReturned(OrderReturned {
            order_id: text(rng, false),
            amount_minor: amount(rng),
            currency: rng.pick(&["USD", "X"]).to_owned(),
        }),
        2 => Payload::PointsEarned(PointsEarned {
            points: amount(rng),
            reason: text(rng, big),
            qualifying: rng.below(2) == 0,
        }),
        3 => Payload::PointsRedeemed(PointsRedeemed {
            points: amount(rng),
            reward_id: rng.maybe(|r| text(r, big)),
        }),
        4 => Payload::PointsExpired(PointsExpired {
            points: amount(rng),
        }),
        5 => Payload::TierChanged(TierChanged {
            program_id: rng.pick(&[cdnow::PROGRAM_ID, "", "other"]).to_owned(),
            from_tier: rng.pick(&[None, Some("member".to_owned())]),
            to_tier: rng.pick(&["gold", "platinum", "", "silver"]).to_owned(),
            reason: text(rng, big),
        }),
        6 => Payload::SubscriptionChanged(SubscriptionChanged {
            subscription_id: text(rng, false),
            status: rng.pick(&[
                SubscriptionStatus::Active,
                SubscriptionStatus::PastDue,
                SubscriptionStatus::Cancelled,
            ]),
            plan: rng.maybe(|r| text(r, big)),
            billing_interval_days: rng.pick(&[None, Some(0), Some(-1), Some(i32::MAX)]),
        }),
        7 => Payload::Engagement(Engagement {
            kind: rng.pick(&[EngagementKind::EmailOpen, EngagementKind::SocialShare]),
            campaign_id: rng.maybe(|r| text(r, big)),
        }),
        8 => Payload::ReferralCompleted(ReferralCompleted {
            referred_member_id: text(rng, big),
        }),
        _ => Payload::InterventionOutcome(InterventionOutcome {
            intervention_id: text(rng, false),
            intervention_type: rng.pick(&["offer", "coupon_blast", ""]).to_owned(),
            result: rng.pick(&[InterventionResult::Delivered, InterventionResult::Converted]),
            value_minor: rng.maybe(amount),
            holdout: rng.pick(&[None, Some(true), Some(false)]),
        }),
    }
}

/// Schema-valid events and profiles with hostile values, keyed by their member (an
/// empty member leaves the key empty).
fn hostile_records(rng: &mut Rng, now: i64, events: &Encoder, profiles: &Encoder) -> Vec<Raw> {
    let members = members();
    let mut out = Vec::with_capacity(HOSTILE_RECORDS + 2);
    // The two i64::MAX earnings of one member: the first fits, the second overflows.
    for id in ["max-1", "max-2"] {
        let e = MemberEvent {
            event_id: id.into(),
            member_id: "h0".into(),
            brand_id: "b".into(),
            occurred_at: Timestamp(now - 3_600_000),
            source: "fuzz".into(),
            source_member_id: None,
            payload: Payload::PointsEarned(PointsEarned {
                points: i64::MAX,
                reason: "hostile".into(),
                qualifying: true,
            }),
        };
        out.push(Raw {
            topic: topics::MEMBER_EVENTS,
            key: Some(b"h0".to_vec()),
            value: events.encode(&e).ok(),
        });
    }
    for i in 0..HOSTILE_RECORDS - 2 {
        // A handful of megabyte strings: enough to prove the point, few enough to be quick.
        let big = i % 2_000 == 999;
        let member = rng.pick(&members);
        if i % 5 == 4 {
            let key_member = if rng.below(20) == 0 {
                "someone-else".to_owned()
            } else {
                member.clone()
            };
            let p = MemberProfile {
                member_id: member.clone(),
                program_id: match rng.below(3) {
                    0 => cdnow::PROGRAM_ID.to_owned(),
                    1 => String::new(),
                    _ => text(rng, big),
                },
                enrolled_at: times(rng, now),
                birth_date: rng.pick(&[None, Some(Date(i32::MIN)), Some(Date(10_000))]),
                country: rng.pick(&["US", "", "ZZ"]).to_owned(),
                region: rng.maybe(|r| text(r, false)),
                postal_code: None,
                time_zone: rng
                    .pick(&["America/New_York", "", "Mars/Olympus"])
                    .to_owned(),
                locale: "en-US".into(),
                currency: rng.pick(&["USD", ""]).to_owned(),
                objects_to_profiling: rng.below(2) == 0,
                updated_at: times(rng, now),
                acquisition_channel: None,
                payment_method: None,
                billing_frequency: None,
                borrower_status: None,
                vertical: None,
                plan_tier: None,
                reenrolled_at: None,
            };
            out.push(Raw {
                topic: topics::MEMBER_PROFILES,
                key: Some(key_member.into_bytes()),
                value: profiles.encode(&p).ok(),
            });
        } else {
            let big_payload = big && rng.below(2) == 0;
            let e = MemberEvent {
                // Some ids repeat, so duplicates are part of the mix.
                event_id: match rng.below(10) {
                    0..=6 => format!("e{i}"),
                    7 | 8 => format!("dup{}", rng.below(50)),
                    _ => String::new(),
                },
                member_id: member.clone(),
                brand_id: if big {
                    text(rng, true)
                } else {
                    rng.pick(&["b", "", "ß"]).to_owned()
                },
                occurred_at: times(rng, now),
                source: rng.pick(&["fuzz", ""]).to_owned(),
                source_member_id: rng.pick(&[None, Some(member.clone()), Some("card-9".into())]),
                payload: payload(rng, big_payload),
            };
            out.push(Raw {
                topic: topics::MEMBER_EVENTS,
                key: Some(member.into_bytes()),
                value: events.encode(&e).ok(),
            });
        }
    }
    out
}

/// The same records through customer-graph's own `handle`, in process, with the
/// runtime's rules for what never reaches it: which are rejected (by kind) and each
/// member's last member-state body.
struct Reference {
    rejected: BTreeMap<&'static str, usize>,
    /// Why each rejected record was rejected, by its position in the records.
    reasons: BTreeMap<usize, String>,
    accepted: usize,
    states: BTreeMap<String, Vec<u8>>,
}

fn reference(records: &[Raw], writers: &HashMap<u32, Decoder>, logged_at: i64) -> Reference {
    let agent = CustomerGraph::new(&Settings {
        default_program_id: cdnow::PROGRAM_ID.into(),
        ..Settings::default()
    });
    let mut harness = Harness::new(&agent).unwrap();
    harness.put_table(&tables::PROGRAMS, cdnow::PROGRAM_ID, cdnow::demo_program());
    let mut states: HashMap<String, Option<MemberFold>> = HashMap::new();
    let mut rejected: BTreeMap<&'static str, usize> = BTreeMap::new();
    let mut accepted = 0;
    let mut reasons = BTreeMap::new();
    for (i, r) in records.iter().enumerate() {
        let mut reject = |kind: RejectionKind| *rejected.entry(kind.as_str()).or_default() += 1;
        let key = match r.key.as_deref().map(std::str::from_utf8) {
            Some(Ok(key)) if !key.is_empty() => key,
            _ => {
                reject(RejectionKind::BadKey);
                continue;
            }
        };
        let value = match &r.value {
            None => None,
            Some(bytes) => match wire::split(bytes) {
                Err(e) => {
                    reject(e.kind);
                    continue;
                }
                Ok((id, body)) => match writers.get(&id) {
                    None => {
                        reject(RejectionKind::UnknownSchemaId);
                        continue;
                    }
                    Some(decoder) => Some((decoder, body)),
                },
            },
        };
        let input = Input {
            topic: r.topic,
            partition: 0,
            offset: 0,
            timestamp: Some(logged_at),
            key,
            value,
        };
        let slot = states.entry(key.to_owned()).or_default();
        let mut state = slot.clone();
        let emitted = harness.emitted.len();
        let result = {
            let mut ctx = harness.context();
            let result = agent.handle(&input, &mut state, &mut ctx);
            assert!(
                ctx.rekeyed().is_none(),
                "hostile records are keyed by their member"
            );
            result
        };
        match result {
            Ok(()) => {
                *slot = state;
                accepted += 1;
            }
            Err(HandleError::Rejected(rejection)) => {
                harness.emitted.truncate(emitted);
                reject(rejection.kind);
                reasons.insert(i, rejection.reason);
            }
            Err(HandleError::Fatal(reason)) => panic!("fatal in the reference: {reason}"),
        }
    }
    let mut latest = BTreeMap::new();
    for e in harness.emitted.drain(..) {
        if let Some(payload) = e.payload {
            latest.insert(e.key, payload[5..].to_vec());
        }
    }
    Reference {
        rejected,
        reasons,
        accepted,
        states: latest,
    }
}

#[serial_test::serial]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn hostile_records_reach_the_dlq_and_no_agent_stops() {
    // The stack comes with the contract's topics and schemas set up.
    let stack = start_stack().await;
    let registry = RegistryClient::new(&stack.registry_url).unwrap();
    let event_schema = MemberEvent::get_schema();
    let profile_schema = MemberProfile::get_schema();
    let event_id = registry
        .register(&format!("{}-value", topics::MEMBER_EVENTS), &event_schema)
        .await
        .unwrap();
    let profile_id = registry
        .register(
            &format!("{}-value", topics::MEMBER_PROFILES),
            &profile_schema,
        )
        .await
        .unwrap();
    let events = Encoder::new(event_id, leak(event_schema.clone())).unwrap();
    let profiles = Encoder::new(profile_id, leak(profile_schema.clone())).unwrap();
    let writers: HashMap<u32, Decoder> = [
        (event_id, Decoder::new(leak(event_schema)).unwrap()),
        (profile_id, Decoder::new(leak(profile_schema)).unwrap()),
    ]
    .into_iter()
    .collect();

    // The program, and a population fit so tier-transition starts too.
    let producer = kafka::producer(
        &stack.bootstrap_servers,
        &[("message.max.bytes".to_owned(), "4000000".to_owned())].into(),
    )
    .unwrap();
    let programs = Encoder::new(
        registry
            .register(
                &format!("{}-value", topics::PROGRAMS),
                &loyalty_contracts::Program::get_schema(),
            )
            .await
            .unwrap(),
        leak(loyalty_contracts::Program::get_schema()),
    )
    .unwrap();
    let demo = cdnow::demo_program();
    kafka::produce_all(
        &producer,
        &[record(
            topics::PROGRAMS,
            &demo.program_id,
            programs.encode(&demo).unwrap(),
        )],
    )
    .await
    .unwrap();
    let sample: BTreeMap<String, _> = reference_bodies(&data("CDNOW_sample.txt"))
        .iter()
        .map(|(k, v)| (k.clone(), decode_state(v)))
        .collect();
    swarm::fit::publish_population(&stack.bootstrap_servers, &stack.registry_url, &sample)
        .await
        .unwrap();

    let dir = std::env::temp_dir().join(format!("loyalty-hostile-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let key_file = dir.join("ltv.key");
    let _ = std::fs::remove_file(&key_file);
    swarm::verify::keygen(&key_file).unwrap();
    let key_setting = format!("agent.signing_key_file={}", key_file.display());
    let gate_keys: Vec<String> = ["signing", "pseudonym"]
        .iter()
        .map(|name| {
            let file = dir.join(format!("gate-{name}.key"));
            let _ = std::fs::remove_file(&file);
            swarm::verify::keygen(&file).unwrap();
            format!("agent.{name}_key_file={}", file.display())
        })
        .collect();
    let mut agents = vec![
        (
            "customer-graph",
            AgentProcess::spawn("customer-graph", &stack, &[]),
        ),
        ("cohort", AgentProcess::spawn("cohort", &stack, &[])),
        (
            "tier-transition",
            AgentProcess::spawn("tier-transition", &stack, &[]),
        ),
        (
            "ltv",
            AgentProcess::spawn("ltv", &stack, &["--set", &key_setting]),
        ),
        // Reads the same member events and profiles directly.
        ("save-offer", AgentProcess::spawn("save-offer", &stack, &[])),
        // Reads the same profiles directly.
        (
            "compliance-gate",
            AgentProcess::spawn(
                "compliance-gate",
                &stack,
                &["--set", &gate_keys[0], "--set", &gate_keys[1]],
            ),
        ),
    ];
    for (_, agent) in &agents {
        agent.wait_ready(Duration::from_secs(90)).await;
    }

    let now = now_ms();
    let mut rng = Rng(15);
    let mut records = random_records(&mut rng, &[event_id, profile_id]);
    records.extend(hostile_records(&mut rng, now, &events, &profiles));
    // Profiles first, then events: the agent reads the two topics as separate
    // partitions, in no fixed order between them, so the run is made to match one.
    records.sort_by_key(|r| r.topic != topics::MEMBER_PROFILES);
    let profiles_end = records
        .iter()
        .position(|r| r.topic != topics::MEMBER_PROFILES)
        .unwrap_or(records.len());
    let expected = reference(&records, &writers, now);

    produce_raw(&stack.bootstrap_servers, &records[..profiles_end]).await;
    wait_caught_up(&stack, "customer-graph", Duration::from_secs(300)).await;
    produce_raw(&stack.bootstrap_servers, &records[profiles_end..]).await;

    wait_caught_up(&stack, "customer-graph", Duration::from_secs(300)).await;
    for agent in ["cohort", "tier-transition", "ltv"] {
        wait_caught_up_on(
            &stack,
            agent,
            &[topics::MEMBER_STATE],
            Duration::from_secs(300),
        )
        .await;
    }
    wait_caught_up_on(
        &stack,
        "save-offer",
        &[topics::MEMBER_EVENTS, topics::MEMBER_PROFILES],
        Duration::from_secs(300),
    )
    .await;
    wait_caught_up_on(
        &stack,
        "compliance-gate",
        &[topics::MEMBER_PROFILES],
        Duration::from_secs(300),
    )
    .await;
    // Whatever save-offer and the gate refused reached their DLQs with a reason and its
    // position.
    for dlq in ["save-offer.dlq", "compliance-gate.dlq"] {
        let dead = swarm::inspect::all_records(&stack.bootstrap_servers, dlq)
            .await
            .unwrap();
        for (_, headers) in &dead {
            let has = |name: &str| headers.iter().any(|(k, v)| k == name && !v.is_empty());
            assert!(
                has("dlq.error.reason") && has("dlq.source.offset"),
                "{dlq}: {headers:?}"
            );
        }
        println!("{dlq}: {} records", dead.len());
    }

    for (name, agent) in &mut agents {
        assert!(
            agent.child.try_wait().unwrap().is_none(),
            "{name} exited:\n{}",
            agent.log_tail()
        );
        assert_eq!(
            agent.get("/healthz").await.map(|r| r.0),
            Some(200),
            "{name}"
        );
    }

    let dead = swarm::inspect::all_records(&stack.bootstrap_servers, "customer-graph.dlq")
        .await
        .unwrap();
    let mut kinds: BTreeMap<String, usize> = BTreeMap::new();
    for (_, headers) in &dead {
        let header = |name: &str| {
            headers
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        };
        assert!(!header("dlq.error.reason").is_empty(), "{headers:?}");
        assert!(!header("dlq.source.offset").is_empty(), "{headers:?}");
        *kinds.entry(header("dlq.error.kind")).or_default() += 1;
    }
    let expected_kinds: BTreeMap<String, usize> = expected
        .rejected
        .iter()
        .map(|(k, n)| ((*k).to_owned(), *n))
        .collect();
    println!(
        "hostile input: {} records, {} accepted, rejected by kind {expected_kinds:?}",
        records.len(),
        expected.accepted
    );
    if kinds != expected_kinds {
        let mut seen: BTreeMap<String, i64> = BTreeMap::new();
        for reason in expected.reasons.values() {
            *seen.entry(reason.chars().take(50).collect()).or_default() += 1;
        }
        for (_, headers) in &dead {
            if let Some((_, reason)) = headers.iter().find(|(k, _)| k == "dlq.error.reason") {
                *seen.entry(reason.chars().take(50).collect()).or_default() -= 1;
            }
        }
        seen.retain(|_, n| *n != 0);
        println!("reasons the reference has more of (+) or fewer of (-): {seen:#?}");
    }
    assert_eq!(
        kinds, expected_kinds,
        "every rejected record, and only those, in the DLQ"
    );
    assert_eq!(
        expected.accepted + expected.rejected.values().sum::<usize>(),
        records.len()
    );

    let states = member_state_bodies(&stack).await;
    assert_eq!(
        states.keys().collect::<Vec<_>>(),
        expected.states.keys().collect::<Vec<_>>(),
        "the same members"
    );
    for (member, body) in &expected.states {
        assert_eq!(
            decode_state(&states[member]),
            decode_state(body),
            "member {member:?}: every accepted record, and only those, in its state"
        );
    }
    let h0 = decode_state(&states["h0"]);
    assert!(
        h0.points.earned > 0,
        "the first i64::MAX earning kept, the second refused: {:?}",
        h0.points
    );

    // The other agents dead-letter what they cannot use, each record with a reason.
    for agent in ["cohort", "tier-transition", "ltv"] {
        for (_, headers) in
            swarm::inspect::all_records(&stack.bootstrap_servers, &format!("{agent}.dlq"))
                .await
                .unwrap()
        {
            assert!(
                headers
                    .iter()
                    .any(|(k, v)| k == "dlq.error.reason" && !v.is_empty()),
                "{agent}: {headers:?}"
            );
        }
    }
    drop(agents);
    stack.shutdown().await;
    let _ = std::fs::remove_dir_all(dir);
}

/// Produce the records with their raw byte keys (librdkafka takes any bytes), in order,
/// each partition by the key as every producer of the swarm picks it.
async fn produce_raw(bootstrap_servers: &str, records: &[Raw]) {
    use rdkafka::producer::{FutureProducer, FutureRecord};
    let producer: FutureProducer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", bootstrap_servers)
        .set("partitioner", "murmur2_random")
        .set("message.max.bytes", "4000000")
        .set("linger.ms", "20")
        .create()
        .unwrap();
    let mut pending = Vec::with_capacity(records.len());
    for r in records {
        let mut record: FutureRecord<'_, [u8], [u8]> = FutureRecord::to(r.topic);
        if let Some(key) = &r.key {
            record = record.key(key.as_slice());
        }
        if let Some(value) = &r.value {
            record = record.payload(value.as_slice());
        }
        loop {
            match producer.send_result(record) {
                Ok(delivery) => {
                    pending.push(delivery);
                    break;
                }
                Err((_, back)) => {
                    record = back;
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
        }
    }
    for delivery in pending {
        delivery.await.unwrap().unwrap();
    }
}
