//! compliance-gate's `handle` and `on_timer` on real encoded records: a proposal
//! approved becomes a trigger on the first consented channel, one at 23:00 recipient
//! time is deferred to 08:00 and decided again then (denied if consent went meanwhile),
//! a plan change goes to review with its explanation, a member without a profile is
//! denied, a proposal delivered twice is decided once, and every decision is a link of
//! a chain that verifies under the checkpoint key.

use compliance_gate::ComplianceGate;
use compliance_gate::agent::state::Member;
use compliance_gate::agent::{JOIN_WAIT, RELEASE_STREAM, RELEASE_WALL};
use compliance_gate::audit::{self, Link};
use compliance_gate::audit_record::{Canonical, link};
use compliance_gate::settings::Settings;
use compliance_gate::testkit::*;
use ed25519_dalek::SigningKey;
use loyalty_contracts::*;
use loyalty_runtime::codec::decode;
use loyalty_runtime::{Agent, Clock, Harness, Record, Timer, Topic};

const SEED: [u8; 32] = [5; 32];

fn key_file(name: &str, bytes: &[u8; 32]) -> std::path::PathBuf {
    // One file per rig: tests run in parallel, and a file being rewritten reads empty.
    static RIGS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let rig = RIGS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let path = std::env::temp_dir().join(format!("gate-test-{}-{rig}-{name}", std::process::id()));
    std::fs::write(&path, loyalty_runtime::signing::to_hex(bytes)).unwrap();
    path
}

fn settings() -> Settings {
    Settings {
        signing_key_file: Some(key_file("signing", &SEED)),
        pseudonym_key_file: Some(key_file("pseudonym", &[9; 32])),
        checkpoint_every: 2,
        ..Settings::default()
    }
}

struct Rig {
    agent: ComplianceGate,
    harness: Harness<ComplianceGate>,
    offset: i64,
    /// Every audit record written, in order.
    audit: Vec<AuditRecord>,
}

fn rig() -> Rig {
    let agent = ComplianceGate::new(&settings());
    let harness = Harness::new(&agent).expect("harness");
    Rig {
        agent,
        harness,
        offset: 0,
        audit: Vec::new(),
    }
}

/// What one call emitted, by topic.
#[derive(Debug, Default)]
struct Out {
    triggers: Vec<(String, Trigger)>,
    reviews: Vec<ComplianceReview>,
    /// The timers the call left scheduled, by name.
    timers: Vec<Timer>,
}

impl Rig {
    fn feed<T: serde::Serialize + apache_avro::AvroSchema + 'static>(
        &mut self,
        topic: &Topic<T>,
        key: &str,
        value: &T,
        state: &mut Option<Member>,
    ) -> Out {
        self.offset += 1;
        let record = Record::new(topic, key, value)
            .expect("record")
            .at(self.offset);
        self.harness.emitted.clear();
        let mut ctx = self.harness.context();
        self.agent
            .handle(&record.input(), state, &mut ctx)
            .expect("handled");
        let timers = [RELEASE_WALL, RELEASE_STREAM, JOIN_WAIT]
            .iter()
            .filter_map(|prefix| {
                let id = format!("{prefix}{}", key_of(value));
                ctx.timer(&id).cloned()
            })
            .collect();
        drop(ctx);
        self.collect(timers)
    }

    fn fire(&mut self, key: &str, timer: &Timer, state: &mut Option<Member>) -> Out {
        self.harness.emitted.clear();
        let mut ctx = self.harness.context();
        self.agent
            .on_timer(key, timer, state, &mut ctx)
            .expect("fired");
        drop(ctx);
        self.collect(Vec::new())
    }

    fn collect(&mut self, timers: Vec<Timer>) -> Out {
        let mut out = Out {
            timers,
            ..Out::default()
        };
        for e in &self.harness.emitted {
            let bytes = e.payload.as_deref().expect("a value");
            match e.topic {
                topics::AUDIT_LOG => {
                    assert_eq!(
                        e.partition,
                        Some(0),
                        "the chain stays in the task's partition"
                    );
                    self.audit.push(body(bytes));
                }
                topics::COMPLIANCE_REVIEWS => out.reviews.push(body(bytes)),
                t => out.triggers.push((t.to_owned(), body(bytes))),
            }
        }
        out
    }

    /// The audit records written, read back as the links they carry.
    fn links(&self) -> Vec<Link> {
        let canonical = Canonical::new().unwrap();
        self.audit
            .iter()
            .map(|r| link(r, &canonical).unwrap())
            .collect()
    }

    fn decisions(&self) -> Vec<&AuditedDecision> {
        self.audit
            .iter()
            .filter_map(|r| r.decision.as_ref())
            .collect()
    }
}

