//! SECURITY.md names a test for every promise as `path::function`: each must exist,
//! so a renamed or deleted test cannot leave a promise unchecked on paper.

use fleetgate_local::workspace_root;

#[test]
fn every_test_named_in_security_md_exists() {
    let root = workspace_root();
    let doc = std::fs::read_to_string(root.join("SECURITY.md")).unwrap();
    let named: Vec<(&str, &str)> = doc
        .split('`')
        .skip(1)
        .step_by(2)
        .filter_map(|code| code.split_once("::"))
        .filter(|(path, _)| path.ends_with(".rs"))
        .collect();
    assert!(named.len() >= 40, "SECURITY.md names {} tests", named.len());
    for (path, function) in named {
        let source = std::fs::read_to_string(root.join(path)).unwrap_or_else(|_| panic!("SECURITY.md names {path}"));
        let definition = ["fn ", "async fn "].iter().find_map(|prefix| {
            source.match_indices(&format!("{prefix}{function}")).find_map(|(at, m)| {
                let next = source[at + m.len()..].chars().next();
                matches!(next, Some('(') | Some('<')).then_some(at)
            })
        });
        let at = definition.unwrap_or_else(|| panic!("SECURITY.md names {path}::{function}, which does not exist"));
        assert!(is_test(&source[..at]), "SECURITY.md names {path}::{function}, which is not a test");
    }
}

/// Whether the function whose definition follows `before` is a test: its own
/// attributes (above it, past doc comments) include `#[test]` or `#[tokio::test]`.
fn is_test(before: &str) -> bool {
    // The definition's own line may begin with qualifiers (`async fn`, `pub fn`).
    let (above, own_line) = before.rsplit_once('\n').unwrap_or(("", before));
    if !own_line.split_whitespace().all(|word| ["async", "pub", "pub(crate)", "const"].contains(&word)) {
        return false;
    }
    for line in above.lines().rev().map(str::trim) {
        if line.starts_with("#[test]") || line.starts_with("#[tokio::test") {
            return true;
        }
        if !(line.is_empty() || line.starts_with("///") || line.starts_with("//") || line.starts_with("#[")) {
            return false;
        }
    }
    false
}

/// Per-request DynamoDB work is bounded by keys and pages: no function's code
/// scans a table (IAM grants no Scan either, see template_policies.rs).
#[test]
fn no_function_code_scans_a_table() {
    let root = workspace_root();
    let mut sources = Vec::new();
    for dir in ["functions", "shared"] {
        collect_rust_files(&root.join(dir), &mut sources);
    }
    assert!(sources.len() > 20, "found {} sources", sources.len());
    for path in sources {
        let text = std::fs::read_to_string(&path).unwrap();
        for call in [".scan()", "ScanInput", "operation::scan"] {
            assert!(!text.contains(call), "{} calls DynamoDB Scan ({call})", path.display());
        }
    }
}

fn collect_rust_files(dir: &std::path::Path, into: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            collect_rust_files(&path, into);
        } else if path.extension().is_some_and(|e| e == "rs") {
            into.push(path);
        }
    }
}
