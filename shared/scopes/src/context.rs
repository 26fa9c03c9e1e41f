//! Who is calling: the authenticated key as the authorizer hands it to endpoint functions.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::{Cidr, RateLimit, Route, Scope, ScopeSet};

/// The deployment a key belongs to; it is part of the key's prefix.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Environment {
    Live,
    Test,
}

impl Environment {
    pub const fn as_str(self) -> &'static str {
        match self {
            Environment::Live => "live",
            Environment::Test => "test",
        }
    }
}

impl fmt::Display for Environment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Environment {
    type Err = InvalidEnvironment;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "live" => Ok(Environment::Live),
            "test" => Ok(Environment::Test),
            _ => Err(InvalidEnvironment),
        }
    }
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("environment must be 'live' or 'test'")]
pub struct InvalidEnvironment;

/// A fleet account's id: 1–64 of `a-z 0-9 - _`, starting with a letter or digit.
/// It starts every fleet item's key, so its shape is checked at the edge.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TenantId(String);

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("tenant_id must be 1-64 characters of a-z, 0-9, '-' and '_', starting with a letter or digit")]
pub struct InvalidTenantId;

impl TenantId {
    pub fn parse(s: &str) -> Result<TenantId, InvalidTenantId> {
        let well_formed = (1..=64).contains(&s.len())
            && s.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
            && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
        if well_formed { Ok(TenantId(s.to_owned())) } else { Err(InvalidTenantId) }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for TenantId {
    type Error = InvalidTenantId;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        TenantId::parse(&s)
    }
}

impl From<TenantId> for String {
    fn from(id: TenantId) -> String {
        id.0
    }
}

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The authenticated caller, as resolved by the authorizer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthContext {
    pub tenant_id: TenantId,
    pub key_id: String,
    pub key_name: String,
    pub granted: ScopeSet,
    pub effective: ScopeSet,
    pub environment: Environment,
    /// RFC 3339, when the key stops working; `None` for keys without expiry.
    pub expires_at: Option<String>,
    /// The networks the key may be used from; `None`: any.
    pub allowed_cidrs: Option<Vec<Cidr>>,
    /// What the key may spend, counted on each request by the endpoint functions.
    pub limits: Limits,
}

/// A key's counted restrictions, as the authorizer resolved them: its own rate
/// limit or the deployment's default, its monthly quota, and its tenant's cap.
/// `None` counts nothing (a context cached before the field existed).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Limits {
    pub rate_limit: Option<RateLimit>,
    /// Requests per UTC calendar month.
    pub monthly_quota: Option<u64>,
    /// All of the tenant's keys together.
    pub tenant_rate_limit: Option<RateLimit>,
}

/// Names of the authorizer context fields (API Gateway passes them as strings).
pub mod field {
    pub const TENANT_ID: &str = "tenant_id";
    pub const KEY_ID: &str = "key_id";
    pub const KEY_NAME: &str = "key_name";
    /// Space-separated granted scopes.
    pub const SCOPES: &str = "scopes";
    pub const ENVIRONMENT: &str = "environment";
    /// RFC 3339 or the empty string.
    pub const EXPIRES_AT: &str = "expires_at";
    /// Space-separated CIDRs; absent or empty: any network. It travels in the
    /// context because API Gateway's cached answer serves every caller of the key,
    /// so the network is checked where the request's own address is known.
    pub const ALLOWED_CIDRS: &str = "allowed_cidrs";
    /// `100/second` or `100/second/200` (with a burst); absent or empty: none.
    pub const RATE_LIMIT: &str = "rate_limit";
    /// Decimal requests per month; absent or empty: none.
    pub const MONTHLY_QUOTA: &str = "monthly_quota";
    /// Like `rate_limit`, for the tenant's cap.
    pub const TENANT_RATE_LIMIT: &str = "tenant_rate_limit";
}

