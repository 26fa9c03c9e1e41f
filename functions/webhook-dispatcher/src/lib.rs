//! `webhook-dispatcher`: fed by the fleet table's stream (its event source
//! mapping passes only new outbox items, `event#…`), it queues one delivery per
//! enabled endpoint that subscribes (fleetgate_webhooks::dispatch). Records are
//! handled in order; when one cannot be queued, it is reported as the batch's
//! failure, so Lambda retries from there (bisecting, up to the mapping's maximum
//! record age, then its on-failure queue) and nothing after it is lost.

use aws_lambda_events::event::dynamodb::Event as StreamEvent;
use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use lambda_runtime::{Error, LambdaEvent};

use fleetgate_api::dynamo::env_var;
use fleetgate_webhooks::dispatch::Dispatcher;
use fleetgate_webhooks::events::{Event, OUTBOX_PREFIX};
use fleetgate_webhooks::store::EndpointStore;

/// What the function keeps across invocations.
pub struct State {
    pub dispatcher: Dispatcher,
}

impl State {
    pub fn from_env() -> Result<State, Error> {
        let client = fleetgate_api::dynamo::client();
        let queue_url = env_var("WEBHOOK_QUEUE_URL")?;
        Ok(State {
            dispatcher: Dispatcher {
                endpoints: EndpointStore::from_env(client)?,
                sqs: fleetgate_webhooks::queue::client(),
                queue_url,
            },
        })
    }
}

pub async fn handler(state: &State, event: LambdaEvent<StreamEvent>) -> Result<DynamoDbEventResponse, Error> {
    fleetgate_api::call_time::measured(dispatch_batch(state, event)).await
}

async fn dispatch_batch(state: &State, event: LambdaEvent<StreamEvent>) -> Result<DynamoDbEventResponse, Error> {
    let mut events = Vec::new();
    for record in event.payload.records {
        let sequence = record.change.sequence_number.clone();
        let is_outbox = record
            .change
            .keys
            .get("sk")
            .is_some_and(|sk| matches!(sk, serde_dynamo::AttributeValue::S(sk) if sk.starts_with(OUTBOX_PREFIX)));
        // The mapping's filter passes only outbox inserts; anything else is not ours to send.
        if record.event_name != "INSERT" || !is_outbox {
            continue;
        }
        match Event::from_item(record.change.new_image) {
            Some((tenant, outbox)) => events.push((sequence, tenant, outbox)),
            None => tracing::error!(sequence, "an outbox record does not map; skipped"),
        }
    }
    let batch: Vec<_> = events.iter().map(|(_, tenant, event)| (tenant.clone(), event.clone())).collect();
    match state.dispatcher.dispatch(&batch).await {
        Ok(queued) => {
            // With the batch's time and its time in AWS calls, as every API request logs them.
            let (handler_ms, aws_call_ms) = fleetgate_api::call_time::millis();
            tracing::info!(events = batch.len(), queued, handler_ms, aws_call_ms, "events dispatched");
            Ok(DynamoDbEventResponse::default())
        }
        Err((failed_at, err)) => {
            tracing::error!(error = %err, failed_at, "dispatch failed; Lambda retries from this record");
            // The structs are non-exhaustive: built from their defaults.
            let mut failure = DynamoDbBatchItemFailure::default();
            failure.item_identifier = events[failed_at].0.clone();
            let mut response = DynamoDbEventResponse::default();
            response.batch_item_failures.push(failure);
            Ok(response)
        }
    }
}
