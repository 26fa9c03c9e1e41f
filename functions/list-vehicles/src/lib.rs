//! `GET /vehicles`: the caller's vehicles in creation order, paged, optionally by `status`.

use http::StatusCode;
use lambda_http::{Body, Error, Request, Response};

use fleetgate_api::ApiError;
use fleetgate_api::cursor_keys::CursorKeys;
use fleetgate_api::http::{Call, Gate, json_response, serve};
use fleetgate_api::input::{invalid_parameter, query_params};
use fleetgate_api::list::{Page, query_identity};
use fleetgate_fleet::vehicles::{VehicleStatus, VehicleStore};
use fleetgate_scopes::routes;

/// What the function keeps across invocations.
pub struct State {
    pub gate: Gate,
    pub vehicles: VehicleStore,
    pub cursors: CursorKeys,
}

impl State {
    pub async fn from_env() -> Result<State, Error> {
        let client = fleetgate_api::dynamo::client();
        Ok(State {
            gate: Gate::from_env(&client, &routes::LIST_VEHICLES)?,
            vehicles: VehicleStore::from_env(client)?,
            cursors: CursorKeys::from_env()?,
        })
    }
}

#[tracing::instrument(name = "GET /vehicles", skip_all)]
pub async fn handler(state: &State, req: Request) -> Result<Response<Body>, Error> {
    Ok(serve(&state.gate, &routes::LIST_VEHICLES, req, |call, req| list_vehicles(state, call, req)).await)
}

async fn list_vehicles(state: &State, call: Call, req: Request) -> Result<Response<Body>, ApiError> {
    let params = query_params(&req, &["limit", "cursor", "status"])?;
    let status = match params.iter().find(|(name, _)| name == "status") {
        None => None,
        Some((_, value)) => Some(
            value
                .parse::<VehicleStatus>()
                .map_err(|rule| invalid_parameter("status", value, format!("status {rule}.")))?,
        ),
    };
    let tenant = &call.auth.tenant_id;
    let query =
        query_identity(tenant.as_str(), &call.route.describe(), &[("status", status.map(VehicleStatus::as_str))]);
    let page = state.cursors.page_request(&params, &query).await?;
    let (data, next) = state.vehicles.list(tenant, status, page.limit, page.start.as_ref()).await?;
    let signer = state.cursors.signer().await?;
    let next_cursor = next.map(|position| signer.encode(&query, &position));
    json_response(StatusCode::OK, &Page { data, next_cursor })
}
