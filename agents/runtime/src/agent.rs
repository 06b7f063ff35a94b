//! The contract between an agent and the runtime (after Arroyo's operator contract): an
//! agent names its topics and its per-key state and implements one step, `handle`.
//! Everything else — Kafka, the registry, changelogs, offsets, metrics — is the
//! runtime's, so an agent crate reads like its domain.
//!
//! What an agent may do follows from its types: a `Summary` other than `()` is shared
//! between instances, `Rekeying = Rekeys` gets a repartition topic and
//! [`Context::rekey`](crate::Context::rekey), and a table or topic handle fixes the type
//! read or written through it. Nothing has to agree with anything at run time.

use std::collections::BTreeMap;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::config::AgentSettings;
use crate::context::Context;
use crate::erasure::Forgotten;
use crate::error::Rejection;
use crate::input::Input;
use crate::metrics::Metrics;
use crate::store::Timer;
use crate::topic::{OutputSpec, TableSpec};

/// One agent kind.
pub trait Agent: Send + Sync + Sized + 'static {
    /// Per-key (per-member) state, written through to the changelog.
    /// `Clone` because `handle` works on a copy: a rejected record must leave no trace.
    /// `PartialEq` so a refresh that changes nothing writes nothing to the changelog.
    type State: Serialize + DeserializeOwned + Clone + PartialEq + Send + 'static;
    /// The agent's own settings, under `[agent]` in its config file.
    type Settings: AgentSettings;
    /// A summary of one partition's state that every instance sees (see
    /// [`PartitionSummary`]); `()` for agents without one.
    type Summary: PartitionSummary;
    /// [`KeepsKeys`], or [`Rekeys`] for an agent whose `handle` may hand a record to
    /// another key.
    type Rekeying: Rekeying;

    /// Binary, consumer-group and DLQ name.
    const NAME: &'static str;
    /// Name of the state store; the changelog is `<NAME>.<STORE>-changelog`.
    const STORE: &'static str = "state";

    /// Member-keyed, co-partitioned input topics.
    fn inputs(&self) -> Vec<&'static str>;

    /// Topics read whole by every instance ([`crate::Table::spec`]).
    fn tables(&self) -> Vec<TableSpec> {
        Vec::new()
    }

    /// Topics `handle` may emit to ([`crate::Topic::output`]).
    fn outputs(&self) -> Vec<OutputSpec>;

    /// Topics the agent writes and reads back itself, keyed by something other than the
    /// member (Kafka Streams' `repartition()` of a derived stream): save-offer hands a
    /// budget claim to the task that owns the budget. The runtime creates each with the
    /// inputs' partition count, `retention.ms=-1` and purging, as it does the re-keying
    /// topic; subscribes to it as one more input; and registers its schema, so `handle`
    /// emits to it with [`Context::emit`](crate::Context::emit) like to an output.
    fn internal_topics(&self) -> Vec<OutputSpec> {
        Vec::new()
    }

    /// Register the agent's own metrics (its domain events) in its registry, once at
    /// start-up; the runtime's metrics are registered already.
    fn register_metrics(&self, _metrics: &Metrics) -> Result<(), prometheus::Error> {
        Ok(())
    }

    /// Apply one input record to the state of its key and emit what follows from it.
    /// Outputs must be a deterministic function of state and input (event time, never the
    /// wall clock) so that a replay emits the same bytes.
    fn handle(
        &self,
        input: &Input<'_>,
        state: &mut Option<Self::State>,
        ctx: &mut Context<'_, Self>,
    ) -> Result<(), HandleError>;

    /// Called for every key of every owned partition when the population view or a
    /// reference table changed (at most every `refresh_interval_ms`), so outputs derived
    /// from them follow: a key's output is then a function of its own state and the
    /// final population, however the partitions were spread. Like `handle`, it must be
    /// deterministic.
    fn refresh(
        &self,
        _key: &str,
        _state: &mut Option<Self::State>,
        _ctx: &mut Context<'_, Self>,
    ) -> Result<(), HandleError> {
        Ok(())
    }

    /// A timer this key scheduled with [`Context::schedule`] is due: called once per
    /// schedule, with the key's state, as `handle` is called for a record. Like `handle`
    /// it must be deterministic; outputs can carry [`Timer::id`], the same on a replay.
    fn on_timer(
        &self,
        _key: &str,
        _timer: &Timer,
        _state: &mut Option<Self::State>,
        _ctx: &mut Context<'_, Self>,
    ) -> Result<(), HandleError> {
        Ok(())
    }

    /// An erasure request for `key`, a member id (`docs/architecture.md#erasure`); only
    /// for agents that list [`crate::erasure::REQUESTS`] among their inputs. Take the
    /// member out of what their state does not cover: the partition summary (sketches,
    /// counts, fit rows), so population figures no longer include them. Name the ids
    /// linked to them, and count what was removed for the receipt. The runtime then
    /// deletes the key's state and timers, tombstones the key on the agent's compacted
    /// member-keyed outputs, registers the ids and writes the receipt. `state` is `None`
    /// when the agent holds nothing of the member. Deterministic, like `handle`.
    fn forget(
        &self,
        _key: &str,
        _state: &Option<Self::State>,
        _ctx: &mut Context<'_, Self>,
    ) -> Result<Forgotten, HandleError> {
        Ok(Forgotten::default())
    }

    /// Whether `input`, a record keyed by an erased member, enrols them again, and when
    /// (`docs/architecture.md#erasure`). Agents that read profiles answer from the
    /// profile's re-enrolment flag. A re-enrolment after the erasure makes the record the
    /// first of a fresh member: the registry says so, and records logged since are the
    /// member's anew, while those logged before (their old history, replayed) stay
    /// dropped. Deterministic, like `handle`.
    fn reenrolment(&self, _input: &Input<'_>) -> Option<i64> {
        None
    }

    /// An output, written to the task's own partition (`Context::emit_here`), whose
    /// records carry the history the partition summary continues: compliance-gate's
    /// audit chain. When a partition starts with the default summary (its state lost,
    /// or restarted from empty state over outputs that remain), the runtime reads that
    /// partition of the output and hands it to [`Agent::resume`], so the task continues
    /// the history instead of starting a second one.
    fn resumes_from(&self) -> Option<&'static str> {
        None
    }

    /// The partition summary rebuilt from `log`, the records of the partition's
    /// [`Agent::resumes_from`] output in order; `None` keeps the default.
    fn resume(
        &self,
        _partition: i32,
        _log: &[Input<'_>],
    ) -> Result<Option<Self::Summary>, HandleError> {
        Ok(None)
    }

    /// Population-level outputs (statistics over every partition's summary), called after
    /// each refresh on the one instance that owns partition 0, so they are written once.
    fn publish(&self, _ctx: &mut Context<'_, Self>) -> Result<(), HandleError> {
        Ok(())
    }
}

