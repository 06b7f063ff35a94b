//! CDNOW-format purchase files (the standard buy-till-you-die benchmark, see
//! `data/cdnow/README.md`), read by the replay and by `swarm ltv fit`, and their
//! buy-till-you-die summaries under the benchmark's conventions.

use std::collections::BTreeMap;
use std::path::Path;

use loyalty_contracts::Date;

use crate::{Spend, Summary};

/// One purchase line of a CDNOW file.
#[derive(Debug, Clone, PartialEq)]
pub struct Purchase {
    /// 1-based line number in the file (the event id is derived from it).
    pub line: usize,
    pub customer: String,
    pub day: Date,
    pub cds: i32,
    pub amount_minor: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum CdnowError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}:{line}: {reason}")]
    Parse {
        path: String,
        line: usize,
        reason: String,
    },
}

/// Parse `CDNOW_master.txt` (`customer date cds dollars`, an optional header) or
/// `CDNOW_sample.txt` (`master_id sample_id date cds dollars`).
pub fn read_purchases(path: &Path) -> Result<Vec<Purchase>, CdnowError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| CdnowError::Io {
        path: shown.clone(),
        source,
    })?;
    parse_purchases(&text, &shown)
}

/// [`read_purchases`] of text already read; `shown` names it in errors.
pub fn parse_purchases(text: &str, shown: &str) -> Result<Vec<Purchase>, CdnowError> {
    let mut purchases = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let line = index + 1;
        let fields: Vec<&str> = raw.split_whitespace().collect();
        if fields.is_empty() || fields[0] == "customer_id" {
            continue;
        }
        let err = |reason: String| CdnowError::Parse {
            path: shown.to_owned(),
            line,
            reason,
        };
        let (customer, date, cds, dollars) = match fields.as_slice() {
            [c, d, n, v] => (c, d, n, v),
            [c, _, d, n, v] => (c, d, n, v),
            _ => {
                return Err(err(format!(
                    "expected 4 or 5 fields, found {}",
                    fields.len()
                )));
            }
        };
        let day = parse_yyyymmdd(date).ok_or_else(|| err(format!("bad date {date:?}")))?;
        let cds: i32 = cds
            .parse()
            .map_err(|_| err(format!("bad CD count {cds:?}")))?;
        let amount_minor =
            parse_dollars(dollars).ok_or_else(|| err(format!("bad dollar value {dollars:?}")))?;
        purchases.push(Purchase {
            line,
            customer: (*customer).to_owned(),
            day,
            cds,
            amount_minor,
        });
    }
    Ok(purchases)
}

fn parse_yyyymmdd(text: &str) -> Option<Date> {
    if text.len() != 8 {
        return None;
    }
    let year = text[0..4].parse().ok()?;
    let month = text[4..6].parse().ok()?;
    let day = text[6..8].parse().ok()?;
    Date::from_ymd(year, month, day)
}

/// Dollars with up to two decimals to cents, exactly (no float rounding).
fn parse_dollars(text: &str) -> Option<i64> {
    let (whole, frac) = text.split_once('.').unwrap_or((text, "0"));
    if frac.len() > 2 || whole.starts_with('-') {
        return None;
    }
    let cents: i64 = format!("{frac:0<2}").parse().ok()?;
    Some(whole.parse::<i64>().ok()? * 100 + cents)
}

/// One customer's calibration-period summary.
#[derive(Debug, Clone, PartialEq)]
pub struct CustomerSummary {
    pub customer: String,
    pub first_purchase: Date,
    /// Purchase process, in units of `unit_days` days.
    pub summary: Summary,
    /// Repeat purchases and their mean value in major currency units (dollars).
    pub spend: Spend,
}

/// Summaries under the benchmark's conventions (data/cdnow/README.md): purchases on the
/// same day are one transaction with their values summed; x = transactions after the
/// first, t_x = first to last, T = first to `calibration_end`, in days divided by
/// `unit_days` (7 gives the benchmark's fractional weeks).
/// Purchases after `calibration_end` are left out, and so are customers who start later.
pub fn summarise(
    purchases: &[Purchase],
    calibration_end: Date,
    unit_days: f64,
) -> Vec<CustomerSummary> {
    let mut days: BTreeMap<&str, BTreeMap<i32, i64>> = BTreeMap::new();
    for p in purchases.iter().filter(|p| p.day <= calibration_end) {
        *days
            .entry(&p.customer)
            .or_default()
            .entry(p.day.0)
            .or_default() += p.amount_minor;
    }
    days.into_iter()
        .filter_map(|(customer, by_day)| {
            let (&first, _) = by_day.first_key_value()?;
            let (&last, _) = by_day.last_key_value()?;
            let x = by_day.len() - 1;
            let repeat_minor: i64 = by_day.values().skip(1).sum();
            let mean_value = if x == 0 {
                0.0
            } else {
                repeat_minor as f64 / 100.0 / x as f64
            };
            Some(CustomerSummary {
                customer: customer.to_owned(),
                first_purchase: Date(first),
                summary: Summary::new(
                    x as f64,
                    f64::from(last - first) / unit_days,
                    f64::from(calibration_end.0 - first) / unit_days,
                ),
                spend: Spend {
                    x: x as f64,
                    mean_value,
                },
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_layouts_exactly() {
        let dir = std::env::temp_dir().join(format!("cdnow-parse-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let master = dir.join("m.txt");
        std::fs::write(&master, " customer_id  date number_of_cds  dollar_value\n 00002 19970112  5   77.00\n 00003 19970102  2   20.7\n").unwrap();
        let p = read_purchases(&master).unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!(
            (
                p[0].customer.as_str(),
                p[0].day.ymd(),
                p[0].cds,
                p[0].amount_minor
            ),
            ("00002", (1997, 1, 12), 5, 7700)
        );
        assert_eq!(p[1].amount_minor, 2070);
        let sample = dir.join("s.txt");
        std::fs::write(&sample, " 00004 0001 19970101  2   29.33\n").unwrap();
        assert_eq!(read_purchases(&sample).unwrap()[0].amount_minor, 2933);
        std::fs::write(&sample, " 00004 0001 19971301  2   29.33\n").unwrap();
        assert!(matches!(
            read_purchases(&sample),
            Err(CdnowError::Parse { line: 1, .. })
        ));
    }
}
