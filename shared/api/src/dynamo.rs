//! The DynamoDB client (built once per cold start) and the classification of its errors.

use std::time::Duration;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::config::retry::RetryConfig;
use aws_sdk_dynamodb::config::timeout::TimeoutConfig;
use aws_sdk_dynamodb::config::{BehaviorVersion, Credentials, Region, SharedHttpClient};
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes, TransactWriteItem};
use aws_smithy_http_client::tls::{self, TlsContext, TrustStore};
use aws_smithy_runtime_api::http::Response as HttpResponse;
use fleetgate_scopes::Environment;

/// Root CAs of Amazon Trust Services, which issue the certificates of every
/// DynamoDB endpoint (the set AWS documents for its services).
const AMAZON_ROOT_CAS: &[u8] = include_bytes!("amazon-trust-services-roots.pem");

/// Set to `1` to trust the system's CA store instead (e.g. behind a TLS-inspecting proxy).
pub const NATIVE_ROOTS_ENV: &str = "FLEETGATE_TLS_NATIVE_ROOTS";

/// Builds the DynamoDB client from the environment Lambda provides: `AWS_REGION`,
/// the execution role's `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` /
/// `AWS_SESSION_TOKEN`, and (locally) `AWS_ENDPOINT_URL_DYNAMODB`. Call once per cold start.
///
/// Deliberately not `aws_config::load_from_env()` with the SDK's default HTTPS
/// client: those build provider chains (profile files, SSO, IMDS, ECS) a Lambda
/// function never needs and read the whole system CA store at start-up, which
/// costs init time, memory and binary size (measured: docs/benchmarks.md).
/// Nothing here touches the network: the one connection opens on the first
/// request and is reused after that.
pub fn client() -> Client {
    let mut config = config_builder().region(env_region());
    if let Some(credentials) = env_credentials() {
        config = config.credentials_provider(credentials);
    }
    if let Some(endpoint) = optional_var("AWS_ENDPOINT_URL_DYNAMODB").or_else(|| optional_var("AWS_ENDPOINT_URL")) {
        config = config.endpoint_url(endpoint);
    }
    Client::from_conf(config.build())
}

/// The region Lambda runs the function in (`AWS_REGION`).
pub fn env_region() -> Option<Region> {
    optional_var("AWS_REGION").or_else(|| optional_var("AWS_DEFAULT_REGION")).map(Region::new)
}

/// The execution role's credentials, which Lambda puts in the environment
/// (valid for the life of the execution environment). Any AWS SDK client of ours uses them.
pub fn env_credentials() -> Option<Credentials> {
    let (key, secret) = (optional_var("AWS_ACCESS_KEY_ID")?, optional_var("AWS_SECRET_ACCESS_KEY")?);
    Some(Credentials::new(key, secret, optional_var("AWS_SESSION_TOKEN"), None, "environment"))
}

/// Which keys this deployment issues and accepts (`FLEETGATE_ENVIRONMENT`).
pub fn deployment_environment() -> Result<Environment, ConfigError> {
    env_var("FLEETGATE_ENVIRONMENT")?.parse().map_err(|_| ConfigError("FLEETGATE_ENVIRONMENT (live or test)".into()))
}

/// An env var, `None` when unset or empty.
pub fn optional_var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// A client for a local DynamoDB at `endpoint` with dummy credentials (tests, benchmarks, local stack).
pub fn local_client(endpoint: &str) -> Client {
    let config = config_builder()
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(Credentials::new("local", "local", None, None, "local"));
    Client::from_conf(config.build())
}

/// Timeouts and retries are bounded so that a dead or throttling DynamoDB is
/// reported (as 503) well inside the Lambda timeout instead of hanging.
fn config_builder() -> aws_sdk_dynamodb::config::Builder {
    aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .http_client(https_client())
        .timeout_config(call_timeouts())
        .retry_config(RetryConfig::standard().with_max_attempts(3))
        .interceptor(crate::call_time::AwsCallTimer)
}

/// The bounds of one AWS call (each attempt, and all of them), for every SDK
/// client of the functions (DynamoDB, SQS): a dead or slow service is reported
/// well inside the Lambda timeout.
pub fn call_timeouts() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(Duration::from_millis(1_000))
        .operation_attempt_timeout(Duration::from_millis(1_500))
        .operation_timeout(Duration::from_millis(4_000))
        .build()
}

