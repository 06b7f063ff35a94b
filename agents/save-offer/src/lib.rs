//! save-offer: from an intervention opportunity or a cancellation request to the offer
//! worth most to the operator (`docs/architecture.md#save-offer`).

pub mod agent;
pub mod bandit;
pub mod catalog;
pub mod ledger;
pub mod member;
pub mod metrics;
pub mod money;
pub mod reasons;
pub mod recent;
pub mod select;
pub mod settings;
pub mod tables;
pub mod testkit;

pub use agent::SaveOffer;
pub use catalog::OfferCatalog;
pub use settings::Settings;
