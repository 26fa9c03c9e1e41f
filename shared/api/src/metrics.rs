//! Metrics as CloudWatch Embedded Metric Format (EMF) documents: one JSON line
//! on stdout per request, which CloudWatch Logs turns into metrics (namespace
//! `Fleetgate`) while the line stays searchable in Logs Insights. No agent, no
//! API call, no extra latency beyond formatting one line.
//!
//! Written with serde rather than a crate: the format is one small JSON shape
//! (<https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/CloudWatch_Embedded_Metric_Format_Specification.html>),
//! and [`validate`] checks every document against that specification's rules, in
//! the unit tests and on the logs of a `make test` run. `metrics_cloudwatch_embedded`
//! was weighed and left out: pre-1.0 with one maintainer, it brings the `metrics`
//! facade and its global recorder (aggregation and flushing this one-line-per-request
//! design does not need) for what is here about a hundred lines under test.
//!
//! Dimensions are low-cardinality only (function, route, status class, reason,
//! scope, operation); tenant and key ids travel as plain properties, for Logs
//! Insights, never as dimensions (each dimension value is a metric of its own).

use std::io::Write;

use serde_json::{Map, Value, json};

/// The namespace of every Fleetgate metric.
pub const NAMESPACE: &str = "Fleetgate";
/// EMF allows at most this many metrics per directive and dimension keys per set.
pub const MAX_METRICS: usize = 100;
pub const MAX_DIMENSIONS: usize = 30;

/// Every metric the code emits, with its dimension keys: the template's alarms
/// and dashboard may name these (a test reads both), and nothing else of ours.
pub const CATALOG: [(&str, &[&str]); 13] = [
    ("Requests", &["function", "route", "status_class"]),
    ("Latency", &["function", "route", "status_class"]),
    ("Refusals", &["route", "reason"]),
    ("ScopeRefusals", &["route", "scope"]),
    ("IdempotentReplays", &["route"]),
    ("LimitsUncounted", &["function"]),
    ("ColdStart", &["function"]),
    ("AuthRefusals", &["function", "reason"]),
    ("AuthFailures", &["function", "reason"]),
    ("DynamoErrors", &["operation", "kind"]),
    ("ProvisionerActions", &["action", "outcome"]),
    ("WebhookDeliveries", &["outcome"]),
    ("WebhookDeliveryLatency", &["outcome"]),
];

/// A document counting one `metric` under `dimensions`.
pub fn count(metric: &'static str, dimensions: &[(&'static str, &str)]) -> MetricsDoc {
    let mut doc = MetricsDoc::new();
    doc.record(dimensions, &[(metric, Unit::Count, 1.0)]);
    doc
}

/// The authorizer's outcome `metric` (`AuthRefusals` for a bad key, `AuthFailures`
/// when the key store cannot be read) counted by `reason`.
pub fn authorizer_outcome(metric: &'static str, reason: &str) -> MetricsDoc {
    count(metric, &[("function", "authorizer"), ("reason", reason)])
}

/// Whether every directive of `doc` is a catalogued metric under its catalogued dimensions.
pub fn catalogued(doc: &Value) -> Result<(), String> {
    for directive in doc["_aws"]["CloudWatchMetrics"].as_array().into_iter().flatten() {
        for set in directive["Dimensions"].as_array().into_iter().flatten() {
            let keys: Vec<&str> = set.as_array().into_iter().flatten().filter_map(Value::as_str).collect();
            for metric in directive["Metrics"].as_array().into_iter().flatten() {
                let name = metric["Name"].as_str().unwrap_or_default();
                if !CATALOG.iter().any(|(n, dims)| *n == name && *dims == keys.as_slice()) {
                    return Err(format!("{name} under {keys:?} is not in metrics::CATALOG"));
                }
            }
        }
    }
    Ok(())
}

/// The units this project uses (a subset of CloudWatch's).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Unit {
    Count,
    Milliseconds,
}

impl Unit {
    pub fn as_str(self) -> &'static str {
        match self {
            Unit::Count => "Count",
            Unit::Milliseconds => "Milliseconds",
        }
    }
}

/// Every unit CloudWatch accepts in a metric definition.
const CLOUDWATCH_UNITS: [&str; 27] = [
    "Seconds",
    "Microseconds",
    "Milliseconds",
    "Bytes",
    "Kilobytes",
    "Megabytes",
    "Gigabytes",
    "Terabytes",
    "Bits",
    "Kilobits",
    "Megabits",
    "Gigabits",
    "Terabits",
    "Percent",
    "Count",
    "Bytes/Second",
    "Kilobytes/Second",
    "Megabytes/Second",
    "Gigabytes/Second",
    "Terabytes/Second",
    "Bits/Second",
    "Kilobits/Second",
    "Megabits/Second",
    "Gigabits/Second",
    "Terabits/Second",
    "Count/Second",
    "None",
];

