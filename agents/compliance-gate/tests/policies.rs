//! The shipped policies, family by family: each table varies one fact of an otherwise
//! approvable send and names the outcome and the deciding policies, edges included
//! (12 vs 13 years, the Art. 8 age per country, 20:59 vs 21:00 local time across a
//! daylight-saving change, 4 years 364 days vs 5 years of validity, $4,999 vs $5,001).

use chrono::{NaiveDate, NaiveDateTime};
use compliance_gate::{
    Channel, ConsentBasis, Consents, Effect, Facts, GatePolicies, Message, Moment, Outcome,
    Recipient, Verdict, clock, facts::StoredValueTerms,
};

fn policies() -> GatePolicies {
    GatePolicies::shipped().expect("the shipped policies validate")
}

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

fn noon(day: NaiveDate) -> NaiveDateTime {
    day.and_hms_opt(12, 0, 0).unwrap()
}

/// An adult New Yorker who consented to everything, an email with a plain discount, at
/// noon: approved.
fn facts() -> Facts {
    Facts {
        recipient: Recipient {
            birth_date: Some(date(1980, 5, 1)),
            country: "US".into(),
            region: "NY".into(),
            objects_to_profiling: false,
            parental_consent_verified: false,
            consents: Consents {
                email: ConsentBasis::OptIn,
                sms: ConsentBasis::ExpressWritten,
                push: ConsentBasis::OptIn,
                in_app: ConsentBasis::OptIn,
                direct_mail: ConsentBasis::OptIn,
            },
        },
        message: Message {
            channel: Channel::Email,
            offer_type: "percent_off".into(),
            categories: Vec::new(),
            advertised_minor: 1_000,
            map_floor_minor: None,
            unsubstantiated_claims: 0,
            ai_drafted: false,
            ai_disclosed: false,
            reseller_channel: false,
            stored_value: None,
            sweepstakes_prize_usd_minor: None,
            sweepstakes_registered: false,
            changes_auto_renewal: false,
            discloses_terms: true,
            cancellation_path: true,
            prop65_warning: false,
        },
        moment: Moment {
            local: noon(date(2026, 6, 1)),
            sent_in_window: 0,
            cap_in_window: 3,
        },
    }
}

#[track_caller]
fn assert_decision(verdict: &Verdict, outcome: Outcome, deciding: &[&str], case: &str) {
    assert!(verdict.errors.is_empty(), "{case}: {:?}", verdict.errors);
    assert_eq!(verdict.outcome, outcome, "{case}: {verdict:?}");
    assert_eq!(verdict.policy_ids(), deciding, "{case}: {verdict:?}");
}

#[test]
fn the_shipped_set_validates_and_every_policy_cites_a_statute() {
    let p = policies();
    assert!(p.policies().len() >= 30, "{}", p.policies().len());
    for (id, meta) in p.policies() {
        assert!(!meta.statute.is_empty(), "{id}");
    }
    assert_eq!(p.hash().len(), 64);
    assert_eq!(
        p.hash(),
        policies().hash(),
        "the hash is a function of the set"
    );
    assert_decision(
        &p.decide(&facts()),
        Outcome::Approved,
        &["email-opt-in", "email-opt-out-regime"],
        "baseline",
    );
}

#[test]
fn an_invalid_set_lists_every_problem() {
    let broken = [
        (
            "a.cedar",
            r#"@id("no-statute") @effect("deny") forbid (principal, action, resource) when { resource.nope };"#,
        ),
        (
            "b.cedar",
            r#"@statute("x") @effect("deny") forbid (principal, action, resource);"#,
        ),
        (
            "c.cedar",
            r#"@id("wrong-effect") @statute("x") @effect("maybe") forbid (principal, action, resource);"#,
        ),
        ("d.cedar", "permit (principal, action, resource"),
    ];
    let errors = GatePolicies::from_sources(compliance_gate::policy::SHIPPED_SCHEMA, &broken)
        .expect_err("invalid")
        .0;
    let all = errors.join("\n");
    for expected in [
        "a.cedar: no-statute has no @statute",
        "b.cedar: a policy has no @id",
        "c.cedar: wrong-effect has @effect(\"maybe\")",
        "d.cedar:",
        "no-statute:",
    ] {
        assert!(all.contains(expected), "{expected:?} missing from:\n{all}");
    }
    // The validator's complaint names the attribute that does not exist.
    assert!(all.contains("nope"), "{all}");
}

