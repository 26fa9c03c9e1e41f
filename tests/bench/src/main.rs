//! `make bench`: cold start, warm overhead, memory, connections and size of every
//! function, against a local Lambda Runtime API stub and the emulator (moto), with a
//! hello-world `lambda_runtime` binary (same profile) and a Python authorizer peer
//! as baselines; and the admin CLI's start-up (cli.rs). Writes
//! docs/benchmarks.{json,md} and docs/cold-start.svg.
//!
//! Run through infra/bench.sh, which builds the release binaries, measures their
//! sizes and starts the emulator.

mod cli;
mod delivery;
mod proxy;
mod report;
mod runtime_api;
mod timing;

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::process::{Child, Command};

use fleetgate_api::Timestamp;
use fleetgate_api::audit::AuditLog;
use fleetgate_api::cursor_keys::CursorKeys;
use fleetgate_api::keys::KeyStore;
use fleetgate_fleet::inspections::{InspectionInput, InspectionStore};
use fleetgate_fleet::templates::TemplateStore;
use fleetgate_fleet::vehicles::{Vehicle, VehicleInput, VehicleStore};
use fleetgate_local::{TableNames, Template, create_tables, workspace_root};
use fleetgate_scopes::{AuthContext, Environment, Limits, Preset, RateLimit, TenantId};

use proxy::CountingProxy;
use report::{Connections, FunctionResult, Measured, Report};
use runtime_api::{Event, Invocation, RuntimeApi};

type Error = Box<dyn std::error::Error + Send + Sync>;

const TENANT: &str = "bench";
/// A tenant holding only the templates: the emulator's query reads a whole
/// partition (DynamoDB reads only the matching sort keys), so in the bench
/// tenant, full of the vehicles the create subject makes, the template list would
/// measure the emulator's partition scan instead of the function.
const TEMPLATES_TENANT: &str = "bench-templates";
const CURSOR_SECRET: &str = "bench-cursor-secret";
/// The webhook subjects' tenants, apart for the same reason: the one the reads
/// (and the dispatcher) see holds the maximum of 20 endpoints and a page of attempts
/// and nothing else; the writers write elsewhere.
const HOOKS_TENANT: &str = "bench-hooks";
const HOOKS_WRITE_TENANT: &str = "bench-hooks-write";
const HOOKS_CREATE_TENANT: &str = "bench-hooks-create";
const HOOKS_DELETE_TENANT: &str = "bench-hooks-delete";

/// What to run and how many times.
struct Plan {
    cold_starts: usize,
    warm_invocations: usize,
    release_dir: PathBuf,
    out_dir: PathBuf,
    dynamodb: String,
    python: Option<PathBuf>,
}

/// Ids the events refer to.
struct Seed {
    tables: TableNames,
    /// The emulator's URL (its Secrets Manager holds the cursor secret).
    emulator: String,
    cursor_secret: String,
    api_key: String,
    key_id: String,
    vehicle_id: String,
    inspection_id: String,
    hooks: HookSeed,
}

/// What the webhook subjects refer to.
struct HookSeed {
    /// In HOOKS_TENANT: subscribed to vehicle.created, with a page of attempts.
    read_id: String,
    /// In HOOKS_WRITE_TENANT: replaced, rotated and tested.
    write: Value,
    /// Pointed at the bench's receiver (loopback, allowed for the bench only).
    deliver_id: String,
    /// One per invocation of delete-webhook (cold starts first, then warm).
    delete_ids: Vec<String>,
    queue_url: String,
}

/// One function under test: how to make its n-th event, and how many DynamoDB
/// round trips one invocation makes (to subtract from its duration).
struct Subject {
    name: String,
    command: Vec<String>,
    cwd: Option<PathBuf>,
    round_trips: u32,
    event: Box<dyn Fn(usize) -> Value>,
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let env = |name: &str, default: &str| std::env::var(name).unwrap_or_else(|_| default.to_owned());
    let root = workspace_root();
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("delivery-latency") {
        let api = args.get(2).ok_or("usage: bench delivery-latency API_URL")?;
        let out_dir = std::env::var("BENCH_OUT").map_or_else(|_| root.join("docs"), PathBuf::from);
        return delivery_latency(api, env("BENCH_DELIVERY_SAMPLES", "100").parse()?, &out_dir).await;
    }
    let plan = Plan {
        cold_starts: env("BENCH_COLD_STARTS", "30").parse()?,
        warm_invocations: env("BENCH_WARM_INVOCATIONS", "1000").parse()?,
        release_dir: root.join(env("BENCH_RELEASE_DIR", "target/release")),
        out_dir: std::env::var("BENCH_OUT").map_or_else(|_| root.join("docs"), PathBuf::from),
        dynamodb: std::env::var("BENCH_DYNAMODB_URL").map_err(|_| "BENCH_DYNAMODB_URL is not set: run `make bench`")?,
        python: std::env::var("BENCH_PYTHON").ok().map(PathBuf::from),
    };
    let client = dynamo_client(&plan.dynamodb);
    let receiver = start_receiver().await?;
    let mut seed = seed(&client, &plan.dynamodb).await?;
    seed.hooks = seed_webhooks(&client, &seed, &plan, &receiver).await?;
    let upstream = plan.dynamodb.trim_start_matches("http://").to_owned();

    let proxy = CountingProxy::start(upstream.clone()).await?;
    let round_trip = dynamodb_round_trip(&format!("http://{}", proxy.address), &seed, plan.warm_invocations).await?;
    eprintln!("==> DynamoDB GetItem round trip: p50 {:.3} ms, p99 {:.3} ms", round_trip.p50_ms, round_trip.p99_ms);
    let limiter = limiter_cpu(format!("http://{}", proxy.address), seed.tables.usage.clone())?;
    eprintln!("==> limiter, CPU per call in process: count {:.0} µs, GetItem {:.0} µs", limiter.0, limiter.1);

