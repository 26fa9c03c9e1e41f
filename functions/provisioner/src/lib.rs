//! The admin provisioning function, invoked directly (never routed): IAM on
//! `lambda:InvokeFunction` is the admin gate. The event is
//! `{"action": "...", ...}`; invalid input fails the invocation with a clear
//! `errorType` and message, and writes nothing.

mod actions;
mod admin;
mod cache;
mod error;
pub mod payload;
mod review;
mod tenants;
mod view;

use lambda_runtime::{Error, LambdaEvent};
use serde::de::DeserializeOwned;
use serde_json::Value;

use fleetgate_api::ApiError;
use fleetgate_api::Timestamp;
use fleetgate_api::audit::{AuditLog, AuditRecord};
use fleetgate_api::cursor_keys::CursorKeys;
use fleetgate_api::dynamo::deployment_environment;
use fleetgate_api::keys::{KeyRecord, KeyResolver, KeyStore};
use fleetgate_api::list::{CursorSigner, MAX_LIMIT, Position};
use fleetgate_api::usage::{UsageCounter, UtcMonth};
use fleetgate_fleet::templates::TemplateStore;
use fleetgate_fleet::tenants::TenantStore;
use fleetgate_scopes::{Environment, RateLimit, TenantId};

pub use cache::AuthorizerCache;
pub use error::{ERROR_TYPES, ProvisionError};
pub use view::{KeyView, RateLimitFrom, Usage};

/// Every action the provisioner understands.
pub const ACTIONS: [&str; 14] = [
    "create_tenant",
    "get_tenant",
    "list_tenants",
    "create_key",
    "list_keys",
    "get_key",
    "revoke_key",
    "rotate_key",
    "update_key_restrictions",
    "review_keys",
    "put_tenant_limits",
    "put_inspection_template",
    "list_inspection_templates",
    "list_audit",
];

/// The longest `requested_by` kept.
const MAX_REQUESTED_BY_CHARS: usize = 200;

/// What every action knows about its invocation.
#[derive(Clone, Debug)]
pub(crate) struct Ctx {
    pub request_id: String,
    /// Who the admin says they are: recorded, never verified (CloudTrail has the real caller).
    pub requested_by: Option<String>,
}

impl Ctx {
    /// The audit record of `action` on `tenant_id` with `details`.
    pub fn audit(
        &self,
        state: &State,
        tenant_id: &TenantId,
        action: &str,
        resource_id: Option<&str>,
        outcome: &str,
        details: Value,
    ) -> AuditRecord {
        AuditRecord::new(
            tenant_id.clone(),
            None,
            action,
            resource_id.map(str::to_owned),
            outcome,
            &self.request_id,
            state.audit.retention_days(),
        )
        .with_details(details, self.requested_by.as_deref())
    }
}

/// What the function keeps across invocations.
pub struct State {
    pub keys: KeyStore,
    pub audit: AuditLog,
    pub templates: TemplateStore,
    pub tenants: TenantStore,
    /// Signs `list_keys` and `list_audit` cursors.
    pub cursors: CursorKeys,
    /// The environment this deployment issues keys for (and its authorizer accepts).
    pub environment: Environment,
    /// Flushed after a revocation or rotation; `None` where there is no API Gateway (locally).
    pub authorizer_cache: Option<AuthorizerCache>,
    /// This month's usage of keys and tenants (read only).
    pub usage: UsageCounter,
    pub rate_limits: RateLimitSettings,
}

/// The deployment's rate-limit settings (template parameters `DefaultRateLimit`,
/// `RateLimitCeiling`).
#[derive(Clone, Copy, Debug, Default)]
pub struct RateLimitSettings {
    /// What a key without a rate limit of its own gets (shown in its view).
    pub default: Option<RateLimit>,
    /// The highest average rate a key or tenant cap may be given; `None`: no ceiling.
    pub ceiling: Option<RateLimit>,
}

impl RateLimitSettings {
    pub fn from_env() -> Result<RateLimitSettings, Error> {
        let ceiling = fleetgate_api::dynamo::optional_var("RATE_LIMIT_CEILING")
            .map(|text| text.parse::<RateLimit>().map_err(|e| format!("RATE_LIMIT_CEILING: {e}")))
            .transpose()?;
        Ok(RateLimitSettings { default: KeyResolver::default_rate_limit_from_env()?, ceiling })
    }
}

