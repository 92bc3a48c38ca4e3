//! The shared conformance suite of auth-core, every check against a real
//! PostgreSQL: each test gets a freshly migrated schema of its own (see
//! `support`), so the tests run in parallel.
//!
//! Without `DATABASE_URL` each test prints why it skips and passes; with
//! `CI=true` it fails instead.

mod support;

auth_core::store_conformance_tests!(match support::store().await {
    Some(store) => store,
    None => return,
});
