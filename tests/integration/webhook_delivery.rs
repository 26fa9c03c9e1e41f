//! Webhook dispatch and delivery against the emulator (DynamoDB and SQS) and a
//! receiver on 127.0.0.1: which endpoints get an event, signatures checked by
//! the reference Standard Webhooks crate, retries with a stable `webhook-id`,
//! 410 and five days of failures disabling the endpoint, rotation overlap.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;

use fleetgate_api::Timestamp;
use fleetgate_scopes::TenantId;
use fleetgate_webhooks::deliver::{Deliverer, Outcome};
use fleetgate_webhooks::deliveries::DeliveryLog;
use fleetgate_webhooks::dispatch::Dispatcher;
use fleetgate_webhooks::endpoints::{DisabledReason, Endpoint, EndpointInput, EndpointStatus};
use fleetgate_webhooks::events::{Event, EventType};
use fleetgate_webhooks::queue::DeliveryMessage;
use fleetgate_webhooks::schedule::RetrySchedule;
use fleetgate_webhooks::sender::Sender;
use fleetgate_webhooks::signing::Secret;
use fleetgate_webhooks::store::{EndpointStore, ROTATION_OVERLAP_SECONDS};
use fleetgate_webhooks::target_url::UrlPolicy;

use crate::fault_proxy::{Fault, FaultProxy};
use crate::helpers::{TestStack, endpoint as emulator, read_http_request};

const LOCAL: UrlPolicy = UrlPolicy { allow_loopback: true };

/// A request as the receiver got it.
#[derive(Clone, Debug)]
struct Received {
    headers: http::HeaderMap,
    body: Vec<u8>,
}

/// A receiver on 127.0.0.1 answering the statuses of `script` in turn (the last
/// one from then on), keeping every request.
async fn receiver(script: Vec<u16>) -> (String, Arc<Mutex<Vec<Received>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hooks", listener.local_addr().unwrap());
    let received = Arc::new(Mutex::new(Vec::new()));
    let log = received.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let (head, body) = read_http_request(&mut socket).await.unwrap_or_default();
            let mut headers = http::HeaderMap::new();
            for line in head.lines().skip(1) {
                if let Some((name, value)) = line.split_once(':') {
                    headers.append(
                        http::HeaderName::from_bytes(name.trim().as_bytes()).unwrap(),
                        http::HeaderValue::from_str(value.trim()).unwrap(),
                    );
                }
            }
            let status = {
                let mut log = log.lock().unwrap();
                log.push(Received { headers, body });
                *script.get(log.len() - 1).or(script.last()).unwrap()
            };
            let answer = format!("HTTP/1.1 {status} Scripted\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok");
            let _ = socket.write_all(answer.as_bytes()).await;
            let _ = socket.shutdown().await;
        }
    });
    (url, received)
}

struct Fixture {
    stack: TestStack,
    tenant: TenantId,
    store: EndpointStore,
    log: DeliveryLog,
}

impl Fixture {
    async fn new() -> Fixture {
        let stack = TestStack::new().await;
        let tenant = TenantId::parse(&stack.tenant).unwrap();
        let store = EndpointStore::new(stack.client.clone(), stack.tables.fleet.clone(), 20);
        let log = DeliveryLog::new(stack.client.clone(), stack.tables.fleet.clone());
        Fixture { stack, tenant, store, log }
    }

    async fn endpoint(&self, url: &str, events: &[&str], secret: &Secret) -> Endpoint {
        let input = EndpointInput::parse(json!({"url": url, "events": events}), LOCAL).unwrap();
        let endpoint = Endpoint::create(input, Timestamp::now());
        self.store.create(&self.tenant, &endpoint, secret, vec![]).await.unwrap();
        endpoint
    }

    fn deliverer(&self, schedule: &str) -> Deliverer {
        Deliverer {
            endpoints: self.store.clone(),
            log: self.log.clone(),
            sender: Sender::with_lookup(LOCAL, Arc::new(|_| Box::pin(async { Ok(vec![]) })), Duration::from_secs(2)),
            schedule: RetrySchedule::parse(schedule).unwrap(),
        }
    }
}

