//! Inspection templates, inspections and the audit trail against DynamoDB Local,
//! through the real handlers and the provisioner.

use std::collections::BTreeSet;

use futures::future::join_all;
use lambda_http::{Body, Response};
use serde_json::{Value, json};

use fleetgate_api::Timestamp;
use fleetgate_fleet::inspections::InspectionStore;
use fleetgate_fleet::templates::TemplateStore;
use fleetgate_fleet::vehicles::{Vehicle, VehicleInput};
use fleetgate_scopes::TenantId;

use crate::helpers::{Req, TestStack, body_json, borrowed, header, walk_list};

/// The preset `inspection-submission`, as a telematics device holds it.
const DEVICE: &str = "vehicles:read inspections:write";
const READ_ONLY: &str = "vehicles:read inspections:read";

pub(crate) struct Inspections {
    pub(crate) stack: TestStack,
    pub(crate) templates: list_inspection_templates::State,
    pub(crate) list: list_inspections::State,
    pub(crate) create: create_inspection::State,
    pub(crate) get: get_inspection::State,
}

impl Inspections {
    async fn new() -> Inspections {
        Inspections::on(TestStack::new().await)
    }

    /// The functions as wired to `stack`'s client.
    pub(crate) fn on(stack: TestStack) -> Inspections {
        let fleet = stack.tables.fleet.clone();
        let client = stack.client.clone();
        let cursors = fleetgate_api::cursor_keys::CursorKeys::fixed("test-secret");
        Inspections {
            templates: list_inspection_templates::State {
                gate: stack.gate(),
                templates: TemplateStore::new(client.clone(), fleet.clone()),
                cursors: cursors.clone(),
            },
            list: list_inspections::State {
                gate: stack.gate(),
                inspections: InspectionStore::new(client.clone(), fleet.clone()),
                cursors,
            },
            create: create_inspection::State {
                gate: stack.gate(),
                inspections: InspectionStore::new(client.clone(), fleet.clone()),
                idempotency: fleetgate_api::idempotency::IdempotencyStore::new(client.clone(), fleet.clone()),
                outbox: stack.outbox(),
            },
            get: get_inspection::State { gate: stack.gate(), inspections: InspectionStore::new(client, fleet) },
            stack,
        }
    }

    /// A vehicle of this tenant, stored directly.
    pub(crate) async fn vehicle(&self, n: u32) -> String {
        let input = VehicleInput::parse(
            json!({"vin": format!("2HGCM82633A{n:06}"), "name": format!("Truck {n}"), "make": "Volvo", "model": "FH", "year": 2021}),
            Timestamp::now(),
        )
        .unwrap();
        let vehicle = Vehicle::create(input, Timestamp::now());
        let tenant = TenantId::parse(&self.stack.tenant).unwrap();
        self.stack.vehicle_store().create(&tenant, &vehicle, vec![]).await.unwrap();
        vehicle.id
    }

    /// The demo-like pre-trip template, put through the provisioner.
    pub(crate) async fn pretrip(&self) -> Value {
        self.stack
            .provision(json!({"action": "put_inspection_template", "tenant_id": self.stack.tenant, "template": {
                "id": "tpl_pretrip", "name": "Pre-trip", "description": "Daily walk-around",
                "items": [{"id": "brakes", "label": "Brakes", "required": true, "category": "safety"},
                          {"id": "tyres", "label": "Tyres", "required": true},
                          {"id": "radio", "label": "Radio", "required": false}]}}))
            .await
            .unwrap()
    }

    pub(crate) async fn submit(&self, scopes: &str, req: Req) -> Response<Body> {
        create_inspection::handler(&self.create, req.build(Some(&self.stack.key_context(scopes)))).await.unwrap()
    }

    pub(crate) async fn post(&self, body: &Value) -> Response<Body> {
        self.submit(DEVICE, Req::new("POST", "/inspections").json(body)).await
    }

    pub(crate) async fn list(&self, query: &[(&str, &str)]) -> Response<Body> {
        let mut req = Req::new("GET", "/inspections");
        for (name, value) in query {
            req = req.query(name, value);
        }
        list_inspections::handler(&self.list, req.build(Some(&self.stack.key_context(READ_ONLY)))).await.unwrap()
    }