#[test]
fn channel_consent() {
    let p = policies();
    let with = |channel, consent: fn(&mut Consents), country: &str| {
        let mut f = facts();
        f.message.channel = channel;
        f.recipient.country = country.into();
        f.recipient.region = if country == "US" {
            "NY".into()
        } else {
            String::new()
        };
        consent(&mut f.recipient.consents);
        p.decide(&f)
    };
    use Channel::*;
    use ConsentBasis::*;
    let cases: Vec<(&str, Verdict, Outcome, &[&str])> = vec![
        (
            "sms with express written consent",
            with(Sms, |_| {}, "US"),
            Outcome::Approved,
            &["sms-express-written-consent"],
        ),
        (
            "sms on a mere opt-in",
            with(Sms, |c| c.sms = OptIn, "US"),
            Outcome::Denied,
            &["sms-without-express-written-consent"],
        ),
        (
            "email under CAN-SPAM, no opt-in recorded",
            with(Email, |c| c.email = Unknown, "US"),
            Outcome::Approved,
            &["email-opt-out-regime"],
        ),
        (
            "email under CAN-SPAM, opted out",
            with(Email, |c| c.email = OptedOut, "US"),
            Outcome::Denied,
            &["email-without-consent"],
        ),
        (
            "email in Germany on a soft opt-in",
            with(Email, |c| c.email = SoftOptIn, "DE"),
            Outcome::Approved,
            &["email-soft-opt-in"],
        ),
        (
            "email in Germany without consent",
            with(Email, |c| c.email = Unknown, "DE"),
            Outcome::Denied,
            &["email-without-consent"],
        ),
        (
            "email in Brazil on a soft opt-in (not allowed there)",
            with(Email, |c| c.email = SoftOptIn, "BR"),
            Outcome::Denied,
            &["email-without-consent"],
        ),
        (
            "push without permission",
            with(Push, |c| c.push = Unknown, "US"),
            Outcome::Denied,
            &["push-without-opt-in"],
        ),
        (
            "in-app, nothing recorded",
            with(InApp, |c| c.in_app = Unknown, "US"),
            Outcome::Approved,
            &["in-app-not-opted-out"],
        ),
        (
            "in-app, opted out",
            with(InApp, |c| c.in_app = OptedOut, "DE"),
            Outcome::Denied,
            &["in-app-opted-out"],
        ),
        (
            "direct mail, opted out",
            with(DirectMail, |c| c.direct_mail = OptedOut, "US"),
            Outcome::Denied,
            &["direct-mail-opted-out"],
        ),
    ];
    for (case, verdict, outcome, deciding) in cases {
        assert_decision(&verdict, outcome, deciding, case);
    }
    let mut f = facts();
    f.recipient.objects_to_profiling = true;
    assert_decision(
        &p.decide(&f),
        Outcome::Denied,
        &["objection-to-profiling"],
        "GDPR Art. 21 objection",
    );
}

#[test]
fn children_coppa_and_the_gdpr_art_8_age_per_country() {
    let p = policies();
    let send_on = date(2026, 6, 1);
    let aged = |years: i32, days_short: i64, country: &str, parental: bool| {
        let mut f = facts();
        f.recipient.birth_date = Some(
            date(2026 - years, 6, 1)
                .checked_add_signed(chrono::Duration::days(days_short))
                .unwrap(),
        );
        f.recipient.country = country.into();
        f.recipient.region = if country == "US" {
            "NY".into()
        } else {
            String::new()
        };
        f.recipient.parental_consent_verified = parental;
        f.moment.local = noon(send_on);
        p.decide(&f)
    };
    // 13 today vs 13 tomorrow (still 12).
    assert_decision(
        &aged(13, 0, "US", false),
        Outcome::Approved,
        &["email-opt-in", "email-opt-out-regime"],
        "13 today",
    );
    assert_decision(
        &aged(13, 1, "US", false),
        Outcome::Denied,
        &["coppa-under-13"],
        "12, 13 tomorrow",
    );
    assert_eq!(
        aged(13, 1, "US", true).outcome,
        Outcome::Approved,
        "verified parental consent"
    );
    // Art. 8: 15 is old enough in France (15), not in Germany (16); 13 in Denmark.
    assert_eq!(aged(15, 0, "FR", false).outcome, Outcome::Approved);
    assert_decision(
        &aged(15, 0, "DE", false),
        Outcome::Denied,
        &["gdpr-art8-digital-consent-age"],
        "15 in Germany",
    );
    assert_eq!(aged(16, 0, "DE", false).outcome, Outcome::Approved);
    assert_decision(
        &aged(15, 1, "FR", false),
        Outcome::Denied,
        &["gdpr-art8-digital-consent-age"],
        "14 in France",
    );
    assert_eq!(aged(13, 0, "DK", false).outcome, Outcome::Approved);
    // An unknown age is not taken for a child's.
    let mut f = facts();
    f.recipient.birth_date = None;
    assert_eq!(p.decide(&f).outcome, Outcome::Approved);
}

