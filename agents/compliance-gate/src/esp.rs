//! A trigger as each vendor's API takes it: the Klaviyo events API, Braze's
//! API-triggered canvas endpoint and Attentive's custom events. Operators wire the
//! trigger topics to their vendor through an HTTP sink or a relay; these functions are
//! the field mapping (`README.md#compliance-gate-the-decision` documents it), tested
//! against the fields each vendor's public API reference requires.
//!
//! The idempotency key is what makes at-least-once delivery safe downstream: Klaviyo
//! records the first event per profile, metric and `unique_id`; Attentive deduplicates on
//! `externalEventId`. Braze's canvas endpoint has no such key, so the key travels in the
//! canvas entry properties for the canvas to filter on.

use chrono::{DateTime, SecondsFormat};
use loyalty_contracts::{Channel, Timestamp, Trigger};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

/// The key of one proposal's send on one channel: the same on every replay, retry and
/// deferred release, different for another proposal or channel. 128 bits of SHA-256, hex.
pub fn idempotency_key(proposal_id: &str, channel: Channel) -> String {
    let digest = Sha256::digest(format!(
        "loyalty-swarm trigger v1|{proposal_id}|{channel:?}"
    ));
    digest[..16].iter().map(|b| format!("{b:02x}")).collect()
}

fn rfc3339(at: Timestamp) -> String {
    DateTime::from_timestamp_millis(at.0)
        .map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true))
        .unwrap_or_default()
}

/// The offer's fields every vendor gets as event properties.
fn properties(t: &Trigger) -> Value {
    let c = &t.content;
    json!({
        "offer_id": t.offer_id,
        "offer_version_id": t.offer_version_id,
        "proposal_id": t.proposal_id,
        "title": c.title,
        "body": c.body,
        "value_minor": c.value_minor,
        "currency": c.currency,
        "language": c.language,
        "code": c.code,
        "asset_url": c.asset_url,
        "disclosure": c.disclosure,
        "cancellation_rule": c.cancellation_rule,
        "template_id": t.template_id,
        "send_after": rfc3339(t.send_after),
        "idempotency_key": t.idempotency_key,
    })
}

/// `POST https://a.klaviyo.com/api/events` (JSON:API; headers `revision`, `Authorization:
/// Klaviyo-API-Key …`). The metric names the flow the operator triggers.
pub fn klaviyo_event(t: &Trigger, metric: &str) -> Value {
    json!({
        "data": {
            "type": "event",
            "attributes": {
                "properties": properties(t),
                "time": rfc3339(t.decided_at),
                "value": t.content.value_minor as f64 / 100.0,
                "value_currency": t.content.currency,
                "unique_id": t.idempotency_key,
                "metric": {"data": {"type": "metric", "attributes": {"name": metric}}},
                "profile": {"data": {"type": "profile", "attributes": {
                    "external_id": t.member_external_id,
                }}},
            }
        }
    })
}

/// `POST {rest endpoint}/canvas/trigger/send` (`Authorization: Bearer …`).
pub fn braze_canvas_trigger(t: &Trigger, canvas_id: &str) -> Value {
    json!({
        "canvas_id": canvas_id,
        "recipients": [{
            "external_user_id": t.member_external_id,
            "canvas_entry_properties": properties(t),
        }],
    })
}

