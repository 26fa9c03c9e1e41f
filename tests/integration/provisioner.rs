//! The provisioner against DynamoDB Local: every action, every refusal, and that a
//! refusal writes nothing.

use serde_json::{Value, json};

use fleetgate_api::Timestamp;
use fleetgate_api::keys::{ApiKey, KeyRecord};
use fleetgate_scopes::{Environment, ScopeSet, TenantId};

use std::collections::BTreeSet;

use crate::helpers::{TestStack, authorizer_event, page_of, walk_pages};

async fn expect_refusal(stack: &TestStack, event: Value, code: &str) -> String {
    match stack.provision(event.clone()).await {
        Ok(ok) => panic!("expected {code} for {event}, got {ok}"),
        Err(err) => {
            assert_eq!(err.code(), code, "{event}: {err}");
            err.to_string()
        }
    }
}

#[tokio::test]
async fn create_key_returns_the_secret_once_and_stores_only_its_hash() {
    let stack = TestStack::new().await;
    let response = stack
        .provision(json!({"action": "create_key", "tenant_id": stack.tenant, "name": "tms-sync",
                          "preset": "inspection-submission", "description": "TMS nightly sync"}))
        .await
        .unwrap();

    let api_key = response["api_key"].as_str().unwrap();
    assert!(api_key.starts_with("fg_test_"));
    let key = &response["key"];
    assert!(key["key_id"].as_str().unwrap().starts_with("key_"));
    assert_eq!(key["tenant_id"], stack.tenant.as_str());
    assert_eq!(key["name"], "tms-sync");
    assert_eq!(key["environment"], "test");
    assert_eq!(key["scopes"], json!(["vehicles:read", "inspections:write"]));
    assert_eq!(key["effective_scopes"], json!(["vehicles:read", "inspections:read", "inspections:write"]));
    assert_eq!(key["hint"], format!("…{}", &api_key[api_key.len() - 4..]));
    assert_eq!(key["status"], "active");
    for absent in ["expires_at", "revoked_at", "last_used_at"] {
        assert_eq!(key[absent], Value::Null, "{absent}");
    }
    assert!(key.get("key_hash").is_none() && key.get("api_key").is_none());

    // The plaintext is nowhere in the tables; the hash is the partition key.
    let keys_table = stack.dump(&stack.tables.keys).await;
    let audit_table = stack.dump(&stack.tables.audit).await;
    assert!(!keys_table.contains(api_key) && !audit_table.contains(api_key));
    assert!(keys_table.contains(ApiKey::parse(api_key).unwrap().hash().as_str()));
    assert_eq!(stack.audit_actions().await, ["create_key"]);
}

#[tokio::test]
async fn each_bad_create_request_gets_its_own_error_and_writes_nothing() {
    let stack = TestStack::new().await;
    let tenant = stack.tenant.as_str();
    let base = |extra: Value| {
        let mut event = json!({"action": "create_key", "tenant_id": tenant, "name": "k"});
        event.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        event
    };
    let unknown = expect_refusal(&stack, base(json!({"scopes": ["vehicles:delete"]})), "unknown_scope").await;
    assert!(unknown.contains("vehicles:read, vehicles:write, inspections:read, inspections:write"), "{unknown}");
    let planned = expect_refusal(&stack, base(json!({"scopes": ["reports:read"]})), "scope_not_available").await;
    assert!(planned.contains("planned"), "{planned}");
    let review = expect_refusal(&stack, base(json!({"scopes": ["users:read"]})), "scope_not_available").await;
    assert!(review.contains("under review"), "{review}");
    expect_refusal(&stack, base(json!({"scopes": []})), "empty_scopes").await;
    let preset = expect_refusal(&stack, base(json!({"preset": "admin"})), "unknown_preset").await;
    assert!(preset.contains("full-fleet"), "{preset}");
    expect_refusal(&stack, base(json!({})), "invalid_field").await;
    expect_refusal(&stack, base(json!({"scopes": ["vehicles:read"], "preset": "read-only"})), "invalid_field").await;
    expect_refusal(&stack, base(json!({"scopes": vec!["vehicles:read"; 10_000]})), "invalid_field").await;
    expect_refusal(&stack, base(json!({"preset": "read-only", "name": "x".repeat(10_000)})), "invalid_field").await;
    expect_refusal(&stack, base(json!({"preset": "read-only", "name": "   "})), "invalid_field").await;
    expect_refusal(&stack, base(json!({"preset": "read-only", "expires_at": "2001-01-01T00:00:00Z"})), "invalid_field")
        .await;
    expect_refusal(&stack, base(json!({"preset": "read-only", "expires_in_days": 0})), "invalid_field").await;
    expect_refusal(&stack, base(json!({"preset": "read-only", "environment": "live"})), "invalid_field").await;
    expect_refusal(&stack, base(json!({"preset": "read-only", "admin": true})), "invalid_request").await;
    expect_refusal(&stack, base(json!({"preset": "read-only", "tenant_id": "Bad Tenant/1"})), "invalid_tenant_id")
        .await;
    expect_refusal(&stack, json!({"action": "make_admin", "tenant_id": tenant}), "unknown_action").await;
    expect_refusal(&stack, json!({"tenant_id": tenant}), "invalid_request").await;
    expect_refusal(&stack, json!("create_key"), "invalid_request").await;

    let listed =
        stack.provision(json!({"action": "list_keys", "tenant_id": tenant, "include_revoked": true})).await.unwrap();
    assert_eq!(listed["data"], json!([]));
    // Nothing was created; every refusal of this tenant is on the record with its
    // error type (those without a valid tenant id or action cannot be filed under one).
    let outcomes: Vec<(String, String)> =
        stack.audit_trail().await.into_iter().map(|(action, _, outcome)| (action, outcome)).collect();
    let mut expected: Vec<(&str, &str)> =
        ["unknown_scope", "scope_not_available", "scope_not_available", "empty_scopes", "unknown_preset"]
            .into_iter()
            .chain(["invalid_field"; 8])
            .chain(["invalid_request"])
            .map(|code| ("create_key", code))
            .collect();
    expected.push(("list_keys", "ok"));
    assert_eq!(outcomes, expected.iter().map(|(a, o)| ((*a).to_owned(), (*o).to_owned())).collect::<Vec<_>>());
}

#[tokio::test]
async fn get_key_finds_own_keys_only() {
    let stack = TestStack::new().await;
    let other = TestStack::new().await;
    let (_, key_id) = stack.create_key(&["vehicles:read"]).await;

    let got = stack.provision(json!({"action": "get_key", "tenant_id": stack.tenant, "key_id": key_id})).await.unwrap();
    assert_eq!(got["key"]["key_id"], key_id.as_str());

    // Another tenant's id behaves exactly like an unknown one.
    expect_refusal(&other, json!({"action": "get_key", "tenant_id": other.tenant, "key_id": key_id}), "key_not_found")
        .await;
    expect_refusal(
        &stack,
        json!({"action": "get_key", "tenant_id": stack.tenant, "key_id": "key_00000000000000000000"}),
        "key_not_found",
    )
    .await;
    expect_refusal(
        &stack,
        json!({"action": "get_key", "tenant_id": stack.tenant, "key_id": "../etc"}),
        "invalid_field",
    )
    .await;
}

