//! Guards for the application's own routes: [`RequireAuth`] lets only
//! signed-in requests through (and, when asked, only users with a role or a
//! permission), answering 401/403 in the envelope for an API, or sending a
//! browser to the login page with `next=` for HTML pages.

use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use auth_core::store::Role;
use axum::extract::{FromRequestParts, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tower::{Layer, Service};

use crate::error::ApiError;
use crate::extract::AuthSession;
use crate::state::AuthState;

/// The longest `next` path a redirect carries.
const MAX_NEXT: usize = 2048;

/// `next` when it is a path on this site, else `None`: a login page that
/// redirects to it after sign-in is then no open redirect. A safe path starts
/// with one `/` (not `//` or `/\`, which browsers read as another host), and
/// holds no backslash, no control or whitespace character, and at most 2048
/// bytes.
///
/// ```
/// use auth_axum::safe_next;
///
/// assert_eq!(safe_next("/orders/7?tab=items"), Some("/orders/7?tab=items"));
/// assert_eq!(safe_next("//evil.example/"), None);
/// assert_eq!(safe_next("https://evil.example/"), None);
/// assert_eq!(safe_next("/\\evil.example"), None);
/// ```
#[must_use]
pub fn safe_next(next: &str) -> Option<&str> {
    let mut bytes = next.bytes();
    let ok = bytes.next() == Some(b'/')
        && !matches!(bytes.next(), Some(b'/' | b'\\'))
        && next.len() <= MAX_NEXT
        && !next
            .chars()
            .any(|c| c == '\\' || c.is_control() || c.is_whitespace());
    ok.then_some(next)
}

/// What a guarded route asks of the request's user.
#[derive(Debug, Clone)]
enum Requirement {
    SignedIn,
    Role(Role),
    Permission(Arc<str>),
}

/// How a guarded route refuses a request without a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refusal {
    /// 401 `unauthenticated` in the envelope.
    Api,
    /// 303 to `WebConfig::login_page` with `next=`.
    Redirect,
}

/// A layer for the application's routes that lets only signed-in requests
/// through, optionally only users with a role ([`Self::role`]) or a
/// permission ([`Self::permission`]; see [`crate::Permissions`]). The
/// request's [`AuthSession`] is authenticated once and kept for the
/// handler's extractors.
///
/// Without a session, [`Self::api`] answers 401 `unauthenticated` in the
/// envelope and [`Self::redirect`] answers `303 See Other` to
/// `WebConfig::login_page` with `next=` the path and query the browser
/// asked for (a GET or HEAD; other methods get the 401: a form re-posted
/// after sign-in would repeat a state change). A signed-in user without the
/// role or permission gets 403 `forbidden` in the envelope either way. A
/// cross-site POST, PUT, PATCH or DELETE is refused with 403
/// `forbidden_origin` as [`crate::refuse_cross_site`] would (S7).
///
/// ```
/// use auth_axum::RequireAuth;
/// use auth_core::store::Role;
/// use axum::{Router, routing::get};
///
/// # fn routes() -> Result<Router, auth_core::store::InvalidRole> {
/// let app = Router::new()
///     .route("/admin/users", get(|| async { "the users" }))
///     .layer(RequireAuth::api().role(Role::new("admin")?))
///     .route("/dashboard", get(|| async { "hello" }))
///     .layer(RequireAuth::redirect());
/// # Ok(app) }
/// ```
#[derive(Debug, Clone)]
#[must_use]
pub struct RequireAuth {
    requirement: Requirement,
    refusal: Refusal,
}

impl RequireAuth {
    /// For API routes: 401 in the envelope without a session.
    pub const fn api() -> Self {
        Self {
            requirement: Requirement::SignedIn,
            refusal: Refusal::Api,
        }
    }

    /// For HTML pages: a browser without a session is sent to the login page.
    pub const fn redirect() -> Self {
        Self {
            requirement: Requirement::SignedIn,
            refusal: Refusal::Redirect,
        }
    }

    /// Only users with `role` (from the [`crate::RoleSource`]); others get 403.
    pub fn role(mut self, role: Role) -> Self {
        self.requirement = Requirement::Role(role);
        self
    }

    /// Only users whose roles grant `permission` (see [`crate::Permissions`]);
    /// others get 403.
    pub fn permission(mut self, permission: impl Into<String>) -> Self {
        self.requirement = Requirement::Permission(permission.into().into());
        self
    }

