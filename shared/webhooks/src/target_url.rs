//! The rules for an endpoint's URL at subscription time. What can be checked
//! without DNS is checked here (scheme, credentials, length, literal addresses,
//! `localhost`); the addresses a host name resolves to are checked by the
//! deliverer on every attempt ([`crate::outbound`]), since DNS can change.

use std::net::IpAddr;

use url::{Host, Url};

use crate::outbound::{AddressClass, refusal};

pub const MAX_URL_CHARS: usize = 2048;

/// Whether endpoints may be plain http on a loopback address: the local stack's
/// switch (`FLEETGATE_WEBHOOKS_ALLOW_LOOPBACK=1`), which the SAM template never
/// sets (a template test checks it), so a deployed stack delivers over https to
/// public addresses only.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct UrlPolicy {
    pub allow_loopback: bool,
}

/// The environment variable behind [`UrlPolicy::allow_loopback`].
pub const ALLOW_LOOPBACK_VAR: &str = "FLEETGATE_WEBHOOKS_ALLOW_LOOPBACK";

impl UrlPolicy {
    pub fn from_env() -> UrlPolicy {
        UrlPolicy { allow_loopback: std::env::var(ALLOW_LOOPBACK_VAR).is_ok_and(|v| v == "1") }
    }

    /// `text` as an endpoint URL, or why not (a sentence for the 422).
    pub fn check(self, text: &str) -> Result<Url, String> {
        if text.chars().count() > MAX_URL_CHARS {
            return Err(format!("must be at most {MAX_URL_CHARS} characters"));
        }
        let url = Url::parse(text).map_err(|e| format!("must be an absolute URL ({e})"))?;
        if !url.username().is_empty() || url.password().is_some() {
            return Err(
                "must not contain credentials (user:password@); put a secret in the path or rely on the signature"
                    .into(),
            );
        }
        if url.fragment().is_some() {
            return Err("must not have a fragment (#…): it is never sent".into());
        }
        let loopback = match url.host() {
            None => return Err("must name a host".into()),
            Some(Host::Domain(domain)) => {
                let domain = domain.trim_end_matches('.').to_ascii_lowercase();
                domain == "localhost" || domain.ends_with(".localhost")
            }
            Some(Host::Ipv4(v4)) => self.literal(IpAddr::V4(v4))?,
            Some(Host::Ipv6(v6)) => self.literal(IpAddr::V6(v6))?,
        };
        match (url.scheme(), loopback) {
            (_, true) if !self.allow_loopback => Err("must not point at this machine (localhost)".into()),
            ("https", _) => Ok(url),
            ("http", true) => Ok(url),
            ("http", false) if self.allow_loopback => {
                Err("must be https (the local stack allows http to loopback addresses only)".into())
            }
            _ => Err("must be an https URL".into()),
        }
    }

    /// For an address written in the URL: whether it is loopback (allowed only
    /// locally), or why it is refused.
    fn literal(self, address: IpAddr) -> Result<bool, String> {
        match refusal(address) {
            None => Ok(false),
            Some(AddressClass::Loopback) => Ok(true),
            Some(class) => Err(format!("must not point at a {} address ({address})", class.as_str())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIVE: UrlPolicy = UrlPolicy { allow_loopback: false };
    const LOCAL: UrlPolicy = UrlPolicy { allow_loopback: true };

    #[test]
    fn public_https_urls_are_accepted_as_given() {
        for url in
            ["https://hooks.example.com/fleetgate", "https://93.184.215.14:8443/x?y=1", "https://[2606:4700::1111]/"]
        {
            assert_eq!(LIVE.check(url).unwrap().as_str(), url);
        }
    }

    #[test]
    fn each_refusal_says_why() {
        let long = format!("https://example.com/{}", "a".repeat(MAX_URL_CHARS));
        for (url, reason) in [
            ("http://hooks.example.com/", "https"),
            ("ftp://hooks.example.com/", "https"),
            ("hooks.example.com/x", "absolute"),
            ("https://user:pass@hooks.example.com/", "credentials"),
            ("https://token@hooks.example.com/", "credentials"),
            ("https://hooks.example.com/#frag", "fragment"),
            ("https://localhost/", "localhost"),
            ("https://api.localhost./", "localhost"),
            ("https://127.0.0.1/", "localhost"),
            ("https://[::1]/", "localhost"),
            ("https://10.0.0.8/", "private"),
            ("https://169.254.169.254/latest/meta-data/", "link-local"),
            ("https://100.64.1.1/", "CGNAT"),
            ("https://[fd00::1]/", "ULA"),
            ("https://[::ffff:192.168.0.1]/", "private"),
            ("https://0x7f000001/", "localhost"),
            ("https://2130706433/", "localhost"),
            (long.as_str(), "2048"),
        ] {
            let err = LIVE.check(url).unwrap_err();
            assert!(err.contains(reason), "{url}: {err}");
        }
    }

    #[test]
    fn only_the_local_stack_allows_http_to_loopback_and_nothing_else_more() {
        for url in ["http://127.0.0.1:9555/hook", "http://localhost:9555/", "http://[::1]:9555/"] {
            assert!(LOCAL.check(url).is_ok(), "{url}");
            assert!(LIVE.check(url).is_err(), "{url}");
        }
        assert!(LOCAL.check("http://hooks.example.com/").unwrap_err().contains("https"));
        assert!(LOCAL.check("http://10.0.0.8/").unwrap_err().contains("private"));
    }
}
