//! Hello (`main.rs`) with what every Fleetgate request adds for operators: the
//! function's log set-up (`logging::init`), a span per request, the request's log
//! line and EMF document (`http::log_request`, as `serve` writes them, inside a
//! `call_time` scope). Against hello, `make bench` reads the init and the CPU per
//! invocation that logging and metrics cost (issue 13), apart from any SDK call.

use std::time::Instant;

use fleetgate_api::call_time::measured;
use fleetgate_api::http::{ServedRequest, log_request};
use fleetgate_scopes::{AuthContext, Environment, Preset, TenantId, routes};
use lambda_http::{Body, Response};
use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use serde_json::Value;
use tracing::Instrument;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    fleetgate_api::logging::init(env!("CARGO_CRATE_NAME"));
    // A key as the authorizer hands it over: its ids go on the line and the document.
    let auth = AuthContext::new(
        TenantId::parse("acme").expect("a valid tenant id"),
        "key_0123456789abcdef".into(),
        "bench".into(),
        Preset::FullFleet.scopes().iter().collect(),
        Environment::Test,
        None,
    );
    let auth = &auth;
    run(service_fn(move |event: LambdaEvent<Value>| async move {
        let started = Instant::now();
        let request_id = event.context.request_id.clone();
        measured(
            async {
                let response = Response::builder().status(200).body(Body::Empty).expect("a response");
                log_request(&ServedRequest {
                    route: &routes::WHOAMI,
                    request_id: &request_id,
                    started,
                    auth: Some(auth),
                    limits: None,
                    response: &response,
                    refusal: None,
                });
                Ok::<Value, Error>(event.payload)
            }
            .instrument(tracing::info_span!("GET /me")),
        )
        .await
    }))
    .await
}
