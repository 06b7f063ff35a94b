//! `swarm demo`: the whole system on one machine — broker, registry, topics, schemas,
//! agents and the CDNOW replay — ending in a summary of what came out.
//!
//! `mod.rs` runs it; `agents.rs` starts the agents and watches them; `summary.rs`
//! reads what they wrote once the swarm is quiet, `offers.rs` what save-offer proposed
//! and `gate.rs` what compliance-gate decided; `erasure.rs` erases a few members with
//! every agent running and checks what is left of them; `restart.rs` restarts every
//! agent from empty state and checks the erased members stay erased.

pub(crate) mod agents;
mod erasure;
mod gate;
mod offers;
mod restart;
mod summary;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use cohort::Cohort;
use customer_graph::CustomerGraph;
use loyalty_contracts::{MemberState, Timestamp, topics};
use loyalty_runtime::config::{ProcessingGuarantee, RuntimeSettings};
use loyalty_runtime::registry::RegistryClient;
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
    /// After the erasure step, stop every agent, delete their state and start them again
    /// under new consumer groups, so they replay the whole history from empty state;
    /// then check the erased members stay erased (`restart.rs`).
    pub restart_from_empty: bool,
    /// Erase this many members (spread over the file's customers) while the replay runs,
    /// and report the time to all receipts; 0 erases none then.
    pub erase_during_replay: usize,
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
        member_stream_retention_ms: loyalty_runtime::config::MEMBER_STREAM_RETENTION_MS,
    };
    setup::setup(&target)
        .await
        .context("creating topics and registering schemas")?;
    if options.downstream {
        crate::offers::publish_catalog(&options.bootstrap_servers, &options.registry_url)
            .await
            .context("publishing the sample offer catalog")?;
    }

    let keys = RunKeys::new(options.downstream)?;
    let mut swarm = start_swarm(options, &keys, "")?;
    let watched = std::mem::take(&mut swarm.watched);
    let public = keys.as_ref().map(RunKeys::public);

    let observed = tokio::select! {
        observed = observe(options, &watched) => observed,
        (agent, why) = swarm.failure() => Err(anyhow::anyhow!("{agent} stopped: {why}")),
    };
    let mut observed = match observed {
        Ok(observed) => observed,
        Err(e) => {
            let _ = swarm.stop().await;
            return Err(e);
        }
    };
    if options.restart_from_empty
        && let Some(erasure) = observed.erased.as_mut()
    {
        let (restarted, report) =
            restart::restart_from_empty(options, swarm, &watched.topics, &keys, erasure)
                .await
                .context("restarting the swarm from empty state")?;
        swarm = restarted;
        observed.settled &= report.settled;
        erasure.restart = Some(report);
    }
    let summary = match summary::summarise(
        options,
        observed.replayed,
        observed.end_to_end,
        observed.settled,
        public.as_ref(),
        observed.erased,
        observed.erased_during_replay,
    )
    .await
    {
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

/// Start customer-graph, and the agents downstream of it when the demo runs them, each
/// in the consumer group `loyalty-swarm.<agent><generation>` (a restart from empty state
/// uses a new generation, so it reads every input from the earliest offset).
fn start_swarm(
    options: &DemoOptions,
    keys: &Option<RunKeys>,
    generation: &str,
) -> anyhow::Result<Swarm> {
    let mut config: Config<customer_graph::Settings> = Config::default();
    config.runtime.bootstrap_servers = options.bootstrap_servers.clone();
    config.runtime.schema_registry_url = options.registry_url.clone();
    config.runtime.partitions = options.partitions;
    config.runtime.http_listen = options.http_listen.clone();
    config.runtime.processing_guarantee = options.processing_guarantee;
    config.agent.default_program_id = crate::cdnow::PROGRAM_ID.into();
    config.runtime.erasure_key_file = Some(agents::erasure_key_file()?);
    let runtime = config.runtime.clone();
    let mut swarm = Swarm::new(generation);
    swarm.spawn(CustomerGraph::new(&config.agent), config);
    if options.downstream {
        start_downstream(&mut swarm, &runtime, keys)?;
    }
    Ok(swarm)
}

/// What the run observed up to the erasure step.
struct Observed {
    replayed: replay::ReplaySummary,
    end_to_end: f64,
    settled: bool,
    erased: Option<erasure::ErasureReport>,
    erased_during_replay: Option<erasure::ErasureReport>,
}

/// Replay CDNOW once customer-graph is ready, then wait for it to catch up and for the
/// swarm to go quiet, and summarise what came out.
async fn observe(options: &DemoOptions, watched: &Watched) -> anyhow::Result<Observed> {
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
    let erasing = erase_during_replay(options)?;
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
    let settled = until_quiet(options, watched, &mut progress, QUIET_FOR, QUIET_WITHIN).await?;
    // The member ids and each one's newest event time, for the campaign and the
    // cancellations (read once the replay has settled).
    let members: BTreeMap<String, Timestamp> = if options.downstream && settled {
        let registry = RegistryClient::new(&options.registry_url)?;
        let states: BTreeMap<String, MemberState> =
            summary::decode_latest(&options.bootstrap_servers, &registry, topics::MEMBER_STATE)
                .await?;
        states.into_iter().map(|(m, s)| (m, s.as_of)).collect()
    } else {
        BTreeMap::new()
    };
    let settled = if options.downstream && settled {
        // A past campaign's outcomes, so ltv has uplifts to learn and save-offer values
        // to weigh against costs (without them every incremental LTV is the prior's 0).
        let outcomes = crate::campaign::publish_outcomes(
            &options.bootstrap_servers,
            &options.registry_url,
            &members,
        )
        .await
        .context("publishing the campaign's outcomes")?;
        progress.stage(&format!(
            "{outcomes} outcomes of a past campaign published; waiting for ltv to learn them"
        ));
        until_quiet(options, watched, &mut progress, QUIET_FOR, QUIET_WITHIN).await?
    } else {
        settled
    };
    let settled = if options.downstream && settled {
        // Members on the cancel page, the day after the history ends: save-offer answers
        // each while they are still there.
        let ids: Vec<String> = members.keys().cloned().collect();
        let requests = crate::offers::request_cancellations(
            &options.bootstrap_servers,
            &options.registry_url,
            &ids,
            CANCELLING_EVERY,
            replayed.last_event,
        )
        .await
        .context("sending cancellation requests")?;
        progress.stage(&format!(
            "{requests} members asked to cancel; waiting for save-offer's proposals"
        ));
        until_quiet(
            options,
            watched,
            &mut progress,
            Duration::from_secs(20),
            Duration::from_secs(300),
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
    let erased_during_replay = match erasing {
        Some(task) => Some(task.await.context("erasing during the replay")??),
        None => None,
    };
    Ok(Observed {
        replayed,
        end_to_end,
        settled,
        erased,
        erased_during_replay,
    })
}

/// With `erase_during_replay`, a task that erases that many members (spread over the
/// file's customers, all six agents running) while the replay goes on, and waits for
/// every receipt.
fn erase_during_replay(
    options: &DemoOptions,
) -> anyhow::Result<Option<tokio::task::JoinHandle<anyhow::Result<erasure::ErasureReport>>>> {
    if options.erase_during_replay == 0 {
        return Ok(None);
    }
    let customers: std::collections::BTreeSet<String> =
        crate::cdnow::purchases(options.file.as_deref())?
            .into_iter()
            .map(|p| p.customer)
            .collect();
    let members = erasure::spread(customers.into_iter().collect(), options.erase_during_replay);
    let (bootstrap, registry) = (
        options.bootstrap_servers.clone(),
        options.registry_url.clone(),
    );
    Ok(Some(tokio::spawn(async move {
        // A moment into the replay, so some of the members are held and some not yet.
        tokio::time::sleep(Duration::from_secs(2)).await;
        erasure::erase(&bootstrap, &registry, members, Duration::from_secs(1_800)).await
    })))
}

/// Members the demo erases once the swarm is quiet.
const ERASED_MEMBERS: usize = 10;

/// Every how many members one asks to cancel after the replay.
const CANCELLING_EVERY: usize = 10;

/// The keys a run signs and pseudonymises with, each in a file only this run uses: kept
/// while agents may be started (a restart from empty state builds them again with the
/// same keys, so the audit chain and the attestations verify under one public key) and
/// removed when the run ends.
struct RunKeys {
    ltv: (PathBuf, String),
    gate_signing: (PathBuf, String),
    gate_pseudonym: PathBuf,
}

impl RunKeys {
    /// None when the demo runs customer-graph alone.
    fn new(downstream: bool) -> anyhow::Result<Option<Self>> {
        if !downstream {
            return Ok(None);
        }
        Ok(Some(RunKeys {
            ltv: new_key_file("ltv")?,
            gate_signing: new_key_file("gate-signing")?,
            gate_pseudonym: new_key_file("gate-pseudonym")?.0,
        }))
    }

    fn public(&self) -> PublicKeys {
        PublicKeys {
            ltv: self.ltv.1.clone(),
            gate: self.gate_signing.1.clone(),
        }
    }
}

impl Drop for RunKeys {
    fn drop(&mut self) {
        for file in [&self.ltv.0, &self.gate_signing.0, &self.gate_pseudonym] {
            let _ = std::fs::remove_file(file);
        }
    }
}

/// A new key in a file only this run uses; its public half if it signs.
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
/// on the demo's cluster, with the run's keys.
fn start_downstream(
    swarm: &mut Swarm,
    runtime: &RuntimeSettings,
    keys: &Option<RunKeys>,
) -> anyhow::Result<()> {
    let Some(keys) = keys else {
        anyhow::bail!("the agents downstream need the run's keys");
    };
    // tier-transition waits until ltv has published the population fit.
    let forecaster = downstream_config::<tier_transition::Settings>(runtime, 10_000);
    swarm.spawn(TierTransition::new(&forecaster.agent), forecaster);

    // ltv fits the population per segment and publishes it; its attestations are signed
    // with a key made for this run (the public half is printed, to verify with).
    let mut valuer = downstream_config::<ltv::Settings>(runtime, 30_000);
    valuer.agent.attestor = "swarm-demo/ltv".into();
    // The replay covers 18 months in about a minute: refit often enough to follow it.
    valuer.agent.refit_min_interval_ms = 20_000;
    valuer.agent.signing_key_file = Some(keys.ltv.0.clone());
    swarm.spawn(Ltv::new(&valuer.agent), valuer);

    let segmenter = downstream_config::<loyalty_runtime::NoSettings>(runtime, 15_000);
    swarm.spawn(Cohort::default(), segmenter);

    let catalog = downstream_config::<loyalty_runtime::NoSettings>(runtime, 30_000);
    swarm.spawn(save_offer::OfferCatalog, catalog);
    let offers = downstream_config::<save_offer::Settings>(runtime, 15_000);
    swarm.spawn(save_offer::SaveOffer::new(&offers.agent), offers);

    // compliance-gate decides every proposal; its audit checkpoints are signed with a
    // key made for this run, its pseudonyms derived under another.
    let mut gate = downstream_config::<compliance_gate::settings::Settings>(runtime, 15_000);
    gate.agent.signing_key_file = Some(keys.gate_signing.0.clone());
    gate.agent.pseudonym_key_file = Some(keys.gate_pseudonym.clone());
    swarm.spawn(compliance_gate::ComplianceGate::new(&gate.agent), gate);
    Ok(())
}

/// How long nothing may be consumed or written before the swarm counts as quiet: longer
/// than any refresh or refit interval (30 s).
const QUIET_FOR: Duration = Duration::from_secs(40);
/// How long the demo waits for that before summarising what there is.
const QUIET_WITHIN: Duration = Duration::from_secs(900);

/// Wait until the `watched` swarm has consumed everything and written nothing for
/// `quiet_for` (at most `limit`), saying where it stands on `progress`.
async fn until_quiet(
    options: &DemoOptions,
    watched: &Watched,
    progress: &mut crate::progress::Progress,
    quiet_for: Duration,
    limit: Duration,
) -> Result<bool, loyalty_runtime::RuntimeError> {
    inspect::wait_quiet_reporting(
        &options.bootstrap_servers,
        &watched.groups,
        &watched.topics,
        quiet_for,
        limit,
        &mut |status| progress.status(&quiet_status(status)),
    )
    .await
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
