//! `GET /inspection-templates`: the checklists of the caller's tenant, by id, paged.

use lambda_http::{Body, Error, Request, Response};

use fleetgate_api::ApiError;
use fleetgate_api::cursor_keys::CursorKeys;
use fleetgate_api::http::{Call, Gate, serve};
use fleetgate_api::input::query_params;
use fleetgate_api::list::query_identity;
use fleetgate_fleet::templates::TemplateStore;
use fleetgate_scopes::routes;

/// What the function keeps across invocations.
pub struct State {
    pub gate: Gate,
    pub templates: TemplateStore,
    pub cursors: CursorKeys,
}

impl State {
    pub async fn from_env() -> Result<State, Error> {
        let client = fleetgate_api::dynamo::client();
        Ok(State {
            gate: Gate::from_env(&client, &routes::LIST_INSPECTION_TEMPLATES)?,
            templates: TemplateStore::from_env(client)?,
            cursors: CursorKeys::from_env()?,
        })
    }
}

#[tracing::instrument(name = "GET /inspection-templates", skip_all)]
pub async fn handler(state: &State, req: Request) -> Result<Response<Body>, Error> {
    Ok(serve(&state.gate, &routes::LIST_INSPECTION_TEMPLATES, req, |call, req| list_templates(state, call, req)).await)
}

async fn list_templates(state: &State, call: Call, req: Request) -> Result<Response<Body>, ApiError> {
    let params = query_params(&req, &["limit", "cursor"])?;
    let tenant = &call.auth.tenant_id;
    let query = query_identity(tenant.as_str(), &call.route.describe(), &[]);
    let page = state.cursors.page_request(&params, &query).await?;
    let (data, next) = state.templates.list(tenant, page.limit, page.start.as_ref()).await?;
    state.cursors.page_response(&query, data, next).await
}