    /// Every page of `GET /inspections` with `filters` and `limit`, through [`walk_list`].
    pub(crate) async fn walk(&self, filters: &[(&str, &str)], limit: usize) -> (Vec<String>, Vec<usize>) {
        walk_list(filters, limit, |query| async move { self.list(&borrowed(&query)).await }).await
    }

    /// The ids of every page, in order.
    async fn all_pages(&self, filters: &[(&str, &str)], limit: usize) -> Vec<String> {
        self.walk(filters, limit).await.0
    }
}

/// What one submission of the history test was.
struct Submitted {
    day: u32,
    vehicle: String,
    outcome: &'static str,
    id: String,
}

pub(crate) fn inspection(vehicle_id: &str, performed_at: &str, brakes: &str) -> Value {
    json!({"vehicle_id": vehicle_id, "template_id": "tpl_pretrip", "type": "pre_trip", "inspector": "Ana Silva",
           "performed_at": performed_at, "odometer_km": 120500, "location": "Depot 3",
           "results": [{"item_id": "brakes", "status": brakes, "note": "soft pedal"}, {"item_id": "tyres", "status": "pass"}],
           "signature": "Ana Silva"})
}

fn field_errors(response: &Response<Body>) -> Vec<String> {
    assert_eq!(response.status(), 422, "{:?}", response.body());
    body_json(response)["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap().to_owned()).collect()
}

#[tokio::test]
async fn templates_are_versioned_validated_and_listed_per_tenant() {
    let api = Inspections::new().await;
    let first = api.pretrip().await;
    assert_eq!(first["template"]["version"], 1);
    let second = api.pretrip().await;
    assert_eq!(second["template"]["version"], 2);
    assert_eq!(second["template"]["created_at"], first["template"]["created_at"]);

    let refused = api
        .stack
        .provision(json!({"action": "put_inspection_template", "tenant_id": api.stack.tenant, "template": {
            "id": "tpl_bad", "name": "Bad", "items": [{"id": "a", "label": "A"}, {"id": "a", "label": ""}]}}))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), "invalid_template");
    assert!(refused.to_string().contains("items[1].id") && refused.to_string().contains("items[1].label"), "{refused}");
    let empty = api
        .stack
        .provision(json!({"action": "put_inspection_template", "tenant_id": api.stack.tenant,
                          "template": {"id": "tpl_empty", "name": "Empty", "items": []}}))
        .await
        .unwrap_err();
    assert_eq!(empty.code(), "invalid_template");

    let listed = list_inspection_templates::handler(
        &api.templates,
        Req::new("GET", "/inspection-templates").build(Some(&api.stack.key_context(READ_ONLY))),
    )
    .await
    .unwrap();
    let body = body_json(&listed);
    assert_eq!(body["data"].as_array().unwrap().len(), 1, "the refused templates were not stored");
    assert_eq!(
        body["data"][0]["items"][0],
        json!({"id": "brakes", "label": "Brakes", "required": true, "category": "safety"})
    );

    // Admins see the same list through the provisioner (the CLI's `templates list`).
    let admin = api
        .stack
        .provision(json!({"action": "list_inspection_templates", "tenant_id": api.stack.tenant}))
        .await
        .unwrap();
    assert_eq!(admin["data"], body["data"]);
    assert_eq!(admin["next_cursor"], Value::Null);
    let typo = format!("{}-typo", api.stack.tenant);
    let refused =
        api.stack.provision(json!({"action": "list_inspection_templates", "tenant_id": typo})).await.unwrap_err();
    assert_eq!(refused.code(), "tenant_not_found");

    let other = Inspections::new().await;
    let theirs = list_inspection_templates::handler(
        &other.templates,
        Req::new("GET", "/inspection-templates").build(Some(&other.stack.key_context(READ_ONLY))),
    )
    .await
    .unwrap();
    assert_eq!(body_json(&theirs)["data"], json!([]));
}

