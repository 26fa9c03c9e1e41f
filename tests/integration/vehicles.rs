//! The vehicles API against DynamoDB Local, through the real handlers: creation,
//! validation, VIN uniqueness, idempotency, optimistic concurrency, paging,
//! tenant isolation and audit.

use std::collections::BTreeSet;

use futures::future::join_all;
use lambda_http::{Body, Response};
use serde_json::{Value, json};

use crate::helpers::{Req, TestStack, body_json, borrowed, header, walk_list};

const FULL: &str = "vehicles:write inspections:write";
const READ_ONLY: &str = "vehicles:read inspections:read";

/// The four vehicle functions, wired to one test stack.
pub(crate) struct Vehicles {
    pub(crate) stack: TestStack,
    pub(crate) list: list_vehicles::State,
    pub(crate) get: get_vehicle::State,
    pub(crate) create: create_vehicle::State,
    pub(crate) update: update_vehicle::State,
    pub(crate) patch: patch_vehicle::State,
}

impl Vehicles {
    async fn new() -> Vehicles {
        Vehicles::on(TestStack::new().await)
    }

    /// The functions as wired to `stack`'s client.
    pub(crate) fn on(stack: TestStack) -> Vehicles {
        let idempotency =
            fleetgate_api::idempotency::IdempotencyStore::new(stack.client.clone(), stack.tables.fleet.clone());
        Vehicles {
            list: list_vehicles::State {
                gate: stack.gate(),
                vehicles: stack.vehicle_store(),
                cursors: fleetgate_api::cursor_keys::CursorKeys::fixed("test-secret"),
            },
            get: get_vehicle::State { gate: stack.gate(), vehicles: stack.vehicle_store() },
            create: create_vehicle::State {
                gate: stack.gate(),
                vehicles: stack.vehicle_store(),
                idempotency,
                outbox: stack.outbox(),
            },
            update: update_vehicle::State {
                gate: stack.gate(),
                vehicles: stack.vehicle_store(),
                outbox: stack.outbox(),
            },
            patch: patch_vehicle::State { gate: stack.gate(), vehicles: stack.vehicle_store(), outbox: stack.outbox() },
            stack,
        }
    }

    pub(crate) async fn post(&self, scopes: &str, req: Req) -> Response<Body> {
        create_vehicle::handler(&self.create, req.build(Some(&self.stack.key_context(scopes)))).await.unwrap()
    }

    pub(crate) async fn create(&self, body: &Value) -> Response<Body> {
        self.post(FULL, Req::new("POST", "/vehicles").json(body)).await
    }

    pub(crate) async fn get(&self, id: &str) -> Response<Body> {
        let req = Req::with_id("GET", "/vehicles", id).build(Some(&self.stack.key_context(READ_ONLY)));
        get_vehicle::handler(&self.get, req).await.unwrap()
    }

    pub(crate) async fn put(&self, id: &str, body: &Value, if_match: Option<&str>) -> Response<Body> {
        let mut req = Req::with_id("PUT", "/vehicles", id).json(body);
        if let Some(tag) = if_match {
            req = req.header("If-Match", tag);
        }
        update_vehicle::handler(&self.update, req.build(Some(&self.stack.key_context(FULL)))).await.unwrap()
    }

    /// `PATCH /vehicles/{id}` with a merge patch (`application/merge-patch+json`).
    pub(crate) async fn patch(&self, id: &str, patch: &Value, if_match: Option<&str>) -> Response<Body> {
        let mut req = Req::with_id("PATCH", "/vehicles", id)
            .header("content-type", "application/merge-patch+json")
            .raw_body(&patch.to_string());
        if let Some(tag) = if_match {
            req = req.header("If-Match", tag);
        }
        patch_vehicle::handler(&self.patch, req.build(Some(&self.stack.key_context(FULL)))).await.unwrap()
    }

    pub(crate) async fn list(&self, query: &[(&str, &str)]) -> Response<Body> {
        let mut req = Req::new("GET", "/vehicles");
        for (name, value) in query {
            req = req.query(name, value);
        }
        list_vehicles::handler(&self.list, req.build(Some(&self.stack.key_context(READ_ONLY)))).await.unwrap()
    }

    /// Every page of `GET /vehicles` with `filters` and `limit`, through [`walk_list`].
    pub(crate) async fn walk(&self, filters: &[(&str, &str)], limit: usize) -> (Vec<String>, Vec<usize>) {
        walk_list(filters, limit, |query| async move { self.list(&borrowed(&query)).await }).await
    }

