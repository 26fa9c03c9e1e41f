//! Where list-cursor signing keys come from: the deployment's Secrets Manager
//! secret, read with `GetSecretValue` (never an environment variable, which anyone
//! with `lambda:GetFunctionConfiguration` can read).
//!
//! The secret is read on the first request that needs it, not at init: a network
//! call (or even the client's TLS set-up) during init would break SPEC §7's
//! cold-start bar for every list function, and most invocations of a warm
//! environment then pay nothing. Cost: one
//! `GetSecretValue` pair (current and previous version, concurrently) per execution
//! environment, and again every [`RELOAD_EVERY`].
//!
//! Rotation: put a new secret value (`aws secretsmanager put-secret-value`); the old
//! one becomes `AWSPREVIOUS`. Cursors signed with either verify, so a client
//! holding a cursor from before the rotation keeps paging. An environment that meets
//! a cursor it cannot verify, and last read the secret over a minute ago, reads it
//! again first (a cursor signed by a fresher environment).

use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::config::BehaviorVersion;
use aws_sdk_secretsmanager::config::timeout::TimeoutConfig;
use aws_sdk_secretsmanager::error::ProvideErrorMetadata;
use tokio::sync::Mutex;

use crate::dynamo::{self, ConfigError, DbError, env_var, optional_var};
use crate::error::ApiError;
use crate::list::{CursorSigner, PageRequest, Position};

/// How long a read secret is used before it is read again.
pub const RELOAD_EVERY: Duration = Duration::from_secs(600);
/// A cursor that does not verify makes a re-read only if the last one is older than this.
const RELOAD_ON_MISS_AFTER: Duration = Duration::from_secs(60);

/// The signing keys of list cursors, as a function holds them.
#[derive(Clone, Debug)]
pub struct CursorKeys {
    source: Arc<Source>,
}

#[derive(Debug)]
enum Source {
    /// A key given in code (tests, benchmarks).
    Fixed(CursorSigner),
    /// The secret `secret_id`, read on first use (the client too is built then:
    /// its TLS set-up would cost init time).
    SecretsManager { client: OnceLock<Client>, secret_id: String, loaded: Mutex<Option<(CursorSigner, Instant)>> },
}

impl CursorKeys {
    /// Keys fixed in code.
    pub fn fixed(secret: &str) -> CursorKeys {
        CursorKeys { source: Arc::new(Source::Fixed(CursorSigner::new(secret))) }
    }

    /// The secret named by `CURSOR_SECRET_ARN`, read on first use (no network here).
    pub fn from_env() -> Result<CursorKeys, ConfigError> {
        Ok(CursorKeys::secrets_manager(OnceLock::new(), env_var("CURSOR_SECRET_ARN")?))
    }

    /// Secret `secret_id` through `client`, read on first use.
    pub fn from_secret(client: Client, secret_id: String) -> CursorKeys {
        CursorKeys::secrets_manager(OnceLock::from(client), secret_id)
    }

    fn secrets_manager(client: OnceLock<Client>, secret_id: String) -> CursorKeys {
        CursorKeys { source: Arc::new(Source::SecretsManager { client, secret_id, loaded: Mutex::new(None) }) }
    }

    /// The signer to use now: 503 when the secret cannot be read.
    pub async fn signer(&self) -> Result<CursorSigner, ApiError> {
        self.signer_read_after(RELOAD_EVERY).await
    }

    /// A list's answer: `{"data", "next_cursor"}`, the cursor (when there is a next
    /// page) bound to `query` as [`CursorKeys::page_request`] checks it.
    pub async fn page_response<T: serde::Serialize>(
        &self,
        query: &str,
        data: Vec<T>,
        next: Option<Position>,
    ) -> Result<lambda_http::Response<lambda_http::Body>, ApiError> {
        let signer = self.signer().await?;
        let next_cursor = next.map(|position| signer.encode(query, &position));
        crate::http::json_response(http::StatusCode::OK, &crate::list::Page { data, next_cursor })
    }

