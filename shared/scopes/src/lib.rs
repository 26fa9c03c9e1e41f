//! The scope-check crate: which scopes exist, what they imply, which scope each
//! route requires, and who the caller is. Pure logic, no I/O.

pub mod cidr;
pub mod context;
pub mod routes;
pub mod scope;

pub use cidr::{Cidr, InvalidCidr, MAX_ALLOWED_CIDRS};
pub use context::{AuthContext, Environment, InsufficientScope, MalformedContext, TenantId};
pub use routes::{ROUTES, Route};
pub use scope::{Availability, Preset, Scope, ScopeError, ScopeSet};
