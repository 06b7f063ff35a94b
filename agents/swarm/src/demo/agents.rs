//! The agents a demo runs, each on its own task in this process: one generic way to
//! start them, what to watch to know the swarm is quiet, and the first agent that stops
//! on its own, reported at once — a demo must not go on serving a swarm without it.

use loyalty_runtime::config::RuntimeSettings;
use loyalty_runtime::{Agent, Config, RuntimeError, runner};
use tokio::sync::{mpsc, watch};

use crate::inspect;

/// The agents' consumer groups and inputs, and every topic they write, for waiting until
/// the swarm is quiet.
#[derive(Default)]
pub(crate) struct Watched {
    pub(crate) groups: inspect::Watched,
    pub(crate) topics: Vec<String>,
}

impl Watched {
    fn add<A: Agent>(&mut self, agent: &A, group: String) {
        self.groups.push((group, runner::consumed_topics(agent)));
        self.topics
            .extend(agent.outputs().iter().map(|o| o.topic().to_owned()));
        self.topics.push(runner::changelog_topic::<A>());
        if loyalty_runtime::shares_summary::<A>() {
            self.topics.push(runner::summaries_topic::<A>());
        }
    }
}

type AgentTask = tokio::task::JoinHandle<Result<(), RuntimeError>>;

/// The running agents.
pub(crate) struct Swarm {
    stop: watch::Sender<bool>,
    tasks: Vec<(&'static str, AgentTask)>,
    /// Agents that stopped before they were asked to, with why.
    stopped_tx: mpsc::UnboundedSender<(&'static str, String)>,
    stopped_rx: mpsc::UnboundedReceiver<(&'static str, String)>,
    pub(crate) watched: Watched,
    /// Appended to each agent's consumer group: a new generation reads every input from
    /// the earliest offset.
    generation: String,
    /// The topics holding each agent's state (changelogs, shared summaries, repartition
    /// and internal topics): what a restart from empty state deletes.
    pub(crate) state_topics: Vec<String>,
}

impl Swarm {
    pub(crate) fn new(generation: &str) -> Self {
        let (stopped_tx, stopped_rx) = mpsc::unbounded_channel();
        Swarm {
            stop: watch::channel(false).0,
            tasks: Vec::new(),
            stopped_tx,
            stopped_rx,
            watched: Watched::default(),
            generation: generation.to_owned(),
            state_topics: Vec::new(),
        }
    }

    /// Start `agent` with `config` on its own task, in the consumer group the config
    /// names or else `loyalty-swarm.<agent><generation>`.
    pub(crate) fn spawn<A: Agent>(&mut self, agent: A, mut config: Config<A::Settings>) {
        let group = config
            .runtime
            .group_id
            .get_or_insert_with(|| format!("loyalty-swarm.{}{}", A::NAME, self.generation))
            .clone();
        self.watched.add(&agent, group);
        self.state_topics.push(runner::changelog_topic::<A>());
        if loyalty_runtime::shares_summary::<A>() {
            self.state_topics.push(runner::summaries_topic::<A>());
        }
        if loyalty_runtime::rekeys::<A>() {
            self.state_topics.push(runner::repartition_topic::<A>());
        }
        self.state_topics
            .extend(agent.internal_topics().iter().map(|t| t.topic().to_owned()));
        let stop = self.stop.subscribe();
        let report = self.stopped_tx.clone();
        let task = tokio::spawn(async move {
            let result = runner::run(agent, config, loyalty_runtime::stopped(stop.clone())).await;
            if !*stop.borrow() {
                let why = match &result {
                    Ok(()) => "it stopped without being asked to".to_owned(),
                    Err(e) => e.to_string(),
                };
                let _ = report.send((A::NAME, why));
            }
            result
        });
        self.tasks.push((A::NAME, task));
    }

    /// Resolves when an agent stops before the swarm is stopped: the agent and why.
    pub(crate) async fn failure(&mut self) -> (&'static str, String) {
        match self.stopped_rx.recv().await {
            Some(failure) => failure,
            // The swarm holds a sender itself, so the channel never closes.
            None => std::future::pending().await,
        }
    }

    /// Stop every agent, waiting for each to drain; the first failure, if any.
    pub(crate) async fn stop(self) -> anyhow::Result<()> {
        let _ = self.stop.send(true);
        let mut first = Ok(());
        for (name, task) in self.tasks {
            let ended = match task.await {
                Ok(result) => result.map_err(anyhow::Error::from),
                Err(e) => Err(anyhow::Error::from(e)),
            };
            if let Err(e) = ended
                && first.is_ok()
            {
                first = Err(e.context(format!("{name} stopped")));
            }
        }
        first
    }
}

/// A config for a downstream agent on the demo's cluster: its own HTTP port, and how
/// often it refreshes.
pub(crate) fn downstream_config<S: loyalty_runtime::AgentSettings>(
    runtime: &RuntimeSettings,
    refresh_interval_ms: u64,
) -> Config<S> {
    let mut config = Config {
        runtime: runtime.clone(),
        ..Config::default()
    };
    config.runtime.http_listen = "127.0.0.1:0".into();
    config.runtime.refresh_interval_ms = refresh_interval_ms;
    config
}

/// The erasure registry key of this process's swarm: a file made once per process and
/// kept while it runs, since every agent reads it when it starts (one restarted
/// mid-run included).
pub(crate) fn erasure_key_file() -> anyhow::Result<std::path::PathBuf> {
    static FILE: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    if let Some(file) = FILE.get() {
        return Ok(file.clone());
    }
    let file = std::env::temp_dir().join(format!(
        "loyalty-swarm-erasure-{}-{}.key",
        std::process::id(),
        started_nanos()
    ));
    crate::verify::keygen(&file)?;
    Ok(FILE.get_or_init(|| file).clone())
}

/// A name for a file no other run of the demo uses.
pub(crate) fn started_nanos() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}
