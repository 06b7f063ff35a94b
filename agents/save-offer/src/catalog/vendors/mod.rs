//! Normalisers: one module per vendor, each turning that vendor's offer document (as its
//! public API returns it) into the parts of a [`CatalogOffer`](loyalty_contracts::CatalogOffer)
//! a vendor can state. The rest (eligibility by LTV decile, margin floors, experiments)
//! comes from the operator's policy.
//!
//! A normaliser reads only what it understands and says which top-level fields it used
//! ([`Normalised::used`]); every other field is kept, verbatim, in the catalog entry's
//! `vendor_fields_json`, so nothing a vendor sent is lost. Each vendor has fixtures under
//! `tests/fixtures/vendors/<vendor>/`, one per offer shape, naming the documentation page
//! the shape follows.

use loyalty_contracts::{
    ComplianceAttributes, Date, Eligibility, Expiration, OfferContent, OfferType, OfferValue,
    Stacking, Timestamp,
};
use serde::Serialize;
use serde_json::Value;

use crate::money;

mod antavo;
mod bold;
mod chargebee;
mod klaviyo;
mod loyaltylion;
mod recharge;
mod shopify;
mod smile_io;
mod stripe;
mod talon_one;
mod tango_card;
mod tremendous;
mod voucherify;
mod yotpo;

/// What a vendor document says about an offer, in canonical terms.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Normalised {
    pub title: String,
    pub offer_type: OfferType,
    pub value: OfferValue,
    pub content: OfferContent,
    pub eligibility: Eligibility,
    pub stacking: Stacking,
    pub expiration: Expiration,
    pub compliance: ComplianceAttributes,
    /// When the vendor says the offer starts and stops being valid.
    pub starts_at: Option<Timestamp>,
    pub ends_at: Option<Timestamp>,
    /// Top-level fields of the document this normaliser read; the others are kept raw.
    pub used: Vec<&'static str>,
}

impl Normalised {
    /// An offer of `offer_type` titled `title`, everything else unsaid.
    pub fn new(title: impl Into<String>, offer_type: OfferType, currency: &str) -> Self {
        Normalised {
            title: title.into(),
            offer_type,
            value: OfferValue {
                currency: currency.to_owned(),
                ..OfferValue::default()
            },
            content: OfferContent::default(),
            eligibility: Eligibility::default(),
            stacking: Stacking::default(),
            expiration: Expiration::default(),
            compliance: ComplianceAttributes::default(),
            starts_at: None,
            ends_at: None,
            used: Vec::new(),
        }
    }
}

/// Why a vendor document could not be normalised; the record goes to the DLQ with it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum NormaliseError {
    #[error("unknown vendor {0:?}")]
    UnknownVendor(String),
    #[error("the document is not JSON: {0}")]
    NotJson(String),
    #[error("{vendor}: {reason}")]
    Malformed {
        vendor: &'static str,
        reason: String,
    },
}

/// The vendors with a normaliser, as named in `VendorOffer.vendor`.
pub const VENDORS: [&str; 14] = [
    "shopify",
    "stripe",
    "recharge",
    "chargebee",
    "bold",
    "voucherify",
    "talon_one",
    "klaviyo",
    "yotpo",
    "smile_io",
    "loyaltylion",
    "antavo",
    "tango_card",
    "tremendous",
];

/// Normalise one vendor document. `store_currency` is the shop's currency as the
/// sender of the vendor offer states it: many vendors state amounts without one
/// (a Shopify price rule is in the shop's currency, a Smile.io reward in the store's).
pub fn normalise(
    vendor: &str,
    document: &Value,
    store_currency: Option<&str>,
) -> Result<Normalised, NormaliseError> {
    let normaliser: fn(&Reader) -> Result<Normalised, NormaliseError> = match vendor {
        "shopify" => shopify::normalise,
        "stripe" => stripe::normalise,
        "recharge" => recharge::normalise,
        "chargebee" => chargebee::normalise,
        "bold" => bold::normalise,
        "voucherify" => voucherify::normalise,
        "talon_one" => talon_one::normalise,
        "klaviyo" => klaviyo::normalise,
        "yotpo" => yotpo::normalise,
        "smile_io" => smile_io::normalise,
        "loyaltylion" => loyaltylion::normalise,
        "antavo" => antavo::normalise,
        "tango_card" => tango_card::normalise,
        "tremendous" => tremendous::normalise,
        other => return Err(NormaliseError::UnknownVendor(other.to_owned())),
    };
    let vendor = VENDORS
        .iter()
        .find(|v| **v == vendor)
        .copied()
        .unwrap_or("unknown");
    normaliser(&Reader::new(vendor, document, store_currency)?)
}

