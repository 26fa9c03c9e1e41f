//! Least privilege, pinned: each function's IAM statements in infra/template.yaml
//! must be exactly the ones listed here, so no policy can widen silently.

use std::collections::{BTreeMap, BTreeSet};

use fleetgate_local::Template;
use serde_norway::Value;

/// (action, resource, condition) triples; resources as written: `KeysTable.Arn` for
/// `!GetAtt`, the `!Sub` text; the statement's `Condition` as JSON ("" for none).
type Grants = BTreeSet<(String, String, String)>;

/// DynamoDB `actions` on each of `resources`, unconditionally.
fn grants(pairs: &[(&[&str], &[&str])]) -> Grants {
    pairs
        .iter()
        .flat_map(|(actions, resources)| {
            actions.iter().flat_map(move |a| {
                resources.iter().map(move |r| (format!("dynamodb:{a}"), (*r).to_owned(), String::new()))
            })
        })
        .collect()
}

/// `grants` whose every statement carries `condition`.
fn conditional(pairs: &[(&[&str], &[&str])], condition: &serde_json::Value) -> Grants {
    grants(pairs).into_iter().map(|(a, r, _)| (a, r, condition.to_string())).collect()
}

/// Reading the list-cursor secret (functions that page).
fn cursor_secret() -> Grants {
    Grants::from([("secretsmanager:GetSecretValue".to_owned(), "CursorSecret".to_owned(), String::new())])
}

/// The authorizer may update `last_used_at` and nothing else of a key.
fn last_used_only() -> serde_json::Value {
    serde_json::json!({
        "ForAllValues:StringEquals": {"dynamodb:Attributes": ["key_hash", "last_used_at"]},
        "StringEqualsIfExists": {"dynamodb:ReturnValues": ["NONE"]},
    })
}

/// Audit writers may put audit records' attributes and nothing else, reading nothing back.
fn audit_record_only() -> serde_json::Value {
    serde_json::json!({
        "ForAllValues:StringEquals": {"dynamodb:Attributes": audit_attributes()},
        "StringEqualsIfExists": {"dynamodb:ReturnValues": ["NONE"]},
    })
}

/// The attributes an audit record is stored with, from the code itself: the IAM
/// condition cannot fall behind a new field.
fn audit_attributes() -> Vec<String> {
    let record = fleetgate_api::audit::AuditRecord::new(
        fleetgate_scopes::TenantId::parse("t").unwrap(),
        Some("key_x".into()),
        "action",
        Some("resource".into()),
        "ok",
        "request",
        1,
    )
    .with_details(serde_json::json!({"reason": "r"}), Some("admin"));
    let item =
        serde_dynamo::to_item::<_, std::collections::HashMap<String, aws_sdk_dynamodb::types::AttributeValue>>(&record)
            .unwrap();
    let mut names: Vec<String> = item.into_keys().collect();
    let order = [
        "tenant_id",
        "sk",
        "at",
        "key_id",
        "action",
        "resource_id",
        "outcome",
        "request_id",
        "details",
        "requested_by",
        "expires_at_epoch",
    ];
    names.sort_by_key(|n| order.iter().position(|o| o == n).unwrap_or(usize::MAX));
    names
}

const KEYS: &str = "KeysTable.Arn";
const FLEET: &str = "FleetTable.Arn";
const AUDIT: &str = "AuditTable.Arn";
const USAGE: &str = "UsageTable.Arn";
const AUTHORIZER_CACHE: &str =
    "arn:${AWS::Partition}:apigateway:${AWS::Region}::/restapis/${FleetApi}/stages/${StageName}/cache/authorizers";

