//! `swarm bench-gate`: how long a proposal takes to become a trigger. On a fresh
//! embedded stack, compliance-gate runs in this process; members with a profile and
//! email consent wait; proposals are sent at a fixed rate, and each trigger read back is
//! timed from the moment its proposal was handed to the producer to the moment the
//! trigger was received. Frequency caps are lifted so that every proposal is approved
//! and timed; the policies are the shipped set.

use std::collections::BTreeMap;
use std::time::Duration;

use apache_avro::AvroSchema;
use compliance_gate::settings::FrequencyCap;
use compliance_gate::testkit;
use loyalty_contracts::{
    Channel, ConsentStatus, MemberConsents, MemberProfile, OfferProposal, OfferType, Trigger,
    topics,
};
use loyalty_runtime::registry::RegistryClient;
use loyalty_runtime::{Config, codec, kafka};
use serde::Serialize;

use crate::demo::agents::Swarm;
use crate::offer_latency::{Timings, answer_reader, on_fresh_stack, round_trips};
use crate::replay::{encoder, record};
use crate::stack;

/// What `swarm bench-gate` measures.
#[derive(Debug, Clone)]
pub struct GateLatencyOptions {
    pub rate_per_second: u32,
    pub seconds: u32,
    pub members: usize,
    pub partitions: i32,
    /// The gate's `batch_max_wait_ms`.
    pub batch_max_wait_ms: u64,
    /// The gate's `processing_guarantee` is `exactly_once`, as deployed.
    pub exactly_once: bool,
}

/// Latencies in milliseconds.
#[derive(Debug, Clone, Serialize)]
pub struct GateLatencyReport {
    pub proposals: usize,
    pub triggers: usize,
    #[serde(flatten)]
    pub timings: Timings,
}

pub async fn bench_gate(options: &GateLatencyOptions) -> anyhow::Result<GateLatencyReport> {
    on_fresh_stack(options.partitions, |bootstrap, registry| async move {
        measure(options, &bootstrap, &registry).await
    })
    .await
}

async fn measure(
    options: &GateLatencyOptions,
    bootstrap: &str,
    registry_url: &str,
) -> anyhow::Result<GateLatencyReport> {
    let registry = RegistryClient::new(registry_url)?;
    let producer = kafka::producer(bootstrap, &BTreeMap::new())?;
    let members: Vec<String> = (0..options.members)
        .map(|i| format!("member-{i:06}"))
        .collect();
    let profiles = encoder(
        &registry,
        topics::MEMBER_PROFILES,
        MemberProfile::get_schema(),
    )
    .await?;
    let consents = encoder(
        &registry,
        topics::MEMBER_CONSENTS,
        MemberConsents::get_schema(),
    )
    .await?;
    let mut joined = Vec::with_capacity(2 * members.len());
    for m in &members {
        joined.push(record(
            &profiles,
            topics::MEMBER_PROFILES,
            m,
            &testkit::profile(m),
            "profile",
        )?);
        let email = testkit::consents(m, &[(Channel::Email, ConsentStatus::OptedIn)]);
        joined.push(record(
            &consents,
            topics::MEMBER_CONSENTS,
            m,
            &email,
            "consents",
        )?);
    }
    kafka::produce_all(&producer, &joined).await?;

    // Keys for this run only, read when the gate is built.
    let dir = std::env::temp_dir();
    let (signing, pseudonym) = (
        dir.join(format!("bench-gate-{}-signing.key", std::process::id())),
        dir.join(format!("bench-gate-{}-pseudonym.key", std::process::id())),
    );
    for file in [&signing, &pseudonym] {
        let _ = std::fs::remove_file(file);
        crate::verify::keygen(file)?;
    }
    let runtime = {
        let mut c: Config<loyalty_runtime::NoSettings> = Config::default();
        c.runtime.bootstrap_servers = bootstrap.into();
        c.runtime.schema_registry_url = registry_url.into();
        c.runtime.partitions = options.partitions;
        c.runtime.erasure_key_file = Some(crate::demo::agents::erasure_key_file()?);
        if options.exactly_once {
            c.runtime.processing_guarantee =
                loyalty_runtime::config::ProcessingGuarantee::ExactlyOnce;
        }
        c.runtime
    };
    let mut config = crate::demo::agents::downstream_config::<compliance_gate::settings::Settings>(
        &runtime, 30_000,
    );
    let port = stack::free_port()?;
    config.runtime.http_listen = format!("127.0.0.1:{port}");
    config.runtime.batch_max_wait_ms = options.batch_max_wait_ms;
    config.agent.signing_key_file = Some(signing.clone());
    config.agent.pseudonym_key_file = Some(pseudonym.clone());
    config.agent.email_cap = FrequencyCap {
        max: i64::MAX,
        window_hours: 1,
    };
    let gate = compliance_gate::ComplianceGate::new(&config.agent);
    let _ = std::fs::remove_file(&signing);
    let _ = std::fs::remove_file(&pseudonym);
    let mut swarm = Swarm::new("");
    swarm.spawn(gate, config);
    crate::demo::wait_ready(
        &format!("127.0.0.1:{port}"),
        "compliance-gate",
        Duration::from_secs(120),
    )
    .await?;
    // The members' profiles and consents are in before the clock starts.
    let consumed = loyalty_runtime::runner::consumed_topics(&compliance_gate::ComplianceGate::new(
        &Default::default(),
    ));
    anyhow::ensure!(
        crate::inspect::wait_caught_up(
            bootstrap,
            "loyalty-swarm.compliance-gate",
            &consumed,
            Duration::from_secs(120)
        )
        .await?,
        "compliance-gate did not read the members' profiles within 120 s"
    );

    let consumer = answer_reader(
        bootstrap,
        "loyalty-swarm.bench-gate",
        topics::TRIGGERS_EMAIL,
        None,
    )
    .await?;

    let encode = encoder(
        &registry,
        topics::OFFER_PROPOSALS,
        OfferProposal::get_schema(),
    )
    .await?;
    let total = (options.rate_per_second * options.seconds) as usize;
    // A New York afternoon: inside every channel's window.
    let afternoon = testkit::new_york(2026, 6, 10, 14, 0);
    let mut requests = Vec::with_capacity(total);
    for n in 0..total {
        let member = &members[n % members.len()];
        let id = format!("bench-proposal-{n}");
        let proposal = testkit::proposal(member, &id, OfferType::PercentOff, afternoon + n as i64);
        let r = record(
            &encode,
            topics::OFFER_PROPOSALS,
            member,
            &proposal,
            "proposal",
        )?;
        requests.push((id, r));
    }
    let (timings, answered) = round_trips(
        producer,
        requests,
        options.rate_per_second,
        &consumer,
        &registry,
        |schema, body| {
            let t: Trigger =
                codec::decode(schema, body).map_err(|r| anyhow::anyhow!("trigger: {r}"))?;
            Ok(t.proposal_id)
        },
        &format!("http://127.0.0.1:{port}/metrics"),
    )
    .await?;
    swarm.stop().await?;
    Ok(GateLatencyReport {
        proposals: total,
        triggers: answered,
        timings,
    })
}
