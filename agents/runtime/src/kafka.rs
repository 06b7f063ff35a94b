//! Kafka clients configured the way the swarm's guarantees need them. This is the only
//! module that builds rdkafka clients; agents and the CLI go through it.

use std::collections::BTreeMap;
use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};

use crate::error::RuntimeError;

/// Common client properties: brokers plus the user's raw librdkafka map.
pub fn base_config(bootstrap_servers: &str, librdkafka: &BTreeMap<String, String>) -> ClientConfig {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", bootstrap_servers);
    for (k, v) in librdkafka {
        config.set(k, v);
    }
    config
}

/// A producer whose keyed records land where Java clients put them: `murmur2_random` is
/// the Java default partitioner, librdkafka's default (`consistent_random`) is not, and
/// co-partitioning across agents written in different languages depends on it.
pub fn producer(
    bootstrap_servers: &str,
    librdkafka: &BTreeMap<String, String>,
) -> Result<FutureProducer, RuntimeError> {
    Ok(producer_config(bootstrap_servers, librdkafka).create()?)
}

/// A producer as [`producer`] whose writes go in Kafka transactions under
/// `transactional_id`. Not usable before [`rdkafka::producer::Producer::init_transactions`].
pub fn transactional_producer(
    bootstrap_servers: &str,
    librdkafka: &BTreeMap<String, String>,
    transactional_id: &str,
) -> Result<FutureProducer, RuntimeError> {
    let mut config = producer_config(bootstrap_servers, librdkafka);
    config.set("transactional.id", transactional_id);
    Ok(config.create()?)
}

/// The user's librdkafka settings for an agent's producer, with `linger.ms` 0 unless the
/// user set it. The processing loop produces a whole batch and then awaits its
/// acknowledgement before the next step, so the batch already is the unit of batching:
/// lingering would only add its 5 ms to each awaited step (outputs, then changelog), on
/// every hop a record takes through the swarm. Measured on the embedded broker at 1,000
/// records/s: produce → consume p50 3.8 ms with `linger.ms = 0`, 7.8 ms with 5; and
/// `swarm bench` throughput the same with either (median of three, 65.3k vs 65.4k
/// events/s).
pub fn awaited_batch_settings(librdkafka: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    let mut settings = librdkafka.clone();
    settings
        .entry("linger.ms".to_owned())
        .or_insert_with(|| "0".to_owned());
    settings
}

fn producer_config(bootstrap_servers: &str, librdkafka: &BTreeMap<String, String>) -> ClientConfig {
    let mut config = base_config(bootstrap_servers, librdkafka);
    config.set("partitioner", "murmur2_random");
    set_default(&mut config, librdkafka, "acks", "all");
    // librdkafka retries a request on its own after a leader change; without idempotence
    // a retried record can land after a newer one of the same key, and a compacted output
    // or changelog then ends on the stale value. Seen on a three-broker Apache Kafka when
    // the leader was killed mid-replay: one member's final state was an older snapshot.
    // The Java client (and so Kafka Streams) has made this the default since 3.0.
    set_default(&mut config, librdkafka, "enable.idempotence", "true");
    set_default(&mut config, librdkafka, "linger.ms", "5");
    set_default(&mut config, librdkafka, "compression.type", "lz4");
    set_default(&mut config, librdkafka, "message.timeout.ms", "30000");
    config
}

fn set_default(config: &mut ClientConfig, user: &BTreeMap<String, String>, key: &str, value: &str) {
    if !user.contains_key(key) {
        config.set(key, value);
    }
}

/// A record ready to produce.
#[derive(Debug, Clone)]
pub struct OutRecord {
    pub topic: String,
    pub partition: Option<i32>,
    pub key: String,
    pub payload: Option<Vec<u8>>,
    pub timestamp: Option<i64>,
    pub headers: Vec<(String, String)>,
}

