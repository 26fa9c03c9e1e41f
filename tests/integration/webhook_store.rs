//! The webhook endpoint store against the emulator: the per-tenant maximum
//! under concurrency, secrets kept out of lists and bodies, rotation overlap,
//! optimistic replacement and deletion giving the place back; the attempt log.

use futures::future::join_all;
use serde_json::json;

use fleetgate_api::Timestamp;
use fleetgate_scopes::TenantId;
use fleetgate_webhooks::deliveries::{DeliveryAttempt, DeliveryLog};
use fleetgate_webhooks::endpoints::{Endpoint, EndpointInput};
use fleetgate_webhooks::events::EventType;
use fleetgate_webhooks::signing::Secret;
use fleetgate_webhooks::store::{EndpointStore, EndpointWriteError, ROTATION_OVERLAP_SECONDS};
use fleetgate_webhooks::target_url::UrlPolicy;

use crate::helpers::TestStack;

fn endpoint(n: u32) -> Endpoint {
    let body = json!({"url": format!("https://hooks{n}.example.com/in"), "events": ["vehicle.created"]});
    Endpoint::create(EndpointInput::parse(body, UrlPolicy::default()).unwrap(), Timestamp::now())
}

async fn setup(max: u32) -> (TestStack, EndpointStore, TenantId) {
    let stack = TestStack::new().await;
    let store = EndpointStore::new(stack.client.clone(), stack.tables.fleet.clone(), max);
    let tenant = TenantId::parse(&stack.tenant).unwrap();
    (stack, store, tenant)
}

#[tokio::test]
async fn twelve_concurrent_creates_against_a_maximum_of_five_store_exactly_five() {
    let (_stack, store, tenant) = setup(5).await;
    let endpoints: Vec<(Endpoint, Secret)> = (0..12).map(|n| (endpoint(n), Secret::generate())).collect();
    let results = join_all(endpoints.iter().map(|(e, secret)| store.create(&tenant, e, secret, vec![]))).await;
    // A create that lost a race on the count item (DynamoDB cancels it with
    // TransactionConflict; the API answers 503) is retried, as a client would.
    let mut refused = 0;
    for ((endpoint, secret), mut result) in endpoints.iter().zip(results) {
        while let Err(EndpointWriteError::Db(err)) = &result {
            assert!(err.is_transient(), "{err:?}");
            result = store.create(&tenant, endpoint, secret, vec![]).await;
        }
        match result {
            Ok(()) => {}
            Err(EndpointWriteError::LimitReached(5)) => refused += 1,
            Err(other) => panic!("{other:?}"),
        }
    }
    let (listed, _) = store.list(&tenant, 100, None).await.unwrap();
    assert_eq!((listed.len(), refused), (5, 7));
    // Deleting one gives its place back.
    store.delete(&tenant, &listed[0].id, vec![]).await.unwrap();
    store.create(&tenant, &endpoint(100), &Secret::generate(), vec![]).await.unwrap();
    assert!(matches!(
        store.create(&tenant, &endpoint(200), &Secret::generate(), vec![]).await,
        Err(EndpointWriteError::LimitReached(5))
    ));
    assert!(matches!(store.delete(&tenant, &listed[0].id, vec![]).await, Err(EndpointWriteError::NotFound)));
}

#[tokio::test]
async fn secrets_are_stored_beside_the_body_and_lists_never_read_them() {
    let (stack, store, tenant) = setup(20).await;
    let created = endpoint(1);
    let secret = Secret::generate();
    store.create(&tenant, &created, &secret, vec![]).await.unwrap();
    let stored = store.get(&tenant, &created.id).await.unwrap().unwrap();
    assert_eq!((stored.endpoint.clone(), stored.secret.clone()), (created.clone(), secret.clone()));
    let raw = stack.fleet_items().await;
    let item = raw.iter().find(|i| i["sk"] == format!("webhook#{}", created.id)).unwrap();
    assert!(!item["body"].as_str().unwrap().contains(&secret.reveal()), "the body is what the API shows: no secret");
    let (listed, _) = store.list(&tenant, 10, None).await.unwrap();
    assert_eq!(listed, std::slice::from_ref(&created));
    // Another tenant does not see it, by id or in a list.
    let other = TenantId::parse(&format!("{}-other", stack.tenant)).unwrap();
    assert!(store.get(&other, &created.id).await.unwrap().is_none());
    assert!(store.list(&other, 10, None).await.unwrap().0.is_empty());
}