    // BENCH_ONLY=authorizer,get-vehicle measures just those (for before/after experiments).
    let only: Option<Vec<String>> = std::env::var("BENCH_ONLY").ok().map(|v| v.split(',').map(str::to_owned).collect());
    let chosen =
        |name: &str| only.as_ref().is_none_or(|only| only.iter().any(|prefix| name.starts_with(prefix.as_str())));
    let (selected, others): (Vec<Subject>, Vec<Subject>) =
        subjects(&plan, &seed).into_iter().partition(|subject| chosen(&subject.name));
    // The admin CLI's start-up, first (its peak RSS is read in flight, not from
    // the children's high-water mark, but the machine is quietest now).
    let cli = if chosen("cli") {
        let hello = selected.iter().chain(&others).find(|s| s.name.starts_with("hello")).ok_or("no hello subject")?;
        eprintln!("==> the admin CLI's start-up, {} runs of each command", plan.cold_starts);
        let measured = cli::measure(&plan.release_dir.join("fleetgate"), plan.cold_starts, || async {
            settled_cold_start(&seed, hello, &upstream, 0).await.map(|start| start.init)
        })
        .await;
        Some(measured.map_err(|err| {
            eprintln!("    failed: {err}");
            err.to_string()
        }))
    } else {
        None
    };
    // Cold starts round-robin (each binary's n-th start, then the next binary's),
    // each right after a hello start of its own: a function's "× hello" is the
    // median of those pairs' ratios, so whatever loads this shared machine at the
    // time falls on both halves of a pair alike, rather than on one hello median
    // taken at other moments. Before every start the machine is left to settle
    // (the emulator finishes the previous first invocation's work, the killed
    // process is reaped).
    let hello = selected.iter().position(|subject| subject.name.starts_with("hello"));
    eprintln!(
        "==> {} cold starts of each of {} binaries, in turn, each beside a hello start",
        plan.cold_starts,
        selected.len()
    );
    let mut inits: Vec<Result<ColdStarts, String>> = selected.iter().map(|_| Ok(ColdStarts::default())).collect();
    for n in 0..plan.cold_starts {
        for (index, subject) in selected.iter().enumerate() {
            if Some(index) == hello || inits[index].is_err() {
                continue;
            }
            let beside = match hello {
                Some(hello) => match settled_cold_start(&seed, &selected[hello], &upstream, n).await {
                    Ok(start) => {
                        if let Ok(starts) = &mut inits[hello] {
                            starts.push(start, None);
                        }
                        Some(start.init)
                    }
                    Err(err) => return Err(format!("hello's cold start failed: {err}").into()),
                },
                None => None,
            };
            match settled_cold_start(&seed, subject, &upstream, n).await {
                Ok(start) => {
                    if let Ok(starts) = &mut inits[index] {
                        starts.push(start, beside);
                    }
                }
                Err(err) => {
                    eprintln!("    {} failed: {err}", subject.name);
                    inits[index] = Err(err.to_string());
                }
            }
        }
    }
    let mut results = Vec::new();
    for (subject, times) in selected.iter().zip(inits) {
        eprintln!("==> {}", subject.name);
        let measured = match times {
            Ok(times) => measure_warm(&plan, &seed, subject, &upstream, &times).await.map_err(|e| e.to_string()),
            Err(err) => Err(err),
        };
        results.push(measured.unwrap_or_else(|err| {
            eprintln!("    failed: {err}");
            FunctionResult::failed(&subject.name, err)
        }));
    }
    let sizes: Value = std::fs::read_to_string(root.join(env("BENCH_SIZES", "target/bench-sizes.json")))
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok())
        .unwrap_or(Value::Null);
    let report = Report::new(&plan.cold_starts, plan.warm_invocations, round_trip, results, sizes)
        .with_limiter(limiter)
        .with_cli(cli);
    std::fs::create_dir_all(&plan.out_dir)?;
    std::fs::write(plan.out_dir.join("benchmarks.json"), serde_json::to_string_pretty(&report.to_json())?)?;
    let markdown = report.markdown();
    std::fs::write(plan.out_dir.join("benchmarks.md"), &markdown)?;
    std::fs::write(plan.out_dir.join("cold-start.svg"), report.svg())?;
    println!("{markdown}");
    Ok(())
}

/// Measures webhook delivery end to end on the running local stack at `api`, writes
/// `delivery-latency.json` and appends its line to `benchmarks.md` (written just before).
async fn delivery_latency(api: &str, samples: usize, out_dir: &std::path::Path) -> Result<(), Error> {
    eprintln!("==> webhook delivery, write to receiver, {samples} samples through the local stack at {api}");
    let figures = delivery::measure(api, samples).await?;
    std::fs::create_dir_all(out_dir)?;
    std::fs::write(out_dir.join("delivery-latency.json"), serde_json::to_string_pretty(&figures)?)?;
    let line = format!(
        "\nWebhook delivery end to end on the local stack (`POST /vehicles` through the local gateway until its \
         signed `vehicle.created` reaches a receiver: stream, poller, webhook-dispatcher, queue, webhook-deliverer; \
         debug builds under `cargo lambda watch`, as `make dev` runs them; the poller checks every 250 ms, where AWS's \
         event source mappings poll continuously): p50 {:.0} ms, p99 {:.0} ms over {samples} writes.\n",
        figures["p50_ms"].as_f64().unwrap_or_default(),
        figures["p99_ms"].as_f64().unwrap_or_default(),
    );
    let markdown = out_dir.join("benchmarks.md");
    let mut text = std::fs::read_to_string(&markdown).unwrap_or_default();
    text.push_str(&line);
    std::fs::write(&markdown, text)?;
    println!("{line}");
    Ok(())
}

fn dynamo_client(endpoint: &str) -> aws_sdk_dynamodb::Client {
    fleetgate_api::dynamo::local_client(endpoint)
}

/// The page the list functions are asked for (and that the seed fills).
const LIST_PAGE: usize = 25;

