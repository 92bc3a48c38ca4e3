//! # auth-store-postgres
//!
//! PostgreSQL implementations of every `auth-core` store trait, on `sqlx`, with
//! reversible migrations (`migrations/*.up.sql` / `*.down.sql`).
//!
//! Status: a placeholder in the workspace layout until the store traits exist in
//! `auth-core`; it exports nothing yet.
