//! Fleet resources shared by the endpoint functions: their wire types, the
//! validation of client input into them, and their stores in the fleet table.
//! Every item's partition key is the tenant id from the auth context.

pub mod vehicles;
