//! End to end through the local gateway in front of `cargo lambda watch` (started by
//! `make test`, which sets FLEETGATE_E2E_URL): the real binaries, the authorizer and
//! its cache, the template's routes and gateway responses, the emulator.

mod gateway;
mod outage;

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

/// A tenant of this test run, `<prefix>-<pid>`, created as an admin would (tenants are explicit).
pub(crate) async fn new_tenant(client: &reqwest::Client, prefix: &str) -> String {
    let tenant = format!("{prefix}-{}", std::process::id());
    let created = provision(client, json!({"action": "create_tenant", "tenant_id": tenant, "name": prefix})).await;
    assert!(created["tenant"].is_object() || created["errorType"] == "tenant_exists", "{created}");
    tenant
}

#[tokio::test]
async fn a_key_is_created_used_on_me_revoked_and_then_refused() {
    let client = reqwest::Client::new();
    let tenant = new_tenant(&client, "e2e").await;

    let created =
        provision(&client, json!({"action": "create_key", "tenant_id": tenant, "name": "e2e", "preset": "read-only"}))
            .await;
    let api_key = created["api_key"].as_str().unwrap_or_else(|| panic!("no api_key in {created}")).to_owned();
    let key_id = created["key"]["key_id"].as_str().unwrap().to_owned();

    let me = client.get(format!("{}/me", base_url())).header("X-API-Key", &api_key).send().await.unwrap();
    assert_eq!(me.status(), 200);
    assert_eq!(me.headers()["x-key-scopes"], "vehicles:read inspections:read");
    let body: Value = me.json().await.unwrap();
    assert_eq!(body["key_id"], key_id.as_str());
    assert_eq!(body["tenant_id"], tenant.as_str());
    assert_eq!(body["granted_scopes"], json!(["vehicles:read", "inspections:read"]));

    // No key: API Gateway's UNAUTHORIZED response (it cannot tell missing from bad).
    let anonymous = client.get(format!("{}/me", base_url())).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    assert_eq!(anonymous.headers()["content-type"], "application/problem+json");
    assert_eq!(anonymous.json::<Value>().await.unwrap()["code"], "invalid_api_key");

    // Rotated with no grace period: the old key stops at once, its twin works.
    let rotated = provision(
        &client,
        json!({"action": "rotate_key", "tenant_id": tenant, "key_id": key_id, "grace_period_hours": 0}),
    )
    .await;
    let twin = rotated["api_key"].as_str().unwrap_or_else(|| panic!("no api_key in {rotated}")).to_owned();
    let old = client.get(format!("{}/me", base_url())).header("X-API-Key", &api_key).send().await.unwrap();
    assert_eq!(old.status(), 401);
    let me = client.get(format!("{}/me", base_url())).header("X-API-Key", &twin).send().await.unwrap();
    assert_eq!(me.status(), 200);
    let (api_key, key_id) = (twin, rotated["key"]["key_id"].as_str().unwrap().to_owned());

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
    // A payload that is not JSON at all gets the same kind of answer, not the runtime's type name.
    let url = format!("{}/2015-03-31/functions/provisioner/invocations", base_url());
    let raw = client.post(url).body("action=list_keys").send().await.unwrap();
    // As Lambda's Invoke API answers a function error (SDK clients such as the admin
    // CLI rely on it): 200 with X-Amz-Function-Error, the error in the body.
    assert_eq!(raw.status(), 200);
    assert_eq!(raw.headers().get("x-amz-function-error").map(|v| v.to_str().unwrap()), Some("Unhandled"));
    let raw: Value = raw.json().await.unwrap();
    assert_eq!(raw["errorType"], "invalid_request", "{raw}");
}

/// A key of `tenant` with `preset`, made through the provisioner.
async fn key(client: &reqwest::Client, tenant: &str, preset: &str) -> String {
    let created =
        provision(client, json!({"action": "create_key", "tenant_id": tenant, "name": preset, "preset": preset})).await;
    created["api_key"].as_str().unwrap_or_else(|| panic!("no api_key in {created}")).to_owned()
}

