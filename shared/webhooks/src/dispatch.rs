//! The dispatcher's work: each new outbox item (from the fleet table's stream)
//! becomes one queue message per enabled endpoint of its tenant that subscribes
//! to its type; a `webhook.test` event goes to the one endpoint it names. A
//! tenant's events only ever reach that tenant's endpoints: endpoints are read
//! by the event's own partition key.

use std::collections::HashMap;

use aws_sdk_sqs::types::SendMessageBatchRequestEntry;

use fleetgate_api::dynamo::DbError;
use fleetgate_scopes::TenantId;

use crate::endpoints::EndpointStatus;
use crate::events::{Event, EventType};
use crate::queue::DeliveryMessage;
use crate::store::{EndpointStore, StoredEndpoint};

/// The messages for `event` of `tenant`, given the tenant's endpoints.
pub fn messages(
    tenant: &TenantId,
    event: &Event,
    endpoints: &[StoredEndpoint],
) -> Result<Vec<DeliveryMessage>, serde_json::Error> {
    let body = serde_json::to_string(&event.payload)?;
    let event_type = event.payload.event_type;
    Ok(endpoints
        .iter()
        .map(|stored| &stored.endpoint)
        .filter(|endpoint| match (&event.endpoint_id, event_type) {
            (Some(target), EventType::WebhookTest) => {
                &endpoint.id == target && endpoint.status == EndpointStatus::Enabled
            }
            _ => endpoint.receives(event_type),
        })
        .map(|endpoint| DeliveryMessage {
            tenant_id: tenant.to_string(),
            endpoint_id: endpoint.id.clone(),
            event_id: event.id.clone(),
            event_type,
            body: body.clone(),
        })
        .collect())
}

#[derive(Debug, thiserror::Error)]
pub enum DispatchError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("SQS refused {0} message(s): {1}")]
    Queue(usize, String),
}

pub struct Dispatcher {
    pub endpoints: EndpointStore,
    pub sqs: aws_sdk_sqs::Client,
    pub queue_url: String,
}

impl Dispatcher {
    /// Enqueues the deliveries of `events`, in order, reading each tenant's
    /// endpoints once. On failure, the index of the first event not wholly
    /// enqueued: the caller has Lambda retry from there (a message enqueued
    /// twice is delivered twice with the same `webhook-id`, by which receivers
    /// drop duplicates: delivery is at least once).
    pub async fn dispatch(&self, events: &[(TenantId, Event)]) -> Result<usize, (usize, DispatchError)> {
        let mut endpoints: HashMap<&TenantId, Vec<StoredEndpoint>> = HashMap::new();
        let mut queued = 0;
        for (index, (tenant, event)) in events.iter().enumerate() {
            if !endpoints.contains_key(tenant) {
                let of_tenant = self.endpoints.all(tenant).await.map_err(|e| (index, e.into()))?;
                endpoints.insert(tenant, of_tenant);
            }
            let messages = messages(tenant, event, &endpoints[tenant])
                .map_err(|e| (index, DbError::Failed(Box::new(e)).into()))?;
            self.enqueue(&messages).await.map_err(|e| (index, e))?;
            queued += messages.len();
        }
        Ok(queued)
    }

    async fn enqueue(&self, messages: &[DeliveryMessage]) -> Result<(), DispatchError> {
        for chunk in messages.chunks(10) {
            let entries = chunk
                .iter()
                .enumerate()
                .map(|(i, message)| {
                    let body = serde_json::to_string(message).map_err(|e| DbError::Failed(Box::new(e)))?;
                    SendMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .message_body(body)
                        .build()
                        .map_err(|e| DispatchError::Db(DbError::Failed(Box::new(e))))
                })
                .collect::<Result<Vec<_>, DispatchError>>()?;
            let output = self
                .sqs
                .send_message_batch()
                .queue_url(&self.queue_url)
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| DispatchError::Queue(chunk.len(), e.to_string()))?;
            if !output.failed().is_empty() {
                let codes: Vec<&str> = output.failed().iter().map(|f| f.code()).collect();
                return Err(DispatchError::Queue(output.failed().len(), codes.join(", ")));
            }
        }
        Ok(())
    }
}
