//! `webhook-deliverer`: fed by the delivery queue, it makes one attempt per
//! message (fleetgate_webhooks::deliver), all of a batch at once, and answers
//! with the messages to try again (partial batch response). The wait before
//! the next attempt is the message's visibility, set to the schedule's step;
//! after the last attempt the message is moved to the dead-letter queue here,
//! so the schedule alone decides how many attempts there are (the queue's own
//! redrive, after many more receives, only catches messages that keep failing
//! for other reasons).

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use futures_util::future::join_all;
use lambda_runtime::{Error, LambdaEvent};

use fleetgate_api::Timestamp;
use fleetgate_api::dynamo::env_var;
use fleetgate_webhooks::deliver::{Deliverer, Outcome};
use fleetgate_webhooks::deliveries::DeliveryLog;
use fleetgate_webhooks::queue::DeliveryMessage;
use fleetgate_webhooks::schedule::RetrySchedule;
use fleetgate_webhooks::sender::Sender;
use fleetgate_webhooks::store::EndpointStore;
use fleetgate_webhooks::target_url::UrlPolicy;

/// What the function keeps across invocations.
pub struct State {
    pub deliverer: Deliverer,
    pub sqs: aws_sdk_sqs::Client,
    pub queue_url: String,
    pub dead_letter_queue_url: String,
}

impl State {
    pub fn from_env() -> Result<State, Error> {
        let client = fleetgate_api::dynamo::client();
        Ok(State {
            deliverer: Deliverer {
                endpoints: EndpointStore::from_env(client.clone())?,
                log: DeliveryLog::from_env(client)?,
                sender: Sender::new(UrlPolicy::from_env()),
                schedule: RetrySchedule::from_env()?,
            },
            sqs: fleetgate_webhooks::queue::client(),
            queue_url: env_var("WEBHOOK_QUEUE_URL")?,
            dead_letter_queue_url: env_var("WEBHOOK_DEAD_LETTER_QUEUE_URL")?,
        })
    }
}

pub async fn handler(state: &State, event: LambdaEvent<SqsEvent>) -> Result<SqsBatchResponse, Error> {
    fleetgate_api::call_time::measured(deliver_batch(state, event)).await
}

async fn deliver_batch(state: &State, event: LambdaEvent<SqsEvent>) -> Result<SqsBatchResponse, Error> {
    let failed = join_all(event.payload.records.iter().map(|record| deliver_one(state, record))).await;
    let mut response = SqsBatchResponse::default();
    let messages = failed.len();
    for id in failed.into_iter().flatten() {
        response.add_failure(id);
    }
    // One line a batch, with its time and its time in AWS calls (the POSTs are its own).
    let (handler_ms, aws_call_ms) = fleetgate_api::call_time::millis();
    let again = response.batch_item_failures.len();
    tracing::info!(messages, again, handler_ms, aws_call_ms, "delivery batch done");
    Ok(response)
}

/// One message; `Some(message id)` when it is to be received again.
async fn deliver_one(state: &State, record: &SqsMessage) -> Option<String> {
    let id = record.message_id.clone()?;
    let message: DeliveryMessage = match record.body.as_deref().map(serde_json::from_str) {
        Some(Ok(message)) => message,
        // Never deliverable: receiving it again would not help.
        _ => {
            tracing::error!(message_id = %id, "a delivery message does not parse; dropped");
            return None;
        }
    };
    let attempt = record.attributes.get("ApproximateReceiveCount").and_then(|n| n.parse().ok()).unwrap_or(1);
    let wait = match state.deliverer.deliver(&message, attempt, Timestamp::now()).await {
        Ok(Outcome::Done) => return None,
        Ok(Outcome::RetryIn(wait)) => wait,
        Ok(Outcome::GiveUp) => {
            let body = record.body.clone().unwrap_or_default();
            let moved =
                state.sqs.send_message().queue_url(&state.dead_letter_queue_url).message_body(body).send().await;
            return match moved {
                Ok(_) => {
                    tracing::warn!(message_id = %id, endpoint_id = %message.endpoint_id, event_id = %message.event_id, "delivery given up; moved to the dead-letter queue");
                    None
                }
                // Kept in the queue: tried again (one more attempt) rather than lost.
                Err(err) => {
                    tracing::error!(message_id = %id, error = %err, "could not move a given-up delivery to the dead-letter queue");
                    Some(id)
                }
            };
        }
        Err(err) => {
            // Not an attempt (nothing was sent): received again after the queue's visibility timeout.
            tracing::error!(message_id = %id, error = %err, "delivery bookkeeping failed; retried");
            return Some(id);
        }
    };
    if let Some(receipt) = &record.receipt_handle {
        let hidden = state
            .sqs
            .change_message_visibility()
            .queue_url(&state.queue_url)
            .receipt_handle(receipt)
            .visibility_timeout(wait.as_secs().min(12 * 3600) as i32)
            .send()
            .await;
        if let Err(err) = hidden {
            // The queue's own visibility timeout applies instead: retried sooner or later, not lost.
            tracing::warn!(message_id = %id, error = %err, "could not set the retry delay");
        }
    }
    Some(id)
}
