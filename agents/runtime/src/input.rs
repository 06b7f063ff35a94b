//! One consumed record as `handle` sees it: topic, position, log timestamp, key and the
//! Avro body with its writer schema, decoded only when the agent asks.

use serde::de::DeserializeOwned;

use crate::codec::Decoder;
use crate::error::{Rejection, RejectionKind};

/// One consumed record, not yet decoded.
#[derive(Debug, Clone, Copy)]
pub struct Input<'a> {
    pub topic: &'a str,
    pub partition: i32,
    pub offset: i64,
    /// Record timestamp in milliseconds, if the producer set one.
    pub timestamp: Option<i64>,
    pub key: &'a str,
    /// Decoder for the writer schema, and the Avro body; `None` for a tombstone.
    pub value: Option<(&'a Decoder, &'a [u8])>,
}

impl Input<'_> {
    /// Decode the value into the topic's contract type.
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T, Rejection> {
        match self.value {
            Some((decoder, body)) => decoder.decode(body),
            None => Err(Rejection::new(
                RejectionKind::Undecodable,
                "tombstone where a value was expected",
            )),
        }
    }

    /// Decode a value that names its own key (a member id, say): a value whose `field`
    /// differs from the record key breaks the contract (co-partitioning depends on it).
    pub fn decode_keyed<T: DeserializeOwned>(
        &self,
        field: &str,
        id: fn(&T) -> &str,
    ) -> Result<T, Rejection> {
        let value: T = self.decode()?;
        if id(&value) != self.key {
            return Err(Rejection::contract(format!(
                "{field} {:?} differs from the record key {:?}",
                id(&value),
                self.key
            )));
        }
        Ok(value)
    }

    pub fn is_tombstone(&self) -> bool {
        self.value.is_none()
    }
}