/// The document's top-level fields no normaliser read, as a JSON object (`{}` if none).
pub fn unused_fields(document: &Value, used: &[&str]) -> String {
    let kept: serde_json::Map<String, Value> = document
        .as_object()
        .map(|fields| {
            fields
                .iter()
                .filter(|(name, _)| !used.contains(&name.as_str()))
                .map(|(name, value)| (name.clone(), value.clone()))
                .collect()
        })
        .unwrap_or_default();
    Value::Object(kept).to_string()
}

/// Reading a vendor document, with errors that name the vendor and the field.
pub struct Reader<'a> {
    pub vendor: &'static str,
    pub document: &'a Value,
    /// The shop's ISO 4217 currency, when the sender stated one.
    pub store_currency: Option<&'a str>,
}

impl<'a> Reader<'a> {
    pub fn new(
        vendor: &'static str,
        document: &'a Value,
        store_currency: Option<&'a str>,
    ) -> Result<Self, NormaliseError> {
        if !document.is_object() {
            return Err(NormaliseError::Malformed {
                vendor,
                reason: "the document is not a JSON object".into(),
            });
        }
        Ok(Reader {
            vendor,
            document,
            store_currency,
        })
    }

    /// The currency of the document's amounts: the one at `path` if the vendor states
    /// it, else the store's; an error naming both when neither is known, since no
    /// amount can be put in minor units without it.
    pub fn amount_currency(&self, path: &str) -> Result<String, NormaliseError> {
        if let Some(stated) = self.currency(path)? {
            return Ok(stated);
        }
        match self.store_currency.map(str::to_ascii_uppercase) {
            Some(code) if money::is_currency(&code) => Ok(code),
            Some(code) => Err(self.malformed(format!(
                "the store currency {code:?} is not an ISO 4217 currency"
            ))),
            None => Err(self.malformed(format!(
                "the offer states an amount but no currency ({path} is absent and the vendor offer names no store currency)"
            ))),
        }
    }

    pub fn malformed(&self, reason: impl Into<String>) -> NormaliseError {
        NormaliseError::Malformed {
            vendor: self.vendor,
            reason: reason.into(),
        }
    }

