//! The local stack, shared by `local-stack` and `local-gateway` (used by `make dev`) and the
//! tests: reading `infra/template.yaml` (tables, API, routes), creating its tables in the
//! emulator, and the local REST gateway.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection, ProjectionType,
    ScalarAttributeType, StreamSpecification, StreamViewType, TimeToLiveSpecification,
};
use serde::Deserialize;
use serde_norway::Value;

pub mod gateway;
pub mod metrics;
pub mod openapi;
pub mod poller;
pub mod secrets;

pub type Error = Box<dyn std::error::Error + Send + Sync>;

/// The workspace root (where `Cargo.toml` and `infra/` are).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("workspace root exists")
}

/// The SAM template, parsed. CloudFormation tags (`!Ref`, `!GetAtt`, …) are kept as YAML tags.
pub struct Template {
    resources: BTreeMap<String, Value>,
    parameters: BTreeMap<String, Value>,
    conditions: BTreeMap<String, Value>,
}

/// One `Api` event of a function: a route as API Gateway will serve it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct TemplateRoute {
    pub method: String,
    pub path: String,
    /// The cargo binary the function is built from (`Metadata.BuildProperties.Binary`).
    pub binary: String,
}

/// The subset of `AWS::DynamoDB::Table` properties that shape a table.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TableDefinition {
    pub attribute_definitions: Vec<AttributeDef>,
    pub key_schema: Vec<KeyDef>,
    #[serde(default)]
    pub global_secondary_indexes: Vec<IndexDef>,
    pub time_to_live_specification: Option<TtlDef>,
    /// The fleet table's stream: the webhook outbox.
    pub stream_specification: Option<StreamDef>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct StreamDef {
    pub stream_view_type: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AttributeDef {
    pub attribute_name: String,
    pub attribute_type: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct KeyDef {
    pub attribute_name: String,
    pub key_type: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct IndexDef {
    pub index_name: String,
    pub key_schema: Vec<KeyDef>,
    pub projection: ProjectionDef,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ProjectionDef {
    pub projection_type: String,
    #[serde(default)]
    pub non_key_attributes: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct TtlDef {
    pub attribute_name: String,
    pub enabled: bool,
}

impl Template {
    /// Reads `infra/template.yaml` of this workspace.
    pub fn load_default() -> Result<Template, Error> {
        Template::load(&workspace_root().join("infra/template.yaml"))
    }

    pub fn load(path: &Path) -> Result<Template, Error> {
        let text = std::fs::read_to_string(path)?;
        let document: Value = serde_norway::from_str(&text)?;
        let section = |name: &str| -> BTreeMap<String, Value> {
            document
                .get(name)
                .and_then(Value::as_mapping)
                .into_iter()
                .flatten()
                .filter_map(|(name, value)| Some((name.as_str()?.to_owned(), value.clone())))
                .collect()
        };
        let resources = section("Resources");
        if resources.is_empty() {
            return Err("template has no Resources".into());
        }
        Ok(Template { resources, parameters: section("Parameters"), conditions: section("Conditions") })
    }

    /// A parameter's `Default`, as text (numbers included).
    pub fn parameter_default(&self, name: &str) -> Option<String> {
        scalar_text(self.parameters.get(name)?.get("Default")?)
    }

    /// A property value as deployed: `!Ref Parameter` resolves to `overrides[Parameter]`,
    /// else the parameter's default; a plain scalar is its text. Anything else is `None`.
    pub fn resolve(&self, value: &Value, overrides: &BTreeMap<String, String>) -> Option<String> {
        match value {
            Value::Tagged(tagged) if tagged.tag == "Ref" => {
                let name = tagged.value.as_str()?;
                overrides.get(name).cloned().or_else(|| self.parameter_default(name))
            }
            other => scalar_text(other),
        }
    }

    /// Whether a resource with `Condition: name` is deployed. Only the form the
    /// template uses is understood, `!Equals [!Ref Parameter, "value"]`; `None` otherwise.
    pub fn condition_holds(&self, name: &str, overrides: &BTreeMap<String, String>) -> Option<bool> {
        let Value::Tagged(tagged) = self.conditions.get(name)? else { return None };
        let operands = tagged.value.as_sequence().filter(|_| tagged.tag == "Equals")?;
        let [left, right] = operands.as_slice() else { return None };
        Some(self.resolve(left, overrides)? == self.resolve(right, overrides)?)
    }

    /// A resource's `Properties`.
    pub fn properties(&self, logical_id: &str) -> Option<&Value> {
        self.resources.get(logical_id)?.get("Properties")
    }

    /// A resource's `Type`.
    pub fn resource_type(&self, logical_id: &str) -> Option<&str> {
        self.resources.get(logical_id)?.get("Type")?.as_str()
    }

    pub fn resources(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.resources.iter().map(|(name, value)| (name.as_str(), value))
    }

    /// The table definition of the `AWS::DynamoDB::Table` named `logical_id`.
    pub fn table(&self, logical_id: &str) -> Result<TableDefinition, Error> {
        if self.resource_type(logical_id) != Some("AWS::DynamoDB::Table") {
            return Err(format!("{logical_id} is not a DynamoDB table in the template").into());
        }
        let properties = self.properties(logical_id).ok_or("table without Properties")?;
        Ok(serde_norway::from_value(properties.clone())?)
    }

    /// Every `Api` event of every function, sorted.
    pub fn routes(&self) -> Vec<TemplateRoute> {
        let mut routes = Vec::new();
        for (_, resource) in self.resources() {
            if resource.get("Type").and_then(Value::as_str) != Some("AWS::Serverless::Function") {
                continue;
            }
            let binary = resource
                .get("Metadata")
                .and_then(|m| m.get("BuildProperties"))
                .and_then(|b| b.get("Binary"))
                .and_then(Value::as_str)
                .unwrap_or_default();
            let events = resource.get("Properties").and_then(|p| p.get("Events")).and_then(Value::as_mapping);
            for event in events.into_iter().flat_map(|events| events.values()) {
                if event.get("Type").and_then(Value::as_str) != Some("Api") {
                    continue;
                }
                let props = event.get("Properties");
                let field = |name: &str| props.and_then(|p| p.get(name)).and_then(Value::as_str).unwrap_or_default();
                routes.push(TemplateRoute {
                    method: field("Method").to_uppercase(),
                    path: field("Path").to_owned(),
                    binary: binary.to_owned(),
                });
            }
        }
        routes.sort();
        routes
    }
}

/// A YAML scalar as text (`60` → "60", `true` → "true").
fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        Value::Bool(flag) => Some(flag.to_string()),
        _ => None,
    }
}

/// Table names of one stack (local, or one test's own).
#[derive(Clone, Debug)]
pub struct TableNames {
    pub keys: String,
    pub fleet: String,
    pub audit: String,
    pub usage: String,
}

impl TableNames {
    /// `<prefix>-keys`, `<prefix>-fleet`, `<prefix>-audit`, `<prefix>-usage`.
    pub fn with_prefix(prefix: &str) -> TableNames {
        TableNames {
            keys: format!("{prefix}-keys"),
            fleet: format!("{prefix}-fleet"),
            audit: format!("{prefix}-audit"),
            usage: format!("{prefix}-usage"),
        }
    }

    /// (template logical id, table name) pairs.
    pub fn by_logical_id(&self) -> [(&'static str, &str); 4] {
        [
            ("KeysTable", &self.keys),
            ("FleetTable", &self.fleet),
            ("AuditTable", &self.audit),
            ("UsageTable", &self.usage),
        ]
    }
}

/// Creates every table of `names` from the template's definitions. A table that
/// exists with the same keys and indexes is kept (with its data); one whose
/// schema differs (the template changed since it was made) is dropped and made anew.
pub async fn create_tables(client: &Client, template: &Template, names: &TableNames) -> Result<(), Error> {
    let existing = client.list_tables().send().await?.table_names.unwrap_or_default();
    for (logical_id, name) in names.by_logical_id() {
        let definition = template.table(logical_id)?;
        if existing.iter().any(|t| t == name) {
            if schema_matches(client, name, &definition).await? {
                ensure_stream(client, name, &definition).await?;
                continue;
            }
            eprintln!("==> table {name} predates the template's current schema: recreating it (its data is dropped)");
            client.delete_table().table_name(name).send().await?;
        }
        create_table(client, name, &definition).await?;
    }
    Ok(())
}

/// Turns on the stream the template defines on a table made before it had one
/// (its data is kept).
async fn ensure_stream(client: &Client, name: &str, definition: &TableDefinition) -> Result<(), Error> {
    let Some(stream) = &definition.stream_specification else { return Ok(()) };
    let table = client.describe_table().table_name(name).send().await?.table.ok_or("describe_table without a table")?;
    if table.stream_specification().is_some_and(|s| s.stream_enabled()) {
        return Ok(());
    }
    client.update_table().table_name(name).stream_specification(stream_specification(stream)?).send().await?;
    Ok(())
}

fn stream_specification(stream: &StreamDef) -> Result<StreamSpecification, Error> {
    Ok(StreamSpecification::builder()
        .stream_enabled(true)
        .stream_view_type(StreamViewType::from(stream.stream_view_type.as_str()))
        .build()?)
}

/// Whether a live table has the key schema and index names the template defines.
async fn schema_matches(client: &Client, name: &str, definition: &TableDefinition) -> Result<bool, Error> {
    let table = client.describe_table().table_name(name).send().await?.table.ok_or("describe_table without a table")?;
    let keys: Vec<(String, String)> =
        table.key_schema().iter().map(|k| (k.attribute_name().to_owned(), k.key_type().as_str().to_owned())).collect();
    let wanted_keys: Vec<(String, String)> =
        definition.key_schema.iter().map(|k| (k.attribute_name.clone(), k.key_type.clone())).collect();
    let mut indexes: Vec<String> =
        table.global_secondary_indexes().iter().filter_map(|i| i.index_name().map(str::to_owned)).collect();
    let mut wanted_indexes: Vec<String> =
        definition.global_secondary_indexes.iter().map(|i| i.index_name.clone()).collect();
    indexes.sort();
    wanted_indexes.sort();
    Ok(keys == wanted_keys && indexes == wanted_indexes)
}

/// Creates one table (on-demand) with its indexes and TTL setting.
pub async fn create_table(client: &Client, name: &str, definition: &TableDefinition) -> Result<(), Error> {
    let mut request = client.create_table().table_name(name).billing_mode(BillingMode::PayPerRequest);
    for attribute in &definition.attribute_definitions {
        request = request.attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name(&attribute.attribute_name)
                .attribute_type(ScalarAttributeType::from(attribute.attribute_type.as_str()))
                .build()?,
        );
    }
    for key in &definition.key_schema {
        request = request.key_schema(key_element(key)?);
    }
    for index in &definition.global_secondary_indexes {
        let projection = Projection::builder()
            .projection_type(ProjectionType::from(index.projection.projection_type.as_str()))
            .set_non_key_attributes(
                (!index.projection.non_key_attributes.is_empty()).then(|| index.projection.non_key_attributes.clone()),
            )
            .build();
        let mut gsi = GlobalSecondaryIndex::builder().index_name(&index.index_name).projection(projection);
        for key in &index.key_schema {
            gsi = gsi.key_schema(key_element(key)?);
        }
        request = request.global_secondary_indexes(gsi.build()?);
    }
    if let Some(stream) = &definition.stream_specification {
        request = request.stream_specification(stream_specification(stream)?);
    }
    request.send().await?;
    if let Some(ttl) = definition.time_to_live_specification.as_ref().filter(|ttl| ttl.enabled) {
        client
            .update_time_to_live()
            .table_name(name)
            .time_to_live_specification(
                TimeToLiveSpecification::builder().attribute_name(&ttl.attribute_name).enabled(true).build()?,
            )
            .send()
            .await?;
    }
    Ok(())
}

fn key_element(key: &KeyDef) -> Result<KeySchemaElement, Error> {
    Ok(KeySchemaElement::builder()
        .attribute_name(&key.attribute_name)
        .key_type(KeyType::from(key.key_type.as_str()))
        .build()?)
}

/// The environment variables that name the webhook queues the local functions use.
pub const QUEUE_VARIABLES: [&str; 2] = ["WEBHOOK_QUEUE_URL", "WEBHOOK_DEAD_LETTER_QUEUE_URL"];

/// Creates the webhook queues named by the local environment (`local_env`) in the
/// emulator's SQS, as the template's are on AWS; existing ones are kept. Returns their names.
pub async fn ensure_queues(sqs: &aws_sdk_sqs::Client, env: &BTreeMap<String, String>) -> Result<Vec<String>, Error> {
    let mut names = Vec::new();
    for variable in QUEUE_VARIABLES {
        let url = env.get(variable).ok_or_else(|| format!("the local environment has no {variable}"))?;
        let name =
            url.rsplit('/').next().filter(|n| !n.is_empty()).ok_or_else(|| format!("{variable}: no queue name"))?;
        // CreateQueue is idempotent for the same name and attributes.
        sqs.create_queue().queue_name(name).send().await?;
        names.push(name.to_owned());
    }
    Ok(names)
}

/// Creates secret `name` holding `value` in the emulator's Secrets Manager, as the
/// template's `CursorSecret` is on AWS; an existing one is kept.
pub async fn ensure_secret(client: &aws_sdk_secretsmanager::Client, name: &str, value: &str) -> Result<(), Error> {
    match client.create_secret().name(name).secret_string(value).send().await {
        Ok(_) => Ok(()),
        Err(err)
            if aws_sdk_secretsmanager::error::ProvideErrorMetadata::code(&err) == Some("ResourceExistsException") =>
        {
            Ok(())
        }
        Err(err) => Err(aws_sdk_secretsmanager::error::DisplayErrorContext(err).to_string().into()),
    }
}

/// The env vars `cargo lambda watch` gives the functions (`[workspace.metadata.lambda.env]`
/// in the root `Cargo.toml`): the single definition of the local stack's configuration.
pub fn local_env() -> Result<BTreeMap<String, String>, Error> {
    let manifest: toml::Table = std::fs::read_to_string(workspace_root().join("Cargo.toml"))?.parse()?;
    let env = manifest
        .get("workspace")
        .and_then(|w| w.get("metadata"))
        .and_then(|m| m.get("lambda"))
        .and_then(|l| l.get("env"))
        .and_then(toml::Value::as_table)
        .ok_or("Cargo.toml has no [workspace.metadata.lambda.env]")?;
    Ok(env.iter().filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned()))).collect())
}
