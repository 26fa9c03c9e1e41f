//! The `/webhooks` routes against the emulator, through the real handlers: the
//! secret shown at creation and rotation only, the subscription rule, If-Match,
//! the per-fleet maximum, the test event through the outbox, the attempt log,
//! and the SPEC §3 problems on every route (changing nothing).

use lambda_http::{Body, Response};
use serde_json::{Value, json};

use fleetgate_api::Timestamp;
use fleetgate_scopes::TenantId;
use fleetgate_webhooks::deliveries::{DeliveryAttempt, DeliveryLog};
use fleetgate_webhooks::events::{Event, EventType};
use fleetgate_webhooks::store::{EndpointStore, ROTATION_OVERLAP_SECONDS};
use fleetgate_webhooks::target_url::UrlPolicy;

use crate::helpers::{Req, TestStack, body_json, header, walk_list};

/// Manages webhooks and may read inspections, not vehicles.
const MANAGER: &str = "webhooks:manage inspections:read";
const READ_ONLY: &str = "vehicles:read inspections:read";

/// The eight webhook functions, wired to one test stack.
pub(crate) struct Webhooks {
    stack: TestStack,
    create: create_webhook::State,
    list: list_webhooks::State,
    get: get_webhook::State,
    update: update_webhook::State,
    delete: delete_webhook::State,
    rotate: rotate_webhook_secret::State,
    test: test_webhook::State,
    deliveries: list_webhook_deliveries::State,
}

impl Webhooks {
    /// With at most `max` endpoints per fleet.
    async fn new(max: u32) -> Webhooks {
        Webhooks::on(TestStack::new().await, max)
    }

    pub(crate) fn on(stack: TestStack, max: u32) -> Webhooks {
        let endpoints = EndpointStore::new(stack.client.clone(), stack.tables.fleet.clone(), max);
        let idempotency =
            fleetgate_api::idempotency::IdempotencyStore::new(stack.client.clone(), stack.tables.fleet.clone());
        let cursors = || fleetgate_api::cursor_keys::CursorKeys::fixed("test-secret");
        let urls = UrlPolicy::default();
        Webhooks {
            create: create_webhook::State {
                gate: stack.gate(),
                endpoints: endpoints.clone(),
                idempotency: idempotency.clone(),
                urls,
            },
            list: list_webhooks::State { gate: stack.gate(), endpoints: endpoints.clone(), cursors: cursors() },
            get: get_webhook::State { gate: stack.gate(), endpoints: endpoints.clone() },
            update: update_webhook::State { gate: stack.gate(), endpoints: endpoints.clone(), urls },
            delete: delete_webhook::State { gate: stack.gate(), endpoints: endpoints.clone() },
            rotate: rotate_webhook_secret::State {
                gate: stack.gate(),
                endpoints: endpoints.clone(),
                idempotency: idempotency.clone(),
            },
            test: test_webhook::State {
                gate: stack.gate(),
                endpoints: endpoints.clone(),
                idempotency,
                client: stack.client.clone(),
                fleet_table: stack.tables.fleet.clone(),
            },
            deliveries: list_webhook_deliveries::State {
                gate: stack.gate(),
                endpoints,
                deliveries: DeliveryLog::new(stack.client.clone(), stack.tables.fleet.clone()),
                cursors: cursors(),
            },
            stack,
        }
    }

    fn tenant(&self) -> TenantId {
        TenantId::parse(&self.stack.tenant).unwrap()
    }

    /// Sends `req` with a key of `scopes` to the function `route` names.
    pub(crate) async fn call(&self, scopes: &str, req: Req, route: &str) -> Response<Body> {
        let req = req.build(Some(&self.stack.key_context(scopes)));
        match route {
            "create" => create_webhook::handler(&self.create, req).await,
            "list" => list_webhooks::handler(&self.list, req).await,
            "get" => get_webhook::handler(&self.get, req).await,
            "update" => update_webhook::handler(&self.update, req).await,
            "delete" => delete_webhook::handler(&self.delete, req).await,
            "rotate" => rotate_webhook_secret::handler(&self.rotate, req).await,
            "test" => test_webhook::handler(&self.test, req).await,
            "deliveries" => list_webhook_deliveries::handler(&self.deliveries, req).await,
            other => panic!("no route {other}"),
        }
        .unwrap()
    }

    async fn create(&self, scopes: &str, body: Value) -> Response<Body> {
        self.call(scopes, Req::new("POST", "/webhooks").json(&body), "create").await
    }

