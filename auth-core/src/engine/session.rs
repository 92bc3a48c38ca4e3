//! Authenticating requests and managing sessions (S5).

use super::login::PasswordCheck;
use super::snapshot;
use super::{Auth, RequestContext};
use crate::Password;
use crate::error::AuthError;
use crate::store::{AuditKind, CachedSession, SessionId, SessionRecord, User, UserId};
use crate::token::{OpaqueToken, TokenHash, TokenPurpose};

/// A valid session and its user.
#[derive(Debug, Clone)]
pub struct Authenticated {
    /// The user.
    pub user: User,
    /// The session, with its deadlines as of this request.
    pub session: SessionRecord,
}

impl Auth {
    /// Resolves a session token to its user: the hot path of every authenticated
    /// request. With a session cache ([`AuthBuilder::session_cache`](crate::AuthBuilder::session_cache))
    /// and a warm snapshot it is one read of the session store and none of the
    /// user store; otherwise the session store and then the user store, and
    /// the user read is then kept as the session's snapshot (compare-and-set
    /// on the stamp read with the session, so a read from before a change is
    /// never kept after it). The idle deadline is written back at most once
    /// per `touch_interval`, and never past the absolute deadline (activity
    /// extends the idle deadline only).
    ///
    /// # Errors
    /// [`AuthError::Unauthenticated`] for a malformed, unknown, revoked or expired
    /// token or a disabled user; [`AuthError::Unavailable`].
    pub async fn authenticate(&self, token: &OpaqueToken) -> Result<Authenticated, AuthError> {
        let e = &self.inner;
        let mut found = self.find_session(token).await?;
        let now = e.now();
        if now - found.session.last_seen_at >= e.config.touch_interval {
            let idle = (now + e.config.session_idle_timeout).min(found.session.absolute_expires_at);
            e.sessions
                .touch_session(&found.session.token_hash, now, idle)
                .await?;
            found.session.last_seen_at = now;
            found.session.idle_expires_at = idle;
        }
        Ok(found)
    }

    /// The active session of a token, without recording activity.
    pub(super) async fn find_session(
        &self,
        token: &OpaqueToken,
    ) -> Result<Authenticated, AuthError> {
        let e = &self.inner;
        let bytes = token.decode().ok_or(AuthError::Unauthenticated)?;
        let hash = e.key.hash(TokenPurpose::Session, &bytes);
        let (session, user) = match &e.session_cache {
            Some(cache) => {
                let Some(found) = cache.cached_session(&hash).await? else {
                    return Err(AuthError::Unauthenticated);
                };
                let CachedSession {
                    session,
                    snapshot,
                    stamp,
                } = found;
                if !session.is_active(e.now()) {
                    return Err(AuthError::Unauthenticated);
                }
                let cached = snapshot
                    .as_deref()
                    .and_then(snapshot::decode)
                    .filter(|u| u.id == session.user_id);
                let user = match cached {
                    Some(user) => Some(user),
                    None => {
                        let user = e.users.user_by_id(session.user_id).await?;
                        // An unverified account may be purged (S3), which
                        // no snapshot would notice: it is read every time.
                        let keep = user.as_ref().filter(|u| {
                            u.email_verified_at.is_some()
                                || e.config.unverified_account_ttl.is_none()
                        });
                        if let Some(bytes) = keep.and_then(snapshot::encode) {
                            e.keep_snapshot(&hash, stamp, &bytes).await;
                        }
                        user
                    }
                };
                (session, user)
            }
            None => {
                let session = e
                    .sessions
                    .session_by_token(&hash)
                    .await?
                    .filter(|s| s.is_active(e.now()))
                    .ok_or(AuthError::Unauthenticated)?;
                let user = e.users.user_by_id(session.user_id).await?;
                (session, user)
            }
        };
        let user = user
            .filter(|u| u.disabled_at.is_none())
            .ok_or(AuthError::Unauthenticated)?;
        Ok(Authenticated { user, session })
    }

    /// Ends the session of a token server-side. Unknown or expired tokens are not
    /// an error: the session is gone either way.
    ///
    /// # Errors
    /// [`AuthError::Unavailable`].
    #[tracing::instrument(name = "logout", skip_all)]
    pub async fn logout(&self, token: &OpaqueToken, ctx: &RequestContext) -> Result<(), AuthError> {
        let found = match self.find_session(token).await {
            Ok(found) => found,
            Err(AuthError::Unauthenticated) => return Ok(()),
            Err(err) => return Err(err),
        };
        let e = &self.inner;
        e.sessions
            .revoke_session(found.user.id, found.session.id, e.now())
            .await?;
        e.audit(AuditKind::Logout, ctx, Some(found.user.id), None, None)
            .await;
        Ok(())
    }

