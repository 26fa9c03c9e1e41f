//! `GET /webhooks/{id}/deliveries`: the endpoint's delivery attempts of the last
//! 30 days, newest first, paged: status, latency, the first 4 KiB of the answer,
//! and when the next attempt is due.

use lambda_http::{Body, Error, Request, Response};

use fleetgate_api::ApiError;
use fleetgate_api::cursor_keys::CursorKeys;
use fleetgate_api::http::{Call, Gate, serve};
use fleetgate_api::input::query_params;
use fleetgate_api::list::query_identity;
use fleetgate_scopes::routes;
use fleetgate_webhooks::api::{find_endpoint, path_endpoint_id};
use fleetgate_webhooks::deliveries::DeliveryLog;
use fleetgate_webhooks::store::EndpointStore;

/// What the function keeps across invocations.
pub struct State {
    pub gate: Gate,
    pub endpoints: EndpointStore,
    pub deliveries: DeliveryLog,
    pub cursors: CursorKeys,
}

impl State {
    pub async fn from_env() -> Result<State, Error> {
        let client = fleetgate_api::dynamo::client();
        Ok(State {
            gate: Gate::from_env(&client, &routes::LIST_WEBHOOK_DELIVERIES)?,
            endpoints: EndpointStore::from_env(client.clone())?,
            deliveries: DeliveryLog::from_env(client)?,
            cursors: CursorKeys::from_env()?,
        })
    }
}

#[tracing::instrument(name = "GET /webhooks/{id}/deliveries", skip_all)]
pub async fn handler(state: &State, req: Request) -> Result<Response<Body>, Error> {
    Ok(serve(&state.gate, &routes::LIST_WEBHOOK_DELIVERIES, req, |call, req| list_deliveries(state, call, req)).await)
}

async fn list_deliveries(state: &State, call: Call, req: Request) -> Result<Response<Body>, ApiError> {
    let id = path_endpoint_id(&req)?;
    let params = query_params(&req, &["limit", "cursor"])?;
    // The endpoint must be the caller's: another tenant's id is a 404, never an empty page.
    find_endpoint(&state.endpoints, &call, &id).await?;
    let tenant = &call.auth.tenant_id;
    let query = query_identity(tenant.as_str(), &call.route.describe(), &[("endpoint", Some(&id))]);
    let page = state.cursors.page_request(&params, &query).await?;
    let (data, next) = state.deliveries.list(tenant, &id, page.limit, page.start.as_ref()).await?;
    state.cursors.page_response(&query, data, next).await
}
