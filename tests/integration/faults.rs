//! DynamoDB down, silent, throttling or losing answers, met through a fault proxy by the
//! real handlers: every endpoint answers a 503 problem with `Retry-After` within
//! the function timeout, the authorizer fails closed, the same warm state works
//! again once DynamoDB is back, and no write is ever left half done.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

use lambda_http::{Body, Response};
use serde_json::{Value, json};

use authorizer::AuthorizerError;

use crate::fault_proxy::{Fault, FaultProxy};
use crate::helpers::{Req, TestStack, authorizer_event, body_json, endpoint, header, local_client};
use crate::inspections::{Inspections, inspection};
use crate::vehicles::{Vehicles, truck};

/// The SAM template's function timeout: every answer must come well before it.
const FUNCTION_TIMEOUT: Duration = Duration::from_secs(10);
/// The SDK's operation timeout (4 s) plus slack for a loaded CI machine (`make test`
/// runs these tests apart from the rest of the suite, so the slack is for CI's load,
/// not for other tests).
const ANSWER_WITHIN: Duration = Duration::from_secs(7);
const FULL: &str = "vehicles:write inspections:write";

/// Every function of the stack, wired to one tenant through a fault proxy.
struct Stack {
    direct: TestStack,
    proxy: FaultProxy,
    vehicles: Vehicles,
    inspections: Inspections,
    /// A real key of the tenant, for the authorizer (GET /me reads no table: it is not here).
    api_key: String,
    vehicle_id: String,
    inspection_id: String,
    /// Counts POST bodies so every create is a new vehicle / inspection.
    serial: std::sync::atomic::AtomicU32,
}

type Call<'a> = Pin<Box<dyn Future<Output = Outcome> + 'a>>;

/// What one endpoint answered and how long it took.
struct Outcome {
    endpoint: &'static str,
    answer: Answer,
    took: Duration,
}

enum Answer {
    Http(Response<Body>),
    /// The authorizer's or provisioner's error type, or `Ok` for success.
    Invoke(Result<(), String>),
}

impl Stack {
    async fn new() -> Stack {
        let direct = TestStack::new().await;
        let proxy = FaultProxy::start(&endpoint()).await;
        let through = || direct.through(local_client(&proxy.endpoint));
        let vehicles = Vehicles::on(through());
        let inspections = Inspections::on(through());
        let (api_key, _) = direct.create_key(&["vehicles:write", "inspections:write"]).await;
        inspections.pretrip().await;
        let vehicle_id = inspections.vehicle(1).await;
        let created = inspections.post(&inspection(&vehicle_id, "2026-11-01T08:00:00Z", "pass")).await;
        assert_eq!(created.status(), 201, "{:?}", created.body());
        let inspection_id = body_json(&created)["id"].as_str().unwrap().to_owned();
        Stack { direct, proxy, vehicles, inspections, api_key, vehicle_id, inspection_id, serial: 100.into() }
    }

    fn next(&self) -> u32 {
        self.serial.fetch_add(1, std::sync::atomic::Ordering::SeqCst)
    }