    /// Ends every session of a user. Returns how many.
    ///
    /// # Errors
    /// [`AuthError::Unavailable`].
    #[tracing::instrument(name = "logout_all", skip_all)]
    pub async fn logout_all(
        &self,
        user_id: UserId,
        ctx: &RequestContext,
    ) -> Result<u64, AuthError> {
        let e = &self.inner;
        let revoked = e
            .sessions
            .revoke_user_sessions(user_id, None, e.now())
            .await?;
        e.audit(AuditKind::LogoutAll, ctx, Some(user_id), None, None)
            .await;
        Ok(revoked)
    }

    /// Ends every session of the current user but the current one. Returns how
    /// many. A sensitive operation (S14): the current session's sign-in must be
    /// within `reauthentication_window`, or `password` must be the current
    /// password, checked under the account's lockout like a login.
    ///
    /// # Errors
    /// [`AuthError::ReauthenticationRequired`] (an old sign-in and no password),
    /// [`AuthError::InvalidCredentials`] (a wrong password),
    /// [`AuthError::Locked`], [`AuthError::Unavailable`].
    #[tracing::instrument(name = "revoke_other_sessions", skip_all)]
    pub async fn revoke_other_sessions(
        &self,
        current: &Authenticated,
        password: Option<&Password>,
        ctx: &RequestContext,
    ) -> Result<u64, AuthError> {
        let e = &self.inner;
        self.require_recent_sign_in(current, password, ctx).await?;
        let (user_id, keep) = (current.user.id, current.session.id);
        let revoked = e
            .sessions
            .revoke_user_sessions(user_id, Some(keep), e.now())
            .await?;
        e.audit(
            AuditKind::SessionRevoked,
            ctx,
            Some(user_id),
            None,
            Some("others"),
        )
        .await;
        Ok(revoked)
    }

    /// Passes when the session's sign-in is recent (S14), or else when
    /// `password` is the user's current password (checked, counted and locked
    /// out like a login; a failure is audited).
    pub(super) async fn require_recent_sign_in(
        &self,
        current: &Authenticated,
        password: Option<&Password>,
        ctx: &RequestContext,
    ) -> Result<(), AuthError> {
        let e = &self.inner;
        if e.now() - current.session.authenticated_at <= e.config.reauthentication_window {
            return Ok(());
        }
        let Some(password) = password else {
            return Err(AuthError::ReauthenticationRequired);
        };
        self.confirm_password(current, password, ctx).await
    }

    /// Passes when `password` is the session user's current password,
    /// checked, counted and locked out like a login; a failure is audited.
    pub(super) async fn confirm_password(
        &self,
        current: &Authenticated,
        password: &Password,
        ctx: &RequestContext,
    ) -> Result<(), AuthError> {
        let e = &self.inner;
        // Under a flood, refuse before any store round trip (S13).
        e.hasher.check_capacity()?;
        let email = current.user.email.normalized().to_owned();
        let account = e.accounts.account(current.user.id).await?;
        match e
            .check_password(&email, account, password, None, ctx)
            .await?
        {
            PasswordCheck::Valid(..) => Ok(()),
            PasswordCheck::Invalid(_) => {
                e.audit(
                    AuditKind::ReauthenticationFailed,
                    ctx,
                    Some(current.user.id),
                    None,
                    Some("wrong_password"),
                )
                .await;
                Err(AuthError::InvalidCredentials)
            }
        }
    }

    /// The user's active sessions, newest first.
    ///
    /// # Errors
    /// [`AuthError::Unavailable`].
    pub async fn list_sessions(&self, user_id: UserId) -> Result<Vec<SessionRecord>, AuthError> {
        let e = &self.inner;
        Ok(e.sessions.list_user_sessions(user_id, e.now()).await?)
    }

    /// Ends one of the user's sessions by its public id. Returns whether a live
    /// session of this user was revoked (another user's id revokes nothing).
    ///
    /// # Errors
    /// [`AuthError::Unavailable`].
    #[tracing::instrument(name = "revoke_session", skip_all)]
    pub async fn revoke_session(
        &self,
        user_id: UserId,
        id: SessionId,
        ctx: &RequestContext,
    ) -> Result<bool, AuthError> {
        let e = &self.inner;
        let revoked = e.sessions.revoke_session(user_id, id, e.now()).await?;
        if revoked {
            e.audit(AuditKind::SessionRevoked, ctx, Some(user_id), None, None)
                .await;
        }
        Ok(revoked)
    }
}

impl super::Engine {
    /// Stores a user snapshot read for the session of `hash`. A failure only
    /// costs the next request a user-store read, so it is logged (sampled)
    /// and the request goes on.
    async fn keep_snapshot(&self, hash: &TokenHash, stamp: u64, bytes: &[u8]) {
        let Some(cache) = &self.session_cache else {
            return;
        };
        if let Err(err) = cache.put_snapshot(hash, stamp, bytes).await {
            const REASON: &str = "storing a session's user snapshot failed";
            if self.log.sample(tracing::Level::WARN, REASON, None) {
                tracing::warn!(error = %err, "{REASON}");
            }
        }
    }
}
