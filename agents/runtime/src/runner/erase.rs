//! An erasure request carried out, and the registry consulted before any state is made
//! (`crate::erasure` says why; `docs/architecture.md#erasure`).

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rdkafka::message::OwnedMessage;
use rdkafka::producer::Producer;

use super::call::{call, count_panic};
use super::dispatch::{Outcome, Source, caught, dead_letter, too_big_to_write};
use super::writes::out_records;
use super::{Shared, Store};
use crate::agent::{Agent, HandleError, Population};
use crate::context::Emitted;
use crate::erasure::{
    Erased, ErasureReceipt, ErasureRequest, Forgotten, RECEIPTS, REGISTRY, Removal,
};
use crate::error::{Rejection, RuntimeError};
use crate::input::Input;
use crate::kafka::{self, OutRecord};
use crate::metrics::Event;
use crate::time::Timestamp;
use crate::trace::RecordTrace;

/// The registry's entry for `key` when a record logged at `logged_at` is of an erased
/// member, to be dropped: the registry names the key, and the member has not enrolled
/// again since before the record was logged. A key holding state is live (an erased
/// key holds none) unless it is a member who came back: then their records from before
/// (a replay of their old history) are still dropped.
pub(super) fn erased<A: Agent>(
    shared: &Shared<A>,
    store: &Store<A>,
    key: &str,
    logged_at: Option<i64>,
) -> Option<Erased> {
    let registry = shared.erasure.as_ref()?;
    if store.get(key).is_some_and(|e| e.state.is_some()) && !registry.any_reenrolled() {
        return None;
    }
    registry.get(key).filter(|e| e.drops(logged_at))
}

/// Whether to read the registry to its end before dropping a record of `entry`'s
/// member: a record logged after the erasure may be of a member who enrolled again,
/// which another agent may have registered moments ago. Once per batch (records fetched
/// before a completed wait began need no other), so the answer does not depend on how
/// far behind the follower happens to be.
pub(super) fn worth_reading_on<A: Agent>(
    shared: &Shared<A>,
    entry: &Erased,
    logged_at: Option<i64>,
    batch_started: Instant,
) -> bool {
    shared.erasure.as_ref().is_some_and(|registry| {
        entry.reenrolled_at.is_none()
            && logged_at.is_some_and(|t| t > entry.erased_at)
            && !registry.synced_since(batch_started)
    })
}

