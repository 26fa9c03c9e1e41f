//! `local-stack setup`: creates the local tables from the SAM template and seeds
//! the `demo` tenant through the provisioner's own handler, then prints the demo keys.
//! `local-stack check-secrets <log>...`: fails if a table or log leaks a key (make test).
//! Configuration comes from `[workspace.metadata.lambda.env]`, the same env the
//! functions get under `cargo lambda watch`; variables already set win.

use fleetgate_api::audit::{AuditLog, AuditRecord};
use fleetgate_api::cursor_keys::CursorKeys;
use fleetgate_api::keys::KeyStore;
use fleetgate_api::{ApiError, Timestamp};
use fleetgate_fleet::templates::TemplateStore;
use fleetgate_fleet::vehicles::{Vehicle, VehicleInput, VehicleStore, WriteError};
use fleetgate_local::{Error, TableNames, Template, create_tables, local_env};
use fleetgate_scopes::TenantId;
use lambda_runtime::{Context, LambdaEvent};
use serde_json::{Value, json};

const DEMO_TENANT: &str = "demo";

fn main() -> Result<(), Error> {
    let command = std::env::args().nth(1).unwrap_or_default();
    if command == "openapi" {
        println!("{}", serde_json::to_string_pretty(&fleetgate_local::openapi::document())?);
        return Ok(());
    }
    if command == "metrics" {
        return metrics(&std::env::args().skip(2).collect::<Vec<_>>());
    }
    if !["setup", "tables", "check-secrets"].contains(&command.as_str()) {
        eprintln!(
            "usage: local-stack setup    # tables + demo tenant + demo keys\n       local-stack tables   # tables only\n       local-stack openapi  # print docs/openapi.json\n       local-stack metrics [--require-coverage] <log>...  # EMF metrics in logs, checked and summed\n       local-stack check-secrets <functions log> <log>...  # no key in tables or logs, no key hash in logs"
        );
        std::process::exit(2);
    }
    for (name, value) in local_env()? {
        if std::env::var_os(&name).is_none() {
            #[allow(unsafe_code)]
            // SAFETY: no other thread exists yet (the runtime is built below), so nothing reads the env concurrently.
            unsafe {
                std::env::set_var(&name, &value)
            };
        }
    }
    tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(run(&command))
}

/// Prints the EMF metrics of `args` (log files); with `--require-coverage`, fails
/// unless they show everything a whole `make test` run must (every route, every
/// refusal reason, …: `metrics::expected_in_a_test_run`).
fn metrics(args: &[String]) -> Result<(), Error> {
    let require_coverage = args.iter().any(|a| a == "--require-coverage");
    let mut summary = fleetgate_local::metrics::Summary::default();
    for path in args.iter().filter(|a| !a.starts_with("--")) {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
        fleetgate_local::metrics::summarise(&text, &mut summary).map_err(|e| format!("{path}: {e}"))?;
    }
    print!("{}", fleetgate_local::metrics::render(&summary));
    if require_coverage {
        let expected = fleetgate_local::metrics::expected_in_a_test_run();
        let missing = fleetgate_local::metrics::missing(&summary, &expected);
        if !missing.is_empty() {
            return Err(format!("the run's metrics lack: {}", missing.join("; ")).into());
        }
    }
    Ok(())
}