    /// The value at `path` (`/`-separated, as a JSON pointer without the leading `/`);
    /// null counts as absent.
    pub fn get(&self, path: &str) -> Option<&'a Value> {
        self.document
            .pointer(&format!("/{path}"))
            .filter(|v| !v.is_null())
    }

    /// A string field that must be there.
    pub fn required_str(&self, path: &str) -> Result<&'a str, NormaliseError> {
        self.get(path)
            .and_then(Value::as_str)
            .ok_or_else(|| self.malformed(format!("{path} is missing or not a string")))
    }

    /// An id that must be there; vendors send ids as strings or numbers.
    pub fn required_id(&self, path: &str) -> Result<String, NormaliseError> {
        match self.get(path) {
            Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
            Some(Value::Number(n)) => Ok(n.to_string()),
            _ => Err(self.malformed(format!("{path} is missing or not an id"))),
        }
    }

    pub fn str(&self, path: &str) -> Option<&'a str> {
        self.get(path).and_then(Value::as_str)
    }

    pub fn bool(&self, path: &str) -> Option<bool> {
        self.get(path).and_then(Value::as_bool)
    }

    /// An integer, sent as a number or a numeric string.
    pub fn int(&self, path: &str) -> Result<Option<i64>, NormaliseError> {
        match self.get(path) {
            None => Ok(None),
            Some(Value::Number(n)) => n
                .as_i64()
                .map(Some)
                .ok_or_else(|| self.malformed(format!("{path} is not an integer: {n}"))),
            Some(Value::String(s)) => s
                .trim()
                .parse()
                .map(Some)
                .map_err(|_| self.malformed(format!("{path} is not an integer: {s:?}"))),
            Some(other) => Err(self.malformed(format!("{path} is not an integer: {other}"))),
        }
    }

    /// An amount in major units ("10.00", 10, 10.5) as minor units of `currency`.
    pub fn money(&self, path: &str, currency: &str) -> Result<Option<i64>, NormaliseError> {
        match self.get(path) {
            None => Ok(None),
            Some(value) => money::major_to_minor(value, currency)
                .map(Some)
                .map_err(|e| self.malformed(format!("{path}: {e}"))),
        }
    }

    /// A percentage (15, "15.0", -15 for Shopify's negative price-rule values) as basis
    /// points of discount (1500); the sign is dropped.
    pub fn percent_bp(&self, path: &str) -> Result<Option<i32>, NormaliseError> {
        match self.get(path) {
            None => Ok(None),
            Some(value) => {
                let percent = number(value)
                    .filter(|n| n.is_finite())
                    .ok_or_else(|| self.malformed(format!("{path} is not a number: {value}")))?
                    .abs();
                if percent > 100.0 {
                    return Err(self.malformed(format!("{path} is above 100%: {percent}")));
                }
                Ok(Some((percent * 100.0).round() as i32))
            }
        }
    }

    /// An instant: RFC 3339 text, or Unix seconds (Stripe, Chargebee).
    pub fn timestamp(&self, path: &str) -> Result<Option<Timestamp>, NormaliseError> {
        match self.get(path) {
            None => Ok(None),
            Some(Value::Number(n)) => n
                .as_i64()
                .and_then(|s| s.checked_mul(1000))
                .map(|ms| Some(Timestamp(ms)))
                .ok_or_else(|| self.malformed(format!("{path} is not Unix seconds: {n}"))),
            Some(Value::String(s)) => parse_instant(s)
                .map(Some)
                .ok_or_else(|| self.malformed(format!("{path} is not an RFC 3339 time: {s:?}"))),
            Some(other) => Err(self.malformed(format!("{path} is not a time: {other}"))),
        }
    }

    /// A calendar date (`YYYY-MM-DD`, or the date part of an RFC 3339 time).
    pub fn date(&self, path: &str) -> Result<Option<Date>, NormaliseError> {
        match self.str(path) {
            None => Ok(None),
            Some(s) => s
                .get(..10)
                .and_then(|d| d.parse::<Date>().ok())
                .map(Some)
                .ok_or_else(|| self.malformed(format!("{path} is not a date: {s:?}"))),
        }
    }

    /// An upper-case ISO 4217 code the swarm knows.
    pub fn currency(&self, path: &str) -> Result<Option<String>, NormaliseError> {
        match self.str(path) {
            None => Ok(None),
            Some(code) => {
                let code = code.to_ascii_uppercase();
                if money::is_currency(&code) {
                    Ok(Some(code))
                } else {
                    Err(self.malformed(format!("{path} is not an ISO 4217 currency: {code:?}")))
                }
            }
        }
    }
}

