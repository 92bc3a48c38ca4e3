//! The storage traits the engine needs, and the records they hold.
//!
//! Every trait is object safe (`#[async_trait]`) and held as `Arc<dyn Trait>`, so a
//! deployment can mix backends (users and tokens in PostgreSQL, sessions and
//! counters in Redis). Backends only persist: policy (expiry maths, backoff,
//! hashing, token format) stays in the engine. Each backend proves the same
//! behaviour by running the conformance suite (`auth_core::conformance`, feature
//! `test-util`).

mod account;
mod attempt;
mod audit;
mod challenge;
mod credential;
mod role;
mod session;
mod session_cache;
mod token;
mod user;

pub use account::{Account, AccountReader, SeparateAccounts};
pub use attempt::{
    AttemptKey, AttemptScope, AttemptState, AttemptStore, IPV6_SITE_PREFIX, embedded_ipv4,
};
pub use audit::{AuditEvent, AuditKind, AuditSink};
pub use challenge::{Challenge, ChallengePurpose, ChallengeStore, NewChallenge};
pub use credential::{
    PasswordCredential, PasswordStore, RecoveryCodeStore, SealedSecret, TotpCredential, TotpStore,
};
pub use role::{InvalidRole, Role, RoleStore};
pub use session::{AuthMethod, SessionId, SessionRecord, SessionStore};
pub use session_cache::{CachedSession, SessionUserCache};
pub use token::{NewToken, TokenCheck, TokenStore};
pub use user::{NewUser, User, UserId, UserStore};

pub use crate::error::StoreError;

/// Every store trait in one bound, for backends that implement them all.
pub trait AllStores:
    UserStore
    + AccountReader
    + PasswordStore
    + TotpStore
    + RecoveryCodeStore
    + TokenStore
    + SessionStore
    + ChallengeStore
    + AttemptStore
    + AuditSink
    + RoleStore
{
}

impl<T> AllStores for T where
    T: UserStore
        + AccountReader
        + PasswordStore
        + TotpStore
        + RecoveryCodeStore
        + TokenStore
        + SessionStore
        + ChallengeStore
        + AttemptStore
        + AuditSink
        + RoleStore
{
}
