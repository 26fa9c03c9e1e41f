//! The DynamoDB client (built once per cold start) and the classification of its errors.

use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::TransactWriteItem;

/// Builds the DynamoDB client from the environment (region, credentials and,
/// locally, `AWS_ENDPOINT_URL_DYNAMODB`). Call once per cold start.
///
/// Timeouts and retries are bounded so that a dead or throttling DynamoDB is
/// reported (as 503) well inside the Lambda timeout instead of hanging.
pub async fn client() -> Client {
    let config = aws_config::defaults(BehaviorVersion::latest())
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_millis(1_000))
                .operation_attempt_timeout(Duration::from_millis(1_500))
                .operation_timeout(Duration::from_millis(4_000))
                .build(),
        )
        .retry_config(RetryConfig::standard().with_max_attempts(3))
        .load()
        .await;
    Client::new(&config)
}

/// A failed DynamoDB call, classified by what the caller should do about it.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// Throttled, timed out or unreachable: transient, answer 503 and let the client retry.
    #[error("DynamoDB is unavailable or throttling")]
    Unavailable(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// A single item's condition expression did not hold.
    #[error("a DynamoDB condition did not hold")]
    ConditionFailed,
    /// A transaction was cancelled; one reason per item, in the order the items were given.
    #[error("DynamoDB transaction cancelled: {reasons:?}")]
    TransactionCancelled { reasons: Vec<CancelReason> },
    /// Anything else: a bug or a misconfiguration (wrong table name, missing permission).
    #[error("DynamoDB request failed")]
    Failed(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// An item did not match its Rust type.
    #[error("DynamoDB item could not be mapped")]
    Mapping(#[from] serde_dynamo::Error),
}

/// Why one item of a cancelled transaction failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CancelReason {
    /// This item was fine; another one cancelled the transaction.
    None,
    ConditionFailed,
    /// Another transaction touched this item at the same moment; retrying may succeed.
    Conflict,
    Other(String),
}

impl DbError {
    /// Whether the condition of item `index` of a transaction (or a single-item condition) failed.
    pub fn condition_failed_at(&self, index: usize) -> bool {
        match self {
            DbError::ConditionFailed => true,
            DbError::TransactionCancelled { reasons } => reasons.get(index) == Some(&CancelReason::ConditionFailed),
            _ => false,
        }
    }

    /// Whether any condition failed.
    pub fn is_condition_failure(&self) -> bool {
        match self {
            DbError::ConditionFailed => true,
            DbError::TransactionCancelled { reasons } => reasons.contains(&CancelReason::ConditionFailed),
            _ => false,
        }
    }

    /// A concurrent transaction on the same items: the caller may re-read and retry.
    pub fn is_conflict(&self) -> bool {
        matches!(self, DbError::TransactionCancelled { reasons } if reasons.contains(&CancelReason::Conflict))
    }
}

/// Writes `items` in one transaction, reporting a cancellation item by item.
pub async fn transact_write(client: &Client, items: Vec<TransactWriteItem>) -> Result<(), DbError> {
    let err = match client.transact_write_items().set_transact_items(Some(items)).send().await {
        Ok(_) => return Ok(()),
        Err(err) => err,
    };
    if let SdkError::ServiceError(service) = &err
        && let TransactWriteItemsError::TransactionCanceledException(cancelled) = service.err()
    {
        let reasons = cancelled
            .cancellation_reasons()
            .iter()
            .map(|reason| match reason.code().unwrap_or("None") {
                "None" => CancelReason::None,
                "ConditionalCheckFailed" => CancelReason::ConditionFailed,
                "TransactionConflict" => CancelReason::Conflict,
                other => CancelReason::Other(other.to_owned()),
            })
            .collect();
        return Err(DbError::TransactionCancelled { reasons });
    }
    Err(err.into())
}

/// Error codes DynamoDB uses for transient trouble on its side.
const TRANSIENT_CODES: [&str; 6] = [
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
    "InternalServerError",
    "ServiceUnavailable",
    "LimitExceededException",
];

impl<E, R> From<SdkError<E, R>> for DbError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug + Send + Sync + 'static,
{
    fn from(err: SdkError<E, R>) -> Self {
        match &err {
            SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) => DbError::Unavailable(Box::new(err)),
            SdkError::ServiceError(service) => {
                let code = service.err().code().unwrap_or_default();
                if code == "ConditionalCheckFailedException" {
                    return DbError::ConditionFailed;
                }
                if TRANSIENT_CODES.contains(&code) {
                    DbError::Unavailable(Box::new(err))
                } else {
                    DbError::Failed(Box::new(err))
                }
            }
            _ => DbError::Failed(Box::new(err)),
        }
    }
}

/// Reads a required env var, naming it in the error so a misconfigured stack says what is missing.
pub fn env_var(name: &str) -> Result<String, ConfigError> {
    std::env::var(name).ok().filter(|v| !v.is_empty()).ok_or_else(|| ConfigError(name.to_owned()))
}

/// A required environment variable is missing.
#[derive(Debug, thiserror::Error)]
#[error("environment variable {0} must be set")]
pub struct ConfigError(pub String);
