//! The jurisdiction tables the policies read: ages of digital consent, sending windows,
//! email regimes, stored-value and sweepstakes rules, cannabis and automatic-renewal
//! laws. Cedar cannot look a row up by a runtime key, so the gate finds the member's row
//! here and hands its values to the policies in the request context; each row names the
//! law it comes from, and the decision cites it beside the policy's own statute.
//!
//! Rows are what the statutes say as of 2026 (sources in `policies/README.md`); a row
//! marked `verified: false` comes from secondary sources only. Not legal advice: an
//! operator reviews these tables as they review the policies.

/// EU and EEA states (GDPR applies to their residents).
const EEA: &[&str] = &[
    "AT", "BE", "BG", "HR", "CY", "CZ", "DK", "EE", "FI", "FR", "DE", "GR", "HU", "IE", "IT", "LV",
    "LT", "LU", "MT", "NL", "PL", "PT", "RO", "SK", "SI", "ES", "SE", "IS", "LI", "NO",
];

/// Whether GDPR applies to a resident of `country`.
pub fn gdpr_applies(country: &str) -> bool {
    EEA.contains(&country)
}

/// GDPR Art. 8(1): the age below which consent to an information-society service needs
/// a parent, per state that set one (16 where a state did not derogate).
const DIGITAL_CONSENT_AGE: &[(&str, i64, &str)] = &[
    ("AT", 14, "DSG 4(4)"),
    ("BE", 13, "Act of 30 July 2018, art. 7"),
    ("BG", 14, "Personal Data Protection Act 25c"),
    ("CY", 14, "Law 125(I)/2018, 8"),
    ("CZ", 15, "Act 110/2019, 7"),
    ("DK", 13, "Databeskyttelsesloven 6(2)"),
    ("EE", 13, "Isikuandmete kaitse seadus 8"),
    ("ES", 14, "LOPDGDD art. 7"),
    ("FI", 13, "Tietosuojalaki 5"),
    ("FR", 15, "Loi 78-17 art. 45"),
    ("GR", 15, "Law 4624/2019 art. 21"),
    ("IS", 13, "Act 90/2018"),
    ("IT", 14, "Codice privacy art. 2-quinquies"),
    ("LT", 14, "ADTAI 6"),
    ("LV", 13, "Personal Data Processing Law 33"),
    ("MT", 13, "S.L. 586.11, reg. 3"),
    ("NO", 13, "Personopplysningsloven 5"),
    ("PT", 13, "Lei 58/2019 art. 16"),
    ("SE", 13, "Dataskyddslagen 2:4"),
    ("SI", 15, "ZVOP-2 8"),
];

/// The age of digital consent in `country`; 0 outside the EU and EEA.
pub fn digital_consent_age(country: &str) -> (i64, &'static str) {
    if !gdpr_applies(country) {
        return (0, "");
    }
    DIGITAL_CONSENT_AGE
        .iter()
        .find(|(c, _, _)| *c == country)
        .map_or((16, "GDPR Art. 8(1), no derogation"), |(_, age, law)| {
            (*age, *law)
        })
}

/// A channel's allowed sending window in the recipient's local time, `[from, until)` in
/// minutes since midnight, and the rule that sets it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SendingWindow {
    pub from_minute: i64,
    pub until_minute: i64,
    pub rule: &'static str,
}

/// US states whose telephone solicitation law ends the day earlier than the TCPA (texts
/// are calls under the TCPA and these laws).
const STATE_CALL_WINDOWS: &[(&str, i64, i64, &str)] = &[
    ("FL", 8 * 60, 20 * 60, "Fla. Stat. 501.616(6)(a)"),
    ("WA", 8 * 60, 20 * 60, "RCW 80.36.390; RCW 19.158.040(2)"),
    ("OK", 8 * 60, 20 * 60, "Okla. Stat. tit. 15, 775C.4"),
    ("MD", 8 * 60, 20 * 60, "Md. Code Com. Law 14-4503"),
];

/// Operator courtesy hours for push notifications: no statute, a setting of the table.
const PUSH_WINDOW: SendingWindow = SendingWindow {
    from_minute: 8 * 60,
    until_minute: 21 * 60,
    rule: "operator courtesy hours for push",
};

