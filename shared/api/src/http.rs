//! The HTTP side every endpoint shares: who is calling, the scope check, JSON
//! and problem responses, and one log line per request.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use futures_util::FutureExt;

use aws_sdk_dynamodb::types::TransactWriteItem;
use http::{HeaderValue, StatusCode};
use lambda_http::request::RequestContext;
use lambda_http::{Body, Request, RequestExt, Response};
use serde::Serialize;

use fleetgate_scopes::{AuthContext, Route};

use crate::audit::AuditLog;
use crate::dynamo::ConfigError;
use crate::error::ApiError;
use crate::metrics::{MetricsDoc, Unit};
use crate::timestamp::Timestamp;
use crate::usage::{LimitState, PolicyName, Refusal, UsageCounter, Verdict};

/// The header that carries the API key.
pub const API_KEY_HEADER: &str = "x-api-key";
/// Lists the caller's effective scopes on every authenticated response.
pub const KEY_SCOPES_HEADER: &str = "x-key-scopes";
/// The key's limits (draft-ietf-httpapi-ratelimit-headers), on every authenticated response.
pub const RATE_LIMIT_POLICY_HEADER: &str = "ratelimit-policy";
/// What is left of each limit and when it resets.
pub const RATE_LIMIT_HEADER: &str = "ratelimit";
/// What every endpoint function keeps across invocations to run [`serve`].
/// There is one way to learn the caller: the authorizer's context, which API
/// Gateway (or, locally, the local gateway) attaches; a header is never a credential.
#[derive(Clone, Debug, Default)]
pub struct Gate {
    /// Where refused writes are recorded; `None` for read-only routes.
    pub audit: Option<AuditLog>,
    /// Where requests are counted against the key's limits (`USAGE_TABLE`); `None`
    /// counts nothing (handler tests that are not about limits).
    pub usage: Option<UsageCounter>,
}

impl Gate {
    /// The gate of a function serving `route`: audits (`AUDIT_TABLE`) only for write routes.
    pub fn from_env(client: &aws_sdk_dynamodb::Client, route: &Route) -> Result<Gate, ConfigError> {
        let audit = if route.method == "GET" { None } else { Some(AuditLog::from_env(client.clone())?) };
        Ok(Gate { audit, usage: Some(UsageCounter::from_env(client.clone())?) })
    }

    /// The audit put for a successful write `call` on `resource_id`, for the write's own transaction.
    pub fn audit_success(&self, call: &Call, resource_id: &str) -> Result<TransactWriteItem, ApiError> {
        let audit = self.audit.as_ref().ok_or_else(|| ApiError::Internal("write route without an audit log".into()))?;
        Ok(audit.put_item(&audit.record(call, Some(resource_id), "ok"))?)
    }
}

/// One authenticated, scope-checked call, as the handler receives it.
#[derive(Clone, Debug)]
pub struct Call {
    pub auth: AuthContext,
    pub request_id: String,
    pub route: &'static Route,
    /// The key's admitted requests this month, this one included (when counted).
    pub month_used: Option<u64>,
}

/// Reads the REST API (v1) authorizer context. Anything else (no context, an
/// HTTP API or function-URL event) is unauthenticated.
fn authorizer_context(req: &Request) -> Result<AuthContext, ApiError> {
    let Some(RequestContext::ApiGatewayV1(context)) = req.request_context_ref() else {
        return Err(ApiError::MissingApiKey);
    };
    let fields = &context.authorizer.fields;
    if fields.is_empty() {
        return Err(ApiError::MissingApiKey);
    }
    AuthContext::from_authorizer_context(|name| fields.get(name).and_then(|v| v.as_str())).map_err(|err| {
        // Only a misconfigured stack gets here: the authorizer always writes every field.
        tracing::error!(error = %err, "authorizer context malformed");
        ApiError::InvalidApiKey
    })
}

/// The caller's address as API Gateway saw it (`requestContext.identity.sourceIp`); empty if absent.
fn source_ip(req: &Request) -> String {
    match req.request_context_ref() {
        Some(RequestContext::ApiGatewayV1(context)) => context.identity.source_ip.clone().unwrap_or_default(),
        _ => String::new(),
    }
}