#[tokio::test]
async fn a_device_submits_pass_and_fail_inspections_and_reads_them_back() {
    let api = Inspections::new().await;
    api.pretrip().await;
    api.pretrip().await; // version 2
    let vehicle = api.vehicle(1).await;

    let failed = api.post(&inspection(&vehicle, "2026-11-01T08:00:00Z", "fail")).await;
    assert_eq!(failed.status(), 201, "{:?}", failed.body());
    let body = body_json(&failed);
    assert!(body["id"].as_str().unwrap().starts_with("insp_"));
    assert_eq!(body["outcome"], "fail");
    assert_eq!(body["defects"], json!([{"item_id": "brakes", "label": "Brakes", "note": "soft pedal"}]));
    assert_eq!(body["template_version"], 2);
    assert_eq!(body["submitted_by_key_id"], "key_testtesttesttesttest");
    assert_eq!(body["type"], "pre_trip");
    assert_eq!(header(&failed, "location"), Some(format!("/v1/inspections/{}", body["id"].as_str().unwrap()).as_str()));

    let passed = body_json(&api.post(&inspection(&vehicle, "2026-11-02T08:00:00Z", "pass")).await);
    assert_eq!((passed["outcome"].clone(), passed["defects"].clone()), (json!("pass"), json!([])));

    let id = body["id"].as_str().unwrap();
    let req = Req::with_id("GET", "/inspections", id).build(Some(&api.stack.key_context(READ_ONLY)));
    let fetched = get_inspection::handler(&api.get, req).await.unwrap();
    assert_eq!(body_json(&fetched), body);

    let trail: Vec<(String, Option<String>, String)> = api.stack.audit_trail().await;
    let posts: Vec<_> = trail.iter().filter(|(action, _, _)| action == "POST /inspections").collect();
    assert_eq!(posts.len(), 2);
}

#[tokio::test]
async fn submissions_are_checked_against_the_tenants_vehicle_and_template() {
    let api = Inspections::new().await;
    api.pretrip().await;
    let vehicle = api.vehicle(2).await;
    let other = Inspections::new().await;
    other.pretrip().await;
    let their_vehicle = other.vehicle(3).await;

    let unknown_vehicle = api.post(&inspection("veh_00000000000000000000000000", "2026-11-01T08:00:00Z", "pass")).await;
    assert_eq!(field_errors(&unknown_vehicle), ["vehicle_id"]);
    assert_eq!(
        field_errors(&api.post(&inspection(&their_vehicle, "2026-11-01T08:00:00Z", "pass")).await),
        ["vehicle_id"]
    );
    let mut no_template = inspection(&vehicle, "2026-11-01T08:00:00Z", "pass");
    no_template["template_id"] = json!("tpl_nope");
    assert_eq!(field_errors(&api.post(&no_template).await), ["template_id"]);

    let with_results = |results: Value| {
        let mut body = inspection(&vehicle, "2026-11-01T08:00:00Z", "pass");
        body["results"] = results;
        body
    };
    let missing_required = api.post(&with_results(json!([{"item_id": "brakes", "status": "pass"}]))).await;
    assert_eq!(field_errors(&missing_required), ["results"]);
    let duplicate = api
        .post(&with_results(json!([{"item_id": "brakes", "status": "pass"}, {"item_id": "tyres", "status": "pass"},
                                    {"item_id": "tyres", "status": "fail"}])))
        .await;
    assert_eq!(field_errors(&duplicate), ["results[2].item_id"]);
    let unknown_item = api
        .post(&with_results(json!([{"item_id": "brakes", "status": "pass"}, {"item_id": "tyres", "status": "pass"},
                                    {"item_id": "flux", "status": "pass"}])))
        .await;
    assert_eq!(field_errors(&unknown_item), ["results[2].item_id"]);
    let bad_status = api
        .post(&with_results(json!([{"item_id": "brakes", "status": "ok"}, {"item_id": "tyres", "status": "pass"}])))
        .await;
    assert_eq!(field_errors(&bad_status), ["results[0].status"]);

    let mut future = inspection(&vehicle, "2099-01-01T00:00:00Z", "pass");
    future["odometer_km"] = json!(-1);
    future["outcome"] = json!("pass");
    assert_eq!(field_errors(&api.post(&future).await), ["performed_at", "odometer_km", "outcome"]);

    let forbidden = api
        .submit(READ_ONLY, Req::new("POST", "/inspections").json(&inspection(&vehicle, "2026-11-01T08:00:00Z", "pass")))
        .await;
    assert_eq!(forbidden.status(), 403);
    assert_eq!(body_json(&forbidden)["required_scopes"], json!(["inspections:write"]));
    assert_eq!(body_json(&forbidden)["granted_scopes"], json!(["vehicles:read", "inspections:read"]));

    let listed = body_json(&api.list(&[]).await);
    assert_eq!(listed["data"], json!([]), "no refused submission was stored");
}