/// What each function may do, and nothing more.
fn expected() -> BTreeMap<&'static str, Grants> {
    let audit = || conditional(&[(&["PutItem"], &[AUDIT])], &audit_record_only());
    let mut provisioner = grants(&[
        (
            &["GetItem", "PutItem", "UpdateItem", "Query"],
            &[KEYS, "${KeysTable.Arn}/index/tenant-keys", "${KeysTable.Arn}/index/tenant-keys-by-creation"],
        ),
        (&["GetItem", "PutItem", "ConditionCheckItem", "Query"], &[FLEET]),
        (&["Query"], &["${FleetTable.Arn}/index/gsi1"]),
        (&["Query"], &[AUDIT]),
        (&["GetItem", "BatchGetItem"], &[USAGE]),
    ]);
    provisioner.extend(audit());
    provisioner.extend(cursor_secret());
    // Flushing the stage's authorizer cache after a revocation, and nothing else of API Gateway.
    provisioner.insert(("apigateway:DELETE".into(), AUTHORIZER_CACHE.into(), String::new()));
    // Every endpoint counts its requests against the key's limits, and only writes there.
    let counted = |mut grants: Grants| {
        grants.extend(self::grants(&[(&["UpdateItem"], &[USAGE])]));
        grants
    };
    let with_cursors = |mut grants: Grants| {
        grants.extend(cursor_secret());
        counted(grants)
    };
    let with_audit = |mut grants: Grants| {
        grants.extend(audit());
        counted(grants)
    };
    let mut authorizer = grants(&[(&["GetItem"], &[KEYS])]);
    authorizer.extend(conditional(&[(&["UpdateItem"], &[KEYS])], &last_used_only()));
    BTreeMap::from([
        ("authorizer", authorizer),
        ("provisioner", provisioner),
        ("whoami", counted(Grants::new())),
        (
            "list-vehicles",
            with_cursors(grants(&[(&["Query"], &[FLEET, "${FleetTable.Arn}/index/gsi1"]), (&["GetItem"], &[FLEET])])),
        ),
        ("get-vehicle", counted(grants(&[(&["GetItem"], &[FLEET])]))),
        ("create-vehicle", with_audit(grants(&[(&["GetItem", "PutItem", "UpdateItem", "DeleteItem"], &[FLEET])]))),
        ("update-vehicle", with_audit(grants(&[(&["GetItem", "PutItem", "DeleteItem"], &[FLEET])]))),
        ("patch-vehicle", with_audit(grants(&[(&["GetItem", "PutItem", "DeleteItem"], &[FLEET])]))),
        ("list-inspection-templates", with_cursors(grants(&[(&["Query"], &[FLEET])]))),
        (
            "list-inspections",
            with_cursors(grants(&[(
                &["Query"],
                &[
                    "${FleetTable.Arn}/index/gsi1",
                    "${FleetTable.Arn}/index/gsi2",
                    "${FleetTable.Arn}/index/gsi3",
                    "${FleetTable.Arn}/index/gsi4",
                ],
            )])),
        ),
        (
            "create-inspection",
            with_audit(grants(&[(&["BatchGetItem", "GetItem", "PutItem", "UpdateItem", "DeleteItem"], &[FLEET])])),
        ),
        ("get-inspection", counted(grants(&[(&["GetItem"], &[FLEET])]))),
        // The webhook routes: never the secrets' reads (lists and reads project them away;
        // rotation swaps them inside one UpdateItem), never another table.
        ("create-webhook", with_audit(grants(&[(&["GetItem", "PutItem", "UpdateItem", "DeleteItem"], &[FLEET])]))),
        ("list-webhooks", with_cursors(grants(&[(&["Query"], &[FLEET])]))),
        ("get-webhook", counted(grants(&[(&["GetItem"], &[FLEET])]))),
        ("update-webhook", with_audit(grants(&[(&["GetItem", "UpdateItem"], &[FLEET])]))),
        ("delete-webhook", with_audit(grants(&[(&["DeleteItem", "UpdateItem"], &[FLEET])]))),
        (
            "rotate-webhook-secret",
            with_audit(grants(&[(&["GetItem", "PutItem", "UpdateItem", "DeleteItem"], &[FLEET])])),
        ),
        ("test-webhook", with_audit(grants(&[(&["GetItem", "PutItem", "UpdateItem", "DeleteItem"], &[FLEET])]))),
        ("list-webhook-deliveries", with_cursors(grants(&[(&["GetItem", "Query"], &[FLEET])]))),
        ("webhook-dispatcher", {
            let mut dispatcher = grants(&[
                (&["DescribeStream", "GetRecords", "GetShardIterator", "ListStreams"], &["FleetTable.StreamArn"]),
                (&["Query"], &[FLEET]),
            ]);
            dispatcher.extend(sqs(&["SendMessage"], &["WebhookDeliveryQueue.Arn", "WebhookDispatchFailureQueue.Arn"]));
            dispatcher
        }),
        ("webhook-deliverer", {
            let mut deliverer = grants(&[(&["GetItem", "UpdateItem", "PutItem"], &[FLEET])]);
            deliverer.extend(sqs(
                &["ReceiveMessage", "DeleteMessage", "GetQueueAttributes", "ChangeMessageVisibility"],
                &["WebhookDeliveryQueue.Arn"],
            ));
            deliverer.extend(sqs(&["SendMessage"], &["WebhookDeadLetterQueue.Arn"]));
            deliverer
        }),
    ])
}

