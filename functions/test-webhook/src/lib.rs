//! `POST /webhooks/{id}/test`: sends the endpoint a `webhook.test` event (whatever
//! it subscribes to) through the same outbox, queue and signing as every event,
//! and answers 202 with the event's id, which is the delivery's `webhook-id` and
//! shows up in `GET /webhooks/{id}/deliveries`. A disabled endpoint is a 409:
//! nothing is sent to it until it is enabled again.

use http::StatusCode;
use lambda_http::{Body, Error, Request, Response};
use serde::Serialize;
use serde_json::Value;

use fleetgate_api::dynamo::{env_var, transact_write};
use fleetgate_api::http::{Call, Gate, json_response, serve};
use fleetgate_api::idempotency::{Begin, IdempotencyStore};
use fleetgate_api::{ApiError, Timestamp};
use fleetgate_scopes::routes;
use fleetgate_webhooks::api::{find_endpoint, path_endpoint_id};
use fleetgate_webhooks::endpoints::EndpointStatus;
use fleetgate_webhooks::events::{Event, EventType};
use fleetgate_webhooks::store::EndpointStore;

/// What the function keeps across invocations.
pub struct State {
    pub gate: Gate,
    pub endpoints: EndpointStore,
    pub idempotency: IdempotencyStore,
    pub client: aws_sdk_dynamodb::Client,
    pub fleet_table: String,
}

impl State {
    pub async fn from_env() -> Result<State, Error> {
        let client = fleetgate_api::dynamo::client();
        Ok(State {
            gate: Gate::from_env(&client, &routes::TEST_WEBHOOK)?,
            endpoints: EndpointStore::from_env(client.clone())?,
            idempotency: IdempotencyStore::from_env(client.clone())?,
            client,
            fleet_table: env_var("FLEET_TABLE")?,
        })
    }
}

/// The answer: which event is on its way.
#[derive(Serialize)]
struct Queued<'a> {
    event_id: &'a str,
    #[serde(rename = "type")]
    event_type: EventType,
    endpoint_id: &'a str,
}

#[tracing::instrument(name = "POST /webhooks/{id}/test", skip_all)]
pub async fn handler(state: &State, req: Request) -> Result<Response<Body>, Error> {
    Ok(serve(&state.gate, &routes::TEST_WEBHOOK, req, |call, req| send_test(state, call, req)).await)
}

async fn send_test(state: &State, call: Call, req: Request) -> Result<Response<Body>, ApiError> {
    let id = path_endpoint_id(&req)?;
    let endpoint = find_endpoint(&state.endpoints, &call, &id).await?;
    if endpoint.status == EndpointStatus::Disabled {
        return Err(ApiError::Conflict {
            code: "endpoint_disabled",
            detail: "This webhook endpoint is disabled, so nothing is sent to it; enable it with PUT /webhooks/{id} \
                     (\"status\": \"enabled\") first."
                .into(),
        });
    }
    let claim = match state.idempotency.begin(&call, &req, &Value::Null).await? {
        Begin::Replay(response) => return Ok(response),
        Begin::Proceed(claim) => claim,
    };
    let event = Event::test(&endpoint, Timestamp::now()).map_err(|e| ApiError::Internal(Box::new(e)))?;
    let answer = Queued { event_id: &event.id, event_type: EventType::WebhookTest, endpoint_id: &endpoint.id };
    let response = json_response(StatusCode::ACCEPTED, &answer)?;
    let mut items =
        vec![event.outbox_item(&state.fleet_table, &call.auth.tenant_id)?, state.gate.audit_success(&call, &id)?];
    if let Some(claim) = &claim {
        items.push(claim.completion(&response)?);
    }
    let written = transact_write(&state.client, items).await;
    state.idempotency.settle(claim, written).await?;
    tracing::info!(endpoint_id = %id, event_id = %event.id, "webhook test event queued");
    Ok(response)
}
