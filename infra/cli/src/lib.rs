//! `fleetgate`, the admin CLI (SPEC §10): every command is a call (or, for lists,
//! a walk of calls) to the provisioner function. The provisioner owns every rule;
//! the CLI only turns flags into its events and its answers into tables.

pub mod cli;
pub mod error;
pub mod listen;
pub mod render;
pub mod target;

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use clap::CommandFactory;
use fleetgate_api::Timestamp;
use serde_json::{Map, Value, json};

use cli::{
    AuditArgs, Cli, Command, CreateKey, KeysCommand, Lift, RestrictKey, Shell, TemplatesCommand, TenantsCommand,
    WebhooksCommand,
};
pub use error::CliError;
use target::Provisioner;

/// How often `audit --follow` asks for new records.
const FOLLOW_EVERY: Duration = Duration::from_secs(2);

/// Runs `cli`, writing its output to `out` (and warnings to stderr).
pub async fn run(cli: Cli, out: &mut dyn Write) -> Result<(), CliError> {
    if let Command::Completions { shell } = cli.command {
        let shell = match shell {
            Shell::Bash => clap_complete::Shell::Bash,
            Shell::Zsh => clap_complete::Shell::Zsh,
            Shell::Fish => clap_complete::Shell::Fish,
        };
        clap_complete::generate(shell, &mut Cli::command(), "fleetgate", out);
        return Ok(());
    }
    // The receiver talks to no provisioner.
    if let Command::Webhooks(WebhooksCommand::Listen(args)) = cli.command {
        return listen::listen(args, cli.json, out).await;
    }
    let provisioner = Provisioner::connect(&cli.target).await?;
    let session = Session {
        provisioner,
        json: cli.json,
        requested_by: cli
            .requested_by
            .or_else(|| std::env::var("USER").ok())
            .or_else(|| std::env::var("LOGNAME").ok())
            .filter(|who| !who.is_empty()),
    };
    let shown = match cli.command {
        Command::Keys(command) => session.keys(command).await?,
        Command::Templates(command) => session.templates(command).await?,
        Command::Tenants(command) => session.tenants(command).await?,
        Command::Audit(args) => return session.audit(args, out).await,
        Command::Completions { .. } | Command::Webhooks(_) => unreachable!("answered above"),
    };
    write(out, &shown)
}

fn write(out: &mut dyn Write, text: &str) -> Result<(), CliError> {
    out.write_all(text.as_bytes()).and_then(|()| out.flush()).map_err(|e| CliError::Usage(format!("stdout: {e}")))
}

struct Session {
    provisioner: Provisioner,
    json: bool,
    requested_by: Option<String>,
}

impl Session {
    /// Calls `action` with `fields` as given (a `null` lifts a setting) and `requested_by`.
    async fn call(&self, action: &str, fields: Value) -> Result<Value, CliError> {
        let mut event = Map::new();
        event.insert("action".into(), json!(action));
        if let Some(who) = &self.requested_by {
            event.insert("requested_by".into(), json!(who));
        }
        if let Value::Object(fields) = fields {
            event.extend(fields);
        }
        self.provisioner.call(&Value::Object(event)).await
    }

