//! The authorizer against DynamoDB Local: Allow with context for good keys,
//! exactly `Unauthorized` for every bad one, a distinct failure when the store is down.

use authorizer::{AuthorizerError, handler};
use fleetgate_api::Timestamp;
use fleetgate_api::keys::{ApiKey, KeyResolver, KeyStore};
use fleetgate_scopes::Environment;
use serde_json::json;

use crate::helpers::{TestStack, authorizer_event, local_client};

#[tokio::test]
async fn a_good_key_gets_a_whole_stage_allow_with_its_context() {
    let stack = TestStack::new().await;
    let (api_key, key_id) = stack.create_key(&["vehicles:write", "inspections:read"]).await;

    let response = handler(&stack.authorizer(), authorizer_event(&[("X-API-Key", &api_key)])).await.unwrap();
    let response = serde_json::to_value(response).unwrap();
    assert_eq!(response["principalId"], key_id.as_str());
    assert_eq!(
        response["policyDocument"],
        json!({"Version": "2012-10-17", "Statement": [{"Action": "execute-api:Invoke", "Effect": "Allow",
               "Resource": "arn:aws:execute-api:eu-west-1:123456789012:api123/v1/*/*"}]})
    );
    assert_eq!(
        response["context"],
        json!({"tenant_id": stack.tenant, "key_id": key_id, "key_name": "test key",
               "scopes": "vehicles:write inspections:read", "environment": "test", "expires_at": "", "allowed_cidrs": "",
               // The template's DefaultRateLimit (the key has none of its own); no quota, no tenant cap.
               "rate_limit": "100/second", "monthly_quota": "", "tenant_rate_limit": ""})
    );
    assert!(!response.to_string().contains(&api_key));
}

#[tokio::test]
async fn every_bad_key_is_exactly_unauthorized() {
    let stack = TestStack::new().await;
    let (good, key_id) = stack.create_key(&["vehicles:read"]).await;
    let authorizer = stack.authorizer();
    let live_key = ApiKey::generate(Environment::Live);
    let unknown = ApiKey::generate(Environment::Test);
    let mut bad_checksum = good.clone();
    bad_checksum.replace_range(10..11, if &good[10..11] == "A" { "B" } else { "A" });
    let lowercase_header_value = good.to_lowercase();

    let cases: Vec<(&str, Vec<(&str, &str)>)> = vec![
        ("no header", vec![]),
        ("empty", vec![("X-API-Key", "")]),
        ("garbage", vec![("X-API-Key", "hello")]),
        ("bearer instead", vec![("Authorization", good.as_str())]),
        ("bad checksum", vec![("X-API-Key", bad_checksum.as_str())]),
        ("case-mangled", vec![("X-API-Key", lowercase_header_value.as_str())]),
        ("other environment", vec![("X-API-Key", live_key.expose())]),
        ("unknown", vec![("X-API-Key", unknown.expose())]),
    ];
    for (what, headers) in cases {
        let result = handler(&authorizer, authorizer_event(&headers)).await;
        assert!(matches!(result, Err(AuthorizerError::Unauthorized)), "{what}: {result:?}");
    }
    stack.provision(json!({"action": "revoke_key", "tenant_id": stack.tenant, "key_id": key_id})).await.unwrap();
    let result = handler(&authorizer, authorizer_event(&[("X-API-Key", &good)])).await;
    assert!(matches!(result, Err(AuthorizerError::Unauthorized)), "revoked: {result:?}");
}

