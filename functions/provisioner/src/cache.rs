//! Flushing API Gateway's authorizer cache, so a revoked or rotated-out key stops
//! working in seconds instead of after the cache TTL.

use std::time::Duration;

use aws_sdk_apigateway::Client;
use aws_sdk_apigateway::config::BehaviorVersion;
use aws_sdk_apigateway::config::timeout::TimeoutConfig;
use fleetgate_api::dynamo::{self, optional_var};

/// When to flush a second time. An authorizer invocation that read the key just
/// before the revocation can still answer Allow after the first flush, and API
/// Gateway would cache that for the whole TTL. It answers within its DynamoDB
/// operation timeout (4 s: the read, then at most the `last_used_at` update) of
/// the read, so a second flush this long after the first drops whatever it
/// cached: a revocation takes effect within this bound, never the TTL.
pub const REFLUSH_AFTER: Duration = Duration::from_secs(5);

/// The stage whose cached authorizer results to drop (`API_ID`, `API_STAGE`).
#[derive(Clone, Debug)]
pub struct AuthorizerCache {
    client: Client,
    rest_api_id: String,
    stage: String,
    reflush_after: Duration,
}

impl AuthorizerCache {
    pub fn new(client: Client, rest_api_id: String, stage: String) -> AuthorizerCache {
        AuthorizerCache { client, rest_api_id, stage, reflush_after: REFLUSH_AFTER }
    }

    /// The same cache, flushed a second time after `delay` (tests shorten it).
    pub fn with_reflush_after(self, delay: Duration) -> AuthorizerCache {
        AuthorizerCache { reflush_after: delay, ..self }
    }

    /// Configured by the SAM template; absent locally, where no cache exists.
    pub fn from_env() -> Option<AuthorizerCache> {
        let (rest_api_id, stage) = (optional_var("API_ID")?, optional_var("API_STAGE")?);
        let mut config = aws_sdk_apigateway::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .http_client(dynamo::https_client())
            .region(dynamo::env_region())
            // Both flushes and the wait between them fit the function's timeout.
            .timeout_config(TimeoutConfig::builder().operation_timeout(Duration::from_secs(3)).build());
        if let Some(credentials) = dynamo::env_credentials() {
            config = config.credentials_provider(credentials);
        }
        if let Some(endpoint) = optional_var("AWS_ENDPOINT_URL_API_GATEWAY") {
            config = config.endpoint_url(endpoint);
        }
        Some(AuthorizerCache::new(Client::from_conf(config.build()), rest_api_id, stage))
    }

    /// Drops every cached authorizer result of the stage, now and again after
    /// [`REFLUSH_AFTER`]. Best effort: `false` if either failed, and then the key
    /// still stops working when its cached result expires (the TTL).
    pub async fn flush(&self) -> bool {
        let first = self.flush_once().await;
        tokio::time::sleep(self.reflush_after).await;
        let second = self.flush_once().await;
        first && second
    }

    async fn flush_once(&self) -> bool {
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
