use lambda_runtime::{Error, run, service_fn};
use provisioner::{State, handler};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();
    let state = State::from_env().await?;
    let state = &state;
    run(service_fn(move |event| handler(state, event))).await
}
