//! What the local gateway serves, read from `infra/template.yaml` (the REST API
//! resource and its functions' `Api` events) and checked against the route table:
//! there is no second copy of either.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_norway::Value;

use crate::{Error, Template};

/// The template's REST API as the local gateway serves it.
#[derive(Clone, Debug)]
pub struct GatewayConfig {
    /// The id the authorizer's `methodArn` and the cache-flush path carry.
    pub api_id: String,
    /// `StageName`: the stage in events and in the flush path (URLs carry no stage locally,
    /// as behind a custom domain).
    pub stage: String,
    pub routes: Vec<GatewayRoute>,
    /// The binary of the REQUEST authorizer.
    pub authorizer: String,
    /// The identity source header (`X-API-Key`), lower-case.
    pub identity_header: String,
    /// `ReauthorizeEvery`: how long an Allow is cached per identity value (0: never).
    pub authorizer_ttl: Duration,
    /// Stage throttling (`MethodSettings`): steady rate per second and burst.
    pub throttle_rate: f64,
    pub throttle_burst: f64,
    /// `GatewayResponses`, by response type (`UNAUTHORIZED`, `DEFAULT_4XX`, …).
    pub responses: BTreeMap<String, GatewayResponse>,
    /// The WAF web ACL's body-size rule, when the template deploys one.
    pub body_limit: Option<BodyLimit>,
}

/// A WAF rule that blocks bodies over `max_bytes` with a custom response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BodyLimit {
    pub max_bytes: usize,
    pub status: u16,
    pub content_type: String,
    pub body: String,
}

/// One route: method, path template, and the function binary behind it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GatewayRoute {
    pub method: String,
    pub path: String,
    pub function: String,
}

/// A gateway response of the template: its status (none for `DEFAULT_*`, which keep
/// the error's own), static headers and `application/json` body template.
#[derive(Clone, Debug, Default)]
pub struct GatewayResponse {
    pub status: Option<u16>,
    pub headers: Vec<(String, String)>,
    pub template: Option<String>,
}

/// The logical id of the REST API in the template.
const API: &str = "FleetApi";

impl GatewayConfig {
    /// Reads the REST API of `template`, with parameter values `overrides` (as
    /// `sam deploy --parameter-overrides` would give them) over the defaults.
    pub fn from_template(
        template: &Template,
        overrides: &BTreeMap<String, String>,
        api_id: &str,
    ) -> Result<GatewayConfig, Error> {
        let api = template.properties(API).ok_or("template has no FleetApi properties")?;
        let resolve = |value: Option<&Value>, what: &str| -> Result<String, Error> {
            value
                .and_then(|v| template.resolve(v, overrides))
                .ok_or_else(|| format!("FleetApi: cannot read {what}").into())
        };
        let stage = resolve(api.get("StageName"), "StageName")?;
        let settings = api.get("MethodSettings").and_then(|s| s.get(0));
        let throttle_rate: f64 =
            resolve(settings.and_then(|s| s.get("ThrottlingRateLimit")), "ThrottlingRateLimit")?.parse()?;
        let throttle_burst: f64 =
            resolve(settings.and_then(|s| s.get("ThrottlingBurstLimit")), "ThrottlingBurstLimit")?.parse()?;

        let auth = api.get("Auth").ok_or("FleetApi has no Auth")?;
        let authorizer_name = auth.get("DefaultAuthorizer").and_then(Value::as_str).ok_or("no DefaultAuthorizer")?;
        let authorizer = auth.get("Authorizers").and_then(|a| a.get(authorizer_name)).ok_or("no such authorizer")?;
        if authorizer.get("FunctionPayloadType").and_then(Value::as_str) != Some("REQUEST") {
            return Err("the local gateway implements REQUEST authorizers only".into());
        }
        let identity = authorizer.get("Identity").ok_or("authorizer without Identity")?;
        let identity_header = identity
            .get("Headers")
            .and_then(|h| h.get(0))
            .and_then(Value::as_str)
            .ok_or("authorizer identity has no header")?
            .to_ascii_lowercase();
        let ttl_seconds: u64 = resolve(identity.get("ReauthorizeEvery"), "ReauthorizeEvery")?.parse()?;
        let authorizer_function = function_of_arn(authorizer.get("FunctionArn")).ok_or("authorizer FunctionArn")?;
        let authorizer = binary_of(template, &authorizer_function).ok_or("authorizer function has no binary")?;

        let routes = template
            .routes()
            .into_iter()
            .map(|route| GatewayRoute { method: route.method, path: route.path, function: route.binary })
            .collect();
        let responses = api
            .get("GatewayResponses")
            .and_then(Value::as_mapping)
            .into_iter()
            .flatten()
            .filter_map(|(kind, response)| Some((kind.as_str()?.to_owned(), gateway_response(template, response))))
            .collect();
        Ok(GatewayConfig {
            body_limit: body_limit(template, overrides),
            api_id: api_id.to_owned(),
            stage,
            routes,
            authorizer,
            identity_header,
            authorizer_ttl: Duration::from_secs(ttl_seconds),
            throttle_rate,
            throttle_burst,
            responses,
        })
    }
}

