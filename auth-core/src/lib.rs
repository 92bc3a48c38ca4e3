//! # auth-core
//!
//! The engine of the authentication library: password hashing and policy today;
//! the store traits, tokens and flows arrive in the next releases (see the
//! workspace README). It has no database or web dependency.
//!
//! ```
//! use auth_core::Password;
//! use auth_core::password::{ContextWords, PasswordHasher, PasswordPolicy};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let policy = PasswordPolicy::builder().service_name("Acme").build()?;
//! let hasher = PasswordHasher::builder().build()?;
//!
//! // Registration: every rule for new passwords, then argon2id.
//! let context = ContextWords::new().email("alice@example.com");
//! let new = policy.validate_new(&Password::new("correct horse battery"), &context)?;
//! let stored = hasher.hash(&new).await?;
//!
//! // Login: only the caps and NFKC, then verify (and rehash if asked to).
//! let attempt = policy.normalize(&Password::new("correct horse battery"))?;
//! assert!(hasher.verify(&attempt, &stored).await?);
//! assert!(!hasher.needs_rehash(&stored));
//! # Ok(())
//! # }
//! ```
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod password;
mod secret;

pub use secret::{Password, PasswordHashString};

/// The Rust examples of the workspace README, compiled and run as doctests so the
/// README cannot drift from the API.
#[doc = include_str!("../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
