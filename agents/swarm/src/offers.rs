//! The demo's offer library and save flows: `data/offers/sample-catalog.json` (sixteen
//! vendor documents from eight vendors' formats covering the fourteen offer types, each
//! with the operator's policy), FX rates, and synthetic cancellation requests from CDNOW
//! members after the replay.

use std::collections::BTreeMap;

use anyhow::Context as _;
use apache_avro::AvroSchema;
use loyalty_contracts::{
    Classification, ComplianceAttributes, CostCaps, Date, Eligibility, Expiration, FxRate,
    MemberCohort, MemberEvent, MemberLtv, MemberProfile, OfferContent, OfferPolicy, Stacking,
    Timestamp, VendorOffer, topics,
};
use loyalty_runtime::kafka;
use loyalty_runtime::registry::RegistryClient;
use serde_json::Value;

use crate::replay::{encoder, record};

const SAMPLE: &str = include_str!("../../../data/offers/sample-catalog.json");

/// Offers and policies are dated before the CDNOW history starts (1997), so every
/// version is in effect for its members.
fn published_at() -> Timestamp {
    Date::from_ymd(1996, 1, 1).map_or(Timestamp(0), Date::start)
}

/// Fills a policy part given in the sample file over its type's defaults, so the file
/// names only what it sets.
fn with_defaults(part: &str, value: &Value) -> anyhow::Result<Value> {
    let template = match part {
        "classification" => serde_json::to_value(Classification::default())?,
        "content" => serde_json::to_value(OfferContent::default())?,
        "eligibility" => serde_json::to_value(Eligibility::default())?,
        "caps" => serde_json::to_value(CostCaps::default())?,
        "stacking" => serde_json::to_value(Stacking::default())?,
        "expiration" => serde_json::to_value(Expiration::default())?,
        "compliance" => serde_json::to_value(ComplianceAttributes::default())?,
        _ => return Ok(value.clone()),
    };
    let (Value::Object(mut base), Value::Object(set)) = (template, value.clone()) else {
        anyhow::bail!("policy part {part} is not an object");
    };
    base.extend(set);
    Ok(Value::Object(base))
}

/// The sample catalog: each vendor offer with its policy.
pub fn sample_catalog() -> anyhow::Result<Vec<(VendorOffer, OfferPolicy)>> {
    let entries: Vec<Value> = serde_json::from_str(SAMPLE).context("sample-catalog.json")?;
    let at = published_at();
    let mut out = Vec::new();
    for entry in entries {
        let text = |field: &str| {
            entry[field]
                .as_str()
                .map(str::to_owned)
                .with_context(|| format!("sample offer without {field}"))
        };
        let (vendor, id) = (text("vendor")?, text("vendor_offer_id")?);
        let offer_id = format!("{vendor}:{id}");
        let mut policy = serde_json::to_value(OfferPolicy {
            offer_id: offer_id.clone(),
            updated_at: at,
            ..OfferPolicy::default()
        })?;
        if let (Value::Object(base), Some(Value::Object(set))) = (&mut policy, entry.get("policy"))
        {
            for (part, value) in set {
                base.insert(part.clone(), with_defaults(part, value)?);
            }
        }
        let policy: OfferPolicy =
            serde_json::from_value(policy).with_context(|| format!("policy of {offer_id}"))?;
        let offer = VendorOffer {
            vendor,
            vendor_offer_id: id,
            document_json: entry["document"].to_string(),
            received_at: at,
            store_currency: entry["store_currency"].as_str().map(str::to_owned),
        };
        out.push((offer, policy));
    }
    Ok(out)
}

/// Publish the sample catalog's vendor offers and policies, and FX rates against USD.
pub async fn publish_catalog(bootstrap_servers: &str, registry_url: &str) -> anyhow::Result<usize> {
    let registry = RegistryClient::new(registry_url)?;
    let producer = kafka::producer(bootstrap_servers, &BTreeMap::new())?;
    let offers = encoder(&registry, topics::VENDOR_OFFERS, VendorOffer::get_schema()).await?;
    let policies = encoder(&registry, topics::OFFER_POLICIES, OfferPolicy::get_schema()).await?;
    let rates = encoder(&registry, topics::FX_RATES, FxRate::get_schema()).await?;
    let catalog = sample_catalog()?;
    let mut records = Vec::new();
    for (offer, policy) in &catalog {
        records.push(record(
            &policies,
            topics::OFFER_POLICIES,
            &policy.offer_id,
            policy,
            "offer policy",
        )?);
        let key = format!("{}:{}", offer.vendor, offer.vendor_offer_id);
        records.push(record(
            &offers,
            topics::VENDOR_OFFERS,
            &key,
            offer,
            "vendor offer",
        )?);
    }
    for (currency, rate) in [
        ("USD", 1.0),
        ("EUR", 0.92),
        ("GBP", 0.79),
        ("CAD", 1.36),
        ("JPY", 151.0),
    ] {
        let fx = FxRate {
            currency: currency.into(),
            base: "USD".into(),
            rate,
            as_of: published_at(),
        };
        records.push(record(&rates, topics::FX_RATES, currency, &fx, "fx rate")?);
    }
    kafka::produce_all(&producer, &records).await?;
    Ok(catalog.len())
}