#[tokio::test]
async fn revoked_keys_stop_working_and_revoking_twice_is_harmless() {
    let stack = TestStack::new().await;
    let (api_key, key_id) = stack.create_key(&["vehicles:write"]).await;
    let authorizer = stack.authorizer();
    assert!(authorizer::handler(&authorizer, authorizer_event(&[("X-API-Key", &api_key)])).await.is_ok());

    let revoked = stack
        .provision(
            json!({"action": "revoke_key", "tenant_id": stack.tenant, "key_id": key_id, "reason": "laptop stolen"}),
        )
        .await
        .unwrap();
    assert_eq!(revoked["key"]["status"], "revoked");
    assert_eq!(revoked["key"]["revoke_reason"], "laptop stolen");
    let revoked_at = revoked["key"]["revoked_at"].clone();
    assert!(revoked_at.is_string());

    let denied = authorizer::handler(&authorizer, authorizer_event(&[("X-API-Key", &api_key)])).await;
    assert!(matches!(denied, Err(authorizer::AuthorizerError::Unauthorized)));

    let again =
        stack.provision(json!({"action": "revoke_key", "tenant_id": stack.tenant, "key_id": key_id})).await.unwrap();
    assert_eq!(again["key"]["revoked_at"], revoked_at);
    assert_eq!(again["key"]["revoke_reason"], "laptop stolen");
    assert_eq!(stack.audit_actions().await, ["create_key", "revoke_key"]);
}

/// The authorizer's context field `field` for `api_key` (empty when absent).
async fn context_field(authorizer: &authorizer::State, api_key: &str, field: &str) -> String {
    let allowed = authorizer::handler(authorizer, authorizer_event(&[("x-api-key", api_key)])).await.unwrap();
    allowed.context.get(field).cloned().unwrap_or_default()
}

/// A key created 100 days ago and never used, stored directly: its key id.
async fn store_stale_key(stack: &TestStack) -> String {
    let old = ApiKey::generate(Environment::Test);
    let stale = KeyRecord {
        key_hash: old.hash().as_str().to_owned(),
        key_id: fleetgate_api::keys::new_public_id("key_"),
        tenant_id: TenantId::parse(&stack.tenant).unwrap(),
        name: "forgotten".into(),
        description: None,
        environment: Environment::Test,
        scopes: ScopeSet::parse_granted(["vehicles:read"]).unwrap(),
        hint: old.hint().to_owned(),
        created_at: Timestamp::now().minus(time::Duration::days(100)),
        expires_at: None,
        revoked_at: None,
        revoke_reason: None,
        last_used_at: None,
        rotated_from: None,
        rotated_to: None,
        allowed_cidrs: None,
        rate_limit: None,
        monthly_quota: None,
    };
    let audit = fleetgate_api::audit::AuditRecord::new(stale.tenant_id.clone(), None, "seed", None, "ok", "r", 1);
    stack.key_store().create(&stale, vec![stack.provisioner.audit.put_item(&audit).unwrap()]).await.unwrap();
    stale.key_id
}

/// The key ids a `list_keys` answer holds, sorted.
fn listed_ids(listed: &Value) -> Vec<String> {
    let mut ids: Vec<String> =
        listed["data"].as_array().unwrap().iter().map(|k| k["key_id"].as_str().unwrap().to_owned()).collect();
    ids.sort();
    ids
}

fn sorted(mut ids: Vec<String>) -> Vec<String> {
    ids.sort();
    ids
}

#[tokio::test]
async fn list_keys_hides_revoked_keys_unless_asked() {
    let stack = TestStack::new().await;
    let (_, active) = stack.create_key(&["vehicles:read"]).await;
    let (_, revoked) = stack.create_key(&["vehicles:read"]).await;
    stack.provision(json!({"action": "revoke_key", "tenant_id": stack.tenant, "key_id": revoked})).await.unwrap();
    let default = stack.provision(json!({"action": "list_keys", "tenant_id": stack.tenant})).await.unwrap();
    assert_eq!(listed_ids(&default), vec![active.clone()]);
    let all = stack
        .provision(json!({"action": "list_keys", "tenant_id": stack.tenant, "include_revoked": true}))
        .await
        .unwrap();
    assert_eq!(listed_ids(&all), sorted(vec![active, revoked]));
    assert!(!all.to_string().contains("key_hash"));
}

#[tokio::test]
async fn list_keys_finds_keys_unused_for_a_number_of_days() {
    let stack = TestStack::new().await;
    let (_, fresh) = stack.create_key(&["vehicles:read"]).await;
    let stale = store_stale_key(&stack).await;
    let default = stack.provision(json!({"action": "list_keys", "tenant_id": stack.tenant})).await.unwrap();
    assert_eq!(listed_ids(&default), sorted(vec![fresh, stale.clone()]));
    let unused = stack
        .provision(json!({"action": "list_keys", "tenant_id": stack.tenant, "unused_for_days": 30}))
        .await
        .unwrap();
    assert_eq!(listed_ids(&unused), vec![stale]);
}

#[tokio::test]
async fn a_negative_unused_for_days_is_refused() {
    let stack = TestStack::new().await;
    expect_refusal(
        &stack,
        json!({"action": "list_keys", "tenant_id": stack.tenant, "unused_for_days": -1}),
        "invalid_field",
    )
    .await;
}

#[tokio::test]
async fn list_keys_pages_through_every_key_once_newest_first() {
    let stack = TestStack::new().await;
    let mut created = Vec::new();
    for n in 0..5 {
        created.push(stack.create_key(&["vehicles:read"]).await.1);
        if n == 1 {
            // Timestamps are whole seconds: a second apart, the order is certain.
            tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
        }
    }
    stack.provision(json!({"action": "revoke_key", "tenant_id": stack.tenant, "key_id": created[0]})).await.unwrap();
    let event = json!({"action": "list_keys", "limit": 2, "include_revoked": true});
    let (seen, sizes) = stack.walk_admin_list(event, "data", "key_id").await;
    assert_eq!(sizes, vec![2, 2, 1]);
    let one_page = stack
        .provision(json!({"action": "list_keys", "tenant_id": stack.tenant, "limit": 100, "include_revoked": true}))
        .await
        .unwrap();
    let (in_one_page, _) = page_of(&one_page, "data", "key_id");
    assert_eq!(seen, in_one_page, "pages follow one order");
    let created_at: Vec<&str> =
        one_page["data"].as_array().unwrap().iter().map(|k| k["created_at"].as_str().unwrap()).collect();
    assert!(created_at.windows(2).all(|pair| pair[0] >= pair[1]), "newest first: {created_at:?}");
    // The three made after the pause come before the two made before it.
    let (later, earlier) = seen.split_at(3);
    assert_eq!(BTreeSet::from_iter(later), BTreeSet::from_iter(&created[2..]));
    assert_eq!(BTreeSet::from_iter(earlier), BTreeSet::from_iter(&created[..2]));
}