/// The authorizer context was absent or not as the authorizer writes it.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[error("authorizer context field '{0}' is missing or malformed")]
pub struct MalformedContext(pub &'static str);

impl AuthContext {
    /// Builds the context of a key from its granted scopes; effective scopes are derived.
    pub fn new(
        tenant_id: TenantId,
        key_id: String,
        key_name: String,
        granted: ScopeSet,
        environment: Environment,
        expires_at: Option<String>,
    ) -> AuthContext {
        let effective = granted.effective();
        AuthContext {
            tenant_id,
            key_id,
            key_name,
            granted,
            effective,
            environment,
            expires_at,
            allowed_cidrs: None,
            limits: Limits::default(),
        }
    }

    /// The same context with these counted restrictions.
    pub fn with_limits(mut self, limits: Limits) -> AuthContext {
        self.limits = limits;
        self
    }

    /// The same context, usable only from `allowed` (`None`: anywhere).
    pub fn with_allowed_cidrs(mut self, allowed: Option<Vec<Cidr>>) -> AuthContext {
        self.allowed_cidrs = allowed.filter(|cidrs| !cidrs.is_empty());
        self
    }

    /// Whether a request from `source_ip` (API Gateway's `identity.sourceIp`) may use this key.
    pub fn allows_source(&self, source_ip: &str) -> bool {
        self.allowed_cidrs.as_deref().is_none_or(|allowed| crate::cidr::allows(allowed, source_ip))
    }

    /// The fields the authorizer returns as its context, all strings.
    pub fn to_authorizer_context(&self) -> Vec<(&'static str, String)> {
        vec![
            (field::TENANT_ID, self.tenant_id.to_string()),
            (field::KEY_ID, self.key_id.clone()),
            (field::KEY_NAME, self.key_name.clone()),
            (field::SCOPES, self.granted.to_space_separated()),
            (field::ENVIRONMENT, self.environment.to_string()),
            (field::EXPIRES_AT, self.expires_at.clone().unwrap_or_default()),
            (
                field::ALLOWED_CIDRS,
                self.allowed_cidrs
                    .as_deref()
                    .map(|cidrs| cidrs.iter().map(Cidr::to_string).collect::<Vec<_>>().join(" "))
                    .unwrap_or_default(),
            ),
            (field::RATE_LIMIT, self.limits.rate_limit.map(|l| l.to_string()).unwrap_or_default()),
            (field::MONTHLY_QUOTA, self.limits.monthly_quota.map(|q| q.to_string()).unwrap_or_default()),
            (field::TENANT_RATE_LIMIT, self.limits.tenant_rate_limit.map(|l| l.to_string()).unwrap_or_default()),
        ]
    }

    /// Reads the context back from the fields an endpoint receives.
    pub fn from_authorizer_context<'a>(get: impl Fn(&str) -> Option<&'a str>) -> Result<AuthContext, MalformedContext> {
        let required = |name: &'static str| get(name).filter(|v| !v.is_empty()).ok_or(MalformedContext(name));
        let tenant_id = TenantId::parse(required(field::TENANT_ID)?).map_err(|_| MalformedContext(field::TENANT_ID))?;
        let granted =
            ScopeSet::parse_space_separated(required(field::SCOPES)?).map_err(|_| MalformedContext(field::SCOPES))?;
        let environment = required(field::ENVIRONMENT)?.parse().map_err(|_| MalformedContext(field::ENVIRONMENT))?;
        let expires_at = get(field::EXPIRES_AT).filter(|v| !v.is_empty()).map(str::to_owned);
        let allowed_cidrs = get(field::ALLOWED_CIDRS)
            .filter(|v| !v.trim().is_empty())
            .map(|v| v.split_whitespace().map(Cidr::parse).collect::<Result<Vec<_>, _>>())
            .transpose()
            .map_err(|_| MalformedContext(field::ALLOWED_CIDRS))?;
        let optional = |name: &'static str| get(name).map(str::trim).filter(|v| !v.is_empty());
        let rate_limit = |name: &'static str| {
            optional(name).map(|v| v.parse::<RateLimit>().map_err(|_| MalformedContext(name))).transpose()
        };
        let limits = Limits {
            rate_limit: rate_limit(field::RATE_LIMIT)?,
            monthly_quota: optional(field::MONTHLY_QUOTA)
                .map(|v| v.parse::<u64>().map_err(|_| MalformedContext(field::MONTHLY_QUOTA)))
                .transpose()?,
            tenant_rate_limit: rate_limit(field::TENANT_RATE_LIMIT)?,
        };
        Ok(AuthContext::new(
            tenant_id,
            required(field::KEY_ID)?.to_owned(),
            required(field::KEY_NAME)?.to_owned(),
            granted,
            environment,
            expires_at,
        )
        .with_allowed_cidrs(allowed_cidrs)
        .with_limits(limits))
    }

    /// Checks that this key may call `route`.
    pub fn require(&self, route: &Route) -> Result<(), InsufficientScope> {
        match route.required_scope {
            Some(scope) if !self.effective.contains(scope) => Err(InsufficientScope {
                required: scope,
                route: route.describe(),
                granted: self.granted.clone(),
                effective: self.effective.clone(),
            }),
            _ => Ok(()),
        }
    }
}

/// A valid key lacks the scope a route requires (HTTP 403).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("This key lacks {required}, which {route} requires.")]
pub struct InsufficientScope {
    pub required: Scope,
    /// `METHOD /path`.
    pub route: String,
    pub granted: ScopeSet,
    pub effective: ScopeSet,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routes;
    use std::collections::HashMap;

    fn context(scopes: &[&str]) -> AuthContext {
        AuthContext::new(
            TenantId::parse("demo").unwrap(),
            "key_abc".into(),
            "tms-sync".into(),
            ScopeSet::parse_granted(scopes).unwrap(),
            Environment::Test,
            None,
        )
    }

