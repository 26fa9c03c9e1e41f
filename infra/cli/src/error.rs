//! How a command fails, and the exit code each failure gets (SPEC §10).

use std::process::ExitCode;

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// The provisioner refused (its `errorType` and `errorMessage`): exit 1.
    #[error("{error_type}: {message}")]
    Refused { error_type: String, message: String },
    /// The command line or a file it names is wrong: exit 2.
    #[error("{0}")]
    Usage(String),
    /// The target could not be reached or found: exit 3.
    #[error("{0}")]
    Unreachable(String),
}

impl CliError {
    pub fn exit_code(&self) -> ExitCode {
        ExitCode::from(match self {
            CliError::Refused { .. } => 1,
            CliError::Usage(_) => 2,
            CliError::Unreachable(_) => 3,
        })
    }
}