    /// One call of every endpoint (the HTTP routes, the authorizer and the
    /// provisioner), all at once.
    async fn call_every_endpoint(&self) -> Vec<Outcome> {
        let (v, i) = (&self.vehicles, &self.inspections);
        let n = self.next();
        let update = truck(1);
        let calls: Vec<(&'static str, Call<'_>)> = vec![
            ("GET /vehicles", http(v.list(&[]))),
            ("GET /vehicles/{id}", http(v.get(&self.vehicle_id))),
            (
                "POST /vehicles",
                http(v.post(
                    FULL,
                    Req::new("POST", "/vehicles").header("Idempotency-Key", &format!("k-{n}")).json(&truck(n)),
                )),
            ),
            ("PUT /vehicles/{id}", http(v.put(&self.vehicle_id, &update, None))),
            ("GET /inspection-templates", {
                let req = Req::new("GET", "/inspection-templates").build(Some(&i.stack.key_context(FULL)));
                http(async move { list_inspection_templates::handler(&i.templates, req).await.unwrap() })
            }),
            ("GET /inspections", http(i.list(&[]))),
            ("POST /inspections", {
                let body = inspection(&self.vehicle_id, &format!("2026-11-02T08:{:02}:00Z", n % 60), "fail");
                http(i.submit(
                    FULL,
                    Req::new("POST", "/inspections").header("Idempotency-Key", &format!("i-{n}")).json(&body),
                ))
            }),
            ("GET /inspections/{id}", {
                let req =
                    Req::with_id("GET", "/inspections", &self.inspection_id).build(Some(&i.stack.key_context(FULL)));
                http(async move { get_inspection::handler(&i.get, req).await.unwrap() })
            }),
            ("authorizer", {
                let state = v.stack.authorizer();
                let event = authorizer_event(&[("X-API-Key", &self.api_key)]);
                invoke(async move {
                    authorizer::handler(&state, event).await.map(drop).map_err(|err| match err {
                        AuthorizerError::Unauthorized => "Unauthorized".to_owned(),
                        AuthorizerError::Failure(_) => "Failure".to_owned(),
                    })
                })
            }),
            ("provisioner list_keys", {
                let event = json!({"action": "list_keys", "tenant_id": v.stack.tenant});
                invoke(async move { v.stack.provision(event).await.map(drop).map_err(|e| e.code().to_owned()) })
            }),
        ];
        let timed = calls.into_iter().map(|(endpoint, call)| async move {
            let started = Instant::now();
            let mut outcome = call.await;
            outcome.endpoint = endpoint;
            outcome.took = started.elapsed();
            outcome
        });
        futures::future::join_all(timed).await
    }

    /// No half-done write: every vehicle has its VIN item and vice versa, and every
    /// vehicle and inspection has exactly one successful audit record. Returns the
    /// (vehicle, inspection) counts.
    async fn assert_whole(&self) -> (usize, usize) {
        // Read directly, not through the proxy.
        let items = self.direct.tenant_items(&self.direct.tables.fleet, "pk").await;
        let with_prefix = |prefix: &str| -> Vec<&Value> {
            items.iter().filter(|item| item["sk"].as_str().unwrap().starts_with(prefix)).collect()
        };
        let vehicles: BTreeMap<String, String> = with_prefix("vehicle#")
            .iter()
            .map(|v| (v["id"].as_str().unwrap().to_owned(), v["vin"].as_str().unwrap().to_owned()))
            .collect();
        let vins: BTreeMap<String, String> = with_prefix("vin#")
            .iter()
            .map(|v| (v["vehicle_id"].as_str().unwrap().to_owned(), v["sk"].as_str().unwrap()[4..].to_owned()))
            .collect();
        assert_eq!(vehicles, vins, "every vehicle has its VIN item and no VIN item is orphaned");
        let inspections: BTreeSet<String> =
            with_prefix("inspection#").iter().map(|i| i["id"].as_str().unwrap().to_owned()).collect();

        let trail = self.direct.audit_trail().await;
        let audited = |action: &str| -> Vec<String> {
            trail
                .iter()
                .filter(|(a, _, outcome)| a == action && outcome == "ok")
                .filter_map(|(_, id, _)| id.clone())
                .collect()
        };
        let mut audited_vehicles = audited("POST /vehicles");
        // The fixture vehicle was stored directly, without an API call to audit.
        audited_vehicles.push(self.vehicle_id.clone());
        assert_eq!(
            sorted(audited_vehicles),
            vehicles.keys().cloned().collect::<Vec<_>>(),
            "one audit record per vehicle"
        );
        assert_eq!(sorted(audited("POST /inspections")), inspections.iter().cloned().collect::<Vec<_>>());
        (vehicles.len(), inspections.len())
    }
}

fn sorted(mut ids: Vec<String>) -> Vec<String> {
    ids.sort();
    ids
}

fn http<'a>(response: impl Future<Output = Response<Body>> + 'a) -> Call<'a> {
    Box::pin(async move { Outcome { endpoint: "", answer: Answer::Http(response.await), took: Duration::ZERO } })
}

fn invoke<'a>(result: impl Future<Output = Result<(), String>> + 'a) -> Call<'a> {
    Box::pin(async move { Outcome { endpoint: "", answer: Answer::Invoke(result.await), took: Duration::ZERO } })
}