#[tokio::test]
async fn malformed_keys_are_refused_without_a_database_read_and_outages_are_not_401() {
    // Nothing listens on port 9: any database read would fail as an outage, not as Unauthorized.
    let dead = authorizer::State {
        resolver: KeyResolver::new(KeyStore::new(local_client("http://127.0.0.1:9"), "keys".into()), Environment::Test),
    };
    let mut bad_checksum = ApiKey::generate(Environment::Test).expose().to_owned();
    let last = bad_checksum.pop().unwrap();
    bad_checksum.push(if last == 'a' { 'b' } else { 'a' });
    for offline in ["", "fg_test_short", bad_checksum.as_str(), ApiKey::generate(Environment::Live).expose()] {
        let result = handler(&dead, authorizer_event(&[("X-API-Key", offline)])).await;
        assert!(matches!(result, Err(AuthorizerError::Unauthorized)), "{offline}: {result:?}");
    }
    // A well-formed key needs the store: with the store down that is a failure (503 at the gateway).
    let well_formed = ApiKey::generate(Environment::Test);
    let result = handler(&dead, authorizer_event(&[("X-API-Key", well_formed.expose())])).await;
    match result {
        Err(err @ AuthorizerError::Failure(_)) => {
            let diagnostic = lambda_runtime::Diagnostic::from(err);
            assert_ne!(diagnostic.error_message, "Unauthorized");
            assert!(!diagnostic.error_message.contains(well_formed.expose()));
        }
        other => panic!("expected a failure, got {other:?}"),
    }
}

#[tokio::test]
async fn last_used_is_written_at_most_hourly() {
    let stack = TestStack::new().await;
    let (api_key, key_id) = stack.create_key(&["vehicles:read"]).await;
    let resolver = stack.resolver();
    let store = stack.key_store();
    let hash = ApiKey::parse(&api_key).unwrap().hash();
    let last_used = || async { store.find_by_hash(&hash).await.unwrap().unwrap().last_used_at };

    let t0 = Timestamp::now();
    resolver.resolve(Some(&api_key), t0).await.unwrap();
    assert_eq!(last_used().await, Some(t0));

    // 59 minutes later: no write.
    resolver.resolve(Some(&api_key), t0.plus(time::Duration::minutes(59))).await.unwrap();
    assert_eq!(last_used().await, Some(t0));

    // 61 minutes later: one write.
    let t1 = t0.plus(time::Duration::minutes(61));
    resolver.resolve(Some(&api_key), t1).await.unwrap();
    assert_eq!(last_used().await, Some(t1));

    let listed =
        stack.provision(json!({"action": "get_key", "tenant_id": stack.tenant, "key_id": key_id})).await.unwrap();
    assert_eq!(listed["key"]["last_used_at"], t1.to_string());
}

#[tokio::test]
async fn a_key_is_looked_up_by_its_hash_and_its_tenant_cap_with_two_getitems_and_nothing_else() {
    let stack = TestStack::new().await;
    let (api_key, _) = stack.create_key(&["vehicles:read"]).await;
    let proxy = crate::fault_proxy::FaultProxy::start(&crate::helpers::endpoint()).await;
    let counted = stack.through(local_client(&proxy.endpoint));

    // A good key: one GetItem on its hash, one on its tenant's cap (plus, at most
    // hourly, the last_used_at update).
    assert!(handler(&counted.authorizer(), authorizer_event(&[("X-API-Key", &api_key)])).await.is_ok());
    assert_eq!(proxy.forwarded("GetItem"), 2);
    let others = proxy.forwarded_total() - proxy.forwarded("GetItem") - proxy.forwarded("UpdateItem");
    assert_eq!(others, 0, "no Query or Scan: nothing compares key text");
    // Asked again within the hour: the two GetItems, no update.
    let before = proxy.forwarded_total();
    assert!(handler(&counted.authorizer(), authorizer_event(&[("X-API-Key", &api_key)])).await.is_ok());
    assert_eq!(proxy.forwarded_total() - before, 2);
    assert_eq!(proxy.forwarded("UpdateItem"), 1, "last_used_at at most hourly");

    // Garbage and a mistyped checksum never reach the table.
    let before = proxy.forwarded_total();
    let mut mistyped = api_key.clone();
    mistyped.pop();
    mistyped.push(if api_key.ends_with('A') { 'B' } else { 'A' });
    for bad in ["garbage", "fg_test_short", mistyped.as_str()] {
        assert!(handler(&counted.authorizer(), authorizer_event(&[("X-API-Key", bad)])).await.is_err(), "{bad}");
    }
    assert_eq!(proxy.forwarded_total(), before, "refused offline");
}
