//! The client address of a request, behind proxies Paygate is told to trust.
//!
//! Policy: the address is the TCP peer's, unless the peer is in `PAYGATE_TRUSTED_PROXIES`
//! ([`TrustedProxies`], default: none). Only then are the forwarding headers read: every
//! `X-Forwarded-For` (or, when there is none, every `Forwarded: for=`), walked from the right,
//! skipping hops that are themselves trusted proxies; the first one that is not is the client.
//! Everything to the left of it was written by the client and is never believed. A hop that is
//! not an address (`unknown`, an obfuscated `_name`, garbage) stops the walk: the client is then
//! the last trusted hop, so a broken proxy chain can only make clients share an address, never
//! let one choose its own. The trusted proxies are found in the app's data
//! (`web::Data<TrustedProxies>`); without them the peer is the client.

use std::net::{IpAddr, Ipv6Addr};
use std::str::FromStr;

use actix_web::http::header::HeaderMap;
use actix_web::{HttpRequest, web};

/// One network, `addr/prefix`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Cidr {
    net: IpAddr,
    prefix: u8,
}

impl Cidr {
    fn contains(&self, ip: IpAddr) -> bool {
        match (self.net, canonical(ip)) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => prefix_eq(
                u128::from(u32::from(net)),
                u128::from(u32::from(ip)),
                32,
                self.prefix,
            ),
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                prefix_eq(u128::from(net), u128::from(ip), 128, self.prefix)
            }
            _ => false,
        }
    }
}

/// Whether the first `prefix` of `bits` bits of `a` and `b` agree.
fn prefix_eq(a: u128, b: u128, bits: u8, prefix: u8) -> bool {
    if prefix == 0 {
        return true;
    }
    let shift = u32::from(bits - prefix);
    (a >> shift) == (b >> shift)
}

/// An IPv4-mapped IPv6 address (`::ffff:192.0.2.1`, as dual-stack sockets report IPv4 peers)
/// as the IPv4 address it is.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    }
}

impl FromStr for Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let net = addr
            .parse::<IpAddr>()
            .map_err(|_| format!("{s:?} is not an address or a CIDR like 10.0.0.0/8"))?;
        let max = if net.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("{s:?}: the prefix length must be 0 to {max}"))?,
            None => max,
        };
        // Addresses are compared in their canonical form: an IPv4-mapped network is IPv4.
        Ok(match (canonical(net), net) {
            (IpAddr::V4(v4), IpAddr::V6(_)) if prefix >= 96 => Cidr {
                net: IpAddr::V4(v4),
                prefix: prefix - 96,
            },
            _ => Cidr { net, prefix },
        })
    }
}

/// The proxies whose forwarding headers are believed (`PAYGATE_TRUSTED_PROXIES`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrustedProxies {
    nets: Vec<Cidr>,
}

impl TrustedProxies {
    /// Parses a comma-separated list of CIDRs or single addresses (`10.0.0.0/8, 192.0.2.7`);
    /// empty: none.
    pub fn parse(list: &str) -> Result<Self, String> {
        let nets = list
            .split(',')
            .filter(|s| !s.trim().is_empty())
            .map(Cidr::from_str)
            .collect::<Result<_, _>>()?;
        Ok(Self { nets })
    }

    /// Whether no proxy is trusted (the peer is always the client).
    pub fn is_empty(&self) -> bool {
        self.nets.is_empty()
    }

    /// Whether `ip` is a trusted proxy.
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.nets.iter().any(|n| n.contains(ip))
    }

    /// The client address of a request from `peer` carrying `headers` (see the module's policy).
    pub fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let peer = canonical(peer);
        if !self.contains(peer) {
            return peer;
        }
        let xff: Vec<&str> = headers
            .get_all("x-forwarded-for")
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .collect();
        let hops: Vec<Option<IpAddr>> = if xff.is_empty() {
            headers
                .get_all("forwarded")
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .filter_map(forwarded_for)
                .map(parse_hop)
                .collect()
        } else {
            xff.into_iter().map(parse_hop).collect()
        };
        let mut client = peer;
        for hop in hops.into_iter().rev() {
            match hop {
                Some(ip) if self.contains(ip) => client = ip,
                Some(ip) => return ip,
                None => return client,
            }
        }
        client
    }
}

/// The `for=` value of one element of a `Forwarded` header (RFC 7239), if it has one.
fn forwarded_for(element: &str) -> Option<&str> {
    element.split(';').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        k.trim().eq_ignore_ascii_case("for").then(|| v.trim())
    })
}

/// One hop: `192.0.2.1`, `192.0.2.1:4711`, `2001:db8::1`, `[2001:db8::1]:4711`, quoted or not;
/// `None` for anything else.
fn parse_hop(raw: &str) -> Option<IpAddr> {
    let s = raw.trim().trim_matches('"');
    if let Ok(ip) = s.parse::<IpAddr>() {
        return Some(canonical(ip));
    }
    if let Some(rest) = s.strip_prefix('[') {
        let inner = rest.split(']').next()?;
        return inner
            .parse::<Ipv6Addr>()
            .ok()
            .map(|ip| canonical(ip.into()));
    }
    let (host, port) = s.rsplit_once(':')?;
    port.parse::<u16>().ok()?;
    host.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4)
}

