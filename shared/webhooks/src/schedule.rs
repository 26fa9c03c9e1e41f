//! When a failed delivery is tried again, and when an endpoint gives up.
//!
//! Attempt 1 is immediate; after each failure the next waits the schedule's
//! next step (by default 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h: eight
//! attempts over about 28 hours, like Stripe's and Svix's), or longer when the
//! receiver asked for it with `Retry-After` on a 429 or 503. After the last
//! step the message goes to the dead-letter queue. Tests compress the schedule
//! through `WEBHOOK_RETRY_SCHEDULE`, never skip it.

use std::time::Duration;

/// The default steps.
pub const DEFAULT_SCHEDULE: &str = "5s,5m,30m,2h,5h,10h,10h";
/// SQS can hide a message for at most 12 hours: no wait is longer.
pub const MAX_WAIT: Duration = Duration::from_secs(12 * 60 * 60);
/// An endpoint whose deliveries have all failed for this long is disabled.
pub const DISABLE_AFTER: Duration = Duration::from_secs(5 * 24 * 60 * 60);

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetrySchedule(Vec<Duration>);

impl Default for RetrySchedule {
    fn default() -> Self {
        RetrySchedule::parse(DEFAULT_SCHEDULE).expect("the default schedule parses")
    }
}

impl RetrySchedule {
    /// `5s,5m,30m,2h`: whole numbers with a unit (s, m, h), comma-separated.
    pub fn parse(text: &str) -> Result<RetrySchedule, String> {
        let steps = text
            .split(',')
            .map(|step| {
                let step = step.trim();
                let (number, unit) = step.split_at(step.find(|c: char| !c.is_ascii_digit()).unwrap_or(step.len()));
                let n: u64 = number.parse().map_err(|_| format!("'{step}' is not a whole number with a unit"))?;
                let seconds = match unit {
                    "s" => n,
                    "m" => n * 60,
                    "h" => n * 3600,
                    _ => return Err(format!("'{step}' needs a unit: s, m or h")),
                };
                let wait = Duration::from_secs(seconds);
                if wait > MAX_WAIT {
                    return Err(format!("'{step}' is longer than SQS can wait (12 h)"));
                }
                Ok(wait)
            })
            .collect::<Result<Vec<_>, _>>()?;
        if steps.is_empty() {
            return Err("the schedule needs at least one step".into());
        }
        Ok(RetrySchedule(steps))
    }

    /// From `WEBHOOK_RETRY_SCHEDULE`, else the default.
    pub fn from_env() -> Result<RetrySchedule, String> {
        match fleetgate_api::dynamo::optional_var("WEBHOOK_RETRY_SCHEDULE") {
            None => Ok(RetrySchedule::default()),
            Some(text) => RetrySchedule::parse(&text).map_err(|e| format!("WEBHOOK_RETRY_SCHEDULE: {e}")),
        }
    }

    /// Deliveries of one message, first attempt included (the queue's
    /// `maxReceiveCount`: one more receive sends it to the dead-letter queue).
    pub fn attempts(&self) -> u32 {
        self.0.len() as u32 + 1
    }

    /// How long to wait after failed attempt `attempt` (1-based), honouring the
    /// receiver's `Retry-After` when it asks for longer; `None` after the last.
    pub fn wait_after(&self, attempt: u32, retry_after: Option<Duration>) -> Option<Duration> {
        let step = *self.0.get(attempt.checked_sub(1)? as usize)?;
        Some(retry_after.map_or(step, |asked| asked.max(step)).min(MAX_WAIT))
    }
}

/// What an answer means for the delivery.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Delivered,
    /// 410 Gone: the receiver says the endpoint no longer exists: disable it now.
    Gone,
    /// Anything else (timeouts, refused connections and redirects included).
    Failed,
}

pub fn verdict(status: Option<u16>) -> Verdict {
    match status {
        Some(200..=299) => Verdict::Delivered,
        Some(410) => Verdict::Gone,
        _ => Verdict::Failed,
    }
}

/// A `Retry-After` of a 429 or 503 (seconds, or an HTTP date relative to `now`).
pub fn retry_after(status: u16, header: Option<&str>, now: std::time::SystemTime) -> Option<Duration> {
    if status != 429 && status != 503 {
        return None;
    }
    let header = header?.trim();
    if let Ok(seconds) = header.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate_parse(header)?;
    Some(at.duration_since(now).unwrap_or_default())
}

/// An IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), the form RFC 9110 requires senders to use.
fn httpdate_parse(text: &str) -> Option<std::time::SystemTime> {
    let format = time::macros::format_description!(
        "[weekday repr:short], [day] [month repr:short] [year] [hour]:[minute]:[second] GMT"
    );
    let parsed = time::PrimitiveDateTime::parse(text, &format).ok()?;
    Some(parsed.assume_utc().into())
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: fn(u64) -> Duration = Duration::from_secs;

    #[test]
    fn the_default_schedule_is_eight_attempts_over_about_28_hours() {
        let schedule = RetrySchedule::default();
        assert_eq!(schedule.attempts(), 8);
        let waits: Vec<Duration> = (1..=7).map(|n| schedule.wait_after(n, None).unwrap()).collect();
        assert_eq!(waits, [S(5), S(300), S(1800), S(7200), S(18000), S(36000), S(36000)]);
        assert_eq!(schedule.wait_after(8, None), None, "then the dead-letter queue");
        assert_eq!(waits.iter().sum::<Duration>(), S(99_305));
    }

    #[test]
    fn retry_after_lengthens_a_wait_but_never_shortens_it_or_passes_12_hours() {
        let schedule = RetrySchedule::default();
        assert_eq!(schedule.wait_after(1, Some(S(60))), Some(S(60)));
        assert_eq!(schedule.wait_after(2, Some(S(60))), Some(S(300)));
        assert_eq!(schedule.wait_after(1, Some(S(86_400))), Some(MAX_WAIT));
    }

    #[test]
    fn schedules_parse_or_say_why_not() {
        assert_eq!(RetrySchedule::parse("1s, 2s").unwrap(), RetrySchedule(vec![S(1), S(2)]));
        for bad in ["", "5", "5d", "-1s", "13h", "1s,,2s"] {
            assert!(RetrySchedule::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn answers_are_judged_by_status() {
        assert_eq!(verdict(Some(200)), Verdict::Delivered);
        assert_eq!(verdict(Some(204)), Verdict::Delivered);
        assert_eq!(verdict(Some(410)), Verdict::Gone);
        for failed in [Some(301), Some(404), Some(429), Some(500), None] {
            assert_eq!(verdict(failed), Verdict::Failed, "{failed:?}");
        }
    }

    #[test]
    fn retry_after_is_read_only_from_429_and_503_in_both_forms() {
        let now = std::time::UNIX_EPOCH + S(784_111_717); // Sun, 06 Nov 1994 08:48:37 GMT
        assert_eq!(retry_after(429, Some("120"), now), Some(S(120)));
        assert_eq!(retry_after(503, Some("Sun, 06 Nov 1994 08:49:37 GMT"), now), Some(S(60)));
        assert_eq!(retry_after(500, Some("120"), now), None);
        assert_eq!(retry_after(429, Some("soon"), now), None);
        assert_eq!(retry_after(429, None, now), None);
    }
}