/// Publish what save-offer joins for each of `members`: the test kit's profile (US,
/// USD), cohort (at risk) and value (typical order 50.00, incremental margin 40.00 for
/// every intervention type). For benchmarks and tests that need members without a
/// CDNOW replay.
pub async fn publish_members(
    bootstrap_servers: &str,
    registry_url: &str,
    members: &[String],
) -> anyhow::Result<()> {
    use save_offer::testkit;
    let registry = RegistryClient::new(registry_url)?;
    let producer = kafka::producer(bootstrap_servers, &BTreeMap::new())?;
    let profiles = encoder(
        &registry,
        topics::MEMBER_PROFILES,
        MemberProfile::get_schema(),
    )
    .await?;
    let cohorts = encoder(&registry, topics::COHORTS, MemberCohort::get_schema()).await?;
    let values = encoder(&registry, topics::MEMBER_LTV, MemberLtv::get_schema()).await?;
    let mut joined = Vec::with_capacity(members.len() * 3);
    for m in members {
        joined.push(record(
            &profiles,
            topics::MEMBER_PROFILES,
            m,
            &testkit::profile(m),
            "profile",
        )?);
        joined.push(record(
            &cohorts,
            topics::COHORTS,
            m,
            &testkit::cohort(m),
            "cohort",
        )?);
        let ltv = testkit::member_ltv(m, 5_000.0, 30_000, 90_000, 4_000);
        joined.push(record(&values, topics::MEMBER_LTV, m, &ltv, "member ltv")?);
    }
    kafka::produce_all(&producer, &joined).await?;
    Ok(())
}

/// Why the demo's cancelling members say they leave, as they would type it.
const REASONS: [&str; 10] = [
    "It's too expensive for what I get",
    "I don't use it enough anymore",
    "I have too many CDs piling up",
    "The last two orders arrived late",
    "Found a cheaper service elsewhere",
    "Lost my job, need to cut costs",
    "Moving abroad next month",
    "Just want a break for now",
    "Support never answered my email",
    "",
];

/// A cancellation request from every `every`-th member, the day after `after`.
pub async fn request_cancellations(
    bootstrap_servers: &str,
    registry_url: &str,
    members: &[String],
    every: usize,
    after: Timestamp,
) -> anyhow::Result<usize> {
    let mut events = Vec::new();
    for (i, member) in members
        .iter()
        .enumerate()
        .filter(|(i, _)| i % every.max(1) == 0)
    {
        let reason = REASONS[(i / every.max(1)) % REASONS.len()];
        events.push(MemberEvent {
            event_id: format!("demo-cancel-{member}"),
            member_id: member.clone(),
            brand_id: crate::cdnow::BRAND.into(),
            occurred_at: Timestamp(after.0 + 86_400_000),
            source: "web".into(),
            source_member_id: None,
            payload: loyalty_contracts::Payload::CancellationRequested(
                loyalty_contracts::CancellationRequested {
                    subscription_id: format!("cdnow-club-{member}"),
                    reason_code: None,
                    reason_text: (!reason.is_empty()).then(|| reason.to_owned()),
                    channel: "web".into(),
                },
            ),
        });
    }
    publish_member_events(
        bootstrap_servers,
        registry_url,
        &events,
        "cancellation request",
    )
    .await
}

/// Encode `events` for member-events, keyed by member, and produce them all; how many.
/// `what` names the events in an encoding error.
pub async fn publish_member_events(
    bootstrap_servers: &str,
    registry_url: &str,
    events: &[MemberEvent],
    what: &'static str,
) -> anyhow::Result<usize> {
    let registry = RegistryClient::new(registry_url)?;
    let producer = kafka::producer(bootstrap_servers, &BTreeMap::new())?;
    let encode = encoder(&registry, topics::MEMBER_EVENTS, MemberEvent::get_schema()).await?;
    let records = events
        .iter()
        .map(|e| record(&encode, topics::MEMBER_EVENTS, &e.member_id, e, what))
        .collect::<Result<Vec<_>, _>>()?;
    kafka::produce_all(&producer, &records).await?;
    Ok(records.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use loyalty_contracts::OfferType;
    use std::collections::BTreeSet;

    /// The demo's catalog normalises completely, covers every offer type, and comes from
    /// at least five vendors' formats.
    #[test]
    fn the_sample_catalog_covers_all_fourteen_types_from_five_vendors() {
        let catalog = sample_catalog().unwrap();
        let mut types = BTreeSet::new();
        let mut vendors = BTreeSet::new();
        for (offer, policy) in &catalog {
            let composed = save_offer::catalog::compose::compose(offer, Some(policy))
                .unwrap_or_else(|e| panic!("{}: {e}", policy.offer_id));
            types.insert(composed.offer_type);
            vendors.insert(composed.vendor.clone());
        }
        assert_eq!(types.len(), OfferType::ALL.len(), "{types:?}");
        assert!(vendors.len() >= 5, "{vendors:?}");
    }
}
