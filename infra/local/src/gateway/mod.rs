//! The local REST gateway: what API Gateway (REST API) does for this stack, in
//! front of the functions that `cargo lambda watch` runs, so the local request
//! path is the production one (SPEC §6).
//!
//! Per request: the WAF body-size rule (when the template deploys it), stage
//! throttling, API Gateway's 10 MB payload limit, route
//! matching against the template's `Api` events, the REQUEST authorizer invoked
//! as a Lambda on the identity header with its Allow cached for `ReauthorizeEvery`,
//! the policy checked against the method ARN, then the REST v1 proxy event to
//! the route's function. Everything API Gateway answers itself is one of the
//! template's gateway responses. Also served on the same port: the Lambda invoke
//! API (`/2015-03-31/functions/{name}/invocations`, passed through to `cargo lambda
//! watch`, a function's error answered as Lambda answers it) and API Gateway's
//! authorizer-cache flush
//! (`DELETE /restapis/{api}/stages/{stage}/cache/authorizers`).

pub mod config;
pub mod events;
pub mod responses;

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming as IncomingBody;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::{Map, Value};
use tokio::net::TcpListener;

pub use config::{BodyLimit, GatewayConfig, GatewayResponse, GatewayRoute};
use events::{Incoming, Matched, Stage, parse_query, percent_decode, proxy_response};
use responses::{ResponseType, render};

/// API Gateway's payload limit for REST APIs (10 MB).
pub const MAX_PAYLOAD_BYTES: usize = 10 * 1024 * 1024;
/// API Gateway's maximum integration timeout for REST APIs.
const INTEGRATION_TIMEOUT: Duration = Duration::from_secs(29);
/// The Lambda invoke API's path prefix.
const INVOKE_PREFIX: &str = "/2015-03-31/functions/";

/// The gateway's state: its configuration, where the functions run, the
/// authorizer cache and the stage's token bucket.
pub struct Gateway {
    pub config: GatewayConfig,
    /// `cargo lambda watch`'s invoke API, e.g. `http://127.0.0.1:9001`.
    functions: String,
    http: reqwest::Client,
    cache: Mutex<HashMap<String, CachedAllow>>,
    bucket: Mutex<TokenBucket>,
}

/// An authorizer answer kept for the TTL: its policy is re-checked per request.
struct CachedAllow {
    until: Instant,
    answer: Value,
}

struct TokenBucket {
    tokens: f64,
    at: Instant,
}

type GatewayResponseBody = Full<Bytes>;

impl Gateway {
    pub fn new(config: GatewayConfig, functions: &str) -> Gateway {
        let burst = config.throttle_burst;
        Gateway {
            config,
            functions: functions.trim_end_matches('/').to_owned(),
            http: reqwest::Client::builder().timeout(INTEGRATION_TIMEOUT).build().expect("HTTP client"),
            cache: Mutex::new(HashMap::new()),
            bucket: Mutex::new(TokenBucket { tokens: burst, at: Instant::now() }),
        }
    }

