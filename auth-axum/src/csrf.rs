//! Cross-site request refusal for state-changing routes (S7), on top of
//! `SameSite`: [`refuse_cross_site`], for the application's own routes too.
//!
//! A `POST`, `PUT`, `PATCH` or `DELETE` is refused with 403 `forbidden_origin`
//! when:
//!
//! - `Origin` is present and not an allowed origin
//!   ([`crate::WebConfig::allowed_origins`], by default the public URL's origin;
//!   the opaque origin `null` is never allowed);
//! - or `Sec-Fetch-Site` says `cross-site` or `same-site` (or anything but
//!   `same-origin` and `none`) and the request carries no allowed `Origin`. An
//!   allowed origin is trusted by configuration, so a front end on another
//!   configured origin, for which the browser says `same-site` or `cross-site`,
//!   passes; a sibling subdomain that is not configured does not.
//!
//! Requests with neither header (curl, server-to-server) pass: browsers send at
//! least one on every such request. A request authenticated by
//! `Authorization: Bearer` without a session cookie skips the check (when bearer
//! tokens are enabled): a cross-site page cannot attach that header.

use axum::extract::Request;
use axum::http::{HeaderMap, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::cookie;
use crate::error::ApiError;
use crate::extract::bearer_token;
use crate::state::AuthState;

/// Middleware that refuses cross-site state-changing requests with 403
/// `forbidden_origin` in the error envelope (S7; the rules are in the
/// [module documentation](self)). [`crate::AuthState::routes`] already has it;
/// put it on every route of your own that changes state under a session cookie,
/// with [`axum::middleware::from_fn`]. It reads the settings that
/// [`crate::AuthState::wrap`] attaches, so wrap the final router (without them
/// it answers 500 `internal`).
///
/// ```
/// use std::sync::Arc;
/// use auth_axum::{AuthState, CurrentUser, WebConfig, refuse_cross_site};
/// use auth_core::{Auth, SecretKey, mail::ConsoleMailer};
/// use auth_store_memory::MemoryStore;
/// use axum::{Router, middleware, routing::post};
///
/// async fn transfer(CurrentUser(user): CurrentUser) -> String {
///     format!("{} moved the money", user.email)
/// }
///
/// # fn build() -> Result<Router, Box<dyn std::error::Error>> {
/// # let auth = Auth::builder()
/// #     .stores(Arc::new(MemoryStore::new()))
/// #     .mailer(Arc::new(ConsoleMailer))
/// #     .secret_key(SecretKey::generate()?)
/// #     .build()?;
/// let state = AuthState::new(auth, WebConfig::default())?;
/// let mine = Router::new()
///     .route("/transfer", post(transfer))
///     .layer(middleware::from_fn(refuse_cross_site)); // S7 for your routes
/// let app = state.wrap(mine.merge(state.routes()));
/// # Ok(app) }
/// ```
pub async fn refuse_cross_site(request: Request, next: Next) -> Response {
    let state_changing = matches!(
        *request.method(),
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    );
    if !state_changing {
        return next.run(request).await;
    }
    let Some(state) = request.extensions().get::<AuthState>().cloned() else {
        return ApiError::internal("AuthState missing: wrap the router with AuthState::wrap")
            .into_response();
    };
    if !is_cross_site(request.headers(), &state) {
        return next.run(request).await;
    }
    ApiError::forbidden_origin().into_response()
}

pub(crate) fn is_cross_site(headers: &HeaderMap, state: &AuthState) -> bool {
    let bearer_only = state.web.bearer_tokens
        && bearer_token(headers).is_some()
        && cookie::read(headers, &state.web.cookie_name).is_none();
    if bearer_only {
        return false;
    }
    let origin = headers
        .get(header::ORIGIN)
        .map(|v| v.to_str().unwrap_or("null"));
    let origin_allowed = origin.map(|origin| {
        state
            .web
            .allowed_origins
            .iter()
            .any(|allowed| allowed == origin)
    });
    if origin_allowed == Some(false) {
        return true;
    }
    let fetch_site = headers
        .get("sec-fetch-site")
        .map(|v| v.to_str().unwrap_or("cross-site"));
    let not_same_origin = fetch_site.is_some_and(|site| site != "same-origin" && site != "none");
    // A browser's "not the same origin" is overruled only by an allowed Origin.
    not_same_origin && origin_allowed != Some(true)
}