/// The proposal id of a proposal, for its timer names.
fn key_of<T: 'static>(value: &T) -> String {
    (value as &dyn std::any::Any)
        .downcast_ref::<OfferProposal>()
        .map(|p| p.proposal_id.clone())
        .unwrap_or_default()
}

fn body<T: serde::de::DeserializeOwned + apache_avro::AvroSchema>(bytes: &[u8]) -> T {
    let (_, avro) = loyalty_runtime::wire::split(bytes).expect("framed");
    decode(&T::get_schema(), avro).expect("decodes")
}

/// A member who may be reached by SMS alone (and has TCPA consent for it).
const SMS_ONLY: [(Channel, ConsentStatus); 3] = [
    (Channel::Email, ConsentStatus::OptedOut),
    (Channel::Push, ConsentStatus::OptedOut),
    (Channel::Sms, ConsentStatus::ExpressWritten),
];

fn member_with(rig: &mut Rig, id: &str, given: &[(Channel, ConsentStatus)]) -> Option<Member> {
    let mut state = None;
    rig.feed(&catalog::MEMBER_PROFILES, id, &profile(id), &mut state);
    rig.feed(
        &catalog::MEMBER_CONSENTS,
        id,
        &consents(id, given),
        &mut state,
    );
    state
}

#[test]
fn an_approved_proposal_becomes_one_trigger_on_the_first_consented_channel() {
    let mut rig = rig();
    let mut state = member_with(
        &mut rig,
        "m1",
        &[
            (Channel::Email, ConsentStatus::OptedOut),
            (Channel::Sms, ConsentStatus::ExpressWritten),
        ],
    );
    let at = new_york(2026, 6, 10, 14, 0);
    let out = rig.feed(
        &catalog::OFFER_PROPOSALS,
        "m1",
        &proposal("m1", "p1", OfferType::PercentOff, at),
        &mut state,
    );
    assert_eq!(out.triggers.len(), 1, "{out:?}");
    let (topic, trigger) = &out.triggers[0];
    assert_eq!(topic, topics::TRIGGERS_SMS, "email is opted out, so SMS");
    assert_eq!(
        trigger.idempotency_key,
        compliance_gate::esp::idempotency_key("p1", Channel::Sms)
    );
    assert_eq!(trigger.send_after, Timestamp(at));
    // The decision id names neither the member nor the proposal in the clear.
    assert!(!trigger.decision_id.contains("p1") && trigger.decision_id.len() == 32);
    let decision = rig.decisions()[0].clone();
    assert_eq!(decision.outcome, GateOutcome::Approved);
    assert_eq!(
        (decision.attempt, decision.channel),
        (0, Some(Channel::Sms))
    );
    assert_eq!(decision.decision_id, trigger.decision_id);
    let ltv = decision
        .relied_on
        .iter()
        .find(|r| r.kind == "member_ltv")
        .expect("the member-ltv record relied on");
    assert_eq!(
        ltv.attestation_hash.as_deref(),
        Some("ab".repeat(32).as_str())
    );
    for r in &decision.relied_on {
        assert!(!r.reference.contains("m1"), "{r:?} names the member");
    }
    assert!(
        decision
            .deciding
            .iter()
            .any(|d| d.policy_id == "sms-express-written-consent"),
        "{:?}",
        decision.deciding
    );
    assert!(!decision.member_pseudonym.contains("m1"));

    // Delivered again (a replayed proposal): decided once.
    let again = rig.feed(
        &catalog::OFFER_PROPOSALS,
        "m1",
        &proposal("m1", "p1", OfferType::PercentOff, at),
        &mut state,
    );
    assert!(again.triggers.is_empty());
    assert_eq!(rig.decisions().len(), 1);
}

/// `proposal` with the offer's channel preferences set.
fn asking(id: &str, at: i64, channels: Option<Vec<Channel>>) -> OfferProposal {
    let mut p = proposal("m1", id, OfferType::PercentOff, at);
    if let Some(offer) = p.offer.as_mut() {
        offer.channels = channels;
    }
    p
}