/// A JSON number or numeric string as f64.
pub(crate) fn number(value: &Value) -> Option<f64> {
    match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Milliseconds since the epoch of an RFC 3339 / ISO 8601 instant (`2024-05-01T00:00:00Z`,
/// `2024-05-01T00:00:00-04:00`, `2024-05-01T00:00:00.000+0000`, `2024-05-01 00:00:00`);
/// a date alone is its midnight UTC.
pub fn parse_instant(text: &str) -> Option<Timestamp> {
    let text = text.trim();
    let date: Date = text.get(..10)?.parse().ok()?;
    let rest = &text[10..];
    if rest.is_empty() {
        return Some(date.start());
    }
    let rest = rest.strip_prefix(['T', ' '])?;
    let (clock, zone) = match rest.find(['Z', 'z', '+', '-']) {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let mut parts = clock.splitn(3, ':');
    let hours: i64 = parts.next()?.parse().ok()?;
    let minutes: i64 = parts.next()?.parse().ok()?;
    let seconds: f64 = parts.next().map_or(Some(0.0), |s| s.parse().ok())?;
    if hours > 23 || minutes > 59 || !(0.0..61.0).contains(&seconds) {
        return None;
    }
    let offset_minutes: i64 = match zone {
        "" | "Z" | "z" => 0,
        _ => {
            let sign = if zone.starts_with('-') { -1 } else { 1 };
            let digits: String = zone[1..].chars().filter(char::is_ascii_digit).collect();
            if digits.len() != 4 {
                return None;
            }
            let h: i64 = digits[..2].parse().ok()?;
            let m: i64 = digits[2..].parse().ok()?;
            sign * (h * 60 + m)
        }
    };
    let millis = date.start().0
        + ((hours * 60 + minutes - offset_minutes) * 60) * 1000
        + (seconds * 1000.0).round() as i64;
    Some(Timestamp(millis))
}

// Shared by the normalisers: offers stated in words (Klaviyo coupons, Smile.io and Antavo
// rewards, Bold's discount details), amounts in a currency the document may not name,
// amounts written in hundredths, and the last day of an offer.

use loyalty_contracts::Confidence;

/// A discount stated in words.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum TextDiscount {
    /// Basis points off ("15% off" → 1500).
    Percent(i32),
    /// An amount in major units as written ("7.50"), in the currency the text names when it
    /// names one unambiguously ("€", "£", "US$", "CA$", "5 EUR"); a bare "$" is shared by a
    /// dozen currencies and names none.
    Amount {
        major: String,
        currency: Option<String>,
    },
}

impl TextDiscount {
    /// A `PercentOff` or `AmountOff` offer titled `title`, its value marked `Derived`. An
    /// amount whose text names no currency is in the store's (see [`text_amount`]).
    pub(crate) fn offer(
        self,
        title: &str,
        r: &Reader<'_>,
        currency_path: &str,
    ) -> Result<Normalised, NormaliseError> {
        let mut n = match self {
            TextDiscount::Percent(bp) => {
                let mut n = Normalised::new(title, OfferType::PercentOff, "");
                n.value.percent_off_bp = Some(bp);
                n
            }
            TextDiscount::Amount { major, currency } => {
                let (minor, currency) = text_amount(r, &major, currency, currency_path)?;
                let mut n = Normalised::new(title, OfferType::AmountOff, &currency);
                n.value.amount_off_minor = Some(minor);
                n
            }
        };
        n.value.confidence = Confidence::Derived;
        Ok(n)
    }
}

/// An amount written in text, `major` units of the currency the text `named`, else of the
/// store's ([`Reader::amount_currency`] at `currency_path`, a field the document does not
/// have when the vendor never states a currency), as minor units and that currency.
pub(crate) fn text_amount(
    r: &Reader<'_>,
    major: &str,
    named: Option<String>,
    currency_path: &str,
) -> Result<(i64, String), NormaliseError> {
    let currency = match named {
        Some(code) => code,
        None => r.amount_currency(currency_path)?,
    };
    let minor = amount_minor(&Value::String(major.to_owned()), &currency)
        .ok_or_else(|| r.malformed(format!("{major:?} is not an amount of {currency}")))?;
    Ok((minor, currency))
}

/// The first percent or amount `text` states: "15% off", "$5 off", "€7.50", "5 EUR",
/// "CA$10". A bare number ("500 points") is neither.
pub(crate) fn discount_in_text(text: &str) -> Option<TextDiscount> {
    number_spans(text).into_iter().find_map(|(start, end)| {
        let number = text.get(start..end)?;
        let before = text.get(..start)?.trim_end();
        let after = text.get(end..)?.trim_start();
        if after.starts_with('%') {
            let percent: f64 = number.parse().ok()?;
            return (percent > 0.0 && percent <= 100.0)
                .then(|| TextDiscount::Percent((percent * 100.0).round() as i32));
        }
        let currency = currency_before(before).or_else(|| currency_after(after))?;
        Some(TextDiscount::Amount {
            major: number.to_owned(),
            currency: (!currency.is_empty()).then_some(currency),
        })
    })
}

/// `major` units (a JSON number or numeric string) in minor units of the ISO 4217
/// `currency`; `None` for anything else, negatives and unknown currencies included.
pub(crate) fn amount_minor(major: &Value, currency: &str) -> Option<i64> {
    money::major_to_minor(major, currency).ok()
}

/// An amount a vendor writes in hundredths of the major unit whatever the currency
/// (Voucherify: "multiplied by 100 to precisely represent 2 decimal places") as minor
/// units of `currency`: as it is at two decimals, times ten at three (KWD), and for a
/// zero-decimal currency (JPY) divided by 100, rounded half up (1050 is ¥11).
/// `None` for a negative amount, an unknown currency or an overflow.
pub(crate) fn hundredths_to_minor(hundredths: i64, currency: &str) -> Option<i64> {
    if hundredths < 0 {
        return None;
    }
    let exponent = money::exponent(currency)?;
    if exponent >= 2 {
        hundredths.checked_mul(10_i64.checked_pow(exponent - 2)?)
    } else {
        let divisor = 10_i64.checked_pow(2 - exponent)?;
        hundredths.checked_add(divisor / 2).map(|h| h / divisor)
    }
}

/// The currency of an amount that only narrows an offer (a minimum order, a cap): as
/// [`Reader::amount_currency`], but `None` when neither the document (at `path`) nor the
/// store names one, so the amount stays in the raw fields instead of refusing the offer.
pub(crate) fn narrowing_currency(
    r: &Reader<'_>,
    path: &str,
) -> Result<Option<String>, NormaliseError> {
    if r.store_currency.is_none() && r.str(path).is_none() {
        return Ok(None);
    }
    r.amount_currency(path).map(Some)
}

/// The last (UTC) day an offer ending at the instant `end` is valid: the day of the
/// millisecond before, so an end at midnight leaves the previous day as the last one.
pub(crate) fn last_day(end: Timestamp) -> Date {
    Timestamp(end.0.saturating_sub(1)).day()
}

/// Byte ranges of the decimal numbers in `text` ("7", "7.50").
fn number_spans(text: &str) -> Vec<(usize, usize)> {
    let mut spans = Vec::new();
    let mut start = None;
    let mut chars = text.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        let in_number = c.is_ascii_digit()
            || (c == '.'
                && start.is_some()
                && chars.peek().is_some_and(|(_, next)| next.is_ascii_digit()));
        match (in_number, start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                spans.push((s, i));
                start = None;
            }
            _ => {}
        }
    }
    if let Some(s) = start {
        spans.push((s, text.len()));
    }
    spans
}

