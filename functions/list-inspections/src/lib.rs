//! `GET /inspections`: the caller's inspection history, newest first, paged,
//! filtered by `vehicle_id`, `outcome`, `performed_after` (inclusive) and
//! `performed_before` (exclusive). Every filter combination is an index query.

use lambda_http::{Body, Error, Request, Response};

use fleetgate_api::cursor_keys::CursorKeys;
use fleetgate_api::http::{Call, Gate, serve};
use fleetgate_api::input::{invalid_parameter, query_params, query_timestamp};
use fleetgate_api::list::query_identity;
use fleetgate_api::{ApiError, ids};
use fleetgate_fleet::inspections::{InspectionFilter, InspectionStore, Outcome};
use fleetgate_fleet::vehicles;
use fleetgate_scopes::routes;

/// What the function keeps across invocations.
pub struct State {
    pub gate: Gate,
    pub inspections: InspectionStore,
    pub cursors: CursorKeys,
}

impl State {
    pub async fn from_env() -> Result<State, Error> {
        let client = fleetgate_api::dynamo::client();
        Ok(State {
            gate: Gate::from_env(&client, &routes::LIST_INSPECTIONS)?,
            inspections: InspectionStore::from_env(client)?,
            cursors: CursorKeys::from_env()?,
        })
    }
}

#[tracing::instrument(name = "GET /inspections", skip_all)]
pub async fn handler(state: &State, req: Request) -> Result<Response<Body>, Error> {
    Ok(serve(&state.gate, &routes::LIST_INSPECTIONS, req, |call, req| list_inspections(state, call, req)).await)
}

const PARAMS: [&str; 6] = ["limit", "cursor", "vehicle_id", "outcome", "performed_after", "performed_before"];

async fn list_inspections(state: &State, call: Call, req: Request) -> Result<Response<Body>, ApiError> {
    let params = query_params(&req, &PARAMS)?;
    let filter = parse_filter(&params)?;
    let tenant = &call.auth.tenant_id;
    let after = filter.performed_after.map(|t| t.to_string());
    let before = filter.performed_before.map(|t| t.to_string());
    let query = query_identity(
        tenant.as_str(),
        &call.route.describe(),
        &[
            ("vehicle_id", filter.vehicle_id.as_deref()),
            ("outcome", filter.outcome.map(Outcome::as_str)),
            ("performed_after", after.as_deref()),
            ("performed_before", before.as_deref()),
        ],
    );
    let page = state.cursors.page_request(&params, &query).await?;
    let (data, next) = state.inspections.list(tenant, &filter, page.limit, page.start.as_ref()).await?;
    state.cursors.page_response(&query, data, next).await
}

fn parse_filter(params: &[(String, String)]) -> Result<InspectionFilter, ApiError> {
    let mut filter = InspectionFilter::default();
    for (name, value) in params {
        match name.as_str() {
            "vehicle_id" if ids::is_sortable_id(vehicles::ID_PREFIX, value) => filter.vehicle_id = Some(value.clone()),
            "vehicle_id" => {
                return Err(invalid_parameter(name, value, "vehicle_id must be a vehicle id (veh_…).".into()));
            }
            "outcome" => {
                filter.outcome = Some(
                    Outcome::parse(value).map_err(|rule| invalid_parameter(name, value, format!("outcome {rule}.")))?,
                )
            }
            "performed_after" => filter.performed_after = Some(query_timestamp(name, value)?),
            "performed_before" => filter.performed_before = Some(query_timestamp(name, value)?),
            _ => {}
        }
    }
    if let (Some(after), Some(before)) = (filter.performed_after, filter.performed_before)
        && after >= before
    {
        let value = params.iter().find(|(name, _)| name == "performed_after").map_or("", |(_, v)| v.as_str());
        let detail = "performed_after must be earlier than performed_before.".to_owned();
        return Err(invalid_parameter("performed_after", value, detail));
    }
    Ok(filter)
}
