//! From a presented `X-API-Key` to the caller's [`AuthContext`]: the code the
//! authorizer runs, and the local stack runs in-process.

use fleetgate_scopes::{AuthContext, Environment, Limits, RateLimit};

use crate::dynamo::{ConfigError, DbError, optional_var};
use crate::error::ApiError;
use crate::keys::{ApiKey, KeyFormatError, KeyStatus, KeyStore};
use crate::timestamp::Timestamp;

/// Why a key was refused. Logged (with the key id where known), never shown:
/// callers get one undifferentiated 401.
#[derive(Copy, Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("no key presented")]
    Missing,
    #[error("{0}")]
    Format(#[from] KeyFormatError),
    #[error("key of another environment")]
    WrongEnvironment,
    #[error("unknown key")]
    Unknown,
    #[error("revoked key")]
    Revoked,
    #[error("expired key")]
    Expired,
}

impl Rejection {
    /// The `reason` dimension of the authorizer's refusal metric.
    pub fn reason(self) -> &'static str {
        match self {
            Rejection::Missing => "missing",
            Rejection::Format(KeyFormatError::Malformed) => "malformed",
            Rejection::Format(KeyFormatError::BadChecksum) => "bad_checksum",
            Rejection::WrongEnvironment => "wrong_environment",
            Rejection::Unknown => "unknown",
            Rejection::Revoked => "revoked",
            Rejection::Expired => "expired",
        }
    }
}

/// A key could not be resolved.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    /// The key is bad; answer 401.
    #[error("key rejected: {0}")]
    Rejected(Rejection),
    /// The key store could not be read; the caller is not at fault.
    #[error("key store unavailable")]
    Store(#[from] DbError),
}

impl From<ResolveError> for ApiError {
    fn from(err: ResolveError) -> ApiError {
        match err {
            ResolveError::Rejected(Rejection::Missing) => ApiError::MissingApiKey,
            ResolveError::Rejected(_) => ApiError::InvalidApiKey,
            ResolveError::Store(db) => ApiError::from(db),
        }
    }
}

/// Resolves keys of one environment against the keys table.
#[derive(Clone, Debug)]
pub struct KeyResolver {
    store: KeyStore,
    environment: Environment,
    /// The rate limit of keys that have none of their own.
    default_rate_limit: Option<RateLimit>,
}

impl KeyResolver {
    pub fn new(store: KeyStore, environment: Environment) -> KeyResolver {
        KeyResolver { store, environment, default_rate_limit: None }
    }

    /// The same resolver, giving keys without a rate limit of their own `limit`.
    pub fn with_default_rate_limit(self, limit: Option<RateLimit>) -> KeyResolver {
        KeyResolver { default_rate_limit: limit, ..self }
    }

    /// The deployment's default (`DEFAULT_RATE_LIMIT`, e.g. `100/second`), if set.
    pub fn default_rate_limit_from_env() -> Result<Option<RateLimit>, ConfigError> {
        optional_var("DEFAULT_RATE_LIMIT")
            .map(|text| text.parse().map_err(|e| ConfigError(format!("DEFAULT_RATE_LIMIT: {e}"))))
            .transpose()
    }

    /// Checks the key offline (shape, checksum, environment), then looks up its
    /// hash, then its state; records the use at most hourly.
    pub async fn resolve(&self, presented: Option<&str>, now: Timestamp) -> Result<AuthContext, ResolveError> {
        let reject = |why| Err(ResolveError::Rejected(why));
        let Some(presented) = presented.map(str::trim).filter(|k| !k.is_empty()) else {
            return reject(Rejection::Missing);
        };
        let key = ApiKey::parse(presented).map_err(|e| ResolveError::Rejected(e.into()))?;
        if key.environment() != self.environment {
            return reject(Rejection::WrongEnvironment);
        }
        let hash = key.hash();
        let Some(record) = self.store.find_by_hash(&hash).await? else {
            return reject(Rejection::Unknown);
        };
        match record.status(now) {
            KeyStatus::Active => {}
            KeyStatus::Revoked => {
                tracing::info!(key_id = %record.key_id, "revoked key presented");
                return reject(Rejection::Revoked);
            }
            KeyStatus::Expired => {
                tracing::info!(key_id = %record.key_id, "expired key presented");
                return reject(Rejection::Expired);
            }
        }
        if record.last_used_is_stale(now) {
            // Best effort: a failed bookkeeping write must not deny a valid key.
            if let Err(err) = self.store.touch_last_used(&hash, now).await {
                tracing::warn!(key_id = %record.key_id, error = %err, "could not record key use");
            }
        }
        // One call after the other, on the function's one connection.
        let tenant_rate_limit = self.store.tenant_rate_limit(&record.tenant_id).await;
        // A limit, not a permission: unreadable, it is left out (limits fail open), logged.
        let tenant_rate_limit = tenant_rate_limit.unwrap_or_else(|err| {
            tracing::error!(tenant_id = %record.tenant_id, error = %err, "could not read the tenant's cap: not applied");
            None
        });
        let limits = Limits {
            rate_limit: record.rate_limit.or(self.default_rate_limit),
            monthly_quota: record.monthly_quota,
            tenant_rate_limit,
        };
        Ok(AuthContext::new(
            record.tenant_id,
            record.key_id,
            record.name,
            record.scopes,
            record.environment,
            record.expires_at.map(|at| at.to_string()),
        )
        .with_allowed_cidrs(record.allowed_cidrs)
        .with_limits(limits))
    }
}
