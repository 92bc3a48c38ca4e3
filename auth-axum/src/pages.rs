//! The small pages that emailed links open. Opening a link changes nothing:
//! mail scanners prefetch links, so the page's button POSTs to the API. The
//! pages send `Referrer-Policy: no-referrer` (the URL carries the token) and a
//! strict CSP that allows only this crate's own script, which takes the token
//! out of the address bar (`history.replaceState`) as soon as it has read it
//! (S4).

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{Html, IntoResponse, Response};

use crate::state::AuthState;

/// The script's media type (RFC 9239), in its response and the OpenAPI document.
pub(crate) const SCRIPT_CONTENT_TYPE: &str = "text/javascript";

const CSP: &str = "default-src 'none'; script-src 'self'; connect-src 'self'; \
                   form-action 'none'; frame-ancestors 'none'; base-uri 'none'";

const SCRIPT: &str = r#"'use strict';
(function () {
  var body = document.body;
  var api = body.getAttribute('data-api');
  var token = new URLSearchParams(window.location.search).get('token') || '';
  var out = document.getElementById('result');
  var button = document.getElementById('submit');
  // The token leaves the address bar, and so the history, bookmarks and
  // screenshots, as soon as it has been read (S4).
  if (window.history && window.history.replaceState) {
    window.history.replaceState(null, '', window.location.pathname);
  }
  if (!token) {
    out.textContent = 'This link is incomplete. Open the link from your email again.';
    button.disabled = true;
  }
  function post(path, payload) {
    button.disabled = true;
    fetch(api + path, {
      method: 'POST',
      credentials: 'same-origin',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify(payload)
    }).then(function (r) {
      if (r.ok) { out.textContent = body.getAttribute('data-done'); return; }
      return r.json().then(function (e) { out.textContent = e.error.message; button.disabled = false; });
    }).catch(function () { out.textContent = 'Network error; try again.'; button.disabled = false; });
  }
  button.addEventListener('click', function (event) {
    event.preventDefault();
    if (body.getAttribute('data-page') === 'verify') {
      post('/auth/verify-email', { token: token });
    } else {
      post('/auth/password/reset', { token: token, new_password: document.getElementById('password').value });
    }
  });
})();
"#;

fn page(state: &AuthState, kind: &str, title: &str, done: &str, form: &str) -> Response {
    let service = escape(&state.auth.config().service_name);
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title} - {service}</title></head>\
         <body data-page=\"{kind}\" data-api=\"{api}\" data-done=\"{done}\">\
         <h1>{title}</h1><form>{form}<button id=\"submit\" type=\"submit\">{title}</button></form>\
         <p id=\"result\" role=\"status\"></p><script src=\"{script}\"></script></body></html>",
        api = escape(&state.web.api_prefix),
        script = escape(&state.web.script_path),
    );
    let mut response = Html(html).into_response();
    page_headers(response.headers_mut());
    response
}

fn page_headers(headers: &mut HeaderMap) {
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
}

/// The page a verification link opens.
pub(crate) async fn verify(State(state): State<AuthState>) -> Response {
    page(
        &state,
        "verify",
        "Verify your email address",
        "Your email address is verified. You can log in now.",
        "",
    )
}

/// The page a reset link opens. The field's `minlength` is the policy's
/// minimum (a hint: browsers count UTF-16 units, the server code points after
/// NFKC, and the server decides).
pub(crate) async fn reset(State(state): State<AuthState>) -> Response {
    let form = format!(
        "<label for=\"password\">New password</label> \
         <input id=\"password\" type=\"password\" autocomplete=\"new-password\" minlength=\"{}\" required> ",
        state.auth.policy().min_chars()
    );
    page(
        &state,
        "reset",
        "Choose a new password",
        "Your password was changed. Log in with the new one.",
        &form,
    )
}

/// The pages' script.
pub(crate) async fn script() -> Response {
    let mut response = (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        SCRIPT,
    )
        .into_response();
    response.headers_mut().insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    response
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}
