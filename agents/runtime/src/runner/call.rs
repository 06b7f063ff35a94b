//! One call of the agent's code on a key — `handle`, `on_timer` or `refresh` — the same
//! way each time: on a copy of the key's state and timers (a rejection must leave no
//! trace), with the partition's summary lent when the agent shares one, panics caught;
//! then, if the call succeeded, the key takes what it left.

use super::dispatch::caught;
use super::refresh::context;
use super::{Shared, Store};
use crate::agent::{Agent, HandleError, Population, shares_summary};
use crate::context::{Context, Emitted};
use crate::error::{Rejection, RejectionKind};
use crate::metrics::Event;
use crate::store::Timer;

/// What one call left.
pub(super) struct Call<A: Agent> {
    pub(super) result: Result<(), HandleError>,
    /// The key's state as the call left it (kept only if it succeeded).
    pub(super) state: Option<A::State>,
    /// Outputs, in order.
    pub(super) emitted: Vec<Emitted>,
    /// The key the record was handed to, if any.
    pub(super) rekey: Option<String>,
    timers_before: Vec<Timer>,
    timers: Option<Vec<Timer>>,
}

/// Call `agent_code` for `key` with a context onto `store`.
pub(super) fn call<A: Agent>(
    shared: &Shared<A>,
    store: &mut Store<A>,
    key: &str,
    population: &Population<A::Summary>,
    agent_code: impl FnOnce(&A, &mut Option<A::State>, &mut Context<'_, A>) -> Result<(), HandleError>,
) -> Call<A> {
    let stream_time = store.stream_time();
    let partition = store.partition();
    let (mut state, timers_before) = match store.get(key) {
        Some(entry) => (entry.state.clone(), entry.timers.clone()),
        None => (None, Vec::new()),
    };
    let mut emitted = Vec::new();
    // Only a shared summary is lent: lending marks it changed, for the changelog.
    let summary = if shares_summary::<A>() {
        Some(store.summary_mut())
    } else {
        None
    };
    let mut ctx = context(shared, &mut emitted, summary, population);
    ctx.timers = Some(timers_before.clone());
    ctx.stream_time = stream_time;
    ctx.partition = Some(partition);
    let result = caught(|| agent_code(&shared.agent, &mut state, &mut ctx));
    let (rekey, timers) = (ctx.rekey, ctx.timers);
    Call {
        result,
        state,
        emitted,
        rekey,
        timers_before,
        timers,
    }
}

impl<A: Agent> Call<A> {
    /// Whether the call scheduled or cancelled a timer.
    pub(super) fn changes_timers(&self) -> bool {
        self.timers
            .as_ref()
            .is_some_and(|t| *t != self.timers_before)
    }

    /// The key takes the state and timers the call left (the caller has decided the call
    /// counts); `also` updates the key's entry further in the same look-up (input
    /// positions). Returns the outputs to produce.
    pub(super) fn keep(
        self,
        store: &mut Store<A>,
        key: &str,
        also: impl FnOnce(&mut crate::store::Entry<A::State>),
    ) -> Vec<Emitted> {
        let entry = store.entry(key);
        entry.state = self.state;
        also(entry);
        store.mark_dirty(key);
        if let Some(timers) = self.timers.filter(|t| *t != self.timers_before) {
            store.set_timers(key, timers);
        }
        self.emitted
    }
}

/// Count a rejection that came from a panic, `during` which call.
pub(super) fn count_panic<A: Agent>(
    shared: &Shared<A>,
    rejection: &Rejection,
    during: &'static str,
) {
    if rejection.kind == RejectionKind::Panic {
        shared.metrics.emit(Event::Panicked { during });
    }
}
