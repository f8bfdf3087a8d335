//! The client's network address, for per-address limits and logs.
//!
//! The address is the TCP peer's. `X-Forwarded-For` (the de-facto header that RFC 7239 §1
//! describes) is believed only when the peer is one of `[server] trusted_proxies`: anybody can send
//! the header, so believing it from anyone would let a client pick its own address and walk around
//! every per-address limit (OWASP *Authentication Cheat Sheet*, "Login Throttling"; OWASP API
//! Security Top 10 2023 API4 *Unrestricted Resource Consumption*). Behind trusted proxies, the
//! client is the right-most address of the header that is not a trusted proxy: each proxy appends
//! the address it saw, so everything left of the first untrusted hop was written by the client
//! itself and proves nothing.
//!
//! The peer address reaches handlers as axum's [`ConnectInfo<SocketAddr>`], which [`crate::app::run`]
//! (or `into_make_service_with_connect_info::<SocketAddr>()`) inserts. A router driven without it
//! (`tower::ServiceExt::oneshot` in unit tests, or an embedder's own server) has no peer: every
//! such request then counts as coming from the unspecified address `0.0.0.0`, one shared bucket, and
//! `X-Forwarded-For` is ignored, because nothing vouches for it.

use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::HeaderMap;
use axum::http::request::Parts;
use ipnet::IpNet;

use crate::state::AppState;

/// The client's address as the server decided to believe it (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClientAddr(pub IpAddr);

/// The address used when the request carries no peer address.
pub const UNKNOWN_PEER: IpAddr = IpAddr::V4(Ipv4Addr::UNSPECIFIED);

impl FromRequestParts<AppState> for ClientAddr {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Infallible> {
        Ok(Self::of(parts, &state.trusted_proxies))
    }
}

impl ClientAddr {
    /// The client address of a request, given the trusted proxies.
    pub fn of(parts: &Parts, proxies: &TrustedProxies) -> Self {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip());
        match peer {
            Some(peer) => Self(client_address(peer, &parts.headers, proxies)),
            None => Self(UNKNOWN_PEER),
        }
    }
}

/// The networks whose `X-Forwarded-For` is believed (`[server] trusted_proxies`).
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Vec<IpNet>);

