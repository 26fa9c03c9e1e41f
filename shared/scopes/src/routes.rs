//! The route table: the single definition of every public route, the function
//! (binary under `functions/`) that serves it, and the scope it requires.
//!
//! The SAM template, the `cargo lambda watch` router and the README table are
//! tested against this table (see `tests/integration/route_table.rs`).

use crate::Scope;

/// One public route.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Route {
    pub method: &'static str,
    /// API Gateway path template, e.g. `/vehicles/{id}`.
    pub path: &'static str,
    /// The function crate (and binary) under `functions/` that serves it.
    pub function: &'static str,
    /// `None`: any valid key may call it.
    pub required_scope: Option<Scope>,
}

impl Route {
    /// `GET /vehicles`, as used in messages.
    pub fn describe(&self) -> String {
        format!("{} {}", self.method, self.path)
    }
}

const fn route(method: &'static str, path: &'static str, function: &'static str, scope: Option<Scope>) -> Route {
    Route { method, path, function, required_scope: scope }
}

pub const LIST_VEHICLES: Route = route("GET", "/vehicles", "list-vehicles", Some(Scope::VehiclesRead));
pub const CREATE_VEHICLE: Route = route("POST", "/vehicles", "create-vehicle", Some(Scope::VehiclesWrite));
pub const GET_VEHICLE: Route = route("GET", "/vehicles/{id}", "get-vehicle", Some(Scope::VehiclesRead));
pub const UPDATE_VEHICLE: Route = route("PUT", "/vehicles/{id}", "update-vehicle", Some(Scope::VehiclesWrite));
pub const PATCH_VEHICLE: Route = route("PATCH", "/vehicles/{id}", "patch-vehicle", Some(Scope::VehiclesWrite));
pub const LIST_INSPECTION_TEMPLATES: Route =
    route("GET", "/inspection-templates", "list-inspection-templates", Some(Scope::InspectionsRead));
pub const LIST_INSPECTIONS: Route = route("GET", "/inspections", "list-inspections", Some(Scope::InspectionsRead));
pub const CREATE_INSPECTION: Route = route("POST", "/inspections", "create-inspection", Some(Scope::InspectionsWrite));
pub const GET_INSPECTION: Route = route("GET", "/inspections/{id}", "get-inspection", Some(Scope::InspectionsRead));
pub const WHOAMI: Route = route("GET", "/me", "whoami", None);
const WEBHOOKS: Option<Scope> = Some(Scope::WebhooksManage);
pub const CREATE_WEBHOOK: Route = route("POST", "/webhooks", "create-webhook", WEBHOOKS);
pub const LIST_WEBHOOKS: Route = route("GET", "/webhooks", "list-webhooks", WEBHOOKS);
pub const GET_WEBHOOK: Route = route("GET", "/webhooks/{id}", "get-webhook", WEBHOOKS);
pub const UPDATE_WEBHOOK: Route = route("PUT", "/webhooks/{id}", "update-webhook", WEBHOOKS);
pub const DELETE_WEBHOOK: Route = route("DELETE", "/webhooks/{id}", "delete-webhook", WEBHOOKS);
pub const ROTATE_WEBHOOK_SECRET: Route =
    route("POST", "/webhooks/{id}/rotate-secret", "rotate-webhook-secret", WEBHOOKS);
pub const TEST_WEBHOOK: Route = route("POST", "/webhooks/{id}/test", "test-webhook", WEBHOOKS);
pub const LIST_WEBHOOK_DELIVERIES: Route =
    route("GET", "/webhooks/{id}/deliveries", "list-webhook-deliveries", WEBHOOKS);

/// Every public route, in the order of SPEC §2, then the webhooks of §11.
pub const ROUTES: [Route; 18] = [
    LIST_VEHICLES,
    CREATE_VEHICLE,
    GET_VEHICLE,
    UPDATE_VEHICLE,
    PATCH_VEHICLE,
    LIST_INSPECTION_TEMPLATES,
    LIST_INSPECTIONS,
    CREATE_INSPECTION,
    GET_INSPECTION,
    WHOAMI,
    CREATE_WEBHOOK,
    LIST_WEBHOOKS,
    GET_WEBHOOK,
    UPDATE_WEBHOOK,
    DELETE_WEBHOOK,
    ROTATE_WEBHOOK_SECRET,
    TEST_WEBHOOK,
    LIST_WEBHOOK_DELIVERIES,
];

/// The route a function serves, by its binary name.
pub fn by_function(function: &str) -> Option<&'static Route> {
    ROUTES.iter().find(|route| route.function == function)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn every_route_is_unique_by_method_and_path_and_by_function() {
        let by_endpoint: HashSet<_> = ROUTES.iter().map(|r| (r.method, r.path)).collect();
        let by_function: HashSet<_> = ROUTES.iter().map(|r| r.function).collect();
        assert_eq!(by_endpoint.len(), ROUTES.len());
        assert_eq!(by_function.len(), ROUTES.len());
    }

    #[test]
    fn every_required_scope_is_active_and_reads_are_read_scopes() {
        for route in ROUTES {
            if let Some(scope) = route.required_scope {
                assert_eq!(scope.as_str().parse::<Scope>(), Ok(scope));
                // A GET never needs a write scope: read-only keys must be able to read everything.
                if route.method == "GET" {
                    assert!(scope.implies().is_none(), "{} needs {scope}", route.describe());
                }
            }
        }
    }

    #[test]
    fn only_me_is_open_to_any_key() {
        let open: Vec<_> = ROUTES.iter().filter(|r| r.required_scope.is_none()).map(|r| r.path).collect();
        assert_eq!(open, ["/me"]);
    }

    #[test]
    fn functions_are_found_by_name() {
        assert_eq!(by_function("create-vehicle"), Some(&CREATE_VEHICLE));
        assert_eq!(by_function("authorizer"), None);
    }
}