/// One group of metrics sharing one set of dimensions.
#[derive(Clone, Debug, Default)]
struct Directive {
    dimensions: Vec<(&'static str, String)>,
    metrics: Vec<(&'static str, Unit, f64)>,
}

/// One EMF document: directives (metrics under their dimensions) and properties.
#[derive(Clone, Debug, Default)]
pub struct MetricsDoc {
    directives: Vec<Directive>,
    properties: Vec<(&'static str, Value)>,
}

impl MetricsDoc {
    pub fn new() -> MetricsDoc {
        MetricsDoc::default()
    }

    /// Adds `metrics` under exactly these `dimensions`.
    pub fn record(
        &mut self,
        dimensions: &[(&'static str, &str)],
        metrics: &[(&'static str, Unit, f64)],
    ) -> &mut MetricsDoc {
        self.directives.push(Directive {
            dimensions: dimensions.iter().map(|(k, v)| (*k, (*v).to_owned())).collect(),
            metrics: metrics.to_vec(),
        });
        self
    }

    /// A searchable member that is not a dimension (ids, request id).
    pub fn property(&mut self, name: &'static str, value: &str) -> &mut MetricsDoc {
        self.properties.push((name, json!(value)));
        self
    }

    /// A numeric member that is not a metric (searchable in Logs Insights, not charted).
    pub fn number_property(&mut self, name: &'static str, value: f64) -> &mut MetricsDoc {
        self.properties.push((name, json!(value)));
        self
    }

    /// The document at `timestamp_ms` (milliseconds since the epoch). A member
    /// named twice keeps its first value (a metric under two dimension sets is
    /// one member, counted under each).
    pub fn to_json(&self, timestamp_ms: u64) -> Value {
        let mut root = Map::new();
        let mut directives = Vec::new();
        for directive in &self.directives {
            for (key, value) in &directive.dimensions {
                root.entry(*key).or_insert_with(|| json!(value));
            }
            for (name, _, value) in &directive.metrics {
                root.entry(*name).or_insert_with(|| json!(value));
            }
            directives.push(json!({
                "Namespace": NAMESPACE,
                "Dimensions": [directive.dimensions.iter().map(|(k, _)| *k).collect::<Vec<_>>()],
                "Metrics": directive.metrics.iter()
                    .map(|(name, unit, _)| json!({"Name": name, "Unit": unit.as_str()}))
                    .collect::<Vec<_>>(),
            }));
        }
        for (key, value) in &self.properties {
            root.entry(*key).or_insert_with(|| value.clone());
        }
        root.insert("_aws".into(), json!({"Timestamp": timestamp_ms, "CloudWatchMetrics": directives}));
        Value::Object(root)
    }

    /// Writes the document as one line on stdout, where Lambda's log capture
    /// (and CloudWatch's EMF extraction) takes it.
    pub fn emit(&self) {
        if self.directives.is_empty() {
            return;
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        let line = self.to_json(now).to_string();
        let mut out = std::io::stdout().lock();
        // A metric that cannot be written is dropped: never worth failing a request.
        let _ = writeln!(out, "{line}");
    }
}

/// Checks `doc` against the EMF specification: an `_aws` object with an integer
/// `Timestamp` and `CloudWatchMetrics` directives, each with a `Namespace`,
/// dimension sets of at most 30 keys that are string members of the document,
/// and at most 100 metric definitions whose names are numeric members, with a
/// CloudWatch unit.
pub fn validate(doc: &Value) -> Result<(), String> {
    let root = doc.as_object().ok_or("not a JSON object")?;
    let aws = root.get("_aws").and_then(Value::as_object).ok_or("no _aws object")?;
    aws.get("Timestamp").and_then(Value::as_u64).ok_or("_aws.Timestamp is not an integer of milliseconds")?;
    let directives = aws.get("CloudWatchMetrics").and_then(Value::as_array).ok_or("no _aws.CloudWatchMetrics array")?;
    if directives.is_empty() {
        return Err("no metric directive".into());
    }
    for directive in directives {
        let namespace = directive["Namespace"].as_str().ok_or("a directive without Namespace")?;
        if namespace.is_empty() || namespace.len() > 255 {
            return Err(format!("namespace '{namespace}' is not 1 to 255 characters"));
        }
        for set in directive["Dimensions"].as_array().ok_or("a directive without Dimensions")? {
            let keys = set.as_array().ok_or("a dimension set that is not an array")?;
            if keys.len() > MAX_DIMENSIONS {
                return Err(format!("a dimension set of {} keys (at most {MAX_DIMENSIONS})", keys.len()));
            }
            for key in keys {
                let key = key.as_str().ok_or("a dimension key that is not a string")?;
                match root.get(key) {
                    Some(Value::String(value)) if !value.is_empty() => {}
                    _ => return Err(format!("dimension '{key}' is not a non-empty string member")),
                }
            }
        }
        let metrics = directive["Metrics"].as_array().ok_or("a directive without Metrics")?;
        if metrics.is_empty() || metrics.len() > MAX_METRICS {
            return Err(format!("{} metrics in a directive (1 to {MAX_METRICS})", metrics.len()));
        }
        for metric in metrics {
            let name =
                metric["Name"].as_str().filter(|n| !n.is_empty() && n.len() <= 255).ok_or("a metric without a Name")?;
            if let Some(unit) = metric.get("Unit") {
                let unit = unit.as_str().unwrap_or_default();
                if !CLOUDWATCH_UNITS.contains(&unit) {
                    return Err(format!("metric '{name}' has unit '{unit}', not a CloudWatch unit"));
                }
            }
            match root.get(name) {
                Some(value) if value.is_number() => {}
                Some(Value::Array(values))
                    if !values.is_empty() && values.len() <= 100 && values.iter().all(Value::is_number) => {}
                _ => return Err(format!("metric '{name}' has no numeric member")),
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request_doc() -> MetricsDoc {
        let mut doc = MetricsDoc::new();
        doc.record(
            &[("function", "get-vehicle"), ("route", "GET /vehicles/{id}"), ("status_class", "2xx")],
            &[("Requests", Unit::Count, 1.0), ("Latency", Unit::Milliseconds, 3.5)],
        )
        .record(&[("route", "GET /vehicles/{id}"), ("reason", "rate_limited")], &[("Refusals", Unit::Count, 1.0)])
        .property("tenant_id", "acme")
        .property("key_id", "key_1");
        doc
    }

    #[test]
    fn a_request_document_is_valid_emf_with_ids_as_properties_only() {
        let doc = request_doc().to_json(1_764_000_000_000);
        assert_eq!(validate(&doc), Ok(()));
        assert_eq!(doc["Requests"], 1.0);
        assert_eq!(doc["route"], "GET /vehicles/{id}");
        let dimensions = doc["_aws"]["CloudWatchMetrics"].to_string();
        assert!(!dimensions.contains("tenant_id") && !dimensions.contains("key_id"), "{dimensions}");
        assert_eq!(doc["_aws"]["CloudWatchMetrics"][0]["Namespace"], NAMESPACE);
    }

    #[test]
    fn the_validator_refuses_what_the_specification_refuses() {
        let good = request_doc().to_json(1);
        let broken = |edit: &dyn Fn(&mut Value)| {
            let mut doc = good.clone();
            edit(&mut doc);
            validate(&doc)
        };
        assert!(broken(&|d| d.as_object_mut().unwrap().remove("_aws").map(drop).unwrap()).is_err());
        assert!(broken(&|d| d["_aws"]["Timestamp"] = json!("now")).is_err());
        assert!(broken(&|d| d["_aws"]["CloudWatchMetrics"][0]["Namespace"] = json!("")).is_err());
        assert!(
            broken(&|d| d.as_object_mut().unwrap().remove("route").map(drop).unwrap()).is_err(),
            "dimension not a member"
        );
        assert!(broken(&|d| d["status_class"] = json!(2)).is_err(), "dimension values are strings");
        assert!(broken(&|d| d["Requests"] = json!("1")).is_err(), "metric values are numbers");
        assert!(broken(&|d| d["_aws"]["CloudWatchMetrics"][0]["Metrics"][0]["Unit"] = json!("Requests")).is_err());
        let too_many: Vec<Value> = (0..=MAX_DIMENSIONS).map(|n| json!(format!("d{n}"))).collect();
        assert!(broken(&|d| d["_aws"]["CloudWatchMetrics"][0]["Dimensions"] = json!([too_many.clone()])).is_err());
        let metrics: Vec<Value> = (0..=MAX_METRICS).map(|_| json!({"Name": "Requests", "Unit": "Count"})).collect();
        assert!(broken(&|d| d["_aws"]["CloudWatchMetrics"][0]["Metrics"] = json!(metrics.clone())).is_err());
    }

    #[test]
    fn the_single_counts_are_catalogued() {
        let docs = [
            authorizer_outcome("AuthRefusals", "revoked"),
            authorizer_outcome("AuthFailures", "key_store_unavailable"),
            count("DynamoErrors", &[("operation", "UpdateItem"), ("kind", "throttled")]),
            count("ProvisionerActions", &[("action", "create_key"), ("outcome", "ok")]),
        ];
        for doc in docs {
            let doc = doc.to_json(1);
            assert_eq!((validate(&doc), catalogued(&doc)), (Ok(()), Ok(())), "{doc}");
        }
        let stray = request_doc().to_json(1);
        assert!(catalogued(&stray).is_ok());
        let mut unknown = MetricsDoc::new();
        unknown.record(&[("tenant_id", "acme")], &[("Requests", Unit::Count, 1.0)]);
        assert!(catalogued(&unknown.to_json(1)).is_err(), "a tenant dimension is not catalogued");
    }

    #[test]
    fn one_metric_under_two_dimension_sets_is_one_member() {
        let mut doc = MetricsDoc::new();
        doc.record(&[("function", "f")], &[("Refusals", Unit::Count, 1.0)])
            .record(&[("route", "GET /me"), ("reason", "revoked")], &[("Refusals", Unit::Count, 1.0)]);
        let json = doc.to_json(1);
        assert_eq!((json["Refusals"].as_f64(), validate(&json)), (Some(1.0), Ok(())));
    }
}
