//! The events every write emits (SPEC §11), through the real handlers against the
//! emulator: each write and its outbox items are one transaction, `data` is the
//! resource exactly as the API answered it, a failed inspection is also
//! `inspection.failed` with its defects, and a refused write or an idempotent
//! replay emits nothing.

use serde_json::{Value, json};

use fleetgate_webhooks::events::{Event, EventType};

use crate::helpers::{Req, TestStack, body_json};
use crate::inspections::{Inspections, inspection};
use crate::vehicles::Vehicles;

/// The tenant's outbox as (type, data), oldest first.
async fn outbox(stack: &TestStack) -> Vec<(EventType, Value)> {
    let mut events: Vec<Event> = stack
        .fleet_items()
        .await
        .into_iter()
        .filter(|item| item["sk"].as_str().unwrap().starts_with("event#"))
        .map(|item| {
            let raw: std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue> =
                serde_dynamo::to_item(item).unwrap();
            Event::from_item(raw).expect("an outbox item reads as its event").1
        })
        .collect();
    // Ids sort by millisecond (`evt_` + 10 time characters); one write's events share
    // theirs, so within it the type decides (created before failed).
    events.sort_by(|a, b| (&a.id[..14], a.payload.event_type).cmp(&(&b.id[..14], b.payload.event_type)));
    events.into_iter().map(|event| (event.payload.event_type, event.payload.data)).collect()
}

fn truck() -> Value {
    json!({"vin": "1HGCM82633A004352", "name": "Truck 12", "make": "Volvo", "model": "FH16", "year": 2022})
}

#[tokio::test]
async fn vehicle_writes_emit_their_events_with_the_vehicle_as_answered_and_nothing_else() {
    let api = Vehicles::on(TestStack::new().await);
    let created =
        api.post("vehicles:write", Req::new("POST", "/vehicles").header("idempotency-key", "k1").json(&truck()));
    let created = created.await;
    assert_eq!(created.status(), 201);
    let vehicle = body_json(&created);
    assert_eq!(outbox(&api.stack).await, [(EventType::VehicleCreated, vehicle.clone())]);

    // A replay, a duplicate VIN and an invalid body emit nothing.
    let replay =
        api.post("vehicles:write", Req::new("POST", "/vehicles").header("idempotency-key", "k1").json(&truck()));
    assert_eq!(replay.await.status(), 201);
    assert_eq!(api.create(&truck()).await.status(), 409);
    assert_eq!(api.create(&json!({"vin": "short"})).await.status(), 422);
    assert_eq!(outbox(&api.stack).await.len(), 1);

    // PUT and PATCH: vehicle.updated with the new version, as answered.
    let id = vehicle["id"].as_str().unwrap();
    let mut replacement = vehicle.clone();
    replacement["odometer_km"] = json!(130_000);
    let put = body_json(&api.put(id, &replacement, Some("\"1\"")).await);
    let stale = api.put(id, &replacement, Some("\"1\"")).await;
    assert_eq!(stale.status(), 412);
    let patched = body_json(&api.patch(id, &json!({"status": "in_shop"}), None).await);
    assert_eq!(patched["version"], 3);
    assert_eq!(
        outbox(&api.stack).await,
        [(EventType::VehicleCreated, vehicle), (EventType::VehicleUpdated, put), (EventType::VehicleUpdated, patched)]
    );
}

#[tokio::test]
async fn a_failed_inspection_is_created_and_failed_with_its_defects_and_a_passed_one_only_created() {
    let api = Inspections::on(TestStack::new().await);
    api.pretrip().await;
    let vehicle = api.vehicle(1).await;
    let failed = api.post(&inspection(&vehicle, "2026-11-01T08:00:00Z", "fail")).await;
    assert_eq!(failed.status(), 201);
    let failed = body_json(&failed);
    assert_eq!(failed["defects"][0]["item_id"], "brakes");
    let passed = body_json(&api.post(&inspection(&vehicle, "2026-11-02T08:00:00Z", "pass")).await);
    assert_eq!(passed["outcome"], "pass");
    let refused = api.post(&inspection("veh_01J00000000000000000000000", "2026-11-02T08:00:00Z", "fail")).await;
    assert_eq!(refused.status(), 422);
    assert_eq!(
        outbox(&api.stack).await,
        [
            (EventType::InspectionCreated, failed.clone()),
            (EventType::InspectionFailed, failed),
            (EventType::InspectionCreated, passed)
        ]
    );
}
