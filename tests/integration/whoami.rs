//! `GET /me` and the endpoint runner every function shares: the authorizer's context
//! is the only credential (locally too, through the local gateway), 403 problems for
//! missing scopes.

use std::collections::BTreeMap;

use http::StatusCode;
use serde_json::json;

use fleetgate_api::Timestamp;
use fleetgate_api::http::{Gate, json_response, serve};
use fleetgate_scopes::{AuthContext, Environment, ScopeSet, TenantId, routes};

use crate::helpers::{TestStack, body_json, header, rest_request};

/// The expiry of the test key: a year from the clock the runner reads (a literal
/// date here would make every test fail once the clock passed it).
fn expiry() -> String {
    // Midnight of that day, so two calls in one test agree.
    let in_a_year = Timestamp::now().plus(time::Duration::days(365)).to_string();
    format!("{}T00:00:00Z", &in_a_year[..10])
}

fn context_fields(scopes: &str) -> BTreeMap<&'static str, String> {
    AuthContext::new(
        TenantId::parse("acme").unwrap(),
        "key_abcdefghijklmnopqrst".into(),
        "tms-sync".into(),
        ScopeSet::parse_space_separated(scopes).unwrap(),
        Environment::Live,
        Some(expiry()),
    )
    .to_authorizer_context()
    .into_iter()
    .collect()
}

fn gateway_gate() -> Gate {
    Gate::default()
}

fn gateway() -> whoami::State {
    whoami::State { gate: gateway_gate() }
}

#[tokio::test]
async fn me_reports_the_key_from_the_authorizer_context() {
    let fields = context_fields("vehicles:write");
    let response = whoami::handler(&gateway(), rest_request("GET", "/me", &[], Some(&fields))).await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "content-type"), Some("application/json"));
    assert_eq!(header(&response, "x-key-scopes"), Some("vehicles:read vehicles:write"));
    assert_eq!(
        body_json(&response),
        json!({"key_id": "key_abcdefghijklmnopqrst", "name": "tms-sync", "tenant_id": "acme", "environment": "live",
               "granted_scopes": ["vehicles:write"], "effective_scopes": ["vehicles:read", "vehicles:write"],
               "expires_at": expiry(), "allowed_cidrs": null,
               // A context without limits (one cached before they existed) counts nothing.
               "rate_limit": null, "monthly_quota": null, "tenant_rate_limit": null,
               "usage": {"month": fleetgate_api::usage::UtcMonth::of(fleetgate_api::Timestamp::now().unix_seconds()).label(), "requests": null}})
    );
}

#[tokio::test]
async fn without_authorizer_context_no_header_is_trusted() {
    let stack = TestStack::new().await;
    let (api_key, _) = stack.create_key(&["vehicles:read"]).await;
    // A valid key in the header is not enough: only the authorizer's context counts.
    let response =
        whoami::handler(&gateway(), rest_request("GET", "/me", &[("X-API-Key", &api_key)], None)).await.unwrap();
    assert_eq!(response.status(), 401);
    assert_eq!(header(&response, "content-type"), Some("application/problem+json"));
    assert_eq!(body_json(&response)["code"], "missing_api_key");
    assert_eq!(body_json(&response)["request_id"], "gw-req-1");
    assert!(header(&response, "x-key-scopes").is_none());
}

#[tokio::test]
async fn a_key_without_the_route_scope_gets_the_403_problem() {
    let fields = context_fields("vehicles:read");
    let request = rest_request("POST", "/vehicles", &[], Some(&fields));
    let mut called = false;
    let response = serve(&gateway_gate(), &routes::CREATE_VEHICLE, request, |_, _| {
        called = true;
        async { json_response(StatusCode::CREATED, &json!({})) }
    })
    .await;
    assert!(!called, "the handler must not run without the scope");
    assert_eq!(response.status(), 403);
    assert_eq!(header(&response, "x-accepted-scopes"), Some("vehicles:write"));
    assert_eq!(header(&response, "x-key-scopes"), Some("vehicles:read"));
    assert_eq!(
        body_json(&response),
        json!({"type": "https://fleetgate.dev/problems/insufficient-scope", "title": "Insufficient scope", "status": 403,
               "detail": "This key lacks vehicles:write, which POST /vehicles requires.", "code": "insufficient_scope",
               "required_scopes": ["vehicles:write"], "granted_scopes": ["vehicles:read"],
               "effective_scopes": ["vehicles:read"], "request_id": "gw-req-1"})
    );
}

