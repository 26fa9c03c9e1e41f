//! The route table (shared/scopes/src/routes.rs) is the single definition of the API:
//! the SAM template, the `cargo lambda watch` router and the README must agree with it.

use std::collections::BTreeSet;

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
fn local_router_equals_the_route_table() {
    let manifest: toml::Table = std::fs::read_to_string(workspace_root().join("Cargo.toml")).unwrap().parse().unwrap();
    let router = manifest["workspace"]["metadata"]["lambda"]["watch"]["router"].as_table().unwrap();
    let mut routed: Vec<TemplateRoute> = router
        .iter()
        .flat_map(|(path, targets)| {
            targets.as_array().unwrap().iter().map(move |target| TemplateRoute {
                method: target["method"].as_str().unwrap().to_owned(),
                path: path.clone(),
                binary: target["function"].as_str().unwrap().to_owned(),
            })
        })
        .collect();
    routed.sort();
    assert_eq!(routed, expected_routes());
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

#[test]
fn local_auth_is_never_switched_on_by_the_template() {
    let text = std::fs::read_to_string(workspace_root().join("infra/template.yaml")).unwrap();
    assert!(!text.contains(fleetgate_api::http::LOCAL_AUTH_ENV));
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