/// Each outcome is the outage answer: a 503 problem with `Retry-After` and no
/// internals, a failing (not Unauthorized) authorizer, `service_unavailable`
/// from the provisioner; all inside the timeout.
fn assert_unavailable(outcomes: &[Outcome], proxy: &FaultProxy) {
    for Outcome { endpoint, answer, took } in outcomes {
        assert!(*took < ANSWER_WITHIN && *took < FUNCTION_TIMEOUT, "{endpoint} took {took:?}");
        match answer {
            Answer::Http(response) => {
                assert_eq!(response.status(), 503, "{endpoint}: {:?}", response.body());
                assert_eq!(header(response, "content-type"), Some("application/problem+json"), "{endpoint}");
                let retry_after: u32 = header(response, "retry-after").expect("Retry-After").parse().unwrap();
                assert!((1..=60).contains(&retry_after), "{endpoint}: Retry-After {retry_after}");
                let problem = body_json(response);
                assert_eq!(problem["code"], "service_unavailable", "{endpoint}");
                let text = problem.to_string();
                for internal in [proxy.endpoint.as_str(), "127.0.0.1", "dispatch", "Dispatch", "timeout", "io error"] {
                    assert!(!text.contains(internal), "{endpoint} leaks '{internal}': {text}");
                }
            }
            Answer::Invoke(result) => {
                let expected = if *endpoint == "authorizer" { "Failure" } else { "service_unavailable" };
                assert_eq!(result.as_ref().err().map(String::as_str), Some(expected), "{endpoint}");
            }
        }
    }
}

fn assert_all_succeed(outcomes: &[Outcome]) {
    for Outcome { endpoint, answer, .. } in outcomes {
        match answer {
            Answer::Http(response) => assert!(response.status().is_success(), "{endpoint}: {:?}", response.body()),
            Answer::Invoke(result) => assert!(result.is_ok(), "{endpoint}: {result:?}"),
        }
    }
}

#[tokio::test]
async fn with_dynamodb_down_silent_or_throttling_every_endpoint_answers_503_and_recovers_without_restart() {
    let stack = Stack::new().await;
    assert_all_succeed(&stack.call_every_endpoint().await);
    let mut counts = stack.assert_whole().await;

    for fault in [Fault::Down, Fault::Silent, Fault::Throttled] {
        stack.proxy.set(fault.clone()).await;
        let outcomes = stack.call_every_endpoint().await;
        assert_unavailable(&outcomes, &stack.proxy);
        // Nothing was written, not even a part of a write.
        assert_eq!(stack.assert_whole().await, counts, "{fault:?} changed the data");

        // Back up: the same warm state (clients, pools) serves again, no restart,
        // and the round's two creates are there, whole.
        stack.proxy.set(Fault::None).await;
        assert_all_succeed(&stack.call_every_endpoint().await);
        let after = stack.assert_whole().await;
        assert_eq!(after, (counts.0 + 1, counts.1 + 1));
        counts = after;
    }
}

#[tokio::test]
async fn a_transaction_cancelled_by_throttling_is_a_503_on_every_write_route_and_admin_action() {
    let stack = Stack::new().await;
    let (_, key_id) = stack.direct.create_key(&["vehicles:read"]).await;
    let counts = stack.assert_whole().await;
    // DynamoDB cancels a transaction with reason ThrottlingError when an item's
    // table or index is over capacity: as transient as any throttling.
    stack.proxy.set(Fault::ThrottledTransactions).await;
    let (v, i) = (&stack.vehicles, &stack.inspections);
    let writes = [
        ("POST /vehicles", v.post(FULL, Req::new("POST", "/vehicles").json(&truck(70))).await),
        ("PUT /vehicles/{id}", v.put(&stack.vehicle_id, &truck(71), None).await),
        (
            "POST /inspections",
            i.submit(
                FULL,
                Req::new("POST", "/inspections").json(&inspection(&stack.vehicle_id, "2026-11-02T10:00:00Z", "pass")),
            )
            .await,
        ),
    ];
    for (route, response) in &writes {
        assert_eq!(response.status(), 503, "{route}: {:?}", response.body());
        assert!(header(response, "retry-after").is_some(), "{route}");
        assert_eq!(body_json(response)["code"], "service_unavailable", "{route}");
    }
    let tenant = stack.direct.tenant.clone();
    let through = &v.stack;
    let actions = [
        json!({"action": "create_key", "tenant_id": tenant, "name": "k", "preset": "read-only"}),
        json!({"action": "rotate_key", "tenant_id": tenant, "key_id": key_id}),
        json!({"action": "revoke_key", "tenant_id": tenant, "key_id": key_id}),
        json!({"action": "put_inspection_template", "tenant_id": tenant,
               "template": {"id": "tpl_x", "name": "X", "items": [{"id": "a", "label": "A"}]}}),
    ];
    for action in actions {
        let refused = through.provision(action.clone()).await.expect_err("refused while throttled");
        assert_eq!(refused.code(), "service_unavailable", "{action}");
    }
    stack.proxy.set(Fault::None).await;
    assert_eq!(stack.assert_whole().await, counts, "nothing was written");
    let key =
        stack.direct.provision(json!({"action": "get_key", "tenant_id": tenant, "key_id": key_id})).await.unwrap();
    assert_eq!(key["key"]["status"], "active", "{key}");
}

