//! Dispatch: one record from the consumer to the agent's `handle` and back — the key,
//! the replay check, the writer schema, re-keying through the repartition topic — and
//! the DLQ for every record that cannot be used, whatever its bytes. Bad data, a panic
//! in the agent's code included, is the record's problem, never the partition's.

use std::sync::Arc;
use std::time::Instant;

use rdkafka::message::{Headers, Message, OwnedMessage};
use tracing::warn;

use super::call::{Call, call, count_panic};
use super::erase;
use super::topics::{dlq_headers, origin_headers};
use super::writes::out_records;
use super::{Shared, Store};
use crate::agent::{Agent, HandleError, Population};
use crate::codec::{Decoder, leak};
use crate::error::{Rejection, RejectionKind, RuntimeError};
use crate::input::Input;
use crate::kafka::OutRecord;
use crate::metrics::Event;
use crate::registry::RegistryError;
use crate::store::Origin;
use crate::trace::RecordTrace;
use crate::wire;

/// The decoder for a record's writer schema, or the reason it has none.
pub(super) async fn decoder_for<A: Agent>(
    shared: &Shared<A>,
    id: u32,
) -> Result<Result<Arc<Decoder>, Rejection>, RuntimeError> {
    if let Some(decoder) = shared
        .decoders
        .read()
        .ok()
        .and_then(|d| d.get(&id).cloned())
    {
        return Ok(Ok(decoder));
    }
    let fetched = shared
        .backoff
        .retry("fetch_schema", &shared.metrics, || async {
            match shared.registry.schema(id).await {
                Ok(schema) => Ok(Ok(schema)),
                Err(RegistryError::UnknownId(_)) => {
                    Ok(Err(format!("schema id {id} is not registered")))
                }
                Err(RegistryError::BadSchema(e)) => Ok(Err(format!(
                    "the registry's schema for id {id} does not parse: {e}"
                ))),
                Err(e) => Err(e.into()),
            }
        })
        .await?;
    let schema = match fetched {
        Ok(schema) => schema,
        Err(reason) => return Ok(Err(Rejection::new(RejectionKind::UnknownSchemaId, reason))),
    };
    let decoder = match Decoder::new(leak(schema.as_ref().clone())) {
        Ok(decoder) => Arc::new(decoder),
        Err(e) => {
            return Ok(Err(Rejection::new(
                RejectionKind::UnknownSchemaId,
                format!("schema id {id} cannot be read with: {e}"),
            )));
        }
    };
    if let Ok(mut decoders) = shared.decoders.write() {
        decoders.insert(id, decoder.clone());
    }
    Ok(Ok(decoder))
}

/// What became of one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Outcome {
    /// Its key's state and outputs took it.
    Applied,
    /// State already reflected it (a replay, or a second copy of a forwarded record).
    Skipped,
    /// Handed to another key through the repartition topic.
    Forwarded,
    /// Sent to the DLQ.
    DeadLettered,
}