#[tokio::test]
async fn every_problem_of_a_submission_comes_in_one_422_each_answer_with_its_item_id() {
    let api = Inspections::new().await;
    api.pretrip().await;
    // The report: a bad status, a repeated item and an unknown item took three round trips.
    let mut body = inspection("veh_00000000000000000000000000", "2026-11-01T08:00:00Z", "pass");
    body["results"] = json!([
        {"item_id": "brakes", "status": "pass"},
        {"item_id": "tyres", "status": "ok"},
        {"item_id": "brakes", "status": "fail"},
        {"item_id": "flux", "status": "pass"}
    ]);
    let refused = api.post(&body).await;
    assert_eq!(refused.status(), 422);
    let errors = body_json(&refused)["errors"].clone();
    let entries: Vec<(String, Value)> = errors
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["field"].as_str().unwrap().to_owned(), e.get("item_id").cloned().unwrap_or(Value::Null)))
        .collect();
    assert_eq!(
        entries,
        [
            ("results[1].status".to_owned(), json!("tyres")),
            ("vehicle_id".to_owned(), Value::Null),
            ("results[2].item_id".to_owned(), json!("brakes")),
            ("results[3].item_id".to_owned(), json!("flux")),
        ],
        "{errors}"
    );
    // Missing required items: one entry each, at `results`, named by item_id.
    let vehicle = api.vehicle(4).await;
    let mut sparse = inspection(&vehicle, "2026-11-01T08:00:00Z", "pass");
    sparse["results"] = json!([{"item_id": "radio", "status": "na"}]);
    let missing = body_json(&api.post(&sparse).await)["errors"].clone();
    let missing: Vec<(&str, &str)> = missing
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["field"].as_str().unwrap(), e["item_id"].as_str().unwrap()))
        .collect();
    assert_eq!(missing, [("results", "brakes"), ("results", "tyres")]);
}

#[tokio::test]
async fn a_refused_query_value_is_echoed_and_a_lost_plus_gets_a_hint() {
    let api = Inspections::new().await;
    // An unencoded `+` reaches the function as a space.
    let response = api.list(&[("performed_after", "2026-11-01T08:00:00 02:00")]).await;
    let problem = body_json(&response);
    assert_eq!(
        (response.status().as_u16(), problem["code"].clone(), problem["param"].clone(), problem["value"].clone()),
        (400, json!("invalid_parameter"), json!("performed_after"), json!("2026-11-01T08:00:00 02:00"))
    );
    assert!(problem["detail"].as_str().unwrap().contains("%2B"), "{problem}");
    let unknown = body_json(&api.list(&[("sort", "asc")]).await);
    assert_eq!((unknown["param"].clone(), unknown["value"].clone()), (json!("sort"), json!("asc")));
    assert!(header(&response, "x-request-id").is_some_and(|id| id == problem["request_id"]), "X-Request-Id");
    let ok = api.list(&[]).await;
    assert_eq!(ok.status(), 200);
    assert!(header(&ok, "x-request-id").is_some_and(|id| !id.is_empty()), "a success names its request too");
}

