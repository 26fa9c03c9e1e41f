//! `bench delivery-latency API_URL`: end-to-end webhook latency on the local stack
//! (`make bench` starts it: emulator, `cargo lambda watch`, the local gateway with
//! its webhook poller). Each sample is one `POST /vehicles` through the gateway
//! until its signed `vehicle.created` reaches a receiver on this machine: the
//! write, the fleet table's stream, the poller, webhook-dispatcher, the queue,
//! webhook-deliverer, the POST. Sequential, one write in flight at a time, after
//! one uncounted write that starts the functions.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::sync::Notify;

use fleetgate_webhooks::signing::{Secret, verify};

use crate::Error;
use crate::report::Stats;

/// What arrived at the receiver: each vehicle id's arrival time, signature checked.
#[derive(Default)]
struct Arrivals {
    by_vehicle: Mutex<HashMap<String, Instant>>,
    secret: Mutex<Option<Secret>>,
    changed: Notify,
}

/// Measures `samples` deliveries through the stack at `api`; the figures as JSON.
pub async fn measure(api: &str, samples: usize) -> Result<Value, Error> {
    let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).build()?;
    let tenant = format!("bench-latency-{}", std::process::id());
    let provision = |event: Value| {
        let http = http.clone();
        let url = format!("{api}/2015-03-31/functions/provisioner/invocations");
        async move { Ok::<Value, Error>(http.post(url).json(&event).send().await?.json::<Value>().await?) }
    };
    provision(json!({"action": "create_tenant", "tenant_id": tenant, "name": "Latency"})).await?;
    let created = provision(json!({"action": "create_key", "tenant_id": tenant, "name": "latency",
                                   "scopes": ["vehicles:write", "webhooks:manage"]}))
    .await?;
    let key = created["api_key"].as_str().ok_or_else(|| format!("no key: {created}"))?.to_owned();

    let arrivals = Arc::new(Arrivals::default());
    let receiver = receive(arrivals.clone()).await?;
    let endpoint: Value = http
        .post(format!("{api}/webhooks"))
        .header("x-api-key", &key)
        .json(&json!({"url": receiver, "events": ["vehicle.created"]}))
        .send()
        .await?
        .json()
        .await?;
    let secret = Secret::parse(endpoint["secret"].as_str().ok_or_else(|| format!("no endpoint: {endpoint}"))?)?;
    *arrivals.secret.lock().expect("not poisoned") = Some(secret);

    // The first write is not counted: it starts the dispatcher and deliverer processes.
    let mut latencies = Vec::with_capacity(samples + 1);
    for n in 0..=samples {
        let vin = format!("1LATENCY{:09}", n + std::process::id() as usize * 1000);
        let body = json!({"vin": vin, "name": "Latency", "make": "Volvo", "model": "FH", "year": 2022});
        let waiting = arrivals.changed.notified();
        tokio::pin!(waiting);
        let started = Instant::now();
        let vehicle: Value =
            http.post(format!("{api}/vehicles")).header("x-api-key", &key).json(&body).send().await?.json().await?;
        let id = vehicle["id"].as_str().ok_or_else(|| format!("no vehicle: {vehicle}"))?.to_owned();
        let deadline = started + Duration::from_secs(30);
        let arrived = loop {
            if let Some(at) = arrivals.by_vehicle.lock().expect("not poisoned").get(&id) {
                break *at;
            }
            if tokio::time::timeout_at(deadline.into(), &mut waiting).await.is_err() {
                return Err(format!("vehicle.created for {id} did not arrive within 30 s").into());
            }
            waiting.set(arrivals.changed.notified());
        };
        latencies.push(arrived - started);
    }
    let stats = Stats::of(&latencies[1..]);
    Ok(json!({"samples": samples, "p50_ms": stats.p50_ms, "p99_ms": stats.p99_ms}))
}

/// A receiver on 127.0.0.1 that notes when each verified event arrived.
async fn receive(arrivals: Arc<Arrivals>) -> Result<String, Error> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/", listener.local_addr()?);
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { continue };
            let arrivals = arrivals.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let arrivals = arrivals.clone();
                    async move {
                        let at = Instant::now();
                        let (parts, body) = req.into_parts();
                        let body =
                            http_body_util::BodyExt::collect(body).await.map(|b| b.to_bytes()).unwrap_or_default();
                        let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok());
                        let now = fleetgate_api::Timestamp::now().unix_seconds();
                        let secret = arrivals.secret.lock().expect("not poisoned").clone();
                        let verified = secret.is_some_and(|secret| {
                            let (id, ts, sig) =
                                (header("webhook-id"), header("webhook-timestamp"), header("webhook-signature"));
                            verify(&secret, id, ts, sig, &body, now).is_ok()
                        });
                        let status = if verified {
                            let payload: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                            if let Some(id) = payload["data"]["id"].as_str() {
                                arrivals.by_vehicle.lock().expect("not poisoned").insert(id.to_owned(), at);
                                arrivals.changed.notify_waiters();
                            }
                            204
                        } else {
                            401
                        };
                        let empty = http_body_util::Empty::<bytes::Bytes>::new();
                        Ok::<_, std::convert::Infallible>(
                            hyper::Response::builder().status(status).body(empty).expect("a response"),
                        )
                    }
                });
                let io = hyper_util::rt::TokioIo::new(stream);
                let _ = hyper::server::conn::http1::Builder::new().serve_connection(io, service).await;
            });
        }
    });
    Ok(url)
}
