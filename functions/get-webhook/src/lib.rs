//! `GET /webhooks/{id}`: one of the caller's webhook endpoints, with its `ETag`
//! (never its secret).

use http::StatusCode;
use lambda_http::{Body, Error, Request, Response};

use fleetgate_api::ApiError;
use fleetgate_api::http::{Call, Gate, serve};
use fleetgate_scopes::routes;
use fleetgate_webhooks::api::{endpoint_response, find_endpoint, path_endpoint_id};
use fleetgate_webhooks::store::EndpointStore;

/// What the function keeps across invocations.
pub struct State {
    pub gate: Gate,
    pub endpoints: EndpointStore,
}

impl State {
    pub async fn from_env() -> Result<State, Error> {
        let client = fleetgate_api::dynamo::client();
        Ok(State { gate: Gate::from_env(&client, &routes::GET_WEBHOOK)?, endpoints: EndpointStore::from_env(client)? })
    }
}

#[tracing::instrument(name = "GET /webhooks/{id}", skip_all)]
pub async fn handler(state: &State, req: Request) -> Result<Response<Body>, Error> {
    Ok(serve(&state.gate, &routes::GET_WEBHOOK, req, |call, req| get_webhook(state, call, req)).await)
}

async fn get_webhook(state: &State, call: Call, req: Request) -> Result<Response<Body>, ApiError> {
    let id = path_endpoint_id(&req)?;
    let endpoint = find_endpoint(&state.endpoints, &call, &id).await?;
    endpoint_response(StatusCode::OK, &endpoint)
}
