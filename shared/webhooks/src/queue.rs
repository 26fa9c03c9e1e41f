//! The delivery queue: one SQS message per (event, endpoint), put there by the
//! dispatcher and consumed by the deliverer.

use aws_sdk_sqs::Client;
use aws_sdk_sqs::config::{BehaviorVersion, Credentials, Region};
use serde::{Deserialize, Serialize};

use fleetgate_api::dynamo::{env_credentials, env_region, https_client, optional_var};

use crate::events::EventType;

/// What the dispatcher enqueues for the deliverer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryMessage {
    pub tenant_id: String,
    pub endpoint_id: String,
    /// The `webhook-id` of every attempt.
    pub event_id: String,
    pub event_type: EventType,
    /// The payload exactly as it is sent and signed.
    pub body: String,
}

fn config_builder() -> aws_sdk_sqs::config::Builder {
    aws_sdk_sqs::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .http_client(https_client())
        .timeout_config(fleetgate_api::dynamo::call_timeouts())
        .interceptor(fleetgate_api::call_time::AwsCallTimer)
}

/// The function's SQS client (the execution role's credentials; `AWS_ENDPOINT_URL_SQS` locally).
pub fn client() -> Client {
    let mut config = config_builder().region(env_region());
    if let Some(credentials) = env_credentials() {
        config = config.credentials_provider(credentials);
    }
    if let Some(endpoint) = optional_var("AWS_ENDPOINT_URL_SQS").or_else(|| optional_var("AWS_ENDPOINT_URL")) {
        config = config.endpoint_url(endpoint);
    }
    Client::from_conf(config.build())
}

/// A client for the emulator at `endpoint` with dummy credentials (tests, local stack).
pub fn local_client(endpoint: &str) -> Client {
    let config = config_builder()
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new("local", "local", None, None, "local"));
    Client::from_conf(config.build())
}
