//! Every route's real handler refuses a key that lacks exactly its required scope
//! (and holds every other scope): the route table's promise, checked per handler
//! rather than against the table itself.

use lambda_http::{Body, Response};
use serde_json::json;

use fleetgate_scopes::{ROUTES, Route, Scope};

use crate::helpers::{Req, TestStack, body_json, header};
use crate::inspections::{Inspections, inspection};
use crate::vehicles::{Vehicles, truck};
use crate::webhook_routes::{Webhooks, on_id};

/// Every active scope except `missing` and those that imply it (write implies read).
fn all_but(missing: Scope) -> String {
    Scope::ALL
        .into_iter()
        .filter(|scope| *scope != missing && scope.implies() != Some(missing))
        .map(Scope::as_str)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Calls `route`'s own handler with a valid request and a key holding `scopes`.
async fn call(
    route: &Route,
    scopes: &str,
    vehicles: &Vehicles,
    inspections: &Inspections,
    webhooks: &Webhooks,
) -> Response<Body> {
    let context = |stack: &TestStack| stack.key_context(scopes);
    let unknown_webhook = "whk_00000000000000000000000000";
    // The webhook routes by the name `Webhooks::call` knows them by. A create with an
    // empty body: with only webhooks:manage every subscription would be refused (403) for
    // want of a read scope, so the request that gets past the route's check is a 422.
    let webhook = match route.function {
        "create-webhook" => Some(("create", Req::new("POST", "/webhooks").json(&json!({})))),
        "list-webhooks" => Some(("list", Req::new("GET", "/webhooks"))),
        "get-webhook" => Some(("get", on_id("GET", unknown_webhook, ""))),
        "update-webhook" => Some(("update", on_id("PUT", unknown_webhook, "").json(&json!({})))),
        "delete-webhook" => Some(("delete", on_id("DELETE", unknown_webhook, ""))),
        "rotate-webhook-secret" => Some(("rotate", on_id("POST", unknown_webhook, "/rotate-secret"))),
        "test-webhook" => Some(("test", on_id("POST", unknown_webhook, "/test"))),
        "list-webhook-deliveries" => Some(("deliveries", on_id("GET", unknown_webhook, "/deliveries"))),
        _ => None,
    };
    if let Some((name, req)) = webhook {
        return webhooks.call(scopes, req, name).await;
    }
    match route.function {
        "list-vehicles" => {
            list_vehicles::handler(&vehicles.list, Req::new("GET", "/vehicles").build(Some(&context(&vehicles.stack))))
                .await
        }
        "create-vehicle" => {
            let req = Req::new("POST", "/vehicles").json(&truck(40)).build(Some(&context(&vehicles.stack)));
            create_vehicle::handler(&vehicles.create, req).await
        }
        "get-vehicle" => {
            let req = Req::with_id("GET", "/vehicles", "veh_00000000000000000000000000");
            get_vehicle::handler(&vehicles.get, req.build(Some(&context(&vehicles.stack)))).await
        }
        "update-vehicle" => {
            let req = Req::with_id("PUT", "/vehicles", "veh_00000000000000000000000000").json(&truck(41));
            update_vehicle::handler(&vehicles.update, req.build(Some(&context(&vehicles.stack)))).await
        }
        "patch-vehicle" => {
            let req = Req::with_id("PATCH", "/vehicles", "veh_00000000000000000000000000").json(&json!({"name": "x"}));
            patch_vehicle::handler(&vehicles.patch, req.build(Some(&context(&vehicles.stack)))).await
        }
        "list-inspection-templates" => {
            let req = Req::new("GET", "/inspection-templates").build(Some(&context(&inspections.stack)));
            list_inspection_templates::handler(&inspections.templates, req).await
        }
        "list-inspections" => {
            let req = Req::new("GET", "/inspections").build(Some(&context(&inspections.stack)));
            list_inspections::handler(&inspections.list, req).await
        }
        "create-inspection" => {
            let body = inspection("veh_00000000000000000000000000", "2026-11-01T08:00:00Z", "pass");
            let req = Req::new("POST", "/inspections").json(&body).build(Some(&context(&inspections.stack)));
            create_inspection::handler(&inspections.create, req).await
        }
        "get-inspection" => {
            let req = Req::with_id("GET", "/inspections", "insp_00000000000000000000000000");
            get_inspection::handler(&inspections.get, req.build(Some(&context(&inspections.stack)))).await
        }
        "whoami" => {
            let state = whoami::State { gate: Default::default() };
            whoami::handler(&state, Req::new("GET", "/me").build(Some(&context(&vehicles.stack)))).await
        }
        other => panic!("route table names {other}, which this test does not know: add it here"),
    }
    .unwrap()
}

#[tokio::test]
async fn each_handler_refuses_a_key_lacking_exactly_its_routes_scope() {
    let vehicles = Vehicles::on(TestStack::new().await);
    let inspections = Inspections::on(TestStack::new().await);
    let webhooks = Webhooks::on(TestStack::new().await, 20);
    for route in ROUTES {
        let Some(required) = route.required_scope else {
            // `/me` needs no scope: a key with none at all... has at least one; the narrowest will do.
            let response = call(&route, "vehicles:read", &vehicles, &inspections, &webhooks).await;
            assert_eq!(response.status(), 200, "{}", route.describe());
            continue;
        };
        let response = call(&route, &all_but(required), &vehicles, &inspections, &webhooks).await;
        assert_eq!(response.status(), 403, "{}: {:?}", route.describe(), response.body());
        assert_eq!(body_json(&response)["required_scopes"], json!([required.as_str()]), "{}", route.describe());
        assert_eq!(header(&response, "x-accepted-scopes"), Some(required.as_str()), "{}", route.describe());
        // And with the scope the same request gets past the check (whatever it then answers).
        let allowed = call(&route, required.as_str(), &vehicles, &inspections, &webhooks).await;
        assert_ne!(allowed.status(), 403, "{} with {required}", route.describe());
    }
}
