//! Fleet resources shared by the endpoint functions and the provisioner: their
//! wire types, the validation of client input into them, and their stores in
//! the fleet table. Every item's partition key is the tenant id from the auth
//! context (or, for admins, the provisioning request).

pub mod inspections;
pub mod templates;
pub mod tenants;
pub mod vehicles;

/// The fleet table's keys and indexes (as defined in `infra/template.yaml`).
pub(crate) mod table {
    use aws_sdk_dynamodb::Client;
    use fleetgate_api::dynamo::DbError;
    use fleetgate_scopes::TenantId;
    use serde::de::DeserializeOwned;

    /// One item of `tenant`, strongly consistent, as `T` (`None` also for an item
    /// that does not map: logged, and a 404 to the client, never a 500).
    pub async fn get<T: DeserializeOwned>(
        client: &Client,
        table: &str,
        tenant: &TenantId,
        sk: String,
    ) -> Result<Option<T>, DbError> {
        let output = client
            .get_item()
            .table_name(table)
            .key("pk", serde_dynamo::to_attribute_value(tenant)?)
            .key("sk", serde_dynamo::to_attribute_value(sk)?)
            .consistent_read(true)
            .send()
            .await?;
        Ok(output.item.and_then(fleetgate_api::list::readable_item))
    }

    /// The table's own key.
    pub const KEY: &[&str] = &["pk", "sk"];

    /// A global secondary index: its name and the attributes that locate an item read through it.
    pub struct Index {
        pub name: &'static str,
        pub key: &'static [&'static str],
    }

    pub const GSI1: Index = Index { name: "gsi1", key: &["pk", "sk", "gsi1pk", "gsi1sk"] };
    pub const GSI2: Index = Index { name: "gsi2", key: &["pk", "sk", "gsi2pk", "gsi2sk"] };
    pub const GSI3: Index = Index { name: "gsi3", key: &["pk", "sk", "gsi3pk", "gsi3sk"] };
    pub const GSI4: Index = Index { name: "gsi4", key: &["pk", "sk", "gsi4pk", "gsi4sk"] };
}
