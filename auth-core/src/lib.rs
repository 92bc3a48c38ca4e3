//! # auth-core
//!
//! The engine of the authentication library: every flow a product needs
//! (registration with email verification, login with server-side sessions,
//! lockout and rate limits, password reset and change, session management, an
//! audit trail), over storage traits that backends implement. It has no database
//! or web dependency.
//!
//! - [`Auth`]: the flows; build it with [`Auth::builder`].
//! - [`store`]: the traits a backend implements (`auth-store-memory`,
//!   `auth-store-postgres`, `auth-store-redis`), checked by one conformance suite
//!   (`conformance`, feature `test-util`).
//! - [`password`]: argon2id hashing and the password policy.
//! - [`mail`]: the mailer trait, the email templates (per message kind and
//!   locale, English by default) and the outbox that sends off the request
//!   path; SMTP is in the `auth-mailer-smtp` crate.
//!
//! A whole journey on the in-process store:
//!
//! ```
//! use std::sync::Arc;
//! use auth_core::mail::{CapturingMailer, MessageKind};
//! use auth_core::{Auth, LoginOutcome, OpaqueToken, Password, RequestContext, SecretKey};
//! use auth_store_memory::MemoryStore;
//!
//! # #[tokio::main]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mailer = CapturingMailer::new(); // tests only; in production auth_mailer_smtp::SmtpMailer
//! let auth = Auth::builder()
//!     .stores(Arc::new(MemoryStore::new()))
//!     .mailer(Arc::new(mailer.clone()))
//!     .secret_key(SecretKey::generate()?)
//!     .build()?;
//! let ctx = RequestContext::from_ip([192, 0, 2, 1].into()); // the client's address
//!
//! auth.register("alice@example.com", &Password::new("correct horse battery"), &ctx).await?;
//!
//! // The verification email carries a single-use token.
//! mailer.wait_for(1).await;
//! let token = mailer.token_for("alice@example.com", MessageKind::Verification).unwrap();
//! auth.verify_email(&OpaqueToken::new(token), &ctx).await?;
//!
//! let login = match auth.login("alice@example.com", &Password::new("correct horse battery"), false, &ctx).await? {
//!     LoginOutcome::SignedIn(login) => login,
//!     // With TOTP on, redeem the challenge with a code: auth.complete_second_factor(...).
//!     LoginOutcome::SecondFactorRequired(_) => unreachable!("no second factor enrolled"),
//! };
//! let me = auth.authenticate(&login.session.token).await?;
//! assert_eq!(me.user.email.as_str(), "alice@example.com");
//!
//! auth.logout(&login.session.token, &ctx).await?;
//! assert!(auth.authenticate(&login.session.token).await.is_err());
//! # Ok(())
//! # }
//! ```
//!
//! ## Cargo features
//!
//! - `bcrypt` (default): verify imported `$2a$`/`$2b$`/`$2y$` bcrypt hashes, which
//!   are rehashed to argon2id at the next login.
//! - `fast-argon2`: compute argon2id tags with the `argon2-rust` crate (SIMD, a
//!   reused huge-page arena), about twice as fast as the default `argon2` crate at
//!   the same parameters, and then the default [`password::HashBackend`]. Both
//!   backends write and verify the same PHC strings, so stored hashes move freely
//!   between deployments with and without it. Needs Rust 1.89.
//! - `test-util`: helpers for tests and benchmarks only: hashing parameters below
//!   the OWASP minimum, `MockClock`, `CapturingMailer`, and the store conformance
//!   suite.
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod clock;
mod config;
mod email;
mod engine;
mod error;
pub mod hooks;
pub mod log_sampling;
pub mod mail;
pub mod password;
mod seal;
mod secret;
pub mod store;
mod token;

#[cfg(test)]
mod properties;

#[cfg(feature = "test-util")]
pub mod conformance;

pub use config::{AuthConfig, BackoffPolicy, MAX_SESSION_LIFETIME};
pub use email::{EmailAddress, InvalidEmail, MAX_EMAIL_BYTES, MAX_LOCAL_BYTES};
pub use engine::{
    Auth, AuthBuilder, Authenticated, LoginOutcome, LoginSuccess, MissingClientAddress, NewSession,
    Purged, RecoveryCodes, Registration, RequestContext, SecondFactorChallenge, SecondFactorCode,
    SecondFactorStatus, SignIn, TotpEnrolment,
};
pub use error::{AuthError, BoxError, ConfigError, StoreError, UNAVAILABLE_RETRY_AFTER};
pub use secret::{Password, PasswordHashString, redact_url};
pub use token::{
    MIN_SECRET_KEY_LEN, OpaqueToken, SecretKey, TOKEN_BYTES, TOKEN_CHARS, TokenHash, TokenPurpose,
};
