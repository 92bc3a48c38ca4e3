//! The OpenAPI document covers every route with its error responses and is valid
//! OpenAPI 3.1.

#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    reason = "test code: a failed unwrap is a failed test"
)]

mod support;

use axum::http::{Method, StatusCode};
use serde_json::Value;
use support::Api;

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
        (Method::GET, "/verify-email"),
        (Method::GET, "/reset-password"),
        (Method::GET, "/assets/auth-pages.js"),
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
