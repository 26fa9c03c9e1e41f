//! `GET /me`: tells the caller which key it is using and what that key may do.

use http::StatusCode;
use lambda_http::{Body, Error, Request, Response};
use serde::Serialize;

use fleetgate_api::http::{Gate, json_response, serve};
use fleetgate_scopes::{AuthContext, routes};

/// What the function keeps across invocations.
pub struct State {
    pub gate: Gate,
}

impl State {
    /// No table access: everything comes from the authorizer context.
    pub async fn from_env() -> Result<State, Error> {
        Ok(State { gate: Gate::default() })
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
}

impl<'a> From<&'a AuthContext> for Me<'a> {
    fn from(auth: &'a AuthContext) -> Self {
        Me {
            key_id: &auth.key_id,
            name: &auth.key_name,
            tenant_id: auth.tenant_id.as_str(),
            environment: auth.environment.as_str(),
            granted_scopes: auth.granted.names(),
            effective_scopes: auth.effective.names(),
            expires_at: auth.expires_at.as_deref(),
            allowed_cidrs: auth.allowed_cidrs.as_ref().map(|cidrs| cidrs.iter().map(ToString::to_string).collect()),
        }
    }
}

#[tracing::instrument(name = "GET /me", skip_all)]
pub async fn handler(state: &State, req: Request) -> Result<Response<Body>, Error> {
    Ok(serve(&state.gate, &routes::WHOAMI, req, |call, _req| async move {
        json_response(StatusCode::OK, &Me::from(&call.auth))
    })
    .await)
}
