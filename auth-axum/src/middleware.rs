//! The request middleware: request ids, the error envelope's request id, one log
//! line per request, and every 5xx logged with its cause (S9), sampled per
//! reason under a flood (the first lines in full, the rest in summaries that
//! list their request ids).

use std::time::Instant;

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tracing::{Instrument, Level};

use crate::error::{ApiError, ErrorBody, ErrorCause, ErrorEnvelope};
use crate::meta;
use crate::state::AuthState;

/// The `X-Request-Id` header.
pub static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The id of the current request: a fresh UUID, or the `X-Request-Id` a
/// trusted proxy sent (a plain token of at most 64 characters), so one id
/// follows a request through the proxy's logs and ours. From any other peer the
/// header is ignored: a client could otherwise give two requests one id in the
/// audit trail, or choose the id of someone else's request.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

fn accept_client_id(value: &HeaderValue) -> Option<String> {
    let s = value.to_str().ok()?;
    let ok = !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b));
    ok.then(|| s.to_owned())
}

/// Whether the request came straight from a trusted proxy (S8's list).
fn from_trusted_proxy(request: &Request) -> bool {
    let Some(state) = request.extensions().get::<AuthState>() else {
        return false;
    };
    meta::peer_of(request.extensions())
        .is_some_and(|peer| meta::is_trusted(peer, &state.web.trusted_proxies))
}

pub(crate) async fn request_context(mut request: Request, next: Next) -> Response {
    let id = from_trusted_proxy(&request)
        .then(|| {
            request
                .headers()
                .get(&REQUEST_ID)
                .and_then(accept_client_id)
        })
        .flatten()
        .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
    request.extensions_mut().insert(RequestId(id.clone()));
    let state = request.extensions().get::<AuthState>().cloned();
    // The path only: query strings may carry tokens (S10).
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        method = %request.method(),
        path = %request.uri().path()
    );
    let started = Instant::now();
    let mut response = next.run(request).instrument(span.clone()).await;
    let _entered = span.enter();

    let status = response.status();
    let is_error = status.is_client_error() || status.is_server_error();
    let ours = response.extensions().get::<LibraryResponse>().is_some()
        || state
            .as_ref()
            .is_some_and(|s| s.web.envelope_for_all_routes);
    if ours && is_error && response.extensions().get::<ErrorBody>().is_none() && is_empty(&response)
    {
        // Errors produced by axum itself (an unknown method, ...) get the envelope too.
        let headers = response.headers().clone();
        response = generic(status).into_response();
        response.headers_mut().extend(headers);
    }
    if let Some(mut body) = response.extensions_mut().remove::<ErrorBody>() {
        body.request_id = Some(id.clone());
        let (mut parts, _) = response.into_parts();
        parts.headers.remove(header::CONTENT_LENGTH);
        parts.headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        let json = serde_json::to_vec(&ErrorEnvelope { error: body }).unwrap_or_default();
        response = Response::from_parts(parts, Body::from(json));
    }
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID.clone(), value);
    }
    let status = response.status().as_u16();
    let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
    if response.status().is_server_error() {
        let cause = response.extensions_mut().remove::<ErrorCause>();
        let cause = cause.map_or_else(|| "unknown".to_owned(), |c| c.0);
        // Load shedding or a store outage is expected under a flood: a warning,
        // not an error. Either way, lines of one status and cause are sampled
        // with the engine's sampler (`AuthConfig::log_sampling`), so a flood
        // cannot make logging the bottleneck (S9).
        let unavailable = response.status() == StatusCode::SERVICE_UNAVAILABLE;
        let level = if unavailable {
            Level::WARN
        } else {
            Level::ERROR
        };
        let write = state.as_ref().is_none_or(|state| {
            let reason = format!("{status} {cause}");
            state.auth.log_sampler().sample(level, &reason, Some(&id))
        });
        if write && unavailable {
            tracing::warn!(status, elapsed_ms, cause, "request refused: unavailable");
        } else if write {
            tracing::error!(status, elapsed_ms, cause, "request failed");
        }
    } else {
        tracing::info!(status, elapsed_ms, "request");
    }
    response
}

/// Marks a response as produced by one of the library's routes.
#[derive(Debug, Clone, Copy)]
struct LibraryResponse;

/// The layer of every library route group: its responses are the library's,
/// whose empty errors [`request_context`] renders in the envelope.
pub(crate) async fn mark_library_response(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    response.extensions_mut().insert(LibraryResponse);
    response
}

fn is_empty(response: &Response) -> bool {
    use axum::body::HttpBody;
    response.body().size_hint().exact() == Some(0)
}

fn generic(status: StatusCode) -> ApiError {
    match status {
        StatusCode::NOT_FOUND => ApiError::not_found(),
        StatusCode::METHOD_NOT_ALLOWED => ApiError::new(
            status,
            "method_not_allowed",
            "method not allowed on this resource",
        ),
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::payload_too_large(),
        s if s.is_server_error() => ApiError::internal(format!("empty {s} response")),
        s => ApiError::new(
            s,
            "invalid_request",
            s.canonical_reason().unwrap_or("bad request"),
        ),
    }
}
