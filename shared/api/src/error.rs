//! The one error type of the HTTP boundary and its RFC 9457 rendering.

use http::{HeaderValue, StatusCode};
use lambda_http::{Body, Response};
use serde::Serialize;
#[cfg(test)]
use serde_json::{Value, json};

use fleetgate_scopes::InsufficientScope;

use crate::dynamo::DbError;

/// Base of every problem `type` URI; the path is the code in kebab case.
pub const PROBLEM_TYPE_BASE: &str = "https://fleetgate.dev/problems/";

/// How long a client should wait before retrying a 503, in seconds.
pub const RETRY_AFTER_SECONDS: u32 = 2;

/// An RFC 9457 problem details body.
#[derive(Debug, Serialize)]
pub struct Problem<'a> {
    #[serde(rename = "type")]
    pub problem_type: String,
    pub title: &'static str,
    pub status: u16,
    pub detail: String,
    /// Stable snake_case code.
    pub code: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub required_scopes: Option<Vec<&'static str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub granted_scopes: Option<Vec<&'static str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub effective_scopes: Option<Vec<&'static str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<&'a [FieldError]>,
    /// `vin_taken`: the vehicle that has the VIN.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub existing_vehicle_id: Option<&'a str>,
    /// A refused query parameter: its name and the value received (bounded).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub param: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<&'a str>,
    /// `rate_limited`, `quota_exceeded`: the limit, its window and when to retry (seconds).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limit: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window_seconds: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
    pub request_id: String,
}

/// One field that failed validation. `item_id` names the inspection item an
/// entry is about (missing, duplicate or unknown answers), for programs.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FieldError {
    pub field: String,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub item_id: Option<String>,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> FieldError {
        FieldError { field: field.into(), message: message.into(), item_id: None }
    }

    /// An entry about one inspection item.
    pub fn about_item(field: impl Into<String>, message: impl Into<String>, item_id: &str) -> FieldError {
        FieldError { item_id: Some(item_id.chars().take(64).collect()), ..FieldError::new(field, message) }
    }
}

/// The most of a refused query value echoed back.
pub const MAX_ECHOED_VALUE_CHARS: usize = 200;

pub type Result<T, E = ApiError> = std::result::Result<T, E>;