#[tokio::test]
async fn list_keys_cursors_hold_no_key_hash() {
    let stack = TestStack::new().await;
    let mut hashes = Vec::new();
    for _ in 0..3 {
        let (api_key, _) = stack.create_key(&["vehicles:read"]).await;
        hashes.push(ApiKey::parse(&api_key).unwrap().hash().as_str().to_owned());
    }
    // Every cursor of a walk in pages of one (the paging itself: the test above).
    let mut cursors = Vec::new();
    let mut cursor = Value::Null;
    loop {
        let event = json!({"action": "list_keys", "tenant_id": stack.tenant, "limit": 1, "cursor": cursor});
        cursor = stack.provision(event).await.unwrap()["next_cursor"].clone();
        let Some(text) = cursor.as_str() else { break };
        cursors.push(text.to_owned());
    }
    assert_eq!(cursors.len(), 2);
    for text in &cursors {
        let position = text.split('.').next().unwrap();
        let decoded = base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, position).unwrap();
        let decoded = String::from_utf8(decoded).unwrap();
        for hash in &hashes {
            assert!(!decoded.contains(hash.as_str()) && !text.contains(hash.as_str()), "a cursor carries a key hash");
        }
    }
}

#[tokio::test]
async fn a_list_keys_cursor_is_bound_to_its_filters() {
    let stack = TestStack::new().await;
    for _ in 0..3 {
        stack.create_key(&["vehicles:read"]).await;
    }
    let first = stack
        .provision(json!({"action": "list_keys", "tenant_id": stack.tenant, "limit": 2, "include_revoked": true}))
        .await
        .unwrap();
    let cursor = first["next_cursor"].as_str().unwrap();
    let refused = json!({"action": "list_keys", "tenant_id": stack.tenant, "limit": 2, "cursor": cursor});
    expect_refusal(&stack, refused, "invalid_field").await;
}

#[tokio::test]
async fn rotation_issues_a_twin_and_retires_the_old_key_after_the_grace_period() {
    let stack = TestStack::new().await;
    let authorizer = stack.authorizer();
    let (old_key, old_id) = stack.create_key(&["inspections:write"]).await;

    let rotated = stack
        .provision(
            json!({"action": "rotate_key", "tenant_id": stack.tenant, "key_id": old_id, "grace_period_hours": 24}),
        )
        .await
        .unwrap();
    let new_key = rotated["api_key"].as_str().unwrap();
    assert_ne!(new_key, old_key);
    assert_eq!(rotated["key"]["scopes"], json!(["inspections:write"]));
    assert_eq!(rotated["key"]["name"], "test key");
    assert_eq!(rotated["key"]["rotated_from"], old_id.as_str());
    assert_eq!(rotated["previous_key"]["rotated_to"], rotated["key"]["key_id"]);
    let grace_end = Timestamp::parse(rotated["previous_key"]["expires_at"].as_str().unwrap()).unwrap();
    let expected = Timestamp::now().plus(time::Duration::hours(24));
    assert!((grace_end.unix_seconds() - expected.unix_seconds()).abs() < 60, "{grace_end}");

    // Both work during the grace period.
    for key in [old_key.as_str(), new_key] {
        assert!(authorizer::handler(&authorizer, authorizer_event(&[("x-api-key", key)])).await.is_ok());
    }
    // The old key cannot be rotated twice.
    let twice = expect_refusal(
        &stack,
        json!({"action": "rotate_key", "tenant_id": stack.tenant, "key_id": old_id}),
        "key_already_rotated",
    )
    .await;
    assert!(twice.contains(rotated["key"]["key_id"].as_str().unwrap()));

    // Grace 0 retires the old key at once.
    let new_id = rotated["key"]["key_id"].as_str().unwrap();
    let again = stack
        .provision(
            json!({"action": "rotate_key", "tenant_id": stack.tenant, "key_id": new_id, "grace_period_hours": 0}),
        )
        .await
        .unwrap();
    let denied = authorizer::handler(&authorizer, authorizer_event(&[("X-API-Key", new_key)])).await;
    assert!(matches!(denied, Err(authorizer::AuthorizerError::Unauthorized)));
    let newest = again["api_key"].as_str().unwrap();
    assert!(authorizer::handler(&authorizer, authorizer_event(&[("X-API-Key", newest)])).await.is_ok());
    let trail: Vec<(String, String)> =
        stack.audit_trail().await.into_iter().map(|(action, _, outcome)| (action, outcome)).collect();
    let expected =
        [("create_key", "ok"), ("rotate_key", "ok"), ("rotate_key", "key_already_rotated"), ("rotate_key", "ok")];
    assert_eq!(trail, expected.map(|(a, o)| (a.to_owned(), o.to_owned())));
}

#[tokio::test]
async fn rotation_refuses_bad_grace_periods_and_revoked_keys() {
    let stack = TestStack::new().await;
    let (_, key_id) = stack.create_key(&["vehicles:read"]).await;
    for grace in [json!(-1), json!(169), json!("24")] {
        let event =
            json!({"action": "rotate_key", "tenant_id": stack.tenant, "key_id": key_id, "grace_period_hours": grace});
        let code = if grace.is_string() { "invalid_request" } else { "invalid_field" };
        expect_refusal(&stack, event, code).await;
    }
    stack.provision(json!({"action": "revoke_key", "tenant_id": stack.tenant, "key_id": key_id})).await.unwrap();
    expect_refusal(&stack, json!({"action": "rotate_key", "tenant_id": stack.tenant, "key_id": key_id}), "key_revoked")
        .await;
    let listed = stack
        .provision(json!({"action": "list_keys", "tenant_id": stack.tenant, "include_revoked": true}))
        .await
        .unwrap();
    assert_eq!(listed["data"].as_array().unwrap().len(), 1, "a refused rotation created no key");
}

#[tokio::test]
async fn keys_with_an_expiry_stop_working_when_it_passes() {
    let stack = TestStack::new().await;
    let response = stack
        .provision(json!({"action": "create_key", "tenant_id": stack.tenant, "name": "contractor",
                          "preset": "read-only", "expires_in_days": 30}))
        .await
        .unwrap();
    let expires_at = Timestamp::parse(response["key"]["expires_at"].as_str().unwrap()).unwrap();
    let in_30_days = Timestamp::now().plus(time::Duration::days(30));
    assert!((expires_at.unix_seconds() - in_30_days.unix_seconds()).abs() < 60);

    let resolver = stack.resolver();
    let key = response["api_key"].as_str().unwrap();
    assert!(resolver.resolve(Some(key), Timestamp::now()).await.is_ok());
    let after = expires_at.plus(time::Duration::seconds(1));
    let refused = resolver.resolve(Some(key), after).await;
    assert!(matches!(
        refused,
        Err(fleetgate_api::keys::ResolveError::Rejected(fleetgate_api::keys::Rejection::Expired))
    ));
}