/// The client address of `req` under the app's [`TrustedProxies`] (none registered: the peer).
pub fn client_ip(req: &HttpRequest) -> Option<IpAddr> {
    let peer = req.peer_addr()?.ip();
    Some(match req.app_data::<web::Data<TrustedProxies>>() {
        Some(t) => t.client(peer, req.headers()),
        None => canonical(peer),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::{HeaderName, HeaderValue};

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap_or_else(|_| panic!("{s}"))
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(HeaderName::from_static(k), HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn lists_parse_and_bad_entries_are_named() {
        let t = TrustedProxies::parse(" 10.0.0.0/8, 192.0.2.7 ,2001:db8::/32,").expect("parses");
        assert!(t.contains(ip("10.200.3.4")));
        assert!(t.contains(ip("192.0.2.7")));
        assert!(!t.contains(ip("192.0.2.8")));
        assert!(t.contains(ip("2001:db8:1::9")));
        assert!(t.contains(ip("::ffff:10.1.1.1")));
        assert!(!t.contains(ip("11.0.0.1")));
        assert!(TrustedProxies::parse("").expect("empty").is_empty());
        assert!(
            TrustedProxies::parse("0.0.0.0/0")
                .expect("all")
                .contains(ip("8.8.8.8"))
        );
        for bad in ["10.0.0.0/33", "2001:db8::/129", "proxy.local", "10.0.0.0/x"] {
            let e = TrustedProxies::parse(bad).expect_err(bad);
            assert!(e.contains(bad.split('/').next().unwrap_or(bad)), "{e}");
        }
    }

    #[test]
    fn headers_of_an_untrusted_peer_are_ignored() {
        let t = TrustedProxies::parse("10.0.0.1").expect("parses");
        let h = headers(&[
            ("x-forwarded-for", "198.51.100.1"),
            ("forwarded", "for=198.51.100.2"),
        ]);
        assert_eq!(t.client(ip("203.0.113.9"), &h), ip("203.0.113.9"));
        assert_eq!(
            TrustedProxies::default().client(ip("10.0.0.1"), &h),
            ip("10.0.0.1")
        );
    }

    #[test]
    fn the_rightmost_untrusted_hop_is_the_client() {
        let t = TrustedProxies::parse("10.0.0.0/8").expect("parses");
        // The client wrote the first entry itself; the proxy appended the real address.
        let h = headers(&[("x-forwarded-for", "1.2.3.4, 198.51.100.7")]);
        assert_eq!(t.client(ip("10.0.0.1"), &h), ip("198.51.100.7"));
        // Two proxies in a row: the inner one is skipped.
        let h = headers(&[
            ("x-forwarded-for", "1.2.3.4"),
            ("x-forwarded-for", "198.51.100.7, 10.0.0.5"),
        ]);
        assert_eq!(t.client(ip("10.0.0.1"), &h), ip("198.51.100.7"));
        // Only proxies: the leftmost of them.
        let h = headers(&[("x-forwarded-for", "10.9.9.9, 10.0.0.5")]);
        assert_eq!(t.client(ip("10.0.0.1"), &h), ip("10.9.9.9"));
        // Garbage stops the walk at the last trusted hop.
        let h = headers(&[("x-forwarded-for", "198.51.100.7, unknown, 10.0.0.5")]);
        assert_eq!(t.client(ip("10.0.0.1"), &h), ip("10.0.0.5"));
        // No header: the proxy itself.
        assert_eq!(t.client(ip("10.0.0.1"), &HeaderMap::new()), ip("10.0.0.1"));
        // Ports and IPv4-mapped peers.
        let h = headers(&[("x-forwarded-for", "198.51.100.7:5555")]);
        assert_eq!(t.client(ip("::ffff:10.0.0.1"), &h), ip("198.51.100.7"));
    }

    #[test]
    fn forwarded_is_read_when_there_is_no_x_forwarded_for() {
        let t = TrustedProxies::parse("10.0.0.0/8").expect("parses");
        let h = headers(&[(
            "forwarded",
            "for=1.2.3.4, For=\"[2001:db8::7]:4711\";proto=https;by=10.0.0.1",
        )]);
        assert_eq!(t.client(ip("10.0.0.1"), &h), ip("2001:db8::7"));
        let h = headers(&[
            ("forwarded", "for=_hidden"),
            ("x-forwarded-for", "198.51.100.7"),
        ]);
        assert_eq!(t.client(ip("10.0.0.1"), &h), ip("198.51.100.7"));
        let h = headers(&[("forwarded", "for=_hidden;proto=http")]);
        assert_eq!(t.client(ip("10.0.0.1"), &h), ip("10.0.0.1"));
    }
}