impl TrustedProxies {
    /// Parses IP addresses (`10.0.0.1`, `::1`) and CIDR networks (`10.0.0.0/8`, `fd00::/8`).
    pub fn parse(entries: &[String]) -> Result<Self, String> {
        entries
            .iter()
            .map(|e| {
                let e = e.trim();
                e.parse::<IpNet>()
                    .or_else(|_| e.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| {
                        format!("{e:?} is neither an IP address nor a CIDR network like 10.0.0.0/8")
                    })
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Self)
    }

    /// True when `ip` is one of the trusted proxies.
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.0.iter().any(|net| net.contains(&ip))
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// The client address for a connection from `peer` carrying `headers`.
pub fn client_address(peer: IpAddr, headers: &HeaderMap, proxies: &TrustedProxies) -> IpAddr {
    // An IPv4 client on a dual-stack socket shows up as ::ffff:a.b.c.d; count it as a.b.c.d.
    let mut client = peer.to_canonical();
    if !proxies.contains(client) {
        return client;
    }
    // Several header lines form one list, in order (RFC 9110 §5.3). Walk it from the right: every
    // trusted hop vouches for the hop before it; the first untrusted one is the client.
    let hops: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect();
    for hop in hops.iter().rev() {
        let Some(ip) = parse_hop(hop) else {
            // A trusted proxy passed on something unreadable: the last hop we could read is as
            // far as the chain can be followed.
            break;
        };
        client = ip;
        if !proxies.contains(ip) {
            break;
        }
    }
    client
}

/// One `X-Forwarded-For` entry: an address, optionally with a port (`1.2.3.4:5`, `[::1]:5`).
fn parse_hop(hop: &str) -> Option<IpAddr> {
    hop.parse::<IpAddr>()
        .or_else(|_| hop.parse::<SocketAddr>().map(|s| s.ip()))
        .ok()
        .map(|ip| ip.to_canonical())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::{HeaderValue, Request};

    fn proxies(list: &[&str]) -> TrustedProxies {
        TrustedProxies::parse(&list.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    fn xff(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append("x-forwarded-for", HeaderValue::from_str(v).unwrap());
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn the_header_is_ignored_from_an_untrusted_peer() {
        let h = xff(&["1.1.1.1"]);
        assert_eq!(
            client_address(ip("203.0.113.9"), &h, &proxies(&[])),
            ip("203.0.113.9")
        );
        assert_eq!(
            client_address(ip("203.0.113.9"), &h, &proxies(&["10.0.0.0/8"])),
            ip("203.0.113.9")
        );
    }

    #[test]
    fn the_right_most_untrusted_hop_is_the_client() {
        let p = proxies(&["10.0.0.0/8", "192.0.2.7"]);
        // The client forged "6.6.6.6"; the proxy appended the address it saw.
        let h = xff(&["6.6.6.6, 198.51.100.4"]);
        assert_eq!(client_address(ip("10.1.2.3"), &h, &p), ip("198.51.100.4"));
        // Two trusted proxies in a row, split over two header lines.
        let h = xff(&["6.6.6.6, 198.51.100.4", "192.0.2.7"]);
        assert_eq!(client_address(ip("10.1.2.3"), &h, &p), ip("198.51.100.4"));
        // Ports and IPv6 brackets are tolerated.
        let h = xff(&["[2001:db8::1]:443"]);
        assert_eq!(client_address(ip("10.1.2.3"), &h, &p), ip("2001:db8::1"));
        let h = xff(&["198.51.100.4:5555"]);
        assert_eq!(client_address(ip("10.1.2.3"), &h, &p), ip("198.51.100.4"));
    }

    #[test]
    fn a_trusted_peer_without_a_usable_header_is_the_client() {
        let p = proxies(&["10.0.0.0/8"]);
        assert_eq!(
            client_address(ip("10.1.2.3"), &HeaderMap::new(), &p),
            ip("10.1.2.3")
        );
        // Garbage next to the proxy: stop at the proxy.
        let h = xff(&["198.51.100.4, garbage"]);
        assert_eq!(client_address(ip("10.1.2.3"), &h, &p), ip("10.1.2.3"));
        // Garbage further left: stop at the last readable hop.
        let h = xff(&["garbage, 10.9.9.9, 198.51.100.4"]);
        assert_eq!(client_address(ip("10.1.2.3"), &h, &p), ip("198.51.100.4"));
        // Only trusted hops: the left-most one.
        let h = xff(&["10.9.9.9, 10.8.8.8"]);
        assert_eq!(client_address(ip("10.1.2.3"), &h, &p), ip("10.9.9.9"));
    }

    #[test]
    fn mapped_ipv4_counts_as_ipv4() {
        let p = proxies(&["127.0.0.1"]);
        let h = xff(&["::ffff:198.51.100.4"]);
        assert_eq!(
            client_address(ip("::ffff:127.0.0.1"), &h, &p),
            ip("198.51.100.4")
        );
        assert_eq!(
            client_address(ip("::ffff:203.0.113.1"), &HeaderMap::new(), &p),
            ip("203.0.113.1")
        );
    }

    #[test]
    fn parsing_names_the_bad_entry() {
        assert!(TrustedProxies::parse(&["10.0.0.0/8".into(), "::1".into()]).is_ok());
        let err = TrustedProxies::parse(&["10.0.0.0/33".into()]).unwrap_err();
        assert!(err.contains("10.0.0.0/33"), "{err}");
        assert!(TrustedProxies::parse(&["proxy.example".into()]).is_err());
        assert!(proxies(&[]).is_empty());
        assert!(!proxies(&["::1"]).is_empty());
        assert!(proxies(&["10.0.0.0/8"]).contains(ip("10.200.0.1")));
        assert!(!proxies(&["10.0.0.0/8"]).contains(ip("11.0.0.1")));
    }

    #[test]
    fn without_connect_info_the_peer_is_unknown_and_the_header_ignored() {
        let p = proxies(&["0.0.0.0/0"]);
        let (mut parts, ()) = Request::builder()
            .header("x-forwarded-for", "1.2.3.4")
            .body(())
            .unwrap()
            .into_parts();
        assert_eq!(ClientAddr::of(&parts, &p), ClientAddr(UNKNOWN_PEER));
        parts
            .extensions
            .insert(ConnectInfo(SocketAddr::from(([10, 0, 0, 1], 4000))));
        assert_eq!(ClientAddr::of(&parts, &p), ClientAddr(ip("1.2.3.4")));
        assert_eq!(
            ClientAddr::of(&parts, &proxies(&[])),
            ClientAddr(ip("10.0.0.1"))
        );
    }
}
