use std::fmt;
use std::net::IpAddr;

use async_trait::async_trait;
use time::OffsetDateTime;
use uuid::Uuid;

use super::{StoreError, UserId};
use crate::token::TokenHash;

/// A session's public id: safe to show, list and pass to revoke. It is not the
/// session token.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId(pub Uuid);

impl SessionId {
    /// A fresh random id.
    #[must_use]
    pub fn new_random() -> Self {
        Self(Uuid::new_v4())
    }
}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionId({})", self.0)
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// How a user proved who they are for a session (DESIGN 6).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AuthMethod {
    /// Their password.
    Password,
    /// A TOTP code from their authenticator (S15).
    Totp,
    /// One of their recovery codes (S15).
    RecoveryCode,
    /// An OpenID Connect provider (S16), by its issuer.
    Oidc {
        /// The provider's issuer identifier.
        issuer: String,
    },
    /// A passkey (S17).
    Passkey,
}

impl AuthMethod {
    /// A stable text form for storage: `password`, `totp`, `recovery_code`,
    /// `passkey`, `oidc:<issuer>`.
    #[must_use]
    pub fn to_storage(&self) -> String {
        match self {
            Self::Password => "password".to_owned(),
            Self::Totp => "totp".to_owned(),
            Self::RecoveryCode => "recovery_code".to_owned(),
            Self::Passkey => "passkey".to_owned(),
            Self::Oidc { issuer } => format!("oidc:{issuer}"),
        }
    }

    /// The inverse of [`AuthMethod::to_storage`].
    #[must_use]
    pub fn from_storage(s: &str) -> Option<Self> {
        Some(match s {
            "password" => Self::Password,
            "totp" => Self::Totp,
            "recovery_code" => Self::RecoveryCode,
            "passkey" => Self::Passkey,
            _ => Self::Oidc {
                issuer: s
                    .strip_prefix("oidc:")
                    .filter(|i| !i.is_empty())?
                    .to_owned(),
            },
        })
    }

    /// Whether it is a second factor (TOTP or a recovery code).
    #[must_use]
    pub fn is_second_factor(&self) -> bool {
        matches!(self, Self::Totp | Self::RecoveryCode)
    }
}

/// A stored login session (S5). Only the token's keyed hash is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    /// Public id.
    pub id: SessionId,
    /// Keyed hash of the session token.
    pub token_hash: TokenHash,
    /// Whose session it is.
    pub user_id: UserId,
    /// When the session was created.
    pub created_at: OffsetDateTime,
    /// When the user last proved who they are for this session (a sign-in; a
    /// password change counts as one). Sensitive operations need it recent
    /// (S14).
    pub authenticated_at: OffsetDateTime,
    /// How the user proved who they are at that sign-in, first factor first.
    pub methods: Vec<AuthMethod>,
    /// Last time the engine recorded activity (at most once per touch interval).
    pub last_seen_at: OffsetDateTime,
    /// Idle deadline: the session dies if unused until then.
    pub idle_expires_at: OffsetDateTime,
    /// Absolute deadline: activity never extends past it.
    pub absolute_expires_at: OffsetDateTime,
    /// When it was revoked (logout, password change or reset, admin).
    pub revoked_at: Option<OffsetDateTime>,
    /// Client address at login.
    pub ip: Option<IpAddr>,
    /// Client user agent at login.
    pub user_agent: Option<String>,
}

impl SessionRecord {
    /// Whether it is usable at `now`: not revoked, before both deadlines.
    #[must_use]
    pub fn is_active(&self, now: OffsetDateTime) -> bool {
        self.revoked_at.is_none() && now < self.idle_expires_at && now < self.absolute_expires_at
    }
}

/// Login sessions, keyed by token hash, indexed by user.
#[async_trait]
pub trait SessionStore: Send + Sync {
    /// Stores a new session.
    ///
    /// # Errors
    /// Backend failures ([`StoreError::Conflict`] on a hash collision).
    async fn create_session(&self, session: SessionRecord) -> Result<(), StoreError>;

    /// The session with this token hash, whatever its state (the engine judges
    /// expiry and revocation). A backend may forget sessions after both deadlines
    /// or revocation and answer `None`.
    ///
    /// # Errors
    /// Backend failures only.
    async fn session_by_token(&self, hash: &TokenHash)
    -> Result<Option<SessionRecord>, StoreError>;

