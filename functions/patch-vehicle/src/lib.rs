//! `PATCH /vehicles/{id}`: changes the fields a JSON Merge Patch (RFC 7396) names
//! and leaves every other one as stored. `application/merge-patch+json` (or
//! `application/json`); honours `If-Match` like PUT. Without `If-Match`, a lost
//! race re-applies the patch to the newer version, so concurrent patches of
//! different fields both stand.

use lambda_http::{Body, Error, Request, Response};

use fleetgate_api::ApiError;
use fleetgate_api::http::{Call, Gate, serve};
use fleetgate_api::input::{json_body, media_type};
use fleetgate_fleet::vehicles::{Vehicle, VehicleInput, VehicleStore, path_vehicle_id, update_from_request};
use fleetgate_scopes::routes;
use fleetgate_webhooks::events::Outbox;

/// The media types a patch may come in: JSON Patch (RFC 6902) is another format.
const ACCEPTED: &str = "application/merge-patch+json (or application/json)";

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
            gate: Gate::from_env(&client, &routes::PATCH_VEHICLE)?,
            vehicles: VehicleStore::from_env(client)?,
            outbox: Outbox::from_env()?,
        })
    }
}

#[tracing::instrument(name = "PATCH /vehicles/{id}", skip_all)]
pub async fn handler(state: &State, req: Request) -> Result<Response<Body>, Error> {
    Ok(serve(&state.gate, &routes::PATCH_VEHICLE, req, |call, req| patch_vehicle(state, call, req)).await)
}

async fn patch_vehicle(state: &State, call: Call, req: Request) -> Result<Response<Body>, ApiError> {
    let id = path_vehicle_id(&req)?;
    if !matches!(media_type(&req).as_str(), "application/merge-patch+json" | "application/json") {
        return Err(ApiError::UnsupportedMediaType { accepted: ACCEPTED });
    }
    let patch = json_body(&req)?;
    let apply = |stored: &Vehicle, now| VehicleInput::parse_merge_patch(&patch, now, stored);
    update_from_request(&state.vehicles, &state.gate, &state.outbox, &call, &req, &id, "patched", apply).await
}
