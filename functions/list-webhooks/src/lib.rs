//! `GET /webhooks`: the caller's webhook endpoints, oldest first, paged (never
//! their secrets: the store does not even read them).

use lambda_http::{Body, Error, Request, Response};

use fleetgate_api::ApiError;
use fleetgate_api::cursor_keys::CursorKeys;
use fleetgate_api::http::{Call, Gate, serve};
use fleetgate_api::input::query_params;
use fleetgate_api::list::query_identity;
use fleetgate_scopes::routes;
use fleetgate_webhooks::store::EndpointStore;

/// What the function keeps across invocations.
pub struct State {
    pub gate: Gate,
    pub endpoints: EndpointStore,
    pub cursors: CursorKeys,
}

impl State {
    pub async fn from_env() -> Result<State, Error> {
        let client = fleetgate_api::dynamo::client();
        Ok(State {
            gate: Gate::from_env(&client, &routes::LIST_WEBHOOKS)?,
            endpoints: EndpointStore::from_env(client)?,
            cursors: CursorKeys::from_env()?,
        })
    }
}

#[tracing::instrument(name = "GET /webhooks", skip_all)]
pub async fn handler(state: &State, req: Request) -> Result<Response<Body>, Error> {
    Ok(serve(&state.gate, &routes::LIST_WEBHOOKS, req, |call, req| list_webhooks(state, call, req)).await)
}

async fn list_webhooks(state: &State, call: Call, req: Request) -> Result<Response<Body>, ApiError> {
    let params = query_params(&req, &["limit", "cursor"])?;
    let tenant = &call.auth.tenant_id;
    let query = query_identity(tenant.as_str(), &call.route.describe(), &[]);
    let page = state.cursors.page_request(&params, &query).await?;
    let (data, next) = state.endpoints.list(tenant, page.limit, page.start.as_ref()).await?;
    state.cursors.page_response(&query, data, next).await
}
