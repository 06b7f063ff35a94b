//! The catalog agent (`save-offer-catalog`): vendor offers and operator policies in, one
//! canonical, versioned record per offer out, on `loyalty.offer-catalog.v1`. Both inputs
//! are keyed by offer id, so this is a table–table join per offer, run by its own
//! consumer group on the inputs' single partition; save-offer reads its output whole,
//! as a reference table.

use loyalty_contracts::{OfferPolicy, Timestamp, VendorOffer, catalog, topics};
use loyalty_runtime::{
    Agent, Context, HandleError, Input, KeepsKeys, NoSettings, OutputSpec, Rejection,
};

use super::compose::offer_id;
use super::history::{CatalogEntry, Change};

/// The agent.
#[derive(Debug, Default)]
pub struct OfferCatalog;

impl OfferCatalog {
    pub fn new(_: &NoSettings) -> Self {
        OfferCatalog
    }
}

impl Agent for OfferCatalog {
    type State = CatalogEntry;
    type Settings = NoSettings;
    type Summary = ();
    type Rekeying = KeepsKeys;
    const NAME: &'static str = "save-offer-catalog";
    const STORE: &'static str = "offers";

    fn inputs(&self) -> Vec<&'static str> {
        vec![topics::VENDOR_OFFERS, topics::OFFER_POLICIES]
    }

    fn outputs(&self) -> Vec<OutputSpec> {
        vec![catalog::OFFER_CATALOG.output()]
    }

    fn handle(
        &self,
        input: &Input<'_>,
        state: &mut Option<CatalogEntry>,
        ctx: &mut Context<'_, Self>,
    ) -> Result<(), HandleError> {
        let entry = state.get_or_insert_with(CatalogEntry::default);
        // A tombstone has no event time of its own; its log timestamp is when it was sent.
        let logged = Timestamp(input.timestamp.unwrap_or(0));
        let change = match input.topic {
            topics::VENDOR_OFFERS if input.is_tombstone() => entry.withdraw(),
            topics::VENDOR_OFFERS => {
                let offer: VendorOffer = input.decode()?;
                let id = offer_id(&offer.vendor, &offer.vendor_offer_id);
                if id != input.key {
                    return Err(Rejection::contract(format!(
                        "a vendor offer is keyed by <vendor>:<vendor_offer_id> ({id:?}), not {:?}",
                        input.key
                    ))
                    .into());
                }
                entry.vendor_offer(offer)
            }
            topics::OFFER_POLICIES if input.is_tombstone() => entry.policy(None, logged),
            topics::OFFER_POLICIES => {
                let policy: OfferPolicy =
                    input.decode_keyed("offer_id", |p: &OfferPolicy| &p.offer_id)?;
                let at = policy.updated_at;
                entry.policy(Some(policy), at)
            }
            other => {
                return Err(HandleError::Fatal(format!(
                    "not an input of the catalog: {other}"
                )));
            }
        }
        .map_err(|e| Rejection::contract(e.to_string()))?;
        match change {
            Change::Publish(offer) => {
                let at = offer.version.effective_from.0.max(logged.0);
                ctx.emit(&catalog::OFFER_CATALOG, input.key, &offer, at)?;
            }
            Change::Delete => ctx.tombstone(&catalog::OFFER_CATALOG, input.key),
            Change::Unchanged => {}
        }
        if entry.vendor_offer.is_none() && entry.policy.is_none() && entry.versions.is_empty() {
            *state = None;
        }
        Ok(())
    }
}
