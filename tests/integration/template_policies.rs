//! Least privilege, pinned: each function's IAM statements in infra/template.yaml
//! must be exactly the ones listed here, so no policy can widen silently.

use std::collections::{BTreeMap, BTreeSet};

use fleetgate_local::Template;
use serde_norway::Value;

/// (action, resource) pairs; resources as written: `KeysTable.Arn` for `!GetAtt`, the `!Sub` text.
type Grants = BTreeSet<(String, String)>;

/// DynamoDB `actions` on each of `resources`.
fn grants(pairs: &[(&[&str], &[&str])]) -> Grants {
    pairs
        .iter()
        .flat_map(|(actions, resources)| {
            actions.iter().flat_map(move |a| resources.iter().map(move |r| (format!("dynamodb:{a}"), (*r).to_owned())))
        })
        .collect()
}

const KEYS: &str = "KeysTable.Arn";
const FLEET: &str = "FleetTable.Arn";
const AUDIT: &str = "AuditTable.Arn";
const AUTHORIZER_CACHE: &str =
    "arn:${AWS::Partition}:apigateway:${AWS::Region}::/restapis/${FleetApi}/stages/${StageName}/cache/authorizers";

/// What each function may do, and nothing more.
fn expected() -> BTreeMap<&'static str, Grants> {
    let mut provisioner = grants(&[
        (&["GetItem", "PutItem", "UpdateItem", "Query"], &[KEYS, "${KeysTable.Arn}/index/tenant-keys"]),
        (&["GetItem", "PutItem"], &[FLEET]),
        (&["PutItem", "Query"], &[AUDIT]),
    ]);
    // Flushing the stage's authorizer cache after a revocation, and nothing else of API Gateway.
    provisioner.insert(("apigateway:DELETE".into(), AUTHORIZER_CACHE.into()));
    BTreeMap::from([
        ("authorizer", grants(&[(&["GetItem", "UpdateItem"], &[KEYS])])),
        ("provisioner", provisioner),
        ("whoami", Grants::new()),
        ("list-vehicles", grants(&[(&["Query"], &[FLEET, "${FleetTable.Arn}/index/gsi1"])])),
        ("get-vehicle", grants(&[(&["GetItem"], &[FLEET])])),
        (
            "create-vehicle",
            grants(&[(&["GetItem", "PutItem", "UpdateItem", "DeleteItem"], &[FLEET]), (&["PutItem"], &[AUDIT])]),
        ),
        ("update-vehicle", grants(&[(&["GetItem", "PutItem", "DeleteItem"], &[FLEET]), (&["PutItem"], &[AUDIT])])),
        ("list-inspection-templates", grants(&[(&["Query"], &[FLEET])])),
        (
            "list-inspections",
            grants(&[(
                &["Query"],
                &[
                    "${FleetTable.Arn}/index/gsi1",
                    "${FleetTable.Arn}/index/gsi2",
                    "${FleetTable.Arn}/index/gsi3",
                    "${FleetTable.Arn}/index/gsi4",
                ],
            )]),
        ),
        (
            "create-inspection",
            grants(&[
                (&["BatchGetItem", "GetItem", "PutItem", "UpdateItem", "DeleteItem"], &[FLEET]),
                (&["PutItem"], &[AUDIT]),
            ]),
        ),
        ("get-inspection", grants(&[(&["GetItem"], &[FLEET])])),
    ])
}

/// `!GetAtt KeysTable.Arn` → `KeysTable.Arn`; `!Sub "…"` → its text; anything else
/// (a literal ARN, `*`) as YAML, so the comparison fails loudly.
fn resource_name(value: &Value) -> String {
    match value {
        Value::Tagged(tagged) if tagged.tag == "GetAtt" || tagged.tag == "Sub" => {
            tagged.value.as_str().unwrap_or_default().to_owned()
        }
        other => serde_norway::to_string(other).unwrap_or_default().trim().to_owned(),
    }
}

fn as_list(value: Option<&Value>) -> Vec<Value> {
    match value {
        Some(Value::Sequence(items)) => items.clone(),
        Some(single) => vec![single.clone()],
        None => Vec::new(),
    }
}

