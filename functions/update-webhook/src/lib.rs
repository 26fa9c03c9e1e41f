//! `PUT /webhooks/{id}`: replaces an endpoint's writable fields, all of them
//! (`url`, `events`, `description`, `status`; a GET body can be sent back as
//! is). Honours `If-Match` (412 when stale); without it the last write wins.
//! Re-enabling an endpoint restarts its failure clock; its secret is untouched.

use http::StatusCode;
use lambda_http::{Body, Error, Request, Response};

use fleetgate_api::http::{Call, Gate, serve};
use fleetgate_api::if_match::request_if_match;
use fleetgate_api::input::json_body;
use fleetgate_api::{ApiError, Timestamp};
use fleetgate_scopes::routes;
use fleetgate_webhooks::api::{check_subscription, endpoint_response, find_endpoint, path_endpoint_id};
use fleetgate_webhooks::endpoints::EndpointInput;
use fleetgate_webhooks::store::{EndpointStore, EndpointWriteError};
use fleetgate_webhooks::target_url::UrlPolicy;

/// How often a write without `If-Match` re-reads after losing a race (to the
/// deliverer disabling the endpoint, or another PUT).
const CONFLICT_RETRIES: usize = 3;

/// What the function keeps across invocations.
pub struct State {
    pub gate: Gate,
    pub endpoints: EndpointStore,
    pub urls: UrlPolicy,
}

impl State {
    pub async fn from_env() -> Result<State, Error> {
        let client = fleetgate_api::dynamo::client();
        Ok(State {
            gate: Gate::from_env(&client, &routes::UPDATE_WEBHOOK)?,
            endpoints: EndpointStore::from_env(client)?,
            urls: UrlPolicy::from_env(),
        })
    }
}

#[tracing::instrument(name = "PUT /webhooks/{id}", skip_all)]
pub async fn handler(state: &State, req: Request) -> Result<Response<Body>, Error> {
    Ok(serve(&state.gate, &routes::UPDATE_WEBHOOK, req, |call, req| update_webhook(state, call, req)).await)
}

async fn update_webhook(state: &State, call: Call, req: Request) -> Result<Response<Body>, ApiError> {
    let id = path_endpoint_id(&req)?;
    let if_match = request_if_match(req.headers())?;
    let body = json_body(&req)?;
    let audit = state.gate.audit_success(&call, &id)?;
    for _ in 0..=CONFLICT_RETRIES {
        let current = find_endpoint(&state.endpoints, &call, &id).await?;
        if if_match.as_ref().is_some_and(|tags| !tags.matches(current.version)) {
            return Err(ApiError::PreconditionFailed);
        }
        let input = EndpointInput::parse_replacement(body.clone(), state.urls, &current)?;
        check_subscription(&call, &input.events)?;
        let next = current.replaced(input, Timestamp::now());
        match state.endpoints.replace(&call.auth.tenant_id, &next, current.version, vec![audit.clone()]).await {
            Ok(()) => {
                tracing::info!(endpoint_id = %next.id, version = next.version, "webhook endpoint replaced");
                return endpoint_response(StatusCode::OK, &next);
            }
            // Changed since read: re-read, then If-Match decides (412) or the PUT applies again.
            Err(EndpointWriteError::Stale) => continue,
            Err(err) => return Err(err.into()),
        }
    }
    Err(ApiError::ServiceUnavailable(fleetgate_api::dynamo::DbError::Unavailable(
        "webhook endpoint kept changing during the update".into(),
    )))
}