#[test]
fn an_offer_that_names_channels_is_tried_on_those_alone_and_in_app_only_where_asked() {
    let mut rig = rig();
    let mut state = member_with(
        &mut rig,
        "m1",
        &[
            (Channel::Email, ConsentStatus::OptedIn),
            (Channel::Sms, ConsentStatus::OptedOut),
            (Channel::InApp, ConsentStatus::OptedIn),
        ],
    );
    let at = new_york(2026, 6, 10, 14, 0);
    let mut sent = |rig: &mut Rig, id: &str, channels: Option<Vec<Channel>>| {
        let out = rig.feed(
            &catalog::OFFER_PROPOSALS,
            "m1",
            &asking(id, at, channels),
            &mut state,
        );
        let decision = rig.decisions().last().cloned().cloned().expect("decided");
        (out, decision)
    };

    let (out, _) = sent(
        &mut rig,
        "asks-in-app",
        Some(vec![Channel::InApp, Channel::Email]),
    );
    let [(topic, trigger)] = out.triggers.as_slice() else {
        panic!("one trigger, not {out:?}");
    };
    assert_eq!(
        (topic.as_str(), trigger.channel),
        (topics::TRIGGERS_IN_APP, Channel::InApp)
    );

    let (out, _) = sent(&mut rig, "asks-nothing", None);
    assert_eq!(
        out.triggers
            .iter()
            .map(|(t, _)| t.as_str())
            .collect::<Vec<_>>(),
        [topics::TRIGGERS_EMAIL],
        "without preferences the gate's order, which has no in-app"
    );

    // SMS is opted out and the offer allows nothing else: no falling back to email.
    let (out, decision) = sent(&mut rig, "asks-sms", Some(vec![Channel::Sms]));
    assert!(out.triggers.is_empty(), "{out:?}");
    assert_eq!(
        (decision.outcome, decision.channel),
        (GateOutcome::Denied, Some(Channel::Sms))
    );

    // Direct mail has no trigger topic: nothing the gate can send on.
    let (out, decision) = sent(&mut rig, "asks-mail", Some(vec![Channel::DirectMail]));
    assert!(out.triggers.is_empty(), "{out:?}");
    assert_eq!(decision.outcome, GateOutcome::Denied);
    assert!(
        decision.errors.iter().any(|e| e.contains("direct_mail")),
        "{:?}",
        decision.errors
    );
}

#[test]
fn a_proposal_at_23_00_is_sent_at_08_00_recipient_time_and_rechecked_then() {
    let mut rig = rig();
    let mut state = member_with(&mut rig, "m1", &SMS_ONLY);
    // The night daylight saving ends in New York: 23:00 EDT, then 08:00 EST.
    let at = new_york(2026, 10, 31, 23, 0);
    let out = rig.feed(
        &catalog::OFFER_PROPOSALS,
        "m1",
        &proposal("m1", "p1", OfferType::PercentOff, at),
        &mut state,
    );
    assert!(out.triggers.is_empty(), "deferred, not sent: {out:?}");
    let release = new_york(2026, 11, 1, 8, 0);
    assert_eq!(
        release - at,
        10 * 3_600_000,
        "nine wall hours plus the hour DST gives back"
    );
    let clocks: Vec<(Clock, i64)> = out.timers.iter().map(|t| (t.clock, t.at)).collect();
    assert_eq!(
        clocks,
        [(Clock::WallClock, release), (Clock::StreamTime, release)]
    );
    let deferral = rig.decisions()[0].clone();
    assert_eq!(deferral.outcome, GateOutcome::Deferred);
    assert_eq!(deferral.release_at, Some(Timestamp(release)));
    assert!(
        deferral
            .deciding
            .iter()
            .any(|d| d.policy_id == "tcpa-quiet-hours")
    );

    // Released: sent for 08:00.
    let out = rig.fire("m1", &out.timers[1].clone(), &mut state);
    assert_eq!(out.triggers.len(), 1, "{out:?}");
    assert_eq!(out.triggers[0].1.send_after, Timestamp(release));
    let released = rig.decisions()[1].clone();
    assert_eq!(
        (released.attempt, released.outcome),
        (1, GateOutcome::Approved)
    );
    assert_eq!(out.triggers[0].1.decision_id, released.decision_id);
    // The other clock's timer finds nothing left to release.
    let late = rig.fire(
        "m1",
        &Timer {
            name: format!("{RELEASE_WALL}p1"),
            clock: Clock::WallClock,
            at: release,
        },
        &mut state,
    );
    assert!(late.triggers.is_empty());
    assert_eq!(rig.decisions().len(), 2);

    // Deferred again, and consent withdrawn before the release: denied then.
    let out = rig.feed(
        &catalog::OFFER_PROPOSALS,
        "m1",
        &proposal(
            "m1",
            "p2",
            OfferType::PercentOff,
            new_york(2026, 11, 1, 22, 30),
        ),
        &mut state,
    );
    let timer = out.timers[0].clone();
    rig.feed(
        &catalog::MEMBER_CONSENTS,
        "m1",
        &consents(
            "m1",
            &[
                (Channel::Email, ConsentStatus::OptedOut),
                (Channel::Push, ConsentStatus::OptedOut),
                (Channel::Sms, ConsentStatus::OptedOut),
            ],
        ),
        &mut state,
    );
    let out = rig.fire("m1", &timer, &mut state);
    assert!(out.triggers.is_empty());
    let last = rig.decisions().last().copied().cloned().unwrap();
    assert_eq!(last.outcome, GateOutcome::Denied, "{last:?}");
    assert_eq!((last.attempt, last.channel), (1, Some(Channel::Email)));
}