/// Everything an endpoint can answer other than success. Each variant maps to
/// exactly one status and one stable `code`.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No `X-API-Key` header, or no authorizer context outside local mode.
    #[error("Send an API key in the X-API-Key header.")]
    MissingApiKey,
    /// Malformed, bad checksum, unknown, revoked, expired or of another environment:
    /// deliberately one answer, so a caller learns nothing about which.
    #[error("The API key is not valid: it may be mistyped, revoked, expired, or meant for another environment.")]
    InvalidApiKey,
    /// A valid key without the route's scope.
    #[error("{0}")]
    InsufficientScope(#[from] InsufficientScope),
    /// A header or JSON syntax the server cannot read.
    #[error("{detail}")]
    BadRequest { code: &'static str, detail: String },
    /// A query parameter the route does not take or a value it cannot read
    /// (`invalid_parameter`, `invalid_cursor`): the answer names both.
    #[error("{detail}")]
    BadQuery { code: &'static str, param: String, value: String, detail: String },
    /// A valid key used from a network outside its `allowed_cidrs`. Says nothing
    /// about the key or its list: the caller may not be its holder.
    #[error("This key may not be used from your network.")]
    IpNotAllowed,
    /// Over a rate limit: the key's own, or its tenant's cap (`who` says which).
    #[error(
        "Too many requests: {who} may make {limit} requests {}. Retry after {}.",
        per_window(*.window_seconds),
        seconds(*.retry_after)
    )]
    RateLimited { who: &'static str, limit: u64, window_seconds: u64, retry_after: u64 },
    /// The key's monthly quota is spent until the next UTC month.
    #[error(
        "This key's monthly quota of {limit} requests is used up; it renews at the start of the next UTC month, in {}.",
        seconds(*.retry_after)
    )]
    QuotaExceeded { limit: u64, window_seconds: u64, retry_after: u64 },
    /// Unknown id, including another tenant's.
    #[error("No {resource} with that id exists.")]
    NotFound { resource: &'static str },
    #[error("{method} is not allowed here; use {allow}.")]
    MethodNotAllowed { method: String, allow: &'static str },
    /// Another vehicle of the tenant has this VIN; names it, so a client can reconcile.
    #[error("Another vehicle of this fleet already has VIN {vin}.")]
    VinTaken { vin: String, existing_vehicle_id: Option<String> },
    /// The `Idempotency-Key` was used before with another body.
    #[error("This Idempotency-Key was already used with a different request body; use a new key for a new request.")]
    IdempotencyKeyReused,
    /// A request with this `Idempotency-Key` is still running.
    #[error("A request with this Idempotency-Key is still in progress; retry shortly.")]
    IdempotencyKeyInProgress,
    /// The request conflicts with the resource's state (a limit reached, a
    /// disabled endpoint): `code` says which, `detail` what to do.
    #[error("{detail}")]
    Conflict { code: &'static str, detail: String },
    #[error("The resource has changed since you read it; fetch it again and retry with the new ETag.")]
    PreconditionFailed,
    #[error("The request body is larger than {limit} bytes.")]
    PayloadTooLarge { limit: usize },
    #[error("Send the request body as {accepted}.")]
    UnsupportedMediaType { accepted: &'static str },
    /// The body parses but breaks the rules; lists every failing field.
    #[error("The request body failed validation.")]
    ValidationFailed(Vec<FieldError>),
    /// DynamoDB throttled or could not be reached: not the caller's fault, retry later.
    #[error("The service is temporarily unavailable; retry after a short wait.")]
    ServiceUnavailable(#[source] DbError),
    /// A bug or an unexpected failure. Its cause goes to the log, never to the client.
    #[error("Something went wrong on our side. Quote the request_id if you contact support.")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// `per second`, `per 60 seconds`.
fn per_window(seconds: u64) -> String {
    if seconds == 1 { "per second".to_owned() } else { format!("per {seconds} seconds") }
}

/// `1 second`, `5 seconds`.
fn seconds(count: u64) -> String {
    if count == 1 { "1 second".to_owned() } else { format!("{count} seconds") }
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::MissingApiKey | ApiError::InvalidApiKey => StatusCode::UNAUTHORIZED,
            ApiError::InsufficientScope(_) | ApiError::IpNotAllowed => StatusCode::FORBIDDEN,
            ApiError::BadRequest { .. } | ApiError::BadQuery { .. } => StatusCode::BAD_REQUEST,
            ApiError::NotFound { .. } => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::VinTaken { .. }
            | ApiError::IdempotencyKeyReused
            | ApiError::IdempotencyKeyInProgress
            | ApiError::Conflict { .. } => StatusCode::CONFLICT,
            ApiError::PreconditionFailed => StatusCode::PRECONDITION_FAILED,
            ApiError::RateLimited { .. } | ApiError::QuotaExceeded { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType { .. } => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::ValidationFailed(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::ServiceUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Stable snake_case code; clients branch on this, not on `title` or `detail`.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::MissingApiKey => "missing_api_key",
            ApiError::InvalidApiKey => "invalid_api_key",
            ApiError::InsufficientScope(_) => "insufficient_scope",
            ApiError::IpNotAllowed => "ip_not_allowed",
            ApiError::RateLimited { .. } => "rate_limited",
            ApiError::QuotaExceeded { .. } => "quota_exceeded",
            ApiError::BadRequest { code, .. } | ApiError::BadQuery { code, .. } | ApiError::Conflict { code, .. } => {
                code
            }
            ApiError::NotFound { .. } => "not_found",
            ApiError::MethodNotAllowed { .. } => "method_not_allowed",
            ApiError::VinTaken { .. } => "vin_taken",
            ApiError::IdempotencyKeyReused => "idempotency_key_reused",
            ApiError::IdempotencyKeyInProgress => "idempotency_key_in_progress",
            ApiError::PreconditionFailed => "precondition_failed",
            ApiError::PayloadTooLarge { .. } => "payload_too_large",
            ApiError::UnsupportedMediaType { .. } => "unsupported_media_type",
            ApiError::ValidationFailed(_) => "validation_failed",
            ApiError::ServiceUnavailable(_) => "service_unavailable",
            ApiError::Internal(_) => "internal_error",
        }
    }

    fn title(&self) -> &'static str {
        match self {
            ApiError::MissingApiKey => "Missing API key",
            ApiError::InvalidApiKey => "Invalid API key",
            ApiError::InsufficientScope(_) => "Insufficient scope",
            ApiError::IpNotAllowed => "Network not allowed",
            ApiError::RateLimited { .. } => "Too many requests",
            ApiError::QuotaExceeded { .. } => "Quota exceeded",
            ApiError::BadRequest { .. } | ApiError::BadQuery { .. } => "Bad request",
            ApiError::NotFound { .. } => "Not found",
            ApiError::MethodNotAllowed { .. } => "Method not allowed",
            ApiError::VinTaken { .. } => "VIN taken",
            ApiError::Conflict { .. } => "Conflict",
            ApiError::IdempotencyKeyReused => "Idempotency key reused",
            ApiError::IdempotencyKeyInProgress => "Idempotency key in progress",
            ApiError::PreconditionFailed => "Precondition failed",
            ApiError::PayloadTooLarge { .. } => "Payload too large",
            ApiError::UnsupportedMediaType { .. } => "Unsupported media type",
            ApiError::ValidationFailed(_) => "Validation failed",
            ApiError::ServiceUnavailable(_) => "Service unavailable",
            ApiError::Internal(_) => "Internal error",
        }
    }

    /// The problem details body (RFC 9457) with Fleetgate's extensions, members in the RFC's order.
    pub fn to_problem(&self, request_id: &str) -> Problem<'_> {
        let (required_scopes, granted_scopes, effective_scopes) = match self {
            ApiError::InsufficientScope(missing) => {
                (Some(vec![missing.required.as_str()]), Some(missing.granted.names()), Some(missing.effective.names()))
            }
            _ => (None, None, None),
        };
        let (limit, window_seconds, retry_after) = match self {
            ApiError::RateLimited { limit, window_seconds, retry_after, .. }
            | ApiError::QuotaExceeded { limit, window_seconds, retry_after } => {
                (Some(*limit), Some(*window_seconds), Some(*retry_after))
            }
            _ => (None, None, None),
        };
        Problem {
            problem_type: format!("{PROBLEM_TYPE_BASE}{}", self.code().replace('_', "-")),
            title: self.title(),
            status: self.status().as_u16(),
            detail: self.to_string(),
            code: self.code(),
            required_scopes,
            granted_scopes,
            effective_scopes,
            errors: match self {
                ApiError::ValidationFailed(errors) => Some(errors),
                _ => None,
            },
            existing_vehicle_id: match self {
                ApiError::VinTaken { existing_vehicle_id, .. } => existing_vehicle_id.as_deref(),
                _ => None,
            },
            param: match self {
                ApiError::BadQuery { param, .. } => Some(param),
                _ => None,
            },
            value: match self {
                ApiError::BadQuery { value, .. } => Some(value),
                _ => None,
            },
            limit,
            window_seconds,
            retry_after,
            request_id: request_id.to_owned(),
        }
    }

    /// The full HTTP response: problem+json body and the headers this error calls for.
    pub fn to_response(&self, request_id: &str) -> Response<Body> {
        let mut response = Response::builder()
            .status(self.status())
            .header(http::header::CONTENT_TYPE, "application/problem+json")
            .body(Body::Text(serde_json::to_string(&self.to_problem(request_id)).expect("a problem serialises")))
            .expect("static status and header names are valid");
        let headers = response.headers_mut();
        match self {
            ApiError::InsufficientScope(missing) => {
                headers.insert("x-accepted-scopes", HeaderValue::from_static(missing.required.as_str()));
            }
            ApiError::ServiceUnavailable(_) => {
                headers.insert(http::header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECONDS));
            }
            // The first request is still running: it finishes within the function timeout.
            ApiError::IdempotencyKeyInProgress => {
                headers.insert(http::header::RETRY_AFTER, HeaderValue::from(1));
            }
            ApiError::RateLimited { retry_after, .. } | ApiError::QuotaExceeded { retry_after, .. } => {
                headers.insert(http::header::RETRY_AFTER, HeaderValue::from(*retry_after));
            }
            ApiError::MethodNotAllowed { allow, .. } => {
                headers.insert(http::header::ALLOW, HeaderValue::from_static(allow));
            }
            ApiError::MissingApiKey | ApiError::InvalidApiKey => {
                headers.insert(http::header::WWW_AUTHENTICATE, HeaderValue::from_static("ApiKey header=\"X-API-Key\""));
            }
            _ => {}
        }
        response
    }
}

impl From<DbError> for ApiError {
    fn from(err: DbError) -> Self {
        if err.is_transient() { ApiError::ServiceUnavailable(err) } else { ApiError::Internal(Box::new(err)) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fleetgate_scopes::{Scope, ScopeSet};

    fn body_of(response: &Response<Body>) -> Value {
        match response.body() {
            Body::Text(text) => serde_json::from_str(text).unwrap(),
            other => panic!("unexpected body {other:?}"),
        }
    }

    #[test]
    fn insufficient_scope_matches_the_spec_shape() {
        let granted = ScopeSet::parse_granted(["vehicles:read"]).unwrap();
        let err = ApiError::from(InsufficientScope {
            required: Scope::VehiclesWrite,
            route: "POST /vehicles".into(),
            effective: granted.effective(),
            granted,
        });
        let response = err.to_response("req-1");
        assert_eq!(response.status(), 403);
        assert_eq!(response.headers()["content-type"], "application/problem+json");
        assert_eq!(response.headers()["x-accepted-scopes"], "vehicles:write");
        assert_eq!(
            body_of(&response),
            json!({
                "type": "https://fleetgate.dev/problems/insufficient-scope",
                "title": "Insufficient scope",
                "status": 403,
                "detail": "This key lacks vehicles:write, which POST /vehicles requires.",
                "code": "insufficient_scope",
                "required_scopes": ["vehicles:write"],
                "granted_scopes": ["vehicles:read"],
                "effective_scopes": ["vehicles:read"],
                "request_id": "req-1"
            })
        );
    }

    #[test]
    fn members_come_in_the_rfc_order() {
        let response = ApiError::NotFound { resource: "vehicle" }.to_response("r-1");
        let Body::Text(text) = response.body() else { panic!("text body") };
        assert!(
            text.starts_with(
                r#"{"type":"https://fleetgate.dev/problems/not-found","title":"Not found","status":404,"detail":"#
            ),
            "{text}"
        );
        assert!(text.ends_with(r#""code":"not_found","request_id":"r-1"}"#), "{text}");
    }

    #[test]
    fn unavailable_carries_retry_after_and_hides_the_cause() {
        let cause = DbError::Unavailable("connection refused to 10.0.0.1:8000 table=keys".into());
        let response = ApiError::from(cause).to_response("r");
        assert_eq!(response.status(), 503);
        assert_eq!(response.headers()["retry-after"], "2");
        let body = body_of(&response).to_string();
        assert!(!body.contains("10.0.0.1") && !body.contains("keys"), "{body}");
    }

    #[test]
    fn over_a_limit_is_a_429_with_retry_after_and_the_limit() {
        let response =
            ApiError::RateLimited { who: "this key", limit: 5, window_seconds: 1, retry_after: 1 }.to_response("r");
        assert_eq!(response.status(), 429);
        assert_eq!(response.headers()["retry-after"], "1");
        let body = body_of(&response);
        assert_eq!(
            (
                body["code"].as_str(),
                body["limit"].as_u64(),
                body["window_seconds"].as_u64(),
                body["retry_after"].as_u64()
            ),
            (Some("rate_limited"), Some(5), Some(1), Some(1))
        );
        let quota = ApiError::QuotaExceeded { limit: 9, window_seconds: 2_592_000, retry_after: 3600 }.to_response("r");
        assert_eq!((quota.status().as_u16(), quota.headers()["retry-after"].to_str().unwrap()), (429, "3600"));
        assert_eq!(body_of(&quota)["code"], "quota_exceeded");
        assert_eq!(body["detail"], "Too many requests: this key may make 5 requests per second. Retry after 1 second.");
    }

    #[test]
    fn internal_errors_never_show_their_cause() {
        let response = ApiError::Internal("secret table name and stack".into()).to_response("r");
        assert_eq!(response.status(), 500);
        let body = body_of(&response);
        assert_eq!(body["code"], "internal_error");
        assert!(!body.to_string().contains("secret"));
    }

    #[test]
    fn validation_lists_fields() {
        let err = ApiError::ValidationFailed(vec![FieldError::new("vin", "must be 17 characters")]);
        let body = serde_json::to_value(err.to_problem("r")).unwrap();
        assert_eq!(body["status"], 422);
        assert_eq!(body["errors"][0]["field"], "vin");
    }

    #[test]
    fn every_code_is_snake_case_and_type_matches_code() {
        let all = [
            ApiError::MissingApiKey,
            ApiError::InvalidApiKey,
            ApiError::IpNotAllowed,
            ApiError::RateLimited { who: "this key", limit: 5, window_seconds: 1, retry_after: 1 },
            ApiError::QuotaExceeded { limit: 5, window_seconds: 2_592_000, retry_after: 60 },
            ApiError::BadRequest { code: "invalid_if_match", detail: "x".into() },
            ApiError::BadQuery {
                code: "invalid_cursor",
                param: "cursor".into(),
                value: "x".into(),
                detail: "x".into(),
            },
            ApiError::NotFound { resource: "vehicle" },
            ApiError::MethodNotAllowed { method: "POST".into(), allow: "GET" },
            ApiError::VinTaken { vin: "x".into(), existing_vehicle_id: None },
            ApiError::IdempotencyKeyReused,
            ApiError::IdempotencyKeyInProgress,
            ApiError::PreconditionFailed,
            ApiError::PayloadTooLarge { limit: 65536 },
            ApiError::UnsupportedMediaType { accepted: "application/json" },
            ApiError::ValidationFailed(vec![]),
        ];
        for err in all {
            let code = err.code();
            assert!(code.chars().all(|c| c.is_ascii_lowercase() || c == '_'), "{code}");
            let body = serde_json::to_value(err.to_problem("r")).unwrap();
            assert_eq!(body["status"], err.status().as_u16());
            assert!(body["type"].as_str().unwrap().ends_with(&code.replace('_', "-")));
        }
    }
}
