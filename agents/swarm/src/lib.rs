//! The operator's CLI as a library: the embedded stack, topic and schema setup, the CDNOW
//! replay, the demo and the inspection helpers the tests share.

pub mod audit;
pub mod bench;
pub mod campaign;
pub mod cdnow;
pub mod demo;
pub mod erasure;
pub mod fit;
pub mod gate_latency;
pub mod inspect;
pub mod offer_latency;
pub mod offers;
pub mod progress;
pub mod registry;
pub mod replay;
pub mod setup;
pub mod stack;
pub mod verify;
