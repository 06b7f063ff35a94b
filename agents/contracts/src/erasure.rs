//! `loyalty.erasure-requests.v1` (GDPR Art. 17 / CCPA deletion requests, keyed by member
//! id), `loyalty.erasure-receipts.v1` (what each agent removed, keyed by request id) and
//! `loyalty.erasure-registry.v1` (erased ids as keyed hashes, compacted, kept forever).
//! The types live in the runtime, which carries erasure out for every agent
//! (`loyalty_runtime::erasure`); they are contracts like the others.

pub use loyalty_runtime::erasure::{ErasedId, ErasureReceipt, ErasureRequest, Removal};