/// Wait until the registry follower has read every registry partition to the end it has
/// now: every erasure (and re-enrolment) written before this call is then known. Done
/// when a task is assigned, so a member erased by the task's previous owner stays
/// erased here even if this instance's follower was behind.
pub(super) async fn caught_up<A: Agent>(shared: &Shared<A>) -> Result<(), RuntimeError> {
    let Some(registry) = shared.erasure.as_ref() else {
        return Ok(());
    };
    let began = Instant::now();
    let partitions = registry.partitions();
    let ends = shared
        .backoff
        .retry("registry_watermarks", &shared.metrics, || async {
            kafka::blocking(|| {
                partitions
                    .iter()
                    .map(|&p| {
                        let (_, high) = shared.producer.client().fetch_watermarks(
                            REGISTRY,
                            p,
                            Duration::from_secs(10),
                        )?;
                        Ok((p, high))
                    })
                    .collect::<Result<Vec<_>, RuntimeError>>()
            })
        })
        .await?;
    while !registry.caught_up(&ends) {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    registry.synced_at(began);
    Ok(())
}

/// A record of an erased member dropped, and counted.
pub(super) fn dropped<A: Agent>(shared: &Shared<A>, topic: &str) -> Outcome {
    shared.metrics.emit(Event::ErasedDropped { topic });
    Outcome::Skipped
}

/// An erased member enrolled again by the record being handled: the registry says so
/// while it is handled, and is written only if the record is applied.
pub(super) struct Reenrolled {
    hash: String,
    /// The registry entry before, put back if the record is not applied.
    before: Erased,
    /// The registry entry now.
    after: Erased,
    logged_at: Option<i64>,
}

/// Whether `input`, of the erased member `entry` names, enrols them again after their
/// erasure (the agent reads that from the record: a profile's re-enrolment flag). If
/// so the registry says so from now on, and the record is handled as the first of a
/// fresh member; [`settle_reenrolment`] keeps that or undoes it.
pub(super) fn reenrolment<A: Agent>(
    shared: &Shared<A>,
    input: &Input<'_>,
    entry: &Erased,
) -> Result<Option<Reenrolled>, RuntimeError> {
    let Some(registry) = shared.erasure.as_ref() else {
        return Ok(None);
    };
    let at = match caught(|| Ok(shared.agent.reenrolment(input))) {
        Ok(Some(at)) if at > entry.erased_at => at,
        Ok(_) => return Ok(None),
        Err(HandleError::Rejected(rejection)) => {
            count_panic(shared, &rejection, "reenrolment");
            return Ok(None);
        }
        Err(HandleError::Fatal(reason)) => return Err(RuntimeError::Other(reason)),
    };
    Ok(registry
        .reenrol(input.key, at)
        .map(|(hash, after)| Reenrolled {
            hash,
            before: entry.clone(),
            after,
            logged_at: input.timestamp,
        }))
}

/// The re-enrolling record was applied: the registry record saying so, to write with
/// it. It was not (dead-lettered, forwarded): the registry is put back as it was, since
/// a rejected record changes nothing, and the member stays erased.
pub(super) fn settle_reenrolment<A: Agent>(
    shared: &Shared<A>,
    reenrolled: Reenrolled,
    applied: bool,
) -> Result<Option<Emitted>, RuntimeError> {
    let Some(registry) = shared.erasure.as_ref() else {
        return Ok(None);
    };
    if !applied {
        registry.set(&reenrolled.hash, Some(reenrolled.before));
        return Ok(None);
    }
    shared.metrics.emit(Event::Erasure {
        outcome: "reenrolled",
    });
    encoded(
        shared,
        REGISTRY,
        &reenrolled.hash,
        &reenrolled.after.record(),
        reenrolled.logged_at,
    )
    .map(Some)
}

/// Carry out the erasure request `input` for `key`: the agent forgets what its state
/// does not cover, then the key's state and timers go, its compacted member-keyed
/// outputs get tombstones, its ids are registered and a receipt is written. A request
/// that cannot be read, or names another member than its key, is dead-lettered.
#[allow(clippy::too_many_arguments)]
pub(super) fn erase<A: Agent>(
    shared: &Shared<A>,
    message: &OwnedMessage,
    source: Source<'_>,
    trace: &RecordTrace,
    input: &Input<'_>,
    store: &mut Store<A>,
    population: &Population<A::Summary>,
    outputs: &mut Vec<OutRecord>,
) -> Result<Outcome, RuntimeError> {
    let key = input.key;
    let mut rejected = |rejection: Rejection| {
        outputs.push(dead_letter(shared, message, source, &rejection, trace));
        Ok(Outcome::DeadLettered)
    };
    let request: ErasureRequest =
        match input.decode_keyed("member_id", |r: &ErasureRequest| &r.member_id) {
            Ok(request) => request,
            Err(rejection) => return rejected(rejection),
        };
    let problems = request.problems();
    if !problems.is_empty() {
        return rejected(Rejection::contract(format!(
            "erasure request: {}",
            problems.join("; ")
        )));
    }
    let Some(registry) = shared.erasure.as_ref() else {
        return Err(RuntimeError::Other(format!(
            "{} reads erasure requests without an erasure registry",
            A::NAME
        )));
    };
    if registry
        .get(key)
        .and_then(|e| e.reenrolled_at)
        .is_some_and(|at| at > request.requested_at.0)
    {
        // A request the member came back after (a replay of the input, usually): it was
        // carried out then, and must not erase the member they are now. Receipted
        // again, removing nothing.
        let receipt = receipt(shared, &request, input, 0, Vec::new())?;
        shared.metrics.emit(Event::Erasure {
            outcome: "before_reenrolment",
        });
        outputs.extend(out_records(vec![receipt], &trace.headers));
        return Ok(Outcome::Applied);
    }
    let (held, timers) = store
        .get(key)
        .map_or((false, 0), |e| (e.state.is_some(), e.timers.len() as i64));
    let mut forgotten = Forgotten::default();
    let mut call = call(shared, store, key, population, |agent, state, ctx| {
        forgotten = agent.forget(key, &*state, ctx)?;
        Ok(())
    });
    match std::mem::replace(&mut call.result, Ok(())) {
        Ok(()) => {}
        Err(HandleError::Rejected(rejection)) => {
            count_panic(shared, &rejection, "forget");
            return rejected(rejection);
        }
        Err(HandleError::Fatal(reason)) => {
            return Err(RuntimeError::Other(format!(
                "{} erasing at {}/{}/{}: {reason}",
                A::NAME,
                input.topic,
                input.partition,
                input.offset
            )));
        }
    }
    if let Some(rejection) = too_big_to_write(&call, key, false) {
        return rejected(rejection);
    }
    // Whatever `forget` left in the state, it goes (the changelog gets a tombstone for
    // the key), and its timers now: a timer due later in this batch must not fire on
    // the erased key before the entry is dropped with the batch's changes.
    call.state = None;
    let mut emitted = call.keep(store, key, |_| {});
    store.set_timers(key, Vec::new());

    let mut removed: Vec<Removal> = Vec::new();
    let mut count = |place: String, count: i64| {
        if count > 0 {
            removed.push(Removal { place, count });
        }
    };
    count(format!("state:{}", A::STORE), i64::from(held));
    count("timers".into(), timers);
    // Tombstoned even when nothing is held: a compacted topic may still carry what an
    // earlier instance wrote, and a tombstone on a deleted key changes nothing.
    for topic in &shared.member_compacted {
        emitted.push(tombstone(topic, key, input.timestamp));
        count(format!("topic:{topic}"), i64::from(held));
    }
    let anything = held || !forgotten.removed.is_empty();
    removed.extend(forgotten.removed);

    let ids: Vec<&str> = std::iter::once(key)
        .chain(forgotten.linked_ids.iter().map(String::as_str))
        .collect();
    for id in &ids {
        let (hash, entry) = registry.register(id, &request);
        emitted.push(encoded(
            shared,
            REGISTRY,
            &hash,
            &entry.record(),
            input.timestamp,
        )?);
    }
    emitted.push(receipt(shared, &request, input, ids.len(), removed)?);
    shared.metrics.emit(Event::Erasure {
        outcome: if anything { "erased" } else { "nothing_held" },
    });
    outputs.extend(out_records(emitted, &trace.headers));
    Ok(Outcome::Applied)
}

/// The receipt for `request`: `erased_ids` ids registered, `removed` what went.
fn receipt<A: Agent>(
    shared: &Shared<A>,
    request: &ErasureRequest,
    input: &Input<'_>,
    erased_ids: usize,
    removed: Vec<Removal>,
) -> Result<Emitted, RuntimeError> {
    let receipt = ErasureReceipt {
        request_id: request.request_id.clone(),
        agent: A::NAME.to_owned(),
        instance: shared.instance.clone(),
        partition: input.partition,
        erased_ids: erased_ids as i32,
        removed,
        requested_at: request.requested_at,
        completed_at: Timestamp(now_ms()),
    };
    encoded(
        shared,
        RECEIPTS,
        &request.request_id,
        &receipt,
        input.timestamp,
    )
}

fn tombstone(topic: &'static str, key: &str, timestamp: Option<i64>) -> Emitted {
    Emitted {
        topic,
        key: key.to_owned(),
        payload: None,
        timestamp,
        partition: None,
    }
}

fn encoded<A: Agent, T: serde::Serialize>(
    shared: &Shared<A>,
    topic: &'static str,
    key: &str,
    value: &T,
    timestamp: Option<i64>,
) -> Result<Emitted, RuntimeError> {
    let encoder = shared.encoders.get(topic).ok_or_else(|| {
        RuntimeError::Other(format!("{} erases without an encoder for {topic}", A::NAME))
    })?;
    let payload = encoder
        .encode(value)
        .map_err(|e| RuntimeError::Other(format!("{topic}: {e}")))?;
    Ok(Emitted {
        topic,
        key: key.to_owned(),
        payload: Some(payload),
        timestamp,
        partition: None,
    })
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
