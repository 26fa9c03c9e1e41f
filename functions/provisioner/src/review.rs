//! `review_keys`: the scope documentation's "review and revoke unused API keys
//! regularly" made concrete (like IAM's last-accessed data, for API keys). For
//! each working key of a tenant: never used, unused for `unused_days`, expiring
//! within 14 days, in a rotation's grace; and the granted scopes it has not used
//! in `unused_days`, with the narrowest scope set (and preset, when one matches)
//! that would have served what it did use. Reads only: nothing is changed or
//! audited here (revoking is `revoke_key`'s, which the CLI calls on request).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use time::Duration;

use fleetgate_api::Timestamp;
use fleetgate_api::keys::{KeyRecord, KeyStatus};
use fleetgate_api::scope_use::ScopeUse;
use fleetgate_scopes::{Preset, Scope, ScopeSet};

use crate::{Ctx, ProvisionError, State};

/// Without `unused_days`: a month, the scope page's "regularly".
pub const DEFAULT_UNUSED_DAYS: i64 = 30;
/// A key that expires within this many days is flagged (time to plan its successor).
pub const EXPIRING_WITHIN_DAYS: i64 = 14;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReviewKeys {
    tenant_id: String,
    unused_days: Option<i64>,
}

/// What the review says of one key.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct KeyReview {
    pub key_id: String,
    pub name: String,
    pub granted_scopes: ScopeSet,
    pub created_at: Timestamp,
    pub last_used_at: Option<Timestamp>,
    pub expires_at: Option<Timestamp>,
    /// `never_used`, `unused` (not for `unused_days`), `expiring_soon`, `rotation_grace`.
    pub findings: Vec<&'static str>,
    /// When each scope was last used (hour granularity), as far as recorded.
    pub scopes_last_used: BTreeMap<&'static str, Timestamp>,
    /// Granted scopes not used within `unused_days`.
    pub unused_scopes: Vec<&'static str>,
    /// The narrowest grant that would have served the window's uses, when narrower
    /// than what the key has; `None` when nothing was used (revoke instead) or
    /// nothing can go.
    pub suggested_scopes: Option<ScopeSet>,
    /// The preset with exactly that effect, if there is one.
    pub suggested_preset: Option<&'static str>,
}

/// Reviews `key` (working: neither revoked nor expired) at `now`, with `used`
/// its recorded scope uses.
pub fn review(key: &KeyRecord, used: Option<&ScopeUse>, now: Timestamp, unused_days: i64) -> KeyReview {
    let since = now.minus(Duration::days(unused_days));
    let mut findings = Vec::new();
    match key.last_used_at {
        None => findings.push("never_used"),
        Some(at) if at < since => findings.push("unused"),
        Some(_) => {}
    }
    if key.rotated_to.is_some() {
        findings.push("rotation_grace");
    } else if key.expires_at.is_some_and(|at| at <= now.plus(Duration::days(EXPIRING_WITHIN_DAYS))) {
        findings.push("expiring_soon");
    }
    let recent: ScopeSet =
        used.into_iter().flatten().filter(|(_, at)| **at >= since).map(|(scope, _)| *scope).collect();
    let unused_scopes: Vec<&'static str> =
        key.scopes.iter().filter(|scope| !recent.contains(*scope)).map(Scope::as_str).collect();
    // What was used, without what another used scope implies (`X:write` covers `X:read`).
    let narrowest: ScopeSet =
        recent.iter().filter(|scope| !recent.iter().any(|other| other.implies() == Some(*scope))).collect();
    let narrower = !narrowest.is_empty() && narrowest.effective() != key.scopes.effective();
    let suggested_scopes = narrower.then_some(narrowest);
    let suggested_preset = suggested_scopes.as_ref().and_then(|scopes| {
        Preset::ALL.into_iter().find(|preset| preset.scopes().effective() == scopes.effective()).map(Preset::as_str)
    });
    KeyReview {
        key_id: key.key_id.clone(),
        name: key.name.clone(),
        granted_scopes: key.scopes.clone(),
        created_at: key.created_at,
        last_used_at: key.last_used_at,
        expires_at: key.expires_at,
        findings,
        scopes_last_used: used.into_iter().flatten().map(|(scope, at)| (scope.as_str(), *at)).collect(),
        unused_scopes,
        suggested_scopes,
        suggested_preset,
    }
}

