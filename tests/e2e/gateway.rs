//! The local gateway does what API Gateway does for this stack: its own answers
//! are the template's gateway responses byte for byte, whatever bytes arrive no
//! 500 of its own, the authorizer's Allow is cached for the TTL and flushed by the
//! provisioner's revoke, and the stage is throttled.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use fleetgate_local::Template;
use fleetgate_local::gateway::{Gateway, GatewayConfig};
use serde_json::{Value, json};

use crate::{base_url, key, provision};

/// The template's body for gateway response `kind`, as API Gateway renders it for `request_id`.
pub(crate) fn template_body(kind: &str, request_id: &str) -> String {
    let template = Template::load_default().unwrap();
    let responses = &template.properties("FleetApi").unwrap()["GatewayResponses"];
    let text = responses[kind]["ResponseTemplates"]["application/json"].as_str().unwrap();
    text.replace("$context.requestId", request_id)
}

/// Asserts `response` is the template's `kind` gateway response with `status`, byte for byte.
async fn assert_gateway_response(response: reqwest::Response, kind: &str, status: u16) {
    assert_eq!(response.status(), status, "{kind}");
    assert_eq!(response.headers()["content-type"], "application/problem+json", "{kind}");
    let request_id = response.headers()["x-amzn-requestid"].to_str().unwrap().to_owned();
    // The template maps `context.requestId` to X-Request-Id on every gateway response.
    assert_eq!(
        response.headers().get("x-request-id").and_then(|v| v.to_str().ok()),
        Some(request_id.as_str()),
        "{kind}"
    );
    let body = response.text().await.unwrap();
    assert_eq!(body, template_body(kind, &request_id), "{kind}");
    let problem: Value = serde_json::from_str(&body).expect("a gateway response is JSON");
    assert_eq!(problem["request_id"], request_id.as_str());
}

/// A gateway of this test's own in front of the same functions, with template
/// parameters overridden (a short cache TTL, a small stage limit).
async fn own_gateway(parameters: &[(&str, &str)]) -> (String, Arc<Gateway>) {
    let functions = std::env::var("FLEETGATE_E2E_FUNCTIONS_URL").expect("FLEETGATE_E2E_FUNCTIONS_URL (make test)");
    let overrides: BTreeMap<String, String> =
        parameters.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    let config =
        GatewayConfig::from_template(&Template::load_default().unwrap(), &overrides, "fleetgate-local").unwrap();
    let gateway = Arc::new(Gateway::new(config, &functions));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(gateway.clone().serve(listener));
    (url, gateway)
}

#[tokio::test]
async fn unknown_routes_and_bad_keys_get_the_templates_gateway_responses() {
    let client = reqwest::Client::new();
    let tenant = crate::new_tenant(&client, "e2e-gw").await;
    let good = key(&client, &tenant, "read-only").await;
    let cases = [
        // No route: API Gateway's MISSING_AUTHENTICATION_TOKEN, before any authorizer.
        (
            client.get(format!("{}/no-such-route", base_url())).header("X-API-Key", &good),
            "MISSING_AUTHENTICATION_TOKEN",
            404,
        ),
        (
            client.delete(format!("{}/vehicles", base_url())).header("X-API-Key", &good),
            "MISSING_AUTHENTICATION_TOKEN",
            404,
        ),
        (
            client.get(format!("{}/vehicles/", base_url())).header("X-API-Key", &good),
            "MISSING_AUTHENTICATION_TOKEN",
            404,
        ),
        // No identity source: refused without calling the authorizer.
        (client.get(format!("{}/me", base_url())), "UNAUTHORIZED", 401),
        (client.get(format!("{}/vehicles", base_url())).header("X-API-Key", "fg_test_garbage"), "UNAUTHORIZED", 401),
        (
            client
                .get(format!("{}/me", base_url()))
                .header("X-API-Key", "fg_test_0000000000000000000000000000000000000000"),
            "UNAUTHORIZED",
            401,
        ),
    ];
    for (request, kind, status) in cases {
        assert_gateway_response(request.send().await.unwrap(), kind, status).await;
    }
}

