//! The OpenAPI 3.1 document, generated from the handlers' annotations.

use auth_core::password::PasswordPolicy;
use auth_core::{MAX_EMAIL_BYTES, TOKEN_CHARS};
use axum::Json;
use axum::extract::State;
use utoipa::openapi::path::{HttpMethod, OperationBuilder, PathItem};
use utoipa::openapi::schema::{KnownFormat, Schema, SchemaFormat};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, OpenApi as Document, RefOr, ResponseBuilder};
use utoipa::{Modify, OpenApi};

use crate::error::ErrorEnvelope;
use crate::state::AuthState;

/// The document's fixed parts; the paths come from the router.
#[derive(OpenApi)]
#[openapi(
    info(title = "auth API", description = "Registration, verification, login with an optional second factor, sessions and password flows."),
    components(schemas(ErrorEnvelope)),
    tags(
        (name = "auth", description = "Registration, login and password flows"),
        (name = "users", description = "The current user and their sessions"),
        (name = "mfa", description = "Second factors: TOTP and recovery codes"),
        (name = "health", description = "Probes"),
        (name = "pages", description = "The HTML pages emailed links open"),
    ),
)]
pub(crate) struct ApiDoc;

/// Adds the security schemes (the session cookie by its configured name, and
/// bearer tokens), the HTML pages, whose paths come from the configuration, and
/// the constraints the server enforces on request fields, some of which come
/// from the password policy.
pub(crate) struct Runtime<'a>(pub(crate) &'a AuthState);

/// What the server accepts in a request field.
#[derive(Clone, Copy)]
enum Field {
    /// An email address: at most [`MAX_EMAIL_BYTES`] bytes.
    Email,
    /// A password that is checked, not set: at most the policy's maximum (an
    /// existing password may be shorter than today's minimum).
    Password,
    /// A new password: the policy's minimum and maximum.
    NewPassword,
    /// An emailed token or a sign-in challenge: [`TOKEN_CHARS`] characters
    /// of base64url.
    Token,
    /// A six-digit code from an authenticator app.
    TotpCode,
    /// A recovery code as typed: 16 symbols, with any dashes and spaces.
    RecoveryCode,
}

/// Every string field of every request body and what it accepts (S11), so a
/// client generated from the document does not send what the server refuses.
/// A request schema's string field missing here fails the OpenAPI test.
const REQUEST_FIELDS: [(&str, &str, Field); 20] = [
    ("RegisterRequest", "email", Field::Email),
    ("RegisterRequest", "password", Field::NewPassword),
    ("VerifyEmailRequest", "token", Field::Token),
    ("EmailRequest", "email", Field::Email),
    ("LoginRequest", "email", Field::Email),
    ("LoginRequest", "password", Field::Password),
    ("ResetPasswordRequest", "token", Field::Token),
    ("ResetPasswordRequest", "new_password", Field::NewPassword),
    ("ChangePasswordRequest", "current_password", Field::Password),
    ("ChangePasswordRequest", "new_password", Field::NewPassword),
    ("ConfirmPasswordRequest", "password", Field::Password),
    ("SecondFactorRequest", "challenge", Field::Token),
    ("SecondFactorRequest", "code", Field::TotpCode),
    ("SecondFactorRequest", "recovery_code", Field::RecoveryCode),
    ("TotpCodeRequest", "code", Field::TotpCode),
    ("DisableTotpRequest", "password", Field::Password),
    ("DisableTotpRequest", "code", Field::TotpCode),
    ("DisableTotpRequest", "recovery_code", Field::RecoveryCode),
    ("SecondFactorProofRequest", "code", Field::TotpCode),
    (
        "SecondFactorProofRequest",
        "recovery_code",
        Field::RecoveryCode,
    ),
];

/// Sets the constraints of [`REQUEST_FIELDS`]. Lengths in JSON Schema count
/// code points, as the policy does; the policy counts them after NFKC, so the
/// schema is a necessary condition, not a sufficient one. Email addresses are
/// `idn-email` (RFC 6531): the server accepts non-ASCII addresses that `email`
/// (RFC 5321, ASCII) would make a validating client refuse.
fn constrain_requests(doc: &mut Document, policy: &PasswordPolicy) {
    let Some(components) = doc.components.as_mut() else {
        return;
    };
    for (schema, field, kind) in REQUEST_FIELDS {
        let Some(RefOr::T(Schema::Object(object))) = components.schemas.get_mut(schema) else {
            continue;
        };
        let Some(RefOr::T(Schema::Object(property))) = object.properties.get_mut(field) else {
            continue;
        };
        let (min, max, format, pattern) = match kind {
            Field::Email => (
                None,
                Some(MAX_EMAIL_BYTES),
                Some(KnownFormat::IdnEmail),
                None,
            ),
            Field::Password => (
                None,
                Some(policy.max_chars()),
                Some(KnownFormat::Password),
                None,
            ),
            Field::NewPassword => (
                Some(policy.min_chars()),
                Some(policy.max_chars()),
                Some(KnownFormat::Password),
                None,
            ),
            Field::Token => (
                Some(TOKEN_CHARS),
                Some(TOKEN_CHARS),
                None,
                Some(format!("^[A-Za-z0-9_-]{{{TOKEN_CHARS}}}$")),
            ),
            Field::TotpCode => (Some(6), Some(6), None, Some("^[0-9]{6}$".to_owned())),
            // The engine ignores case, dashes and spaces; 64 leaves room for
            // any grouping a user types.
            Field::RecoveryCode => (Some(16), Some(64), None, None),
        };
        property.min_length = min;
        property.max_length = max;
        property.format = format.map(SchemaFormat::KnownFormat);
        property.pattern = pattern;
    }
}

impl Modify for Runtime<'_> {
    fn modify(&self, doc: &mut Document) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "session_cookie",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new(self.0.cookie_name()))),
        );
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        constrain_requests(doc, self.0.auth.policy());
        let config = self.0.auth.config();
        let pages = [
            (
                config.verify_path.clone(),
                "The page a verification link opens; its button POSTs the token",
                "The page",
                "text/html",
            ),
            (
                config.reset_path.clone(),
                "The page a reset link opens; its form POSTs the token and new password",
                "The page",
                "text/html",
            ),
            (
                self.0.web.script_path.clone(),
                "The pages' script",
                "The script",
                crate::pages::SCRIPT_CONTENT_TYPE,
            ),
        ];
        for (path, summary, description, content_type) in pages {
            let ok = ResponseBuilder::new()
                .description(description)
                .content(content_type, ContentBuilder::new().build())
                .build();
            let error = ResponseBuilder::new()
                .description("internal")
                .content(
                    "application/json",
                    ContentBuilder::new()
                        .schema(Some(utoipa::openapi::Ref::from_schema_name(
                            "ErrorEnvelope",
                        )))
                        .build(),
                )
                .build();
            let operation = OperationBuilder::new()
                .summary(Some(summary))
                .tag("pages")
                .response("200", ok)
                .response("500", error)
                .build();
            doc.paths
                .paths
                .insert(path, PathItem::new(HttpMethod::Get, operation));
        }
    }
}

/// This document.
#[utoipa::path(get, path = "/openapi.json", tag = "health",
    responses(
        (status = 200, description = "The OpenAPI 3.1 document", content_type = "application/json"),
        (status = 500, description = "internal", body = ErrorEnvelope),
    ))]
pub(crate) async fn document(State(state): State<AuthState>) -> Json<Document> {
    Json(state.openapi())
}
