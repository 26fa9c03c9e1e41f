//! `fleetgate webhooks listen`: a receiver for webhook deliveries on this machine,
//! like `stripe listen`. Each delivery's Standard Webhooks signature is checked
//! with the endpoint's secret (the same `verify` the tests hold against the
//! reference implementation), the event is printed, and the answer is what a
//! careful receiver gives: 204 when it verifies, 401 when it does not (so the
//! endpoint's attempt log shows a bad secret), 400 when it is not a delivery.
//!
//! Connections are served one at a time without keep-alive: a developer's
//! receiver, where the order of printed events should be the order of arrival.

use std::convert::Infallible;
use std::io::Write;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::sync::mpsc;

use fleetgate_api::Timestamp;
use fleetgate_webhooks::signing::{Secret, verify};

use crate::cli::ListenArgs;
use crate::error::CliError;

/// Larger bodies are not deliveries of ours (an event is at most one API resource).
const MAX_BODY_BYTES: usize = 1024 * 1024;

/// One delivery as received.
#[derive(Debug)]
struct Delivery {
    webhook_id: Option<String>,
    /// `None`: no secret to check with; `Some(Err)`: why it did not verify.
    verified: Option<Result<(), String>>,
    payload: Result<Value, String>,
    status: StatusCode,
}

/// Runs the receiver until `--count` deliveries came (or forever).
pub async fn listen(args: ListenArgs, json_lines: bool, out: &mut dyn Write) -> Result<(), CliError> {
    let secret = args
        .secret
        .as_deref()
        .map(Secret::parse)
        .transpose()
        .map_err(|why| CliError::Usage(format!("--secret: {why}")))?;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", args.port))
        .await
        .map_err(|e| CliError::Usage(format!("cannot listen on 127.0.0.1:{}: {e}", args.port)))?;
    let port = listener.local_addr().map(|a| a.port()).unwrap_or(args.port);
    eprintln!(
        "Listening for webhooks on http://127.0.0.1:{port}/ ({}). Ctrl-C to stop.",
        if secret.is_some() { "signatures checked" } else { "signatures NOT checked: pass --secret" }
    );
    let (sender, mut received) = mpsc::unbounded_channel();
    let mut seen = 0;
    while args.count.is_none_or(|count| seen < count) {
        let Ok((stream, _)) = listener.accept().await else { continue };
        let (secret, sender) = (secret.clone(), sender.clone());
        let service = hyper::service::service_fn(move |req| {
            let (secret, sender) = (secret.clone(), sender.clone());
            async move {
                let delivery = receive(req, secret.as_ref()).await;
                let status = delivery.status;
                let _ = sender.send(delivery);
                Ok::<_, Infallible>(
                    Response::builder().status(status).body(Full::new(Bytes::new())).expect("a response"),
                )
            }
        });
        // A broken connection is the sender's problem; the next one is served.
        let _ = hyper::server::conn::http1::Builder::new()
            .keep_alive(false)
            .serve_connection(TokioIo::new(stream), service)
            .await;
        while let Ok(delivery) = received.try_recv() {
            seen += 1;
            let text = if json_lines { as_json_line(&delivery) } else { as_text(&delivery) };
            out.write_all(text.as_bytes())
                .and_then(|()| out.flush())
                .map_err(|e| CliError::Usage(format!("stdout: {e}")))?;
        }
    }
    Ok(())
}

async fn receive(req: Request<Incoming>, secret: Option<&Secret>) -> Delivery {
    let (parts, body) = req.into_parts();
    let header = |name: &str| parts.headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let webhook_id = header("webhook-id");
    let body = match Limited::new(body, MAX_BODY_BYTES).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => {
            return Delivery {
                webhook_id,
                verified: None,
                payload: Err("the body could not be read (over 1 MiB, or the sender went away)".into()),
                status: StatusCode::BAD_REQUEST,
            };
        }
    };
    let verified = secret.map(|secret| {
        let now = Timestamp::now().unix_seconds();
        verify(
            secret,
            webhook_id.as_deref(),
            header("webhook-timestamp").as_deref(),
            header("webhook-signature").as_deref(),
            &body,
            now,
        )
        .map_err(|e| e.to_string())
    });
    let payload = serde_json::from_slice::<Value>(&body).map_err(|e| format!("not JSON: {e}"));
    let status = match (&verified, &payload) {
        (Some(Err(_)), _) => StatusCode::UNAUTHORIZED,
        (_, Err(_)) => StatusCode::BAD_REQUEST,
        _ => StatusCode::NO_CONTENT,
    };
    Delivery { webhook_id, verified, payload, status }
}

fn verdict(delivery: &Delivery) -> String {
    match &delivery.verified {
        None => "signature not checked".into(),
        Some(Ok(())) => "signature ok".into(),
        Some(Err(why)) => format!("signature REFUSED ({why})"),
    }
}

/// A line of facts, then the payload as indented JSON.
fn as_text(delivery: &Delivery) -> String {
    let payload = delivery.payload.as_ref();
    let field = |name: &str| payload.ok().and_then(|p| p[name].as_str()).unwrap_or("?").to_owned();
    let body = match payload {
        Ok(value) => serde_json::to_string_pretty(value).unwrap_or_default(),
        Err(why) => why.clone(),
    };
    format!(
        "{}  {}  {}  {}  -> {}\n{body}\n",
        field("timestamp"),
        field("type"),
        delivery.webhook_id.as_deref().unwrap_or("(no webhook-id)"),
        verdict(delivery),
        delivery.status.as_u16()
    )
}

/// One JSON object per line: for scripts and tests.
fn as_json_line(delivery: &Delivery) -> String {
    let line = json!({
        "webhook_id": delivery.webhook_id,
        "verified": delivery.verified.as_ref().map(Result::is_ok),
        "refusal": delivery.verified.as_ref().and_then(|v| v.as_ref().err()),
        "status": delivery.status.as_u16(),
        "payload": delivery.payload.as_ref().ok(),
    });
    format!("{line}\n")
}