/// The sending window of `channel` for a resident of `country` / `region`.
pub fn sending_window(channel: &str, country: &str, region: &str) -> SendingWindow {
    let any_time = SendingWindow {
        from_minute: 0,
        until_minute: 24 * 60,
        rule: "no quiet hours for this channel",
    };
    match channel {
        "sms" if country == "US" => STATE_CALL_WINDOWS
            .iter()
            .find(|(state, ..)| *state == region)
            .map_or(
                SendingWindow {
                    from_minute: 8 * 60,
                    until_minute: 21 * 60,
                    rule: "47 CFR 64.1200(c)(1)",
                },
                |&(_, from_minute, until_minute, rule)| SendingWindow {
                    from_minute,
                    until_minute,
                    rule,
                },
            ),
        "sms" | "push" => PUSH_WINDOW,
        _ => any_time,
    }
}

/// How email marketing may reach a member of `country`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmailRegime {
    /// Allowed unless the member opted out (CAN-SPAM).
    OptOut,
    /// Needs an opt-in, or a soft opt-in for an existing customer's similar products.
    OptInOrSoft,
    /// Needs an opt-in (CASL's implied consent is not modelled; the strict default).
    OptIn,
}

/// The email regime of `country`.
pub fn email_regime(country: &str) -> EmailRegime {
    match country {
        "US" => EmailRegime::OptOut,
        "GB" => EmailRegime::OptInOrSoft,
        c if gdpr_applies(c) => EmailRegime::OptInOrSoft,
        _ => EmailRegime::OptIn,
    }
}

/// A US state's rules for stored-value rewards: the shortest validity an expiring one
/// may have, whether one may expire at all, and when unredeemed value escheats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredValueRule {
    pub state: &'static str,
    /// `None`: no expiry allowed.
    pub min_validity_months: Option<i64>,
    /// Years of dormancy after which unredeemed value is reported as unclaimed property;
    /// `None`: exempt. Cited with the row, for the operator's breakage accounting.
    pub escheat_dormancy_years: Option<i64>,
    pub statute: &'static str,
    pub verified: bool,
}

/// At least five states, as the issue asks; the CARD Act's 60 months elsewhere.
pub const STORED_VALUE: &[StoredValueRule] = &[
    StoredValueRule {
        state: "CA",
        min_validity_months: None,
        escheat_dormancy_years: None,
        statute: "Cal. Civ. Code 1749.5(a); Code Civ. Proc. 1520.5",
        verified: true,
    },
    StoredValueRule {
        state: "NY",
        min_validity_months: Some(9 * 12),
        escheat_dormancy_years: Some(5),
        statute: "N.Y. Gen. Bus. Law 396-i (as amended 2022); Aband. Prop. Law 1315",
        verified: true,
    },
    StoredValueRule {
        state: "MA",
        min_validity_months: Some(7 * 12),
        escheat_dormancy_years: None,
        statute: "Mass. Gen. Laws ch. 200A 5D",
        verified: true,
    },
    StoredValueRule {
        state: "WA",
        min_validity_months: None,
        escheat_dormancy_years: None,
        statute: "RCW 19.240.020",
        verified: true,
    },
    StoredValueRule {
        state: "DE",
        min_validity_months: Some(5 * 12),
        escheat_dormancy_years: Some(5),
        statute: "12 Del. C. 1198",
        verified: false,
    },
    StoredValueRule {
        state: "TX",
        min_validity_months: Some(5 * 12),
        escheat_dormancy_years: Some(3),
        statute: "Tex. Bus. & Com. Code ch. 604A; Tex. Prop. Code 72.1016",
        verified: false,
    },
    StoredValueRule {
        state: "AL",
        min_validity_months: Some(5 * 12),
        escheat_dormancy_years: Some(3),
        statute: "Ala. Code 35-12-72(a)(17), 35-12-73(b)(1)",
        verified: true,
    },
];