#[test]
fn a_plan_change_goes_to_review_with_what_the_member_is_owed() {
    let mut rig = rig();
    let mut state = None;
    let berlin = MemberProfile {
        country: "DE".into(),
        region: None,
        time_zone: "Europe/Berlin".into(),
        ..profile("m1")
    };
    rig.feed(&catalog::MEMBER_PROFILES, "m1", &berlin, &mut state);
    rig.feed(
        &catalog::MEMBER_CONSENTS,
        "m1",
        &consents("m1", &[(Channel::Email, ConsentStatus::OptedIn)]),
        &mut state,
    );
    let out = rig.feed(
        &catalog::OFFER_PROPOSALS,
        "m1",
        &proposal(
            "m1",
            "p1",
            OfferType::DowngradeTier,
            new_york(2026, 6, 10, 14, 0),
        ),
        &mut state,
    );
    assert!(out.triggers.is_empty());
    assert_eq!(out.reviews.len(), 1, "{out:?}");
    let review = &out.reviews[0];
    assert!(
        review.explanation.contains("Art. 22"),
        "{}",
        review.explanation
    );
    assert!(
        review.explanation.contains("contest"),
        "{}",
        review.explanation
    );
    assert_eq!(rig.decisions()[0].outcome, GateOutcome::NeedsReview);
}

#[test]
fn a_proposal_before_the_profile_waits_for_it_and_is_denied_if_it_never_comes() {
    let mut rig = rig();
    let at = new_york(2026, 6, 10, 14, 0);
    // Before the member's profile and consents: it waits.
    let mut state = None;
    let out = rig.feed(
        &catalog::OFFER_PROPOSALS,
        "m1",
        &proposal("m1", "p1", OfferType::PercentOff, at),
        &mut state,
    );
    assert!(out.triggers.is_empty() && rig.decisions().is_empty());
    assert_eq!(out.timers[0].name, format!("{JOIN_WAIT}p1"));
    assert_eq!(out.timers[0].clock, Clock::WallClock);
    rig.feed(&catalog::MEMBER_PROFILES, "m1", &profile("m1"), &mut state);
    assert!(rig.decisions().is_empty(), "consents are not known yet");
    let out = rig.feed(
        &catalog::MEMBER_CONSENTS,
        "m1",
        &consents("m1", &[(Channel::Email, ConsentStatus::OptedIn)]),
        &mut state,
    );
    assert_eq!(out.triggers.len(), 1, "decided once both arrived: {out:?}");
    assert_eq!(out.triggers[0].1.decided_at, Timestamp(at));

    // Another member whose profile never comes: decided when the wait is over, denied.
    let mut state = None;
    let out = rig.feed(
        &catalog::OFFER_PROPOSALS,
        "m2",
        &proposal("m2", "p2", OfferType::PercentOff, at),
        &mut state,
    );
    // The wall clock is past the wait while stream time is not (catching up): it goes
    // on waiting, in stream time.
    let wait = out.timers[0].clone();
    rig.fire("m2", &wait, &mut state);
    assert_eq!(rig.decisions().len(), 1, "still waiting");
    rig.harness.stream_time = wait.at;
    let out = rig.fire("m2", &wait, &mut state);
    assert!(out.triggers.is_empty());
    let d = rig.decisions().last().copied().cloned().unwrap();
    assert_eq!(d.outcome, GateOutcome::Denied);
    assert!(d.errors[0].contains("no member profile"), "{:?}", d.errors);
}