/// The HTTPS client every AWS SDK client of ours uses: rustls with ring, trusting
/// Amazon's root CAs (compiled in), so building it reads no files.
pub fn https_client() -> SharedHttpClient {
    let trust = if std::env::var(NATIVE_ROOTS_ENV).as_deref() == Ok("1") {
        TrustStore::default()
    } else {
        TrustStore::empty().with_native_roots(false).with_pem_certificate(AMAZON_ROOT_CAS)
    };
    let tls = TlsContext::builder().with_trust_store(trust).build().expect("the compiled-in root CAs are valid PEM");
    aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(tls::rustls_provider::CryptoMode::Ring))
        .tls_context(tls)
        .build_https()
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
    /// The table or index was over its capacity for this item (`ThrottlingError`,
    /// `ProvisionedThroughputExceeded`): as transient as any throttling.
    Throttled,
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

    /// For a transaction whose first item puts a new item under a freshly generated
    /// id (`attribute_not_exists`): that condition failed, so an item with this id
    /// exists, and only an earlier attempt of this very transaction can have written
    /// it, whole (transactions are atomic). That happens when the SDK retries after
    /// the first attempt's answer was lost: DynamoDB answers such a retry as a success
    /// when it carries the same ClientRequestToken within 10 minutes; an emulator (or
    /// a later retry) runs it again and finds its own write.
    pub fn is_own_earlier_create(&self) -> bool {
        matches!(self, DbError::TransactionCancelled { reasons } if reasons.first() == Some(&CancelReason::ConditionFailed))
    }

    /// Worth retrying later (answer 503 with `Retry-After`): DynamoDB unavailable or
    /// throttling, a transaction cancelled by throttling, or a race lost to a concurrent
    /// write of the same item.
    pub fn is_transient(&self) -> bool {
        match self {
            DbError::Unavailable(_) => true,
            DbError::TransactionCancelled { reasons } => {
                reasons.iter().any(|r| matches!(r, CancelReason::Conflict | CancelReason::Throttled))
            }
            _ => false,
        }
    }

    /// A concurrent transaction on the same items: the caller may re-read and retry.
    pub fn is_conflict(&self) -> bool {
        matches!(self, DbError::TransactionCancelled { reasons } if reasons.contains(&CancelReason::Conflict))
    }
}

/// A DynamoDB item as the SDK gives it.
pub type Item = std::collections::HashMap<String, AttributeValue>;

/// The items of `keys` in `table` that exist (any number of keys: 100 a call),
/// each read with `projection` (a projection expression and its `#name`s) when
/// given. Keys DynamoDB leaves unprocessed (throttling) are asked again, a few times.
pub async fn batch_get(
    client: &Client,
    table: &str,
    keys: Vec<Item>,
    projection: Option<(&str, &[(&str, &str)])>,
) -> Result<Vec<Item>, DbError> {
    let mut found = Vec::new();
    for chunk in keys.chunks(100) {
        let mut request = KeysAndAttributes::builder().set_keys(Some(chunk.to_vec()));
        if let Some((expression, names)) = projection {
            request = request.projection_expression(expression);
            for (placeholder, name) in names {
                request = request.expression_attribute_names(*placeholder, *name);
            }
        }
        let mut request = request.build().map_err(|e| DbError::Failed(Box::new(e)))?;
        let mut attempts = 0;
        loop {
            let output = client.batch_get_item().request_items(table, request.clone()).send().await?;
            found.extend(output.responses.unwrap_or_default().remove(table).unwrap_or_default());
            match output.unprocessed_keys.unwrap_or_default().remove(table) {
                Some(rest) if !rest.keys.is_empty() => {
                    attempts += 1;
                    if attempts > 5 {
                        return Err(DbError::Unavailable("batch reads stayed unprocessed".into()));
                    }
                    request = rest;
                }
                _ => break,
            }
        }
    }
    Ok(found)
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
            .map(|reason| CancelReason::of(reason.code().unwrap_or("None")))
            .collect();
        return Err(DbError::TransactionCancelled { reasons });
    }
    Err(err.into())
}

impl CancelReason {
    /// The reason for DynamoDB's cancellation reason `code`.
    pub fn of(code: &str) -> CancelReason {
        match code {
            "None" => CancelReason::None,
            "ConditionalCheckFailed" => CancelReason::ConditionFailed,
            "TransactionConflict" => CancelReason::Conflict,
            "ThrottlingError" | "ProvisionedThroughputExceeded" => CancelReason::Throttled,
            other => CancelReason::Other(other.to_owned()),
        }
    }
}

/// Error codes of DynamoDB refusing a call for its rate (transient).
const THROTTLING_CODES: [&str; 4] =
    ["ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded", "LimitExceededException"];
/// Error codes of trouble on DynamoDB's side (transient).
const SERVER_ERROR_CODES: [&str; 2] = ["InternalServerError", "ServiceUnavailable"];

