//! The catalog agent on encoded records: a vendor offer joined with its policy becomes
//! version 1; an edit is version 2 with a changelog and the first superseded; the same
//! document again changes nothing; a version under legal hold can be neither superseded
//! nor deleted; an edit that would overlap the current version, an unknown vendor, a
//! malformed document, negative costs and unknown currencies are refused with the reason.

use apache_avro::AvroSchema;
use loyalty_contracts::{
    CatalogOffer, CostCaps, Eligibility, OfferPolicy, OfferType, Timestamp, VendorOffer, catalog,
    topics,
};
use loyalty_runtime::codec::decode;
use loyalty_runtime::{Agent, HandleError, Harness, Record, Topic};
use save_offer::OfferCatalog;
use save_offer::catalog::history::CatalogEntry;

const T0: i64 = 1_735_689_600_000; // 2025-01-01

struct Rig {
    agent: OfferCatalog,
    harness: Harness<OfferCatalog>,
    state: Option<CatalogEntry>,
}

/// What one record did: the catalog record written (`Some(None)` for a tombstone).
type Written = Option<Option<CatalogOffer>>;

impl Rig {
    fn new() -> Self {
        let agent = OfferCatalog;
        let harness = Harness::new(&agent).expect("harness");
        Rig {
            agent,
            harness,
            state: None,
        }
    }

    fn feed<T: serde::Serialize + apache_avro::AvroSchema + 'static>(
        &mut self,
        topic: &Topic<T>,
        key: &str,
        value: Option<&T>,
        logged: i64,
    ) -> Result<Written, HandleError> {
        let record = match value {
            Some(v) => Record::new(topic, key, v).expect("record"),
            None => Record::tombstone(topic, key),
        }
        .logged_at(logged);
        self.harness.emitted.clear();
        let mut ctx = self.harness.context();
        let mut state = self.state.clone();
        self.agent.handle(&record.input(), &mut state, &mut ctx)?;
        self.state = state;
        Ok(self
            .harness
            .emitted
            .iter()
            .find(|e| e.topic == topics::OFFER_CATALOG)
            .map(|e| {
                e.payload
                    .as_ref()
                    .map(|p| decode(&CatalogOffer::get_schema(), &p[5..]).expect("catalog offer"))
            }))
    }

    fn vendor(&mut self, offer: &VendorOffer) -> Result<Written, HandleError> {
        let key = format!("{}:{}", offer.vendor, offer.vendor_offer_id);
        self.feed(
            &catalog::VENDOR_OFFERS,
            &key,
            Some(offer),
            offer.received_at.0,
        )
    }

    fn policy(&mut self, policy: &OfferPolicy) -> Result<Written, HandleError> {
        self.feed(
            &catalog::OFFER_POLICIES,
            &policy.offer_id.clone(),
            Some(policy),
            policy.updated_at.0,
        )
    }
}

fn stripe(percent: u32, received: i64) -> VendorOffer {
    let document = serde_json::json!({
        "id": "SAVE", "object": "coupon", "name": "Stay with us", "percent_off": percent,
        "amount_off": null, "currency": null, "duration": "once", "valid": true,
        "created": 1_735_000_000, "metadata": {"campaign": "winback"}
    });
    VendorOffer {
        vendor: "stripe".into(),
        vendor_offer_id: "SAVE".into(),
        document_json: document.to_string(),
        received_at: Timestamp(received),
        store_currency: Some("USD".into()),
    }
}

fn policy(hold: bool, updated: i64) -> OfferPolicy {
    OfferPolicy {
        offer_id: "stripe:SAVE".into(),
        eligibility: Some(Eligibility {
            countries: vec!["US".into()],
            ..Eligibility::default()
        }),
        legal_hold: hold,
        channels: Some(vec![loyalty_contracts::Channel::Push]),
        updated_at: Timestamp(updated),
        ..OfferPolicy::default()
    }
}

fn written(w: Written) -> CatalogOffer {
    match w {
        Some(Some(offer)) => offer,
        other => panic!("expected a catalog record, got {other:?}"),
    }
}

#[test]
fn editions_become_versions_with_a_changelog_and_the_policy_is_joined() {
    let mut rig = Rig::new();
    let v1 = written(rig.vendor(&stripe(15, T0)).expect("v1"));
    assert_eq!(
        (v1.offer_id.as_str(), v1.offer_type, v1.value.percent_off_bp),
        ("stripe:SAVE", OfferType::PercentOff, Some(1500))
    );
    assert_eq!(v1.version.version_id, 1);
    assert_eq!(v1.version.changelog, vec!["first version".to_owned()]);
    assert_eq!(v1.version.audit_snapshot_sha256.len(), 64);
    // Fields no normaliser read are kept verbatim.
    let raw: serde_json::Value = serde_json::from_str(&v1.vendor_fields_json).expect("json");
    assert_eq!(raw["metadata"]["campaign"], "winback");
    // The policy adds what the vendor cannot say: a new version, marked the operator's.
    let v2 = written(rig.policy(&policy(false, T0 + 1_000)).expect("v2"));
    assert_eq!(v2.version.version_id, 2);
    assert_eq!(v2.eligibility.countries, vec!["US".to_owned()]);
    assert_eq!(v2.channels, Some(vec![loyalty_contracts::Channel::Push]));
    assert_eq!(
        v2.eligibility.confidence,
        loyalty_contracts::Confidence::Operator
    );
    assert!(
        v2.version
            .changelog
            .iter()
            .any(|c| c.starts_with("eligibility: ")),
        "{:?}",
        v2.version.changelog
    );
    // The vendor's edit: version 3, and the history says who superseded whom.
    let v3 = written(rig.vendor(&stripe(20, T0 + 2_000)).expect("v3"));
    assert_eq!(
        (v3.version.version_id, v3.value.percent_off_bp),
        (3, Some(2000))
    );
    assert_eq!(v3.version.effective_from, Timestamp(T0 + 2_000));
    assert!(
        v3.version
            .changelog
            .iter()
            .any(|c| c.starts_with("value: "))
    );
    let history = &rig.state.as_ref().expect("entry").versions;
    assert_eq!(history[1].superseded_by, Some(3));
    assert_eq!(history[1].effective_to, Some(Timestamp(T0 + 2_000)));
    // The same document again changes nothing.
    assert_eq!(rig.vendor(&stripe(20, T0 + 3_000)).expect("same"), None);
}

