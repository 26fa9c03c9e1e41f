//! The OpenAPI 3.1 document of the public API, generated from the route table
//! (paths, methods, functions, required scopes) and the validation rules of the
//! wire types. `docs/openapi.json` is this document; a test keeps them equal, and
//! `make test` runs schemathesis against the local stack with it.

use serde_json::{Map, Value, json};

use fleetgate_api::idempotency::MAX_KEY_CHARS;
use fleetgate_api::input::MAX_BODY_BYTES;
use fleetgate_api::list::{DEFAULT_LIMIT, MAX_LIMIT};
use fleetgate_fleet::inspections::MAX_RESULTS;
use fleetgate_fleet::templates::MAX_ITEMS;
use fleetgate_fleet::vehicles::{MAX_ODOMETER_KM, VehicleStatus};
use fleetgate_scopes::{ROUTES, Route, routes};
use fleetgate_webhooks::endpoints::MAX_DESCRIPTION_CHARS;
use fleetgate_webhooks::events::EventType;
use fleetgate_webhooks::target_url::MAX_URL_CHARS;

fn schema_ref(name: &str) -> Value {
    json!({"$ref": format!("#/components/schemas/{name}")})
}

fn nullable(schema: Value) -> Value {
    let mut schema = schema;
    let kind = schema["type"].clone();
    schema["type"] = json!([kind, "null"]);
    schema
}

/// Text as `fleetgate_api::input::text` accepts it: a character that is not blank,
/// no control characters (Unicode Cc), at most `max` characters once trimmed.
fn text(max: usize) -> Value {
    let other = "[^\\u0000-\\u001f\\u007f-\\u009f]";
    let visible = "[^\\s\\u0000-\\u001f\\u007f-\\u009f]";
    json!({"type": "string", "minLength": 1, "maxLength": max, "pattern": format!("^{other}*{visible}{other}*$")})
}

fn id(prefix: &str) -> Value {
    json!({"type": "string", "pattern": format!("^{prefix}[0-9A-HJKMNP-TV-Z]{{26}}$")})
}

fn timestamp() -> Value {
    json!({"type": "string", "format": "date-time"})
}

/// A timestamp a client sends. The server takes any RFC 3339 instant whose UTC year
/// is 1970 to 9999; the pattern states the local years that are in range under any
/// offset (1971 to 9998), so every string it admits is accepted.
fn timestamp_input(description: &str) -> Value {
    json!({"type": "string", "format": "date-time",
           "pattern": "^(197[1-9]|19[89][0-9]|[2-8][0-9]{3}|9[0-8][0-9]{2}|99[0-8][0-9]|999[0-8])-",
           "description": format!("{description} UTC year 1970 to 9999.").trim_start().to_owned()})
}

fn object(properties: Value, required: &[&str]) -> Value {
    json!({"type": "object", "properties": properties, "required": required, "additionalProperties": false})
}

fn page_of(item: &str) -> Value {
    object(
        json!({"data": {"type": "array", "items": schema_ref(item)}, "next_cursor": {"type": ["string", "null"]}}),
        &["data", "next_cursor"],
    )
}

/// Next year is the latest model year; the schema states the rule, the server enforces the date.
fn vehicle_fields() -> Map<String, Value> {
    let statuses: Vec<&str> = VehicleStatus::ALL.iter().map(|s| s.as_str()).collect();
    json!({
        "vin": {"type": "string", "pattern": "^[A-HJ-NPR-Za-hj-npr-z0-9]{17}$",
                "description": "17 characters, no I, O or Q; stored upper-case; unique per tenant."},
        "name": text(100), "make": text(50), "model": text(50),
        // A schema cannot say "next year"; `x-maximum` names the rule (the contract run pins it to a number).
        "year": {"type": "integer", "minimum": 1900, "x-maximum": "next-year", "description": "1900 to next year."},
        "license_plate": nullable(text(20)),
        "status": {"type": "string", "enum": statuses, "default": "active"},
        "odometer_km": {"type": "integer", "minimum": 0, "maximum": MAX_ODOMETER_KM, "default": 0},
    })
    .as_object()
    .cloned()
    .expect("object")
}

