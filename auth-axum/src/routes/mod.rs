//! The REST routes, registered together with their OpenAPI operations so the
//! document covers every route by construction.

pub(crate) mod auth;
pub(crate) mod meta;
pub(crate) mod mfa;
pub(crate) mod users;

use axum::http::{HeaderMap, HeaderValue, header};

use crate::cookie;
use crate::error::ApiError;
use crate::state::AuthState;

/// Headers that carry a new session cookie: persistent for remember-me sessions.
pub(crate) fn session_cookie(state: &AuthState, new: &auth_core::NewSession) -> HeaderMap {
    let s = &new.session;
    let max_age = new
        .remember_me
        .then(|| s.absolute_expires_at - s.created_at);
    let mut headers = HeaderMap::new();
    headers.insert(
        header::SET_COOKIE,
        cookie::set(&state.web, new.token.expose_secret(), max_age),
    );
    headers
}

/// Headers that delete the session cookie.
pub(crate) fn cleared_cookie(state: &AuthState) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(header::SET_COOKIE, cookie::clear(&state.web));
    headers
}

/// Headers on every response of the library's routes: `Cache-Control:
/// no-store` (nothing a proxy or browser cache keeps), `X-Content-Type-Options:
/// nosniff`, and `Referrer-Policy: no-referrer`, so a page or client that
/// follows a link from a response never sends the URL it came from, which for
/// the pages emailed links open carries a token (S4).
pub(crate) async fn no_store(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    response
}

/// The answer to a path no route of the library matches.
pub(crate) async fn not_found() -> ApiError {
    ApiError::not_found()
}
