//! The data/HTTP layer every function shares: problem-details errors, the
//! DynamoDB client, API keys (format, store, resolver), audit, and the
//! endpoint runner that authenticates and scope-checks each request.

// `http::serve` answers a handler panic with a 500 problem by catching the unwind.
// Built with panic = "abort" (what cargo lambda, and so `sam build`, uses when the
// release profile does not say), a panic would kill the function instead: refuse.
#[cfg(panic = "abort")]
compile_error!("fleetgate needs panic = \"unwind\" (see [profile.release] in the workspace Cargo.toml)");

pub mod audit;
pub mod call_time;
pub mod cursor_keys;
pub mod dynamo;
pub mod error;
pub mod http;
pub mod idempotency;
pub mod ids;
pub mod if_match;
pub mod input;
pub mod keys;
pub mod list;
pub mod logging;
pub mod metrics;
pub mod scope_use;
pub mod stored;
pub mod timestamp;
pub mod usage;

pub use error::{ApiError, FieldError};
pub use timestamp::Timestamp;
