//! Rate limits, monthly quotas and tenant caps (SPEC §8), counted in the usage
//! table of the emulator through the runner every endpoint shares (`GET /me` is the
//! endpoint here; every route goes through the same `serve`). Window arithmetic is
//! tested with explicit instants on the counter itself, so nothing waits for a clock.
//!
//! The emulator applies each UpdateItem atomically (it serves one request at a
//! time), as DynamoDB does per item; DynamoDB adds per-partition throughput limits
//! the emulator does not have, which is why each key counts on its own item.

use std::collections::BTreeMap;

use futures::future::join_all;
use http::StatusCode;
use lambda_http::{Body, Response};
use serde_json::{Value, json};

use fleetgate_api::Timestamp;
use fleetgate_api::http::Gate;
use fleetgate_api::usage::{PolicyName, UsageCounter, UtcMonth};
use fleetgate_scopes::{AuthContext, Environment, Limits, RateLimit, ScopeSet, TenantId};

use crate::fault_proxy::{Fault, FaultProxy};
use crate::helpers::{Req, TestStack, body_json, header, local_client};

fn limit(text: &str) -> RateLimit {
    text.parse().unwrap()
}

/// A key of `tenant` with these limits.
fn key(tenant: &str, key_id: &str, limits: Limits) -> AuthContext {
    AuthContext::new(
        TenantId::parse(tenant).unwrap(),
        key_id.into(),
        "limited key".into(),
        ScopeSet::parse_granted(["vehicles:read"]).unwrap(),
        Environment::Test,
        None,
    )
    .with_limits(limits)
}

fn rate(text: &str) -> Limits {
    Limits { rate_limit: Some(limit(text)), ..Limits::default() }
}

/// A key id of its own per test (counters are per key).
fn new_key_id() -> String {
    fleetgate_api::keys::new_public_id("key_")
}

fn counter(stack: &TestStack) -> UsageCounter {
    UsageCounter::new(stack.client.clone(), stack.tables.usage.clone())
}

fn counting_gate(stack: &TestStack) -> whoami::State {
    whoami::State { gate: Gate { audit: None, usage: Some(counter(stack)) } }
}

async fn me(state: &whoami::State, auth: &AuthContext) -> Response<Body> {
    let fields: BTreeMap<&str, String> = auth.to_authorizer_context().into_iter().collect();
    whoami::handler(state, Req::new("GET", "/me").build(Some(&fields))).await.unwrap()
}

/// Waits until at least `margin` seconds are left in the current `window`-second
/// window, so a test's requests all fall in one window.
async fn fresh_window(window: i64, margin: i64) {
    let left = window - Timestamp::now().unix_seconds().rem_euclid(window);
    if left < margin {
        tokio::time::sleep(std::time::Duration::from_secs(left as u64 + 1)).await;
    }
}

/// The stored usage item of `key_id` this month.
async fn usage_item(stack: &TestStack, key_id: &str) -> Value {
    usage_item_at(stack, key_id, Timestamp::now().unix_seconds()).await
}

/// The stored usage item of `key_id` for the month of `at`.
async fn usage_item_at(stack: &TestStack, key_id: &str, at: i64) -> Value {
    let item = stack
        .client
        .get_item()
        .table_name(&stack.tables.usage)
        .key("pk", aws_sdk_dynamodb::types::AttributeValue::S(format!("key#{key_id}")))
        .key("sk", aws_sdk_dynamodb::types::AttributeValue::S(UtcMonth::of(at).label()))
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item
        .unwrap_or_default();
    serde_dynamo::from_item(item).unwrap()
}