    /// Every page of a list action: `{"data": [all items], "next_cursor": null}`.
    async fn walk(&self, action: &str, fields: Value) -> Result<Value, CliError> {
        let mut items = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let mut page_fields = fields.clone();
            page_fields["limit"] = json!(100);
            if let Some(cursor) = &cursor {
                page_fields["cursor"] = json!(cursor);
            }
            let page = self.call(action, page_fields).await?;
            items.extend(page["data"].as_array().cloned().unwrap_or_default());
            match page["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_owned()),
                None => return Ok(json!({"data": items, "next_cursor": null})),
            }
        }
    }

    /// `answer` as JSON, or as `human` renders it.
    fn show(&self, answer: &Value, human: impl FnOnce(&Value) -> String) -> String {
        if self.json { format!("{answer:#}\n") } else { human(answer) }
    }

    async fn keys(&self, command: KeysCommand) -> Result<String, CliError> {
        let now = Timestamp::now();
        Ok(match command {
            KeysCommand::Create(create) => {
                let answer = self.call("create_key", create_key_event(create)).await?;
                self.secret(&answer)
            }
            KeysCommand::List { tenant, all } => {
                let answer = self.walk("list_keys", json!({"tenant_id": tenant.id, "include_revoked": all})).await?;
                self.show(&answer, |a| render::keys_table(a["data"].as_array().map_or(&[], Vec::as_slice), now))
            }
            KeysCommand::Show { tenant, key_id } => {
                let answer = self.call("get_key", json!({"tenant_id": tenant.id, "key_id": key_id})).await?;
                self.show(&answer, |a| render::key_details(&a["key"], now))
            }
            KeysCommand::Rotate { tenant, key_id, grace_hours } => {
                let fields =
                    present(json!({"tenant_id": tenant.id, "key_id": key_id, "grace_period_hours": grace_hours}));
                let answer = self.call("rotate_key", fields).await?;
                let mut shown = self.secret(&answer);
                if !self.json {
                    let previous = &answer["previous_key"];
                    let until = previous["expires_at"].as_str().unwrap_or("now");
                    let id = previous["key_id"].as_str().unwrap_or_default();
                    shown.push_str(&format!("The previous key {id} keeps working until {until}.\n"));
                }
                shown
            }
            KeysCommand::Revoke { tenant, key_id, reason } => {
                let fields = present(json!({"tenant_id": tenant.id, "key_id": key_id, "reason": reason}));
                let answer = self.call("revoke_key", fields).await?;
                self.show(&answer, |a| {
                    let also: Vec<&str> = a["revoked_predecessors"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|k| k.as_str().or_else(|| k["key_id"].as_str()))
                        .collect();
                    let mut text =
                        format!("Revoked {} \"{}\".\n", key_id, a["key"]["name"].as_str().unwrap_or_default());
                    if !also.is_empty() {
                        text.push_str(&format!("Also revoked, the keys it replaced: {}.\n", also.join(", ")));
                    }
                    text
                })
            }
            KeysCommand::Review { tenant, unused_days, revoke_unused, yes } => {
                let fields = json!({"tenant_id": tenant.id, "unused_days": unused_days});
                let mut answer = self.call("review_keys", fields).await?;
                if !revoke_unused {
                    return Ok(self.show(&answer, |a| render::review(a, now)));
                }
                if !self.json {
                    // The review first, then a question per idle key.
                    write(&mut std::io::stdout(), &render::review(&answer, now))?;
                }
                let revoked = self.revoke_unused(&tenant.id, &answer, yes).await?;
                if self.json {
                    answer["revoked"] = json!(revoked);
                    format!("{answer:#}\n")
                } else {
                    format!(
                        "Revoked {} key(s){}.\n",
                        revoked.len(),
                        if revoked.is_empty() { String::new() } else { format!(": {}", revoked.join(", ")) }
                    )
                }
            }
            KeysCommand::Restrict(restrict) => {
                let answer = self.call("update_key_restrictions", restrict_event(restrict)).await?;
                self.show(&answer, |a| {
                    let mut text = render::key_details(&a["key"], now);
                    for warning in a["warnings"].as_array().into_iter().flatten().filter_map(Value::as_str) {
                        text.push_str(&format!("warning: {warning}\n"));
                    }
                    text
                })
            }
        })
    }

    /// Revokes each key of `review` that was never used or not for its window,
    /// asking first on the terminal unless `yes` (an unanswered question, as
    /// without a terminal, is a no). The ids revoked.
    async fn revoke_unused(&self, tenant: &str, review: &Value, yes: bool) -> Result<Vec<String>, CliError> {
        let days = review["unused_days"].as_u64().unwrap_or_default();
        let mut revoked = Vec::new();
        let idle = review["keys"].as_array().into_iter().flatten().filter(|key| {
            key["findings"].as_array().is_some_and(|f| f.iter().any(|f| f == "never_used" || f == "unused"))
        });
        for key in idle {
            let (id, name) = (key["key_id"].as_str().unwrap_or_default(), key["name"].as_str().unwrap_or_default());
            if !yes && !confirm(&format!("Revoke {id} \"{name}\"? [y/N] ")) {
                continue;
            }
            let reason = format!("unused for {days} days (fleetgate keys review)");
            self.call("revoke_key", json!({"tenant_id": tenant, "key_id": id, "reason": reason})).await?;
            revoked.push(id.to_owned());
        }
        Ok(revoked)
    }

    /// A new key's answer: its secret once, the warning on stderr.
    fn secret(&self, answer: &Value) -> String {
        eprintln!("{}", render::SECRET_WARNING);
        self.show(answer, |a| render::new_secret(a, self.provisioner.api_url.as_deref()))
    }

    async fn templates(&self, command: TemplatesCommand) -> Result<String, CliError> {
        let now = Timestamp::now();
        Ok(match command {
            TemplatesCommand::Put { tenant, file } => {
                let template = read_template(&file)?;
                let answer =
                    self.call("put_inspection_template", json!({"tenant_id": tenant.id, "template": template})).await?;
                self.show(&answer, |a| {
                    let t = &a["template"];
                    format!(
                        "Put template {} \"{}\": version {}, {} items.\n",
                        t["id"].as_str().unwrap_or_default(),
                        t["name"].as_str().unwrap_or_default(),
                        t["version"],
                        t["items"].as_array().map_or(0, Vec::len)
                    )
                })
            }
            TemplatesCommand::List { tenant } => {
                let answer = self.walk("list_inspection_templates", json!({"tenant_id": tenant.id})).await?;
                self.show(&answer, |a| render::templates_table(a["data"].as_array().map_or(&[], Vec::as_slice), now))
            }
        })
    }

    async fn tenants(&self, command: TenantsCommand) -> Result<String, CliError> {
        let now = Timestamp::now();
        Ok(match command {
            TenantsCommand::Create { tenant, name } => {
                let answer = self.call("create_tenant", json!({"tenant_id": tenant.id, "name": name})).await?;
                self.show(&answer, |a| {
                    format!("Created tenant {}.\n", a["tenant"]["tenant_id"].as_str().unwrap_or_default())
                })
            }
            TenantsCommand::List => {
                let answer = self.walk("list_tenants", json!({})).await?;
                self.show(&answer, |a| render::tenants_table(a["data"].as_array().map_or(&[], Vec::as_slice), now))
            }
            TenantsCommand::Show { tenant } => {
                let answer = self.call("get_tenant", json!({"tenant_id": tenant.id})).await?;
                self.show(&answer, |a| render::tenant_details(a, now))
            }
            TenantsCommand::Limit { tenant, rate } => {
                let rate_limit = match rate {
                    Lift::Set(limit) => json!(limit),
                    Lift::Lift => Value::Null,
                };
                let answer =
                    self.call("put_tenant_limits", json!({"tenant_id": tenant.id, "rate_limit": rate_limit})).await?;
                self.show(&answer, |a| render::tenant_details(a, now))
            }
        })
    }

    async fn audit(&self, args: AuditArgs, out: &mut dyn Write) -> Result<(), CliError> {
        let since = args.since.as_deref().map(|s| parse_since(s, Timestamp::now())).transpose()?;
        let mut filter = json!({});
        if let Some(action) = &args.action {
            filter["action"] = json!(action);
        }
        let fields = present(json!({"tenant_id": args.tenant.id, "since": since.map(|t| t.to_string()),
                            "limit": args.limit, "filter": args.action.is_some().then(|| filter.clone())}));
        let answer = self.call("list_audit", fields).await?;
        let records = answer["data"].as_array().cloned().unwrap_or_default();
        if !args.follow {
            let shown = self.show(&answer, |_| render::audit_table(&records, Timestamp::now()));
            return write(out, &shown);
        }
        // Oldest first from here on, as a log reads; then every FOLLOW_EVERY, what is new.
        let mut seen: Vec<String> = Vec::new();
        let mut printed_header = false;
        let mut newest: Option<String> = None;
        let mut batch: Vec<Value> = records.into_iter().rev().collect();
        loop {
            batch.retain(|r| {
                let id = format!("{}#{}", r["at"], r["request_id"]);
                // The CLI's own reads of the trail are records too: not news.
                let own_read =
                    r["action"] == "list_audit" && r["requested_by"].as_str() == self.requested_by.as_deref();
                !own_read && !seen.contains(&id) && {
                    seen.push(id);
                    true
                }
            });
            if let Some(last) = batch.last() {
                newest = last["at"].as_str().map(str::to_owned).or(newest);
            }
            if self.json {
                for record in &batch {
                    write(out, &format!("{record}\n"))?;
                }
            } else if !batch.is_empty() || !printed_header {
                let table = render::audit_table(&batch, Timestamp::now());
                let lines =
                    if printed_header { table.lines().skip(1).map(|l| format!("{l}\n")).collect() } else { table };
                write(out, &lines)?;
                printed_header = true;
            }
            tokio::time::sleep(FOLLOW_EVERY).await;
            let since = newest.clone().or(since.map(|t| t.to_string()));
            let mut poll = present(json!({"tenant_id": args.tenant.id, "since": since, "limit": 100}));
            if args.action.is_some() {
                poll["filter"] = filter.clone();
            }
            let page = self.call("list_audit", poll).await?;
            batch = page["data"].as_array().cloned().unwrap_or_default().into_iter().rev().collect();
        }
    }
}