    /// `limit` and `cursor` of a list request (see [`PageRequest::parse`]), re-reading
    /// the secret once if the cursor does not verify with keys read a while ago.
    pub async fn page_request(&self, params: &[(String, String)], query: &str) -> Result<PageRequest, ApiError> {
        self.verifying(|signer| PageRequest::parse(params, signer, query)).await
    }

    /// The position in `cursor` (see [`CursorSigner::decode`]), with the same re-read.
    pub async fn decode(&self, query: &str, cursor: &str) -> Result<Position, ApiError> {
        self.verifying(|signer| signer.decode(query, cursor)).await
    }

    /// Runs `check` with the held signer and, if it refuses the cursor, once more
    /// with the secret read again (when the held one is over a minute old): the
    /// cursor may come from an environment that read a newer secret.
    async fn verifying<T>(&self, check: impl Fn(&CursorSigner) -> Result<T, ApiError>) -> Result<T, ApiError> {
        match check(&self.signer().await?) {
            Err(err) if err.code() == "invalid_cursor" && self.is_secrets_manager() => {
                check(&self.signer_read_after(RELOAD_ON_MISS_AFTER).await?)
            }
            other => other,
        }
    }

    fn is_secrets_manager(&self) -> bool {
        matches!(*self.source, Source::SecretsManager { .. })
    }

    /// The signer, read again if the one held was read more than `max_age` ago.
    async fn signer_read_after(&self, max_age: Duration) -> Result<CursorSigner, ApiError> {
        let (client, secret_id, loaded) = match &*self.source {
            Source::Fixed(signer) => return Ok(signer.clone()),
            Source::SecretsManager { client, secret_id, loaded } => (client, secret_id, loaded),
        };
        let client = client.get_or_init(self::client);
        let mut loaded = loaded.lock().await;
        if let Some((signer, at)) = loaded.as_ref()
            && at.elapsed() < max_age
        {
            return Ok(signer.clone());
        }
        let (current, previous) =
            tokio::join!(read_version(client, secret_id, "AWSCURRENT"), read_version(client, secret_id, "AWSPREVIOUS"));
        let current = current?.ok_or_else(|| unavailable("the cursor secret has no current version".into()))?;
        let signer = CursorSigner::new(current).with_previous(previous.unwrap_or_default());
        *loaded = Some((signer.clone(), Instant::now()));
        Ok(signer)
    }
}

/// A Secrets Manager client from Lambda's environment (region, role credentials;
/// locally `AWS_ENDPOINT_URL_SECRETS_MANAGER`), with bounded timeouts. No network here.
pub fn client() -> Client {
    let mut config = aws_sdk_secretsmanager::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .http_client(dynamo::https_client())
        .region(dynamo::env_region())
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(1))
                .operation_timeout(Duration::from_secs(3))
                .build(),
        )
        .interceptor(crate::call_time::AwsCallTimer);
    if let Some(credentials) = dynamo::env_credentials() {
        config = config.credentials_provider(credentials);
    }
    if let Some(endpoint) =
        optional_var("AWS_ENDPOINT_URL_SECRETS_MANAGER").or_else(|| optional_var("AWS_ENDPOINT_URL"))
    {
        config = config.endpoint_url(endpoint);
    }
    Client::from_conf(config.build())
}

/// One version of the secret; `None` when that version does not exist (no
/// `AWSPREVIOUS` before the first rotation).
async fn read_version(client: &Client, secret_id: &str, stage: &str) -> Result<Option<String>, ApiError> {
    match client.get_secret_value().secret_id(secret_id).version_stage(stage).send().await {
        Ok(output) => Ok(output.secret_string),
        Err(err) if err.code() == Some("ResourceNotFoundException") && stage != "AWSCURRENT" => Ok(None),
        Err(err) => {
            tracing::error!(stage, error = %aws_sdk_secretsmanager::error::DisplayErrorContext(&err), "could not read the cursor secret");
            Err(unavailable(Box::new(err)))
        }
    }
}

fn unavailable(cause: Box<dyn std::error::Error + Send + Sync>) -> ApiError {
    ApiError::ServiceUnavailable(DbError::Unavailable(cause))
}