/// Every working key of the tenant, reviewed, newest first (as `list_keys` orders them).
pub async fn review_keys(state: &State, input: ReviewKeys, _ctx: &Ctx) -> Result<Value, ProvisionError> {
    let unused_days = match input.unused_days {
        None => DEFAULT_UNUSED_DAYS,
        Some(days) if (1..=365).contains(&days) => days,
        Some(_) => return Err(ProvisionError::field("unused_days", "must be 1 to 365")),
    };
    let tenant = crate::tenants::existing_tenant(state, &input.tenant_id).await?;
    let now = Timestamp::now();
    let mut keys: Vec<KeyRecord> = Vec::new();
    let mut after: Option<KeyRecord> = None;
    loop {
        let (page, more) = state.keys.list_newest_first(&tenant.tenant_id, after.as_ref(), 100).await?;
        after = page.last().cloned();
        keys.extend(page.into_iter().filter(|key| key.status(now) == KeyStatus::Active));
        if !more || after.is_none() {
            break;
        }
    }
    let ids: Vec<&str> = keys.iter().map(|key| key.key_id.as_str()).collect();
    let used = state.usage.keys_scope_use(&ids).await?;
    let reviews: Vec<KeyReview> = keys.iter().map(|key| review(key, used.get(&key.key_id), now, unused_days)).collect();
    let count = |finding: &str| reviews.iter().filter(|r| r.findings.contains(&finding)).count();
    Ok(json!({
        "tenant_id": tenant.tenant_id,
        "as_of": now,
        "unused_days": unused_days,
        "expiring_within_days": EXPIRING_WITHIN_DAYS,
        "summary": {
            "keys": reviews.len(),
            "never_used": count("never_used"),
            "unused": count("unused"),
            "expiring_soon": count("expiring_soon"),
            "rotation_grace": count("rotation_grace"),
            "with_unused_scopes": reviews.iter().filter(|r| !r.unused_scopes.is_empty()).count(),
        },
        "keys": reviews,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> Timestamp {
        Timestamp::parse(text).unwrap()
    }

    fn key(scopes: &[&str], last_used: Option<&str>) -> KeyRecord {
        serde_json::from_value(json!({
            "key_hash": "h", "key_id": "key_1", "tenant_id": "acme", "name": "k", "environment": "test",
            "scopes": scopes, "hint": "abcd", "created_at": "2026-01-01T00:00:00Z", "last_used_at": last_used,
        }))
        .unwrap()
    }

    fn used(pairs: &[(Scope, &str)]) -> ScopeUse {
        pairs.iter().map(|(scope, when)| (*scope, at(when))).collect()
    }

    const NOW: &str = "2026-12-07T12:00:00Z";

    #[test]
    fn a_full_fleet_key_that_only_reads_vehicles_and_submits_inspections_is_told_its_narrower_preset() {
        let key = key(&["vehicles:write", "inspections:write"], Some("2026-12-07T10:00:00Z"));
        let uses =
            used(&[(Scope::VehiclesRead, "2026-12-07T10:00:00Z"), (Scope::InspectionsWrite, "2026-12-01T00:00:00Z")]);
        let review = review(&key, Some(&uses), at(NOW), 30);
        assert_eq!(review.findings, Vec::<&str>::new());
        assert_eq!(review.unused_scopes, ["vehicles:write"]);
        assert_eq!(review.suggested_scopes.unwrap().names(), ["vehicles:read", "inspections:write"]);
        assert_eq!(review.suggested_preset, Some("inspection-submission"));
    }

    #[test]
    fn a_use_older_than_the_window_does_not_count_and_a_write_covers_its_read() {
        let key = key(&["vehicles:write", "inspections:read"], Some("2026-12-07T10:00:00Z"));
        let uses = used(&[
            (Scope::VehiclesWrite, "2026-12-06T00:00:00Z"),
            (Scope::VehiclesRead, "2026-12-06T00:00:00Z"),
            (Scope::InspectionsRead, "2026-10-01T00:00:00Z"),
        ]);
        let review = review(&key, Some(&uses), at(NOW), 30);
        assert_eq!(review.unused_scopes, ["inspections:read"]);
        assert_eq!(review.suggested_scopes.unwrap().names(), ["vehicles:write"]);
        assert_eq!(review.suggested_preset, None, "no preset is exactly vehicles:write");
        assert_eq!(review.scopes_last_used.len(), 3, "every recorded use is shown, old ones too");
    }

    #[test]
    fn keys_never_used_unused_expiring_or_in_grace_are_flagged() {
        let now = at(NOW);
        let never = review(&key(&["vehicles:read"], None), None, now, 30);
        assert_eq!((never.findings.clone(), never.suggested_scopes.clone()), (vec!["never_used"], None));
        assert_eq!(never.unused_scopes, ["vehicles:read"]);
        let idle = review(&key(&["vehicles:read"], Some("2026-10-01T00:00:00Z")), None, now, 30);
        assert_eq!(idle.findings, ["unused"]);
        assert_eq!(
            review(&key(&["vehicles:read"], Some("2026-10-01T00:00:00Z")), None, now, 90).findings,
            Vec::<&str>::new()
        );
        let mut expiring = key(&["vehicles:read"], Some(NOW));
        expiring.expires_at = Some(at("2026-12-20T00:00:00Z"));
        assert_eq!(review(&expiring, None, now, 30).findings, ["expiring_soon"]);
        expiring.expires_at = Some(at("2026-12-22T12:00:01Z"));
        assert_eq!(review(&expiring, None, now, 30).findings, Vec::<&str>::new(), "15 days out");
        let mut rotated = key(&["vehicles:read"], Some(NOW));
        rotated.expires_at = Some(at("2026-12-08T00:00:00Z"));
        rotated.rotated_to = Some("key_2".into());
        assert_eq!(review(&rotated, None, now, 30).findings, ["rotation_grace"]);
    }

    #[test]
    fn a_key_that_uses_everything_it_has_gets_no_suggestion() {
        let key = key(&["vehicles:read", "inspections:read"], Some(NOW));
        let uses = used(&[(Scope::VehiclesRead, NOW), (Scope::InspectionsRead, NOW)]);
        let review = review(&key, Some(&uses), at(NOW), 30);
        assert!(review.unused_scopes.is_empty() && review.suggested_scopes.is_none(), "{review:?}");
    }
}
