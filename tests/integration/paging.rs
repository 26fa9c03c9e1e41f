//! Every list on an exact multiple of its page size: the last full page says it
//! is the last (`next_cursor` null), so no client makes a pointless extra request
//! for an empty page, and nothing is lost or repeated. One helper for all lists.

use serde_json::json;

use crate::helpers::{Req, TestStack, body_json, page_of, walk_pages};
use crate::inspections::{Inspections, inspection};
use crate::vehicles::{Vehicles, truck};

const READ_ONLY: &str = "vehicles:read inspections:read";

#[tokio::test]
async fn vehicles_and_inspections_end_exactly_on_a_full_page() {
    let vehicles = Vehicles::on(TestStack::new().await);
    for n in 0..10 {
        assert_eq!(vehicles.create(&truck(300 + n)).await.status(), 201);
    }
    let (ids, sizes) = vehicles.walk(&[], 5).await;
    assert_eq!((ids.len(), sizes), (10, vec![5, 5]));

    let inspections = Inspections::on(TestStack::new().await);
    inspections.pretrip().await;
    let vehicle = inspections.vehicle(1).await;
    for n in 0..6 {
        let created = inspections.post(&inspection(&vehicle, &format!("2026-11-01T08:0{n}:00Z"), "pass")).await;
        assert_eq!(created.status(), 201);
    }
    for filters in [&[][..], &[("vehicle_id", vehicle.as_str())], &[("outcome", "pass")]] {
        let (ids, sizes) = inspections.walk(filters, 3).await;
        assert_eq!((ids.len(), sizes), (6, vec![3, 3]), "{filters:?}");
    }

    let templates_page = |cursor: Option<String>| {
        let inspections = &inspections;
        async move {
            let mut req = Req::new("GET", "/inspection-templates").query("limit", "1");
            if let Some(cursor) = cursor {
                req = req.query("cursor", &cursor);
            }
            let req = req.build(Some(&inspections.stack.key_context(READ_ONLY)));
            let response = list_inspection_templates::handler(&inspections.templates, req).await.unwrap();
            page_of(&body_json(&response), "data", "id")
        }
    };
    let (ids, sizes) = walk_pages(templates_page).await;
    assert_eq!((ids, sizes), (vec!["tpl_pretrip".to_owned()], vec![1]));
}

#[tokio::test]
async fn admin_lists_end_exactly_on_a_full_page() {
    let stack = TestStack::new().await;
    for _ in 0..4 {
        stack.create_key(&["vehicles:read"]).await;
    }
    let (keys, sizes) = stack.walk_admin_list(json!({"action": "list_keys", "limit": 2}), "data", "key_id").await;
    assert_eq!((keys.len(), sizes), (4, vec![2, 2]));
    // Four create_key and two list_keys records so far (each record has its own request
    // id): newest first in pages of 3. Each list_audit appends its own record after its
    // read, at the head, ahead of the walk.
    let (records, sizes) =
        stack.walk_admin_list(json!({"action": "list_audit", "limit": 3}), "data", "request_id").await;
    assert_eq!((records.len(), sizes), (6, vec![3, 3]));
}
