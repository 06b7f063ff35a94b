//! `swarm demo`: the whole system on one machine — broker, registry, topics, schemas,
//! agents and the CDNOW replay — ending in a summary of what came out.
//!
//! `mod.rs` runs it; `agents.rs` starts the agents and watches them; `summary.rs`
//! reads what they wrote once the swarm is quiet, `offers.rs` what save-offer proposed
//! and `gate.rs` what compliance-gate decided; `erasure.rs` erases a few members with
//! every agent running and checks what is left of them.

pub(crate) mod agents;
mod erasure;
mod gate;
mod offers;
mod summary;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use cohort::Cohort;
use customer_graph::CustomerGraph;
use loyalty_runtime::config::{ProcessingGuarantee, RuntimeSettings};
use loyalty_runtime::{Agent, Config, runner};
use ltv::Ltv;
use tier_transition::TierTransition;

use crate::inspect;
use crate::replay;
use crate::setup::{self, Target};
use agents::{Swarm, Watched, downstream_config, started_nanos};
pub use gate::GateReport;
pub use offers::OffersSummary;
pub use summary::{DemoSummary, Downstream, LtvSummary, decode_latest};

/// The public halves of the keys made for this run: ltv's attestations and
/// compliance-gate's audit checkpoints are verified with them.
#[derive(Debug, Clone)]
pub struct PublicKeys {
    pub ltv: String,
    pub gate: String,
}

/// How the demo reaches its cluster and what it replays.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    pub bootstrap_servers: String,
    pub registry_url: String,
    pub partitions: i32,
    pub replication: i32,
    /// CDNOW-format purchases to replay; `None` = the built-in master file.
    pub file: Option<PathBuf>,
    pub progress: bool,
    pub http_listen: String,
    /// Keep the agents running after the summary until `shutdown` resolves.
    pub keep_running: bool,
    /// Run cohort, tier-transition and ltv too (the demo does; the ingest benchmark runs
    /// customer-graph alone).
    pub downstream: bool,
    /// How every agent keeps state, outputs and offsets consistent.
    pub processing_guarantee: ProcessingGuarantee,
}

/// Poll an agent's `/readyz` until it answers 200.
pub(crate) async fn wait_ready(
    http_listen: &str,
    agent: &str,
    limit: Duration,
) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    let url = format!("http://{http_listen}/readyz");
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        let ready = client
            .get(&url)
            .timeout(Duration::from_secs(2))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success());
        if ready {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    anyhow::bail!("{agent} was not ready ({url}) within {}s", limit.as_secs())
}

/// Run the demo: set up the cluster, start the agents, replay CDNOW, wait until the
/// swarm is quiet and summarise; `on_summary` sees the summary as soon as it is read.
/// With `keep_running` the agents then keep serving until `shutdown` resolves. An agent
/// that stops on its own ends the run at once with an error naming it.
pub async fn run_demo(
    options: &DemoOptions,
    shutdown: impl std::future::Future<Output = ()>,
    on_summary: impl FnOnce(&DemoSummary),
) -> anyhow::Result<DemoSummary> {
    let target = Target {
        bootstrap_servers: options.bootstrap_servers.clone(),
        registry_url: options.registry_url.clone(),
        partitions: options.partitions,
        replication: options.replication,
        librdkafka: BTreeMap::new(),
    };
    setup::setup(&target)
        .await
        .context("creating topics and registering schemas")?;
    if options.downstream {
        crate::offers::publish_catalog(&options.bootstrap_servers, &options.registry_url)
            .await
            .context("publishing the sample offer catalog")?;
    }

    let mut config: Config<customer_graph::Settings> = Config::default();
    config.runtime.bootstrap_servers = options.bootstrap_servers.clone();
    config.runtime.schema_registry_url = options.registry_url.clone();
    config.runtime.partitions = options.partitions;
    config.runtime.http_listen = options.http_listen.clone();
    config.runtime.processing_guarantee = options.processing_guarantee;
    config.agent.default_program_id = crate::cdnow::PROGRAM_ID.into();
    config.runtime.erasure_key_file = Some(agents::erasure_key_file()?);
    let runtime = config.runtime.clone();
    let mut swarm = Swarm::new();
    swarm.spawn(CustomerGraph::new(&config.agent), config);
    let keys = if options.downstream {
        Some(start_downstream(&mut swarm, &runtime)?)
    } else {
        None
    };
    let watched = std::mem::take(&mut swarm.watched);

    let observed = tokio::select! {
        summary = observe(options, &watched, keys.as_ref()) => summary,
        (agent, why) = swarm.failure() => Err(anyhow::anyhow!("{agent} stopped: {why}")),
    };
    let summary = match observed {
        Ok(summary) => summary,
        Err(e) => {
            let _ = swarm.stop().await;
            return Err(e);
        }
    };
    on_summary(&summary);
    if options.keep_running {
        tokio::select! {
            _ = shutdown => {}
            (agent, why) = swarm.failure() => {
                let _ = swarm.stop().await;
                anyhow::bail!("{agent} stopped: {why}");
            }
        }
    }
    swarm.stop().await?;
    Ok(summary)
}

