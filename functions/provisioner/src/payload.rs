//! A runtime layer that lets the handler answer a payload that is not JSON.
//!
//! `lambda_runtime` parses the payload before the handler runs; a non-JSON one
//! fails the invocation with the runtime's own type name
//! (`&lambda_runtime::deserializer::DeserializeError`). This layer sees the raw
//! bytes first and hands such a payload on as JSON `null`, which the handler
//! refuses as `invalid_request` like any other event that is not an object.

use std::task::{Context, Poll};

use lambda_runtime::LambdaInvocation;
use lambda_runtime::tower::{Layer, Service};

/// Wraps the runtime's service in [`NonJsonAsNull`].
#[derive(Clone, Copy, Debug, Default)]
pub struct NonJsonAsNullLayer;

impl<S> Layer<S> for NonJsonAsNullLayer {
    type Service = NonJsonAsNull<S>;

    fn layer(&self, inner: S) -> NonJsonAsNull<S> {
        NonJsonAsNull(inner)
    }
}

#[derive(Clone, Debug)]
pub struct NonJsonAsNull<S>(S);

impl<S: Service<LambdaInvocation>> Service<LambdaInvocation> for NonJsonAsNull<S> {
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, mut invocation: LambdaInvocation) -> S::Future {
        if !is_json(&invocation.body) {
            invocation.body = bytes::Bytes::from_static(b"null");
        }
        self.0.call(invocation)
    }
}

fn is_json(body: &[u8]) -> bool {
    serde_json::from_slice::<serde::de::IgnoredAny>(body).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_json_passes_unchanged() {
        assert!(is_json(br#"{"action": "list_keys"}"#) && is_json(b"[1]") && is_json(b" 3 "));
        assert!(!is_json(b"action=list_keys") && !is_json(b"") && !is_json(b"{\"a\":") && !is_json(&[0xff, 0xfe]));
    }
}