impl State {
    /// How admins see `record`: with the default rate limit where it has none.
    pub(crate) fn view(&self, record: KeyRecord, now: Timestamp) -> KeyView {
        KeyView::of(record, now).with_default_rate_limit(self.rate_limits.default)
    }

    /// `views` with this month's usage of each.
    pub(crate) async fn with_usage(&self, views: Vec<KeyView>, now: Timestamp) -> Result<Vec<KeyView>, ProvisionError> {
        let ids: Vec<&str> = views.iter().map(|view| view.key_id.as_str()).collect();
        let used = self.usage.keys_month_usage(&ids, now.unix_seconds()).await?;
        let month = UtcMonth::of(now.unix_seconds()).label();
        Ok(views
            .into_iter()
            .map(|view| {
                let requests = used.get(&view.key_id).copied().unwrap_or(0);
                view.with_usage(Usage { month: month.clone(), requests })
            })
            .collect())
    }
}

impl State {
    pub async fn from_env() -> Result<State, Error> {
        let environment = deployment_environment()?;
        let client = fleetgate_api::dynamo::client();
        Ok(State {
            keys: KeyStore::from_env(client.clone())?,
            audit: AuditLog::from_env(client.clone())?,
            templates: TemplateStore::from_env(client.clone())?,
            tenants: TenantStore::from_env(client.clone())?,
            cursors: CursorKeys::from_env()?,
            environment,
            authorizer_cache: AuthorizerCache::from_env(),
            usage: UsageCounter::from_env(client)?,
            rate_limits: RateLimitSettings::from_env()?,
        })
    }
}

