//! API Gateway's own answers (gateway responses), rendered from the template's
//! `GatewayResponses` the way API Gateway renders them.

use super::config::GatewayConfig;

/// The gateway response types the local gateway can produce, with API Gateway's
/// default status and message for each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResponseType {
    /// No route for this method and path (API Gateway's default is 403).
    MissingAuthenticationToken,
    /// The authorizer said `Unauthorized`, or the identity source is missing.
    Unauthorized,
    /// The authorizer's policy denies the method.
    AccessDenied,
    /// The authorizer failed (an error other than `Unauthorized`).
    AuthorizerFailure,
    /// The authorizer answered something that is not a policy.
    AuthorizerConfigurationError,
    /// Over the stage's throttling limits.
    Throttled,
    /// Body over API Gateway's 10 MB payload limit.
    RequestTooLarge,
    /// The function failed or its answer was not a proxy response.
    BadGateway,
    /// The function did not answer within the integration timeout (29 s).
    IntegrationTimeout,
}

impl ResponseType {
    /// The `GatewayResponses` key, and the fallback (`DEFAULT_4XX`/`DEFAULT_5XX`) used
    /// when the template does not configure this type.
    fn name(self) -> &'static str {
        match self {
            ResponseType::MissingAuthenticationToken => "MISSING_AUTHENTICATION_TOKEN",
            ResponseType::Unauthorized => "UNAUTHORIZED",
            ResponseType::AccessDenied => "ACCESS_DENIED",
            ResponseType::AuthorizerFailure => "AUTHORIZER_FAILURE",
            ResponseType::AuthorizerConfigurationError => "AUTHORIZER_CONFIGURATION_ERROR",
            ResponseType::Throttled => "THROTTLED",
            ResponseType::RequestTooLarge => "REQUEST_TOO_LARGE",
            // API Gateway has no type of its own for a failed Lambda proxy integration.
            ResponseType::BadGateway => "DEFAULT_5XX",
            ResponseType::IntegrationTimeout => "INTEGRATION_TIMEOUT",
        }
    }

    fn default_status(self) -> u16 {
        match self {
            ResponseType::MissingAuthenticationToken | ResponseType::AccessDenied => 403,
            ResponseType::Unauthorized => 401,
            ResponseType::AuthorizerFailure | ResponseType::AuthorizerConfigurationError => 500,
            ResponseType::Throttled => 429,
            ResponseType::RequestTooLarge => 413,
            ResponseType::BadGateway => 502,
            ResponseType::IntegrationTimeout => 504,
        }
    }

    /// `$context.error.message`.
    fn message(self) -> &'static str {
        match self {
            ResponseType::MissingAuthenticationToken => "Missing Authentication Token",
            ResponseType::Unauthorized => "Unauthorized",
            ResponseType::AccessDenied => "User is not authorized to access this resource",
            ResponseType::AuthorizerFailure | ResponseType::AuthorizerConfigurationError => "null",
            ResponseType::Throttled => "Too Many Requests",
            ResponseType::RequestTooLarge => "Request Too Long",
            ResponseType::BadGateway => "Internal server error",
            ResponseType::IntegrationTimeout => "Endpoint request timed out",
        }
    }
}

/// A rendered gateway response.
#[derive(Debug)]
pub struct Rendered {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

/// Renders `kind` as the template configures it: the type's own entry, else
/// `DEFAULT_4XX`/`DEFAULT_5XX` by status class, else API Gateway's built-in body.
pub fn render(config: &GatewayConfig, kind: ResponseType, request_id: &str) -> Rendered {
    let own = config.responses.get(kind.name());
    let status = own.and_then(|r| r.status).unwrap_or(kind.default_status());
    let fallback = config.responses.get(if status < 500 { "DEFAULT_4XX" } else { "DEFAULT_5XX" });
    let fallback_status = fallback.and_then(|r| r.status).filter(|_| own.is_none());
    let status = fallback_status.unwrap_or(status);
    let headers: Vec<(String, String)> = own
        .or(fallback)
        .map(|r| r.headers.iter().map(|(name, value)| (name.clone(), substitute(value, kind, request_id))).collect())
        .unwrap_or_default();
    let template = own
        .and_then(|r| r.template.clone())
        .or_else(|| fallback.and_then(|r| r.template.clone()))
        .unwrap_or_else(|| r#"{"message":$context.error.messageString}"#.to_owned());
    let body = substitute(&template, kind, request_id);
    let mut headers = headers;
    if !headers.iter().any(|(name, _)| name.eq_ignore_ascii_case("content-type")) {
        headers.push(("Content-Type".into(), "application/json".into()));
    }
    Rendered { status, headers, body }
}

/// The `$context` variables gateway responses may use. `messageString` is the
/// message as a quoted JSON string, as API Gateway substitutes it.
fn substitute(template: &str, kind: ResponseType, request_id: &str) -> String {
    let message = kind.message();
    let quoted = serde_json::to_string(message).unwrap_or_else(|_| "\"\"".into());
    // Longest names first, so `$context.error.message` does not eat `…messageString`.
    [
        ("$context.error.messageString", quoted.as_str()),
        ("$context.error.responseType", kind.name()),
        ("$context.error.message", message),
        ("$context.requestId", request_id),
    ]
    .iter()
    .fold(template.to_owned(), |text, (variable, value)| text.replace(variable, value))
}
