//! `local-gateway`: the local stand-in for API Gateway (see `fleetgate_local::gateway`).
//!   local-gateway --port 9000 --functions http://127.0.0.1:9001 [--parameter Name=Value]...
//! `--parameter` overrides a template parameter, as `sam deploy --parameter-overrides` does
//! (tests shorten `AuthorizerCacheTtlSeconds` this way). It also runs the webhook
//! poller (`fleetgate_local::poller`), the local stand-in for the event source mappings.

use std::collections::BTreeMap;
use std::sync::Arc;

use fleetgate_local::gateway::{Gateway, GatewayConfig};
use fleetgate_local::{Error, Template};

/// The REST API id the local stack uses (the provisioner's `API_ID` in `[workspace.metadata.lambda.env]`).
const LOCAL_API_ID: &str = "fleetgate-local";

fn main() -> Result<(), Error> {
    let mut port = 9000u16;
    let mut functions = String::from("http://127.0.0.1:9001");
    let mut overrides = BTreeMap::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--port" => port = value()?.parse()?,
            "--functions" => functions = value()?,
            "--parameter" => {
                let pair = value()?;
                let (name, value) = pair.split_once('=').ok_or("--parameter takes Name=Value")?;
                overrides.insert(name.to_owned(), value.to_owned());
            }
            _ => {
                eprintln!("usage: local-gateway [--port P] [--functions URL] [--parameter Name=Value]...");
                std::process::exit(2);
            }
        }
    }
    let config = GatewayConfig::from_template(&Template::load_default()?, &overrides, LOCAL_API_ID)?;
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?.block_on(async {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
        eprintln!(
            "==> local-gateway on http://127.0.0.1:{port}: {} routes, stage {}, authorizer cache {} s, functions at {functions}",
            config.routes.len(),
            config.stage,
            config.authorizer_ttl.as_secs()
        );
        // What Lambda's event source mappings do on AWS for the webhook functions.
        let poller = fleetgate_local::poller::Poller::from_env(&functions)?;
        eprintln!("==> webhook poller: the fleet table's stream -> webhook-dispatcher, the delivery queue -> webhook-deliverer");
        tokio::spawn(async move { poller.run().await });
        Arc::new(Gateway::new(config, &functions)).serve(listener).await;
        Ok(())
    })
}
