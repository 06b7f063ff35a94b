//! Money in minor units across currencies: which ISO 4217 codes exist, how many decimals
//! each has (JPY none, USD two, KWD three), vendor amounts in major units to minor units,
//! and conversion through the FX table.
//!
//! Conversion goes through the rates' base currency in floating point and rounds half
//! away from zero once, at the end, so converting a cost and comparing it with a bound
//! never accumulates rounding from intermediate steps.

use serde_json::Value;

/// Active ISO 4217 codes with their minor-unit exponent (ISO 4217 list one; codes with
/// no minor unit, such as XAU, are left out: an offer is never priced in gold).
const CURRENCIES: &[(&str, u32)] = &[
    ("AED", 2),
    ("AFN", 2),
    ("ALL", 2),
    ("AMD", 2),
    ("ANG", 2),
    ("AOA", 2),
    ("ARS", 2),
    ("AUD", 2),
    ("AWG", 2),
    ("AZN", 2),
    ("BAM", 2),
    ("BBD", 2),
    ("BDT", 2),
    ("BGN", 2),
    ("BHD", 3),
    ("BIF", 0),
    ("BMD", 2),
    ("BND", 2),
    ("BOB", 2),
    ("BRL", 2),
    ("BSD", 2),
    ("BTN", 2),
    ("BWP", 2),
    ("BYN", 2),
    ("BZD", 2),
    ("CAD", 2),
    ("CDF", 2),
    ("CHF", 2),
    ("CLP", 0),
    ("CNY", 2),
    ("COP", 2),
    ("CRC", 2),
    ("CUP", 2),
    ("CVE", 2),
    ("CZK", 2),
    ("DJF", 0),
    ("DKK", 2),
    ("DOP", 2),
    ("DZD", 2),
    ("EGP", 2),
    ("ERN", 2),
    ("ETB", 2),
    ("EUR", 2),
    ("FJD", 2),
    ("FKP", 2),
    ("GBP", 2),
    ("GEL", 2),
    ("GHS", 2),
    ("GIP", 2),
    ("GMD", 2),
    ("GNF", 0),
    ("GTQ", 2),
    ("GYD", 2),
    ("HKD", 2),
    ("HNL", 2),
    ("HTG", 2),
    ("HUF", 2),
    ("IDR", 2),
    ("ILS", 2),
    ("INR", 2),
    ("IQD", 3),
    ("IRR", 2),
    ("ISK", 0),
    ("JMD", 2),
    ("JOD", 3),
    ("JPY", 0),
    ("KES", 2),
    ("KGS", 2),
    ("KHR", 2),
    ("KMF", 0),
    ("KPW", 2),
    ("KRW", 0),
    ("KWD", 3),
    ("KYD", 2),
    ("KZT", 2),
    ("LAK", 2),
    ("LBP", 2),
    ("LKR", 2),
    ("LRD", 2),
    ("LSL", 2),
    ("LYD", 3),
    ("MAD", 2),
    ("MDL", 2),
    ("MGA", 2),
    ("MKD", 2),
    ("MMK", 2),
    ("MNT", 2),
    ("MOP", 2),
    ("MRU", 2),
    ("MUR", 2),
    ("MVR", 2),
    ("MWK", 2),
    ("MXN", 2),
    ("MYR", 2),
    ("MZN", 2),
    ("NAD", 2),
    ("NGN", 2),
    ("NIO", 2),
    ("NOK", 2),
    ("NPR", 2),
    ("NZD", 2),
    ("OMR", 3),
    ("PAB", 2),
    ("PEN", 2),
    ("PGK", 2),
    ("PHP", 2),
    ("PKR", 2),
    ("PLN", 2),
    ("PYG", 0),
    ("QAR", 2),
    ("RON", 2),
    ("RSD", 2),
    ("RUB", 2),
    ("RWF", 0),
    ("SAR", 2),
    ("SBD", 2),
    ("SCR", 2),
    ("SDG", 2),
    ("SEK", 2),
    ("SGD", 2),
    ("SHP", 2),
    ("SLE", 2),
    ("SOS", 2),
    ("SRD", 2),
    ("SSP", 2),
    ("STN", 2),
    ("SVC", 2),
    ("SYP", 2),
    ("SZL", 2),
    ("THB", 2),
    ("TJS", 2),
    ("TMT", 2),
    ("TND", 3),
    ("TOP", 2),
    ("TRY", 2),
    ("TTD", 2),
    ("TWD", 2),
    ("TZS", 2),
    ("UAH", 2),
    ("UGX", 0),
    ("USD", 2),
    ("UYU", 2),
    ("UZS", 2),
    ("VES", 2),
    ("VND", 0),
    ("VUV", 0),
    ("WST", 2),
    ("XAF", 0),
    ("XCD", 2),
    ("XOF", 0),
    ("XPF", 0),
    ("YER", 2),
    ("ZAR", 2),
    ("ZMW", 2),
    ("ZWG", 2),
];

/// The minor-unit exponent of an ISO 4217 code; `None` for a code that is not one.
pub fn exponent(currency: &str) -> Option<u32> {
    CURRENCIES
        .binary_search_by(|(code, _)| code.cmp(&currency))
        .ok()
        .map(|i| CURRENCIES[i].1)
}

pub fn is_currency(code: &str) -> bool {
    exponent(code).is_some()
}

/// Why an amount could not be read or converted.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MoneyError {
    #[error("{0:?} is not an ISO 4217 currency")]
    UnknownCurrency(String),
    #[error("{0} is not an amount")]
    NotAnAmount(String),
    #[error("{0} is negative")]
    Negative(String),
    #[error("{0} does not fit in minor units")]
    TooLarge(String),
    #[error("the FX table has no rate for {0}")]
    NoRate(String),
}

