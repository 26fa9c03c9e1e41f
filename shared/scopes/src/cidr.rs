//! The networks a key may be used from (`allowed_cidrs`): IPv4 and IPv6 CIDRs,
//! checked against the caller's address (API Gateway's `identity.sourceIp`).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

/// At most this many CIDRs per key.
pub const MAX_ALLOWED_CIDRS: usize = 20;

/// One network: an address with every host bit zero, and a prefix length.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Cidr {
    network: IpAddr,
    prefix: u8,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum InvalidCidr {
    #[error("'{0}' is not a CIDR such as 203.0.113.0/24 or 2001:db8::/32")]
    Malformed(String),
    /// Refused rather than silently widened or narrowed: `10.0.0.1/8` may be a typo for `/32`.
    #[error("'{text}' has host bits set; did you mean {network}?")]
    HostBits { text: String, network: String },
}

impl Cidr {
    /// `203.0.113.0/24`, `2001:db8::/32`; a bare address is a single host (`/32`, `/128`).
    pub fn parse(text: &str) -> Result<Cidr, InvalidCidr> {
        let malformed = || InvalidCidr::Malformed(text.chars().take(64).collect());
        let (address, prefix) = match text.split_once('/') {
            Some((address, prefix)) => (address, Some(prefix)),
            None => (text, None),
        };
        let address: IpAddr = address.parse().map_err(|_| malformed())?;
        let max = if address.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(digits) if !digits.is_empty() && digits.len() <= 3 && digits.bytes().all(|b| b.is_ascii_digit()) => {
                digits.parse::<u8>().map_err(|_| malformed())?
            }
            Some(_) => return Err(malformed()),
        };
        if prefix > max {
            return Err(malformed());
        }
        let network = masked(address, prefix);
        if network != address {
            return Err(InvalidCidr::HostBits { text: text.to_owned(), network: format!("{network}/{prefix}") });
        }
        Ok(Cidr { network, prefix })
    }

    /// Whether `address` is in this network. An IPv4-mapped IPv6 address
    /// (`::ffff:203.0.113.9`) is its IPv4 address.
    pub fn contains(&self, address: IpAddr) -> bool {
        let address = address.to_canonical();
        address.is_ipv4() == self.network.is_ipv4() && masked(address, self.prefix) == self.network
    }
}

fn masked(address: IpAddr, prefix: u8) -> IpAddr {
    match address {
        IpAddr::V4(v4) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V4(Ipv4Addr::from(u32::from(v4) & mask))
        }
        IpAddr::V6(v6) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
            IpAddr::V6(Ipv6Addr::from(u128::from(v6) & mask))
        }
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

impl FromStr for Cidr {
    type Err = InvalidCidr;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Cidr::parse(s)
    }
}

/// Whether `address` (the caller's `sourceIp`) is in any of `allowed`; an
/// unreadable address is in none.
pub fn allows(allowed: &[Cidr], address: &str) -> bool {
    address.parse::<IpAddr>().is_ok_and(|ip| allowed.iter().any(|cidr| cidr.contains(ip)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_networks_and_refuses_the_rest() {
        assert_eq!(Cidr::parse("203.0.113.0/24").unwrap().to_string(), "203.0.113.0/24");
        assert_eq!(Cidr::parse("2001:db8::/32").unwrap().to_string(), "2001:db8::/32");
        assert_eq!(Cidr::parse("203.0.113.9").unwrap().to_string(), "203.0.113.9/32");
        assert_eq!(Cidr::parse("0.0.0.0/0").unwrap().to_string(), "0.0.0.0/0");
        for bad in [
            "10.0.0.0/33",
            "::/129",
            "999.1.1.1/8",
            "10.0.0.0/",
            "10.0.0.0/-1",
            "10.0.0.0/+8",
            "x/8",
            "",
            "10.0.0.0/8/8",
            " 10.0.0.0/8",
        ] {
            assert!(matches!(Cidr::parse(bad), Err(InvalidCidr::Malformed(_))), "{bad}");
        }
        assert_eq!(
            Cidr::parse("10.0.0.1/8"),
            Err(InvalidCidr::HostBits { text: "10.0.0.1/8".into(), network: "10.0.0.0/8".into() })
        );
    }

    #[test]
    fn matches_ipv4_ipv6_and_mapped_addresses() {
        let v4 = Cidr::parse("203.0.113.0/24").unwrap();
        let v6 = Cidr::parse("2001:db8::/32").unwrap();
        let allowed = [v4, v6];
        for inside in ["203.0.113.0", "203.0.113.255", "::ffff:203.0.113.9", "2001:db8::1", "2001:db8:ffff::"] {
            assert!(allows(&allowed, inside), "{inside}");
        }
        for outside in ["203.0.114.0", "127.0.0.1", "2001:db9::1", "::1", "not an ip", ""] {
            assert!(!allows(&allowed, outside), "{outside}");
        }
        assert!(Cidr::parse("0.0.0.0/0").unwrap().contains("8.8.8.8".parse().unwrap()));
        assert!(!Cidr::parse("0.0.0.0/0").unwrap().contains("::1".parse().unwrap()), "families never mix");
    }
}
