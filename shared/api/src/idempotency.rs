//! `Idempotency-Key` for POST routes: the first response is stored for 24 hours
//! per tenant, route and key, and replayed for a retry with the same body.
//!
//! 1. The handler validates the body first: a request that fails validation
//!    stores nothing, so the client can fix it and retry with the same key.
//! 2. [`IdempotencyStore::begin`] claims the key with a conditional put; of
//!    concurrent duplicates exactly one wins, the others wait for its result.
//! 3. The winner's write transaction includes [`Claim::completion`], so the
//!    record and the change it describes are committed together.
//! 4. If the write fails, [`IdempotencyStore::release`] frees the key.
//!
//! Each claim carries a token of its own, so a claim whose answer was lost (and
//! which the SDK's retry then finds in place) is recognised as this request's,
//! and a claim left behind when even the release could not be written (DynamoDB
//! gone mid-request) is taken over once its lease ends instead of blocking the
//! key for a day.

use std::collections::BTreeMap;
use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{TransactWriteItem, Update};
use http::HeaderValue;
use lambda_http::{Body, Request, RequestExt, Response};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::dynamo::DbError;
use crate::error::ApiError;
use crate::http::Call;
use crate::timestamp::Timestamp;

pub const IDEMPOTENCY_HEADER: &str = "idempotency-key";
pub const REPLAYED_HEADER: &str = "idempotent-replayed";
pub const MAX_KEY_CHARS: usize = 255;
/// How long a key is remembered.
pub const RETENTION: time::Duration = time::Duration::hours(24);
/// Headers of the first response that a replay repeats.
const REPLAYED_HEADERS: [&str; 3] = ["content-type", "location", "etag"];
/// How long a duplicate waits for the first request to finish before answering 409.
const WAIT_FOR_FIRST: Duration = Duration::from_secs(3);
/// After this an in-progress claim is abandoned: longer than the function
/// timeout (10 s), so its owner has certainly finished or been stopped.
const CLAIM_LEASE: time::Duration = time::Duration::seconds(30);

#[derive(Debug, Serialize, Deserialize)]
struct IdempotencyItem {
    pk: String,
    sk: String,
    request_hash: String,
    state: ClaimState,
    /// Which request holds the claim.
    claim_token: String,
    /// An in-progress claim older than this (unix seconds) may be taken over.
    lease_expires_epoch: i64,
    created_at: Timestamp,
    expires_at_epoch: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    response: Option<StoredResponse>,
}

#[derive(Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum ClaimState {
    InProgress,
    Completed,
}

#[derive(Debug, Serialize, Deserialize)]
struct StoredResponse {
    status: u16,
    headers: BTreeMap<String, String>,
    body: String,
}

/// A won claim on an idempotency key.
#[derive(Debug)]
pub struct Claim {
    table: String,
    pk: String,
    sk: String,
    request_hash: String,
    token: String,
}

/// What to do with a POST.
#[derive(Debug)]
pub enum Begin {
    /// Do the work; complete the claim (if any) in the same transaction.
    Proceed(Option<Claim>),
    /// A retry of a finished request: answer this.
    Replay(Response<Body>),
}

/// Idempotency records, kept in the fleet table.
#[derive(Clone, Debug)]
pub struct IdempotencyStore {
    client: Client,
    table: String,
}

impl IdempotencyStore {
    pub fn new(client: Client, table: String) -> IdempotencyStore {
        IdempotencyStore { client, table }
    }

    /// Records live in the fleet table (`FLEET_TABLE`).
    pub fn from_env(client: Client) -> Result<IdempotencyStore, crate::dynamo::ConfigError> {
        Ok(IdempotencyStore::new(client, crate::dynamo::env_var("FLEET_TABLE")?))
    }

