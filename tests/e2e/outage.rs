//! The outage drill on the running stack: the emulator is frozen (SIGSTOP: it
//! accepts connections and never answers, like a DynamoDB that went silent), every
//! route answers 503 with Retry-After within the SDK's timeouts; then it is thawed
//! and the same processes serve 200 again, with no restart.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::gateway::template_body;
use crate::{base_url, key, provision};

/// The functions' DynamoDB calls give up after 4 s (SDK operation timeout); the
/// authorizer and then the endpoint may each wait that long on one request, and
/// the gateway adds its own hop.
const WITHIN: Duration = Duration::from_secs(10);

fn signal(signal: &str) {
    let pid = std::env::var("FLEETGATE_TEST_EMULATOR_PID").expect("FLEETGATE_TEST_EMULATOR_PID (make test)");
    let status = std::process::Command::new("kill").args([signal, &pid]).status().unwrap();
    assert!(status.success(), "kill {signal} {pid}");
}

/// Thaws the emulator even when an assertion fails, so the rest of `make test` runs.
struct Frozen;

impl Frozen {
    fn freeze() -> Frozen {
        signal("-STOP");
        Frozen
    }
}

impl Drop for Frozen {
    fn drop(&mut self) {
        signal("-CONT");
    }
}

#[tokio::test]
async fn outage_drill() {
    let client = reqwest::Client::new();
    let tenant = crate::new_tenant(&client, "e2e-outage").await;
    let admin = provision(
        &client,
        json!({"action": "put_inspection_template", "tenant_id": tenant, "template": {
        "id": "tpl_x", "name": "X", "items": [{"id": "brakes", "label": "Brakes"}]}}),
    )
    .await;
    assert_eq!(admin["template"]["version"], 1, "{admin}");
    let cached = key(&client, &tenant, "full-fleet").await;
    let uncached = key(&client, &tenant, "full-fleet").await;
    let truck = json!({"vin": "1HGCM82633A004301", "name": "T", "make": "Volvo", "model": "FH", "year": 2022,
                       "license_plate": null, "status": "active", "odometer_km": 0});
    let created =
        client.post(format!("{}/vehicles", base_url())).header("X-API-Key", &cached).json(&truck).send().await.unwrap();
    assert_eq!(created.status(), 201);
    let vehicle: Value = created.json().await.unwrap();
    let id = vehicle["id"].as_str().unwrap().to_owned();
    let base = base_url();
    let requests = |api_key: &str| {
        let inspection = json!({"vehicle_id": id, "template_id": "tpl_x", "type": "pre_trip", "inspector": "A",
                                "performed_at": "2026-11-01T08:00:00Z", "odometer_km": 1,
                                "results": [{"item_id": "brakes", "status": "pass"}]});
        let mut changed = truck.clone();
        changed["name"] = json!("T2");
        [
            client.get(format!("{base}/vehicles")),
            client
                .post(format!("{base}/vehicles"))
                .json(&json!({"vin": "1HGCM82633A004302", "name": "U", "make": "Volvo", "model": "FH", "year": 2022})),
            client.get(format!("{base}/vehicles/{id}")),
            client.put(format!("{base}/vehicles/{id}")).json(&changed),
            client.get(format!("{base}/inspection-templates")),
            client.get(format!("{base}/inspections")),
            client.post(format!("{base}/inspections")).json(&inspection),
            client.get(format!("{base}/inspections/insp_00000000000000000000000000")),
        ]
        .map(|request| request.header("X-API-Key", api_key))
    };
    // Warm every function and the gateway's cache for `cached` (not for `uncached`).
    for request in requests(&cached) {
        let status = request.send().await.unwrap().status();
        assert!(status.is_success() || status == 404, "{status}");
    }

    let frozen = Frozen::freeze();
    // A cached key reaches every function, which cannot read DynamoDB; an uncached
    // key stops at the authorizer, which cannot read the key store.
    let mut answers = Vec::new();
    for request in
        requests(&cached).into_iter().chain([client.get(format!("{base}/me")).header("X-API-Key", &uncached)])
    {
        answers.push(async move {
            let started = Instant::now();
            let response = request.send().await.unwrap();
            (started.elapsed(), response)
        });
    }
    let answers = futures::future::join_all(answers).await;
    let last = answers.len() - 1;
    for (n, (elapsed, response)) in answers.into_iter().enumerate() {
        let url = response.url().to_string();
        assert_eq!(response.status(), 503, "{url}");
        assert!(response.headers().contains_key("retry-after"), "{url}");
        assert!(elapsed < WITHIN, "{url} took {elapsed:?}");
        let request_id = response.headers().get("x-amzn-requestid").map(|v| v.to_str().unwrap().to_owned());
        let body = response.text().await.unwrap();
        let problem: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(problem["code"], "service_unavailable", "{url}");
        if n == last {
            // The uncached key: the authorizer failed, so it is the gateway's own
            // answer, the template's AUTHORIZER_CONFIGURATION_ERROR byte for byte.
            assert_eq!(body, template_body("AUTHORIZER_CONFIGURATION_ERROR", &request_id.unwrap()));
        }
    }
    drop(frozen);

    // Thawed: the same processes serve again.
    let me = client.get(format!("{base}/me")).header("X-API-Key", &uncached).send().await.unwrap();
    assert_eq!(me.status(), 200);
    let fetched = client.get(format!("{base}/vehicles/{id}")).header("X-API-Key", &cached).send().await.unwrap();
    assert_eq!(fetched.status(), 200);
}
