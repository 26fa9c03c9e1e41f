//! Webhook endpoints as the API shows them, and the validation of what a
//! client writes into one (every problem at once, as a 422).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use fleetgate_api::input::{Fields, text};
use fleetgate_api::{ApiError, Timestamp, ids};

use crate::events::EventType;
use crate::target_url::UrlPolicy;

pub const ID_PREFIX: &str = "whk_";
pub const MAX_DESCRIPTION_CHARS: usize = 500;

/// Fields the server sets; sending them is a 422 that names them.
pub const SERVER_OWNED_FIELDS: [&str; 7] =
    ["id", "version", "created_at", "updated_at", "disabled_reason", "secret", "tenant_id"];
/// Server-owned fields of the representation that a GET body sent back to PUT may carry unchanged.
const REPRESENTED_SERVER_FIELDS: [&str; 5] = ["id", "version", "created_at", "updated_at", "disabled_reason"];

#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EndpointStatus {
    Enabled,
    Disabled,
}

/// Why an endpoint is disabled.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DisabledReason {
    /// Its owner set `status: disabled`.
    Requested,
    /// It answered 410 Gone.
    Gone,
    /// Every delivery failed for five days.
    Failing,
}

/// An endpoint as the API returns it (never with its secret: that is shown
/// once, at creation and rotation, beside this representation).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    pub id: String,
    pub url: String,
    pub events: Vec<EventType>,
    pub description: Option<String>,
    pub status: EndpointStatus,
    pub disabled_reason: Option<DisabledReason>,
    pub version: u64,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl Endpoint {
    pub fn create(input: EndpointInput, now: Timestamp) -> Endpoint {
        let disabled_reason = (input.status == EndpointStatus::Disabled).then_some(DisabledReason::Requested);
        Endpoint {
            id: ids::new_sortable_id(ID_PREFIX),
            url: input.url,
            events: input.events,
            description: input.description,
            status: input.status,
            disabled_reason,
            version: 1,
            created_at: now,
            updated_at: now,
        }
    }

    /// This endpoint with its writable fields replaced. Re-enabling clears the
    /// reason it was disabled for; disabling by request records it.
    pub fn replaced(&self, input: EndpointInput, now: Timestamp) -> Endpoint {
        let disabled_reason = match input.status {
            EndpointStatus::Enabled => None,
            EndpointStatus::Disabled if self.status == EndpointStatus::Disabled => self.disabled_reason,
            EndpointStatus::Disabled => Some(DisabledReason::Requested),
        };
        Endpoint {
            url: input.url,
            events: input.events,
            description: input.description,
            status: input.status,
            disabled_reason,
            version: self.version + 1,
            updated_at: now,
            ..self.clone()
        }
    }

    /// Whether a delivery of `event` goes to this endpoint.
    pub fn receives(&self, event: EventType) -> bool {
        self.status == EndpointStatus::Enabled && self.events.contains(&event)
    }

    /// The strong ETag of this version: `"<version>"`.
    pub fn etag(&self) -> String {
        fleetgate_api::if_match::etag(self.version)
    }
}

/// The writable fields, validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EndpointInput {
    pub url: String,
    /// Distinct, in the order first given.
    pub events: Vec<EventType>,
    pub description: Option<String>,
    pub status: EndpointStatus,
}

impl EndpointInput {
    /// A POST body: `url` and `events` required, `description` optional,
    /// `status` defaults to enabled.
    pub fn parse(body: Value, policy: UrlPolicy) -> Result<EndpointInput, ApiError> {
        EndpointInput::parse_as(body, policy, None)
    }

    /// A PUT body: every writable field named (`description` may be null), and
    /// the representation's server fields sent back unchanged or not at all.
    pub fn parse_replacement(body: Value, policy: UrlPolicy, stored: &Endpoint) -> Result<EndpointInput, ApiError> {
        EndpointInput::parse_as(body, policy, Some(stored))
    }

    fn parse_as(body: Value, policy: UrlPolicy, replacing: Option<&Endpoint>) -> Result<EndpointInput, ApiError> {
        let mut fields = Fields::new(body)?;
        let url = fields.required("url", |v| {
            let url = v.as_str().ok_or("must be a string")?;
            policy.check(url).map(|_| url.to_owned())
        });
        let events = fields.required("events", parse_events);
        let description_of = |v: &Value| match v {
            Value::Null => Ok(None),
            v => text(v, MAX_DESCRIPTION_CHARS).map(Some),
        };
        let status_of = |v: &Value| {
            serde_json::from_value::<EndpointStatus>(v.clone())
                .map_err(|_| "must be one of: enabled, disabled".to_owned())
        };
        let (description, status) = match replacing {
            None => (
                fields.optional("description", description_of).map(Option::flatten),
                fields.optional("status", status_of).map(|s| s.unwrap_or(EndpointStatus::Enabled)),
            ),
            Some(_) => (fields.present("description", description_of), fields.required("status", status_of)),
        };
        if let Some(stored) = replacing {
            let representation = serde_json::to_value(stored).map_err(|e| ApiError::Internal(Box::new(e)))?;
            for field in REPRESENTED_SERVER_FIELDS {
                fields.unchanged(field, &representation[field]);
            }
        }
        fields.finish(&SERVER_OWNED_FIELDS)?;
        let missing = || ApiError::Internal("validated field missing".into());
        Ok(EndpointInput {
            url: url.ok_or_else(missing)?,
            events: events.ok_or_else(missing)?,
            description: description.ok_or_else(missing)?,
            status: status.ok_or_else(missing)?,
        })
    }
}

