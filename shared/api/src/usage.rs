//! Counting requests against key restrictions (SPEC §8): a key's rate limit and
//! monthly quota, and its tenant's cap, in the usage table (`USAGE_TABLE`).
//!
//! **Algorithm: fixed windows, one conditional write.** A limit of `burst`
//! requests per window of `window_seconds` ([`RateLimit::window_seconds`]) is
//! counted in an attribute named after the window (`w<seconds>_<index>`, index =
//! epoch seconds / window), on the key's item for the month, beside the month's
//! count (`used`). Each request is one `UpdateItem`: `ADD used 1, w… 1` on the
//! condition that the window's count is below `burst` (and `used` below the
//! quota). DynamoDB applies it atomically, so N concurrent requests against a
//! limit of 15 admit exactly 15, with no read first; a refused request writes
//! nothing (a runaway client does not push its own next window back), and the
//! answer (`ALL_NEW`, or `ALL_OLD` on refusal) gives the counts the `RateLimit`
//! headers report. Why not the others: GCRA and token buckets need
//! `max(stored, now)`, which an update expression cannot compute, so they need a
//! read or a retry on every request; a sliding-window estimate needs arithmetic
//! in the condition, which DynamoDB does not have. The cost of fixed windows is
//! the boundary: up to twice `burst` can pass in one window's length spanning two
//! windows. Naming the attribute after its window resets the count without a
//! second write; ended windows' attributes are removed by later writes (the
//! names this instance last saw), so an item holds a few attributes, never a log.
//!
//! **Isolation.** Each key counts on its own item: a hot key never slows another
//! key. A tenant cap is a second item per tenant, written only when the tenant
//! has a cap, and only after the key's own limit admitted the request (a runaway
//! key's refused requests never spend its tenant's budget): one extra round trip
//! for capped tenants, none for the others (README: cost per request).
//!
//! **Failure.** If the table cannot be reached the request is admitted uncounted
//! (fail open, logged): limits protect the service, they must not take it down.
//! Authentication is not here and never fails open.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, ReturnValuesOnConditionCheckFailure};
use time::{Date, Month, OffsetDateTime, Time};

use fleetgate_scopes::{AuthContext, RateLimit, Scope, TenantId};

use crate::dynamo::{ConfigError, DbError, batch_get, env_var};

/// The month's admitted requests, on every usage item.
const USED: &str = "used";
/// DynamoDB deletes an item after this (epoch seconds): the end of the next month.
pub(crate) const TTL: &str = "expires_at_epoch";
/// At most this many items' ended-window names are remembered per instance.
const MAX_REMEMBERED_ITEMS: usize = 10_000;
/// The most a count may take before the request goes on uncounted (fail open):
/// far above DynamoDB's few milliseconds, far below the 4 s other calls may wait,
/// so a sick usage table delays requests by at most this.
const COUNT_BUDGET: std::time::Duration = std::time::Duration::from_millis(1_000);

/// A UTC calendar month, the unit of quotas and of usage items.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct UtcMonth {
    start: OffsetDateTime,
}

impl UtcMonth {
    pub fn of(epoch_seconds: i64) -> UtcMonth {
        let at = OffsetDateTime::from_unix_timestamp(epoch_seconds).unwrap_or(OffsetDateTime::UNIX_EPOCH);
        let first = Date::from_calendar_date(at.year(), at.month(), 1).expect("day 1 exists");
        UtcMonth { start: first.with_time(Time::MIDNIGHT).assume_utc() }
    }

    /// `2026-11`: the sort key of usage items, and what admins see.
    pub fn label(self) -> String {
        format!("{:04}-{:02}", self.start.year(), u8::from(self.start.month()))
    }

    pub fn next(self) -> UtcMonth {
        let (year, month) = match self.start.month() {
            Month::December => (self.start.year() + 1, Month::January),
            month => (self.start.year(), month.next()),
        };
        let first = Date::from_calendar_date(year, month, 1).expect("day 1 exists");
        UtcMonth { start: first.with_time(Time::MIDNIGHT).assume_utc() }
    }

    pub fn start_epoch(self) -> i64 {
        self.start.unix_timestamp()
    }

    pub fn seconds(self) -> u64 {
        (self.next().start_epoch() - self.start_epoch()) as u64
    }
}

/// Which restriction a `RateLimit` header item reports.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum PolicyName {
    Key,
    Tenant,
    Quota,
}

