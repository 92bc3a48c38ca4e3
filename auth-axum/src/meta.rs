//! Who is asking: client IP (S8), user agent and request id, as the engine's
//! `RequestContext`.

use std::net::{IpAddr, SocketAddr};

use auth_core::RequestContext;
use axum::extract::connect_info::MockConnectInfo;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{Extensions, HeaderMap, header};

use crate::config::TrustedProxy;
use crate::error::ApiError;
use crate::middleware::RequestId;
use crate::state::AuthState;

/// Longest user agent kept, in characters.
const MAX_USER_AGENT: usize = 256;

/// Why a request without a client address is refused, and the fix (S8).
pub(crate) const NO_PEER: &str = "the client address is unknown, so rate limits cannot apply: \
     serve the router with into_make_service_with_connect_info::<SocketAddr>()";

/// The engine's [`RequestContext`] for this request. The client IP is the
/// socket's peer, unless the peer is a trusted proxy: then the right-most
/// `X-Forwarded-For` entry that is not a trusted proxy, where an entry that is
/// not an address ends the walk (S8; see [`crate::WebConfig::trusted_proxies`]).
///
/// Serve the router with `into_make_service_with_connect_info::<SocketAddr>()`
/// so the peer is known: without it this extractor rejects with 500 `internal`
/// and logs the fix, rather than letting a request through without per-IP
/// limits (S8, fail closed).
#[derive(Debug, Clone)]
pub struct ClientContext(pub RequestContext);

impl<S: Send + Sync> FromRequestParts<S> for ClientContext {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        let trusted = parts
            .extensions
            .get::<AuthState>()
            .map(|s| s.web.trusted_proxies.clone())
            .unwrap_or_default();
        let peer = peer_of(&parts.extensions).ok_or_else(|| ApiError::internal(NO_PEER))?;
        let user_agent = parts
            .headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|ua| ua.chars().take(MAX_USER_AGENT).collect());
        Ok(Self(RequestContext {
            ip: Some(client_ip(peer, &parts.headers, &trusted)),
            user_agent,
            request_id: parts.extensions.get::<RequestId>().map(|r| r.0.clone()),
        }))
    }
}

/// The socket's peer, from `ConnectInfo` (or the `MockConnectInfo` tests use),
/// with an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`, from a dual-stack
/// listener) written as the IPv4 address it is.
pub(crate) fn peer_of(extensions: &Extensions) -> Option<IpAddr> {
    extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0)
        .or_else(|| extensions.get::<MockConnectInfo<SocketAddr>>().map(|m| m.0))
        .map(|addr| addr.ip().to_canonical())
}

/// Whether `ip` is one of the trusted proxies.
pub(crate) fn is_trusted(ip: IpAddr, trusted: &[TrustedProxy]) -> bool {
    trusted.iter().any(|t| t.contains(ip))
}

/// The client IP (S8). From an untrusted peer: the peer. From a trusted one, walk
/// `X-Forwarded-For` from the right (each hop appends the address it saw):
/// skip trusted proxies; the first untrusted entry is the client. An entry that
/// is not an address ends the walk: the client is then the view of the last
/// trusted hop (the entry to its right, or the peer), never anything to its
/// left, which the client wrote itself.
pub(crate) fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[TrustedProxy]) -> IpAddr {
    let peer = peer.to_canonical();
    if !is_trusted(peer, trusted) {
        return peer;
    }
    let mut last_trusted = peer;
    let lines: Vec<_> = headers.get_all("x-forwarded-for").iter().collect();
    for line in lines.into_iter().rev() {
        // A header line that is not even text is one unparsable entry.
        let Ok(line) = line.to_str() else {
            return last_trusted;
        };
        for entry in line.rsplit(',') {
            match parse_entry(entry) {
                Some(ip) if is_trusted(ip, trusted) => last_trusted = ip,
                Some(ip) => return ip,
                None => return last_trusted,
            }
        }
    }
    // Every hop was a trusted proxy: the left-most one is as far as we can see.
    last_trusted
}

