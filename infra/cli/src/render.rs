//! Human output: aligned tables and short summaries of the provisioner's answers,
//! with dates relative to `now` where that reads better ("3 days ago"). Pure
//! functions of the answer and `now`, so their output is pinned by tests.

use fleetgate_api::Timestamp;
use serde_json::Value;

/// `rows` under `headers`, each column as wide as its widest cell, two spaces apart.
pub fn table(headers: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let last = cells.len().saturating_sub(1);
        let mut text = String::new();
        for (n, (cell, width)) in cells.iter().zip(&widths).enumerate() {
            text.push_str(cell);
            if n < last {
                text.push_str(&" ".repeat(width - cell.chars().count() + 2));
            }
        }
        text.trim_end().to_owned() + "\n"
    };
    let mut out = line(headers.to_vec());
    for row in rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
    }
    out
}

/// `then` relative to `now`: "just now", "5 minutes ago", "in 3 days"…
pub fn relative(then: Timestamp, now: Timestamp) -> String {
    let seconds = then.unix_seconds() - now.unix_seconds();
    let (past, span) = (seconds < 0, seconds.unsigned_abs());
    if span < 60 {
        return "just now".into();
    }
    let (count, unit) = match span {
        s if s < 3_600 => (s / 60, "minute"),
        s if s < 86_400 => (s / 3_600, "hour"),
        s if s < 86_400 * 60 => (s / 86_400, "day"),
        s if s < 86_400 * 730 => (s / (86_400 * 30), "month"),
        s => (s / (86_400 * 365), "year"),
    };
    let plural = if count == 1 { "" } else { "s" };
    if past { format!("{count} {unit}{plural} ago") } else { format!("in {count} {unit}{plural}") }
}

fn text(value: &Value, field: &str) -> String {
    match &value[field] {
        Value::String(s) => s.clone(),
        Value::Null => "–".into(),
        other => other.to_string(),
    }
}

fn when(value: &Value, field: &str, now: Timestamp, none: &str) -> String {
    value[field].as_str().and_then(Timestamp::parse).map_or_else(|| none.to_owned(), |t| relative(t, now))
}

