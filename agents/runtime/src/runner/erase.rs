//! An erasure request carried out, and the registry consulted before any state is made
//! (`crate::erasure` says why; `docs/architecture.md#erasure`).

use std::time::{SystemTime, UNIX_EPOCH};

use rdkafka::message::OwnedMessage;

use super::call::{call, count_panic};
use super::dispatch::{Outcome, Source, dead_letter};
use super::writes::out_records;
use super::{Shared, Store};
use crate::agent::{Agent, HandleError, Population};
use crate::context::Emitted;
use crate::erasure::{
    ErasedId, ErasureReceipt, ErasureRequest, Forgotten, RECEIPTS, REGISTRY, Removal,
};
use crate::error::{Rejection, RuntimeError};
use crate::input::Input;
use crate::kafka::OutRecord;
use crate::metrics::Event;
use crate::time::Timestamp;
use crate::trace::RecordTrace;

/// Whether a record for `key` is of an erased member, to be dropped: the key holds no
/// state (an erased key holds none) and the registry names it.
pub(super) fn is_erased<A: Agent>(shared: &Shared<A>, store: &Store<A>, key: &str) -> bool {
    shared.erasure.as_ref().is_some_and(|registry| {
        store.get(key).is_none_or(|e| e.state.is_none()) && registry.is_erased(key)
    })
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
    let Some(registry) = shared.erasure.as_ref() else {
        return Err(RuntimeError::Other(format!(
            "{} reads erasure requests without an erasure registry",
            A::NAME
        )));
    };
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
    // Whatever `forget` left in the state, it goes, timers with it (the changelog gets
    // a tombstone for the key).
    call.state = None;
    let mut emitted = call.keep(store, key, |_| {});

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
    let entry = ErasedId {
        request_id: request.request_id.clone(),
        erased_at: request.requested_at,
    };
    for id in &ids {
        let hash = registry.register(id, request.requested_at.0);
        emitted.push(encoded(shared, REGISTRY, &hash, &entry, input.timestamp)?);
    }
    let receipt = ErasureReceipt {
        request_id: request.request_id.clone(),
        agent: A::NAME.to_owned(),
        instance: shared.instance.clone(),
        partition: input.partition,
        erased_ids: ids.len() as i32,
        removed,
        requested_at: request.requested_at,
        completed_at: Timestamp(now_ms()),
    };
    emitted.push(encoded(
        shared,
        RECEIPTS,
        &request.request_id,
        &receipt,
        input.timestamp,
    )?);
    shared.metrics.emit(Event::Erasure {
        outcome: if anything { "erased" } else { "nothing_held" },
    });
    outputs.extend(out_records(emitted, &trace.headers));
    Ok(Outcome::Applied)
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