fn parse_events(value: &Value) -> Result<Vec<EventType>, String> {
    let names = value.as_array().ok_or("must be an array of event types")?;
    if names.is_empty() {
        return Err(format!("must name at least one of: {}", subscribable_list()));
    }
    let mut events = Vec::new();
    for name in names {
        let name = name.as_str().ok_or("must be an array of strings")?;
        match EventType::parse(name) {
            Some(EventType::WebhookTest) => {
                return Err("webhook.test is sent on request (POST /webhooks/{id}/test) to any endpoint; it is not subscribed to".into());
            }
            Some(event) if !events.contains(&event) => events.push(event),
            Some(_) => {}
            None => {
                let shown: String = name.chars().take(64).collect();
                return Err(format!("has an unknown event type '{shown}'; valid: {}", subscribable_list()));
            }
        }
    }
    Ok(events)
}

fn subscribable_list() -> String {
    EventType::ALL
        .into_iter()
        .filter(|e| *e != EventType::WebhookTest)
        .map(EventType::as_str)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const LIVE: UrlPolicy = UrlPolicy { allow_loopback: false };

    fn now() -> Timestamp {
        Timestamp::parse("2026-12-07T10:00:00Z").unwrap()
    }

    fn field_errors(result: Result<EndpointInput, ApiError>) -> Vec<(String, String)> {
        match result {
            Err(ApiError::ValidationFailed(errors)) => errors.into_iter().map(|e| (e.field, e.message)).collect(),
            other => panic!("expected a 422, got {other:?}"),
        }
    }

    #[test]
    fn a_minimal_body_is_enabled_and_repeated_events_are_kept_once() {
        let body = json!({"url": "https://hooks.example.com/x", "events": ["inspection.failed", "vehicle.created", "inspection.failed"]});
        let input = EndpointInput::parse(body, LIVE).unwrap();
        assert_eq!(input.events, [EventType::InspectionFailed, EventType::VehicleCreated]);
        assert_eq!((input.status, input.description.as_deref()), (EndpointStatus::Enabled, None));
        let endpoint = Endpoint::create(input, now());
        assert!(endpoint.id.starts_with(ID_PREFIX));
        assert!(endpoint.receives(EventType::VehicleCreated));
        assert!(!endpoint.receives(EventType::VehicleUpdated));
    }

    #[test]
    fn every_bad_field_is_named_in_one_422() {
        let body = json!({"url": "http://10.0.0.1/", "events": ["vehicle.deleted"], "description": 5,
                          "status": "paused", "secret": "whsec_x", "colour": "red"});
        let fields: Vec<String> = field_errors(EndpointInput::parse(body, LIVE)).into_iter().map(|(f, _)| f).collect();
        assert_eq!(fields, ["url", "events", "description", "status", "colour", "secret"]);
    }

    #[test]
    fn events_must_be_a_non_empty_list_of_known_subscribable_types() {
        for (events, says) in [
            (json!([]), "at least one"),
            (json!("vehicle.created"), "array"),
            (json!([1]), "strings"),
            (json!(["vehicle.*"]), "unknown event type 'vehicle.*'"),
            (json!(["webhook.test"]), "on request"),
        ] {
            let errors =
                field_errors(EndpointInput::parse(json!({"url": "https://h.example.com/", "events": events}), LIVE));
            assert_eq!(errors.len(), 1);
            assert!(errors[0].0 == "events" && errors[0].1.contains(says), "{errors:?}");
        }
    }

    #[test]
    fn a_put_names_every_field_and_may_send_back_the_server_fields_unchanged() {
        let stored = Endpoint::create(
            EndpointInput::parse(json!({"url": "https://h.example.com/", "events": ["vehicle.created"]}), LIVE)
                .unwrap(),
            now(),
        );
        let partial = json!({"url": "https://h.example.com/", "events": ["vehicle.created"]});
        let missing: Vec<String> = field_errors(EndpointInput::parse_replacement(partial, LIVE, &stored))
            .into_iter()
            .map(|(f, _)| f)
            .collect();
        assert_eq!(missing, ["description", "status"]);

        let mut read_back = serde_json::to_value(&stored).unwrap();
        read_back["status"] = json!("disabled");
        let input = EndpointInput::parse_replacement(read_back.clone(), LIVE, &stored).unwrap();
        let disabled = stored.replaced(input, now());
        assert_eq!(
            (disabled.status, disabled.disabled_reason, disabled.version),
            (EndpointStatus::Disabled, Some(DisabledReason::Requested), 2)
        );
        assert!(!disabled.receives(EventType::VehicleCreated));

        read_back["version"] = json!(9);
        let changed: Vec<String> = field_errors(EndpointInput::parse_replacement(read_back, LIVE, &stored))
            .into_iter()
            .map(|(f, _)| f)
            .collect();
        assert_eq!(changed, ["version"]);
    }

    #[test]
    fn re_enabling_clears_why_it_was_disabled() {
        let mut gone = Endpoint::create(
            EndpointInput::parse(json!({"url": "https://h.example.com/", "events": ["vehicle.created"]}), LIVE)
                .unwrap(),
            now(),
        );
        gone.status = EndpointStatus::Disabled;
        gone.disabled_reason = Some(DisabledReason::Gone);
        let mut body = serde_json::to_value(&gone).unwrap();
        let kept = gone.replaced(EndpointInput::parse_replacement(body.clone(), LIVE, &gone).unwrap(), now());
        assert_eq!(kept.disabled_reason, Some(DisabledReason::Gone), "an edit that keeps it disabled keeps the reason");
        body["status"] = json!("enabled");
        let enabled = gone.replaced(EndpointInput::parse_replacement(body, LIVE, &gone).unwrap(), now());
        assert_eq!((enabled.status, enabled.disabled_reason), (EndpointStatus::Enabled, None));
    }
}
