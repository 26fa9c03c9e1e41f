//! The scope-check crate: which scopes exist, what they imply, which scope each
//! route requires, and who the caller is. Pure logic, no I/O.

pub mod cidr;
pub mod context;
pub mod rate_limit;
pub mod routes;
pub mod scope;

pub use cidr::{Cidr, InvalidCidr, MAX_ALLOWED_CIDRS};
pub use context::{AuthContext, Environment, InsufficientScope, Limits, MalformedContext, TenantId};
pub use rate_limit::{InvalidRateLimit, Per, RateLimit};
pub use routes::{ROUTES, Route};
pub use scope::{Availability, Preset, Scope, ScopeError, ScopeSet};
