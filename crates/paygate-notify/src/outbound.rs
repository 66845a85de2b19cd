//! Outbound safety: notification URLs may not reach private, loopback, link-local or otherwise
//! internal addresses (unless the operator allows it, `PAYGATE_OUTBOUND_ALLOW_PRIVATE`), checked
//! when an endpoint is saved and again on every delivery, at connect time, by the HTTP client's
//! resolver (DNS can change between the two). Redirects are never followed, and the proxy
//! variables of the environment (`HTTP_PROXY`, `HTTPS_PROXY`, `ALL_PROXY`) are ignored: a proxy
//! would connect wherever it is told, past every check here.
//!
//! IPv6 addresses that carry an IPv4 address are judged by the IPv4 address they reach:
//! IPv4-mapped (`::ffff:a.b.c.d`), 6to4 (`2002::/16`, relayed to the IPv4 address in bits
//! 16–47) and NAT64's well-known prefix (`64:ff9b::/96`, translated to its last 32 bits; the
//! form DNS64 gives every IPv4-only host on an IPv6-only network). The deprecated
//! IPv4-compatible form (`::a.b.c.d`), Teredo (`2001::/32`) and NAT64's local-use prefix
//! (`64:ff9b:1::/48`, whose translation the local network defines) are refused outright.

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

/// Whether `ip` is a public unicast address (see the module's policy for IPv6 forms of IPv4).
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => {
            let s = v6.segments();
            let last32 =
                Ipv4Addr::new((s[6] >> 8) as u8, s[6] as u8, (s[7] >> 8) as u8, s[7] as u8);
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public_v4(v4);
            }
            if s[..6] == [0; 6] {
                // `::`, `::1` and the IPv4-compatible `::a.b.c.d`.
                return false;
            }
            if s[0] == 0x2002 {
                // 6to4: the IPv4 address of the relay's far end.
                let v4 =
                    Ipv4Addr::new((s[1] >> 8) as u8, s[1] as u8, (s[2] >> 8) as u8, s[2] as u8);
                return is_public_v4(v4);
            }
            if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
                // NAT64, well-known prefix: translated to the last 32 bits.
                return is_public_v4(last32);
            }
            !(v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00 // unique local
                || (s[0] & 0xffc0) == 0xfe80 // link-local
                || (s[0] & 0xffc0) == 0xfec0 // site-local (deprecated)
                || (s[0] == 0x64 && s[1] == 0xff9b) // NAT64, local-use and the rest of its /32
                || (s[0] == 0x2001 && s[1] == 0) // Teredo
                || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
                || (s[0] == 0x0100 && s[1..4] == [0; 3])) // discard-only
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
        || (o[0] == 192 && o[1] == 88 && o[2] == 99) // 6to4 relay anycast (deprecated)
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
            if all.is_empty() {
                // Not resolving is not being private: say which it is.
                return Err(
                    Box::new(std::io::Error::other(format!("{host} does not resolve")))
                        as Box<dyn std::error::Error + Send + Sync>,
                );
            }
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
        .pool_max_idle_per_host(4)
        .no_proxy();
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
#[expect(clippy::unwrap_used, reason = "tests fail loudly")]
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

    /// IPv6 addresses that carry or reach an IPv4 address are judged by it: IPv4-mapped,
    /// 6to4 (`2002::/16`) and NAT64's well-known prefix (`64:ff9b::/96`); the deprecated
    /// IPv4-compatible form (`::a.b.c.d`), Teredo (`2001::/32`) and NAT64's local-use prefix
    /// (`64:ff9b:1::/48`) are refused whatever they carry.
    #[test]
    fn ipv6_forms_of_ipv4_addresses_are_judged_by_what_they_reach() {
        for s in [
            // IPv4-compatible
            "::127.0.0.1",
            "::10.0.0.1",
            "::169.254.169.254",
            "::8.8.8.8",
            // IPv4-mapped
            "::ffff:10.0.0.1",
            "::ffff:169.254.169.254",
            // 6to4 of 127.0.0.1, 10.0.0.1, 169.254.169.254, 192.168.1.1
            "2002:7f00:1::1",
            "2002:a00:1::1",
            "2002:a9fe:a9fe::1",
            "2002:c0a8:101:1::1",
            // Teredo
            "2001:0:4136:e378:8000:63bf:3fff:fdd2",
            "2001::a00:1",
            // NAT64, well-known prefix, of 127.0.0.1, 10.0.0.1, 169.254.169.254
            "64:ff9b::127.0.0.1",
            "64:ff9b::a00:1",
            "64:ff9b::a9fe:a9fe",
            // NAT64, local-use prefix
            "64:ff9b:1::8.8.8.8",
            "64:ff9b:1:a00:1::",
        ] {
            assert!(!is_public(ip(s)), "{s} should not be public");
        }
        for s in [
            "::ffff:8.8.8.8",
            "2002:808:808::1",
            "64:ff9b::8.8.8.8",
            "2001:4860:4860::8888",
        ] {
            assert!(is_public(ip(s)), "{s} should be public");
        }
    }

    const PROXY_CHILD: &str = "PAYGATE_TEST_PROXY_CHILD";

    /// `HTTP_PROXY`, `HTTPS_PROXY` and `ALL_PROXY` are ignored: with all of them naming a
    /// listener, a delivery goes straight to its URL and the listener receives nothing. reqwest
    /// reads the variables once per process, so `proxy_variables_child` runs in a child process
    /// of this test binary with them set.
    #[test]
    fn proxy_variables_are_ignored() {
        let proxy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let proxy_url = format!("http://{}", proxy.local_addr().unwrap());
        let mut cmd = std::process::Command::new(std::env::current_exe().unwrap());
        cmd.args([
            "--exact",
            "outbound::tests::proxy_variables_child",
            "--nocapture",
        ])
        .env(PROXY_CHILD, "1");
        for v in ["NO_PROXY", "no_proxy"] {
            cmd.env_remove(v);
        }
        for v in [
            "HTTP_PROXY",
            "http_proxy",
            "HTTPS_PROXY",
            "https_proxy",
            "ALL_PROXY",
            "all_proxy",
        ] {
            cmd.env(v, &proxy_url);
        }
        let out = cmd.output().unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "{text}");
        assert!(text.contains("1 passed"), "the child did not run: {text}");
        proxy.set_nonblocking(true).unwrap();
        assert!(
            proxy.accept().is_err(),
            "the proxy received a connection: {text}"
        );
    }

    /// The child of `proxy_variables_are_ignored` (passes at once when run on its own).
    #[tokio::test]
    async fn proxy_variables_child() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        if std::env::var_os(PROXY_CHILD).is_none() {
            return;
        }
        // An http receiver answering 204, and an "https" one that only counts connections.
        let http = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let http_addr = http.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut sock, _)) = http.accept().await {
                let mut buf = [0u8; 4096];
                let _ = sock.read(&mut buf).await;
                let _ = sock
                    .write_all(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n")
                    .await;
            }
        });
        let tls = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let tls_addr = tls.local_addr().unwrap();
        let reached = tokio::spawn(async move { tls.accept().await.is_ok() });
        let c = client(true, Duration::from_secs(5), Duration::from_secs(5)).unwrap();
        let r = c
            .post(format!("http://{http_addr}/hooks"))
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 204);
        let _ = c.post(format!("https://{tls_addr}/hooks")).send().await;
        let reached = tokio::time::timeout(Duration::from_secs(5), reached).await;
        assert!(matches!(reached, Ok(Ok(true))), "https went elsewhere");
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