fn message(tenant: &TenantId, endpoint: &Endpoint, event: &Event) -> DeliveryMessage {
    DeliveryMessage {
        tenant_id: tenant.to_string(),
        endpoint_id: endpoint.id.clone(),
        event_id: event.id.clone(),
        event_type: event.payload.event_type,
        body: serde_json::to_string(&event.payload).unwrap(),
    }
}

fn failed_inspection() -> Event {
    let data = json!({"id": "insp_01JF", "outcome": "fail", "defects": [{"item_id": "brakes", "label": "Brakes", "note": "soft"}]});
    Event::new(EventType::InspectionFailed, &data, Timestamp::now()).unwrap()
}

/// Checks a delivery with the reference implementation, as a receiver would.
fn verifies(secret: &Secret, request: &Received) -> bool {
    standardwebhooks::Webhook::new(&secret.reveal()).unwrap().verify(&request.body, &request.headers).is_ok()
}

#[tokio::test]
async fn a_flaky_receiver_gets_the_event_once_acknowledged_with_one_webhook_id_and_valid_signatures() {
    let fixture = Fixture::new().await;
    let (url, received) = receiver(vec![500, 503, 200]).await;
    let secret = Secret::generate();
    let endpoint = fixture.endpoint(&url, &["inspection.failed"], &secret).await;
    let event = failed_inspection();
    let deliverer = fixture.deliverer("1s,2s,3s");
    let message = message(&fixture.tenant, &endpoint, &event);
    let mut outcomes = Vec::new();
    for attempt in 1..=3 {
        outcomes.push(deliverer.deliver(&message, attempt, Timestamp::now()).await.unwrap());
    }
    assert_eq!(
        outcomes,
        [Outcome::RetryIn(Duration::from_secs(1)), Outcome::RetryIn(Duration::from_secs(2)), Outcome::Done]
    );
    let received = received.lock().unwrap().clone();
    assert_eq!(received.len(), 3);
    for request in &received {
        assert_eq!(request.headers["webhook-id"], event.id.as_str());
        assert!(verifies(&secret, request), "the reference crate verifies our signature");
        assert!(!verifies(&Secret::generate(), request));
        assert_eq!(
            serde_json::from_slice::<serde_json::Value>(&request.body).unwrap()["data"]["defects"][0]["item_id"],
            "brakes"
        );
    }
    let (attempts, _) = fixture.log.list(&fixture.tenant, &endpoint.id, 10, None).await.unwrap();
    let summary: Vec<(u32, Option<u16>, bool, bool)> =
        attempts.iter().map(|a| (a.attempt, a.status, a.delivered, a.next_attempt_at.is_some())).collect();
    assert_eq!(summary, [(3, Some(200), true, false), (2, Some(503), false, true), (1, Some(500), false, true)]);
    // The success ended the run of failures.
    let stored = fixture.store.get(&fixture.tenant, &endpoint.id).await.unwrap().unwrap();
    assert_eq!((stored.failing_since, stored.endpoint.status), (None, EndpointStatus::Enabled));
}