#[tokio::test]
async fn vehicles_are_created_listed_read_and_replaced_over_http() {
    let client = reqwest::Client::new();
    let tenant = new_tenant(&client, "e2e-veh").await;
    let full = key(&client, &tenant, "full-fleet").await;
    let read_only = key(&client, &tenant, "read-only").await;
    let url = format!("{}/vehicles", base_url());
    let truck = json!({"vin": "1HGCM82633A004352", "name": "Truck 12", "make": "Volvo", "model": "FH16",
                       "year": 2022, "license_plate": "AB-123", "status": "active", "odometer_km": 120000});

    let created = client
        .post(&url)
        .header("X-API-Key", &full)
        .header("Idempotency-Key", "e2e-1")
        .json(&truck)
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    assert_eq!(created.headers()["etag"], "\"1\"");
    let vehicle: Value = created.json().await.unwrap();
    let id = vehicle["id"].as_str().unwrap();

    let replayed = client
        .post(&url)
        .header("X-API-Key", &full)
        .header("Idempotency-Key", "e2e-1")
        .json(&truck)
        .send()
        .await
        .unwrap();
    assert_eq!(replayed.headers()["idempotent-replayed"], "true");
    assert_eq!(replayed.json::<Value>().await.unwrap()["id"], id);

    let listed: Value = client.get(&url).header("X-API-Key", &read_only).send().await.unwrap().json().await.unwrap();
    assert_eq!(listed["data"].as_array().unwrap().len(), 1);
    assert_eq!(listed["next_cursor"], Value::Null);

    let denied = client.post(&url).header("X-API-Key", &read_only).json(&truck).send().await.unwrap();
    assert_eq!(denied.status(), 403);
    assert_eq!(denied.headers()["x-accepted-scopes"], "vehicles:write");
    assert_eq!(denied.json::<Value>().await.unwrap()["required_scopes"], json!(["vehicles:write"]));

    let mut changed = truck.clone();
    changed["status"] = json!("in_shop");
    let one = format!("{url}/{id}");
    let updated =
        client.put(&one).header("X-API-Key", &full).header("If-Match", "\"1\"").json(&changed).send().await.unwrap();
    assert_eq!(updated.status(), 200);
    let stale =
        client.put(&one).header("X-API-Key", &full).header("If-Match", "\"1\"").json(&changed).send().await.unwrap();
    assert_eq!(stale.status(), 412);
    let fetched = client.get(&one).header("X-API-Key", &read_only).send().await.unwrap();
    assert_eq!(fetched.headers()["etag"], "\"2\"");
    assert_eq!(fetched.json::<Value>().await.unwrap()["status"], "in_shop");

    let missing = client
        .get(format!("{url}/veh_00000000000000000000000000"))
        .header("X-API-Key", &read_only)
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    assert_eq!(missing.headers()["content-type"], "application/problem+json");
}

#[tokio::test]
async fn a_device_submits_an_inspection_that_shows_in_history_and_audit() {
    let client = reqwest::Client::new();
    let tenant = new_tenant(&client, "e2e-insp").await;
    let admin = provision(&client, json!({"action": "put_inspection_template", "tenant_id": tenant, "template": {
        "id": "tpl_pretrip", "name": "Pre-trip", "items": [{"id": "brakes", "label": "Brakes"}, {"id": "lights", "label": "Lights"}]}}))
    .await;
    assert_eq!(admin["template"]["version"], 1, "{admin}");
    let full = key(&client, &tenant, "full-fleet").await;
    let device = key(&client, &tenant, "inspection-submission").await;
    let truck = json!({"vin": "1HGCM82633A004399", "name": "Truck 99", "make": "Volvo", "model": "FH16", "year": 2022});
    let vehicle: Value = client
        .post(format!("{}/vehicles", base_url()))
        .header("X-API-Key", &full)
        .json(&truck)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let vehicle_id = vehicle["id"].as_str().unwrap();

    let templates: Value = client
        .get(format!("{}/inspection-templates", base_url()))
        .header("X-API-Key", &device)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(templates["data"][0]["id"], "tpl_pretrip");

    let submitted = client
        .post(format!("{}/inspections", base_url()))
        .header("X-API-Key", &device)
        .json(&json!({"vehicle_id": vehicle_id, "template_id": "tpl_pretrip", "type": "pre_trip", "inspector": "Ana Silva",
                      "performed_at": "2026-11-01T08:00:00Z", "odometer_km": 120500,
                      "results": [{"item_id": "brakes", "status": "fail", "note": "soft pedal"}, {"item_id": "lights", "status": "pass"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(submitted.status(), 201);
    let inspection: Value = submitted.json().await.unwrap();
    assert_eq!(inspection["outcome"], "fail");

    let history: Value = client
        .get(format!("{}/inspections?vehicle_id={vehicle_id}&outcome=fail", base_url()))
        .header("X-API-Key", &device)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(history["data"][0]["id"], inspection["id"]);

    let audit = provision(&client, json!({"action": "list_audit", "tenant_id": tenant, "limit": 5})).await;
    let newest = &audit["data"][0];
    assert_eq!(
        (newest["action"].as_str(), newest["resource_id"].as_str()),
        (Some("POST /inspections"), inspection["id"].as_str())
    );
}
