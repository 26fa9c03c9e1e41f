//! The AWS call time each request logs (`aws_call_ms`, beside its latency):
//! counted through the SDK client's interceptor, per request, calls in flight
//! together counted once.

use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;
use fleetgate_api::call_time::{measured, millis, so_far};

use crate::helpers::TestStack;

#[tokio::test]
async fn a_request_counts_its_own_aws_calls_once_each_however_they_overlap() {
    let stack = TestStack::new().await;
    let get = || {
        stack
            .client
            .get_item()
            .table_name(&stack.tables.fleet)
            .key("pk", AttributeValue::S("nothing".into()))
            .key("sk", AttributeValue::S("here".into()))
            .send()
    };
    // Outside a request nothing is counted (init, tools).
    get().await.unwrap();
    assert_eq!(so_far(), None);

    let (sequential, wall) = measured(async {
        let started = Instant::now();
        get().await.unwrap();
        get().await.unwrap();
        (so_far().unwrap(), started.elapsed())
    })
    .await;
    assert!(!sequential.is_zero() && sequential <= wall, "{sequential:?} of {wall:?}");

    // Two calls in flight together: the request waited once, not twice. Summed,
    // each call's time would exceed the wall clock.
    let (overlapping, wall) = measured(async {
        let started = Instant::now();
        let (a, b) = tokio::join!(get(), get());
        a.unwrap();
        b.unwrap();
        (so_far().unwrap(), started.elapsed())
    })
    .await;
    assert!(!overlapping.is_zero() && overlapping <= wall, "{overlapping:?} of {wall:?}");

    // Each request starts from zero, and a request without calls counts none.
    assert_eq!(measured(async { so_far() }).await, Some(Duration::ZERO));
}

#[tokio::test]
async fn an_invocation_line_gets_the_scope_s_time_and_its_aws_share() {
    let stack = TestStack::new().await;
    assert_eq!(millis(), (0.0, 0.0), "outside a scope there is nothing to say");
    let (outer, (handler_ms, aws_call_ms)) = measured(async {
        let started = Instant::now();
        tokio::time::sleep(Duration::from_millis(30)).await;
        stack.client.list_tables().send().await.unwrap();
        let read = millis();
        (started.elapsed(), read)
    })
    .await;
    let outer_ms = outer.as_secs_f64() * 1000.0;
    // The scope's clock starts with it: the 30 ms of its own work count as the
    // handler's and not as AWS time; the call counts as both.
    assert!(handler_ms >= 30.0 + aws_call_ms && handler_ms <= outer_ms + 5.0, "{handler_ms} of {outer_ms}");
    assert!(aws_call_ms > 0.0, "{aws_call_ms}");
}
