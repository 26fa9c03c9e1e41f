//! How a key is shown to admins: metadata only, never a secret or a hash.

use serde::{Deserialize, Serialize};

use fleetgate_api::Timestamp;
use fleetgate_api::keys::{KeyRecord, KeyStatus};
use fleetgate_scopes::{Environment, RateLimit, ScopeSet, TenantId};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyView {
    pub key_id: String,
    pub tenant_id: TenantId,
    pub name: String,
    pub description: Option<String>,
    pub environment: Environment,
    /// The scopes granted at creation, named as `GET /me` names them.
    pub granted_scopes: ScopeSet,
    pub effective_scopes: ScopeSet,
    /// Deprecated: the same as `granted_scopes` (kept so existing scripts work).
    pub scopes: ScopeSet,
    /// `…` and the key's last four characters.
    pub hint: String,
    pub status: KeyStatus,
    pub created_at: Timestamp,
    pub expires_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
    pub revoke_reason: Option<String>,
    pub last_used_at: Option<Timestamp>,
    pub rotated_from: Option<String>,
    pub rotated_to: Option<String>,
    /// The networks the key may be used from; `null`: any.
    pub allowed_cidrs: Option<Vec<String>>,
    /// The rate limit that applies: the key's own, or the deployment's default.
    pub rate_limit: Option<RateLimit>,
    /// Whether `rate_limit` is set on the key or is the deployment's default (which
    /// follows the deployment: a new default applies to this key too).
    pub rate_limit_from: RateLimitFrom,
    /// Requests per UTC calendar month; `null`: no quota.
    pub monthly_quota: Option<u64>,
    /// This month's requests (in get_key, list_keys and update_key_restrictions).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RateLimitFrom {
    Key,
    Default,
}

/// Requests admitted in one UTC month.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// `2026-11`.
    pub month: String,
    pub requests: u64,
}

impl KeyView {
    pub fn of(record: KeyRecord, now: Timestamp) -> KeyView {
        KeyView {
            status: record.status(now),
            effective_scopes: record.scopes.effective(),
            hint: format!("…{}", record.hint),
            key_id: record.key_id,
            tenant_id: record.tenant_id,
            name: record.name,
            description: record.description,
            environment: record.environment,
            granted_scopes: record.scopes.clone(),
            scopes: record.scopes,
            created_at: record.created_at,
            expires_at: record.expires_at,
            revoked_at: record.revoked_at,
            revoke_reason: record.revoke_reason,
            last_used_at: record.last_used_at,
            rotated_from: record.rotated_from,
            rotated_to: record.rotated_to,
            allowed_cidrs: record.allowed_cidrs.map(|cidrs| cidrs.iter().map(ToString::to_string).collect()),
            rate_limit_from: if record.rate_limit.is_some() { RateLimitFrom::Key } else { RateLimitFrom::Default },
            rate_limit: record.rate_limit,
            monthly_quota: record.monthly_quota,
            usage: None,
        }
    }

    /// The view with the deployment's `default` where the key has no rate limit of its own.
    pub fn with_default_rate_limit(mut self, default: Option<RateLimit>) -> KeyView {
        self.rate_limit = self.rate_limit.or(default);
        self
    }

    pub fn with_usage(mut self, usage: Usage) -> KeyView {
        self.usage = Some(usage);
        self
    }
}