async fn run(command: &str) -> Result<(), Error> {
    let client = fleetgate_api::dynamo::client();
    let names = TableNames {
        keys: std::env::var("KEYS_TABLE")?,
        fleet: std::env::var("FLEET_TABLE")?,
        audit: std::env::var("AUDIT_TABLE")?,
        usage: std::env::var("USAGE_TABLE")?,
    };
    if command == "check-secrets" {
        let logs: Vec<String> = std::env::args().skip(2).collect();
        let checked = fleetgate_local::secrets::check(&client, &names, &logs).await?;
        eprintln!(
            "==> no API key in {} stored items; no key and none of {} key hashes in {} KiB of logs",
            checked.items,
            checked.key_hashes,
            checked.log_bytes / 1024
        );
        return Ok(());
    }
    create_tables(&client, &Template::load_default()?, &names).await?;
    let secret = std::env::var("CURSOR_SECRET_ARN")?;
    fleetgate_local::ensure_secret(&fleetgate_api::cursor_keys::client(), &secret, &random_secret()).await?;
    let queues = fleetgate_local::ensure_queues(&fleetgate_webhooks::queue::client(), &local_env()?).await?;
    eprintln!(
        "==> tables ready: {}, {}, {}, {}; cursor secret {secret}; webhook queues {}",
        names.keys,
        names.fleet,
        names.audit,
        names.usage,
        queues.join(", ")
    );
    if command == "tables" {
        return Ok(());
    }

    let vehicles = VehicleStore::new(client.clone(), names.fleet.clone());
    let state = provisioner::State {
        keys: KeyStore::new(client.clone(), names.keys.clone()),
        audit: AuditLog::new(client.clone(), names.audit.clone()),
        templates: TemplateStore::new(client.clone(), names.fleet.clone()),
        tenants: fleetgate_fleet::tenants::TenantStore::new(client.clone(), names.fleet.clone()),
        cursors: CursorKeys::from_env()?,
        environment: fleetgate_api::dynamo::deployment_environment()?,
        authorizer_cache: None,
        usage: fleetgate_api::usage::UsageCounter::new(client, names.usage.clone()),
        rate_limits: provisioner::RateLimitSettings::from_env()?,
    };
    create_demo_tenant(&state).await?;
    seed_vehicles(&vehicles, &state.audit).await?;
    seed_templates(&state).await?;
    let full_fleet = create_demo_key(&state, "demo-full-fleet", "full-fleet").await?;
    let read_only = create_demo_key(&state, "demo-read-only", "read-only").await?;
    println!();
    println!("Demo tenant '{DEMO_TENANT}' is ready. Keys (shown once, paste them as they are):");
    println!("  full-fleet : {full_fleet}");
    println!("  read-only  : {read_only}");
    println!();
    println!("Try:");
    println!("  curl -s http://127.0.0.1:9000/me -H 'X-API-Key: {read_only}'");
    println!("  curl -s http://127.0.0.1:9000/me            # 401 problem+json");
    println!("  curl -s 'http://127.0.0.1:9000/vehicles?limit=2' -H 'X-API-Key: {read_only}'");
    println!("  curl -s http://127.0.0.1:9000/inspection-templates -H 'X-API-Key: {read_only}'");
    println!();
    println!("Manage keys with the admin CLI (target/debug/fleetgate, or `cargo run --bin fleetgate --`):");
    println!("  fleetgate --local keys list --tenant {DEMO_TENANT}");
    println!(
        "  fleetgate --local keys create --tenant {DEMO_TENANT} --name tablet-9 --preset read-only --rate 5/second"
    );
    println!("  fleetgate --local audit --tenant {DEMO_TENANT} --since 1h");
    println!();
    Ok(())
}

/// 48 random alphanumerics, as the template's `GenerateSecretString` makes them.
fn random_secret() -> String {
    let text: String = (0..3).map(|_| fleetgate_api::keys::new_public_id("")).collect();
    text[..48].to_owned()
}

