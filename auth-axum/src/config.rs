//! Settings of the web layer.

use std::net::IpAddr;

use auth_core::ConfigError;

/// `SameSite` attribute of the session cookie.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SameSite {
    /// Sent on top-level navigations from other sites (default; S5).
    #[default]
    Lax,
    /// Never sent from other sites.
    Strict,
}

/// A network of trusted reverse proxies, like `10.0.0.0/8` or a single address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrustedProxy {
    network: IpAddr,
    prefix: u8,
}

impl TrustedProxy {
    /// Parses `addr` or `addr/prefix`.
    ///
    /// # Errors
    /// [`ConfigError::Invalid`] for anything else.
    pub fn parse(s: &str) -> Result<Self, ConfigError> {
        let bad = || ConfigError::Invalid("trusted proxies must be IP addresses or CIDR networks");
        let (addr, prefix) = match s.trim().split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix.parse::<u8>().map_err(|_| bad())?)),
            None => (s.trim(), None),
        };
        let network: IpAddr = addr.parse().map_err(|_| bad())?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        if prefix > max {
            return Err(bad());
        }
        // `::ffff:10.0.0.0/104` is the IPv4 network 10.0.0.0/8 (S8).
        if let IpAddr::V6(v6) = network
            && let Some(v4) = v6.to_ipv4_mapped()
            && prefix >= 96
        {
            return Ok(Self {
                network: IpAddr::V4(v4),
                prefix: prefix - 96,
            });
        }
        Ok(Self { network, prefix })
    }

    /// Whether `ip` is in this network. An IPv4-mapped IPv6 address
    /// (`::ffff:10.0.0.5`, how a dual-stack listener sees an IPv4 peer) is
    /// matched as the IPv4 address it is (S8).
    #[must_use]
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                prefix_match(&net.octets(), &ip.octets(), self.prefix)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                prefix_match(&net.octets(), &ip.octets(), self.prefix)
            }
            _ => false,
        }
    }
}

fn prefix_match(net: &[u8], ip: &[u8], prefix: u8) -> bool {
    let mut bits = u32::from(prefix);
    for (n, i) in net.iter().zip(ip) {
        let take = bits.min(8);
        if take == 0 {
            return true;
        }
        let mask = 0xFF_u8 << (8 - take);
        if n & mask != i & mask {
            return false;
        }
        bits -= take;
    }
    true
}

/// Settings of the web layer, with safe defaults; [`crate::AuthState::new`]
/// checks them.
#[derive(Debug, Clone)]
pub struct WebConfig {
    /// Prefix of the REST routes (default `/api/v1`).
    pub api_prefix: String,
    /// Session cookie name; `__Host-` is prepended when the cookie is `Secure`
    /// (default `session`, so `__Host-session`).
    pub cookie_name: String,
    /// `Secure` cookies (default true). May be turned off only when the public URL
    /// is `http://localhost` or a loopback address, for development (S5).
    pub cookie_secure: bool,
    /// `SameSite` attribute (default `Lax`).
    pub same_site: SameSite,
    /// Origins allowed to make state-changing requests (S7). Empty (the default)
    /// means only the origin of the public URL.
    pub allowed_origins: Vec<String>,
    /// Peers whose `X-Forwarded-For` is believed (S8). Empty by default: the
    /// client IP is the socket's peer address.
    pub trusted_proxies: Vec<TrustedProxy>,
    /// Accept `Authorization: Bearer <session token>` and return the token in the
    /// login body, for non-browser clients (default off).
    pub bearer_tokens: bool,
    /// Largest request body, in bytes (default 16 KiB; S11).
    pub body_limit: usize,
    /// Prefix of the probes `/healthz` and `/readyz` of
    /// [`crate::AuthState::probe_routes`] (default none, so `/healthz`).
    pub probes_prefix: String,
    /// Whether empty error responses of the application's own routes get the
    /// error envelope too (default false: only the library's routes, and any
    /// handler that returns an [`crate::ApiError`]).
    pub envelope_for_all_routes: bool,
    /// The application's login page, where [`crate::RequireAuth::redirect`]
    /// sends a browser without a session (with `next=` the path it asked
    /// for). A path on this site, like `/login`; default none.
    pub login_page: Option<String>,
}

impl Default for WebConfig {
    fn default() -> Self {
        Self {
            api_prefix: "/api/v1".to_owned(),
            cookie_name: "session".to_owned(),
            cookie_secure: true,
            same_site: SameSite::Lax,
            allowed_origins: Vec::new(),
            trusted_proxies: Vec::new(),
            bearer_tokens: false,
            body_limit: 16 * 1024,
            probes_prefix: String::new(),
            envelope_for_all_routes: false,
            login_page: None,
        }
    }
}

/// Whether a public URL points at this machine (`localhost`, a name under
/// `.localhost`, or a loopback IP).
pub(crate) fn is_local_url(url: &str) -> bool {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .unwrap_or("");
    let authority = rest.split('/').next().unwrap_or("");
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => authority.rsplit_once(':').map_or(authority, |(h, _)| h),
    };
    // RFC 6761: localhost and every name under it are loopback.
    host == "localhost"
        || host.ends_with(".localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// The origin (`scheme://host[:port]`) of a URL.
pub(crate) fn origin_of(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("https", url));
    format!("{scheme}://{}", rest.split('/').next().unwrap_or(""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trusted_proxy_networks() {
        let net = TrustedProxy::parse("10.0.0.0/8").unwrap();
        assert!(net.contains("10.1.2.3".parse().unwrap()));
        assert!(!net.contains("11.0.0.1".parse().unwrap()));
        let one = TrustedProxy::parse("192.0.2.7").unwrap();
        assert!(one.contains("192.0.2.7".parse().unwrap()));
        assert!(!one.contains("192.0.2.8".parse().unwrap()));
        let v6 = TrustedProxy::parse("fd00::/8").unwrap();
        assert!(v6.contains("fd12::1".parse().unwrap()));
        assert!(!v6.contains("10.0.0.1".parse().unwrap()));
        assert!(
            TrustedProxy::parse("0.0.0.0/0")
                .unwrap()
                .contains("8.8.8.8".parse().unwrap())
        );
        // S8: IPv4-mapped IPv6 peers match IPv4 ranges, and mapped networks are IPv4.
        assert!(net.contains("::ffff:10.0.0.5".parse().unwrap()));
        assert!(!net.contains("::ffff:11.0.0.5".parse().unwrap()));
        let mapped = TrustedProxy::parse("::ffff:10.0.0.0/104").unwrap();
        assert_eq!(mapped, net);
        assert!(mapped.contains("10.200.0.1".parse().unwrap()));
        for bad in ["", "10.0.0.0/33", "nope", "10.0.0.0/x"] {
            assert!(TrustedProxy::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn local_urls_and_origins() {
        assert!(is_local_url("http://localhost:8080"));
        assert!(is_local_url("http://127.0.0.1:3000/x"));
        assert!(is_local_url("http://[::1]:3000"));
        assert!(!is_local_url("http://example.com"));
        assert!(!is_local_url("http://localhost.example.com"));
        assert!(is_local_url("http://app.localhost:8999"));
        assert_eq!(
            origin_of("https://auth.example.com/base"),
            "https://auth.example.com"
        );
        assert_eq!(origin_of("http://localhost:8080"), "http://localhost:8080");
    }
}