#[test]
fn a_policy_at_the_vendor_offers_own_instant_makes_the_next_version() {
    // Both sent at once by a connector: whichever is read first, the catalog ends with
    // both joined.
    let mut rig = Rig::new();
    written(rig.vendor(&stripe(15, T0)).expect("v1"));
    let v2 = written(rig.policy(&policy(false, T0)).expect("v2"));
    assert_eq!(
        (v2.version.version_id, v2.eligibility.countries.len()),
        (2, 1)
    );
}

#[test]
fn an_edit_that_would_overlap_the_current_version_is_refused() {
    let mut rig = Rig::new();
    written(rig.vendor(&stripe(15, T0 + 10_000)).expect("v1"));
    let e = rig.vendor(&stripe(25, T0)).unwrap_err();
    assert!(e.to_string().contains("versions would overlap"), "{e}");
    assert_eq!(rig.state.as_ref().expect("entry").versions.len(), 1);
}

#[test]
fn a_version_under_legal_hold_is_neither_superseded_nor_deleted() {
    let mut rig = Rig::new();
    written(rig.vendor(&stripe(15, T0)).expect("v1"));
    let held = written(rig.policy(&policy(true, T0 + 1_000)).expect("held"));
    assert!(held.version.legal_hold);
    let e = rig.vendor(&stripe(30, T0 + 2_000)).unwrap_err();
    assert!(
        e.to_string()
            .contains("is under legal hold: it cannot be superseded"),
        "{e}"
    );
    let e = rig
        .feed(
            &catalog::VENDOR_OFFERS,
            "stripe:SAVE",
            None::<&VendorOffer>,
            T0 + 3_000,
        )
        .unwrap_err();
    assert!(e.to_string().contains("it cannot be deleted"), "{e}");
    // Lifting the hold is not an edit: same version, hold off; then the edit goes through.
    let lifted = written(rig.policy(&policy(false, T0 + 4_000)).expect("lifted"));
    assert_eq!(
        (lifted.version.version_id, lifted.version.legal_hold),
        (held.version.version_id, false)
    );
    let v = written(rig.vendor(&stripe(30, T0 + 5_000)).expect("edit"));
    assert_eq!(v.version.version_id, held.version.version_id + 1);
    // And a withdrawal tombstones it.
    assert_eq!(
        rig.feed(
            &catalog::VENDOR_OFFERS,
            "stripe:SAVE",
            None::<&VendorOffer>,
            T0 + 6_000
        )
        .expect("gone"),
        Some(None)
    );
}

#[test]
fn bad_vendor_offers_and_policies_are_refused_with_the_reason() {
    let mut rig = Rig::new();
    let mut unknown = stripe(10, T0);
    unknown.vendor = "acme".into();
    let e = rig.vendor(&unknown).unwrap_err();
    assert!(e.to_string().contains("unknown vendor \"acme\""), "{e}");
    let mut broken = stripe(10, T0);
    broken.document_json = "{not json".into();
    assert!(
        rig.vendor(&broken)
            .unwrap_err()
            .to_string()
            .contains("not JSON")
    );
    let mut miskeyed = stripe(10, T0);
    miskeyed.vendor_offer_id = "OTHER".into();
    let e = rig
        .feed(&catalog::VENDOR_OFFERS, "stripe:SAVE", Some(&miskeyed), T0)
        .unwrap_err();
    assert!(
        e.to_string()
            .contains("keyed by <vendor>:<vendor_offer_id>"),
        "{e}"
    );
    written(rig.vendor(&stripe(10, T0)).expect("v1"));
    let negative = OfferPolicy {
        fixed_cost_minor: Some(-5),
        caps: Some(CostCaps {
            fulfilment_cost_minor: Some(-1),
            ..CostCaps::default()
        }),
        ..policy(false, T0 + 1_000)
    };
    let e = rig.policy(&negative).unwrap_err().to_string();
    assert!(
        e.contains("fixed_cost_minor is negative (-5)")
            && e.contains("fulfilment_cost_minor is negative (-1)"),
        "{e}"
    );
    let mut odd_currency = stripe(10, T0 + 2_000);
    odd_currency.document_json = odd_currency.document_json.replace(
        "\"percent_off\":10",
        "\"amount_off\":500,\"percent_off\":null",
    );
    odd_currency.document_json = odd_currency
        .document_json
        .replace("\"currency\":null", "\"currency\":\"xyz\"");
    let e = rig.vendor(&odd_currency).unwrap_err();
    assert!(e.to_string().contains("\"XYZ\""), "{e}");
    // None of it touched the published version.
    assert_eq!(
        rig.state
            .as_ref()
            .and_then(|s| s.current.as_ref())
            .map(|c| c.version.version_id),
        Some(1)
    );
}
