//! API keys: the format (offline checks, hashing), the keys table, and the resolver.

mod format;
mod resolve;
mod store;

pub use format::{ApiKey, KeyFormatError, KeyHash, new_public_id};
pub use resolve::{KeyResolver, Rejection, ResolveError};
pub use store::{KeyRecord, KeyStatus, KeyStore, LAST_USED_GRANULARITY, Restrictions, TENANT_INDEX};