#[tokio::test]
async fn write_scope_passes_the_read_route_and_wrong_methods_are_405() {
    let fields = context_fields("vehicles:write");
    let ok = serve(
        &gateway_gate(),
        &routes::LIST_VEHICLES,
        rest_request("GET", "/vehicles", &[], Some(&fields)),
        |call, _| async move { json_response(StatusCode::OK, &json!({"tenant": call.auth.tenant_id.as_str()})) },
    )
    .await;
    assert_eq!(ok.status(), 200);
    assert_eq!(body_json(&ok)["tenant"], "acme");

    let wrong = whoami::handler(&gateway(), rest_request("DELETE", "/me", &[], Some(&fields))).await.unwrap();
    assert_eq!(wrong.status(), 405);
    assert_eq!(header(&wrong, "allow"), Some("GET"));
}

#[tokio::test]
async fn a_tampered_authorizer_context_is_refused() {
    let mut fields = context_fields("vehicles:read");
    fields.insert("scopes", "vehicles:read admin:all".into());
    let response = whoami::handler(&gateway(), rest_request("GET", "/me", &[], Some(&fields))).await.unwrap();
    assert_eq!(response.status(), 401);
}

#[tokio::test]
async fn a_key_that_expired_after_its_allow_was_cached_stops_at_its_expiry() {
    let with_expiry = |expires_at: Timestamp| {
        AuthContext::new(
            TenantId::parse("acme").unwrap(),
            "key_abcdefghijklmnopqrst".into(),
            "tms-sync".into(),
            ScopeSet::parse_space_separated("vehicles:read").unwrap(),
            Environment::Test,
            Some(expires_at.to_string()),
        )
        .to_authorizer_context()
        .into_iter()
        .collect::<BTreeMap<_, _>>()
    };
    // The cached context still names the key, but its expiry has passed.
    let expired = with_expiry(Timestamp::now().minus(time::Duration::seconds(1)));
    let response = whoami::handler(&gateway(), rest_request("GET", "/me", &[], Some(&expired))).await.unwrap();
    assert_eq!((response.status().as_u16(), body_json(&response)["code"].clone()), (401, json!("invalid_api_key")));
    let valid = with_expiry(Timestamp::now().plus(time::Duration::seconds(60)));
    let response = whoami::handler(&gateway(), rest_request("GET", "/me", &[], Some(&valid))).await.unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn a_key_pinned_to_networks_works_only_from_them_and_says_nothing_about_them() {
    let pinned: BTreeMap<&'static str, String> = AuthContext::new(
        TenantId::parse("acme").unwrap(),
        "key_abcdefghijklmnopqrst".into(),
        "tms-sync".into(),
        ScopeSet::parse_space_separated("vehicles:read").unwrap(),
        Environment::Live,
        None,
    )
    .with_allowed_cidrs(Some(vec![
        fleetgate_scopes::Cidr::parse("203.0.113.0/24").unwrap(),
        fleetgate_scopes::Cidr::parse("2001:db8::/32").unwrap(),
    ]))
    .to_authorizer_context()
    .into_iter()
    .collect();
    let state = gateway();
    let me = |ip: &str| {
        let req = crate::helpers::Req::new("GET", "/me").source_ip(ip).build(Some(&pinned));
        whoami::handler(&state, req)
    };
    for inside in ["203.0.113.9", "2001:db8::7", "::ffff:203.0.113.200"] {
        let allowed = me(inside).await.unwrap();
        assert_eq!(allowed.status(), 200, "{inside}");
        assert_eq!(body_json(&allowed)["allowed_cidrs"], json!(["203.0.113.0/24", "2001:db8::/32"]));
    }
    for outside in ["127.0.0.1", "203.0.114.1", "2001:db9::1", ""] {
        let refused = me(outside).await.unwrap();
        assert_eq!(refused.status(), 403, "{outside}");
        let problem = body_json(&refused);
        assert_eq!(problem["code"], "ip_not_allowed");
        // Nothing about the key: not its networks, not its scopes (no header either).
        let text = problem.to_string();
        assert!(!text.contains("203.0.113") && !text.contains("vehicles"), "{text}");
        assert_eq!(header(&refused, "x-key-scopes"), None);
        assert!(header(&refused, "x-request-id").is_some());
    }
}