fn scopes(key: &Value) -> String {
    let granted: Vec<&str> = key["granted_scopes"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
    granted.join(" ")
}

/// A rate limit object as its text form: `100/second` (`/burst` when it is not the default).
fn rate(limit: &Value) -> String {
    match (limit["requests"].as_u64(), limit["per"].as_str()) {
        (Some(requests), Some(per)) => match limit["burst"].as_u64() {
            Some(burst) if burst != requests => format!("{requests}/{per}/{burst}"),
            _ => format!("{requests}/{per}"),
        },
        _ => "none".into(),
    }
}

/// `list_keys`' keys.
pub fn keys_table(keys: &[Value], now: Timestamp) -> String {
    let rows: Vec<Vec<String>> = keys
        .iter()
        .map(|key| {
            vec![
                text(key, "key_id"),
                text(key, "name"),
                text(key, "status"),
                scopes(key),
                when(key, "last_used_at", now, "never"),
                when(key, "expires_at", now, "never"),
                when(key, "created_at", now, "–"),
                key["usage"]["requests"].as_u64().map_or_else(|| "–".into(), |n| n.to_string()),
            ]
        })
        .collect();
    if rows.is_empty() {
        return "No keys.\n".into();
    }
    table(&["KEY ID", "NAME", "STATUS", "SCOPES", "LAST USED", "EXPIRES", "CREATED", "THIS MONTH"], &rows)
}

/// One key, field by field.
pub fn key_details(key: &Value, now: Timestamp) -> String {
    let dated = |field: &str, none: &str| match key[field].as_str() {
        Some(at) => format!("{at} ({})", when(key, field, now, none)),
        None => none.to_owned(),
    };
    let networks = match key["allowed_cidrs"].as_array() {
        Some(cidrs) => cidrs.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(" "),
        None => "any".into(),
    };
    let quota = key["monthly_quota"].as_u64().map_or_else(|| "none".into(), |q| q.to_string());
    let usage = match (key["usage"]["requests"].as_u64(), key["usage"]["month"].as_str()) {
        (Some(n), Some(month)) => format!("{n} requests in {month}"),
        _ => "–".into(),
    };
    let mut fields = vec![
        ("Key", text(key, "key_id")),
        ("Name", text(key, "name")),
        ("Tenant", text(key, "tenant_id")),
        ("Status", text(key, "status")),
        ("Environment", text(key, "environment")),
        ("Key ends", text(key, "hint")),
        ("Scopes", scopes(key)),
        ("Rate limit", format!("{} ({})", rate(&key["rate_limit"]), text(key, "rate_limit_from"))),
        ("Monthly quota", quota),
        ("Networks", networks),
        ("Usage", usage),
        ("Created", dated("created_at", "–")),
        ("Last used", dated("last_used_at", "never")),
        ("Expires", dated("expires_at", "never")),
    ];
    for (label, field) in [("Revoked", "revoked_at"), ("Rotated from", "rotated_from"), ("Rotated to", "rotated_to")] {
        if !key[field].is_null() {
            fields.push((label, if field == "revoked_at" { dated(field, "–") } else { text(key, field) }));
        }
    }
    if let Some(reason) = key["revoke_reason"].as_str() {
        fields.push(("Revoke reason", reason.to_owned()));
    }
    let width = fields.iter().map(|(label, _)| label.len()).max().unwrap_or(0) + 2;
    fields.iter().map(|(label, value)| format!("{:<width$}{value}\n", format!("{label}:"))).collect()
}

/// A new key's secret, shown once, with how to try it. The warning goes to
/// stderr (`secret_warning`), so stdout can be captured as is.
pub fn new_secret(answer: &Value, api_url: Option<&str>) -> String {
    let key = &answer["key"];
    let secret = answer["api_key"].as_str().unwrap_or_default();
    let api = api_url.map_or_else(|| "$API_URL".to_owned(), |url| url.trim_end_matches('/').to_owned());
    format!(
        "Created {} \"{}\" for tenant {} ({}).\n\n    {secret}\n\nTry it:\n    curl -H \"X-API-Key: {secret}\" {api}/me\n",
        text(key, "key_id"),
        text(key, "name"),
        text(key, "tenant_id"),
        scopes(key),
    )
}

pub const SECRET_WARNING: &str =
    "warning: this is the only time the key is shown; store it now (a secret manager, the device's settings).";

/// `list_inspection_templates`' templates.
pub fn templates_table(templates: &[Value], now: Timestamp) -> String {
    if templates.is_empty() {
        return "No templates.\n".into();
    }
    let rows: Vec<Vec<String>> = templates
        .iter()
        .map(|t| {
            vec![
                text(t, "id"),
                text(t, "name"),
                text(t, "version"),
                t["items"].as_array().map_or(0, Vec::len).to_string(),
                when(t, "updated_at", now, "–"),
            ]
        })
        .collect();
    table(&["ID", "NAME", "VERSION", "ITEMS", "UPDATED"], &rows)
}

/// Audit records, in the order given.
pub fn audit_table(records: &[Value], now: Timestamp) -> String {
    if records.is_empty() {
        return "No audit records.\n".into();
    }
    table(&["WHEN", "ACTION", "OUTCOME", "KEY", "RESOURCE", "BY"], &audit_rows(records, now))
}

/// Audit records as table rows, without the header (for `--follow`'s later lines).
pub fn audit_rows(records: &[Value], now: Timestamp) -> Vec<Vec<String>> {
    records
        .iter()
        .map(|r| {
            vec![
                format!("{} ({})", text(r, "at"), when(r, "at", now, "–")),
                text(r, "action"),
                text(r, "outcome"),
                text(r, "key_id"),
                text(r, "resource_id"),
                text(r, "requested_by"),
            ]
        })
        .collect()
}

/// `list_tenants`' tenants.
pub fn tenants_table(tenants: &[Value], now: Timestamp) -> String {
    if tenants.is_empty() {
        return "No tenants.\n".into();
    }
    let rows: Vec<Vec<String>> =
        tenants.iter().map(|t| vec![text(t, "tenant_id"), text(t, "name"), when(t, "created_at", now, "–")]).collect();
    table(&["TENANT", "NAME", "CREATED"], &rows)
}

/// `get_tenant`'s answer: the tenant, its cap and this month's usage.
pub fn tenant_details(answer: &Value, now: Timestamp) -> String {
    let tenant = &answer["tenant"];
    let cap = if answer["rate_limit"].is_null() { "none".into() } else { rate(&answer["rate_limit"]) };
    let usage = match (answer["usage"]["requests"].as_u64(), answer["usage"]["month"].as_str()) {
        (Some(n), Some(month)) => format!("{n} requests in {month}"),
        _ => "–".into(),
    };
    format!(
        "Tenant:     {}\nName:       {}\nCreated:    {}\nCap:        {cap} (all keys together)\nUsage:      {usage}\n",
        text(tenant, "tenant_id"),
        text(tenant, "name"),
        when(tenant, "created_at", now, "–"),
    )
}

/// The detail column of a review section's key.
type Detail = fn(&Value, Timestamp) -> String;

/// `review_keys`' answer: what to act on, section by section.
pub fn review(answer: &Value, now: Timestamp) -> String {
    let keys: &[Value] = answer["keys"].as_array().map_or(&[], Vec::as_slice);
    let days = answer["unused_days"].as_u64().unwrap_or_default();
    let mut out = format!(
        "Access review of {}: {} working key(s); \"unused\" means not in the last {days} days.\n",
        text(answer, "tenant_id"),
        keys.len()
    );
    let with = |finding: &str| -> Vec<&Value> {
        keys.iter().filter(|k| k["findings"].as_array().is_some_and(|f| f.iter().any(|x| x == finding))).collect()
    };
    let sections: [(&str, &str, Detail); 4] = [
        ("never_used", "Never used", |k, now| format!("created {}", when(k, "created_at", now, "–"))),
        ("unused", "Unused", |k, now| format!("last used {}", when(k, "last_used_at", now, "never"))),
        ("expiring_soon", "Expiring soon", |k, now| format!("expires {}", when(k, "expires_at", now, "never"))),
        ("rotation_grace", "Rotated, still working", |k, now| {
            format!("works until {} ({})", text(k, "expires_at"), when(k, "expires_at", now, "–"))
        }),
    ];
    for (finding, title, detail) in sections {
        let found = with(finding);
        if found.is_empty() {
            continue;
        }
        out.push_str(&format!("\n{title} ({}):\n", found.len()));
        let rows: Vec<Vec<String>> =
            found.iter().map(|k| vec![format!("  {}", text(k, "key_id")), text(k, "name"), detail(k, now)]).collect();
        out.push_str(&table_rows(&rows));
    }
    let narrower: Vec<&Value> =
        keys.iter().filter(|k| k["unused_scopes"].as_array().is_some_and(|u| !u.is_empty())).collect();
    if !narrower.is_empty() {
        out.push_str(&format!("\nGranted scopes not used in {days} days ({}):\n", narrower.len()));
        let names =
            |v: &Value| v.as_array().into_iter().flatten().filter_map(Value::as_str).collect::<Vec<_>>().join(" ");
        let rows: Vec<Vec<String>> = narrower
            .iter()
            .map(|k| {
                let advice = match (&k["suggested_scopes"], k["suggested_preset"].as_str()) {
                    (Value::Null, _) => "nothing used: revoke it?".to_owned(),
                    (scopes, Some(preset)) => format!("enough: {} (preset {preset})", names(scopes)),
                    (scopes, None) => format!("enough: {}", names(scopes)),
                };
                vec![
                    format!("  {}", text(k, "key_id")),
                    text(k, "name"),
                    format!("unused: {}", names(&k["unused_scopes"])),
                    advice,
                ]
            })
            .collect();
        out.push_str(&table_rows(&rows));
    }
    if out.lines().count() == 1 {
        out.push_str("Nothing to act on.\n");
    }
    out
}

/// Rows aligned as in [`table`], without a header.
fn table_rows(rows: &[Vec<String>]) -> String {
    let columns = rows.first().map_or(0, Vec::len);
    let blank = vec![""; columns];
    table(&blank, rows).lines().skip(1).map(|line| format!("{line}\n")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn at(text: &str) -> Timestamp {
        Timestamp::parse(text).unwrap()
    }

    #[test]
    fn dates_read_relative_to_now() {
        let now = at("2026-12-07T12:00:00Z");
        assert_eq!(relative(at("2026-12-07T11:59:30Z"), now), "just now");
        assert_eq!(relative(at("2026-12-07T11:55:00Z"), now), "5 minutes ago");
        assert_eq!(relative(at("2026-12-07T11:00:00Z"), now), "1 hour ago");
        assert_eq!(relative(at("2026-12-04T12:00:00Z"), now), "3 days ago");
        assert_eq!(relative(at("2026-12-21T12:00:00Z"), now), "in 14 days");
        assert_eq!(relative(at("2026-09-01T12:00:00Z"), now), "3 months ago");
        assert_eq!(relative(at("2023-12-01T12:00:00Z"), now), "3 years ago");
    }

    fn key(id: &str, name: &str, last_used: Option<&str>) -> Value {
        json!({
            "key_id": id, "tenant_id": "acme", "name": name, "status": "active", "environment": "test",
            "granted_scopes": ["vehicles:read", "inspections:read"], "hint": "…x7Qa",
            "created_at": "2026-11-07T12:00:00Z", "expires_at": null, "last_used_at": last_used,
            "allowed_cidrs": null, "rate_limit": {"requests": 100, "per": "second", "burst": 100},
            "rate_limit_from": "default", "monthly_quota": null, "revoked_at": null,
            "usage": {"month": "2026-12", "requests": 42}
        })
    }

    /// The table as an admin sees it (a snapshot: a change to it is a change to this test).
    #[test]
    fn the_keys_table_is_aligned_with_relative_dates() {
        let now = at("2026-12-07T12:00:00Z");
        let keys = [key("key_01", "tablet-7", Some("2026-12-04T12:00:00Z")), key("key_0002", "tms", None)];
        assert_eq!(
            keys_table(&keys, now),
            "\
KEY ID    NAME      STATUS  SCOPES                          LAST USED   EXPIRES  CREATED      THIS MONTH
key_01    tablet-7  active  vehicles:read inspections:read  3 days ago  never    30 days ago  42
key_0002  tms       active  vehicles:read inspections:read  never       never    30 days ago  42
"
        );
        assert_eq!(keys_table(&[], now), "No keys.\n");
    }

    #[test]
    fn one_key_is_shown_field_by_field() {
        let now = at("2026-12-07T12:00:00Z");
        let mut restricted = key("key_01", "tablet-7", None);
        restricted["allowed_cidrs"] = json!(["203.0.113.0/24"]);
        restricted["rate_limit"] = json!({"requests": 5, "per": "second", "burst": 10});
        restricted["rate_limit_from"] = json!("key");
        restricted["monthly_quota"] = json!(1000);
        let shown = key_details(&restricted, now);
        assert!(shown.starts_with("Key:           key_01\nName:          tablet-7\n"), "{shown}");
        for line in [
            "Rate limit:    5/second/10 (key)\n",
            "Monthly quota: 1000\n",
            "Networks:      203.0.113.0/24\n",
            "Usage:         42 requests in 2026-12\n",
            "Created:       2026-11-07T12:00:00Z (30 days ago)\n",
            "Last used:     never\n",
        ] {
            assert!(shown.contains(line), "{line:?} in\n{shown}");
        }
        assert!(!shown.contains("Revoked"), "{shown}");
    }

    #[test]
    fn a_new_secret_comes_with_a_curl_example_against_the_stacks_api() {
        let answer = json!({"api_key": "fg_test_SECRET", "key": key("key_01", "tablet-7", None)});
        let shown = new_secret(&answer, Some("http://127.0.0.1:9000/"));
        assert_eq!(
            shown,
            "Created key_01 \"tablet-7\" for tenant acme (vehicles:read inspections:read).\n\n    fg_test_SECRET\n\n\
             Try it:\n    curl -H \"X-API-Key: fg_test_SECRET\" http://127.0.0.1:9000/me\n"
        );
        assert!(new_secret(&answer, None).contains("$API_URL/me"));
    }

    #[test]
    fn a_review_names_what_to_act_on() {
        let now = at("2026-12-07T12:00:00Z");
        let answer = json!({"tenant_id": "acme", "unused_days": 30, "keys": [
            {"key_id": "key_01", "name": "tms", "findings": [], "unused_scopes": ["vehicles:write"],
             "suggested_scopes": ["vehicles:read", "inspections:write"], "suggested_preset": "inspection-submission"},
            {"key_id": "key_02", "name": "tablet", "findings": ["never_used"], "created_at": "2026-12-04T12:00:00Z",
             "unused_scopes": ["vehicles:read"], "suggested_scopes": null, "suggested_preset": null},
            {"key_id": "key_03", "name": "old", "findings": ["unused", "expiring_soon"],
             "last_used_at": "2026-10-01T12:00:00Z", "expires_at": "2026-12-10T12:00:00Z", "unused_scopes": []}
        ]});
        assert_eq!(
            review(&answer, now),
            "\
Access review of acme: 3 working key(s); \"unused\" means not in the last 30 days.

Never used (1):
  key_02  tablet  created 3 days ago

Unused (1):
  key_03  old  last used 2 months ago

Expiring soon (1):
  key_03  old  expires in 3 days

Granted scopes not used in 30 days (2):
  key_01  tms     unused: vehicles:write  enough: vehicles:read inspections:write (preset inspection-submission)
  key_02  tablet  unused: vehicles:read   nothing used: revoke it?
"
        );
        let quiet = json!({"tenant_id": "acme", "unused_days": 30, "keys": []});
        assert!(review(&quiet, now).ends_with("Nothing to act on.\n"));
    }

    #[test]
    fn audit_and_tenant_tables() {
        let now = at("2026-12-07T12:00:00Z");
        let records = [json!({"at": "2026-12-07T11:00:00Z", "action": "revoke_key", "outcome": "ok",
                              "key_id": null, "resource_id": "key_01", "requested_by": "ana"})];
        assert_eq!(
            audit_table(&records, now),
            "\
WHEN                               ACTION      OUTCOME  KEY  RESOURCE  BY
2026-12-07T11:00:00Z (1 hour ago)  revoke_key  ok       –    key_01    ana
"
        );
        let tenants = [json!({"tenant_id": "acme", "name": "Acme Haulage", "created_at": "2026-12-06T12:00:00Z"})];
        assert_eq!(tenants_table(&tenants, now), "TENANT  NAME          CREATED\nacme    Acme Haulage  1 day ago\n");
    }
}
