//! Tokens in URLs (S4, issue 15 item 7): no response of the library lets a
//! browser send its URL on as a `Referer`, and the pages emailed links open
//! take the token out of the address bar as soon as they have read it.

#![allow(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    clippy::print_stderr,
    reason = "test code: a failed unwrap is a failed test; a skip says why"
)]

mod support;

use axum::http::{Method, StatusCode, header};
use serde_json::{Value, json};
use support::{Api, PW};

const EMAIL: &str = "alice@example.com";

#[tokio::test]
async fn s4_every_response_of_the_library_says_no_referrer() {
    let api = Api::new();
    api.verified(EMAIL).await;
    let cookie = api.login(EMAIL, PW).await;
    let replies = [
        (
            "register 202",
            api.post(
                "/auth/register",
                json!({"email": "b@example.com", "password": PW}),
            )
            .await,
        ),
        (
            "login 401",
            api.post(
                "/auth/login",
                json!({"email": EMAIL, "password": "wrong one!"}),
            )
            .await,
        ),
        (
            "login 422",
            api.post("/auth/login", json!({"email": EMAIL})).await,
        ),
        (
            "reset 400",
            api.post(
                "/auth/password/reset",
                json!({"token": "x", "new_password": PW}),
            )
            .await,
        ),
        ("me 200", api.get("/users/me", Some(&cookie)).await),
        ("me 401", api.get("/users/me", None).await),
        (
            "sessions 200",
            api.get("/users/me/sessions", Some(&cookie)).await,
        ),
        ("openapi 200", api.get("/openapi.json", None).await),
        (
            "verify page",
            api.call(Method::GET, "/auth/verify-email?token=abc", None, None)
                .await,
        ),
        (
            "reset page",
            api.call(Method::GET, "/auth/reset-password?token=abc", None, None)
                .await,
        ),
        (
            "script",
            api.call(Method::GET, "/auth/assets/auth-pages.js", None, None)
                .await,
        ),
        (
            "healthz",
            api.call(Method::GET, "/healthz", None, None).await,
        ),
    ];
    for (what, reply) in &replies {
        assert_eq!(
            reply
                .headers
                .get(header::REFERRER_POLICY)
                .map(|v| v.to_str().unwrap()),
            Some("no-referrer"),
            "{what}: {} {}",
            reply.status,
            reply.text
        );
    }
    assert_eq!(replies[0].1.status, StatusCode::ACCEPTED);
    assert_eq!(replies[4].1.status, StatusCode::OK);
}

/// The pages' script, run in Node with a stub of the few browser APIs it
/// touches. Skipped without `node` (set `NODE` to another executable); CI has it.
fn run_page_script(script: &str, page: &str, search: &str) -> Option<Vec<Value>> {
    const HARNESS: &str = r#"
const vm = require('vm');
const fs = require('fs');
const [script, page, search] = [fs.readFileSync(process.argv[2], 'utf8'), process.argv[3], process.argv[4]];
const events = [];
const location = { pathname: '/' + page, search: search };
const attributes = { 'data-page': page, 'data-api': '/api/v1', 'data-done': 'done' };
const elements = {
  result: { textContent: '' },
  submit: { disabled: false, listeners: {}, addEventListener(type, f) { this.listeners[type] = f; } },
  password: { value: 'a new password' },
};
const window = {
  location,
  history: {
    replaceState(state, title, url) {
      events.push({ replaceState: String(url) });
      location.search = '';
    },
  },
};
vm.runInNewContext(script, {
  window,
  document: { body: { getAttribute: (name) => attributes[name] }, getElementById: (id) => elements[id] },
  URLSearchParams,
  fetch: (url, init) => { events.push({ fetch: url, body: JSON.parse(init.body) }); return new Promise(() => {}); },
});
events.push({ address: location.pathname + location.search, result: elements.result.textContent,
              disabled: elements.submit.disabled });
if (elements.submit.listeners.click && !elements.submit.disabled) {
  elements.submit.listeners.click({ preventDefault() {} });
}
console.log(JSON.stringify(events));
"#;
    let node = std::env::var_os("NODE").unwrap_or_else(|| "node".into());
    let dir = std::env::temp_dir().join(format!("auth-pages-{}-{page}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (harness, script_path) = (dir.join("harness.js"), dir.join("script.js"));
    std::fs::write(&harness, HARNESS).unwrap();
    std::fs::write(&script_path, script).unwrap();
    let output = std::process::Command::new(&node)
        .arg(&harness)
        .arg(&script_path)
        .arg(page)
        .arg(search)
        .output();
    let _ = std::fs::remove_dir_all(&dir);
    let output = match output {
        Ok(output) => output,
        Err(err) => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "CI=true but node cannot run: {err}"
            );
            eprintln!("skipped: node cannot run ({err}); set NODE to a Node.js executable");
            return None;
        }
    };
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    Some(serde_json::from_slice(&output.stdout).unwrap())
}

#[tokio::test]
async fn s4_the_pages_take_the_token_out_of_the_address_bar() {
    let api = Api::new();
    let script = api
        .call(Method::GET, "/auth/assets/auth-pages.js", None, None)
        .await
        .text;
    let token = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    for (page, path) in [
        ("verify", "/api/v1/auth/verify-email"),
        ("reset", "/api/v1/auth/password/reset"),
    ] {
        let Some(events) = run_page_script(&script, page, &format!("?token={token}")) else {
            return;
        };
        // First the address loses the token, before anything else happens.
        assert_eq!(
            events[0],
            json!({ "replaceState": format!("/{page}") }),
            "{events:?}"
        );
        assert_eq!(events[1]["address"], format!("/{page}"), "{events:?}");
        assert_eq!(events[1]["disabled"], false, "{events:?}");
        // The button still sends the token it read.
        assert_eq!(events[2]["fetch"], path, "{events:?}");
        assert_eq!(events[2]["body"]["token"], token, "{events:?}");
    }
    // Reloaded after that (no token left): the page says so instead of posting.
    let Some(events) = run_page_script(&script, "verify", "") else {
        return;
    };
    let last = events.last().unwrap();
    assert_eq!(last["disabled"], true, "{events:?}");
    assert!(
        last["result"].as_str().unwrap().contains("email"),
        "{events:?}"
    );
    assert!(
        !events.iter().any(|e| e.get("fetch").is_some()),
        "{events:?}"
    );
}
