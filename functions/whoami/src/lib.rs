//! `GET /me`: tells the caller which key it is using and what that key may do.

use http::StatusCode;
use lambda_http::{Body, Error, Request, Response};
use serde::Serialize;

use fleetgate_api::Timestamp;
use fleetgate_api::http::{Call, Gate, json_response, serve};
use fleetgate_api::usage::UtcMonth;
use fleetgate_scopes::{RateLimit, routes};

/// What the function keeps across invocations.
pub struct State {
    pub gate: Gate,
}

impl State {
    /// Everything comes from the authorizer context, and the usage from counting
    /// this very request (no read of its own).
    pub async fn from_env() -> Result<State, Error> {
        let client = fleetgate_api::dynamo::client();
        Ok(State { gate: Gate::from_env(&client, &routes::WHOAMI)? })
    }
}

/// The `GET /me` body.
#[derive(Debug, Serialize)]
struct Me<'a> {
    key_id: &'a str,
    name: &'a str,
    tenant_id: &'a str,
    environment: &'a str,
    granted_scopes: Vec<&'static str>,
    effective_scopes: Vec<&'static str>,
    expires_at: Option<&'a str>,
    /// The networks this key may be used from; `null`: any.
    allowed_cidrs: Option<Vec<String>>,
    /// The key's own rate limit, or the deployment's default.
    rate_limit: Option<RateLimit>,
    monthly_quota: Option<u64>,
    /// The cap on all of the tenant's keys together; `null`: none.
    tenant_rate_limit: Option<RateLimit>,
    usage: Usage,
}

/// This month's requests of the key, this one included.
#[derive(Debug, Serialize)]
struct Usage {
    /// `2026-11` (UTC).
    month: String,
    /// `null` when the usage table could not be reached (the request was not counted).
    requests: Option<u64>,
}

impl<'a> From<&'a Call> for Me<'a> {
    fn from(call: &'a Call) -> Self {
        let auth = &call.auth;
        Me {
            key_id: &auth.key_id,
            name: &auth.key_name,
            tenant_id: auth.tenant_id.as_str(),
            environment: auth.environment.as_str(),
            granted_scopes: auth.granted.names(),
            effective_scopes: auth.effective.names(),
            expires_at: auth.expires_at.as_deref(),
            allowed_cidrs: auth.allowed_cidrs.as_ref().map(|cidrs| cidrs.iter().map(ToString::to_string).collect()),
            rate_limit: auth.limits.rate_limit,
            monthly_quota: auth.limits.monthly_quota,
            tenant_rate_limit: auth.limits.tenant_rate_limit,
            usage: Usage { month: UtcMonth::of(Timestamp::now().unix_seconds()).label(), requests: call.month_used },
        }
    }
}

#[tracing::instrument(name = "GET /me", skip_all)]
pub async fn handler(state: &State, req: Request) -> Result<Response<Body>, Error> {
    Ok(serve(
        &state.gate,
        &routes::WHOAMI,
        req,
        |call, _req| async move { json_response(StatusCode::OK, &Me::from(&call)) },
    )
    .await)
}
