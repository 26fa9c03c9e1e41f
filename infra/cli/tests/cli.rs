//! The real `fleetgate` binary against the test stack (`make test` runs these with
//! the local gateway's invoke API in FLEETGATE_E2E_URL and the emulator in
//! FLEETGATE_TEST_DYNAMODB_URL): every subcommand, human and `--json` output, the
//! exit codes, and the AWS path (`--stack`, `--function`) with the Lambda endpoint
//! pointed at the local invoke API and CloudFormation at the emulator.

use std::process::{Command as Process, Stdio};
use std::time::{Duration, Instant};

use assert_cmd::Command;
use serde_json::Value;

fn base_url() -> String {
    std::env::var("FLEETGATE_E2E_URL").expect("FLEETGATE_E2E_URL: run through make test (the local gateway's URL)")
}

fn emulator_url() -> String {
    std::env::var("FLEETGATE_TEST_DYNAMODB_URL").expect("FLEETGATE_TEST_DYNAMODB_URL: run through make test")
}

/// `fleetgate --endpoint <the test stack> ARGS`, as `cli-test`.
fn fleetgate(args: &[&str]) -> Command {
    let mut command = Command::cargo_bin("fleetgate").unwrap();
    command.args(["--endpoint", &base_url()]).args(args).env("FLEETGATE_REQUESTED_BY", "cli-test");
    command
}