    /// Claims the request's `Idempotency-Key`, or finds the response to replay.
    /// `body` is the parsed, already validated request body.
    pub async fn begin(&self, call: &Call, req: &Request, body: &Value) -> Result<Begin, ApiError> {
        let Some(claim) = self.claim_for(call, req, body)? else {
            return Ok(Begin::Proceed(None));
        };
        let started = tokio::time::Instant::now();
        loop {
            if self.try_claim(&claim).await? {
                return Ok(Begin::Proceed(Some(claim)));
            }
            let Some(existing) = self.read(&claim).await? else {
                continue; // expired and deleted between our put and read: claim again
            };
            if existing.state == ClaimState::InProgress && existing.claim_token == claim.token {
                // Our put went through but its answer was lost; the SDK's retry found it.
                return Ok(Begin::Proceed(Some(claim)));
            }
            if existing.request_hash != claim.request_hash {
                return Err(ApiError::IdempotencyKeyReused);
            }
            if let Some(stored) = existing.response.filter(|_| existing.state == ClaimState::Completed) {
                return Ok(Begin::Replay(replay(stored)));
            }
            if started.elapsed() >= WAIT_FOR_FIRST {
                return Err(ApiError::IdempotencyKeyInProgress);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The stored answer when this request (same key, same body) already completed;
    /// a key used with another body is the 409 it would be in [`IdempotencyStore::begin`].
    /// For handlers whose validation reads data that can change between a request
    /// and its retry (an inspection's template): the retry must get the first answer,
    /// not a new verdict. Costs one GetItem, only when `Idempotency-Key` is sent.
    pub async fn completed(
        &self,
        call: &Call,
        req: &Request,
        body: &Value,
    ) -> Result<Option<Response<Body>>, ApiError> {
        let Some(claim) = self.claim_for(call, req, body)? else {
            return Ok(None);
        };
        match self.read(&claim).await? {
            Some(existing) if existing.state == ClaimState::Completed => {
                if existing.request_hash != claim.request_hash {
                    return Err(ApiError::IdempotencyKeyReused);
                }
                Ok(existing.response.map(replay))
            }
            _ => Ok(None),
        }
    }

    /// The claim this request would make: `None` without an `Idempotency-Key`.
    fn claim_for(&self, call: &Call, req: &Request, body: &Value) -> Result<Option<Claim>, ApiError> {
        let Some(key) = idempotency_key(req)? else {
            return Ok(None);
        };
        // serde_json's map is ordered by key, so the same JSON in another key order hashes alike.
        // The path's `{id}` is part of the request: the same key sent to another webhook's
        // rotate-secret is another request (409), not a replay. Routes without one hash the body alone.
        let hashed = match req.path_parameters_ref().and_then(|params| params.first("id")) {
            Some(id) => format!("{id} {body}"),
            None => body.to_string(),
        };
        Ok(Some(Claim {
            table: self.table.clone(),
            pk: call.auth.tenant_id.to_string(),
            sk: format!("idem#{}#{key}", call.route.describe()),
            request_hash: hex(&Sha256::digest(hashed.as_bytes())),
            token: crate::ids::new_sortable_id("claim_"),
        }))
    }

    /// Puts the in-progress record unless a live one exists. `true` if this call won.
    async fn try_claim(&self, claim: &Claim) -> Result<bool, DbError> {
        let now = Timestamp::now();
        let item = IdempotencyItem {
            pk: claim.pk.clone(),
            sk: claim.sk.clone(),
            request_hash: claim.request_hash.clone(),
            state: ClaimState::InProgress,
            claim_token: claim.token.clone(),
            lease_expires_epoch: now.plus(CLAIM_LEASE).unix_seconds(),
            created_at: now,
            expires_at_epoch: now.plus(RETENTION).unix_seconds(),
            response: None,
        };
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(serde_dynamo::to_item(&item)?))
            // DynamoDB's TTL deletes lazily, so an expired record counts as absent;
            // an in-progress claim past its lease was abandoned.
            .condition_expression(
                "attribute_not_exists(sk) OR expires_at_epoch < :now OR (#state = :in_progress AND lease_expires_epoch < :now)",
            )
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(":now", serde_dynamo::to_attribute_value(now.unix_seconds())?)
            .expression_attribute_values(":in_progress", serde_dynamo::to_attribute_value(ClaimState::InProgress)?)
            .send()
            .await;
        match result.map_err(DbError::from) {
            Ok(_) => Ok(true),
            Err(DbError::ConditionFailed) => Ok(false),
            Err(err) => Err(err),
        }
    }

    async fn read(&self, claim: &Claim) -> Result<Option<IdempotencyItem>, DbError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", serde_dynamo::to_attribute_value(&claim.pk)?)
            .key("sk", serde_dynamo::to_attribute_value(&claim.sk)?)
            .consistent_read(true)
            .send()
            .await?;
        let item: Option<IdempotencyItem> = output.item.map(serde_dynamo::from_item).transpose()?;
        Ok(item.filter(|item| item.expires_at_epoch >= Timestamp::now().unix_seconds()))
    }

    /// Ends the claimed work: when it failed, the claim is released (so a retry can
    /// do the work again) and the error becomes the answer.
    pub async fn settle<E: Into<ApiError>>(&self, claim: Option<Claim>, result: Result<(), E>) -> Result<(), ApiError> {
        if let (Err(_), Some(claim)) = (&result, claim) {
            self.release(claim).await;
        }
        result.map_err(Into::into)
    }

    /// Frees the key after the work failed, so a retry can do it again (only
    /// while the claim is still this request's and unfinished).
    pub async fn release(&self, claim: Claim) {
        let result = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key("pk", serde_dynamo::to_attribute_value(&claim.pk).expect("string"))
            .key("sk", serde_dynamo::to_attribute_value(&claim.sk).expect("string"))
            .condition_expression("#state = :in_progress AND claim_token = :token")
            .expression_attribute_names("#state", "state")
            .expression_attribute_values(
                ":in_progress",
                serde_dynamo::to_attribute_value(ClaimState::InProgress).expect("enum"),
            )
            .expression_attribute_values(":token", serde_dynamo::to_attribute_value(&claim.token).expect("string"))
            .send()
            .await;
        if let Err(err) = result {
            // A retry can take the claim over once its lease ends.
            tracing::warn!(error = %DbError::from(err), "could not release an idempotency key");
        }
    }
}

impl Claim {
    /// The update that stores `response` as this key's result; put it in the write's transaction.
    pub fn completion(&self, response: &Response<Body>) -> Result<TransactWriteItem, ApiError> {
        let internal = |e: Box<dyn std::error::Error + Send + Sync>| ApiError::Internal(e);
        let body = match response.body() {
            Body::Text(text) => text.clone(),
            Body::Empty => String::new(),
            Body::Binary(bytes) => String::from_utf8(bytes.clone()).map_err(|e| internal(Box::new(e)))?,
            _ => String::new(),
        };
        let headers = REPLAYED_HEADERS
            .iter()
            .filter_map(|name| Some(((*name).to_owned(), response.headers().get(*name)?.to_str().ok()?.to_owned())))
            .collect();
        let stored = StoredResponse { status: response.status().as_u16(), headers, body };
        let update = Update::builder()
            .table_name(&self.table)
            .key("pk", attribute(&self.pk)?)
            .key("sk", attribute(&self.sk)?)
            .update_expression("SET #state = :completed, #response = :response")
            // Only while the claim is still ours: a claim taken over after its
            // lease makes the late owner's whole transaction fail, not double up.
            .condition_expression("#state = :in_progress AND claim_token = :token")
            .expression_attribute_names("#state", "state")
            .expression_attribute_names("#response", "response")
            .expression_attribute_values(":completed", attribute(&ClaimState::Completed)?)
            .expression_attribute_values(":in_progress", attribute(&ClaimState::InProgress)?)
            .expression_attribute_values(":token", attribute(&self.token)?)
            .expression_attribute_values(":response", attribute(&stored)?)
            .build()
            .map_err(|e| internal(Box::new(e)))?;
        Ok(TransactWriteItem::builder().update(update).build())
    }
}

fn attribute<T: Serialize>(value: &T) -> Result<aws_sdk_dynamodb::types::AttributeValue, ApiError> {
    serde_dynamo::to_attribute_value(value).map_err(|e| ApiError::Internal(Box::new(e)))
}

/// The `Idempotency-Key` header, checked: 1–255 visible ASCII characters.
pub fn idempotency_key(req: &Request) -> Result<Option<String>, ApiError> {
    let Some(value) = req.headers().get(IDEMPOTENCY_HEADER) else {
        return Ok(None);
    };
    let key = value.to_str().unwrap_or_default();
    let valid = !key.is_empty() && key.len() <= MAX_KEY_CHARS && key.bytes().all(|b| b.is_ascii_graphic());
    if !valid {
        return Err(ApiError::BadRequest {
            code: "invalid_idempotency_key",
            detail: format!("Idempotency-Key must be 1 to {MAX_KEY_CHARS} visible ASCII characters (a UUID is ideal)."),
        });
    }
    Ok(Some(key.to_owned()))
}

fn replay(stored: StoredResponse) -> Response<Body> {
    let mut response = Response::builder().status(stored.status).body(Body::Text(stored.body)).unwrap_or_default();
    for (name, value) in stored.headers {
        if let (Ok(name), Ok(value)) = (http::HeaderName::try_from(name), HeaderValue::try_from(value)) {
            response.headers_mut().insert(name, value);
        }
    }
    response.headers_mut().insert(REPLAYED_HEADER, HeaderValue::from_static("true"));
    response
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_key(key: &str) -> Request {
        http::Request::builder().header(IDEMPOTENCY_HEADER, key).body(Body::Empty).unwrap()
    }

    #[test]
    fn keys_are_checked() {
        assert_eq!(idempotency_key(&with_key("3f1c-uuid")).unwrap().as_deref(), Some("3f1c-uuid"));
        assert_eq!(idempotency_key(&http::Request::builder().body(Body::Empty).unwrap()).unwrap(), None);
        for bad in ["", "has space", &"k".repeat(256)] {
            assert_eq!(idempotency_key(&with_key(bad)).unwrap_err().code(), "invalid_idempotency_key", "{bad:?}");
        }
    }

    #[test]
    fn replays_carry_the_first_status_headers_and_body_plus_the_marker() {
        let stored = StoredResponse {
            status: 201,
            headers: [
                ("etag".to_owned(), "\"1\"".to_owned()),
                ("content-type".to_owned(), "application/json".to_owned()),
            ]
            .into(),
            body: "{\"id\":\"veh_1\"}".into(),
        };
        let response = replay(stored);
        assert_eq!(response.status(), 201);
        assert_eq!(response.headers()["etag"], "\"1\"");
        assert_eq!(response.headers()[REPLAYED_HEADER], "true");
        assert_eq!(response.body(), &Body::Text("{\"id\":\"veh_1\"}".into()));
    }
}