/// A stand-in for API Gateway's control plane: records each request's first line and whether it was signed.
async fn fake_api_gateway() -> (String, std::sync::Arc<tokio::sync::Mutex<Vec<(String, bool)>>>) {
    fake_api_gateway_answering("HTTP/1.1 202 Accepted").await
}

/// A fake API Gateway control plane answering every request with `status_line`,
/// recording each request line and whether it was SigV4-signed.
async fn fake_api_gateway_answering(
    status_line: &'static str,
) -> (String, std::sync::Arc<tokio::sync::Mutex<Vec<(String, bool)>>>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    let seen = std::sync::Arc::new(tokio::sync::Mutex::new(Vec::new()));
    let record = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let record = record.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).await.unwrap_or(0) == 1 {
                    head.push(byte[0]);
                }
                let head = String::from_utf8_lossy(&head).to_string();
                let first = head.lines().next().unwrap_or_default().to_owned();
                let signed =
                    head.lines().any(|l| l.to_ascii_lowercase().starts_with("authorization: aws4-hmac-sha256"));
                record.lock().await.push((first, signed));
                let answer = format!("{status_line}\r\nContent-Length: 0\r\n\r\n");
                let _ = stream.write_all(answer.as_bytes()).await;
            });
        }
    });
    (address, seen)
}

/// The authorizer cache of stage `api123`/`v1` at `endpoint`, flushed again after `reflush_after`.
fn cache_at(endpoint: String, reflush_after: std::time::Duration) -> provisioner::AuthorizerCache {
    let config = aws_sdk_apigateway::Config::builder()
        .behavior_version(aws_sdk_apigateway::config::BehaviorVersion::latest())
        .region(aws_sdk_apigateway::config::Region::new("eu-west-1"))
        .endpoint_url(endpoint)
        .credentials_provider(aws_sdk_apigateway::config::Credentials::new("AKIDTEST", "secret", None, None, "test"))
        .http_client(fleetgate_api::dynamo::https_client())
        .build();
    provisioner::AuthorizerCache::new(aws_sdk_apigateway::Client::from_conf(config), "api123".into(), "v1".into())
        .with_reflush_after(reflush_after)
}

#[tokio::test]
async fn a_failed_flush_is_reported_and_the_revocation_stands() {
    let (endpoint, seen) = fake_api_gateway_answering("HTTP/1.1 500 Internal Server Error").await;
    let mut stack = TestStack::new().await;
    stack.provisioner.authorizer_cache = Some(cache_at(endpoint, std::time::Duration::from_millis(10)));
    let (_, key_id) = stack.create_key(&["vehicles:read"]).await;
    let revoked =
        stack.provision(json!({"action": "revoke_key", "tenant_id": stack.tenant, "key_id": key_id})).await.unwrap();
    // The admin is told the revocation waits for the cache TTL; the key is revoked all the same.
    assert_eq!(revoked["authorizer_cache_flushed"], false, "{revoked}");
    assert_eq!(revoked["key"]["status"], "revoked");
    assert!(!seen.lock().await.is_empty(), "the flush was attempted");
}

#[tokio::test]
async fn revocations_and_rotations_flush_the_stage_authorizer_cache() {
    let (endpoint, seen) = fake_api_gateway().await;
    let mut stack = TestStack::new().await;
    let reflush_after = std::time::Duration::from_millis(300);
    stack.provisioner.authorizer_cache = Some(cache_at(endpoint, reflush_after));
    let flush = ("DELETE /restapis/api123/stages/v1/cache/authorizers HTTP/1.1".to_owned(), true);

    // Flushed twice, the second time after the delay: an authorizer call that read
    // the key just before the revocation may have cached an Allow after the first.
    let (_, first) = stack.create_key(&["vehicles:read"]).await;
    let started = std::time::Instant::now();
    let revoked =
        stack.provision(json!({"action": "revoke_key", "tenant_id": stack.tenant, "key_id": first})).await.unwrap();
    assert!(started.elapsed() >= reflush_after);
    assert_eq!(revoked["authorizer_cache_flushed"], true);
    assert_eq!(*seen.lock().await, [flush.clone(), flush.clone()]);

    // Every rotation flushes too, with or without a grace period.
    let (_, second) = stack.create_key(&["vehicles:read"]).await;
    let graceful =
        stack.provision(json!({"action": "rotate_key", "tenant_id": stack.tenant, "key_id": second})).await.unwrap();
    assert_eq!(graceful["authorizer_cache_flushed"], true);
    assert_eq!(seen.lock().await.len(), 4);

    let newest = graceful["key"]["key_id"].as_str().unwrap();
    let immediate = stack
        .provision(
            json!({"action": "rotate_key", "tenant_id": stack.tenant, "key_id": newest, "grace_period_hours": 0}),
        )
        .await
        .unwrap();
    assert_eq!(immediate["authorizer_cache_flushed"], true);
    assert_eq!(seen.lock().await.len(), 6);
    assert!(seen.lock().await.iter().all(|request| *request == flush));
}

#[tokio::test]
async fn rotation_keeps_the_lifetime_and_ends_the_old_key_at_the_earlier_of_expiry_and_grace() {
    let stack = TestStack::new().await;
    let created = stack
        .provision(json!({"action": "create_key", "tenant_id": stack.tenant, "name": "k", "preset": "read-only",
                          "expires_in_days": 1}))
        .await
        .unwrap();
    let key_id = created["key"]["key_id"].as_str().unwrap();
    let old_expiry = Timestamp::parse(created["key"]["expires_at"].as_str().unwrap()).unwrap();
    // A grace period longer than the key has left: the old key still ends at its own expiry.
    let rotated = stack
        .provision(
            json!({"action": "rotate_key", "tenant_id": stack.tenant, "key_id": key_id, "grace_period_hours": 48}),
        )
        .await
        .unwrap();
    let previous_ends = Timestamp::parse(rotated["previous_key"]["expires_at"].as_str().unwrap()).unwrap();
    assert_eq!(previous_ends, old_expiry, "the earlier of its expiry and the grace end");
    // The twin lives as long as the old key was meant to: one day from now.
    let twin_ends = Timestamp::parse(rotated["key"]["expires_at"].as_str().unwrap()).unwrap();
    let one_day = Timestamp::now().plus(time::Duration::days(1));
    assert!((twin_ends.unix_seconds() - one_day.unix_seconds()).abs() <= 5, "{twin_ends} vs {one_day}");
}

