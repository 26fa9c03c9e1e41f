//! `local-stack check-secrets <log>...`: after `make test` has created, used,
//! rotated and revoked keys through the running stack, no function log holds an
//! API key or the hash of any key in the keys table, and no table holds a
//! plaintext key.

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::AttributeValue;
use serde_json::Value;

use crate::{Error, TableNames};

const KEY_PREFIXES: [&str; 2] = ["fg_live_", "fg_test_"];
/// Characters after the prefix: 30 random + 6 checksum, base62.
const KEY_BODY_CHARS: usize = 36;

/// The first thing in `text` shaped like an API key (prefix + 36 base62), if any.
/// Shape, not checksum: a key cut short or altered in a log is still a leak.
pub fn find_api_key(text: &str) -> Option<&str> {
    KEY_PREFIXES.iter().find_map(|prefix| {
        text.match_indices(prefix).find_map(|(at, _)| {
            let body = &text.as_bytes()[at + prefix.len()..];
            let alnum = body.iter().take(KEY_BODY_CHARS).take_while(|b| b.is_ascii_alphanumeric()).count();
            (alnum == KEY_BODY_CHARS).then(|| &text[at..at + prefix.len() + KEY_BODY_CHARS])
        })
    })
}

/// What [`check`] looked at.
#[derive(Debug, Default)]
pub struct Checked {
    pub key_hashes: usize,
    pub items: usize,
    pub log_bytes: usize,
}

/// Fails naming the first leak: a key in a table or a log, a key hash in a log.
/// `logs[0]` is the functions' log: it must show that there was something to
/// find (debug-level lines and known key ids), or a scan of nothing would pass.
pub async fn check(client: &Client, tables: &TableNames, logs: &[String]) -> Result<Checked, Error> {
    let mut checked = Checked::default();
    let mut hashes = Vec::new();
    let mut key_ids = Vec::new();
    for table in [&tables.keys, &tables.fleet, &tables.audit, &tables.usage] {
        for item in scan(client, table).await? {
            checked.items += 1;
            let json: Value = serde_dynamo::from_item(item.clone())?;
            if find_api_key(&json.to_string()).is_some() {
                return Err(format!("a plaintext API key is stored in table {table}").into());
            }
            if *table == tables.keys
                && let (Some(AttributeValue::S(hash)), Some(AttributeValue::S(key_id))) =
                    (item.get("key_hash"), item.get("key_id"))
            {
                hashes.push(hash.clone());
                key_ids.push(key_id.clone());
            }
        }
    }
    checked.key_hashes = hashes.len();
    if hashes.is_empty() {
        return Err("the keys table is empty: there is nothing to look for".into());
    }
    for (n, path) in logs.iter().enumerate() {
        let log = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
        checked.log_bytes += log.len();
        if n == 0 {
            if !log.contains("DEBUG") {
                return Err(
                    format!("{path} has no debug-level line: the functions did not log at the level scanned").into()
                );
            }
            if !key_ids.iter().any(|key_id| log.contains(key_id.as_str())) {
                return Err(
                    format!("{path} names no key of the keys table: it is not the log of these requests").into()
                );
            }
        } else if log.is_empty() {
            return Err(format!("{path} is empty").into());
        }
        if find_api_key(&log).is_some() {
            return Err(format!("an API key appears in {path}").into());
        }
        if hashes.iter().any(|hash| log.contains(hash.as_str())) {
            return Err(format!("a key hash appears in {path}").into());
        }
    }
    Ok(checked)
}

/// Every item of `table` (the local stack's own check, never a function's path).
async fn scan(client: &Client, table: &str) -> Result<Vec<HashMap<String, AttributeValue>>, Error> {
    let mut items = Vec::new();
    let mut start = None;
    loop {
        // Pages of 200: the emulator spends ~1.5 ms per item returned, and one 1 MB
        // page of a test run's audit trail would outlast the client's 4 s timeout.
        let output = client.scan().table_name(table).limit(200).set_exclusive_start_key(start).send().await?;
        items.extend(output.items.unwrap_or_default());
        start = output.last_evaluated_key;
        if start.is_none() {
            return Ok(items);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fleetgate_api::keys::ApiKey;
    use fleetgate_scopes::Environment;
    use proptest::prelude::*;

    #[test]
    fn finds_keys_of_both_environments_anywhere_in_text() {
        for environment in [Environment::Live, Environment::Test] {
            let key = ApiKey::generate(environment);
            let line = format!("{{\"headers\":{{\"x-api-key\":\"{}\"}}}}", key.expose());
            assert_eq!(find_api_key(&line), Some(key.expose()));
        }
    }

    #[test]
    fn ignores_prefixes_without_a_whole_key_after_them() {
        assert_eq!(find_api_key("keys look like fg_live_… and fg_test_abc"), None);
        assert_eq!(find_api_key(""), None);
        // A key with one character changed still has the shape: found.
        let mut altered = ApiKey::generate(Environment::Test).expose().to_owned();
        altered.replace_range(10..11, "Z");
        assert!(find_api_key(&format!("x {altered} y")).is_some());
    }

    proptest! {
        #[test]
        fn any_key_embedded_in_any_text_is_found(before in ".{0,100}", after in ".{0,100}") {
            let key = ApiKey::generate(Environment::Test);
            let text = format!("{before}{}{after}", key.expose());
            prop_assert!(find_api_key(&text).is_some());
        }
    }
}
