//! Test fixtures: DynamoDB Local tables made from the SAM template (once per test
//! binary), one fresh tenant per test, the functions' states, and request builders.

use std::collections::BTreeMap;

use aws_sdk_dynamodb::Client;
use lambda_http::{Body, Request, Response};
use lambda_runtime::{Context, LambdaEvent};
use serde_json::{Value, json};
use tokio::sync::OnceCell;

use fleetgate_api::audit::AuditLog;
use fleetgate_api::cursor_keys::CursorKeys;
use fleetgate_api::http::Gate;
use fleetgate_api::keys::{KeyResolver, KeyStore};
use fleetgate_fleet::templates::TemplateStore;
use fleetgate_fleet::vehicles::VehicleStore;
use fleetgate_local::{TableNames, Template, create_tables};
use fleetgate_scopes::{AuthContext, Environment, ScopeSet, TenantId};
use provisioner::ProvisionError;

/// Set by `make test` (infra/test.sh) to the DynamoDB Local it started.
const ENDPOINT_VAR: &str = "FLEETGATE_TEST_DYNAMODB_URL";

static TABLES: OnceCell<TableNames> = OnceCell::const_new();

/// One test's view of the stack: its own tenant on shared tables.
pub struct TestStack {
    pub client: Client,
    pub tables: TableNames,
    pub tenant: String,
    pub provisioner: provisioner::State,
}

/// A client for DynamoDB Local. Each test builds its own: a client's connection
/// pool belongs to the runtime of the test that made it.
pub fn local_client(endpoint: &str) -> Client {
    fleetgate_api::dynamo::local_client(endpoint)
}

pub fn endpoint() -> String {
    std::env::var(ENDPOINT_VAR).unwrap_or_else(|_| {
        panic!("{ENDPOINT_VAR} is not set: run the suite with `make test`, which starts DynamoDB Local")
    })
}

impl TestStack {
    /// Puts an item of the tenant under `sk` with a body, as a record's write would
    /// (not an outbox item: what the stream's filter must leave out).
    pub async fn store_like_a_vehicle(&self, sk: &str) {
        use aws_sdk_dynamodb::types::AttributeValue;
        let item = [("pk", self.tenant.as_str()), ("sk", sk), ("body", "{}")]
            .map(|(name, value)| (name.to_owned(), AttributeValue::S(value.to_owned())));
        self.client.put_item().table_name(&self.tables.fleet).set_item(Some(item.into())).send().await.unwrap();
    }

    /// Rewrites one of the tenant's records as versions before the `body` layout
    /// stored it (each field an attribute; see `fleetgate_api::stored`), with
    /// `edit` applied to its fields first.
    pub async fn store_field_by_field(&self, sk: &str, edit: impl FnOnce(&mut serde_json::Value)) {
        use aws_sdk_dynamodb::types::AttributeValue;
        let key = |name: &str, value: &str| (name.to_owned(), AttributeValue::S(value.to_owned()));
        let mut item = self
            .client
            .get_item()
            .table_name(&self.tables.fleet)
            .set_key(Some([key("pk", &self.tenant), key("sk", sk)].into()))
            .send()
            .await
            .unwrap()
            .item
            .unwrap_or_else(|| panic!("no item {sk}"));
        let body = item.remove(fleetgate_api::stored::BODY).unwrap_or_else(|| panic!("{sk} has no body"));
        let mut fields: serde_json::Value = serde_json::from_str(body.as_s().unwrap()).unwrap();
        edit(&mut fields);
        item.extend(serde_dynamo::to_item::<_, std::collections::HashMap<String, AttributeValue>>(fields).unwrap());
        self.client.put_item().table_name(&self.tables.fleet).set_item(Some(item)).send().await.unwrap();
    }