#[tokio::test]
async fn an_expired_key_cannot_be_rotated() {
    let stack = TestStack::new().await;
    let soon = Timestamp::now().plus(time::Duration::seconds(1)).to_string();
    let created = stack
        .provision(json!({"action": "create_key", "tenant_id": stack.tenant, "name": "k", "preset": "read-only",
                          "expires_at": soon}))
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let key_id = created["key"]["key_id"].as_str().unwrap();
    let message = expect_refusal(
        &stack,
        json!({"action": "rotate_key", "tenant_id": stack.tenant, "key_id": key_id}),
        "invalid_field",
    )
    .await;
    assert!(message.contains("expired"), "{message}");
    let listed = stack.provision(json!({"action": "list_keys", "tenant_id": stack.tenant})).await.unwrap();
    assert_eq!(listed["data"].as_array().unwrap().len(), 1, "no twin was made");
}

#[tokio::test]
async fn an_old_key_used_recently_is_not_unused() {
    let stack = TestStack::new().await;
    let (_, recent) = stack.create_key(&["vehicles:read"]).await;
    let (_, idle) = stack.create_key(&["vehicles:read"]).await;
    // Given: both created 40 days ago (written directly); one used an hour ago, one never.
    let long_ago = Timestamp::now().minus(time::Duration::days(40)).to_string();
    let hour_ago = Timestamp::now().minus(time::Duration::hours(1)).to_string();
    for (key_id, last_used) in [(&recent, Some(hour_ago)), (&idle, None)] {
        let record = stack
            .key_store()
            .list_newest_first(&fleetgate_scopes::TenantId::parse(&stack.tenant).unwrap(), None, 100)
            .await
            .unwrap()
            .0
            .into_iter()
            .find(|k| &k.key_id == key_id)
            .unwrap();
        let mut update = stack
            .client
            .update_item()
            .table_name(&stack.tables.keys)
            .key("key_hash", serde_dynamo::to_attribute_value(&record.key_hash).unwrap())
            .update_expression(if last_used.is_some() {
                "SET created_at = :c, last_used_at = :u"
            } else {
                "SET created_at = :c"
            })
            .expression_attribute_values(":c", serde_dynamo::to_attribute_value(&long_ago).unwrap());
        if let Some(at) = &last_used {
            update = update.expression_attribute_values(":u", serde_dynamo::to_attribute_value(at).unwrap());
        }
        update.send().await.unwrap();
    }
    let unused = stack
        .provision(json!({"action": "list_keys", "tenant_id": stack.tenant, "unused_for_days": 30}))
        .await
        .unwrap();
    let ids: Vec<&str> = unused["data"].as_array().unwrap().iter().map(|k| k["key_id"].as_str().unwrap()).collect();
    assert_eq!(ids, [idle.as_str()], "only the key unused for 30 days");
}

