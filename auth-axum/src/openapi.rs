//! The OpenAPI 3.1 document, generated from the handlers' annotations.

use axum::Json;
use axum::extract::State;
use utoipa::openapi::path::{HttpMethod, OperationBuilder, PathItem};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, OpenApi as Document, ResponseBuilder};
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
/// bearer tokens) and the HTML pages, whose paths come from the configuration.
pub(crate) struct Runtime<'a>(pub(crate) &'a AuthState);

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
        let config = self.0.auth.config();
        let pages = [
            (
                config.verify_path.clone(),
                "The page a verification link opens; its button POSTs the token",
            ),
            (
                config.reset_path.clone(),
                "The page a reset link opens; its form POSTs the token and new password",
            ),
            (crate::pages::SCRIPT_PATH.to_owned(), "The pages' script"),
        ];
        for (path, summary) in pages {
            let html = ContentBuilder::new().build();
            let ok = ResponseBuilder::new()
                .description("The page")
                .content("text/html", html)
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
