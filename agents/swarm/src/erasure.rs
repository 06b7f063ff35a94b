//! `swarm erasure request` and `swarm erasure status`. The first writes an erasure request
//! for a member. The second says, for a request, which agents have confirmed it (when,
//! and what each removed) and which have not yet. It also lists the topics that may
//! still hold the member's records, and until when: streams are not compacted, so a
//! member's records leave them only when their retention ends.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Context as _;
use apache_avro::AvroSchema;
use loyalty_contracts::{ErasureReceipt, ErasureRequest, Removal, Timestamp, contracts, topics};
use loyalty_runtime::registry::RegistryClient;
use loyalty_runtime::{Agent, Cleanup, codec, kafka, runner, wire};
use rdkafka::admin::{AdminOptions, ResourceSpecifier};
use serde::Serialize;

use crate::inspect;

/// Every agent that carries out erasure requests; a request is done when each has
/// receipted it.
pub const ERASING_AGENTS: [&str; 6] = [
    customer_graph::CustomerGraph::NAME,
    cohort::Cohort::NAME,
    tier_transition::TierTransition::NAME,
    ltv::Ltv::NAME,
    save_offer::SaveOffer::NAME,
    compliance_gate::ComplianceGate::NAME,
];

/// Write an erasure request for `member_id`; returns it. The request id is random, not
/// derived from the member: receipts quote it and are kept for good.
pub async fn request(
    bootstrap_servers: &str,
    registry_url: &str,
    member_id: &str,
    basis: &str,
    requested_by: Option<String>,
) -> anyhow::Result<ErasureRequest> {
    let mut written = requests(
        bootstrap_servers,
        registry_url,
        &[member_id.to_owned()],
        basis,
        requested_by,
    )
    .await?;
    written
        .pop()
        .ok_or_else(|| anyhow::anyhow!("no request was written"))
}

/// [`request`] for each of `members`, written together; returns them in order.
pub async fn requests(
    bootstrap_servers: &str,
    registry_url: &str,
    members: &[String],
    basis: &str,
    requested_by: Option<String>,
) -> anyhow::Result<Vec<ErasureRequest>> {
    let registry = RegistryClient::new(registry_url)?;
    let encoder = crate::replay::encoder(
        &registry,
        topics::ERASURE_REQUESTS,
        ErasureRequest::get_schema(),
    )
    .await?;
    let mut written = Vec::with_capacity(members.len());
    let mut records = Vec::with_capacity(members.len());
    for member_id in members {
        let request = ErasureRequest {
            request_id: format!("erasure-{}", random_hex(8)?),
            member_id: member_id.clone(),
            basis: basis.to_owned(),
            requested_at: Timestamp(now_ms()),
            requested_by: requested_by.clone(),
        };
        records.push(kafka::OutRecord {
            topic: topics::ERASURE_REQUESTS.to_owned(),
            partition: None,
            key: member_id.clone(),
            payload: Some(encoder.encode(&request)?),
            timestamp: Some(request.requested_at.0),
            headers: Vec::new(),
        });
        written.push(request);
    }
    let producer = kafka::producer(bootstrap_servers, &BTreeMap::new())?;
    kafka::produce_all(&producer, &records).await?;
    Ok(written)
}

/// One agent's confirmation of a request.
#[derive(Debug, Clone, Serialize)]
pub struct Confirmation {
    pub agent: String,
    pub instance: String,
    pub completed_at: Timestamp,
    pub erased_ids: i32,
    pub removed: Vec<Removal>,
    /// Receipts after the first (a repeated request, a replay): nothing left to remove.
    pub repeated: usize,
}

/// A topic that may still hold the member's records, and until when.
#[derive(Debug, Clone, Serialize)]
pub struct Retained {
    pub topic: String,
    /// `retention.ms` of the topic; `None` when the broker did not say.
    pub retention_ms: Option<i64>,
    /// Records written before the request are gone by then; `None`: kept for good or
    /// unknown.
    pub until: Option<Timestamp>,
}

/// What `status` found.
#[derive(Debug, Clone, Serialize)]
pub struct ErasureStatus {
    pub request_id: String,
    pub requested_at: Option<Timestamp>,
    pub confirmed: Vec<Confirmation>,
    pub missing: Vec<String>,
    pub retained: Vec<Retained>,
}

impl ErasureStatus {
    pub fn complete(&self) -> bool {
        self.missing.is_empty()
    }
}

