//! The OpenAPI document covers every route with its error responses and is valid
//! OpenAPI 3.1.

#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    reason = "test code: a failed unwrap is a failed test"
)]

mod support;

use std::sync::Arc;

use auth_axum::{AuthState, WebConfig};
use auth_core::mail::ConsoleMailer;
use auth_core::password::PasswordPolicy;
use auth_core::{Auth, SecretKey};
use auth_store_memory::MemoryStore;
use axum::http::{Method, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use support::Api;
use tower::ServiceExt;

fn operations(doc: &Value) -> Vec<(Method, String, Value)> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let method = Method::from_bytes(method.to_ascii_uppercase().as_bytes()).unwrap();
            out.push((method, path.clone(), op.clone()));
        }
    }
    out
}

#[tokio::test]
async fn the_document_is_served_and_lists_every_route_with_error_responses() {
    let api = Api::new();
    let reply = api.get("/openapi.json", None).await;
    assert_eq!(reply.status, StatusCode::OK);
    let doc = reply.body;
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        doc["openapi"]
    );
    let ops = operations(&doc);
    let expected = [
        (Method::POST, "/api/v1/auth/register"),
        (Method::POST, "/api/v1/auth/verify-email"),
        (Method::POST, "/api/v1/auth/verify-email/resend"),
        (Method::POST, "/api/v1/auth/login"),
        (Method::POST, "/api/v1/auth/login/second-factor"),
        (Method::POST, "/api/v1/auth/logout"),
        (Method::POST, "/api/v1/auth/password/forgot"),
        (Method::POST, "/api/v1/auth/password/reset"),
        (Method::POST, "/api/v1/auth/password/change"),
        (Method::GET, "/api/v1/users/me"),
        (Method::GET, "/api/v1/users/me/sessions"),
        (Method::DELETE, "/api/v1/users/me/sessions"),
        (Method::DELETE, "/api/v1/users/me/sessions/{id}"),
        (Method::GET, "/api/v1/users/me/mfa"),
        (Method::POST, "/api/v1/users/me/mfa/totp"),
        (Method::DELETE, "/api/v1/users/me/mfa/totp"),
        (Method::POST, "/api/v1/users/me/mfa/totp/confirm"),
        (Method::POST, "/api/v1/users/me/mfa/recovery-codes"),
        (Method::GET, "/api/v1/openapi.json"),
        (Method::GET, "/healthz"),
        (Method::GET, "/readyz"),
        (Method::GET, "/auth/verify-email"),
        (Method::GET, "/auth/reset-password"),
        (Method::GET, "/auth/assets/auth-pages.js"),
    ];
    for (method, path) in &expected {
        assert!(
            ops.iter().any(|(m, p, _)| m == method && p == path),
            "{method} {path} missing from the document"
        );
    }
    assert_eq!(
        ops.len(),
        expected.len(),
        "the document has routes this test does not know"
    );

    for (method, path, op) in &ops {
        let responses = op["responses"].as_object().unwrap();
        let errors: Vec<_> = responses
            .keys()
            .filter(|s| s.starts_with('4') || s.starts_with('5'))
            .collect();
        assert!(
            responses.contains_key("500"),
            "{method} {path} documents no 500"
        );
        for status in errors {
            let schema = &responses[status]["content"]["application/json"]["schema"]["$ref"];
            assert_eq!(
                schema, "#/components/schemas/ErrorEnvelope",
                "{method} {path} {status}"
            );
        }
        // Every documented route exists in the router: anything but the router's 404/405.
        let uri = path.replace("{id}", "00000000-0000-0000-0000-000000000000");
        let reply = api.call(method.clone(), &uri, None, None).await;
        assert_ne!(
            reply.status,
            StatusCode::METHOD_NOT_ALLOWED,
            "{method} {path}"
        );
        assert!(
            reply.status != StatusCode::NOT_FOUND,
            "{method} {path} is not routed"
        );
    }
    let schemes = doc["components"]["securitySchemes"].as_object().unwrap();
    assert_eq!(schemes["session_cookie"]["in"], "cookie");
    assert_eq!(schemes["session_cookie"]["name"], "__Host-session");
    assert_eq!(schemes["bearer"]["scheme"], "bearer");
}

/// Validated by `openapi-spec-validator` from `PyPI`, which `.ci/run` installs and
/// names in `OPENAPI_SPEC_VALIDATOR`.
#[tokio::test]
async fn the_document_validates_as_openapi_3_1() {
    let Some(validator) = std::env::var_os("OPENAPI_SPEC_VALIDATOR") else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true but OPENAPI_SPEC_VALIDATOR is not set"
        );
        eprintln!("skipped: set OPENAPI_SPEC_VALIDATOR to an openapi-spec-validator executable");
        return;
    };
    let api = Api::new();
    let doc = api.get("/openapi.json", None).await.text;
    let path = std::env::temp_dir().join(format!("auth-openapi-{}.json", std::process::id()));
    std::fs::write(&path, doc).unwrap();
    let out = std::process::Command::new(validator)
        .arg(&path)
        .output()
        .unwrap();
    let _ = std::fs::remove_file(&path);
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{printed}");
    assert!(printed.contains("OK"), "{printed}");
}

/// The web state and document of an engine with `policy`.
async fn document_with(policy: Option<PasswordPolicy>) -> (AuthState, Value) {
    let mut builder = Auth::builder()
        .stores(Arc::new(MemoryStore::new()))
        .mailer(Arc::new(ConsoleMailer))
        .secret_key(SecretKey::new([7u8; 32]).unwrap());
    if let Some(policy) = policy {
        builder = builder.policy(policy);
    }
    let state = AuthState::new(builder.build().unwrap(), WebConfig::default()).unwrap();
    let doc = serde_json::to_value(state.openapi()).unwrap();
    (state, doc)
}

