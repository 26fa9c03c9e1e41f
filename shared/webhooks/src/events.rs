//! The events an endpoint can subscribe to, what reading each one's data
//! takes, and the payload every delivery carries.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use fleetgate_api::Timestamp;
use fleetgate_api::dynamo::DbError;
use fleetgate_scopes::{Scope, ScopeSet, TenantId};

/// An event type, by its wire name.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum EventType {
    #[serde(rename = "vehicle.created")]
    VehicleCreated,
    #[serde(rename = "vehicle.updated")]
    VehicleUpdated,
    #[serde(rename = "inspection.created")]
    InspectionCreated,
    /// An inspection whose outcome is fail (also sent as `inspection.created`).
    #[serde(rename = "inspection.failed")]
    InspectionFailed,
    /// Sent on request by `POST /webhooks/{id}/test`, whatever the subscription.
    #[serde(rename = "webhook.test")]
    WebhookTest,
}

impl EventType {
    pub const ALL: [EventType; 5] = [
        EventType::VehicleCreated,
        EventType::VehicleUpdated,
        EventType::InspectionCreated,
        EventType::InspectionFailed,
        EventType::WebhookTest,
    ];

    pub const fn as_str(self) -> &'static str {
        match self {
            EventType::VehicleCreated => "vehicle.created",
            EventType::VehicleUpdated => "vehicle.updated",
            EventType::InspectionCreated => "inspection.created",
            EventType::InspectionFailed => "inspection.failed",
            EventType::WebhookTest => "webhook.test",
        }
    }

    pub fn parse(name: &str) -> Option<EventType> {
        EventType::ALL.into_iter().find(|event| event.as_str() == name)
    }

    /// The scope whose holder may read this event's data, and so subscribe to it:
    /// `webhooks:manage` is never a way around a scope.
    pub const fn required_scope(self) -> Option<Scope> {
        match self {
            EventType::VehicleCreated | EventType::VehicleUpdated => Some(Scope::VehiclesRead),
            EventType::InspectionCreated | EventType::InspectionFailed => Some(Scope::InspectionsRead),
            EventType::WebhookTest => None,
        }
    }

    /// The first scope that `events` need and `effective` (a key's effective
    /// scopes: [`ScopeSet::effective`]) lacks, if any.
    pub fn missing_scope(events: &[EventType], effective: &ScopeSet) -> Option<Scope> {
        events.iter().filter_map(|event| event.required_scope()).find(|scope| !effective.contains(*scope))
    }
}

impl std::fmt::Display for EventType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a delivery's body is: `{"type", "timestamp", "data"}`, `data` being the
/// resource exactly as the API returns it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Payload {
    #[serde(rename = "type")]
    pub event_type: EventType,
    pub timestamp: Timestamp,
    pub data: Value,
}

pub const EVENT_ID_PREFIX: &str = "evt_";
/// How long an event item stays in the table (TTL): the stream hands it to the
/// dispatcher within seconds and keeps records 24 hours; three days leave room
/// to investigate.
const EVENT_ITEM_DAYS: i64 = 3;

/// An event, as the outbox holds it.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    /// `evt_…`, sortable; the `webhook-id` of every delivery of it.
    pub id: String,
    pub payload: Payload,
    /// For `webhook.test`: the one endpoint it goes to (subscribed or not).
    pub endpoint_id: Option<String>,
}

impl Event {
    pub fn new(event_type: EventType, data: &impl Serialize, now: Timestamp) -> Result<Event, serde_json::Error> {
        let payload = Payload { event_type, timestamp: now, data: serde_json::to_value(data)? };
        Ok(Event { id: fleetgate_api::ids::new_sortable_id(EVENT_ID_PREFIX), payload, endpoint_id: None })
    }

    /// A `webhook.test` event for one endpoint, carrying the endpoint as the API shows it.
    pub fn test(endpoint: &crate::endpoints::Endpoint, now: Timestamp) -> Result<Event, serde_json::Error> {
        let event = Event::new(EventType::WebhookTest, endpoint, now)?;
        Ok(Event { endpoint_id: Some(endpoint.id.clone()), ..event })
    }

