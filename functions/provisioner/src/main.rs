use lambda_runtime::{Error, Runtime, layers::TracingLayer, service_fn};
use provisioner::payload::NonJsonAsNullLayer;
use provisioner::{State, handler};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    fleetgate_api::logging::init(env!("CARGO_CRATE_NAME"));
    let state = State::from_env().await?;
    let state = &state;
    // As `lambda_runtime::run`, plus the layer that answers a non-JSON payload itself.
    Runtime::new(service_fn(move |event| handler(state, event)))
        .layer(TracingLayer::new())
        .layer(NonJsonAsNullLayer)
        .run()
        .await
}