/// The currency a symbol just before an amount names; `Some("")` for a bare "$".
fn currency_before(before: &str) -> Option<String> {
    match before.strip_suffix('$') {
        Some(prefix) => {
            let letters = prefix
                .rsplit(|c: char| !c.is_ascii_alphabetic())
                .next()
                .unwrap_or_default();
            let code = match letters {
                "US" => "USD",
                "C" | "CA" => "CAD",
                "A" | "AU" => "AUD",
                "NZ" => "NZD",
                "HK" => "HKD",
                "S" | "SG" => "SGD",
                _ => "",
            };
            Some(code.to_owned())
        }
        None => symbol(before.chars().next_back()?),
    }
}

/// The currency a symbol or ISO code just after an amount names ("5 €", "5 EUR").
fn currency_after(after: &str) -> Option<String> {
    symbol(after.chars().next()?).or_else(|| {
        let word = after.split(|c: char| !c.is_ascii_alphabetic()).next()?;
        (word.len() == 3
            && word.bytes().all(|b| b.is_ascii_uppercase())
            && money::is_currency(word))
        .then(|| word.to_owned())
    })
}

fn symbol(c: char) -> Option<String> {
    match c {
        '€' => Some("EUR".to_owned()),
        '£' => Some("GBP".to_owned()),
        '$' => Some(String::new()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants_in_the_shapes_vendors_send() {
        let utc = parse_instant("2024-05-01T00:00:00Z").unwrap();
        assert_eq!(utc.0, 1_714_521_600_000);
        assert_eq!(
            parse_instant("2024-05-01T00:00:00-04:00").unwrap().0,
            utc.0 + 4 * 3_600_000
        );
        assert_eq!(
            parse_instant("2024-05-01T00:00:00.250+0000").unwrap().0,
            utc.0 + 250
        );
        assert_eq!(parse_instant("2024-05-01 00:00:00").unwrap(), utc);
        assert_eq!(parse_instant("2024-05-01").unwrap(), utc);
        assert_eq!(parse_instant("2024-05-01T25:00:00Z"), None);
        assert_eq!(parse_instant("May 1st"), None);
    }

    #[test]
    fn fields_nobody_read_are_kept_verbatim() {
        let document: Value = serde_json::json!({"id": 1, "title": "x", "odd": {"a": [1, 2]}});
        let kept: Value =
            serde_json::from_str(&unused_fields(&document, &["id", "title"])).unwrap();
        assert_eq!(kept, serde_json::json!({"odd": {"a": [1, 2]}}));
    }

    fn amount(major: &str, currency: Option<&str>) -> Option<TextDiscount> {
        Some(TextDiscount::Amount {
            major: major.into(),
            currency: currency.map(str::to_owned),
        })
    }

    #[test]
    fn discounts_stated_in_words() {
        assert_eq!(
            discount_in_text("10% off for purchases over $50"),
            Some(TextDiscount::Percent(1000))
        );
        assert_eq!(
            discount_in_text("Get 12.5% off"),
            Some(TextDiscount::Percent(1250))
        );
        assert_eq!(discount_in_text("500 Points = $5 off"), amount("5", None));
        assert_eq!(
            discount_in_text("€7.50 voucher"),
            amount("7.50", Some("EUR"))
        );
        assert_eq!(
            discount_in_text("Save 1000 JPY"),
            amount("1000", Some("JPY"))
        );
        assert_eq!(discount_in_text("CA$10 off"), amount("10", Some("CAD")));
        assert_eq!(discount_in_text("Free T-shirt for 500 points"), None);
        assert_eq!(discount_in_text("150% off"), None);
    }

    #[test]
    fn an_amount_in_words_is_in_the_currency_it_names_else_the_stores() {
        let document = serde_json::json!({});
        let shop = Reader::new("smile_io", &document, Some("jpy")).unwrap();
        let yen = discount_in_text("$5 off")
            .unwrap()
            .offer("$5 off", &shop, "currency")
            .unwrap();
        assert_eq!(
            (yen.value.amount_off_minor, yen.value.currency.as_str()),
            (Some(5), "JPY")
        );
        assert_eq!(yen.value.confidence, Confidence::Derived);
        let euros = discount_in_text("€7.50 off")
            .unwrap()
            .offer("x", &shop, "currency")
            .unwrap();
        assert_eq!(
            (euros.value.amount_off_minor, euros.value.currency.as_str()),
            (Some(750), "EUR")
        );
        let nowhere = Reader::new("smile_io", &document, None).unwrap();
        let refused = discount_in_text("$5 off")
            .unwrap()
            .offer("x", &nowhere, "currency");
        assert!(refused.is_err_and(|e| e.to_string().contains("states an amount but no currency")));
        let percent = discount_in_text("10% off")
            .unwrap()
            .offer("x", &nowhere, "currency")
            .unwrap();
        assert_eq!(
            (
                percent.value.percent_off_bp,
                percent.value.currency.as_str()
            ),
            (Some(1000), "")
        );
    }

    #[test]
    fn amounts_are_read_in_the_currencys_exponent() {
        assert_eq!(amount_minor(&Value::from(5), "USD"), Some(500));
        assert_eq!(amount_minor(&Value::from("150.5"), "EUR"), Some(15050));
        assert_eq!(amount_minor(&Value::from(1000), "JPY"), Some(1000));
        assert_eq!(amount_minor(&Value::from("-5"), "USD"), None);
        assert_eq!(amount_minor(&Value::from(5), ""), None);
    }

    #[test]
    fn hundredths_become_minor_units_of_any_exponent() {
        assert_eq!(hundredths_to_minor(1000, "USD"), Some(1000));
        assert_eq!(hundredths_to_minor(1000, "KWD"), Some(10_000));
        assert_eq!(hundredths_to_minor(100_000, "JPY"), Some(1000));
        assert_eq!(hundredths_to_minor(1050, "JPY"), Some(11));
        assert_eq!(hundredths_to_minor(-1, "USD"), None);
        assert_eq!(hundredths_to_minor(1000, "XXX"), None);
    }

    #[test]
    fn a_narrowing_amount_without_a_currency_stays_raw() {
        let document = serde_json::json!({"minimum": "40.0", "currency": "eur"});
        let bare = Reader::new("shopify", &document, None).unwrap();
        assert_eq!(narrowing_currency(&bare, "none"), Ok(None));
        assert_eq!(
            narrowing_currency(&bare, "currency"),
            Ok(Some("EUR".into()))
        );
        let shop = Reader::new("shopify", &document, Some("USD")).unwrap();
        assert_eq!(narrowing_currency(&shop, "none"), Ok(Some("USD".into())));
        let odd = Reader::new("shopify", &document, Some("dollars")).unwrap();
        assert!(narrowing_currency(&odd, "none").is_err());
    }

    #[test]
    fn an_end_at_midnight_leaves_the_day_before() {
        let end = parse_instant("2025-06-01T00:00:00Z").map(last_day);
        assert_eq!(end, Date::from_ymd(2025, 5, 31));
    }
}
