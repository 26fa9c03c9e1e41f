//! `GET /vehicles`: the caller's vehicles in creation order, paged, optionally by
//! `status`; `?vin=` finds the one vehicle with that VIN (two point reads through
//! the VIN's uniqueness item, never a scan).

use http::StatusCode;
use lambda_http::{Body, Error, Request, Response};

use fleetgate_api::ApiError;
use fleetgate_api::cursor_keys::CursorKeys;
use fleetgate_api::http::{Call, Gate, json_response, serve};
use fleetgate_api::input::{invalid_parameter, query_params};
use fleetgate_api::list::{Page, PageRequest, query_identity};
use fleetgate_fleet::vehicles::{Vehicle, VehicleStatus, VehicleStore, Vin};
use fleetgate_scopes::routes;

/// What the function keeps across invocations.
pub struct State {
    pub gate: Gate,
    pub vehicles: VehicleStore,
    pub cursors: CursorKeys,
}

impl State {
    pub async fn from_env() -> Result<State, Error> {
        let client = fleetgate_api::dynamo::client();
        Ok(State {
            gate: Gate::from_env(&client, &routes::LIST_VEHICLES)?,
            vehicles: VehicleStore::from_env(client)?,
            cursors: CursorKeys::from_env()?,
        })
    }
}

#[tracing::instrument(name = "GET /vehicles", skip_all)]
pub async fn handler(state: &State, req: Request) -> Result<Response<Body>, Error> {
    Ok(serve(&state.gate, &routes::LIST_VEHICLES, req, |call, req| list_vehicles(state, call, req)).await)
}

async fn list_vehicles(state: &State, call: Call, req: Request) -> Result<Response<Body>, ApiError> {
    let params = query_params(&req, &["limit", "cursor", "status", "vin"])?;
    let status = match params.iter().find(|(name, _)| name == "status") {
        None => None,
        Some((_, value)) => Some(
            value
                .parse::<VehicleStatus>()
                .map_err(|rule| invalid_parameter("status", value, format!("status {rule}.")))?,
        ),
    };
    let tenant = &call.auth.tenant_id;
    if let Some((_, value)) = params.iter().find(|(name, _)| name == "vin") {
        return find_by_vin(state, &call, &params, value, status).await;
    }
    let query =
        query_identity(tenant.as_str(), &call.route.describe(), &[("status", status.map(VehicleStatus::as_str))]);
    let page = state.cursors.page_request(&params, &query).await?;
    let (data, next) = state.vehicles.list(tenant, status, page.limit, page.start.as_ref()).await?;
    state.cursors.page_response(&query, data, next).await
}

/// `?vin=`: a page of at most one vehicle (with `status`, only if it has that status).
async fn find_by_vin(
    state: &State,
    call: &Call,
    params: &[(String, String)],
    value: &str,
    status: Option<VehicleStatus>,
) -> Result<Response<Body>, ApiError> {
    let vin = Vin::parse(value).map_err(|rule| invalid_parameter("vin", value, format!("vin {rule}.")))?;
    if let Some((_, cursor)) = params.iter().find(|(name, _)| name == "cursor") {
        let detail = "A vin lookup answers at most one vehicle: it takes no cursor.".to_owned();
        return Err(invalid_parameter("cursor", cursor, detail));
    }
    // `limit` is still checked (1–100), though one vehicle always fits.
    PageRequest::parse_limit(params)?;
    let found = state.vehicles.find_by_vin(&call.auth.tenant_id, &vin).await?;
    let data: Vec<Vehicle> = found.into_iter().filter(|v| status.is_none_or(|s| v.status == s)).collect();
    json_response(StatusCode::OK, &Page { data, next_cursor: None })
}