/// A handful of demo vehicles; on a re-run against a live DynamoDB Local their VINs exist and they are skipped.
async fn seed_vehicles(vehicles: &VehicleStore, audit: &AuditLog) -> Result<(), Error> {
    let tenant = TenantId::parse(DEMO_TENANT)?;
    let demo = [
        ("1HGCM82633A004352", "Truck 12", "Volvo", "FH16", 2022, "AB-123", "active", 120_000),
        ("WDB9634031L738294", "Truck 7", "Mercedes-Benz", "Actros", 2020, "CD-456", "active", 310_500),
        ("YS2R4X20005399401", "Truck 3", "Scania", "R450", 2019, "EF-789", "in_shop", 402_250),
        ("XLRTE47MS0E963219", "Van 2", "DAF", "XF", 2023, "GH-012", "active", 45_800),
        ("VF611A165HD008374", "Old Truck 1", "Renault", "T480", 2014, "IJ-345", "retired", 988_100),
    ];
    let mut created = 0;
    for (vin, name, make, model, year, plate, status, odometer) in demo {
        let body = json!({"vin": vin, "name": name, "make": make, "model": model, "year": year,
                          "license_plate": plate, "status": status, "odometer_km": odometer});
        let vehicle = Vehicle::create(VehicleInput::parse(body, Timestamp::now())?, Timestamp::now());
        let record = AuditRecord::new(
            tenant.clone(),
            None,
            "seed_vehicle",
            Some(vehicle.id.clone()),
            "ok",
            "local-seed",
            audit.retention_days(),
        );
        match vehicles.create(&tenant, &vehicle, vec![audit.put_item(&record)?]).await {
            Ok(()) => created += 1,
            Err(WriteError::DuplicateVin { .. }) => {}
            Err(other) => {
                return Err(format!("seeding vehicles failed: {:?}", ApiError::from(other)).into());
            }
        }
    }
    eprintln!("==> demo vehicles: {created} created, {} already there", demo.len() - created);
    Ok(())
}

/// The demo tenant's checklists, put through the provisioner as an admin would.
async fn seed_templates(state: &provisioner::State) -> Result<(), Error> {
    let item = |id: &str, label: &str, category: &str, required: bool| json!({"id": id, "label": label, "category": category, "required": required});
    let templates = [
        json!({"id": "tpl_pretrip", "name": "Pre-trip inspection",
        "description": "Daily walk-around before the first trip (driver vehicle inspection).",
        "items": [
            item("brakes", "Service and parking brakes", "safety", true),
            item("tyres", "Tyres: tread depth, pressure, damage", "safety", true),
            item("lights", "Head, tail, brake and indicator lights", "safety", true),
            item("horn", "Horn", "safety", true),
            item("wipers", "Wipers and washers", "visibility", true),
            item("mirrors", "Mirrors and windscreen", "visibility", true),
            item("fluid_leaks", "No fuel, oil or coolant leaks", "mechanical", true),
            item("coupling", "Coupling devices and fifth wheel", "mechanical", false),
            item("emergency_kit", "Fire extinguisher, triangles, first-aid kit", "equipment", true),
        ]}),
        json!({"id": "tpl_posttrip", "name": "Post-trip inspection",
        "description": "End-of-day report of anything that needs the workshop.",
        "items": [
            item("body_damage", "New body damage", "body", true),
            item("warning_lights", "Dashboard warning lights", "mechanical", true),
            item("tyres", "Tyres", "safety", true),
            item("cab_clean", "Cab left clean", "housekeeping", false),
        ]}),
    ];
    for template in templates {
        let event = json!({"action": "put_inspection_template", "tenant_id": DEMO_TENANT, "template": template});
        provisioner::handler(state, LambdaEvent::new(event, Context::default())).await?;
    }
    eprintln!("==> demo inspection templates: tpl_pretrip, tpl_posttrip");
    Ok(())
}

/// The demo tenant, made as an admin would (`create_tenant`); already there on a re-run.
async fn create_demo_tenant(state: &provisioner::State) -> Result<(), Error> {
    let event =
        json!({"action": "create_tenant", "tenant_id": DEMO_TENANT, "name": "Demo fleet", "requested_by": "make dev"});
    match provisioner::handler(state, LambdaEvent::new(event, Context::default())).await {
        Ok(_) => Ok(()),
        Err(err) if err.code() == "tenant_exists" => Ok(()),
        Err(err) => Err(err.into()),
    }
}

async fn create_demo_key(state: &provisioner::State, name: &str, preset: &str) -> Result<String, Error> {
    let event = json!({
        "action": "create_key", "tenant_id": DEMO_TENANT, "name": name, "preset": preset,
        "description": "made by make dev",
    });
    let response = provisioner::handler(state, LambdaEvent::new(event, Context::default())).await?;
    match response.get("api_key") {
        Some(Value::String(key)) => Ok(key.clone()),
        _ => Err("provisioner returned no api_key".into()),
    }
}