/// Asks `question` on stderr and reads a yes from stdin.
fn confirm(question: &str) -> bool {
    eprint!("{question}");
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer).is_ok_and(|_| matches!(answer.trim(), "y" | "Y" | "yes"))
}

/// `fields` without its `null` members (flags that were not given).
fn present(fields: Value) -> Value {
    match fields {
        Value::Object(map) => Value::Object(map.into_iter().filter(|(_, v)| !v.is_null()).collect()),
        other => other,
    }
}

/// The `create_key` event of `create`.
fn create_key_event(create: CreateKey) -> Value {
    present(json!({
        "tenant_id": create.tenant.id,
        "name": create.name,
        "preset": create.preset,
        "scopes": (!create.scopes.is_empty()).then_some(create.scopes),
        "description": create.description,
        "expires_in_days": create.expires_in_days,
        "rate_limit": create.rate,
        "monthly_quota": create.monthly_quota,
        "allowed_cidrs": (!create.allow_cidrs.is_empty()).then_some(create.allow_cidrs),
        "environment": create.environment,
    }))
}

/// The `update_key_restrictions` event of `restrict`: only what was given, a lift as `null`.
fn restrict_event(restrict: RestrictKey) -> Value {
    let mut event = Map::new();
    event.insert("tenant_id".into(), json!(restrict.tenant.id));
    event.insert("key_id".into(), json!(restrict.key_id));
    match restrict.rate {
        Some(Lift::Set(limit)) => drop(event.insert("rate_limit".into(), json!(limit))),
        Some(Lift::Lift) => drop(event.insert("rate_limit".into(), Value::Null)),
        None => {}
    }
    match restrict.monthly_quota {
        Some(Lift::Set(quota)) => drop(event.insert("monthly_quota".into(), json!(quota))),
        Some(Lift::Lift) => drop(event.insert("monthly_quota".into(), Value::Null)),
        None => {}
    }
    if restrict.any_network {
        event.insert("allowed_cidrs".into(), Value::Null);
    } else if !restrict.allow_cidrs.is_empty() {
        event.insert("allowed_cidrs".into(), json!(restrict.allow_cidrs));
    }
    Value::Object(event)
}

