//! Where a webhook may be delivered: only to public unicast addresses. The
//! deliverer resolves the endpoint's host, refuses the delivery if any address
//! is not public, and connects to exactly the addresses it checked (no second
//! lookup between check and connect, so no DNS-rebinding gap).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Why an address is not a delivery target; `None` from [`refusal`] means public.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum AddressClass {
    Unspecified,
    Loopback,
    /// RFC 1918 private networks.
    Private,
    /// 169.254.0.0/16 (the instance metadata service among them) and fe80::/10.
    LinkLocal,
    /// 100.64.0.0/10, carrier-grade NAT.
    SharedAddressSpace,
    /// fc00::/7, IPv6 unique local addresses.
    UniqueLocal,
    Multicast,
    Broadcast,
    /// Documentation and benchmarking ranges, 0.0.0.0/8, 240.0.0.0/4, the IETF
    /// protocol assignments, and IPv6's discard, site-local and similar blocks.
    Reserved,
}

impl AddressClass {
    pub fn as_str(self) -> &'static str {
        match self {
            AddressClass::Unspecified => "unspecified",
            AddressClass::Loopback => "loopback",
            AddressClass::Private => "private",
            AddressClass::LinkLocal => "link-local",
            AddressClass::SharedAddressSpace => "shared address space (CGNAT)",
            AddressClass::UniqueLocal => "unique local (ULA)",
            AddressClass::Multicast => "multicast",
            AddressClass::Broadcast => "broadcast",
            AddressClass::Reserved => "reserved",
        }
    }
}

/// What is wrong with `address` as a delivery target, or `None` for a public one.
/// IPv6 forms that carry an IPv4 address (mapped, compatible, NAT64, 6to4) are
/// judged by that address: `::ffff:127.0.0.1` is loopback.
pub fn refusal(address: IpAddr) -> Option<AddressClass> {
    match address {
        IpAddr::V4(v4) => refusal_v4(v4),
        IpAddr::V6(v6) => match embedded_v4(v6) {
            Some(v4) => refusal_v4(v4),
            None => refusal_v6(v6),
        },
    }
}

fn in_v4(address: Ipv4Addr, network: [u8; 4], prefix: u32) -> bool {
    let mask = if prefix == 0 { 0 } else { u32::MAX << (32 - prefix) };
    u32::from(address) & mask == u32::from(Ipv4Addr::from(network)) & mask
}

fn refusal_v4(a: Ipv4Addr) -> Option<AddressClass> {
    use AddressClass::*;
    let class = if a.is_unspecified() {
        Unspecified
    } else if a.is_loopback() {
        Loopback
    } else if a.is_private() {
        Private
    } else if a.is_link_local() {
        LinkLocal
    } else if in_v4(a, [100, 64, 0, 0], 10) {
        SharedAddressSpace
    } else if a.is_multicast() {
        Multicast
    } else if a.is_broadcast() {
        Broadcast
    } else if [
        ([0, 0, 0, 0], 8),       // "this network"
        ([192, 0, 0, 0], 24),    // IETF protocol assignments
        ([192, 0, 2, 0], 24),    // TEST-NET-1
        ([198, 18, 0, 0], 15),   // benchmarking
        ([198, 51, 100, 0], 24), // TEST-NET-2
        ([203, 0, 113, 0], 24),  // TEST-NET-3
        ([240, 0, 0, 0], 4),     // reserved
    ]
    .iter()
    .any(|(network, prefix)| in_v4(a, *network, *prefix))
    {
        Reserved
    } else {
        return None;
    };
    Some(class)
}

fn in_v6(address: Ipv6Addr, network: [u16; 8], prefix: u32) -> bool {
    let mask = if prefix == 0 { 0 } else { u128::MAX << (128 - prefix) };
    u128::from(address) & mask == u128::from(Ipv6Addr::from(network)) & mask
}

/// The IPv4 address inside an IPv6 one that only carries it.
fn embedded_v4(a: Ipv6Addr) -> Option<Ipv4Addr> {
    let bits = u128::from(a);
    let low32 = Ipv4Addr::from((bits & 0xffff_ffff) as u32);
    if let Some(v4) = a.to_ipv4_mapped() {
        return Some(v4); // ::ffff:a.b.c.d
    }
    if bits >> 32 == 0 && bits > 1 {
        return Some(low32); // ::a.b.c.d (deprecated "compatible" form); ::1 and :: stay IPv6
    }
    if in_v6(a, [0x64, 0xff9b, 0, 0, 0, 0, 0, 0], 96) {
        return Some(low32); // NAT64
    }
    if in_v6(a, [0x2002, 0, 0, 0, 0, 0, 0, 0], 16) {
        return Some(Ipv4Addr::from(((bits >> 80) & 0xffff_ffff) as u32)); // 6to4
    }
    None
}