/// The request is not confirmed by every agent yet: `swarm erasure status` exits 3.
#[derive(Debug, thiserror::Error)]
#[error("erasure not confirmed yet by {0} agent(s)")]
pub struct ErasurePending(pub usize);

/// Which agents have receipted `request_id`, and which topics may still hold the
/// member's records.
pub async fn status(
    bootstrap_servers: &str,
    registry: &RegistryClient,
    request_id: &str,
) -> anyhow::Result<ErasureStatus> {
    let mut by_agent: BTreeMap<String, Confirmation> = BTreeMap::new();
    let mut requested_at = None;
    for receipt in receipts(bootstrap_servers, registry).await? {
        if receipt.request_id != request_id {
            continue;
        }
        requested_at = Some(receipt.requested_at);
        match by_agent.get_mut(&receipt.agent) {
            Some(first) => first.repeated += 1,
            None => {
                by_agent.insert(
                    receipt.agent.clone(),
                    Confirmation {
                        agent: receipt.agent,
                        instance: receipt.instance,
                        completed_at: receipt.completed_at,
                        erased_ids: receipt.erased_ids,
                        removed: receipt.removed,
                        repeated: 0,
                    },
                );
            }
        }
    }
    let missing = ERASING_AGENTS
        .iter()
        .filter(|a| !by_agent.contains_key(**a))
        .map(|a| (*a).to_owned())
        .collect();
    let retained = retained(bootstrap_servers, requested_at).await?;
    Ok(ErasureStatus {
        request_id: request_id.to_owned(),
        requested_at,
        confirmed: by_agent.into_values().collect(),
        missing,
        retained,
    })
}

/// Every receipt written so far, in topic order.
pub async fn receipts(
    bootstrap_servers: &str,
    registry: &RegistryClient,
) -> anyhow::Result<Vec<ErasureReceipt>> {
    let mut out = Vec::new();
    for (value, _) in inspect::all_records(bootstrap_servers, topics::ERASURE_RECEIPTS).await? {
        let Some(bytes) = value else { continue };
        let (id, body) =
            wire::split(&bytes).map_err(|r| anyhow::anyhow!("erasure receipt: {r}"))?;
        out.push(
            codec::decode(registry.schema(id).await?.as_ref(), body)
                .map_err(|r| anyhow::anyhow!("erasure receipt: {r}"))?,
        );
    }
    Ok(out)
}

/// The streams the swarm owns that carry member ids (keys or values): the member-keyed
/// stream contracts other than the operator's own inputs, and each agent's DLQ.
pub fn member_streams() -> Vec<String> {
    derived_member_streams()
        .into_iter()
        .map(str::to_owned)
        .chain(ERASING_AGENTS.iter().map(|a| runner::dlq_topic(a)))
        .collect()
}

/// The contract's streams (not compacted) that carry member ids and that the swarm
/// writes or routes: set-up gives them a bounded retention. The operator's own inputs
/// (events, profiles, consents) and the audit log, which names no member, are not.
pub fn derived_member_streams() -> Vec<&'static str> {
    let inputs = [
        topics::MEMBER_EVENTS,
        topics::MEMBER_PROFILES,
        topics::MEMBER_CONSENTS,
    ];
    contracts()
        .into_iter()
        .filter(|c| c.cleanup == Cleanup::Delete && c.co_partitioned)
        .filter(|c| !inputs.contains(&c.topic) && c.topic != topics::AUDIT_LOG)
        .map(|c| c.topic)
        .collect()
}

async fn retained(
    bootstrap_servers: &str,
    requested_at: Option<Timestamp>,
) -> anyhow::Result<Vec<Retained>> {
    let names = member_streams();
    let admin = kafka::admin_client(bootstrap_servers, &BTreeMap::new())?;
    let resources: Vec<ResourceSpecifier<'_>> =
        names.iter().map(|n| ResourceSpecifier::Topic(n)).collect();
    let options = AdminOptions::new().request_timeout(Some(Duration::from_secs(10)));
    let described = admin
        .describe_configs(&resources, &options)
        .await
        .context("describing the topics' retention")?;
    Ok(names
        .iter()
        .zip(described)
        .map(|(topic, config)| {
            let retention_ms = config.ok().and_then(|c| {
                c.get("retention.ms")
                    .and_then(|e| e.value.as_deref())
                    .and_then(|v| v.parse::<i64>().ok())
            });
            let until = match (requested_at, retention_ms) {
                (Some(at), Some(ms)) if ms >= 0 => Some(Timestamp(at.0.saturating_add(ms))),
                _ => None,
            };
            Retained {
                topic: topic.clone(),
                retention_ms,
                until,
            }
        })
        .collect())
}

