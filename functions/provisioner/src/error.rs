//! The provisioner's one error type: each variant is a distinct, stable `errorType`
//! that `aws lambda invoke` (or the CLI) shows the admin. The invoke answer has
//! only `errorType` and `errorMessage`, so a refusal with several invalid fields
//! lists them all in the message, one `field: reason` each, separated by `; `.

use lambda_runtime::Diagnostic;

use fleetgate_api::dynamo::DbError;
use fleetgate_api::error::FieldError;
use fleetgate_scopes::ScopeError;
use fleetgate_scopes::context::InvalidTenantId;

/// Every `errorType` the provisioner answers with (README lists them; a test keeps both in step).
pub const ERROR_TYPES: [&str; 16] = [
    "invalid_request",
    "unknown_action",
    "invalid_field",
    "invalid_tenant_id",
    "unknown_scope",
    "scope_not_available",
    "empty_scopes",
    "unknown_preset",
    "invalid_template",
    "tenant_not_found",
    "tenant_exists",
    "key_not_found",
    "key_revoked",
    "key_already_rotated",
    "service_unavailable",
    "internal_error",
];

/// One invalid field of an event, with the error type it alone would get.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invalid {
    pub field: String,
    pub message: String,
    pub code: &'static str,
}

#[derive(Debug, thiserror::Error)]
pub enum ProvisionError {
    /// The event is not a JSON object with a known shape (not JSON, wrong types, unknown fields).
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    #[error("unknown action '{0}'; valid actions are: {valid}", valid = crate::ACTIONS.join(", "))]
    UnknownAction(String),
    /// Fields that break a rule (length, range, a date in the past, unknown scopes, …), all of them.
    #[error("{}", .0.iter().map(|e| format!("{}: {}", e.field, e.message)).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<Invalid>),
    /// A template that breaks the rules; every failing field is named.
    #[error("invalid template: {}", .0.iter().map(|e| format!("{}: {}", e.field, e.message)).collect::<Vec<_>>().join("; "))]
    InvalidTemplate(Vec<FieldError>),
    #[error("no tenant '{0}'; create it first with create_tenant (list_tenants shows the existing ones)")]
    TenantNotFound(String),
    #[error("tenant '{0}' exists already")]
    TenantExists(String),
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
    /// Stable snake_case type, the same vocabulary as the HTTP problem codes. Several
    /// invalid fields are `invalid_field`; one keeps its own type (`unknown_scope`, …).
    pub fn code(&self) -> &'static str {
        match self {
            ProvisionError::InvalidRequest(_) => "invalid_request",
            ProvisionError::UnknownAction(_) => "unknown_action",
            ProvisionError::Invalid(fields) => match fields.as_slice() {
                [only] => only.code,
                _ => "invalid_field",
            },
            ProvisionError::InvalidTemplate(_) => "invalid_template",
            ProvisionError::TenantNotFound(_) => "tenant_not_found",
            ProvisionError::TenantExists(_) => "tenant_exists",
            ProvisionError::KeyNotFound(_) => "key_not_found",
            ProvisionError::KeyRevoked(_) => "key_revoked",
            ProvisionError::KeyAlreadyRotated { .. } => "key_already_rotated",
            ProvisionError::Unavailable(_) => "service_unavailable",
            ProvisionError::Internal(_) => "internal_error",
        }
    }

    /// One invalid field.
    pub(crate) fn field(field: &str, message: impl Into<String>) -> ProvisionError {
        ProvisionError::Invalid(vec![Invalid { field: field.into(), message: message.into(), code: "invalid_field" }])
    }

    /// A refusal the caller caused (audited as refused), not the service's trouble.
    pub fn is_refusal(&self) -> bool {
        !matches!(self, ProvisionError::Unavailable(_) | ProvisionError::Internal(_))
    }
}

/// Collects every invalid field of an event before anything is written.
#[derive(Debug, Default)]
pub(crate) struct Checks {
    invalid: Vec<Invalid>,
}

impl Checks {
    /// `result`'s value, or its error recorded (`None`).
    pub fn take<T>(&mut self, result: Result<T, ProvisionError>) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(ProvisionError::Invalid(fields)) => {
                self.invalid.extend(fields);
                None
            }
            Err(other) => {
                // Only field checks go through here; anything else is kept as a field error too.
                self.invalid.push(Invalid { field: String::new(), message: other.to_string(), code: other.code() });
                None
            }
        }
    }

    /// `Ok` when nothing was invalid, else every invalid field at once.
    pub fn finish(self) -> Result<(), ProvisionError> {
        if self.invalid.is_empty() { Ok(()) } else { Err(ProvisionError::Invalid(self.invalid)) }
    }
}

impl From<ScopeError> for ProvisionError {
    fn from(err: ScopeError) -> Self {
        let field = if matches!(err, ScopeError::UnknownPreset { .. }) { "preset" } else { "scopes" };
        ProvisionError::Invalid(vec![Invalid { field: field.into(), message: err.to_string(), code: err.code() }])
    }
}

impl From<InvalidTenantId> for ProvisionError {
    fn from(err: InvalidTenantId) -> Self {
        ProvisionError::Invalid(vec![Invalid {
            field: "tenant_id".into(),
            message: err.to_string(),
            code: "invalid_tenant_id",
        }])
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_invalid_field_keeps_its_type_and_several_list_every_one() {
        let one = ProvisionError::from(ScopeError::Empty);
        assert_eq!(one.code(), "empty_scopes");
        let mut checks = Checks::default();
        checks.take::<()>(Err(ProvisionError::field("name", "must not be empty")));
        checks.take::<()>(Err(ScopeError::Empty.into()));
        let both = checks.finish().unwrap_err();
        assert_eq!(both.code(), "invalid_field");
        let message = both.to_string();
        assert!(message.starts_with("name: must not be empty; scopes: "), "{message}");
    }

    #[test]
    fn every_code_is_listed() {
        let codes = [
            ProvisionError::InvalidRequest(String::new()).code(),
            ProvisionError::UnknownAction(String::new()).code(),
            ProvisionError::field("f", "m").code(),
            ProvisionError::from(InvalidTenantId).code(),
            ProvisionError::InvalidTemplate(vec![]).code(),
            ProvisionError::TenantNotFound(String::new()).code(),
            ProvisionError::TenantExists(String::new()).code(),
            ProvisionError::KeyNotFound(String::new()).code(),
            ProvisionError::KeyRevoked(String::new()).code(),
            ProvisionError::KeyAlreadyRotated { key_id: String::new(), rotated_to: String::new() }.code(),
            ProvisionError::Unavailable(DbError::Unavailable("x".into())).code(),
            ProvisionError::Internal(DbError::ConditionFailed).code(),
        ];
        for code in codes {
            assert!(ERROR_TYPES.contains(&code), "{code} is missing from ERROR_TYPES");
        }
    }
}
