//! The provisioner's one error type: each variant is a distinct, stable `errorType`
//! that `aws lambda invoke` (or `cargo lambda invoke`) shows the admin.

use lambda_runtime::Diagnostic;

use fleetgate_api::dynamo::DbError;
use fleetgate_api::error::FieldError;
use fleetgate_scopes::ScopeError;
use fleetgate_scopes::context::InvalidTenantId;

#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    /// The event is not a JSON object with a known shape (wrong types, unknown fields).
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    #[error("unknown action '{0}'; valid actions are: {valid}", valid = crate::ACTIONS.join(", "))]
    UnknownAction(String),
    #[error("{0}")]
    InvalidTenantId(#[from] InvalidTenantId),
    /// Unknown, not-yet-available or empty scopes, or an unknown preset.
    #[error("{0}")]
    Scope(#[from] ScopeError),
    /// A field breaks a rule (length, range, date in the past, …).
    #[error("invalid {field}: {message}")]
    InvalidField { field: &'static str, message: String },
    /// A template that breaks the rules; every failing field is named.
    #[error("invalid template: {}", .0.iter().map(|e| format!("{}: {}", e.field, e.message)).collect::<Vec<_>>().join("; "))]
    InvalidTemplate(Vec<FieldError>),
    #[error("no key with id '{0}' in this tenant")]
    KeyNotFound(String),
    #[error("key '{0}' is revoked; create a new key instead")]
    KeyRevoked(String),
    #[error("key '{key_id}' was already rotated to '{rotated_to}'; rotate that one instead")]
    KeyAlreadyRotated { key_id: String, rotated_to: String },
    /// DynamoDB throttled or unreachable: retry later.
    #[error("the key store is temporarily unavailable; retry shortly")]
    Unavailable(#[source] DbError),
    /// Unexpected; details are in the function's log.
    #[error("internal error; see the provisioner's log for request details")]
    Internal(#[source] DbError),
}

impl ProvisionError {
    /// Stable snake_case type, the same vocabulary as the HTTP problem codes.
    pub fn code(&self) -> &'static str {
        match self {
            ProvisionError::InvalidRequest(_) => "invalid_request",
            ProvisionError::UnknownAction(_) => "unknown_action",
            ProvisionError::InvalidTenantId(_) => "invalid_tenant_id",
            ProvisionError::Scope(err) => err.code(),
            ProvisionError::InvalidField { .. } => "invalid_field",
            ProvisionError::InvalidTemplate(_) => "invalid_template",
            ProvisionError::KeyNotFound(_) => "key_not_found",
            ProvisionError::KeyRevoked(_) => "key_revoked",
            ProvisionError::KeyAlreadyRotated { .. } => "key_already_rotated",
            ProvisionError::Unavailable(_) => "service_unavailable",
            ProvisionError::Internal(_) => "internal_error",
        }
    }

    pub(crate) fn field(field: &'static str, message: impl Into<String>) -> ProvisionError {
        ProvisionError::InvalidField { field, message: message.into() }
    }
}

impl From<DbError> for ProvisionError {
    fn from(err: DbError) -> Self {
        if err.is_transient() { ProvisionError::Unavailable(err) } else { ProvisionError::Internal(err) }
    }
}

impl From<ProvisionError> for Diagnostic {
    fn from(err: ProvisionError) -> Diagnostic {
        Diagnostic { error_type: err.code().to_owned(), error_message: err.to_string() }
    }
}