/// One record through the agent: key checked, skipped when state already reflects it
/// (a replay), origin read when it came through the repartition topic, decoded, handed
/// to `handle` on a copy of its key's state; then the state kept, the record forwarded
/// to another key, or the record dead-lettered. Only a runtime failure (the registry
/// away past shutdown, a fatal agent error) is an `Err`.
pub(super) async fn handle_message<A: Agent>(
    shared: &Shared<A>,
    message: &OwnedMessage,
    floor: i64,
    batch_started: Instant,
    store: &mut Store<A>,
    population: &Population<A::Summary>,
    outputs: &mut Vec<OutRecord>,
) -> Result<Outcome, RuntimeError> {
    let topic = message.topic();
    shared.metrics.emit(Event::RecordsConsumed {
        topic,
        partition: message.partition(),
        count: 1,
    });
    let input_index = shared.inputs.iter().position(|t| *t == topic).unwrap_or(0);
    let trace = shared.tracing.record(
        topic,
        message.partition(),
        message.offset(),
        message.headers(),
    );
    // Where the record entered the agent: a re-keyed record is handled, and
    // dead-lettered, as the record it was at its origin.
    let mut source = Source::of(message);

    let key = match message.key().map(std::str::from_utf8) {
        Some(Ok(key)) if !key.is_empty() => key,
        _ => {
            let rejection =
                Rejection::new(RejectionKind::BadKey, "record key is missing or not UTF-8");
            outputs.push(dead_letter(shared, message, source, &rejection, &trace));
            return Ok(Outcome::DeadLettered);
        }
    };
    // Erasure requests are not positions of any state (the key's entry goes with the
    // request): carried out again, one removes nothing and receipts again.
    if topic != crate::erasure::REQUESTS
        && store
            .get(key)
            .is_some_and(|e| e.reflects(input_index, message.offset()))
    {
        shared
            .metrics
            .emit(Event::ReplaySkipped { topic, count: 1 });
        return Ok(Outcome::Skipped);
    }
    let origin = if shared.repartition == Some(topic) {
        match origin_of(A::NAME, &shared.inputs, shared.repartition, message) {
            Ok((origin, origin_topic)) => {
                source = Source {
                    topic: origin_topic,
                    partition: origin.partition,
                    offset: origin.offset,
                };
                Some(origin)
            }
            Err(rejection) => {
                outputs.push(dead_letter(shared, message, source, &rejection, &trace));
                return Ok(Outcome::DeadLettered);
            }
        }
    } else {
        None
    };
    if let Some(origin) = &origin
        && second_copy(store, key, origin)
    {
        // A second copy, forwarded again when its origin replayed.
        shared
            .metrics
            .emit(Event::ReplaySkipped { topic, count: 1 });
        return Ok(Outcome::Skipped);
    }
    // Input of an erased member (a replay, an event in flight): no state may be made of
    // it, and the DLQ must not keep it either — unless it enrols the member again.
    let erased = if topic == crate::erasure::REQUESTS {
        None
    } else {
        let logged_at = message.timestamp().to_millis();
        match erase::erased(shared, store, key, logged_at) {
            Some(entry) if erase::worth_reading_on(shared, &entry, logged_at, batch_started) => {
                erase::caught_up(shared).await?;
                erase::erased(shared, store, key, logged_at)
            }
            other => other,
        }
    };
    let value = match message.payload() {
        None => None,
        Some(bytes) => {
            let decoder = match wire::split(bytes) {
                Ok((id, body)) => decoder_for(shared, id).await?.map(|d| (d, body)),
                Err(rejection) => Err(rejection),
            };
            match decoder {
                Ok(decoder) => Some(decoder),
                Err(_) if erased.is_some() => return Ok(erase::dropped(shared, topic)),
                Err(rejection) => {
                    outputs.push(dead_letter(shared, message, source, &rejection, &trace));
                    return Ok(Outcome::DeadLettered);
                }
            }
        }
    };
    let input = Input {
        topic: source.topic,
        partition: source.partition,
        offset: source.offset,
        timestamp: message.timestamp().to_millis(),
        key,
        value: value
            .as_ref()
            .map(|(schema, body)| (schema.as_ref(), *body)),
    };

    if topic == crate::erasure::REQUESTS {
        return erase::erase(
            shared, message, source, &trace, &input, store, population, outputs,
        );
    }
    // The registry says the member is back while `handle` runs (it sees a fresh member);
    // unless the record is applied, it is undone.
    let reenrolled = match &erased {
        Some(entry) => match erase::reenrolment(shared, &input, entry)? {
            Some(reenrolled) => Some(reenrolled),
            None => return Ok(erase::dropped(shared, topic)),
        },
        None => None,
    };
    let outcome = 'handled: {
        // On a copy, so a rejected (or re-keyed) record leaves no trace in state.
        let started = Instant::now();
        let mut call = call(shared, store, key, population, |agent, state, ctx| {
            agent.handle(&input, state, ctx)
        });
        let result = std::mem::replace(&mut call.result, Ok(()));
        let rekey = call.rekey.take();
        shared.metrics.emit(Event::RecordHandled {
            topic,
            elapsed: started.elapsed(),
        });
        let rejected = |rejection: Rejection, outputs: &mut Vec<OutRecord>| {
            outputs.push(dead_letter(shared, message, source, &rejection, &trace));
            Ok(Outcome::DeadLettered)
        };
        match (result, rekey) {
            (Ok(()), None) => {
                let measure_state = message.payload().map_or(0, <[u8]>::len) + key.len()
                    > MEASURE_STATE_ABOVE_BYTES;
                if let Some(rejection) = too_big_to_write(&call, key, measure_state) {
                    break 'handled rejected(rejection, outputs);
                }
                let emitted = call.keep(store, key, |entry| {
                    if let Some(p) = entry.positions.get_mut(input_index) {
                        *p = message.offset();
                    }
                    if let Some(origin) = &origin {
                        entry.record_origin(origin);
                    }
                });
                outputs.extend(out_records(emitted, &trace.headers));
                Ok(Outcome::Applied)
            }
            (Ok(()), Some(to)) => {
                // Only an agent that `Rekeys` can call `rekey`, and only it has the topic.
                let Some(repartition) = shared.repartition else {
                    return Err(RuntimeError::Other(format!(
                        "{} re-keyed a record without a repartition topic",
                        A::NAME
                    )));
                };
                if to == key {
                    break 'handled rejected(
                        Rejection::contract(format!("re-keyed to its own key {key:?}")),
                        outputs,
                    );
                }
                let forward = message.payload().map_or(0, <[u8]>::len) + to.len();
                if forward > MAX_DLQ_RECORD_BYTES {
                    // The forward (new key and origin headers added) could be too big to produce.
                    break 'handled rejected(
                        Rejection::new(
                            RejectionKind::BadKey,
                            format!(
                                "re-keying makes a record of {forward} bytes, too big to forward (at most {MAX_DLQ_RECORD_BYTES})"
                            ),
                        ),
                        outputs,
                    );
                }
                if origin.is_some() {
                    // Forwarding again could go round in circles.
                    break 'handled rejected(
                        Rejection::contract(format!(
                            "re-keyed again, from {key:?} to {to:?}, after being re-keyed once"
                        )),
                        outputs,
                    );
                }
                shared.metrics.emit(Event::Rekeyed { topic, count: 1 });
                outputs.push(OutRecord {
                    topic: repartition.to_owned(),
                    partition: None,
                    key: to,
                    payload: message.payload().map(<[u8]>::to_vec),
                    timestamp: message.timestamp().to_millis(),
                    headers: [
                        (origin_headers::TOPIC, topic.to_owned()),
                        (origin_headers::PARTITION, message.partition().to_string()),
                        (origin_headers::OFFSET, message.offset().to_string()),
                        (origin_headers::FLOOR, floor.to_string()),
                    ]
                    .into_iter()
                    .map(|(k, v)| (k.to_owned(), v))
                    .chain(trace.headers.iter().cloned())
                    .collect(),
                });
                Ok(Outcome::Forwarded)
            }
            (Err(HandleError::Rejected(rejection)), _) => {
                count_panic(shared, &rejection, "handle");
                rejected(rejection, outputs)
            }
            (Err(HandleError::Fatal(reason)), _) => Err(RuntimeError::Other(format!(
                "{} at {}/{}/{}: {reason}",
                A::NAME,
                source.topic,
                source.partition,
                source.offset
            ))),
        }
    };
    if let Some(reenrolled) = reenrolled {
        let applied = matches!(outcome, Ok(Outcome::Applied));
        if let Some(registered) = erase::settle_reenrolment(shared, reenrolled, applied)? {
            outputs.extend(out_records(vec![registered], &trace.headers));
        }
    }
    outcome
}