#[tokio::test]
async fn n_requests_in_a_window_pass_and_the_next_is_a_429_with_retry_after() {
    let stack = TestStack::new().await;
    let state = counting_gate(&stack);
    let auth = key(&stack.tenant, &new_key_id(), rate("5/minute"));
    fresh_window(60, 5).await;
    for n in 1..=5 {
        let response = me(&state, &auth).await;
        assert_eq!(response.status(), StatusCode::OK, "request {n}");
        assert_eq!(header(&response, "ratelimit-policy"), Some(r#""key";q=5;w=60"#));
        let remaining = header(&response, "ratelimit").unwrap();
        assert!(remaining.starts_with(&format!(r#""key";r={};t="#, 5 - n)), "request {n}: {remaining}");
        assert_eq!(body_json(&response)["usage"]["requests"], n, "this month's usage, this request included");
    }
    let refused = me(&state, &auth).await;
    let left_in_window = 60 - Timestamp::now().unix_seconds().rem_euclid(60);
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after: i64 = header(&refused, "retry-after").unwrap().parse().unwrap();
    assert!((left_in_window - 1..=left_in_window + 1).contains(&retry_after), "{retry_after} vs {left_in_window}");
    assert!(header(&refused, "ratelimit").unwrap().starts_with(r#""key";r=0;t="#));
    let problem = body_json(&refused);
    assert_eq!(
        (&problem["code"], &problem["limit"], &problem["window_seconds"], &problem["retry_after"]),
        (&json!("rate_limited"), &json!(5), &json!(60), &json!(retry_after))
    );
    assert_eq!(header(&refused, "content-type"), Some("application/problem+json"));
    // A refusal writes nothing: the window and the month hold the five admitted.
    let item = usage_item(&stack, &auth.key_id).await;
    assert_eq!(item["used"], 5);
    let window = format!("w60_{}", Timestamp::now().unix_seconds().div_euclid(60));
    assert_eq!(item[&window], 5, "{item}");
}

#[tokio::test]
async fn the_window_resets_and_a_burst_is_spread_over_a_longer_window() {
    let stack = TestStack::new().await;
    let counter = counter(&stack);
    let t0 = 1_800_000_000; // the start of a second, and of a 5-second window
    let auth = key(&stack.tenant, &new_key_id(), rate("2/second"));
    for at in [t0, t0] {
        assert_eq!(counter.admit(&auth, at).await.refusal, None);
    }
    let refused = counter.admit(&auth, t0).await.refusal.expect("third in one second");
    assert_eq!((refused.policy.quota, refused.policy.window_seconds, refused.policy.reset_seconds), (2, 1, 1));
    assert_eq!(counter.admit(&auth, t0 + 1).await.refusal, None, "a new second, a new window");

    // 10/second with a burst of 50: 50 at once, then nothing until the 5-second window ends.
    let bursty = key(&stack.tenant, &new_key_id(), rate("10/second/50"));
    for n in 0..50 {
        assert_eq!(counter.admit(&bursty, t0).await.refusal, None, "burst request {n}");
    }
    let refused = counter.admit(&bursty, t0 + 4).await.refusal.expect("over the burst within the window");
    assert_eq!((refused.policy.window_seconds, refused.policy.reset_seconds), (5, 1));
    assert_eq!(counter.admit(&bursty, t0 + 5).await.refusal, None);
    // Ended windows' counts are removed by later writes: the item stays small.
    let item = usage_item_at(&stack, &bursty.key_id, t0).await;
    let windows: Vec<&String> = item.as_object().unwrap().keys().filter(|k| k.starts_with('w')).collect();
    assert!(windows.len() <= 2, "{windows:?}");
}

#[tokio::test]
async fn two_keys_of_one_tenant_do_not_affect_each_other() {
    let stack = TestStack::new().await;
    let counter = counter(&stack);
    let now = Timestamp::now().unix_seconds();
    let hot = key(&stack.tenant, &new_key_id(), rate("2/minute"));
    let quiet = key(&stack.tenant, &new_key_id(), rate("2/minute"));
    for _ in 0..2 {
        assert_eq!(counter.admit(&hot, now).await.refusal, None);
    }
    for _ in 0..20 {
        assert!(counter.admit(&hot, now).await.refusal.is_some(), "the hot key is over its limit");
    }
    let verdict = counter.admit(&quiet, now).await;
    assert_eq!(verdict.refusal, None, "another key of the tenant keeps its whole limit");
    assert_eq!(verdict.state.policies[0].remaining, 1);
}

#[tokio::test]
async fn a_tenant_cap_binds_across_its_keys_and_gives_back_the_keys_count() {
    let stack = TestStack::new().await;
    let state = counting_gate(&stack);
    fresh_window(60, 5).await;
    let capped = |key_id: &str| {
        key(
            &stack.tenant,
            key_id,
            Limits {
                rate_limit: Some(limit("100/second")),
                tenant_rate_limit: Some(limit("3/minute")),
                ..Limits::default()
            },
        )
    };
    let (first, second) = (capped(&new_key_id()), capped(&new_key_id()));
    for auth in [&first, &first, &second] {
        let response = me(&state, auth).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(header(&response, "ratelimit-policy"), Some(r#""key";q=100;w=1, "tenant";q=3;w=60"#));
    }
    let refused = me(&state, &second).await;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    let problem = body_json(&refused);
    assert_eq!((&problem["limit"], &problem["window_seconds"]), (&json!(3), &json!(60)));
    assert!(problem["detail"].as_str().unwrap().contains("this fleet's keys together"), "{problem}");
    // The refused request was given back to the key: its month counts one request.
    assert_eq!(usage_item(&stack, &second.key_id).await["used"], 1);
    // Another tenant is not capped by this one.
    let elsewhere = key("another-fleet", &new_key_id(), rate("100/second"));
    assert_eq!(me(&state, &elsewhere).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn forty_concurrent_requests_against_a_limit_of_fifteen_admit_exactly_fifteen() {
    let stack = TestStack::new().await;
    let state = counting_gate(&stack);
    let auth = key(&stack.tenant, &new_key_id(), rate("15/minute"));
    fresh_window(60, 10).await;
    let responses = join_all((0..40).map(|_| me(&state, &auth))).await;
    let statuses: Vec<u16> = responses.iter().map(|r| r.status().as_u16()).collect();
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 15, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 25, "{statuses:?}");
    assert_eq!(usage_item(&stack, &auth.key_id).await["used"], 15);
}

#[tokio::test]
async fn a_quota_runs_out_mid_month_and_renews_with_the_next() {
    let stack = TestStack::new().await;
    let counter = counter(&stack);
    let quota = |key_id: &str| {
        key(
            &stack.tenant,
            key_id,
            Limits { rate_limit: Some(limit("100/second")), monthly_quota: Some(3), ..Limits::default() },
        )
    };
    let auth = quota(&new_key_id());
    let mid_month = 1_794_744_000; // 2026-11-15T12:00:00Z
    let december = 1_796_083_200; // 2026-12-01T00:00:00Z
    for n in 0..3 {
        let verdict = counter.admit(&auth, mid_month + n).await;
        assert_eq!(verdict.refusal, None);
        assert_eq!(verdict.month_used, Some(n as u64 + 1));
    }
    let refused = counter.admit(&auth, mid_month + 3600).await.refusal.expect("the quota is spent");
    assert_eq!(refused.policy.name, PolicyName::Quota);
    assert_eq!((refused.policy.quota, refused.policy.window_seconds), (3, 30 * 86_400));
    assert_eq!(refused.policy.reset_seconds as i64, december - (mid_month + 3600), "retry at the month's end");
    assert_eq!(counter.admit(&auth, december).await.refusal, None, "a new month, a new quota");

    // Through the runner: 429 quota_exceeded, Retry-After at the start of next month.
    let state = counting_gate(&stack);
    let live = quota(&new_key_id());
    for _ in 0..3 {
        assert_eq!(me(&state, &live).await.status(), StatusCode::OK);
    }
    // The handler reads the clock between these two readings; a second may tick
    // over on either side, so Retry-After lies between the two distances.
    let before = Timestamp::now().unix_seconds();
    let refused = me(&state, &live).await;
    let after = Timestamp::now().unix_seconds();
    let month_end = UtcMonth::of(before).next().start_epoch();
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after: i64 = header(&refused, "retry-after").unwrap().parse().unwrap();
    assert!((month_end - after..=month_end - before).contains(&retry_after), "{retry_after} vs {before}..{after}");
    assert_eq!(body_json(&refused)["code"], "quota_exceeded");
    let policy = header(&refused, "ratelimit-policy").unwrap();
    assert!(policy.contains(r#""quota";q=3;w="#), "{policy}");
}

#[tokio::test]
async fn requests_from_a_refused_network_are_not_counted() {
    let stack = TestStack::new().await;
    let state = counting_gate(&stack);
    let auth = key(&stack.tenant, &new_key_id(), rate("5/minute"))
        .with_allowed_cidrs(Some(vec![fleetgate_scopes::Cidr::parse("198.51.100.0/24").unwrap()]));
    let fields: BTreeMap<&str, String> = auth.to_authorizer_context().into_iter().collect();
    let refused =
        whoami::handler(&state, Req::new("GET", "/me").source_ip("203.0.113.9").build(Some(&fields))).await.unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    assert!(header(&refused, "ratelimit-policy").is_none(), "nothing about the key");
    // A stolen key used from elsewhere cannot spend its holder's limits.
    assert_eq!(usage_item(&stack, &auth.key_id).await, json!({}));
}

#[tokio::test]
async fn me_shows_the_restrictions_and_this_months_usage() {
    let stack = TestStack::new().await;
    let state = counting_gate(&stack);
    let auth = key(
        &stack.tenant,
        &new_key_id(),
        Limits {
            rate_limit: Some(limit("10/second/20")),
            monthly_quota: Some(1000),
            tenant_rate_limit: Some(limit("600/minute")),
        },
    );
    me(&state, &auth).await;
    let body = body_json(&me(&state, &auth).await);
    assert_eq!(body["rate_limit"], json!({"requests": 10, "per": "second", "burst": 20}));
    assert_eq!(body["monthly_quota"], 1000);
    assert_eq!(body["tenant_rate_limit"], json!({"requests": 600, "per": "minute", "burst": 600}));
    assert_eq!(body["usage"], json!({"month": UtcMonth::of(Timestamp::now().unix_seconds()).label(), "requests": 2}));
}

#[tokio::test]
async fn limits_fail_open_when_the_usage_table_is_down_while_authentication_fails_closed() {
    let stack = TestStack::new().await;
    let (api_key, _) = stack.create_key(&["vehicles:read"]).await;
    let proxy = FaultProxy::start(&crate::helpers::endpoint()).await;
    let through_proxy = stack.through(local_client(&proxy.endpoint));
    let state = counting_gate(&through_proxy);
    let auth = key(&stack.tenant, &new_key_id(), Limits { monthly_quota: Some(1), ..rate("1/minute") });
    for fault in [Fault::Down, Fault::Silent, Fault::Throttled] {
        proxy.set(fault.clone()).await;
        let started = std::time::Instant::now();
        for _ in 0..2 {
            let response = me(&state, &auth).await;
            assert_eq!(response.status(), StatusCode::OK, "{fault:?}: limits open");
            // The policy is known, the counts are not: no RateLimit header that would lie.
            assert_eq!(
                header(&response, "ratelimit-policy"),
                Some(
                    r#""key";q=1;w=60, "quota";q=1;w="#.to_owned()
                        + &UtcMonth::of(Timestamp::now().unix_seconds()).seconds().to_string()
                )
                .as_deref()
            );
            assert!(header(&response, "ratelimit").is_none());
            assert_eq!(body_json(&response)["usage"]["requests"], Value::Null);
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(4),
            "{fault:?}: {:?} for two requests",
            started.elapsed()
        );
        // The same outage refuses authentication: the authorizer fails, it never allows.
        let authorizer = authorizer::handler(
            &through_proxy.authorizer(),
            crate::helpers::authorizer_event(&[("X-API-Key", &api_key)]),
        )
        .await;
        assert!(authorizer.is_err(), "{fault:?}: authentication must fail closed");
    }
    proxy.set(Fault::None).await;
    assert_eq!(me(&state, &auth).await.status(), StatusCode::OK);
    assert_eq!(me(&state, &auth).await.status(), StatusCode::TOO_MANY_REQUESTS, "counting again once it is back");
}