#[tokio::test]
async fn a_dead_receiver_is_given_up_after_the_schedule_and_410_disables_at_once() {
    let fixture = Fixture::new().await;
    let (dead, _) = receiver(vec![500]).await;
    let endpoint = fixture.endpoint(&dead, &["inspection.failed"], &Secret::generate()).await;
    let deliverer = fixture.deliverer("1s,1s");
    let message = message(&fixture.tenant, &endpoint, &failed_inspection());
    let mut outcomes = Vec::new();
    for attempt in 1..=3 {
        outcomes.push(deliverer.deliver(&message, attempt, Timestamp::now()).await.unwrap());
    }
    assert_eq!(outcomes.last(), Some(&Outcome::GiveUp), "{outcomes:?}");
    // Still enabled: three failures within minutes are not five days.
    let stored = fixture.store.get(&fixture.tenant, &endpoint.id).await.unwrap().unwrap();
    assert_eq!(stored.endpoint.status, EndpointStatus::Enabled);
    assert!(stored.failing_since.is_some());

    let (gone, received) = receiver(vec![410]).await;
    let endpoint = fixture.endpoint(&gone, &["inspection.failed"], &Secret::generate()).await;
    let message = self::message(&fixture.tenant, &endpoint, &failed_inspection());
    assert_eq!(deliverer.deliver(&message, 1, Timestamp::now()).await.unwrap(), Outcome::Done);
    let stored = fixture.store.get(&fixture.tenant, &endpoint.id).await.unwrap().unwrap();
    assert_eq!(
        (stored.endpoint.status, stored.endpoint.disabled_reason),
        (EndpointStatus::Disabled, Some(DisabledReason::Gone))
    );
    // A disabled endpoint is not sent to again.
    assert_eq!(deliverer.deliver(&message, 2, Timestamp::now()).await.unwrap(), Outcome::Done);
    assert_eq!(received.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn five_days_of_failures_disable_the_endpoint() {
    let fixture = Fixture::new().await;
    let (dead, _) = receiver(vec![502]).await;
    let endpoint = fixture.endpoint(&dead, &["vehicle.created"], &Secret::generate()).await;
    let now = Timestamp::now();
    // Given: its first failure five days ago.
    let five_days = 5 * 24 * 3600;
    fixture.store.note_failure(&fixture.tenant, &endpoint.id, now.unix_seconds() - five_days + 60).await.unwrap();
    let message = message(
        &fixture.tenant,
        &endpoint,
        &Event::new(EventType::VehicleCreated, &json!({"id": "veh_1"}), now).unwrap(),
    );
    let deliverer = fixture.deliverer("5s,5m");
    assert_eq!(
        deliverer.deliver(&message, 1, now).await.unwrap(),
        Outcome::RetryIn(Duration::from_secs(5)),
        "a minute short"
    );
    let later = now.plus(time::Duration::minutes(2));
    assert_eq!(deliverer.deliver(&message, 2, later).await.unwrap(), Outcome::GiveUp);
    let stored = fixture.store.get(&fixture.tenant, &endpoint.id).await.unwrap().unwrap();
    assert_eq!(stored.endpoint.disabled_reason, Some(DisabledReason::Failing));
}

#[tokio::test]
async fn after_a_rotation_each_delivery_carries_both_signatures_for_24_hours() {
    let fixture = Fixture::new().await;
    let (url, received) = receiver(vec![200]).await;
    let (old, new) = (Secret::generate(), Secret::generate());
    let endpoint = fixture.endpoint(&url, &["vehicle.updated"], &old).await;
    let now = Timestamp::now();
    fixture
        .store
        .rotate_secret(&fixture.tenant, &endpoint.id, &new, now.unix_seconds() + ROTATION_OVERLAP_SECONDS, vec![])
        .await
        .unwrap();
    let event = Event::new(EventType::VehicleUpdated, &json!({"id": "veh_2"}), now).unwrap();
    let deliverer = fixture.deliverer("1s");
    deliverer.deliver(&message(&fixture.tenant, &endpoint, &event), 1, now).await.unwrap();
    let request = received.lock().unwrap()[0].clone();
    assert_eq!(request.headers["webhook-signature"].to_str().unwrap().split(' ').count(), 2);
    assert!(verifies(&old, &request) && verifies(&new, &request));
}

#[tokio::test]
async fn an_event_is_queued_once_per_enabled_subscribed_endpoint_of_its_own_tenant_only() {
    let fixture = Fixture::new().await;
    let other = TestStack { tenant: format!("{}-b", fixture.stack.tenant), ..TestStack::new().await };
    let other_tenant = TenantId::parse(&other.tenant).unwrap();
    let url = "http://127.0.0.1:9/hooks";
    let subscribed = fixture.endpoint(url, &["vehicle.created"], &Secret::generate()).await;
    let disabled = fixture.endpoint(url, &["vehicle.created"], &Secret::generate()).await;
    fixture.store.disable(&fixture.tenant, &disabled, DisabledReason::Requested, Timestamp::now()).await.unwrap();
    let elsewhere = fixture.endpoint(url, &["inspection.failed"], &Secret::generate()).await;
    let other_store = EndpointStore::new(other.client.clone(), other.tables.fleet.clone(), 20);
    let input = EndpointInput::parse(json!({"url": url, "events": ["vehicle.created"]}), LOCAL).unwrap();
    other_store
        .create(&other_tenant, &Endpoint::create(input, Timestamp::now()), &Secret::generate(), vec![])
        .await
        .unwrap();

    let sqs = fleetgate_webhooks::queue::local_client(&emulator());
    let queue_url = sqs
        .create_queue()
        .queue_name(format!("deliveries-{}", fixture.stack.tenant))
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let dispatcher = Dispatcher { endpoints: fixture.store.clone(), sqs: sqs.clone(), queue_url: queue_url.clone() };
    let created = Event::new(EventType::VehicleCreated, &json!({"id": "veh_3"}), Timestamp::now()).unwrap();
    let test = Event::test(&elsewhere, Timestamp::now()).unwrap();
    let queued = dispatcher
        .dispatch(&[(fixture.tenant.clone(), created.clone()), (fixture.tenant.clone(), test.clone())])
        .await
        .unwrap();
    assert_eq!(queued, 2);

    let messages = queued_messages(&sqs, &queue_url).await;
    let mut got: Vec<(String, String)> = messages.iter().map(|m| (m.endpoint_id.clone(), m.event_id.clone())).collect();
    got.sort();
    let mut expected = vec![(subscribed.id.clone(), created.id.clone()), (elsewhere.id.clone(), test.id.clone())];
    expected.sort();
    assert_eq!(
        got, expected,
        "the disabled endpoint and the other tenant's got nothing; the test event went only to its endpoint"
    );
    assert!(messages.iter().all(|m| m.tenant_id == fixture.stack.tenant));
}

// Receives poll without waiting (`wait_time_seconds(0)`): the emulator serves one
// request at a time, and a long poll would hold it (and every other test) still.

/// Every message on the queue, received once each (hidden a minute, so none twice).
async fn queued_messages(sqs: &aws_sdk_sqs::Client, queue_url: &str) -> Vec<DeliveryMessage> {
    let mut messages = Vec::new();
    loop {
        let received = sqs
            .receive_message()
            .queue_url(queue_url)
            .max_number_of_messages(10)
            .visibility_timeout(60)
            .wait_time_seconds(0)
            .send()
            .await
            .unwrap();
        let Some(batch) = received.messages.filter(|m| !m.is_empty()) else { return messages };
        messages.extend(batch.into_iter().map(|m| serde_json::from_str::<DeliveryMessage>(m.body().unwrap()).unwrap()));
    }
}

/// A queue of the emulator's, new for the test.
async fn queue(sqs: &aws_sdk_sqs::Client, name: &str) -> String {
    sqs.create_queue().queue_name(name).send().await.unwrap().queue_url.unwrap()
}

/// Receives one message as Lambda's SQS event source would hand it over.
async fn lambda_sqs_event(sqs: &aws_sdk_sqs::Client, queue_url: &str) -> serde_json::Value {
    let received = sqs
        .receive_message()
        .queue_url(queue_url)
        .message_system_attribute_names(aws_sdk_sqs::types::MessageSystemAttributeName::All)
        .wait_time_seconds(0)
        .send()
        .await
        .unwrap();
    let message = received.messages.unwrap().remove(0);
    let attributes: serde_json::Map<String, serde_json::Value> = message
        .attributes
        .unwrap_or_default()
        .into_iter()
        .map(|(name, value)| (name.as_str().to_owned(), json!(value)))
        .collect();
    json!({"Records": [{
        "messageId": message.message_id, "receiptHandle": message.receipt_handle, "body": message.body,
        "attributes": attributes, "messageAttributes": {}, "md5OfBody": message.md5_of_body,
        "eventSource": "aws:sqs", "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:deliveries", "awsRegion": "us-east-1"
    }]})
}

#[tokio::test]
async fn the_deliverer_function_hides_a_failed_message_for_its_wait_and_moves_a_given_up_one_to_the_dead_letter_queue()
{
    let fixture = Fixture::new().await;
    let (dead, received) = receiver(vec![500]).await;
    let endpoint = fixture.endpoint(&dead, &["inspection.failed"], &Secret::generate()).await;
    let sqs = fleetgate_webhooks::queue::local_client(&emulator());
    let queue_url = queue(&sqs, &format!("deliveries-{}", fixture.stack.tenant)).await;
    let dead_letters = queue(&sqs, &format!("dead-{}", fixture.stack.tenant)).await;
    let state = webhook_deliverer::State {
        deliverer: Deliverer { schedule: RetrySchedule::parse("1s").unwrap(), ..fixture.deliverer("1s") },
        sqs: sqs.clone(),
        queue_url: queue_url.clone(),
        dead_letter_queue_url: dead_letters.clone(),
    };
    let event = failed_inspection();
    let body = serde_json::to_string(&message(&fixture.tenant, &endpoint, &event)).unwrap();
    sqs.send_message().queue_url(&queue_url).message_body(&body).send().await.unwrap();
    let invoke = |payload: serde_json::Value| {
        let event = serde_json::from_value(payload).unwrap();
        webhook_deliverer::handler(&state, lambda_runtime::LambdaEvent::new(event, lambda_runtime::Context::default()))
    };

    // Attempt 1 fails: reported for a retry, hidden for the schedule's 1 s.
    let first = lambda_sqs_event(&sqs, &queue_url).await;
    let message_id = first["Records"][0]["messageId"].as_str().unwrap().to_owned();
    let answer = serde_json::to_value(invoke(first).await.unwrap()).unwrap();
    assert_eq!(answer, json!({"batchItemFailures": [{"itemIdentifier": message_id}]}));
    let hidden = sqs.receive_message().queue_url(&queue_url).send().await.unwrap();
    assert!(hidden.messages.unwrap_or_default().is_empty(), "hidden for its wait");

    // Attempt 2 (its second receive) fails too, the last of a one-step schedule: moved to the dead-letter queue.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let second = lambda_sqs_event(&sqs, &queue_url).await;
    assert_eq!(second["Records"][0]["attributes"]["ApproximateReceiveCount"], "2");
    let answer = serde_json::to_value(invoke(second).await.unwrap()).unwrap();
    assert_eq!(answer, json!({"batchItemFailures": []}), "done with: deleted from the delivery queue");
    let dead = sqs.receive_message().queue_url(&dead_letters).wait_time_seconds(0).send().await.unwrap();
    assert_eq!(dead.messages.unwrap()[0].body(), Some(body.as_str()));
    assert_eq!(received.lock().unwrap().len(), 2);
    let (attempts, _) = fixture.log.list(&fixture.tenant, &endpoint.id, 10, None).await.unwrap();
    assert_eq!(attempts.iter().map(|a| a.attempt).collect::<Vec<_>>(), [2, 1]);
}

#[tokio::test]
async fn the_dispatcher_function_takes_outbox_inserts_from_a_stream_batch_and_reports_where_queueing_failed() {
    let fixture = Fixture::new().await;
    fixture.endpoint("http://127.0.0.1:9/hooks", &["vehicle.created"], &Secret::generate()).await;
    let sqs = fleetgate_webhooks::queue::local_client(&emulator());
    let queue_url = queue(&sqs, &format!("dispatch-{}", fixture.stack.tenant)).await;
    // A real outbox item, as the write's transaction stores it, in a stream record's shape.
    let event = Event::new(EventType::VehicleCreated, &json!({"id": "veh_9"}), Timestamp::now()).unwrap();
    let put = event.outbox_item(&fixture.stack.tables.fleet, &fixture.tenant).unwrap().put.unwrap();
    let image: serde_json::Value = serde_json::to_value(serde_dynamo::Item::from(put.item().clone())).unwrap();
    let record = |name: &str, sequence: &str, image: &serde_json::Value| {
        json!({
            "eventID": sequence, "eventName": name, "eventVersion": "1.1", "eventSource": "aws:dynamodb", "awsRegion": "us-east-1",
            "dynamodb": {"Keys": {"pk": image["pk"], "sk": image["sk"]}, "NewImage": image, "SequenceNumber": sequence,
                         "SizeBytes": 100, "StreamViewType": "NEW_IMAGE", "ApproximateCreationDateTime": 1.7e9},
            "eventSourceARN": "arn:aws:dynamodb:us-east-1:123456789012:table/fleet/stream/2026"
        })
    };
    let vehicle_image = json!({"pk": {"S": fixture.stack.tenant}, "sk": {"S": "vehicle#veh_9"}, "body": {"S": "{}"}});
    let batch = json!({"Records": [
        record("INSERT", "100", &vehicle_image),
        record("MODIFY", "101", &image),
        record("INSERT", "102", &image),
    ]});
    let invoke = |state: webhook_dispatcher::State| {
        let batch = serde_json::from_value(batch.clone()).unwrap();
        async move {
            let answer = webhook_dispatcher::handler(
                &state,
                lambda_runtime::LambdaEvent::new(batch, lambda_runtime::Context::default()),
            )
            .await;
            serde_json::to_value(answer.unwrap()).unwrap()
        }
    };
    let dispatcher = |queue_url: &str| webhook_dispatcher::State {
        dispatcher: Dispatcher { endpoints: fixture.store.clone(), sqs: sqs.clone(), queue_url: queue_url.to_owned() },
    };
    assert_eq!(invoke(dispatcher(&queue_url)).await, json!({"batchItemFailures": []}));
    let queued = queued_messages(&sqs, &queue_url).await;
    assert_eq!(
        queued.iter().map(|m| m.event_id.as_str()).collect::<Vec<_>>(),
        [event.id.as_str()],
        "only the outbox insert"
    );

    // A queue that does not exist: the outbox record is reported, so Lambda retries from it.
    let missing = format!("{}/000000000000/no-such-queue", emulator());
    assert_eq!(invoke(dispatcher(&missing)).await, json!({"batchItemFailures": [{"itemIdentifier": "102"}]}));
}

/// A stream batch of outbox inserts, in the shape Lambda hands the dispatcher.
fn stream_batch(stack: &TestStack, tenant: &TenantId, events: &[Event]) -> serde_json::Value {
    let records: Vec<serde_json::Value> = events
        .iter()
        .enumerate()
        .map(|(n, event)| {
            let put = event.outbox_item(&stack.tables.fleet, tenant).unwrap().put.unwrap();
            let image = serde_json::to_value(serde_dynamo::Item::from(put.item().clone())).unwrap();
            json!({
                "eventID": format!("{n}"), "eventName": "INSERT", "eventVersion": "1.1", "eventSource": "aws:dynamodb",
                "awsRegion": "us-east-1",
                "dynamodb": {"Keys": {"pk": image["pk"], "sk": image["sk"]}, "NewImage": image,
                             "SequenceNumber": format!("{}", 200 + n), "SizeBytes": 100, "StreamViewType": "NEW_IMAGE",
                             "ApproximateCreationDateTime": 1.7e9},
                "eventSourceARN": "arn:aws:dynamodb:us-east-1:123456789012:table/fleet/stream/2026"
            })
        })
        .collect();
    json!({"Records": records})
}

#[tokio::test]
async fn an_emulator_outage_during_dispatch_loses_no_event() {
    let fixture = Fixture::new().await;
    for n in 0..2 {
        fixture.endpoint(&format!("http://127.0.0.1:9/hooks/{n}"), &["vehicle.created"], &Secret::generate()).await;
    }
    let direct = fleetgate_webhooks::queue::local_client(&emulator());
    let queue_url = queue(&direct, &format!("outage-{}", fixture.stack.tenant)).await;
    // The dispatcher reaches DynamoDB and SQS through one proxy that breaks on command.
    let proxy = FaultProxy::start(&emulator()).await;
    let state = webhook_dispatcher::State {
        dispatcher: Dispatcher {
            endpoints: EndpointStore::new(
                crate::helpers::local_client(&proxy.endpoint),
                fixture.stack.tables.fleet.clone(),
                20,
            ),
            sqs: fleetgate_webhooks::queue::local_client(&proxy.endpoint),
            queue_url: queue_url.clone(),
        },
    };
    let events: Vec<Event> = (0..3)
        .map(|n| Event::new(EventType::VehicleCreated, &json!({"id": format!("veh_{n}")}), Timestamp::now()).unwrap())
        .collect();
    let batch = stream_batch(&fixture.stack, &fixture.tenant, &events);
    let invoke = || async {
        let event = serde_json::from_value(batch.clone()).unwrap();
        let answer = webhook_dispatcher::handler(&state, lambda_runtime::LambdaEvent::new(event, Default::default()));
        serde_json::to_value(answer.await.unwrap()).unwrap()
    };
    // The emulator away: the whole batch is reported from its first record, so Lambda
    // (locally, the poller) hands it over again.
    proxy.set(Fault::Down).await;
    assert_eq!(invoke().await, json!({"batchItemFailures": [{"itemIdentifier": "200"}]}));
    // Back, but the answer to the first event's SendMessageBatch is lost after SQS
    // queued it: the SDK cannot know whether it went through and sends it again. At
    // least once: a duplicate with the same webhook-id, never a loss.
    proxy.set(Fault::LoseAnswers { operation: "SendMessageBatch", count: 1 }).await;
    assert_eq!(invoke().await, json!({"batchItemFailures": []}));
    assert_eq!(proxy.answers_left_to_lose(), 0, "the fault struck");

    let queued: Vec<(String, String)> =
        queued_messages(&direct, &queue_url).await.into_iter().map(|m| (m.event_id, m.endpoint_id)).collect();
    let distinct: std::collections::BTreeSet<_> = queued.iter().cloned().collect();
    assert_eq!(distinct.len(), 6, "every event for each of the two endpoints: {queued:?}");
    assert_eq!(queued.len(), 8, "the first event's two messages twice (its answer was lost), no more: {queued:?}");
}

#[tokio::test]
async fn the_fleet_table_streams_an_outbox_insert_with_its_new_image_as_the_template_says() {
    let fixture = Fixture::new().await;
    let fleet = &fixture.stack.tables.fleet;
    let table = fixture.stack.client.describe_table().table_name(fleet).send().await.unwrap().table.unwrap();
    let stream = table.stream_specification().unwrap();
    assert!(stream.stream_enabled());
    assert_eq!(stream.stream_view_type().map(|v| v.as_str()), Some("NEW_IMAGE"));

    let streams = fleetgate_local::poller::streams_client(&emulator());
    let arn = table.latest_stream_arn().unwrap();
    let description = streams.describe_stream().stream_arn(arn).send().await.unwrap().stream_description.unwrap();
    // From the shards' ends (LATEST, as the mapping starts): reading a shared table's
    // stream from its start would hold the one-request-at-a-time emulator for seconds.
    let mut iterators = Vec::new();
    for shard in description.shards() {
        let iterator = streams
            .get_shard_iterator()
            .stream_arn(arn)
            .shard_id(shard.shard_id().unwrap())
            .shard_iterator_type(aws_sdk_dynamodbstreams::types::ShardIteratorType::Latest)
            .send()
            .await
            .unwrap()
            .shard_iterator
            .unwrap();
        iterators.push(iterator);
    }

    let event = Event::new(EventType::VehicleCreated, &json!({"id": "veh_7"}), Timestamp::now()).unwrap();
    let item = event.outbox_item(fleet, &fixture.tenant).unwrap();
    fleetgate_api::dynamo::transact_write(&fixture.stack.client, vec![item]).await.unwrap();

    let sk = format!("event#{}", event.id);
    let mut found = None;
    // Other tests write to the same table meanwhile: page on until this record shows up.
    for _ in 0..50 {
        for iterator in iterators.iter_mut() {
            let page = streams.get_records().shard_iterator(iterator.as_str()).limit(100).send().await.unwrap();
            found = found.or(page.records.unwrap_or_default().into_iter().find(|r| {
                r.dynamodb().and_then(|d| d.keys()).and_then(|k| k.get("sk")).and_then(|v| v.as_s().ok()) == Some(&sk)
            }));
            if let Some(next) = page.next_shard_iterator {
                *iterator = next;
            }
        }
        if found.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let record = found.expect("the outbox insert is on the stream");
    assert_eq!(record.event_name().map(|n| n.as_str()), Some("INSERT"));
    let image = record.dynamodb().unwrap().new_image().unwrap();
    assert_eq!(image["type"].as_s().unwrap(), "vehicle.created");
}

#[tokio::test]
async fn local_stack_makes_the_queues_its_functions_environment_names() {
    let env = fleetgate_local::local_env().unwrap();
    let sqs = fleetgate_webhooks::queue::local_client(&emulator());
    let names = fleetgate_local::ensure_queues(&sqs, &env).await.unwrap();
    assert_eq!(names, ["fleetgate-webhook-deliveries", "fleetgate-webhook-dead-letters"]);
    // Made twice, kept: and reachable through the URLs the functions are given.
    fleetgate_local::ensure_queues(&sqs, &env).await.unwrap();
    for variable in fleetgate_local::QUEUE_VARIABLES {
        let attributes = sqs
            .get_queue_attributes()
            .queue_url(&env[variable])
            .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
            .send()
            .await;
        assert!(attributes.is_ok(), "{variable}: {attributes:?}");
    }
}
