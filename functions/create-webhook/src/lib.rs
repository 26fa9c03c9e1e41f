//! `POST /webhooks`: subscribes a URL to events the caller's key may read, and
//! answers the endpoint with its signing secret, shown this once.
//! `Idempotency-Key` makes retries safe: a replay answers the first response,
//! secret included (it is the same request's answer), so a lost response never
//! leaves an endpoint whose secret nobody saw.

use http::StatusCode;
use lambda_http::{Body, Error, Request, Response};

use fleetgate_api::http::{Call, Gate, serve, set_location, versioned_response};
use fleetgate_api::idempotency::{Begin, IdempotencyStore};
use fleetgate_api::input::json_body;
use fleetgate_api::{ApiError, Timestamp};
use fleetgate_scopes::routes;
use fleetgate_webhooks::api::{WithSecret, check_subscription};
use fleetgate_webhooks::endpoints::{Endpoint, EndpointInput};
use fleetgate_webhooks::signing::Secret;
use fleetgate_webhooks::store::EndpointStore;
use fleetgate_webhooks::target_url::UrlPolicy;

/// What the function keeps across invocations.
pub struct State {
    pub gate: Gate,
    pub endpoints: EndpointStore,
    pub idempotency: IdempotencyStore,
    pub urls: UrlPolicy,
}

impl State {
    pub async fn from_env() -> Result<State, Error> {
        let client = fleetgate_api::dynamo::client();
        Ok(State {
            gate: Gate::from_env(&client, &routes::CREATE_WEBHOOK)?,
            endpoints: EndpointStore::from_env(client.clone())?,
            idempotency: IdempotencyStore::from_env(client)?,
            urls: UrlPolicy::from_env(),
        })
    }
}

#[tracing::instrument(name = "POST /webhooks", skip_all)]
pub async fn handler(state: &State, req: Request) -> Result<Response<Body>, Error> {
    Ok(serve(&state.gate, &routes::CREATE_WEBHOOK, req, |call, req| create_webhook(state, call, req)).await)
}

async fn create_webhook(state: &State, call: Call, req: Request) -> Result<Response<Body>, ApiError> {
    let body = json_body(&req)?;
    // Validate (fields, then what the key may subscribe to) before claiming the
    // idempotency key: a refused body stores nothing.
    let input = EndpointInput::parse(body.clone(), state.urls)?;
    check_subscription(&call, &input.events)?;
    let claim = match state.idempotency.begin(&call, &req, &body).await? {
        Begin::Replay(response) => return Ok(response),
        Begin::Proceed(claim) => claim,
    };
    let endpoint = Endpoint::create(input, Timestamp::now());
    let secret = Secret::generate();
    let answer = WithSecret { endpoint: &endpoint, secret: secret.reveal(), previous_secret_expires_at: None };
    let mut response = versioned_response(StatusCode::CREATED, &answer, endpoint.version)?;
    set_location(&mut response, &req, &endpoint.id);
    let mut extra = vec![state.gate.audit_success(&call, &endpoint.id)?];
    if let Some(claim) = &claim {
        extra.push(claim.completion(&response)?);
    }
    let written = state.endpoints.create(&call.auth.tenant_id, &endpoint, &secret, extra).await;
    state.idempotency.settle(claim, written).await?;
    tracing::info!(endpoint_id = %endpoint.id, "webhook endpoint created");
    Ok(response)
}