#[tokio::test]
async fn after_a_rotation_both_secrets_sign_for_24_hours_then_only_the_new_one() {
    let (_stack, store, tenant) = setup(20).await;
    let created = endpoint(2);
    let (old, new) = (Secret::generate(), Secret::generate());
    store.create(&tenant, &created, &old, vec![]).await.unwrap();
    let now = Timestamp::now().unix_seconds();
    store.rotate_secret(&tenant, &created.id, &new, now + ROTATION_OVERLAP_SECONDS, vec![]).await.unwrap();
    let stored = store.get(&tenant, &created.id).await.unwrap().unwrap();
    assert_eq!(stored.signing_secrets(now), [&new, &old]);
    assert_eq!(stored.signing_secrets(now + ROTATION_OVERLAP_SECONDS), [&new]);
    assert!(matches!(
        store.rotate_secret(&tenant, "whk_01JEZZZZZZZZZZZZZZZZZZZZZZ", &new, now, vec![]).await,
        Err(EndpointWriteError::NotFound)
    ));
}

#[tokio::test]
async fn a_replacement_applies_only_to_the_version_read_and_keeps_the_secret() {
    let (_stack, store, tenant) = setup(20).await;
    let created = endpoint(3);
    let secret = Secret::generate();
    store.create(&tenant, &created, &secret, vec![]).await.unwrap();
    let mut body = serde_json::to_value(&created).unwrap();
    body["description"] = json!("TMS sync");
    let input = EndpointInput::parse_replacement(body, UrlPolicy::default(), &created).unwrap();
    let next = created.replaced(input, Timestamp::now());
    store.replace(&tenant, &next, created.version, vec![]).await.unwrap();
    assert!(matches!(store.replace(&tenant, &next, created.version, vec![]).await, Err(EndpointWriteError::Stale)));
    let stored = store.get(&tenant, &created.id).await.unwrap().unwrap();
    assert_eq!((stored.endpoint, stored.secret), (next, secret));
}

#[tokio::test]
async fn the_attempt_log_lists_an_endpoints_attempts_newest_first_and_keeps_them_30_days() {
    let (stack, _store, tenant) = setup(20).await;
    let log = DeliveryLog::new(stack.client.clone(), stack.tables.fleet.clone());
    let attempt = |endpoint_id: &str, n: u32| DeliveryAttempt {
        id: DeliveryAttempt::new_id(),
        endpoint_id: endpoint_id.to_owned(),
        event_id: "evt_01JF0000000000000000000000".into(),
        event_type: EventType::InspectionFailed,
        attempt: n,
        attempted_at: Timestamp::now(),
        status: (n == 3).then_some(200),
        latency_ms: 12,
        delivered: n == 3,
        answer: if n == 3 { "ok".into() } else { "timed out after 10 s".into() },
        next_attempt_at: None,
    };
    let (a, b) = ("whk_01JF000000000000000000000A", "whk_01JF000000000000000000000B");
    let mut written = Vec::new();
    for n in 1..=3 {
        let one = attempt(a, n);
        log.record(&tenant, &one).await.unwrap();
        written.push(one);
        // Ids sort by their millisecond: keep the attempts apart.
        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
    }
    log.record(&tenant, &attempt(b, 1)).await.unwrap();

    let (first, next) = log.list(&tenant, a, 2, None).await.unwrap();
    let (second, end) = log.list(&tenant, a, 2, next.as_ref()).await.unwrap();
    let attempts: Vec<u32> = first.iter().chain(&second).map(|d| d.attempt).collect();
    assert_eq!((attempts, end), (vec![3, 2, 1], None));
    assert_eq!(first[0], written[2]);
    let other = TenantId::parse(&format!("{}-other", stack.tenant)).unwrap();
    assert!(log.list(&other, a, 10, None).await.unwrap().0.is_empty());

    let raw = stack.fleet_items().await;
    let item = raw.iter().find(|i| i["sk"] == format!("delivery#{a}#{}", written[0].id)).unwrap();
    let kept = item["expires_at_epoch"].as_i64().unwrap() - written[0].attempted_at.unix_seconds();
    assert_eq!(kept, 30 * 86_400);
}
