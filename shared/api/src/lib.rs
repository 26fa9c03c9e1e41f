//! The data/HTTP layer every function shares: problem-details errors, the
//! DynamoDB client, API keys (format, store, resolver), audit, and the
//! endpoint runner that authenticates and scope-checks each request.

pub mod audit;
pub mod dynamo;
pub mod error;
pub mod http;
pub mod idempotency;
pub mod ids;
pub mod input;
pub mod keys;
pub mod list;
pub mod timestamp;

pub use error::{ApiError, FieldError};
pub use timestamp::Timestamp;