#[tokio::test]
async fn history_is_newest_first_and_filtered_on_every_page() {
    let api = Inspections::new().await;
    api.pretrip().await;
    let (truck_a, truck_b) = (api.vehicle(10).await, api.vehicle(11).await);
    // 14 inspections over 14 days, alternating vehicles; every third one failed.
    let mut expected = Vec::new();
    for day in 1..=14u32 {
        let vehicle = if day % 2 == 0 { &truck_a } else { &truck_b };
        let brakes = if day % 3 == 0 { "fail" } else { "pass" };
        let at = format!("2026-10-{day:02}T07:30:00Z");
        let body = body_json(&api.post(&inspection(vehicle, &at, brakes)).await);
        expected.push(Submitted {
            day,
            vehicle: vehicle.clone(),
            outcome: brakes,
            id: body["id"].as_str().unwrap().to_owned(),
        });
    }
    let newest_first = |keep: &dyn Fn(&Submitted) -> bool| -> Vec<String> {
        expected.iter().rev().filter(|e| keep(e)).map(|e| e.id.clone()).collect()
    };

    assert_eq!(api.all_pages(&[], 4).await, newest_first(&|_| true));
    assert_eq!(api.all_pages(&[("vehicle_id", &truck_a)], 3).await, newest_first(&|e| e.vehicle == truck_a));
    assert_eq!(api.all_pages(&[("outcome", "fail")], 2).await, newest_first(&|e| e.outcome == "fail"));
    assert_eq!(
        api.all_pages(&[("vehicle_id", &truck_a), ("outcome", "fail")], 1).await,
        newest_first(&|e| e.vehicle == truck_a && e.outcome == "fail")
    );
    // performed_after is inclusive, performed_before exclusive.
    assert_eq!(
        api.all_pages(&[("performed_after", "2026-10-05T07:30:00Z"), ("performed_before", "2026-10-09T07:30:00Z")], 10)
            .await,
        newest_first(&|e| (5..9).contains(&e.day))
    );
    assert_eq!(
        api.all_pages(&[("performed_after", "2026-10-12T00:00:00+02:00"), ("outcome", "pass")], 10).await,
        newest_first(&|e| e.day >= 12 && e.outcome == "pass")
    );
}

#[tokio::test]
async fn bad_list_parameters_are_400_invalid_parameter() {
    let api = Inspections::new().await;
    for (name, value) in [
        ("vehicle_id", "nope"),
        ("outcome", "maybe"),
        ("performed_after", "yesterday"),
        ("limit", "1000"),
        ("sort", "asc"),
    ] {
        let response = api.list(&[(name, value)]).await;
        assert_eq!(
            (response.status().as_u16(), body_json(&response)["code"].clone()),
            (400, json!("invalid_parameter")),
            "{name}"
        );
    }
    let backwards =
        api.list(&[("performed_after", "2026-10-09T00:00:00Z"), ("performed_before", "2026-10-01T00:00:00Z")]).await;
    assert_eq!((backwards.status().as_u16(), body_json(&backwards)["code"].clone()), (400, json!("invalid_parameter")));
}

#[tokio::test]
async fn an_inspections_cursor_is_bound_to_its_filters() {
    let api = Inspections::new().await;
    api.pretrip().await;
    let vehicle = api.vehicle(12).await;
    for day in 1..=2 {
        assert_eq!(api.post(&inspection(&vehicle, &format!("2026-10-0{day}T07:30:00Z"), "pass")).await.status(), 201);
    }
    let page = body_json(&api.list(&[("outcome", "pass"), ("limit", "1")]).await);
    let cursor = page["next_cursor"].as_str().unwrap();
    let refiltered = api.list(&[("outcome", "fail"), ("cursor", cursor)]).await;
    assert_eq!((refiltered.status().as_u16(), body_json(&refiltered)["code"].clone()), (400, json!("invalid_cursor")));
    let same = api.list(&[("outcome", "pass"), ("limit", "1"), ("cursor", cursor)]).await;
    assert_eq!(same.status(), 200, "the cursor works with its own filters");
}