    /// Serves connections from `listener` until the process ends.
    pub async fn serve(self: Arc<Self>, listener: TcpListener) {
        loop {
            let Ok((stream, peer)) = listener.accept().await else { continue };
            let gateway = self.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req| {
                    let gateway = gateway.clone();
                    async move { Ok::<_, Infallible>(gateway.handle(req, peer).await) }
                });
                // Errors here are broken connections; API Gateway would log and move on too.
                let _ =
                    hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
            });
        }
    }

    /// One request, whatever it is: never a 500 of the gateway's own.
    pub async fn handle(&self, req: Request<IncomingBody>, peer: SocketAddr) -> Response<GatewayResponseBody> {
        let request_id = new_request_id();
        let (parts, body) = req.into_parts();
        let raw_path = parts.uri.path().to_owned();
        let method = parts.method.as_str().to_owned();
        let body = match Limited::new(body, MAX_PAYLOAD_BYTES).collect().await {
            Ok(collected) => collected.to_bytes().to_vec(),
            Err(err) if err.downcast_ref::<http_body_util::LengthLimitError>().is_some() => {
                return self.gateway_response(ResponseType::RequestTooLarge, &request_id);
            }
            // The client went away mid-body; nobody reads this answer.
            Err(_) => return self.gateway_response(ResponseType::BadGateway, &request_id),
        };
        if let Some(function) = raw_path.strip_prefix(INVOKE_PREFIX).and_then(|rest| rest.strip_suffix("/invocations"))
        {
            return self.invoke_passthrough(function, &parts.headers, body).await;
        }
        if let Some(answer) = self.flush_request(&method, &raw_path) {
            return answer;
        }
        // WAF acts before API Gateway sees the request.
        if let Some(limit) = self.config.body_limit.as_ref().filter(|limit| body.len() > limit.max_bytes) {
            return plain(limit.status, &limit.content_type, &limit.body);
        }
        let incoming = Incoming {
            method,
            headers: parts
                .headers
                .iter()
                .map(|(name, value)| (name.as_str().to_owned(), String::from_utf8_lossy(value.as_bytes()).into_owned()))
                .collect(),
            query: parts.uri.query().map(parse_query).unwrap_or_default(),
            raw_path,
            body,
            source_ip: peer.ip().to_string(),
            request_id,
            request_time_epoch_ms: SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_millis(),
        };
        self.route_request(&incoming).await
    }

    async fn route_request(&self, incoming: &Incoming) -> Response<GatewayResponseBody> {
        let id = &incoming.request_id;
        if !self.take_token() {
            return self.gateway_response(ResponseType::Throttled, id);
        }
        let Some((route, matched)) = self.match_route(&incoming.method, &incoming.raw_path) else {
            return self.gateway_response(ResponseType::MissingAuthenticationToken, id);
        };
        let stage = Stage { api_id: &self.config.api_id, stage: &self.config.stage };
        let authorizer = match self.authorize(incoming, &matched, &stage).await {
            Ok(context) => context,
            Err(kind) => return self.gateway_response(kind, id),
        };
        let event = incoming.proxy_event(&matched, &stage, &authorizer);
        match self.invoke(&route.function, &event).await {
            Ok(answer) => match proxy_response(&answer) {
                Some(proxied) => {
                    let mut response = Response::builder().status(proxied.status);
                    for (name, value) in &proxied.headers {
                        response = response.header(name.as_str(), value.as_str());
                    }
                    response
                        .header("x-amzn-RequestId", id.as_str())
                        .body(Full::new(Bytes::from(proxied.body)))
                        .unwrap_or_else(|_| self.gateway_response(ResponseType::BadGateway, id))
                }
                None => {
                    eprintln!("local-gateway: {} answered something that is not a proxy response", route.function);
                    self.gateway_response(ResponseType::BadGateway, id)
                }
            },
            Err(Invocation::TimedOut) => self.gateway_response(ResponseType::IntegrationTimeout, id),
            Err(_) => self.gateway_response(ResponseType::BadGateway, id),
        }
    }

    /// The route for `method` and `raw_path`, with its decoded path parameters.
    pub fn match_route(&self, method: &str, raw_path: &str) -> Option<(&GatewayRoute, Matched<'_>)> {
        let segments: Vec<&str> = raw_path.strip_prefix('/')?.split('/').collect();
        self.config.routes.iter().filter(|route| route.method == method).find_map(|route| {
            let template: Vec<&str> = route.path.trim_start_matches('/').split('/').collect();
            if template.len() != segments.len() {
                return None;
            }
            let mut path_parameters = BTreeMap::new();
            for (expected, actual) in template.iter().zip(&segments) {
                match expected.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
                    Some(name) if !actual.is_empty() => {
                        path_parameters.insert(name.to_owned(), percent_decode(actual));
                    }
                    Some(_) => return None,
                    None if expected == actual => {}
                    None => return None,
                }
            }
            Some((route, Matched { resource: route.path.as_str(), path_parameters }))
        })
    }

    /// Runs (or reuses) the REQUEST authorizer: the authorizer context to pass on,
    /// or the gateway response to answer.
    async fn authorize(
        &self,
        incoming: &Incoming,
        matched: &Matched<'_>,
        stage: &Stage<'_>,
    ) -> Result<Map<String, Value>, ResponseType> {
        // A missing identity source is refused without calling the authorizer.
        let identity = incoming
            .header(&self.config.identity_header)
            .filter(|v| !v.is_empty())
            .ok_or(ResponseType::Unauthorized)?
            .to_owned();
        let cached = self.cached(&identity);
        let answer = match cached {
            Some(answer) => answer,
            None => {
                let event = incoming.authorizer_event(matched, stage);
                let answer = match self.invoke(&self.config.authorizer, &event).await {
                    Ok(answer) => answer,
                    Err(Invocation::Failed(message)) if message == "Unauthorized" => {
                        return Err(ResponseType::Unauthorized);
                    }
                    Err(_) => return Err(ResponseType::AuthorizerConfigurationError),
                };
                if answer.get("policyDocument").is_none() || answer.get("principalId").is_none() {
                    return Err(ResponseType::AuthorizerFailure);
                }
                self.remember(&identity, &answer);
                answer
            }
        };
        match policy_allows(&answer["policyDocument"], &incoming.method_arn(stage)) {
            Some(true) => {}
            Some(false) => return Err(ResponseType::AccessDenied),
            None => return Err(ResponseType::AuthorizerFailure),
        }
        let mut context = Map::new();
        if let Some(fields) = answer.get("context").and_then(Value::as_object) {
            for (name, value) in fields {
                // API Gateway accepts only strings, numbers and booleans as context values.
                if value.is_object() || value.is_array() {
                    return Err(ResponseType::AuthorizerConfigurationError);
                }
                context.insert(name.clone(), value.clone());
            }
        }
        context.insert("principalId".into(), answer["principalId"].clone());
        Ok(context)
    }

    fn cached(&self, identity: &str) -> Option<Value> {
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        match cache.get(identity) {
            Some(entry) if entry.until > Instant::now() => Some(entry.answer.clone()),
            Some(_) => {
                cache.remove(identity);
                None
            }
            None => None,
        }
    }

    fn remember(&self, identity: &str, answer: &Value) {
        if self.config.authorizer_ttl.is_zero() {
            return;
        }
        let entry = CachedAllow { until: Instant::now() + self.config.authorizer_ttl, answer: answer.clone() };
        self.cache.lock().unwrap_or_else(|e| e.into_inner()).insert(identity.to_owned(), entry);
    }

    /// Cached authorizer answers right now (for tests and the flush endpoint).
    pub fn cached_entries(&self) -> usize {
        self.cache.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// `DELETE /restapis/{api}/stages/{stage}/cache/authorizers`, as the API Gateway
    /// control plane answers it (202, or 404 for another API or stage).
    fn flush_request(&self, method: &str, raw_path: &str) -> Option<Response<GatewayResponseBody>> {
        let rest = raw_path.strip_prefix("/restapis/")?.strip_suffix("/cache/authorizers")?;
        let (api, stage) = rest.split_once("/stages/")?;
        if method != "DELETE" {
            return None;
        }
        if api != self.config.api_id || stage != self.config.stage {
            return Some(plain(404, "application/json", r#"{"message":"Invalid stage identifier specified"}"#));
        }
        self.cache.lock().unwrap_or_else(|e| e.into_inner()).clear();
        Some(plain(202, "application/json", "{}"))
    }

    /// The stage's token bucket (rate per second, burst).
    fn take_token(&self) -> bool {
        let mut bucket = self.bucket.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        let refill = now.duration_since(bucket.at).as_secs_f64() * self.config.throttle_rate;
        bucket.tokens = (bucket.tokens + refill).min(self.config.throttle_burst);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// Invokes `function` with `event` through the Lambda invoke API.
    async fn invoke(&self, function: &str, event: &Value) -> Result<Value, Invocation> {
        let url = format!("{}{INVOKE_PREFIX}{function}/invocations", self.functions);
        let response = self.http.post(url).json(event).send().await.map_err(|err| {
            if err.is_timeout() { Invocation::TimedOut } else { Invocation::Unreachable(err.to_string()) }
        })?;
        let failed = response.headers().contains_key("x-amz-function-error") || !response.status().is_success();
        let answer: Value = response.json().await.map_err(|err| Invocation::Unreachable(err.to_string()))?;
        match answer.get("errorMessage").and_then(Value::as_str) {
            Some(message) if failed || answer.get("errorType").is_some() => Err(Invocation::Failed(message.to_owned())),
            _ if failed => Err(Invocation::Failed(String::new())),
            _ => Ok(answer),
        }
    }

    /// The invoke API, passed through (the provisioner and any function stay reachable).
    async fn invoke_passthrough(
        &self,
        function: &str,
        headers: &http::HeaderMap,
        body: Vec<u8>,
    ) -> Response<GatewayResponseBody> {
        let url = format!("{}{INVOKE_PREFIX}{function}/invocations", self.functions);
        let mut request = self.http.post(url).body(body);
        if let Some(content_type) = headers.get(http::header::CONTENT_TYPE) {
            request = request.header(http::header::CONTENT_TYPE, content_type);
        }
        match request.send().await {
            Ok(answer) => {
                let status = answer.status().as_u16();
                let headers = answer.headers().clone();
                let bytes = answer.bytes().await.unwrap_or_default();
                // `cargo lambda watch` answers a function's error with a 500; Lambda's
                // Invoke API answers 200 with X-Amz-Function-Error, which SDK clients
                // (the admin CLI) rely on, and which they would otherwise retry.
                let function_error = status == 500
                    && serde_json::from_slice::<Value>(&bytes).is_ok_and(|body| body.get("errorType").is_some());
                let mut response = Response::builder().status(if function_error { 200 } else { status });
                if function_error {
                    response = response.header("x-amz-function-error", "Unhandled");
                }
                for (name, value) in &headers {
                    if name != http::header::CONTENT_LENGTH && name != http::header::TRANSFER_ENCODING {
                        response = response.header(name.as_str(), value.as_bytes());
                    }
                }
                response.body(Full::new(bytes)).unwrap_or_else(|_| plain(502, "text/plain", "bad answer"))
            }
            Err(err) => plain(502, "application/json", &serde_json::json!({"message": err.to_string()}).to_string()),
        }
    }

    fn gateway_response(&self, kind: ResponseType, request_id: &str) -> Response<GatewayResponseBody> {
        let rendered = render(&self.config, kind, request_id);
        let mut response = Response::builder().status(rendered.status);
        for (name, value) in &rendered.headers {
            response = response.header(name.as_str(), value.as_str());
        }
        response
            .header("x-amzn-RequestId", request_id)
            .header("x-amzn-ErrorType", kind_header(kind))
            .body(Full::new(Bytes::from(rendered.body)))
            .unwrap_or_else(|_| plain(500, "text/plain", "gateway response"))
    }
}

/// Why an invocation did not give an answer.
#[derive(Debug)]
enum Invocation {
    /// The function raised an error (its `errorMessage`).
    Failed(String),
    TimedOut,
    Unreachable(#[allow(dead_code)] String),
}

fn kind_header(kind: ResponseType) -> &'static str {
    match kind {
        ResponseType::MissingAuthenticationToken => "MissingAuthenticationTokenException",
        ResponseType::Unauthorized => "UnauthorizedException",
        ResponseType::AccessDenied => "AccessDeniedException",
        ResponseType::AuthorizerFailure | ResponseType::AuthorizerConfigurationError => {
            "AuthorizerConfigurationException"
        }
        ResponseType::Throttled => "TooManyRequestsException",
        ResponseType::RequestTooLarge => "RequestTooLargeException",
        ResponseType::BadGateway => "InternalServerErrorException",
        ResponseType::IntegrationTimeout => "IntegrationTimeoutException",
    }
}

fn plain(status: u16, content_type: &str, body: &str) -> Response<GatewayResponseBody> {
    Response::builder()
        .status(status)
        .header(http::header::CONTENT_TYPE, content_type)
        .body(Full::new(Bytes::from(body.to_owned())))
        .expect("static response")
}

/// API Gateway's request ids are UUIDs.
fn new_request_id() -> String {
    let n: u128 = rand::random();
    let hex = format!("{n:032x}");
    format!("{}-{}-{}-{}-{}", &hex[0..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..32])
}

/// Whether an IAM-style policy allows `execute-api:Invoke` on `method_arn`: an
/// explicit Deny wins, no Allow is a denial. `None` when it is not a policy.
pub fn policy_allows(policy: &Value, method_arn: &str) -> Option<bool> {
    let statements = match policy.get("Statement")? {
        Value::Array(list) => list.clone(),
        single @ Value::Object(_) => vec![single.clone()],
        _ => return None,
    };
    let strings = |value: Option<&Value>| -> Option<Vec<String>> {
        match value? {
            Value::String(one) => Some(vec![one.clone()]),
            Value::Array(many) => many.iter().map(|v| v.as_str().map(str::to_owned)).collect(),
            _ => None,
        }
    };
    let mut allowed = false;
    for statement in statements {
        let effect = statement.get("Effect")?.as_str()?;
        let actions = strings(statement.get("Action"))?;
        let resources = strings(statement.get("Resource"))?;
        let action_matches = actions.iter().any(|a| glob_matches(a, "execute-api:Invoke"));
        let resource_matches = resources.iter().any(|r| glob_matches(r, method_arn));
        if action_matches && resource_matches {
            match effect {
                "Deny" => return Some(false),
                "Allow" => allowed = true,
                _ => return None,
            }
        }
    }
    Some(allowed)
}

/// IAM wildcard matching: `*` any run of characters, `?` one character.
fn glob_matches(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ARN: &str = "arn:aws:execute-api:us-east-1:123456789012:local/v1/GET/vehicles/veh_1";

    #[test]
    fn a_whole_stage_allow_covers_every_route_and_a_deny_wins() {
        let allow = |resource: &str| json!({"Version": "2012-10-17", "Statement": [{"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": resource}]});
        assert_eq!(policy_allows(&allow("arn:aws:execute-api:us-east-1:123456789012:local/v1/*/*"), ARN), Some(true));
        assert_eq!(policy_allows(&allow("arn:aws:execute-api:us-east-1:123456789012:local/v2/*/*"), ARN), Some(false));
        assert_eq!(
            policy_allows(&allow("arn:aws:execute-api:us-east-1:123456789012:local/v1/POST/*"), ARN),
            Some(false)
        );
        let mut both = allow("*");
        both["Statement"].as_array_mut().unwrap().push(json!({"Action": "*", "Effect": "Deny", "Resource": ARN}));
        assert_eq!(policy_allows(&both, ARN), Some(false));
        assert_eq!(policy_allows(&json!({"Statement": "nope"}), ARN), None);
    }

    #[test]
    fn wildcards_match_like_iam() {
        assert!(glob_matches("a*c", "abbbc"));
        assert!(glob_matches("a?c", "abc"));
        assert!(!glob_matches("a?c", "abbc"));
        assert!(glob_matches("*", ""));
        assert!(!glob_matches("abc", "abcd"));
    }
}
