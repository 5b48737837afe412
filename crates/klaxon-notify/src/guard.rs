//! Outbound requests go to public addresses only, unless `notify.allow_private_targets` says
//! otherwise: a bot URL in an escalation rule is tenant input and must not reach services on
//! Klaxon's own host or network (loopback, private ranges, link-local including the cloud
//! metadata address, carrier-grade NAT, multicast, unspecified, documentation ranges).
//!
//! Two checks: a URL whose host is an IP literal is refused before any request, and every
//! name the HTTP client resolves goes through [`GuardedResolver`], which drops non-public
//! addresses (so a name that resolves to 127.0.0.1 cannot get past, and neither can a
//! redirect, which the client does not follow anyway).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// True for an address on the public internet.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public_v4(v4);
            }
            let seg0 = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (seg0 & 0xfe00) == 0xfc00 // unique local fc00::/7
                || (seg0 & 0xffc0) == 0xfe80 // link-local fe80::/10
                || seg0 == 0x2001 && v6.segments()[1] == 0x0db8 // documentation
                || v6.segments()[..6] == [0, 0, 0, 0, 0, 0]) // IPv4-compatible (deprecated)
        }
    }
}

fn is_public_v4(v4: Ipv4Addr) -> bool {
    let o = v4.octets();
    !(v4.is_loopback()
        || v4.is_private()
        || v4.is_link_local()
        || v4.is_unspecified()
        || v4.is_broadcast()
        || v4.is_multicast()
        || v4.is_documentation()
        || o[0] == 0
        || (o[0] == 100 && (o[1] & 0xc0) == 64) // 100.64.0.0/10 carrier-grade NAT
        || (o[0] == 192 && o[1] == 0 && o[2] == 0) // 192.0.0.0/24 protocol assignments
        || (o[0] == 198 && (o[1] & 0xfe) == 18) // 198.18.0.0/15 benchmarking
        || o[0] >= 240) // reserved
}

/// Checks a URL before a request: an http(s) URL whose host, if an IP literal, is public
/// (or private targets are allowed). The message says what is wrong.
pub fn check_url(url: &reqwest::Url, allow_private: bool) -> Result<(), String> {
    if url.scheme() != "https" && url.scheme() != "http" {
        return Err(format!("unsupported URL scheme {}", url.scheme()));
    }
    let host = match url.host() {
        Some(h) => h,
        None => return Err("the URL has no host".into()),
    };
    if allow_private {
        return Ok(());
    }
    let ip = match host {
        url::Host::Ipv4(v4) => Some(IpAddr::V4(v4)),
        url::Host::Ipv6(v6) => Some(IpAddr::V6(v6)),
        url::Host::Domain(d) if d.eq_ignore_ascii_case("localhost") => {
            Some(IpAddr::V6(Ipv6Addr::LOCALHOST))
        }
        url::Host::Domain(_) => None,
    };
    match ip {
        Some(ip) if !is_public(ip) => Err(format!("target address {ip} is not public")),
        _ => Ok(()),
    }
}

/// The HTTP client's resolver: the system's, minus non-public addresses.
#[derive(Debug, Clone, Copy)]
pub struct GuardedResolver;

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_string();
        Box::pin(async move {
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let public: Vec<SocketAddr> = found.into_iter().filter(|a| is_public(a.ip())).collect();
            if public.is_empty() {
                return Err(format!("{host} resolves to no public address").into());
            }
            let addrs: Addrs = Box::new(public.into_iter());
            Ok(addrs)
        })
    }
}

/// The resolver to install, if any.
pub fn resolver(allow_private: bool) -> Option<Arc<GuardedResolver>> {
    (!allow_private).then_some(Arc::new(GuardedResolver))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_and_special_addresses_are_not_public() {
        // spec: issue 7 item 6 (outbound requests refuse loopback and private addresses)
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
        ] {
            assert!(!is_public(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["8.8.8.8", "1.1.1.1", "2606:4700::1111", "::ffff:8.8.8.8"] {
            assert!(is_public(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn urls_with_private_literals_are_refused_unless_allowed() {
        let url = |s: &str| reqwest::Url::parse(s).unwrap();
        assert!(check_url(&url("http://127.0.0.1:8080/hook"), false).is_err());
        assert!(check_url(&url("http://[::1]/hook"), false).is_err());
        assert!(check_url(&url("http://localhost/hook"), false).is_err());
        assert!(check_url(&url("https://10.0.0.5/x"), false).is_err());
        assert!(check_url(&url("https://hooks.example.com/x"), false).is_ok());
        assert!(check_url(&url("http://127.0.0.1:8080/hook"), true).is_ok());
        assert!(check_url(&url("ftp://example.com/x"), true).is_err());
    }

    #[tokio::test]
    async fn the_resolver_drops_loopback_names() {
        let r = GuardedResolver;
        let name: Name = "localhost".parse().unwrap();
        assert!(r.resolve(name).await.is_err());
    }
}
