//! `GET /inspections/{id}`: one inspection of the caller's tenant.

use http::StatusCode;
use lambda_http::{Body, Error, Request, RequestExt, Response};

use fleetgate_api::ApiError;
use fleetgate_api::http::{Call, Gate, json_response, serve};
use fleetgate_fleet::inspections::InspectionStore;
use fleetgate_scopes::routes;

/// What the function keeps across invocations.
pub struct State {
    pub gate: Gate,
    pub inspections: InspectionStore,
}

impl State {
    pub async fn from_env() -> Result<State, Error> {
        let client = fleetgate_api::dynamo::client();
        Ok(State {
            gate: Gate::from_env(&client, &routes::GET_INSPECTION)?,
            inspections: InspectionStore::from_env(client)?,
        })
    }
}

#[tracing::instrument(name = "GET /inspections/{id}", skip_all)]
pub async fn handler(state: &State, req: Request) -> Result<Response<Body>, Error> {
    Ok(serve(&state.gate, &routes::GET_INSPECTION, req, |call, req| get_inspection(state, call, req)).await)
}

async fn get_inspection(state: &State, call: Call, req: Request) -> Result<Response<Body>, ApiError> {
    let id = req.path_parameters_ref().and_then(|params| params.first("id")).unwrap_or_default();
    // Other tenants' ids, malformed ids and unknown ids all look the same: 404.
    let inspection =
        state.inspections.get(&call.auth.tenant_id, id).await?.ok_or(ApiError::NotFound { resource: "inspection" })?;
    json_response(StatusCode::OK, &inspection)
}