/// The stored-value rule for a resident of `country` / `region`: the state's row, else
/// the CARD Act's five years (US) or none (elsewhere: the table is US law).
pub fn stored_value_rule(country: &str, region: &str) -> StoredValueRule {
    let federal = StoredValueRule {
        state: "",
        min_validity_months: Some(if country == "US" { 60 } else { 0 }),
        escheat_dormancy_years: None,
        statute: "12 CFR 1005.20(e)(2)",
        verified: true,
    };
    if country != "US" {
        return federal;
    }
    STORED_VALUE
        .iter()
        .find(|r| r.state == region)
        .copied()
        .unwrap_or(federal)
}

/// US cents in a dollar: the thresholds below read as the statutes state them.
const CENTS: i64 = 100;

/// States requiring a sweepstakes to be registered (and bonded in NY and FL) above a
/// total prize value, in US cents.
const SWEEPSTAKES: &[(&str, i64, &str)] = &[
    ("NY", 5_000 * CENTS, "N.Y. Gen. Bus. Law 369-e"),
    ("FL", 5_000 * CENTS, "Fla. Stat. 849.094(3)"),
    ("RI", 500 * CENTS, "R.I. Gen. Laws 11-50-1"),
];

/// The prize value above which a sweepstakes entering a resident of `country` /
/// `region` must be registered; 0 when none is required.
pub fn sweepstakes_registration_above(country: &str, region: &str) -> (i64, &'static str) {
    if country != "US" {
        return (0, "");
    }
    SWEEPSTAKES
        .iter()
        .find(|(state, ..)| *state == region)
        .map_or((0, ""), |&(_, above, law)| (above, law))
}

/// US states (and DC) where adult-use cannabis is legal.
const CANNABIS_ADULT_USE: &[&str] = &[
    "AK", "AZ", "CA", "CO", "CT", "DC", "DE", "IL", "ME", "MD", "MA", "MI", "MN", "MO", "MT", "NV",
    "NJ", "NM", "NY", "OH", "OR", "RI", "VT", "VA", "WA",
];

/// Whether adult-use cannabis may be marketed to a resident of `country` / `region`.
pub fn cannabis_legal(country: &str, region: &str) -> bool {
    match country {
        "US" => CANNABIS_ADULT_USE.contains(&region),
        "CA" => true,
        _ => false,
    }
}

/// US states with an automatic-renewal law beyond the federal ROSCA.
const AUTO_RENEWAL: &[(&str, &str)] = &[
    ("CA", "Cal. Bus. & Prof. Code 17600-17606"),
    ("NY", "N.Y. Gen. Bus. Law 527-a"),
    ("CO", "Colo. Rev. Stat. 6-1-732"),
    ("IL", "815 ILCS 601"),
    ("VA", "Va. Code 59.1-207.45"),
    ("VT", "9 V.S.A. 2454a"),
    ("OR", "Or. Rev. Stat. 646A.295"),
    ("DC", "D.C. Code 28A-201"),
];

/// The state automatic-renewal law for a resident of `country` / `region`, if any.
pub fn auto_renewal_law(country: &str, region: &str) -> Option<&'static str> {
    (country == "US")
        .then(|| AUTO_RENEWAL.iter().find(|(s, _)| *s == region))
        .flatten()
        .map(|(_, law)| *law)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_eea_state_has_an_age_between_13_and_16() {
        for country in EEA {
            let (age, _) = digital_consent_age(country);
            assert!((13..=16).contains(&age), "{country}: {age}");
        }
        assert_eq!(digital_consent_age("DE").0, 16);
        assert_eq!(digital_consent_age("FR").0, 15);
        assert_eq!(digital_consent_age("US").0, 0);
    }

    #[test]
    fn the_stricter_state_window_replaces_the_federal_one() {
        assert_eq!(sending_window("sms", "US", "FL").until_minute, 20 * 60);
        assert_eq!(sending_window("sms", "US", "NY").until_minute, 21 * 60);
        assert_eq!(sending_window("email", "US", "FL").until_minute, 24 * 60);
    }

    #[test]
    fn at_least_five_states_have_stored_value_rows() {
        assert!(STORED_VALUE.len() >= 5);
        assert_eq!(stored_value_rule("US", "NY").min_validity_months, Some(108));
        assert_eq!(stored_value_rule("US", "CA").min_validity_months, None);
        assert_eq!(stored_value_rule("US", "OH").min_validity_months, Some(60));
    }
}
