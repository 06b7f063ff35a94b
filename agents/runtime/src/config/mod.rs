//! Layered agent configuration: a TOML file, then `LOYALTY_*` environment variables,
//! then command-line flags, merged into one table and deserialised once.
//!
//! Unknown keys are errors, and every problem is reported at once rather than one per
//! restart: a deployment that fails should say everything that is wrong with it.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// Every problem found in a configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigErrors(pub Vec<String>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, problem) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "  - {problem}")?;
        }
        Ok(())
    }
}

/// How state, outputs and offsets are kept consistent (`docs/architecture.md#effectively-once-and-exactly-once`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProcessingGuarantee {
    /// Recorded input positions make replays idempotent; works on every broker.
    EffectivelyOnce,
    /// Kafka transactions (Kafka Streams' `exactly_once_v2`): a batch's outputs,
    /// changelog records and input offsets commit or abort together, so read_committed
    /// consumers never see a replayed output twice. Needs a broker with transactions.
    ExactlyOnce,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    Json,
    Text,
}

/// `max_event_time_ahead_ms` unless set: one hour, as Kafka's
/// `log.message.timestamp.after.max.ms`.
pub const DEFAULT_MAX_EVENT_TIME_AHEAD_MS: u64 = 3_600_000;

/// Settings every agent has. Defaults suit the local stack started by `swarm`.
#[derive(Clone, Serialize, Deserialize)]
#[serde(default)]
pub struct RuntimeSettings {
    /// Kafka bootstrap servers.
    pub bootstrap_servers: String,
    /// Confluent-compatible schema registry.
    pub schema_registry_url: String,
    /// Consumer group; defaults to `loyalty-swarm.<agent>`.
    pub group_id: Option<String>,
    /// Address of the /metrics, /healthz and /readyz server.
    pub http_listen: String,
    /// Partitions of every member-keyed topic (and of the agent's changelogs).
    pub partitions: i32,
    /// Most records handled per batch (one commit per batch).
    pub batch_max_records: usize,
    /// Longest wait for a batch to fill, in milliseconds.
    pub batch_max_wait_ms: u64,
    pub processing_guarantee: ProcessingGuarantee,
    /// Transactional id under exactly_once; one per instance, kept across its restarts
    /// so a restarted instance aborts what its crashed predecessor left open (fencing).
    /// Default: `<group>.<host name>.<http_listen port>`.
    pub transactional_id: Option<String>,
    pub log_format: LogFormat,
    /// `tracing` filter directive, e.g. `info` or `customer_graph=debug,info`.
    pub log_level: String,
    /// OTLP/HTTP base URL for traces, e.g. http://localhost:4318 (spans go to its
    /// /v1/traces). Unset: the standard OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT variables
    /// apply; with neither, no spans are exported and `traceparent` is passed through.
    pub otlp_endpoint: Option<String>,
    /// Share of records arriving without a sampled `traceparent` that start a trace.
    pub trace_sample_ratio: f64,
    /// First retry delay after a transient failure, in milliseconds.
    pub retry_initial_ms: u64,
    /// Longest retry delay, in milliseconds; retries never give up.
    pub retry_max_ms: u64,
    /// Shortest time between two refreshes of every key after the population view
    /// changed (agents that share partition summaries), in milliseconds. While input is
    /// waiting (the last batch was full) a refresh waits up to ten times as long.
    pub refresh_interval_ms: u64,
    /// Shortest time between two purges of the agent's repartition topic (agents that
    /// re-key), in milliseconds: records the group has committed past are deleted with
    /// DeleteRecords, as Kafka Streams' `repartition.purge.interval.ms` does. 0 keeps
    /// them (a broker without DeleteRecords).
    pub repartition_purge_interval_ms: u64,
    /// Longest a shutdown waits for the batch in flight to be written and committed, in
    /// milliseconds (Kafka Streams' `close(timeout)`). Past it, for instance with the
    /// broker away, the agent exits without committing: the records not committed are
    /// handled again by the next owner, and nothing is committed that was not written.
    pub drain_timeout_ms: u64,
    /// How far an event's own time may lie ahead of its record's log timestamp, in
    /// milliseconds (as Kafka's `log.message.timestamp.after.max.ms`, one hour). An event
    /// dated later is a contract violation: decided against the record itself, so a
    /// replay decides the same, and no single record can carry a member (or the
    /// population's day) into the future.
    pub max_event_time_ahead_ms: u64,
    /// File holding the erasure registry key (64 hex digits), under which erased ids
    /// are hashed; every agent of a deployment needs the same key. Unset: the
    /// `SWARM_ERASURE_KEY` environment variable. Needed by agents that read erasure
    /// requests.
    pub erasure_key_file: Option<PathBuf>,
    /// `retention.ms` the agent's DLQ is created with (7 days). A dead letter keeps the
    /// record's key and bytes, often a member id: the retention bounds how long a member
    /// erased since stays there (`docs/architecture.md#erasure`). -1 keeps every record.
    pub dlq_retention_ms: i64,
    /// Raw librdkafka properties for both consumer and producer (security, tuning).
    pub librdkafka: BTreeMap<String, String>,
}