impl PolicyName {
    pub fn as_str(self) -> &'static str {
        match self {
            PolicyName::Key => "key",
            PolicyName::Tenant => "tenant",
            PolicyName::Quota => "quota",
        }
    }
}

/// One restriction as the `RateLimit-Policy` (quota, window) and `RateLimit`
/// (remaining, seconds to reset) headers report it.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct PolicyState {
    pub name: PolicyName,
    pub quota: u64,
    pub window_seconds: u64,
    pub remaining: u64,
    pub reset_seconds: u64,
}

/// The restrictions of one request, as its response headers state them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LimitState {
    pub policies: Vec<PolicyState>,
    /// Whether the counts are known (false: the counter store failed, limits open).
    pub counted: bool,
}

impl LimitState {
    /// `RateLimit-Policy`: `"key";q=100;w=1, "quota";q=10000;w=2592000`.
    pub fn policy_header(&self) -> Option<String> {
        self.header(|p| format!("q={};w={}", p.quota, p.window_seconds))
    }

    /// `RateLimit`: `"key";r=42;t=1, …`; none when the counts are unknown.
    pub fn remaining_header(&self) -> Option<String> {
        self.header(|p| format!("r={};t={}", p.remaining, p.reset_seconds)).filter(|_| self.counted)
    }

    /// One `"name";parameters` item per policy, comma-separated; none without policies.
    fn header(&self, parameters: impl Fn(&PolicyState) -> String) -> Option<String> {
        let items: Vec<String> =
            self.policies.iter().map(|p| format!("\"{}\";{}", p.name.as_str(), parameters(p))).collect();
        (!items.is_empty()).then(|| items.join(", "))
    }
}

/// A request that is over a limit.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// The binding restriction: its quota is `limit`, its reset is `Retry-After`.
    pub policy: PolicyState,
}

/// What counting decided for one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    pub state: LimitState,
    /// `Some`: answer 429.
    pub refusal: Option<Refusal>,
    /// The key's admitted requests this month, this one included (when counted).
    pub month_used: Option<u64>,
}

impl Verdict {
    /// Nothing to count: a context without limits.
    fn unlimited() -> Verdict {
        Verdict { state: LimitState { policies: Vec::new(), counted: true }, refusal: None, month_used: None }
    }
}

/// One window of one rate limit at one instant.
struct Window {
    limit: RateLimit,
    attribute: String,
    index: i64,
    now: i64,
}

impl Window {
    fn at(limit: RateLimit, now: i64) -> Window {
        let seconds = limit.window_seconds() as i64;
        let index = now.div_euclid(seconds);
        Window { limit, attribute: format!("w{seconds}_{index}"), index, now }
    }

    fn state(&self, name: PolicyName, count: u64) -> PolicyState {
        let seconds = self.limit.window_seconds();
        PolicyState {
            name,
            quota: u64::from(self.limit.burst),
            window_seconds: seconds,
            remaining: u64::from(self.limit.burst).saturating_sub(count),
            reset_seconds: ((self.index + 1) * seconds as i64 - self.now).max(1) as u64,
        }
    }
}

/// Whether an attribute is a window that ended before `now` (safe to remove: no
/// request counts in it any more, whatever its length).
fn ended_window(attribute: &str, now: i64) -> bool {
    let Some((seconds, index)) = attribute.strip_prefix('w').and_then(|rest| rest.split_once('_')) else {
        return false;
    };
    match (seconds.parse::<i64>(), index.parse::<i64>()) {
        (Ok(seconds), Ok(index)) => (index + 1).saturating_mul(seconds) <= now,
        _ => false,
    }
}

fn number(item: &HashMap<String, AttributeValue>, name: &str) -> u64 {
    item.get(name).and_then(|v| v.as_n().ok()).and_then(|n| n.parse().ok()).unwrap_or(0)
}

/// The usage table: counts requests and reads a month's usage back.
#[derive(Clone, Debug)]
pub struct UsageCounter {
    pub(crate) client: Client,
    pub(crate) table: String,
    /// Per item, the ended windows' attributes its last answer showed: removed by
    /// this instance's next write to it.
    ended: Arc<Mutex<HashMap<String, Vec<String>>>>,
    /// When this instance last noted each (key, scope) use (`crate::scope_use`).
    pub(crate) scopes_noted: Arc<Mutex<HashMap<(String, Scope), i64>>>,
}

/// The outcome of one conditional count on one item.
enum Counted {
    Admitted(HashMap<String, AttributeValue>),
    Refused(HashMap<String, AttributeValue>),
}

