//! Purging an agent's repartition topics (the re-keying one and any internal topic), as
//! Kafka Streams purges its own.
//!
//! A forwarded record is read once, by the task that owns its new key. The topic is
//! created with `retention.ms = -1` so that no record goes before it is handled, however
//! long that task is down; the price is that nothing goes by itself either. Once the
//! group has committed past a record nothing reads it again, so every
//! `repartition_purge_interval_ms` the records below the committed offsets are deleted
//! with DeleteRecords.

use std::collections::{BTreeMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rdkafka::admin::AdminClient;
use rdkafka::client::DefaultClientContext;
use tracing::{debug, warn};

use crate::config::RuntimeSettings;
use crate::error::RuntimeError;
use crate::kafka;
use crate::metrics::{Event, Metrics};

/// The repartition topics' committed offsets not yet purged, and when they were last purged.
pub(crate) struct RepartitionPurge {
    admin: AdminClient<DefaultClientContext>,
    topics: Vec<&'static str>,
    interval: Duration,
    pending: Mutex<Pending>,
}

struct Pending {
    /// Per topic and partition, the highest offset this instance has committed.
    committed: BTreeMap<(&'static str, i32), i64>,
    last: Instant,
}

impl RepartitionPurge {
    /// A purge for `topics`, or none when the interval is 0 (purging turned off) or
    /// there is nothing to purge.
    pub(crate) fn new(
        rt: &RuntimeSettings,
        topics: Vec<&'static str>,
    ) -> Result<Option<Self>, RuntimeError> {
        if rt.repartition_purge_interval_ms == 0 || topics.is_empty() {
            return Ok(None);
        }
        Ok(Some(RepartitionPurge {
            admin: kafka::admin_client(&rt.bootstrap_servers, &rt.librdkafka)?,
            topics,
            interval: Duration::from_millis(rt.repartition_purge_interval_ms),
            pending: Mutex::new(Pending {
                committed: BTreeMap::new(),
                last: Instant::now(),
            }),
        }))
    }

    /// Note offsets the group has just committed (only committed ones: a record below
    /// an offset that was not committed may be read again).
    pub(crate) fn committed(&self, commits: &BTreeMap<(String, i32), i64>) {
        let Ok(mut pending) = self.pending.lock() else {
            return;
        };
        for ((topic, partition), &offset) in commits {
            if let Some(topic) = self.topics.iter().find(|t| **t == topic.as_str()) {
                raise(&mut pending.committed, (topic, *partition), offset);
            }
        }
    }

    /// The noted offsets of partitions assigned now, once the interval has passed since
    /// the last purge, to hand to [`RepartitionPurge::delete`]. Offsets of partitions
    /// that moved away are dropped: their new owner commits and purges them.
    pub(crate) fn due(
        &self,
        assigned: &HashSet<(&str, i32)>,
    ) -> Option<BTreeMap<(&'static str, i32), i64>> {
        let mut pending = self.pending.lock().ok()?;
        if pending.last.elapsed() < self.interval {
            return None;
        }
        pending.last = Instant::now();
        let due: BTreeMap<(&'static str, i32), i64> = std::mem::take(&mut pending.committed)
            .into_iter()
            .filter(|(at, _)| assigned.contains(at))
            .collect();
        (!due.is_empty()).then_some(due)
    }

    /// Delete the records below `due`. A failure is logged and counted, and the offsets
    /// are kept for the next try: a purge only frees space, so it never stops the agent.
    pub(crate) async fn delete(&self, due: BTreeMap<(&'static str, i32), i64>, metrics: &Metrics) {
        for topic in &self.topics {
            let offsets: BTreeMap<i32, i64> = due
                .iter()
                .filter(|((t, _), _)| t == topic)
                .map(|((_, p), o)| (*p, *o))
                .collect();
            if offsets.is_empty() {
                continue;
            }
            match kafka::delete_records_below(&self.admin, topic, &offsets).await {
                Ok(()) => {
                    debug!(topic, offsets = ?offsets, "repartition topic purged");
                    metrics.emit(Event::RepartitionPurged { outcome: "purged" });
                }
                Err(error) => {
                    warn!(topic, error = %error, "repartition purge failed; trying again later");
                    metrics.emit(Event::RepartitionPurged { outcome: "failed" });
                    if let Ok(mut pending) = self.pending.lock() {
                        for (partition, offset) in offsets {
                            raise(&mut pending.committed, (topic, partition), offset);
                        }
                    }
                }
            }
        }
    }
}

fn raise(committed: &mut BTreeMap<(&'static str, i32), i64>, at: (&'static str, i32), offset: i64) {
    let noted = committed.entry(at).or_insert(offset);
    *noted = (*noted).max(offset);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn purge(interval_ms: u64) -> RepartitionPurge {
        let rt = RuntimeSettings {
            // Never contacted: only the bookkeeping is under test.
            bootstrap_servers: "127.0.0.1:1".into(),
            repartition_purge_interval_ms: interval_ms,
            ..RuntimeSettings::default()
        };
        RepartitionPurge::new(&rt, vec!["cg.rekey-repartition"])
            .unwrap()
            .expect("a non-zero interval purges")
    }

    fn commits(entries: &[(&str, i32, i64)]) -> BTreeMap<(String, i32), i64> {
        entries
            .iter()
            .map(|&(topic, partition, offset)| ((topic.to_owned(), partition), offset))
            .collect()
    }

    #[test]
    fn an_interval_of_zero_turns_purging_off() {
        let rt = RuntimeSettings {
            repartition_purge_interval_ms: 0,
            ..RuntimeSettings::default()
        };
        assert!(RepartitionPurge::new(&rt, vec!["t"]).unwrap().is_none());
    }

    #[test]
    fn due_offsets_are_the_highest_committed_of_assigned_repartition_partitions() {
        let purge = purge(100);
        purge.committed(&commits(&[
            ("cg.rekey-repartition", 0, 7),
            ("cg.rekey-repartition", 1, 3),
            ("member-events", 0, 99),
        ]));
        purge.committed(&commits(&[("cg.rekey-repartition", 0, 5)]));
        let assigned: HashSet<(&str, i32)> = [("cg.rekey-repartition", 0)].into();
        assert_eq!(purge.due(&assigned), None, "not before the interval");
        std::thread::sleep(Duration::from_millis(120));
        assert_eq!(
            purge.due(&assigned),
            Some(BTreeMap::from([(("cg.rekey-repartition", 0), 7)]))
        );
        std::thread::sleep(Duration::from_millis(120));
        assert_eq!(
            purge.due(&assigned),
            None,
            "taken once; partition 1 moved away and is its new owner's to purge"
        );
    }
}