/// A record's position where it entered the agent.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Source<'a> {
    topic: &'a str,
    partition: i32,
    offset: i64,
}

impl<'a> Source<'a> {
    pub(super) fn of(message: &'a OwnedMessage) -> Self {
        Source {
            topic: message.topic(),
            partition: message.partition(),
            offset: message.offset(),
        }
    }
}

/// The origin a re-keyed record's headers name, and its input topic (one of `inputs`,
/// not the `repartition` topic itself).
pub(super) fn origin_of<'m>(
    agent: &str,
    inputs: &[&'static str],
    repartition: Option<&str>,
    message: &'m OwnedMessage,
) -> Result<(Origin, &'static str), Rejection> {
    let header = |name: &str| -> Result<&'m str, Rejection> {
        message
            .headers()
            .and_then(|h| h.iter().find(|h| h.key == name))
            .and_then(|h| h.value)
            .and_then(|v| std::str::from_utf8(v).ok())
            .ok_or_else(|| Rejection::contract(format!("re-keyed record without {name}")))
    };
    let number = |name: &str| -> Result<i64, Rejection> {
        header(name)?
            .parse()
            .map_err(|_| Rejection::contract(format!("re-keyed record with a bad {name}")))
    };
    let topic = header(origin_headers::TOPIC)?;
    let input = inputs
        .iter()
        .position(|t| *t == topic && Some(*t) != repartition)
        .ok_or_else(|| {
            Rejection::contract(format!("re-keyed from {topic}, not an input of {agent}"))
        })?;
    let partition = i32::try_from(number(origin_headers::PARTITION)?)
        .map_err(|_| Rejection::contract("re-keyed record with a bad partition"))?;
    Ok((
        Origin {
            input: input as u32,
            partition,
            offset: number(origin_headers::OFFSET)?,
            floor: number(origin_headers::FLOOR)?,
        },
        inputs[input],
    ))
}