/// An `X-Forwarded-For` entry: `ip`, `ip:port`, `[v6]` or `[v6]:port`,
/// canonical (IPv4-mapped IPv6 as IPv4).
fn parse_entry(entry: &str) -> Option<IpAddr> {
    let entry = entry.trim();
    let ip = entry
        .parse::<IpAddr>()
        .ok()
        .or_else(|| entry.parse::<SocketAddr>().ok().map(|s| s.ip()))
        .or_else(|| {
            entry
                .strip_prefix('[')
                .and_then(|e| e.strip_suffix(']'))
                .and_then(|v6| v6.parse::<std::net::Ipv6Addr>().ok())
                .map(IpAddr::V6)
        })?;
    Some(ip.to_canonical())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    const PEER: &str = "203.0.113.5";

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn walk(peer: &str, xff: &[&str], trusted: &[&str]) -> IpAddr {
        let mut headers = HeaderMap::new();
        for line in xff {
            headers.append("x-forwarded-for", HeaderValue::from_str(line).unwrap());
        }
        let trusted: Vec<_> = trusted
            .iter()
            .map(|t| TrustedProxy::parse(t).unwrap())
            .collect();
        client_ip(ip(peer), &headers, &trusted)
    }

    #[test]
    fn s8_untrusted_peers_are_the_client() {
        assert_eq!(walk(PEER, &["10.9.9.9"], &[]), ip(PEER));
        assert_eq!(walk(PEER, &["10.9.9.9"], &["10.0.0.0/8"]), ip(PEER));
    }

    #[test]
    fn s8_junk_ends_trust_and_never_lets_the_client_choose() {
        let t = &["203.0.113.0/24"];
        // The appending proxy's entry, right of the client's junk, is the client.
        assert_eq!(
            walk(PEER, &["10.9.9.9, junk, 198.51.100.77"], t),
            ip("198.51.100.77")
        );
        // Junk right after the peer: the peer's view, not the forged 10.9.9.9.
        assert_eq!(walk(PEER, &["10.9.9.9, junk"], t), ip(PEER));
        assert_eq!(walk(PEER, &["10.9.9.9,"], t), ip(PEER));
        assert_eq!(walk(PEER, &[""], t), ip(PEER));
        assert_eq!(walk(PEER, &["unknown"], t), ip(PEER));
        // A trusted hop right of the junk is the last trusted view.
        assert_eq!(
            walk(PEER, &["10.9.9.9, junk, 203.0.113.9"], t),
            ip("203.0.113.9")
        );
    }

    #[test]
    fn s8_walks_from_the_right_past_trusted_hops_and_header_lines() {
        let t = &["203.0.113.0/24", "10.0.0.0/8"];
        assert_eq!(
            walk(PEER, &["10.9.9.9, 198.51.100.77, 10.0.0.2"], t),
            ip("198.51.100.77")
        );
        assert_eq!(
            walk(PEER, &["192.0.2.1", "198.51.100.77, 10.0.0.2"], t),
            ip("198.51.100.77")
        );
        assert_eq!(walk(PEER, &["192.0.2.1", "junk"], t), ip(PEER));
        // Only trusted hops: the left-most of them.
        assert_eq!(walk(PEER, &["10.0.0.7, 10.0.0.2"], t), ip("10.0.0.7"));
        assert_eq!(walk(PEER, &[], t), ip(PEER));
    }

    #[test]
    fn s8_entries_with_ports_and_brackets() {
        let t = &["203.0.113.0/24"];
        for (entry, expected) in [
            ("198.51.100.77:4711", "198.51.100.77"),
            ("[2001:db8::7]", "2001:db8::7"),
            ("[2001:db8::7]:4711", "2001:db8::7"),
            ("2001:db8::7", "2001:db8::7"),
            (" 198.51.100.77 ", "198.51.100.77"),
            ("::ffff:198.51.100.77", "198.51.100.77"),
        ] {
            assert_eq!(walk(PEER, &[entry], t), ip(expected), "{entry}");
        }
        for junk in [
            "198.51.100.77:",
            "[2001:db8::7",
            "2001:db8::7]:80",
            "1.2.3.4.5",
        ] {
            assert_eq!(
                walk(PEER, &[&format!("10.9.9.9, {junk}")], t),
                ip(PEER),
                "{junk}"
            );
        }
    }

    #[test]
    fn s8_ipv4_mapped_peers_match_ipv4_ranges() {
        // A dual-stack listener sees IPv4 proxies as ::ffff:a.b.c.d.
        let t = &["10.0.0.0/8"];
        assert_eq!(
            walk("::ffff:10.0.0.5", &["198.51.100.77"], t),
            ip("198.51.100.77")
        );
        // And an untrusted mapped peer is reported as its IPv4 address.
        assert_eq!(
            walk("::ffff:192.0.2.9", &["198.51.100.77"], t),
            ip("192.0.2.9")
        );
    }
}