/// Replay CDNOW once customer-graph is ready, then wait for it to catch up and for the
/// swarm to go quiet, and summarise what came out.
async fn observe(
    options: &DemoOptions,
    watched: &Watched,
    keys: Option<&PublicKeys>,
) -> anyhow::Result<DemoSummary> {
    let mut progress = crate::progress::Progress::new(options.progress);
    progress.status("customer-graph joining its group and restoring its state");
    // The clock measures processing, not start-up: it starts once customer-graph has
    // joined its group and restored its state, as in a deployment that is already running.
    wait_ready(
        &options.http_listen,
        "customer-graph",
        Duration::from_secs(120),
    )
    .await?;
    progress.stage("customer-graph ready; replaying CDNOW");
    progress.status("replaying");
    let started = Instant::now();
    let replayed = replay::replay(
        &options.bootstrap_servers,
        &options.registry_url,
        options.file.as_deref(),
        options.progress,
    )
    .await
    .context("replaying CDNOW")?;
    let group = format!("loyalty-swarm.{}", CustomerGraph::NAME);
    let graph_consumed = runner::consumed_topics(&CustomerGraph::new(&Default::default()));
    progress.stage(&format!(
        "replayed {} events of {} members; customer-graph catching up",
        replayed.events, replayed.members
    ));
    let caught_up = inspect::wait_caught_up_reporting(
        &options.bootstrap_servers,
        &group,
        &graph_consumed,
        Duration::from_secs(600),
        &mut |lag| progress.status(&format!("customer-graph: {lag} records to go")),
    )
    .await?;
    anyhow::ensure!(
        caught_up,
        "customer-graph did not catch up within 10 minutes"
    );
    let end_to_end = started.elapsed().as_secs_f64();
    progress.stage(&format!(
        "customer-graph caught up in {end_to_end:.1}s; waiting for the swarm to go quiet \
         (everything consumed, nothing written for 40 s)"
    ));
    // Then until the agents downstream have consumed everything, refitted, re-scored and
    // stopped writing for longer than the longest refresh or refit interval (30 s).
    let settled = inspect::wait_quiet_reporting(
        &options.bootstrap_servers,
        &watched.groups,
        &watched.topics,
        Duration::from_secs(40),
        Duration::from_secs(900),
        &mut |status| progress.status(&quiet_status(status)),
    )
    .await?;
    let settled = if options.downstream && settled {
        // Members on the cancel page, the day after the history ends: save-offer answers
        // each while they are still there.
        let members: Vec<String> = inspect::latest_values(
            &options.bootstrap_servers,
            loyalty_contracts::topics::MEMBER_STATE,
        )
        .await?
        .into_keys()
        .collect();
        let requests = crate::offers::request_cancellations(
            &options.bootstrap_servers,
            &options.registry_url,
            &members,
            CANCELLING_EVERY,
            replayed.last_event,
        )
        .await
        .context("sending cancellation requests")?;
        progress.stage(&format!(
            "{requests} members asked to cancel; waiting for save-offer's proposals"
        ));
        inspect::wait_quiet_reporting(
            &options.bootstrap_servers,
            &watched.groups,
            &watched.topics,
            Duration::from_secs(20),
            Duration::from_secs(300),
            &mut |status| progress.status(&quiet_status(status)),
        )
        .await?
    } else {
        settled
    };
    // Then erase a few members the way an operator would, with every agent running.
    let erased = if options.downstream && settled {
        progress.stage(&format!(
            "erasing {ERASED_MEMBERS} members; waiting for every agent's receipt"
        ));
        Some(
            erasure::erase_members(
                &options.bootstrap_servers,
                &options.registry_url,
                ERASED_MEMBERS,
                Duration::from_secs(300),
            )
            .await
            .context("erasing members")?,
        )
    } else {
        None
    };
    progress.finish();
    summary::summarise(options, replayed, end_to_end, settled, keys, erased).await
}

