//! A test client over the in-process application: real routes, real engine, the
//! memory store, a mock clock and a capturing mailer.

#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::indexing_slicing,
    reason = "shared by several test files; a failed unwrap is a failed test"
)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use async_trait::async_trait;
use auth_axum::{AuthState, WebConfig};
use auth_core::AuthConfig;
use auth_core::conformance::{Harness, Stores};
use auth_core::mail::MessageKind;
use auth_core::store::{NewUser, StoreError, User, UserId, UserStore};
use auth_store_memory::MemoryStore;
use axum::Router;
use axum::body::Body;
use axum::extract::connect_info::MockConnectInfo;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use time::OffsetDateTime;
use tower::ServiceExt;

pub(crate) const PW: &str = "purple otter sings";
pub(crate) const PEER: [u8; 4] = [203, 0, 113, 5];

/// A user store that can be told to fail, for the 503 and 500 paths. The
/// credentials live in the same memory store, unwrapped (they belong to its
/// users).
pub(crate) struct Faulty {
    inner: Arc<MemoryStore>,
    /// 0: healthy, 1: unavailable, 2: other error, 3: unavailable for the
    /// next call only.
    pub(crate) mode: AtomicU8,
}

impl Faulty {
    fn check(&self) -> Result<(), StoreError> {
        match self.mode.load(Ordering::SeqCst) {
            0 => Ok(()),
            1 => Err(StoreError::Unavailable("injected outage".into())),
            3 => {
                self.mode.store(0, Ordering::SeqCst);
                Err(StoreError::Unavailable("injected blip".into()))
            }
            _ => Err(StoreError::Other(
                "injected failure with secret detail".into(),
            )),
        }
    }
}

#[async_trait]
impl UserStore for Faulty {
    async fn delete_unverified_users(
        &self,
        before: OffsetDateTime,
    ) -> Result<Vec<UserId>, StoreError> {
        self.check()?;
        self.inner.delete_unverified_users(before).await
    }
    async fn delete_user(&self, id: UserId) -> Result<bool, StoreError> {
        self.check()?;
        self.inner.delete_user(id).await
    }
    async fn create_user(&self, user: NewUser) -> Result<User, StoreError> {
        self.check()?;
        self.inner.create_user(user).await
    }
    async fn user_by_id(&self, id: UserId) -> Result<Option<User>, StoreError> {
        self.check()?;
        self.inner.user_by_id(id).await
    }
    async fn user_by_email(&self, email: &str) -> Result<Option<User>, StoreError> {
        self.check()?;
        self.inner.user_by_email(email).await
    }
    async fn mark_email_verified(&self, id: UserId, at: OffsetDateTime) -> Result<(), StoreError> {
        self.check()?;
        self.inner.mark_email_verified(id, at).await
    }
    async fn set_disabled(
        &self,
        id: UserId,
        at: Option<OffsetDateTime>,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        self.check()?;
        self.inner.set_disabled(id, at, now).await
    }
    async fn set_reset_required(
        &self,
        id: UserId,
        at: Option<OffsetDateTime>,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        self.check()?;
        self.inner.set_reset_required(id, at, now).await
    }
}

pub(crate) struct Api {
    pub(crate) app: Router,
    pub(crate) h: Harness,
    pub(crate) users: Arc<Faulty>,
    pub(crate) state: AuthState,
}

pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Value,
    pub(crate) text: String,
}

impl Reply {
    pub(crate) fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }

    pub(crate) fn cookie(&self) -> Option<String> {
        let set = self.headers.get(header::SET_COOKIE)?.to_str().ok()?;
        Some(set.split(';').next()?.to_owned())
    }

    pub(crate) fn set_cookie(&self) -> String {
        self.headers
            .get(header::SET_COOKIE)
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default()
    }
}

impl Api {
    pub(crate) fn new() -> Self {
        Self::with(|_, _| {})
    }

    pub(crate) fn with(change: impl FnOnce(&mut AuthConfig, &mut WebConfig)) -> Self {
        let (mut config, mut web) = (Harness::config(), WebConfig::default());
        change(&mut config, &mut web);
        let memory = Arc::new(MemoryStore::new());
        let users = Arc::new(Faulty {
            inner: Arc::clone(&memory),
            mode: AtomicU8::new(0),
        });
        // Accounts are read through the faulty users, one store at a time.
        let stores = Stores {
            users: users.clone(),
            accounts: None,
            ..Stores::all(memory)
        };
        let h = Harness::with_config(stores, config);
        let state = AuthState::new(h.auth.clone(), web).unwrap();
        let app = state
            .app()
            .layer(MockConnectInfo(SocketAddr::from((PEER, 40000))));
        Self {
            app,
            h,
            users,
            state,
        }
    }

    pub(crate) async fn send(&self, request: Request<Body>) -> Reply {
        let response = self.app.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Reply {
            status,
            headers,
            body,
            text,
        }
    }

    pub(crate) async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        cookie: Option<&str>,
    ) -> Reply {
        let mut request = Request::builder().method(method).uri(path);
        if let Some(cookie) = cookie {
            request = request.header(header::COOKIE, cookie);
        }
        let body = match body {
            Some(v) => {
                request = request.header(header::CONTENT_TYPE, "application/json");
                Body::from(v.to_string())
            }
            None => Body::empty(),
        };
        self.send(request.body(body).unwrap()).await
    }

    pub(crate) async fn post(&self, path: &str, body: Value) -> Reply {
        self.call(Method::POST, &format!("/api/v1{path}"), Some(body), None)
            .await
    }

    pub(crate) async fn post_with(&self, path: &str, body: Value, cookie: &str) -> Reply {
        self.call(
            Method::POST,
            &format!("/api/v1{path}"),
            Some(body),
            Some(cookie),
        )
        .await
    }

    pub(crate) async fn get(&self, path: &str, cookie: Option<&str>) -> Reply {
        self.call(Method::GET, &format!("/api/v1{path}"), None, cookie)
            .await
    }

    /// Registers and verifies through the API; returns nothing.
    pub(crate) async fn verified(&self, email: &str) {
        let r = self
            .post("/auth/register", json!({"email": email, "password": PW}))
            .await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.text);
        let token = self.h.token(email, MessageKind::Verification).await;
        let r = self
            .post(
                "/auth/verify-email",
                json!({"token": token.expose_secret()}),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
    }

    /// Logs in through the API; returns the `Cookie` header value.
    pub(crate) async fn login(&self, email: &str, password: &str) -> String {
        let r = self
            .post("/auth/login", json!({"email": email, "password": password}))
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.text);
        r.cookie().unwrap()
    }
}

/// The log lines written on this thread while the guard [`Captured::start`]
/// returns lives.
#[derive(Clone, Default)]
pub(crate) struct Captured(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    /// Captures this thread's log, as JSON lines with `json`, else as text.
    pub(crate) fn start(json: bool) -> (Self, tracing::subscriber::DefaultGuard) {
        let logs = Self::default();
        let sink = logs.clone();
        let builder = tracing_subscriber::fmt()
            .with_writer(move || sink.clone())
            .with_ansi(false);
        let guard = if json {
            tracing::subscriber::set_default(builder.json().finish())
        } else {
            tracing::subscriber::set_default(builder.finish())
        };
        (logs, guard)
    }

    /// Everything written so far.
    pub(crate) fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }

    /// Every line written so far, parsed as JSON.
    pub(crate) fn lines(&self) -> Vec<Value> {
        self.text()
            .lines()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect()
    }
}