/// Runs `args` with `--json` and parses its one document.
fn json(args: &[&str]) -> Value {
    let output = fleetgate(args).arg("--json").output().unwrap();
    assert!(output.status.success(), "{args:?}: {}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| panic!("{args:?}: {e}"))
}

fn stdout(args: &[&str]) -> String {
    let output = fleetgate(args).output().unwrap();
    assert!(output.status.success(), "{args:?}: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).unwrap()
}

/// A tenant of this run, made with the CLI.
fn tenant(prefix: &str) -> String {
    let tenant = format!("{prefix}-{}", std::process::id());
    let shown = stdout(&["tenants", "create", "--tenant", &tenant, "--name", prefix]);
    assert_eq!(shown, format!("Created tenant {tenant}.\n"));
    tenant
}

#[test]
fn a_key_is_created_listed_shown_restricted_rotated_and_revoked_without_writing_json() {
    let tenant = tenant("cli-keys");
    let created = fleetgate(&["keys", "create", "--tenant", &tenant, "--name", "tablet-7", "--preset", "read-only"])
        .output()
        .unwrap();
    assert!(created.status.success());
    let (shown, warned) = (String::from_utf8(created.stdout).unwrap(), String::from_utf8(created.stderr).unwrap());
    let secret = shown.split_whitespace().find(|w| w.starts_with("fg_test_")).expect("the secret is shown").to_owned();
    assert!(shown.contains(&format!("curl -H \"X-API-Key: {secret}\" {}/me", base_url())), "{shown}");
    assert!(warned.contains("only time the key is shown"), "{warned}");

    let listed = json(&["keys", "list", "--tenant", &tenant]);
    let key = &listed["data"][0];
    let key_id = key["key_id"].as_str().unwrap().to_owned();
    assert_eq!((key["name"].as_str(), listed["next_cursor"].is_null()), (Some("tablet-7"), true));
    assert!(!listed.to_string().contains(&secret), "a list never shows a secret");
    let table = stdout(&["keys", "list", "--tenant", &tenant]);
    let mut lines = table.lines();
    assert!(lines.next().unwrap().starts_with("KEY ID"), "{table}");
    let row = lines.next().unwrap();
    assert!(row.starts_with(&key_id) && row.contains("tablet-7") && row.contains("never"), "{table}");

    let details = stdout(&["keys", "show", "--tenant", &tenant, &key_id]);
    assert!(details.contains("Rate limit:") && details.contains("(default)"), "{details}");

    let restricted = json(&[
        "keys",
        "restrict",
        "--tenant",
        &tenant,
        &key_id,
        "--rate",
        "5/second",
        "--allow-cidr",
        "203.0.113.0/24",
        "--monthly-quota",
        "1000",
    ]);
    assert_eq!(restricted["key"]["rate_limit"]["requests"], 5);
    assert_eq!(restricted["key"]["allowed_cidrs"], serde_json::json!(["203.0.113.0/24"]));
    assert_eq!(restricted["key"]["monthly_quota"], 1000);
    let lifted = json(&["keys", "restrict", "--tenant", &tenant, &key_id, "--rate", "default", "--any-network"]);
    assert_eq!(
        (lifted["key"]["rate_limit_from"].as_str(), lifted["key"]["allowed_cidrs"].is_null()),
        (Some("default"), true)
    );
    assert_eq!(lifted["key"]["monthly_quota"], 1000, "what was not named stays");

    let rotated = fleetgate(&["keys", "rotate", "--tenant", &tenant, &key_id, "--grace-hours", "0"]).output().unwrap();
    let rotated_out = String::from_utf8(rotated.stdout).unwrap();
    assert!(rotated.status.success() && rotated_out.contains("fg_test_"), "{rotated_out}");
    assert!(rotated_out.contains(&format!("The previous key {key_id} keeps working until")), "{rotated_out}");
    let new_id = json(&["keys", "list", "--tenant", &tenant])["data"][0]["key_id"].as_str().unwrap().to_owned();
    assert_ne!(new_id, key_id);

    let revoked = stdout(&["keys", "revoke", "--tenant", &tenant, &new_id, "--reason", "tablet lost"]);
    assert!(revoked.starts_with(&format!("Revoked {new_id} \"tablet-7\".")), "{revoked}");
    let status_of = |listed: &Value, id: &str| {
        listed["data"].as_array().unwrap().iter().find(|k| k["key_id"] == id).map(|k| k["status"].clone())
    };
    let all = json(&["keys", "list", "--tenant", &tenant, "--all"]);
    assert_eq!(status_of(&all, &new_id), Some("revoked".into()));
    assert_eq!(status_of(&all, &key_id), Some("expired".into()), "rotated with no grace");
    assert_eq!(status_of(&json(&["keys", "list", "--tenant", &tenant]), &new_id), None, "revoked keys only with --all");
}

#[test]
fn templates_are_put_from_yaml_and_listed_and_a_broken_file_changes_nothing() {
    let tenant = tenant("cli-templates");
    let dir = std::env::temp_dir().join(format!("fleetgate-cli-e2e-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("pretrip.yaml");
    std::fs::write(
        &file,
        "id: tpl_pretrip\nname: Pre-trip\nitems:\n  - id: brakes\n    label: Brakes\n    category: safety\n  - id: horn\n    label: Horn\n    required: false\n",
    )
    .unwrap();
    let put = stdout(&["templates", "put", "--tenant", &tenant, file.to_str().unwrap()]);
    assert_eq!(put, "Put template tpl_pretrip \"Pre-trip\": version 1, 2 items.\n");
    let listed = json(&["templates", "list", "--tenant", &tenant]);
    assert_eq!(
        listed["data"][0]["items"][1],
        serde_json::json!({"id": "horn", "label": "Horn", "required": false, "category": null})
    );
    let table = stdout(&["templates", "list", "--tenant", &tenant]);
    assert!(table.lines().nth(1).unwrap().starts_with("tpl_pretrip  Pre-trip  1        2"), "{table}");

    let broken = dir.join("broken.yaml");
    std::fs::write(&broken, "id: tpl_broken\nname: [Broken\nitems: []\n").unwrap();
    let refused = fleetgate(&["templates", "put", "--tenant", &tenant, broken.to_str().unwrap()]).output().unwrap();
    assert_eq!(refused.status.code(), Some(2));
    let message = String::from_utf8(refused.stderr).unwrap();
    assert!(
        message.starts_with(&format!("error: {}:", broken.display())) && message.contains("not valid YAML"),
        "{message}"
    );
    assert_eq!(message.lines().count(), 1, "one line: {message}");
    let invalid = dir.join("invalid.json");
    std::fs::write(&invalid, r#"{"id": "tpl_empty", "name": "Empty", "items": []}"#).unwrap();
    let refused = fleetgate(&["templates", "put", "--tenant", &tenant, invalid.to_str().unwrap()]).output().unwrap();
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8(refused.stderr).unwrap().starts_with("error: invalid_template: "));
    assert_eq!(json(&["templates", "list", "--tenant", &tenant])["data"].as_array().unwrap().len(), 1);
}

#[test]
fn the_audit_trail_shows_who_asked_and_follow_prints_what_comes_next() {
    let tenant = tenant("cli-audit");
    let trail = json(&["audit", "--tenant", &tenant, "--since", "1h"]);
    let created = trail["data"].as_array().unwrap().iter().find(|r| r["action"] == "create_tenant").unwrap().clone();
    assert_eq!((created["requested_by"].as_str(), created["outcome"].as_str()), (Some("cli-test"), Some("ok")));
    let table = stdout(&["audit", "--tenant", &tenant, "--action", "create_tenant"]);
    assert!(table.starts_with("WHEN") && table.contains("create_tenant") && table.contains("cli-test"), "{table}");

    let mut follow = Process::new(assert_cmd::cargo::cargo_bin("fleetgate"))
        .args(["--endpoint", &base_url(), "--json", "audit", "--tenant", &tenant, "--follow"])
        .env("FLEETGATE_REQUESTED_BY", "cli-test")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(3));
    stdout(&["keys", "create", "--tenant", &tenant, "--name", "later", "--preset", "read-only"]);
    std::thread::sleep(Duration::from_secs(5));
    follow.kill().unwrap();
    let output = follow.wait_with_output().unwrap();
    let records: Vec<Value> =
        String::from_utf8(output.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let actions: Vec<&str> = records.iter().map(|r| r["action"].as_str().unwrap()).collect();
    assert!(actions.contains(&"create_tenant") && actions.contains(&"create_key"), "{actions:?}");
    assert!(!actions.contains(&"list_audit"), "its own polling is not news: {actions:?}");
    let keys = actions.iter().filter(|a| **a == "create_key").count();
    assert_eq!(keys, 1, "each record once: {actions:?}");
}

#[test]
fn a_review_names_the_scopes_a_key_that_only_read_never_used_and_revokes_idle_keys_on_request() {
    let tenant = tenant("cli-review");
    let create = |name: &str, preset: &str| {
        let answer = json(&["keys", "create", "--tenant", &tenant, "--name", name, "--preset", preset]);
        (answer["api_key"].as_str().unwrap().to_owned(), answer["key"]["key_id"].as_str().unwrap().to_owned())
    };
    let (reader_secret, reader) = create("reader", "full-fleet");
    let (_, idle) = create("idle", "read-only");
    // The full-fleet key only reads vehicles, through the gateway as a device would.
    let listed = reqwest::blocking::Client::new()
        .get(format!("{}/vehicles", base_url()))
        .header("X-API-Key", &reader_secret)
        .send()
        .unwrap();
    assert_eq!(listed.status(), 200);

    let review = json(&["keys", "review", "--tenant", &tenant]);
    let of = |id: &str| review["keys"].as_array().unwrap().iter().find(|k| k["key_id"] == id).unwrap().clone();
    assert_eq!(of(&reader)["unused_scopes"], serde_json::json!(["vehicles:write", "inspections:write"]));
    assert_eq!(of(&idle)["findings"], serde_json::json!(["never_used"]));
    let shown = stdout(&["keys", "review", "--tenant", &tenant, "--unused-days", "7"]);
    assert!(shown.contains("\"unused\" means not in the last 7 days"), "{shown}");
    let reader_line = shown.lines().find(|l| l.contains(&reader)).unwrap_or_else(|| panic!("{shown}"));
    assert!(
        reader_line.contains("unused: vehicles:write inspections:write")
            && reader_line.contains("enough: vehicles:read"),
        "{shown}"
    );
    assert!(shown.contains("Never used (1):"), "{shown}");

    // Without a terminal and without --yes, the question goes unanswered: nothing is revoked.
    let kept = stdout(&["keys", "review", "--tenant", &tenant, "--revoke-unused"]);
    assert!(kept.ends_with("Revoked 0 key(s).\n"), "{kept}");
    let revoked = json(&["keys", "review", "--tenant", &tenant, "--revoke-unused", "--yes"]);
    assert_eq!(revoked["revoked"], serde_json::json!([idle]));
    let all = json(&["keys", "list", "--tenant", &tenant, "--all"]);
    let status =
        |id: &str| all["data"].as_array().unwrap().iter().find(|k| k["key_id"] == id).unwrap()["status"].clone();
    assert_eq!((status(&idle), status(&reader)), ("revoked".into(), "active".into()));
}

#[test]
fn a_tenant_cap_is_set_shown_and_lifted() {
    let tenant = tenant("cli-tenants");
    let capped = stdout(&["tenants", "limit", "--tenant", &tenant, "--rate", "200/second"]);
    assert!(capped.contains("Cap:        200/second (all keys together)"), "{capped}");
    assert!(stdout(&["tenants", "show", "--tenant", &tenant]).contains("200/second"));
    let lifted = json(&["tenants", "limit", "--tenant", &tenant, "--rate", "none"]);
    assert!(lifted["rate_limit"].is_null(), "{lifted}");
    let listed = json(&["tenants", "list"]);
    assert!(listed["data"].as_array().unwrap().iter().any(|t| t["tenant_id"] == tenant.as_str()));
}

#[test]
fn refusals_exit_1_usage_errors_2_and_an_unreachable_target_3_quickly() {
    let tenant = tenant("cli-exits");
    let refused = fleetgate(&["keys", "show", "--tenant", &tenant, "key_00000000000000000000"]).output().unwrap();
    assert_eq!(refused.status.code(), Some(1));
    let message = String::from_utf8(refused.stderr).unwrap();
    assert!(message.starts_with("error: key_not_found: "), "{message}");

    for usage in [&["keys", "frobnicate"][..], &["keys", "list"], &["keys", "list", "--tenant", "t", "--bogus"]] {
        let output = fleetgate(usage).output().unwrap();
        assert_eq!(output.status.code(), Some(2), "{usage:?}");
    }
    let no_target = Command::cargo_bin("fleetgate")
        .unwrap()
        .args(["keys", "list", "--tenant", "t"])
        .env_remove("FLEETGATE_STACK")
        .output()
        .unwrap();
    assert_eq!(no_target.status.code(), Some(2));
    assert!(String::from_utf8(no_target.stderr).unwrap().contains("--local"));

    // Nothing listens on port 9 here: refused at once, reported within 10 s.
    let started = Instant::now();
    let unreachable = Command::cargo_bin("fleetgate")
        .unwrap()
        .args(["--endpoint", "http://127.0.0.1:9", "tenants", "list"])
        .output()
        .unwrap();
    assert_eq!(unreachable.status.code(), Some(3), "{}", String::from_utf8_lossy(&unreachable.stderr));
    assert!(started.elapsed() < Duration::from_secs(10), "{:?}", started.elapsed());
    assert_eq!(String::from_utf8(unreachable.stderr).unwrap().lines().count(), 1);
}

/// `fleetgate` configured as on an admin's machine, with AWS's endpoints pointed
/// here: Lambda at the local invoke API, CloudFormation at the emulator.
fn on_aws(args: &[&str]) -> std::process::Output {
    Command::cargo_bin("fleetgate")
        .unwrap()
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HOME", std::env::temp_dir())
        .env("AWS_CONFIG_FILE", "/nonexistent")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ENDPOINT_URL_LAMBDA", base_url())
        .env("AWS_ENDPOINT_URL_CLOUDFORMATION", emulator_url())
        .env("FLEETGATE_REQUESTED_BY", "cli-aws")
        .output()
        .unwrap()
}

#[tokio::test]
async fn the_aws_path_finds_the_provisioner_in_the_stacks_outputs_or_by_name() {
    let tenant = tenant("cli-aws");
    let config = aws_sdk_cloudformation::Config::builder()
        .behavior_version(aws_sdk_cloudformation::config::BehaviorVersion::latest())
        .region(aws_sdk_cloudformation::config::Region::new("us-east-1"))
        .endpoint_url(emulator_url())
        .credentials_provider(aws_sdk_cloudformation::config::Credentials::new("test", "test", None, None, "test"))
        .http_client(fleetgate_api::dynamo::https_client())
        .build();
    let cloudformation = aws_sdk_cloudformation::Client::from_conf(config);
    let (stack, bare) = (format!("fleetgate-{}", std::process::id()), format!("not-fleetgate-{}", std::process::id()));
    for (name, outputs) in [
        (
            &stack,
            r#""Outputs": {"ProvisionerFunctionName": {"Value": "provisioner"}, "ApiUrl": {"Value": "https://api.example.test/v1"}}"#,
        ),
        (&bare, r#""Outputs": {}"#),
    ] {
        let body = format!(r#"{{"Resources": {{"Queue": {{"Type": "AWS::SQS::Queue"}}}}, {outputs}}}"#);
        cloudformation.create_stack().stack_name(name).template_body(body).send().await.unwrap();
    }

    let listed = on_aws(&["--stack", &stack, "--json", "keys", "list", "--tenant", &tenant]);
    assert!(listed.status.success(), "{}", String::from_utf8_lossy(&listed.stderr));
    let created =
        on_aws(&["--stack", &stack, "keys", "create", "--tenant", &tenant, "--name", "aws", "--preset", "read-only"]);
    let shown = String::from_utf8(created.stdout).unwrap();
    assert!(shown.contains("https://api.example.test/v1/me"), "the curl example uses the stack's ApiUrl: {shown}");
    let by_name = on_aws(&["--function", "provisioner", "--json", "keys", "list", "--tenant", &tenant]);
    let keys: Value = serde_json::from_slice(&by_name.stdout).unwrap();
    assert_eq!(keys["data"][0]["name"], "aws");

    let refused =
        on_aws(&["--function", "provisioner", "keys", "show", "--tenant", &tenant, "key_00000000000000000000"]);
    assert_eq!(refused.status.code(), Some(1), "a function error is a refusal on the AWS path too");
    let no_output = on_aws(&["--stack", &bare, "tenants", "list"]);
    assert_eq!(no_output.status.code(), Some(3));
    assert!(String::from_utf8(no_output.stderr).unwrap().contains("no ProvisionerFunctionName output"));
    let missing = on_aws(&["--stack", "no-such-stack", "tenants", "list"]);
    assert_eq!(missing.status.code(), Some(3));
    assert!(String::from_utf8(missing.stderr).unwrap().starts_with("error: stack no-such-stack: "));
}

#[test]
fn completions_are_printed_for_each_shell() {
    for (shell, marker) in [("bash", "_fleetgate()"), ("zsh", "#compdef fleetgate"), ("fish", "complete -c fleetgate")]
    {
        let output = Command::cargo_bin("fleetgate").unwrap().args(["completions", shell]).output().unwrap();
        let script = String::from_utf8(output.stdout).unwrap();
        assert!(output.status.success() && script.contains(marker) && script.contains("revoke"), "{shell}");
    }
}

/// A port nobody listens on now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

#[test]
fn webhooks_listen_verifies_each_delivery_answers_as_a_receiver_and_prints_it() {
    use fleetgate_webhooks::signing::{Secret, signature_header};
    let secret = Secret::generate();
    let port = free_port();
    let listener = Process::new(assert_cmd::cargo::cargo_bin("fleetgate"))
        .args(["--json", "webhooks", "listen", "--port", &port.to_string(), "--count", "3"])
        .env("FLEETGATE_WEBHOOK_SECRET", secret.reveal())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}/");
    let http = reqwest::blocking::Client::new();
    let body = r#"{"type":"inspection.failed","timestamp":"2026-12-07T10:00:00Z","data":{"id":"insp_1"}}"#;
    let now = fleetgate_api::Timestamp::now().unix_seconds();
    let send = |signed_with: &Secret| {
        let started = Instant::now();
        loop {
            let sent = http
                .post(&url)
                .header("content-type", "application/json")
                .header("webhook-id", "evt_1")
                .header("webhook-timestamp", now.to_string())
                .header("webhook-signature", signature_header(&[signed_with], "evt_1", now, body.as_bytes()))
                .body(body)
                .send();
            match sent {
                Ok(response) => return response.status().as_u16(),
                Err(_) if started.elapsed() < Duration::from_secs(10) => std::thread::sleep(Duration::from_millis(100)),
                Err(err) => panic!("the listener never answered: {err}"),
            }
        }
    };
    assert_eq!(send(&secret), 204, "a delivery signed with the endpoint's secret");
    assert_eq!(send(&Secret::generate()), 401, "signed with another secret");
    let unsigned = http.post(&url).body("{}").send().unwrap();
    assert_eq!(unsigned.status().as_u16(), 401, "no signature headers at all");
    // --count 3: it stops by itself.
    let output = listener.wait_with_output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let lines: Vec<Value> =
        String::from_utf8(output.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let verdicts: Vec<(Value, Value)> = lines.iter().map(|l| (l["verified"].clone(), l["status"].clone())).collect();
    assert_eq!(
        verdicts,
        [
            (Value::Bool(true), Value::from(204)),
            (Value::Bool(false), Value::from(401)),
            (Value::Bool(false), Value::from(401))
        ]
    );
    assert_eq!(lines[0]["payload"]["data"]["id"], "insp_1");
    assert_eq!(lines[0]["webhook_id"], "evt_1");
    assert!(lines[2]["refusal"].as_str().unwrap().contains("webhook-id"), "{}", lines[2]);
    let all = serde_json::to_string(&lines).unwrap();
    assert!(!all.contains(&secret.reveal()), "the secret is never printed");
}
