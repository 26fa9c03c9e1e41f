//! How long a request waited on AWS calls, as its handler sees them: from the
//! SDK call's start to its result (serialising, signing, the round trip,
//! parsing). Logged with each request's latency, so an operator can tell
//! DynamoDB's share of a slow request from ours, and `make bench` can take
//! SPEC §7's overhead as handler time minus this.
//!
//! The time is kept per task ([`measured`] scopes it), so concurrent requests in
//! one process (tests) do not mix; calls in flight together count once (the
//! union of their intervals), as a client waits on them once.

use std::cell::RefCell;
use std::future::Future;
use std::time::{Duration, Instant};

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::{
    BeforeSerializationInterceptorContextRef, FinalizerInterceptorContextRef,
};
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;

/// One measured scope: when it began, and its AWS calls so far.
struct InFlight {
    started: Instant,
    calls: u32,
    since: Option<Instant>,
    total: Duration,
}

tokio::task_local! {
    static AWS_CALLS: RefCell<InFlight>;
}

/// Runs `request` with its clock started and its AWS call time counted from zero.
/// Boxed here, when called (not an `async fn`, whose state would hold `request`
/// inline until its first poll): otherwise the whole request's future is one more
/// copy on the stack (debug builds of deep tests overflowed).
pub fn measured<F: Future>(request: F) -> impl Future<Output = F::Output> {
    let scope = InFlight { started: Instant::now(), calls: 0, since: None, total: Duration::ZERO };
    AWS_CALLS.scope(RefCell::new(scope), Box::pin(request))
}

/// The AWS call time of the current [`measured`] request so far (calls still in
/// flight up to now); `None` outside one.
pub fn so_far() -> Option<Duration> {
    AWS_CALLS
        .try_with(|calls| {
            let calls = calls.borrow();
            calls.total + calls.since.filter(|_| calls.calls > 0).map_or(Duration::ZERO, |since| since.elapsed())
        })
        .ok()
}

/// Milliseconds since the current [`measured`] scope began, and of them the AWS
/// calls' (zeros outside one): the `handler_ms` and `aws_call_ms` of the
/// per-invocation line of the functions that do not go through `http::serve`
/// (the authorizer, the provisioner, the webhook functions).
pub fn millis() -> (f64, f64) {
    AWS_CALLS.try_with(|calls| calls.borrow().started.elapsed()).map_or((0.0, 0.0), |elapsed| {
        (elapsed.as_secs_f64() * 1000.0, so_far().unwrap_or_default().as_secs_f64() * 1000.0)
    })
}

/// The interceptor every SDK client of ours carries (`dynamo::client`,
/// the SQS and Secrets Manager clients). Costs two clock reads per call.
#[derive(Debug, Clone, Copy, Default)]
pub struct AwsCallTimer;

impl Intercept for AwsCallTimer {
    fn name(&self) -> &'static str {
        "AwsCallTimer"
    }

    fn read_before_execution(
        &self,
        _context: &BeforeSerializationInterceptorContextRef<'_>,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        // Outside a measured request (init, tests calling stores directly): nothing to count.
        let _ = AWS_CALLS.try_with(|calls| {
            let mut calls = calls.borrow_mut();
            if calls.calls == 0 {
                calls.since = Some(Instant::now());
            }
            calls.calls += 1;
        });
        Ok(())
    }

    fn read_after_execution(
        &self,
        _context: &FinalizerInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let _ = AWS_CALLS.try_with(|calls| {
            let mut calls = calls.borrow_mut();
            calls.calls = calls.calls.saturating_sub(1);
            if calls.calls == 0
                && let Some(since) = calls.since.take()
            {
                calls.total += since.elapsed();
            }
        });
        Ok(())
    }
}