/// Every function's grants as the template states them, by binary name.
fn actual() -> BTreeMap<String, Grants> {
    let template = Template::load_default().unwrap();
    let mut by_function = BTreeMap::new();
    for (_, resource) in template.resources() {
        if resource.get("Type").and_then(Value::as_str) != Some("AWS::Serverless::Function") {
            continue;
        }
        let binary = resource["Metadata"]["BuildProperties"]["Binary"].as_str().unwrap().to_owned();
        let mut granted = Grants::new();
        for policy in as_list(resource["Properties"].get("Policies")) {
            // Only inline statements are allowed: SAM policy templates hide their actions.
            let statements =
                policy.get("Statement").unwrap_or_else(|| panic!("{binary}: policy without Statement: {policy:?}"));
            for statement in as_list(Some(statements)) {
                assert_eq!(statement["Effect"].as_str(), Some("Allow"), "{binary}");
                for action in as_list(statement.get("Action")) {
                    for resource in as_list(statement.get("Resource")) {
                        granted.insert((action.as_str().unwrap_or("?").to_owned(), resource_name(&resource)));
                    }
                }
            }
        }
        by_function.insert(binary, granted);
    }
    by_function
}

#[test]
fn every_function_has_exactly_its_pinned_grants() {
    let actual = actual();
    let expected: BTreeMap<String, Grants> = expected().into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
    assert_eq!(actual.keys().collect::<Vec<_>>(), expected.keys().collect::<Vec<_>>(), "functions differ");
    for (function, grants) in &expected {
        let extra: Vec<_> = actual[function].difference(grants).collect();
        let missing: Vec<_> = grants.difference(&actual[function]).collect();
        assert!(extra.is_empty() && missing.is_empty(), "{function}: extra {extra:?}, missing {missing:?}");
    }
}

#[test]
fn no_wildcards_no_key_table_for_endpoints_and_an_append_only_audit() {
    for (function, grants) in actual() {
        for (action, resource) in &grants {
            assert!(!action.contains('*') && !resource.contains('*'), "{function}: {action} on {resource}");
            if function != "authorizer" && function != "provisioner" {
                assert!(!resource.contains("KeysTable"), "{function} must not see the keys table");
            }
            if resource == AUDIT {
                let allowed = if function == "provisioner" {
                    ["dynamodb:PutItem", "dynamodb:Query"].as_slice()
                } else {
                    &["dynamodb:PutItem"]
                };
                assert!(allowed.contains(&action.as_str()), "{function}: {action} on the audit table");
            }
        }
    }
}

#[test]
fn gateway_errors_are_problem_json() {
    let template = Template::load_default().unwrap();
    let responses = template.properties("FleetApi").unwrap()["GatewayResponses"].as_mapping().unwrap().clone();
    for kind in [
        "UNAUTHORIZED",
        "ACCESS_DENIED",
        "AUTHORIZER_FAILURE",
        "AUTHORIZER_CONFIGURATION_ERROR",
        "THROTTLED",
        "DEFAULT_4XX",
        "DEFAULT_5XX",
        "MISSING_AUTHENTICATION_TOKEN",
    ] {
        let response = &responses[kind];
        assert_eq!(
            response["ResponseParameters"]["Headers"]["Content-Type"].as_str(),
            Some("'application/problem+json'"),
            "{kind}"
        );
        let body = response["ResponseTemplates"]["application/json"].as_str().unwrap();
        assert!(body.contains("\"code\":") && body.contains("$context.requestId"), "{kind}: {body}");
    }
    // An authorizer that fails (not `Unauthorized`) is reported by API Gateway as either
    // type; neither is the caller's fault.
    for kind in ["AUTHORIZER_FAILURE", "AUTHORIZER_CONFIGURATION_ERROR"] {
        let failure = &responses[kind];
        assert_eq!(failure["StatusCode"].as_u64(), Some(503), "{kind}");
        assert!(failure["ResponseParameters"]["Headers"].get("Retry-After").is_some(), "{kind}");
    }
}