#[test]
fn every_decision_is_a_link_of_a_chain_that_verifies() {
    let mut rig = rig();
    let mut states: Vec<Option<Member>> = (0..3)
        .map(|i| {
            member_with(
                &mut rig,
                &format!("m{i}"),
                &[(Channel::Email, ConsentStatus::OptedIn)],
            )
        })
        .collect();
    for (i, state) in states.iter_mut().enumerate() {
        let m = format!("m{i}");
        rig.feed(
            &catalog::OFFER_PROPOSALS,
            &m,
            &proposal(
                &m,
                &format!("p{i}"),
                OfferType::PercentOff,
                new_york(2026, 6, 10, 14, 0),
            ),
            state,
        );
    }
    let links = rig.links();
    // Three decisions and a checkpoint after the second (checkpoint_every = 2).
    assert_eq!(links.len(), 4);
    let key = SigningKey::from_bytes(&SEED).verifying_key();
    let verified = audit::verify(0, &links, &key).expect("intact");
    assert_eq!(
        (verified.decisions, verified.checkpoints, verified.unsealed),
        (3, 1, 1)
    );
    // Pseudonyms differ per member.
    let pseudonyms: std::collections::BTreeSet<&str> = rig
        .decisions()
        .iter()
        .map(|d| d.member_pseudonym.as_str())
        .collect();
    assert_eq!(pseudonyms.len(), 3);
}

#[test]
fn erasure_receipts_from_any_agent_are_links_of_the_chain() {
    let mut rig = rig();
    let mut state = member_with(&mut rig, "m1", &[(Channel::Email, ConsentStatus::OptedIn)]);
    rig.feed(
        &catalog::OFFER_PROPOSALS,
        "m1",
        &proposal(
            "m1",
            "p1",
            OfferType::PercentOff,
            new_york(2026, 6, 10, 14, 0),
        ),
        &mut state,
    );
    let receipt = ErasureReceipt {
        request_id: "erasure-1f2e".into(),
        agent: "cohort".into(),
        instance: "loyalty-swarm.cohort.host.9464".into(),
        partition: 0,
        erased_ids: 1,
        removed: vec![Removal {
            place: "summary:population_sketch".into(),
            count: 1,
        }],
        requested_at: Timestamp(1_700_000_000_000),
        completed_at: Timestamp(1_700_000_000_500),
    };
    let record = Record::new(&catalog::ERASURE_RECEIPTS, &receipt.request_id, &receipt)
        .expect("record")
        .at(99);
    rig.harness.emitted.clear();
    let mut held = None;
    rig.agent
        .handle(&record.input(), &mut held, &mut rig.harness.context())
        .expect("chained");
    assert!(held.is_none(), "no state is made for a request id");
    rig.collect(Vec::new());
    assert_eq!(
        rig.audit.last().and_then(|r| r.erasure_receipt.as_ref()),
        Some(&receipt)
    );
    let key = SigningKey::from_bytes(&SEED).verifying_key();
    let verified = audit::verify(0, &rig.links(), &key).expect("intact");
    assert_eq!((verified.decisions, verified.receipts), (1, 1));
}

#[test]
fn erasing_a_member_shreds_their_pseudonym_secret_and_their_deferred_sends() {
    let mut rig = rig();
    let mut state = member_with(&mut rig, "m1", &SMS_ONLY);
    // 23:00 in New York: deferred to 08:00.
    let at = new_york(2026, 6, 10, 23, 0);
    let out = rig.feed(
        &catalog::OFFER_PROPOSALS,
        "m1",
        &proposal("m1", "late", OfferType::PercentOff, at),
        &mut state,
    );
    assert!(out.triggers.is_empty() && !out.timers.is_empty());
    let forgotten = rig
        .agent
        .forget("m1", &state, &mut rig.harness.context())
        .expect("forgotten");
    assert_eq!(
        forgotten.counts(),
        [("pseudonym_secret", 1), ("deferred_sends", 1)]
    );
}

#[test]
fn settings_that_cannot_be_used_are_all_listed() {
    use loyalty_runtime::AgentSettings;
    let problems = Settings {
        signing_key_file: Some("/nonexistent/key".into()),
        pseudonym_key_file: Some("/nonexistent/pseudonym".into()),
        checkpoint_every: 0,
        channel_order: vec!["fax".into()],
        policies_dir: Some("/nonexistent/policies".into()),
        ..Settings::default()
    }
    .problems();
    for expected in [
        "agent.policies",
        "agent.signing_key_file",
        "agent.pseudonym_key_file",
        "agent.checkpoint_every",
        "\"fax\"",
    ] {
        assert!(
            problems.iter().any(|p| p.contains(expected)),
            "{expected} missing from {problems:#?}"
        );
    }
    let in_app_by_default = Settings {
        channel_order: vec!["email".into(), "in_app".into()],
        ..settings()
    }
    .problems();
    assert!(
        in_app_by_default
            .iter()
            .any(|p| p.contains("\"in_app\"") && p.contains("offers that name it")),
        "{in_app_by_default:#?}"
    );
}