#[test]
fn quiet_hours_defer_at_21_00_local_across_daylight_saving() {
    let p = policies();
    let ny: chrono_tz::Tz = "America/New_York".parse().unwrap();
    let at = |utc: &str, region: &str| {
        let ms = chrono::DateTime::parse_from_rfc3339(utc)
            .unwrap()
            .timestamp_millis();
        let mut f = facts();
        f.message.channel = Channel::Sms;
        f.recipient.region = region.into();
        f.moment.local = clock::local(ms, ny).unwrap();
        p.decide(&f)
    };
    // 8 March 2026 is the first day of EDT: 00:59 UTC is 20:59 local, 01:00 UTC 21:00.
    assert_decision(
        &at("2026-03-09T00:59:00Z", "NY"),
        Outcome::Approved,
        &["sms-express-written-consent"],
        "20:59 EDT",
    );
    assert_decision(
        &at("2026-03-09T01:00:00Z", "NY"),
        Outcome::Deferred,
        &["jurisdiction-quiet-hours", "tcpa-quiet-hours"],
        "21:00 EDT",
    );
    // The day before, on EST, the same UTC minute is 19:59: allowed.
    assert_eq!(
        at("2026-03-08T00:59:00Z", "NY").outcome,
        Outcome::Approved,
        "19:59 EST"
    );
    // Florida ends at 20:00.
    let florida = at("2026-03-09T00:30:00Z", "FL");
    assert_decision(
        &florida,
        Outcome::Deferred,
        &["jurisdiction-quiet-hours"],
        "20:30 in Florida",
    );
    assert_eq!(
        florida.deciding[0].table_rule.as_deref(),
        Some("Fla. Stat. 501.616(6)(a)")
    );
    // 07:59 is too early, 08:00 fine.
    assert_eq!(at("2026-03-09T11:59:00Z", "NY").outcome, Outcome::Deferred);
    assert_eq!(at("2026-03-09T12:00:00Z", "NY").outcome, Outcome::Approved);
    // Email has no quiet hours.
    let mut f = facts();
    f.moment.local = NaiveDate::from_ymd_opt(2026, 3, 8)
        .unwrap()
        .and_hms_opt(23, 30, 0)
        .unwrap();
    assert_eq!(p.decide(&f).outcome, Outcome::Approved);
}

#[test]
fn frequency_caps_defer() {
    let p = policies();
    let mut f = facts();
    f.moment.sent_in_window = 2;
    assert_eq!(p.decide(&f).outcome, Outcome::Approved);
    f.moment.sent_in_window = 3;
    assert_decision(
        &p.decide(&f),
        Outcome::Deferred,
        &["frequency-cap"],
        "cap reached",
    );
}

#[test]
fn gdpr_art_22_sends_significant_effects_to_review() {
    let p = policies();
    let mut f = facts();
    f.recipient.country = "DE".into();
    f.recipient.region = String::new();
    f.message.offer_type = "downgrade_tier".into();
    let verdict = p.decide(&f);
    assert_decision(
        &verdict,
        Outcome::NeedsReview,
        &["gdpr-art22-significant-effect"],
        "downgrade in Germany",
    );
    assert_eq!(verdict.deciding[0].effect, Effect::Review);
    // Outside the EU, Art. 22 does not apply.
    f.recipient.country = "US".into();
    f.recipient.region = "NY".into();
    assert_eq!(p.decide(&f).outcome, Outcome::Approved);
    // A denial outranks review: the same offer to a German who objected to profiling.
    f.recipient.country = "DE".into();
    f.recipient.region = String::new();
    f.recipient.objects_to_profiling = true;
    assert_decision(
        &p.decide(&f),
        Outcome::Denied,
        &["objection-to-profiling", "gdpr-art22-significant-effect"],
        "deny and review",
    );
}