#[tokio::test]
async fn tenants_are_explicit_and_a_key_for_an_unknown_tenant_writes_nothing() {
    let stack = TestStack::new().await;
    // The report: a typo ("dmeo") minted a working key for an empty phantom fleet.
    let typo = format!("{}-typo", stack.tenant);
    let message = expect_refusal(
        &stack,
        json!({"action": "create_key", "tenant_id": typo, "name": "k", "preset": "read-only"}),
        "tenant_not_found",
    )
    .await;
    assert!(message.contains("create_tenant"), "{message}");
    let template = json!({"id": "tpl_x", "name": "X", "items": [{"id": "a", "label": "A"}]});
    expect_refusal(
        &stack,
        json!({"action": "put_inspection_template", "tenant_id": typo, "template": template}),
        "tenant_not_found",
    )
    .await;
    let typo_stack = stack.other_tenant(&typo);
    assert!(typo_stack.key_items().await.is_empty(), "no key was stored for the phantom tenant");
    assert!(typo_stack.fleet_items().await.is_empty(), "no template either");

    let created = stack
        .provision(
            json!({"action": "create_tenant", "tenant_id": typo, "name": "Typo fleet", "requested_by": "ana@ops"}),
        )
        .await
        .unwrap();
    assert_eq!(
        (created["tenant"]["tenant_id"].clone(), created["tenant"]["name"].clone()),
        (json!(typo), json!("Typo fleet"))
    );
    expect_refusal(&stack, json!({"action": "create_tenant", "tenant_id": typo, "name": "Again"}), "tenant_exists")
        .await;
    let got = stack.provision(json!({"action": "get_tenant", "tenant_id": typo})).await.unwrap();
    assert_eq!(got["tenant"], created["tenant"]);
    expect_refusal(&stack, json!({"action": "get_tenant", "tenant_id": format!("{typo}-2")}), "tenant_not_found").await;
    // Now the key can be made; the tenant's creation is on its own trail, with who asked.
    stack
        .provision(json!({"action": "create_key", "tenant_id": typo, "name": "k", "preset": "read-only"}))
        .await
        .unwrap();
    let trail = typo_stack.provision(json!({"action": "list_audit", "tenant_id": typo})).await.unwrap();
    let created_record = trail["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["action"] == "create_tenant" && r["outcome"] == "ok")
        .unwrap();
    assert_eq!(
        (created_record["requested_by"].clone(), created_record["details"]["name"].clone()),
        (json!("ana@ops"), json!("Typo fleet"))
    );
}

#[tokio::test]
async fn list_tenants_pages_in_the_api_shape() {
    let stack = TestStack::new().await;
    let listed = stack.provision(json!({"action": "list_tenants", "limit": 100})).await.unwrap();
    let ids: Vec<&str> = listed["data"].as_array().unwrap().iter().map(|t| t["tenant_id"].as_str().unwrap()).collect();
    assert!(ids.contains(&stack.tenant.as_str()), "{ids:?}");
    assert!(ids.windows(2).all(|pair| pair[0] < pair[1]), "tenant id order");
    assert!(listed.get("next_cursor").is_some());
    let (walked, _) = walk_pages(|cursor: Option<String>| {
        let mut event = json!({"action": "list_tenants", "limit": 3});
        if let Some(cursor) = cursor {
            event["cursor"] = Value::String(cursor);
        }
        let stack = &stack;
        async move { page_of(&stack.provision(event).await.unwrap(), "data", "tenant_id") }
    })
    .await;
    assert!(walked.contains(&stack.tenant), "paging reaches every tenant");
}

#[tokio::test]
async fn revoking_a_rotated_key_also_revokes_its_predecessor_in_grace() {
    let stack = TestStack::new().await;
    let authorizer = stack.authorizer();
    let (first_key, first_id) = stack.create_key(&["inspections:write"]).await;
    let rotated = stack
        .provision(
            json!({"action": "rotate_key", "tenant_id": stack.tenant, "key_id": first_id, "grace_period_hours": 24}),
        )
        .await
        .unwrap();
    let (second_key, second_id) =
        (rotated["api_key"].as_str().unwrap().to_owned(), rotated["key"]["key_id"].as_str().unwrap().to_owned());
    let revoked = stack
        .provision(
            json!({"action": "revoke_key", "tenant_id": stack.tenant, "key_id": second_id, "reason": "device lost",
                          "requested_by": "ana@ops"}),
        )
        .await
        .unwrap();
    assert_eq!(revoked["revoked_keys"], json!([second_id, first_id]), "the answer names every key it revoked");
    assert_eq!(revoked["revoked_predecessors"][0]["status"], "revoked");
    for key in [first_key.as_str(), second_key.as_str()] {
        let denied = authorizer::handler(&authorizer, authorizer_event(&[("x-api-key", key)])).await;
        assert!(matches!(denied, Err(authorizer::AuthorizerError::Unauthorized)), "a revoked chain key still works");
    }
    let listed = stack
        .provision(json!({"action": "list_keys", "tenant_id": stack.tenant, "include_revoked": true}))
        .await
        .unwrap();
    let statuses: Vec<&str> =
        listed["data"].as_array().unwrap().iter().map(|k| k["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["revoked", "revoked"], "list_keys tells the truth");
    // Each revocation is its own record, with the reason and what caused it.
    let trail = stack
        .provision(json!({"action": "list_audit", "tenant_id": stack.tenant, "filter": {"action": "revoke_key"}}))
        .await
        .unwrap();
    let records = trail["data"].as_array().unwrap();
    assert_eq!(records.len(), 2, "{trail}");
    let predecessor = records.iter().find(|r| r["resource_id"] == json!(first_id)).unwrap();
    assert_eq!(predecessor["details"]["because_of"], json!(second_id));
    assert!(predecessor["details"]["reason"].as_str().unwrap().ends_with("device lost"));
    assert_eq!(predecessor["requested_by"], "ana@ops");
    // Revoking again changes nothing and revokes nothing more.
    let again =
        stack.provision(json!({"action": "revoke_key", "tenant_id": stack.tenant, "key_id": second_id})).await.unwrap();
    assert_eq!(again["revoked_keys"], json!([]));
}

#[tokio::test]
async fn every_invalid_field_of_an_admin_request_is_named_at_once() {
    let stack = TestStack::new().await;
    let refused = stack
        .provision(json!({"action": "create_key", "tenant_id": stack.tenant, "name": " ", "scopes": ["vehicles:fly"],
                          "expires_in_days": 0, "environment": "moon"}))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), "invalid_field");
    let message = refused.to_string();
    for field in ["name: ", "scopes: unknown scope 'vehicles:fly'", "environment: ", "expires_in_days: "] {
        assert!(message.contains(field), "{field} missing from: {message}");
    }
    // One bad field keeps its own type.
    let one = stack
        .provision(json!({"action": "create_key", "tenant_id": stack.tenant, "name": "k", "scopes": ["vehicles:fly"]}))
        .await
        .unwrap_err();
    assert_eq!(one.code(), "unknown_scope");
    assert!(stack.key_items().await.is_empty(), "nothing was written");
}

#[tokio::test]
async fn key_views_name_granted_and_effective_scopes_like_me() {
    let stack = TestStack::new().await;
    let created = stack
        .provision(
            json!({"action": "create_key", "tenant_id": stack.tenant, "name": "k", "scopes": ["vehicles:write"]}),
        )
        .await
        .unwrap();
    assert_eq!(created["key"]["granted_scopes"], json!(["vehicles:write"]));
    assert_eq!(created["key"]["effective_scopes"], json!(["vehicles:read", "vehicles:write"]));
    assert_eq!(created["key"]["scopes"], created["key"]["granted_scopes"], "the deprecated name still answers");
    let listed = stack.provision(json!({"action": "list_keys", "tenant_id": stack.tenant})).await.unwrap();
    assert_eq!(listed["keys"], listed["data"], "the deprecated list name still answers");
}

#[tokio::test]
async fn the_audit_trail_filters_by_action_key_outcome_and_time() {
    let stack = TestStack::new().await;
    let (_, first) = stack.create_key(&["vehicles:read"]).await;
    let (_, second) = stack.create_key(&["vehicles:read"]).await;
    stack.provision(json!({"action": "revoke_key", "tenant_id": stack.tenant, "key_id": first})).await.unwrap();
    expect_refusal(&stack, json!({"action": "rotate_key", "tenant_id": stack.tenant, "key_id": first}), "key_revoked")
        .await;
    let list = |filter: Value| {
        let stack = &stack;
        async move {
            let answer = stack
                .provision(json!({"action": "list_audit", "tenant_id": stack.tenant, "filter": filter, "limit": 100}))
                .await
                .unwrap();
            answer["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| {
                    format!(
                        "{} {} {}",
                        r["action"].as_str().unwrap(),
                        r["resource_id"].as_str().unwrap_or("-"),
                        r["outcome"].as_str().unwrap()
                    )
                })
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        list(json!({"resource_id": first})).await,
        [format!("rotate_key {first} key_revoked"), format!("revoke_key {first} ok"), format!("create_key {first} ok"),]
    );
    assert_eq!(list(json!({"action": "create_key", "resource_id": second})).await, [format!("create_key {second} ok")]);
    assert_eq!(list(json!({"outcome": "key_revoked"})).await, [format!("rotate_key {first} key_revoked")]);
    // A window that ends before anything happened holds nothing; one that starts then holds it all.
    let past = json!({"action": "list_audit", "tenant_id": stack.tenant, "until": "2020-01-01T00:00:00Z"});
    assert_eq!(stack.provision(past).await.unwrap()["data"], json!([]));
    let window = json!({"action": "list_audit", "tenant_id": stack.tenant, "since": "2020-01-01T00:00:00Z",
                        "until": "2999-01-01T00:00:00Z", "filter": {"key_id": null, "action": "create_key"}});
    assert_eq!(stack.provision(window).await.unwrap()["data"].as_array().unwrap().len(), 2);
    expect_refusal(
        &stack,
        json!({"action": "list_audit", "tenant_id": stack.tenant, "since": "2026-02-01T00:00:00Z", "until": "2026-01-01T00:00:00Z"}),
        "invalid_field",
    )
    .await;
    expect_refusal(
        &stack,
        json!({"action": "list_audit", "tenant_id": stack.tenant, "filter": {"colour": "red"}}),
        "invalid_request",
    )
    .await;
}

#[tokio::test]
async fn allowed_networks_are_validated_all_at_once_and_written_nowhere_when_bad() {
    let stack = TestStack::new().await;
    let mut too_many: Vec<String> = (0..21).map(|n| format!("10.0.{n}.0/24")).collect();
    let refused = stack
        .provision(json!({"action": "create_key", "tenant_id": stack.tenant, "name": "k", "preset": "read-only",
                          "allowed_cidrs": too_many.clone()}))
        .await
        .unwrap_err();
    assert!(refused.to_string().contains("1 to 20"), "{refused}");
    too_many.truncate(3);
    let bad = ["10.0.0.0/33", "::/129", "999.1.1.1/8", "10.0.0.1/8"];
    let refused = stack
        .provision(json!({"action": "create_key", "tenant_id": stack.tenant, "name": "k", "preset": "read-only",
                          "allowed_cidrs": bad}))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), "invalid_field");
    let message = refused.to_string();
    for (index, text) in bad.iter().enumerate() {
        assert!(message.contains(&format!("allowed_cidrs[{index}]: ")) && message.contains(text), "{message}");
    }
    assert!(message.contains("did you mean 10.0.0.0/8"), "host bits are refused, naming the network: {message}");
    assert!(stack.key_items().await.is_empty());
}