/// A summary of one partition's state that every instance sees: quantile sketches,
/// calibration counts — whatever a population-wide quantity is merged from. Kept per
/// partition and changelogged with its keys, published after every batch to the
/// compacted topic `<NAME>.<STORE>-summaries` (key = partition) and read whole by every
/// instance, so population views do not depend on how partitions are spread
/// (`docs/architecture.md#partition-summaries-and-population`).
pub trait PartitionSummary:
    Serialize + DeserializeOwned + Clone + Default + PartialEq + Send + Sync + 'static
{
    /// Whether the summary is kept and shared; only `()` says no.
    const SHARED: bool = true;
}

/// No summary: nothing is shared, and the agent has no refresh.
impl PartitionSummary for () {
    const SHARED: bool = false;
}

/// Whether an agent hands records to other keys.
pub trait Rekeying: Send + Sync + 'static {
    const REKEYS: bool;
}

/// The agent handles every record under the key it arrived with.
#[derive(Debug)]
pub enum KeepsKeys {}

impl Rekeying for KeepsKeys {
    const REKEYS: bool = false;
}

/// The agent may hand a record to another key with [`Context::rekey`]: the runtime keeps
/// the repartition topic `<NAME>.rekey-repartition` (co-partitioned with the inputs) and
/// reads it as one more input (`docs/architecture.md#re-keying-and-the-repartition-topic`).
#[derive(Debug)]
pub enum Rekeys {}

impl Rekeying for Rekeys {
    const REKEYS: bool = true;
}

/// Whether `A` keeps and shares a partition summary.
pub const fn shares_summary<A: Agent>() -> bool {
    <A::Summary as PartitionSummary>::SHARED
}

/// Whether `A` re-keys records through a repartition topic.
pub const fn rekeys<A: Agent>() -> bool {
    <A::Rekeying as Rekeying>::REKEYS
}

/// Every partition's [`Agent::Summary`] as this instance last saw it: its own partitions
/// as of the start of the current batch, the others as last published.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Population<S> {
    pub partitions: BTreeMap<i32, S>,
    /// Bumped whenever any partition's summary changes; lets an agent cache what it
    /// derives from the population (boundaries, calibrators).
    pub generation: u64,
}

/// Why `handle` stopped.
#[derive(Debug, thiserror::Error)]
pub enum HandleError {
    /// Bad data: the record goes to the DLQ, its state changes are discarded.
    #[error(transparent)]
    Rejected(#[from] Rejection),
    /// A bug or an impossible situation: the agent stops rather than guess.
    #[error("fatal: {0}")]
    Fatal(String),
}