impl UsageCounter {
    /// Counts through `client`'s connections, with its own time budget
    /// ([`COUNT_BUDGET`]), set once here rather than on every request.
    pub fn new(client: Client, table: String) -> UsageCounter {
        let budget = aws_sdk_dynamodb::config::timeout::TimeoutConfig::builder()
            .connect_timeout(COUNT_BUDGET)
            .operation_timeout(COUNT_BUDGET)
            .build();
        let client = Client::from_conf(client.config().to_builder().timeout_config(budget).build());
        UsageCounter { client, table, ended: Arc::default(), scopes_noted: Arc::default() }
    }

    pub fn from_env(client: Client) -> Result<UsageCounter, ConfigError> {
        Ok(UsageCounter::new(client, env_var("USAGE_TABLE")?))
    }

    pub(crate) fn key_item(key_id: &str) -> String {
        format!("key#{key_id}")
    }

    fn tenant_item(tenant: &TenantId) -> String {
        format!("tenant#{tenant}")
    }

    /// Counts one request of `auth`'s key at `now` (epoch seconds) against its
    /// limits. A store failure admits it uncounted (logged).
    pub async fn admit(&self, auth: &AuthContext, now: i64) -> Verdict {
        let limits = &auth.limits;
        if limits.rate_limit.is_none() && limits.monthly_quota.is_none() && limits.tenant_rate_limit.is_none() {
            return Verdict::unlimited();
        }
        let month = UtcMonth::of(now);
        let key_window = limits.rate_limit.map(|limit| Window::at(limit, now));
        let quota_state = |used: u64| {
            limits.monthly_quota.map(|quota| PolicyState {
                name: PolicyName::Quota,
                quota,
                window_seconds: month.seconds(),
                remaining: quota.saturating_sub(used),
                reset_seconds: (month.next().start_epoch() - now).max(1) as u64,
            })
        };
        let tenant_window = limits.tenant_rate_limit.map(|limit| Window::at(limit, now));
        // What the headers report when nothing could be counted: the policies alone.
        let uncounted = || {
            let mut policies: Vec<PolicyState> = key_window.iter().map(|w| w.state(PolicyName::Key, 0)).collect();
            policies.extend(quota_state(0));
            policies.extend(tenant_window.iter().map(|w| w.state(PolicyName::Tenant, 0)));
            Verdict { state: LimitState { policies, counted: false }, refusal: None, month_used: None }
        };

        let key_pk = Self::key_item(&auth.key_id);
        let counted = match self.count(&key_pk, &month, now, key_window.as_ref(), limits.monthly_quota).await {
            Ok(counted) => counted,
            Err(err) => {
                tracing::error!(key_id = %auth.key_id, error = %err, "usage table unavailable: request admitted uncounted");
                return uncounted();
            }
        };
        let (item, refused) = match counted {
            Counted::Admitted(item) => (item, false),
            Counted::Refused(item) => (item, true),
        };
        let used = number(&item, USED);
        let window_count = key_window.as_ref().map_or(0, |w| number(&item, &w.attribute));
        let mut policies: Vec<PolicyState> =
            key_window.iter().map(|w| w.state(PolicyName::Key, window_count)).collect();
        policies.extend(quota_state(used));
        if refused {
            // The old item says which condition failed: the quota, else the window.
            let over_quota = limits.monthly_quota.is_some_and(|quota| used >= quota);
            let wanted = if over_quota { PolicyName::Quota } else { PolicyName::Key };
            let binding = policies.iter().find(|p| p.name == wanted).or(policies.first()).copied();
            policies.extend(tenant_window.iter().map(|w| w.state(PolicyName::Tenant, 0)));
            return Verdict {
                state: LimitState { policies, counted: true },
                // Only a limit's condition can fail, so a policy is always there.
                refusal: binding.map(|policy| Refusal { policy: PolicyState { remaining: 0, ..policy } }),
                month_used: Some(used),
            };
        }

        if let Some(window) = &tenant_window {
            let tenant_pk = Self::tenant_item(&auth.tenant_id);
            match self.count(&tenant_pk, &month, now, Some(window), None).await {
                Ok(Counted::Admitted(item)) => {
                    policies.push(window.state(PolicyName::Tenant, number(&item, &window.attribute)));
                }
                Ok(Counted::Refused(_)) => {
                    // The key's own count took this request; give it back, so the
                    // tenant's cap alone refused it. Best effort: a failure only
                    // makes the key's own count one high until the window ends.
                    if let Err(err) = self.uncount(&key_pk, &month, key_window.as_ref()).await {
                        tracing::warn!(key_id = %auth.key_id, error = %err, "could not return a count to the key");
                    }
                    let binding = window.state(PolicyName::Tenant, u64::from(window.limit.burst));
                    policies.push(binding);
                    return Verdict {
                        state: LimitState { policies, counted: true },
                        refusal: Some(Refusal { policy: binding }),
                        month_used: Some(used.saturating_sub(1)),
                    };
                }
                Err(err) => {
                    tracing::error!(tenant_id = %auth.tenant_id, error = %err, "usage table unavailable: tenant cap not counted");
                    policies.push(window.state(PolicyName::Tenant, 0));
                }
            }
        }
        Verdict { state: LimitState { policies, counted: true }, refusal: None, month_used: Some(used) }
    }

