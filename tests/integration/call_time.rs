//! The AWS call time each request logs (`aws_call_ms`, beside its latency):
//! counted through the SDK client's interceptor, per request, calls in flight
//! together counted once.

use std::time::Instant;

use aws_sdk_dynamodb::types::AttributeValue;
use fleetgate_api::call_time::{measured, so_far};

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
    assert_eq!(measured(async { so_far() }).await, Some(std::time::Duration::ZERO));
}