/// Produce every record and wait until the broker acknowledged all of them. Returns the
/// first failure; the caller retries the whole set (outputs are deterministic, so a
/// record sent twice is a byte-identical duplicate that compaction or idempotency keys drop).
pub async fn produce_all(
    producer: &FutureProducer,
    records: &[OutRecord],
) -> Result<(), RuntimeError> {
    let mut pending = Vec::with_capacity(records.len());
    for r in records {
        let mut headers = OwnedHeaders::new_with_capacity(r.headers.len());
        for (k, v) in &r.headers {
            headers = headers.insert(Header {
                key: k,
                value: Some(v.as_bytes()),
            });
        }
        let mut record: FutureRecord<'_, str, [u8]> = FutureRecord::to(&r.topic)
            .key(r.key.as_str())
            .headers(headers);
        if let Some(p) = &r.payload {
            record = record.payload(p.as_slice());
        }
        if let Some(p) = r.partition {
            record = record.partition(p);
        }
        if let Some(ts) = r.timestamp {
            record = record.timestamp(ts);
        }
        // send_result hands back the record when librdkafka's queue is full; wait for
        // earlier deliveries to drain it instead of failing.
        let mut record = record;
        loop {
            match producer.send_result(record) {
                Ok(delivery) => {
                    pending.push(delivery);
                    break;
                }
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    record = back;
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                Err((e, _)) => return Err(e.into()),
            }
        }
    }
    for delivery in pending {
        match delivery.await {
            Ok(Ok(_)) => {}
            Ok(Err((e, _))) => return Err(e.into()),
            Err(_) => {
                return Err(RuntimeError::Other(
                    "producer dropped a delivery report".into(),
                ));
            }
        }
    }
    Ok(())
}

/// A topic to create.
#[derive(Debug, Clone)]
pub struct TopicSpec {
    pub name: String,
    pub partitions: i32,
    /// Replication factor; -1 takes the broker's default.
    pub replication: i32,
    pub compacted: bool,
    /// `retention.ms` to set; `None` takes the broker's default, `Some(-1)` keeps every
    /// record.
    pub retention_ms: Option<i64>,
}

/// Create topics that do not exist yet (existing topics are left as they are), then wait
/// up to a minute until every one has a leader for each partition ([`topics_ready`]), as
/// Kafka Streams makes its internal topics ready before using them.
pub async fn ensure_topics(
    bootstrap_servers: &str,
    librdkafka: &BTreeMap<String, String>,
    topics: &[TopicSpec],
) -> Result<(), RuntimeError> {
    let admin = admin_client(bootstrap_servers, librdkafka)?;
    let retention: Vec<Option<String>> = topics
        .iter()
        .map(|t| t.retention_ms.map(|ms| ms.to_string()))
        .collect();
    let new: Vec<NewTopic<'_>> = topics
        .iter()
        .zip(&retention)
        .map(|(t, retention)| {
            let topic = NewTopic::new(
                &t.name,
                t.partitions,
                TopicReplication::Fixed(t.replication),
            )
            .set(
                "cleanup.policy",
                if t.compacted { "compact" } else { "delete" },
            );
            match retention {
                Some(ms) => topic.set("retention.ms", ms),
                None => topic,
            }
        })
        .collect();
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    for result in admin.create_topics(&new, &options).await? {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, code)) => {
                return Err(RuntimeError::Other(format!(
                    "creating topic {name}: {code}"
                )));
            }
        }
    }
    let names: Vec<&str> = topics.iter().map(|t| t.name.as_str()).collect();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        match topics_ready(bootstrap_servers, librdkafka, &names) {
            Err(e) if e.is_transient() && tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            result => return result,
        }
    }
}

/// Succeeds once the cluster's metadata lists every topic in `names` with a leader for
/// each partition; until then fails with a transient error ([`ensure_topics`] waits on
/// it). Kafka creates a topic and elects its leaders asynchronously: a consumer that subscribes
/// before then is told the topic does not exist and does not look again until its next
/// metadata refresh (five minutes by default), so its partitions would sit unassigned.
pub fn topics_ready(
    bootstrap_servers: &str,
    librdkafka: &BTreeMap<String, String>,
    names: &[&str],
) -> Result<(), RuntimeError> {
    use rdkafka::consumer::Consumer as _;
    let consumer: rdkafka::consumer::BaseConsumer =
        base_config(bootstrap_servers, librdkafka).create()?;
    // Not there yet is worth waiting for; any other answer (an authorisation failure,
    // say) is the caller's to see as it is.
    let not_yet = || {
        RuntimeError::Kafka(KafkaError::MetadataFetch(
            RDKafkaErrorCode::LeaderNotAvailable,
        ))
    };
    for name in names {
        let metadata = blocking(|| consumer.fetch_metadata(Some(name), Duration::from_secs(10)))?;
        let Some(topic) = metadata.topics().iter().find(|t| t.name() == *name) else {
            return Err(not_yet());
        };
        let first_error = topic
            .error()
            .into_iter()
            .chain(topic.partitions().iter().filter_map(|p| p.error()))
            .next();
        if let Some(error) = first_error {
            return Err(match RDKafkaErrorCode::from(error) {
                RDKafkaErrorCode::UnknownTopicOrPartition
                | RDKafkaErrorCode::LeaderNotAvailable
                | RDKafkaErrorCode::NotLeaderForPartition => not_yet(),
                code => RuntimeError::Kafka(KafkaError::MetadataFetch(code)),
            });
        }
        if topic.partitions().is_empty() || topic.partitions().iter().any(|p| p.leader() < 0) {
            return Err(not_yet());
        }
    }
    Ok(())
}