impl<E> From<SdkError<E, HttpResponse>> for DbError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    /// Classifies a failed call, and counts it (`DynamoErrors` by operation and
    /// kind) unless a condition did not hold, which is an answer, not an error.
    /// Counted here, where every call's error passes, rather than in an SDK
    /// interceptor: a timed-out call's future is dropped before any interceptor
    /// hook runs after it.
    fn from(err: SdkError<E, HttpResponse>) -> Self {
        let kind = failure_kind(&err);
        if let Some(kind) = kind {
            crate::metrics::count("DynamoErrors", &[("operation", operation_of::<E>()), ("kind", kind)]).emit();
        }
        match (&err, kind) {
            (_, None) => DbError::ConditionFailed,
            (_, Some("timeout" | "unreachable" | "throttled" | "server_error")) => DbError::Unavailable(Box::new(err)),
            _ => DbError::Failed(Box::new(err)),
        }
    }
}

/// What kind of failure `err` is: `timeout`, `unreachable`, `throttled`,
/// `server_error` (transient: answer 503), `refused` (validation, access denied,
/// a missing table: a bug or misconfiguration), `unparsed`; `None` for a condition
/// that did not hold.
fn failure_kind<E: ProvideErrorMetadata>(err: &SdkError<E, HttpResponse>) -> Option<&'static str> {
    Some(match err {
        SdkError::TimeoutError(_) => "timeout",
        SdkError::DispatchFailure(failure) if failure.is_timeout() => "timeout",
        SdkError::DispatchFailure(_) => "unreachable",
        SdkError::ServiceError(service) => {
            let code = service.err().code().unwrap_or_default();
            if code == "ConditionalCheckFailedException" {
                return None;
            }
            // A 5xx is DynamoDB's trouble, named or not (an answer without a
            // parseable error code, from a load balancer say): retry later.
            if THROTTLING_CODES.contains(&code) {
                "throttled"
            } else if SERVER_ERROR_CODES.contains(&code) || service.raw().status().is_server_error() {
                "server_error"
            } else {
                "refused"
            }
        }
        SdkError::ResponseError(response) if response.raw().status().is_server_error() => "server_error",
        _ => "unparsed",
    })
}

/// The DynamoDB operation whose error type is `E` (`UpdateItemError` → `UpdateItem`).
fn operation_of<E>() -> &'static str {
    let name = std::any::type_name::<E>();
    let last = name.rsplit("::").next().unwrap_or(name);
    last.strip_suffix("Error").filter(|op| !op.is_empty()).unwrap_or("unknown")
}

/// Reads a required env var, naming it in the error so a misconfigured stack says what is missing.
pub fn env_var(name: &str) -> Result<String, ConfigError> {
    optional_var(name).ok_or_else(|| ConfigError(name.to_owned()))
}

