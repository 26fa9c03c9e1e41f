//! The admin provisioning function, invoked directly (never routed): IAM on
//! `lambda:InvokeFunction` is the admin gate. The event is
//! `{"action": "...", ...}`; invalid input fails the invocation with a clear
//! `errorType` and message, and writes nothing.

mod actions;
mod admin;
mod cache;
mod error;
mod view;

use lambda_runtime::{Error, LambdaEvent};
use serde::de::DeserializeOwned;
use serde_json::Value;

use fleetgate_api::ApiError;
use fleetgate_api::audit::AuditLog;
use fleetgate_api::cursor_keys::CursorKeys;
use fleetgate_api::dynamo::deployment_environment;
use fleetgate_api::keys::KeyStore;
use fleetgate_api::list::{CursorSigner, MAX_LIMIT, Position};
use fleetgate_fleet::templates::TemplateStore;
use fleetgate_scopes::Environment;

pub use cache::AuthorizerCache;
pub use error::ProvisionError;
pub use view::KeyView;

/// Every action the provisioner understands.
pub const ACTIONS: [&str; 7] =
    ["create_key", "list_keys", "get_key", "revoke_key", "rotate_key", "put_inspection_template", "list_audit"];

/// What the function keeps across invocations.
pub struct State {
    pub keys: KeyStore,
    pub audit: AuditLog,
    pub templates: TemplateStore,
    /// Signs `list_keys` and `list_audit` cursors.
    pub cursors: CursorKeys,
    /// The environment this deployment issues keys for (and its authorizer accepts).
    pub environment: Environment,
    /// Flushed after a revocation or rotation; `None` where there is no API Gateway (locally).
    pub authorizer_cache: Option<AuthorizerCache>,
}

impl State {
    pub async fn from_env() -> Result<State, Error> {
        let environment = deployment_environment()?;
        let client = fleetgate_api::dynamo::client();
        Ok(State {
            keys: KeyStore::from_env(client.clone())?,
            audit: AuditLog::from_env(client.clone())?,
            templates: TemplateStore::from_env(client)?,
            cursors: CursorKeys::from_env()?,
            environment,
            authorizer_cache: AuthorizerCache::from_env(),
        })
    }
}

/// A list action's `limit`: `default` when absent, else 1 to 100.
fn page_limit(limit: Option<i32>, default: i32) -> Result<i32, ProvisionError> {
    let limit = limit.unwrap_or(default);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ProvisionError::field("limit", format!("must be 1 to {MAX_LIMIT}")));
    }
    Ok(limit)
}

/// Where a list action resumes: the position in `cursor`, if it was made for `query`.
async fn page_start(
    state: &State,
    query: &str,
    cursor: Option<&str>,
    list: &str,
) -> Result<Option<Position>, ProvisionError> {
    let Some(cursor) = cursor else { return Ok(None) };
    match state.cursors.decode(query, cursor).await {
        Ok(position) => Ok(Some(position)),
        Err(err) if err.code() == "invalid_cursor" => {
            Err(ProvisionError::field("cursor", format!("not a cursor of this tenant's {list} with these filters")))
        }
        Err(err) => Err(cursor_key_error(err)),
    }
}

/// The signer for the next page's cursor (the secret is read on first use).
async fn cursor_signer(state: &State) -> Result<CursorSigner, ProvisionError> {
    state.cursors.signer().await.map_err(cursor_key_error)
}

/// The cursor secret could not be read: as transient as DynamoDB being away.
fn cursor_key_error(err: ApiError) -> ProvisionError {
    match err {
        ApiError::ServiceUnavailable(err) => ProvisionError::Unavailable(err),
        other => ProvisionError::Internal(fleetgate_api::dynamo::DbError::Failed(Box::new(other))),
    }
}

#[tracing::instrument(name = "provisioner", skip_all, fields(request_id = %event.context.request_id))]
pub async fn handler(state: &State, event: LambdaEvent<Value>) -> Result<Value, ProvisionError> {
    let request_id = event.context.request_id;
    let Value::Object(mut args) = event.payload else {
        return Err(ProvisionError::InvalidRequest("the event must be a JSON object with an \"action\" field".into()));
    };
    let action = match args.remove("action") {
        Some(Value::String(action)) => action,
        _ => {
            let valid = ACTIONS.join(", ");
            return Err(ProvisionError::InvalidRequest(format!("\"action\" is required; valid actions are: {valid}")));
        }
    };
    let args = Value::Object(args);
    let result = match action.as_str() {
        "create_key" => actions::create_key(state, parse(args)?, &request_id).await,
        "list_keys" => actions::list_keys(state, parse(args)?, &request_id).await,
        "get_key" => actions::get_key(state, parse(args)?, &request_id).await,
        "revoke_key" => actions::revoke_key(state, parse(args)?, &request_id).await,
        "rotate_key" => actions::rotate_key(state, parse(args)?, &request_id).await,
        "put_inspection_template" => admin::put_inspection_template(state, parse(args)?, &request_id).await,
        "list_audit" => admin::list_audit(state, parse(args)?, &request_id).await,
        other => Err(ProvisionError::UnknownAction(other.chars().take(64).collect())),
    };
    match &result {
        Ok(_) => tracing::info!(action = %action, "provisioning action done"),
        Err(err) if matches!(err, ProvisionError::Internal(_) | ProvisionError::Unavailable(_)) => {
            tracing::error!(action = %action, code = err.code(), error = ?err, "provisioning action failed")
        }
        Err(err) => {
            tracing::info!(action = %action, code = err.code(), "provisioning action refused")
        }
    }
    result
}

fn parse<T: DeserializeOwned>(args: Value) -> Result<T, ProvisionError> {
    serde_json::from_value(args).map_err(|e| ProvisionError::InvalidRequest(e.to_string()))
}
