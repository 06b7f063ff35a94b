//! An offer's version history: every edit of the vendor document or the operator's
//! policy that changes the canonical content is a new version; a version under legal
//! hold can be neither superseded nor deleted; an edit that would start before the
//! current version (received out of order) would make two versions overlap and is
//! refused (one at the same instant replaces it). Members keep the version they were shown (save-offer pins it in their
//! state), so the catalog only ever publishes the current one.

use loyalty_contracts::{CatalogOffer, OfferPolicy, OfferVersion, Timestamp, VendorOffer};
use serde::{Deserialize, Serialize};

use super::compose::{self, ComposeError, sha256_hex};

/// Versions kept in the entry; every version was published with its audit snapshot, so
/// older ones are in the topic's history (and the operator's audit store), not needed
/// here to decide the next.
const KEPT_VERSIONS: usize = 64;

/// What the catalog keeps per offer id.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct CatalogEntry {
    pub vendor_offer: Option<VendorOffer>,
    pub policy: Option<OfferPolicy>,
    /// Every version published, oldest first; the last one is current.
    pub versions: Vec<OfferVersion>,
    /// The current version as published.
    pub current: Option<CatalogOffer>,
}

/// What an edit does to the published catalog.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// Publish this record (a new version, or the current one with a changed hold).
    Publish(Box<CatalogOffer>),
    /// Tombstone the offer.
    Delete,
    /// Nothing visible changed (the same document again, or a policy for an offer the
    /// vendor has not sent yet).
    Unchanged,
}

/// Why an edit was refused; the record goes to the DLQ and the entry stays as it was.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EditError {
    #[error(transparent)]
    Compose(#[from] ComposeError),
    #[error("version {version} of {offer_id} is under legal hold: it cannot be {what}")]
    LegalHold {
        offer_id: String,
        version: i64,
        what: &'static str,
    },
    #[error(
        "versions would overlap: the edit takes effect at {edit} ms, before version {version} of {offer_id} (effective from {current} ms)"
    )]
    Overlap {
        offer_id: String,
        version: i64,
        edit: i64,
        current: i64,
    },
}

impl CatalogEntry {
    /// A vendor sent (a new edition of) the offer.
    pub fn vendor_offer(&mut self, offer: VendorOffer) -> Result<Change, EditError> {
        let at = offer.received_at;
        let mut next = self.clone();
        next.vendor_offer = Some(offer);
        let change = next.republish(at)?;
        *self = next;
        Ok(change)
    }

    /// The operator set, changed or (with `None`) removed the offer's policy.
    pub fn policy(
        &mut self,
        policy: Option<OfferPolicy>,
        at: Timestamp,
    ) -> Result<Change, EditError> {
        let mut next = self.clone();
        next.policy = policy;
        let change = next.republish(at)?;
        *self = next;
        Ok(change)
    }

    /// The vendor withdrew the offer (a tombstone on the vendor topic).
    pub fn withdraw(&mut self) -> Result<Change, EditError> {
        if let Some(current) = &self.current
            && current.version.legal_hold
        {
            return Err(EditError::LegalHold {
                offer_id: current.offer_id.clone(),
                version: current.version.version_id,
                what: "deleted",
            });
        }
        let had = self.current.is_some();
        self.vendor_offer = None;
        self.current = None;
        Ok(if had {
            Change::Delete
        } else {
            Change::Unchanged
        })
    }

    fn held(&self) -> bool {
        self.policy.as_ref().is_some_and(|p| p.legal_hold)
    }

