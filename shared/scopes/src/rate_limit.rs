//! A rate limit, of a key or of a tenant (all its keys together): `requests` per
//! `per` (second or minute), with a burst allowance. How it is counted is
//! `fleetgate_api::usage`'s business; this is the value and its rules.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The unit of a rate limit.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Per {
    Second,
    Minute,
}

impl Per {
    pub fn seconds(self) -> u64 {
        match self {
            Per::Second => 1,
            Per::Minute => 60,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Per::Second => "second",
            Per::Minute => "minute",
        }
    }
}

/// `burst` may be at most this many times `requests`: the window it implies
/// (see [`RateLimit::window_seconds`]) stays at most ten `per`s long.
pub const MAX_BURST_FACTOR: u32 = 10;

/// `requests` per `per` on average, and at most `burst` at once.
///
/// Counted as at most `burst` requests in each window of `burst / requests` pers
/// (rounded up to a whole second), so a client may spend `burst` at once and then
/// waits; without a `burst` it equals `requests` and the window is one `per`.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "RateLimitInput")]
pub struct RateLimit {
    pub requests: u32,
    pub per: Per,
    pub burst: u32,
}

/// The JSON an admin sends: `burst` may be left out.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RateLimitInput {
    requests: u32,
    per: Per,
    #[serde(default)]
    burst: Option<u32>,
}

impl TryFrom<RateLimitInput> for RateLimit {
    type Error = InvalidRateLimit;

    fn try_from(input: RateLimitInput) -> Result<RateLimit, InvalidRateLimit> {
        RateLimit::new(input.requests, input.per, input.burst)
    }
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum InvalidRateLimit {
    #[error("requests must be at least 1")]
    ZeroRequests,
    #[error("burst ({burst}) must be at least requests ({requests})")]
    BurstBelowRequests { requests: u32, burst: u32 },
    #[error("burst ({burst}) may be at most {MAX_BURST_FACTOR} times requests ({requests})")]
    BurstTooLarge { requests: u32, burst: u32 },
    #[error("'{0}' is not a rate limit such as 100/second or 600/minute/100")]
    Malformed(String),
}

impl RateLimit {
    pub fn new(requests: u32, per: Per, burst: Option<u32>) -> Result<RateLimit, InvalidRateLimit> {
        let burst = burst.unwrap_or(requests);
        if requests == 0 {
            return Err(InvalidRateLimit::ZeroRequests);
        }
        if burst < requests {
            return Err(InvalidRateLimit::BurstBelowRequests { requests, burst });
        }
        if u64::from(burst) > u64::from(requests) * u64::from(MAX_BURST_FACTOR) {
            return Err(InvalidRateLimit::BurstTooLarge { requests, burst });
        }
        Ok(RateLimit { requests, per, burst })
    }

    /// The window `burst` requests are counted in: `burst / requests` pers, rounded
    /// up to a whole second, so the average never exceeds `requests` per `per`.
    pub fn window_seconds(&self) -> u64 {
        (self.per.seconds() * u64::from(self.burst)).div_ceil(u64::from(self.requests))
    }

    /// The average rate, in requests per second (what a ceiling is compared with).
    pub fn per_second(&self) -> f64 {
        f64::from(self.requests) / self.per.seconds() as f64
    }
}

/// `100/second`, or with a burst `100/second/200`: the authorizer context's form
/// and the template parameters'.
impl FromStr for RateLimit {
    type Err = InvalidRateLimit;

    fn from_str(text: &str) -> Result<RateLimit, InvalidRateLimit> {
        let malformed = || InvalidRateLimit::Malformed(text.chars().take(64).collect());
        let number = |part: &str| {
            (!part.is_empty() && part.len() <= 9 && part.bytes().all(|b| b.is_ascii_digit()))
                .then(|| part.parse::<u32>().ok())
                .flatten()
                .ok_or_else(malformed)
        };
        let mut parts = text.trim().split('/');
        let requests = number(parts.next().unwrap_or_default())?;
        let per = match parts.next() {
            Some("second") => Per::Second,
            Some("minute") => Per::Minute,
            _ => return Err(malformed()),
        };
        let burst = parts.next().map(number).transpose()?;
        if parts.next().is_some() {
            return Err(malformed());
        }
        RateLimit::new(requests, per, burst)
    }
}

impl fmt::Display for RateLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.requests, self.per.as_str())?;
        if self.burst != self.requests {
            write!(f, "/{}", self.burst)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_holds_the_burst_at_the_average_rate() {
        let plain: RateLimit = "100/second".parse().unwrap();
        assert_eq!((plain.burst, plain.window_seconds()), (100, 1));
        let bursty: RateLimit = "10/second/50".parse().unwrap();
        assert_eq!((bursty.burst, bursty.window_seconds()), (50, 5));
        // 4 in a 2-second window averages 2/s, under the 3/s asked: rounding never allows more.
        assert_eq!(RateLimit::new(3, Per::Second, Some(4)).unwrap().window_seconds(), 2);
        assert_eq!("600/minute".parse::<RateLimit>().unwrap().window_seconds(), 60);
        assert_eq!("60/minute/600".parse::<RateLimit>().unwrap().window_seconds(), 600);
    }

    #[test]
    fn text_form_round_trips_and_refuses_the_rest() {
        for text in ["100/second", "600/minute/6000", "1/minute", "5/second/50"] {
            let parsed: RateLimit = text.parse().unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(parsed.to_string(), text);
        }
        assert_eq!("5/second/5".parse::<RateLimit>().unwrap().to_string(), "5/second");
        for bad in [
            "",
            "100",
            "0/second",
            "100/hour",
            "100/second/",
            "-1/second",
            "1e3/second",
            "5/second/4",
            "5/second/51",
            "1/second/2/3",
        ] {
            assert!(bad.parse::<RateLimit>().is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn json_takes_an_optional_burst_and_nothing_unknown() {
        let limit: RateLimit = serde_json::from_str(r#"{"requests": 5, "per": "second"}"#).unwrap();
        assert_eq!(limit, RateLimit { requests: 5, per: Per::Second, burst: 5 });
        assert_eq!(
            serde_json::to_value(limit).unwrap(),
            serde_json::json!({"requests": 5, "per": "second", "burst": 5})
        );
        for bad in [
            r#"{"requests": 0, "per": "second"}"#,
            r#"{"requests": -1, "per": "second"}"#,
            r#"{"requests": 5, "per": "hour"}"#,
            r#"{"requests": 5, "per": "second", "burst": 2}"#,
            r#"{"requests": 5, "per": "second", "rate": 2}"#,
        ] {
            assert!(serde_json::from_str::<RateLimit>(bad).is_err(), "{bad} accepted");
        }
    }
}