/// `POST https://api.attentivemobile.com/v1/events/custom` (`Authorization: Bearer …`).
/// The external id must be linked to the subscriber through Attentive's identity API.
pub fn attentive_custom_event(t: &Trigger, event_type: &str) -> Value {
    json!({
        "type": event_type,
        "properties": properties(t),
        "externalEventId": t.idempotency_key,
        "occurredAt": rfc3339(t.decided_at),
        "user": {"externalIdentifiers": {"clientUserId": t.member_external_id}},
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use loyalty_contracts::LocalisedContent;

    fn trigger() -> Trigger {
        Trigger {
            idempotency_key: idempotency_key("cancellation:c-1", Channel::Email),
            member_external_id: "m-42".into(),
            channel: Channel::Email,
            template_id: Some("winback".into()),
            send_after: Timestamp(1_780_000_000_000),
            proposal_id: "cancellation:c-1".into(),
            offer_id: "stripe:SAVE10".into(),
            offer_version_id: 2,
            content: LocalisedContent {
                country: "US".into(),
                language: "en".into(),
                currency: "USD".into(),
                title: "10% off your next box".into(),
                body: "Stay with us".into(),
                value_minor: 999,
                disclosure: Some("Applies once.".into()),
                cancellation_rule: None,
                tax_inclusive: false,
                tax_rate_bp: None,
                return_policy: None,
                template_id: Some("winback".into()),
                asset_url: None,
                code: Some("SAVE10".into()),
            },
            decision_id: "d-1".into(),
            policy_set_hash: "ab".repeat(32),
            decided_at: Timestamp(1_779_999_000_000),
        }
    }

    /// Every JSON pointer must hold a non-empty value.
    #[track_caller]
    fn has(body: &Value, pointers: &[&str], reference: &str) {
        for p in pointers {
            let v = body
                .pointer(p)
                .unwrap_or_else(|| panic!("{p} missing ({reference}): {body}"));
            assert!(
                !(v.is_null()
                    || v.as_str() == Some("")
                    || v.as_object().is_some_and(|o| o.is_empty())),
                "{p} is empty ({reference}): {body}"
            );
        }
    }

    #[test]
    fn the_key_is_the_same_for_a_send_and_differs_between_sends() {
        let key = idempotency_key("cancellation:c-1", Channel::Email);
        assert_eq!(key, idempotency_key("cancellation:c-1", Channel::Email));
        assert_eq!(key.len(), 32);
        assert_ne!(key, idempotency_key("cancellation:c-1", Channel::Sms));
        assert_ne!(key, idempotency_key("cancellation:c-2", Channel::Email));
    }

    #[test]
    fn klaviyo_gets_what_its_create_event_reference_requires() {
        let t = trigger();
        let body = klaviyo_event(&t, "Loyalty save offer");
        // https://developers.klaviyo.com/en/reference/create_event: data.type "event";
        // attributes.properties, .metric (data.type "metric", attributes.name) and
        // .profile (data.type "profile", at least one identifier) are required.
        has(
            &body,
            &[
                "/data/type",
                "/data/attributes/metric/data/type",
                "/data/attributes/metric/data/attributes/name",
                "/data/attributes/profile/data/type",
                "/data/attributes/profile/data/attributes/external_id",
                "/data/attributes/unique_id",
                "/data/attributes/time",
            ],
            "Klaviyo create_event",
        );
        assert!(
            body.pointer("/data/attributes/properties")
                .is_some_and(Value::is_object)
        );
        assert_eq!(body["data"]["type"], "event");
        assert_eq!(
            body["data"]["attributes"]["metric"]["data"]["type"],
            "metric"
        );
        assert_eq!(
            body["data"]["attributes"]["profile"]["data"]["type"],
            "profile"
        );
        assert_eq!(
            body["data"]["attributes"]["unique_id"],
            t.idempotency_key.as_str()
        );
        assert_eq!(body["data"]["attributes"]["time"], "2026-05-28T20:10:00Z");
        assert_eq!(body["data"]["attributes"]["value"], 9.99);
    }

    #[test]
    fn braze_gets_what_its_canvas_trigger_reference_requires() {
        let t = trigger();
        let body = braze_canvas_trigger(&t, "canvas-uuid");
        // https://www.braze.com/docs/api/endpoints/messaging/send_messages/post_send_triggered_canvases/:
        // canvas_id is required; each recipient needs exactly one of external_user_id or
        // user_alias.
        has(
            &body,
            &[
                "/canvas_id",
                "/recipients/0/external_user_id",
                "/recipients/0/canvas_entry_properties/idempotency_key",
            ],
            "Braze canvas trigger",
        );
        let recipient = body["recipients"][0].as_object().unwrap();
        assert!(!recipient.contains_key("user_alias"));
        assert_eq!(body["recipients"].as_array().map(Vec::len), Some(1));
    }

    #[test]
    fn attentive_gets_what_its_custom_events_reference_requires() {
        let t = trigger();
        let body = attentive_custom_event(&t, "Loyalty save offer");
        // https://docs.attentivemobile.com/openapi/reference/tag/Custom-Events/: type and
        // user (phone, email or externalIdentifiers) are required; externalEventId
        // deduplicates.
        has(
            &body,
            &[
                "/type",
                "/user/externalIdentifiers/clientUserId",
                "/externalEventId",
                "/occurredAt",
            ],
            "Attentive custom events",
        );
        assert_eq!(body["externalEventId"], t.idempotency_key.as_str());
        // The type may not contain " ' ( ) { } [ ] \ | ,
        let kind = body["type"].as_str().unwrap();
        assert!(!kind.contains(['"', '\'', '(', ')', '{', '}', '[', ']', '\\', '|', ',']));
        // Property keys may not contain " { } [ ] \ |
        for key in body["properties"].as_object().unwrap().keys() {
            assert!(!key.contains(['"', '{', '}', '[', ']', '\\', '|']), "{key}");
        }
    }

    /// The shipped Kafka Connect example (Lenses' HTTP sink, which fills `{{value.…}}`
    /// from the record) renders a body Klaviyo accepts and agrees with the mapping above.
    #[test]
    fn the_shipped_connect_template_renders_the_klaviyo_body_of_the_mapping() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../deploy/connect/klaviyo-email-triggers.json"
        );
        let connector: Value =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let config = &connector["config"];
        assert_eq!(config["topics"], "loyalty.triggers.email.v1");
        assert_eq!(
            config["connect.http.endpoint"],
            "https://a.klaviyo.com/api/events"
        );
        let headers = config["connect.http.request.headers"].as_str().unwrap();
        assert!(headers.contains("revision:") && headers.contains("Klaviyo-API-Key"));
        let t = trigger();
        let record = serde_json::to_value(&t).unwrap();
        let mut body = config["connect.http.request.content"]
            .as_str()
            .unwrap()
            .to_owned();
        while let Some(start) = body.find("{{value.") {
            let end = body[start..].find("}}").unwrap() + start;
            let path = body[start + "{{value.".len()..end].replace('.', "/");
            let field = record.pointer(&format!("/{path}")).unwrap_or_else(|| {
                panic!("the template names {path}, which a trigger does not have")
            });
            let text = match field {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            body.replace_range(start..end + 2, &text);
        }
        let rendered: Value = serde_json::from_str(&body).unwrap();
        let mapped = klaviyo_event(&t, "Loyalty save offer");
        for pointer in [
            "/data/type",
            "/data/attributes/unique_id",
            "/data/attributes/metric/data/type",
            "/data/attributes/metric/data/attributes/name",
            "/data/attributes/profile/data/type",
            "/data/attributes/profile/data/attributes/external_id",
            "/data/attributes/properties/offer_id",
            "/data/attributes/properties/value_minor",
            "/data/attributes/properties/idempotency_key",
        ] {
            assert_eq!(
                rendered.pointer(pointer),
                mapped.pointer(pointer),
                "{pointer}"
            );
        }
    }
}