#[tokio::test]
async fn a_key_pinned_to_networks_carries_them_through_the_authorizer_rotation_and_updates() {
    let stack = TestStack::new().await;
    let authorizer = stack.authorizer();
    let created = stack
        .provision(
            json!({"action": "create_key", "tenant_id": stack.tenant, "name": "depot-gate", "preset": "read-only",
                          "allowed_cidrs": ["203.0.113.0/24", " 2001:db8::/32", "203.0.113.0/24"]}),
        )
        .await
        .unwrap();
    assert_eq!(created["key"]["allowed_cidrs"], json!(["203.0.113.0/24", "2001:db8::/32"]), "trimmed, deduplicated");
    let (api_key, key_id) =
        (created["api_key"].as_str().unwrap().to_owned(), created["key"]["key_id"].as_str().unwrap().to_owned());
    let context = |key: String| {
        let authorizer = &authorizer;
        async move { context_field(authorizer, &key, "allowed_cidrs").await }
    };
    assert_eq!(context(api_key.clone()).await, "203.0.113.0/24 2001:db8::/32");
    // A rotation changes the secret, not where the key may be used from.
    let rotated = stack
        .provision(
            json!({"action": "rotate_key", "tenant_id": stack.tenant, "key_id": key_id, "grace_period_hours": 1}),
        )
        .await
        .unwrap();
    assert_eq!(rotated["key"]["allowed_cidrs"], created["key"]["allowed_cidrs"]);
    let twin = rotated["key"]["key_id"].as_str().unwrap().to_owned();
    // Changed on the live key, audited; null lifts the restriction.
    let moved = stack
        .provision(json!({"action": "update_key_restrictions", "tenant_id": stack.tenant, "key_id": twin,
                          "allowed_cidrs": ["198.51.100.0/24"], "requested_by": "ana@ops"}))
        .await
        .unwrap();
    assert_eq!(moved["key"]["allowed_cidrs"], json!(["198.51.100.0/24"]));
    assert_eq!(context(rotated["api_key"].as_str().unwrap().to_owned()).await, "198.51.100.0/24");
    let lifted = stack
        .provision(json!({"action": "update_key_restrictions", "tenant_id": stack.tenant, "key_id": twin, "allowed_cidrs": null}))
        .await
        .unwrap();
    assert_eq!(lifted["key"]["allowed_cidrs"], Value::Null);
    assert_eq!(context(rotated["api_key"].as_str().unwrap().to_owned()).await, "");
    expect_refusal(
        &stack,
        json!({"action": "update_key_restrictions", "tenant_id": stack.tenant, "key_id": twin}),
        "invalid_field",
    )
    .await;
    let trail = stack
        .provision(json!({"action": "list_audit", "tenant_id": stack.tenant, "filter": {"action": "update_key_restrictions", "outcome": "ok"}}))
        .await
        .unwrap();
    let records = trail["data"].as_array().unwrap();
    assert_eq!(records.len(), 2);
    assert_eq!(records[1]["details"]["restrictions"]["allowed_cidrs"], json!(["198.51.100.0/24"]));
    assert_eq!(records[1]["details"]["previous"]["allowed_cidrs"], json!(["203.0.113.0/24", "2001:db8::/32"]));
}

#[tokio::test]
async fn bad_rate_limits_and_quotas_are_refused_by_field_and_change_nothing() {
    let stack = TestStack::new().await;
    let create = |extra: Value| {
        let mut event = json!({"action": "create_key", "tenant_id": stack.tenant, "name": "k", "preset": "read-only"});
        event.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        event
    };
    for (extra, says) in [
        (json!({"rate_limit": {"requests": 0, "per": "second"}}), "requests must be at least 1"),
        (json!({"rate_limit": {"requests": -5, "per": "second"}}), "rate_limit: invalid value: integer `-5`"),
        (json!({"rate_limit": {"requests": 5, "per": "hour"}}), "unknown variant `hour`"),
        (
            json!({"rate_limit": {"requests": 5, "per": "second", "burst": 4}}),
            "burst (4) must be at least requests (5)",
        ),
        (json!({"rate_limit": {"requests": 5, "per": "second", "burst": 51}}), "at most 10 times"),
        (json!({"rate_limit": {"requests": 5, "per": "second", "window": 3}}), "unknown field `window`"),
        (json!({"rate_limit": "5/second"}), "rate_limit: invalid type"),
        // The template's RateLimitCeiling is 1000/second: 70,000 a minute is above it.
        (json!({"rate_limit": {"requests": 70000, "per": "minute"}}), "above this deployment's ceiling of 1000/second"),
        (json!({"monthly_quota": 0}), "monthly_quota: must be a whole number"),
        (json!({"monthly_quota": -1}), "monthly_quota: must be a whole number"),
        (json!({"monthly_quota": 2.5}), "monthly_quota: must be a whole number"),
    ] {
        let message = expect_refusal(&stack, create(extra.clone()), "invalid_field").await;
        assert!(message.contains(says), "{extra}: {message}");
    }
    assert!(stack.key_items().await.is_empty(), "nothing was created");

    // On a live key: refused the same way, and the key keeps what it had.
    let created = stack
        .provision(create(json!({"rate_limit": {"requests": 5, "per": "second"}, "monthly_quota": 100})))
        .await
        .unwrap();
    let key_id = created["key"]["key_id"].as_str().unwrap();
    let update = |extra: Value| {
        let mut event = json!({"action": "update_key_restrictions", "tenant_id": stack.tenant, "key_id": key_id});
        event.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        event
    };
    let message = expect_refusal(
        &stack,
        update(
            json!({"rate_limit": {"requests": 5000, "per": "second"}, "monthly_quota": 0, "allowed_cidrs": ["::/129"]}),
        ),
        "invalid_field",
    )
    .await;
    for field in ["rate_limit:", "monthly_quota:", "allowed_cidrs[0]:"] {
        assert!(message.contains(field), "every bad field at once: {message}");
    }
    let unchanged =
        stack.provision(json!({"action": "get_key", "tenant_id": stack.tenant, "key_id": key_id})).await.unwrap();
    assert_eq!(unchanged["key"]["rate_limit"], json!({"requests": 5, "per": "second", "burst": 5}));
    assert_eq!(unchanged["key"]["monthly_quota"], 100);
    let succeeded: Vec<String> = stack
        .audit_trail()
        .await
        .into_iter()
        .filter(|(_, _, outcome)| outcome == "ok")
        .map(|(action, _, _)| action)
        .collect();
    assert_eq!(succeeded, ["create_key", "get_key"], "each refusal is recorded as one, and changed nothing");
}

