//! `POST /webhooks/{id}/rotate-secret`: gives an endpoint a new signing secret,
//! shown this once. For 24 hours deliveries carry signatures by both (Standard
//! Webhooks' space-separated list), so the receiver can switch without losing
//! one. Rotating again within those hours ends the older secret's overlap at
//! once: retry with the same `Idempotency-Key` rather than rotate twice.

use http::StatusCode;
use lambda_http::{Body, Error, Request, Response};
use serde_json::Value;

use fleetgate_api::http::{Call, Gate, serve, versioned_response};
use fleetgate_api::idempotency::{Begin, IdempotencyStore};
use fleetgate_api::{ApiError, Timestamp};
use fleetgate_scopes::routes;
use fleetgate_webhooks::api::{WithSecret, find_endpoint, path_endpoint_id};
use fleetgate_webhooks::signing::Secret;
use fleetgate_webhooks::store::{EndpointStore, ROTATION_OVERLAP_SECONDS};

/// What the function keeps across invocations.
pub struct State {
    pub gate: Gate,
    pub endpoints: EndpointStore,
    pub idempotency: IdempotencyStore,
}

impl State {
    pub async fn from_env() -> Result<State, Error> {
        let client = fleetgate_api::dynamo::client();
        Ok(State {
            gate: Gate::from_env(&client, &routes::ROTATE_WEBHOOK_SECRET)?,
            endpoints: EndpointStore::from_env(client.clone())?,
            idempotency: IdempotencyStore::from_env(client)?,
        })
    }
}

#[tracing::instrument(name = "POST /webhooks/{id}/rotate-secret", skip_all)]
pub async fn handler(state: &State, req: Request) -> Result<Response<Body>, Error> {
    Ok(serve(&state.gate, &routes::ROTATE_WEBHOOK_SECRET, req, |call, req| rotate_secret(state, call, req)).await)
}

async fn rotate_secret(state: &State, call: Call, req: Request) -> Result<Response<Body>, ApiError> {
    let id = path_endpoint_id(&req)?;
    let endpoint = find_endpoint(&state.endpoints, &call, &id).await?;
    // The route takes no body: the request is its path (the claim hashes the id).
    let claim = match state.idempotency.begin(&call, &req, &Value::Null).await? {
        Begin::Replay(response) => return Ok(response),
        Begin::Proceed(claim) => claim,
    };
    let now = Timestamp::now();
    let previous_until = now.unix_seconds() + ROTATION_OVERLAP_SECONDS;
    let secret = Secret::generate();
    let answer = WithSecret {
        endpoint: &endpoint,
        secret: secret.reveal(),
        previous_secret_expires_at: Timestamp::from_unix_seconds(previous_until),
    };
    let response = versioned_response(StatusCode::OK, &answer, endpoint.version)?;
    let mut extra = vec![state.gate.audit_success(&call, &id)?];
    if let Some(claim) = &claim {
        extra.push(claim.completion(&response)?);
    }
    let written = state.endpoints.rotate_secret(&call.auth.tenant_id, &id, &secret, previous_until, extra).await;
    state.idempotency.settle(claim, written).await?;
    tracing::info!(endpoint_id = %id, "webhook secret rotated");
    Ok(response)
}
