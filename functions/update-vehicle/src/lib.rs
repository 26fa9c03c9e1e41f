//! `PUT /vehicles/{id}`: replaces a vehicle's writable fields, all of them (a
//! missing one is a 422, so nothing is reset by omission; a GET body can be sent
//! back as is). Honours `If-Match` (412 when stale); without it the last write wins.

use http::StatusCode;
use lambda_http::{Body, Error, Request, RequestExt, Response};

use fleetgate_api::http::{Call, Gate, serve};
use fleetgate_api::input::json_body;
use fleetgate_api::{ApiError, Timestamp, ids};
use fleetgate_fleet::vehicles::{ID_PREFIX, Vehicle, VehicleInput, VehicleStore, request_if_match, vehicle_response};
use fleetgate_scopes::routes;

/// What the function keeps across invocations.
pub struct State {
    pub gate: Gate,
    pub vehicles: VehicleStore,
}

impl State {
    pub async fn from_env() -> Result<State, Error> {
        let client = fleetgate_api::dynamo::client();
        Ok(State { gate: Gate::from_env(&client, &routes::UPDATE_VEHICLE)?, vehicles: VehicleStore::from_env(client)? })
    }
}

#[tracing::instrument(name = "PUT /vehicles/{id}", skip_all)]
pub async fn handler(state: &State, req: Request) -> Result<Response<Body>, Error> {
    Ok(serve(&state.gate, &routes::UPDATE_VEHICLE, req, |call, req| update_vehicle(state, call, req)).await)
}

async fn update_vehicle(state: &State, call: Call, req: Request) -> Result<Response<Body>, ApiError> {
    let id = req.path_parameters_ref().and_then(|params| params.first("id")).unwrap_or_default().to_owned();
    if !ids::is_sortable_id(ID_PREFIX, &id) {
        return Err(ApiError::NotFound { resource: "vehicle" });
    }
    let body = json_body(&req)?;
    let if_match = request_if_match(req.headers())?;
    let audit = state.gate.audit_success(&call, &id)?;
    let now = Timestamp::now();
    let replace = |stored: &Vehicle| VehicleInput::parse_replacement(body.clone(), now, stored);
    let vehicle = state.vehicles.update(&call.auth.tenant_id, &id, if_match.as_ref(), replace, audit).await?;
    tracing::info!(vehicle_id = %vehicle.id, version = vehicle.version, "vehicle replaced");
    vehicle_response(StatusCode::OK, &vehicle)
}
