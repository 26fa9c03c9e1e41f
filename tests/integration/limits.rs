//! Requests at and past every size limit: the largest accepted ones are stored
//! whole (no DynamoDB item-size 500), absurd ones are refused and change nothing.

use serde_json::{Value, json};

use crate::helpers::{Req, TestStack, body_json};
use crate::inspections::Inspections;

const DEVICE: &str = "vehicles:read inspections:write";

/// A template with the most items allowed, each with the longest label and category.
fn largest_template() -> Value {
    let items: Vec<Value> = (0..fleetgate_fleet::templates::MAX_ITEMS)
        .map(|n| json!({"id": format!("item-{n:03}"), "label": "é".repeat(200), "category": "c".repeat(50)}))
        .collect();
    json!({"id": "tpl_big", "name": "n".repeat(100), "description": "d".repeat(1000), "items": items})
}

/// A submission against `largest_template`: every answer a failure with a note, as
/// long as the 64 KiB body cap allows (the stored item carries each note twice,
/// in result and defect, plus the labels: about 200 KB).
fn largest_submission(vehicle_id: &str, performed_at: &str) -> Value {
    let note_chars = 240;
    let results: Vec<Value> = (0..200)
        .map(|n| json!({"item_id": format!("item-{n:03}"), "status": "fail", "note": "ü".repeat(note_chars / 2)}))
        .collect();
    let body = json!({"vehicle_id": vehicle_id, "template_id": "tpl_big", "type": "pre_trip", "inspector": "i".repeat(100),
                      "performed_at": performed_at, "odometer_km": 1, "location": "l".repeat(200),
                      "signature": "s".repeat(200), "results": results});
    assert!(body.to_string().len() <= fleetgate_api::input::MAX_BODY_BYTES, "{}", body.to_string().len());
    body
}

#[tokio::test]
async fn the_largest_template_and_the_largest_submission_are_stored_whole() {
    let api = Inspections::on(TestStack::new().await);
    let put = api
        .stack
        .provision(
            json!({"action": "put_inspection_template", "tenant_id": api.stack.tenant, "template": largest_template()}),
        )
        .await
        .expect("the largest valid template fits one DynamoDB item");
    assert_eq!(put["template"]["items"].as_array().unwrap().len(), 200);

    let vehicle_id = api.vehicle(1).await;
    let body = largest_submission(&vehicle_id, "2026-11-01T08:00:00Z");
    let created = api.post(&body).await;
    assert_eq!(created.status(), 201, "{:?}", created.body());
    let id = body_json(&created)["id"].as_str().unwrap().to_owned();
    let req = Req::with_id("GET", "/inspections", &id).build(Some(&api.stack.key_context("inspections:read")));
    let fetched = get_inspection::handler(&api.get, req).await.unwrap();
    assert_eq!(body_json(&fetched)["defects"].as_array().unwrap().len(), 200);
}

