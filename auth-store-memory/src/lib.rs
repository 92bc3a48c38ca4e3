//! # auth-store-memory
//!
//! In-process implementations of every `auth-core` store trait: users, tokens,
//! sessions, attempt counters and the audit trail. It is the embedded default of
//! the example server and the reference backend of the conformance suite.
//!
//! Status: the store traits it implements are being defined in `auth-core`; this
//! crate is a placeholder in the workspace layout until then and exports nothing.