#[tokio::test]
async fn retried_and_concurrent_submissions_record_one_inspection() {
    let api = Inspections::new().await;
    api.pretrip().await;
    let vehicle = api.vehicle(20).await;
    let body = inspection(&vehicle, "2026-11-03T06:00:00Z", "fail");
    let send = || {
        api.submit(DEVICE, Req::new("POST", "/inspections").header("Idempotency-Key", "device-42-seq-7").json(&body))
    };

    let responses = join_all((0..8).map(|_| send())).await;
    for response in &responses {
        assert!([201, 409].contains(&response.status().as_u16()), "{response:?}");
    }
    let ids: BTreeSet<String> = responses
        .iter()
        .filter(|r| r.status() == 201)
        .map(|r| body_json(r)["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), 1);

    let retry = send().await;
    assert_eq!(header(&retry, "idempotent-replayed"), Some("true"));
    assert_eq!(body_json(&retry)["id"].as_str().unwrap(), ids.iter().next().unwrap());
    assert_eq!(body_json(&api.list(&[]).await)["data"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn the_audit_trail_reads_newest_first_with_since_and_paging() {
    let api = Inspections::new().await;
    api.pretrip().await;
    let vehicle = api.vehicle(30).await;
    for day in 1..=3 {
        api.post(&inspection(&vehicle, &format!("2026-11-0{day}T08:00:00Z"), "pass")).await;
    }
    let refused = api
        .submit(READ_ONLY, Req::new("POST", "/inspections").json(&inspection(&vehicle, "2026-11-04T08:00:00Z", "pass")))
        .await;
    assert_eq!(refused.status(), 403);

    let page = |extra: Value| {
        let mut event = json!({"action": "list_audit", "tenant_id": api.stack.tenant});
        event.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        api.stack.provision(event)
    };
    let first = page(json!({"limit": 2})).await.unwrap();
    let records = first["data"].as_array().unwrap();
    assert_eq!(records.len(), 2);
    assert_eq!(
        (records[0]["action"].clone(), records[0]["outcome"].clone()),
        (json!("POST /inspections"), json!("insufficient_scope"))
    );
    assert_eq!(records[0]["key_id"], "key_testtesttesttesttest");
    assert_eq!(records[1]["outcome"], "ok");
    assert!(records[0]["at"].as_str().unwrap() >= records[1]["at"].as_str().unwrap());

    let second = page(json!({"limit": 2, "cursor": first["next_cursor"]})).await.unwrap();
    assert_eq!(second["data"][0]["outcome"], "ok");
    assert_ne!(second["data"][0]["resource_id"], records[1]["resource_id"], "the second page starts after the first");
    assert!(records[0].get("sk").is_none() && records[0].get("expires_at_epoch").is_none());

    let all = page(json!({"limit": 100})).await.unwrap();
    let actions: Vec<&str> = all["data"].as_array().unwrap().iter().map(|r| r["action"].as_str().unwrap()).collect();
    // Newest first: the two list_audit reads above, the refused and three accepted posts, the template.
    assert_eq!(
        actions,
        [
            "list_audit",
            "list_audit",
            "POST /inspections",
            "POST /inspections",
            "POST /inspections",
            "POST /inspections",
            "put_inspection_template"
        ]
    );

    let future = page(json!({"since": "2099-01-01T00:00:00Z"})).await.unwrap();
    assert_eq!(future["data"], json!([]));
    let recent = page(json!({"since": Timestamp::now().minus(time::Duration::minutes(10)).to_string()})).await.unwrap();
    assert!(recent["data"].as_array().unwrap().len() >= 7);

    let foreign = Inspections::new().await;
    let err = foreign
        .stack
        .provision(json!({"action": "list_audit", "tenant_id": foreign.stack.tenant, "cursor": first["next_cursor"]}))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "invalid_field");
    assert_eq!(page(json!({"limit": 0})).await.unwrap_err().code(), "invalid_field");
}

#[tokio::test]
async fn a_crafted_timestamp_is_refused_and_an_unreadable_record_never_breaks_reads() {
    let api = Inspections::new().await;
    api.pretrip().await;
    let vehicle_id = api.vehicle(1).await;
    // Year 0 at +00:01 is year −1 in UTC, which has no RFC 3339 form: once stored,
    // it made every read of the tenant's history a 500.
    for crafted in ["0000-01-01T00:00:00+00:01", "0000-01-01T00:00:00Z", "1969-12-31T23:59:59Z"] {
        let refused = api.post(&inspection(&vehicle_id, crafted, "pass")).await;
        assert_eq!(field_errors(&refused), ["performed_at"], "{crafted}");
    }
    let (mut ids, mut created_bodies) = (Vec::new(), Vec::new());
    for at in ["2026-11-01T08:00:00Z", "2026-11-02T08:00:00Z"] {
        let created = body_json(&api.post(&inspection(&vehicle_id, at, "pass")).await);
        ids.push(created["id"].as_str().unwrap().to_owned());
        created_bodies.push(created);
    }
    // Given: one record as an older version could have stored it (written
    // directly, field by field as before the `body` layout), and one well-formed
    // record in that layout, which must still read.
    api.stack
        .store_field_by_field(&format!("inspection#{}", ids[0]), |fields| {
            fields["performed_at"] = json!("-001-12-31T23:59:00Z")
        })
        .await;
    api.stack.store_field_by_field(&format!("inspection#{}", ids[1]), |_| {}).await;

    // Then: reading it is a 404 (logged for the operators), never a 500...
    let get = |id: &str| {
        let req = Req::with_id("GET", "/inspections", id).build(Some(&api.stack.key_context(READ_ONLY)));
        get_inspection::handler(&api.get, req)
    };
    assert_eq!(get(&ids[0]).await.unwrap().status(), 404);
    let readable = get(&ids[1]).await.unwrap();
    assert_eq!(readable.status(), 200);
    assert_eq!(body_json(&readable), created_bodies[1], "the older layout reads as what was created");
    // ...and every list still answers, without it.
    for query in [vec![], vec![("vehicle_id", vehicle_id.as_str())], vec![("outcome", "pass")]] {
        let listed = api.list(&query).await;
        assert_eq!(listed.status(), 200, "{query:?}");
        let body = body_json(&listed);
        let listed_ids: Vec<&str> =
            body["data"].as_array().unwrap().iter().map(|i| i["id"].as_str().unwrap()).collect();
        assert_eq!(listed_ids, [ids[1].as_str()], "{query:?}");
    }
}

#[tokio::test]
async fn a_retry_replays_its_first_answer_even_after_the_template_changed() {
    let api = Inspections::new().await;
    api.pretrip().await;
    let vehicle = api.vehicle(21).await;
    let body = inspection(&vehicle, "2026-11-03T07:00:00Z", "pass");
    let send =
        || api.submit(DEVICE, Req::new("POST", "/inspections").header("Idempotency-Key", "lost-answer-1").json(&body));
    // The device's first try was stored, but it never saw the answer.
    let first = send().await;
    assert_eq!(first.status(), 201, "{:?}", first.body());
    // Meanwhile an admin changes the template: the same body would now be a 422
    // (a new required item is unanswered).
    api.stack
        .provision(json!({"action": "put_inspection_template", "tenant_id": api.stack.tenant, "template": {
            "id": "tpl_pretrip", "name": "Pre-trip v2",
            "items": [{"id": "brakes", "label": "Brakes"}, {"id": "tyres", "label": "Tyres"}, {"id": "horn", "label": "Horn"}]}}))
        .await
        .unwrap();
    let fresh = api.post(&inspection(&vehicle, "2026-11-03T07:00:00Z", "pass")).await;
    assert_eq!(field_errors(&fresh).len(), 1, "without a key the new template applies");

    // The retry gets the first answer, not a new verdict, and nothing is stored twice.
    let retry = send().await;
    assert_eq!(retry.status(), 201, "{:?}", retry.body());
    assert_eq!(header(&retry, "idempotent-replayed"), Some("true"));
    assert_eq!(body_json(&retry)["id"], body_json(&first)["id"]);
    assert_eq!(body_json(&api.list(&[]).await)["data"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn an_inspection_of_another_tenant_an_unknown_or_a_malformed_id_is_404() {
    let api = Inspections::new().await;
    api.pretrip().await;
    let vehicle = api.vehicle(30).await;
    let id = body_json(&api.post(&inspection(&vehicle, "2026-11-04T08:00:00Z", "pass")).await)["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let other = Inspections::new().await;
    async fn get(api: &Inspections, id: &str) -> Response<Body> {
        let req = Req::with_id("GET", "/inspections", id).build(Some(&api.stack.key_context(READ_ONLY)));
        get_inspection::handler(&api.get, req).await.unwrap()
    }
    assert_eq!(get(&api, &id).await.status(), 200, "the owner reads it");
    let long = format!("insp_{}", "A".repeat(5000));
    for (who, id) in [
        (&other, id.as_str()),                     // another tenant's: it must not be revealed
        (&api, "insp_00000000000000000000000000"), // well-formed, unknown
        (&api, "veh_01M8KR4Y70HZFJG8X96VKGCEVY"),  // another resource's id
        (&api, "insp_..%2F..%2Fetc"),
        (&api, long.as_str()),
        (&api, ""),
    ] {
        let response = get(who, id).await;
        assert_eq!(response.status(), 404, "{id:?}");
        assert_eq!(body_json(&response)["code"], "not_found", "{id:?}");
        assert_eq!(header(&response, "content-type"), Some("application/problem+json"));
    }
}