#[tokio::test]
async fn a_write_whose_answer_was_lost_is_whole_and_its_retry_replays_it() {
    let stack = Stack::new().await;
    let body = truck(7);
    let create = || {
        stack.vehicles.post(FULL, Req::new("POST", "/vehicles").header("Idempotency-Key", "lost-answer").json(&body))
    };
    // DynamoDB commits the transaction, but every attempt's answer is lost.
    stack.proxy.set(Fault::LoseAnswers { operation: "TransactWriteItems", count: 3 }).await;
    let lost = create().await;
    assert_eq!(lost.status(), 503, "{:?}", lost.body());
    assert_eq!(stack.proxy.answers_left_to_lose(), 0, "all three attempts were made and lost");
    stack.proxy.set(Fault::None).await;
    let (vehicles, _) = stack.assert_whole().await;
    assert_eq!(vehicles, 2, "the write went through although its answer was lost");

    // The client retries as told: the stored result comes back, nothing new is written.
    let retried = create().await;
    assert_eq!(retried.status(), 201, "{:?}", retried.body());
    assert_eq!(header(&retried, "idempotent-replayed"), Some("true"));
    assert_eq!(stack.assert_whole().await.0, 2);
    assert_eq!(body_json(&stack.vehicles.get(body_json(&retried)["id"].as_str().unwrap()).await)["vin"], body["vin"]);
}

#[tokio::test]
async fn a_transaction_retried_by_the_sdk_after_a_lost_answer_is_not_applied_twice() {
    let stack = Stack::new().await;
    // The first attempt commits but its answer is lost; the SDK retries the same
    // transaction. DynamoDB answers that retry as a success (same ClientRequestToken,
    // within 10 minutes); the emulator runs it again, and the create must recognise
    // its own earlier write (its fresh id is taken) instead of answering "VIN taken"
    // or writing twice. Both behaviours end here: one 201, one whole write.
    stack.proxy.set(Fault::LoseAnswers { operation: "TransactWriteItems", count: 1 }).await;
    let created = stack.vehicles.create(&truck(8)).await;
    assert_eq!(created.status(), 201, "{:?}", created.body());
    assert_eq!(stack.proxy.answers_left_to_lose(), 0, "the fault struck");
    let id = body_json(&created)["id"].as_str().unwrap().to_owned();
    assert_eq!(body_json(&stack.vehicles.get(&id).await)["vin"], truck(8)["vin"]);

    stack.proxy.set(Fault::LoseAnswers { operation: "TransactWriteItems", count: 1 }).await;
    let body = inspection(&stack.vehicle_id, "2026-11-02T09:00:00Z", "pass");
    let submitted = stack.inspections.submit(FULL, Req::new("POST", "/inspections").json(&body)).await;
    assert_eq!(submitted.status(), 201, "{:?}", submitted.body());
    assert_eq!(stack.proxy.answers_left_to_lose(), 0, "the fault struck");
    stack.proxy.set(Fault::None).await;
    // Exactly one more vehicle and one more inspection, each with its one audit record.
    assert_eq!(stack.assert_whole().await, (2, 2));
}

