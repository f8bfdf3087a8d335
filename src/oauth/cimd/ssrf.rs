//! The SSRF guard of document fetches (draft-ietf-oauth-client-id-metadata-document-00 §6.5, MCP
//! security best practices *SSRF*): a [`reqwest::dns::Resolve`] that filters the addresses a name
//! resolves to *before* reqwest connects, so the address checked is the address connected to and a
//! name cannot be rebound between the check and the connection.
//!
//! Refused: loopback (unless `[registration] cimd_allow_loopback`, for tests), private (RFC 1918,
//! fc00::/7), link-local (169.254/16, fe80::/10), unspecified, multicast, broadcast, CGNAT
//! (100.64/10, RFC 6598), documentation and benchmarking ranges, IETF special-purpose blocks, and
//! IPv6 forms that embed an IPv4 address (mapped, compatible, NAT64, 6to4) when that address is
//! refused. If *any* address of a name is refused the name is refused: a name with one public and
//! one private record is an attack, not a misconfiguration.
//!
//! Both halves are injectable: the upstream resolver (tests hand names to 10.0.0.1 without DNS) and
//! a [`ConnectGate`] that sees exactly the addresses handed to the connector, so a test can prove
//! that nothing refused ever reached it.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Why an address may not be fetched from; `None` = a public unicast address.
pub fn refusal(ip: IpAddr, allow_loopback: bool) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => refusal_v4(v4, allow_loopback),
        IpAddr::V6(v6) => refusal_v6(v6, allow_loopback),
    }
}

fn in_v4(ip: Ipv4Addr, net: [u8; 4], prefix: u32) -> bool {
    let mask = if prefix == 0 {
        0
    } else {
        u32::MAX << (32 - prefix)
    };
    (u32::from(ip) & mask) == (u32::from(Ipv4Addr::from(net)) & mask)
}

fn refusal_v4(ip: Ipv4Addr, allow_loopback: bool) -> Option<&'static str> {
    const TABLE: &[([u8; 4], u32, &str)] = &[
        ([0, 0, 0, 0], 8, "an unspecified (this-network) address"),
        ([10, 0, 0, 0], 8, "a private address"),
        ([100, 64, 0, 0], 10, "a shared (CGNAT) address"),
        ([169, 254, 0, 0], 16, "a link-local address"),
        ([172, 16, 0, 0], 12, "a private address"),
        ([192, 0, 0, 0], 24, "an IETF special-purpose address"),
        ([192, 0, 2, 0], 24, "a documentation address"),
        ([192, 88, 99, 0], 24, "a 6to4 relay address"),
        ([192, 168, 0, 0], 16, "a private address"),
        ([198, 18, 0, 0], 15, "a benchmarking address"),
        ([198, 51, 100, 0], 24, "a documentation address"),
        ([203, 0, 113, 0], 24, "a documentation address"),
        ([224, 0, 0, 0], 4, "a multicast address"),
        ([240, 0, 0, 0], 4, "a reserved or broadcast address"),
    ];
    if ip.is_loopback() {
        return (!allow_loopback).then_some("a loopback address");
    }
    TABLE
        .iter()
        .find(|(net, prefix, _)| in_v4(ip, *net, *prefix))
        .map(|(_, _, why)| *why)
}