    /// One conditional count on item `pk` for `month`: `used` + 1 and the window's
    /// count + 1, if the window is below its burst and `used` below `quota`.
    async fn count(
        &self,
        pk: &str,
        month: &UtcMonth,
        now: i64,
        window: Option<&Window>,
        quota: Option<u64>,
    ) -> Result<Counted, DbError> {
        let mut update = self
            .update_of(pk, month)
            .expression_attribute_names("#ttl", TTL)
            .expression_attribute_values(":one", AttributeValue::N("1".into()))
            .expression_attribute_values(":ttl", AttributeValue::N(month.next().next().start_epoch().to_string()))
            .return_values(ReturnValue::AllNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        let mut add = vec!["#used :one"];
        let mut conditions = Vec::new();
        if let Some(window) = window {
            update = update
                .expression_attribute_names("#window", &window.attribute)
                .expression_attribute_values(":burst", AttributeValue::N(window.limit.burst.to_string()));
            add.push("#window :one");
            conditions.push("(attribute_not_exists(#window) OR #window < :burst)");
        }
        if let Some(quota) = quota {
            update = update.expression_attribute_values(":quota", AttributeValue::N(quota.to_string()));
            conditions.push("(attribute_not_exists(#used) OR #used < :quota)");
        }
        let ended = self.ended.lock().map(|mut ended| ended.remove(pk).unwrap_or_default()).unwrap_or_default();
        let mut removals = Vec::new();
        for (n, name) in ended.iter().filter(|name| window.is_none_or(|w| **name != w.attribute)).enumerate() {
            let placeholder = format!("#ended{n}");
            update = update.expression_attribute_names(&placeholder, name);
            removals.push(placeholder);
        }
        let mut expression = format!("SET #ttl = :ttl ADD {}", add.join(", "));
        if !removals.is_empty() {
            expression.push_str(&format!(" REMOVE {}", removals.join(", ")));
        }
        update = update.update_expression(expression);
        if !conditions.is_empty() {
            update = update.condition_expression(conditions.join(" AND "));
        }
        let (counted, item) = match update.send().await {
            Ok(output) => {
                let item = output.attributes.unwrap_or_default();
                (Counted::Admitted(item.clone()), item)
            }
            Err(SdkError::ServiceError(service))
                if matches!(service.err(), UpdateItemError::ConditionalCheckFailedException(_)) =>
            {
                let item = match service.into_err() {
                    UpdateItemError::ConditionalCheckFailedException(failed) => failed.item.unwrap_or_default(),
                    _ => HashMap::new(),
                };
                (Counted::Refused(item.clone()), item)
            }
            Err(err) => return Err(DbError::from(err)),
        };
        self.remember_ended(pk, &item, now);
        Ok(counted)
    }

    /// Notes the ended windows `item` still holds, for the next write to remove.
    fn remember_ended(&self, pk: &str, item: &HashMap<String, AttributeValue>, now: i64) {
        let ended: Vec<String> = item.keys().filter(|name| ended_window(name, now)).cloned().collect();
        if ended.is_empty() {
            return;
        }
        if let Ok(mut remembered) = self.ended.lock() {
            if remembered.len() >= MAX_REMEMBERED_ITEMS {
                remembered.clear();
            }
            remembered.insert(pk.to_owned(), ended);
        }
    }

    /// An update of item `pk`'s `month`, its `used` named `#used`.
    fn update_of(
        &self,
        pk: &str,
        month: &UtcMonth,
    ) -> aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder {
        self.client
            .update_item()
            .table_name(&self.table)
            .key("pk", AttributeValue::S(pk.to_owned()))
            .key("sk", AttributeValue::S(month.label()))
            .expression_attribute_names("#used", USED)
    }

    /// Takes back one count from `pk` (a request its tenant's cap refused).
    async fn uncount(&self, pk: &str, month: &UtcMonth, window: Option<&Window>) -> Result<(), DbError> {
        let mut update = self
            .update_of(pk, month)
            .expression_attribute_values(":minus_one", AttributeValue::N("-1".into()))
            .condition_expression("attribute_exists(#used)");
        update = match window {
            Some(window) => update
                .expression_attribute_names("#window", &window.attribute)
                .update_expression("ADD #used :minus_one, #window :minus_one"),
            None => update.update_expression("ADD #used :minus_one"),
        };
        update.send().await.map(|_| ()).map_err(DbError::from)
    }

    /// This month's admitted requests of each key in `key_ids` (0 for a key without
    /// any), for admins' views.
    pub async fn keys_month_usage(&self, key_ids: &[&str], now: i64) -> Result<HashMap<String, u64>, DbError> {
        let pks: Vec<String> = key_ids.iter().map(|id| Self::key_item(id)).collect();
        let found = self.month_usage(&pks, now).await?;
        Ok(key_ids.iter().map(|id| (id.to_string(), found.get(&Self::key_item(id)).copied().unwrap_or(0))).collect())
    }

    /// This month's admitted requests of all of `tenant`'s keys together (counted
    /// only while the tenant has a cap).
    pub async fn tenant_month_usage(&self, tenant: &TenantId, now: i64) -> Result<u64, DbError> {
        let pk = Self::tenant_item(tenant);
        Ok(self.month_usage(std::slice::from_ref(&pk), now).await?.get(&pk).copied().unwrap_or(0))
    }

    async fn month_usage(&self, pks: &[String], now: i64) -> Result<HashMap<String, u64>, DbError> {
        let month = UtcMonth::of(now).label();
        let keys = pks
            .iter()
            .map(|pk| {
                HashMap::from([
                    ("pk".to_owned(), AttributeValue::S(pk.clone())),
                    ("sk".to_owned(), AttributeValue::S(month.clone())),
                ])
            })
            .collect();
        let items = batch_get(&self.client, &self.table, keys, Some(("pk, #used", &[("#used", USED)]))).await?;
        Ok(items
            .iter()
            .filter_map(|item| match item.get("pk") {
                Some(AttributeValue::S(pk)) => Some((pk.clone(), number(item, USED))),
                _ => None,
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_are_utc_calendar_months() {
        // 2026-11-30T23:59:59Z and the next second.
        let last_second = 1_796_083_199;
        assert_eq!(UtcMonth::of(last_second).label(), "2026-11");
        assert_eq!(UtcMonth::of(last_second + 1).label(), "2026-12");
        assert_eq!(UtcMonth::of(last_second).next().start_epoch(), last_second + 1);
        assert_eq!(UtcMonth::of(last_second).seconds(), 30 * 86_400);
        assert_eq!(UtcMonth::of(last_second + 1).next().label(), "2027-01");
    }

    #[test]
    fn windows_are_named_by_length_and_index_and_end_on_time() {
        let limit: RateLimit = "10/second/50".parse().unwrap();
        let window = Window::at(limit, 1_000_003);
        assert_eq!(window.attribute, "w5_200000");
        let state = window.state(PolicyName::Key, 12);
        assert_eq!((state.quota, state.window_seconds, state.remaining, state.reset_seconds), (50, 5, 38, 2));
        assert!(!ended_window("w5_200000", 1_000_004));
        assert!(ended_window("w5_200000", 1_000_005));
        assert!(!ended_window("used", 1_000_005) && !ended_window("w5_x", 1_000_005));
    }

    #[test]
    fn headers_follow_the_ietf_draft() {
        let state = LimitState {
            policies: vec![
                PolicyState { name: PolicyName::Key, quota: 100, window_seconds: 1, remaining: 42, reset_seconds: 1 },
                PolicyState {
                    name: PolicyName::Quota,
                    quota: 10_000,
                    window_seconds: 2_592_000,
                    remaining: 9,
                    reset_seconds: 86_400,
                },
            ],
            counted: true,
        };
        assert_eq!(state.policy_header().unwrap(), r#""key";q=100;w=1, "quota";q=10000;w=2592000"#);
        assert_eq!(state.remaining_header().unwrap(), r#""key";r=42;t=1, "quota";r=9;t=86400"#);
        let open = LimitState { counted: false, ..state };
        assert!(open.policy_header().is_some() && open.remaining_header().is_none());
    }
}