/// A required environment variable is missing.
#[derive(Debug, thiserror::Error)]
#[error("environment variable {0} must be set")]
pub struct ConfigError(pub String);

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_dynamodb::error::ErrorMetadata;
    use aws_sdk_dynamodb::operation::get_item::GetItemError;
    use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
    use aws_smithy_runtime_api::client::result::ConnectorError;
    use aws_smithy_types::body::SdkBody;
    use rustls_pki_types::CertificateDer;

    fn service_error(status: u16, code: Option<&str>) -> DbError {
        let mut meta = ErrorMetadata::builder();
        if let Some(code) = code {
            meta = meta.code(code);
        }
        let err = GetItemError::generic(meta.build());
        let raw = HttpResponse::new(status.try_into().unwrap(), SdkBody::from("<html>oops</html>"));
        DbError::from(SdkError::service_error(err, raw))
    }

    /// Every error DynamoDB documents for its data-plane calls, and what it becomes.
    #[test]
    fn every_dynamodb_error_code_is_classified() {
        for code in THROTTLING_CODES.iter().chain(&SERVER_ERROR_CODES) {
            assert!(matches!(service_error(400, Some(code)), DbError::Unavailable(_)), "{code}");
        }
        for code in [
            "ValidationException",
            "ResourceNotFoundException",
            "AccessDeniedException",
            "UnrecognizedClientException",
            "ItemCollectionSizeLimitExceededException",
            "SerializationException",
        ] {
            assert!(matches!(service_error(400, Some(code)), DbError::Failed(_)), "{code}: a bug or misconfiguration");
        }
        assert!(matches!(service_error(400, Some("ConditionalCheckFailedException")), DbError::ConditionFailed));
        // And each class answers as it should: retry later, or a 500 without internals.
        let api = |err: DbError| crate::ApiError::from(err).status().as_u16();
        assert_eq!(api(service_error(400, Some("ThrottlingException"))), 503);
        assert_eq!(api(service_error(500, None)), 503);
        assert_eq!(api(service_error(400, Some("ValidationException"))), 500);
    }

    /// Every cancellation reason code DynamoDB documents.
    #[test]
    fn every_cancellation_reason_code_is_classified() {
        let cases = [
            ("None", CancelReason::None, false),
            ("ConditionalCheckFailed", CancelReason::ConditionFailed, false),
            ("TransactionConflict", CancelReason::Conflict, true),
            ("ThrottlingError", CancelReason::Throttled, true),
            ("ProvisionedThroughputExceeded", CancelReason::Throttled, true),
            ("ItemCollectionSizeLimitExceeded", CancelReason::Other("ItemCollectionSizeLimitExceeded".into()), false),
            ("ValidationError", CancelReason::Other("ValidationError".into()), false),
        ];
        for (code, reason, transient) in cases {
            assert_eq!(CancelReason::of(code), reason, "{code}");
            let cancelled = DbError::TransactionCancelled { reasons: vec![CancelReason::None, reason] };
            assert_eq!(cancelled.is_transient(), transient, "{code}");
            let status = crate::ApiError::from(cancelled).status().as_u16();
            assert_eq!(status, if transient { 503 } else { 500 }, "{code}");
        }
    }

    #[test]
    fn cancelled_transactions_are_transient_when_a_reason_is_throttling_or_a_race() {
        let cancelled = |reasons: Vec<CancelReason>| DbError::TransactionCancelled { reasons };
        assert!(cancelled(vec![CancelReason::None, CancelReason::Throttled]).is_transient());
        assert!(cancelled(vec![CancelReason::Conflict, CancelReason::None]).is_transient());
        assert!(!cancelled(vec![CancelReason::ConditionFailed, CancelReason::None]).is_transient());
        assert!(!cancelled(vec![CancelReason::Other("ValidationError".into())]).is_transient());
        assert!(!DbError::ConditionFailed.is_transient());
    }

    #[test]
    fn a_server_error_without_a_code_is_unavailable_not_internal() {
        assert!(matches!(service_error(500, None), DbError::Unavailable(_)));
        assert!(matches!(service_error(503, Some("Whatever")), DbError::Unavailable(_)));
        assert!(matches!(service_error(400, Some("ThrottlingException")), DbError::Unavailable(_)));
        assert!(matches!(service_error(400, Some("ValidationException")), DbError::Failed(_)));
        assert!(matches!(service_error(400, Some("ConditionalCheckFailedException")), DbError::ConditionFailed));
    }

    #[test]
    fn failed_calls_are_counted_by_operation_and_kind_and_a_condition_that_did_not_hold_is_not() {
        let failed = |status: u16, code: &str| {
            let err = UpdateItemError::generic(ErrorMetadata::builder().code(code).build());
            let raw = HttpResponse::new(status.try_into().unwrap(), SdkBody::from("{}"));
            failure_kind(&SdkError::service_error(err, raw))
        };
        assert_eq!(failed(400, "ThrottlingException"), Some("throttled"));
        assert_eq!(failed(400, "ProvisionedThroughputExceededException"), Some("throttled"));
        assert_eq!(failed(500, "InternalServerError"), Some("server_error"));
        assert_eq!(failed(502, "SomethingNew"), Some("server_error"));
        assert_eq!(failed(400, "ValidationException"), Some("refused"));
        assert_eq!(failed(400, "ConditionalCheckFailedException"), None);
        let timeout = SdkError::<UpdateItemError, HttpResponse>::timeout_error("attempt timed out");
        assert_eq!(failure_kind(&timeout), Some("timeout"));
        let refused = ConnectorError::io("connection refused".into());
        assert_eq!(
            failure_kind(&SdkError::<UpdateItemError, HttpResponse>::dispatch_failure(refused)),
            Some("unreachable")
        );
        assert_eq!(operation_of::<UpdateItemError>(), "UpdateItem");
        assert_eq!(operation_of::<GetItemError>(), "GetItem");
        assert_eq!(
            operation_of::<aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError>(),
            "TransactWriteItems"
        );
    }

    use rustls_pki_types::pem::PemObject;

    #[test]
    fn the_compiled_in_roots_are_amazons_five_and_parse() {
        let roots: Vec<CertificateDer> =
            CertificateDer::pem_slice_iter(AMAZON_ROOT_CAS).collect::<Result<_, _>>().expect("valid PEM");
        assert_eq!(roots.len(), 5);
        let text = String::from_utf8_lossy(AMAZON_ROOT_CAS);
        for name in ["Amazon_Root_CA_1", "Amazon_Root_CA_4", "Starfield_Services_Root_Certificate_Authority_-_G2"] {
            assert!(text.contains(name), "{name}");
        }
    }
}