    #[test]
    fn context_round_trips_through_authorizer_fields() {
        let ctx = context(&["vehicles:write", "inspections:read"]);
        let fields: HashMap<_, _> = ctx.to_authorizer_context().into_iter().collect();
        assert_eq!(fields[field::SCOPES], "vehicles:write inspections:read");
        let back = AuthContext::from_authorizer_context(|k| fields.get(k).map(String::as_str)).unwrap();
        assert_eq!(back, ctx);
        assert_eq!(back.effective.names(), ["vehicles:read", "vehicles:write", "inspections:read"]);
    }

    #[test]
    fn allowed_networks_round_trip_and_decide_the_source() {
        let pinned = context(&["vehicles:read"]).with_allowed_cidrs(Some(vec![
            Cidr::parse("203.0.113.0/24").unwrap(),
            Cidr::parse("2001:db8::/32").unwrap(),
        ]));
        let fields: HashMap<_, _> = pinned.to_authorizer_context().into_iter().collect();
        assert_eq!(fields[field::ALLOWED_CIDRS], "203.0.113.0/24 2001:db8::/32");
        let back = AuthContext::from_authorizer_context(|k| fields.get(k).map(String::as_str)).unwrap();
        assert_eq!(back, pinned);
        assert!(back.allows_source("203.0.113.7") && back.allows_source("::ffff:203.0.113.7"));
        assert!(!back.allows_source("127.0.0.1") && !back.allows_source(""));
        // Without the field (a context cached before it existed) or empty: any network.
        let open = context(&["vehicles:read"]);
        assert!(open.allows_source("127.0.0.1"));
        let mut no_field: HashMap<_, _> = open.to_authorizer_context().into_iter().collect();
        no_field.remove(field::ALLOWED_CIDRS);
        assert!(
            AuthContext::from_authorizer_context(|k| no_field.get(k).map(String::as_str))
                .unwrap()
                .allows_source("1.2.3.4")
        );
    }

    #[test]
    fn limits_round_trip_and_absent_ones_count_nothing() {
        let limited = context(&["vehicles:read"]).with_limits(Limits {
            rate_limit: Some("10/second/50".parse().unwrap()),
            monthly_quota: Some(100_000),
            tenant_rate_limit: Some("600/minute".parse().unwrap()),
        });
        let fields: HashMap<_, _> = limited.to_authorizer_context().into_iter().collect();
        assert_eq!(
            (&*fields[field::RATE_LIMIT], &*fields[field::MONTHLY_QUOTA], &*fields[field::TENANT_RATE_LIMIT]),
            ("10/second/50", "100000", "600/minute")
        );
        assert_eq!(AuthContext::from_authorizer_context(|k| fields.get(k).map(String::as_str)).unwrap(), limited);
        let mut old: HashMap<_, _> = limited.to_authorizer_context().into_iter().collect();
        for name in [field::RATE_LIMIT, field::MONTHLY_QUOTA, field::TENANT_RATE_LIMIT] {
            old.remove(name);
        }
        let back = AuthContext::from_authorizer_context(|k| old.get(k).map(String::as_str)).unwrap();
        assert_eq!(back.limits, Limits::default());
    }

    #[test]
    fn missing_or_malformed_fields_are_refused() {
        let ctx = context(&["vehicles:read"]);
        for (broken, value) in [
            (field::TENANT_ID, ""),
            (field::TENANT_ID, "Demo/../x"),
            (field::SCOPES, "admin:all"),
            (field::ENVIRONMENT, "prod"),
            (field::KEY_ID, ""),
            (field::ALLOWED_CIDRS, "10.0.0.0/33"),
            (field::RATE_LIMIT, "0/second"),
            (field::MONTHLY_QUOTA, "-1"),
            (field::TENANT_RATE_LIMIT, "5/hour"),
        ] {
            let mut fields: HashMap<_, _> = ctx.to_authorizer_context().into_iter().collect();
            fields.insert(broken, value.to_owned());
            let got = AuthContext::from_authorizer_context(|k| fields.get(k).map(String::as_str));
            assert_eq!(got, Err(MalformedContext(broken)), "{broken}={value}");
        }
    }

    #[test]
    fn write_key_passes_read_route_and_read_key_fails_write_route() {
        assert_eq!(context(&["vehicles:write"]).require(&routes::LIST_VEHICLES), Ok(()));
        let err = context(&["vehicles:read"]).require(&routes::CREATE_VEHICLE).unwrap_err();
        assert_eq!(err.required, Scope::VehiclesWrite);
        assert_eq!(err.to_string(), "This key lacks vehicles:write, which POST /vehicles requires.");
        assert_eq!(err.granted.names(), ["vehicles:read"]);
    }

    #[test]
    fn any_valid_key_may_call_me() {
        assert_eq!(context(&["inspections:read"]).require(&routes::WHOAMI), Ok(()));
    }

    #[test]
    fn tenant_ids_are_checked() {
        for good in ["demo", "acme-fleet", "t1", "a_b"] {
            assert!(TenantId::parse(good).is_ok(), "{good}");
        }
        for bad in ["", "-x", "Demo", "a b", "a/b", "a#b", &"a".repeat(65)] {
            assert_eq!(TenantId::parse(bad), Err(InvalidTenantId), "{bad}");
        }
    }
}