/// SQS `actions` on each of `queues`, unconditionally.
fn sqs(actions: &[&str], queues: &[&str]) -> Grants {
    actions
        .iter()
        .flat_map(|a| queues.iter().map(move |q| (format!("sqs:{a}"), (*q).to_owned(), String::new())))
        .collect()
}

/// `!GetAtt KeysTable.Arn` → `KeysTable.Arn`; `!Sub "…"` → its text; anything else
/// (a literal ARN, `*`) as YAML, so the comparison fails loudly.
fn resource_name(value: &Value) -> String {
    match value {
        Value::Tagged(tagged) if tagged.tag == "GetAtt" || tagged.tag == "Sub" || tagged.tag == "Ref" => {
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
                let condition = statement
                    .get("Condition")
                    .map(|c| serde_json::to_value(c).expect("a condition is JSON-like").to_string())
                    .unwrap_or_default();
                for action in as_list(statement.get("Action")) {
                    for resource in as_list(statement.get("Resource")) {
                        granted.insert((
                            action.as_str().unwrap_or("?").to_owned(),
                            resource_name(&resource),
                            condition.clone(),
                        ));
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
        for (action, resource, condition) in &grants {
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
                if action == "dynamodb:PutItem" {
                    assert_eq!(condition, &audit_record_only().to_string(), "{function}: audit puts are conditioned");
                }
            }
            if resource == USAGE {
                // Counters only count: nothing deletes or replaces a month's usage, and
                // only the provisioner reads it back.
                let allowed = if function == "provisioner" {
                    "dynamodb:GetItem dynamodb:BatchGetItem"
                } else {
                    "dynamodb:UpdateItem"
                };
                assert!(allowed.split(' ').any(|a| a == action), "{function}: {action} on the usage table");
            }
            if resource == KEYS && action == "dynamodb:UpdateItem" && function == "authorizer" {
                assert_eq!(condition, &last_used_only().to_string(), "the authorizer may touch last_used_at only");
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

/// The template as CloudFormation receives it, after the SAM transform
/// (`tests/template/translate.py`, with samtranslator from the SAM CLI that
/// `make test` installs into `.tools/venv`).
fn translated() -> serde_json::Value {
    let root = fleetgate_local::workspace_root();
    let python = root.join(".tools/venv/bin/python");
    let output = std::process::Command::new(&python)
        .arg(root.join("tests/template/translate.py"))
        .arg(root.join("infra/template.yaml"))
        .output()
        .unwrap_or_else(|e| panic!("{}: {e} (make test installs it)", python.display()));
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).expect("translated template is JSON")
}

/// Resource types that hold what a deployment must not lose with its stack.
const STATEFUL_TYPES: [&str; 5] = [
    "AWS::DynamoDB::Table",
    "AWS::SQS::Queue",
    "AWS::SecretsManager::Secret",
    "AWS::Logs::LogGroup",
    "AWS::Kinesis::Stream",
];

#[test]
fn exactly_one_api_stage_is_deployed() {
    let resources = translated()["Resources"].as_object().unwrap().clone();
    // A Stage resource is a stage; so is a Deployment's StageName (SAM's implicit
    // "Stage" stage when OpenApiVersion is not set).
    let mut stages: Vec<serde_json::Value> = Vec::new();
    for resource in resources.values() {
        match resource["Type"].as_str().unwrap() {
            "AWS::ApiGateway::Stage" => stages.push(resource["Properties"]["StageName"].clone()),
            "AWS::ApiGateway::Deployment" if resource["Properties"].get("StageName").is_some() => {
                stages.push(resource["Properties"]["StageName"].clone())
            }
            _ => {}
        }
    }
    assert_eq!(stages, [serde_json::json!({"Ref": "StageName"})]);
}

#[test]
fn every_stateful_resource_outlives_the_stack() {
    let resources = translated()["Resources"].as_object().unwrap().clone();
    let mut stateful = 0;
    for (name, resource) in &resources {
        let kind = resource["Type"].as_str().unwrap();
        if !STATEFUL_TYPES.contains(&kind) {
            continue;
        }
        stateful += 1;
        assert_eq!(resource["DeletionPolicy"], "Retain", "{name}");
        assert_eq!(resource["UpdateReplacePolicy"], "Retain", "{name}");
        if kind == "AWS::DynamoDB::Table" {
            assert_eq!(
                resource["Properties"]["DeletionProtectionEnabled"],
                serde_json::json!({"Ref": "TableDeletionProtection"}),
                "{name}"
            );
        }
    }
    // Four tables, the cursor secret and the access log group, at least.
    assert!(stateful >= 6, "{stateful} stateful resources");
    let template = Template::load_default().unwrap();
    assert_eq!(template.parameter_default("TableDeletionProtection").as_deref(), Some("true"));
}

#[test]
fn bodies_over_the_functions_limit_are_refused_by_waf_before_lambda() {
    let resources = translated()["Resources"].as_object().unwrap().clone();
    let acl = &resources["BodySizeWebAcl"];
    assert_eq!(acl["Type"], "AWS::WAFv2::WebACL");
    // WAF sees at most 64 KB of an API Gateway body; past that, "oversize" must match.
    assert_eq!(
        acl["Properties"]["AssociationConfig"]["RequestBody"]["API_GATEWAY"]["DefaultSizeInspectionLimit"],
        "KB_64"
    );
    let rule = &acl["Properties"]["Rules"][0];
    let size = &rule["Statement"]["SizeConstraintStatement"];
    assert_eq!(size["FieldToMatch"]["Body"]["OversizeHandling"], "MATCH");
    assert_eq!(size["ComparisonOperator"], "GT");
    assert_eq!(size["Size"].as_u64(), Some(fleetgate_api::input::MAX_BODY_BYTES as u64));
    let custom = &rule["Action"]["Block"]["CustomResponse"];
    assert_eq!(custom["ResponseCode"], 413);
    let body = &acl["Properties"]["CustomResponseBodies"][custom["CustomResponseBodyKey"].as_str().unwrap()];
    let problem: serde_json::Value = serde_json::from_str(body["Content"].as_str().unwrap()).unwrap();
    assert_eq!((problem["status"].as_u64(), problem["code"].as_str()), (Some(413), Some("payload_too_large")));
    // On the one stage of the API.
    let association = &resources["BodySizeWebAclAssociation"]["Properties"];
    assert_eq!(association["WebACLArn"], serde_json::json!({"Fn::GetAtt": ["BodySizeWebAcl", "Arn"]}));
    let arn = association["ResourceArn"]["Fn::Sub"].as_str().unwrap();
    assert!(arn.ends_with("/restapis/${FleetApi}/stages/${FleetApiStage}"), "{arn}");
}

#[test]
fn limits_settings_are_the_templates_locally_and_every_counting_function_knows_its_table() {
    let template = Template::load_default().unwrap();
    let local = fleetgate_local::local_env().unwrap();
    for (parameter, variable) in
        [("DefaultRateLimit", "DEFAULT_RATE_LIMIT"), ("RateLimitCeiling", "RATE_LIMIT_CEILING")]
    {
        let default = template.parameter_default(parameter).unwrap();
        assert!(default.parse::<fleetgate_scopes::RateLimit>().is_ok(), "{parameter}: {default}");
        assert_eq!(local.get(variable), Some(&default), "the local stack's {variable} is the template's {parameter}");
    }
    // A function granted the usage table has its name (it refuses to start without),
    // and every endpoint function counts (not the admin's, nor the webhook pipeline's:
    // no key calls them).
    let grants = actual();
    for (_, resource) in template.resources() {
        let Some(binary) = resource["Metadata"]["BuildProperties"]["Binary"].as_str() else { continue };
        let uses = grants[binary].iter().any(|(_, resource, _)| resource == USAGE);
        let counts =
            grants[binary].iter().any(|(action, resource, _)| action == "dynamodb:UpdateItem" && resource == USAGE);
        let variables = &resource["Properties"]["Environment"]["Variables"];
        assert_eq!(uses, variables.get("USAGE_TABLE").is_some(), "{binary}");
        let endpoint = !["authorizer", "provisioner", "webhook-dispatcher", "webhook-deliverer"].contains(&binary);
        assert_eq!(counts, endpoint, "{binary}");
    }
}

#[test]
fn every_function_logs_json_into_a_log_group_of_its_own_that_expires() {
    let resources = translated()["Resources"].as_object().unwrap().clone();
    let retention = serde_json::json!({"Ref": "LogRetentionDays"});
    let mut used = std::collections::BTreeSet::new();
    let functions: Vec<_> = resources.iter().filter(|(_, r)| r["Type"] == "AWS::Lambda::Function").collect();
    assert!(functions.len() >= 12, "{} functions", functions.len());
    for (name, function) in functions {
        let logging = &function["Properties"]["LoggingConfig"];
        assert_eq!(logging["LogFormat"], "JSON", "{name}");
        assert_eq!(logging["ApplicationLogLevel"], serde_json::json!({"Ref": "ApplicationLogLevel"}), "{name}");
        assert_eq!(logging["SystemLogLevel"], serde_json::json!({"Ref": "SystemLogLevel"}), "{name}");
        let group =
            logging["LogGroup"]["Ref"].as_str().unwrap_or_else(|| panic!("{name} declares no log group: {logging}"));
        assert_eq!(resources[group]["Type"], "AWS::Logs::LogGroup", "{name}: {group}");
        assert!(used.insert(group.to_owned()), "{group} is shared by two functions");
    }
    // Every log group of the stack (the API's access log too) expires after the parameter's days.
    for (name, resource) in resources.iter().filter(|(_, r)| r["Type"] == "AWS::Logs::LogGroup") {
        assert_eq!(resource["Properties"]["RetentionInDays"], retention, "{name}");
    }
    let template = Template::load_default().unwrap();
    assert_eq!(template.parameter_default("LogRetentionDays").as_deref(), Some("30"));
}

/// Metrics AWS publishes that alarms and the dashboard may name: (namespace, metric, dimension keys).
const AWS_METRICS: [(&str, &str, &[&str]); 9] = [
    ("AWS/ApiGateway", "5XXError", &["ApiName", "Stage"]),
    ("AWS/ApiGateway", "4XXError", &["ApiName", "Stage"]),
    ("AWS/ApiGateway", "Latency", &["ApiName", "Stage"]),
    ("AWS/Lambda", "Errors", &["FunctionName"]),
    ("AWS/Lambda", "Throttles", &["FunctionName"]),
    ("AWS/DynamoDB", "ReadThrottleEvents", &["TableName"]),
    ("AWS/DynamoDB", "WriteThrottleEvents", &["TableName"]),
    ("AWS/DynamoDB", "SystemErrors", &["TableName", "Operation"]),
    ("AWS/SQS", "ApproximateNumberOfMessagesVisible", &["QueueName"]),
];

/// (namespace, metric, sorted dimension keys, the dimensions as JSON) of each metric an alarm reads.
fn alarm_metrics(alarm: &serde_json::Value) -> Vec<(String, String, Vec<String>, serde_json::Value)> {
    let properties = &alarm["Properties"];
    let stats: Vec<&serde_json::Value> = match properties["Metrics"].as_array() {
        Some(metrics) => metrics.iter().filter_map(|m| m.get("MetricStat").map(|s| &s["Metric"])).collect(),
        None => vec![properties],
    };
    stats
        .into_iter()
        .map(|metric| {
            let dimensions = metric["Dimensions"].clone();
            let mut keys: Vec<String> = dimensions
                .as_array()
                .into_iter()
                .flatten()
                .map(|d| d["Name"].as_str().unwrap_or_default().to_owned())
                .collect();
            keys.sort();
            let text = |field: &str| metric[field].as_str().unwrap_or_default().to_owned();
            (text("Namespace"), text("MetricName"), keys, dimensions)
        })
        .collect()
}

#[test]
fn every_alarm_names_a_metric_aws_publishes_or_the_code_emits_and_notifies_the_topic() {
    let resources = translated()["Resources"].as_object().unwrap().clone();
    let mut watched = BTreeSet::new();
    for (name, alarm) in resources.iter().filter(|(_, r)| r["Type"] == "AWS::CloudWatch::Alarm") {
        assert_eq!(alarm["Properties"]["AlarmActions"], serde_json::json!([{"Ref": "AlarmTopic"}]), "{name}");
        let metrics = alarm_metrics(alarm);
        assert!(!metrics.is_empty(), "{name} reads no metric");
        for (namespace, metric, keys, dimensions) in metrics {
            assert!(
                known_metric(&namespace, &metric, &keys),
                "{name}: {namespace} {metric} {keys:?} is neither emitted by the code nor published by AWS"
            );
            for dimension in dimensions.as_array().into_iter().flatten() {
                if let Some(resource) = dimension["Value"]["Ref"].as_str() {
                    watched.insert((metric.clone(), resource.to_owned()));
                }
            }
        }
    }
    // Every function has its errors and throttles watched, every table its throttles and 500s.
    for (resource, kind) in resources.iter().map(|(n, r)| (n, r["Type"].as_str().unwrap_or_default())) {
        let wanted: &[&str] = match kind {
            "AWS::Lambda::Function" => &["Errors", "Throttles"],
            "AWS::DynamoDB::Table" => &["ReadThrottleEvents", "WriteThrottleEvents", "SystemErrors"],
            _ => &[],
        };
        for metric in wanted {
            assert!(watched.contains(&((*metric).to_owned(), resource.clone())), "no {metric} alarm for {resource}");
        }
    }
}

/// Whether (namespace, metric, dimension keys) is one the code emits or AWS publishes.
fn known_metric(namespace: &str, metric: &str, keys: &[String]) -> bool {
    let sorted = |dims: &[&str]| {
        let mut dims: Vec<String> = dims.iter().map(|d| (*d).to_owned()).collect();
        dims.sort();
        dims
    };
    if namespace == fleetgate_api::metrics::NAMESPACE {
        fleetgate_api::metrics::CATALOG.iter().any(|(n, dims)| *n == metric && sorted(dims) == keys)
    } else {
        AWS_METRICS.iter().any(|(ns, n, dims)| *ns == namespace && *n == metric && sorted(dims) == keys)
    }
}

/// (namespace, metric, sorted dimension keys) of every metric a dashboard widget reads:
/// `[namespace, metric, key, value, …, {options}]` rows and `SEARCH('{namespace,keys…} MetricName="…"')`.
fn dashboard_metrics(body: &str) -> Vec<(String, String, Vec<String>)> {
    // `${…}` are !Sub's: any value will do to read the JSON.
    let mut text = String::new();
    let mut rest = body;
    while let Some(start) = rest.find("${") {
        text.push_str(&rest[..start]);
        text.push('X');
        rest = &rest[start + rest[start..].find('}').unwrap() + 1..];
    }
    text.push_str(rest);
    let dashboard: serde_json::Value = serde_json::from_str(&text).expect("the dashboard body is JSON");
    let mut found = Vec::new();
    for widget in dashboard["widgets"].as_array().unwrap() {
        for row in widget["properties"]["metrics"].as_array().expect("a metric widget") {
            let row = row.as_array().unwrap();
            if let Some(expression) = row[0].get("expression").and_then(|e| e.as_str()) {
                let braces = &expression[expression.find('{').unwrap() + 1..expression.find('}').unwrap()];
                let mut parts: Vec<String> = braces.split(',').map(|p| p.trim().to_owned()).collect();
                let namespace = parts.remove(0);
                parts.sort();
                let name = expression.split("MetricName=\"").nth(1).unwrap().split('"').next().unwrap().to_owned();
                found.push((namespace, name, parts));
            } else {
                let strings: Vec<String> = row.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect();
                let mut keys: Vec<String> = strings[2..].chunks(2).map(|pair| pair[0].clone()).collect();
                keys.sort();
                found.push((strings[0].clone(), strings[1].clone(), keys));
            }
        }
    }
    found
}

#[test]
fn the_dashboard_shows_only_real_metrics_and_every_metric_the_code_emits_is_watched() {
    let resources = translated()["Resources"].as_object().unwrap().clone();
    let body = resources["OperationsDashboard"]["Properties"]["DashboardBody"]["Fn::Sub"].as_str().unwrap().to_owned();
    let shown = dashboard_metrics(&body);
    assert!(shown.len() >= 8, "{shown:?}");
    for (namespace, metric, keys) in &shown {
        assert!(known_metric(namespace, metric, keys), "dashboard: {namespace} {metric} {keys:?} is not a real metric");
    }
    // Every metric the code emits is charted or alarmed: nothing is emitted for nobody.
    let alarmed: Vec<String> = resources
        .values()
        .filter(|r| r["Type"] == "AWS::CloudWatch::Alarm")
        .flat_map(alarm_metrics)
        .map(|(_, name, _, _)| name)
        .collect();
    for (metric, _) in fleetgate_api::metrics::CATALOG {
        let charted = shown.iter().any(|(ns, name, _)| ns == fleetgate_api::metrics::NAMESPACE && name == metric);
        assert!(charted || alarmed.iter().any(|a| a == metric), "{metric} is emitted but neither charted nor alarmed");
    }
}

#[test]
fn the_local_only_webhook_loopback_switch_is_never_in_the_template() {
    let switch = fleetgate_webhooks::target_url::ALLOW_LOOPBACK_VAR;
    let text = std::fs::read_to_string(fleetgate_local::workspace_root().join("infra/template.yaml")).unwrap();
    assert!(!text.contains(switch), "a deployed stack must deliver to public https addresses only");
    // The local stack does set it (the switch is live code, not a dead name).
    assert_eq!(fleetgate_local::local_env().unwrap().get(switch).map(String::as_str), Some("1"));
}