/// Whether a re-keyed record is a second copy of one the key already took: below the
/// floor its forward named (written again when its origin replayed), or an origin the
/// key's state records as applied.
pub(super) fn second_copy<S, M>(
    store: &crate::store::PartitionStore<S, M>,
    key: &str,
    origin: &Origin,
) -> bool
where
    S: serde::Serialize + serde::de::DeserializeOwned,
    M: serde::Serialize + serde::de::DeserializeOwned + Default,
{
    origin.offset < origin.floor || store.get(key).is_some_and(|e| e.reflects_origin(origin))
}

/// The DLQ record for a rejected input: original key and bytes, reason in headers.
pub(super) fn dead_letter<A: Agent>(
    shared: &Shared<A>,
    message: &OwnedMessage,
    source: Source<'_>,
    rejection: &Rejection,
    trace: &RecordTrace,
) -> OutRecord {
    // A reason quotes the record (its key, a field); a record of a megabyte must not
    // make a log line, or a header, of one.
    let reason = clipped(&rejection.reason, MAX_REASON_BYTES);
    trace.rejected(reason);
    shared.metrics.emit(Event::DeadLettered {
        kind: rejection.kind,
    });
    warn!(
        topic = source.topic,
        partition = source.partition,
        offset = source.offset,
        kind = %rejection.kind,
        reason,
        "record sent to the DLQ"
    );
    let key = String::from_utf8_lossy(message.key().unwrap_or_default());
    let payload = message.payload().unwrap_or_default();
    // The DLQ keeps the original bytes when they fit a record the producer can write
    // (librdkafka's `message.max.bytes`, 1,000,000 by default, is below the broker's
    // limit, so a record consumed can be too big to produce again). Otherwise its
    // position names it, and it stays in its source topic.
    let whole = key.len() + payload.len() <= MAX_DLQ_RECORD_BYTES;
    let mut headers: Vec<(String, String)> = Vec::with_capacity(11);
    if !whole {
        headers.push((
            dlq_headers::OMITTED.into(),
            format!("key {} bytes, value {} bytes", key.len(), payload.len()),
        ));
    }
    if let Some(logged) = message.timestamp().to_millis() {
        headers.push((dlq_headers::TIMESTAMP.into(), logged.to_string()));
    }
    OutRecord {
        topic: shared.dlq.clone(),
        partition: None,
        key: if whole {
            key.into_owned()
        } else {
            clipped(&key, MAX_REASON_BYTES).to_owned()
        },
        payload: message.payload().filter(|_| whole).map(<[u8]>::to_vec),
        // Stamped when dead-lettered, so `dlq_retention_ms` counts from then: a record
        // of a replayed 1997 would otherwise be deleted as soon as it arrived.
        timestamp: None,
        headers: headers
            .into_iter()
            .chain([
                (dlq_headers::KIND.into(), rejection.kind.as_str().into()),
                (dlq_headers::REASON.into(), reason.to_owned()),
                (dlq_headers::TOPIC.into(), source.topic.into()),
                (dlq_headers::PARTITION.into(), source.partition.to_string()),
                (dlq_headers::OFFSET.into(), source.offset.to_string()),
                (dlq_headers::AGENT.into(), A::NAME.into()),
                (
                    dlq_headers::VERSION.into(),
                    env!("CARGO_PKG_VERSION").into(),
                ),
            ])
            .chain(trace.headers.iter().cloned())
            .collect(),
    }
}

