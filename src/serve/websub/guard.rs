//! Which addresses the built-in hub may contact. A subscriber names the callback, so a
//! callback is a request herald makes on someone's behalf: without this guard it could be
//! pointed at the machine itself or its private network (SSRF). Names are resolved once,
//! here, and the connection goes to an address that was checked (no second lookup that DNS
//! rebinding could answer differently).

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;

/// Whether herald may deliver to `ip` when private callbacks are not allowed: a public
/// unicast address, not loopback, private, link-local, unique-local, shared (CGN),
/// multicast, broadcast, documentation or unspecified.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_multicast()
                || v4.is_broadcast()
                || v4.is_documentation()
                || v4.is_unspecified()
                || o[0] == 0
                // 100.64.0.0/10, carrier-grade NAT; 192.0.0.0/24, IETF protocol assignments;
                // 198.18.0.0/15, benchmarking; 240.0.0.0/4, reserved.
                || (o[0] == 100 && (o[1] & 0xc0) == 64)
                || (o[0] == 192 && o[1] == 0 && o[2] == 0)
                || (o[0] == 198 && (o[1] & 0xfe) == 18)
                || o[0] >= 240)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let s = v6.segments();
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00 // unique local
                || (s[0] & 0xffc0) == 0xfe80 // link local
                || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
                || (s[0] == 0x0064 && s[1] == 0xff9b)) // NAT64 (reaches IPv4 inside)
        }
    }
}

/// Why an address was refused, for the 4xx and the log.
pub fn refused(ip: IpAddr) -> String {
    format!("callback address {ip} is loopback, private or otherwise not public (set websub.allow_private_callbacks to allow it)")
}

/// reqwest's resolver for the hub's client: the system's answer, with every address the
/// guard refuses taken out (none left: an error, and nothing is contacted).
pub struct GuardedResolver {
    pub allow_private: bool,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow_private = self.allow_private;
        let host = name.as_str().to_string();
        Box::pin(async move {
            let addrs = resolve(&host, allow_private).await?;
            let addrs: reqwest::dns::Addrs = Box::new(addrs.into_iter());
            Ok(addrs)
        }) as Pin<Box<dyn Future<Output = _> + Send>>
    }
}

/// The addresses of `host` that may be contacted.
pub async fn resolve(
    host: &str,
    allow_private: bool,
) -> Result<Vec<SocketAddr>, Box<dyn std::error::Error + Send + Sync>> {
    let found: Vec<SocketAddr> = tokio::net::lookup_host((host, 0)).await?.collect();
    if found.is_empty() {
        return Err(format!("{host} has no address").into());
    }
    let allowed: Vec<SocketAddr> = found
        .iter()
        .copied()
        .filter(|a| allow_private || is_public(a.ip()))
        .collect();
    match allowed.is_empty() {
        true => Err(refused(found[0].ip()).into()),
        false => Ok(allowed),
    }
}

/// Checks a callback URL's host now (a literal address, or every address its name has), so
/// a refused one gets its 4xx before anything is stored or contacted.
pub async fn check_callback(url: &url::Url, allow_private: bool) -> Result<(), String> {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => check_ip(IpAddr::V4(ip), allow_private),
        Some(url::Host::Ipv6(ip)) => check_ip(IpAddr::V6(ip), allow_private),
        Some(url::Host::Domain(name)) => {
            let lookup = resolve(name, allow_private);
            match tokio::time::timeout(std::time::Duration::from_secs(5), lookup).await {
                Ok(Ok(_)) => Ok(()),
                Ok(Err(e)) => Err(format!("callback host {name}: {e}")),
                Err(_) => Err(format!("callback host {name}: no answer from DNS in 5 s")),
            }
        }
        None => Err("callback has no host".into()),
    }
}

/// A callback whose host is a literal address the guard refuses (names are checked when
/// they are resolved, by [`GuardedResolver`]): for subscriptions kept from before the
/// setting changed.
pub fn literal_refused(url: &str, allow_private: bool) -> bool {
    let Ok(url) = url::Url::parse(url) else {
        return true;
    };
    match url.host() {
        Some(url::Host::Ipv4(ip)) => check_ip(IpAddr::V4(ip), allow_private).is_err(),
        Some(url::Host::Ipv6(ip)) => check_ip(IpAddr::V6(ip), allow_private).is_err(),
        _ => false,
    }
}

fn check_ip(ip: IpAddr, allow_private: bool) -> Result<(), String> {
    if allow_private || is_public(ip) {
        Ok(())
    } else {
        Err(refused(ip))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_unicast_addresses_are_public() {
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "0.1.2.3",
            "224.0.0.1",
            "255.255.255.255",
            "198.18.0.1",
            "192.0.0.8",
            "::1",
            "::",
            "fc00::1",
            "fd12::1",
            "fe80::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "64:ff9b::a00:1",
            "2001:db8::1",
        ] {
            assert!(!is_public(ip.parse().unwrap()), "{ip} is not public");
        }
        for ip in [
            "93.184.216.34",
            "8.8.8.8",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            assert!(is_public(ip.parse().unwrap()), "{ip} is public");
        }
    }
}
