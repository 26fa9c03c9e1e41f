//! Fleet resources shared by the endpoint functions and the provisioner: their
//! wire types, the validation of client input into them, and their stores in
//! the fleet table. Every item's partition key is the tenant id from the auth
//! context (or, for admins, the provisioning request).

pub mod inspections;
pub mod templates;
pub mod vehicles;
