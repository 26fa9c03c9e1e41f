//! `local-stack metrics <log>...`: what production would chart, from a dev or
//! test log. Finds every EMF document the functions wrote (one JSON object per
//! line, possibly after a prefix), checks each against the EMF specification
//! (`fleetgate_api::metrics::validate`) and the catalogue of what the code emits,
//! and sums each metric per dimension set.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::Error;

/// Sums per (metric, dimensions as `k=v, …`), and how many documents were read.
#[derive(Debug, Default)]
pub struct Summary {
    pub documents: usize,
    pub totals: BTreeMap<(String, String), f64>,
}

impl Summary {
    /// The values a dimension `key` took for `metric` (e.g. every `route` of `Requests`).
    pub fn dimension_values(&self, metric: &str, key: &str) -> Vec<String> {
        let prefix = format!("{key}=");
        let mut values: Vec<String> = self
            .totals
            .keys()
            .filter(|(name, _)| name == metric)
            .flat_map(|(_, dimensions)| {
                dimensions.split(", ").filter_map(|d| d.strip_prefix(&prefix)).map(str::to_owned).collect::<Vec<_>>()
            })
            .collect();
        values.sort();
        values.dedup();
        values
    }
}

/// What one whole `make test` run must have counted, as (metric, dimension key,
/// values): every route; every reason the authorizer can refuse a key for (not
/// `missing`: API Gateway answers a request without the header itself, since the
/// header is the authorizer's identity source); the refusals the e2e tests and the
/// outage drill provoke; a replay; admin actions; failed DynamoDB calls (the drill).
pub fn expected_in_a_test_run() -> Vec<(&'static str, &'static str, Vec<String>)> {
    let strings = |values: &[&str]| values.iter().map(|v| (*v).to_owned()).collect();
    vec![
        ("Requests", "route", fleetgate_scopes::ROUTES.iter().map(|r| r.describe()).collect()),
        (
            "AuthRefusals",
            "reason",
            strings(&["malformed", "bad_checksum", "wrong_environment", "unknown", "revoked", "expired"]),
        ),
        (
            "Refusals",
            "reason",
            strings(&["insufficient_scope", "ip_not_allowed", "rate_limited", "service_unavailable"]),
        ),
        ("IdempotentReplays", "route", strings(&["POST /vehicles"])),
        ("ProvisionerActions", "outcome", strings(&["ok", "tenant_not_found"])),
        ("DynamoErrors", "kind", strings(&["timeout"])),
    ]
}

/// What `summary` lacks of `expected` (see [`expected_in_a_test_run`]), one line each.
pub fn missing(summary: &Summary, expected: &[(&str, &str, Vec<String>)]) -> Vec<String> {
    let mut missing = Vec::new();
    for (metric, key, values) in expected {
        let seen = summary.dimension_values(metric, key);
        for value in values.iter().filter(|v| !seen.contains(v)) {
            missing.push(format!("no {metric} with {key}={value}"));
        }
    }
    missing
}

/// Reads `text` (log lines); an EMF document that breaks the specification is an error naming its line.
pub fn summarise(text: &str, summary: &mut Summary) -> Result<(), Error> {
    for (number, line) in text.lines().enumerate() {
        let Some(start) = line.find("{\"") else { continue };
        let Ok(doc) = serde_json::from_str::<Value>(&line[start..]) else { continue };
        if doc.get("_aws").is_none() {
            continue;
        }
        fleetgate_api::metrics::validate(&doc).map_err(|why| format!("line {}: invalid EMF: {why}", number + 1))?;
        fleetgate_api::metrics::catalogued(&doc).map_err(|why| format!("line {}: {why}", number + 1))?;
        summary.documents += 1;
        for directive in doc["_aws"]["CloudWatchMetrics"].as_array().into_iter().flatten() {
            for set in directive["Dimensions"].as_array().into_iter().flatten() {
                let dimensions: Vec<String> = set
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(Value::as_str)
                    .map(|key| format!("{key}={}", doc[key].as_str().unwrap_or_default()))
                    .collect();
                for metric in directive["Metrics"].as_array().into_iter().flatten() {
                    let name = metric["Name"].as_str().unwrap_or_default().to_owned();
                    let value = doc[&name].as_f64().unwrap_or(0.0);
                    *summary.totals.entry((name, dimensions.join(", "))).or_default() += value;
                }
            }
        }
    }
    Ok(())
}

/// The summary as a table: metric, dimensions, sum (latency as its mean).
pub fn render(summary: &Summary) -> String {
    let requests: BTreeMap<String, f64> = summary
        .totals
        .iter()
        .filter(|((name, _), _)| name == "Requests")
        .map(|((_, dims), n)| (dims.clone(), *n))
        .collect();
    let mut out = format!("{} EMF documents, all valid\n", summary.documents);
    for ((name, dimensions), total) in &summary.totals {
        let shown = match (name.as_str(), requests.get(dimensions)) {
            ("Latency", Some(count)) if *count > 0.0 => format!("{:.1} ms mean", total / count),
            _ => format!("{total}"),
        };
        out.push_str(&format!("{name:<16} {dimensions:<80} {shown}\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_are_found_after_a_prefix_checked_and_summed() {
        let doc = |route: &str, status: &str| {
            let mut doc = fleetgate_api::metrics::MetricsDoc::new();
            doc.record(
                &[("function", "f"), ("route", route), ("status_class", status)],
                &[("Requests", fleetgate_api::metrics::Unit::Count, 1.0)],
            );
            doc.to_json(1).to_string()
        };
        let log = format!(
            "INFO noise\n[f] {}\n{}\n{}\n{{\"not\": \"emf\"}}\n",
            doc("GET /me", "2xx"),
            doc("GET /me", "2xx"),
            doc("GET /vehicles", "4xx")
        );
        let mut summary = Summary::default();
        summarise(&log, &mut summary).unwrap();
        assert_eq!(summary.documents, 3);
        assert_eq!(summary.totals[&("Requests".into(), "function=f, route=GET /me, status_class=2xx".into())], 2.0);
        assert_eq!(summary.dimension_values("Requests", "route"), ["GET /me", "GET /vehicles"]);
        let expected = [("Requests", "route", vec!["GET /me".to_owned(), "POST /vehicles".to_owned()])];
        assert_eq!(missing(&summary, &expected), ["no Requests with route=POST /vehicles"]);
        let broken = log.replace("\"Count\"", "\"Requests\"");
        assert!(summarise(&broken, &mut Summary::default()).unwrap_err().to_string().contains("line 2: invalid EMF"));
    }
}
