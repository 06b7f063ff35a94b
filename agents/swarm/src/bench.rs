//! `swarm bench`: the CDNOW replay through customer-graph (and, with `--all-agents`, the
//! whole demo) several times, each on an empty cluster, reporting every run and the
//! medians. By default each run gets a fresh embedded stack; given a cluster of your own
//! (`--bootstrap-servers`), each run creates the swarm's topics there and deletes them,
//! and the consumer groups it made, afterwards, so the next run starts as empty.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use loyalty_runtime::config::ProcessingGuarantee;
use loyalty_runtime::{Agent, kafka};
use rdkafka::admin::AdminOptions;
use rdkafka::consumer::{BaseConsumer, Consumer};

use crate::demo::{self, DemoSummary};
use crate::registry::SCHEMAS_TOPIC;
use crate::stack;

/// The agents a run may start; their own topics are named after them.
const AGENT_NAMES: [&str; 6] = [
    customer_graph::CustomerGraph::NAME,
    cohort::Cohort::NAME,
    tier_transition::TierTransition::NAME,
    ltv::Ltv::NAME,
    save_offer::SaveOffer::NAME,
    save_offer::OfferCatalog::NAME,
];

/// What `swarm bench` runs, and where.
#[derive(Debug, Clone)]
pub struct BenchOptions {
    pub runs: u32,
    pub all_agents: bool,
    pub file: Option<PathBuf>,
    pub partitions: i32,
    pub processing_guarantee: ProcessingGuarantee,
    /// A cluster and registry of the user's; `None` = a fresh embedded stack per run.
    pub cluster: Option<(String, String)>,
}

/// Every run's summary and the medians, as `swarm bench` prints them.
pub async fn bench(options: &BenchOptions) -> anyhow::Result<serde_json::Value> {
    if let Some((bootstrap, _)) = &options.cluster {
        let present = swarm_topics(&topics(bootstrap)?);
        anyhow::ensure!(
            present.is_empty(),
            "{bootstrap} already holds the swarm's topics ({}); the benchmark writes CDNOW into \
             them and deletes them after each run, so it needs a cluster without them",
            present.into_iter().collect::<Vec<_>>().join(", ")
        );
    }
    let mut results: Vec<DemoSummary> = Vec::new();
    for run in 1..=options.runs {
        let summary = match &options.cluster {
            None => {
                let s = stack::start(&stack::StackOptions {
                    kafka: format!("127.0.0.1:{}", stack::free_port()?).parse()?,
                    registry: format!("127.0.0.1:{}", stack::free_port()?).parse()?,
                    storage: None,
                })
                .await?;
                let summary = one_run(options, &s.bootstrap_servers, &s.registry_url, 1).await;
                s.shutdown().await;
                summary?
            }
            Some((bootstrap, registry)) => {
                let summary = one_run(options, bootstrap, registry, -1).await;
                let emptied = empty_cluster(bootstrap)
                    .await
                    .context("deleting what the run created");
                match (summary, emptied) {
                    (Ok(summary), Ok(())) => summary,
                    (Err(run), Ok(())) => return Err(run),
                    (Ok(_), Err(cleanup)) => return Err(cleanup),
                    (Err(run), Err(cleanup)) => {
                        return Err(run.context(format!("and then: {cleanup:#}")));
                    }
                }
            }
        };
        eprintln!(
            "run {run}/{}: {:.0} events/s end to end",
            options.runs, summary.events_per_second
        );
        results.push(summary);
    }
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
    };
    Ok(serde_json::json!({
        "runs": results,
        "median_events_per_second": median(results.iter().map(|r| r.events_per_second).collect()),
        "median_state_bytes_per_member": median(results.iter().map(|r| r.state_bytes_per_member).collect()),
    }))
}

async fn one_run(
    options: &BenchOptions,
    bootstrap_servers: &str,
    registry_url: &str,
    replication: i32,
) -> anyhow::Result<DemoSummary> {
    let demo = demo::DemoOptions {
        bootstrap_servers: bootstrap_servers.to_owned(),
        registry_url: registry_url.to_owned(),
        partitions: options.partitions,
        replication,
        file: options.file.clone(),
        progress: false,
        http_listen: format!("127.0.0.1:{}", stack::free_port()?),
        keep_running: false,
        downstream: options.all_agents,
        processing_guarantee: options.processing_guarantee,
        restart_from_empty: false,
        erase_during_replay: 0,
    };
    demo::run_demo(&demo, std::future::pending::<()>(), |_| {}).await
}

