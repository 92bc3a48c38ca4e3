//! Who is asking: client IP (S8), user agent and request id, as the engine's
//! `RequestContext`.

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};

use auth_core::RequestContext;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::header;
use axum::http::request::Parts;

use crate::config::TrustedProxy;
use crate::middleware::RequestId;
use crate::state::AuthState;

/// Longest user agent kept, in characters.
const MAX_USER_AGENT: usize = 256;

/// The engine's [`RequestContext`] for this request. The client IP is the
/// socket's peer, unless the peer is a trusted proxy: then the right-most
/// `X-Forwarded-For` entry that is not a trusted proxy (S8). Serve the router with
/// `into_make_service_with_connect_info::<SocketAddr>()` so the peer is known.
#[derive(Debug, Clone)]
pub struct ClientContext(pub RequestContext);

impl<S: Send + Sync> FromRequestParts<S> for ClientContext {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Infallible> {
        let trusted = parts
            .extensions
            .get::<AuthState>()
            .map(|s| s.web.trusted_proxies.clone())
            .unwrap_or_default();
        // The extractor also finds `MockConnectInfo`, which tests use.
        let peer = ConnectInfo::<SocketAddr>::from_request_parts(parts, state)
            .await
            .ok()
            .map(|c| c.0.ip());
        let user_agent = parts
            .headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|ua| ua.chars().take(MAX_USER_AGENT).collect());
        Ok(Self(RequestContext {
            ip: peer.map(|peer| client_ip(peer, parts, &trusted)),
            user_agent,
            request_id: parts.extensions.get::<RequestId>().map(|r| r.0.clone()),
        }))
    }
}

fn client_ip(peer: IpAddr, parts: &Parts, trusted: &[TrustedProxy]) -> IpAddr {
    let is_trusted = |ip: IpAddr| trusted.iter().any(|t| t.contains(ip));
    if !is_trusted(peer) {
        return peer;
    }
    let forwarded: Vec<IpAddr> = parts
        .headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map_while(|entry| entry.trim().parse().ok())
        .collect();
    forwarded
        .iter()
        .rev()
        .copied()
        .find(|ip| !is_trusted(*ip))
        .or(forwarded.first().copied())
        .unwrap_or(peer)
}
