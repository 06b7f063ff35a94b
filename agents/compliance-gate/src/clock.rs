//! Recipient-local time: what the quiet-hours policies compare, and when a deferred send
//! may go. Time zones come from the member's profile (IANA names); daylight-saving
//! changes are the zone database's, so 21:00 is 21:00 on the wall on either side of one.

use chrono::{NaiveDateTime, NaiveTime, TimeZone, Timelike};
use chrono_tz::Tz;

/// The recipient's wall-clock time at `at_ms` (Unix milliseconds).
pub fn local(at_ms: i64, zone: Tz) -> Option<NaiveDateTime> {
    zone.timestamp_millis_opt(at_ms)
        .single()
        .map(|t| t.naive_local())
}

/// The first instant at or after `at_ms` whose local time is inside the window
/// `[from_minute, until_minute)`: `at_ms` itself when it already is, else the window's
/// next opening. A local time the zone skips (a spring-forward gap) opens at the first
/// minute after the gap.
pub fn next_opening(at_ms: i64, zone: Tz, from_minute: i64, until_minute: i64) -> Option<i64> {
    let now = local(at_ms, zone)?;
    let minute = i64::from(now.hour() * 60 + now.minute());
    if (from_minute..until_minute).contains(&minute) {
        return Some(at_ms);
    }
    let day = if minute < from_minute {
        now.date()
    } else {
        now.date().succ_opt()?
    };
    let opening = NaiveTime::from_hms_opt(
        u32::try_from(from_minute / 60).ok()?,
        u32::try_from(from_minute % 60).ok()?,
        0,
    )?;
    let mut wall = day.and_time(opening);
    // A gap is at most a few hours; walk out of it a minute at a time.
    for _ in 0..(6 * 60) {
        if let Some(t) = zone.from_local_datetime(&wall).earliest() {
            return Some(t.timestamp_millis());
        }
        wall += chrono::Duration::minutes(1);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(text: &str) -> i64 {
        chrono::DateTime::parse_from_rfc3339(text)
            .unwrap()
            .timestamp_millis()
    }

    #[test]
    fn local_time_follows_daylight_saving() {
        let ny: Tz = "America/New_York".parse().unwrap();
        // 8 March 2026, the first day of EDT (UTC-4): 00:59 UTC next day is 20:59.
        let t = local(utc("2026-03-09T00:59:00Z"), ny).unwrap();
        assert_eq!(t.to_string(), "2026-03-08 20:59:00");
        // The day before, still EST (UTC-5): the same UTC hour is an hour earlier.
        let t = local(utc("2026-03-08T00:59:00Z"), ny).unwrap();
        assert_eq!(t.to_string(), "2026-03-07 19:59:00");
    }

    #[test]
    fn a_send_after_the_window_waits_for_the_next_morning() {
        let ny: Tz = "America/New_York".parse().unwrap();
        let inside = utc("2026-03-09T00:59:00Z");
        assert_eq!(next_opening(inside, ny, 480, 1260), Some(inside));
        // 23:00 EDT on 8 March → 08:00 EDT on 9 March (12:00 UTC).
        let late = utc("2026-03-09T03:00:00Z");
        assert_eq!(
            next_opening(late, ny, 480, 1260),
            Some(utc("2026-03-09T12:00:00Z"))
        );
        // 23:00 EST on 7 March → 08:00 EDT on 8 March: the night lost an hour.
        let late = utc("2026-03-08T04:00:00Z");
        assert_eq!(
            next_opening(late, ny, 480, 1260),
            Some(utc("2026-03-08T12:00:00Z"))
        );
        // Before the window on the same day.
        let early = utc("2026-03-09T10:00:00Z");
        assert_eq!(
            next_opening(early, ny, 480, 1260),
            Some(utc("2026-03-09T12:00:00Z"))
        );
    }

    #[test]
    fn an_opening_in_a_skipped_hour_moves_past_the_gap() {
        let ny: Tz = "America/New_York".parse().unwrap();
        // A window opening at 02:30, on the night 02:00-03:00 does not exist.
        let before = utc("2026-03-08T06:00:00Z"); // 01:00 EST
        assert_eq!(
            next_opening(before, ny, 150, 1260),
            Some(utc("2026-03-08T07:00:00Z")) // 03:00 EDT
        );
    }
}