/// The topics a run creates: the contract's and the agents' own (changelogs, DLQs,
/// repartition and summary topics), everything but the registry's and Kafka's.
fn swarm_topics(all: &BTreeSet<String>) -> BTreeSet<String> {
    all.iter()
        .filter(|t| !t.starts_with("__") && t.as_str() != SCHEMAS_TOPIC)
        .filter(|t| {
            t.starts_with("loyalty.")
                || AGENT_NAMES
                    .iter()
                    .any(|agent| t.starts_with(&format!("{agent}.")))
        })
        .cloned()
        .collect()
}

fn consumer(bootstrap_servers: &str) -> anyhow::Result<BaseConsumer> {
    Ok(kafka::base_config(bootstrap_servers, &Default::default()).create()?)
}

fn topics(bootstrap_servers: &str) -> anyhow::Result<BTreeSet<String>> {
    let consumer = consumer(bootstrap_servers)?;
    let metadata = kafka::blocking(|| consumer.fetch_metadata(None, Duration::from_secs(30)))?;
    Ok(metadata
        .topics()
        .iter()
        .map(|t| t.name().to_owned())
        .collect())
}

/// The swarm's consumer groups (the agents', the registry's, the inspectors'), all named
/// `loyalty-swarm.…`; a user's own groups on the cluster are left alone.
fn swarm_groups(bootstrap_servers: &str) -> anyhow::Result<BTreeSet<String>> {
    let consumer = consumer(bootstrap_servers)?;
    let list = kafka::blocking(|| consumer.fetch_group_list(None, Duration::from_secs(30)))?;
    Ok(list
        .groups()
        .iter()
        .map(|g| g.name().to_owned())
        // The registry serves on; its group is not the run's to delete.
        .filter(|name| name.starts_with("loyalty-swarm.") && !name.ends_with(".schema-registry"))
        .collect())
}

/// Deletes the swarm's topics and consumer groups, then waits until the cluster no
/// longer lists those topics.
async fn empty_cluster(bootstrap_servers: &str) -> anyhow::Result<()> {
    let admin = kafka::admin_client(bootstrap_servers, &Default::default())?;
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let new_groups: Vec<String> = swarm_groups(bootstrap_servers)?.into_iter().collect();
    if !new_groups.is_empty() {
        let names: Vec<&str> = new_groups.iter().map(String::as_str).collect();
        for result in admin.delete_groups(&names, &options).await? {
            if let Err((group, code)) = result {
                anyhow::bail!("deleting group {group}: {code}");
            }
        }
    }
    let created: Vec<String> = swarm_topics(&topics(bootstrap_servers)?)
        .into_iter()
        .collect();
    delete_topics(bootstrap_servers, &created).await
}

/// Delete those of `names` the cluster has, then wait until it no longer lists them:
/// deletion is asynchronous on Kafka, and creating a topic of the same name before it is
/// gone fails.
pub(crate) async fn delete_topics(bootstrap_servers: &str, names: &[String]) -> anyhow::Result<()> {
    let listed = |existing: &BTreeSet<String>| -> Vec<String> {
        names
            .iter()
            .filter(|n| existing.contains(*n))
            .cloned()
            .collect()
    };
    let present = listed(&topics(bootstrap_servers)?);
    if !present.is_empty() {
        let admin = kafka::admin_client(bootstrap_servers, &Default::default())?;
        let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
        let names: Vec<&str> = present.iter().map(String::as_str).collect();
        for result in admin.delete_topics(&names, &options).await? {
            if let Err((topic, code)) = result {
                anyhow::bail!("deleting topic {topic}: {code}");
            }
        }
    }
    for _ in 0..300 {
        if listed(&topics(bootstrap_servers)?).is_empty() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    anyhow::bail!("topics were still listed 60 s after deleting them: {present:?}")
}
