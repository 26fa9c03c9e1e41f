//! `PUT /vehicles/{id}`: replaces a vehicle's writable fields, all of them (a
//! missing one is a 422, so nothing is reset by omission; a GET body can be sent
//! back as is). Honours `If-Match` (412 when stale); without it the last write wins.

use lambda_http::{Body, Error, Request, RequestExt, Response};

use fleetgate_api::http::{Call, Gate, serve};
use fleetgate_api::input::json_body;
use fleetgate_api::{ApiError, ids};
use fleetgate_fleet::vehicles::{ID_PREFIX, Vehicle, VehicleInput, VehicleStore, update_from_request};
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
    // The id is checked first: a malformed one is a 404 whatever the body.
    let body = match req.path_parameters_ref().and_then(|params| params.first("id")) {
        Some(id) if ids::is_sortable_id(ID_PREFIX, id) => json_body(&req)?,
        _ => return Err(ApiError::NotFound { resource: "vehicle" }),
    };
    let replace = |stored: &Vehicle, now| VehicleInput::parse_replacement(body.clone(), now, stored);
    update_from_request(&state.vehicles, &state.gate, &call, &req, "replaced", replace).await
}