#[tokio::test]
async fn rate_limits_and_quotas_reach_the_authorizer_and_change_on_the_live_key() {
    let stack = TestStack::new().await;
    let authorizer = stack.authorizer();
    let created = stack
        .provision(
            json!({"action": "create_key", "tenant_id": stack.tenant, "name": "telematics", "preset": "read-only",
                          "rate_limit": {"requests": 5, "per": "second", "burst": 10}, "monthly_quota": 1000}),
        )
        .await
        .unwrap();
    assert_eq!(created["key"]["rate_limit"], json!({"requests": 5, "per": "second", "burst": 10}));
    assert_eq!((&created["key"]["rate_limit_from"], &created["key"]["monthly_quota"]), (&json!("key"), &json!(1000)));
    let (api_key, key_id) =
        (created["api_key"].as_str().unwrap().to_owned(), created["key"]["key_id"].as_str().unwrap().to_owned());
    let context = |field: &'static str| context_field(&authorizer, &api_key, field);
    assert_eq!((context("rate_limit").await, context("monthly_quota").await), ("5/second/10".into(), "1000".into()));

    // Requests counted for this key show as this month's usage.
    let counter = fleetgate_api::usage::UsageCounter::new(stack.client.clone(), stack.tables.usage.clone());
    let auth = fleetgate_scopes::AuthContext::new(
        TenantId::parse(&stack.tenant).unwrap(),
        key_id.clone(),
        "telematics".into(),
        ScopeSet::parse_granted(["vehicles:read"]).unwrap(),
        Environment::Test,
        None,
    )
    .with_limits(fleetgate_scopes::Limits { monthly_quota: Some(1000), ..Default::default() });
    for _ in 0..3 {
        counter.admit(&auth, Timestamp::now().unix_seconds()).await;
    }
    let month = fleetgate_api::usage::UtcMonth::of(Timestamp::now().unix_seconds()).label();
    let shown =
        stack.provision(json!({"action": "get_key", "tenant_id": stack.tenant, "key_id": key_id})).await.unwrap();
    assert_eq!(shown["key"]["usage"], json!({"month": month, "requests": 3}));
    let listed = stack.provision(json!({"action": "list_keys", "tenant_id": stack.tenant})).await.unwrap();
    assert_eq!(listed["data"][0]["usage"]["requests"], 3);

    // A quota below this month's usage is taken, with a warning: the key is refused until the month ends.
    let lowered = stack
        .provision(json!({"action": "update_key_restrictions", "tenant_id": stack.tenant, "key_id": key_id,
                          "monthly_quota": 2, "rate_limit": null}))
        .await
        .unwrap();
    assert_eq!(lowered["key"]["monthly_quota"], 2);
    assert!(lowered["warnings"][0].as_str().unwrap().contains("quota_exceeded until the month ends"), "{lowered}");
    // `null` lifts the key's own limit: the deployment's default applies, and says so.
    assert_eq!(lowered["key"]["rate_limit"], json!({"requests": 100, "per": "second", "burst": 100}));
    assert_eq!(lowered["key"]["rate_limit_from"], "default");
    assert_eq!((context("rate_limit").await, context("monthly_quota").await), ("100/second".into(), "2".into()));
    // A rotation keeps the restrictions.
    let rotated = stack
        .provision(
            json!({"action": "rotate_key", "tenant_id": stack.tenant, "key_id": key_id, "grace_period_hours": 0}),
        )
        .await
        .unwrap();
    assert_eq!((&rotated["key"]["monthly_quota"], &rotated["key"]["rate_limit_from"]), (&json!(2), &json!("default")));
    let trail = stack
        .provision(
            json!({"action": "list_audit", "tenant_id": stack.tenant, "filter": {"action": "update_key_restrictions"}}),
        )
        .await
        .unwrap();
    let details = &trail["data"][0]["details"];
    assert_eq!(
        (&details["restrictions"]["monthly_quota"], &details["previous"]["monthly_quota"]),
        (&json!(2), &json!(1000))
    );
}

#[tokio::test]
async fn a_tenant_cap_is_set_shown_passed_to_the_authorizer_and_lifted() {
    let stack = TestStack::new().await;
    let authorizer = stack.authorizer();
    let (api_key, _) = stack.create_key(&["vehicles:read"]).await;
    let tenant_cap = || context_field(&authorizer, &api_key, "tenant_rate_limit");
    assert_eq!(tenant_cap().await, "");
    let set = stack
        .provision(json!({"action": "put_tenant_limits", "tenant_id": stack.tenant, "rate_limit": {"requests": 600, "per": "minute"}}))
        .await
        .unwrap();
    assert_eq!(set["rate_limit"], json!({"requests": 600, "per": "minute", "burst": 600}));
    assert_eq!(set["usage"]["requests"], 0);
    assert_eq!(tenant_cap().await, "600/minute");
    let shown = stack.provision(json!({"action": "get_tenant", "tenant_id": stack.tenant})).await.unwrap();
    assert_eq!(shown["rate_limit"]["requests"], 600);
    // The cap is not a key: it never shows among the tenant's keys.
    assert_eq!(stack.key_items().await.len(), 1);

    for (event, code) in [
        (json!({"action": "put_tenant_limits", "tenant_id": stack.tenant}), "invalid_field"),
        (
            json!({"action": "put_tenant_limits", "tenant_id": stack.tenant, "rate_limit": {"requests": 0, "per": "minute"}}),
            "invalid_field",
        ),
        (
            json!({"action": "put_tenant_limits", "tenant_id": "no-such-fleet", "rate_limit": {"requests": 5, "per": "second"}}),
            "tenant_not_found",
        ),
    ] {
        expect_refusal(&stack, event, code).await;
    }
    assert_eq!(tenant_cap().await, "600/minute", "refusals changed nothing");
    stack
        .provision(json!({"action": "put_tenant_limits", "tenant_id": stack.tenant, "rate_limit": null}))
        .await
        .unwrap();
    assert_eq!(tenant_cap().await, "");
    let shown = stack.provision(json!({"action": "get_tenant", "tenant_id": stack.tenant})).await.unwrap();
    assert_eq!((&shown["rate_limit"], &shown["usage"]), (&Value::Null, &Value::Null));
    let trail = stack
        .provision(json!({"action": "list_audit", "tenant_id": stack.tenant, "filter": {"action": "put_tenant_limits", "outcome": "ok"}}))
        .await
        .unwrap();
    assert_eq!(trail["data"].as_array().unwrap().len(), 2);
}
