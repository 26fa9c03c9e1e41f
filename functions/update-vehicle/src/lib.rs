//! `PUT /vehicles/{id}`: replaces a vehicle's writable fields, all of them (a
//! missing one is a 422, so nothing is reset by omission; a GET body can be sent
//! back as is). Honours `If-Match` (412 when stale); without it the last write wins.

use lambda_http::{Body, Error, Request, Response};

use fleetgate_api::ApiError;
use fleetgate_api::http::{Call, Gate, serve};
use fleetgate_api::input::json_body;
use fleetgate_fleet::vehicles::{Vehicle, VehicleInput, VehicleStore, path_vehicle_id, update_from_request};
use fleetgate_scopes::routes;
use fleetgate_webhooks::events::Outbox;

/// What the function keeps across invocations.
pub struct State {
    pub gate: Gate,
    pub vehicles: VehicleStore,
    /// Where the `vehicle.updated` event goes, in the update's transaction.
    pub outbox: Outbox,
}

impl State {
    pub async fn from_env() -> Result<State, Error> {
        let client = fleetgate_api::dynamo::client();
        Ok(State {
            gate: Gate::from_env(&client, &routes::UPDATE_VEHICLE)?,
            vehicles: VehicleStore::from_env(client)?,
            outbox: Outbox::from_env()?,
        })
    }
}

#[tracing::instrument(name = "PUT /vehicles/{id}", skip_all)]
pub async fn handler(state: &State, req: Request) -> Result<Response<Body>, Error> {
    Ok(serve(&state.gate, &routes::UPDATE_VEHICLE, req, |call, req| update_vehicle(state, call, req)).await)
}

async fn update_vehicle(state: &State, call: Call, req: Request) -> Result<Response<Body>, ApiError> {
    let id = path_vehicle_id(&req)?;
    let body = json_body(&req)?;
    let replace = |stored: &Vehicle, now| VehicleInput::parse_replacement(body.clone(), now, stored);
    update_from_request(&state.vehicles, &state.gate, &state.outbox, &call, &req, &id, "replaced", replace).await
}
