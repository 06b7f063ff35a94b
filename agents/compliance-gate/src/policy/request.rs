//! Facts into a Cedar request: the member (principal), the message (resource) and the
//! context, with the member's jurisdiction rows looked up and the values the policies
//! compare computed here (age, local minute, whole months of validity), all checked
//! against the schema.

use std::collections::BTreeMap;
use std::str::FromStr;

use cedar_policy::{Context, Entities, EntityUid, Request, Schema};
use chrono::Timelike;
use serde_json::json;

use crate::facts::{Facts, age_on, whole_months};
use crate::jurisdiction::{self, EmailRegime};

/// A request ready to authorise, and the table rows it read (table name → the row's law).
pub(super) struct Built {
    pub request: Request,
    pub entities: Entities,
    pub table_rules: BTreeMap<String, String>,
}

pub(super) fn build(schema: &Schema, facts: &Facts) -> Result<Built, String> {
    let Facts {
        recipient: r,
        message: m,
        moment,
    } = facts;
    let today = moment.local.date();
    let channel = m.channel.label();
    let window = jurisdiction::sending_window(channel, &r.country, &r.region);
    let (consent_age, _) = jurisdiction::digital_consent_age(&r.country);
    let regime = jurisdiction::email_regime(&r.country);
    let stored = jurisdiction::stored_value_rule(&r.country, &r.region);
    let (sweepstakes_above, sweepstakes_law) =
        jurisdiction::sweepstakes_registration_above(&r.country, &r.region);
    let auto_renewal = jurisdiction::auto_renewal_law(&r.country, &r.region);

    let mut member = json!({
        "country": r.country,
        "region": r.region,
        "eu": jurisdiction::gdpr_applies(&r.country),
        "objects_to_profiling": r.objects_to_profiling,
        "parental_consent_verified": r.parental_consent_verified,
        "consents": {
            "email": r.consents.email.label(),
            "sms": r.consents.sms.label(),
            "push": r.consents.push.label(),
            "in_app": r.consents.in_app.label(),
            "direct_mail": r.consents.direct_mail.label(),
        },
    });
    if let Some(birth) = r.birth_date {
        member["age"] = json!(age_on(birth, today));
    }
    let mut message = json!({
        "channel": channel,
        "offer_type": m.offer_type,
        "categories": m.categories,
        "advertised_minor": m.advertised_minor,
        "unsubstantiated_claims": m.unsubstantiated_claims,
        "ai_drafted": m.ai_drafted,
        "ai_disclosed": m.ai_disclosed,
        "reseller_channel": m.reseller_channel,
        "sweepstakes_registered": m.sweepstakes_registered,
        "changes_auto_renewal": m.changes_auto_renewal,
        "discloses_terms": m.discloses_terms,
        "cancellation_path": m.cancellation_path,
        "prop65_warning": m.prop65_warning,
    });
    if let Some(floor) = m.map_floor_minor {
        message["map_floor_minor"] = json!(floor);
    }
    if let Some(prize) = m.sweepstakes_prize_usd_minor {
        message["sweepstakes_prize_usd_minor"] = json!(prize);
    }
    if let Some(terms) = m.stored_value {
        message["stored_value"] = match terms.expires_on {
            Some(on) => json!({"expires": true, "months_valid": whole_months(today, on)}),
            None => json!({"expires": false}),
        };
    }
    let entities = Entities::from_json_value(
        json!([
            {"uid": {"type": "Gate::Member", "id": "recipient"}, "attrs": member, "parents": []},
            {"uid": {"type": "Gate::Message", "id": "message"}, "attrs": message, "parents": []},
        ]),
        Some(schema),
    )
    .map_err(|e| e.to_string())?;

    let context = json!({
        "local_minute": i64::from(moment.local.hour() * 60 + moment.local.minute()),
        "window_from_minute": window.from_minute,
        "window_until_minute": window.until_minute,
        "digital_consent_age": consent_age,
        "email_soft_opt_in_allowed": regime == EmailRegime::OptInOrSoft,
        "email_opt_out_regime": regime == EmailRegime::OptOut,
        "sent_in_window": moment.sent_in_window,
        "cap_in_window": moment.cap_in_window,
        "state_min_validity_months": stored.min_validity_months.unwrap_or(0),
        "state_allows_expiry": stored.min_validity_months.is_some(),
        "sweepstakes_registration_above_usd_minor": sweepstakes_above,
        "cannabis_legal": jurisdiction::cannabis_legal(&r.country, &r.region),
        "state_auto_renewal_law": auto_renewal.is_some(),
    });
    let action = uid(r#"Gate::Action::"send""#)?;
    let context =
        Context::from_json_value(context, Some((schema, &action))).map_err(|e| e.to_string())?;
    let request = Request::new(
        uid(r#"Gate::Member::"recipient""#)?,
        action,
        uid(r#"Gate::Message::"message""#)?,
        context,
        Some(schema),
    )
    .map_err(|e| e.to_string())?;

    let mut table_rules = BTreeMap::new();
    table_rules.insert("quiet_hours".to_owned(), window.rule.to_owned());
    table_rules.insert("stored_value".to_owned(), stored.statute.to_owned());
    if !sweepstakes_law.is_empty() {
        table_rules.insert("sweepstakes".to_owned(), sweepstakes_law.to_owned());
    }
    if let Some(law) = auto_renewal {
        table_rules.insert("auto_renewal".to_owned(), law.to_owned());
    }
    table_rules.insert(
        "cannabis".to_owned(),
        format!(
            "adult-use cannabis {} in {}-{}",
            if jurisdiction::cannabis_legal(&r.country, &r.region) {
                "legal"
            } else {
                "not legal"
            },
            r.country,
            r.region
        ),
    );
    Ok(Built {
        request,
        entities,
        table_rules,
    })
}

fn uid(text: &str) -> Result<EntityUid, String> {
    EntityUid::from_str(text).map_err(|e| e.to_string())
}
