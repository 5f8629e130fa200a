//! Wall-clock milliseconds, and the formats the old gem's tables use.

use chrono::{DateTime, Local, NaiveDateTime, TimeZone, Utc};
use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// `YYYY-mm-dd HH:MM:SS` in UTC: how ActiveRecord stores datetimes.
pub fn sql_datetime(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .unwrap_or_default()
        .format("%Y-%m-%d %H:%M:%S")
        .to_string()
}

/// Parses a `YYYY-mm-dd HH:MM:SS` UTC datetime (as [`sql_datetime`] writes
/// it, with or without fractional seconds) to ms.
pub fn parse_sql_datetime(s: &str) -> Option<i64> {
    let head = s.get(..19)?;
    NaiveDateTime::parse_from_str(head, "%Y-%m-%d %H:%M:%S")
        .ok()
        .map(|t| t.and_utc().timestamp_millis())
}

/// `YYYYmmddHHMMSS` in the server's local time: the old gem's `started_at`.
pub fn compact_local(ms: i64) -> String {
    Local
        .timestamp_millis_opt(ms)
        .single()
        .map(|t| t.format("%Y%m%d%H%M%S").to_string())
        .unwrap_or_default()
}

/// Parses an old-gem `started_at` (`YYYYmmddHHMMSS`, local time) to ms.
pub fn parse_compact_local(s: &str) -> Option<i64> {
    let naive = NaiveDateTime::parse_from_str(s, "%Y%m%d%H%M%S").ok()?;
    Local
        .from_local_datetime(&naive)
        .earliest()
        .map(|t| t.timestamp_millis())
}

/// Whole seconds between two instants, rounded to the nearest second,
/// never negative.
pub fn elapsed_secs(from_ms: i64, to_ms: i64) -> i64 {
    ((to_ms - from_ms).max(0) + 500) / 1000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_local_round_trips_to_the_second() {
        let ms = 1_700_000_000_000;
        assert_eq!(parse_compact_local(&compact_local(ms)), Some(ms));
        assert_eq!(parse_compact_local("garbage"), None);
    }

    #[test]
    fn sql_datetime_is_utc() {
        assert_eq!(sql_datetime(0), "1970-01-01 00:00:00");
        assert_eq!(parse_sql_datetime("1970-01-01 00:00:01"), Some(1000));
        assert_eq!(
            parse_sql_datetime("2026-11-25 10:00:00.000000"),
            parse_sql_datetime("2026-11-25 10:00:00")
        );
        assert_eq!(parse_sql_datetime("nonsense"), None);
    }

    #[test]
    fn elapsed_rounds_and_clamps() {
        assert_eq!(elapsed_secs(0, 1499), 1);
        assert_eq!(elapsed_secs(0, 1500), 2);
        assert_eq!(elapsed_secs(10, 0), 0);
    }
}
