//! Timers (Kafka Streams' punctuation, per key): a key's due timers call the agent's
//! `on_timer` with the key's state, and what it emits and changes is written with the
//! batch like a record's. Stream-time timers fire after the record that moved the
//! partition's stream time past them, so a replay fires them at the same place;
//! wall-clock timers are checked between batches.

use std::time::{SystemTime, UNIX_EPOCH};

use tracing::warn;

use super::dispatch::caught;
use super::refresh::context;
use super::writes::out_records;
use super::{Shared, Store};
use crate::agent::{Agent, HandleError, Population, shares_summary};
use crate::error::{RejectionKind, RuntimeError};
use crate::kafka::OutRecord;
use crate::metrics::Event;
use crate::store::Clock;

/// The wall clock in milliseconds since the epoch.
pub(super) fn wall_clock_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Fire every timer of `clock` due at `now` in one partition's store; returns how many
/// fired. A timer fires once: it leaves the key's state as it fires, and `on_timer` may
/// schedule it again.
pub(super) fn fire_due<A: Agent>(
    shared: &Shared<A>,
    store: &mut Store<A>,
    clock: Clock,
    now: i64,
    population: &Population<A::Summary>,
    outputs: &mut Vec<OutRecord>,
) -> Result<usize, RuntimeError> {
    let stream_time = store.stream_time();
    let due = store.take_due(clock, now);
    let fired = due.len();
    for (key, timer) in due {
        let mut state = store.get(&key).and_then(|e| e.state.clone());
        let timers_before = store
            .get(&key)
            .map(|e| e.timers.clone())
            .unwrap_or_default();
        let mut emitted = Vec::new();
        let (result, timers) = {
            let summary = if shares_summary::<A>() {
                Some(store.summary_mut())
            } else {
                None
            };
            let mut ctx = context(shared, &mut emitted, summary, population);
            ctx.timers = Some(timers_before.clone());
            ctx.stream_time = stream_time;
            let result = caught(|| shared.agent.on_timer(&key, &timer, &mut state, &mut ctx));
            (result, ctx.timers)
        };
        let clock_label = match clock {
            Clock::StreamTime => "stream_time",
            Clock::WallClock => "wall_clock",
        };
        match result {
            Ok(()) => {
                store.entry(&key).state = state;
                store.mark_dirty(&key);
                if let Some(timers) = timers.filter(|t| *t != timers_before) {
                    store.set_timers(&key, timers);
                }
                outputs.extend(out_records(emitted, &[]));
                shared.metrics.emit(Event::TimerFired {
                    clock: clock_label,
                    outcome: "fired",
                });
            }
            // No record to dead-letter: the key keeps its state, the timer is spent.
            Err(HandleError::Rejected(rejection)) => {
                if rejection.kind == RejectionKind::Panic {
                    shared.metrics.emit(Event::Panicked { during: "on_timer" });
                }
                shared.metrics.emit(Event::TimerFired {
                    clock: clock_label,
                    outcome: "rejected",
                });
                warn!(key, timer = timer.name, kind = %rejection.kind, reason = %rejection.reason, "timer rejected");
            }
            Err(HandleError::Fatal(reason)) => {
                return Err(RuntimeError::Other(format!(
                    "{} firing timer {} of {key}: {reason}",
                    A::NAME,
                    timer.name
                )));
            }
        }
    }
    Ok(fired)
}
