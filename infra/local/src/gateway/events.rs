//! The events API Gateway (REST API, Lambda proxy integration) sends: the REQUEST
//! authorizer's event and the proxy event, and the proxy response it reads back.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Map, Value, json};

/// One incoming request, parsed once for both events.
#[derive(Debug)]
pub struct Incoming {
    pub method: String,
    /// The path as received (percent-encoded).
    pub raw_path: String,
    /// `(name, value)` in arrival order; names lower-case (HTTP/1 names are case-insensitive).
    pub headers: Vec<(String, String)>,
    /// `(name, value)` decoded, in order.
    pub query: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub source_ip: String,
    pub request_id: String,
    pub request_time_epoch_ms: u128,
}

/// Where a request was routed: the resource path template and its parameters.
#[derive(Debug)]
pub struct Matched<'a> {
    pub resource: &'a str,
    pub path_parameters: BTreeMap<String, String>,
}

/// The stage and API an event names.
pub struct Stage<'a> {
    pub api_id: &'a str,
    pub stage: &'a str,
}

impl Incoming {
    /// The decoded path (`%2F` and friends decoded, invalid UTF-8 replaced).
    pub fn path(&self) -> String {
        percent_decode(&self.raw_path)
    }

    fn single_and_multi(pairs: &[(String, String)]) -> (Value, Value) {
        if pairs.is_empty() {
            return (Value::Null, Value::Null);
        }
        let mut single = Map::new();
        let mut multi: Map<String, Value> = Map::new();
        for (name, value) in pairs {
            // The single-value map keeps the last value, as API Gateway does.
            single.insert(name.clone(), json!(value));
            match multi.get_mut(name) {
                Some(Value::Array(values)) => values.push(json!(value)),
                _ => {
                    multi.insert(name.clone(), json!([value]));
                }
            }
        }
        (Value::Object(single), Value::Object(multi))
    }

    fn request_context(&self, matched: &Matched, stage: &Stage) -> Value {
        json!({
            "accountId": "123456789012",
            "apiId": stage.api_id,
            "stage": stage.stage,
            "requestId": self.request_id,
            "extendedRequestId": self.request_id,
            "resourceId": "local",
            "resourcePath": matched.resource,
            "httpMethod": self.method,
            "path": format!("/{}{}", stage.stage, self.path()),
            "protocol": "HTTP/1.1",
            "requestTimeEpoch": self.request_time_epoch_ms as u64,
            "domainName": self.header("host").unwrap_or("127.0.0.1"),
            "identity": {
                "sourceIp": self.source_ip,
                "userAgent": self.header("user-agent"),
            },
        })
    }

    /// The last value of header `name` (lower-case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().rev().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    /// `arn:aws:execute-api:{region}:{account}:{api}/{stage}/{METHOD}/{path}`.
    pub fn method_arn(&self, stage: &Stage) -> String {
        format!(
            "arn:aws:execute-api:us-east-1:123456789012:{}/{}/{}{}",
            stage.api_id,
            stage.stage,
            self.method,
            self.path()
        )
    }

    /// What both events carry: the request as API Gateway describes it.
    fn request_fields(&self, matched: &Matched) -> Map<String, Value> {
        let (headers, multi_headers) = Self::single_and_multi(&self.headers);
        let (query, multi_query) = Self::single_and_multi(&self.query);
        let fields = json!({
            "resource": matched.resource,
            "path": self.path(),
            "httpMethod": self.method,
            "headers": headers,
            "multiValueHeaders": multi_headers,
            "queryStringParameters": query,
            "multiValueQueryStringParameters": multi_query,
        });
        fields.as_object().cloned().unwrap_or_default()
    }

    /// The REQUEST authorizer's event.
    pub fn authorizer_event(&self, matched: &Matched, stage: &Stage) -> Value {
        let mut event = self.request_fields(matched);
        event.insert("type".into(), json!("REQUEST"));
        event.insert("methodArn".into(), json!(self.method_arn(stage)));
        event.insert("pathParameters".into(), json!(matched.path_parameters));
        event.insert("stageVariables".into(), json!({}));
        event.insert("requestContext".into(), self.request_context(matched, stage));
        Value::Object(event)
    }

    /// The Lambda proxy event, with the authorizer's context. A body that is not
    /// UTF-8 travels base64-encoded with `isBase64Encoded`, so its exact bytes
    /// reach the function (which answers with its own problem, never the gateway).
    pub fn proxy_event(&self, matched: &Matched, stage: &Stage, authorizer: &Map<String, Value>) -> Value {
        let mut context = self.request_context(matched, stage);
        context["authorizer"] = Value::Object(authorizer.clone());
        let (body, encoded) = if self.body.is_empty() {
            (Value::Null, false)
        } else {
            match std::str::from_utf8(&self.body) {
                Ok(text) => (json!(text), false),
                Err(_) => (json!(BASE64.encode(&self.body)), true),
            }
        };
        let parameters = if matched.path_parameters.is_empty() { Value::Null } else { json!(matched.path_parameters) };
        let mut event = self.request_fields(matched);
        event.insert("pathParameters".into(), parameters);
        event.insert("stageVariables".into(), Value::Null);
        event.insert("requestContext".into(), context);
        event.insert("body".into(), body);
        event.insert("isBase64Encoded".into(), json!(encoded));
        Value::Object(event)
    }
}

/// A function's proxy response, read as API Gateway reads it.
#[derive(Debug)]
pub struct ProxyResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// Reads `{statusCode, headers, multiValueHeaders, body, isBase64Encoded}`; `None`
/// when it is not one (API Gateway then answers 502).
pub fn proxy_response(value: &Value) -> Option<ProxyResponse> {
    let status = u16::try_from(value.get("statusCode")?.as_u64()?).ok().filter(|s| (100..600).contains(s))?;
    let mut headers: Vec<(String, String)> = Vec::new();
    if let Some(multi) = value.get("multiValueHeaders").and_then(Value::as_object) {
        for (name, values) in multi {
            for v in values.as_array()? {
                headers.push((name.clone(), scalar(v)?));
            }
        }
    }
    if let Some(single) = value.get("headers").and_then(Value::as_object) {
        for (name, v) in single {
            // multiValueHeaders wins where both name a header.
            if !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(name)) {
                headers.push((name.clone(), scalar(v)?));
            }
        }
    }
    let body = match value.get("body") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(text)) if value.get("isBase64Encoded").and_then(Value::as_bool) == Some(true) => {
            BASE64.decode(text).ok()?
        }
        Some(Value::String(text)) => text.clone().into_bytes(),
        Some(_) => return None,
    };
    Some(ProxyResponse { status, headers, body })
}

fn scalar(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        Value::Bool(flag) => Some(flag.to_string()),
        _ => None,
    }
}

/// Percent-decoding of a path or path segment (`+` stays `+`), lossy on invalid UTF-8.
pub fn percent_decode(text: &str) -> String {
    percent_encoding::percent_decode_str(text).decode_utf8_lossy().into_owned()
}

/// A query string's pairs, decoded as API Gateway does (`+` is a space).
pub fn parse_query(query: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(query.as_bytes()).map(|(k, v)| (k.into_owned(), v.into_owned())).collect()
}
