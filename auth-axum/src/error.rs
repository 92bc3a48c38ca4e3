//! The one error envelope (S9):
//! `{"error":{"code","message","request_id"[,"retry_after"][,"rule"]}}`.
//!
//! | code | status |
//! |---|---|
//! | `invalid_request`, `malformed_json`, `token_invalid`, `token_expired` | 400 |
//! | `invalid_credentials`, `unauthenticated` | 401 |
//! | `email_not_verified`, `forbidden_origin` | 403 |
//! | `not_found` | 404 |
//! | `method_not_allowed` | 405 |
//! | `email_taken` | 409 |
//! | `payload_too_large` | 413 |
//! | `unsupported_media_type` | 415 |
//! | `invalid_email`, `weak_password`, `invalid_request` (well-formed JSON of the wrong shape) | 422 |
//! | `locked`, `rate_limited` (with `Retry-After`) | 429 |
//! | `internal` | 500 |
//! | `unavailable` (with `Retry-After`) | 503 |
//!
//! Messages never carry internals; a 5xx is logged once with its request id and
//! cause by the request middleware.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use utoipa::ToSchema;

use auth_core::AuthError;

/// The error envelope.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ErrorEnvelope {
    /// The error.
    pub error: ErrorBody,
}

/// The error inside the envelope.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ErrorBody {
    /// Stable machine-readable code.
    pub code: String,
    /// Human-readable message.
    pub message: String,
    /// The request id, also in the `X-Request-Id` header.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// Seconds to wait before retrying (429, 503); also in `Retry-After`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_after: Option<u64>,
    /// For `weak_password`: the rule the password broke.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
}

/// An error answered in the envelope. Handlers return it; extractors reject
/// with it.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    body: Box<ErrorBody>,
    cause: Option<String>,
}

/// The cause of a 5xx, carried to the request middleware for the log.
#[derive(Debug, Clone)]
pub(crate) struct ErrorCause(pub(crate) String);

impl ApiError {
    /// An error with a status, code and message.
    #[must_use]
    pub fn new(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        let body = ErrorBody {
            code: code.to_owned(),
            message: message.into(),
            request_id: None,
            retry_after: None,
            rule: None,
        };
        Self {
            status,
            body: Box::new(body),
            cause: None,
        }
    }

    /// The HTTP status.
    #[must_use]
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The machine-readable code.
    #[must_use]
    pub fn code(&self) -> &str {
        &self.body.code
    }

    pub(crate) fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", "no such resource")
    }

    /// 403 `forbidden`: signed in, but without the role or permission a
    /// route asks for.
    #[must_use]
    pub fn forbidden() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "you do not have access to this resource",
        )
    }

    pub(crate) fn forbidden_origin() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "forbidden_origin",
            "cross-site request refused",
        )
    }

    pub(crate) fn internal(cause: impl std::fmt::Display) -> Self {
        let mut e = Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error",
        );
        e.cause = Some(cause.to_string());
        e
    }

    fn with_retry_after(mut self, d: time::Duration) -> Self {
        // Round up: "retry in 0 s" would invite a retry that is still refused.
        let secs = u64::try_from(d.whole_seconds()).unwrap_or(0);
        let secs = if d.subsec_nanoseconds() > 0 {
            secs + 1
        } else {
            secs
        };
        self.body.retry_after = Some(secs.max(1));
        self
    }

    /// Maps the errors of axum's JSON extractor (S11, S10).
    pub(crate) fn from_json(rejection: &JsonRejection) -> Self {
        match rejection {
            JsonRejection::MissingJsonContentType(_) => Self::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "expected a request body with Content-Type: application/json",
            ),
            JsonRejection::JsonSyntaxError(_) => Self::new(
                StatusCode::BAD_REQUEST,
                "malformed_json",
                "the request body is not valid JSON",
            ),
            JsonRejection::JsonDataError(e) => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_request",
                data_error_detail(&e.body_text()),
            ),
            JsonRejection::BytesRejection(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                Self::payload_too_large()
            }
            other => Self::new(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                other.body_text(),
            ),
        }
    }

    pub(crate) fn payload_too_large() -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "the request body is too large",
        )
    }
}