/// API Gateway caches the authorizer's Allow for up to its TTL (at most an hour):
/// a key that expired since (or a rotated key whose grace period ended) stops
/// here, at its expiry, not when the cached answer does.
fn unexpired(auth: AuthContext, now: Timestamp) -> Result<AuthContext, ApiError> {
    match auth.expires_at.as_deref().map(Timestamp::parse) {
        None => Ok(auth),
        Some(Some(expires_at)) if expires_at > now => Ok(auth),
        Some(Some(_)) => Err(ApiError::InvalidApiKey),
        Some(None) => {
            tracing::error!("authorizer context has a malformed expires_at");
            Err(ApiError::InvalidApiKey)
        }
    }
}

/// The id a client can quote: API Gateway's request id, else Lambda's.
pub fn request_id(req: &Request) -> String {
    let gateway_id = match req.request_context_ref() {
        Some(RequestContext::ApiGatewayV1(context)) => context.request_id.clone(),
        Some(RequestContext::ApiGatewayV2(context)) => context.request_id.clone(),
        _ => None,
    };
    gateway_id
        .or_else(|| req.lambda_context_ref().map(|context| context.request_id.clone()))
        .filter(|id| !id.is_empty())
        .unwrap_or_else(|| "unknown".to_owned())
}

/// The header that carries the request id on every answer.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// A JSON response with `status`.
pub fn json_response<T: Serialize>(status: StatusCode, body: &T) -> Result<Response<Body>, ApiError> {
    let text = serde_json::to_string(body).map_err(|e| ApiError::Internal(Box::new(e)))?;
    Response::builder()
        .status(status)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(Body::Text(text))
        .map_err(|e| ApiError::Internal(Box::new(e)))
}

/// Points a 201's `Location` at the new resource `id` under the request's path.
pub fn set_location(response: &mut Response<Body>, req: &Request, id: &str) {
    let location = format!("{}/{id}", req.uri().path().trim_end_matches('/'));
    if let Ok(location) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(http::header::LOCATION, location);
    }
}

/// A JSON response for one versioned resource, with its `ETag` (`"<version>"`,
/// what `If-Match` compares against).
pub fn versioned_response<T: Serialize>(
    status: StatusCode,
    body: &T,
    version: u64,
) -> Result<Response<Body>, ApiError> {
    let mut response = json_response(status, body)?;
    let etag = HeaderValue::from_str(&crate::if_match::etag(version)).map_err(|e| ApiError::Internal(Box::new(e)))?;
    response.headers_mut().insert(http::header::ETAG, etag);
    Ok(response)
}