#[tokio::test]
async fn absurd_admin_requests_are_refused_and_change_nothing() {
    let stack = TestStack::new().await;
    let tenant = stack.tenant.as_str();
    let mut template = largest_template();
    template["items"] = json!((0..10_000).map(|n| json!({"id": format!("i{n}"), "label": "x"})).collect::<Vec<_>>());
    let refusals = [
        (json!({"action": "put_inspection_template", "tenant_id": tenant, "template": template}), "invalid_template"),
        (
            json!({"action": "put_inspection_template", "tenant_id": tenant,
                   "template": {"id": "t".repeat(10_000), "name": "x", "items": [{"id": "a", "label": "A"}]}}),
            "invalid_template",
        ),
        (
            json!({"action": "create_key", "tenant_id": "t".repeat(10_000), "name": "k", "preset": "read-only"}),
            "invalid_tenant_id",
        ),
        (
            json!({"action": "create_key", "tenant_id": tenant, "name": "k", "scopes": vec!["vehicles:read"; 10_000]}),
            "invalid_field",
        ),
        (
            json!({"action": "create_key", "tenant_id": tenant, "name": "k".repeat(1_000_000), "preset": "read-only"}),
            "invalid_field",
        ),
        (
            json!({"action": "create_key", "tenant_id": tenant, "name": "k", "preset": "read-only", "expires_in_days": 1_000_000}),
            "invalid_field",
        ),
        (json!({"action": "list_audit", "tenant_id": tenant, "limit": 1_000_000_000}), "invalid_field"),
        (json!({"action": "list_keys", "tenant_id": tenant, "cursor": "c".repeat(100_000)}), "invalid_field"),
        (json!({"action": "list_keys", "tenant_id": tenant, "limit": 10_000}), "invalid_field"),
        (json!({"action": "revoke_key", "tenant_id": tenant, "key_id": "k".repeat(10_000)}), "invalid_field"),
    ];
    for (event, code) in refusals {
        let err = stack.provision(event.clone()).await.expect_err("refused");
        assert_eq!(err.code(), code, "{err}");
        assert!(
            err.to_string().len() < 500,
            "the error does not echo the absurd input: {} chars",
            err.to_string().len()
        );
    }
    // Nothing was created; the only records are of reads, refused or not.
    let listed =
        stack.provision(json!({"action": "list_keys", "tenant_id": tenant, "include_revoked": true})).await.unwrap();
    assert_eq!(listed["data"], json!([]));
    let api = Inspections::on(stack);
    let templates = list_inspection_templates::handler(
        &api.templates,
        Req::new("GET", "/inspection-templates").build(Some(&api.stack.key_context(DEVICE))),
    )
    .await
    .unwrap();
    assert_eq!(body_json(&templates)["data"], json!([]));
}

#[tokio::test]
async fn lists_past_dynamodbs_1_mb_read_limit_lose_no_item() {
    let api = Inspections::on(TestStack::new().await);
    api.stack
        .provision(
            json!({"action": "put_inspection_template", "tenant_id": api.stack.tenant, "template": largest_template()}),
        )
        .await
        .unwrap();
    let vehicle_id = api.vehicle(2).await;
    let mut submitted = Vec::new();
    for n in 0..12 {
        let created = api.post(&largest_submission(&vehicle_id, &format!("2026-11-01T08:{n:02}:00Z"))).await;
        assert_eq!(created.status(), 201, "{:?}", created.body());
        submitted.push(body_json(&created)["id"].as_str().unwrap().to_owned());
    }
    submitted.reverse(); // lists are newest first

    // Given: one read of these items stops at 1 MB, short of them all, with a LastEvaluatedKey
    // (DynamoDB does this; so does the emulator). Without this the test could not fail.
    let raw = api
        .stack
        .client
        .query()
        .table_name(&api.stack.tables.fleet)
        .index_name("gsi2")
        .key_condition_expression("gsi2pk = :v")
        .expression_attribute_values(
            ":v",
            serde_dynamo::to_attribute_value(format!("{}#inspections#vehicle#{vehicle_id}", api.stack.tenant)).unwrap(),
        )
        .limit(26)
        .send()
        .await
        .unwrap();
    assert!(raw.items().len() < 12 && raw.last_evaluated_key().is_some(), "{} items", raw.items().len());

    // One page holds them all and says it is the last.
    let page = api.list(&[("vehicle_id", &vehicle_id), ("limit", "25")]).await;
    let body = body_json(&page);
    let ids: Vec<&str> = body["data"].as_array().unwrap().iter().map(|i| i["id"].as_str().unwrap()).collect();
    assert_eq!(ids, submitted);
    assert_eq!(body["next_cursor"], Value::Null);
    // Pages of 5 walk them all: 5, 5, 2.
    let (walked, sizes) = api.walk(&[("vehicle_id", vehicle_id.as_str())], 5).await;
    assert_eq!((sizes, walked), (vec![5, 5, 2], submitted));
}