/// S11: every string field of every request body says what the server
/// accepts: email addresses, new and current passwords (from the engine's
/// password policy) and tokens.
#[tokio::test]
async fn s11_request_schemas_carry_the_constraints_the_server_enforces() {
    let doc = Api::new().get("/openapi.json", None).await.body;
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    let field = |schema: &str, name: &str| schemas[schema]["properties"][name].clone();
    let email = json!({"type": "string", "format": "idn-email", "maxLength": 254});
    let token = json!({
        "type": "string", "minLength": 43, "maxLength": 43, "pattern": "^[A-Za-z0-9_-]{43}$"
    });
    let new_password =
        json!({"type": "string", "format": "password", "minLength": 8, "maxLength": 128});
    let password = json!({"type": "string", "format": "password", "maxLength": 128});
    let expected = [
        ("RegisterRequest", "email", &email),
        ("RegisterRequest", "password", &new_password),
        ("VerifyEmailRequest", "token", &token),
        ("EmailRequest", "email", &email),
        ("LoginRequest", "email", &email),
        ("LoginRequest", "password", &password),
        ("ResetPasswordRequest", "token", &token),
        ("ResetPasswordRequest", "new_password", &new_password),
        ("ChangePasswordRequest", "current_password", &password),
        ("ChangePasswordRequest", "new_password", &new_password),
        ("ConfirmPasswordRequest", "password", &password),
    ];
    for (schema, name, constraints) in expected {
        let property = field(schema, name);
        for (key, value) in constraints.as_object().unwrap() {
            assert_eq!(&property[key], value, "{schema}.{name}.{key}: {property}");
        }
    }
    // No string field of a request is left without a bound: a new request
    // body must say what it accepts.
    for (name, schema) in schemas.iter().filter(|(n, _)| n.ends_with("Request")) {
        for (field, property) in schema["properties"].as_object().unwrap() {
            if property["type"] == "string" {
                assert!(
                    property["maxLength"].is_u64(),
                    "{name}.{field} has no maxLength: {property}"
                );
            }
        }
    }
    // The script is documented with its real content type.
    let script = &doc["paths"]["/auth/assets/auth-pages.js"]["get"]["responses"]["200"]["content"];
    assert!(script.get("text/javascript").is_some(), "{script}");
    let served = Api::new()
        .call(Method::GET, "/auth/assets/auth-pages.js", None, None)
        .await;
    assert!(
        served.headers[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/javascript"),
    );
}

/// The password lengths in the document, and the reset page's `minlength`,
/// follow the engine's policy.
#[tokio::test]
async fn s11_password_lengths_follow_the_configured_policy() {
    let policy = PasswordPolicy::builder()
        .min_chars(12)
        .max_chars(256)
        .build()
        .unwrap();
    let (state, doc) = document_with(Some(policy)).await;
    let register = &doc["components"]["schemas"]["RegisterRequest"]["properties"]["password"];
    assert_eq!(
        (&register["minLength"], &register["maxLength"]),
        (&json!(12), &json!(256))
    );
    let login = &doc["components"]["schemas"]["LoginRequest"]["properties"]["password"];
    assert_eq!(
        (&login["minLength"], &login["maxLength"]),
        (&Value::Null, &json!(256))
    );
    assert_eq!(
        document_with(None).await.1["components"]["schemas"]["RegisterRequest"]["properties"]["password"]
            ["maxLength"],
        128
    );
    let page = state
        .app()
        .oneshot(
            axum::http::Request::get("/auth/reset-password")
                .body(axum::body::Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    let html = page.into_body().collect().await.unwrap().to_bytes();
    let html = String::from_utf8_lossy(&html);
    assert!(html.contains("minlength=\"12\""), "{html}");
}

/// The documented limits are the server's: just inside them a registration
/// is not refused for its length, just outside it is (422).
#[tokio::test]
async fn s11_the_documented_limits_are_the_servers() {
    let api = Api::new();
    // `local` bytes, then labels of at most 63 bytes up to `total` bytes.
    let address = |local: usize, total: usize| {
        let mut address = format!("{}@", "a".repeat(local));
        while total - address.len() > 64 {
            address.push_str(&"b".repeat(62));
            address.push('.');
        }
        address.push_str(&"c".repeat(total - address.len()));
        address
    };
    let pass = "Zq8!lm2#correct-horse-battery-staple-".repeat(4);
    let cases = [
        (address(64, 254), pass[..8].to_owned(), 202, ""),
        (address(64, 255), pass[..8].to_owned(), 422, "invalid_email"),
        (
            "seven@example.com".to_owned(),
            pass[..7].to_owned(),
            422,
            "weak_password",
        ),
        (
            "max@example.com".to_owned(),
            pass[..128].to_owned(),
            202,
            "",
        ),
        (
            "over@example.com".to_owned(),
            pass[..129].to_owned(),
            422,
            "weak_password",
        ),
    ];
    for (email, password, status, code) in cases {
        let reply = api
            .post(
                "/auth/register",
                json!({"email": email, "password": password}),
            )
            .await;
        assert_eq!(
            (reply.status.as_u16(), reply.code()),
            (status, code),
            "{} bytes, {} characters: {}",
            email.len(),
            password.chars().count(),
            reply.text
        );
    }
    let token = api
        .post("/auth/verify-email", json!({"token": "A".repeat(44)}))
        .await;
    assert!(token.status.is_client_error(), "{}", token.text);
}