/// Tables from the template, a key, a template, and a full page of vehicles and of inspections.
async fn seed(client: &aws_sdk_dynamodb::Client, emulator: &str) -> Result<Seed, Error> {
    let tables = TableNames::with_prefix(&format!("bench{}", std::process::id()));
    create_tables(client, &Template::load_default()?, &tables).await?;
    let cursor_secret = format!("bench{}-cursor-secret", std::process::id());
    let secrets = aws_sdk_secretsmanager::Client::from_conf(
        aws_sdk_secretsmanager::Config::builder()
            .behavior_version(aws_sdk_secretsmanager::config::BehaviorVersion::latest())
            .region(aws_sdk_secretsmanager::config::Region::new("us-east-1"))
            .endpoint_url(emulator)
            .credentials_provider(aws_sdk_secretsmanager::config::Credentials::new(
                "local", "local", None, None, "bench",
            ))
            .http_client(fleetgate_api::dynamo::https_client())
            .build(),
    );
    fleetgate_local::ensure_secret(&secrets, &cursor_secret, CURSOR_SECRET).await?;
    let tenant = TenantId::parse(TENANT)?;
    let provisioner = provisioner::State {
        keys: KeyStore::new(client.clone(), tables.keys.clone()),
        audit: AuditLog::new(client.clone(), tables.audit.clone()),
        templates: TemplateStore::new(client.clone(), tables.fleet.clone()),
        tenants: fleetgate_fleet::tenants::TenantStore::new(client.clone(), tables.fleet.clone()),
        cursors: CursorKeys::fixed(CURSOR_SECRET),
        environment: Environment::Test,
        authorizer_cache: None,
        usage: fleetgate_api::usage::UsageCounter::new(client.clone(), tables.usage.clone()),
        rate_limits: provisioner::RateLimitSettings::default(),
    };
    let invoke =
        |event: Value| provisioner::handler(&provisioner, lambda_runtime::LambdaEvent::new(event, Default::default()));
    invoke(json!({"action": "create_tenant", "tenant_id": TENANT, "name": "Bench fleet"})).await?;
    invoke(json!({"action": "create_tenant", "tenant_id": TEMPLATES_TENANT, "name": "Bench templates"})).await?;
    let created = invoke(
        json!({"action": "create_key", "tenant_id": TENANT, "name": "bench", "preset": Preset::FullFleet.as_str()}),
    )
    .await?;
    invoke(json!({"action": "put_inspection_template", "tenant_id": TENANT, "template": {"id": "tpl_pretrip", "name": "Pre-trip",
        "items": [{"id": "brakes", "label": "Brakes"}, {"id": "tyres", "label": "Tyres"}, {"id": "lights", "label": "Lights"}]}}))
    .await?;
    // The same template where the template list reads it (TEMPLATES_TENANT).
    invoke(json!({"action": "put_inspection_template", "tenant_id": TEMPLATES_TENANT, "template": {"id": "tpl_pretrip", "name": "Pre-trip",
        "items": [{"id": "brakes", "label": "Brakes"}, {"id": "tyres", "label": "Tyres"}, {"id": "lights", "label": "Lights"}]}}))
    .await?;
    let now = Timestamp::now();
    let vehicle = Vehicle::create(
        VehicleInput::parse(
            json!({"vin": "1HGCM82633A004352", "name": "Truck 12", "make": "Volvo", "model": "FH16", "year": 2022}),
            now,
        )?,
        now,
    );
    VehicleStore::new(client.clone(), tables.fleet.clone())
        .create(&tenant, &vehicle, vec![])
        .await
        .map_err(|e| format!("{e:?}"))?;
    let template = TemplateStore::new(client.clone(), tables.fleet.clone())
        .get(&tenant, "tpl_pretrip")
        .await?
        .ok_or("no template")?;
    let inspection = InspectionInput::parse(inspection_body(&vehicle.id), now)?.against(&template, "key_bench", now)?;
    let inspections = InspectionStore::new(client.clone(), tables.fleet.clone());
    inspections.create(&tenant, &inspection, vec![]).await?;
    // Full pages from the start: the list functions always answer 25 items, whatever
    // order the benchmark runs the functions in (the creating ones add more).
    for n in 1..LIST_PAGE {
        let body = json!({"vin": format!("1BENCHSEED{n:07}"), "name": format!("Truck {n}"), "make": "Volvo", "model": "FH", "year": 2022});
        let more = Vehicle::create(VehicleInput::parse(body, now)?, now);
        VehicleStore::new(client.clone(), tables.fleet.clone())
            .create(&tenant, &more, vec![])
            .await
            .map_err(|e| format!("{e:?}"))?;
        let submitted =
            InspectionInput::parse(inspection_body(&vehicle.id), now)?.against(&template, "key_bench", now)?;
        inspections.create(&tenant, &submitted, vec![]).await?;
    }
    Ok(Seed {
        tables,
        emulator: emulator.to_owned(),
        cursor_secret,
        api_key: created["api_key"].as_str().ok_or("no key")?.to_owned(),
        key_id: created["key"]["key_id"].as_str().ok_or("no key id")?.to_owned(),
        vehicle_id: vehicle.id,
        inspection_id: inspection.id,
        hooks: HookSeed {
            read_id: String::new(),
            write: Value::Null,
            deliver_id: String::new(),
            delete_ids: Vec::new(),
            queue_url: String::new(),
        },
    })
}

/// A receiver for the deliverer's POSTs on 127.0.0.1: answers 204 at once, keep-alive.
async fn start_receiver() -> Result<String, Error> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?.to_string();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else { continue };
            tokio::spawn(async move {
                let service = hyper::service::service_fn(|_req| async {
                    let empty = http_body_util::Empty::<bytes::Bytes>::new();
                    Ok::<_, std::convert::Infallible>(hyper::Response::builder().status(204).body(empty).expect("204"))
                });
                let io = hyper_util::rt::TokioIo::new(stream);
                let _ = hyper::server::conn::http1::Builder::new().serve_connection(io, service).await;
            });
        }
    });
    Ok(format!("http://{address}/"))
}

/// The webhook subjects' endpoints, attempt log and queue.
async fn seed_webhooks(
    client: &aws_sdk_dynamodb::Client,
    seed: &Seed,
    plan: &Plan,
    receiver: &str,
) -> Result<HookSeed, Error> {
    use fleetgate_webhooks::deliveries::{DeliveryAttempt, DeliveryLog};
    use fleetgate_webhooks::endpoints::{Endpoint, EndpointInput};
    use fleetgate_webhooks::signing::Secret;
    use fleetgate_webhooks::store::EndpointStore;
    use fleetgate_webhooks::target_url::UrlPolicy;

    let store = EndpointStore::new(client.clone(), seed.tables.fleet.clone(), u32::MAX);
    let now = Timestamp::now();
    let endpoint = |url: &str, events: &[&str]| -> Result<Endpoint, Error> {
        let input = EndpointInput::parse(json!({"url": url, "events": events}), UrlPolicy { allow_loopback: true })?;
        Ok(Endpoint::create(input, now))
    };
    let put = |tenant: &'static str, endpoint: Endpoint| {
        let store = store.clone();
        async move {
            let tenant = TenantId::parse(tenant)?;
            store.create(&tenant, &endpoint, &Secret::generate(), vec![]).await.map_err(|e| format!("{e:?}"))?;
            Ok::<_, Error>(endpoint)
        }
    };
    // A fleet at its maximum: the dispatcher reads all 20 per event; one subscribes.
    let read = put(HOOKS_TENANT, endpoint("https://hooks.example.com/bench", &["vehicle.created"])?).await?;
    for n in 1..20 {
        put(HOOKS_TENANT, endpoint(&format!("https://hooks{n}.example.com/bench"), &["inspection.created"])?).await?;
    }
    let log = DeliveryLog::new(client.clone(), seed.tables.fleet.clone());
    for n in 0..LIST_PAGE {
        let attempt = DeliveryAttempt {
            id: DeliveryAttempt::new_id(),
            endpoint_id: read.id.clone(),
            event_id: format!("evt_bench{n}"),
            event_type: fleetgate_webhooks::events::EventType::VehicleCreated,
            attempt: 1,
            attempted_at: now,
            status: Some(204),
            latency_ms: 12,
            delivered: true,
            answer: String::new(),
            next_attempt_at: None,
        };
        log.record(&TenantId::parse(HOOKS_TENANT)?, &attempt).await?;
    }
    let write = put(HOOKS_WRITE_TENANT, endpoint("https://hooks.example.com/write", &["inspection.failed"])?).await?;
    let deliver = put(HOOKS_WRITE_TENANT, endpoint(receiver, &["vehicle.created"])?).await?;
    let mut delete_ids = Vec::new();
    for n in 0..plan.cold_starts + plan.warm_invocations {
        let doomed = endpoint(&format!("https://hooks.example.com/delete/{n}"), &["vehicle.created"])?;
        delete_ids.push(put(HOOKS_DELETE_TENANT, doomed).await?.id);
    }
    let sqs = fleetgate_webhooks::queue::local_client(&seed.emulator);
    let queue = sqs.create_queue().queue_name(format!("bench{}-deliveries", std::process::id())).send().await?;
    Ok(HookSeed {
        read_id: read.id,
        write: serde_json::to_value(&write)?,
        deliver_id: deliver.id,
        delete_ids,
        queue_url: queue.queue_url.ok_or("no queue url")?,
    })
}

