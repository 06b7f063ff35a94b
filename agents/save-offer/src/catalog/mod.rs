//! The canonical offer catalog: vendor documents normalised, joined with the operator's
//! policy, validated and versioned (`docs/architecture.md#save-offer`).

pub mod agent;
pub mod compose;
pub mod history;
pub mod vendors;

pub use agent::OfferCatalog;