/// Seven days: how long the streams that carry member ids keep them by default (Kafka's
/// own default `retention.ms`), set explicitly so a broker that keeps more does not.
pub const MEMBER_STREAM_RETENTION_MS: i64 = 7 * 24 * 3_600_000;

impl Default for RuntimeSettings {
    fn default() -> Self {
        RuntimeSettings {
            bootstrap_servers: "localhost:9092".into(),
            schema_registry_url: "http://localhost:8081".into(),
            group_id: None,
            http_listen: "127.0.0.1:9464".into(),
            partitions: 12,
            batch_max_records: 5000,
            batch_max_wait_ms: 50,
            processing_guarantee: ProcessingGuarantee::EffectivelyOnce,
            transactional_id: None,
            log_format: LogFormat::Json,
            log_level: "info".into(),
            otlp_endpoint: None,
            trace_sample_ratio: 0.01,
            retry_initial_ms: 100,
            retry_max_ms: 10_000,
            refresh_interval_ms: 30_000,
            repartition_purge_interval_ms: 30_000,
            drain_timeout_ms: 30_000,
            max_event_time_ahead_ms: DEFAULT_MAX_EVENT_TIME_AHEAD_MS,
            erasure_key_file: None,
            dlq_retention_ms: MEMBER_STREAM_RETENTION_MS,
            librdkafka: BTreeMap::new(),
        }
    }
}

/// Properties the runtime sets itself because its guarantees depend on them.
const OWNED_LIBRDKAFKA_KEYS: &[&str] = &[
    "group.id",
    "enable.auto.commit",
    "enable.auto.offset.store",
    "partitioner",
    "partition.assignment.strategy",
    "bootstrap.servers",
    "isolation.level",
    "transactional.id",
];

fn is_secret_key(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    [
        "password",
        "secret",
        "token",
        "key.pem",
        "ssl.key",
        "sasl.jaas",
        "credentials",
    ]
    .iter()
    .any(|s| key.contains(s))
}

/// A URL with any user:password part replaced, for logs.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}://***@{}", &url[..scheme], &url[at + 1..])
        }
        _ => url.to_owned(),
    }
}

impl fmt::Debug for RuntimeSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let librdkafka: BTreeMap<&str, &str> = self
            .librdkafka
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str(),
                    if is_secret_key(k) { "***" } else { v.as_str() },
                )
            })
            .collect();
        f.debug_struct("RuntimeSettings")
            .field("bootstrap_servers", &self.bootstrap_servers)
            .field(
                "schema_registry_url",
                &redact_url(&self.schema_registry_url),
            )
            .field("group_id", &self.group_id)
            .field("http_listen", &self.http_listen)
            .field("partitions", &self.partitions)
            .field("batch_max_records", &self.batch_max_records)
            .field("batch_max_wait_ms", &self.batch_max_wait_ms)
            .field("processing_guarantee", &self.processing_guarantee)
            .field("transactional_id", &self.transactional_id)
            .field("log_format", &self.log_format)
            .field("log_level", &self.log_level)
            .field(
                "otlp_endpoint",
                &self.otlp_endpoint.as_deref().map(redact_url),
            )
            .field("trace_sample_ratio", &self.trace_sample_ratio)
            .field("retry_initial_ms", &self.retry_initial_ms)
            .field("retry_max_ms", &self.retry_max_ms)
            .field("refresh_interval_ms", &self.refresh_interval_ms)
            .field(
                "repartition_purge_interval_ms",
                &self.repartition_purge_interval_ms,
            )
            .field("drain_timeout_ms", &self.drain_timeout_ms)
            .field("max_event_time_ahead_ms", &self.max_event_time_ahead_ms)
            .field("erasure_key_file", &self.erasure_key_file)
            .field("dlq_retention_ms", &self.dlq_retention_ms)
            .field("librdkafka", &librdkafka)
            .finish()
    }
}