    /// Creates an endpoint for inspection.failed; its representation and secret.
    async fn created(&self, n: u32) -> (Value, String) {
        let response = self.create(MANAGER, subscription(n)).await;
        assert_eq!(response.status(), 201, "{}", body_json(&response));
        let mut body = body_json(&response);
        let secret = body.as_object_mut().unwrap().remove("secret").unwrap().as_str().unwrap().to_owned();
        (body, secret)
    }

    /// `METHOD /webhooks/{id}<suffix>`.
    async fn on_id(&self, scopes: &str, method: &str, id: &str, suffix: &str, route: &str) -> Response<Body> {
        self.call(scopes, on_id(method, id, suffix), route).await
    }

    async fn stored_count(&self) -> usize {
        self.stack.fleet_items().await.iter().filter(|i| i["sk"].as_str().unwrap().starts_with("webhook#")).count()
    }
}

/// A request to `/webhooks/{id}<suffix>`.
pub(crate) fn on_id(method: &str, id: &str, suffix: &str) -> Req {
    Req::with_id(method, "/webhooks", id).path(&format!("/webhooks/{id}{suffix}"))
}

fn subscription(n: u32) -> Value {
    json!({"url": format!("https://hooks{n}.example.com/fleetgate"), "events": ["inspection.failed"],
           "description": "maintenance system"})
}

fn problem(response: &Response<Body>) -> (u16, String) {
    (response.status().as_u16(), body_json(response)["code"].as_str().unwrap_or_default().to_owned())
}

