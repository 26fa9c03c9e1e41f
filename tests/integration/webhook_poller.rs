//! The local stand-in for the webhook event source mappings (fleetgate_local::poller)
//! against the emulator's stream and queue, with a fake invoke API that records
//! what each function is handed and answers as scripted.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;

use fleetgate_api::Timestamp;
use fleetgate_scopes::TenantId;
use fleetgate_webhooks::events::{Event, EventType};

use crate::helpers::{TestStack, endpoint as emulator, read_http_request};

type Invocations = Arc<Mutex<Vec<(String, Value)>>>;

/// An invoke API on 127.0.0.1: records (function, event) and answers `answer(function, event)`.
async fn fake_functions(answer: impl Fn(&str, &Value) -> Value + Send + Sync + 'static) -> (String, Invocations) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let invocations: Invocations = Arc::default();
    let log = invocations.clone();
    let answer = Arc::new(answer);
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let (log, answer) = (log.clone(), answer.clone());
            tokio::spawn(async move {
                let Some((head, body)) = read_http_request(&mut socket).await else { return };
                let function = head.split_whitespace().nth(1).unwrap_or("").split('/').nth(3).unwrap_or("").to_owned();
                let event: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                let reply = answer(&function, &event).to_string();
                log.lock().unwrap().push((function, event));
                let response = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{reply}",
                    reply.len()
                );
                let _ = socket.write_all(response.as_bytes()).await;
            });
        }
    });
    (url, invocations)
}

async fn eventually(what: &str, check: impl Fn() -> bool) {
    for _ in 0..100 {
        if check() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for {what}");
}

#[tokio::test]
async fn outbox_inserts_reach_the_dispatcher_as_lambda_shapes_them_and_a_reported_failure_is_handed_over_again() {
    let stack = TestStack::new().await;
    let tenant = TenantId::parse(&stack.tenant).unwrap();
    let sqs = fleetgate_webhooks::queue::local_client(&emulator());
    let queue_url =
        sqs.create_queue().queue_name(format!("poll-{}", stack.tenant)).send().await.unwrap().queue_url.unwrap();
    // The dispatcher fails the first batch holding this test's record, then succeeds.
    let ours = stack.tenant.clone();
    let failed_once = Arc::new(Mutex::new(false));
    let seen = failed_once.clone();
    let (functions, invocations) = fake_functions(move |function, event| {
        let mine = event["Records"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|r| r["dynamodb"]["Keys"]["pk"]["S"] == ours.as_str());
        match (function, mine) {
            ("webhook-dispatcher", Some(record)) if !*seen.lock().unwrap() => {
                *seen.lock().unwrap() = true;
                json!({"batchItemFailures": [{"itemIdentifier": record["dynamodb"]["SequenceNumber"]}]})
            }
            _ => json!({"batchItemFailures": []}),
        }
    })
    .await;
    let poller = fleetgate_local::poller::Poller {
        dynamodb: stack.client.clone(),
        streams: fleetgate_local::poller::streams_client(&emulator()),
        sqs: sqs.clone(),
        http: reqwest::Client::new(),
        functions,
        fleet_table: stack.tables.fleet.clone(),
        queue_url: queue_url.clone(),
    };
    tokio::spawn(async move { poller.run().await });
    // It reads from LATEST, like the template's mapping: give it time to take its place.
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let event = Event::new(EventType::VehicleCreated, &json!({"id": "veh_poll"}), Timestamp::now()).unwrap();
    let outbox = event.outbox_item(&stack.tables.fleet, &tenant).unwrap();
    fleetgate_api::dynamo::transact_write(&stack.client, vec![outbox]).await.unwrap();
    stack.store_like_a_vehicle("vehicle#veh_poll").await;

    let handed = |invocations: &Invocations| -> Vec<Value> {
        invocations
            .lock()
            .unwrap()
            .iter()
            .filter(|(function, _)| function == "webhook-dispatcher")
            .flat_map(|(_, event)| event["Records"].as_array().cloned().unwrap_or_default())
            .filter(|r| r["dynamodb"]["Keys"]["pk"]["S"] == stack.tenant.as_str())
            .collect()
    };
    eventually("the record handed over twice", || handed(&invocations).len() >= 2).await;
    let records = handed(&invocations);
    assert_eq!(records[0], records[1], "the failed record, again");
    assert!(
        records.iter().all(|r| r["dynamodb"]["Keys"]["sk"]["S"] == format!("event#{}", event.id)),
        "only the outbox insert"
    );
    let record = &records[0];
    assert_eq!((record["eventName"].as_str(), record["eventSource"].as_str()), (Some("INSERT"), Some("aws:dynamodb")));
    assert_eq!(record["dynamodb"]["NewImage"]["type"]["S"], "vehicle.created");
    // What the dispatcher function parses: the same type Lambda's runtime would give it.
    let parsed: aws_lambda_events::event::dynamodb::Event =
        serde_json::from_value(json!({"Records": [record]})).unwrap();
    assert_eq!(Event::from_item(parsed.records[0].change.new_image.clone()).unwrap().1, event);

    // The queue: a message the deliverer does not report is deleted.
    sqs.send_message().queue_url(&queue_url).message_body("{\"delivery\": 1}").send().await.unwrap();
    let deliverer_saw = |invocations: &Invocations| {
        invocations.lock().unwrap().iter().any(|(function, event)| {
            function == "webhook-deliverer" && event["Records"][0]["body"] == "{\"delivery\": 1}"
        })
    };
    eventually("the message handed to the deliverer", || deliverer_saw(&invocations)).await;
    let first = invocations.lock().unwrap().iter().find(|(f, _)| f == "webhook-deliverer").unwrap().1.clone();
    assert_eq!(first["Records"][0]["attributes"]["ApproximateReceiveCount"], "1");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let attributes = sqs
        .get_queue_attributes()
        .queue_url(&queue_url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::All)
        .send()
        .await
        .unwrap()
        .attributes
        .unwrap();
    let count = |name: aws_sdk_sqs::types::QueueAttributeName| attributes.get(&name).cloned().unwrap_or_default();
    assert_eq!(
        (
            count(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessages),
            count(aws_sdk_sqs::types::QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        ),
        ("0".to_owned(), "0".to_owned()),
        "delivered: deleted"
    );
}
