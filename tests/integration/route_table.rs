//! The route table (shared/scopes/src/routes.rs) is the single definition of the API:
//! the SAM template, the local gateway and the README must agree with it.

use std::collections::{BTreeMap, BTreeSet};

use fleetgate_local::gateway::GatewayConfig;
use fleetgate_local::{Template, TemplateRoute, workspace_root};
use fleetgate_scopes::ROUTES;

/// Function crates that exist under `functions/`.
fn function_crates() -> BTreeSet<String> {
    std::fs::read_dir(workspace_root().join("functions"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect()
}

/// The routes of the table whose functions exist, as the template should have them.
fn expected_routes() -> Vec<TemplateRoute> {
    let crates = function_crates();
    let mut routes: Vec<TemplateRoute> = ROUTES
        .iter()
        .filter(|route| crates.contains(route.function))
        .map(|route| TemplateRoute {
            method: route.method.into(),
            path: route.path.into(),
            binary: route.function.into(),
        })
        .collect();
    routes.sort();
    routes
}

#[test]
fn template_routes_equal_the_route_table() {
    let template = Template::load_default().unwrap();
    assert_eq!(template.routes(), expected_routes());
    assert!(expected_routes().iter().any(|r| r.path == "/me"), "whoami exists, so /me must be routed");
}

#[test]
fn every_function_crate_is_built_by_the_template() {
    let template = Template::load_default().unwrap();
    let built: BTreeSet<String> = template
        .resources()
        .filter_map(|(_, resource)| {
            resource.get("Metadata")?.get("BuildProperties")?.get("Binary")?.as_str().map(str::to_owned)
        })
        .collect();
    assert_eq!(built, function_crates());
}

#[test]
fn the_local_gateway_serves_exactly_the_route_table() {
    let config = GatewayConfig::from_template(&Template::load_default().unwrap(), &BTreeMap::new(), "api").unwrap();
    let mut served: Vec<TemplateRoute> = config
        .routes
        .iter()
        .map(|r| TemplateRoute { method: r.method.clone(), path: r.path.clone(), binary: r.function.clone() })
        .collect();
    served.sort();
    assert_eq!(served, expected_routes());
    assert_eq!(config.authorizer, "authorizer");
    assert_eq!(config.identity_header, "x-api-key");
    // The WAF body-size rule, as deployed by default, and gone when its parameter says so.
    assert_eq!(config.body_limit.map(|limit| (limit.max_bytes, limit.status)), Some((65_536, 413)));
    let overrides = BTreeMap::from([("BodySizeFirewall".to_owned(), "false".to_owned())]);
    let without = GatewayConfig::from_template(&Template::load_default().unwrap(), &overrides, "api").unwrap();
    assert_eq!(without.body_limit, None);
}

#[test]
fn readme_route_table_lists_every_route_with_its_scope() {
    let readme = std::fs::read_to_string(workspace_root().join("README.md")).unwrap();
    for route in ROUTES {
        let scope = route.required_scope.map_or("any valid key".to_owned(), |s| format!("`{s}`"));
        let row = format!("| {} | `{}` | `{}` | {} |", route.method, route.path, route.function, scope);
        assert!(readme.contains(&row), "README.md lacks the row: {row}");
    }
}

/// One authentication path: only the authorizer reads the API key header. An
/// endpoint that read it could be made to trust a header instead of the
/// authorizer's context (what the removed local mode did).
#[test]
fn only_the_authorizer_reads_the_api_key_header() {
    let mut readers = Vec::new();
    for dir in ["functions", "shared"] {
        for entry in rust_files(&workspace_root().join(dir)) {
            let text = std::fs::read_to_string(&entry).unwrap();
            let code: Vec<&str> = text.lines().filter(|l| !l.trim_start().starts_with("//")).collect();
            let code = code.join("\n");
            if code.contains("API_KEY_HEADER") || code.to_ascii_lowercase().contains("\"x-api-key\"") {
                readers.push(entry.strip_prefix(workspace_root()).unwrap().display().to_string());
            }
        }
    }
    readers.sort();
    // http.rs defines the constant; the authorizer is its only user.
    assert_eq!(readers, ["functions/authorizer/src/lib.rs", "shared/api/src/http.rs"]);
}

/// Every `.rs` file below `dir`.
fn rust_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files
}

#[test]
fn the_committed_openapi_document_is_the_generated_one() {
    let committed: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(workspace_root().join("docs/openapi.json")).unwrap()).unwrap();
    assert!(
        committed == fleetgate_local::openapi::document(),
        "docs/openapi.json is stale: run `cargo run -p fleetgate-local --bin local-stack -- openapi > docs/openapi.json`"
    );
    let paths = committed["paths"].as_object().unwrap();
    for route in ROUTES {
        let operation = &paths[route.path][route.method.to_ascii_lowercase()];
        assert_eq!(
            operation["x-required-scope"].as_str(),
            route.required_scope.map(|s| s.as_str()),
            "{}",
            route.describe()
        );
        assert_eq!(operation["operationId"], route.function);
    }
}

#[test]
fn readme_lists_exactly_the_provisioners_error_types() {
    let readme = std::fs::read_to_string(workspace_root().join("README.md")).unwrap();
    let start = readme.find("<!-- error-types -->").expect("README marks its error type list");
    let end = readme.find("<!-- /error-types -->").expect("…and where it ends");
    let listed: Vec<&str> = readme[start..end].split('`').skip(1).step_by(2).collect();
    assert_eq!(listed, provisioner::ERROR_TYPES, "README's provisioner error types differ from the code's");
}
