//! compliance-gate: nothing leaves the swarm for a member except through here. Every
//! proposal is checked against the operator's Cedar policies (`policies/`) for each
//! channel the member could be reached on, and approved, denied, deferred (quiet hours,
//! frequency caps) or sent for review, naming every deciding policy and the statute it
//! implements.
//!
//! This crate holds the decision itself — policies, jurisdiction tables, recipient-local
//! time — as pure functions, tested per policy family (`tests/policies.rs`), and the
//! audit log's hash chain with its signed checkpoints and verifier (`audit`), and the
//! agent around them (`agent`: proposals joined with consents and profiles, deferred
//! sends as timers, triggers, reviews, the chain on `loyalty.audit-log.v1`).

pub mod agent;
pub mod audit;
pub mod audit_record;
pub mod clock;
pub mod esp;
pub mod facts;
pub mod jurisdiction;
pub mod metrics;
pub mod policy;
pub mod settings;
pub mod testkit;

pub use agent::ComplianceGate;
pub use facts::{ConsentBasis, Consents, Facts, Message, Moment, Recipient};
pub use loyalty_contracts::Channel;
pub use policy::{Deciding, Effect, GatePolicies, Outcome, PolicyErrors, Verdict};
