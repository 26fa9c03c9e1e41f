//! Bounded-time fuzzing of every parser that reads untrusted input: the API key
//! parser, the cursor decoder, the vehicle and inspection body parsers (from raw
//! bytes and from structured JSON), the scope parser and the small header and
//! path parsers. `cargo fuzz` needs a nightly toolchain, which CI does not have,
//! so proptest drives each target with structure-aware inputs (near-valid values
//! and mutations of valid ones reach deeper than random bytes) for
//! `FLEETGATE_FUZZ_SECONDS` each (default 3; `make test` gives 15, `make fuzz` more).
//!
//! Every target asserts more than "no panic": nothing is ever a 5xx, and what is
//! accepted satisfies the parser's own promises.

use std::time::{Duration, Instant};

use lambda_http::{Body, Request};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::{Map, Value, json};

use fleetgate_api::keys::ApiKey;
use fleetgate_api::list::{CursorSigner, Position, query_identity};
use fleetgate_api::{ApiError, Timestamp};
use fleetgate_fleet::inspections::{InspectionInput, Outcome};
use fleetgate_fleet::templates::{Template, TemplateInput};
use fleetgate_fleet::vehicles::{VehicleInput, Vin, parse_if_match};
use fleetgate_scopes::{Environment, Preset, Scope, ScopeSet, TenantId};

/// Runs `target` on inputs from `strategy` until the time budget is spent.
fn fuzz<S: Strategy>(name: &str, strategy: S, target: impl Fn(S::Value) -> Result<(), TestCaseError>) {
    let seconds = std::env::var("FLEETGATE_FUZZ_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(3);
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let batch = 256;
    let mut cases = 0u64;
    while Instant::now() < deadline {
        // A fresh runner per batch draws a fresh random seed.
        let mut runner = TestRunner::new(Config { cases: batch, failure_persistence: None, ..Config::default() });
        if let Err(failure) = runner.run(&strategy, &target) {
            panic!("fuzz target {name} failed after {cases} cases: {failure}");
        }
        cases += u64::from(batch);
    }
    eprintln!("fuzz target {name}: {cases} cases in {seconds} s, all held");
}

/// A client error: never a 5xx for anything a client can send.
fn client_error(err: &ApiError) -> Result<(), TestCaseError> {
    prop_assert!(err.status().is_client_error(), "{} for client input: {err:?}", err.status());
    Ok(())
}

// ------------------------------------------------------------------ inputs

/// Strings near the valid values of every field, plus arbitrary text.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        "\\PC{0,40}",
        "[A-HJ-NPR-Z0-9]{15,19}",
        "veh_[0-9A-HJKMNP-TV-Z]{24,28}",
        "tpl_[a-z]{1,8}",
        "20[0-9]{2}-[01][0-9]-[0-3][0-9]T[0-2][0-9]:[0-5][0-9]:[0-6][0-9](Z|\\+0[0-9]:00|\\.[0-9]{1,9}Z)?",
        "(active|in_shop|retired|pass|fail|na|pre_trip|post_trip|periodic|brakes|tyres|radio)",
        ".{200,260}",
    ]
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        (1900i64..2100).prop_map(Value::from),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        text().prop_map(Value::from),
    ]
}

