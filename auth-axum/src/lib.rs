//! # auth-axum
//!
//! A thin axum adapter over `auth-core`: the versioned REST routes
//! (`/api/v1/auth/*`, `/api/v1/users/me`), cookie sessions, the `CurrentUser` and
//! `AuthSession` extractors, the one error envelope, and the OpenAPI document.
//!
//! Status: a placeholder in the workspace layout until the engine exists in
//! `auth-core`; it exports nothing yet.