fn schemas() -> Value {
    let mut vehicle = vehicle_fields();
    vehicle.insert("id".into(), id("veh_"));
    vehicle.insert("version".into(), json!({"type": "integer", "minimum": 1}));
    vehicle.insert("created_at".into(), timestamp());
    vehicle.insert("updated_at".into(), timestamp());
    let vehicle_keys: Vec<&str> = vehicle.keys().map(String::as_str).collect();
    let writable = vehicle_fields();
    let writable_keys: Vec<&str> = writable.keys().map(String::as_str).collect();
    let mut replacement = vehicle.clone();
    for (_, schema) in replacement.iter_mut().filter(|(name, _)| !writable.contains_key(name.as_str())) {
        schema["description"] = json!("Set by the server: may be sent back unchanged.");
    }
    let patch: Map<String, Value> = writable.clone();
    let item_status = json!({"type": "string", "enum": ["pass", "fail", "na"]});
    let inspection_input_fields = json!({
        "vehicle_id": id("veh_"),
        "template_id": text(64),
        "type": {"type": "string", "enum": ["pre_trip", "post_trip", "periodic"]},
        "inspector": text(100),
        "performed_at": timestamp_input("Not in the future (5 minutes of clock skew allowed)."),
        "odometer_km": {"type": "integer", "minimum": 0, "maximum": MAX_ODOMETER_KM},
        "location": nullable(text(200)),
        "results": {"type": "array", "minItems": 1, "maxItems": MAX_RESULTS, "items": schema_ref("ItemResultInput")},
        "signature": nullable(text(200)),
    });
    let mut inspection = inspection_input_fields.as_object().cloned().expect("object");
    inspection.insert("id".into(), id("insp_"));
    inspection.insert("template_version".into(), json!({"type": "integer", "minimum": 1}));
    inspection.insert("results".into(), json!({"type": "array", "items": schema_ref("ItemResult")}));
    inspection.insert("outcome".into(), json!({"type": "string", "enum": ["pass", "fail"]}));
    inspection.insert("defects".into(), json!({"type": "array", "items": schema_ref("Defect")}));
    inspection.insert("submitted_by_key_id".into(), json!({"type": "string"}));
    inspection.insert("created_at".into(), timestamp());
    let inspection_keys: Vec<&str> = inspection.keys().map(String::as_str).collect();
    let scope_list = json!({"type": "array", "items": {"type": "string"}});
    let subscribable: Vec<&str> =
        EventType::ALL.into_iter().filter(|e| *e != EventType::WebhookTest).map(EventType::as_str).collect();
    let endpoint_status = json!({"type": "string", "enum": ["enabled", "disabled"]});
    let webhook_writable = json!({
        "url": {"type": "string", "format": "uri", "maxLength": MAX_URL_CHARS, "pattern": "^https://",
                "description": "https, no credentials, no fragment; a literal non-public address (loopback, private, \
                                link-local, …) is refused. Deliveries go only to public addresses, checked on every connection."},
        "events": {"type": "array", "minItems": 1, "items": {"type": "string", "enum": subscribable},
                   "description": "vehicle.* needs vehicles:read, inspection.* inspections:read (403 insufficient_scope otherwise)."},
        "description": nullable(text(MAX_DESCRIPTION_CHARS)),
        "status": endpoint_status,
    });
    let mut webhook = webhook_writable.as_object().cloned().expect("object");
    webhook.insert("id".into(), id("whk_"));
    webhook.insert(
        "disabled_reason".into(),
        json!({"type": ["string", "null"], "enum": ["requested", "gone", "failing", null],
        "description": "Why deliveries stopped: by request, the receiver answered 410, or five days of failures."}),
    );
    webhook.insert("version".into(), json!({"type": "integer", "minimum": 1}));
    webhook.insert("created_at".into(), timestamp());
    webhook.insert("updated_at".into(), timestamp());
    let webhook_keys: Vec<&str> = webhook.keys().map(String::as_str).collect();
    let mut webhook_replacement = webhook.clone();
    for (_, schema) in webhook_replacement.iter_mut().filter(|(name, _)| webhook_writable.get(name.as_str()).is_none())
    {
        schema["description"] = json!("Set by the server: may be sent back unchanged.");
    }
    let mut with_secret = webhook.clone();
    with_secret.insert(
        "secret".into(),
        json!({"type": "string", "pattern": "^whsec_",
        "description": "Verifies each delivery's webhook-signature (Standard Webhooks). Shown only here."}),
    );
    with_secret.insert(
        "previous_secret_expires_at".into(),
        json!({"type": "string", "format": "date-time",
        "description": "After a rotation: until when deliveries are signed with the replaced secret too."}),
    );
    let mut with_secret_keys = webhook_keys.clone();
    with_secret_keys.push("secret");
    let webhook_writable_keys: Vec<&str> =
        webhook_writable.as_object().expect("object").keys().map(String::as_str).collect();

    json!({
        "Problem": {
            "type": "object",
            "description": "RFC 9457 problem details with a stable `code` and the `request_id`.",
            "properties": {
                "type": {"type": "string"}, "title": {"type": "string"}, "status": {"type": "integer"},
                "detail": {"type": "string"}, "code": {"type": "string", "pattern": "^[a-z_]+$"},
                "request_id": {"type": "string"},
                "required_scopes": scope_list, "granted_scopes": scope_list, "effective_scopes": scope_list,
                "errors": {"type": "array", "items": {
                    "type": "object", "additionalProperties": false, "required": ["field", "message"],
                    "properties": {"field": {"type": "string"}, "message": {"type": "string"},
                                   "item_id": {"type": "string", "description": "The inspection item an entry is about."}}}},
                "existing_vehicle_id": {"type": "string", "description": "`vin_taken`: the vehicle that has the VIN."},
                "param": {"type": "string", "description": "A refused query parameter."},
                "value": {"type": "string", "description": "The value received for `param` (at most 200 characters)."},
                "limit": {"type": "integer", "description": "`rate_limited`, `quota_exceeded`: the requests the binding limit allows per window."},
                "window_seconds": {"type": "integer", "description": "That limit's window."},
                "retry_after": {"type": "integer", "description": "Seconds until it resets (as `Retry-After`)."},
            },
            "required": ["type", "title", "detail", "code", "request_id"],
        },
        "VehicleInput": {
            "type": "object", "properties": vehicle_fields(), "required": ["vin", "name", "make", "model", "year"],
            "additionalProperties": false,
        },
        "VehicleReplacement": {
            "type": "object",
            "description": "Every writable field (`license_plate` may be null). The server fields of a read \
                            vehicle may be sent back unchanged; a changed one is a 422.",
            "properties": replacement, "required": writable_keys, "additionalProperties": false,
        },
        "VehiclePatch": {
            "type": "object",
            "description": "JSON Merge Patch (RFC 7396): the fields to change; `null` removes a member, so \
                            `\"license_plate\": null` clears the plate and a null required field is a 422.",
            "properties": patch, "additionalProperties": false,
        },
        "Vehicle": {"type": "object", "properties": vehicle, "required": vehicle_keys, "additionalProperties": false},
        "VehiclePage": page_of("Vehicle"),
        "TemplateItem": object(
            json!({"id": {"type": "string"}, "label": {"type": "string"}, "required": {"type": "boolean"},
                   "category": {"type": ["string", "null"]}}),
            &["id", "label", "required", "category"],
        ),
        "Template": object(
            json!({"id": {"type": "string"}, "name": {"type": "string"}, "description": {"type": ["string", "null"]},
                   "items": {"type": "array", "maxItems": MAX_ITEMS, "items": schema_ref("TemplateItem")},
                   "version": {"type": "integer", "minimum": 1}, "created_at": timestamp(), "updated_at": timestamp()}),
            &["id", "name", "description", "items", "version", "created_at", "updated_at"],
        ),
        "TemplatePage": page_of("Template"),
        "ItemResultInput": {
            "type": "object",
            "properties": {"item_id": text(64), "status": item_status, "note": nullable(text(500))},
            "required": ["item_id", "status"], "additionalProperties": false,
        },
        "ItemResult": object(
            json!({"item_id": {"type": "string"}, "status": item_status, "note": {"type": ["string", "null"]}}),
            &["item_id", "status", "note"],
        ),
        "Defect": object(
            json!({"item_id": {"type": "string"}, "label": {"type": "string"}, "note": {"type": ["string", "null"]}}),
            &["item_id", "label", "note"],
        ),
        "InspectionInput": {
            "type": "object", "properties": inspection_input_fields,
            "required": ["vehicle_id", "template_id", "type", "inspector", "performed_at", "odometer_km", "results"],
            "additionalProperties": false,
        },
        "Inspection": {"type": "object", "properties": inspection, "required": inspection_keys, "additionalProperties": false},
        "InspectionPage": page_of("Inspection"),
        "Me": object(
            json!({"key_id": {"type": "string"}, "name": {"type": "string"}, "tenant_id": {"type": "string"},
                   "environment": {"type": "string", "enum": ["live", "test"]},
                   "granted_scopes": scope_list, "effective_scopes": scope_list, "expires_at": {"type": ["string", "null"]},
                   "allowed_cidrs": {"type": ["array", "null"], "items": {"type": "string"},
                                     "description": "The networks this key may be used from; null: any."},
                   "rate_limit": {"oneOf": [schema_ref("RateLimit"), {"type": "null"}],
                                  "description": "The key's own rate limit, or the deployment's default."},
                   "monthly_quota": {"type": ["integer", "null"], "description": "Requests per UTC calendar month; null: none."},
                   "tenant_rate_limit": {"oneOf": [schema_ref("RateLimit"), {"type": "null"}],
                                         "description": "The cap on all of the fleet's keys together; null: none."},
                   "usage": object(
                       json!({"month": {"type": "string", "pattern": "^[0-9]{4}-[0-9]{2}$"},
                              "requests": {"type": ["integer", "null"],
                                           "description": "This month's requests, this one included (null: not counted)."}}),
                       &["month", "requests"],
                   )}),
            &["key_id", "name", "tenant_id", "environment", "granted_scopes", "effective_scopes", "expires_at", "allowed_cidrs",
              "rate_limit", "monthly_quota", "tenant_rate_limit", "usage"],
        ),
        "WebhookEndpointInput": {
            "type": "object", "properties": webhook_writable, "required": ["url", "events"], "additionalProperties": false,
        },
        "WebhookEndpointReplacement": {
            "type": "object",
            "description": "Every writable field (`description` may be null). The server fields of a read endpoint may be \
                            sent back unchanged; a changed one is a 422.",
            "properties": webhook_replacement, "required": webhook_writable_keys, "additionalProperties": false,
        },
        "WebhookEndpoint": {"type": "object", "properties": webhook, "required": webhook_keys, "additionalProperties": false},
        "WebhookEndpointWithSecret": {
            "type": "object", "properties": with_secret, "required": with_secret_keys, "additionalProperties": false,
        },
        "WebhookEndpointPage": page_of("WebhookEndpoint"),
        "WebhookTestQueued": object(
            json!({"event_id": {"type": "string", "pattern": "^evt_", "description": "The delivery's webhook-id."},
                   "type": {"type": "string", "enum": ["webhook.test"]}, "endpoint_id": id("whk_")}),
            &["event_id", "type", "endpoint_id"],
        ),
        "DeliveryAttempt": object(
            json!({"id": id("dlv_"), "endpoint_id": id("whk_"),
                   "event_id": {"type": "string", "description": "The event's id: the delivery's webhook-id."},
                   "event_type": {"type": "string", "enum": EventType::ALL.map(EventType::as_str)},
                   "attempt": {"type": "integer", "minimum": 1}, "attempted_at": timestamp(),
                   "status": {"type": ["integer", "null"], "description": "The receiver's status; null: no answer."},
                   "latency_ms": {"type": "integer", "minimum": 0}, "delivered": {"type": "boolean"},
                   "answer": {"type": "string", "description": "The first 4 KiB of the answer, or why there was none."},
                   "next_attempt_at": {"type": ["string", "null"], "format": "date-time",
                                       "description": "When the next attempt is due; null: delivered or given up."}}),
            &["id", "endpoint_id", "event_id", "event_type", "attempt", "attempted_at", "status", "latency_ms",
              "delivered", "answer", "next_attempt_at"],
        ),
        "DeliveryAttemptPage": page_of("DeliveryAttempt"),
        "RateLimit": object(
            json!({"requests": {"type": "integer", "minimum": 1}, "per": {"type": "string", "enum": ["second", "minute"]},
                   "burst": {"type": "integer", "minimum": 1,
                             "description": "At most this many in each window of burst/requests pers."}}),
            &["requests", "per", "burst"],
        ),
    })
}

