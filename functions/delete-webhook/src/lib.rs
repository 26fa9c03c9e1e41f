//! `DELETE /webhooks/{id}`: removes an endpoint (204) and gives its place back
//! under the fleet's maximum. Deliveries already queued for it are dropped, not
//! sent; its attempt log expires on its own (30 days).

use http::StatusCode;
use lambda_http::{Body, Error, Request, Response};

use fleetgate_api::ApiError;
use fleetgate_api::http::{Call, Gate, serve};
use fleetgate_scopes::routes;
use fleetgate_webhooks::api::path_endpoint_id;
use fleetgate_webhooks::store::EndpointStore;

/// What the function keeps across invocations.
pub struct State {
    pub gate: Gate,
    pub endpoints: EndpointStore,
}

impl State {
    pub async fn from_env() -> Result<State, Error> {
        let client = fleetgate_api::dynamo::client();
        Ok(State {
            gate: Gate::from_env(&client, &routes::DELETE_WEBHOOK)?,
            endpoints: EndpointStore::from_env(client)?,
        })
    }
}

#[tracing::instrument(name = "DELETE /webhooks/{id}", skip_all)]
pub async fn handler(state: &State, req: Request) -> Result<Response<Body>, Error> {
    Ok(serve(&state.gate, &routes::DELETE_WEBHOOK, req, |call, req| delete_webhook(state, call, req)).await)
}

async fn delete_webhook(state: &State, call: Call, req: Request) -> Result<Response<Body>, ApiError> {
    let id = path_endpoint_id(&req)?;
    let audit = state.gate.audit_success(&call, &id)?;
    state.endpoints.delete(&call.auth.tenant_id, &id, vec![audit]).await?;
    tracing::info!(endpoint_id = %id, "webhook endpoint deleted");
    Response::builder().status(StatusCode::NO_CONTENT).body(Body::Empty).map_err(|e| ApiError::Internal(Box::new(e)))
}
