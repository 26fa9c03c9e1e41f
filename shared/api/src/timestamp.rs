//! UTC timestamps with one fixed RFC 3339 form, so stored strings sort chronologically.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime, UtcOffset};

/// The years a timestamp may have, in UTC: their text form is always
/// `YYYY-MM-DDTHH:MM:SSZ`, which parses back to the same instant and sorts as
/// time does. (RFC 3339 allows years 0000–9999 with any offset; year 0 at
/// `+00:01` is year −1 in UTC, which has no RFC 3339 form.) Nothing Fleetgate
/// records predates the Unix epoch.
pub const YEARS: std::ops::RangeInclusive<i32> = 1970..=9999;

/// A UTC instant truncated to whole seconds, written as `2026-11-01T08:00:00Z`.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(OffsetDateTime);

impl Timestamp {
    pub fn now() -> Timestamp {
        Timestamp::from_datetime(OffsetDateTime::now_utc())
    }

    /// Now, plus a string of it to the microsecond that sorts in time order
    /// (`2026-11-01T08:00:00.123456Z`), for sort keys that must order events within a second.
    pub fn now_with_sort_key() -> (Timestamp, String) {
        let now = OffsetDateTime::now_utc();
        let at = Timestamp::from_datetime(now);
        (at, micros_sort_key(at, now.microsecond()))
    }

    /// The sort key of the start of this second, in the form of [`Timestamp::now_with_sort_key`].
    pub fn sort_key(self) -> String {
        micros_sort_key(self, 0)
    }

    fn from_datetime(at: OffsetDateTime) -> Timestamp {
        Timestamp::checked_from_datetime(at).expect("the clock reads a time in range")
    }

    /// In UTC, if that is representable (`9999-12-31T23:59:59-00:01` is not: year 10000).
    fn checked_from_datetime(at: OffsetDateTime) -> Option<Timestamp> {
        let utc = at.checked_to_offset(UtcOffset::UTC)?;
        Some(Timestamp(utc.replace_nanosecond(0).expect("0 ns is valid")))
    }

    /// Parses any RFC 3339 instant (any offset, any precision) into UTC seconds;
    /// `None` when its UTC year is outside [`YEARS`].
    pub fn parse(s: &str) -> Option<Timestamp> {
        let at = Timestamp::checked_from_datetime(OffsetDateTime::parse(s, &Rfc3339).ok()?)?;
        YEARS.contains(&at.year()).then_some(at)
    }

    pub fn plus(self, by: Duration) -> Timestamp {
        Timestamp(self.0.saturating_add(by))
    }

    pub fn minus(self, by: Duration) -> Timestamp {
        Timestamp(self.0.saturating_sub(by))
    }

    pub fn year(self) -> i32 {
        self.0.year()
    }

    pub fn unix_seconds(self) -> i64 {
        self.0.unix_timestamp()
    }

    /// The instant `seconds` after the epoch; `None` outside [`YEARS`].
    pub fn from_unix_seconds(seconds: i64) -> Option<Timestamp> {
        let at = Timestamp::checked_from_datetime(OffsetDateTime::from_unix_timestamp(seconds).ok()?)?;
        YEARS.contains(&at.year()).then_some(at)
    }
}

fn micros_sort_key(at: Timestamp, micros: u32) -> String {
    format!("{}.{micros:06}Z", at.to_string().trim_end_matches('Z'))
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.0;
        write!(
            f,
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
            d.year(),
            u8::from(d.month()),
            d.day(),
            d.hour(),
            d.minute(),
            d.second()
        )
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Timestamp::parse(&text).ok_or_else(|| serde::de::Error::custom("expected an RFC 3339 timestamp"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn offsets_and_fractions_normalise_to_utc_seconds() {
        let t = Timestamp::parse("2026-11-01T10:00:00.987+02:00").unwrap();
        assert_eq!(t.to_string(), "2026-11-01T08:00:00Z");
        assert!(Timestamp::parse("yesterday").is_none());
    }

    #[test]
    fn instants_outside_the_years_are_refused_whatever_their_offset() {
        for text in [
            "0000-01-01T00:00:00+00:01",
            "0000-01-01T00:00:00Z",
            "1969-12-31T23:59:59Z",
            "1970-01-01T00:30:00+01:00",
            "9999-12-31T23:59:59-00:01",
        ] {
            assert_eq!(Timestamp::parse(text), None, "{text}");
        }
        assert_eq!(Timestamp::parse("1970-01-01T00:00:00Z").unwrap().unix_seconds(), 0);
        assert_eq!(Timestamp::parse("9999-12-31T23:59:59Z").unwrap().to_string(), "9999-12-31T23:59:59Z");
    }

    proptest! {
        /// Every accepted input, whatever its offset and year, formats to text that
        /// parses back to the same instant (a stored value can always be read).
        #[test]
        fn every_accepted_timestamp_round_trips(
            year in 0i32..=9999, month in 1u8..=12, day in 1u8..=28, hour in 0u8..24, minute in 0u8..60,
            second in 0u8..60, sign in prop::bool::ANY, offset_hours in 0u8..24, offset_minutes in 0u8..60,
        ) {
            let sign = if sign { '+' } else { '-' };
            let text = format!(
                "{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}{sign}{offset_hours:02}:{offset_minutes:02}"
            );
            if let Some(at) = Timestamp::parse(&text) {
                prop_assert!(YEARS.contains(&at.year()));
                prop_assert_eq!(Timestamp::parse(&at.to_string()), Some(at));
            }
        }

        #[test]
        fn string_order_is_time_order(a in 0i64..4_000_000_000, b in 0i64..4_000_000_000) {
            let ta = Timestamp::from_datetime(OffsetDateTime::from_unix_timestamp(a).unwrap());
            let tb = Timestamp::from_datetime(OffsetDateTime::from_unix_timestamp(b).unwrap());
            prop_assert_eq!(ta.cmp(&tb), ta.to_string().cmp(&tb.to_string()));
            prop_assert_eq!(Timestamp::parse(&ta.to_string()), Some(ta));
        }
    }
}