impl RuntimeSettings {
    fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.bootstrap_servers.trim().is_empty() {
            problems.push("bootstrap_servers: must name at least one broker".to_owned());
        }
        if !(self.schema_registry_url.starts_with("http://")
            || self.schema_registry_url.starts_with("https://"))
        {
            problems.push(format!(
                "schema_registry_url: {:?} is not an http(s) URL",
                redact_url(&self.schema_registry_url)
            ));
        }
        if let Some(endpoint) = &self.otlp_endpoint
            && !(endpoint.starts_with("http://") || endpoint.starts_with("https://"))
        {
            problems.push(format!(
                "otlp_endpoint: {:?} is not an http(s) URL",
                redact_url(endpoint)
            ));
        }
        if !(0.0..=1.0).contains(&self.trace_sample_ratio) {
            problems.push(format!(
                "trace_sample_ratio: {} must be between 0 and 1",
                self.trace_sample_ratio
            ));
        }
        if self.http_listen.parse::<SocketAddr>().is_err() {
            problems.push(format!(
                "http_listen: {:?} is not a host:port socket address",
                self.http_listen
            ));
        }
        if self.partitions < 1 {
            problems.push(format!(
                "partitions: {} must be at least 1",
                self.partitions
            ));
        }
        if self.refresh_interval_ms < 100 {
            problems.push(format!(
                "refresh_interval_ms: {} must be at least 100",
                self.refresh_interval_ms
            ));
        }
        if (1..100).contains(&self.repartition_purge_interval_ms) {
            problems.push(format!(
                "repartition_purge_interval_ms: {} must be 0 (keep every record) or at least 100",
                self.repartition_purge_interval_ms
            ));
        }
        if self.dlq_retention_ms == 0 || self.dlq_retention_ms < -1 {
            problems.push(format!(
                "dlq_retention_ms: {} must be positive, or -1 to keep every record",
                self.dlq_retention_ms
            ));
        }
        if self.batch_max_records == 0 {
            problems.push("batch_max_records: must be at least 1".to_owned());
        }
        if self.retry_initial_ms == 0 || self.retry_initial_ms > self.retry_max_ms {
            problems.push(format!(
                "retry_initial_ms: {} must be positive and at most retry_max_ms ({})",
                self.retry_initial_ms, self.retry_max_ms
            ));
        }
        if self.transactional_id.is_some()
            && self.processing_guarantee != ProcessingGuarantee::ExactlyOnce
        {
            problems.push(
                "transactional_id: only used with processing_guarantee = \"exactly_once\""
                    .to_owned(),
            );
        }
        if self.processing_guarantee == ProcessingGuarantee::ExactlyOnce
            && self.transactional_id.is_none()
            && self.http_listen.ends_with(":0")
        {
            problems.push(
                "transactional_id: needed with exactly_once when http_listen has no fixed port \
                 (the default id <group>.<host name>.<http port> would be the same for every instance)"
                    .to_owned(),
            );
        }
        if self.transactional_id.as_deref() == Some("") {
            problems.push("transactional_id: must not be empty".to_owned());
        }
        if tracing_subscriber::EnvFilter::try_new(&self.log_level).is_err() {
            problems.push(format!(
                "log_level: {:?} is not a tracing filter directive",
                self.log_level
            ));
        }
        if let Some(file) = &self.erasure_key_file
            && let Err(e) = crate::erasure::Registry::load(Some(file))
        {
            problems.push(format!("erasure_key_file: {e}"));
        }
        for key in self.librdkafka.keys() {
            if OWNED_LIBRDKAFKA_KEYS.contains(&key.as_str()) {
                problems.push(format!(
                    "librdkafka.{key}: set by the runtime (its guarantees depend on it); use the top-level setting if there is one"
                ));
            }
        }
        problems
    }
}

/// Settings of one agent's own domain, under `[agent]` in the file.
pub trait AgentSettings:
    DeserializeOwned + Serialize + Default + fmt::Debug + Clone + Send + Sync + 'static
{
    /// Every problem with these settings; empty when they are usable.
    fn problems(&self) -> Vec<String> {
        Vec::new()
    }
}

/// An agent with no settings of its own.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct NoSettings {}

impl AgentSettings for NoSettings {}

/// The whole configuration of one agent process: runtime settings at the top level of
/// the file, the agent's own under `[agent]`.
#[derive(Debug, Clone, Default)]
pub struct Config<A> {
    pub runtime: RuntimeSettings,
    pub agent: A,
}

