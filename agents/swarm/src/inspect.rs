//! Reading the swarm's topics back: the newest value per key of a topic, consumer-group
//! progress, DLQ counts. Used by the demo summary, `swarm` subcommands and the tests.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use loyalty_runtime::RuntimeError;
use loyalty_runtime::kafka;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::{Offset, TopicPartitionList};

/// The group of the clients that only read (they never commit).
const INSPECT_GROUP: &str = "loyalty-swarm.inspect";

fn consumer(bootstrap_servers: &str, group: &str) -> Result<StreamConsumer, RuntimeError> {
    Ok(kafka::base_config(bootstrap_servers, &BTreeMap::new())
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()?)
}

fn partitions(consumer: &StreamConsumer, topic: &str) -> Result<Vec<i32>, RuntimeError> {
    kafka::partition_ids(consumer, topic)
}

/// The newest value of every key in `topic` (tombstones remove the key).
pub async fn latest_values(
    bootstrap_servers: &str,
    topic: &str,
) -> Result<HashMap<String, Vec<u8>>, RuntimeError> {
    Ok(latest_records(bootstrap_servers, topic)
        .await?
        .into_iter()
        .filter_map(|(key, record)| Some((key, record.value?)))
        .collect())
}

/// The newest record of every key in `topic`, with its position (tombstoned keys are
/// gone): what a compacted topic keeps, e.g. the records to verify.
pub async fn latest_records(
    bootstrap_servers: &str,
    topic: &str,
) -> Result<HashMap<String, Positioned>, RuntimeError> {
    let consumer = consumer(bootstrap_servers, INSPECT_GROUP)?;
    let mut latest = HashMap::new();
    for partition in partitions(&consumer, topic)? {
        kafka::read_to_end(&consumer, topic, partition, |key, value, offset, _| {
            let key = String::from_utf8_lossy(key.unwrap_or_default()).into_owned();
            match value {
                Some(v) => latest.insert(
                    key.clone(),
                    Positioned {
                        partition,
                        offset,
                        key,
                        value: Some(v.to_vec()),
                    },
                ),
                None => latest.remove(&key),
            };
            Ok(())
        })
        .await?;
    }
    Ok(latest)
}

/// One record as read: where it sits, its key and its value (`None`: a tombstone).
#[derive(Debug, Clone)]
pub struct Positioned {
    pub partition: i32,
    pub offset: i64,
    pub key: String,
    pub value: Option<Vec<u8>>,
}

/// Every record of `topic` with its position, in partition order.
pub async fn positioned_records(
    bootstrap_servers: &str,
    topic: &str,
) -> Result<Vec<Positioned>, RuntimeError> {
    let consumer = consumer(bootstrap_servers, INSPECT_GROUP)?;
    let mut records = Vec::new();
    for partition in partitions(&consumer, topic)? {
        kafka::read_to_end(&consumer, topic, partition, |key, value, offset, _| {
            records.push(Positioned {
                partition,
                offset,
                key: String::from_utf8_lossy(key.unwrap_or_default()).into_owned(),
                value: value.map(<[u8]>::to_vec),
            });
            Ok(())
        })
        .await?;
    }
    Ok(records)
}

/// The keys of the records with a value (tombstones left out) of `topic` from `from` on
/// (per partition; a partition not named is read from its start), in partition order.
pub async fn live_keys_since(
    bootstrap_servers: &str,
    topic: &str,
    from: &BTreeMap<i32, i64>,
) -> Result<Vec<String>, RuntimeError> {
    let consumer = consumer(bootstrap_servers, INSPECT_GROUP)?;
    let mut keys = Vec::new();
    for partition in partitions(&consumer, topic)? {
        let start = from.get(&partition).copied().unwrap_or(0);
        kafka::read_from(&consumer, topic, partition, start, |key, value, _, _| {
            if value.is_some() {
                keys.push(String::from_utf8_lossy(key.unwrap_or_default()).into_owned());
            }
            Ok(())
        })
        .await?;
    }
    Ok(keys)
}

