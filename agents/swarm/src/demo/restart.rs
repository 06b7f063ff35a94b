//! The demo's restart from empty state (`swarm demo --restart-from-empty`). Once the
//! erasure step is done, every agent is stopped, the topics holding its state are
//! deleted (changelogs, shared summaries, repartition and internal topics), and it
//! starts again in a new consumer group. So it reads every input from the earliest
//! offset, the erased members' records included, with no state: the replay an operator
//! runs after losing state, or to rebuild it.
//!
//! Then it checks that none of the erased members came back: no live record on the
//! compacted member topics, and no record keyed by one of them written since the
//! restart to any topic the swarm writes. The summary read after this step gives the
//! population figures (cohort segments, the fits' sample sizes) and verifies the audit
//! chains, which the restarted gate continues from its log.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::agents::Swarm;
use super::erasure::{ErasureReport, MEMBER_TABLES};
use super::{DemoOptions, QUIET_FOR, QUIET_WITHIN, RunKeys, start_swarm, until_quiet, wait_ready};
use crate::inspect;

/// What the restart from empty state found.
#[derive(Debug, Clone, Serialize, Default)]
pub struct RestartReport {
    /// Topics holding the agents' state, deleted before the restart.
    pub state_topics_deleted: usize,
    /// From the restart until the swarm was quiet again.
    pub seconds_to_quiet: f64,
    pub settled: bool,
    /// Live records of the erased members on the compacted member topics.
    pub live_records_left: usize,
    /// Records keyed by an erased member written since the restart, per topic
    /// (tombstones left out: a replayed request tombstones again).
    pub reappeared: BTreeMap<String, usize>,
}

/// Stop `swarm`, delete its state, start it again from empty state and wait until it
/// is quiet; returns the new swarm and what came back of the members `erasure` erased.
pub(super) async fn restart_from_empty(
    options: &DemoOptions,
    swarm: Swarm,
    written: &[String],
    keys: &Option<RunKeys>,
    erasure: &ErasureReport,
) -> anyhow::Result<(Swarm, RestartReport)> {
    let mut progress = crate::progress::Progress::new(options.progress);
    progress.stage("restarting every agent from empty state; it replays the whole history");
    let state_topics = swarm.state_topics.clone();
    swarm.stop().await?;
    let outputs: Vec<&String> = written
        .iter()
        .filter(|t| !state_topics.contains(t))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut marks = BTreeMap::new();
    for topic in &outputs {
        let ends: BTreeMap<i32, i64> = inspect::watermarks(&options.bootstrap_servers, topic)?
            .into_iter()
            .map(|(p, (_, high))| (p, high))
            .collect();
        marks.insert(topic.as_str(), ends);
    }
    crate::bench::delete_topics(&options.bootstrap_servers, &state_topics).await?;

    let started = Instant::now();
    let mut swarm = start_swarm(options, keys, ".restart")?;
    let watched = std::mem::take(&mut swarm.watched);
    let quiet = async {
        wait_ready(
            &options.http_listen,
            "customer-graph",
            Duration::from_secs(120),
        )
        .await?;
        Ok::<_, anyhow::Error>(
            until_quiet(options, &watched, &mut progress, QUIET_FOR, QUIET_WITHIN).await?,
        )
    };
    let settled = tokio::select! {
        settled = quiet => settled,
        (agent, why) = swarm.failure() => Err(anyhow::anyhow!("{agent} stopped: {why}")),
    };
    let settled = match settled {
        Ok(settled) => settled,
        Err(e) => {
            let _ = swarm.stop().await;
            return Err(e);
        }
    };
    progress.finish();
    let seconds_to_quiet = started.elapsed().as_secs_f64();

    let erased: BTreeSet<&str> = erasure.erased.iter().map(String::as_str).collect();
    let mut live_records_left = 0;
    for topic in MEMBER_TABLES {
        let live = inspect::latest_values(&options.bootstrap_servers, topic).await?;
        live_records_left += erased.iter().filter(|m| live.contains_key(**m)).count();
    }
    let mut reappeared = BTreeMap::new();
    for (topic, from) in &marks {
        let keys = inspect::live_keys_since(&options.bootstrap_servers, topic, from).await?;
        let found = keys.iter().filter(|k| erased.contains(k.as_str())).count();
        if found > 0 {
            reappeared.insert((*topic).to_owned(), found);
        }
    }
    let report = RestartReport {
        state_topics_deleted: state_topics.len(),
        seconds_to_quiet,
        settled,
        live_records_left,
        reappeared,
    };
    Ok((swarm, report))
}

impl std::fmt::Display for RestartReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "  restarted     every agent from empty state ({} state topics deleted, new groups from the earliest offset); quiet again in {:.1}s",
            self.state_topics_deleted, self.seconds_to_quiet
        )?;
        let reappeared = if self.reappeared.is_empty() {
            "none".to_owned()
        } else {
            self.reappeared
                .iter()
                .map(|(t, n)| format!("{t} {n}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        write!(
            f,
            "  after it      {} live records of them on the member topics; records keyed by them since the restart (tombstones aside): {reappeared}",
            self.live_records_left
        )
    }
}