#[tokio::test]
async fn a_created_endpoint_shows_its_secret_once_and_never_again() {
    let hooks = Webhooks::new(20).await;
    let response = hooks.create(MANAGER, subscription(1)).await;
    assert_eq!(response.status(), 201);
    assert_eq!(header(&response, "etag"), Some("\"1\""));
    let body = body_json(&response);
    let id = body["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("whk_"), "{body}");
    // The path as API Gateway gives it, stage included.
    assert!(header(&response, "location").unwrap().ends_with(&format!("/webhooks/{id}")));
    let secret = body["secret"].as_str().unwrap();
    assert!(fleetgate_webhooks::signing::Secret::parse(secret).is_ok(), "{secret}");
    assert_eq!(
        (body["status"].clone(), body["events"].clone(), body["disabled_reason"].clone()),
        (json!("enabled"), json!(["inspection.failed"]), Value::Null)
    );
    // The store holds that secret; no read answers it again.
    let stored = hooks.create.endpoints.get(&hooks.tenant(), &id).await.unwrap().unwrap();
    assert_eq!(stored.secret.reveal(), secret);
    let got = hooks.on_id(MANAGER, "GET", &id, "", "get").await;
    assert_eq!((got.status().as_u16(), header(&got, "etag")), (200, Some("\"1\"")));
    let listed = hooks.call(MANAGER, Req::new("GET", "/webhooks"), "list").await;
    for answer in [&got, &listed] {
        let text = serde_json::to_string(&body_json(answer)).unwrap();
        assert!(!text.contains(secret) && !text.contains("whsec_"), "{text}");
    }
    let mut shown = body.clone();
    shown.as_object_mut().unwrap().remove("secret");
    assert_eq!(body_json(&got), shown);
    assert_eq!(body_json(&listed)["data"], json!([shown]));
    assert!(hooks.stack.audit_trail().await.contains(&("POST /webhooks".into(), Some(id.clone()), "ok".into())));
}

#[tokio::test]
async fn a_key_subscribes_only_to_events_its_own_scopes_could_read() {
    let hooks = Webhooks::new(20).await;
    let mut body = subscription(1);
    body["events"] = json!(["inspection.created", "vehicle.updated"]);
    let refused = hooks.create(MANAGER, body.clone()).await;
    assert_eq!(problem(&refused), (403, "insufficient_scope".into()));
    let answer = body_json(&refused);
    assert_eq!(answer["required_scopes"], json!(["vehicles:read"]));
    assert_eq!(answer["effective_scopes"], json!(["inspections:read", "webhooks:manage"]));
    assert!(answer["detail"].as_str().unwrap().contains("subscribing to vehicle.updated"), "{answer}");
    assert_eq!(header(&refused, "x-accepted-scopes"), Some("vehicles:read"));
    // A write scope implies its read scope.
    assert_eq!(hooks.create("webhooks:manage vehicles:write inspections:read", body).await.status(), 201);
    // Without webhooks:manage, no webhook route at all, reads included.
    let read_only = hooks.create(READ_ONLY, subscription(2)).await;
    assert_eq!(problem(&read_only), (403, "insufficient_scope".into()));
    assert_eq!(body_json(&read_only)["required_scopes"], json!(["webhooks:manage"]));
    assert_eq!(problem(&hooks.call(READ_ONLY, Req::new("GET", "/webhooks"), "list").await).0, 403);
    assert_eq!(hooks.stored_count().await, 1, "refusals store nothing");

    // A PUT cannot widen a subscription past the key's scopes either.
    let (endpoint, _) = hooks.created(3).await;
    let id = endpoint["id"].as_str().unwrap();
    let mut widened = endpoint.clone();
    widened["events"] = json!(["vehicle.created"]);
    let put = Req::with_id("PUT", "/webhooks", id).json(&widened);
    assert_eq!(problem(&hooks.call(MANAGER, put, "update").await), (403, "insufficient_scope".into()));
    assert_eq!(body_json(&hooks.on_id(MANAGER, "GET", id, "", "get").await), endpoint, "unchanged");
}

#[tokio::test]
async fn bad_input_on_every_route_gets_its_problem_and_changes_nothing() {
    let hooks = Webhooks::new(2).await;
    let (endpoint, _) = hooks.created(1).await;
    let id = endpoint["id"].as_str().unwrap();
    let before = hooks.stack.fleet_items().await;

    let bad = hooks
        .create(MANAGER, json!({"url": "http://hooks.example.com/x", "events": [], "secret": "whsec_mine", "x": 1}))
        .await;
    assert_eq!(problem(&bad), (422, "validation_failed".into()));
    let fields: Vec<String> =
        body_json(&bad)["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap().into()).collect();
    assert_eq!(fields, ["url", "events", "secret", "x"]);
    for (url, rule) in [
        ("https://user:pw@hooks.example.com/", "credentials"),
        ("https://169.254.169.254/latest/meta-data", "link-local"),
        ("https://[::1]/", "this machine"),
        ("https://10.0.0.8/", "must not point at"),
    ] {
        let refused = hooks.create(MANAGER, json!({"url": url, "events": ["inspection.failed"]})).await;
        assert_eq!(problem(&refused), (422, "validation_failed".into()), "{url}");
        assert!(body_json(&refused)["errors"][0]["message"].as_str().unwrap().contains(rule), "{url}");
    }
    let unknown_event = hooks.create(MANAGER, json!({"url": "https://a.example.com/", "events": ["vehicle.deleted"]}));
    assert_eq!(problem(&unknown_event.await).0, 422);
    let not_json = hooks.call(
        MANAGER,
        Req::new("POST", "/webhooks").header("content-type", "application/json").raw_body("{"),
        "create",
    );
    assert_eq!(problem(&not_json.await), (400, "invalid_json".into()));

    // Unknown, malformed and other tenants' ids are all the same 404, on every route with an id.
    let other = Webhooks::on(hooks.stack.other_tenant("webhooks-other"), 2);
    for probe in [id, "whk_01J00000000000000000000000", "whk_nope", "veh_01J00000000000000000000000"] {
        for (method, suffix, route) in [
            ("GET", "", "get"),
            ("PUT", "", "update"),
            ("DELETE", "", "delete"),
            ("POST", "/rotate-secret", "rotate"),
            ("POST", "/test", "test"),
            ("GET", "/deliveries", "deliveries"),
        ] {
            let mut req = on_id(method, probe, suffix);
            if method == "PUT" {
                req = req.json(&endpoint);
            }
            let response = other.call(MANAGER, req, route).await;
            assert_eq!(problem(&response), (404, "not_found".into()), "{method} {probe}{suffix}");
        }
    }

    // If-Match: stale is 412, malformed is 400, both before anything is written.
    let put = |tag: &str| Req::with_id("PUT", "/webhooks", id).header("if-match", tag).json(&endpoint);
    assert_eq!(problem(&hooks.call(MANAGER, put("\"7\""), "update").await), (412, "precondition_failed".into()));
    assert_eq!(problem(&hooks.call(MANAGER, put("7"), "update").await), (400, "invalid_if_match".into()));
    let mut changed_server_field = endpoint.clone();
    changed_server_field["version"] = json!(9);
    let put = Req::with_id("PUT", "/webhooks", id).json(&changed_server_field);
    assert_eq!(problem(&hooks.call(MANAGER, put, "update").await).0, 422);
    let mut missing = endpoint.clone();
    missing.as_object_mut().unwrap().remove("status");
    let put = Req::with_id("PUT", "/webhooks", id).json(&missing);
    assert_eq!(problem(&hooks.call(MANAGER, put, "update").await).0, 422, "a PUT names every writable field");
    let query = Req::new("GET", "/webhooks").query("limit", "0");
    assert_eq!(problem(&hooks.call(MANAGER, query, "list").await), (400, "invalid_parameter".into()));
    let cursor = on_id("GET", id, "/deliveries").query("cursor", "x");
    assert_eq!(problem(&hooks.call(MANAGER, cursor, "deliveries").await), (400, "invalid_cursor".into()));
    assert_eq!(hooks.stack.fleet_items().await, before, "no refusal changed anything");

    // The fleet's maximum (2 here) is a 409 naming it.
    hooks.created(2).await;
    let over = hooks.create(MANAGER, subscription(3)).await;
    assert_eq!(problem(&over), (409, "webhook_endpoint_limit".into()));
    assert!(body_json(&over)["detail"].as_str().unwrap().contains("maximum of 2"));
    assert_eq!(hooks.stored_count().await, 2);
}

#[tokio::test]
async fn put_replaces_every_field_and_a_disabled_endpoint_gets_no_test() {
    let hooks = Webhooks::new(20).await;
    let (endpoint, _) = hooks.created(1).await;
    let id = endpoint["id"].as_str().unwrap();
    let mut disabled = endpoint.clone();
    disabled["status"] = json!("disabled");
    disabled["description"] = Value::Null;
    disabled["url"] = json!("https://hooks.example.org/moved");
    let put = Req::with_id("PUT", "/webhooks", id).header("if-match", "\"1\"").json(&disabled);
    let response = hooks.call(MANAGER, put, "update").await;
    assert_eq!((response.status().as_u16(), header(&response, "etag")), (200, Some("\"2\"")));
    let replaced = body_json(&response);
    assert_eq!(
        (&replaced["status"], &replaced["disabled_reason"], &replaced["description"], &replaced["url"]),
        (&json!("disabled"), &json!("requested"), &Value::Null, &json!("https://hooks.example.org/moved"))
    );
    assert_eq!(replaced["created_at"], endpoint["created_at"]);
    let test = hooks.on_id(MANAGER, "POST", id, "/test", "test").await;
    assert_eq!(problem(&test), (409, "endpoint_disabled".into()));
    // The old ETag is stale now; a GET body sent back re-enables it.
    let mut enabled = replaced.clone();
    enabled["status"] = json!("enabled");
    let stale = Req::with_id("PUT", "/webhooks", id).header("if-match", "\"1\"").json(&enabled);
    assert_eq!(problem(&hooks.call(MANAGER, stale, "update").await).0, 412);
    let put = Req::with_id("PUT", "/webhooks", id).header("if-match", "\"2\"").json(&enabled);
    let response = hooks.call(MANAGER, put, "update").await;
    assert_eq!(body_json(&response)["disabled_reason"], Value::Null);
    assert_eq!(hooks.on_id(MANAGER, "POST", id, "/test", "test").await.status(), 202);
    // The secret is untouched by a PUT.
    assert_eq!(
        hooks.create.endpoints.get(&hooks.tenant(), id).await.unwrap().unwrap().signing_secrets(0).len(),
        1,
        "no previous secret"
    );
}

#[tokio::test]
async fn rotation_shows_the_new_secret_once_and_both_sign_for_a_day() {
    let hooks = Webhooks::new(20).await;
    let (endpoint, first_secret) = hooks.created(1).await;
    let id = endpoint["id"].as_str().unwrap();
    let rotate = |key: &str, id: &str| on_id("POST", id, "/rotate-secret").header("idempotency-key", key);
    let response = hooks.call(MANAGER, rotate("rot-1", id), "rotate").await;
    assert_eq!(response.status(), 200);
    let answer = body_json(&response);
    let second_secret = answer["secret"].as_str().unwrap().to_owned();
    assert_ne!(second_secret, first_secret);
    let until = Timestamp::parse(answer["previous_secret_expires_at"].as_str().unwrap()).unwrap().unix_seconds();
    let now = Timestamp::now().unix_seconds();
    assert!((until - now - ROTATION_OVERLAP_SECONDS).abs() <= 5, "{answer}");
    let stored = hooks.create.endpoints.get(&hooks.tenant(), id).await.unwrap().unwrap();
    let signing: Vec<String> = stored.signing_secrets(now).iter().map(|s| s.reveal()).collect();
    assert_eq!(signing, [second_secret.clone(), first_secret.clone()]);
    assert_eq!(stored.signing_secrets(until).len(), 1, "the old one stops at the end of the overlap");

    // A retry replays the same answer and rotates nothing more (a second rotation
    // would end the first secret's overlap at once).
    let retry = hooks.call(MANAGER, rotate("rot-1", id), "rotate").await;
    assert_eq!(header(&retry, "idempotent-replayed"), Some("true"));
    assert_eq!(body_json(&retry)["secret"], json!(second_secret));
    let stored = hooks.create.endpoints.get(&hooks.tenant(), id).await.unwrap().unwrap();
    assert_eq!(stored.secret.reveal(), second_secret);
    // The same key on another endpoint is another request: refused, not replayed.
    let (other, _) = hooks.created(2).await;
    let reused = hooks.call(MANAGER, rotate("rot-1", other["id"].as_str().unwrap()), "rotate").await;
    assert_eq!(problem(&reused), (409, "idempotency_key_reused".into()));
    // Reads still never show a secret.
    let text = body_json(&hooks.on_id(MANAGER, "GET", id, "", "get").await).to_string();
    assert!(!text.contains("whsec_"), "{text}");
}

#[tokio::test]
async fn a_test_event_goes_through_the_outbox_and_the_attempt_log_pages_newest_first() {
    let hooks = Webhooks::new(20).await;
    let (endpoint, _) = hooks.created(1).await;
    let id = endpoint["id"].as_str().unwrap();
    let response = hooks.on_id(MANAGER, "POST", id, "/test", "test").await;
    assert_eq!(response.status(), 202);
    let queued = body_json(&response);
    assert_eq!((&queued["type"], &queued["endpoint_id"]), (&json!("webhook.test"), &json!(id)));
    let event_id = queued["event_id"].as_str().unwrap();
    // The outbox item the dispatcher will read from the stream: a webhook.test for
    // this endpoint only, carrying the endpoint as the API shows it.
    let items = hooks.stack.fleet_items().await;
    let outbox = items.iter().find(|i| i["sk"] == format!("event#{event_id}")).expect("an outbox item");
    let raw: std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue> =
        serde_dynamo::to_item(outbox).unwrap();
    let (tenant, event) = Event::from_item(raw).unwrap();
    assert_eq!(tenant, hooks.tenant());
    assert_eq!((event.payload.event_type, event.endpoint_id.as_deref()), (EventType::WebhookTest, Some(id)));
    assert_eq!(event.payload.data, endpoint);
    assert!(hooks.stack.audit_trail().await.contains(&(
        "POST /webhooks/{id}/test".into(),
        Some(id.into()),
        "ok".into()
    )));

    // The attempt log: this endpoint's attempts only, newest first, paged.
    let log = DeliveryLog::new(hooks.stack.client.clone(), hooks.stack.tables.fleet.clone());
    let (other, _) = hooks.created(2).await;
    let mut recorded = Vec::new();
    for (n, endpoint_id) in [id, id, other["id"].as_str().unwrap(), id, id].into_iter().enumerate() {
        let attempt = DeliveryAttempt {
            id: DeliveryAttempt::new_id(),
            endpoint_id: endpoint_id.to_owned(),
            event_id: event_id.to_owned(),
            event_type: EventType::WebhookTest,
            attempt: n as u32 + 1,
            attempted_at: Timestamp::now(),
            status: Some(500),
            latency_ms: 12,
            delivered: false,
            answer: "oops".into(),
            next_attempt_at: None,
        };
        log.record(&hooks.tenant(), &attempt).await.unwrap();
        if endpoint_id == id {
            recorded.push(attempt.id);
        }
        // Attempt ids sort by time at millisecond precision.
        tokio::time::sleep(std::time::Duration::from_millis(3)).await;
    }
    recorded.reverse();
    let hooks = &hooks;
    let (seen, pages) = walk_list(&[], 3, |query| async move {
        let mut req = on_id("GET", id, "/deliveries");
        for (name, value) in query {
            req = req.query(&name, &value);
        }
        hooks.call(MANAGER, req, "deliveries").await
    })
    .await;
    assert_eq!((seen, pages), (recorded, vec![3, 1]));
}

#[tokio::test]
async fn delete_removes_the_endpoint_and_gives_its_place_back() {
    let hooks = Webhooks::new(1).await;
    let (endpoint, _) = hooks.created(1).await;
    let id = endpoint["id"].as_str().unwrap();
    let deleted = hooks.on_id(MANAGER, "DELETE", id, "", "delete").await;
    assert_eq!((deleted.status().as_u16(), deleted.body().is_empty()), (204, true));
    assert_eq!(problem(&hooks.on_id(MANAGER, "GET", id, "", "get").await).0, 404);
    assert_eq!(problem(&hooks.on_id(MANAGER, "DELETE", id, "", "delete").await).0, 404);
    assert_eq!(hooks.stored_count().await, 0);
    hooks.created(2).await;
}