/// A stream batch of one outbox insert, as Lambda hands it to the dispatcher.
fn stream_event(fleet_table: &str, tenant: &str) -> Value {
    use fleetgate_webhooks::events::{Event, EventType};
    let event = Event::new(EventType::VehicleCreated, &json!({"id": "veh_bench"}), Timestamp::now()).expect("an event");
    let tenant = TenantId::parse(tenant).expect("valid");
    let put = event.outbox_item(fleet_table, &tenant).expect("an item").put.expect("a put");
    let image = serde_json::to_value(serde_dynamo::Item::from(put.item().clone())).expect("JSON");
    json!({"Records": [{
        "eventID": "1", "eventName": "INSERT", "eventVersion": "1.1", "eventSource": "aws:dynamodb", "awsRegion": "us-east-1",
        "dynamodb": {"Keys": {"pk": image["pk"], "sk": image["sk"]}, "NewImage": image, "SequenceNumber": "100",
                     "SizeBytes": 300, "StreamViewType": "NEW_IMAGE", "ApproximateCreationDateTime": 1.7e9},
        "eventSourceARN": "arn:aws:dynamodb:us-east-1:123456789012:table/fleet/stream/2026"}]})
}

/// An SQS batch of one delivery message, as Lambda hands it to the deliverer.
fn sqs_event(tenant: &str, endpoint_id: &str, n: usize) -> Value {
    let body = json!({"tenant_id": tenant, "endpoint_id": endpoint_id, "event_id": format!("evt_bench{n}"),
                      "event_type": "vehicle.created",
                      "body": r#"{"type":"vehicle.created","timestamp":"2026-12-07T10:00:00Z","data":{"id":"veh_bench"}}"#});
    json!({"Records": [{"messageId": format!("m-{n}"), "receiptHandle": format!("rh-{n}"), "body": body.to_string(),
                        "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1796600000000",
                                       "SenderId": "bench", "ApproximateFirstReceiveTimestamp": "1796600000000"},
                        "messageAttributes": {}, "md5OfBody": "", "eventSource": "aws:sqs",
                        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:deliveries", "awsRegion": "us-east-1"}]})
}

fn inspection_body(vehicle_id: &str) -> Value {
    json!({"vehicle_id": vehicle_id, "template_id": "tpl_pretrip", "type": "pre_trip", "inspector": "Bench",
           "performed_at": "2026-11-01T08:00:00Z", "odometer_km": 1000,
           "results": [{"item_id": "brakes", "status": "pass"}, {"item_id": "tyres", "status": "fail", "note": "worn"},
                       {"item_id": "lights", "status": "pass"}]})
}

/// The limits the authorizer passes for a key without its own: the template's
/// DefaultRateLimit, so every request is counted (one UpdateItem), as on AWS. High
/// enough that the bench never hits it.
fn default_limits() -> Limits {
    let default = Template::load_default().ok().and_then(|t| t.parameter_default("DefaultRateLimit"));
    let limit: RateLimit = default.as_deref().unwrap_or("100/second").parse().expect("the template's default parses");
    // The bench calls faster than 100/s on one key: the same limit shape, scaled up.
    Limits { rate_limit: RateLimit::new(limit.requests * 1000, limit.per, None).ok(), ..Limits::default() }
}

/// A REST API (v1) proxy event after the authorizer, for a full-fleet key of `tenant`.
fn rest_event(
    tenant: &str,
    seed_key_id: &str,
    method: &str,
    path: &str,
    id: Option<&str>,
    query: Option<Value>,
    body: Option<Value>,
) -> Value {
    rest_event_with(default_limits(), tenant, seed_key_id, method, path, id, query, body)
}

/// [`rest_event`] for a key with `limits`.
#[allow(clippy::too_many_arguments)]
fn rest_event_with(
    limits: Limits,
    tenant: &str,
    seed_key_id: &str,
    method: &str,
    path: &str,
    id: Option<&str>,
    query: Option<Value>,
    body: Option<Value>,
) -> Value {
    // Full-fleet, and the webhooks' scope for their routes.
    let scopes: fleetgate_scopes::ScopeSet =
        Preset::FullFleet.scopes().iter().chain([fleetgate_scopes::Scope::WebhooksManage]).collect();
    let context = AuthContext::new(
        TenantId::parse(tenant).expect("valid"),
        seed_key_id.to_owned(),
        "bench".into(),
        scopes,
        Environment::Test,
        None,
    )
    .with_limits(limits);
    let authorizer: serde_json::Map<String, Value> =
        context.to_authorizer_context().into_iter().map(|(k, v)| (k.to_owned(), json!(v))).collect();
    let full_path = match id {
        Some(id) => format!("{path}/{id}"),
        None => path.to_owned(),
    };
    json!({
        "resource": if id.is_some() { format!("{path}/{{id}}") } else { path.to_owned() },
        "path": full_path, "httpMethod": method,
        "headers": {"content-type": "application/json", "host": "api.example.com"},
        "multiValueHeaders": {"content-type": ["application/json"], "host": ["api.example.com"]},
        "queryStringParameters": query, "multiValueQueryStringParameters": null,
        "pathParameters": id.map(|id| json!({"id": id})),
        "stageVariables": null,
        "requestContext": {"accountId": "123456789012", "resourceId": "r", "stage": "v1", "requestId": "bench",
                           "identity": {"sourceIp": "203.0.113.9"}, "resourcePath": path, "httpMethod": method,
                           "apiId": "bench", "path": format!("/v1{full_path}"), "authorizer": authorizer},
        "body": body.map(|b| b.to_string()), "isBase64Encoded": false,
    })
}

fn subjects(plan: &Plan, seed: &Seed) -> Vec<Subject> {
    let binary = |name: &str| vec![plan.release_dir.join(name).display().to_string()];
    let key_id = seed.key_id.clone();
    let rest = move |method: &'static str,
                     path: &'static str,
                     id: Option<String>,
                     query: Option<Value>,
                     body: Option<Value>| {
        let key_id = key_id.clone();
        Box::new(move |_: usize| rest_event(TENANT, &key_id, method, path, id.as_deref(), query.clone(), body.clone()))
            as Box<dyn Fn(usize) -> Value>
    };
    // The endpoint update-webhook replaces, rotate-webhook-secret rotates and test-webhook tests.
    let write_id = seed.hooks.write["id"].as_str().map(str::to_owned);
    let hooks_key = seed.key_id.clone();
    let hooks_rest = move |tenant: &'static str,
                           method: &'static str,
                           path: &'static str,
                           id: Option<String>,
                           body: Option<Value>| {
        let key_id = hooks_key.clone();
        Box::new(move |_: usize| rest_event(tenant, &key_id, method, path, id.as_deref(), None, body.clone()))
            as Box<dyn Fn(usize) -> Value>
    };
    let authorizer_event = {
        let api_key = seed.api_key.clone();
        move |_: usize| {
            json!({"type": "REQUEST", "methodArn": "arn:aws:execute-api:us-east-1:123456789012:bench/v1/GET/me",
                   "resource": "/me", "path": "/me", "httpMethod": "GET", "headers": {"X-API-Key": api_key},
                   "multiValueHeaders": {}, "queryStringParameters": {}, "pathParameters": {}, "stageVariables": {},
                   "requestContext": {"accountId": "123456789012", "apiId": "bench", "stage": "v1", "requestId": "b",
                                      "httpMethod": "GET", "resourcePath": "/me", "path": "/v1/me"}})
        }
    };
    let vehicle = seed.vehicle_id.clone();
    let truck = json!({"vin": "1HGCM82633A004352", "name": "Truck 12", "make": "Volvo", "model": "FH16", "year": 2022,
                       "license_plate": null, "status": "in_shop", "odometer_km": 1});
    let key_id = seed.key_id.clone();
    let create_vehicle_key = seed.key_id.clone();
    let mut subjects = vec![
        Subject {
            name: "hello (baseline)".into(),
            command: binary("bench-hello"),
            cwd: None,
            round_trips: 0,
            event: Box::new(|_| json!({"hello": "world"})),
        },
        // Hello plus Fleetgate's log set-up, request span, log line and EMF document:
        // what logging and metrics cost, apart from everything else (issue 13).
        Subject {
            name: "logging + metrics (hello with them)".into(),
            command: binary("bench-hello-observed"),
            cwd: None,
            round_trips: 0,
            event: Box::new(|_| json!({"hello": "world"})),
        },
        Subject {
            name: "authorizer".into(),
            command: binary("authorizer"),
            cwd: None,
            round_trips: 2,
            event: Box::new(authorizer_event.clone()),
        },
        Subject {
            name: "whoami".into(),
            command: binary("whoami"),
            cwd: None,
            round_trips: 1,
            event: rest("GET", "/me", None, None, None),
        },
        Subject {
            name: "get-vehicle".into(),
            command: binary("get-vehicle"),
            cwd: None,
            round_trips: 2,
            event: rest("GET", "/vehicles", Some(vehicle.clone()), None, None),
        },
        // The limiter's cost, by difference with get-vehicle: the same request with a
        // context that counts nothing, and with a tenant cap (a second, sequential count).
        Subject {
            name: "get-vehicle, uncounted".into(),
            command: binary("get-vehicle"),
            cwd: None,
            round_trips: 1,
            event: {
                let (key_id, vehicle) = (seed.key_id.clone(), vehicle.clone());
                Box::new(move |_| {
                    rest_event_with(Limits::default(), TENANT, &key_id, "GET", "/vehicles", Some(&vehicle), None, None)
                })
            },
        },
        Subject {
            name: "get-vehicle, tenant cap".into(),
            command: binary("get-vehicle"),
            cwd: None,
            round_trips: 3,
            event: {
                let (key_id, vehicle) = (seed.key_id.clone(), vehicle.clone());
                let capped = Limits { tenant_rate_limit: default_limits().rate_limit, ..default_limits() };
                Box::new(move |_| {
                    rest_event_with(capped.clone(), TENANT, &key_id, "GET", "/vehicles", Some(&vehicle), None, None)
                })
            },
        },
        Subject {
            name: "list-vehicles".into(),
            command: binary("list-vehicles"),
            cwd: None,
            round_trips: 2,
            event: rest("GET", "/vehicles", None, Some(json!({"limit": LIST_PAGE.to_string()})), None),
        },
        Subject {
            name: "create-vehicle".into(),
            command: binary("create-vehicle"),
            cwd: None,
            round_trips: 2,
            // A new VIN each time: every invocation really creates a vehicle.
            event: Box::new(move |n| {
                let body = json!({"vin": format!("1BENCH{:011}", n + std::process::id() as usize * 100_000), "name": "Bench", "make": "Volvo", "model": "FH", "year": 2022});
                rest_event(TENANT, &create_vehicle_key, "POST", "/vehicles", None, None, Some(body))
            }),
        },
        Subject {
            name: "update-vehicle".into(),
            command: binary("update-vehicle"),
            cwd: None,
            round_trips: 3,
            event: rest("PUT", "/vehicles", Some(vehicle.clone()), None, Some(truck)),
        },
        Subject {
            name: "patch-vehicle".into(),
            command: binary("patch-vehicle"),
            cwd: None,
            // Read, then the conditional write (as PUT).
            round_trips: 3,
            event: rest("PATCH", "/vehicles", Some(vehicle.clone()), None, Some(json!({"odometer_km": 2}))),
        },
        Subject {
            name: "list-inspection-templates".into(),
            command: binary("list-inspection-templates"),
            cwd: None,
            round_trips: 2,
            event: {
                let key_id = seed.key_id.clone();
                Box::new(move |_| {
                    rest_event(TEMPLATES_TENANT, &key_id, "GET", "/inspection-templates", None, None, None)
                })
            },
        },
        Subject {
            name: "list-inspections".into(),
            command: binary("list-inspections"),
            cwd: None,
            round_trips: 2,
            event: rest("GET", "/inspections", None, Some(json!({"vehicle_id": vehicle.clone()})), None),
        },
        Subject {
            name: "get-inspection".into(),
            command: binary("get-inspection"),
            cwd: None,
            round_trips: 2,
            event: rest("GET", "/inspections", Some(seed.inspection_id.clone()), None, None),
        },
        Subject {
            name: "create-inspection".into(),
            command: binary("create-inspection"),
            cwd: None,
            round_trips: 3,
            event: rest("POST", "/inspections", None, None, Some(inspection_body(&vehicle))),
        },
        Subject {
            name: "create-webhook".into(),
            command: binary("create-webhook"),
            cwd: None,
            round_trips: 2,
            event: {
                let key_id = seed.key_id.clone();
                let body = json!({"url": "https://hooks.example.com/new", "events": ["inspection.failed"]});
                Box::new(move |_| {
                    rest_event(HOOKS_CREATE_TENANT, &key_id, "POST", "/webhooks", None, None, Some(body.clone()))
                })
            },
        },
        Subject {
            name: "list-webhooks".into(),
            command: binary("list-webhooks"),
            cwd: None,
            round_trips: 2,
            event: hooks_rest(HOOKS_TENANT, "GET", "/webhooks", None, None),
        },
        Subject {
            name: "get-webhook".into(),
            command: binary("get-webhook"),
            cwd: None,
            round_trips: 2,
            event: hooks_rest(HOOKS_TENANT, "GET", "/webhooks", Some(seed.hooks.read_id.clone()), None),
        },
        Subject {
            name: "update-webhook".into(),
            command: binary("update-webhook"),
            cwd: None,
            // The count, the read, the conditional update.
            round_trips: 3,
            event: {
                let mut replacement = seed.hooks.write.clone();
                for server_owned in ["id", "version", "created_at", "updated_at", "disabled_reason"] {
                    replacement.as_object_mut().map(|fields| fields.remove(server_owned));
                }
                hooks_rest(HOOKS_WRITE_TENANT, "PUT", "/webhooks", write_id.clone(), Some(replacement))
            },
        },
        Subject {
            name: "delete-webhook".into(),
            command: binary("delete-webhook"),
            cwd: None,
            round_trips: 2,
            event: {
                let (key_id, ids) = (seed.key_id.clone(), seed.hooks.delete_ids.clone());
                Box::new(move |n| {
                    let id = ids.get(n).map(String::as_str);
                    rest_event(HOOKS_DELETE_TENANT, &key_id, "DELETE", "/webhooks", id, None, None)
                })
            },
        },
        Subject {
            name: "rotate-webhook-secret".into(),
            command: binary("rotate-webhook-secret"),
            cwd: None,
            round_trips: 3,
            event: hooks_rest(HOOKS_WRITE_TENANT, "POST", "/webhooks", write_id.clone(), None),
        },
        Subject {
            name: "test-webhook".into(),
            command: binary("test-webhook"),
            cwd: None,
            round_trips: 3,
            event: hooks_rest(HOOKS_WRITE_TENANT, "POST", "/webhooks", write_id.clone(), None),
        },
        Subject {
            name: "list-webhook-deliveries".into(),
            command: binary("list-webhook-deliveries"),
            cwd: None,
            round_trips: 3,
            event: hooks_rest(HOOKS_TENANT, "GET", "/webhooks", Some(seed.hooks.read_id.clone()), None),
        },
        Subject {
            name: "webhook-dispatcher".into(),
            command: binary("webhook-dispatcher"),
            cwd: None,
            // The fleet's endpoints (one query), then one SQS SendMessageBatch.
            round_trips: 2,
            event: {
                let fleet = seed.tables.fleet.clone();
                Box::new(move |_| stream_event(&fleet, HOOKS_TENANT))
            },
        },
        Subject {
            name: "webhook-deliverer".into(),
            command: binary("webhook-deliverer"),
            cwd: None,
            // The endpoint, the attempt log; the POST to the receiver is not a DynamoDB call.
            round_trips: 2,
            event: {
                let id = seed.hooks.deliver_id.clone();
                Box::new(move |n| sqs_event(HOOKS_WRITE_TENANT, &id, n))
            },
        },
        Subject {
            name: "provisioner".into(),
            command: binary("provisioner"),
            cwd: None,
            round_trips: 3,
            event: Box::new(move |_| json!({"action": "get_key", "tenant_id": TENANT, "key_id": key_id})),
        },
    ];
    if let Some(python) = &plan.python {
        subjects.push(Subject {
            name: "authorizer (Python peer)".into(),
            command: vec![
                python.display().to_string(),
                "-m".into(),
                "awslambdaric".into(),
                "authorizer_peer.handler".into(),
            ],
            cwd: Some(workspace_root().join("tests/bench/python")),
            round_trips: 1,
            event: Box::new(authorizer_event),
        });
    }
    subjects
}

fn spawn(subject: &Subject, seed: &Seed, runtime_api: &str, dynamodb: &str, stdout: Stdio) -> Result<Child, Error> {
    let mut command = Command::new(&subject.command[0]);
    command
        .args(&subject.command[1..])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("AWS_LAMBDA_RUNTIME_API", runtime_api)
        .env("AWS_LAMBDA_FUNCTION_NAME", &subject.name)
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "bench")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", "bench")
        .env("AWS_LAMBDA_LOG_FORMAT", "JSON")
        // The template's default ApplicationLogLevel: a line per request, as deployed.
        .env("AWS_LAMBDA_LOG_LEVEL", "INFO")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "local")
        .env("AWS_SECRET_ACCESS_KEY", "local")
        .env("AWS_ENDPOINT_URL_DYNAMODB", format!("http://{dynamodb}"))
        .env("KEYS_TABLE", &seed.tables.keys)
        .env("FLEET_TABLE", &seed.tables.fleet)
        .env("AUDIT_TABLE", &seed.tables.audit)
        .env("USAGE_TABLE", &seed.tables.usage)
        // The cursor secret is read from the emulator itself (on first use, not at init).
        .env("CURSOR_SECRET_ARN", &seed.cursor_secret)
        .env("AWS_ENDPOINT_URL_SECRETS_MANAGER", &seed.emulator)
        .env("FLEETGATE_ENVIRONMENT", "test")
        // The webhook functions: SQS through the same counting proxy (its time is not
        // the function's), a fleet maximum the creating subject never meets, and
        // loopback allowed for the bench's receiver (as the local stack allows it).
        .env("AWS_ENDPOINT_URL_SQS", format!("http://{dynamodb}"))
        .env("WEBHOOK_QUEUE_URL", &seed.hooks.queue_url)
        .env("WEBHOOK_DEAD_LETTER_QUEUE_URL", &seed.hooks.queue_url)
        .env("WEBHOOK_ENDPOINTS_PER_TENANT", "1000000")
        .env(fleetgate_webhooks::target_url::ALLOW_LOOPBACK_VAR, "1")
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(Stdio::null())
        .kill_on_drop(true);
    if let Some(cwd) = &subject.cwd {
        command.current_dir(cwd);
    }
    Ok(command.spawn()?)
}

/// Waits for the first `GET /next` (init done) and returns when it came.
async fn await_init(api: &mut RuntimeApi, child: &mut Child) -> Result<Instant, Error> {
    loop {
        tokio::select! {
            event = api.event() => match event {
                Event::NextRequested(at) => return Ok(at),
                Event::Failed { body, .. } => return Err(format!("init failed: {body}").into()),
                _ => {}
            },
            status = child.wait() => return Err(format!("process exited during init: {:?}", status?).into()),
            _ = tokio::time::sleep(Duration::from_secs(20)) => return Err("init took more than 20 s".into()),
        }
    }
}

/// Hands out one invocation and returns (handler time, response body).
async fn invoke_once(api: &mut RuntimeApi, request_id: String, payload: String) -> Result<(Duration, String), Error> {
    api.invoke(Invocation { request_id: request_id.clone(), payload }).await;
    let mut handed = None;
    loop {
        let event =
            tokio::time::timeout(Duration::from_secs(20), api.event()).await.map_err(|_| "no response within 20 s")?;
        match event {
            Event::HandedOut { request_id: id, at } if id == request_id => handed = Some(at),
            Event::Responded { request_id: id, body, at } if id == request_id => {
                let handed = handed.ok_or("response before hand-out")?;
                return Ok((at - handed, body));
            }
            Event::Failed { body, .. } => return Err(format!("invocation failed: {body}").into()),
            _ => {}
        }
    }
}

/// A response counts as an error if the function failed, answered a 4xx/5xx, or (the
/// webhook functions) reported a record or message it could not handle.
fn is_error(body: &str) -> bool {
    let value: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    let failed_items = value.get("batchItemFailures").and_then(Value::as_array).is_some_and(|items| !items.is_empty());
    value.get("statusCode").and_then(Value::as_u64).is_some_and(|status| status >= 400) || failed_items
}

/// One process start: its init (start to its first `/next`), and within it the
/// process's time on a CPU and runnable but waiting for one.
#[derive(Clone, Copy)]
struct ColdStart {
    init: Duration,
    on_cpu: Duration,
    run_queue_wait: Duration,
}

/// A binary's cold starts, each with its ratio to the hello start just before it.
#[derive(Default)]
struct ColdStarts {
    starts: Vec<ColdStart>,
    hello_ratios: Vec<f64>,
}

impl ColdStarts {
    fn push(&mut self, start: ColdStart, hello_beside: Option<Duration>) {
        self.starts.push(start);
        if let Some(hello) = hello_beside {
            self.hello_ratios.push(start.init.as_secs_f64() / hello.as_secs_f64());
        }
    }
}

/// A pause before a process start: the emulator finishes answering the previous
/// process's call, the killed process is reaped.
async fn settle() {
    tokio::time::sleep(Duration::from_millis(50)).await;
}

/// `cold_start` after the machine has settled.
async fn settled_cold_start(seed: &Seed, subject: &Subject, upstream: &str, n: usize) -> Result<ColdStart, Error> {
    settle().await;
    cold_start(seed, subject, upstream, n).await
}

/// One cold start of `subject` (its `n`-th): process start to its first `/next`;
/// then its first invocation must succeed without having connected during init.
async fn cold_start(seed: &Seed, subject: &Subject, upstream: &str, n: usize) -> Result<ColdStart, Error> {
    let mut api = RuntimeApi::start().await?;
    let proxy = CountingProxy::start(upstream.to_owned()).await?;
    let started = Instant::now();
    let mut child = spawn(subject, seed, &api.address, &proxy.address, Stdio::null())?;
    let ready = await_init(&mut api, &mut child).await?;
    // Parked on its first `/next` (not answered yet): all it has run so far is init.
    let sched = ProcessSchedstat::read(child.id().ok_or("no pid")?)?;
    if proxy.connections() > 0 {
        return Err(format!("opened {} DynamoDB connection(s) during init", proxy.connections()).into());
    }
    let (_, body) = invoke_once(&mut api, format!("cold-{n}"), (subject.event)(n).to_string()).await?;
    if is_error(&body) {
        return Err(format!("first invocation answered an error: {body}").into());
    }
    child.kill().await?;
    Ok(ColdStart { init: ready - started, on_cpu: sched.on_cpu, run_queue_wait: sched.run_queue_wait })
}

/// The warm invocations of `subject` in one process, reported with its cold starts' `inits`.
async fn measure_warm(
    plan: &Plan,
    seed: &Seed,
    subject: &Subject,
    upstream: &str,
    inits: &ColdStarts,
) -> Result<FunctionResult, Error> {
    let mut api = RuntimeApi::start().await?;
    let proxy = CountingProxy::start(upstream.to_owned()).await?;
    // Its logs are read (a pipe, as Lambda's log capture is), for its own timing.
    let mut child = spawn(subject, seed, &api.address, &proxy.address, Stdio::piped())?;
    let mut timing = timing::TimingLines::follow(child.stdout.take().ok_or("no stdout")?);
    await_init(&mut api, &mut child).await?;
    let pid = child.id().ok_or("no pid")?;
    let mut own_times = Vec::with_capacity(plan.warm_invocations);
    let mut durations = Vec::with_capacity(plan.warm_invocations);
    let mut overheads = Vec::with_capacity(plan.warm_invocations);
    let mut cpu = Vec::with_capacity(plan.warm_invocations);
    let mut waits = Vec::with_capacity(plan.warm_invocations);
    let mut errors = 0;
    let mut rss_at_100 = 0;
    // Read between invocations, when the function is parked on `/next`: the
    // difference of two readings is one invocation's CPU, whatever it did after
    // posting its response included.
    let mut sched = ProcessSchedstat::read(pid)?;
    for n in 0..plan.warm_invocations {
        let database_before = proxy.in_flight();
        let (duration, body) =
            invoke_once(&mut api, format!("warm-{n}"), (subject.event)(plan.cold_starts + n).to_string()).await?;
        errors += usize::from(is_error(&body));
        durations.push(duration);
        // The function's own time: the handler's minus its DynamoDB calls' time in flight.
        overheads.push(duration.saturating_sub(proxy.in_flight() - database_before));
        own_times.extend(timing.next().await);
        let after = ProcessSchedstat::read(pid)?;
        cpu.push(after.on_cpu.saturating_sub(sched.on_cpu));
        waits.push(after.run_queue_wait.saturating_sub(sched.run_queue_wait));
        sched = after;
        if n + 1 == 100.min(plan.warm_invocations) {
            rss_at_100 = proc_status_kb(pid, "VmRSS")?;
        }
    }
    let rss_at_end = proc_status_kb(pid, "VmRSS")?;
    let peak_rss = proc_status_kb(pid, "VmHWM")?;
    // Read while the function lives: its own exit closes its connections.
    let connections = Connections {
        opened: proxy.connections(),
        abandoned: proxy.abandoned(),
        closed_by_emulator: proxy.closed_by_upstream(),
    };
    child.kill().await?;
    Ok(FunctionResult::measured(
        &subject.name,
        Measured {
            init: report::Stats::of(&inits.starts.iter().map(|s| s.init).collect::<Vec<_>>()),
            init_cpu: report::Stats::of(&inits.starts.iter().map(|s| s.on_cpu).collect::<Vec<_>>()),
            init_run_queue_wait: report::Stats::of(&inits.starts.iter().map(|s| s.run_queue_wait).collect::<Vec<_>>()),
            init_vs_hello: report::median(&inits.hello_ratios),
            warm: report::Stats::of(&durations),
            overhead: report::Stats::of(&overheads),
            own: (!own_times.is_empty()).then(|| report::Stats::of(&own_times)),
            cpu: report::Stats::of(&cpu),
            run_queue_wait: report::Stats::of(&waits),
            round_trips: subject.round_trips,
            peak_rss_kb: peak_rss,
            rss_growth_kb: rss_at_end as i64 - rss_at_100 as i64,
            connections,
            errors,
        },
    ))
}

/// A process's scheduler accounting, summed over its threads
/// (`/proc/<pid>/task/*/schedstat`: nanoseconds on a CPU, nanoseconds runnable
/// but waiting for one).
struct ProcessSchedstat {
    on_cpu: Duration,
    run_queue_wait: Duration,
}

impl ProcessSchedstat {
    fn read(pid: u32) -> Result<ProcessSchedstat, Error> {
        let (mut on_cpu, mut run_queue_wait) = (0u64, 0u64);
        for task in std::fs::read_dir(format!("/proc/{pid}/task"))? {
            // A thread may end between the listing and the read: it no longer counts.
            let Ok(line) = std::fs::read_to_string(task?.path().join("schedstat")) else { continue };
            let mut fields = line.split_whitespace().map(|f| f.parse::<u64>().unwrap_or(0));
            on_cpu += fields.next().unwrap_or(0);
            run_queue_wait += fields.next().unwrap_or(0);
        }
        Ok(ProcessSchedstat {
            on_cpu: Duration::from_nanos(on_cpu),
            run_queue_wait: Duration::from_nanos(run_queue_wait),
        })
    }
}

fn proc_status_kb(pid: u32, field: &str) -> Result<u64, Error> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(&format!("{field}:")))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| format!("{field} not in /proc/{pid}/status").into())
}

