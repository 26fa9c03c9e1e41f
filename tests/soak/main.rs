//! Concurrency soak through the local gateway and `cargo lambda watch` (started by `make test`, which
//! sets FLEETGATE_E2E_URL and FLEETGATE_TEST_DYNAMODB_URL): 2,000 requests over
//! 32 concurrent loopback connections, mixing reads, creates with idempotency
//! keys (each key sent twice, often at the same time) and If-Match updates.
//! Then every answer is accounted for in DynamoDB: no 5xx, no lost or doubled
//! write, one audit record per write and per refused write.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use aws_sdk_dynamodb::Client;
use reqwest::StatusCode;
use serde_json::{Value, json};

const REQUESTS: usize = 2_000;
const CONNECTIONS: usize = 32;

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set: run the suite with `make test`"))
}

/// What the load saw, per kind of write.
#[derive(Default)]
struct Tally {
    /// Every status seen, by operation.
    statuses: BTreeMap<(&'static str, u16), usize>,
    /// Vehicle id each create idempotency key produced (every answer must agree).
    vehicles_by_key: BTreeMap<String, BTreeSet<String>>,
    inspections_by_key: BTreeMap<String, BTreeSet<String>>,
    /// Successful PUTs per vehicle.
    updates: BTreeMap<String, u64>,
    /// Answers to writes that were refused (409 busy key, 412 stale ETag): each is audited.
    refused_writes: usize,
    /// Answers that were replays of an earlier create (no write, no audit record).
    replays: usize,
}

struct Soak {
    http: reqwest::Client,
    base: String,
    key: String,
    /// Vehicles known to exist (for reads, updates and inspections).
    vehicles: Mutex<Vec<String>>,
    tally: Mutex<Tally>,
}

impl Soak {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn some_vehicle(&self, n: usize) -> String {
        let vehicles = self.vehicles.lock().unwrap();
        vehicles[n % vehicles.len()].clone()
    }

    fn record(&self, operation: &'static str, response: &reqwest::Response) {
        let status = response.status();
        assert!(!status.is_server_error(), "{operation} answered {status}");
        // Limits are on: every answer was counted, and says so.
        assert!(response.headers().contains_key("ratelimit"), "{operation}: no RateLimit header");
        *self.tally.lock().unwrap().statuses.entry((operation, status.as_u16())).or_default() += 1;
    }

    /// Operation `n` of the mix. Creates come in pairs sharing an idempotency key.
    async fn run(&self, n: usize) {
        match n % 10 {
            0 | 1 => self.create_vehicle(n / 2).await,
            2 | 3 => self.update_vehicle(n).await,
            4 | 5 => self.create_inspection(n / 2).await,
            6 => self.read("/vehicles?limit=50").await,
            7 => self.read(&format!("/vehicles/{}", self.some_vehicle(n))).await,
            8 => self.read("/inspections?limit=20").await,
            _ => self.read("/me").await,
        }
    }

    async fn read(&self, path: &str) {
        let response = self.http.get(self.url(path)).header("X-API-Key", &self.key).send().await.unwrap();
        let status = response.status();
        self.record("read", &response);
        assert_eq!(status, 200, "GET {path}: {}", response.text().await.unwrap());
    }

    async fn create_vehicle(&self, pair: usize) {
        let idempotency_key = format!("soak-vehicle-{pair}");
        let body = json!({"vin": format!("5YJ3E1EA7KF{pair:06}"), "name": format!("Soak {pair}"), "make": "Tesla",
                          "model": "Semi", "year": 2024, "odometer_km": 10});
        if let Some(id) = self.post_create("POST /vehicles", idempotency_key, &body).await {
            self.vehicles.lock().unwrap().push(id);
        }
    }

    async fn update_vehicle(&self, n: usize) {
        let id = self.some_vehicle(n);
        let current =
            self.http.get(self.url(&format!("/vehicles/{id}"))).header("X-API-Key", &self.key).send().await.unwrap();
        self.record("read", &current);
        let etag = current.headers()["etag"].to_str().unwrap().to_owned();
        // The GET body goes back as read (server fields unchanged), one field changed.
        let mut vehicle: Value = current.json().await.unwrap();
        vehicle["odometer_km"] = json!(vehicle["odometer_km"].as_i64().unwrap() + 1);
        let response = self
            .http
            .put(self.url(&format!("/vehicles/{id}")))
            .header("X-API-Key", &self.key)
            .header("If-Match", &etag)
            .json(&vehicle)
            .send()
            .await
            .unwrap();
        let status = response.status();
        self.record("PUT /vehicles/{id}", &response);
        if ![StatusCode::OK, StatusCode::PRECONDITION_FAILED].contains(&status) {
            panic!("PUT answered {status}: {}", response.text().await.unwrap());
        }
        let mut tally = self.tally.lock().unwrap();
        if status == StatusCode::OK {
            *tally.updates.entry(id).or_default() += 1;
        } else {
            // Another writer got there first: the ETag was stale.
            tally.refused_writes += 1;
        }
    }

