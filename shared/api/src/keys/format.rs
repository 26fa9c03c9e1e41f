//! The API key format: `fg_<env>_<30 base62 random chars><6 base62 checksum chars>`.
//!
//! 30 base62 characters carry 178 bits from the OS-seeded CSPRNG; the checksum is
//! CRC32 of everything before it, so scanners and the authorizer can reject a
//! mistyped or invented key without a database read.

use std::fmt;

use rand::Rng;
use rand::distr::Alphanumeric;
use sha2::{Digest, Sha256};

use fleetgate_scopes::Environment;

const PRODUCT_PREFIX: &str = "fg_";
const RANDOM_LEN: usize = 30;
const CHECKSUM_LEN: usize = 6;
const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// A full API key. Its `Debug` never shows the secret; the only way to read it
/// is [`ApiKey::expose`], used once, in the provisioning response.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey {
    secret: String,
    environment: Environment,
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ApiKey({}, …{})", self.environment, self.hint())
    }
}

/// Why a presented key was refused before any database read.
#[derive(Copy, Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum KeyFormatError {
    #[error("malformed key")]
    Malformed,
    #[error("key checksum does not match")]
    BadChecksum,
}

impl ApiKey {
    /// Makes a new random key for `environment`.
    pub fn generate(environment: Environment) -> ApiKey {
        let random: String = rand::rng().sample_iter(Alphanumeric).take(RANDOM_LEN).map(char::from).collect();
        let mut secret = format!("{}{random}", prefix(environment));
        let checksum = checksum(&secret);
        secret.push_str(&checksum);
        ApiKey { secret, environment }
    }

    /// Checks shape and checksum offline. Says nothing about whether the key exists.
    pub fn parse(presented: &str) -> Result<ApiKey, KeyFormatError> {
        let environment = [Environment::Live, Environment::Test]
            .into_iter()
            .find(|env| presented.starts_with(&prefix(*env)))
            .ok_or(KeyFormatError::Malformed)?;
        let rest = &presented[prefix(environment).len()..];
        if rest.len() != RANDOM_LEN + CHECKSUM_LEN || !rest.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(KeyFormatError::Malformed);
        }
        let (body, check) = presented.split_at(presented.len() - CHECKSUM_LEN);
        if checksum(body) != check {
            return Err(KeyFormatError::BadChecksum);
        }
        Ok(ApiKey { secret: presented.to_owned(), environment })
    }

    pub fn environment(&self) -> Environment {
        self.environment
    }

    /// SHA-256 of the full key, lowercase hex: the only form that is stored.
    pub fn hash(&self) -> KeyHash {
        KeyHash(hex(&Sha256::digest(self.secret.as_bytes())))
    }

    /// The last four characters, shown to humans to tell keys apart.
    pub fn hint(&self) -> &str {
        &self.secret[self.secret.len() - 4..]
    }

    /// The plaintext key. Call only to hand it to its owner once.
    pub fn expose(&self) -> &str {
        &self.secret
    }
}

/// Hex SHA-256 of a key; the keys table's partition key.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct KeyHash(String);

impl KeyHash {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn prefix(environment: Environment) -> String {
    format!("{PRODUCT_PREFIX}{environment}_")
}

/// CRC32 of `text`, as exactly six base62 digits (62^6 > 2^32).
fn checksum(text: &str) -> String {
    let mut value = u64::from(crc32fast::hash(text.as_bytes()));
    let mut digits = [b'0'; CHECKSUM_LEN];
    for digit in digits.iter_mut().rev() {
        *digit = BASE62[(value % 62) as usize];
        value /= 62;
    }
    String::from_utf8(digits.to_vec()).expect("base62 digits are ASCII")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A new public id with `prefix` (e.g. `key_`): 20 base62 random characters.
pub fn new_public_id(prefix: &str) -> String {
    let random: String = rand::rng().sample_iter(Alphanumeric).take(20).map(char::from).collect();
    format!("{prefix}{random}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn generated_keys_have_the_documented_shape() {
        let key = ApiKey::generate(Environment::Test);
        let text = key.expose();
        assert!(text.starts_with("fg_test_"), "{text}");
        assert_eq!(text.len(), "fg_test_".len() + 36);
        assert_eq!(ApiKey::parse(text), Ok(key.clone()));
        assert_eq!(key.hint(), &text[text.len() - 4..]);
        assert!(ApiKey::generate(Environment::Live).expose().starts_with("fg_live_"));
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let key = ApiKey::generate(Environment::Live);
        let shown = format!("{key:?}");
        assert!(!shown.contains(&key.expose()[8..20]), "{shown}");
    }

    #[test]
    fn two_keys_differ_and_hash_differently() {
        let (a, b) = (ApiKey::generate(Environment::Test), ApiKey::generate(Environment::Test));
        assert_ne!(a, b);
        assert_ne!(a.hash(), b.hash());
        assert_eq!(a.hash().as_str().len(), 64);
    }

    #[test]
    fn garbage_is_malformed() {
        for bad in ["", "fg_test_", "fg_prod_abcdefabcdefabcdefabcdefabcdefabcdef", "sk_live_123", "fg_test_ab!"] {
            assert_eq!(ApiKey::parse(bad), Err(KeyFormatError::Malformed), "{bad}");
        }
    }

    #[test]
    fn checksum_is_pinned() {
        // A change here would invalidate every key ever issued.
        assert_eq!(checksum(""), "000000");
        assert_eq!(checksum("fg_test_abc"), "1psmwf");
    }

    proptest! {
        #[test]
        fn any_single_character_change_is_caught(pos in 8usize..44, replacement in proptest::sample::select(BASE62.to_vec())) {
            let key = ApiKey::generate(Environment::Test);
            let mut bytes = key.expose().as_bytes().to_vec();
            prop_assume!(bytes[pos] != replacement);
            bytes[pos] = replacement;
            let tampered = String::from_utf8(bytes).unwrap();
            prop_assert_eq!(ApiKey::parse(&tampered), Err(KeyFormatError::BadChecksum));
        }

        #[test]
        fn arbitrary_input_never_panics(s in ".{0,80}") {
            let _ = ApiKey::parse(&s);
        }
    }
}