#[tokio::test]
async fn any_body_bytes_reach_the_function_and_never_a_gateway_500() {
    let client = reqwest::Client::new();
    let tenant = crate::new_tenant(&client, "e2e-bytes").await;
    let full = key(&client, &tenant, "full-fleet").await;
    // Not UTF-8 (cargo lambda watch's own front answered these with a plain-text 500).
    for body in [vec![0x77, 0xff, 0xfe], vec![0xff; 300], b"{\"vin\": \"\xc3\x28\"}".to_vec()] {
        let response = client
            .post(format!("{}/vehicles", base_url()))
            .header("X-API-Key", &full)
            .header("Content-Type", "application/json")
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "{body:?}");
        assert_eq!(response.headers()["content-type"], "application/problem+json");
        // The function's own problem (it names the request's id), not a gateway response.
        let problem: Value = response.json().await.unwrap();
        assert_eq!(problem["code"], "invalid_json", "{problem}");
    }
    // Over the functions' 64 KiB: refused before Lambda by the template's WAF rule
    // (between 6 and 10 MB Lambda itself would refuse it, as a 5xx).
    let over = vec![b' '; fleetgate_api::input::MAX_BODY_BYTES + 1];
    let response =
        client.post(format!("{}/vehicles", base_url())).header("X-API-Key", &full).body(over).send().await.unwrap();
    assert_eq!(response.status(), 413);
    let template = Template::load_default().unwrap();
    let waf = &template.properties("BodySizeWebAcl").unwrap()["CustomResponseBodies"]["payload-too-large"]["Content"];
    assert_eq!(response.text().await.unwrap(), waf.as_str().unwrap());
    // Over API Gateway's 10 MB payload limit: refused before anything else too.
    let huge = vec![b' '; fleetgate_local::gateway::MAX_PAYLOAD_BYTES + 1];
    let response =
        client.post(format!("{}/vehicles", base_url())).header("X-API-Key", &full).body(huge).send().await.unwrap();
    assert_eq!(response.status(), 413);
    assert_eq!(response.headers()["content-type"], "application/problem+json");
}

#[tokio::test]
async fn a_revoked_key_stops_at_once_through_the_flush_and_lives_for_the_ttl_without_it() {
    let client = reqwest::Client::new();
    let tenant = crate::new_tenant(&client, "e2e-revoke").await;
    // Longer than a revocation takes (it flushes twice, 5 s apart).
    let ttl = 12;
    let (own, own_gateway) = own_gateway(&[("AuthorizerCacheTtlSeconds", "12")]).await;
    let created = provision(
        &client,
        json!({"action": "create_key", "tenant_id": tenant, "name": "cached", "preset": "read-only"}),
    )
    .await;
    let api_key = created["api_key"].as_str().unwrap().to_owned();
    let key_id = created["key"]["key_id"].as_str().unwrap().to_owned();
    let me = |base: String| {
        let request = client.get(format!("{base}/me")).header("X-API-Key", &api_key);
        async move { request.send().await.unwrap().status().as_u16() }
    };
    // Both gateways have the key's Allow in their caches.
    assert_eq!(me(base_url()).await, 200);
    assert_eq!(me(own.clone()).await, 200);
    assert_eq!(own_gateway.cached_entries(), 1);

    let cached_at = Instant::now();
    let revoked = provision(&client, json!({"action": "revoke_key", "tenant_id": tenant, "key_id": key_id})).await;
    assert_eq!(revoked["authorizer_cache_flushed"], true, "{revoked}");
    // The stack's gateway was flushed by the provisioner: refused at once.
    assert_eq!(me(base_url()).await, 401);
    // A gateway the provisioner does not flush keeps the cached Allow for its TTL...
    assert_eq!(me(own.clone()).await, 200, "the cached Allow lives until the TTL");
    tokio::time::sleep(Duration::from_secs(ttl).saturating_sub(cached_at.elapsed()) + Duration::from_millis(300)).await;
    // ...and then asks the authorizer again.
    assert_eq!(me(own.clone()).await, 401);

    // The flush endpoint, called as API Gateway's FlushStageAuthorizersCache is.
    let other = key(&client, &tenant, "read-only").await;
    assert_eq!(client.get(format!("{own}/me")).header("X-API-Key", &other).send().await.unwrap().status(), 200);
    assert_eq!(own_gateway.cached_entries(), 1);
    let flushed =
        client.delete(format!("{own}/restapis/fleetgate-local/stages/v1/cache/authorizers")).send().await.unwrap();
    assert_eq!(flushed.status(), 202);
    assert_eq!(own_gateway.cached_entries(), 0);
    let wrong_stage =
        client.delete(format!("{own}/restapis/fleetgate-local/stages/v2/cache/authorizers")).send().await.unwrap();
    assert_eq!(wrong_stage.status(), 404);
}

#[tokio::test]
async fn over_the_stage_limit_the_gateway_answers_throttled() {
    let client = reqwest::Client::new();
    let (own, _) = own_gateway(&[("ThrottlingRateLimit", "1"), ("ThrottlingBurstLimit", "2")]).await;
    let mut statuses = Vec::new();
    let mut throttled = None;
    for _ in 0..4 {
        let response = client.get(format!("{own}/me")).send().await.unwrap();
        statuses.push(response.status().as_u16());
        if response.status() == 429 {
            throttled = Some(response);
        }
    }
    // The burst of 2 passes (to the authorizer: no key, so 401); then the bucket is empty.
    assert_eq!(&statuses[..2], [401, 401]);
    assert!(statuses[2..].contains(&429), "{statuses:?}");
    let throttled = throttled.unwrap();
    assert_eq!(throttled.headers()["retry-after"], "1");
    assert_gateway_response(throttled, "THROTTLED", 429).await;
}