    pub async fn new() -> TestStack {
        let client = local_client(&endpoint());
        let tables = TABLES
            .get_or_init(|| async {
                let prefix = format!("it{}", std::process::id());
                let names = TableNames::with_prefix(&prefix);
                let template = Template::load_default().expect("template parses");
                create_tables(&client, &template, &names).await.expect("tables created from the template");
                names
            })
            .await
            .clone();
        let tenant = format!("t-{}", fleetgate_api::keys::new_public_id("").to_lowercase());
        let stack = TestStack { provisioner: provisioner_state(&client, &tables), client, tables, tenant };
        // Tenants are explicit: every test's tenant exists. Written directly (setup data,
        // like a seed), so a test's audit trail holds only what the test itself did.
        let tenant = fleetgate_fleet::tenants::Tenant {
            tenant_id: fleetgate_scopes::TenantId::parse(&stack.tenant).unwrap(),
            name: "Test fleet".into(),
            created_at: fleetgate_api::Timestamp::now(),
        };
        stack.provisioner.tenants.create(&tenant, vec![]).await.expect("the test tenant is created");
        stack
    }

    /// This test's tenant and tables, reached through `client` (one behind a fault proxy, say).
    pub fn through(&self, client: Client) -> TestStack {
        TestStack {
            provisioner: provisioner_state(&client, &self.tables),
            client,
            tables: self.tables.clone(),
            tenant: self.tenant.clone(),
        }
    }

    /// The same tables under another tenant id, which is not created.
    pub fn other_tenant(&self, tenant: &str) -> TestStack {
        TestStack { tenant: tenant.to_owned(), ..self.through(self.client.clone()) }
    }

    /// Every key stored for this tenant.
    pub async fn key_items(&self) -> Vec<fleetgate_api::keys::KeyRecord> {
        let tenant = fleetgate_scopes::TenantId::parse(&self.tenant).unwrap();
        self.key_store().list_newest_first(&tenant, None, 100).await.unwrap().0
    }

    /// Every fleet-table item of this tenant (vehicles, templates, inspections, …).
    pub async fn fleet_items(&self) -> Vec<Value> {
        self.tenant_items(&self.tables.fleet, "pk").await
    }

    pub fn key_store(&self) -> KeyStore {
        KeyStore::new(self.client.clone(), self.tables.keys.clone())
    }

    pub fn resolver(&self) -> KeyResolver {
        KeyResolver::new(self.key_store(), Environment::Test).with_default_rate_limit(template_rate_limits().default)
    }

    pub fn authorizer(&self) -> authorizer::State {
        authorizer::State { resolver: self.resolver() }
    }

    /// A production gate (authorizer context only) that audits into this stack's table.
    pub fn gate(&self) -> Gate {
        Gate { audit: Some(AuditLog::new(self.client.clone(), self.tables.audit.clone())), usage: None }
    }

    /// Where this stack's writes put their webhook events.
    pub fn outbox(&self) -> fleetgate_webhooks::events::Outbox {
        fleetgate_webhooks::events::Outbox::new(self.tables.fleet.clone())
    }

    pub fn vehicle_store(&self) -> VehicleStore {
        VehicleStore::new(self.client.clone(), self.tables.fleet.clone())
    }

