//! Timers (Kafka Streams' punctuation, per key): a key's due timers call the agent's
//! `on_timer` with the key's state, and what it emits and changes is written with the
//! batch like a record's. Stream-time timers fire after the record that moved the
//! partition's stream time past them, so a replay fires them at the same place;
//! wall-clock timers are checked between batches.

use std::time::{SystemTime, UNIX_EPOCH};

use tracing::warn;

use super::call::{call, count_panic};
use super::writes::out_records;
use super::{Shared, Store};
use crate::agent::{Agent, HandleError, Population};
use crate::error::RuntimeError;
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
    let due = store.take_due(clock, now);
    let fired = due.len();
    let label = clock.label();
    for (key, timer) in due {
        let mut call = call(shared, store, &key, population, |agent, state, ctx| {
            agent.on_timer(&key, &timer, state, ctx)
        });
        let mut result = std::mem::replace(&mut call.result, Ok(()));
        if result.is_ok()
            && let Some(rejection) = super::dispatch::too_big_to_write(&call, &key, true)
        {
            result = Err(HandleError::Rejected(rejection));
        }
        match result {
            Ok(()) => {
                outputs.extend(out_records(call.keep(store, &key, |_| {}), &[]));
                shared.metrics.emit(Event::TimerFired {
                    clock: label,
                    outcome: "fired",
                });
            }
            // No record to dead-letter: the key keeps its state, the timer is spent.
            Err(HandleError::Rejected(rejection)) => {
                count_panic(shared, &rejection, "on_timer");
                shared.metrics.emit(Event::TimerFired {
                    clock: label,
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
