//! # auth-store-redis
//!
//! Redis implementations of the `auth-core` attempt-counter and session stores, so
//! that several application instances share rate limits, lockouts and sessions.
//! The example server uses it with its `redis` feature.
//!
//! Status: a placeholder in the workspace layout until the store traits exist in
//! `auth-core`; it exports nothing yet.
