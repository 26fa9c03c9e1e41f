//! From a presented `X-API-Key` to the caller's [`AuthContext`]: the code the
//! authorizer runs, and the local stack runs in-process.

use fleetgate_scopes::{AuthContext, Environment};

use crate::dynamo::DbError;
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
}

impl KeyResolver {
    pub fn new(store: KeyStore, environment: Environment) -> KeyResolver {
        KeyResolver { store, environment }
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
        Ok(AuthContext::new(
            record.tenant_id,
            record.key_id,
            record.name,
            record.scopes,
            record.environment,
            record.expires_at.map(|at| at.to_string()),
        )
        .with_allowed_cidrs(record.allowed_cidrs))
    }
}
