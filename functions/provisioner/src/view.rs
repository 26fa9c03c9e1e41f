//! How a key is shown to admins: metadata only, never a secret or a hash.

use serde::{Deserialize, Serialize};

use fleetgate_api::Timestamp;
use fleetgate_api::keys::{KeyRecord, KeyStatus};
use fleetgate_scopes::{Environment, ScopeSet, TenantId};

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
        }
    }
}
