//! Outbound safety: notification URLs may not reach private, loopback, link-local or otherwise
//! internal addresses (unless the operator allows it, `PAYGATE_OUTBOUND_ALLOW_PRIVATE`), checked
//! when an endpoint is saved and again on every delivery, at connect time, by the HTTP client's
//! resolver (DNS can change between the two). Redirects are never followed.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Why a URL is refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum UrlError {
    #[error("the URL is not a valid http(s) URL")]
    Invalid,
    #[error("the URL must use http or https")]
    Scheme,
    #[error("the URL must not carry a user name or password")]
    Credentials,
    #[error("the host name does not resolve")]
    Unresolvable,
    #[error("the URL points to a private, loopback or link-local address ({0})")]
    Private(IpAddr),
}

/// Whether `ip` is a public unicast address.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public_v4(v4);
            }
            let s = v6.segments();
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00 // unique local
                || (s[0] & 0xffc0) == 0xfe80 // link-local
                || (s[0] & 0xffc0) == 0xfec0 // site-local (deprecated)
                || (s[0] == 0x64 && s[1] == 0xff9b) // NAT64
                || (s[0] == 0x2001 && s[1] == 0x0db8)) // documentation
        }
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let o = ip.octets();
    !(ip.is_private()
        || ip.is_loopback()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || o[0] == 0
        || (o[0] == 100 && (o[1] & 0xc0) == 64) // carrier-grade NAT
        || (o[0] == 192 && o[1] == 0 && o[2] == 0) // IETF protocol assignments
        || (o[0] == 198 && (o[1] & 0xfe) == 18) // benchmarking
        || o[0] >= 240)
}

/// Checks a URL's form, and (unless `allow_private`) that every address its host resolves to is
/// public.
pub async fn check_url(raw: &str, allow_private: bool) -> Result<reqwest::Url, UrlError> {
    let url = reqwest::Url::parse(raw).map_err(|_| UrlError::Invalid)?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(UrlError::Scheme);
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(UrlError::Credentials);
    }
    let host = match url.host() {
        Some(h) => h.to_owned(),
        None => return Err(UrlError::Invalid),
    };
    let port = url.port_or_known_default().unwrap_or(443);
    let addrs: Vec<IpAddr> = match host {
        url::Host::Ipv4(ip) => vec![IpAddr::V4(ip)],
        url::Host::Ipv6(ip) => vec![IpAddr::V6(ip)],
        url::Host::Domain(d) => tokio::time::timeout(
            Duration::from_secs(5),
            tokio::net::lookup_host((d.as_str(), port)),
        )
        .await
        .map_err(|_| UrlError::Unresolvable)?
        .map_err(|_| UrlError::Unresolvable)?
        .map(|a| a.ip())
        .collect(),
    };
    if addrs.is_empty() {
        return Err(UrlError::Unresolvable);
    }
    if !allow_private && let Some(ip) = addrs.into_iter().find(|ip| !is_public(*ip)) {
        return Err(UrlError::Private(ip));
    }
    Ok(url)
}

/// A resolver that drops non-public addresses (and fails when none is left), so a host that
/// changed its DNS to an internal address after it was checked is still refused.
#[derive(Debug)]
struct PublicOnly;

impl Resolve for PublicOnly {
    fn resolve(&self, name: Name) -> Resolving {
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let all: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let public: Vec<SocketAddr> = all.into_iter().filter(|a| is_public(a.ip())).collect();
            if public.is_empty() {
                return Err(Box::new(std::io::Error::other(format!(
                    "{host} resolves to no public address"
                )))
                    as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(public.into_iter()) as Addrs)
        })
    }
}

/// The HTTP client of deliveries.
pub fn client(
    allow_private: bool,
    connect_timeout: Duration,
    timeout: Duration,
) -> reqwest::Result<reqwest::Client> {
    let mut b = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(connect_timeout)
        .timeout(timeout)
        .user_agent(concat!("Paygate-Webhooks/", env!("CARGO_PKG_VERSION")))
        .pool_max_idle_per_host(4);
    if !allow_private {
        b = b.dns_resolver(Arc::new(PublicOnly));
    }
    b.build()
}

/// Whether a URL's host is an IP literal that is not public (the resolver never sees those).
pub fn literal_is_private(url: &reqwest::Url) -> Option<IpAddr> {
    let ip = match url.host()? {
        url::Host::Ipv4(ip) => IpAddr::V4(ip),
        url::Host::Ipv6(ip) => IpAddr::V6(ip),
        url::Host::Domain(_) => return None,
    };
    (!is_public(ip)).then_some(ip)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
    }

    #[test]
    fn internal_addresses_are_not_public() {
        for s in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "255.255.255.255",
            "::1",
            "fe80::1",
            "fd00::1",
            "::ffff:127.0.0.1",
            "::",
        ] {
            assert!(!is_public(ip(s)), "{s} should not be public");
        }
        for s in [
            "8.8.8.8",
            "1.1.1.1",
            "2606:4700:4700::1111",
            "93.184.216.34",
        ] {
            assert!(is_public(ip(s)), "{s} should be public");
        }
    }

    #[tokio::test]
    async fn urls_to_internal_addresses_are_refused() {
        assert_eq!(
            check_url("http://127.0.0.1:9/x", false).await,
            Err(UrlError::Private(ip("127.0.0.1")))
        );
        assert_eq!(
            check_url("http://[::1]/x", false).await,
            Err(UrlError::Private(ip("::1")))
        );
        assert!(matches!(
            check_url("http://localhost:9/x", false).await,
            Err(UrlError::Private(_))
        ));
        assert_eq!(
            check_url("ftp://example.com/", false).await,
            Err(UrlError::Scheme)
        );
        assert_eq!(
            check_url("https://u:p@example.com/", false).await,
            Err(UrlError::Credentials)
        );
        assert!(check_url("http://127.0.0.1:9/x", true).await.is_ok());
    }
}