/// Members the demo erases once the swarm is quiet.
const ERASED_MEMBERS: usize = 10;

/// Every how many members one asks to cancel after the replay.
const CANCELLING_EVERY: usize = 10;

/// A new key in a file only this run uses; its public half if it signs. The agent reads
/// it when built, after which the file is removed.
fn new_key_file(name: &str) -> anyhow::Result<(PathBuf, String)> {
    let file = std::env::temp_dir().join(format!(
        "loyalty-swarm-{name}-{}-{}.key",
        std::process::id(),
        started_nanos()
    ));
    let public = crate::verify::keygen(&file)?;
    Ok((file, public))
}

/// Start tier-transition, ltv, cohort, save-offer and its catalog, and compliance-gate
/// on the demo's cluster; returns the public halves of the keys made for ltv and the
/// gate.
fn start_downstream(swarm: &mut Swarm, runtime: &RuntimeSettings) -> anyhow::Result<PublicKeys> {
    // tier-transition waits until ltv has published the population fit.
    let forecaster = downstream_config::<tier_transition::Settings>(runtime, 10_000);
    swarm.spawn(TierTransition::new(&forecaster.agent), forecaster);

    // ltv fits the population per segment and publishes it; its attestations are signed
    // with a key made for this run (the public half is printed, to verify with).
    let mut valuer = downstream_config::<ltv::Settings>(runtime, 30_000);
    valuer.agent.attestor = "swarm-demo/ltv".into();
    // The replay covers 18 months in about a minute: refit often enough to follow it.
    valuer.agent.refit_min_interval_ms = 20_000;
    let (key_file, ltv_key) = new_key_file("ltv")?;
    valuer.agent.signing_key_file = Some(key_file.clone());
    let valuer_agent = Ltv::new(&valuer.agent);
    let _ = std::fs::remove_file(&key_file);
    swarm.spawn(valuer_agent, valuer);

    let segmenter = downstream_config::<loyalty_runtime::NoSettings>(runtime, 15_000);
    swarm.spawn(Cohort::default(), segmenter);

    let catalog = downstream_config::<loyalty_runtime::NoSettings>(runtime, 30_000);
    swarm.spawn(save_offer::OfferCatalog, catalog);
    let offers = downstream_config::<save_offer::Settings>(runtime, 15_000);
    swarm.spawn(save_offer::SaveOffer::new(&offers.agent), offers);

    // compliance-gate decides every proposal; its audit checkpoints are signed with a
    // key made for this run, its pseudonyms derived under another.
    let mut gate = downstream_config::<compliance_gate::settings::Settings>(runtime, 15_000);
    let (signing, gate_key) = new_key_file("gate-signing")?;
    let (pseudonym, _) = new_key_file("gate-pseudonym")?;
    gate.agent.signing_key_file = Some(signing.clone());
    gate.agent.pseudonym_key_file = Some(pseudonym.clone());
    let gate_agent = compliance_gate::ComplianceGate::new(&gate.agent);
    let _ = std::fs::remove_file(&signing);
    let _ = std::fs::remove_file(&pseudonym);
    swarm.spawn(gate_agent, gate);
    Ok(PublicKeys {
        ltv: ltv_key,
        gate: gate_key,
    })
}

/// One line on what the swarm is still doing: each agent's lag, or how long it has been
/// quiet.
fn quiet_status(status: &inspect::QuietStatus<'_>) -> String {
    let lags: Vec<String> = status
        .lags
        .iter()
        .map(|(group, lag)| {
            let agent = group.strip_prefix("loyalty-swarm.").unwrap_or(group);
            format!("{agent} {lag}")
        })
        .collect();
    match status.quiet {
        Some(quiet) => format!("all caught up; quiet for {}s of 40", quiet.as_secs()),
        None => format!("records to go: {}", lags.join(", ")),
    }
}
