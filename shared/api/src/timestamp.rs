//! UTC timestamps with one fixed RFC 3339 form, so stored strings sort chronologically.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime, UtcOffset};

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
        let utc = at.to_offset(UtcOffset::UTC);
        Timestamp(utc.replace_nanosecond(0).expect("0 ns is valid"))
    }

    /// Parses any RFC 3339 instant (any offset, any precision) into UTC seconds.
    pub fn parse(s: &str) -> Option<Timestamp> {
        OffsetDateTime::parse(s, &Rfc3339).ok().map(Timestamp::from_datetime)
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

    proptest! {
        #[test]
        fn string_order_is_time_order(a in 0i64..4_000_000_000, b in 0i64..4_000_000_000) {
            let ta = Timestamp::from_datetime(OffsetDateTime::from_unix_timestamp(a).unwrap());
            let tb = Timestamp::from_datetime(OffsetDateTime::from_unix_timestamp(b).unwrap());
            prop_assert_eq!(ta.cmp(&tb), ta.to_string().cmp(&tb.to_string()));
            prop_assert_eq!(Timestamp::parse(&ta.to_string()), Some(ta));
        }
    }
}
