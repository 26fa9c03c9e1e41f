use lambda_runtime::{Error, run, service_fn};
use webhook_deliverer::{State, handler};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    fleetgate_api::logging::init(env!("CARGO_CRATE_NAME"));
    let state = State::from_env()?;
    let state = &state;
    run(service_fn(move |event| handler(state, event))).await
}
