//! Refresh (punctuation on the population): when the merged partition summaries or a
//! reference table change, every owned key is re-derived, so a key's outputs follow the
//! population however partitions are spread; then `publish` writes population-level
//! outputs once, on the owner of partition 0.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use tracing::warn;

use super::call::{call, count_panic};
use super::dispatch::caught;
use super::task::{Offsets, StreamTasks};
use super::writes::{finish, out_records, prepare_writes, write};
use super::{Shared, Store};
use crate::agent::{Agent, HandleError, Population, shares_summary};
use crate::context::Context;
use crate::error::RuntimeError;
use crate::kafka::OutRecord;
use crate::metrics::Event;

/// The population as this instance sees it now: published summaries, overridden by the
/// current summaries of its own partitions. Bumps the generation when anything changed.
pub(super) fn observe_population<A: Agent>(
    shared: &Shared<A>,
    stores: &BTreeMap<i32, Store<A>>,
    population: &mut Population<A::Summary>,
) {
    let Ok(published) = shared.published.read() else {
        return;
    };
    // Runs every loop turn: compare in place and clone only when something changed
    // (cloning every partition's sketches each turn was ~3% of an idle agent's CPU).
    let current = |partition: &i32| {
        stores
            .get(partition)
            .map(|store| store.summary())
            .or_else(|| published.get(partition))
    };
    let seen = published.keys().chain(stores.keys());
    let unchanged = seen
        .clone()
        .all(|p| population.partitions.get(p) == current(p))
        && population
            .partitions
            .keys()
            .all(|p| published.contains_key(p) || stores.contains_key(p));
    if unchanged {
        return;
    }
    population.partitions = seen
        .filter_map(|p| current(p).map(|summary| (*p, summary.clone())))
        .collect();
    population.generation += 1;
}

/// How many refresh intervals a refresh may be put off while input is waiting.
pub(super) const REFRESH_DEFERRAL: u32 = 10;

impl<A: Agent> StreamTasks<A> {
    /// Refresh every key when the population or a reference table changed since the
    /// last refresh and the refresh interval has passed: often enough to follow them,
    /// rarely enough that a busy stream is not spent re-deriving outputs. While input is
    /// waiting (`behind`: the last batch was full) re-deriving every key now would be
    /// redone by the next refresh anyway (catching up moves the population on), so it
    /// waits — but never longer than [`REFRESH_DEFERRAL`] intervals, so a stream that
    /// never lets up still gets refreshed.
    pub(super) async fn maybe_refresh(&mut self, behind: bool) -> Result<(), RuntimeError> {
        let interval = Duration::from_millis(self.shared.config.runtime.refresh_interval_ms);
        let interval = if behind {
            interval * REFRESH_DEFERRAL
        } else {
            interval
        };
        if !shares_summary::<A>() || self.refreshed.1.elapsed() < interval {
            return Ok(());
        }
        let shared = &self.shared;
        observe_population(shared, &self.stores, &mut self.population);
        let generations = (self.population.generation, shared.tables.generation());
        if generations == self.refreshed.0 {
            return Ok(());
        }
        let started = Instant::now();
        let outputs = refresh_all(shared, &mut self.stores, &self.population)?;
        let writes = prepare_writes(shared, &mut self.stores, outputs, Offsets::new())?;
        finish(&mut self.in_flight).await?;
        write(shared, &self.consumer, writes).await?;
        shared.metrics.emit(Event::Refreshed {
            elapsed: started.elapsed(),
        });
        self.refreshed = (generations, Instant::now());
        Ok(())
    }
}

/// What `handle`, `refresh` and `publish` see: the tables, the encoders, and the summary
/// and population of agents that share one.
pub(super) fn context<'a, A: Agent>(
    shared: &'a Shared<A>,
    emitted: &'a mut Vec<crate::context::Emitted>,
    summary: Option<&'a mut A::Summary>,
    population: &'a Population<A::Summary>,
) -> Context<'a, A> {
    Context {
        tables: &shared.tables,
        encoders: &shared.encoders,
        emitted,
        summary,
        population,
        metrics: Some(&shared.metrics),
        rekey: None,
        max_event_time_ahead_ms: shared.config.runtime.max_event_time_ahead_ms,
        timers: None,
        stream_time: -1,
        partition: None,
        erased: shared.erasure.as_ref(),
    }
}

/// Call the agent's `refresh` for every key of every owned partition; state that changed
/// is marked for the changelog, outputs are returned for producing.
pub(super) fn refresh_all<A: Agent>(
    shared: &Shared<A>,
    stores: &mut BTreeMap<i32, Store<A>>,
    population: &Population<A::Summary>,
) -> Result<Vec<OutRecord>, RuntimeError> {
    let mut outputs = Vec::new();
    for store in stores.values_mut() {
        let keys: Vec<String> = store.iter().map(|(k, _)| k.clone()).collect();
        for key in keys {
            let before = store.get(&key).and_then(|e| e.state.clone());
            let mut call = call(shared, store, &key, population, |agent, state, ctx| {
                agent.refresh(&key, state, ctx)
            });
            match std::mem::replace(&mut call.result, Ok(())) {
                // A refresh that changes nothing writes nothing to the changelog.
                Ok(()) if call.state == before && !call.changes_timers() => {
                    outputs.extend(out_records(call.emitted, &[]));
                }
                Ok(()) => outputs.extend(out_records(call.keep(store, &key, |_| {}), &[])),
                // No input record to dead-letter: the key keeps its previous state and
                // outputs, and the next refresh tries again.
                Err(HandleError::Rejected(rejection)) => {
                    count_panic(shared, &rejection, "refresh");
                    warn!(key, kind = %rejection.kind, reason = %rejection.reason, "refresh rejected a key's state");
                }
                Err(HandleError::Fatal(reason)) => {
                    return Err(RuntimeError::Other(format!(
                        "{} refreshing {key}: {reason}",
                        A::NAME
                    )));
                }
            }
        }
    }
    if stores.contains_key(&0) {
        let mut emitted = Vec::new();
        let result = {
            let mut ctx = context(shared, &mut emitted, None, population);
            caught(|| shared.agent.publish(&mut ctx))
        };
        match result {
            Ok(()) => outputs.extend(out_records(emitted, &[])),
            Err(HandleError::Rejected(rejection)) => {
                count_panic(shared, &rejection, "publish");
                warn!(kind = %rejection.kind, reason = %rejection.reason, "population outputs not published");
            }
            Err(HandleError::Fatal(reason)) => {
                return Err(RuntimeError::Other(format!(
                    "{} publishing population outputs: {reason}",
                    A::NAME
                )));
            }
        }
    }
    Ok(outputs)
}