fn refusal_v6(a: Ipv6Addr) -> Option<AddressClass> {
    use AddressClass::*;
    let class = if a.is_unspecified() {
        Unspecified
    } else if a.is_loopback() {
        Loopback
    } else if in_v6(a, [0xfe80, 0, 0, 0, 0, 0, 0, 0], 10) {
        LinkLocal
    } else if in_v6(a, [0xfc00, 0, 0, 0, 0, 0, 0, 0], 7) {
        UniqueLocal
    } else if a.is_multicast() {
        Multicast
    } else if [
        ([0x0100, 0, 0, 0, 0, 0, 0, 0], 64),      // discard-only
        ([0x2001, 0x0db8, 0, 0, 0, 0, 0, 0], 32), // documentation
        ([0x2001, 0, 0, 0, 0, 0, 0, 0], 32),      // Teredo (tunnels to an address we cannot check)
        ([0x2001, 0x0002, 0, 0, 0, 0, 0, 0], 48), // benchmarking
        ([0xfec0, 0, 0, 0, 0, 0, 0, 0], 10),      // site-local (deprecated)
        ([0x3fff, 0, 0, 0, 0, 0, 0, 0], 20),      // documentation (RFC 9637)
    ]
    .iter()
    .any(|(network, prefix)| in_v6(a, *network, *prefix))
        // Outside 2000::/3, the only block IANA allocates for global unicast.
        || !in_v6(a, [0x2000, 0, 0, 0, 0, 0, 0, 0], 3)
    {
        Reserved
    } else {
        return None;
    };
    Some(class)
}

#[cfg(test)]
mod tests {
    use super::*;
    use AddressClass::*;

    fn class(text: &str) -> Option<AddressClass> {
        refusal(text.parse().unwrap())
    }

    #[test]
    fn every_non_public_ipv4_class_is_refused() {
        for (address, expected) in [
            ("0.0.0.0", Unspecified),
            ("127.0.0.1", Loopback),
            ("127.255.0.9", Loopback),
            ("10.1.2.3", Private),
            ("172.16.0.1", Private),
            ("172.31.255.254", Private),
            ("192.168.1.1", Private),
            ("169.254.169.254", LinkLocal),
            ("100.64.0.1", SharedAddressSpace),
            ("100.127.255.254", SharedAddressSpace),
            ("224.0.0.1", Multicast),
            ("255.255.255.255", Broadcast),
            ("0.1.2.3", Reserved),
            ("192.0.2.10", Reserved),
            ("198.18.0.1", Reserved),
            ("203.0.113.7", Reserved),
            ("240.0.0.1", Reserved),
        ] {
            assert_eq!(class(address), Some(expected), "{address}");
        }
    }

    #[test]
    fn public_ipv4_addresses_pass_including_the_edges_of_refused_ranges() {
        for address in
            ["8.8.8.8", "1.1.1.1", "172.15.255.255", "172.32.0.0", "100.63.255.255", "100.128.0.0", "93.184.215.14"]
        {
            assert_eq!(class(address), None, "{address}");
        }
    }

    #[test]
    fn every_non_public_ipv6_class_is_refused() {
        for (address, expected) in [
            ("::", Unspecified),
            ("::1", Loopback),
            ("fe80::1", LinkLocal),
            ("fd00:ec2::254", UniqueLocal),
            ("fc12::1", UniqueLocal),
            ("ff02::1", Multicast),
            ("2001:db8::1", Reserved),
            ("100::1", Reserved),
            ("2001::1", Reserved),
            ("fec0::1", Reserved),
            ("4000::1", Reserved),
        ] {
            assert_eq!(class(address), Some(expected), "{address}");
        }
    }

    #[test]
    fn ipv6_forms_carrying_an_ipv4_address_are_judged_by_it() {
        assert_eq!(class("::ffff:127.0.0.1"), Some(Loopback));
        assert_eq!(class("::ffff:169.254.169.254"), Some(LinkLocal));
        assert_eq!(class("::10.0.0.1"), Some(Private));
        assert_eq!(class("64:ff9b::192.168.0.1"), Some(Private));
        assert_eq!(class("2002:c0a8:0101::1"), Some(Private)); // 6to4 of 192.168.1.1
        assert_eq!(class("::ffff:8.8.8.8"), None);
        assert_eq!(class("64:ff9b::8.8.8.8"), None);
    }

    #[test]
    fn public_ipv6_addresses_pass() {
        for address in ["2606:4700:4700::1111", "2a00:1450:4001:80b::200e", "2600:1f18::1"] {
            assert_eq!(class(address), None, "{address}");
        }
    }
}
