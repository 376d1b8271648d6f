//! Timestamps on the wire: UTC, second precision, `2026-05-21T15:30:20Z`.

use time::format_description::FormatItem;
use time::macros::format_description;
use time::{OffsetDateTime, PrimitiveDateTime, UtcOffset};

const WIRE_FORMAT: &[FormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");

/// A string that is not a wire timestamp.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid timestamp {0:?}: expected YYYY-MM-DDTHH:MM:SSZ")]
pub struct InvalidTimestamp(pub String);

/// Formats `moment` in UTC, dropping sub-second digits.
pub fn format_timestamp(moment: OffsetDateTime) -> String {
    let utc = moment.to_offset(UtcOffset::UTC);
    // The format has only fields every OffsetDateTime has, so formatting
    // cannot fail; fall back to the RFC 3339 form rather than panic anyway.
    utc.format(WIRE_FORMAT)
        .unwrap_or_else(|_| format!("{}Z", utc.date()))
}

/// The current time as a wire timestamp.
pub fn now_timestamp() -> String {
    format_timestamp(OffsetDateTime::now_utc())
}

/// Parses a wire timestamp back into a UTC moment.
pub fn parse_timestamp(value: &str) -> Result<OffsetDateTime, InvalidTimestamp> {
    PrimitiveDateTime::parse(value, WIRE_FORMAT)
        .map(PrimitiveDateTime::assume_utc)
        .map_err(|_| InvalidTimestamp(value.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn formats_utc_with_second_precision() {
        let moment = datetime!(2026-05-21 17:30:20.987 +02:00);
        assert_eq!(format_timestamp(moment), "2026-05-21T15:30:20Z");
    }

    #[test]
    fn parse_round_trips_and_rejects_other_forms() {
        let text = "2026-05-21T15:30:20Z";
        assert_eq!(format_timestamp(parse_timestamp(text).unwrap()), text);
        for bad in [
            "2026-05-21T15:30:20",
            "2026-05-21 15:30:20Z",
            "2026-05-21T15:30:20.5Z",
            "",
        ] {
            assert!(parse_timestamp(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn now_is_well_formed() {
        assert!(parse_timestamp(&now_timestamp()).is_ok());
    }
}