/// A template file: JSON if it ends in `.json`, else YAML (a superset of JSON).
/// A file that does not parse is a usage error naming its line and column.
pub fn read_template(path: &Path) -> Result<Value, CliError> {
    let shown = path.display();
    let text = std::fs::read_to_string(path).map_err(|e| CliError::Usage(format!("{shown}: {e}")))?;
    if path.extension().is_some_and(|ext| ext.eq_ignore_ascii_case("json")) {
        serde_json::from_str(&text)
            .map_err(|e| CliError::Usage(format!("{shown}:{}:{}: not valid JSON: {e}", e.line(), e.column())))
    } else {
        serde_norway::from_str(&text).map_err(|e| match e.location() {
            Some(at) => CliError::Usage(format!("{shown}:{}:{}: not valid YAML: {e}", at.line(), at.column())),
            None => CliError::Usage(format!("{shown}: not valid YAML: {e}")),
        })
    }
}

/// `--since`: an RFC 3339 time, or an age before `now` (`30m`, `12h`, `7d`).
pub fn parse_since(text: &str, now: Timestamp) -> Result<Timestamp, CliError> {
    if let Some(at) = Timestamp::parse(text) {
        return Ok(at);
    }
    let bad = || {
        CliError::Usage(format!(
            "--since {text}: give an RFC 3339 time (2026-12-01T00:00:00Z) or an age (30m, 12h, 7d)"
        ))
    };
    let (number, unit) = text.split_at(text.len().saturating_sub(1));
    let count: i64 = number.parse().map_err(|_| bad())?;
    let seconds = match unit {
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        _ => return Err(bad()),
    };
    Ok(now.minus(time::Duration::seconds(count.checked_mul(seconds).ok_or_else(bad)?)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("fleetgate").chain(args.iter().copied()))
    }

    #[test]
    fn flags_become_the_provisioners_fields() {
        let cli = parse(&[
            "keys",
            "create",
            "--tenant",
            "acme",
            "--name",
            "tablet",
            "--scope",
            "vehicles:read",
            "--scope",
            "inspections:write",
            "--rate",
            "5/second",
            "--allow-cidr",
            "203.0.113.0/24",
            "--local",
        ])
        .unwrap();
        assert!(cli.target.local);
        let Command::Keys(KeysCommand::Create(create)) = cli.command else { panic!("not keys create") };
        let event = create_key_event(create);
        assert_eq!(event["scopes"], json!(["vehicles:read", "inspections:write"]));
        assert_eq!(event["rate_limit"]["requests"], 5);
        assert_eq!(event["rate_limit"]["per"], "second");
        assert_eq!(event["allowed_cidrs"], json!(["203.0.113.0/24"]));
        assert!(event.get("preset").is_none() && event.get("monthly_quota").is_none(), "unset flags are left out");
    }

    #[test]
    fn restrict_sends_only_what_changes_and_lifts_as_null() {
        let cli =
            parse(&["keys", "restrict", "--tenant", "acme", "key_1", "--rate", "default", "--any-network"]).unwrap();
        let Command::Keys(KeysCommand::Restrict(restrict)) = cli.command else { panic!("not keys restrict") };
        let event = restrict_event(restrict);
        assert_eq!(event, json!({"tenant_id": "acme", "key_id": "key_1", "rate_limit": null, "allowed_cidrs": null}));
        let cli = parse(&["keys", "restrict", "--tenant", "acme", "key_1", "--monthly-quota", "900"]).unwrap();
        let Command::Keys(KeysCommand::Restrict(restrict)) = cli.command else { panic!("not keys restrict") };
        assert_eq!(restrict_event(restrict), json!({"tenant_id": "acme", "key_id": "key_1", "monthly_quota": 900}));
    }

    #[test]
    fn usage_errors_are_caught_before_any_call() {
        for bad in [
            &["keys", "create", "--tenant", "acme", "--name", "x"][..], // neither preset nor scope
            &["keys", "create", "--tenant", "acme", "--name", "x", "--preset", "read-only", "--scope", "vehicles:read"],
            &["keys", "restrict", "--tenant", "acme", "key_1"], // nothing to change
            &["keys", "create", "--tenant", "acme", "--name", "x", "--preset", "p", "--rate", "5/hour"],
            &["keys", "list"],                                             // no tenant
            &["keys", "list", "--tenant", "a", "--local", "--stack", "s"], // two targets
            &["keys", "frobnicate"],
            &["tenants", "limit", "--tenant", "acme", "--rate", "0/second"],
        ] {
            let err = parse(bad).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{bad:?}: {err}");
        }
    }

    #[test]
    fn since_takes_a_time_or_an_age() {
        let now = Timestamp::parse("2026-12-07T12:00:00Z").unwrap();
        assert_eq!(parse_since("2026-12-01T00:00:00Z", now).unwrap().to_string(), "2026-12-01T00:00:00Z");
        assert_eq!(parse_since("90m", now).unwrap().to_string(), "2026-12-07T10:30:00Z");
        assert_eq!(parse_since("7d", now).unwrap().to_string(), "2026-11-30T12:00:00Z");
        for bad in ["yesterday", "7w", "d", ""] {
            assert!(matches!(parse_since(bad, now), Err(CliError::Usage(_))), "{bad}");
        }
    }

    #[test]
    fn a_template_file_that_does_not_parse_names_its_line_and_column() {
        let dir = std::env::temp_dir().join(format!("fleetgate-cli-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let yaml = dir.join("t.yaml");
        std::fs::write(&yaml, "id: tpl\nname: Pre-trip\nitems:\n  - id: brakes\n    label: [unclosed\n").unwrap();
        let err = read_template(&yaml).unwrap_err().to_string();
        assert!(err.starts_with(&format!("{}:", yaml.display())) && err.contains("not valid YAML"), "{err}");
        let json_file = dir.join("t.json");
        std::fs::write(&json_file, "{\"id\": \"tpl\",\n \"name\": }").unwrap();
        let err = read_template(&json_file).unwrap_err().to_string();
        assert!(err.contains(":2:10: not valid JSON"), "{err}");
        std::fs::write(&yaml, "id: tpl\nname: Pre-trip\nitems:\n  - {id: brakes, label: Brakes}\n").unwrap();
        assert_eq!(read_template(&yaml).unwrap()["items"][0]["label"], "Brakes");
    }
}
