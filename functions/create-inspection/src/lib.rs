//! `POST /inspections`: submits an inspection of a vehicle against a template of
//! the caller's tenant. The server derives `outcome` and `defects`, records the
//! template version and the submitting key. `Idempotency-Key` makes retries safe.
//! Emits `inspection.created`, and `inspection.failed` when the outcome is fail,
//! in the submission's own transaction (a replay emits nothing new).

use http::StatusCode;
use lambda_http::{Body, Error, Request, Response};

use fleetgate_api::error::FieldError;
use fleetgate_api::http::{Call, Gate, json_response, serve, set_location};
use fleetgate_api::idempotency::{Begin, IdempotencyStore};
use fleetgate_api::input::json_body;
use fleetgate_api::{ApiError, Timestamp};
use fleetgate_fleet::inspections::{InspectionStore, Outcome, Submission};
use fleetgate_scopes::routes;
use fleetgate_webhooks::events::{EventType, Outbox};

/// What the function keeps across invocations.
pub struct State {
    pub gate: Gate,
    pub inspections: InspectionStore,
    pub idempotency: IdempotencyStore,
    /// Where `inspection.created` (and `inspection.failed`) go, in the submission's transaction.
    pub outbox: Outbox,
}

impl State {
    pub async fn from_env() -> Result<State, Error> {
        let client = fleetgate_api::dynamo::client();
        Ok(State {
            gate: Gate::from_env(&client, &routes::CREATE_INSPECTION)?,
            inspections: InspectionStore::from_env(client.clone())?,
            idempotency: IdempotencyStore::from_env(client)?,
            outbox: Outbox::from_env()?,
        })
    }
}

#[tracing::instrument(name = "POST /inspections", skip_all)]
pub async fn handler(state: &State, req: Request) -> Result<Response<Body>, Error> {
    Ok(serve(&state.gate, &routes::CREATE_INSPECTION, req, |call, req| create_inspection(state, call, req)).await)
}

async fn create_inspection(state: &State, call: Call, req: Request) -> Result<Response<Body>, ApiError> {
    let now = Timestamp::now();
    let body = json_body(&req)?;
    let submission = Submission::read(body.clone(), now)?;
    // A retry of a completed submission replays its first answer before the vehicle
    // and template are checked again: an admin may have changed the template since,
    // and a 422 now would make the device resubmit under a new key (a duplicate).
    if let Some(replay) = state.idempotency.completed(&call, &req, &body).await? {
        return Ok(replay);
    }
    let tenant = &call.auth.tenant_id;
    // One round trip, scoped to the caller's tenant: another tenant's ids are unknown
    // here. Looked up even when the body has other problems, so one 422 lists them all.
    let vehicle_id = submission.vehicle_id.as_deref().unwrap_or_default();
    let template_id = submission.template_id.as_deref().unwrap_or_default();
    let (vehicle, template) = if vehicle_id.is_empty() && template_id.is_empty() {
        (None, None)
    } else {
        state.inspections.vehicle_and_template(tenant, vehicle_id, template_id).await?
    };
    let mut unknown = Vec::new();
    if vehicle.is_none() && !vehicle_id.is_empty() {
        unknown.push(FieldError::new("vehicle_id", "no vehicle with this id exists"));
    }
    if template.is_none() && !template_id.is_empty() {
        unknown.push(FieldError::new("template_id", "no inspection template with this id exists"));
    }
    let inspection = submission.check(template.as_ref(), unknown, &call.auth.key_id, now)?;

    // Claimed only now: a request that fails validation stores nothing.
    let claim = match state.idempotency.begin(&call, &req, &body).await? {
        Begin::Replay(response) => return Ok(response),
        Begin::Proceed(claim) => claim,
    };
    let mut response = json_response(StatusCode::CREATED, &inspection)?;
    set_location(&mut response, &req, &inspection.id);
    let mut extra = vec![state.gate.audit_success(&call, &inspection.id)?];
    let events: &[EventType] = match inspection.outcome {
        Outcome::Fail => &[EventType::InspectionCreated, EventType::InspectionFailed],
        Outcome::Pass => &[EventType::InspectionCreated],
    };
    extra.extend(state.outbox.items(tenant, events, &inspection, now)?);
    if let Some(claim) = &claim {
        extra.push(claim.completion(&response)?);
    }
    let written = state.inspections.create(tenant, &inspection, extra).await;
    state.idempotency.settle(claim, written).await?;
    tracing::info!(inspection_id = %inspection.id, outcome = ?inspection.outcome, "inspection recorded");
    Ok(response)
}
