//! Cross-site request refusal for state-changing routes (S7), on top of
//! `SameSite`.
//!
//! A `POST`, `PUT`, `PATCH` or `DELETE` is refused with 403 `forbidden_origin`
//! when `Sec-Fetch-Site` says anything but `same-origin` or `none`, or when
//! `Origin` is present and not an allowed origin. Requests with neither header
//! (curl, server-to-server) pass: browsers send at least one on every such
//! request. A request authenticated by `Authorization: Bearer` without a session
//! cookie skips the check (when bearer tokens are enabled): a cross-site page
//! cannot attach that header.

use axum::extract::Request;
use axum::http::{Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::cookie;
use crate::error::ApiError;
use crate::extract::bearer_token;
use crate::state::AuthState;

pub(crate) async fn refuse_cross_site(request: Request, next: Next) -> Response {
    let state_changing = matches!(
        *request.method(),
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    );
    let Some(state) = request.extensions().get::<AuthState>().cloned() else {
        return ApiError::internal("AuthState missing: wrap the router with AuthState::wrap")
            .into_response();
    };
    if !state_changing || !is_cross_site(&request, &state) {
        return next.run(request).await;
    }
    ApiError::forbidden_origin().into_response()
}

fn is_cross_site(request: &Request, state: &AuthState) -> bool {
    let headers = request.headers();
    let bearer_only = state.web.bearer_tokens
        && bearer_token(headers).is_some()
        && cookie::read(headers, &state.web.cookie_name).is_none();
    if bearer_only {
        return false;
    }
    let fetch_site = headers
        .get("sec-fetch-site")
        .map(|v| v.to_str().unwrap_or("cross-site"));
    if fetch_site.is_some_and(|site| site != "same-origin" && site != "none") {
        return true;
    }
    let origin = headers
        .get(header::ORIGIN)
        .map(|v| v.to_str().unwrap_or("null"));
    origin.is_some_and(|origin| {
        !state
            .web
            .allowed_origins
            .iter()
            .any(|allowed| allowed == origin)
    })
}