fn refusal_v6(ip: Ipv6Addr, allow_loopback: bool) -> Option<&'static str> {
    let seg = ip.segments();
    if ip.is_loopback() {
        return (!allow_loopback).then_some("a loopback address");
    }
    if ip.is_unspecified() {
        return Some("an unspecified address");
    }
    // ::ffff:a.b.c.d (mapped) and ::a.b.c.d (deprecated compatible): judge the IPv4 address.
    if let Some(v4) = ip.to_ipv4_mapped() {
        return refusal_v4(v4, allow_loopback);
    }
    if seg[..6].iter().all(|s| *s == 0) {
        return refusal_v4(embedded_v4(seg[6], seg[7]), allow_loopback)
            .or(Some("an IPv4-compatible address"));
    }
    // 64:ff9b::/96 (NAT64, RFC 6052) embeds the IPv4 target in its last 32 bits.
    if seg[0] == 0x64 && seg[1] == 0xff9b && seg[2..6].iter().all(|s| *s == 0) {
        return refusal_v4(embedded_v4(seg[6], seg[7]), allow_loopback);
    }
    // 2002::/16 (6to4) embeds an IPv4 address in bits 16..48.
    if seg[0] == 0x2002 {
        return refusal_v4(embedded_v4(seg[1], seg[2]), allow_loopback);
    }
    let first = seg[0];
    if first & 0xfe00 == 0xfc00 {
        return Some("a unique local (private) address");
    }
    if first & 0xffc0 == 0xfe80 {
        return Some("a link-local address");
    }
    if first & 0xffc0 == 0xfec0 {
        return Some("a site-local address");
    }
    if first & 0xff00 == 0xff00 {
        return Some("a multicast address");
    }
    if first == 0x2001 && seg[1] == 0x0db8 || first & 0xfff0 == 0x3ff0 {
        return Some("a documentation address");
    }
    if first == 0x2001 && seg[1] < 0x0200 {
        return Some("an IETF special-purpose address (Teredo, ORCHID, benchmarking)");
    }
    if first == 0x0064 && seg[1] == 0xff9b {
        return Some("a local-use NAT64 address");
    }
    if first == 0x0100 && seg[1..4].iter().all(|s| *s == 0) {
        return Some("a discard-only address");
    }
    // Only global unicast (2000::/3) is left as public.
    if first & 0xe000 != 0x2000 {
        return Some("a reserved address");
    }
    None
}

fn embedded_v4(hi: u16, lo: u16) -> Ipv4Addr {
    Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo))
}

/// The error a refused name resolves to; found again in reqwest's error chain by
/// [`find_refusal`].
#[derive(Debug, Clone, thiserror::Error)]
#[error("{host} resolves to {why} ({addr}); documents are fetched from public addresses only")]
pub struct AddressRefused {
    pub host: String,
    pub addr: IpAddr,
    pub why: &'static str,
}

/// The refusal somewhere in an error's source chain.
pub fn find_refusal(err: &(dyn std::error::Error + 'static)) -> Option<AddressRefused> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = cur {
        if let Some(r) = e.downcast_ref::<AddressRefused>() {
            return Some(r.clone());
        }
        cur = e.source();
    }
    None
}

/// Sees the addresses handed to the connector, after the guard. Production has none; a test uses it
/// to prove that a refused address never reached a socket, and may itself refuse.
pub trait ConnectGate: Send + Sync {
    fn before_connect(&self, host: &str, addrs: &[SocketAddr]) -> Result<(), String>;
}

/// The system resolver (getaddrinfo on tokio's blocking pool).
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemResolver;

impl Resolve for SystemResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_string();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

/// The filtering resolver reqwest is built with.
#[derive(Clone)]
pub struct GuardedResolver {
    pub upstream: Arc<dyn Resolve>,
    pub allow_loopback: bool,
    pub gate: Option<Arc<dyn ConnectGate>>,
}

impl GuardedResolver {
    /// The addresses that may be connected to, or the refusal.
    pub fn screen(
        host: &str,
        addrs: Vec<SocketAddr>,
        allow_loopback: bool,
    ) -> Result<Vec<SocketAddr>, AddressRefused> {
        for a in &addrs {
            if let Some(why) = refusal(a.ip(), allow_loopback) {
                return Err(AddressRefused {
                    host: host.to_string(),
                    addr: a.ip(),
                    why,
                });
            }
        }
        Ok(addrs)
    }
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_string();
        let upstream = self.upstream.resolve(name);
        let allow_loopback = self.allow_loopback;
        let gate = self.gate.clone();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = upstream.await?.collect();
            let addrs = Self::screen(&host, addrs, allow_loopback)?;
            if let Some(gate) = gate {
                gate.before_connect(&host, &addrs)?;
            }
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(s: &str) -> bool {
        refusal(s.parse().unwrap(), false).is_some()
    }