    /// Lets the request through (`Ok`) or answers for it (`Err`).
    async fn check(&self, request: Request) -> Result<Request, Response> {
        let (mut parts, body) = request.into_parts();
        let session = match AuthSession::from_request_parts(&mut parts, &()).await {
            Ok(session) => session,
            Err(err) if err.status() == StatusCode::UNAUTHORIZED => {
                return Err(self.unauthenticated(&parts, err));
            }
            Err(err) => return Err(err.into_response()),
        };
        // The application's state changes under the cookie get the library's
        // cross-site refusal too, layer or not (S7).
        let state_changing = matches!(
            parts.method,
            axum::http::Method::POST
                | axum::http::Method::PUT
                | axum::http::Method::PATCH
                | axum::http::Method::DELETE
        );
        if state_changing {
            let state = AuthState::from_parts(&parts).map_err(IntoResponse::into_response)?;
            if crate::csrf::is_cross_site(&parts.headers, &state) {
                return Err(ApiError::forbidden_origin().into_response());
            }
        }
        let allowed = match &self.requirement {
            Requirement::SignedIn => true,
            Requirement::Role(role) => roles(&parts, &session).await?.contains(role),
            Requirement::Permission(permission) => {
                let roles = roles(&parts, &session).await?;
                AuthState::from_parts(&parts)
                    .map_err(IntoResponse::into_response)?
                    .permissions()
                    .allows(&roles, permission)
            }
        };
        if !allowed {
            return Err(ApiError::forbidden().into_response());
        }
        Ok(Request::from_parts(parts, body))
    }

    fn unauthenticated(&self, parts: &axum::http::request::Parts, err: ApiError) -> Response {
        let navigation =
            parts.method == axum::http::Method::GET || parts.method == axum::http::Method::HEAD;
        if self.refusal != Refusal::Redirect || !navigation {
            return err.into_response();
        }
        let login = AuthState::from_parts(parts)
            .ok()
            .and_then(|state| state.web.login_page.clone());
        let Some(login) = login else {
            return ApiError::internal(
                "RequireAuth::redirect needs WebConfig::login_page (a path like /login)",
            )
            .into_response();
        };
        // Under `Router::nest` the request's URI has lost the prefix; the
        // browser must come back to the path it asked for.
        let uri = parts
            .extensions
            .get::<axum::extract::OriginalUri>()
            .map_or(&parts.uri, |original| &original.0);
        let asked = uri
            .path_and_query()
            .map_or("/", axum::http::uri::PathAndQuery::as_str);
        let mut location = login;
        if let Some(next) = safe_next(asked) {
            location.push(if location.contains('?') { '&' } else { '?' });
            location.push_str("next=");
            location.push_str(&encode_component(next));
        }
        let mut response = StatusCode::SEE_OTHER.into_response();
        if let Ok(value) = HeaderValue::from_str(&location) {
            response.headers_mut().insert(header::LOCATION, value);
        }
        response
    }
}

/// The session user's roles, or the answer when they cannot be read.
async fn roles(
    parts: &axum::http::request::Parts,
    session: &AuthSession,
) -> Result<Vec<Role>, Response> {
    let state = AuthState::from_parts(parts).map_err(IntoResponse::into_response)?;
    state
        .roles_of(&session.user)
        .await
        .map_err(|err| ApiError::from(err).into_response())
}

/// Percent-encodes everything but unreserved characters (RFC 3986).
fn encode_component(s: &str) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

impl<S> Layer<S> for RequireAuth {
    type Service = Guarded<S>;

    fn layer(&self, inner: S) -> Guarded<S> {
        Guarded {
            guard: self.clone(),
            inner,
        }
    }
}

/// The service [`RequireAuth`] wraps a route in.
#[derive(Clone)]
pub struct Guarded<S> {
    guard: RequireAuth,
    inner: S,
}

impl<S> fmt::Debug for Guarded<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Guarded")
            .field("guard", &self.guard)
            .finish_non_exhaustive()
    }
}

impl<S> Service<Request> for Guarded<S>
where
    S: Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        // The clone that was polled ready serves this request (tower's rule).
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let guard = self.guard.clone();
        Box::pin(async move {
            match guard.check(request).await {
                Ok(request) => inner.call(request).await,
                Err(response) => Ok(response),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::{encode_component, safe_next};

    #[test]
    fn next_must_be_a_path_on_this_site() {
        for good in ["/", "/a", "/a/b?c=d&e=f", "/%2F%2Fevil", "/a//b"] {
            assert_eq!(safe_next(good), Some(good), "{good}");
        }
        for bad in [
            "",
            "a",
            "//evil.example",
            "/\\evil.example",
            "\\\\evil.example",
            "https://evil.example",
            "javascript:alert(1)",
            "/a\\b",
            "/a\nb",
            "/a b",
            "/\t/evil.example",
        ] {
            assert_eq!(safe_next(bad), None, "{bad:?}");
        }
        assert_eq!(safe_next(&format!("/{}", "a".repeat(2048))), None);
    }

    #[test]
    fn next_is_encoded_as_one_query_component() {
        assert_eq!(encode_component("/a?b=c&d"), "/a%3Fb%3Dc%26d");
    }
}