/// Every record of `topic` with its headers, in partition order.
pub async fn all_records(
    bootstrap_servers: &str,
    topic: &str,
) -> Result<Vec<(Option<Vec<u8>>, Vec<(String, String)>)>, RuntimeError> {
    use rdkafka::message::{Headers, Message};
    let consumer = consumer(bootstrap_servers, INSPECT_GROUP)?;
    let mut records = Vec::new();
    for partition in partitions(&consumer, topic)? {
        let (low, high) = kafka::blocking(|| {
            consumer.fetch_watermarks(topic, partition, Duration::from_secs(10))
        })?;
        if high <= low {
            continue;
        }
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(topic, partition, Offset::Beginning)?;
        consumer.assign(&tpl)?;
        loop {
            let m = consumer.recv().await?;
            let headers = m
                .headers()
                .map(|h| {
                    h.iter()
                        .map(|x| {
                            (
                                x.key.to_owned(),
                                String::from_utf8_lossy(x.value.unwrap_or_default()).into_owned(),
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            records.push((m.payload().map(<[u8]>::to_vec), headers));
            if m.offset() >= high - 1 {
                break;
            }
        }
    }
    Ok(records)
}

/// Records still to be processed by `group` on `topics` (high watermark minus committed).
pub fn group_lag(
    bootstrap_servers: &str,
    group: &str,
    topics: &[impl AsRef<str>],
) -> Result<i64, RuntimeError> {
    lag(&consumer(bootstrap_servers, group)?, topics)
}

/// [`group_lag`] through a consumer of the group, for callers that ask repeatedly.
fn lag(consumer: &StreamConsumer, topics: &[impl AsRef<str>]) -> Result<i64, RuntimeError> {
    let mut tpl = TopicPartitionList::new();
    for topic in topics.iter().map(AsRef::as_ref) {
        for p in partitions(consumer, topic)? {
            tpl.add_partition(topic, p);
        }
    }
    let committed = kafka::blocking(|| consumer.committed_offsets(tpl, Duration::from_secs(10)))?;
    let mut lag = 0;
    for element in committed.elements() {
        let (low, high) = kafka::blocking(|| {
            consumer.fetch_watermarks(
                element.topic(),
                element.partition(),
                Duration::from_secs(10),
            )
        })?;
        let position = match element.offset() {
            Offset::Offset(o) => o,
            _ => low,
        };
        lag += (high - position).max(0);
    }
    Ok(lag)
}

/// Wait until `group` has committed everything on `topics`, or `limit` passes.
pub async fn wait_caught_up(
    bootstrap_servers: &str,
    group: &str,
    topics: &[impl AsRef<str>],
    limit: Duration,
) -> Result<bool, RuntimeError> {
    wait_caught_up_reporting(bootstrap_servers, group, topics, limit, &mut |_| {}).await
}

/// [`wait_caught_up`], telling `report` the group's lag each time it is measured.
pub async fn wait_caught_up_reporting(
    bootstrap_servers: &str,
    group: &str,
    topics: &[impl AsRef<str>],
    limit: Duration,
    report: &mut (dyn FnMut(i64) + Send),
) -> Result<bool, RuntimeError> {
    let deadline = tokio::time::Instant::now() + limit;
    let consumer = consumer(bootstrap_servers, group)?;
    loop {
        // A moving group coordinator or partition leader (a broker restarting) is a
        // reading to take again, not an answer.
        match lag(&consumer, topics) {
            Ok(0) => {
                report(0);
                return Ok(true);
            }
            Ok(behind) => report(behind),
            Err(e) if e.is_transient() => {}
            Err(e) => return Err(e),
        }
        if tokio::time::Instant::now() > deadline {
            return Ok(false);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Consumer groups and the topics each consumes, for [`wait_quiet`].
pub type Watched = Vec<(String, Vec<String>)>;

/// Wait until every group has committed all of its inputs and none of `topics` has grown
/// for `quiet_for`, or `limit` passes (`false`). The swarm's agents feed each other
/// (ltv's fits drive tier-transition's forecasts, which ltv joins) and re-score on timers,
/// so "caught up" alone is not "done": done is nothing left to consume and nothing new
/// written for longer than the longest refresh interval.
pub async fn wait_quiet(
    bootstrap_servers: &str,
    groups: &Watched,
    topics: &[String],
    quiet_for: Duration,
    limit: Duration,
) -> Result<bool, RuntimeError> {
    wait_quiet_reporting(
        bootstrap_servers,
        groups,
        topics,
        quiet_for,
        limit,
        &mut |_| {},
    )
    .await
}

/// How far the watched groups are, each time [`wait_quiet_reporting`] measures.
#[derive(Debug)]
pub struct QuietStatus<'a> {
    /// Each group's records still to commit.
    pub lags: Vec<(&'a str, i64)>,
    /// How long nothing has been consumed or written, once every group has caught up.
    pub quiet: Option<Duration>,
}

/// [`wait_quiet`], telling `report` where things stand each time it measures.
pub async fn wait_quiet_reporting(
    bootstrap_servers: &str,
    groups: &Watched,
    topics: &[String],
    quiet_for: Duration,
    limit: Duration,
    report: &mut (dyn FnMut(&QuietStatus<'_>) + Send),
) -> Result<bool, RuntimeError> {
    let deadline = tokio::time::Instant::now() + limit;
    // One client per group (committed offsets are per group) and one for the counts,
    // made once: each librdkafka client costs threads and a broker connection.
    let members = groups
        .iter()
        .map(|(group, inputs)| Ok((consumer(bootstrap_servers, group)?, inputs)))
        .collect::<Result<Vec<_>, RuntimeError>>()?;
    let counter = consumer(bootstrap_servers, INSPECT_GROUP)?;
    let mut last: Option<(Vec<i64>, tokio::time::Instant)> = None;
    loop {
        let mut behind = 0;
        let mut lags = Vec::with_capacity(members.len());
        for ((group, _), (member, inputs)) in groups.iter().zip(&members) {
            let group_lag = lag(member, inputs)?;
            behind += group_lag;
            lags.push((group.as_str(), group_lag));
        }
        let now = tokio::time::Instant::now();
        if behind == 0 {
            // High watermarks: records written, which a purge does not move.
            let counts = topics
                .iter()
                .map(|t| {
                    Ok(offset_ranges(&counter, t)?
                        .values()
                        .map(|(_, high)| high)
                        .sum())
                })
                .collect::<Result<Vec<i64>, RuntimeError>>()?;
            match &last {
                Some((previous, since)) if *previous == counts => {
                    if now.duration_since(*since) >= quiet_for {
                        return Ok(true);
                    }
                }
                _ => last = Some((counts, now)),
            }
        } else {
            last = None;
        }
        report(&QuietStatus {
            lags,
            quiet: last.as_ref().map(|(_, since)| now.duration_since(*since)),
        });
        if now > deadline {
            return Ok(false);
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

/// Records `topic` holds now: those written and not yet deleted by retention or a
/// purge.
pub fn record_count(bootstrap_servers: &str, topic: &str) -> Result<i64, RuntimeError> {
    count(&consumer(bootstrap_servers, INSPECT_GROUP)?, topic)
}

/// [`record_count`] through an existing client.
fn count(consumer: &StreamConsumer, topic: &str) -> Result<i64, RuntimeError> {
    Ok(offset_ranges(consumer, topic)?
        .values()
        .map(|(low, high)| high - low)
        .sum())
}

/// Each partition of `topic` with its log start offset (the first it still holds) and
/// its high watermark (one past the last ever written).
pub fn watermarks(
    bootstrap_servers: &str,
    topic: &str,
) -> Result<BTreeMap<i32, (i64, i64)>, RuntimeError> {
    offset_ranges(&consumer(bootstrap_servers, INSPECT_GROUP)?, topic)
}

fn offset_ranges(
    consumer: &StreamConsumer,
    topic: &str,
) -> Result<BTreeMap<i32, (i64, i64)>, RuntimeError> {
    partitions(consumer, topic)?
        .into_iter()
        .map(|p| {
            let range =
                kafka::blocking(|| consumer.fetch_watermarks(topic, p, Duration::from_secs(10)))?;
            Ok((p, range))
        })
        .collect()
}
