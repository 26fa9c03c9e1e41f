//! End to end through `cargo lambda watch` (started by `make test`, which sets
//! FLEETGATE_E2E_URL): the real binaries, the real router, DynamoDB Local.

use serde_json::{Value, json};

fn base_url() -> String {
    std::env::var("FLEETGATE_E2E_URL")
        .unwrap_or_else(|_| panic!("FLEETGATE_E2E_URL is not set: run the suite with `make test`"))
}

/// Invokes the provisioner through the Lambda invoke API, as an admin would locally.
async fn provision(client: &reqwest::Client, event: Value) -> Value {
    let url = format!("{}/2015-03-31/functions/provisioner/invocations", base_url());
    client.post(url).json(&event).send().await.unwrap().json().await.unwrap()
}

#[tokio::test]
async fn a_key_is_created_used_on_me_revoked_and_then_refused() {
    let client = reqwest::Client::new();
    let tenant = format!("e2e-{}", std::process::id());

    let created = provision(&client, json!({"action": "create_key", "tenant_id": tenant, "name": "e2e", "preset": "read-only"})).await;
    let api_key = created["api_key"].as_str().unwrap_or_else(|| panic!("no api_key in {created}")).to_owned();
    let key_id = created["key"]["key_id"].as_str().unwrap().to_owned();

    let me = client.get(format!("{}/me", base_url())).header("X-API-Key", &api_key).send().await.unwrap();
    assert_eq!(me.status(), 200);
    assert_eq!(me.headers()["x-key-scopes"], "vehicles:read inspections:read");
    let body: Value = me.json().await.unwrap();
    assert_eq!(body["key_id"], key_id.as_str());
    assert_eq!(body["tenant_id"], tenant.as_str());
    assert_eq!(body["granted_scopes"], json!(["vehicles:read", "inspections:read"]));

    let anonymous = client.get(format!("{}/me", base_url())).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    assert_eq!(anonymous.headers()["content-type"], "application/problem+json");
    assert_eq!(anonymous.json::<Value>().await.unwrap()["code"], "missing_api_key");

    let revoked = provision(&client, json!({"action": "revoke_key", "tenant_id": tenant, "key_id": key_id})).await;
    assert_eq!(revoked["key"]["status"], "revoked");

    let refused = client.get(format!("{}/me", base_url())).header("X-API-Key", &api_key).send().await.unwrap();
    assert_eq!(refused.status(), 401);
    let problem: Value = refused.json().await.unwrap();
    assert_eq!(problem["code"], "invalid_api_key");
    assert!(!problem.to_string().contains(&api_key));
}

#[tokio::test]
async fn the_provisioner_refuses_unavailable_scopes_with_a_clear_error_type() {
    let client = reqwest::Client::new();
    let refused = provision(
        &client,
        json!({"action": "create_key", "tenant_id": "e2e-refusals", "name": "x", "scopes": ["analytics:read"]}),
    )
    .await;
    assert_eq!(refused["errorType"], "scope_not_available");
    assert!(refused["errorMessage"].as_str().unwrap().contains("under review"), "{refused}");
}
