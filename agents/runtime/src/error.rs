//! Error classification, after Arroyo: bad data goes to the DLQ, transient failures are
//! retried with backoff, everything else stops the agent.

use std::fmt;

/// Why a record could not be processed; the record goes to `<agent>.dlq` and the
/// partition keeps moving. `kind` is a short stable label (a metric label and the
/// `dlq.error.kind` header); `reason` says what exactly was wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind}: {reason}")]
pub struct Rejection {
    pub kind: RejectionKind,
    pub reason: String,
}

/// The classes of bad input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RejectionKind {
    /// Not in the Confluent wire format (no magic byte, too short).
    NotWireFormat,
    /// The schema id is not known to the registry.
    UnknownSchemaId,
    /// The bytes do not decode with the writer schema or into the expected type.
    Undecodable,
    /// Decoded, but breaks the topic's contract (missing id, negative amount, unknown tier ...).
    ContractViolation,
    /// The record key is missing or not UTF-8.
    BadKey,
    /// The agent's code panicked on the record. The record is dead-lettered and the
    /// partition keeps flowing: a record that crashed the process would crash it again on
    /// every replay.
    Panic,
}

impl RejectionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RejectionKind::NotWireFormat => "not_wire_format",
            RejectionKind::UnknownSchemaId => "unknown_schema_id",
            RejectionKind::Undecodable => "undecodable",
            RejectionKind::ContractViolation => "contract_violation",
            RejectionKind::BadKey => "bad_key",
            RejectionKind::Panic => "panic",
        }
    }

    pub const ALL: [RejectionKind; 6] = [
        RejectionKind::NotWireFormat,
        RejectionKind::UnknownSchemaId,
        RejectionKind::Undecodable,
        RejectionKind::ContractViolation,
        RejectionKind::BadKey,
        RejectionKind::Panic,
    ];
}

impl fmt::Display for RejectionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Rejection {
    pub fn new(kind: RejectionKind, reason: impl Into<String>) -> Self {
        Rejection {
            kind,
            reason: reason.into(),
        }
    }

    /// Shorthand for the most common kind an agent raises.
    pub fn contract(reason: impl Into<String>) -> Self {
        Rejection::new(RejectionKind::ContractViolation, reason)
    }
}

/// Failures of the runtime itself.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    #[error("kafka: {0}")]
    Kafka(#[from] rdkafka::error::KafkaError),
    #[error("schema registry: {0}")]
    Registry(#[from] crate::registry::RegistryError),
    #[error("avro: {0}")]
    Avro(#[from] Box<apache_avro::Error>),
    #[error("state codec: {0}")]
    StateCodec(String),
    #[error("configuration:\n{0}")]
    Config(#[from] crate::config::ConfigErrors),
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    /// Shutdown was asked for while `operation` waited to be retried (the broker or the
    /// registry away): the agent stops without committing what it could not write.
    #[error("shut down while retrying {operation}")]
    ShutDown { operation: &'static str },
    #[error("{0}")]
    Other(String),
}

impl From<apache_avro::Error> for RuntimeError {
    fn from(e: apache_avro::Error) -> Self {
        RuntimeError::Avro(Box::new(e))
    }
}

impl RuntimeError {
    /// Whether waiting and trying again can succeed (broker or registry briefly away).
    pub fn is_transient(&self) -> bool {
        match self {
            RuntimeError::Kafka(e) => is_transient_kafka(e),
            RuntimeError::Registry(e) => e.is_transient(),
            _ => false,
        }
    }
}

fn is_transient_kafka(e: &rdkafka::error::KafkaError) -> bool {
    use rdkafka::error::{KafkaError, RDKafkaErrorCode as C};
    match e.rdkafka_error_code() {
        Some(code) => matches!(
            code,
            C::BrokerTransportFailure
                | C::AllBrokersDown
                | C::MessageTimedOut
                | C::OperationTimedOut
                | C::RequestTimedOut
                | C::QueueFull
                | C::LeaderNotAvailable
                | C::NotLeaderForPartition
                | C::NotCoordinator
                | C::CoordinatorNotAvailable
                | C::CoordinatorLoadInProgress
                | C::WaitingForCoordinator
                | C::IllegalGeneration
                | C::UnknownMemberId
                | C::NetworkException
                | C::UnknownTopicOrPartition
                | C::RebalanceInProgress
                // librdkafka's own "unknown" codes: its cached metadata does not list the
                // topic or partition yet. On a cluster of several brokers the metadata
                // answered by one broker can be behind another's for a moment after a
                // topic is created, so a watermark query right after creation can see it.
                | C::UnknownPartition
                | C::UnknownTopic
        ),
        None => matches!(e, KafkaError::MetadataFetch(_) | KafkaError::OffsetFetch(_)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rdkafka::error::{KafkaError, RDKafkaErrorCode as C};

    #[test]
    fn metadata_not_yet_propagated_is_waited_for_and_a_bad_request_is_not() {
        // Seen on a three-broker Apache Kafka cluster: the reference-table watermark query
        // moments after topic creation answered the local "Unknown partition".
        for code in [C::UnknownPartition, C::UnknownTopic, C::LeaderNotAvailable] {
            assert!(RuntimeError::Kafka(KafkaError::MetadataFetch(code)).is_transient());
        }
        for code in [
            C::TopicAuthorizationFailed,
            C::InvalidConfig,
            C::MessageSizeTooLarge,
        ] {
            assert!(!RuntimeError::Kafka(KafkaError::MetadataFetch(code)).is_transient());
        }
    }
}