impl std::fmt::Display for ErasureStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "erasure {}: {} of {} agents confirmed",
            self.request_id,
            self.confirmed.len(),
            ERASING_AGENTS.len()
        )?;
        for c in &self.confirmed {
            let removed: Vec<String> = c
                .removed
                .iter()
                .map(|r| format!("{} {}", r.place, r.count))
                .collect();
            writeln!(
                f,
                "  {}: at {} by {}, {} id(s) registered, removed: {}{}",
                c.agent,
                iso(c.completed_at),
                c.instance,
                c.erased_ids,
                if removed.is_empty() {
                    "nothing held".to_owned()
                } else {
                    removed.join(", ")
                },
                if c.repeated > 0 {
                    format!(" ({} later receipt(s))", c.repeated)
                } else {
                    String::new()
                }
            )?;
        }
        for agent in &self.missing {
            writeln!(f, "  {agent}: not confirmed yet")?;
        }
        writeln!(f, "streams that may still hold the member's records:")?;
        for r in &self.retained {
            let until = match (r.until, r.retention_ms) {
                (Some(until), _) => format!("until {}", iso(until)),
                (None, Some(ms)) if ms < 0 => "kept for good (retention.ms -1)".to_owned(),
                _ => "retention unknown".to_owned(),
            };
            writeln!(f, "  {}: {until}", r.topic)?;
        }
        // The operator's own inputs hold the member too; the registry keeps the swarm
        // from using them, but only the operator can remove them.
        writeln!(
            f,
            "the operator's inputs, not the swarm's to remove: tombstone the member on {} and {} (compacted); {} keeps their events under its own retention",
            topics::MEMBER_PROFILES,
            topics::MEMBER_CONSENTS,
            topics::MEMBER_EVENTS
        )?;
        Ok(())
    }
}

fn iso(at: Timestamp) -> String {
    chrono::DateTime::from_timestamp_millis(at.0)
        .map_or_else(|| at.0.to_string(), |t| t.to_rfc3339())
}

fn random_hex(bytes: usize) -> anyhow::Result<String> {
    use std::io::Read as _;
    let mut buf = vec![0u8; bytes];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buf))
        .context("reading /dev/urandom")?;
    Ok(loyalty_runtime::signing::to_hex(&buf))
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_agent_listed_erases_and_every_erasing_agent_is_listed() {
        let agents: [(&str, Vec<&str>); 6] = [
            (
                customer_graph::CustomerGraph::NAME,
                customer_graph::CustomerGraph::new(&Default::default()).inputs(),
            ),
            (cohort::Cohort::NAME, cohort::Cohort::default().inputs()),
            (
                tier_transition::TierTransition::NAME,
                tier_transition::TierTransition::new(&Default::default()).inputs(),
            ),
            (ltv::Ltv::NAME, ltv::Ltv::new(&Default::default()).inputs()),
            (
                save_offer::SaveOffer::NAME,
                save_offer::SaveOffer::new(&Default::default()).inputs(),
            ),
            (
                compliance_gate::ComplianceGate::NAME,
                compliance_gate::ComplianceGate::new(&Default::default()).inputs(),
            ),
        ];
        for (name, inputs) in agents {
            assert!(ERASING_AGENTS.contains(&name), "{name}");
            assert!(inputs.contains(&topics::ERASURE_REQUESTS), "{name}");
        }
        // The catalog holds no member, so it neither erases nor is waited for.
        assert!(
            !save_offer::OfferCatalog
                .inputs()
                .contains(&topics::ERASURE_REQUESTS)
        );
    }

    #[test]
    fn member_streams_are_the_derived_ones_and_the_dlqs() {
        let streams = member_streams();
        for topic in [
            topics::INTERVENTION_OPPORTUNITIES,
            topics::OFFER_PROPOSALS,
            topics::TRIGGERS_EMAIL,
            topics::TRIGGERS_IN_APP,
            topics::COMPLIANCE_REVIEWS,
            topics::ERASURE_REQUESTS,
            "customer-graph.dlq",
        ] {
            assert!(streams.iter().any(|s| s == topic), "{topic} in {streams:?}");
        }
        for topic in [
            topics::MEMBER_STATE,
            topics::AUDIT_LOG,
            topics::MEMBER_EVENTS,
        ] {
            assert!(!streams.iter().any(|s| s == topic), "{topic}");
        }
    }
}