/// An admin client for topic creation and record deletion.
pub fn admin_client(
    bootstrap_servers: &str,
    librdkafka: &BTreeMap<String, String>,
) -> Result<AdminClient<DefaultClientContext>, RuntimeError> {
    Ok(base_config(bootstrap_servers, librdkafka).create()?)
}

/// Delete the records of `topic` below each partition's offset (Kafka's DeleteRecords;
/// the partition's log start offset moves up to it). Fails if any partition failed.
pub async fn delete_records_below(
    admin: &AdminClient<DefaultClientContext>,
    topic: &str,
    offsets: &BTreeMap<i32, i64>,
) -> Result<(), RuntimeError> {
    let mut tpl = rdkafka::TopicPartitionList::new();
    for (&partition, &offset) in offsets {
        tpl.add_partition_offset(topic, partition, rdkafka::Offset::Offset(offset))?;
    }
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let deleted = admin.delete_records(&tpl, &options).await?;
    for partition in deleted.elements() {
        partition.error()?;
    }
    Ok(())
}

/// The partition ids of `topic`; none if the broker does not know it.
pub fn partition_ids<C: rdkafka::consumer::ConsumerContext>(
    consumer: &impl rdkafka::consumer::Consumer<C>,
    topic: &str,
) -> Result<Vec<i32>, RuntimeError> {
    let metadata = blocking(|| consumer.fetch_metadata(Some(topic), Duration::from_secs(10)))?;
    Ok(metadata
        .topics()
        .iter()
        .filter(|t| t.error().is_none())
        .flat_map(|t| t.partitions().iter().map(|p| p.id()))
        .collect())
}

/// Run a blocking librdkafka call (metadata, watermarks, synchronous commit) without
/// holding an async worker: with the embedded broker in the same process and two cores,
/// a worker stuck in a 10-second metadata call is a worker the broker needs to answer it.
pub fn blocking<R>(call: impl FnOnce() -> R) -> R {
    match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(call),
        _ => call(),
    }
}

/// Read one partition from its beginning to the end offset seen at the start (the high
/// watermark; for a read_committed consumer, the last stable offset), calling
/// `apply(key, payload, offset, last_offset)` for each record. Used to rebuild
/// anything kept in a compacted topic: state stores from changelogs, the registry from
/// `_schemas`. A partition written in transactions ends with a commit marker, and a
/// read_committed consumer skips aborted records: neither is delivered, so the end is
/// also recognised by the consumer's position when no record comes.
pub async fn read_to_end(
    consumer: &rdkafka::consumer::StreamConsumer,
    topic: &str,
    partition: i32,
    apply: impl FnMut(Option<&[u8]>, Option<&[u8]>, i64, i64) -> Result<(), RuntimeError>,
) -> Result<u64, RuntimeError> {
    read_from(consumer, topic, partition, 0, apply).await
}

/// [`read_to_end`] from offset `from` on (the log start, if it is later).
pub async fn read_from(
    consumer: &rdkafka::consumer::StreamConsumer,
    topic: &str,
    partition: i32,
    from: i64,
    mut apply: impl FnMut(Option<&[u8]>, Option<&[u8]>, i64, i64) -> Result<(), RuntimeError>,
) -> Result<u64, RuntimeError> {
    use rdkafka::consumer::Consumer;
    use rdkafka::message::Message;
    let (low, high) =
        blocking(|| consumer.fetch_watermarks(topic, partition, Duration::from_secs(10)))?;
    let start = from.max(low);
    if high <= start {
        return Ok(0);
    }
    let mut tpl = rdkafka::TopicPartitionList::new();
    tpl.add_partition_offset(topic, partition, rdkafka::Offset::Offset(start))?;
    consumer.assign(&tpl)?;
    let mut read = 0;
    loop {
        match tokio::time::timeout(Duration::from_millis(100), consumer.recv()).await {
            Ok(message) => {
                let message = message?;
                apply(message.key(), message.payload(), message.offset(), high - 1)?;
                read += 1;
                if message.offset() >= high - 1 {
                    return Ok(read);
                }
            }
            Err(_) => {
                let position = consumer.position()?;
                let at_end = position
                    .find_partition(topic, partition)
                    .and_then(|p| match p.offset() {
                        rdkafka::Offset::Offset(next) => Some(next >= high),
                        _ => None,
                    })
                    .unwrap_or(false);
                if at_end {
                    return Ok(read);
                }
            }
        }
    }
}
