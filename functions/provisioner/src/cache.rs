//! Flushing API Gateway's authorizer cache, so a revoked or rotated-out key stops
//! working in seconds instead of after the cache TTL.

use aws_sdk_apigateway::Client;
use aws_sdk_apigateway::config::{BehaviorVersion, Credentials, Region};

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
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let (rest_api_id, stage) = (var("API_ID")?, var("API_STAGE")?);
        let mut config = aws_sdk_apigateway::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .http_client(fleetgate_api::dynamo::https_client())
            .region(var("AWS_REGION").map(Region::new));
        if let (Some(key), Some(secret)) = (var("AWS_ACCESS_KEY_ID"), var("AWS_SECRET_ACCESS_KEY")) {
            config = config.credentials_provider(Credentials::new(
                key,
                secret,
                var("AWS_SESSION_TOKEN"),
                None,
                "environment",
            ));
        }
        if let Some(endpoint) = var("AWS_ENDPOINT_URL_API_GATEWAY") {
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
