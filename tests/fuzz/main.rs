//! Bounded-time fuzzing of every parser that reads untrusted input: the API key
//! parser, the cursor decoder, the vehicle and inspection body parsers (from raw
//! bytes and from structured JSON), the scope parser and the small header and
//! path parsers. `cargo fuzz` needs a nightly toolchain, which CI does not have,
//! so proptest drives each target with structure-aware inputs (near-valid values
//! and mutations of valid ones reach deeper than random bytes) for
//! `FLEETGATE_FUZZ_SECONDS` each (default 3; `make test` gives 15, `make fuzz` more).
//!
//! Every target asserts more than "no panic": nothing is ever a 5xx, what is
//! accepted satisfies the parser's own promises, and what is refused is refused
//! for the reason an independent oracle in the target predicts. Each target
//! prints how many cases took each branch and fails if a branch it names was
//! never reached (generators draw valid values and the near misses next to them).

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use lambda_http::{Body, Request};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::{Map, Value, json};

use fleetgate_api::if_match::parse_if_match;
use fleetgate_api::keys::ApiKey;
use fleetgate_api::list::{CursorSigner, Position, query_identity};
use fleetgate_api::{ApiError, Timestamp};
use fleetgate_fleet::inspections::{CLOCK_SKEW, InspectionInput, ItemStatus, Outcome};
use fleetgate_fleet::templates::{Template, TemplateInput};
use fleetgate_fleet::vehicles::VehicleInput;
use fleetgate_scopes::{Environment, Preset, Scope, ScopeSet, TenantId};

