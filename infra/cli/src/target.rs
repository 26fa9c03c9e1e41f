//! The provisioner the CLI talks to, and one call to it through the Lambda Invoke
//! API: the local stack's (the local gateway passes `/2015-03-31/functions/…` to
//! `cargo lambda watch`) or a deployed stack's, with the same client either way.

use std::time::Duration;

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_lambda::config::timeout::TimeoutConfig;
use aws_sdk_lambda::error::SdkError;
use aws_sdk_lambda::primitives::Blob;
use serde_json::Value;

use crate::cli::TargetArgs;
use crate::error::CliError;

/// `make dev`'s invoke API.
pub const LOCAL_ENDPOINT: &str = "http://127.0.0.1:9000";
/// The provisioner's name under `cargo lambda watch`.
const LOCAL_FUNCTION: &str = "provisioner";
/// Connecting gives up after this, and is tried twice: an unreachable target is
/// reported well inside 10 s. A provisioner answer may take longer (a cold start,
/// a cache flush): that is bounded by the read timeout.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
const READ_TIMEOUT: Duration = Duration::from_secs(60);

/// A provisioner function and how to reach it.
pub struct Provisioner {
    client: aws_sdk_lambda::Client,
    function: String,
    /// The API's base URL, for the curl example next to a new key (when known).
    pub api_url: Option<String>,
}

impl Provisioner {
    /// Resolves the target of `args`: the local stack, or a deployed one (its
    /// provisioner's name from the stack's outputs unless `--function` names it).
    pub async fn connect(args: &TargetArgs) -> Result<Provisioner, CliError> {
        let local = args.endpoint.clone().or_else(|| args.local.then(|| LOCAL_ENDPOINT.to_owned()));
        if let Some(endpoint) = local {
            let endpoint = endpoint.trim_end_matches('/').to_owned();
            // The local stack checks no signature: fixed credentials, any region.
            let config = aws_config::defaults(BehaviorVersion::latest())
                .http_client(fleetgate_api::dynamo::https_client())
                .region(Region::new("us-east-1"))
                .credentials_provider(aws_sdk_lambda::config::Credentials::new("local", "local", None, None, "local"))
                .endpoint_url(&endpoint)
                .load()
                .await;
            return Ok(Provisioner {
                client: lambda_client(&config),
                function: LOCAL_FUNCTION.to_owned(),
                api_url: Some(endpoint),
            });
        }
        if args.stack.is_none() && args.function.is_none() {
            return Err(CliError::Usage(
                "say which stack: --local (make dev), --endpoint URL, --stack NAME or --function NAME".into(),
            ));
        }
        // Credentials, profile, region and AWS_ENDPOINT_URL_* as the AWS CLI takes them.
        let config = aws_config::defaults(BehaviorVersion::latest())
            .http_client(fleetgate_api::dynamo::https_client())
            .load()
            .await;
        if let Some(function) = &args.function {
            return Ok(Provisioner { client: lambda_client(&config), function: function.clone(), api_url: None });
        }
        let stack = args.stack.as_deref().unwrap_or_default();
        let outputs = stack_outputs(&config, stack).await?;
        let output = |key: &str| outputs.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone());
        let function = output("ProvisionerFunctionName").ok_or_else(|| {
            CliError::Unreachable(format!(
                "stack {stack} has no ProvisionerFunctionName output (is it a Fleetgate stack?)"
            ))
        })?;
        Ok(Provisioner { client: lambda_client(&config), function, api_url: output("ApiUrl") })
    }

    /// Invokes the provisioner with `event`: its answer, or its refusal
    /// (`errorType`, `errorMessage`) as [`CliError::Refused`].
    pub async fn call(&self, event: &Value) -> Result<Value, CliError> {
        let payload = serde_json::to_vec(event).map_err(|e| CliError::Usage(e.to_string()))?;
        let sent = self.client.invoke().function_name(&self.function).payload(Blob::new(payload)).send().await;
        let output = match sent {
            Ok(output) => output,
            // An invoke API that answers a function error with an HTTP error status
            // (rather than Lambda's 200 + X-Amz-Function-Error) still carries the refusal.
            Err(SdkError::ServiceError(failed)) => {
                let body = failed.raw().body().bytes().and_then(|b| serde_json::from_slice::<Value>(b).ok());
                if let Some(refusal) = body.as_ref().and_then(refusal_of) {
                    return Err(refusal);
                }
                return Err(CliError::Unreachable(format!("{}: {}", self.function, describe(&failed.into_err()))));
            }
            Err(err) => return Err(CliError::Unreachable(format!("{}: {}", self.function, describe(&err)))),
        };
        let body = output.payload().map(|p| p.as_ref()).unwrap_or_default();
        let answer: Value = serde_json::from_slice(body)
            .map_err(|_| CliError::Unreachable(format!("{} answered something that is not JSON", self.function)))?;
        match (output.function_error(), refusal_of(&answer)) {
            (_, Some(refusal)) => Err(refusal),
            (Some(kind), None) => Err(CliError::Refused { error_type: kind.to_owned(), message: answer.to_string() }),
            (None, None) => Ok(answer),
        }
    }
}

fn lambda_client(config: &SdkConfig) -> aws_sdk_lambda::Client {
    let lambda = aws_sdk_lambda::config::Builder::from(config)
        .timeout_config(TimeoutConfig::builder().connect_timeout(CONNECT_TIMEOUT).read_timeout(READ_TIMEOUT).build())
        .retry_config(aws_sdk_lambda::config::retry::RetryConfig::standard().with_max_attempts(2))
        .build();
    aws_sdk_lambda::Client::from_conf(lambda)
}

/// The outputs of `stack` as (key, value) pairs.
async fn stack_outputs(config: &SdkConfig, stack: &str) -> Result<Vec<(String, String)>, CliError> {
    let cloudformation = aws_sdk_cloudformation::config::Builder::from(config)
        .timeout_config(TimeoutConfig::builder().connect_timeout(CONNECT_TIMEOUT).read_timeout(READ_TIMEOUT).build())
        .retry_config(aws_sdk_cloudformation::config::retry::RetryConfig::standard().with_max_attempts(2))
        .build();
    let described = aws_sdk_cloudformation::Client::from_conf(cloudformation)
        .describe_stacks()
        .stack_name(stack)
        .send()
        .await
        .map_err(|err| CliError::Unreachable(format!("stack {stack}: {}", describe(&err))))?;
    let outputs = described.stacks().first().map(|s| s.outputs()).unwrap_or_default();
    Ok(outputs.iter().filter_map(|o| Some((o.output_key()?.to_owned(), o.output_value()?.to_owned()))).collect())
}

/// A provisioner refusal: `{"errorType": …, "errorMessage": …}`.
fn refusal_of(answer: &Value) -> Option<CliError> {
    let error_type = answer.get("errorType")?.as_str()?;
    let message = answer.get("errorMessage").and_then(Value::as_str).unwrap_or_default();
    Some(CliError::Refused { error_type: error_type.to_owned(), message: message.to_owned() })
}

/// An SDK error in one line: its text and its causes' (where the useful part is,
/// "Connection refused" or "Stack with id x does not exist").
fn describe(err: &dyn std::error::Error) -> String {
    let mut parts = vec![err.to_string()];
    let mut source = err.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = cause.source();
    }
    parts.join(": ")
}