/// The body-size rule of a deployed `AWS::WAFv2::WebACL`: a `SizeConstraintStatement`
/// on `Body`, `GT` a size, blocked with a custom response.
fn body_limit(template: &Template, overrides: &BTreeMap<String, String>) -> Option<BodyLimit> {
    template.resources().find_map(|(_, resource)| {
        if resource.get("Type")?.as_str()? != "AWS::WAFv2::WebACL" {
            return None;
        }
        if let Some(condition) = resource.get("Condition").and_then(Value::as_str)
            && template.condition_holds(condition, overrides) != Some(true)
        {
            return None;
        }
        let properties = resource.get("Properties")?;
        properties.get("Rules")?.as_sequence()?.iter().find_map(|rule| {
            let size = rule.get("Statement")?.get("SizeConstraintStatement")?;
            size.get("FieldToMatch")?.get("Body")?;
            if size.get("ComparisonOperator")?.as_str()? != "GT" {
                return None;
            }
            let custom = rule.get("Action")?.get("Block")?.get("CustomResponse")?;
            let key = custom.get("CustomResponseBodyKey")?.as_str()?;
            let response = properties.get("CustomResponseBodies")?.get(key)?;
            let content_type = match response.get("ContentType")?.as_str()? {
                "APPLICATION_JSON" => "application/json",
                "TEXT_HTML" => "text/html",
                _ => "text/plain",
            };
            Some(BodyLimit {
                max_bytes: usize::try_from(size.get("Size")?.as_u64()?).ok()?,
                status: u16::try_from(custom.get("ResponseCode")?.as_u64()?).ok()?,
                content_type: content_type.to_owned(),
                body: response.get("Content")?.as_str()?.to_owned(),
            })
        })
    })
}

/// `!GetAtt AuthorizerFunction.Arn` → `AuthorizerFunction`.
fn function_of_arn(value: Option<&Value>) -> Option<String> {
    let Value::Tagged(tagged) = value? else { return None };
    if tagged.tag != "GetAtt" {
        return None;
    }
    let target = tagged.value.as_str()?;
    Some(target.strip_suffix(".Arn").unwrap_or(target).to_owned())
}

/// The cargo binary a function resource is built from.
fn binary_of(template: &Template, logical_id: &str) -> Option<String> {
    template
        .resources()
        .find(|(name, _)| *name == logical_id)?
        .1
        .get("Metadata")?
        .get("BuildProperties")?
        .get("Binary")?
        .as_str()
        .map(str::to_owned)
}

fn gateway_response(template: &Template, response: &Value) -> GatewayResponse {
    let status =
        response.get("StatusCode").and_then(|s| template.resolve(s, &BTreeMap::new())).and_then(|s| s.parse().ok());
    let headers = response
        .get("ResponseParameters")
        .and_then(|p| p.get("Headers"))
        .and_then(Value::as_mapping)
        .into_iter()
        .flatten()
        .filter_map(|(name, value)| {
            // Static values are single-quoted in API Gateway's mapping syntax; an
            // unquoted `context.…` maps a context variable, kept as `$context.…` for
            // the renderer to substitute like the body's.
            let value = value.as_str()?;
            let value = match value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')) {
                Some(literal) => literal.to_owned(),
                None if value.starts_with("context.") => format!("${value}"),
                None => return None,
            };
            Some((name.as_str()?.to_owned(), value))
        })
        .collect();
    let template_text = response
        .get("ResponseTemplates")
        .and_then(|t| t.get("application/json"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    GatewayResponse { status, headers, template: template_text }
}