/// Runs `target` on inputs from `strategy` until the time budget is spent.
/// `target` names the branch its input took; the tally is printed, and every
/// name in `must_reach` has to have been taken at least once: a generator that
/// never reaches a parser's accepting branch (or one of its refusals) tests nothing.
fn fuzz<S: Strategy>(
    name: &str,
    must_reach: &[&'static str],
    strategy: S,
    target: impl Fn(S::Value) -> Result<&'static str, TestCaseError>,
) {
    let seconds = std::env::var("FLEETGATE_FUZZ_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(3);
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let batch = 256;
    let mut cases = 0u64;
    let tally: RefCell<BTreeMap<&'static str, u64>> = RefCell::default();
    let counted = |input: S::Value| {
        let branch = target(input)?;
        *tally.borrow_mut().entry(branch).or_default() += 1;
        Ok(())
    };
    while Instant::now() < deadline {
        // A fresh runner per batch draws a fresh random seed.
        let mut runner = TestRunner::new(Config { cases: batch, failure_persistence: None, ..Config::default() });
        if let Err(failure) = runner.run(&strategy, counted) {
            panic!("fuzz target {name} failed after {cases} cases: {failure}");
        }
        cases += u64::from(batch);
    }
    let tally = tally.into_inner();
    let branches: Vec<String> = tally.iter().map(|(branch, n)| format!("{branch}: {n}")).collect();
    eprintln!("fuzz target {name}: {cases} cases in {seconds} s, all held; {}", branches.join(", "));
    for branch in must_reach {
        assert!(tally.contains_key(branch), "fuzz target {name} never reached \"{branch}\": {branches:?}");
    }
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
    let generated = any::<bool>().prop_map(|live| {
        let key = ApiKey::generate(if live { Environment::Live } else { Environment::Test }).expose().to_owned();
        (key.clone(), key)
    });
    let mutation = (0usize..44, any::<char>(), any::<bool>()).prop_map(|(at, c, live)| {
        let key = ApiKey::generate(if live { Environment::Live } else { Environment::Test }).expose().to_owned();
        let mut chars: Vec<char> = key.chars().collect();
        chars[at] = c;
        (key, chars.into_iter().collect::<String>())
    });
    let inputs = prop_oneof![
        1 => "\\PC{0,60}".prop_map(|s| (String::new(), s)),
        1 => "fg_(live|test)_[0-9A-Za-z]{30,40}".prop_map(|s| (String::new(), s)),
        1 => generated,
        4 => mutation,
    ];
    let branches = ["generated key accepted", "changed key refused", "random text refused"];
    fuzz("api key parser", &branches, inputs, |(original, presented)| match ApiKey::parse(&presented) {
        Ok(key) => {
            prop_assert_eq!(key.expose(), presented.as_str());
            // Any single changed character of a real key is caught offline (CRC32 checksum).
            prop_assert!(!original.is_empty(), "random text parsed as a key: {presented}");
            prop_assert_eq!(&original, &presented, "a changed key parsed");
            Ok("generated key accepted")
        }
        Err(_) if original.is_empty() => Ok("random text refused"),
        Err(_) => {
            prop_assert!(original != presented, "a generated key was refused");
            Ok("changed key refused")
        }
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
        3 => (position.clone(), edit).prop_map(|(p, e)| (Some(p), e)),
        1 => "\\PC{0,300}".prop_map(|garbage| (None, Edit::Append(garbage))),
    ];
    let branches = ["intact cursor decoded", "edited cursor refused", "garbage refused"];
    fuzz("cursor decoder", &branches, inputs, |(position, edit): (Option<Position>, Edit)| {
        let valid = position.as_ref().map(|p| signer.encode(&query, p)).unwrap_or_default();
        let presented = edit.apply(&valid);
        match signer.decode(&query, &presented) {
            // Only the untouched cursor decodes, to exactly its position.
            Ok(decoded) => {
                prop_assert_eq!(&presented, &valid);
                prop_assert_eq!(Some(decoded), position);
                Ok("intact cursor decoded")
            }
            Err(err) => {
                prop_assert_eq!(err.code(), "invalid_cursor");
                if position.is_none() {
                    return Ok("garbage refused");
                }
                prop_assert!(presented != valid, "an intact cursor was refused");
                Ok("edited cursor refused")
            }
        }
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

const VEHICLE_WRITABLE: &[&str] = &["vin", "name", "make", "model", "year", "license_plate", "status", "odometer_km"];

const VEHICLE_FIELDS: &[&str] =
    &["vin", "name", "make", "model", "year", "license_plate", "status", "odometer_km", "id", "version", "created_at"];

fn valid_vehicle() -> Value {
    json!({"vin": "1HGCM82633A004352", "name": "Truck 12", "make": "Volvo", "model": "FH16", "year": 2022,
           "license_plate": "AB-123", "status": "active", "odometer_km": 120000})
}

/// Text of exactly `len` characters, or padded with blanks, or with a control character:
/// the edges of a length-limited text field.
fn text_near(max: usize) -> impl Strategy<Value = Value> {
    prop_oneof![
        (1..=max).prop_map(|n| Value::from("x".repeat(n))),
        Just(Value::from("x".repeat(max + 1))),
        Just(Value::from(format!("  {}  ", "y".repeat(max)))),
        Just(Value::from("   ")),
        Just(Value::from("tab\there")),
        Just(Value::from("")),
    ]
}

/// A value for one vehicle field: valid ones and the near misses next to them.
fn vehicle_field(latest_year: i64) -> impl Strategy<Value = (&'static str, Value)> {
    let max_km = fleetgate_fleet::vehicles::MAX_ODOMETER_KM;
    prop_oneof![
        prop_oneof![
            "[A-HJ-NPR-Z0-9]{17}".prop_map(Value::from),
            "[a-hj-npr-z0-9]{17}".prop_map(Value::from),
            "[A-Z0-9]{16,18}".prop_map(Value::from),
            " [A-HJ-NPR-Z0-9]{17} ".prop_map(Value::from),
        ]
        .prop_map(|v| ("vin", v)),
        text_near(100).prop_map(|v| ("name", v)),
        text_near(50).prop_map(|v| ("make", v)),
        text_near(50).prop_map(|v| ("model", v)),
        prop_oneof![Just(Value::Null), text_near(20)].prop_map(|v| ("license_plate", v)),
        prop_oneof![1890i64..=1910, (latest_year - 5)..=(latest_year + 5), any::<i64>()]
            .prop_map(|y| ("year", Value::from(y))),
        Just(("year", json!(2022.5))),
        Just(("year", json!("2022"))),
        prop_oneof![-2i64..=2, (max_km - 2)..=(max_km + 2)].prop_map(|km| ("odometer_km", Value::from(km))),
        prop_oneof![
            "(active|inactive|in_shop|retired|Active|in-shop|deleted)".prop_map(Value::from),
            Just(Value::Null)
        ]
        .prop_map(|s| ("status", s)),
        prop::sample::select(fleetgate_fleet::vehicles::SERVER_OWNED_FIELDS.as_slice())
            .prop_map(|field| (field, json!("veh_01JDQ6W1ZK9Y3M4N5P6Q7R8S9T"))),
        "[a-z_]{1,12}".prop_map(|field| (Box::leak(field.into_boxed_str()) as &'static str, json!(1))),
    ]
}

#[test]
fn vehicle_body_parser() {
    let now = Timestamp::now();
    let latest_year = i64::from(now.year()) + 1;
    let edits = prop::collection::vec((vehicle_field(latest_year), prop::bool::weighted(0.2)), 0..4);
    let near_valid = edits.prop_map(|edits| {
        let mut body = valid_vehicle();
        for ((field, value), remove) in edits {
            if remove {
                body.as_object_mut().unwrap().remove(field)
            } else {
                body.as_object_mut().unwrap().insert(field.into(), value)
            };
        }
        body
    });
    let bodies =
        prop_oneof![4 => near_valid, 1 => json_with(VEHICLE_FIELDS), 1 => mutated(valid_vehicle(), VEHICLE_FIELDS)];
    let branches = [
        "accepted",
        "refused: server-owned field",
        "refused: unknown field",
        "refused: year out of range",
        "refused: missing field",
        "refused: other field errors",
    ];
    fuzz("vehicle body parser", &branches, bodies, |body| {
        let sent = body.as_object().cloned().unwrap_or_default();
        let server_owned: Vec<&String> =
            sent.keys().filter(|f| fleetgate_fleet::vehicles::SERVER_OWNED_FIELDS.contains(&f.as_str())).collect();
        let unknown: Vec<&String> =
            sent.keys().filter(|f| !VEHICLE_WRITABLE.contains(&f.as_str()) && !server_owned.contains(f)).collect();
        let year_out_of_range =
            sent.get("year").and_then(Value::as_i64).is_some_and(|y| !(1900..=latest_year).contains(&y));
        let missing =
            ["vin", "name", "make", "model", "year"].into_iter().any(|f| sent.get(f).is_none_or(Value::is_null));
        match VehicleInput::parse(body.clone(), now) {
            Ok(input) => {
                prop_assert!(server_owned.is_empty() && unknown.is_empty() && !year_out_of_range && !missing, "{body}");
                // What was accepted is what was sent (text trimmed, VIN upper-cased, defaults filled).
                prop_assert_eq!(input.vin.as_str(), sent["vin"].as_str().unwrap().trim().to_ascii_uppercase());
                prop_assert_eq!(&input.name, sent["name"].as_str().unwrap().trim());
                prop_assert_eq!(i64::from(input.year), sent["year"].as_i64().unwrap());
                prop_assert_eq!(input.status.as_str(), sent.get("status").and_then(Value::as_str).unwrap_or("active"));
                prop_assert_eq!(input.odometer_km, sent.get("odometer_km").and_then(Value::as_i64).unwrap_or(0));
                prop_assert_eq!(
                    input.license_plate.as_deref(),
                    sent.get("license_plate").and_then(Value::as_str).map(str::trim)
                );
                Ok("accepted")
            }
            Err(ApiError::ValidationFailed(errors)) => {
                let named = |field: &str| errors.iter().any(|e| e.field == field);
                for field in server_owned.iter().chain(&unknown) {
                    prop_assert!(
                        named(field.chars().take(64).collect::<String>().as_str()),
                        "{field} not named: {errors:?}"
                    );
                }
                prop_assert!(!year_out_of_range || named("year"), "year not named: {errors:?}");
                Ok(if !server_owned.is_empty() {
                    "refused: server-owned field"
                } else if !unknown.is_empty() {
                    "refused: unknown field"
                } else if year_out_of_range {
                    "refused: year out of range"
                } else if missing {
                    "refused: missing field"
                } else {
                    "refused: other field errors"
                })
            }
            Err(err) => {
                client_error(&err)?;
                Ok("refused: not an object")
            }
        }
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
    let branches = ["parsed as JSON", "refused"];
    fuzz("json body from raw bytes", &branches, (content_type, bytes), |(content_type, bytes)| {
        let req = request(content_type, bytes);
        match fleetgate_api::input::json_body(&req) {
            Ok(body) => {
                if let Err(err) = VehicleInput::parse(body.clone(), now) {
                    client_error(&err)?;
                }
                if let Err(err) = InspectionInput::parse(body, now) {
                    client_error(&err)?;
                }
                Ok("parsed as JSON")
            }
            Err(err) => {
                client_error(&err)?;
                Ok("refused")
            }
        }
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
    // Answers near the template's items: unknown, duplicate, missing and odd answers.
    let result = (
        prop_oneof![6 => "(brakes|tyres|radio)", 1 => "(Brakes|wipers)", 1 => "\\PC{0,70}"],
        prop_oneof![16 => "(pass|fail|na)", 1 => "\\PC{0,6}"],
        prop::option::of(prop_oneof![16 => "[a-z][ -~]{0,19}", 1 => ".{0,20}", 1 => "[a-z]{495,505}"]),
    )
        .prop_map(|(item_id, status, note)| json!({"item_id": item_id, "status": status, "note": note}));
    let results = prop_oneof![
        8 => prop::collection::vec(prop_oneof![12 => result, 1 => json_with(INSPECTION_FIELDS)], 1..5),
        1 => prop::collection::vec(json_with(INSPECTION_FIELDS), 0..3),
    ];
    // Around now + the allowed clock skew, to the second.
    let skew = CLOCK_SKEW.whole_seconds();
    let performed_at = prop_oneof![
        2 => ((skew - 3)..=(skew + 3)).prop_map(move |s| Value::from(now.plus(time::Duration::seconds(s)).to_string())),
        6 => (-400_000_000i64..0).prop_map(move |s| Value::from(now.plus(time::Duration::seconds(s)).to_string())),
        1 => Just(json!("2026-02-30T08:00:00Z")),
        1 => Just(json!("yesterday")),
    ];
    let bodies = prop_oneof![
        1 => json_with(INSPECTION_FIELDS),
        1 => mutated(valid_inspection(), INSPECTION_FIELDS),
        6 => (results, performed_at).prop_map(|(results, performed_at)| {
            let mut body = valid_inspection();
            body["results"] = Value::Array(results);
            body["performed_at"] = performed_at;
            body
        }),
    ];
    let branches = [
        "accepted: pass",
        "accepted: fail",
        "refused: performed_at in the future",
        "refused: unknown item",
        "refused: duplicate answer",
        "refused: required item unanswered",
        "refused: other field errors",
    ];
    fuzz("inspection body parser", &branches, bodies, |body| {
        let in_future =
            body["performed_at"].as_str().and_then(Timestamp::parse).is_some_and(|at| at > now.plus(CLOCK_SKEW));
        let input = match InspectionInput::parse(body, now) {
            Ok(input) => input,
            Err(ApiError::ValidationFailed(errors)) => {
                let performed_at_named = errors.iter().any(|e| e.field == "performed_at");
                prop_assert!(!in_future || performed_at_named, "a future performed_at passed: {errors:?}");
                return Ok(if in_future {
                    "refused: performed_at in the future"
                } else {
                    "refused: other field errors"
                });
            }
            Err(err) => {
                client_error(&err)?;
                return Ok("refused: other field errors");
            }
        };
        prop_assert!(!in_future);
        // The oracle: which answers are unknown, repeated, or missing, worked out here.
        let known: Vec<&str> = template.items.iter().map(|i| i.id.as_str()).collect();
        let mut seen = Vec::new();
        let (mut unknown, mut duplicate) = (Vec::new(), Vec::new());
        for (index, result) in input.results.iter().enumerate() {
            if !known.contains(&result.item_id.as_str()) {
                unknown.push(format!("results[{index}].item_id"));
            } else if seen.contains(&result.item_id) {
                duplicate.push(format!("results[{index}].item_id"));
            } else {
                seen.push(result.item_id.clone());
            }
        }
        let unanswered: Vec<&str> =
            template.items.iter().filter(|i| i.required && !seen.contains(&i.id)).map(|i| i.id.as_str()).collect();
        let failed = input.results.iter().filter(|r| r.status == ItemStatus::Fail).count();
        match input.against(&template, "key_fuzz", now) {
            Ok(inspection) => {
                prop_assert!(unknown.is_empty() && duplicate.is_empty() && unanswered.is_empty());
                prop_assert_eq!(inspection.defects.len(), failed);
                prop_assert_eq!(inspection.outcome == Outcome::Fail, failed > 0);
                Ok(if failed > 0 { "accepted: fail" } else { "accepted: pass" })
            }
            Err(ApiError::ValidationFailed(errors)) => {
                // Every problem is reported at once, each at its own answer.
                for field in unknown.iter().chain(&duplicate) {
                    prop_assert!(errors.iter().any(|e| &e.field == field), "{field} not named: {errors:?}");
                }
                for item in &unanswered {
                    prop_assert!(errors.iter().any(|e| e.message.contains(&format!("'{item}'"))), "{item}: {errors:?}");
                }
                prop_assert_eq!(errors.len(), unknown.len() + duplicate.len() + unanswered.len(), "{:?}", errors);
                Ok(if !unknown.is_empty() {
                    "refused: unknown item"
                } else if !duplicate.is_empty() {
                    "refused: duplicate answer"
                } else {
                    "refused: required item unanswered"
                })
            }
            Err(err) => {
                client_error(&err)?;
                Ok("refused: other field errors")
            }
        }
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
    fuzz("scope parser", &["accepted", "refused"], lists, |tokens| {
        let text: String = tokens.iter().map(|(t, s)| format!("{t}{s}")).collect();
        let granted: Vec<&str> = tokens.iter().map(|(t, _)| t.as_str()).collect();
        if let Err(err) = ScopeSet::parse_granted(&granted) {
            prop_assert!(err.to_string().len() < 1024, "errors stay bounded");
        }
        let _ = text.parse::<Preset>();
        match ScopeSet::parse_space_separated(&text) {
            Ok(set) => {
                // Only active scopes; the canonical form parses back to the same set; implication only adds.
                prop_assert!(set.iter().all(|s| Scope::ALL.contains(&s)));
                prop_assert_eq!(ScopeSet::parse_space_separated(&set.to_space_separated()).unwrap(), set.clone());
                prop_assert!(set.iter().all(|s| set.effective().contains(s)));
                Ok("accepted")
            }
            Err(_) => Ok("refused"),
        }
    });
}

#[test]
fn if_match_parser() {
    use fleetgate_api::if_match::IfMatch;
    let version = any::<u64>().prop_map(|n| n % 1000);
    // One list element: its text, and the version it names under strong comparison.
    let tag = prop_oneof![
        version.clone().prop_map(|n| (format!("\"{n}\""), Some(n))),
        version.clone().prop_map(|n| (format!("W/\"{n}\""), None)),
        "[a-z!#-]{0,6}".prop_map(|t| (format!("\"{t}\""), None)),
    ];
    let separator = prop_oneof![Just(","), Just(", "), Just(" ,"), Just(",,"), Just("\t,")];
    let list = prop::collection::vec((tag, separator), 1..4).prop_map(|tags| {
        let text = tags.iter().map(|((t, _), sep)| format!("{t}{sep}")).collect::<String>();
        let text = text.trim_end_matches([',', ' ', '\t']).to_owned();
        (text, Some(IfMatch::Versions(tags.iter().filter_map(|((_, v), _)| *v).collect())))
    });
    let inputs = prop_oneof![
        4 => list,
        1 => Just(("*".to_owned(), Some(IfMatch::Any))),
        // Near misses: unquoted, half-quoted, a blank inside a tag, a star in a list.
        1 => version.clone().prop_map(|n| (n.to_string(), None)),
        1 => version.clone().prop_map(|n| (format!("\"{n}"), None)),
        1 => version.clone().prop_map(|n| (format!("\"{n} \""), None)),
        1 => version.prop_map(|n| (format!("*, \"{n}\""), None)),
        1 => "\\PC{0,20}".prop_map(|s| (s, None)),
    ];
    let branches = ["versions named", "any version", "refused"];
    fuzz("If-Match parser", &branches, inputs, |(header, expected)| match (parse_if_match(&header), expected) {
        (Ok(parsed), Some(expected)) => {
            prop_assert_eq!(&parsed, &expected, "{:?}", header);
            Ok(if parsed == IfMatch::Any { "any version" } else { "versions named" })
        }
        (Ok(parsed), None) => {
            // Random text that happens to be valid must hold a quoted tag (or be *).
            prop_assert!(header.trim() == "*" || header.matches('"').count() >= 2, "{header:?} parsed as {parsed:?}");
            Ok(if parsed == IfMatch::Any { "any version" } else { "versions named" })
        }
        (Err(err), expected) => {
            prop_assert_eq!((err.status().as_u16(), err.code()), (400, "invalid_if_match"));
            prop_assert!(expected.is_none(), "a valid If-Match was refused: {header:?}");
            Ok("refused")
        }
    });
}

/// RFC 3339 date-times built from parts, each part in or just past its range.
fn timestamp_parts() -> impl Strategy<Value = (String, bool)> {
    let year = prop_oneof![1966i32..=1972, 9997i32..=10001, 1972i32..=9997];
    let offset = prop_oneof![
        Just(("Z".to_owned(), true)),
        Just(("z".to_owned(), true)),
        (0u32..=25, 0u32..=61, any::<bool>())
            .prop_map(|(h, m, plus)| { (format!("{}{h:02}:{m:02}", if plus { '+' } else { '-' }), h < 24 && m < 60) }),
        Just(("+0100".to_owned(), false)),
        Just((String::new(), false)),
    ];
    let fraction = prop_oneof![Just(String::new()), "\\.[0-9]{1,9}", Just(".".to_owned())];
    (year, 0u32..=13, 0u32..=32, 0u32..=24, 0u32..=60, 0u32..=59, fraction, offset, prop_oneof![Just('T'), Just(' ')])
        .prop_map(|(year, month, day, hour, minute, second, fraction, (offset, offset_ok), t)| {
            let text = format!("{year:04}-{month:02}-{day:02}{t}{hour:02}:{minute:02}:{second:02}{fraction}{offset}");
            let date_ok = time::Month::try_from(u8::try_from(month).unwrap_or(0))
                .is_ok_and(|m| (1..=u32::from(m.length(year))).contains(&day));
            // In range whatever the offset: 1971..=9998 cannot cross the edges of 1970..=9999 in UTC.
            let valid = (1971..=9998).contains(&year)
                && date_ok
                && hour < 24
                && minute < 60
                && fraction != "."
                && offset_ok
                && t == 'T';
            (text, valid)
        })
}

#[test]
fn timestamp_parser() {
    let inputs = prop_oneof![4 => timestamp_parts(), 1 => "\\PC{0,40}".prop_map(|s| (s, false))];
    fuzz("timestamp parser", &["accepted", "refused"], inputs, |(text, valid)| match Timestamp::parse(&text) {
        Some(at) => {
            prop_assert!(fleetgate_api::timestamp::YEARS.contains(&at.year()), "{text} → {at}");
            prop_assert_eq!(Timestamp::parse(&at.to_string()), Some(at));
            prop_assert!(text.len() >= 20, "{text} accepted");
            Ok("accepted")
        }
        None => {
            // Every well-formed RFC 3339 date-time whose UTC year is in range is accepted.
            prop_assert!(!valid, "{text} refused");
            Ok("refused")
        }
    });
}

#[test]
fn tenant_id_parser() {
    let inputs = prop_oneof![
        "[a-z0-9][a-z0-9_-]{0,63}",
        "[a-z0-9][a-z0-9_-]{64,66}",
        "[-_A-Z][a-z]{0,5}",
        "[a-z]{1,5}[ A-Z.é/#][a-z]{0,5}",
        "\\PC{0,10}"
    ];
    fuzz("tenant id parser", &["accepted", "refused"], inputs, |text| {
        let well_formed = (1..=64).contains(&text.len())
            && text.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
            && text.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
        match TenantId::parse(&text) {
            Ok(tenant) => {
                prop_assert!(well_formed, "{text:?} accepted");
                prop_assert_eq!(tenant.as_str(), text.as_str());
                Ok("accepted")
            }
            Err(_) => {
                prop_assert!(!well_formed, "{text:?} refused");
                Ok("refused")
            }
        }
    });
}
