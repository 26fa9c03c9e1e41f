//! The local stand-in for the webhook pipeline's event source mappings
//! (infra/template.yaml): what Lambda does on AWS between the fleet table's
//! stream, the delivery queue and the two functions.
//! - The stream: new records from each shard (from when the poller starts, as
//!   `StartingPosition: LATEST`), filtered as the mapping's `FilterCriteria` is
//!   (inserts of `event#…` items), handed to `webhook-dispatcher` in Lambda's
//!   DynamoDB stream event shape; when it reports a failed record, that record
//!   and the ones after it are handed over again a second later.
//! - The queue: up to 10 messages at a time, with their system attributes
//!   (`ApproximateReceiveCount`), handed to `webhook-deliverer` in Lambda's SQS
//!   event shape; the messages it does not report as failed are deleted, the
//!   others stay (hidden for whatever wait the function set), as Lambda does
//!   with `ReportBatchItemFailures`.
//!
//! Both functions are invoked through the Lambda invoke API (`cargo lambda watch`).

use std::time::Duration;

use aws_sdk_dynamodbstreams::types::{AttributeValue, Record, ShardIteratorType};
use base64::Engine;
use serde_json::{Map, Value, json};

use crate::Error;

const DISPATCHER: &str = "webhook-dispatcher";
const DELIVERER: &str = "webhook-deliverer";
const OUTBOX_PREFIX: &str = "event#";

pub struct Poller {
    pub dynamodb: aws_sdk_dynamodb::Client,
    pub streams: aws_sdk_dynamodbstreams::Client,
    pub sqs: aws_sdk_sqs::Client,
    pub http: reqwest::Client,
    /// Where the functions' invoke API is (`cargo lambda watch`).
    pub functions: String,
    pub fleet_table: String,
    pub queue_url: String,
}

impl Poller {
    /// The poller of the local stack: the emulator's endpoints from the environment
    /// (`AWS_ENDPOINT_URL_DYNAMODB`, `…_DYNAMODB_STREAMS`, `…_SQS`, as infra/lib.sh
    /// exports them), the table and
    /// queue the local functions are given (`local_env`), functions at `functions`.
    pub fn from_env(functions: &str) -> Result<Poller, Error> {
        let env = crate::local_env()?;
        let variable =
            |name: &str| env.get(name).cloned().ok_or_else(|| format!("the local environment has no {name}"));
        let streams_endpoint = fleetgate_api::dynamo::optional_var("AWS_ENDPOINT_URL_DYNAMODB_STREAMS")
            .ok_or("AWS_ENDPOINT_URL_DYNAMODB_STREAMS is not set (infra/lib.sh exports it)")?;
        Ok(Poller {
            dynamodb: fleetgate_api::dynamo::client(),
            streams: streams_client(&streams_endpoint),
            sqs: fleetgate_webhooks::queue::client(),
            http: reqwest::Client::builder().timeout(Duration::from_secs(60)).build()?,
            functions: functions.to_owned(),
            fleet_table: variable("FLEET_TABLE")?,
            queue_url: variable("WEBHOOK_QUEUE_URL")?,
        })
    }

    /// Polls the stream and the queue until the process ends; errors are logged and retried.
    pub async fn run(&self) {
        tokio::join!(self.follow_stream(), self.drain_queue());
    }

    async fn invoke(&self, function: &str, event: &Value) -> Result<Value, Error> {
        let url = format!("{}/2015-03-31/functions/{function}/invocations", self.functions.trim_end_matches('/'));
        let answer = self.http.post(url).json(event).send().await?;
        let failed = answer.headers().contains_key("x-amz-function-error") || !answer.status().is_success();
        let body: Value = answer.json().await?;
        if failed || body.get("errorType").is_some() {
            return Err(format!("{function} failed: {body}").into());
        }
        Ok(body)
    }

    /// The record identifiers (sequence numbers or message ids) a function reported as failed.
    fn failures(answer: &Value) -> Vec<String> {
        answer["batchItemFailures"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|f| f["itemIdentifier"].as_str().map(str::to_owned))
            .collect()
    }

