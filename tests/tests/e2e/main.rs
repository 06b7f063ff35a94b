//! The end-to-end tests, one binary: each module is one capability proven across the
//! stack — the embedded broker and registry, the agents as real processes, outside
//! clients — and `common` is what they share. One binary links the broker and
//! librdkafka once instead of once per file.
//!
//! Run one module with `cargo test -p loyalty-e2e --test e2e <module>::`.

mod common;

mod broker_outage;
mod cdnow_replay;
mod cli;
mod cohort_instances;
mod compliance_gate;
mod crash_safety;
mod dead_letters;
mod deploy;
mod embedded_broker;
mod erasure;
mod exactly_once;
mod example_agent;
mod hostile_input;
mod java_clients;
mod ltv_agent;
mod operations;
mod rekeying;
mod rust_client;
mod save_offer_agent;
mod scale_out;
mod swarm_erasure;
mod tier_forecast_quality;
mod tier_transition_agent;
mod timers;
mod tracing;
mod vendored_tansu;