/// The limiter's cost in CPU, apart from the emulator's: microseconds of this
/// thread's CPU per `UsageCounter::admit` (one conditional UpdateItem and its
/// bookkeeping) and per bare GetItem through the same client, medians of rounds
/// taken in turn (so the machine's load falls on both alike). Their difference is
/// the limiter's own logic; the rest is what any DynamoDB call costs a client.
fn limiter_cpu(endpoint: String, usage_table: String) -> Result<(f64, f64), Error> {
    let run = move || -> Result<(f64, f64), String> {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
        runtime.block_on(async {
            let thread_cpu_ns = || -> u64 {
                std::fs::read_to_string("/proc/thread-self/schedstat")
                    .ok()
                    .and_then(|s| s.split_whitespace().next()?.parse().ok())
                    .unwrap_or(0)
            };
            let client = dynamo_client(&endpoint);
            let counter = fleetgate_api::usage::UsageCounter::new(client.clone(), usage_table.clone());
            let auth = fleetgate_scopes::AuthContext::new(
                fleetgate_scopes::TenantId::parse("bench-limiter").map_err(|e| e.to_string())?,
                "key_benchlimiterbenchlim".into(),
                "limiter".into(),
                fleetgate_scopes::ScopeSet::parse_granted(["vehicles:read"]).map_err(|e| e.to_string())?,
                fleetgate_scopes::Environment::Test,
                None,
            )
            .with_limits(fleetgate_scopes::Limits {
                rate_limit: Some(
                    "1000000/second".parse().map_err(|e: fleetgate_scopes::InvalidRateLimit| e.to_string())?,
                ),
                ..Default::default()
            });
            let (mut counts, mut gets) = (Vec::new(), Vec::new());
            for _ in 0..10 {
                let started = thread_cpu_ns();
                for _ in 0..200 {
                    let verdict = counter.admit(&auth, fleetgate_api::Timestamp::now().unix_seconds()).await;
                    if !verdict.state.counted {
                        return Err("the limiter could not count".to_owned());
                    }
                }
                counts.push((thread_cpu_ns() - started) as f64 / 200.0 / 1000.0);
                let started = thread_cpu_ns();
                for _ in 0..200 {
                    client
                        .get_item()
                        .table_name(&usage_table)
                        .key("pk", aws_sdk_dynamodb::types::AttributeValue::S("key#none".into()))
                        .key("sk", aws_sdk_dynamodb::types::AttributeValue::S("none".into()))
                        .send()
                        .await
                        .map_err(|e| e.to_string())?;
                }
                gets.push((thread_cpu_ns() - started) as f64 / 200.0 / 1000.0);
            }
            let median = |mut v: Vec<f64>| {
                v.sort_by(f64::total_cmp);
                v[v.len() / 2]
            };
            Ok((median(counts), median(gets)))
        })
    };
    std::thread::spawn(run).join().map_err(|_| "the limiter measurement panicked")?.map_err(Into::into)
}

/// The floor: a bare GetItem from this process, through the same proxy, same SDK.
async fn dynamodb_round_trip(endpoint: &str, seed: &Seed, count: usize) -> Result<report::Stats, Error> {
    let client = dynamo_client(endpoint);
    let hash = fleetgate_api::keys::ApiKey::parse(&seed.api_key).map_err(|e| e.to_string())?.hash();
    let mut durations = Vec::with_capacity(count);
    for _ in 0..count + 50 {
        let started = Instant::now();
        client
            .get_item()
            .table_name(&seed.tables.keys)
            .key("key_hash", aws_sdk_dynamodb::types::AttributeValue::S(hash.as_str().to_owned()))
            .consistent_read(true)
            .send()
            .await?;
        durations.push(started.elapsed());
    }
    // The first 50 warm the connection, as a warm function's would be.
    Ok(report::Stats::of(&durations[50..]))
}
