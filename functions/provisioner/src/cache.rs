//! Flushing API Gateway's authorizer cache, so a revoked or rotated-out key stops
//! working in seconds instead of after the cache TTL.

use aws_sdk_apigateway::Client;
use aws_sdk_apigateway::config::BehaviorVersion;
use fleetgate_api::dynamo::{self, optional_var};

/// The stage whose cached authorizer results to drop (`API_ID`, `API_STAGE`).
#[derive(Clone, Debug)]
pub struct AuthorizerCache {
    client: Client,
    rest_api_id: String,
    stage: String,
}

impl AuthorizerCache {
    pub fn new(client: Client, rest_api_id: String, stage: String) -> AuthorizerCache {
        AuthorizerCache { client, rest_api_id, stage }
    }

    /// Configured by the SAM template; absent locally, where no cache exists.
    pub fn from_env() -> Option<AuthorizerCache> {
        let (rest_api_id, stage) = (optional_var("API_ID")?, optional_var("API_STAGE")?);
        let mut config = aws_sdk_apigateway::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .http_client(dynamo::https_client())
            .region(dynamo::env_region());
        if let Some(credentials) = dynamo::env_credentials() {
            config = config.credentials_provider(credentials);
        }
        if let Some(endpoint) = optional_var("AWS_ENDPOINT_URL_API_GATEWAY") {
            config = config.endpoint_url(endpoint);
        }
        Some(AuthorizerCache::new(Client::from_conf(config.build()), rest_api_id, stage))
    }

    /// Drops every cached authorizer result of the stage. Best effort: on failure
    /// the key still stops working when its cached result expires (the TTL).
    pub async fn flush(&self) -> bool {
        let result = self
            .client
            .flush_stage_authorizers_cache()
            .rest_api_id(&self.rest_api_id)
            .stage_name(&self.stage)
            .send()
            .await;
        match result {
            Ok(_) => true,
            Err(err) => {
                tracing::warn!(error = %aws_sdk_apigateway::error::DisplayErrorContext(&err), "could not flush the authorizer cache");
                false
            }
        }
    }
}