fn problem(description: &str) -> Value {
    json!({"description": description, "content": {"application/problem+json": {"schema": schema_ref("Problem")}}})
}

fn query(name: &str, schema: Value, description: &str) -> Value {
    json!({"name": name, "in": "query", "required": false, "schema": schema, "description": description})
}

const NO_ENDPOINT: &str = "No such webhook endpoint in your fleet.";

/// An operation's parameters, body, success response and its own error statuses.
struct Shape {
    parameters: Vec<Value>,
    body: Option<Value>,
    success: (String, Value),
    errors: Vec<(&'static str, &'static str)>,
}

/// What each route takes and answers, beyond what every route shares.
fn operation(route: &Route) -> Value {
    let page_params = vec![
        query(
            "limit",
            json!({"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT}),
            "Page size.",
        ),
        query("cursor", json!({"type": "string"}), "`next_cursor` of the previous page of the same query."),
    ];
    let id_param = |prefix: &str| json!({"name": "id", "in": "path", "required": true, "schema": id(prefix)});
    let idempotency = json!({"name": "Idempotency-Key", "in": "header", "required": false,
                             "schema": {"type": "string", "minLength": 1, "maxLength": MAX_KEY_CHARS, "pattern": "^[!-~]+$"},
                             "description": "Retries with the same key and body replay the first response (24 h)."});
    let if_match = |resource: &str| {
        json!({"name": "If-Match", "in": "header", "required": false, "schema": {"type": "string"},
               "description": format!("RFC 9110: `*` or a list of the {resource}'s ETags (`\"3\"`); the change \
                                       applies only if one matches (strong comparison: weak tags never do). \
                                       Malformed: 400 `invalid_if_match`.")})
    };
    let json_body =
        |schema: &str| json!({"required": true, "content": {"application/json": {"schema": schema_ref(schema)}}});
    let ok = |status: &str, schema: &str| {
        (
            status.to_owned(),
            json!({"description": "Success.", "content": {"application/json": {"schema": schema_ref(schema)}}}),
        )
    };
    let write_errors = [
        (
            "409",
            "Conflict: `vin_taken` (with `existing_vehicle_id`), `idempotency_key_reused` (another body), or `idempotency_key_in_progress` (with `Retry-After`).",
        ),
        ("413", "Body over 64 KiB."),
        ("415", "Body is not JSON."),
        ("422", "Body fails validation; `errors` names every field."),
    ];
    let shape =
        |parameters: Vec<Value>,
         body: Option<Value>,
         success: (String, Value),
         errors: Vec<(&'static str, &'static str)>| { Shape { parameters, body, success, errors } };
    let Shape { parameters, body, success, errors } = match *route {
        r if r == routes::LIST_VEHICLES => {
            let mut params = page_params;
            params.push(query(
                "status",
                json!({"type": "string", "enum": VehicleStatus::ALL.map(|s| s.as_str())}),
                "Only vehicles in this status.",
            ));
            params.push(query(
                "vin",
                json!({"type": "string", "pattern": "^[A-HJ-NPR-Za-hj-npr-z0-9]{17}$"}),
                "The vehicle with this VIN (a page of at most one; no cursor).",
            ));
            shape(params, None, ok("200", "VehiclePage"), vec![])
        }
        r if r == routes::CREATE_VEHICLE => {
            shape(vec![idempotency], Some(json_body("VehicleInput")), ok("201", "Vehicle"), write_errors.to_vec())
        }
        r if r == routes::GET_VEHICLE => {
            shape(vec![id_param("veh_")], None, ok("200", "Vehicle"), vec![("404", "No such vehicle in your fleet.")])
        }
        r if r == routes::UPDATE_VEHICLE || r == routes::PATCH_VEHICLE => {
            let mut errors = write_errors.to_vec();
            errors.extend([("404", "No such vehicle in your fleet."), ("412", "If-Match names another version.")]);
            let body = if r == routes::PATCH_VEHICLE {
                let schema = json!({"schema": schema_ref("VehiclePatch")});
                json!({"required": true, "content": {"application/merge-patch+json": schema, "application/json": schema}})
            } else {
                json_body("VehicleReplacement")
            };
            shape(vec![id_param("veh_"), if_match("vehicle")], Some(body), ok("200", "Vehicle"), errors)
        }
        r if r == routes::LIST_INSPECTION_TEMPLATES => shape(page_params, None, ok("200", "TemplatePage"), vec![]),
        r if r == routes::LIST_INSPECTIONS => {
            let mut params = page_params;
            params.extend([
                query("vehicle_id", id("veh_"), "Only this vehicle's inspections."),
                query("outcome", json!({"type": "string", "enum": ["pass", "fail"]}), "Only this outcome."),
                query("performed_after", timestamp_input(""), "Inclusive."),
                query("performed_before", timestamp_input(""), "Exclusive; later than `performed_after` (else 400)."),
            ]);
            shape(params, None, ok("200", "InspectionPage"), vec![])
        }
        r if r == routes::CREATE_INSPECTION => {
            shape(vec![idempotency], Some(json_body("InspectionInput")), ok("201", "Inspection"), write_errors.to_vec())
        }
        r if r == routes::GET_INSPECTION => shape(
            vec![id_param("insp_")],
            None,
            ok("200", "Inspection"),
            vec![("404", "No such inspection in your fleet.")],
        ),
        r if r == routes::CREATE_WEBHOOK => {
            let errors = vec![
                (
                    "409",
                    "Conflict: `webhook_endpoint_limit` (the fleet has its maximum of endpoints), `idempotency_key_reused` or `idempotency_key_in_progress`.",
                ),
                ("413", "Body over 64 KiB."),
                ("415", "Body is not JSON."),
                ("422", "Body fails validation; `errors` names every field."),
            ];
            shape(
                vec![idempotency],
                Some(json_body("WebhookEndpointInput")),
                ok("201", "WebhookEndpointWithSecret"),
                errors,
            )
        }
        r if r == routes::LIST_WEBHOOKS => shape(page_params, None, ok("200", "WebhookEndpointPage"), vec![]),
        r if r == routes::GET_WEBHOOK => {
            shape(vec![id_param("whk_")], None, ok("200", "WebhookEndpoint"), vec![("404", NO_ENDPOINT)])
        }
        r if r == routes::UPDATE_WEBHOOK => {
            let errors = vec![
                ("404", NO_ENDPOINT),
                ("412", "If-Match names another version."),
                ("413", "Body over 64 KiB."),
                ("415", "Body is not JSON."),
                ("422", "Body fails validation; `errors` names every field."),
            ];
            let body = Some(json_body("WebhookEndpointReplacement"));
            shape(vec![id_param("whk_"), if_match("endpoint")], body, ok("200", "WebhookEndpoint"), errors)
        }
        r if r == routes::DELETE_WEBHOOK => {
            let deleted = ("204".to_owned(), json!({"description": "Deleted."}));
            shape(vec![id_param("whk_")], None, deleted, vec![("404", NO_ENDPOINT)])
        }
        r if r == routes::ROTATE_WEBHOOK_SECRET => shape(
            vec![id_param("whk_"), idempotency],
            None,
            ok("200", "WebhookEndpointWithSecret"),
            vec![("404", NO_ENDPOINT), ("409", "`idempotency_key_reused` or `idempotency_key_in_progress`.")],
        ),
        r if r == routes::TEST_WEBHOOK => shape(
            vec![id_param("whk_"), idempotency],
            None,
            ok("202", "WebhookTestQueued"),
            vec![
                ("404", NO_ENDPOINT),
                (
                    "409",
                    "`endpoint_disabled` (enable it first), `idempotency_key_reused` or `idempotency_key_in_progress`.",
                ),
            ],
        ),
        r if r == routes::LIST_WEBHOOK_DELIVERIES => {
            let mut params = page_params;
            params.insert(0, id_param("whk_"));
            shape(params, None, ok("200", "DeliveryAttemptPage"), vec![("404", NO_ENDPOINT)])
        }
        _ => shape(vec![], None, ok("200", "Me"), vec![]),
    };
    let mut responses = Map::new();
    responses.insert(success.0, success.1);
    // Every route: the API key, its scope, malformed input, and DynamoDB trouble.
    let shared = [
        ("400", "Malformed JSON, query parameter (`param` and `value` name it), header or cursor."),
        ("401", "Missing or invalid API key."),
        (
            "403",
            "The key lacks the required scope (`insufficient_scope`; `X-Accepted-Scopes` names it), or is used from a network outside its `allowed_cidrs` (`ip_not_allowed`).",
        ),
        (
            "429",
            "Over the key's rate limit or its fleet's cap (`rate_limited`), or its monthly quota (`quota_exceeded`); retry after `Retry-After` seconds.",
        ),
        ("503", "DynamoDB is throttled or unreachable; retry after `Retry-After` seconds."),
    ];
    for (status, description) in shared.into_iter().chain(errors) {
        responses.insert(status.to_owned(), problem(description));
    }
    for (status, response) in responses.iter_mut() {
        response["headers"] = json!({"X-Request-Id": {"description": "The request's id, on every answer.",
                                                       "schema": {"type": "string"}}});
        // Every authenticated answer states the key's limits (draft-ietf-httpapi-ratelimit-headers).
        if status != "401" {
            response["headers"]["RateLimit-Policy"] = json!({"schema": {"type": "string"},
                "description": "The key's limits, e.g. `\"key\";q=100;w=1` (and `\"quota\"`, `\"tenant\"` items when set)."});
            response["headers"]["RateLimit"] = json!({"schema": {"type": "string"},
                "description": "What is left of each and when it resets, e.g. `\"key\";r=42;t=1`."});
        }
    }
    let scope = route.required_scope.map(|s| s.as_str());
    let mut op = json!({
        "operationId": route.function,
        "summary": route.describe(),
        "x-fleetgate-function": route.function,
        "x-required-scope": scope,
        "security": [{"ApiKey": []}],
        "parameters": parameters,
        "responses": responses,
    });
    if let Some(body) = body {
        op["requestBody"] = body;
    }
    op
}

/// The whole document.
pub fn document() -> Value {
    let mut paths = Map::new();
    for route in ROUTES {
        let entry = paths.entry(route.path.to_owned()).or_insert_with(|| json!({}));
        entry[route.method.to_ascii_lowercase()] = operation(&route);
    }
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "Fleetgate API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": format!("Fleet vehicles, inspection templates, inspections and webhooks. Every request carries an API key \
                                    in `X-API-Key`; each operation names its required scope in `x-required-scope`. \
                                    Bodies are JSON of at most {MAX_BODY_BYTES} bytes."),
        },
        "servers": [{"url": "http://127.0.0.1:9000", "description": "make dev"}],
        "components": {
            "securitySchemes": {"ApiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"}},
            "schemas": schemas(),
        },
        "paths": paths,
    })
}
