//! `If-Match` (RFC 9110 §13.1.1) for the routes that replace a versioned
//! resource (vehicles, webhook endpoints): their `ETag` is `"<version>"`.

use crate::error::ApiError;

/// The strong ETag of a resource's `version`: `"<version>"`.
pub fn etag(version: u64) -> String {
    format!("\"{version}\"")
}

/// An `If-Match` precondition (RFC 9110 §13.1.1), compared strongly with a
/// versioned resource's `ETag` (`"3"` for version 3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IfMatch {
    /// `*`: the resource exists, whatever its version.
    Any,
    /// The versions the header's strong tags name. Weak tags (`W/"3"`) never match
    /// under strong comparison, and a strong tag not of our form matches nothing:
    /// both are dropped, so an empty list fails every comparison (412).
    Versions(Vec<u64>),
}

impl IfMatch {
    pub fn matches(&self, version: u64) -> bool {
        match self {
            IfMatch::Any => true,
            IfMatch::Versions(versions) => versions.contains(&version),
        }
    }
}

/// Reads `If-Match`: `*` or a comma-separated list of entity tags, each
/// `"…"` or `W/"…"`. Anything else (an unquoted `3`, an open quote) is a 400
/// `invalid_if_match`: it is not a stale version, it is not a tag at all.
pub fn parse_if_match(value: &str) -> Result<IfMatch, ApiError> {
    let invalid = || {
        let hint = if value.trim().parse::<u64>().is_ok() {
            format!(" Quote the version as the ETag header gives it: \"{}\".", value.trim())
        } else {
            String::new()
        };
        ApiError::BadRequest {
            code: "invalid_if_match",
            detail: format!("If-Match must be * or a list of entity tags such as \"3\".{hint}"),
        }
    };
    let value = value.trim_matches([' ', '\t']);
    if value == "*" {
        return Ok(IfMatch::Any);
    }
    let mut versions = Vec::new();
    let mut tags = 0;
    let mut rest = value;
    loop {
        // #rule lists: elements separated by commas with optional blanks; empty elements are allowed.
        rest = rest.trim_start_matches([' ', '\t', ',']);
        if rest.is_empty() {
            break;
        }
        let (weak, tag) = match rest.strip_prefix("W/") {
            Some(after) => (true, after),
            None => (false, rest),
        };
        let opaque = tag.strip_prefix('"').ok_or_else(invalid)?;
        let end = opaque.find('"').ok_or_else(invalid)?;
        let text = &opaque[..end];
        // etagc: %x21 / %x23-7E / obs-text; no blanks or controls inside a tag.
        if !text.bytes().all(|b| b == 0x21 || (0x23..=0x7e).contains(&b) || b >= 0x80) {
            return Err(invalid());
        }
        rest = &opaque[end + 1..];
        if !(rest.is_empty() || rest.starts_with([' ', '\t', ','])) {
            return Err(invalid());
        }
        tags += 1;
        if !weak && let Ok(version) = text.parse::<u64>() {
            versions.push(version);
        }
    }
    if tags == 0 {
        return Err(invalid());
    }
    Ok(IfMatch::Versions(versions))
}

/// The `If-Match` of a request: every field line joined as one list (RFC 9110 §5.3);
/// `None` without the header.
pub fn request_if_match(headers: &http::HeaderMap) -> Result<Option<IfMatch>, ApiError> {
    let lines: Vec<&http::HeaderValue> = headers.get_all(http::header::IF_MATCH).iter().collect();
    if lines.is_empty() {
        return Ok(None);
    }
    let mut joined = Vec::new();
    for line in lines {
        joined.push(line.to_str().map_err(|_| parse_if_match("\u{0}").unwrap_err())?);
    }
    parse_if_match(&joined.join(", ")).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_match_follows_rfc_9110() {
        let versions = |v: &[u64]| IfMatch::Versions(v.to_vec());
        assert_eq!(parse_if_match("\"3\"").unwrap(), versions(&[3]));
        assert_eq!(parse_if_match("*").unwrap(), IfMatch::Any);
        // A list matches if any strong tag does; weak tags never match (strong comparison).
        assert_eq!(parse_if_match("\"6\", \"5\"").unwrap(), versions(&[6, 5]));
        assert_eq!(parse_if_match("W/\"3\"").unwrap(), versions(&[]));
        assert_eq!(parse_if_match("W/\"3\", \"4\"").unwrap(), versions(&[4]));
        // Valid tags that are not versions match nothing (412), they are not malformed.
        assert_eq!(parse_if_match("\"three\"").unwrap(), versions(&[]));
        assert_eq!(parse_if_match("\"a,b\" ,, \"7\"").unwrap(), versions(&[7]));
        for bad in ["3", "", " , ", "\"3", "\"3\"x", "'3'", "W/3", "\"3 \"", "*, \"3\""] {
            let err = parse_if_match(bad).unwrap_err();
            assert_eq!((err.status().as_u16(), err.code()), (400, "invalid_if_match"), "{bad:?}");
        }
        assert!(parse_if_match("2").unwrap_err().to_string().contains("\"2\""), "an unquoted version gets a hint");
        assert!(IfMatch::Any.matches(9) && versions(&[6, 5]).matches(6) && !versions(&[]).matches(0));
    }

    #[test]
    fn if_match_lines_are_joined_into_one_list() {
        let mut headers = http::HeaderMap::new();
        assert_eq!(request_if_match(&headers).unwrap(), None);
        headers.append(http::header::IF_MATCH, http::HeaderValue::from_static("\"1\""));
        headers.append(http::header::IF_MATCH, http::HeaderValue::from_static("\"2\""));
        assert_eq!(request_if_match(&headers).unwrap(), Some(IfMatch::Versions(vec![1, 2])));
    }
}