#[tokio::test]
async fn every_bad_key_gets_the_same_401_byte_for_byte() {
    let client = reqwest::Client::new();
    let tenant = crate::new_tenant(&client, "e2e-401").await;
    let create = |extra: Value| {
        let mut event = json!({"action": "create_key", "tenant_id": tenant, "name": "k", "preset": "read-only"});
        event.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        let client = client.clone();
        async move { provision(&client, event).await }
    };
    let revoked = create(json!({})).await;
    provision(&client, json!({"action": "revoke_key", "tenant_id": tenant, "key_id": revoked["key"]["key_id"]})).await;
    let rotated = create(json!({})).await;
    let rotation = provision(
        &client,
        json!({"action": "rotate_key", "tenant_id": tenant, "key_id": rotated["key"]["key_id"], "grace_period_hours": 0}),
    )
    .await;
    assert!(rotation["api_key"].is_string(), "{rotation}");
    let expiring = create(json!({"expires_at": (fleetgate_api::Timestamp::now()
        .plus(time::Duration::seconds(2)))
    .to_string()}))
    .await;
    let expiring_key = expiring["api_key"].as_str().unwrap_or_else(|| panic!("{expiring}")).to_owned();
    tokio::time::sleep(Duration::from_secs(3)).await;

    let unknown = fleetgate_api::keys::ApiKey::generate(fleetgate_scopes::Environment::Test).expose().to_owned();
    let live = fleetgate_api::keys::ApiKey::generate(fleetgate_scopes::Environment::Live).expose().to_owned();
    // A well-formed key with one character of its body changed: its checksum no longer holds.
    let mistyped = {
        let valid = fleetgate_api::keys::ApiKey::generate(fleetgate_scopes::Environment::Test).expose().to_owned();
        let at = "fg_test_".len();
        let swapped = if valid.as_bytes()[at] == b'a' { "b" } else { "a" };
        format!("{}{swapped}{}", &valid[..at], &valid[at + 1..])
    };
    assert_eq!(
        fleetgate_api::keys::ApiKey::parse(&mistyped).err(),
        Some(fleetgate_api::keys::KeyFormatError::BadChecksum)
    );
    let bad_keys = [
        ("unknown", unknown),
        ("revoked", revoked["api_key"].as_str().unwrap().to_owned()),
        ("rotated past its grace", rotated["api_key"].as_str().unwrap().to_owned()),
        ("expired", expiring_key),
        ("another environment's", live),
        ("malformed", "fg_test_nope".to_owned()),
        ("mistyped (bad checksum)", mistyped),
    ];
    let mut bodies = Vec::new();
    for (what, key) in &bad_keys {
        let response = client.get(format!("{}/me", base_url())).header("X-API-Key", key).send().await.unwrap();
        assert_eq!(response.status(), 401, "{what}");
        let mut body: Value = response.json().await.unwrap();
        body.as_object_mut().unwrap().remove("request_id");
        bodies.push((what, body.to_string()));
    }
    // Nothing tells one bad key from another.
    for (what, body) in &bodies {
        assert_eq!(body, &bodies[0].1, "{what} differs from {}", bodies[0].0);
    }
}

#[tokio::test]
async fn a_key_pinned_to_other_networks_is_refused_from_here_until_its_restriction_changes() {
    let client = reqwest::Client::new();
    let tenant = crate::new_tenant(&client, "e2e-cidr").await;
    let created = provision(
        &client,
        json!({"action": "create_key", "tenant_id": tenant, "name": "depot", "preset": "read-only",
               "allowed_cidrs": ["203.0.113.0/24"]}),
    )
    .await;
    let (api_key, key_id) = (created["api_key"].as_str().unwrap(), created["key"]["key_id"].as_str().unwrap());
    let me = || client.get(format!("{}/me", base_url())).header("X-API-Key", api_key).send();
    // The gateway reports 127.0.0.1 as the source address, outside 203.0.113.0/24.
    let refused = me().await.unwrap();
    assert_eq!(refused.status(), 403);
    assert!(refused.headers().get("x-key-scopes").is_none(), "nothing about the key");
    assert_eq!(refused.json::<Value>().await.unwrap()["code"], "ip_not_allowed");
    // Restrictions change on the live key; the provisioner flushes the cached Allow,
    // so the new list applies at once (not after the TTL).
    let updated = provision(
        &client,
        json!({"action": "update_key_restrictions", "tenant_id": tenant, "key_id": key_id,
               "allowed_cidrs": ["127.0.0.0/8", "::1/128"]}),
    )
    .await;
    assert_eq!(updated["authorizer_cache_flushed"], true, "{updated}");
    let allowed = me().await.unwrap();
    assert_eq!(allowed.status(), 200);
    assert_eq!(allowed.json::<Value>().await.unwrap()["allowed_cidrs"], json!(["127.0.0.0/8", "::1/128"]));
}

