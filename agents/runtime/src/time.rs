//! Event-time types carrying Avro logical types.
//!
//! Plain `i64`/`i32` would derive as bare `long`/`int`; these newtypes make the schema say
//! `timestamp-millis` and `date`, so Java, Python and Rust consumers all see real times.

use std::collections::HashSet;

use apache_avro::Schema;
use apache_avro::schema::{Name, NamespaceRef, RecordField};
use apache_avro::serde::AvroSchemaComponent;
use serde::{Deserialize, Serialize};

pub const MILLIS_PER_DAY: i64 = 86_400_000;

/// Milliseconds since the Unix epoch, UTC (`timestamp-millis`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Timestamp(pub i64);

/// Days since the Unix epoch (`date`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize,
)]
#[serde(transparent)]
pub struct Date(pub i32);

impl Timestamp {
    /// The UTC calendar day this instant falls on. Instants beyond the ±5.8 million
    /// years a `date` can hold saturate at its ends instead of wrapping to an
    /// unrelated day.
    pub fn day(self) -> Date {
        let day = self.0.div_euclid(MILLIS_PER_DAY);
        Date(i32::try_from(day).unwrap_or(if day < 0 { i32::MIN } else { i32::MAX }))
    }
}

/// ISO 8601 (YYYY-MM-DD).
impl std::fmt::Display for Date {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (y, m, d) = self.ymd();
        write!(f, "{y:04}-{m:02}-{d:02}")
    }
}

/// Parses ISO 8601 (YYYY-MM-DD).
impl std::str::FromStr for Date {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || format!("{text:?} is not a YYYY-MM-DD date");
        let mut parts = text.splitn(3, '-');
        let mut next = || parts.next().ok_or_else(bad);
        let (y, m, d) = (next()?, next()?, next()?);
        Date::from_ymd(
            y.parse().map_err(|_| bad())?,
            m.parse().map_err(|_| bad())?,
            d.parse().map_err(|_| bad())?,
        )
        .ok_or_else(bad)
    }
}

impl Date {
    /// Midnight UTC at the start of this day.
    pub fn start(self) -> Timestamp {
        Timestamp(i64::from(self.0) * MILLIS_PER_DAY)
    }

    /// Days since 1970-01-01 for a proleptic Gregorian date (Howard Hinnant's algorithm),
    /// or `None` when the month or day is out of range.
    pub fn from_ymd(year: i32, month: u32, day: u32) -> Option<Date> {
        if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
            return None;
        }
        let y = if month <= 2 { year - 1 } else { year } as i64;
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let m = month as i64;
        let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + day as i64 - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        Some(Date((era * 146_097 + doe - 719_468) as i32))
    }

    /// The (year, month, day) of this date.
    pub fn ymd(self) -> (i32, u32, u32) {
        let z = i64::from(self.0) + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
        let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
        let year = (yoe + era * 400 + i64::from(month <= 2)) as i32;
        (year, month, day)
    }
}

fn days_in_month(year: i32, month: u32) -> u32 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

impl AvroSchemaComponent for Timestamp {
    fn get_schema_in_ctxt(_: &mut HashSet<Name>, _: NamespaceRef) -> Schema {
        Schema::TimestampMillis
    }

    fn get_record_fields_in_ctxt(
        _: &mut HashSet<Name>,
        _: NamespaceRef,
    ) -> Option<Vec<RecordField>> {
        None
    }
}

impl AvroSchemaComponent for Date {
    fn get_schema_in_ctxt(_: &mut HashSet<Name>, _: NamespaceRef) -> Schema {
        Schema::Date
    }

    fn get_record_fields_in_ctxt(
        _: &mut HashSet<Name>,
        _: NamespaceRef,
    ) -> Option<Vec<RecordField>> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates_round_trip() {
        assert_eq!(Date::from_ymd(1970, 1, 1), Some(Date(0)));
        assert_eq!(Date::from_ymd(1997, 1, 1), Some(Date(9862)));
        for d in [-1000, 0, 9862, 10_408, 20_000] {
            let (y, m, day) = Date(d).ymd();
            assert_eq!(Date::from_ymd(y, m, day), Some(Date(d)));
        }
        assert_eq!(Date::from_ymd(1997, 2, 29), None);
        assert_eq!(
            Date::from_ymd(1996, 2, 29).map(|d| d.ymd()),
            Some((1996, 2, 29))
        );
        assert_eq!(Timestamp(-1).day(), Date(-1));
        assert_eq!(Timestamp(i64::MAX).day(), Date(i32::MAX));
        assert_eq!(Timestamp(i64::MIN).day(), Date(i32::MIN));
    }
}
