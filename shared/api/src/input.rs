//! Reading request input at the edge: the JSON body (415, 413, 400), its fields
//! (422 with every failing field at once), and query parameters (400).

use std::collections::BTreeSet;

use lambda_http::{Body, Request, RequestExt};
use serde_json::{Map, Value};

use crate::error::{ApiError, FieldError};

/// Largest accepted request body.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// The request's media type, lower-case, without parameters (`""` when absent).
pub fn media_type(req: &Request) -> String {
    let content_type = req.headers().get(http::header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase()
}

/// The request body as JSON. Checks media type and size before parsing.
pub fn json_body(req: &Request) -> Result<Value, ApiError> {
    let media_type = media_type(req);
    let bytes: &[u8] = match req.body() {
        Body::Empty => &[],
        Body::Text(text) => text.as_bytes(),
        Body::Binary(bytes) => bytes,
        _ => &[],
    };
    if bytes.len() > MAX_BODY_BYTES {
        return Err(ApiError::PayloadTooLarge { limit: MAX_BODY_BYTES });
    }
    if media_type != "application/json" && !media_type.ends_with("+json") {
        return Err(ApiError::UnsupportedMediaType { accepted: "application/json" });
    }
    if bytes.is_empty() {
        return Err(ApiError::BadRequest {
            code: "invalid_json",
            detail: "The request body is empty; send a JSON object.".into(),
        });
    }
    serde_json::from_slice(bytes).map_err(|err| ApiError::BadRequest {
        code: "invalid_json",
        // serde_json's syntax errors name a line and column, never the input itself.
        detail: format!("The request body is not valid JSON: {err}."),
    })
}

/// Takes the fields of a JSON object one by one, collecting every problem, so a
/// client learns all that is wrong with its body in one 422.
pub struct Fields {
    map: Map<String, Value>,
    errors: Vec<FieldError>,
}

impl Fields {
    /// Fails with a 422 unless `value` is a JSON object.
    pub fn new(value: Value) -> Result<Fields, ApiError> {
        match value {
            Value::Object(map) => Ok(Fields { map, errors: Vec::new() }),
            _ => Err(ApiError::ValidationFailed(vec![FieldError::new("", "the body must be a JSON object")])),
        }
    }

    /// A field that must be present and not null.
    pub fn required<T>(&mut self, name: &str, parse: impl FnOnce(&Value) -> Result<T, String>) -> Option<T> {
        match self.map.remove(name) {
            None | Some(Value::Null) => {
                self.error(name, "is required");
                None
            }
            Some(value) => self.check(name, parse(&value)),
        }
    }

    /// A field that must be present but may be null (`parse` sees the null): a PUT
    /// names every writable field, nullable ones included.
    pub fn present<T>(&mut self, name: &str, parse: impl FnOnce(&Value) -> Result<T, String>) -> Option<T> {
        match self.map.remove(name) {
            None => {
                self.error(name, "is required (send null to leave it empty)");
                None
            }
            Some(value) => self.check(name, parse(&value)),
        }
    }

    /// A field that may be absent or null (`Some(None)`); `None` when it is present but invalid.
    pub fn optional<T>(&mut self, name: &str, parse: impl FnOnce(&Value) -> Result<T, String>) -> Option<Option<T>> {
        match self.map.remove(name) {
            None | Some(Value::Null) => Some(None),
            Some(value) => self.check(name, parse(&value)).map(Some),
        }
    }

    /// A server-owned field that a client may send back as it read it (a GET body
    /// sent to PUT): equal to `stored`, it is dropped; changed, it is an error
    /// naming the stored value. Absent, nothing happens.
    pub fn unchanged(&mut self, name: &str, stored: &Value) {
        if let Some(sent) = self.map.remove(name)
            && &sent != stored
        {
            self.error(name, &format!("is set by the server (it is {stored}) and cannot be changed"));
        }
    }

    /// Refuses what is left: `server_owned` fields by name, anything else as unknown.
    /// Returns `Ok` only if no field failed.
    pub fn finish(self, server_owned: &[&str]) -> Result<(), ApiError> {
        all_valid(self.into_errors(server_owned))
    }

    /// As [`Fields::finish`], but hands back the errors, for a caller that still
    /// checks nested values (a list of items) and reports everything together.
    pub fn into_errors(mut self, server_owned: &[&str]) -> Vec<FieldError> {
        let rest: BTreeSet<String> = std::mem::take(&mut self.map).into_iter().map(|(name, _)| name).collect();
        for name in rest {
            let message = if server_owned.contains(&name.as_str()) {
                "is set by the server and cannot be written"
            } else {
                "is not a known field"
            };
            self.error(&name, message);
        }
        self.errors
    }

    fn check<T>(&mut self, name: &str, result: Result<T, String>) -> Option<T> {
        result.map_err(|message| self.error(name, &message)).ok()
    }

    fn error(&mut self, name: &str, message: &str) {
        // Field names come from the client: bound what is echoed.
        let field: String = name.chars().take(64).collect();
        self.errors.push(FieldError::new(field, message));
    }
}

/// `Ok` when `errors` is empty, else the 422 that lists them.
pub fn all_valid(errors: Vec<FieldError>) -> Result<(), ApiError> {
    if errors.is_empty() { Ok(()) } else { Err(ApiError::ValidationFailed(errors)) }
}

/// A trimmed string of 1..=`max` characters without control characters.
pub fn text(value: &Value, max: usize) -> Result<String, String> {
    let Value::String(text) = value else {
        return Err("must be a string".into());
    };
    let text = text.trim();
    if text.is_empty() {
        return Err("must not be empty".into());
    }
    if text.chars().count() > max {
        return Err(format!("must be at most {max} characters"));
    }
    if text.chars().any(char::is_control) {
        return Err("must not contain control characters".into());
    }
    Ok(text.to_owned())
}

/// A whole number within `range`. `120000.0` counts: JSON Schema's `integer` is any
/// number without a fractional part, and some JSON encoders write whole floats that way.
pub fn integer(value: &Value, range: std::ops::RangeInclusive<i64>) -> Result<i64, String> {
    let whole = value.as_i64().or_else(|| {
        let float = value.as_f64()?;
        // In range as a float first, so the cast below is exact (ranges here are far below 2^53).
        let in_range = float.fract() == 0.0 && float >= *range.start() as f64 && float <= *range.end() as f64;
        in_range.then_some(float as i64)
    });
    match whole {
        Some(n) if range.contains(&n) => Ok(n),
        _ => Err(format!("must be a whole number from {} to {}", range.start(), range.end())),
    }
}

/// The query string, refusing parameters a route does not know and repeated ones.
pub fn query_params(req: &Request, known: &[&str]) -> Result<Vec<(String, String)>, ApiError> {
    let query = req.query_string_parameters();
    let mut params: Vec<(String, String)> = Vec::new();
    for (name, value) in query.iter() {
        if !known.contains(&name) {
            let shown: String = name.chars().take(64).collect();
            let detail = format!("Unknown query parameter '{shown}'; this route accepts: {}.", known.join(", "));
            return Err(invalid_parameter(name, value, detail));
        }
        if params.iter().any(|(seen, _)| seen == name) {
            return Err(invalid_parameter(name, value, format!("Query parameter '{name}' was given more than once.")));
        }
        params.push((name.to_owned(), value.to_owned()));
    }
    Ok(params)
}

/// A 400 `invalid_parameter` naming `param` and echoing `value` (both bounded).
pub fn invalid_parameter(param: &str, value: &str, detail: String) -> ApiError {
    bad_query("invalid_parameter", param, value, detail)
}

/// A 400 with `code` about one query parameter.
pub fn bad_query(code: &'static str, param: &str, value: &str, detail: String) -> ApiError {
    ApiError::BadQuery {
        code,
        param: param.chars().take(64).collect(),
        value: value.chars().take(crate::error::MAX_ECHOED_VALUE_CHARS).collect(),
        detail,
    }
}

/// A query timestamp (`performed_after=…`), with a hint when the client sent an
/// unencoded `+`: a query string decodes `+` as a space, so `…T08:00:00+02:00`
/// arrives as `…T08:00:00 02:00`.
pub fn query_timestamp(name: &str, value: &str) -> Result<crate::Timestamp, ApiError> {
    crate::Timestamp::parse(value).ok_or_else(|| {
        let mut detail =
            format!("{name} must be an RFC 3339 timestamp from 1970 to 9999 (UTC), e.g. 2026-11-01T08:00:00Z.");
        if value.contains(' ') && crate::Timestamp::parse(&value.replace(' ', "+")).is_some() {
            detail.push_str(
                " A '+' in a query string decodes as a space: encode the offset's '+' as %2B (e.g. 08:00:00%2B02:00).",
            );
        }
        invalid_parameter(name, value, detail)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn request(content_type: Option<&str>, body: &str) -> Request {
        let mut builder = http::Request::builder().method("POST").uri("/vehicles");
        if let Some(content_type) = content_type {
            builder = builder.header("content-type", content_type);
        }
        builder.body(Body::Text(body.to_owned())).unwrap()
    }

    #[test]
    fn body_checks_type_size_and_syntax_in_that_order() {
        assert!(matches!(json_body(&request(Some("text/plain"), "{}")), Err(ApiError::UnsupportedMediaType { .. })));
        assert!(matches!(json_body(&request(None, "{}")), Err(ApiError::UnsupportedMediaType { .. })));
        let huge = format!("{{\"a\":\"{}\"}}", "x".repeat(MAX_BODY_BYTES));
        assert!(matches!(json_body(&request(Some("application/json"), &huge)), Err(ApiError::PayloadTooLarge { .. })));
        let bad = json_body(&request(Some("application/json; charset=utf-8"), "{\"vin\": ")).unwrap_err();
        assert_eq!((bad.status().as_u16(), bad.code()), (400, "invalid_json"));
        assert_eq!(json_body(&request(Some("application/json"), "{\"a\":1}")).unwrap(), json!({"a": 1}));
    }

    #[test]
    fn a_timestamp_whose_plus_became_a_space_gets_a_hint_and_is_echoed() {
        let err = query_timestamp("performed_after", "2026-11-01T08:00:00 02:00").unwrap_err();
        let problem = serde_json::to_value(err.to_problem("r")).unwrap();
        assert_eq!(problem["code"], "invalid_parameter");
        assert_eq!(problem["param"], "performed_after");
        assert_eq!(problem["value"], "2026-11-01T08:00:00 02:00");
        assert!(problem["detail"].as_str().unwrap().contains("%2B"), "{problem}");
        let plain = query_timestamp("performed_after", "yesterday").unwrap_err();
        assert!(!plain.to_string().contains("%2B"), "no hint without a lost '+'");
        assert_eq!(query_timestamp("x", "2026-11-01T08:00:00+02:00").unwrap().to_string(), "2026-11-01T06:00:00Z");
    }

    #[test]
    fn echoed_query_values_are_bounded() {
        let long = "x".repeat(5_000);
        let ApiError::BadQuery { param, value, .. } = invalid_parameter(&long, &long, "d".into()) else { panic!() };
        assert_eq!((param.len(), value.len()), (64, crate::error::MAX_ECHOED_VALUE_CHARS));
    }

    #[test]
    fn whole_numbers_may_be_written_as_floats_but_fractions_are_refused() {
        assert_eq!(integer(&json!(120000.0), 0..=10_000_000), Ok(120000));
        assert_eq!(integer(&json!(-0.0), 0..=10), Ok(0));
        for bad in [json!(1.5), json!(10_000_001.0), json!(-1.0), json!(1e300), json!("7"), json!(null)] {
            assert!(integer(&bad, 0..=10_000_000).is_err(), "{bad}");
        }
    }

    #[test]
    fn fields_report_every_problem_at_once() {
        let mut fields = Fields::new(json!({"name": " ", "year": 1800, "id": "veh_x", "colour": "red"})).unwrap();
        assert_eq!(fields.required("name", |v| text(v, 10)), None);
        assert_eq!(fields.required("year", |v| integer(v, 1900..=2027)), None);
        assert_eq!(fields.required("vin", |v| text(v, 17)), None);
        assert_eq!(fields.optional("plate", |v| text(v, 10)), Some(None));
        let Err(ApiError::ValidationFailed(errors)) = fields.finish(&["id"]) else { panic!("expected 422") };
        let by_field: Vec<(&str, &str)> = errors.iter().map(|e| (e.field.as_str(), e.message.as_str())).collect();
        assert_eq!(
            by_field,
            [
                ("name", "must not be empty"),
                ("year", "must be a whole number from 1900 to 2027"),
                ("vin", "is required"),
                ("colour", "is not a known field"),
                ("id", "is set by the server and cannot be written"),
            ]
        );
    }

    #[test]
    fn non_objects_are_422() {
        assert!(matches!(Fields::new(json!([1, 2])), Err(ApiError::ValidationFailed(_))));
    }
}