#[test]
fn stored_value_five_years_federally_and_the_states_rules() {
    let p = policies();
    let send = date(2026, 6, 1);
    let card = |region: &str, expires_on: Option<NaiveDate>| {
        let mut f = facts();
        f.recipient.region = region.into();
        f.message.offer_type = "gift_bundle".into();
        f.message.stored_value = Some(StoredValueTerms { expires_on });
        f.moment.local = noon(send);
        p.decide(&f)
    };
    let five_years = Some(date(2031, 6, 1));
    let a_day_short = Some(date(2031, 5, 31));
    assert_eq!(card("TX", five_years).outcome, Outcome::Approved);
    assert_decision(
        &card("TX", a_day_short),
        Outcome::Denied,
        &["card-act-five-year-minimum", "state-stored-value-expiry"],
        "4 years 364 days in Texas",
    );
    // New York: nine years since 2022.
    assert_decision(
        &card("NY", five_years),
        Outcome::Denied,
        &["state-stored-value-expiry"],
        "5 years in New York",
    );
    assert_eq!(
        card("NY", Some(date(2035, 6, 1))).outcome,
        Outcome::Approved
    );
    // California: no expiry at all; one that never expires is fine.
    let california = card("CA", Some(date(2040, 1, 1)));
    assert_decision(
        &california,
        Outcome::Denied,
        &["state-stored-value-expiry"],
        "any expiry in California",
    );
    assert_eq!(
        california.deciding[0].table_rule.as_deref(),
        Some("Cal. Civ. Code 1749.5(a); Code Civ. Proc. 1520.5")
    );
    assert_eq!(card("CA", None).outcome, Outcome::Approved);
    // Massachusetts: seven years.
    assert_eq!(card("MA", five_years).outcome, Outcome::Denied);
}

#[test]
fn sweepstakes_registration_thresholds_and_mailed_disclosures() {
    let p = policies();
    let entry = |region: &str, prize_usd: i64, registered: bool| {
        let mut f = facts();
        f.recipient.region = region.into();
        f.message.sweepstakes_prize_usd_minor = Some(prize_usd * 100);
        f.message.sweepstakes_registered = registered;
        p.decide(&f)
    };
    assert_eq!(entry("NY", 4_999, false).outcome, Outcome::Approved);
    assert_decision(
        &entry("NY", 5_001, false),
        Outcome::NeedsReview,
        &["sweepstakes-registration"],
        "$5,001 in New York",
    );
    assert_eq!(entry("NY", 5_001, true).outcome, Outcome::Approved);
    assert_eq!(entry("FL", 5_001, false).outcome, Outcome::NeedsReview);
    assert_eq!(entry("RI", 501, false).outcome, Outcome::NeedsReview);
    assert_eq!(entry("RI", 500, false).outcome, Outcome::Approved);
    assert_eq!(entry("TX", 50_000, false).outcome, Outcome::Approved);
    let mut f = facts();
    f.message.channel = Channel::DirectMail;
    f.message.sweepstakes_prize_usd_minor = Some(100 * 100);
    f.message.discloses_terms = false;
    assert_decision(
        &p.decide(&f),
        Outcome::Denied,
        &["deceptive-mail-disclosures"],
        "mailed without disclosures",
    );
}

#[test]
fn automatic_renewal_changes_need_terms_and_a_way_to_cancel() {
    let p = policies();
    let change = |region: &str, terms: bool, cancel: bool| {
        let mut f = facts();
        f.recipient.region = region.into();
        f.message.changes_auto_renewal = true;
        f.message.discloses_terms = terms;
        f.message.cancellation_path = cancel;
        p.decide(&f)
    };
    assert_eq!(change("CA", true, true).outcome, Outcome::Approved);
    assert_decision(
        &change("CA", true, false),
        Outcome::Denied,
        &["rosca-clear-terms", "state-automatic-renewal-law"],
        "California without a way to cancel",
    );
    assert_decision(
        &change("TX", false, true),
        Outcome::Denied,
        &["rosca-clear-terms"],
        "Texas without terms",
    );
    let ny = change("NY", true, false);
    let state = ny
        .deciding
        .iter()
        .find(|d| d.policy_id == "state-automatic-renewal-law")
        .unwrap();
    assert_eq!(
        state.table_rule.as_deref(),
        Some("N.Y. Gen. Bus. Law 527-a")
    );
}

