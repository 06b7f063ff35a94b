//! The demo's erasure step. Once the swarm is quiet, a few members are erased the way an
//! operator would (`swarm erasure request`), and the demo waits until all six agents
//! have receipted every request. It then checks that no compacted member topic holds a
//! live record of them. The gate's audit chain is verified after this step, so the demo
//! also shows that shredded pseudonym secrets leave it intact.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use loyalty_contracts::topics;
use loyalty_runtime::registry::RegistryClient;
use serde::Serialize;

use crate::erasure::{ERASING_AGENTS, receipts, requests};
use crate::inspect;

/// The compacted topics keyed by member: an erased member must have no live record.
pub(super) const MEMBER_TABLES: [&str; 4] = [
    topics::MEMBER_STATE,
    topics::COHORTS,
    topics::TIER_FORECASTS,
    topics::MEMBER_LTV,
];

/// What the erasure step did.
#[derive(Debug, Clone, Serialize, Default)]
pub struct ErasureReport {
    pub members: usize,
    /// (request, agent) pairs receipted, of `members` × six.
    pub receipted: usize,
    pub expected: usize,
    /// From the first request written to the last receipt read.
    pub seconds_to_all_receipts: f64,
    /// Live records of the erased members left on the compacted member topics.
    pub live_records_left: usize,
    /// The members erased (kept for the checks after a restart, never printed).
    #[serde(skip)]
    pub erased: Vec<String>,
    /// What a restart of every agent from empty state brought back (none, or `None`
    /// when the demo did not restart).
    pub restart: Option<super::restart::RestartReport>,
}

/// Erase `count` members spread over member-state's keys (in key order) and wait up to
/// `limit` for every receipt.
pub(super) async fn erase_members(
    bootstrap_servers: &str,
    registry_url: &str,
    count: usize,
    limit: Duration,
) -> anyhow::Result<ErasureReport> {
    let all: Vec<String> = inspect::latest_values(bootstrap_servers, topics::MEMBER_STATE)
        .await?
        .into_keys()
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    erase(bootstrap_servers, registry_url, spread(all, count), limit).await
}

/// `count` of `members` (sorted), evenly spread.
pub(super) fn spread(members: Vec<String>, count: usize) -> Vec<String> {
    let step = (members.len() / count.max(1)).max(1);
    members.into_iter().step_by(step).take(count).collect()
}

/// Write one erasure request per member, the way `swarm erasure request` does, and wait
/// up to `limit` until all six agents have receipted each.
pub(super) async fn erase(
    bootstrap_servers: &str,
    registry_url: &str,
    members: Vec<String>,
    limit: Duration,
) -> anyhow::Result<ErasureReport> {
    let registry = RegistryClient::new(registry_url)?;
    let started = Instant::now();
    let written = request_all(bootstrap_servers, registry_url, &members).await?;
    let pending: BTreeMap<String, BTreeSet<&str>> = written
        .into_iter()
        .map(|r| (r.request_id, ERASING_AGENTS.into_iter().collect()))
        .collect();
    let expected = members.len() * ERASING_AGENTS.len();
    // Reading every receipt costs more the more there are: ask less often then.
    let every = Duration::from_millis(if expected > 1_000 { 2_000 } else { 250 });
    let mut receipted = 0;
    while started.elapsed() < limit {
        receipted = 0;
        let mut waiting = pending.clone();
        for receipt in receipts(bootstrap_servers, &registry).await? {
            if let Some(agents) = waiting.get_mut(&receipt.request_id)
                && agents.remove(receipt.agent.as_str())
            {
                receipted += 1;
            }
        }
        if receipted == expected {
            break;
        }
        tokio::time::sleep(every).await;
    }
    let seconds_to_all_receipts = started.elapsed().as_secs_f64();
    let mut live_records_left = 0;
    for topic in MEMBER_TABLES {
        let live = inspect::latest_values(bootstrap_servers, topic).await?;
        live_records_left += members.iter().filter(|m| live.contains_key(*m)).count();
    }
    Ok(ErasureReport {
        members: members.len(),
        receipted,
        expected,
        seconds_to_all_receipts,
        live_records_left,
        erased: members,
        restart: None,
    })
}

async fn request_all(
    bootstrap_servers: &str,
    registry_url: &str,
    members: &[String],
) -> anyhow::Result<Vec<loyalty_contracts::ErasureRequest>> {
    requests(
        bootstrap_servers,
        registry_url,
        members,
        "gdpr_art17",
        Some("swarm demo".into()),
    )
    .await
}

impl std::fmt::Display for ErasureReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "erasure")?;
        writeln!(
            f,
            "  requests      {} members; {} of {} receipts ({} agents each) in {:.1}s",
            self.members,
            self.receipted,
            self.expected,
            ERASING_AGENTS.len(),
            self.seconds_to_all_receipts
        )?;
        write!(
            f,
            "  left          {} live records of them on member-state, cohorts, tier-forecasts and member-ltv",
            self.live_records_left
        )?;
        if let Some(restart) = &self.restart {
            write!(f, "\n{restart}")?;
        }
        Ok(())
    }
}
