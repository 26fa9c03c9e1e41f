//! `POST /vehicles`: adds a vehicle to the caller's fleet. VINs are unique per
//! tenant; `Idempotency-Key` makes retries safe (a replay emits no second
//! `vehicle.created`: the event is written in the create's own transaction).

use http::StatusCode;
use lambda_http::{Body, Error, Request, Response};

use fleetgate_api::http::{Call, Gate, serve, set_location};
use fleetgate_api::idempotency::{Begin, IdempotencyStore};
use fleetgate_api::input::json_body;
use fleetgate_api::{ApiError, Timestamp};
use fleetgate_fleet::vehicles::{Vehicle, VehicleInput, VehicleStore, vehicle_response};
use fleetgate_scopes::routes;
use fleetgate_webhooks::events::{EventType, Outbox};

/// What the function keeps across invocations.
pub struct State {
    pub gate: Gate,
    pub vehicles: VehicleStore,
    pub idempotency: IdempotencyStore,
    /// Where the `vehicle.created` event goes, in the create's transaction.
    pub outbox: Outbox,
}

impl State {
    pub async fn from_env() -> Result<State, Error> {
        let client = fleetgate_api::dynamo::client();
        Ok(State {
            gate: Gate::from_env(&client, &routes::CREATE_VEHICLE)?,
            vehicles: VehicleStore::from_env(client.clone())?,
            idempotency: IdempotencyStore::from_env(client)?,
            outbox: Outbox::from_env()?,
        })
    }
}

#[tracing::instrument(name = "POST /vehicles", skip_all)]
pub async fn handler(state: &State, req: Request) -> Result<Response<Body>, Error> {
    Ok(serve(&state.gate, &routes::CREATE_VEHICLE, req, |call, req| create_vehicle(state, call, req)).await)
}

async fn create_vehicle(state: &State, call: Call, req: Request) -> Result<Response<Body>, ApiError> {
    let now = Timestamp::now();
    let body = json_body(&req)?;
    // Validate before claiming the idempotency key: a rejected body stores nothing.
    let input = VehicleInput::parse(body.clone(), now)?;
    let claim = match state.idempotency.begin(&call, &req, &body).await? {
        Begin::Replay(response) => return Ok(response),
        Begin::Proceed(claim) => claim,
    };
    let vehicle = Vehicle::create(input, now);
    let mut response = vehicle_response(StatusCode::CREATED, &vehicle)?;
    set_location(&mut response, &req, &vehicle.id);
    let mut extra = vec![state.gate.audit_success(&call, &vehicle.id)?];
    extra.extend(state.outbox.items(&call.auth.tenant_id, &[EventType::VehicleCreated], &vehicle, now)?);
    if let Some(claim) = &claim {
        extra.push(claim.completion(&response)?);
    }
    let written = state.vehicles.create(&call.auth.tenant_id, &vehicle, extra).await;
    state.idempotency.settle(claim, written).await?;
    tracing::info!(vehicle_id = %vehicle.id, "vehicle created");
    Ok(response)
}
