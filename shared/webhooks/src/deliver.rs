//! The deliverer's work for one queued message: sign it for the endpoint as it
//! is now, POST it, log the attempt, and say what the queue should do next.

use std::time::Duration;

use bytes::Bytes;

use fleetgate_api::Timestamp;
use fleetgate_api::dynamo::DbError;
use fleetgate_api::metrics::{MetricsDoc, Unit};
use fleetgate_scopes::TenantId;

use crate::deliveries::{DeliveryAttempt, DeliveryLog};
use crate::endpoints::{DisabledReason, EndpointStatus};
use crate::queue::DeliveryMessage;
use crate::schedule::{DISABLE_AFTER, RetrySchedule, Verdict, retry_after, verdict};
use crate::sender::Sender;
use crate::signing::signature_header;
use crate::store::{EndpointStore, EndpointWriteError};

/// An attempt as metrics: `WebhookDeliveries` and `WebhookDeliveryLatency` by
/// `outcome` (delivered, retrying, given_up, gone); the tenant, endpoint and event
/// travel as properties, never dimensions.
pub fn attempt_metrics(outcome: &str, attempt: &DeliveryAttempt, tenant: &TenantId) -> MetricsDoc {
    let mut doc = MetricsDoc::new();
    doc.record(
        &[("outcome", outcome)],
        &[
            ("WebhookDeliveries", Unit::Count, 1.0),
            ("WebhookDeliveryLatency", Unit::Milliseconds, attempt.latency_ms as f64),
        ],
    )
    .property("tenant_id", tenant.as_str())
    .property("endpoint_id", &attempt.endpoint_id)
    .property("event_id", &attempt.event_id)
    .property("event_type", attempt.event_type.as_str());
    doc
}

/// What happens to the message after an attempt.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Delivered, or nothing left to deliver to (endpoint deleted, disabled, gone).
    Done,
    /// Failed: try again after this long (the message stays in the queue, hidden).
    RetryIn(Duration),
    /// Failed for the last time: the message goes to the dead-letter queue.
    GiveUp,
}

pub struct Deliverer {
    pub endpoints: EndpointStore,
    pub log: DeliveryLog,
    pub sender: Sender,
    pub schedule: RetrySchedule,
}