    async fn shard_iterators(&self) -> Result<(String, Vec<String>), Error> {
        let table = self.dynamodb.describe_table().table_name(&self.fleet_table).send().await?.table;
        let arn = table.and_then(|t| t.latest_stream_arn).ok_or("the fleet table has no stream")?;
        let description = self.streams.describe_stream().stream_arn(&arn).send().await?.stream_description;
        let mut iterators = Vec::new();
        for shard in description.map(|d| d.shards.unwrap_or_default()).unwrap_or_default() {
            let Some(shard_id) = shard.shard_id else { continue };
            let iterator = self
                .streams
                .get_shard_iterator()
                .stream_arn(&arn)
                .shard_id(shard_id)
                .shard_iterator_type(ShardIteratorType::Latest)
                .send()
                .await?
                .shard_iterator;
            iterators.extend(iterator);
        }
        Ok((arn, iterators))
    }

    async fn follow_stream(&self) {
        let (arn, mut iterators) = loop {
            match self.shard_iterators().await {
                Ok(found) => break found,
                Err(err) => {
                    eprintln!("==> webhook poller: waiting for the fleet table's stream ({err})");
                    tokio::time::sleep(Duration::from_secs(2)).await;
                }
            }
        };
        let mut pending: Vec<Value> = Vec::new();
        loop {
            for iterator in iterators.iter_mut() {
                match self.streams.get_records().shard_iterator(iterator.as_str()).limit(100).send().await {
                    Ok(page) => {
                        pending.extend(
                            page.records
                                .unwrap_or_default()
                                .iter()
                                .filter(|r| is_outbox_insert(r))
                                .map(|r| lambda_stream_record(r, &arn)),
                        );
                        if let Some(next) = page.next_shard_iterator {
                            *iterator = next;
                        }
                    }
                    Err(err) => eprintln!("==> webhook poller: reading the stream failed ({err}); trying again"),
                }
            }
            while !pending.is_empty() {
                let batch: Vec<Value> = pending.iter().take(100).cloned().collect();
                match self.invoke(DISPATCHER, &json!({"Records": batch})).await {
                    Ok(answer) => {
                        let failed = Self::failures(&answer);
                        let retry_from = failed.first().and_then(|sequence| {
                            batch.iter().position(|r| r["dynamodb"]["SequenceNumber"].as_str() == Some(sequence))
                        });
                        match retry_from {
                            // As Lambda: the failed record and everything after it again, later.
                            Some(index) => {
                                pending.drain(..index);
                                break;
                            }
                            None => {
                                pending.drain(..batch.len());
                            }
                        }
                    }
                    Err(err) => {
                        eprintln!("==> webhook poller: {err}; the batch is retried");
                        break;
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(if pending.is_empty() { 250 } else { 1000 })).await;
        }
    }

    async fn drain_queue(&self) {
        loop {
            let received = self
                .sqs
                .receive_message()
                .queue_url(&self.queue_url)
                .max_number_of_messages(10)
                // No long poll: the emulator serves one request at a time, and a
                // waiting receive would hold every other call of the stack still.
                .wait_time_seconds(0)
                .message_system_attribute_names(aws_sdk_sqs::types::MessageSystemAttributeName::All)
                .send()
                .await;
            let messages = match received {
                Ok(output) => output.messages.unwrap_or_default(),
                Err(err) => {
                    eprintln!("==> webhook poller: receiving from the delivery queue failed ({err}); trying again");
                    tokio::time::sleep(Duration::from_secs(2)).await;
                    continue;
                }
            };
            if messages.is_empty() {
                tokio::time::sleep(Duration::from_millis(250)).await;
                continue;
            }
            let records: Vec<Value> = messages.iter().map(lambda_sqs_record).collect();
            let failed = match self.invoke(DELIVERER, &json!({"Records": records})).await {
                Ok(answer) => Self::failures(&answer),
                // A failed invocation fails the whole batch: every message comes back.
                Err(err) => {
                    eprintln!("==> webhook poller: {err}");
                    continue;
                }
            };
            for message in &messages {
                if failed.iter().any(|id| Some(id.as_str()) == message.message_id()) {
                    continue;
                }
                if let Some(receipt) = message.receipt_handle()
                    && let Err(err) =
                        self.sqs.delete_message().queue_url(&self.queue_url).receipt_handle(receipt).send().await
                {
                    eprintln!("==> webhook poller: deleting a delivered message failed ({err})");
                }
            }
        }
    }
}

/// A DynamoDB Streams client for the emulator at `endpoint` (the poller's, and the tests').
pub fn streams_client(endpoint: &str) -> aws_sdk_dynamodbstreams::Client {
    let config = aws_sdk_dynamodbstreams::Config::builder()
        .behavior_version(aws_sdk_dynamodbstreams::config::BehaviorVersion::latest())
        .http_client(fleetgate_api::dynamo::https_client())
        .region(aws_sdk_dynamodbstreams::config::Region::new("us-east-1"))
        .timeout_config(fleetgate_api::dynamo::call_timeouts())
        .endpoint_url(endpoint)
        .credentials_provider(aws_sdk_dynamodbstreams::config::Credentials::new("local", "local", None, None, "local"))
        .build();
    aws_sdk_dynamodbstreams::Client::from_conf(config)
}

fn is_outbox_insert(record: &Record) -> bool {
    let sk = record.dynamodb().and_then(|d| d.keys()).and_then(|keys| keys.get("sk")).and_then(|v| v.as_s().ok());
    record.event_name().map(|n| n.as_str()) == Some("INSERT") && sk.is_some_and(|sk| sk.starts_with(OUTBOX_PREFIX))
}

/// A stream record as Lambda hands it to a function.
fn lambda_stream_record(record: &Record, arn: &str) -> Value {
    let change = record.dynamodb();
    let image = |map: Option<&std::collections::HashMap<String, AttributeValue>>| -> Value {
        Value::Object(map.into_iter().flatten().map(|(k, v)| (k.clone(), attribute_json(v))).collect())
    };
    json!({
        "eventID": record.event_id(),
        "eventName": record.event_name().map(|n| n.as_str()),
        "eventVersion": record.event_version(),
        "eventSource": "aws:dynamodb",
        "awsRegion": record.aws_region(),
        "eventSourceARN": arn,
        "dynamodb": {
            "ApproximateCreationDateTime": change.and_then(|c| c.approximate_creation_date_time()).map(|t| t.secs()),
            "Keys": image(change.and_then(|c| c.keys())),
            "NewImage": image(change.and_then(|c| c.new_image())),
            "SequenceNumber": change.and_then(|c| c.sequence_number()),
            "SizeBytes": change.and_then(|c| c.size_bytes()),
            "StreamViewType": change.and_then(|c| c.stream_view_type()).map(|v| v.as_str()),
        }
    })
}

/// An attribute value in DynamoDB's JSON form (`{"S": "…"}`), as stream events carry it.
fn attribute_json(value: &AttributeValue) -> Value {
    let base64 = |bytes: &[u8]| Value::String(base64::engine::general_purpose::STANDARD.encode(bytes));
    match value {
        AttributeValue::S(s) => json!({"S": s}),
        AttributeValue::N(n) => json!({"N": n}),
        AttributeValue::B(b) => json!({"B": base64(b.as_ref())}),
        AttributeValue::Bool(b) => json!({"BOOL": b}),
        AttributeValue::Null(_) => json!({"NULL": true}),
        AttributeValue::Ss(items) => json!({"SS": items}),
        AttributeValue::Ns(items) => json!({"NS": items}),
        AttributeValue::Bs(items) => json!({"BS": items.iter().map(|b| base64(b.as_ref())).collect::<Vec<_>>()}),
        AttributeValue::L(items) => json!({"L": items.iter().map(attribute_json).collect::<Vec<_>>()}),
        AttributeValue::M(map) => {
            json!({"M": map.iter().map(|(k, v)| (k.clone(), attribute_json(v))).collect::<Map<String, Value>>()})
        }
        _ => Value::Null,
    }
}

/// A received message as Lambda's SQS event source hands it to a function.
fn lambda_sqs_record(message: &aws_sdk_sqs::types::Message) -> Value {
    let attributes: Map<String, Value> = message
        .attributes()
        .into_iter()
        .flatten()
        .map(|(name, value)| (name.as_str().to_owned(), json!(value)))
        .collect();
    json!({
        "messageId": message.message_id(),
        "receiptHandle": message.receipt_handle(),
        "body": message.body(),
        "attributes": attributes,
        "messageAttributes": {},
        "md5OfBody": message.md5_of_body(),
        "eventSource": "aws:sqs",
        "awsRegion": "us-east-1",
    })
}