/// Any JSON, with object keys mostly drawn from `fields`.
fn json_with(fields: &'static [&'static str]) -> impl Strategy<Value = Value> {
    let key = prop_oneof![4 => prop::sample::select(fields).prop_map(str::to_owned), 1 => "\\PC{0,12}"];
    leaf().prop_recursive(3, 48, 8, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map(key.clone(), inner, 0..8).prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// `valid` with some fields replaced by, or added as, arbitrary JSON.
fn mutated(valid: Value, fields: &'static [&'static str]) -> impl Strategy<Value = Value> {
    prop::collection::vec((prop::sample::select(fields), json_with(fields), any::<bool>()), 0..4).prop_map(
        move |changes| {
            let mut body = valid.clone();
            let object: &mut Map<String, Value> = body.as_object_mut().unwrap();
            for (field, value, remove) in changes {
                if remove {
                    object.remove(field);
                } else {
                    object.insert(field.to_owned(), value);
                }
            }
            body
        },
    )
}

fn request(content_type: &str, body: Vec<u8>) -> Request {
    http::Request::builder().header("content-type", content_type).body(Body::Binary(body)).unwrap()
}

// ------------------------------------------------------------------ targets

#[test]
fn api_key_parser() {
    let mutation = (0usize..44, any::<char>(), prop::bool::ANY).prop_map(|(at, c, live)| {
        let key = ApiKey::generate(if live { Environment::Live } else { Environment::Test }).expose().to_owned();
        let mut chars: Vec<char> = key.chars().collect();
        chars[at] = c;
        (key, chars.into_iter().collect::<String>())
    });
    let inputs = prop_oneof![
        "\\PC{0,60}".prop_map(|s| (String::new(), s)),
        "fg_(live|test)_[0-9A-Za-z]{30,40}".prop_map(|s| (String::new(), s)),
        mutation,
    ];
    fuzz("api key parser", inputs, |(original, presented)| {
        match ApiKey::parse(&presented) {
            Ok(key) => {
                prop_assert_eq!(key.expose(), presented.as_str());
                // Any single changed character of a real key is caught offline (CRC32 checksum).
                prop_assert!(original.is_empty() || original == presented, "a mutated key parsed: {presented}");
            }
            Err(_) => prop_assert!(original.is_empty() || original != presented, "a generated key was refused"),
        }
        Ok(())
    });
}

#[test]
fn cursor_decoder() {
    let signer = CursorSigner::new("fuzz-secret");
    let query = query_identity("acme", "GET /vehicles", &[("status", Some("active"))]);
    let position = prop::collection::btree_map("\\PC{0,10}", "\\PC{0,30}", 0..4);
    let edit = prop_oneof![
        (any::<prop::sample::Index>(), any::<char>()).prop_map(|(at, c)| Edit::Replace(at, c)),
        any::<prop::sample::Index>().prop_map(Edit::Truncate),
        "\\PC{1,4}".prop_map(Edit::Append),
        Just(Edit::None),
    ];
    let inputs = prop_oneof![
        (position.clone(), edit).prop_map(|(p, e)| (Some(p), e)),
        "\\PC{0,300}".prop_map(|garbage| (None, Edit::Append(garbage))),
    ];
    fuzz("cursor decoder", inputs, |(position, edit): (Option<Position>, Edit)| {
        let valid = position.as_ref().map(|p| signer.encode(&query, p)).unwrap_or_default();
        let presented = edit.apply(&valid);
        match signer.decode(&query, &presented) {
            // Only the untouched cursor decodes, to exactly its position.
            Ok(decoded) => {
                prop_assert_eq!(&presented, &valid);
                prop_assert_eq!(Some(decoded), position);
            }
            Err(err) => {
                prop_assert_eq!(err.code(), "invalid_cursor");
                prop_assert!(presented != valid || position.is_none());
            }
        }
        Ok(())
    });
}

#[derive(Clone, Debug)]
enum Edit {
    None,
    Replace(prop::sample::Index, char),
    Truncate(prop::sample::Index),
    Append(String),
}

impl Edit {
    fn apply(&self, cursor: &str) -> String {
        let chars: Vec<char> = cursor.chars().collect();
        match self {
            Edit::None => cursor.to_owned(),
            Edit::Replace(_, _) | Edit::Truncate(_) if chars.is_empty() => cursor.to_owned(),
            Edit::Replace(at, c) => {
                let mut chars = chars.clone();
                let at = at.index(chars.len());
                chars[at] = *c;
                chars.into_iter().collect()
            }
            Edit::Truncate(at) => chars[..at.index(chars.len())].iter().collect(),
            Edit::Append(extra) => format!("{cursor}{extra}"),
        }
    }
}

const VEHICLE_FIELDS: &[&str] =
    &["vin", "name", "make", "model", "year", "license_plate", "status", "odometer_km", "id", "version", "created_at"];

fn valid_vehicle() -> Value {
    json!({"vin": "1HGCM82633A004352", "name": "Truck 12", "make": "Volvo", "model": "FH16", "year": 2022,
           "license_plate": "AB-123", "status": "active", "odometer_km": 120000})
}

#[test]
fn vehicle_body_parser() {
    let now = Timestamp::now();
    let bodies = prop_oneof![json_with(VEHICLE_FIELDS), mutated(valid_vehicle(), VEHICLE_FIELDS)];
    fuzz("vehicle body parser", bodies, |body| {
        match VehicleInput::parse(body, now) {
            Ok(input) => {
                prop_assert!(Vin::parse(input.vin.as_str()).is_ok());
                prop_assert!((1..=100).contains(&input.name.chars().count()), "{:?}", input.name);
                prop_assert!((0..=fleetgate_fleet::vehicles::MAX_ODOMETER_KM).contains(&input.odometer_km));
            }
            Err(err) => client_error(&err)?,
        }
        Ok(())
    });
}

#[test]
fn json_bodies_from_raw_bytes() {
    let now = Timestamp::now();
    let bytes = prop_oneof![
        prop::collection::vec(any::<u8>(), 0..512),
        json_with(VEHICLE_FIELDS).prop_map(|v| v.to_string().into_bytes()),
        // Valid JSON with a byte changed: truncated strings, broken escapes, bad UTF-8.
        (json_with(VEHICLE_FIELDS), any::<prop::sample::Index>(), any::<u8>()).prop_map(|(v, at, b)| {
            let mut bytes = v.to_string().into_bytes();
            let at = at.index(bytes.len());
            bytes[at] = b;
            bytes
        }),
    ];
    let content_type = prop_oneof![
        Just("application/json"),
        Just("application/merge-patch+json; charset=utf-8"),
        Just("text/plain"),
        Just("")
    ];
    fuzz("json body from raw bytes", (content_type, bytes), |(content_type, bytes)| {
        let req = request(content_type, bytes);
        match fleetgate_api::input::json_body(&req) {
            Ok(body) => {
                if let Err(err) = VehicleInput::parse(body.clone(), now) {
                    client_error(&err)?;
                }
                if let Err(err) = InspectionInput::parse(body, now) {
                    client_error(&err)?;
                }
            }
            Err(err) => client_error(&err)?,
        }
        Ok(())
    });
}

const INSPECTION_FIELDS: &[&str] = &[
    "vehicle_id",
    "template_id",
    "type",
    "inspector",
    "performed_at",
    "odometer_km",
    "location",
    "results",
    "signature",
    "item_id",
    "status",
    "note",
    "outcome",
    "defects",
];

fn valid_inspection() -> Value {
    json!({"vehicle_id": "veh_01JDQ6W1ZK9Y3M4N5P6Q7R8S9T", "template_id": "tpl_pretrip", "type": "pre_trip",
           "inspector": "Ana Silva", "performed_at": "2026-11-01T08:00:00Z", "odometer_km": 120500,
           "results": [{"item_id": "brakes", "status": "fail", "note": "soft pedal"}, {"item_id": "tyres", "status": "pass"}]})
}

fn pretrip() -> Template {
    let input = TemplateInput::parse(json!({"id": "tpl_pretrip", "name": "Pre-trip", "items": [
        {"id": "brakes", "label": "Brakes"}, {"id": "tyres", "label": "Tyres"},
        {"id": "radio", "label": "Radio", "required": false}]}))
    .unwrap();
    Template::next_version(input, None, Timestamp::now())
}

#[test]
fn inspection_body_parser() {
    let now = Timestamp::now();
    let template = pretrip();
    // Result lists near the template's items: unknown, duplicate, missing and odd answers.
    let result = (
        prop_oneof!["(brakes|tyres|radio)", "\\PC{0,70}"],
        prop_oneof!["(pass|fail|na)", "\\PC{0,6}"],
        prop::option::of(".{0,520}"),
    )
        .prop_map(|(item_id, status, note)| json!({"item_id": item_id, "status": status, "note": note}));
    let results = prop::collection::vec(prop_oneof![4 => result, 1 => json_with(INSPECTION_FIELDS)], 0..6);
    let bodies = prop_oneof![
        json_with(INSPECTION_FIELDS),
        mutated(valid_inspection(), INSPECTION_FIELDS),
        results.prop_map(|results| {
            let mut body = valid_inspection();
            body["results"] = Value::Array(results);
            body
        }),
    ];
    fuzz("inspection body parser", bodies, |body| {
        let input = match InspectionInput::parse(body, now) {
            Ok(input) => input,
            Err(err) => return client_error(&err),
        };
        match input.against(&template, "key_fuzz", now) {
            Ok(inspection) => {
                let failed = inspection.results.iter().filter(|r| format!("{:?}", r.status) == "Fail").count();
                prop_assert_eq!(inspection.defects.len(), failed);
                prop_assert_eq!(inspection.outcome == Outcome::Fail, failed > 0);
                for item in template.items.iter().filter(|i| i.required) {
                    prop_assert!(inspection.results.iter().any(|r| r.item_id == item.id), "{} unanswered", item.id);
                }
            }
            Err(err) => client_error(&err)?,
        }
        Ok(())
    });
}

#[test]
fn scope_parser() {
    let names: Vec<String> = Scope::ALL
        .iter()
        .map(|s| s.as_str().to_owned())
        .chain(["reports:read", "users:read", "vehicles:*", "", "read-only"].map(str::to_owned))
        .collect();
    let token = prop_oneof![4 => prop::sample::select(names), 1 => "\\PC{0,20}"];
    let separator = prop_oneof![Just(" "), Just("  "), Just("\t"), Just("\n"), Just(","), Just("\u{a0}")];
    let lists = prop::collection::vec((token, separator), 0..12);
    fuzz("scope parser", lists, |tokens| {
        let text: String = tokens.iter().map(|(t, s)| format!("{t}{s}")).collect();
        if let Ok(set) = ScopeSet::parse_space_separated(&text) {
            // The canonical form parses back to the same set, and implication only adds.
            prop_assert_eq!(ScopeSet::parse_space_separated(&set.to_space_separated()).unwrap(), set.clone());
            prop_assert!(set.iter().all(|s| set.effective().contains(s)));
        }
        let granted: Vec<&str> = tokens.iter().map(|(t, _)| t.as_str()).collect();
        if let Err(err) = ScopeSet::parse_granted(&granted) {
            prop_assert!(err.to_string().len() < 1024, "errors stay bounded");
        }
        let _ = text.parse::<Preset>();
        Ok(())
    });
}

#[test]
fn header_and_path_parsers() {
    fuzz("If-Match, timestamps, tenant ids", "\\PC{0,80}", |text| {
        if let Err(err) = parse_if_match(&text) {
            client_error(&err)?;
        }
        if let Some(at) = Timestamp::parse(&text) {
            prop_assert_eq!(Timestamp::parse(&at.to_string()), Some(at));
        }
        if let Ok(tenant) = TenantId::parse(&text) {
            prop_assert_eq!(tenant.as_str(), text.as_str());
        }
        Ok(())
    });
}