/// Runs one endpoint: checks method, authenticates, checks the caller's network,
/// counts the request against the key's limits, checks `route`'s scope, calls
/// `handle`, renders any error as problem+json, audits refused writes, adds
/// `X-Key-Scopes` and the `RateLimit` headers to every authenticated response,
/// and logs one line (ids only).
/// A handler that writes puts its own audit record in the same transaction as the write.
pub async fn serve<F, Fut>(gate: &Gate, route: &'static Route, req: Request, handle: F) -> Response<Body>
where
    F: FnOnce(Call, Request) -> Fut,
    Fut: Future<Output = Result<Response<Body>, ApiError>>,
{
    crate::call_time::measured(serve_request(gate, route, req, handle)).await
}

async fn serve_request<F, Fut>(gate: &Gate, route: &'static Route, req: Request, handle: F) -> Response<Body>
where
    F: FnOnce(Call, Request) -> Fut,
    Fut: Future<Output = Result<Response<Body>, ApiError>>,
{
    let started = Instant::now();
    let request_id = request_id(&req);
    if req.method().as_str() != route.method {
        let err = ApiError::MethodNotAllowed { method: req.method().to_string(), allow: route.method };
        return finish(route, &request_id, started, None, None, Err(err));
    }
    let auth = match authorizer_context(&req).and_then(|auth| unexpired(auth, Timestamp::now())) {
        Ok(auth) => auth,
        Err(err) => return finish(route, &request_id, started, None, None, Err(err)),
    };
    // The authorizer's Allow is cached per key for every caller, so the caller's own
    // network is checked here, on each request.
    let network_allowed = auth.allows_source(&source_ip(&req));
    tracing::debug!(request_id, key_id = %auth.key_id, route = %route.describe(), "authorizer context accepted");
    let resource_id = req.path_parameters_ref().and_then(|params| params.first("id")).map(bounded_id);
    let scope_check = auth.require(route);
    // Counted after the network check (a stolen key used from elsewhere cannot spend
    // its holder's limits) and before the scope check (a loop on a forbidden route is
    // still a loop).
    let verdict = match &gate.usage {
        Some(usage) if network_allowed => {
            let now = Timestamp::now().unix_seconds();
            let verdict = usage.admit(&auth, now).await;
            // The scope this request uses, if the key holds it, noted for access reviews
            // (a write at most hourly per key, scope and instance). After the count, not
            // beside it: two calls at once would open a second DynamoDB connection. Not
            // when the count just failed: the table is away, and limits fail open fast.
            let used_scope = route.required_scope.filter(|_| scope_check.is_ok());
            if let Some(scope) = used_scope.filter(|_| verdict.state.counted) {
                usage.note_scope_use(&auth.key_id, scope, now).await;
            }
            Some(verdict)
        }
        _ => None,
    };
    let month_used = verdict.as_ref().and_then(|v| v.month_used);
    let call = Call { auth: auth.clone(), request_id: request_id.clone(), route, month_used };
    let result = if !network_allowed {
        // Refused like a missing scope (and audited if a write), but the answer tells
        // nothing about the key: no scopes in a header, no list of networks.
        tracing::info!(request_id, key_id = %auth.key_id, "key used from a network outside its allowed_cidrs");
        Err(ApiError::IpNotAllowed)
    } else if let Some(refusal) = verdict.as_ref().and_then(|v| v.refusal) {
        Err(over_limit(refusal))
    } else {
        match scope_check {
            // A panic (a bug) becomes a plain 500 problem: the Lambda runtime would
            // otherwise fail the invocation and API Gateway answer a bare 502.
            Ok(()) => AssertUnwindSafe(handle(call.clone(), req)).catch_unwind().await.unwrap_or_else(|panic| {
                Err(ApiError::Internal(format!("handler panicked: {}", panic_message(&*panic)).into()))
            }),
            Err(missing) => Err(missing.into()),
        }
    };
    // Refused writes are audited, except when DynamoDB itself is unavailable (that
    // record could not be written either, and trying would double the time to answer)
    // and over a limit (a runaway loop must not cost a write per refusal).
    let unrecorded = matches!(
        result,
        Err(ApiError::ServiceUnavailable(_) | ApiError::RateLimited { .. } | ApiError::QuotaExceeded { .. })
    );
    if let (Err(err), Some(audit), true, false) = (&result, &gate.audit, route.method != "GET", unrecorded) {
        let record = audit.record(&call, resource_id.as_deref(), err.code());
        if let Err(audit_err) = audit.append(&record).await {
            // The refusal stands either way; losing its record is logged loudly.
            tracing::error!(request_id, error = %audit_err, "could not audit a refused write");
        }
    }
    let limits = verdict.as_ref().map(|v: &Verdict| &v.state);
    finish(route, &request_id, started, Some(&auth).filter(|_| network_allowed), limits, result)
}

/// The 429 problem of a refusal: `Retry-After` is when the binding limit resets.
fn over_limit(refusal: Refusal) -> ApiError {
    let policy = refusal.policy;
    let (limit, window_seconds, retry_after) = (policy.quota, policy.window_seconds, policy.reset_seconds);
    match policy.name {
        PolicyName::Quota => ApiError::QuotaExceeded { limit, window_seconds, retry_after },
        PolicyName::Key => ApiError::RateLimited { who: "this key", limit, window_seconds, retry_after },
        PolicyName::Tenant => {
            ApiError::RateLimited { who: "this fleet's keys together", limit, window_seconds, retry_after }
        }
    }
}

/// The text a panic was raised with, for the log (never the response).
fn panic_message(panic: &(dyn std::any::Any + Send)) -> &str {
    panic.downcast_ref::<&str>().copied().or_else(|| panic.downcast_ref::<String>().map(String::as_str)).unwrap_or("")
}

/// A path id as recorded in the audit trail: bounded, whatever the client sent.
fn bounded_id(id: &str) -> String {
    id.chars().take(64).collect()
}

fn finish(
    route: &Route,
    request_id: &str,
    started: Instant,
    auth: Option<&AuthContext>,
    limits: Option<&LimitState>,
    result: Result<Response<Body>, ApiError>,
) -> Response<Body> {
    let refusal = result.as_ref().err().map(|err| (err.code(), scope_of(err)));
    let mut response = match result {
        Ok(response) => response,
        Err(err) => {
            if err.status().is_server_error() {
                // The cause chain goes to the log; the body stays generic.
                tracing::error!(request_id, code = err.code(), error = ?std::error::Error::source(&err), "request failed");
            }
            err.to_response(request_id)
        }
    };
    // Every answer, success or error, names its request (the gateway's id), so a
    // client can quote it without parsing a body.
    if let Ok(value) = HeaderValue::from_str(request_id) {
        response.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    if let Some(auth) = auth {
        let scopes = auth.effective.to_space_separated();
        if let Ok(value) = HeaderValue::from_str(&scopes) {
            response.headers_mut().insert(KEY_SCOPES_HEADER, value);
        }
    }
    if let Some(limits) = limits {
        for (name, value) in
            [(RATE_LIMIT_POLICY_HEADER, limits.policy_header()), (RATE_LIMIT_HEADER, limits.remaining_header())]
        {
            if let Some(value) = value.and_then(|v| HeaderValue::from_str(&v).ok()) {
                response.headers_mut().insert(name, value);
            }
        }
    }
    log_request(&ServedRequest { route, request_id, started, auth, limits, response: &response, refusal });
    response
}

/// A request as answered: what its log line and metrics document say.
pub struct ServedRequest<'a> {
    pub route: &'a Route,
    /// The gateway's request id.
    pub request_id: &'a str,
    pub started: Instant,
    pub auth: Option<&'a AuthContext>,
    pub limits: Option<&'a LimitState>,
    pub response: &'a Response<Body>,
    /// The problem code of a refusal, and the scope it names if any.
    pub refusal: Option<(&'static str, Option<&'static str>)>,
}

/// What every request leaves behind: one log line (ids, route, status) and its
/// EMF document. Public for `make bench`, which times exactly this on its own.
pub fn log_request(served: &ServedRequest) {
    let auth = served.auth;
    tracing::info!(
        request_id = served.request_id,
        route = %served.route.describe(),
        tenant_id = auth.map(|a| a.tenant_id.as_str()),
        key_id = auth.map(|a| a.key_id.as_str()),
        status = served.response.status().as_u16(),
        "request"
    );
    request_metrics(served).emit();
}

/// The scope a refusal names, for the `ScopeRefusals` metric.
fn scope_of(err: &ApiError) -> Option<&'static str> {
    match err {
        ApiError::InsufficientScope(missing) => Some(missing.required.as_str()),
        _ => None,
    }
}

/// Whether this process has served a request yet (its first is a cold start).
static WARM: AtomicBool = AtomicBool::new(false);

/// The request's EMF document (SPEC §9): requests and latency per route and
/// status class (with the latency's time in AWS calls as a property); refusals by reason (403 by scope, 429, 503 among them); idempotent
/// replays; limits that could not be counted; the process's cold start. Ids are
/// properties only.
fn request_metrics(served: &ServedRequest) -> MetricsDoc {
    let ServedRequest { route, request_id, started, auth, limits, response, refusal } = *served;
    let status = response.status();
    let described = route.describe();
    let status_class = format!("{}xx", status.as_u16() / 100);
    let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
    let mut doc = MetricsDoc::new();
    doc.record(
        &[("function", route.function), ("route", &described), ("status_class", &status_class)],
        &[("Requests", Unit::Count, 1.0), ("Latency", Unit::Milliseconds, latency_ms)],
    );
    if let Some((code, scope)) = refusal {
        doc.record(&[("route", &described), ("reason", code)], &[("Refusals", Unit::Count, 1.0)]);
        if let Some(scope) = scope {
            doc.record(&[("route", &described), ("scope", scope)], &[("ScopeRefusals", Unit::Count, 1.0)]);
        }
    }
    if response.headers().contains_key(crate::idempotency::REPLAYED_HEADER) {
        doc.record(&[("route", &described)], &[("IdempotentReplays", Unit::Count, 1.0)]);
    }
    if limits.is_some_and(|limits| !limits.counted) {
        doc.record(&[("function", route.function)], &[("LimitsUncounted", Unit::Count, 1.0)]);
    }
    if !WARM.swap(true, Ordering::Relaxed) {
        doc.record(&[("function", route.function)], &[("ColdStart", Unit::Count, 1.0)]);
    }
    doc.property("request_id", request_id);
    // Of the latency, the time spent waiting on AWS calls (SDK call to result).
    if let Some(aws) = crate::call_time::so_far() {
        doc.number_property("aws_call_ms", aws.as_secs_f64() * 1000.0);
    }
    if let Some(auth) = auth {
        doc.property("tenant_id", auth.tenant_id.as_str()).property("key_id", &auth.key_id);
    }
    doc
}

#[cfg(test)]
mod tests {
    use super::*;
    use fleetgate_scopes::routes;

    fn answer(status: StatusCode) -> Response<Body> {
        Response::builder().status(status).body(Body::Empty).unwrap()
    }

    /// The document of a request without a key (the ids' properties are not under test here).
    fn document(
        route: &Route,
        request_id: &str,
        limits: Option<&LimitState>,
        response: &Response<Body>,
        refusal: Option<(&'static str, Option<&'static str>)>,
    ) -> serde_json::Value {
        let served =
            ServedRequest { route, request_id, started: Instant::now(), auth: None, limits, response, refusal };
        request_metrics(&served).to_json(1)
    }

    // One test for every document: the process's cold-start flag is shared.
    #[tokio::test]
    async fn every_request_document_is_valid_emf_naming_route_status_class_and_reason() {
        let ok = document(&routes::GET_VEHICLE, "r1", None, &answer(StatusCode::OK), None);
        assert_eq!((crate::metrics::validate(&ok), crate::metrics::catalogued(&ok)), (Ok(()), Ok(())));
        assert_eq!(
            (&ok["function"], &ok["route"], &ok["status_class"]),
            (&"get-vehicle".into(), &"GET /vehicles/{id}".into(), &"2xx".into())
        );
        assert_eq!(ok["Requests"], 1.0);
        let scope = Some(("insufficient_scope", Some("vehicles:write")));
        let forbidden = answer(StatusCode::FORBIDDEN);
        let refused = document(&routes::CREATE_VEHICLE, "r2", None, &forbidden, scope);
        assert_eq!((crate::metrics::validate(&refused), crate::metrics::catalogued(&refused)), (Ok(()), Ok(())));
        assert_eq!(
            (&refused["reason"], &refused["scope"], &refused["status_class"]),
            (&"insufficient_scope".into(), &"vehicles:write".into(), &"4xx".into())
        );
        let open = LimitState { policies: Vec::new(), counted: false };
        let uncounted = document(&routes::WHOAMI, "r3", Some(&open), &answer(StatusCode::OK), None);
        assert_eq!((crate::metrics::validate(&uncounted), crate::metrics::catalogued(&uncounted)), (Ok(()), Ok(())));
        assert_eq!(uncounted["LimitsUncounted"], 1.0);
        assert!(ok.get("IdempotentReplays").is_none());
        let mut replay = answer(StatusCode::CREATED);
        replay.headers_mut().insert(crate::idempotency::REPLAYED_HEADER, HeaderValue::from_static("true"));
        let replayed = document(&routes::CREATE_VEHICLE, "r4", None, &replay, None);
        assert_eq!((crate::metrics::validate(&replayed), crate::metrics::catalogued(&replayed)), (Ok(()), Ok(())));
        assert_eq!((&replayed["IdempotentReplays"], &replayed["route"]), (&1.0.into(), &"POST /vehicles".into()));
        // The process's first request was a cold start, and only that one.
        let cold = [&ok, &refused, &uncounted, &replayed].iter().filter(|doc| doc.get("ColdStart").is_some()).count();
        assert_eq!(cold, 1);

        // A served request also says how long it waited on AWS calls.
        assert!(ok.get("aws_call_ms").is_none(), "outside a served request there is nothing to say");
        let served = crate::call_time::measured(async {
            document(&routes::GET_VEHICLE, "r5", None, &answer(StatusCode::OK), None)
        })
        .await;
        assert_eq!(crate::metrics::validate(&served), Ok(()));
        assert_eq!(served["aws_call_ms"], 0.0, "a request without AWS calls waited on none");
    }
}