    async fn create_inspection(&self, pair: usize) {
        let idempotency_key = format!("soak-inspection-{pair}");
        // Both requests of a pair must carry the same body: the first vehicle, always there.
        let vehicle_id = self.some_vehicle(0);
        let body = json!({"vehicle_id": vehicle_id, "template_id": "tpl_soak", "type": "pre_trip", "inspector": "Soak",
                          "performed_at": format!("2026-11-01T{:02}:{:02}:00Z", pair / 60 % 24, pair % 60), "odometer_km": 10,
                          "results": [{"item_id": "brakes", "status": if pair.is_multiple_of(3) { "fail" } else { "pass" }}]});
        self.post_create("POST /inspections", idempotency_key, &body).await;
    }

    /// Sends a create (`operation` is `POST <path>`) with `idempotency_key` and
    /// tallies its answer: the id it created or replayed under that key, or a
    /// refusal (409: the twin request is still being written). Returns the id.
    async fn post_create(&self, operation: &'static str, idempotency_key: String, body: &Value) -> Option<String> {
        let path = operation.trim_start_matches("POST ");
        let response = self
            .http
            .post(self.url(path))
            .header("X-API-Key", &self.key)
            .header("Idempotency-Key", &idempotency_key)
            .json(body)
            .send()
            .await
            .unwrap();
        let status = response.status();
        self.record(operation, &response);
        let replayed = response.headers().contains_key("idempotent-replayed");
        let answer: Value = response.json().await.unwrap();
        let mut tally = self.tally.lock().unwrap();
        match status {
            StatusCode::CREATED => {
                let id = answer["id"].as_str().unwrap().to_owned();
                let by_key =
                    if path == "/vehicles" { &mut tally.vehicles_by_key } else { &mut tally.inspections_by_key };
                by_key.entry(idempotency_key).or_default().insert(id.clone());
                tally.replays += usize::from(replayed);
                Some(id)
            }
            // Only "the twin is still running": a VIN conflict here would mean the twin
            // was not recognised as the same request.
            StatusCode::CONFLICT => {
                assert_eq!(answer["code"], "idempotency_key_in_progress", "{operation}: {answer}");
                tally.refused_writes += 1;
                None
            }
            other => panic!("{operation} answered {other}: {answer}"),
        }
    }
}

/// Every item of `tenant` in `table` (partition attribute `pk_name`), read straight from DynamoDB.
async fn items(db: &Client, table: &str, pk_name: &str, tenant: &str) -> Vec<Value> {
    let mut all = Vec::new();
    let mut start = None;
    loop {
        let output = db
            .query()
            .table_name(table)
            .key_condition_expression("#pk = :t")
            .expression_attribute_names("#pk", pk_name)
            .expression_attribute_values(":t", serde_dynamo::to_attribute_value(tenant).unwrap())
            // Pages of 200: the emulator spends ~1.5 ms per item returned, and one
            // unbounded page of a soak's audit trail would outlast the 4 s timeout.
            .limit(200)
            .set_exclusive_start_key(start)
            .send()
            .await
            .unwrap();
        all.extend(output.items.unwrap_or_default().into_iter().map(fleetgate_tests::item_json));
        start = output.last_evaluated_key;
        if start.is_none() {
            return all;
        }
    }
}

#[tokio::test]
async fn two_thousand_mixed_requests_over_32_connections_lose_and_double_nothing() {
    let base = env("FLEETGATE_E2E_URL");
    let db = fleetgate_api::dynamo::local_client(&env("FLEETGATE_TEST_DYNAMODB_URL"));
    let tables = fleetgate_local::local_env().unwrap();
    let tenant = format!("soak-{}", std::process::id());
    let http = reqwest::Client::builder().pool_max_idle_per_host(CONNECTIONS).build().unwrap();
    let provision = |event: Value| {
        let http = http.clone();
        let url = format!("{base}/2015-03-31/functions/provisioner/invocations");
        async move { http.post(url).json(&event).send().await.unwrap().json::<Value>().await.unwrap() }
    };
    provision(json!({"action": "create_tenant", "tenant_id": tenant, "name": "Soak fleet"})).await;
    let template = json!({"id": "tpl_soak", "name": "Soak", "items": [{"id": "brakes", "label": "Brakes"}]});
    provision(json!({"action": "put_inspection_template", "tenant_id": tenant, "template": template})).await;
    // Limits on (every request counted), but above what the soak can reach on this
    // machine: it measures integrity under concurrency; tests/integration/rate_limits.rs
    // measures refusals. The count itself is checked below.
    let created =
        provision(json!({"action": "create_key", "tenant_id": tenant, "name": "soak", "preset": "full-fleet",
                                   "rate_limit": {"requests": 1000, "per": "second"}}))
        .await;
    let soak = Soak {
        http,
        base: base.clone(),
        key: created["api_key"].as_str().unwrap().to_owned(),
        vehicles: Mutex::new(Vec::new()),
        tally: Mutex::new(Tally::default()),
    };
    // A first vehicle, so reads and updates have something from the start.
    soak.create_vehicle(999_999).await;

    let next = AtomicUsize::new(0);
    let workers = (0..CONNECTIONS).map(|_| async {
        loop {
            let n = next.fetch_add(1, Ordering::SeqCst);
            if n >= REQUESTS {
                return;
            }
            soak.run(n).await;
        }
    });
    let started = std::time::Instant::now();
    futures::future::join_all(workers).await;
    let took = started.elapsed();

    let tally = soak.tally.into_inner().unwrap();
    let answered: usize = tally.statuses.values().sum();
    eprintln!("soak: {answered} answers in {took:?}: {:?}", tally.statuses);
    // Every create key produced one id, however many times it was sent.
    for (key, ids) in tally.vehicles_by_key.iter().chain(&tally.inspections_by_key) {
        assert_eq!(ids.len(), 1, "{key} created {ids:?}");
    }

    let fleet = items(&db, &tables["FLEET_TABLE"], "pk", &tenant).await;
    let of_kind =
        |prefix: &str| fleet.iter().filter(|i| i["sk"].as_str().unwrap().starts_with(prefix)).collect::<Vec<_>>();
    let stored_vehicles: BTreeMap<String, u64> = of_kind("vehicle#")
        .iter()
        .map(|v| (v["id"].as_str().unwrap().to_owned(), v["version"].as_u64().unwrap()))
        .collect();
    let expected_vehicles: BTreeSet<String> = tally.vehicles_by_key.values().flatten().cloned().collect();
    assert_eq!(stored_vehicles.keys().cloned().collect::<BTreeSet<_>>(), expected_vehicles, "no lost or extra vehicle");
    assert_eq!(of_kind("vin#").len(), stored_vehicles.len(), "one VIN item per vehicle");
    // Every successful update bumped the version exactly once.
    for (id, version) in &stored_vehicles {
        assert_eq!(*version, 1 + tally.updates.get(id).copied().unwrap_or(0), "vehicle {id}");
    }
    let stored_inspections: BTreeSet<String> =
        of_kind("inspection#").iter().map(|i| i["id"].as_str().unwrap().to_owned()).collect();
    let expected_inspections: BTreeSet<String> = tally.inspections_by_key.values().flatten().cloned().collect();
    assert_eq!(stored_inspections, expected_inspections, "no lost or extra inspection");

    // One audit record per write, and one per refused write; replays and reads write none.
    let audit = items(&db, &tables["AUDIT_TABLE"], "tenant_id", &tenant).await;
    let count =
        |action: &str, ok: bool| audit.iter().filter(|r| r["action"] == action && (r["outcome"] == "ok") == ok).count();
    let updates: u64 = tally.updates.values().sum();
    assert_eq!(count("POST /vehicles", true), stored_vehicles.len());
    assert_eq!(count("PUT /vehicles/{id}", true) as u64, updates);
    assert_eq!(count("POST /inspections", true), stored_inspections.len());
    let refused =
        count("POST /vehicles", false) + count("PUT /vehicles/{id}", false) + count("POST /inspections", false);
    assert_eq!(refused, tally.refused_writes);
    let writes_answered_2xx = tally
        .statuses
        .iter()
        .filter(|((op, status), _)| *op != "read" && (200..300).contains(status))
        .map(|(_, n)| n)
        .sum::<usize>();
    assert_eq!(
        writes_answered_2xx,
        stored_vehicles.len() + updates as usize + stored_inspections.len() + tally.replays
    );
    assert!(answered >= REQUESTS, "{answered} answers");

    // Every request was counted exactly once against the key, under 32-way concurrency.
    let key_id = created["key"]["key_id"].as_str().unwrap();
    let usage = items(&db, &tables["USAGE_TABLE"], "pk", &format!("key#{key_id}")).await;
    let (scopes, months): (Vec<&Value>, Vec<&Value>) = usage.iter().partition(|item| item["sk"] == "scopes");
    let used: u64 = months.iter().map(|month| month["used"].as_u64().unwrap()).sum();
    assert_eq!(used as usize, answered, "counted requests");
    // And the scopes it used were noted for access reviews, beside the counts.
    for scope in ["vehicles:read", "vehicles:write", "inspections:write"] {
        assert!(scopes.first().is_some_and(|item| item[scope].is_u64()), "{scope} noted: {scopes:?}");
    }
}
