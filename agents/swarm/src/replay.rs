//! Replays a CDNOW file onto the input topics: the program, then profiles and consents,
//! then every purchase in event-time order.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::{Duration, Instant};

use apache_avro::AvroSchema;
use indicatif::{ProgressBar, ProgressStyle};
use loyalty_contracts::{Date, MemberConsents, MemberEvent, MemberProfile, Program, topics};
use loyalty_runtime::RuntimeError;
use loyalty_runtime::codec::{self, Encoder};
use loyalty_runtime::kafka::{self, OutRecord};
use loyalty_runtime::registry::RegistryClient;
use serde::Serialize;

use crate::cdnow::{self, Purchase};

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error(transparent)]
    Cdnow(#[from] cdnow::CdnowError),
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    #[error("encoding a {what}: {source}")]
    Encode {
        what: &'static str,
        source: Box<apache_avro::Error>,
    },
}

/// What a replay wrote.
#[derive(Debug, Clone, Serialize)]
pub struct ReplaySummary {
    pub purchases: usize,
    pub members: usize,
    pub events: usize,
    pub profiles: usize,
    pub elapsed_seconds: f64,
    /// Start of the day of the newest purchase replayed.
    pub last_event: loyalty_contracts::Timestamp,
}

pub async fn encoder(
    registry: &RegistryClient,
    topic: &str,
    schema: apache_avro::Schema,
) -> Result<Encoder, RuntimeError> {
    let id = registry
        .register(&format!("{topic}-value"), &schema)
        .await?;
    Ok(Encoder::new(id, codec::leak(schema))?)
}

pub fn record<T: Serialize>(
    encoder: &Encoder,
    topic: &str,
    key: &str,
    value: &T,
    what: &'static str,
) -> Result<OutRecord, ReplayError> {
    let payload = encoder
        .encode(value)
        .map_err(|source| ReplayError::Encode {
            what,
            source: Box::new(source),
        })?;
    Ok(OutRecord {
        topic: topic.to_owned(),
        partition: None,
        key: key.to_owned(),
        payload: Some(payload),
        // The record timestamp is when the replay produced it (CreateTime), as for a
        // live source; event time travels in the payload. Stamping 1997 event times on
        // the records would let retention (7 days by default, on record timestamps)
        // delete the replayed history before the agents have read it.
        timestamp: None,
        headers: Vec::new(),
    })
}

/// Replay `file` (the built-in CDNOW master file when `None`) through the brokers at
/// `bootstrap_servers`.
pub async fn replay(
    bootstrap_servers: &str,
    registry_url: &str,
    file: Option<&Path>,
    progress: bool,
) -> Result<ReplaySummary, ReplayError> {
    let started = Instant::now();
    let purchases = cdnow::purchases(file)?;
    let registry = RegistryClient::new(registry_url).map_err(RuntimeError::from)?;
    let events_enc = encoder(&registry, topics::MEMBER_EVENTS, MemberEvent::get_schema()).await?;
    let profiles_enc = encoder(
        &registry,
        topics::MEMBER_PROFILES,
        MemberProfile::get_schema(),
    )
    .await?;
    let consents_enc = encoder(
        &registry,
        topics::MEMBER_CONSENTS,
        MemberConsents::get_schema(),
    )
    .await?;
    let programs_enc = encoder(&registry, topics::PROGRAMS, Program::get_schema()).await?;
    let producer = kafka::producer(bootstrap_servers, &BTreeMap::new())?;

    let program = cdnow::demo_program();
    let head = [record(
        &programs_enc,
        topics::PROGRAMS,
        &program.program_id,
        &program,
        "program",
    )?];
    kafka::produce_all(&producer, &head).await?;

    let mut first: HashMap<&str, Date> = HashMap::new();
    for p in &purchases {
        let day = first.entry(p.customer.as_str()).or_insert(p.day);
        *day = (*day).min(p.day);
    }
    let mut members: Vec<(&str, Date)> = first.into_iter().collect();
    members.sort();
    let mut reference = Vec::with_capacity(members.len() * 2);
    for (customer, day) in &members {
        let profile = cdnow::profile(customer, *day);
        let consents = cdnow::consents(customer, *day);
        reference.push(record(
            &profiles_enc,
            topics::MEMBER_PROFILES,
            customer,
            &profile,
            "profile",
        )?);
        reference.push(record(
            &consents_enc,
            topics::MEMBER_CONSENTS,
            customer,
            &consents,
            "consent",
        )?);
    }
    kafka::produce_all(&producer, &reference).await?;

    let mut ordered: Vec<&Purchase> = purchases.iter().collect();
    ordered.sort_by_key(|p| (p.day, p.line));
    let total_events = ordered.len() * 2;
    let bar = if progress {
        ProgressBar::new(total_events as u64)
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template(
            "replaying CDNOW {bar:40} {pos}/{len} events ({per_sec}, eta {eta})",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    for chunk in ordered.chunks(10_000) {
        let mut batch = Vec::with_capacity(chunk.len() * 2);
        for p in chunk {
            for event in cdnow::purchase_events(p) {
                batch.push(record(
                    &events_enc,
                    topics::MEMBER_EVENTS,
                    cdnow::record_key(&event),
                    &event,
                    "member event",
                )?);
            }
        }
        kafka::produce_all(&producer, &batch).await?;
        bar.inc(batch.len() as u64);
    }
    bar.finish_and_clear();
    let _ = rdkafka::producer::Producer::flush(&producer, Duration::from_secs(30));
    Ok(ReplaySummary {
        purchases: purchases.len(),
        members: members.len(),
        events: total_events,
        profiles: members.len(),
        elapsed_seconds: started.elapsed().as_secs_f64(),
        last_event: ordered
            .last()
            .map_or_else(Default::default, |p| p.day.start()),
    })
}