#[test]
fn advertising_content() {
    let p = policies();
    let with = |change: fn(&mut Facts)| {
        let mut f = facts();
        change(&mut f);
        p.decide(&f)
    };
    let cases: Vec<(&str, Verdict, Outcome, &[&str])> = vec![
        (
            "below the MAP floor",
            with(|f| {
                f.message.map_floor_minor = Some(1_001);
            }),
            Outcome::Denied,
            &["map-floor"],
        ),
        (
            "at the MAP floor",
            with(|f| {
                f.message.map_floor_minor = Some(1_000);
            }),
            Outcome::Approved,
            &["email-opt-in", "email-opt-out-regime"],
        ),
        (
            "alcohol to a 20-year-old",
            with(|f| {
                f.message.categories = vec!["alcohol".into()];
                f.recipient.birth_date = Some(date(2005, 6, 2));
            }),
            Outcome::Denied,
            &["alcohol-under-21"],
        ),
        (
            "tobacco, age unknown",
            with(|f| {
                f.message.categories = vec!["tobacco".into()];
                f.recipient.birth_date = None;
            }),
            Outcome::Denied,
            &["tobacco-under-21"],
        ),
        (
            "cannabis in Idaho",
            with(|f| {
                f.message.categories = vec!["cannabis".into()];
                f.recipient.region = "ID".into();
            }),
            Outcome::Denied,
            &["cannabis-where-legal-and-adult"],
        ),
        (
            "cannabis to an adult in New York",
            with(|f| {
                f.message.categories = vec!["cannabis".into()];
            }),
            Outcome::Approved,
            &["email-opt-in", "email-opt-out-regime"],
        ),
        (
            "a Prop 65 product to a Californian without the warning",
            with(|f| {
                f.message.categories = vec!["prop65".into()];
                f.recipient.region = "CA".into();
            }),
            Outcome::Denied,
            &["prop65-warning"],
        ),
        (
            "an unsubstantiated savings claim",
            with(|f| {
                f.message.unsubstantiated_claims = 1;
            }),
            Outcome::Denied,
            &["claim-substantiation"],
        ),
        (
            "AI-drafted copy to an EU member, undisclosed",
            with(|f| {
                f.recipient.country = "FR".into();
                f.recipient.region = String::new();
                f.message.ai_drafted = true;
            }),
            Outcome::Denied,
            &["ai-act-art50-disclosure"],
        ),
        (
            "AI-drafted copy to an EU member, disclosed",
            with(|f| {
                f.recipient.country = "FR".into();
                f.recipient.region = String::new();
                f.message.ai_drafted = true;
                f.message.ai_disclosed = true;
            }),
            Outcome::Approved,
            &["email-opt-in"],
        ),
        (
            "a reseller-channel offer",
            with(|f| {
                f.message.reseller_channel = true;
            }),
            Outcome::NeedsReview,
            &["robinson-patman-reseller"],
        ),
    ];
    for (case, verdict, outcome, deciding) in cases {
        assert_decision(&verdict, outcome, deciding, case);
    }
}

#[test]
fn an_operators_directory_loads_like_the_shipped_set() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("policies");
    let from_dir = GatePolicies::from_dir(&dir).expect("the policies directory validates");
    assert_eq!(from_dir.hash(), policies().hash());
    assert_eq!(from_dir.policies(), policies().policies());
}

#[test]
fn a_policy_that_fails_to_evaluate_denies_instead_of_being_skipped() {
    // Cedar skips a policy whose evaluation errors (here an overflow), so this forbid
    // would silently not forbid; the gate denies and names the error.
    let set = [(
        "overflow.cedar",
        r#"
        @id("allow-everything") @statute("test") @effect("permit")
        permit (principal, action, resource);

        @id("overflowing-cap") @statute("test") @effect("defer")
        forbid (principal, action, resource)
        when { context.sent_in_window + 9223372036854775807 > context.cap_in_window };
        "#,
    )];
    let p =
        GatePolicies::from_sources(compliance_gate::policy::SHIPPED_SCHEMA, &set).expect("valid");
    let mut f = facts();
    f.moment.sent_in_window = 0;
    assert_eq!(p.decide(&f).outcome, Outcome::Deferred, "no overflow at 0");
    f.moment.sent_in_window = 1;
    let verdict = p.decide(&f);
    assert_eq!(verdict.outcome, Outcome::Denied, "{verdict:?}");
    assert!(
        verdict.errors.iter().any(|e| e.contains("overflowing-cap")),
        "{verdict:?}"
    );
}
