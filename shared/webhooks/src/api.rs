//! What the `/webhooks` route functions share: the endpoint id of a path, an
//! endpoint as an answer (with its `ETag`), the secret shown once, the rule for
//! what a key may subscribe to, and the store's refusals as problems.

use http::StatusCode;
use lambda_http::{Body, Request, RequestExt, Response};
use serde::Serialize;

use fleetgate_api::http::{Call, versioned_response};
use fleetgate_api::{ApiError, Timestamp, ids};
use fleetgate_scopes::InsufficientScope;

use crate::endpoints::{Endpoint, ID_PREFIX};
use crate::events::EventType;
use crate::store::{EndpointStore, EndpointWriteError};

const RESOURCE: &str = "webhook endpoint";

/// The `{id}` of a `/webhooks/{id}…` path; a malformed one is a 404 like an
/// unknown one (checked before anything is read).
pub fn path_endpoint_id(req: &Request) -> Result<String, ApiError> {
    req.path_parameters_ref()
        .and_then(|params| params.first("id"))
        .filter(|id| ids::is_sortable_id(ID_PREFIX, id))
        .map(str::to_owned)
        .ok_or(ApiError::NotFound { resource: RESOURCE })
}

/// The caller's endpoint `id`, as the API shows it; another tenant's is not found.
pub async fn find_endpoint(store: &EndpointStore, call: &Call, id: &str) -> Result<Endpoint, ApiError> {
    store.find(&call.auth.tenant_id, id).await?.ok_or(ApiError::NotFound { resource: RESOURCE })
}

/// One endpoint as an answer, with its `ETag`.
pub fn endpoint_response(status: StatusCode, endpoint: &Endpoint) -> Result<Response<Body>, ApiError> {
    versioned_response(status, endpoint, endpoint.version)
}

/// An endpoint with its signing secret: the answer of a creation or a rotation,
/// the only two times the secret is ever shown.
#[derive(Serialize)]
pub struct WithSecret<'a> {
    #[serde(flatten)]
    pub endpoint: &'a Endpoint,
    /// `whsec_…`: verifies the `webhook-signature` of every delivery.
    pub secret: String,
    /// After a rotation: until when deliveries are also signed with the secret it replaced.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous_secret_expires_at: Option<Timestamp>,
}

/// A key may subscribe only to events whose data its own effective scopes could
/// read: `webhooks:manage` is never a way around a scope. Otherwise a 403
/// `insufficient_scope` naming the scope and the event that needs it.
pub fn check_subscription(call: &Call, events: &[EventType]) -> Result<(), ApiError> {
    let auth = &call.auth;
    let Some(required) = EventType::missing_scope(events, &auth.effective) else {
        return Ok(());
    };
    let event = events.iter().find(|event| event.required_scope() == Some(required)).copied();
    let what = event.map_or_else(|| "this subscription".to_owned(), |event| format!("subscribing to {event}"));
    Err(InsufficientScope { required, route: what, granted: auth.granted.clone(), effective: auth.effective.clone() }
        .into())
}

impl From<EndpointWriteError> for ApiError {
    fn from(err: EndpointWriteError) -> ApiError {
        match err {
            EndpointWriteError::LimitReached(max) => ApiError::Conflict {
                code: "webhook_endpoint_limit",
                detail: format!(
                    "This fleet already has its maximum of {max} webhook endpoints; delete one (DELETE /webhooks/{{id}}) \
                     or subscribe an existing one to more events."
                ),
            },
            EndpointWriteError::NotFound => ApiError::NotFound { resource: RESOURCE },
            EndpointWriteError::Stale => ApiError::PreconditionFailed,
            EndpointWriteError::Db(db) => ApiError::from(db),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fleetgate_scopes::{AuthContext, Environment, ScopeSet, TenantId, routes};

    fn call(scopes: &[&str]) -> Call {
        let auth = AuthContext::new(
            TenantId::parse("demo").unwrap(),
            "key_abc".into(),
            "hooks".into(),
            ScopeSet::parse_granted(scopes).unwrap(),
            Environment::Test,
            None,
        );
        Call { auth, request_id: "r-1".into(), route: &routes::CREATE_WEBHOOK, month_used: None }
    }

    #[test]
    fn a_subscription_needs_the_scopes_that_read_its_events() {
        let manage_only = call(&["webhooks:manage"]);
        let err = check_subscription(&manage_only, &[EventType::InspectionFailed]).unwrap_err();
        let problem = serde_json::to_value(err.to_problem("r-1")).unwrap();
        assert_eq!(problem["code"], "insufficient_scope");
        assert_eq!(problem["required_scopes"], serde_json::json!(["inspections:read"]));
        assert_eq!(problem["granted_scopes"], serde_json::json!(["webhooks:manage"]));
        assert!(problem["detail"].as_str().unwrap().contains("subscribing to inspection.failed"), "{problem}");

        // A write scope implies its read scope; the first missing one is named.
        let writer = call(&["webhooks:manage", "inspections:write"]);
        check_subscription(&writer, &[EventType::InspectionCreated, EventType::InspectionFailed]).unwrap();
        let err = check_subscription(&writer, &[EventType::InspectionCreated, EventType::VehicleUpdated]).unwrap_err();
        assert!(err.to_string().contains("vehicles:read"), "{err}");
    }

    #[test]
    fn only_well_formed_ids_are_looked_up() {
        let request = |id: &str| {
            Request::default().with_path_parameters(std::collections::HashMap::from([("id".to_owned(), id.to_owned())]))
        };
        let id = ids::new_sortable_id(ID_PREFIX);
        assert_eq!(path_endpoint_id(&request(&id)).unwrap(), id);
        for bad in ["", "whk_", "veh_01J00000000000000000000000", "whk_../../x"] {
            assert_eq!(path_endpoint_id(&request(bad)).unwrap_err().code(), "not_found", "{bad}");
        }
    }
}