    /// The authorizer context of a key of this tenant with `scopes` (space-separated).
    pub fn key_context(&self, scopes: &str) -> BTreeMap<&'static str, String> {
        self.key_context_of("key_testtesttesttesttest", scopes)
    }

    /// As [`TestStack::key_context`], for the key `key_id` (another key of the tenant).
    pub fn key_context_of(&self, key_id: &str, scopes: &str) -> BTreeMap<&'static str, String> {
        AuthContext::new(
            TenantId::parse(&self.tenant).unwrap(),
            key_id.into(),
            "test key".into(),
            ScopeSet::parse_space_separated(scopes).unwrap(),
            Environment::Test,
            None,
        )
        .to_authorizer_context()
        .into_iter()
        .collect()
    }

    /// Every audit record of this tenant as (action, resource_id, outcome), oldest first.
    pub async fn audit_trail(&self) -> Vec<(String, Option<String>, String)> {
        self.audit_records()
            .await
            .into_iter()
            .map(|r| {
                (
                    r["action"].as_str().unwrap().to_owned(),
                    r["resource_id"].as_str().map(str::to_owned),
                    r["outcome"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    }

    /// Invokes the provisioner with `event` (this test's tenant is not filled in for you).
    pub async fn provision(&self, event: Value) -> Result<Value, ProvisionError> {
        provisioner::handler(&self.provisioner, LambdaEvent::new(event, context())).await
    }

    /// Creates a key in this test's tenant; returns (plaintext key, key_id).
    pub async fn create_key(&self, scopes: &[&str]) -> (String, String) {
        let response = self
            .provision(json!({"action": "create_key", "tenant_id": self.tenant, "name": "test key", "scopes": scopes}))
            .await
            .expect("create_key succeeds");
        (response["api_key"].as_str().unwrap().to_owned(), response["key"]["key_id"].as_str().unwrap().to_owned())
    }

    /// Every item of `table`, as JSON text (for "never stored" checks).
    pub async fn dump(&self, table: &str) -> String {
        let items = self.client.scan().table_name(table).send().await.unwrap().items.unwrap_or_default();
        let values: Vec<Value> = items.into_iter().map(|item| serde_dynamo::from_item(item).unwrap()).collect();
        serde_json::to_string(&values).unwrap()
    }

    /// This tenant's audit actions, oldest first.
    pub async fn audit_actions(&self) -> Vec<String> {
        self.audit_records().await.iter().map(|r| r["action"].as_str().unwrap().to_owned()).collect()
    }

    async fn audit_records(&self) -> Vec<Value> {
        self.tenant_items(&self.tables.audit, "tenant_id").await
    }

    /// Every item of this tenant in `table`, whose partition key attribute is `partition`.
    pub async fn tenant_items(&self, table: &str, partition: &str) -> Vec<Value> {
        let output = self
            .client
            .query()
            .table_name(table)
            .key_condition_expression("#partition = :t")
            .expression_attribute_names("#partition", partition)
            .expression_attribute_values(":t", serde_dynamo::to_attribute_value(&self.tenant).unwrap())
            .send()
            .await
            .unwrap();
        output.items.unwrap_or_default().into_iter().map(fleetgate_tests::item_json).collect()
    }
}

fn provisioner_state(client: &Client, tables: &TableNames) -> provisioner::State {
    provisioner::State {
        keys: KeyStore::new(client.clone(), tables.keys.clone()),
        audit: AuditLog::new(client.clone(), tables.audit.clone()),
        templates: TemplateStore::new(client.clone(), tables.fleet.clone()),
        tenants: fleetgate_fleet::tenants::TenantStore::new(client.clone(), tables.fleet.clone()),
        cursors: CursorKeys::fixed("test-secret"),
        environment: Environment::Test,
        authorizer_cache: None,
        usage: fleetgate_api::usage::UsageCounter::new(client.clone(), tables.usage.clone()),
        rate_limits: template_rate_limits(),
    }
}

/// The template's default rate limit and ceiling (its parameters' defaults).
pub fn template_rate_limits() -> provisioner::RateLimitSettings {
    let template = Template::load_default().unwrap();
    let parameter = |name: &str| template.parameter_default(name).map(|text| text.parse().unwrap());
    provisioner::RateLimitSettings { default: parameter("DefaultRateLimit"), ceiling: parameter("RateLimitCeiling") }
}

pub fn context() -> Context {
    let mut context = Context::default();
    context.request_id = format!("req-{}", fleetgate_api::keys::new_public_id(""));
    context
}

/// A REST API (v1) proxy event, as API Gateway sends it after the authorizer.
pub fn rest_request(
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    authorizer: Option<&BTreeMap<&str, String>>,
) -> Request {
    let mut req = Req::new(method, path);
    for (name, value) in headers {
        req = req.header(name, value);
    }
    req.build(authorizer)
}

/// Builds REST API (v1) proxy events.
pub struct Req {
    method: String,
    path: String,
    headers: serde_json::Map<String, Value>,
    path_parameters: Value,
    query: serde_json::Map<String, Value>,
    body: Value,
    source_ip: String,
}

impl Req {
    pub fn new(method: &str, path: &str) -> Req {
        Req {
            method: method.into(),
            path: path.into(),
            headers: serde_json::Map::new(),
            path_parameters: Value::Null,
            query: serde_json::Map::new(),
            body: Value::Null,
            source_ip: "203.0.113.9".into(),
        }
    }

    /// The caller's address as API Gateway reports it (`identity.sourceIp`).
    pub fn source_ip(mut self, source_ip: &str) -> Req {
        self.source_ip = source_ip.into();
        self
    }

    /// `PUT`/`GET` on `/vehicles/{id}` style paths: sets the `id` path parameter.
    pub fn with_id(method: &str, collection: &str, id: &str) -> Req {
        let mut req = Req::new(method, &format!("{collection}/{id}"));
        req.path_parameters = json!({"id": id});
        req
    }

    /// The request's path, when it is not `{collection}/{id}` (`/webhooks/{id}/test`).
    pub fn path(mut self, path: &str) -> Req {
        self.path = path.into();
        self
    }

    pub fn header(mut self, name: &str, value: &str) -> Req {
        self.headers.insert(name.to_owned(), json!(value));
        self
    }

    pub fn query(mut self, name: &str, value: &str) -> Req {
        self.query.insert(name.to_owned(), json!(value));
        self
    }

    /// A JSON body with its content type.
    pub fn json(self, body: &Value) -> Req {
        self.header("content-type", "application/json").raw_body(&body.to_string())
    }

    pub fn raw_body(mut self, body: &str) -> Req {
        self.body = json!(body);
        self
    }

    pub fn build(self, authorizer: Option<&BTreeMap<&str, String>>) -> Request {
        let mut request_context = json!({
            "accountId": "123456789012", "resourceId": "abc", "stage": "v1", "requestId": "gw-req-1",
            "identity": {"sourceIp": self.source_ip}, "resourcePath": self.path, "httpMethod": self.method,
            "apiId": "api123", "path": format!("/v1{}", self.path),
        });
        if let Some(fields) = authorizer {
            request_context["authorizer"] = json!(fields);
        }
        let multi_query: serde_json::Map<String, Value> =
            self.query.iter().map(|(k, v)| (k.clone(), json!([v]))).collect();
        let event = json!({
            "resource": self.path, "path": self.path, "httpMethod": self.method, "headers": self.headers,
            "multiValueHeaders": {},
            "queryStringParameters": if self.query.is_empty() { Value::Null } else { Value::Object(self.query) },
            "multiValueQueryStringParameters": if multi_query.is_empty() { Value::Null } else { Value::Object(multi_query) },
            "pathParameters": self.path_parameters,
            "requestContext": request_context, "body": self.body, "isBase64Encoded": false,
        });
        lambda_http::request::from_str(&event.to_string()).expect("valid REST event")
    }
}

/// An authorizer REQUEST event for `GET /me` with the given headers.
pub fn authorizer_event(
    headers: &[(&str, &str)],
) -> LambdaEvent<aws_lambda_events::apigw::ApiGatewayCustomAuthorizerRequestTypeRequest> {
    let headers: serde_json::Map<String, Value> = headers.iter().map(|(k, v)| ((*k).to_owned(), json!(v))).collect();
    let event = json!({
        "type": "REQUEST",
        "methodArn": "arn:aws:execute-api:eu-west-1:123456789012:api123/v1/GET/me",
        "resource": "/me", "path": "/me", "httpMethod": "GET", "headers": headers,
        "multiValueHeaders": {}, "queryStringParameters": {}, "pathParameters": {}, "stageVariables": {},
        "requestContext": {"accountId": "123456789012", "apiId": "api123", "stage": "v1", "requestId": "gw-1",
                           "httpMethod": "GET", "resourcePath": "/me", "path": "/v1/me"},
    });
    LambdaEvent::new(serde_json::from_value(event).expect("valid authorizer event"), context())
}

/// The JSON body of a response.
pub fn body_json(response: &Response<Body>) -> Value {
    match response.body() {
        Body::Text(text) => serde_json::from_str(text).expect("JSON body"),
        Body::Binary(bytes) => serde_json::from_slice(bytes).expect("JSON body"),
        Body::Empty => Value::Null,
        _ => panic!("unexpected body"),
    }
}

pub fn header<'a>(response: &'a Response<Body>, name: &str) -> Option<&'a str> {
    response.headers().get(name).and_then(|v| v.to_str().ok())
}

/// Walks every page of a list, `fetch(cursor)` answering one page as (ids, next_cursor),
/// and checks what every list promises: `next_cursor` is null exactly on the last page
/// (no empty page after a full one) and no id comes twice. Returns the ids and page sizes.
pub async fn walk_pages<F, Fut>(mut fetch: F) -> (Vec<String>, Vec<usize>)
where
    F: FnMut(Option<String>) -> Fut,
    Fut: std::future::Future<Output = (Vec<String>, Option<String>)>,
{
    let (mut ids, mut sizes) = (Vec::new(), Vec::new());
    let mut cursor = None;
    loop {
        let (page, next) = fetch(cursor).await;
        assert!(sizes.is_empty() || !page.is_empty(), "an empty page after {sizes:?}: the previous cursor lied");
        sizes.push(page.len());
        ids.extend(page);
        assert!(sizes.len() <= 1_000, "a list that never ends");
        match next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    let unique: std::collections::BTreeSet<&String> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "an id came twice: {ids:?}");
    (ids, sizes)
}

impl TestStack {
    /// Every page of a provisioner list (`event` names the action and filters; the
    /// tenant and cursor are added), through [`walk_pages`]: the `id` of each item of `field`.
    pub async fn walk_admin_list(&self, event: Value, field: &str, id: &str) -> (Vec<String>, Vec<usize>) {
        walk_pages(|cursor: Option<String>| {
            let mut event = event.clone();
            event["tenant_id"] = Value::from(self.tenant.as_str());
            if let Some(cursor) = cursor {
                event["cursor"] = Value::String(cursor);
            }
            async move { page_of(&self.provision(event).await.unwrap(), field, id) }
        })
        .await
    }
}

/// Every page of an HTTP list, `list(query)` calling its handler, with `filters`
/// and `limit`, through [`walk_pages`]; every page must be a 200.
pub async fn walk_list<F, Fut>(filters: &[(&str, &str)], limit: usize, list: F) -> (Vec<String>, Vec<usize>)
where
    F: Fn(Vec<(String, String)>) -> Fut,
    Fut: std::future::Future<Output = Response<Body>>,
{
    let filters: Vec<(String, String)> = filters.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    walk_pages(|cursor: Option<String>| {
        let mut query = filters.clone();
        query.push(("limit".to_owned(), limit.to_string()));
        query.extend(cursor.map(|cursor| ("cursor".to_owned(), cursor)));
        let answer = list(query);
        async move {
            let response = answer.await;
            assert_eq!(response.status(), 200, "{:?}", response.body());
            page_of(&body_json(&response), "data", "id")
        }
    })
    .await
}

/// The query pairs of [`walk_list`] as the handlers' test helpers take them.
pub fn borrowed(query: &[(String, String)]) -> Vec<(&str, &str)> {
    query.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

/// The ids of a `{"data": [...], "next_cursor": ...}` page (or `field` instead of `data`).
pub fn page_of(body: &Value, field: &str, id: &str) -> (Vec<String>, Option<String>) {
    let ids = body[field].as_array().unwrap_or_else(|| panic!("no {field} in {body}"));
    (
        ids.iter().map(|item| item[id].as_str().unwrap().to_owned()).collect(),
        body["next_cursor"].as_str().map(str::to_owned),
    )
}

/// One HTTP/1.1 request read off `socket` by the tests' tiny servers: its head
/// (request line and headers) and its body (`Content-Length` bytes); `None` when
/// the peer closed before a whole request came.
pub async fn read_http_request(socket: &mut tokio::net::TcpStream) -> Option<(String, Vec<u8>)> {
    use tokio::io::AsyncReadExt;
    let mut raw = Vec::new();
    let mut buffer = [0u8; 16384];
    loop {
        let n = socket.read(&mut buffer).await.unwrap_or(0);
        raw.extend_from_slice(&buffer[..n]);
        if let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&raw[..end]).to_string();
            let length: usize = head
                .lines()
                .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().parse().unwrap()))
                .unwrap_or(0);
            if raw.len() >= end + 4 + length {
                return Some((head, raw[end + 4..end + 4 + length].to_vec()));
            }
        }
        if n == 0 {
            return None;
        }
    }
}