/// A vendor amount in major units (`"10.00"`, `10`, `10.5`) as minor units of `currency`.
/// Text is read digit by digit, so "19.99" is exactly 1999, not 1998.9999.
pub fn major_to_minor(value: &Value, currency: &str) -> Result<i64, MoneyError> {
    let exp = exponent(currency).ok_or_else(|| MoneyError::UnknownCurrency(currency.into()))?;
    let text = match value {
        Value::String(s) => s.trim().to_owned(),
        Value::Number(n) => n.to_string(),
        other => return Err(MoneyError::NotAnAmount(other.to_string())),
    };
    decimal_to_minor(&text, exp)
        .ok_or(MoneyError::NotAnAmount(text.clone()))
        .and_then(|m| {
            if m < 0 {
                Err(MoneyError::Negative(text))
            } else {
                Ok(m)
            }
        })
}

/// `"-12.345"` with exponent 2 → -1235 (half away from zero); `None` if not a decimal.
fn decimal_to_minor(text: &str, exp: u32) -> Option<i64> {
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    // Numbers serde_json prints in exponent form (1e21) are beyond any offer anyway.
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    if whole.is_empty() && fraction.is_empty()
        || !whole.bytes().all(|b| b.is_ascii_digit())
        || !fraction.bytes().all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let mut minor: i64 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    for i in 0..exp as usize {
        let digit = fraction
            .as_bytes()
            .get(i)
            .map_or(0, |b| i64::from(b - b'0'));
        minor = minor.checked_mul(10)?.checked_add(digit)?;
    }
    if fraction
        .as_bytes()
        .get(exp as usize)
        .is_some_and(|b| *b >= b'5')
    {
        minor = minor.checked_add(1)?;
    }
    Some(if negative { -minor } else { minor })
}

/// Rates to one base currency: one unit of base buys `rate(c)` units of `c`.
pub trait Rates {
    /// Units of `currency` per unit of the base; `None` when the table lacks it.
    fn rate(&self, currency: &str) -> Option<f64>;
}

/// `amount_minor` of `from` in minor units of `to`.
pub fn convert(
    amount_minor: i64,
    from: &str,
    to: &str,
    rates: &impl Rates,
) -> Result<i64, MoneyError> {
    if from == to {
        return Ok(amount_minor);
    }
    let from_exp = exponent(from).ok_or_else(|| MoneyError::UnknownCurrency(from.into()))?;
    let to_exp = exponent(to).ok_or_else(|| MoneyError::UnknownCurrency(to.into()))?;
    let from_rate = rates
        .rate(from)
        .ok_or_else(|| MoneyError::NoRate(from.into()))?;
    let to_rate = rates
        .rate(to)
        .ok_or_else(|| MoneyError::NoRate(to.into()))?;
    let major = amount_minor as f64 / 10f64.powi(from_exp as i32);
    let converted = major / from_rate * to_rate * 10f64.powi(to_exp as i32);
    if !converted.is_finite() || converted.abs() >= i64::MAX as f64 {
        return Err(MoneyError::TooLarge(format!(
            "{amount_minor} {from} in {to}"
        )));
    }
    Ok(converted.round() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    struct Table(Vec<(&'static str, f64)>);
    impl Rates for Table {
        fn rate(&self, currency: &str) -> Option<f64> {
            self.0.iter().find(|(c, _)| *c == currency).map(|(_, r)| *r)
        }
    }

    #[test]
    fn the_table_is_sorted_so_lookups_find_every_code() {
        assert!(CURRENCIES.windows(2).all(|w| w[0].0 < w[1].0));
        assert_eq!(exponent("USD"), Some(2));
        assert_eq!(exponent("JPY"), Some(0));
        assert_eq!(exponent("KWD"), Some(3));
        assert_eq!(exponent("usd"), None);
        assert_eq!(exponent("XXX"), None);
    }

    #[test]
    fn vendor_amounts_become_exact_minor_units() {
        assert_eq!(major_to_minor(&json!("19.99"), "USD"), Ok(1999));
        assert_eq!(major_to_minor(&json!(19.99), "USD"), Ok(1999));
        assert_eq!(major_to_minor(&json!("1000"), "JPY"), Ok(1000));
        assert_eq!(major_to_minor(&json!("1.2345"), "KWD"), Ok(1235));
        assert_eq!(major_to_minor(&json!(".5"), "EUR"), Ok(50));
        assert_eq!(
            major_to_minor(&json!("-5.00"), "USD"),
            Err(MoneyError::Negative("-5.00".into()))
        );
        assert!(matches!(
            major_to_minor(&json!("5,00"), "EUR"),
            Err(MoneyError::NotAnAmount(_))
        ));
        assert!(matches!(
            major_to_minor(&json!("5"), "ABC"),
            Err(MoneyError::UnknownCurrency(_))
        ));
        assert!(matches!(
            major_to_minor(&json!("99999999999999999999"), "USD"),
            Err(MoneyError::NotAnAmount(_))
        ));
    }

    #[test]
    fn conversion_goes_through_the_base_and_rounds_once() {
        let rates = Table(vec![("USD", 1.0), ("EUR", 0.92), ("JPY", 151.3)]);
        assert_eq!(convert(1000, "USD", "EUR", &rates), Ok(920));
        assert_eq!(convert(1000, "USD", "JPY", &rates), Ok(1513));
        assert_eq!(convert(920, "EUR", "USD", &rates), Ok(1000));
        assert_eq!(convert(5, "GBP", "GBP", &rates), Ok(5));
        assert_eq!(
            convert(5, "GBP", "USD", &rates),
            Err(MoneyError::NoRate("GBP".into()))
        );
    }
}
