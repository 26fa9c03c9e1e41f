//! `GET /vehicles/{id}`: one vehicle of the caller's tenant, with its `ETag`.

use http::StatusCode;
use lambda_http::{Body, Error, Request, RequestExt, Response};

use fleetgate_api::ApiError;
use fleetgate_api::http::{Call, Gate, serve};
use fleetgate_fleet::vehicles::{VehicleStore, vehicle_response};
use fleetgate_scopes::routes;

/// What the function keeps across invocations.
pub struct State {
    pub gate: Gate,
    pub vehicles: VehicleStore,
}

impl State {
    pub async fn from_env() -> Result<State, Error> {
        let client = fleetgate_api::dynamo::client();
        Ok(State { gate: Gate::from_env(&client, &routes::GET_VEHICLE)?, vehicles: VehicleStore::from_env(client)? })
    }
}

#[tracing::instrument(name = "GET /vehicles/{id}", skip_all)]
pub async fn handler(state: &State, req: Request) -> Result<Response<Body>, Error> {
    Ok(serve(&state.gate, &routes::GET_VEHICLE, req, |call, req| get_vehicle(state, call, req)).await)
}

async fn get_vehicle(state: &State, call: Call, req: Request) -> Result<Response<Body>, ApiError> {
    let id = req.path_parameters_ref().and_then(|params| params.first("id")).unwrap_or_default();
    // Ids of other tenants, malformed ids and unknown ids all look the same: 404.
    let vehicle =
        state.vehicles.get(&call.auth.tenant_id, id).await?.ok_or(ApiError::NotFound { resource: "vehicle" })?;
    vehicle_response(StatusCode::OK, &vehicle)
}