    /// The outbox item: put in the same transaction as the change it reports, so
    /// an event exists exactly when its change does; the fleet table's stream
    /// carries it to the dispatcher.
    pub fn outbox_item(&self, table: &str, tenant: &TenantId) -> Result<TransactWriteItem, DbError> {
        let body = serde_json::to_string(&self.payload).map_err(|e| DbError::Failed(Box::new(e)))?;
        let expires = self.payload.timestamp.unix_seconds() + EVENT_ITEM_DAYS * 86_400;
        let mut item = HashMap::from([
            ("pk".to_owned(), AttributeValue::S(tenant.to_string())),
            ("sk".to_owned(), AttributeValue::S(format!("{OUTBOX_PREFIX}{}", self.id))),
            ("type".to_owned(), AttributeValue::S(self.payload.event_type.as_str().to_owned())),
            (fleetgate_api::stored::BODY.to_owned(), AttributeValue::S(body)),
            ("expires_at_epoch".to_owned(), AttributeValue::N(expires.to_string())),
        ]);
        if let Some(endpoint_id) = &self.endpoint_id {
            item.insert("endpoint_id".to_owned(), AttributeValue::S(endpoint_id.clone()));
        }
        let put = Put::builder()
            .table_name(table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(sk)")
            .build()
            .map_err(|e| DbError::Failed(Box::new(e)))?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    /// The event an outbox item holds: an item read through the SDK, or a stream
    /// record's new image as Lambda hands it to the dispatcher.
    pub fn from_item(item: impl Into<serde_dynamo::Item>) -> Option<(TenantId, Event)> {
        let record: OutboxRecord = serde_dynamo::from_item(item).ok()?;
        let id = record.sk.strip_prefix(OUTBOX_PREFIX)?.to_owned();
        let tenant = TenantId::parse(&record.pk).ok()?;
        let payload = serde_json::from_str(&record.body).ok()?;
        Some((tenant, Event { id, payload, endpoint_id: record.endpoint_id }))
    }
}

/// An outbox item's attributes.
#[derive(Deserialize)]
struct OutboxRecord {
    pk: String,
    sk: String,
    body: String,
    endpoint_id: Option<String>,
}

/// The sort-key prefix of outbox items (what the dispatcher's stream filter selects).
pub const OUTBOX_PREFIX: &str = "event#";

/// Where a write puts the events it causes: the fleet table (`FLEET_TABLE`), whose
/// stream is the outbox. Every vehicle and inspection write emits its events,
/// whether or not the tenant has an endpoint yet: reading the endpoints first
/// would cost a round trip on every write and race an endpoint being created.
/// Cost per write: one more item (two for a failed inspection) in the write's own
/// transaction, no extra round trip; the items expire after three days.
#[derive(Clone, Debug)]
pub struct Outbox {
    table: String,
}

impl Outbox {
    pub fn new(table: String) -> Outbox {
        Outbox { table }
    }

    pub fn from_env() -> Result<Outbox, fleetgate_api::dynamo::ConfigError> {
        Ok(Outbox::new(fleetgate_api::dynamo::env_var("FLEET_TABLE")?))
    }

    /// The outbox items announcing `events` about `data` (the resource exactly as the
    /// API returns it), for the transaction that makes the change.
    pub fn items(
        &self,
        tenant: &TenantId,
        events: &[EventType],
        data: &impl Serialize,
        now: Timestamp,
    ) -> Result<Vec<TransactWriteItem>, DbError> {
        let data = serde_json::to_value(data).map_err(|e| DbError::Failed(Box::new(e)))?;
        events
            .iter()
            .map(|event_type| {
                let event = Event::new(*event_type, &data, now).map_err(|e| DbError::Failed(Box::new(e)))?;
                event.outbox_item(&self.table, tenant)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_names_are_none() {
        for event in EventType::ALL {
            assert_eq!(EventType::parse(event.as_str()), Some(event));
            assert_eq!(serde_json::to_value(event).unwrap(), event.as_str());
        }
        assert_eq!(EventType::parse("vehicle.*"), None);
        assert_eq!(EventType::parse("Vehicle.Created"), None);
    }

    #[test]
    fn subscribing_needs_the_read_scope_of_the_data() {
        let read_vehicles = ScopeSet::parse_granted(["vehicles:read"]).unwrap();
        let all = [EventType::VehicleCreated, EventType::InspectionFailed];
        assert_eq!(EventType::missing_scope(&all, &read_vehicles), Some(Scope::InspectionsRead));
        assert_eq!(EventType::missing_scope(&all[..1], &read_vehicles), None);
        // A write scope implies its read scope (effective scopes are the closure).
        let writes = ScopeSet::parse_granted(["vehicles:write", "inspections:write"]).unwrap();
        assert_eq!(EventType::missing_scope(&all, &writes), Some(Scope::VehiclesRead));
        assert_eq!(EventType::missing_scope(&all, &writes.effective()), None);
        assert_eq!(EventType::missing_scope(&[EventType::WebhookTest], &ScopeSet::default()), None);
    }

    #[test]
    fn an_outbox_item_reads_back_as_its_event() {
        let now = Timestamp::parse("2026-12-07T10:00:00Z").unwrap();
        let event = Event::new(EventType::VehicleCreated, &serde_json::json!({"id": "veh_1"}), now).unwrap();
        let tenant = TenantId::parse("acme").unwrap();
        let put = event.outbox_item("fleet", &tenant).unwrap().put.unwrap();
        let item = put.item().clone();
        assert_eq!(item["sk"].as_s().unwrap(), &format!("event#{}", event.id));
        assert_eq!(item["expires_at_epoch"].as_n().unwrap(), &(now.unix_seconds() + 3 * 86_400).to_string());
        let body: Value = serde_json::from_str(item["body"].as_s().unwrap()).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"type": "vehicle.created", "timestamp": "2026-12-07T10:00:00Z", "data": {"id": "veh_1"}})
        );
        assert_eq!(Event::from_item(item), Some((tenant, event)));
    }
}
