//! Webhooks (SPEC §11), the parts the webhook functions and the admin CLI
//! share: event types and the scope each needs, the outbox item and the
//! delivery payload, endpoints (validation and store), Standard Webhooks
//! signing and verification, the retry schedule, the rules for where a
//! delivery may go and the client that delivers, and the attempt log.

pub mod api;
pub mod deliver;
pub mod deliveries;
pub mod dispatch;
pub mod endpoints;
pub mod events;
pub mod outbound;
pub mod queue;
pub mod schedule;
pub mod sender;
pub mod signing;
pub mod store;
pub mod target_url;