    #[test]
    fn special_addresses_are_refused() {
        for a in [
            "127.0.0.1",
            "127.9.9.9",
            "10.0.0.1",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "100.127.255.255",
            "0.0.0.0",
            "0.1.2.3",
            "192.0.2.1",
            "198.51.100.7",
            "203.0.113.9",
            "198.18.0.1",
            "224.0.0.1",
            "239.255.255.250",
            "255.255.255.255",
            "240.0.0.1",
            "::1",
            "::",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "::ffff:169.254.169.254",
            "::10.0.0.1",
            "64:ff9b::a00:1",
            "2002:a00:1::1",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "fec0::1",
            "ff02::1",
            "2001:db8::1",
            "2001::1",
            "100::1",
        ] {
            assert!(refused(a), "{a} must be refused");
        }
    }

    #[test]
    fn public_addresses_pass() {
        for a in [
            "8.8.8.8",
            "1.1.1.1",
            "172.32.0.1",
            "100.128.0.1",
            "192.169.0.1",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:808:808::1",
            // Global unicast whose second group happens to be NAT64's, documentation's or below
            // 0x200: not NAT64, documentation or IETF special-purpose (those are 2001:… only).
            "2a00:ff9b::a00:1",
            "2a02:db8::1",
            "2a01:111::1",
            // Just past the IETF protocol assignments (2001::/23).
            "2001:200::1",
        ] {
            assert!(!refused(a), "{a} is public");
        }
    }

    /// An address embedding IPv4 is judged by the IPv4 address, and the reason says so.
    #[test]
    fn embedded_ipv4_is_judged_as_ipv4() {
        let why = |a: &str| refusal(a.parse().unwrap(), false);
        assert_eq!(why("::10.0.0.1"), why("10.0.0.1"));
        assert_eq!(why("::ffff:169.254.169.254"), why("169.254.169.254"));
        assert_eq!(why("64:ff9b::a00:1"), why("10.0.0.1"));
        assert_eq!(why("::8.8.8.8"), Some("an IPv4-compatible address"));
    }

    /// The reason names the range, so an operator reading the refusal knows what was hit (every
    /// one of these is outside 2000::/3 and would be refused anyway, as "reserved").
    #[test]
    fn ipv6_refusals_name_their_range() {
        let why = |a: &str| refusal(a.parse().unwrap(), false);
        for (a, reason) in [
            ("fc00::1", "a unique local (private) address"),
            ("fdff:ffff::1", "a unique local (private) address"),
            ("fe80::1", "a link-local address"),
            ("febf::1", "a link-local address"),
            ("fec0::1", "a site-local address"),
            ("ff02::1", "a multicast address"),
            ("3fff::1", "a documentation address"),
            ("100::1", "a discard-only address"),
            ("64:ff9b:1::1", "a local-use NAT64 address"),
            (
                "2001:1ff::1",
                "an IETF special-purpose address (Teredo, ORCHID, benchmarking)",
            ),
            ("4000::1", "a reserved address"),
        ] {
            assert_eq!(why(a), Some(reason), "{a}");
        }
    }

    #[test]
    fn loopback_only_with_the_test_switch() {
        for a in ["127.0.0.1", "::1", "::ffff:127.0.0.1"] {
            assert!(refusal(a.parse().unwrap(), true).is_none(), "{a}");
        }
        assert!(refusal("10.0.0.1".parse().unwrap(), true).is_some());
    }

    #[test]
    fn one_bad_address_refuses_the_name() {
        let addrs = vec![
            "8.8.8.8:443".parse().unwrap(),
            "10.0.0.1:443".parse().unwrap(),
        ];
        let err = GuardedResolver::screen("mixed.example", addrs, false).unwrap_err();
        assert_eq!(err.addr, "10.0.0.1".parse::<IpAddr>().unwrap());
    }
}