#[tokio::test]
async fn a_claim_whose_answer_was_lost_does_not_block_the_key() {
    let stack = Stack::new().await;
    let body = truck(9);
    let create =
        || stack.vehicles.post(FULL, Req::new("POST", "/vehicles").header("Idempotency-Key", "lost-claim").json(&body));
    // The idempotency claim is stored, but its answer is lost on the first attempt:
    // the SDK's retry finds the claim, which is this request's own.
    stack.proxy.set(Fault::LoseAnswers { operation: "PutItem", count: 1 }).await;
    let created = create().await;
    assert_eq!(created.status(), 201, "{:?}", created.body());
    assert_eq!(stack.proxy.answers_left_to_lose(), 0, "the fault struck");
    stack.proxy.set(Fault::None).await;
    let replayed = create().await;
    assert_eq!(header(&replayed, "idempotent-replayed"), Some("true"));
    assert_eq!(body_json(&replayed)["id"], body_json(&created)["id"]);
    assert_eq!(stack.assert_whole().await.0, 2);
}

#[tokio::test]
async fn a_claim_abandoned_by_a_request_that_died_is_taken_over_after_its_lease() {
    let stack = Stack::new().await;
    // What a request stopped between its claim and its write leaves behind.
    let now = fleetgate_api::Timestamp::now();
    let abandoned = json!({
        "pk": stack.direct.tenant, "sk": "idem#POST /vehicles#died", "request_hash": "0",
        "state": "in_progress", "claim_token": "claim_dead", "created_at": now.to_string(),
        "lease_expires_epoch": now.unix_seconds() - 1, "expires_at_epoch": now.unix_seconds() + 86_400,
    });
    stack
        .direct
        .client
        .put_item()
        .table_name(&stack.direct.tables.fleet)
        .set_item(Some(serde_dynamo::to_item(abandoned).unwrap()))
        .send()
        .await
        .unwrap();
    let created = stack
        .vehicles
        .post(FULL, Req::new("POST", "/vehicles").header("Idempotency-Key", "died").json(&truck(10)))
        .await;
    assert_eq!(created.status(), 201, "{:?}", created.body());
    assert_eq!(header(&created, "idempotent-replayed"), None);
    assert_eq!(stack.assert_whole().await.0, 2);
}

async fn buggy_handler(
    _: fleetgate_api::http::Call,
    _: lambda_http::Request,
) -> Result<Response<Body>, fleetgate_api::ApiError> {
    panic!("bug while writing to table fleet-prod at 10.0.0.7")
}

#[tokio::test]
async fn a_panic_in_a_handler_is_a_500_problem_without_internals_and_the_refusal_is_audited() {
    let stack = TestStack::new().await;
    let gate = stack.gate();
    let route = &fleetgate_scopes::routes::CREATE_VEHICLE;
    let req = Req::new("POST", "/vehicles").json(&truck(1)).build(Some(&stack.key_context(FULL)));
    let response = fleetgate_api::http::serve(&gate, route, req, buggy_handler).await;
    assert_eq!(response.status(), 500);
    assert_eq!(header(&response, "content-type"), Some("application/problem+json"));
    let problem = body_json(&response);
    assert_eq!(problem["code"], "internal_error");
    assert_eq!(problem["request_id"], "gw-req-1", "the client can quote the request id");
    assert!(!problem.to_string().contains("10.0.0.7") && !problem.to_string().contains("panic"), "{problem}");
    // The key's scopes are reported as on any answer, and the refused write is on record.
    assert!(header(&response, "x-key-scopes").is_some());
    assert_eq!(stack.audit_trail().await, [("POST /vehicles".into(), None, "internal_error".into())]);
}

#[test]
fn release_builds_unwind_so_a_panic_can_be_answered() {
    let manifest: toml::Table =
        std::fs::read_to_string(fleetgate_local::workspace_root().join("Cargo.toml")).unwrap().parse().unwrap();
    let release = manifest["profile"]["release"].as_table().unwrap();
    // Unset is not enough: cargo lambda builds with panic = "abort" unless the profile says otherwise.
    assert_eq!(release.get("panic").and_then(|p| p.as_str()), Some("unwind"), "serve() relies on catch_unwind");
}