    /// Records activity on the session with this token hash: sets
    /// `last_seen_at` and `idle_expires_at`, only if the session is not revoked
    /// (a touch never revives a revoked session). The engine passes the hash it
    /// just found the session by, so a backend that keys sessions by it needs
    /// no lookup.
    ///
    /// # Errors
    /// Backend failures only.
    async fn touch_session(
        &self,
        hash: &TokenHash,
        last_seen_at: OffsetDateTime,
        idle_expires_at: OffsetDateTime,
    ) -> Result<(), StoreError>;

    /// Revokes one session of a user. Returns whether a live session was revoked
    /// (false for another user's session or an already revoked one).
    ///
    /// # Errors
    /// Backend failures only.
    async fn revoke_session(
        &self,
        user_id: UserId,
        id: SessionId,
        at: OffsetDateTime,
    ) -> Result<bool, StoreError>;

    /// Revokes every session of a user but `except`. Returns how many were
    /// revoked. A backend that keeps a user's sessions together does it in one
    /// operation; one that spreads them (Redis, keyed by token hash so that
    /// [`SessionUserCache`](super::SessionUserCache) reads are one round trip)
    /// revokes them one by one from the user's index, so a session created
    /// while it runs may survive. The engine's sign-in re-reads the account
    /// after storing a session, so a session created from a check made before
    /// a reset, password change or disable never survives either way (S5).
    ///
    /// # Errors
    /// Backend failures only.
    async fn revoke_user_sessions(
        &self,
        user_id: UserId,
        except: Option<SessionId>,
        at: OffsetDateTime,
    ) -> Result<u64, StoreError>;

    /// Revokes every session of every user, for incident response. Returns how
    /// many. A backend that cannot do it in one operation revokes user by user;
    /// a session created while it runs may survive.
    ///
    /// # Errors
    /// Backend failures only.
    async fn revoke_all_sessions(&self, at: OffsetDateTime) -> Result<u64, StoreError>;

    /// The user's sessions that are active at `now`, newest first.
    ///
    /// # Errors
    /// Backend failures only.
    async fn list_user_sessions(
        &self,
        user_id: UserId,
        now: OffsetDateTime,
    ) -> Result<Vec<SessionRecord>, StoreError>;

    /// How many of the user's sessions are active at `now`: the length of
    /// [`SessionStore::list_user_sessions`], which is what the default does.
    /// The engine asks after every sign-in (`max_sessions_per_user`), so a
    /// backend that can count without reading each session should: Redis
    /// counts its index, where a session that ended in the last millisecond
    /// before `now` may still be counted (never one that is active left out).
    ///
    /// # Errors
    /// Backend failures only.
    async fn count_user_sessions(
        &self,
        user_id: UserId,
        now: OffsetDateTime,
    ) -> Result<usize, StoreError> {
        Ok(self.list_user_sessions(user_id, now).await?.len())
    }

    /// Stores a new session, as [`SessionStore::create_session`], and answers
    /// how many of the user's sessions are active at its `created_at` (it
    /// included), as [`SessionStore::count_user_sessions`]: what every
    /// sign-in asks, so a backend that can answer both in one round trip
    /// should. The default makes the two calls.
    ///
    /// # Errors
    /// As [`SessionStore::create_session`].
    async fn create_session_and_count(&self, session: SessionRecord) -> Result<usize, StoreError> {
        let (user, now) = (session.user_id, session.created_at);
        self.create_session(session).await?;
        self.count_user_sessions(user, now).await
    }

    /// Deletes sessions past a deadline or revoked before `before`. Returns how many.
    ///
    /// # Errors
    /// Backend failures only.
    async fn delete_expired_sessions(&self, before: OffsetDateTime) -> Result<u64, StoreError>;
}

#[cfg(test)]
mod tests {
    use super::AuthMethod;

    #[test]
    fn methods_round_trip_through_their_storage_form() {
        let all = [
            AuthMethod::Password,
            AuthMethod::Totp,
            AuthMethod::RecoveryCode,
            AuthMethod::Passkey,
            AuthMethod::Oidc {
                issuer: "https://id.example.com/realm".into(),
            },
        ];
        for method in all {
            assert_eq!(AuthMethod::from_storage(&method.to_storage()), Some(method));
        }
        for bad in ["", "oidc:", "sms", "Password"] {
            assert_eq!(AuthMethod::from_storage(bad), None, "{bad}");
        }
    }
}
