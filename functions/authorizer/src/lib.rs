//! API Gateway REST `REQUEST` authorizer: resolves `X-API-Key` and hands the
//! key's tenant and scopes to the endpoint functions as context.
//!
//! A bad key fails the invocation with exactly `Unauthorized`, which API Gateway
//! turns into a 401. A key store failure fails with another message, which API
//! Gateway reports as AUTHORIZER_FAILURE (mapped to 503 in the template), so an
//! outage is never mistaken for a bad key, and nothing is ever allowed by default.

use std::collections::BTreeMap;

use aws_lambda_events::apigw::ApiGatewayCustomAuthorizerRequestTypeRequest;
use lambda_runtime::{Diagnostic, Error, LambdaEvent};
use serde::Serialize;

use fleetgate_api::Timestamp;
use fleetgate_api::dynamo::deployment_environment;
use fleetgate_api::http::API_KEY_HEADER;
use fleetgate_api::keys::{KeyResolver, KeyStore, ResolveError};
use fleetgate_api::metrics;
use fleetgate_scopes::AuthContext;

/// What the function keeps across invocations.
pub struct State {
    pub resolver: KeyResolver,
}

impl State {
    pub async fn from_env() -> Result<State, Error> {
        let environment = deployment_environment()?;
        let store = KeyStore::from_env(fleetgate_api::dynamo::client())?;
        let resolver =
            KeyResolver::new(store, environment).with_default_rate_limit(KeyResolver::default_rate_limit_from_env()?);
        Ok(State { resolver })
    }
}

/// The authorizer's answer for a good key.
#[derive(Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct AuthorizerResponse {
    pub principal_id: String,
    pub policy_document: PolicyDocument,
    pub context: BTreeMap<&'static str, String>,
}

#[derive(Debug, Serialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct PolicyDocument {
    pub version: &'static str,
    pub statement: Vec<Statement>,
}

#[derive(Debug, Serialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct Statement {
    pub action: &'static str,
    pub effect: &'static str,
    pub resource: String,
}

/// Why the authorizer did not allow the request.
#[derive(Debug, thiserror::Error)]
pub enum AuthorizerError {
    /// Any bad key. The message must be exactly `Unauthorized` for API Gateway to answer 401.
    #[error("Unauthorized")]
    Unauthorized,
    /// The key store could not be read, or the event was not from API Gateway.
    #[error("authorizer failure")]
    Failure(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl From<AuthorizerError> for Diagnostic {
    fn from(err: AuthorizerError) -> Diagnostic {
        let error_type = match err {
            AuthorizerError::Unauthorized => "Unauthorized",
            AuthorizerError::Failure(_) => "AuthorizerFailure",
        };
        Diagnostic { error_type: error_type.into(), error_message: err.to_string() }
    }
}

#[tracing::instrument(name = "authorizer", skip_all)]
pub async fn handler(
    state: &State,
    event: LambdaEvent<ApiGatewayCustomAuthorizerRequestTypeRequest>,
) -> Result<AuthorizerResponse, AuthorizerError> {
    fleetgate_api::call_time::measured(authorize(state, event)).await
}

async fn authorize(
    state: &State,
    event: LambdaEvent<ApiGatewayCustomAuthorizerRequestTypeRequest>,
) -> Result<AuthorizerResponse, AuthorizerError> {
    let request = event.payload;
    let resource = whole_stage_arn(request.method_arn.as_deref().unwrap_or_default())
        .ok_or_else(|| AuthorizerError::Failure("methodArn missing or malformed".into()))?;
    let presented = request.headers.get(API_KEY_HEADER).and_then(|v| v.to_str().ok());
    let auth = match state.resolver.resolve(presented, Timestamp::now()).await {
        Ok(auth) => auth,
        Err(ResolveError::Rejected(why)) => {
            let (handler_ms, aws_call_ms) = fleetgate_api::call_time::millis();
            tracing::info!(reason = %why, handler_ms, aws_call_ms, "key refused");
            metrics::authorizer_outcome("AuthRefusals", why.reason()).emit();
            return Err(AuthorizerError::Unauthorized);
        }
        Err(ResolveError::Store(err)) => {
            tracing::error!(error = ?err, "key store unavailable");
            metrics::authorizer_outcome("AuthFailures", "key_store_unavailable").emit();
            return Err(AuthorizerError::Failure(Box::new(err)));
        }
    };
    let (handler_ms, aws_call_ms) = fleetgate_api::call_time::millis();
    tracing::info!(key_id = %auth.key_id, tenant_id = %auth.tenant_id, handler_ms, aws_call_ms, "key allowed");
    Ok(allow(&auth, resource))
}

/// An Allow on every route of the stage, so one cached result serves them all;
/// the per-route scope check happens in each endpoint.
fn allow(auth: &AuthContext, resource: String) -> AuthorizerResponse {
    AuthorizerResponse {
        principal_id: auth.key_id.clone(),
        policy_document: PolicyDocument {
            version: "2012-10-17",
            statement: vec![Statement { action: "execute-api:Invoke", effect: "Allow", resource }],
        },
        context: auth.to_authorizer_context().into_iter().collect(),
    }
}

/// `arn:aws:execute-api:eu-west-1:123:api/stage/GET/me` → `arn:aws:execute-api:eu-west-1:123:api/stage/*/*`.
pub fn whole_stage_arn(method_arn: &str) -> Option<String> {
    if !method_arn.starts_with("arn:") {
        return None;
    }
    let (prefix, path) = method_arn.rsplit_once(':')?;
    let mut parts = path.split('/');
    let (api, stage) = (parts.next()?, parts.next()?);
    if api.is_empty() || stage.is_empty() {
        return None;
    }
    Some(format!("{prefix}:{api}/{stage}/*/*"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allow_covers_the_whole_stage() {
        assert_eq!(
            whole_stage_arn("arn:aws:execute-api:eu-west-1:123456789012:abc123/prod/GET/vehicles/veh_1").as_deref(),
            Some("arn:aws:execute-api:eu-west-1:123456789012:abc123/prod/*/*")
        );
        assert_eq!(
            whole_stage_arn("arn:aws:execute-api:eu-west-1:1:abc123/prod"),
            Some("arn:aws:execute-api:eu-west-1:1:abc123/prod/*/*".into())
        );
        for bad in
            ["", "garbage", "arn:aws:execute-api:eu-west-1:1:abc123", "arn:aws:execute-api:eu-west-1:1:/prod/GET/"]
        {
            assert_eq!(whole_stage_arn(bad), None, "{bad}");
        }
    }

    #[test]
    fn unauthorized_message_is_exactly_what_api_gateway_expects() {
        let diagnostic = Diagnostic::from(AuthorizerError::Unauthorized);
        assert_eq!(diagnostic.error_message, "Unauthorized");
        let diagnostic = Diagnostic::from(AuthorizerError::Failure("boom".into()));
        assert_ne!(diagnostic.error_message, "Unauthorized");
    }
}