/// Where configuration comes from, in increasing precedence.
#[derive(Debug, Clone, Default)]
pub struct Sources {
    pub file: Option<PathBuf>,
    /// Environment variables (name, value); only `LOYALTY_*` names are read.
    pub env: Vec<(String, String)>,
    /// `key=value` overrides from the command line; dotted keys reach into tables (`agent.x=1`).
    pub overrides: Vec<String>,
}

const ENV_PREFIX: &str = "LOYALTY_";

impl Sources {
    /// The file named on the command line, the process environment and the flags.
    pub fn from_process(file: Option<PathBuf>, overrides: Vec<String>) -> Self {
        Sources {
            file,
            env: std::env::vars().collect(),
            overrides,
        }
    }
}

impl<A: AgentSettings> Config<A> {
    /// Merge the sources and validate; the error lists every problem found.
    pub fn load(sources: &Sources) -> Result<Self, ConfigErrors> {
        let mut problems = Vec::new();
        let mut table = toml::Table::new();
        if let Some(path) = &sources.file {
            match read_table(path) {
                Ok(t) => table = t,
                Err(p) => problems.push(p),
            }
        }
        for (name, value) in &sources.env {
            let Some(rest) = name.strip_prefix(ENV_PREFIX) else {
                continue;
            };
            // LOYALTY_AGENT__DEFAULT_PROGRAM_ID -> agent.default_program_id
            let key = rest.to_ascii_lowercase().replace("__", ".");
            set_path(&mut table, &key, value);
        }
        for assignment in &sources.overrides {
            match assignment.split_once('=') {
                Some((key, value)) if !key.trim().is_empty() => {
                    set_path(&mut table, key.trim(), value)
                }
                _ => problems.push(format!("--set {assignment:?}: expected key=value")),
            }
        }

        // Deserialised in two parts so unknown keys are seen in both (serde cannot report
        // them through a flattened struct).
        let agent_table = table
            .remove("agent")
            .unwrap_or_else(|| toml::Value::Table(toml::Table::new()));
        let mut unknown = Vec::new();
        let runtime: Result<RuntimeSettings, _> =
            serde_ignored::deserialize(toml::Value::Table(table), |path| {
                unknown.push(path.to_string())
            });
        let agent: Result<A, _> =
            serde_ignored::deserialize(agent_table, |path| unknown.push(format!("agent.{path}")));
        problems.extend(
            unknown
                .into_iter()
                .map(|key| format!("{key}: unknown setting")),
        );
        match (runtime, agent) {
            (Ok(runtime), Ok(agent)) => {
                problems.extend(runtime.problems());
                problems.extend(agent.problems().into_iter().map(|p| format!("agent.{p}")));
                if problems.is_empty() {
                    Ok(Config { runtime, agent })
                } else {
                    Err(ConfigErrors(problems))
                }
            }
            (runtime, agent) => {
                if let Err(e) = runtime {
                    problems.push(e.to_string().trim().to_owned());
                }
                if let Err(e) = agent {
                    problems.push(format!("agent: {}", e.to_string().trim()));
                }
                Err(ConfigErrors(problems))
            }
        }
    }
}

fn read_table(path: &Path) -> Result<toml::Table, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("{}: cannot read: {e}", path.display()))?;
    text.parse::<toml::Table>()
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// Environment and flag values are text; read them as TOML values when they parse
/// (numbers, booleans, inline tables), otherwise as strings.
fn text_value(text: &str) -> toml::Value {
    format!("v = {text}")
        .parse::<toml::Table>()
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(text.to_owned()))
}

fn set_path(table: &mut toml::Table, key: &str, value: &str) {
    // librdkafka property names contain dots themselves: everything after the
    // first segment is one key.
    let (head, rest) = match key.split_once('.') {
        Some((head, rest)) => (head, Some(rest)),
        None => (key, None),
    };
    match rest {
        None => {
            table.insert(head.to_owned(), text_value(value));
        }
        Some(rest) if head == "librdkafka" => {
            if let toml::Value::Table(inner) = table
                .entry(head.to_owned())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()))
            {
                inner.insert(rest.to_owned(), toml::Value::String(value.to_owned()));
            }
        }
        Some(rest) => {
            let entry = table
                .entry(head.to_owned())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            if !entry.is_table() {
                *entry = toml::Value::Table(toml::Table::new());
            }
            if let toml::Value::Table(inner) = entry {
                set_path(inner, rest, value);
            }
        }
    }
}

#[cfg(test)]
mod tests;