impl Deliverer {
    /// Attempt number `attempt` (1-based: SQS's receive count) of `message`.
    pub async fn deliver(&self, message: &DeliveryMessage, attempt: u32, now: Timestamp) -> Result<Outcome, DbError> {
        let Ok(tenant) = TenantId::parse(&message.tenant_id) else {
            tracing::error!(endpoint_id = %message.endpoint_id, "a delivery message names no valid tenant; dropped");
            return Ok(Outcome::Done);
        };
        let Some(stored) = self.endpoints.get(&tenant, &message.endpoint_id).await? else {
            tracing::info!(endpoint_id = %message.endpoint_id, event_id = %message.event_id, "endpoint deleted; delivery dropped");
            return Ok(Outcome::Done);
        };
        if stored.endpoint.status == EndpointStatus::Disabled {
            tracing::info!(endpoint_id = %message.endpoint_id, event_id = %message.event_id, "endpoint disabled; delivery dropped");
            return Ok(Outcome::Done);
        }
        let seconds = now.unix_seconds();
        let signature =
            signature_header(&stored.signing_secrets(seconds), &message.event_id, seconds, message.body.as_bytes());
        let headers = [
            ("content-type", "application/json".to_owned()),
            ("user-agent", "Fleetgate-Webhooks/1.0".to_owned()),
            ("webhook-id", message.event_id.clone()),
            ("webhook-timestamp", seconds.to_string()),
            ("webhook-signature", signature),
        ];
        let answer = self.sender.post(&stored.endpoint.url, &headers, Bytes::from(message.body.clone())).await;
        let judged = verdict(answer.status);
        let mut outcome = match judged {
            Verdict::Delivered | Verdict::Gone => Outcome::Done,
            Verdict::Failed => {
                let clock = std::time::UNIX_EPOCH + Duration::from_secs(seconds.max(0) as u64);
                let asked = answer.status.and_then(|status| retry_after(status, answer.retry_after.as_deref(), clock));
                self.schedule.wait_after(attempt, asked).map_or(Outcome::GiveUp, Outcome::RetryIn)
            }
        };
        let mut disable = (judged == Verdict::Gone).then_some(DisabledReason::Gone);
        match judged {
            Verdict::Delivered if stored.failing_since.is_some() => {
                self.endpoints.note_success(&tenant, &stored.endpoint.id).await?
            }
            Verdict::Failed => {
                let since = self.endpoints.note_failure(&tenant, &stored.endpoint.id, seconds).await?;
                if since.is_some_and(|since| seconds - since >= DISABLE_AFTER.as_secs() as i64) {
                    disable = Some(DisabledReason::Failing);
                    outcome = Outcome::GiveUp;
                }
            }
            _ => {}
        }
        let next_attempt_at = match outcome {
            Outcome::RetryIn(wait) => Some(now.plus(time::Duration::try_from(wait).unwrap_or(time::Duration::ZERO))),
            _ => None,
        };
        let record = DeliveryAttempt {
            id: DeliveryAttempt::new_id(),
            endpoint_id: stored.endpoint.id.clone(),
            event_id: message.event_id.clone(),
            event_type: message.event_type,
            attempt,
            attempted_at: now,
            status: answer.status,
            latency_ms: answer.latency.as_millis() as u64,
            delivered: judged == Verdict::Delivered,
            answer: answer.excerpt,
            next_attempt_at,
        };
        self.log.record(&tenant, &record).await?;
        let label = match (judged, outcome) {
            (Verdict::Delivered, _) => "delivered",
            (Verdict::Gone, _) => "gone",
            (Verdict::Failed, Outcome::GiveUp) => "given_up",
            (Verdict::Failed, _) => "retrying",
        };
        attempt_metrics(label, &record, &tenant).emit();
        tracing::info!(
            endpoint_id = %record.endpoint_id, event_id = %record.event_id, attempt, status = record.status,
            latency_ms = record.latency_ms, outcome = ?outcome, "webhook attempt"
        );
        if let Some(reason) = disable {
            match self.endpoints.disable(&tenant, &stored.endpoint, reason, now).await {
                Ok(_) => tracing::warn!(endpoint_id = %stored.endpoint.id, ?reason, "endpoint disabled"),
                // Its owner changed it meanwhile: their version stands.
                Err(EndpointWriteError::Stale | EndpointWriteError::NotFound) => {}
                Err(EndpointWriteError::Db(err)) => return Err(err),
                Err(EndpointWriteError::LimitReached(_)) => {}
            }
        }
        Ok(outcome)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::EventType;

    #[test]
    fn an_attempt_is_a_valid_catalogued_emf_document_with_ids_as_properties_only() {
        let attempt = DeliveryAttempt {
            id: DeliveryAttempt::new_id(),
            endpoint_id: "whk_1".into(),
            event_id: "evt_1".into(),
            event_type: EventType::InspectionFailed,
            attempt: 2,
            attempted_at: Timestamp::now(),
            status: Some(503),
            latency_ms: 41,
            delivered: false,
            answer: String::new(),
            next_attempt_at: None,
        };
        let doc = attempt_metrics("retrying", &attempt, &TenantId::parse("acme").unwrap()).to_json(1);
        fleetgate_api::metrics::validate(&doc).unwrap();
        fleetgate_api::metrics::catalogued(&doc).unwrap();
        assert_eq!((doc["outcome"].as_str(), doc["WebhookDeliveryLatency"].as_f64()), (Some("retrying"), Some(41.0)));
        let dimensions = &doc["_aws"]["CloudWatchMetrics"][0]["Dimensions"];
        assert_eq!(dimensions, &serde_json::json!([["outcome"]]), "tenant and endpoint are never dimensions");
        assert_eq!(doc["tenant_id"], "acme");
    }
}