#[tokio::test]
async fn every_authenticated_answer_carries_ratelimit_headers_and_a_looping_key_gets_429() {
    let client = reqwest::Client::new();
    let tenant = crate::new_tenant(&client, "e2e-limits").await;
    let created = provision(
        &client,
        json!({"action": "create_key", "tenant_id": tenant, "name": "looping device", "preset": "read-only",
               "rate_limit": {"requests": 5, "per": "second"}}),
    )
    .await;
    let api_key = created["api_key"].as_str().unwrap();
    let get = |path: &str| client.get(format!("{}{path}", base_url())).header("X-API-Key", api_key).send();
    // A refusal for scope is an authenticated answer too: it carries the headers.
    let forbidden = client
        .post(format!("{}/vehicles", base_url()))
        .header("X-API-Key", api_key)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(forbidden.status(), 403);
    assert_eq!(forbidden.headers()["ratelimit-policy"], r#""key";q=5;w=1"#);
    // A runaway client: bursts of ten at once (one second's window holds five), until refused.
    let mut statuses = Vec::new();
    for _ in 0..5 {
        let answers = futures::future::join_all((0..10).map(|_| get("/me"))).await;
        for answer in answers {
            let answer = answer.unwrap();
            let (status, headers) = (answer.status().as_u16(), answer.headers().clone());
            statuses.push(status);
            assert_eq!(headers["ratelimit-policy"], r#""key";q=5;w=1"#, "{status}");
            if status == 429 {
                assert_eq!(headers["retry-after"], "1", "a one-second window");
                assert!(headers["ratelimit"].to_str().unwrap().starts_with(r#""key";r=0;t="#));
                let problem: Value = answer.json().await.unwrap();
                assert_eq!(
                    (&problem["code"], &problem["limit"], &problem["window_seconds"]),
                    (&json!("rate_limited"), &json!(5), &json!(1))
                );
            } else {
                assert_eq!(status, 200);
                assert!(headers["ratelimit"].to_str().unwrap().starts_with(r#""key";r="#), "{headers:?}");
            }
        }
        if statuses.contains(&429) {
            break;
        }
    }
    assert!(statuses.contains(&429), "{statuses:?}");
    // A key created without a limit has the deployment's default (the template's 100/second).
    let plain = provision(
        &client,
        json!({"action": "create_key", "tenant_id": tenant, "name": "plain", "preset": "read-only"}),
    )
    .await;
    let answer = client
        .get(format!("{}/me", base_url()))
        .header("X-API-Key", plain["api_key"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(answer.headers()["ratelimit-policy"], r#""key";q=100;w=1"#);
}

#[tokio::test]
async fn a_rate_limit_changed_on_a_live_key_applies_at_once_after_the_flush() {
    let client = reqwest::Client::new();
    let tenant = crate::new_tenant(&client, "e2e-relimit").await;
    let created =
        provision(&client, json!({"action": "create_key", "tenant_id": tenant, "name": "tms", "preset": "read-only"}))
            .await;
    let (api_key, key_id) = (created["api_key"].as_str().unwrap(), created["key"]["key_id"].as_str().unwrap());
    let me = || client.get(format!("{}/me", base_url())).header("X-API-Key", api_key).send();
    // The Allow (with the default limit) is cached by the gateway now.
    assert_eq!(me().await.unwrap().headers()["ratelimit-policy"], r#""key";q=100;w=1"#);
    let updated = provision(
        &client,
        json!({"action": "update_key_restrictions", "tenant_id": tenant, "key_id": key_id,
               "rate_limit": {"requests": 2, "per": "minute"}}),
    )
    .await;
    assert_eq!(updated["authorizer_cache_flushed"], true, "{updated}");
    // All three in one minute-long window: if it is about to turn, start in the next.
    let epoch = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    if 60 - epoch % 60 < 5 {
        tokio::time::sleep(Duration::from_secs(60 - epoch % 60 + 1)).await;
    }
    let statuses: Vec<u16> = {
        let mut statuses = Vec::new();
        for _ in 0..3 {
            statuses.push(me().await.unwrap().status().as_u16());
        }
        statuses
    };
    assert_eq!(statuses, [200, 200, 429], "the new limit, not the cached default");
    let answer = me().await.unwrap();
    assert_eq!(answer.headers()["ratelimit-policy"], r#""key";q=2;w=60"#);
}
