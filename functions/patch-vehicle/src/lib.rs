//! `PATCH /vehicles/{id}`: changes the fields a JSON Merge Patch (RFC 7396) names
//! and leaves every other one as stored. `application/merge-patch+json` (or
//! `application/json`); honours `If-Match` like PUT. Without `If-Match`, a lost
//! race re-applies the patch to the newer version, so concurrent patches of
//! different fields both stand.

use http::StatusCode;
use lambda_http::{Body, Error, Request, RequestExt, Response};

use fleetgate_api::http::{Call, Gate, serve};
use fleetgate_api::input::{json_body, media_type};
use fleetgate_api::{ApiError, Timestamp, ids};
use fleetgate_fleet::vehicles::{ID_PREFIX, Vehicle, VehicleInput, VehicleStore, request_if_match, vehicle_response};
use fleetgate_scopes::routes;

/// The media types a patch may come in: JSON Patch (RFC 6902) is another format.
const ACCEPTED: &str = "application/merge-patch+json (or application/json)";

/// What the function keeps across invocations.
pub struct State {
    pub gate: Gate,
    pub vehicles: VehicleStore,
}

impl State {
    pub async fn from_env() -> Result<State, Error> {
        let client = fleetgate_api::dynamo::client();
        Ok(State { gate: Gate::from_env(&client, &routes::PATCH_VEHICLE)?, vehicles: VehicleStore::from_env(client)? })
    }
}

#[tracing::instrument(name = "PATCH /vehicles/{id}", skip_all)]
pub async fn handler(state: &State, req: Request) -> Result<Response<Body>, Error> {
    Ok(serve(&state.gate, &routes::PATCH_VEHICLE, req, |call, req| patch_vehicle(state, call, req)).await)
}

async fn patch_vehicle(state: &State, call: Call, req: Request) -> Result<Response<Body>, ApiError> {
    let id = req.path_parameters_ref().and_then(|params| params.first("id")).unwrap_or_default().to_owned();
    if !ids::is_sortable_id(ID_PREFIX, &id) {
        return Err(ApiError::NotFound { resource: "vehicle" });
    }
    if !matches!(media_type(&req).as_str(), "application/merge-patch+json" | "application/json") {
        return Err(ApiError::UnsupportedMediaType { accepted: ACCEPTED });
    }
    let patch = json_body(&req)?;
    let if_match = request_if_match(req.headers())?;
    let audit = state.gate.audit_success(&call, &id)?;
    let now = Timestamp::now();
    let apply = |stored: &Vehicle| VehicleInput::parse_merge_patch(&patch, now, stored);
    let vehicle = state.vehicles.update(&call.auth.tenant_id, &id, if_match.as_ref(), apply, audit).await?;
    tracing::info!(vehicle_id = %vehicle.id, version = vehicle.version, "vehicle patched");
    vehicle_response(StatusCode::OK, &vehicle)
}
