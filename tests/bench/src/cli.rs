//! The admin CLI's start-up (SPEC §7: `make bench` covers it). An admin feels the
//! whole run of a command: process start, configuration, one Lambda Invoke call,
//! the table, exit. Measured against a local Invoke API stub that answers at once
//! (so the provisioner's own time, measured with the functions, is not in it),
//! with the CLI's CPU and peak RSS read while it waits for that answer (held back
//! until they are read).

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::process::Command;
use tokio::sync::{mpsc, oneshot};

use crate::report::{Stats, median};
use crate::{Error, ProcessSchedstat, proc_status_kb, settle};

/// One page of `list_tenants`, as the provisioner answers it.
fn tenants_page() -> Value {
    json!({"data": [{"tenant_id": "acme", "name": "Acme Haulage", "created_at": "2026-12-01T08:00:00Z"}],
           "next_cursor": null})
}

/// One invocation that reached the stub: when, and the go-ahead for its answer
/// (held back until the harness has read the waiting process's figures).
struct Arrived {
    at: Instant,
    answer: oneshot::Sender<()>,
}

/// A Lambda Invoke API stub that answers every invocation with [`tenants_page`].
struct InvokeStub {
    address: String,
    requests: mpsc::UnboundedReceiver<Arrived>,
}

impl InvokeStub {
    async fn start() -> std::io::Result<InvokeStub> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let address = format!("http://{}", listener.local_addr()?);
        let (arrived, requests) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let arrived = arrived.clone();
                tokio::spawn(async move {
                    let _ = stream.set_nodelay(true);
                    let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
                        let arrived = arrived.clone();
                        async move {
                            // The whole request in, then the harness's go-ahead.
                            let _ = request.into_body().collect().await;
                            let (go, went) = oneshot::channel();
                            if arrived.send(Arrived { at: Instant::now(), answer: go }).is_ok() {
                                let _ = went.await;
                            }
                            hyper::Response::builder()
                                .header("content-type", "application/json")
                                .body(Full::new(Bytes::from(tenants_page().to_string())))
                        }
                    });
                    let io = hyper_util::rt::TokioIo::new(stream);
                    let _ = hyper::server::conn::http1::Builder::new().serve_connection(io, service).await;
                });
            }
        });
        Ok(InvokeStub { address, requests })
    }
}

/// The CLI's figures over its runs.
pub struct CliStartup {
    /// `fleetgate --version`: start to exit (loading and parsing the command line).
    pub version: Stats,
    /// Median over runs of that over the init of a hello start just before it.
    pub version_vs_hello: Option<f64>,
    /// `fleetgate tenants list` against the stub: start to its request.
    pub to_request: Stats,
    /// Start to exit (the answer rendered as a table).
    pub to_exit: Stats,
    pub cpu_to_request: Stats,
    pub peak_rss_kb: u64,
}

/// `runs` runs of each command after a hello start (`hello_init` runs one and
/// returns its init).
pub async fn measure<H, F>(binary: &Path, runs: usize, mut hello_init: H) -> Result<CliStartup, Error>
where
    H: FnMut() -> F,
    F: Future<Output = Result<Duration, Error>>,
{
    let mut stub = InvokeStub::start().await?;
    // No profile, credentials or region of whoever runs the bench: a fresh admin machine.
    let home = std::env::temp_dir().join(format!("fleetgate-bench-cli-{}", std::process::id()));
    std::fs::create_dir_all(&home)?;
    let command = |args: &[&str]| {
        let mut command = Command::new(binary);
        command
            .args(args)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", &home)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        command
    };
    let (mut version, mut version_ratios, mut to_request, mut to_exit, mut cpu, mut peak_rss_kb) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new(), 0);
    for _ in 0..runs {
        let hello = hello_init().await?;
        settle().await;
        let started = Instant::now();
        let output = command(&["--version"]).output().await?;
        let exited = started.elapsed();
        if !output.status.success() {
            return Err(format!("fleetgate --version failed: {}", String::from_utf8_lossy(&output.stderr)).into());
        }
        version.push(exited);
        version_ratios.push(exited.as_secs_f64() / hello.as_secs_f64());

        settle().await;
        let started = Instant::now();
        let mut child = command(&["--endpoint", &stub.address, "tenants", "list"]).spawn()?;
        let pid = child.id().ok_or("no pid")?;
        let arrived = tokio::select! {
            arrived = stub.requests.recv() => arrived.ok_or("the stub stopped")?,
            status = child.wait() => return Err(format!("fleetgate tenants list exited before its request: {}", status?).into()),
        };
        // It waits for this answer: what it has used so far is its start-up and its call.
        let (sched, rss_kb) = (ProcessSchedstat::read(pid)?, proc_status_kb(pid, "VmHWM")?);
        let _ = arrived.answer.send(());
        let output = child.wait_with_output().await?;
        let exited = started.elapsed();
        let stdout = String::from_utf8_lossy(&output.stdout);
        if !output.status.success() || !stdout.contains("Acme Haulage") {
            return Err(format!(
                "fleetgate tenants list failed ({}): {stdout} {}",
                output.status,
                String::from_utf8_lossy(&output.stderr)
            )
            .into());
        }
        let request_at = arrived.at - started;
        to_request.push(request_at);
        to_exit.push(exited);
        cpu.push(sched.on_cpu);
        peak_rss_kb = peak_rss_kb.max(rss_kb);
    }
    let _ = std::fs::remove_dir_all(&home);
    Ok(CliStartup {
        version: Stats::of(&version),
        version_vs_hello: median(&version_ratios),
        to_request: Stats::of(&to_request),
        to_exit: Stats::of(&to_exit),
        cpu_to_request: Stats::of(&cpu),
        peak_rss_kb,
    })
}
