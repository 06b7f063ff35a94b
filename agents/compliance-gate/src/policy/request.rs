//! Facts into a Cedar request: the member (principal), the message (resource) and the
//! context, with the member's jurisdiction rows looked up and the values the policies
//! compare computed here (age, local minute, whole months of validity), all checked
//! against the schema.

use std::str::FromStr;

use cedar_policy::{Context, Entities, EntityUid, Request, Schema};
use chrono::Timelike;
use serde_json::json;

use crate::facts::{Facts, age_on, whole_months};
use crate::jurisdiction::{self, EmailRegime, StoredValueRule};

/// A request ready to authorise, and the jurisdiction rows it read.
pub(super) struct Built {
    pub request: Request,
    pub entities: Entities,
    pub rows: Rows,
}

/// The member's rows of the jurisdiction tables, kept to cite the law of the row a
/// `@table` policy read; cited only for the policies that decided.
pub(super) struct Rows {
    consent_age_law: &'static str,
    quiet_hours: &'static str,
    stored_value: StoredValueRule,
    sweepstakes: &'static str,
    auto_renewal: Option<&'static str>,
    cannabis_legal: bool,
    place: String,
}

impl Rows {
    /// The law of the row `table` read, as the decision cites it.
    pub fn cite(&self, table: &str) -> Option<String> {
        let law = match table {
            "digital_consent_age" => self.consent_age_law,
            "quiet_hours" => self.quiet_hours,
            "sweepstakes" => self.sweepstakes,
            "auto_renewal" => self.auto_renewal?,
            "stored_value" => {
                let statute = self.stored_value.statute;
                // The escheat period, for the operator's unclaimed-property reporting.
                return Some(match self.stored_value.escheat_dormancy_years {
                    Some(years) => {
                        format!("{statute}; unredeemed value escheats after {years} years")
                    }
                    None => statute.to_owned(),
                });
            }
            "cannabis" => {
                let legal = if self.cannabis_legal {
                    "legal"
                } else {
                    "not legal"
                };
                return Some(format!("adult-use cannabis {legal} in {}", self.place));
            }
            _ => return None,
        };
        (!law.is_empty()).then(|| law.to_owned())
    }
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
    let (consent_age, consent_age_law) = jurisdiction::digital_consent_age(&r.country);
    let regime = jurisdiction::email_regime(&r.country);
    let stored = jurisdiction::stored_value_rule(&r.country, &r.region);
    let (sweepstakes_above, sweepstakes_law) =
        jurisdiction::sweepstakes_registration_above(&r.country, &r.region);
    let auto_renewal = jurisdiction::auto_renewal_law(&r.country, &r.region);
    let cannabis_legal = jurisdiction::cannabis_legal(&r.country, &r.region);

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
        "cannabis_legal": cannabis_legal,
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

    Ok(Built {
        request,
        entities,
        rows: Rows {
            consent_age_law,
            quiet_hours: window.rule,
            stored_value: stored,
            sweepstakes: sweepstakes_law,
            auto_renewal,
            cannabis_legal,
            place: format!("{}-{}", r.country, r.region),
        },
    })
}

fn uid(text: &str) -> Result<EntityUid, String> {
    EntityUid::from_str(text).map_err(|e| e.to_string())
}