/// Largest key plus value a DLQ record carries whole, with room for its headers under
/// librdkafka's default `message.max.bytes` (1,000,000); also the largest output or
/// changelog entry a record may cause.
const MAX_DLQ_RECORD_BYTES: usize = 900_000;

/// Inputs above this size have their resulting state measured before it is kept.
const MEASURE_STATE_ABOVE_BYTES: usize = 64 * 1024;

/// Why what a record caused could not be written: an output over the size librdkafka
/// produces, or — after a big input — a state entry over it. Found here, the record is
/// dead-lettered; found when the batch is written, the produce would fail on every replay
/// and stop the agent each time. Small inputs grow a state by small steps, which each
/// agent bounds (windows, capped lists), so only a big input's state is measured: the
/// measurement is an encoding of the whole state (a timer's firing is always measured:
/// it has no input to size).
pub(super) fn too_big_to_write<A: Agent>(
    call: &Call<A>,
    key: &str,
    measure_state: bool,
) -> Option<Rejection> {
    for e in &call.emitted {
        let size = e.key.len() + e.payload.as_ref().map_or(0, Vec::len);
        if size > MAX_DLQ_RECORD_BYTES {
            return Some(Rejection::contract(format!(
                "the record makes an output to {} of {size} bytes (at most {MAX_DLQ_RECORD_BYTES})",
                e.topic
            )));
        }
    }
    if measure_state {
        let size = key.len() + postcard::to_stdvec(&call.state).map_or(0, |v| v.len());
        if size > MAX_DLQ_RECORD_BYTES {
            return Some(Rejection::contract(format!(
                "the record makes the key's state {size} bytes (at most {MAX_DLQ_RECORD_BYTES})"
            )));
        }
    }
    None
}

/// Largest rejection reason kept, in bytes.
const MAX_REASON_BYTES: usize = 1_024;