    fn republish(&mut self, at: Timestamp) -> Result<Change, EditError> {
        let Some(vendor_offer) = &self.vendor_offer else {
            return Ok(Change::Unchanged);
        };
        let mut offer = compose::compose(vendor_offer, self.policy.as_ref())?;
        let held = self.held();
        let Some(current) = &self.current else {
            // After a withdrawal the history stays, and numbering goes on from it.
            let (id, note, from) = match self.versions.last() {
                Some(last) => (
                    last.version_id + 1,
                    "published again after withdrawal",
                    offer.version.effective_from.max(at),
                ),
                None => (1, "first version", offer.version.effective_from),
            };
            offer.version = self.version(&offer, id, from, vec![note.into()]);
            offer.version.legal_hold = held;
            self.publish(&offer);
            return Ok(Change::Publish(Box::new(offer)));
        };
        if content(&offer) == content(current) {
            if current.version.legal_hold == held {
                return Ok(Change::Unchanged);
            }
            // Placing or lifting a hold is not an edit of the offer: same version.
            let mut same = current.clone();
            same.version.legal_hold = held;
            if let Some(last) = self.versions.last_mut() {
                last.legal_hold = held;
            }
            self.current = Some(same.clone());
            return Ok(Change::Publish(Box::new(same)));
        }
        let version = current.version.version_id;
        if current.version.legal_hold {
            return Err(EditError::LegalHold {
                offer_id: current.offer_id.clone(),
                version,
                what: "superseded",
            });
        }
        let effective_from = offer.version.effective_from.max(at);
        // From the same instant the edit replaces the current version outright (it never
        // took effect on its own); only an edit dated before it would overlap.
        if effective_from < current.version.effective_from {
            return Err(EditError::Overlap {
                offer_id: current.offer_id.clone(),
                version,
                edit: effective_from.0,
                current: current.version.effective_from.0,
            });
        }
        let changelog = changes(current, &offer);
        offer.version = self.version(&offer, version + 1, effective_from, changelog);
        offer.version.legal_hold = held;
        if let Some(previous) = self.versions.last_mut() {
            previous.superseded_by = Some(version + 1);
            previous.effective_to = Some(
                previous
                    .effective_to
                    .map_or(effective_from, |to| to.min(effective_from)),
            );
        }
        self.publish(&offer);
        Ok(Change::Publish(Box::new(offer)))
    }

    fn version(
        &self,
        offer: &CatalogOffer,
        version_id: i64,
        effective_from: Timestamp,
        changelog: Vec<String>,
    ) -> OfferVersion {
        let snapshot = format!(
            "{}\n{}\n{}",
            version_id,
            content(offer),
            offer.vendor_document_sha256
        );
        OfferVersion {
            version_id,
            superseded_by: None,
            effective_from,
            effective_to: offer.version.effective_to,
            changelog,
            legal_hold: false,
            audit_snapshot_sha256: sha256_hex(snapshot.as_bytes()),
        }
    }

    fn publish(&mut self, offer: &CatalogOffer) {
        self.versions.push(offer.version.clone());
        if self.versions.len() > KEPT_VERSIONS {
            self.versions.remove(0);
        }
        self.current = Some(offer.clone());
    }
}

/// The offer's canonical content as JSON: what a new version is made of. The version
/// is left out, and so is what the vendor's document says that no canonical part holds
/// (a coupon's redemption counter moves with every sync; the offer does not).
fn content(offer: &CatalogOffer) -> String {
    let mut offer = offer.clone();
    offer.vendor_fields_json = String::new();
    offer.vendor_document_sha256 = String::new();
    offer.version = OfferVersion {
        version_id: 0,
        superseded_by: None,
        effective_from: Timestamp(0),
        effective_to: None,
        changelog: Vec::new(),
        legal_hold: false,
        audit_snapshot_sha256: String::new(),
    };
    // Serialising plain data with string keys cannot fail.
    serde_json::to_string(&offer).unwrap_or_default()
}

/// The top-level parts that differ, old → new, for the version's changelog.
fn changes(old: &CatalogOffer, new: &CatalogOffer) -> Vec<String> {
    let (Ok(serde_json::Value::Object(old)), Ok(serde_json::Value::Object(new))) =
        (serde_json::to_value(old), serde_json::to_value(new))
    else {
        return vec!["content changed".into()];
    };
    new.iter()
        .filter(|(field, _)| *field != "version")
        .filter(|(field, value)| old.get(*field) != Some(value))
        .map(|(field, value)| {
            let before = old.get(field).map(ToString::to_string).unwrap_or_default();
            format!("{field}: {} -> {}", clip(&before), clip(&value.to_string()))
        })
        .collect()
}

fn clip(text: &str) -> String {
    const MAX: usize = 200;
    match text.char_indices().nth(MAX) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_owned(),
    }
}