impl From<AuthError> for ApiError {
    fn from(err: AuthError) -> Self {
        let status = match &err {
            AuthError::TokenInvalid | AuthError::TokenExpired => StatusCode::BAD_REQUEST,
            AuthError::InvalidCredentials | AuthError::Unauthenticated | AuthError::InvalidCode => {
                StatusCode::UNAUTHORIZED
            }
            AuthError::SecondFactorAlreadyEnabled | AuthError::SecondFactorNotEnabled => {
                StatusCode::CONFLICT
            }
            AuthError::EmailNotVerified | AuthError::ReauthenticationRequired => {
                StatusCode::FORBIDDEN
            }
            AuthError::EmailTaken => StatusCode::CONFLICT,
            AuthError::WeakPassword(_)
            | AuthError::InvalidEmail(_)
            | AuthError::InvalidProfile(_) => StatusCode::UNPROCESSABLE_ENTITY,
            AuthError::Locked { .. } | AuthError::RateLimited { .. } => {
                StatusCode::TOO_MANY_REQUESTS
            }
            AuthError::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let mut api = Self::new(status, err.code(), err.to_string());
        if let AuthError::WeakPassword(v) = &err {
            api.body.rule = Some(v.rule().to_owned());
        }
        if status.is_server_error() {
            api.cause = Some(error_chain(&err));
        }
        match err.retry_after() {
            Some(d) => api.with_retry_after(d),
            None => api,
        }
    }
}

/// An error and its sources, for the log.
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let retry_after = self.body.retry_after;
        let mut response = (
            self.status,
            Json(ErrorEnvelope {
                error: (*self.body).clone(),
            }),
        )
            .into_response();
        let headers = response.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if let Some(secs) = retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        // The request middleware re-renders the body with the request id.
        response.extensions_mut().insert(*self.body);
        if let Some(cause) = self.cause {
            response.extensions_mut().insert(ErrorCause(cause));
        }
        response
    }
}

/// What a 422 says of a body that does not fit its type: the field and the
/// problem, never a value the client sent (S10: a password sent as a number
/// would otherwise come back in the answer and in gateways' logs). serde
/// quotes the values it did not expect (`invalid type: integer \`123\``,
/// `invalid value: string "x"`) and the fields it names (\`field\`); for the
/// former only the expected part is kept.
fn data_error_detail(body: &str) -> String {
    // axum: "Failed to deserialize the JSON body into the target type: <path>: <serde message>".
    let message = body.split_once("target type: ").map_or(body, |(_, m)| m);
    let (path, serde) = match message.split_once(": ") {
        Some((path, rest)) if !path.contains(' ') => (Some(path), rest),
        _ => (None, message),
    };
    let serde = serde.split(" at line ").next().unwrap_or(serde);
    let detail = if serde.starts_with("invalid type")
        || serde.starts_with("invalid value")
        || serde.starts_with("invalid length")
    {
        match serde.rsplit_once(", expected ") {
            Some((_, expected)) => format!("expected {expected}"),
            None => "invalid value".to_owned(),
        }
    } else {
        serde.to_owned()
    };
    match path {
        Some(path) => format!("{path}: {detail}"),
        None => detail,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// S10: a 422 names the field and what was expected, never the value.
    #[test]
    fn s10_data_errors_do_not_echo_values() {
        let prefix = "Failed to deserialize the JSON body into the target type: ";
        for (serde, shown) in [
            (
                "password: invalid type: integer `12345678`, expected a string at line 1 column 40",
                "password: expected a string",
            ),
            (
                "email: invalid value: string \"hunter2\", expected an address at line 1 column 9",
                "email: expected an address",
            ),
            (
                "unknown field `passwd`, expected one of `email`, `password` at line 1 column 9",
                "unknown field `passwd`, expected one of `email`, `password`",
            ),
            (
                "missing field `password` at line 1 column 2",
                "missing field `password`",
            ),
        ] {
            let detail = data_error_detail(&format!("{prefix}{serde}"));
            assert_eq!(detail, shown);
            assert!(!detail.contains("12345678") && !detail.contains("hunter2"));
        }
    }

    #[test]
    fn s9_every_engine_error_has_its_status() {
        let cases = [
            (AuthError::InvalidCredentials, 401),
            (AuthError::EmailNotVerified, 403),
            (
                AuthError::Locked {
                    retry_after: Some(time::Duration::milliseconds(1500)),
                },
                429,
            ),
            (AuthError::Locked { retry_after: None }, 429),
            (
                AuthError::RateLimited {
                    retry_after: time::Duration::seconds(3),
                },
                429,
            ),
            (AuthError::TokenInvalid, 400),
            (AuthError::TokenExpired, 400),
            (AuthError::EmailTaken, 409),
            (AuthError::Unauthenticated, 401),
            (AuthError::ReauthenticationRequired, 403),
            (AuthError::InvalidCode, 401),
            (AuthError::SecondFactorAlreadyEnabled, 409),
            (AuthError::SecondFactorNotEnabled, 409),
            (
                AuthError::Unavailable {
                    retry_after: time::Duration::seconds(1),
                    source: None,
                },
                503,
            ),
            (AuthError::Internal("secret detail".into()), 500),
        ];
        for (err, status) in cases {
            let code = err.code();
            let api = ApiError::from(err);
            assert_eq!((api.status().as_u16(), api.code()), (status, code));
            assert!(!api.body.message.contains("secret detail"));
        }
        let locked = ApiError::from(AuthError::Locked {
            retry_after: Some(time::Duration::milliseconds(1500)),
        });
        assert_eq!(locked.body.retry_after, Some(2), "rounded up");
    }
}