    /// The outcome of every audit record of the tenant, oldest first.
    pub(crate) async fn audit_outcomes(&self) -> Vec<String> {
        self.stack.audit_trail().await.into_iter().map(|(_, _, outcome)| outcome).collect()
    }

    /// Every vehicle id of the tenant, straight from DynamoDB.
    pub(crate) async fn stored_ids(&self) -> Vec<String> {
        let tenant = fleetgate_scopes::TenantId::parse(&self.stack.tenant).unwrap();
        let (vehicles, _) = self.stack.vehicle_store().list(&tenant, None, 100, None).await.unwrap();
        vehicles.into_iter().map(|v| v.id).collect()
    }
}

/// A valid body with a VIN made from `n`.
pub(crate) fn truck(n: u32) -> Value {
    json!({"vin": format!("1HGCM82633A{n:06}"), "name": format!("Truck {n}"), "make": "Volvo", "model": "FH16",
           "year": 2022, "license_plate": "AB-123", "status": "active", "odometer_km": 120000})
}

pub(crate) fn problem_code(response: &Response<Body>) -> String {
    assert_eq!(header(response, "content-type"), Some("application/problem+json"), "{:?}", response.body());
    body_json(response)["code"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn created_vehicles_read_back_with_etag_and_are_audited() {
    let api = Vehicles::new().await;
    let created = api.create(&truck(1)).await;
    assert_eq!(created.status(), 201, "{:?}", created.body());
    let vehicle = body_json(&created);
    let id = vehicle["id"].as_str().unwrap();
    assert!(id.starts_with("veh_"));
    assert_eq!(vehicle["version"], 1);
    assert_eq!(vehicle["vin"], "1HGCM82633A000001");
    assert_eq!(vehicle["created_at"], vehicle["updated_at"]);
    assert_eq!(header(&created, "etag"), Some("\"1\""));
    // The client-facing path, stage included.
    assert_eq!(header(&created, "location"), Some(format!("/v1/vehicles/{id}").as_str()));
    assert_eq!(
        header(&created, "x-key-scopes"),
        Some("vehicles:read vehicles:write inspections:read inspections:write")
    );

    let fetched = api.get(id).await;
    assert_eq!(fetched.status(), 200);
    assert_eq!(body_json(&fetched), vehicle);
    assert_eq!(header(&fetched, "etag"), Some("\"1\""));
    assert_eq!(api.stack.audit_trail().await, [("POST /vehicles".to_owned(), Some(id.to_owned()), "ok".to_owned())]);
}

#[tokio::test]
async fn every_invalid_field_is_named_in_one_422_and_nothing_is_written() {
    let api = Vehicles::new().await;
    let mut invalid = truck(2);
    invalid["year"] = json!(1800);
    invalid["id"] = json!("veh_mine");
    let response = api.create(&invalid).await;
    assert_eq!((response.status().as_u16(), problem_code(&response)), (422, "validation_failed".into()));
    // Next year, from the same clock the handler reads (a literal year here went stale on 1 January).
    let latest = fleetgate_api::Timestamp::now().year() + 1;
    assert_eq!(
        body_json(&response)["errors"],
        json!([{"field": "year", "message": format!("must be a whole number from 1900 to {latest}")},
               {"field": "id", "message": "is set by the server and cannot be written"}])
    );
    assert!(api.stored_ids().await.is_empty());
    assert_eq!(api.audit_outcomes().await, ["validation_failed"]);
}

#[tokio::test]
async fn bodies_that_are_not_a_json_object_are_refused_by_kind_and_audited() {
    let api = Vehicles::new().await;
    let not_json = api
        .post(FULL, Req::new("POST", "/vehicles").header("content-type", "application/json").raw_body("{\"vin\": "))
        .await;
    assert_eq!((not_json.status().as_u16(), problem_code(&not_json)), (400, "invalid_json".into()));
    let text =
        api.post(FULL, Req::new("POST", "/vehicles").header("content-type", "text/plain").raw_body("hello")).await;
    assert_eq!((text.status().as_u16(), problem_code(&text)), (415, "unsupported_media_type".into()));
    let mut huge = truck(3);
    huge["name"] = json!("x".repeat(70_000));
    let too_big = api.create(&huge).await;
    assert_eq!((too_big.status().as_u16(), problem_code(&too_big)), (413, "payload_too_large".into()));
    let array = api.create(&json!([truck(4)])).await;
    assert_eq!((array.status().as_u16(), problem_code(&array)), (422, "validation_failed".into()));
    assert!(api.stored_ids().await.is_empty());
    assert_eq!(
        api.audit_outcomes().await,
        ["invalid_json", "unsupported_media_type", "payload_too_large", "validation_failed"]
    );
}

#[tokio::test]
async fn a_write_from_outside_the_keys_networks_is_403_audited_and_writes_nothing() {
    let api = Vehicles::new().await;
    let mut pinned = api.stack.key_context(FULL);
    pinned.insert("allowed_cidrs", "198.51.100.0/24".into());
    let create = |ip: &str| {
        let req = Req::new("POST", "/vehicles").json(&truck(6)).source_ip(ip).build(Some(&pinned));
        create_vehicle::handler(&api.create, req)
    };
    let refused = create("203.0.113.9").await.unwrap();
    assert_eq!((refused.status().as_u16(), problem_code(&refused)), (403, "ip_not_allowed".into()));
    assert!(api.stored_ids().await.is_empty());
    assert_eq!(api.audit_outcomes().await, ["ip_not_allowed"]);
    assert_eq!(create("198.51.100.20").await.unwrap().status(), 201, "from inside it works");
}

#[tokio::test]
async fn a_key_without_vehicles_write_gets_a_403_naming_it_and_writes_nothing() {
    let api = Vehicles::new().await;
    let forbidden = api.post(READ_ONLY, Req::new("POST", "/vehicles").json(&truck(5))).await;
    assert_eq!((forbidden.status().as_u16(), problem_code(&forbidden)), (403, "insufficient_scope".into()));
    assert_eq!(body_json(&forbidden)["required_scopes"], json!(["vehicles:write"]));
    assert_eq!(header(&forbidden, "x-accepted-scopes"), Some("vehicles:write"));
    assert!(api.stored_ids().await.is_empty());
    assert_eq!(api.audit_outcomes().await, ["insufficient_scope"]);
}

#[tokio::test]
async fn a_vin_is_unique_per_tenant_even_under_concurrency() {
    let api = Vehicles::new().await;
    let body = truck(7);
    let responses = join_all((0..8).map(|_| api.create(&body))).await;
    let mut statuses: Vec<u16> = responses.iter().map(|r| r.status().as_u16()).collect();
    statuses.sort();
    assert_eq!(statuses, [201, 409, 409, 409, 409, 409, 409, 409], "{responses:?}");
    assert_eq!(api.stored_ids().await.len(), 1);

    // Another tenant may have the same VIN.
    let other = Vehicles::new().await;
    assert_eq!(other.create(&truck(7)).await.status(), 201);
}

#[tokio::test]
async fn idempotent_retries_replay_and_a_reused_key_with_another_body_conflicts() {
    let api = Vehicles::new().await;
    let send = |body: String| {
        let req = Req::new("POST", "/vehicles")
            .header("Idempotency-Key", "retry-1")
            .header("content-type", "application/json");
        api.post(FULL, req.raw_body(&body))
    };
    let first = send(truck(8).to_string()).await;
    assert_eq!(first.status(), 201);
    assert!(header(&first, "idempotent-replayed").is_none());

    // The same JSON with its keys in another order and other spacing is the same request.
    let reordered = r#"{ "odometer_km": 120000, "status": "active", "license_plate": "AB-123", "year": 2022,
                         "model": "FH16", "make": "Volvo", "name": "Truck 8", "vin": "1HGCM82633A000008" }"#;
    assert_eq!(serde_json::from_str::<Value>(reordered).unwrap(), truck(8));
    let retry = send(reordered.to_owned()).await;
    assert_eq!(retry.status(), 201);
    assert_eq!(header(&retry, "idempotent-replayed"), Some("true"));
    assert_eq!(body_json(&retry), body_json(&first));
    assert_eq!(header(&retry, "etag"), header(&first, "etag"));
    assert_eq!(header(&retry, "location"), header(&first, "location"));

    let mut other_body = truck(8);
    other_body["name"] = json!("Another truck");
    let conflict = send(other_body.to_string()).await;
    assert_eq!((conflict.status().as_u16(), problem_code(&conflict)), (409, "idempotency_key_reused".into()));
    assert_eq!(api.stored_ids().await.len(), 1);

    // A key is per tenant: another tenant's identical key is unrelated.
    let other = Vehicles::new().await;
    let theirs =
        other.post(FULL, Req::new("POST", "/vehicles").header("Idempotency-Key", "retry-1").json(&truck(8))).await;
    assert_eq!(theirs.status(), 201);
    assert!(header(&theirs, "idempotent-replayed").is_none());
}

#[tokio::test]
async fn concurrent_duplicates_with_one_idempotency_key_create_exactly_one_vehicle() {
    let api = Vehicles::new().await;
    let responses = join_all(
        (0..8)
            .map(|_| api.post(FULL, Req::new("POST", "/vehicles").header("Idempotency-Key", "burst").json(&truck(9)))),
    )
    .await;
    // Exactly one request created the vehicle; the others replayed it (marked) or were
    // told the first is still running. "VIN taken" would mean idempotency did not hold:
    // VIN uniqueness alone also yields one 201.
    let mut created = 0;
    for response in &responses {
        match response.status().as_u16() {
            201 if header(response, "idempotent-replayed") == Some("true") => {}
            201 => created += 1,
            409 => {
                assert_eq!(problem_code(response), "idempotency_key_in_progress", "{response:?}");
                assert_eq!(header(response, "retry-after"), Some("1"));
            }
            other => panic!("unexpected {other}: {response:?}"),
        }
    }
    assert_eq!(created, 1, "one request did the work");
    let ids: BTreeSet<String> = responses
        .iter()
        .filter(|r| r.status() == 201)
        .map(|r| body_json(r)["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), 1, "every success names the same vehicle");
    assert_eq!(api.stored_ids().await, ids.into_iter().collect::<Vec<_>>());
}

#[tokio::test]
async fn put_replaces_fields_and_honours_if_match() {
    let api = Vehicles::new().await;
    let id = body_json(&api.create(&truck(10)).await)["id"].as_str().unwrap().to_owned();
    let mut changed = truck(10);
    changed["status"] = json!("in_shop");
    changed["odometer_km"] = json!(130000);
    changed["license_plate"] = Value::Null;

    let updated = api.put(&id, &changed, Some("\"1\"")).await;
    assert_eq!(updated.status(), 200, "{:?}", updated.body());
    let body = body_json(&updated);
    assert_eq!(
        (body["version"].clone(), body["status"].clone(), body["license_plate"].clone()),
        (json!(2), json!("in_shop"), Value::Null)
    );
    assert_eq!(header(&updated, "etag"), Some("\"2\""));

    let stale = api.put(&id, &truck(10), Some("\"1\"")).await;
    assert_eq!((stale.status().as_u16(), problem_code(&stale)), (412, "precondition_failed".into()));
    let unconditional = api.put(&id, &truck(10), None).await;
    assert_eq!(body_json(&unconditional)["version"], 3);

    let mut server_owned = truck(10);
    server_owned["version"] = json!(99);
    let refused = api.put(&id, &server_owned, None).await;
    assert_eq!(refused.status(), 422);
    assert_eq!(body_json(&refused)["errors"][0]["field"], "version");
    assert_eq!(body_json(&api.get(&id).await)["version"], 3, "refused writes change nothing");
}

#[tokio::test]
async fn a_put_leaving_out_optional_fields_is_a_422_naming_them_and_resets_nothing() {
    let api = Vehicles::new().await;
    let mut first = truck(20);
    first["odometer_km"] = json!(50);
    let id = body_json(&api.create(&first).await)["id"].as_str().unwrap().to_owned();
    // The report: a PUT with only vin/name/make/model/year turned odometer 50 into 0.
    let partial = json!({"vin": first["vin"], "name": "Truck 20", "make": "Volvo", "model": "FH16", "year": 2022});
    let refused = api.put(&id, &partial, None).await;
    assert_eq!((refused.status().as_u16(), problem_code(&refused)), (422, "validation_failed".into()));
    let fields: Vec<String> =
        body_json(&refused)["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap().into()).collect();
    assert_eq!(fields, ["license_plate", "status", "odometer_km"]);
    let stored = body_json(&api.get(&id).await);
    assert_eq!((stored["odometer_km"].clone(), stored["license_plate"].clone()), (json!(50), json!("AB-123")));
    assert_eq!(api.audit_outcomes().await, ["ok", "validation_failed"]);
}

#[tokio::test]
async fn a_get_body_sent_back_with_one_change_is_accepted() {
    let api = Vehicles::new().await;
    let id = body_json(&api.create(&truck(21)).await)["id"].as_str().unwrap().to_owned();
    let mut read = body_json(&api.get(&id).await);
    read["odometer_km"] = json!(121000);
    let updated = api.put(&id, &read, Some("\"1\"")).await;
    assert_eq!(updated.status(), 200, "{:?}", updated.body());
    assert_eq!(body_json(&updated)["odometer_km"], 121000);
    // Sent back stale (version 1 while 2 is stored) the server field is a change: refused, named.
    let refused = api.put(&id, &read, None).await;
    assert_eq!(refused.status(), 422);
    assert_eq!(body_json(&refused)["errors"][0]["field"], "version");
}

#[tokio::test]
async fn a_vehicle_stored_field_by_field_by_an_older_version_reads_and_updates() {
    let api = Vehicles::new().await;
    let created = body_json(&api.create(&truck(22)).await);
    let id = created["id"].as_str().unwrap().to_owned();
    api.stack.store_field_by_field(&format!("vehicle#{id}"), |_| {}).await;
    assert_eq!(body_json(&api.get(&id).await), created);
    let mut changed = created.clone();
    changed["odometer_km"] = json!(777);
    let updated = api.put(&id, &changed, Some("\"1\"")).await;
    assert_eq!(updated.status(), 200, "{:?}", updated.body());
    assert_eq!(
        (body_json(&api.get(&id).await)["odometer_km"].clone(), header(&updated, "etag")),
        (json!(777), Some("\"2\""))
    );
}

#[tokio::test]
async fn if_match_follows_rfc_9110_lists_star_weak_and_malformed() {
    let api = Vehicles::new().await;
    let id = body_json(&api.create(&truck(22)).await)["id"].as_str().unwrap().to_owned();
    let body = truck(22);
    // Unquoted: not a tag at all, so 400 (it was a 412 "changed since you read it").
    let unquoted = api.put(&id, &body, Some("1")).await;
    assert_eq!((unquoted.status().as_u16(), problem_code(&unquoted)), (400, "invalid_if_match".into()));
    assert!(body_json(&unquoted)["detail"].as_str().unwrap().contains("\"1\""), "the hint quotes it");
    // A weak tag never matches under strong comparison.
    let weak = api.put(&id, &body, Some("W/\"1\"")).await;
    assert_eq!((weak.status().as_u16(), problem_code(&weak)), (412, "precondition_failed".into()));
    // A list matches if any tag does.
    let listed = api.put(&id, &body, Some("\"7\", \"1\"")).await;
    assert_eq!(listed.status(), 200, "{:?}", listed.body());
    // `*` matches an existing vehicle, not a missing one.
    assert_eq!(api.put(&id, &body, Some("*")).await.status(), 200);
    let missing = api.put("veh_00000000000000000000000000", &body, Some("*")).await;
    assert_eq!(missing.status(), 404);
    assert_eq!(body_json(&api.get(&id).await)["version"], 3, "only the matching writes counted");
}

#[tokio::test]
async fn a_merge_patch_changes_only_the_fields_it_names() {
    let api = Vehicles::new().await;
    let id = body_json(&api.create(&truck(23)).await)["id"].as_str().unwrap().to_owned();
    let patched = api.patch(&id, &json!({"odometer_km": 125000, "license_plate": null}), Some("\"1\"")).await;
    assert_eq!(patched.status(), 200, "{:?}", patched.body());
    assert_eq!(header(&patched, "etag"), Some("\"2\""));
    let stored = body_json(&api.get(&id).await);
    assert_eq!(
        (
            stored["odometer_km"].clone(),
            stored["license_plate"].clone(),
            stored["name"].clone(),
            stored["status"].clone()
        ),
        (json!(125000), Value::Null, json!("Truck 23"), json!("active"))
    );
    let stale = api.patch(&id, &json!({"name": "Old"}), Some("\"1\"")).await;
    assert_eq!(stale.status(), 412);
    let refused =
        api.patch(&id, &json!({"name": null, "colour": "red", "id": "veh_00000000000000000000000000"}), None).await;
    assert_eq!(refused.status(), 422);
    let fields: Vec<String> =
        body_json(&refused)["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap().into()).collect();
    assert_eq!(fields, ["name", "id", "colour"]);
    assert_eq!(body_json(&api.get(&id).await)["version"], 2, "refused patches change nothing");
}

#[tokio::test]
async fn a_patch_in_another_format_is_415_and_a_patch_of_a_vin_keeps_it_unique() {
    let api = Vehicles::new().await;
    let first = body_json(&api.create(&truck(24)).await)["id"].as_str().unwrap().to_owned();
    let second = body_json(&api.create(&truck(25)).await)["id"].as_str().unwrap().to_owned();
    let json_patch = Req::with_id("PATCH", "/vehicles", &first)
        .header("content-type", "application/json-patch+json")
        .raw_body(r#"[{"op": "replace", "path": "/name", "value": "x"}]"#);
    let refused =
        patch_vehicle::handler(&api.patch, json_patch.build(Some(&api.stack.key_context(FULL)))).await.unwrap();
    assert_eq!((refused.status().as_u16(), problem_code(&refused)), (415, "unsupported_media_type".into()));
    assert!(body_json(&refused)["detail"].as_str().unwrap().contains("merge-patch"));
    let taken = api.patch(&second, &json!({"vin": truck(24)["vin"]}), None).await;
    assert_eq!((taken.status().as_u16(), problem_code(&taken)), (409, "vin_taken".into()));
    assert_eq!(body_json(&taken)["existing_vehicle_id"], json!(first));
}

#[tokio::test]
async fn concurrent_patches_of_different_fields_both_stand() {
    let api = Vehicles::new().await;
    let id = body_json(&api.create(&truck(26)).await)["id"].as_str().unwrap().to_owned();
    let patches: Vec<Value> = (0..4)
        .map(|n| match n % 2 {
            0 => json!({"odometer_km": 130000 + n}),
            _ => json!({"name": format!("Renamed {n}")}),
        })
        .collect();
    let answers = join_all(patches.iter().map(|patch| api.patch(&id, patch, None))).await;
    assert!(answers.iter().all(|a| a.status() == 200), "{:?}", answers.iter().map(|a| a.status()).collect::<Vec<_>>());
    let stored = body_json(&api.get(&id).await);
    // Each patch was applied to the version it finally wrote over: all four counted,
    // and the last odometer and the last name both stand (no field reset by another patch).
    assert_eq!(stored["version"], 5);
    assert!(stored["odometer_km"].as_i64().unwrap() >= 130000, "{stored}");
    assert!(stored["name"].as_str().unwrap().starts_with("Renamed"), "{stored}");
}

#[tokio::test]
async fn a_vehicle_is_found_by_its_vin_with_point_reads_only() {
    let api = Vehicles::new().await;
    let id = body_json(&api.create(&truck(27)).await)["id"].as_str().unwrap().to_owned();
    api.create(&truck(28)).await;
    let vin = truck(27)["vin"].as_str().unwrap().to_owned();
    let found = body_json(&api.list(&[("vin", &vin.to_ascii_lowercase())]).await);
    assert_eq!(found["data"].as_array().unwrap().len(), 1, "{found}");
    assert_eq!((found["data"][0]["id"].clone(), found["next_cursor"].clone()), (json!(id), Value::Null));
    let none = body_json(&api.list(&[("vin", "1HGCM82633A999999")]).await);
    assert_eq!(none["data"], json!([]));
    let other_status = body_json(&api.list(&[("vin", &vin), ("status", "retired")]).await);
    assert_eq!(other_status["data"], json!([]), "status still filters");
    // After a VIN change the old VIN finds nothing and the new one finds the vehicle.
    let mut moved = truck(27);
    moved["vin"] = json!("1HGCM82633A777777");
    assert_eq!(api.put(&id, &moved, None).await.status(), 200);
    assert_eq!(body_json(&api.list(&[("vin", &vin)]).await)["data"], json!([]));
    assert_eq!(body_json(&api.list(&[("vin", "1HGCM82633A777777")]).await)["data"][0]["id"], json!(id));
    for (query, param) in [(vec![("vin", "nope")], "vin"), (vec![("vin", vin.as_str()), ("cursor", "x")], "cursor")] {
        let refused = body_json(&api.list(&query).await);
        assert_eq!((refused["code"].clone(), refused["param"].clone()), (json!("invalid_parameter"), json!(param)));
    }
}

#[tokio::test]
async fn eight_puts_with_the_same_if_match_give_one_200_and_seven_412() {
    let api = Vehicles::new().await;
    let id = body_json(&api.create(&truck(11)).await)["id"].as_str().unwrap().to_owned();
    let bodies: Vec<Value> = (0..8)
        .map(|n| {
            let mut body = truck(11);
            body["odometer_km"] = json!(200_000 + n);
            body
        })
        .collect();
    let responses = join_all(bodies.iter().map(|body| api.put(&id, body, Some("\"1\"")))).await;
    let mut statuses: Vec<u16> = responses.iter().map(|r| r.status().as_u16()).collect();
    statuses.sort();
    assert_eq!(statuses, [200, 412, 412, 412, 412, 412, 412, 412]);
    let winner = responses.iter().find(|r| r.status() == 200).unwrap();
    assert_eq!(body_json(&api.get(&id).await), body_json(winner));
}

#[tokio::test]
async fn changing_a_vin_moves_its_uniqueness_and_cannot_take_anothers() {
    let api = Vehicles::new().await;
    let first = body_json(&api.create(&truck(12)).await)["id"].as_str().unwrap().to_owned();
    let second = body_json(&api.create(&truck(13)).await)["id"].as_str().unwrap().to_owned();

    let taken = api.put(&second, &truck(12), None).await;
    assert_eq!((taken.status().as_u16(), problem_code(&taken)), (409, "vin_taken".into()));
    // The problem names the vehicle that holds the VIN, so a client can reconcile.
    assert_eq!(body_json(&taken)["existing_vehicle_id"], first.as_str());

    let mut moved = truck(12);
    moved["vin"] = json!("1HGCM82633A999999");
    assert_eq!(api.put(&first, &moved, None).await.status(), 200);
    // The old VIN is free again; the new one is taken.
    assert_eq!(api.put(&second, &truck(12), None).await.status(), 200);
    let mut clash = truck(14);
    clash["vin"] = json!("1HGCM82633A999999");
    let clashed = api.create(&clash).await;
    assert_eq!((clashed.status().as_u16(), problem_code(&clashed)), (409, "vin_taken".into()));
    assert_eq!(body_json(&clashed)["existing_vehicle_id"], first.as_str());
}

#[tokio::test]
async fn other_tenants_and_odd_ids_are_404() {
    let api = Vehicles::new().await;
    let other = Vehicles::new().await;
    let id = body_json(&api.create(&truck(15)).await)["id"].as_str().unwrap().to_owned();

    let theirs = other.get(&id).await;
    assert_eq!((theirs.status().as_u16(), problem_code(&theirs)), (404, "not_found".into()));
    assert_eq!(other.put(&id, &truck(15), None).await.status(), 404);
    assert_eq!(body_json(&api.get(&id).await)["version"], 1, "the other tenant changed nothing");

    let long = format!("veh_{}", "A".repeat(5000));
    for odd in ["veh_..%2F..%2Fetc", "veh_\u{0}", long.as_str(), "", "vin#1HGCM82633A000015"] {
        assert_eq!(api.get(odd).await.status(), 404, "{odd:?}");
        assert_eq!(api.put(odd, &truck(15), None).await.status(), 404, "{odd:?}");
    }
}

#[tokio::test]
async fn lists_page_through_everything_in_order_with_filters() {
    let api = Vehicles::new().await;
    let mut created = Vec::new();
    for n in 0..23 {
        let mut body = truck(100 + n);
        if n % 3 == 0 {
            body["status"] = json!("retired");
        }
        created.push(body_json(&api.create(&body).await)["id"].as_str().unwrap().to_owned());
    }

    let (seen, sizes) = api.walk(&[], 5).await;
    assert_eq!(sizes, vec![5, 5, 5, 5, 3]);
    assert_eq!(seen, created, "every vehicle once, in creation order");

    let retired = body_json(&api.list(&[("status", "retired"), ("limit", "100")]).await);
    let expected: Vec<&String> = created.iter().step_by(3).collect();
    let got: Vec<&str> = retired["data"].as_array().unwrap().iter().map(|v| v["id"].as_str().unwrap()).collect();
    assert_eq!(got, expected);
    assert_eq!(retired["next_cursor"], Value::Null);
    // Without a limit, a page holds 25: all 23 fit.
    assert_eq!(body_json(&api.list(&[]).await)["data"].as_array().unwrap().len(), 23);
}

#[tokio::test]
async fn cursors_are_bound_to_tenant_and_query_and_bad_parameters_are_400() {
    let api = Vehicles::new().await;
    let other = Vehicles::new().await;
    for n in 0..3 {
        api.create(&truck(200 + n)).await;
        other.create(&truck(200 + n)).await;
    }
    let first = body_json(&api.list(&[("limit", "1")]).await);
    let cursor = first["next_cursor"].as_str().unwrap().to_owned();

    let foreign = other.list(&[("limit", "1"), ("cursor", &cursor)]).await;
    assert_eq!((foreign.status().as_u16(), problem_code(&foreign)), (400, "invalid_cursor".into()));
    let other_filter = api.list(&[("status", "active"), ("cursor", &cursor)]).await;
    assert_eq!(problem_code(&other_filter), "invalid_cursor");
    let mut tampered = cursor.clone().into_bytes();
    tampered[3] = if tampered[3] == b'A' { b'B' } else { b'A' };
    let tampered = api.list(&[("cursor", &String::from_utf8(tampered).unwrap())]).await;
    assert_eq!(problem_code(&tampered), "invalid_cursor");
    assert_eq!(problem_code(&api.list(&[("cursor", "garbage")]).await), "invalid_cursor");

    for (name, value) in [("limit", "0"), ("limit", "101"), ("limit", "x"), ("status", "parked"), ("sort", "name")] {
        let response = api.list(&[(name, value)]).await;
        assert_eq!(
            (response.status().as_u16(), problem_code(&response)),
            (400, "invalid_parameter".into()),
            "{name}={value}"
        );
    }
    // The page size changes nothing about which cursor is valid.
    assert_eq!(api.list(&[("limit", "2"), ("cursor", &cursor)]).await.status(), 200);
}

#[tokio::test]
async fn a_refused_body_claims_no_key_so_the_corrected_one_is_created_under_it() {
    let api = Vehicles::new().await;
    let send = |body: &Value| {
        api.post(FULL, Req::new("POST", "/vehicles").header("Idempotency-Key", "fix-and-retry").json(body))
    };
    let mut broken = truck(50);
    broken["year"] = json!(1800);
    assert_eq!(send(&broken).await.status(), 422);
    let fixed = send(&truck(50)).await;
    assert_eq!(fixed.status(), 201, "{:?}", fixed.body());
    assert!(header(&fixed, "idempotent-replayed").is_none(), "a new vehicle, not a replay of the 422");
    assert_eq!(api.stored_ids().await.len(), 1);
}

#[tokio::test]
async fn a_retry_from_the_rotated_twin_of_the_key_replays_the_first_answer() {
    let api = Vehicles::new().await;
    let request = || Req::new("POST", "/vehicles").header("Idempotency-Key", "device-7").json(&truck(51));
    let first = create_vehicle::handler(
        &api.create,
        request().build(Some(&api.stack.key_context_of("key_beforerotation000000", FULL))),
    )
    .await
    .unwrap();
    assert_eq!(first.status(), 201);
    // The device's key was rotated between its try and its retry: records are per
    // tenant and route, not per key, so the twin gets the same answer.
    let retry = create_vehicle::handler(
        &api.create,
        request().build(Some(&api.stack.key_context_of("key_afterrotation0000000", FULL))),
    )
    .await
    .unwrap();
    assert_eq!(header(&retry, "idempotent-replayed"), Some("true"));
    assert_eq!(body_json(&retry)["id"], body_json(&first)["id"]);
    assert_eq!(api.stored_ids().await.len(), 1);
}

#[tokio::test]
async fn an_idempotency_key_is_forgotten_after_24_hours() {
    let api = Vehicles::new().await;
    let send =
        |body: &Value| api.post(FULL, Req::new("POST", "/vehicles").header("Idempotency-Key", "day-old").json(body));
    assert_eq!(send(&truck(52)).await.status(), 201);
    assert_eq!(problem_code(&send(&truck(53)).await), "idempotency_key_reused", "within 24 h the key is bound");
    // Given: the record as it is a day later (DynamoDB's TTL deletes lazily, so it may
    // still be there; the emulator never deletes it): its expiry has passed.
    let day_ago = fleetgate_api::Timestamp::now().minus(time::Duration::hours(24)).unix_seconds();
    api.stack
        .client
        .update_item()
        .table_name(&api.stack.tables.fleet)
        .key("pk", serde_dynamo::to_attribute_value(&api.stack.tenant).unwrap())
        .key("sk", serde_dynamo::to_attribute_value("idem#POST /vehicles#day-old").unwrap())
        .update_expression("SET expires_at_epoch = :past")
        .expression_attribute_values(":past", serde_dynamo::to_attribute_value(day_ago).unwrap())
        .send()
        .await
        .unwrap();
    // Then the key is free: another body under it is a new request, not a conflict.
    let reused = send(&truck(53)).await;
    assert_eq!(reused.status(), 201, "{:?}", reused.body());
    assert!(header(&reused, "idempotent-replayed").is_none());
    assert_eq!(api.stored_ids().await.len(), 2);
}