/// A list action's `limit`: 25 when absent (as the HTTP lists), else 1 to 100.
fn page_limit(limit: Option<i32>) -> Result<i32, ProvisionError> {
    let limit = limit.unwrap_or(fleetgate_api::list::DEFAULT_LIMIT);
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

/// A list answer in the API's shape, `{"data": [...], "next_cursor": ...}`; `also_as`
/// repeats `data` under a list's old name (`keys`, `records`) while it is deprecated.
fn list_answer<T: serde::Serialize>(data: &[T], next_cursor: Option<String>, also_as: Option<&str>) -> Value {
    let mut answer = serde_json::json!({ "data": data, "next_cursor": next_cursor });
    if let Some(old_name) = also_as {
        answer[old_name] = answer["data"].clone();
    }
    answer
}

/// The cursor secret could not be read: as transient as DynamoDB being away.
fn cursor_key_error(err: ApiError) -> ProvisionError {
    match err {
        ApiError::ServiceUnavailable(err) => ProvisionError::Unavailable(err),
        other => ProvisionError::Internal(fleetgate_api::dynamo::DbError::Failed(Box::new(other))),
    }
}

/// Performs one admin action and counts it (`ProvisionerActions` by action and outcome).
pub async fn handler(state: &State, event: LambdaEvent<Value>) -> Result<Value, ProvisionError> {
    // A dimension value: one of ACTIONS, else "unknown" (never the caller's own text).
    let action = event.payload.get("action").and_then(Value::as_str);
    let action = ACTIONS.iter().copied().find(|known| Some(*known) == action).unwrap_or("unknown");
    let (result, (handler_ms, aws_call_ms)) = fleetgate_api::call_time::measured(async {
        let result = perform(state, event).await;
        (result, fleetgate_api::call_time::millis())
    })
    .await;
    let outcome = result.as_ref().map_or_else(ProvisionError::code, |_| "ok");
    fleetgate_api::metrics::count("ProvisionerActions", &[("action", action), ("outcome", outcome)])
        .number_property("handler_ms", handler_ms)
        .number_property("aws_call_ms", aws_call_ms)
        .emit();
    result
}

#[tracing::instrument(name = "provisioner", skip_all, fields(request_id = %event.context.request_id))]
async fn perform(state: &State, event: LambdaEvent<Value>) -> Result<Value, ProvisionError> {
    let request_id = event.context.request_id;
    let Value::Object(mut args) = event.payload else {
        return Err(ProvisionError::InvalidRequest(
            "the event must be a JSON object with an \"action\" field, e.g. {\"action\": \"list_tenants\"}".into(),
        ));
    };
    let action = match args.remove("action") {
        Some(Value::String(action)) => action,
        _ => {
            let valid = ACTIONS.join(", ");
            return Err(ProvisionError::InvalidRequest(format!("\"action\" is required; valid actions are: {valid}")));
        }
    };
    let requested_by = match args.remove("requested_by") {
        None | Some(Value::Null) => None,
        Some(Value::String(who))
            if who.chars().count() <= MAX_REQUESTED_BY_CHARS && !who.chars().any(char::is_control) =>
        {
            Some(who.trim().to_owned())
        }
        Some(_) => {
            return Err(ProvisionError::field(
                "requested_by",
                format!("must be a string of at most {MAX_REQUESTED_BY_CHARS} characters"),
            ));
        }
    };
    let ctx = Ctx { request_id, requested_by };
    // For the record of a refusal: the tenant and the key or template it was about.
    let tenant = args.get("tenant_id").and_then(Value::as_str).and_then(|t| TenantId::parse(t).ok());
    let resource = ["key_id", "template"].iter().find_map(|field| match args.get(*field) {
        Some(Value::String(id)) => Some(id.chars().take(64).collect::<String>()),
        Some(Value::Object(template)) => {
            template.get("id").and_then(Value::as_str).map(|id| id.chars().take(64).collect())
        }
        _ => None,
    });
    let args = Value::Object(args);
    // In a block of its own so a malformed event (`parse`) is a refusal like the others.
    let result = async {
        match action.as_str() {
            "create_tenant" => tenants::create_tenant(state, parse(args)?, &ctx).await,
            "get_tenant" => tenants::get_tenant(state, parse(args)?, &ctx).await,
            "list_tenants" => tenants::list_tenants(state, parse(args)?, &ctx).await,
            "create_key" => actions::create_key(state, parse(args)?, &ctx).await,
            "list_keys" => actions::list_keys(state, parse(args)?, &ctx).await,
            "get_key" => actions::get_key(state, parse(args)?, &ctx).await,
            "revoke_key" => actions::revoke_key(state, parse(args)?, &ctx).await,
            "rotate_key" => actions::rotate_key(state, parse(args)?, &ctx).await,
            "update_key_restrictions" => actions::update_key_restrictions(state, parse(args)?, &ctx).await,
            "review_keys" => review::review_keys(state, parse(args)?, &ctx).await,
            "put_tenant_limits" => tenants::put_tenant_limits(state, parse(args)?, &ctx).await,
            "put_inspection_template" => admin::put_inspection_template(state, parse(args)?, &ctx).await,
            "list_inspection_templates" => admin::list_inspection_templates(state, parse(args)?, &ctx).await,
            "list_audit" => admin::list_audit(state, parse(args)?, &ctx).await,
            other => Err(ProvisionError::UnknownAction(other.chars().take(64).collect())),
        }
    }
    .await;
    match &result {
        Ok(_) => tracing::info!(action = %action, "provisioning action done"),
        Err(err) if !err.is_refusal() => {
            tracing::error!(action = %action, code = err.code(), error = ?err, "provisioning action failed")
        }
        Err(err) => {
            tracing::info!(action = %action, code = err.code(), "provisioning action refused");
            // Refused actions are on the record too, under the tenant they named (when
            // it is a valid tenant id: the trail is partitioned by tenant).
            if let (Some(tenant), true) = (&tenant, crate::ACTIONS.contains(&action.as_str())) {
                let message: String = err.to_string().chars().take(500).collect();
                let record = ctx.audit(
                    state,
                    tenant,
                    &action,
                    resource.as_deref(),
                    err.code(),
                    serde_json::json!({"error": message}),
                );
                if let Err(audit_err) = state.audit.append(&record).await {
                    tracing::error!(action = %action, error = %audit_err, "could not audit a refused action");
                }
            }
        }
    }
    result
}

fn parse<T: DeserializeOwned>(args: Value) -> Result<T, ProvisionError> {
    serde_json::from_value(args).map_err(|e| ProvisionError::InvalidRequest(e.to_string()))
}
