//! The session cookie (S5): `__Host-` prefix when `Secure`, `HttpOnly`,
//! `SameSite`, `Path=/`, no `Domain`.

use axum::http::{HeaderMap, HeaderValue, header};
use time::Duration;

use crate::config::SameSite;
use crate::state::Web;

/// A `Set-Cookie` value carrying the session token. A session cookie (no
/// `Max-Age`) unless `max_age` is given (remember me).
pub(crate) fn set(web: &Web, token: &str, max_age: Option<Duration>) -> HeaderValue {
    let mut cookie = format!("{}={token}{}", web.cookie_name, attributes(web));
    if let Some(age) = max_age {
        cookie.push_str(&format!("; Max-Age={}", age.whole_seconds().max(0)));
    }
    HeaderValue::from_str(&cookie).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// A `Set-Cookie` value that deletes the session cookie.
pub(crate) fn clear(web: &Web) -> HeaderValue {
    let cookie = format!("{}={}; Max-Age=0", web.cookie_name, attributes(web));
    HeaderValue::from_str(&cookie).unwrap_or_else(|_| HeaderValue::from_static(""))
}

fn attributes(web: &Web) -> String {
    let same_site = match web.same_site {
        SameSite::Lax => "Lax",
        SameSite::Strict => "Strict",
    };
    let secure = if web.cookie_secure { "; Secure" } else { "" };
    format!("; Path=/; HttpOnly; SameSite={same_site}{secure}")
}

/// The value of the cookie `name`, if the request carries it.
pub(crate) fn read(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}
