//! Instants: stored as UTC milliseconds (a datetime field's value as RFC 3339
//! in UTC), and read and typed by people in their own time zone.

use crate::{Error, Kind, Text};
use chrono::{DateTime, LocalResult, NaiveDateTime, TimeZone, Utc};
pub use chrono_tz::Tz;

/// The time zone of a user who chose none: where most of Kizuna's users work.
pub const DEFAULT_ZONE: Tz = chrono_tz::Asia::Tokyo;

/// Every time zone a user can choose, by its IANA name.
pub fn zones() -> impl Iterator<Item = &'static str> {
    chrono_tz::TZ_VARIANTS.iter().map(|tz| tz.name())
}

/// A time zone by its IANA name (`Asia/Tokyo`), or `unknown_time_zone`.
pub fn zone(name: &str) -> Result<Tz, Error> {
    name.parse::<Tz>().map_err(|_| {
        Error::new(
            Kind::BadInput,
            "unknown_time_zone",
            Text::new(
                format!("\"{name}\" is not a time zone."),
                format!("「{name}」はタイムゾーンではありません。"),
            ),
            Text::new(
                "Choose one from the list, such as Asia/Tokyo.",
                "一覧から選んでください（例: Asia/Tokyo）。",
            ),
        )
    })
}

/// A stored date-time (RFC 3339) as a person in `tz` reads it:
/// `2026-04-01 09:30 JST` (seconds only when there are some).
pub fn local_text(stored: &str, tz: Tz) -> Option<String> {
    format_local(stored, tz, "%Y-%m-%d %H:%M %Z", "%Y-%m-%d %H:%M:%S %Z")
}

/// A stored date-time as a `datetime-local` input's value in `tz`
/// (`2026-04-01T09:30`).
pub fn local_input(stored: &str, tz: Tz) -> Option<String> {
    format_local(stored, tz, "%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S")
}

/// `stored` in `tz`, in the first format when it falls on a whole minute.
fn format_local(stored: &str, tz: Tz, minutes: &str, seconds: &str) -> Option<String> {
    let local = DateTime::parse_from_rfc3339(stored)
        .ok()?
        .with_timezone(&tz);
    let format = if local.format("%S").to_string() == "00" {
        minutes
    } else {
        seconds
    };
    Some(local.format(format).to_string())
}

/// What a person typed for a date-time, as RFC 3339 in UTC: a local time
/// (`2026-04-01T09:30`, from a `datetime-local` input) is read in `tz`; one
/// with its own offset is taken as it is. A local time a clock change skips
/// is none; one it repeats is the earlier.
pub fn from_local_input(typed: &str, tz: Tz) -> Option<String> {
    let typed = typed.trim();
    let utc = match DateTime::parse_from_rfc3339(typed) {
        Ok(dt) => dt.with_timezone(&Utc),
        Err(_) => {
            let naive = [
                "%Y-%m-%dT%H:%M:%S",
                "%Y-%m-%dT%H:%M",
                "%Y-%m-%d %H:%M:%S",
                "%Y-%m-%d %H:%M",
            ]
            .iter()
            .find_map(|f| NaiveDateTime::parse_from_str(typed, f).ok())?;
            match tz.from_local_datetime(&naive) {
                LocalResult::Single(dt) | LocalResult::Ambiguous(dt, _) => dt.with_timezone(&Utc),
                LocalResult::None => return None,
            }
        }
    };
    Some(utc.format("%Y-%m-%dT%H:%M:%SZ").to_string())
}

/// RFC 3339 in UTC with milliseconds, e.g. `2026-04-01T00:30:00.000Z`.
pub fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn people_read_and_type_date_times_in_their_own_time_zone() {
        let tokyo = DEFAULT_ZONE;
        let new_york = zone("America/New_York").expect("a zone");
        assert_eq!(
            local_text("2026-04-01T00:30:00Z", tokyo).as_deref(),
            Some("2026-04-01 09:30 JST")
        );
        assert_eq!(
            local_text("2026-04-01T00:30:15Z", new_york).as_deref(),
            Some("2026-03-31 20:30:15 EDT")
        );
        assert_eq!(
            local_input("2026-04-01T00:30:00Z", tokyo).as_deref(),
            Some("2026-04-01T09:30")
        );
        assert_eq!(
            from_local_input("2026-04-01T09:30", tokyo).as_deref(),
            Some("2026-04-01T00:30:00Z")
        );
        assert_eq!(
            from_local_input("2026-04-01T09:30:00+02:00", tokyo).as_deref(),
            Some("2026-04-01T07:30:00Z")
        );
        // A round trip through the input changes nothing.
        let typed = local_input("2026-11-01T05:45:00Z", new_york).expect("an input");
        assert_eq!(
            from_local_input(&typed, new_york).as_deref(),
            Some("2026-11-01T05:45:00Z")
        );
        // 02:30 on 8 March 2026 never happens in New York; 01:30 on 1 November
        // happens twice (the earlier is taken).
        assert_eq!(from_local_input("2026-03-08T02:30", new_york), None);
        assert_eq!(
            from_local_input("2026-11-01T01:30", new_york).as_deref(),
            Some("2026-11-01T05:30:00Z")
        );
        assert_eq!(from_local_input("tomorrow", tokyo), None);
        assert_eq!(
            zone("Mars/Olympus").map_err(|e| e.code),
            Err("unknown_time_zone")
        );
        assert!(zones().any(|z| z == "Asia/Tokyo"));
    }

    #[test]
    fn instants_are_rfc3339_utc() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            super::rfc3339(1_767_225_600_123),
            "2026-01-01T00:00:00.123Z"
        );
        assert_eq!(rfc3339(951_782_400_000), "2000-02-29T00:00:00.000Z");
    }
}