/// `text` cut to at most `max` bytes, at a character boundary.
fn clipped(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// Run agent code so that a panic becomes a rejection of the record at hand instead of
/// the end of the process: the record would panic again on every replay, so stopping
/// would stop the partition for good. The state `handle` worked on is a copy the runtime
/// discards on any rejection; a summary it changed before panicking keeps the change,
/// as with any rejection (see [`crate::Context::summary`]).
pub(super) fn caught<T>(call: impl FnOnce() -> Result<T, HandleError>) -> Result<T, HandleError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(call)).unwrap_or_else(|payload| {
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic without a message".to_owned());
        Err(HandleError::Rejected(Rejection::new(
            RejectionKind::Panic,
            format!("the agent panicked: {message}"),
        )))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_in_agent_code_becomes_a_panic_rejection() {
        let panicked: Result<(), HandleError> = caught(|| panic!("index out of bounds"));
        let formatted: Result<(), HandleError> = caught(|| panic!("{} too large", 7));
        match panicked {
            Err(HandleError::Rejected(r)) => {
                assert_eq!(r.kind, RejectionKind::Panic);
                assert!(r.reason.contains("index out of bounds"), "{}", r.reason);
            }
            other => panic!("{other:?}"),
        }
        assert!(
            matches!(formatted, Err(HandleError::Rejected(r)) if r.reason.contains("7 too large"))
        );
        assert!(matches!(caught(|| Ok::<_, HandleError>(3)), Ok(3)));
    }

    const INPUTS: [&str; 2] = ["loyalty.member-events.v1", "agent.rekey-repartition"];

    fn forward(headers: &[(&str, &str)]) -> OwnedMessage {
        let mut owned = rdkafka::message::OwnedHeaders::new();
        for (key, value) in headers {
            owned = owned.insert(rdkafka::message::Header {
                key,
                value: Some(*value),
            });
        }
        OwnedMessage::new(
            Some(b"body".to_vec()),
            Some(b"m1".to_vec()),
            INPUTS[1].to_owned(),
            rdkafka::Timestamp::NotAvailable,
            3,
            40,
            Some(owned),
        )
    }

    fn origin(message: &OwnedMessage) -> Result<(Origin, &'static str), Rejection> {
        origin_of("agent", &INPUTS, Some(INPUTS[1]), message)
    }

    const FULL: [(&str, &str); 4] = [
        (origin_headers::TOPIC, "loyalty.member-events.v1"),
        (origin_headers::PARTITION, "7"),
        (origin_headers::OFFSET, "120"),
        (origin_headers::FLOOR, "100"),
    ];

    #[test]
    fn a_forward_is_handled_as_the_record_its_headers_name() {
        let (o, topic) = origin(&forward(&FULL)).expect("an origin");
        assert_eq!(topic, INPUTS[0]);
        assert_eq!((o.input, o.partition, o.offset, o.floor), (0, 7, 120, 100));
    }

    #[test]
    fn a_forward_with_headers_missing_or_wrong_is_rejected_naming_them() {
        let without_floor = forward(&FULL[..3]);
        assert_eq!(
            origin(&without_floor).unwrap_err().reason,
            "re-keyed record without loyalty.origin.floor"
        );
        let mut bad = FULL;
        bad[1].1 = "seven";
        assert_eq!(
            origin(&forward(&bad)).unwrap_err().reason,
            "re-keyed record with a bad loyalty.origin.partition"
        );
        // From a topic the agent does not read, or from its repartition topic (a forward
        // of a forward could go round in circles).
        for from in ["loyalty.member-profiles.v1", INPUTS[1]] {
            let mut elsewhere = FULL;
            elsewhere[0].1 = from;
            assert_eq!(
                origin(&forward(&elsewhere)).unwrap_err().reason,
                format!("re-keyed from {from}, not an input of agent")
            );
        }
    }

    #[test]
    fn a_second_copy_is_known_by_its_floor_or_by_the_origins_applied() {
        let mut store: crate::store::PartitionStore<u8, ()> = crate::store::PartitionStore::new(2);
        let (first, _) = origin(&forward(&FULL)).expect("an origin");
        assert!(!second_copy(&store, "m1", &first), "never applied");
        store.entry("m1").state = Some(1);
        store.entry("m1").record_origin(&first);
        assert!(second_copy(&store, "m1", &first), "applied once already");
        assert!(!second_copy(&store, "m2", &first), "another key");
        let next = Origin {
            offset: 121,
            ..first
        };
        assert!(!second_copy(&store, "m1", &next));
        let below_its_floor = Origin {
            offset: 99,
            ..first
        };
        assert!(second_copy(&store, "m2", &below_its_floor));
    }

    #[test]
    fn reasons_are_clipped_at_a_character_boundary() {
        assert_eq!(clipped("short", 10), "short");
        let long = "é".repeat(1_000); // two bytes each
        let cut = clipped(&long, MAX_REASON_BYTES + 1);
        assert_eq!(cut.len(), MAX_REASON_BYTES);
        assert!(cut.chars().all(|c| c == 'é'));
    }
}
