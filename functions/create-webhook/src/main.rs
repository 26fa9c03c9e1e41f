use create_webhook::{State, handler};
use lambda_http::{Error, run, service_fn};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    fleetgate_api::logging::init(env!("CARGO_CRATE_NAME"));
    let state = State::from_env().await?;
    let state = &state;
    run(service_fn(move |req| handler(state, req))).await
}
