//! The sign-in seam (DESIGN 6): the one place a session is created, and the
//! second step of a sign-in whose first factor passed while a second is due.
//!
//! A method (password, TOTP, recovery code; OpenID Connect and passkeys next)
//! proves who the user is and calls [`Auth::sign_in`] with what it proved.
//! A first factor whose user has a second factor gets a
//! [`SecondFactorChallenge`] instead: an opaque single-use token (S4) bound to
//! the user, the first factor, remember-me and the credential that was
//! checked, which [`Auth::complete_second_factor`] redeems.

use time::OffsetDateTime;

use super::{Auth, Engine, LoginSuccess, NewSession, RequestContext};
use crate::PasswordHashString;
use crate::error::AuthError;
use crate::store::{
    Account, AuditKind, AuthMethod, ChallengePurpose, NewChallenge, SessionId, SessionRecord, User,
    UserId,
};
use crate::token::{OpaqueToken, TokenHash, TokenPurpose};

/// What proved the user, for [`Auth::sign_in`].
///
/// ```
/// use auth_core::SignIn;
/// use auth_core::store::AuthMethod;
///
/// let proof = SignIn::new(vec![AuthMethod::Oidc { issuer: "https://id.example.com".into() }])
///     .remember_me(true);
/// assert!(proof.is_remember_me());
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SignIn {
    methods: Vec<AuthMethod>,
    remember_me: bool,
    /// The keyed hash of the password hash the password method checked: the
    /// session is bound to it (S5). Only the engine's own methods set it.
    password: Option<TokenHash>,
    /// Whether the account had a second factor when the method (or the
    /// seam) read it, so the seam need not read it again. A session stored
    /// for a sign-in that found none is refused when the account has one by
    /// then. Only the engine sets it.
    second_factor: Option<bool>,
}

impl SignIn {
    /// A sign-in proved by `methods`, first factor first.
    #[must_use]
    pub fn new(methods: Vec<AuthMethod>) -> Self {
        Self {
            methods,
            remember_me: false,
            password: None,
            second_factor: None,
        }
    }

    /// Whether the session should last the remember-me lifetime.
    #[must_use]
    pub fn remember_me(mut self, yes: bool) -> Self {
        self.remember_me = yes;
        self
    }

    /// The methods.
    #[must_use]
    pub fn methods(&self) -> &[AuthMethod] {
        &self.methods
    }

    /// Whether it asks for a remember-me session.
    #[must_use]
    pub fn is_remember_me(&self) -> bool {
        self.remember_me
    }

    /// Binds the sign-in to the password it checked, as
    /// [`Engine::password_binding`] gives it.
    pub(super) fn bound_to(mut self, password: TokenHash) -> Self {
        self.password = Some(password);
        self
    }

    /// Records whether the account had a second factor when the method read
    /// it (with its password, in one read).
    pub(super) fn second_factor_read(mut self, on: bool) -> Self {
        self.second_factor = Some(on);
        self
    }

    /// Whether one of the methods is a second factor (or, for a passkey, a
    /// factor that counts as two): then no second step is due.
    fn has_second_factor(&self) -> bool {
        self.methods.iter().any(|m| {
            matches!(
                m,
                AuthMethod::Totp | AuthMethod::RecoveryCode | AuthMethod::Passkey
            )
        })
    }
}

/// What a sign-in leads to.
#[derive(Debug)]
#[must_use]
#[allow(
    clippy::large_enum_variant,
    reason = "one per sign-in, matched at once; a box would only cost an allocation"
)]
pub enum LoginOutcome {
    /// Signed in.
    SignedIn(LoginSuccess),
    /// The first factor passed; the user has a second factor, which is due.
    /// Redeem the challenge with [`Auth::complete_second_factor`].
    SecondFactorRequired(SecondFactorChallenge),
}

impl LoginOutcome {
    /// The session, when signed in.
    #[must_use]
    pub fn signed_in(self) -> Option<LoginSuccess> {
        match self {
            Self::SignedIn(ok) => Some(ok),
            Self::SecondFactorRequired(_) => None,
        }
    }
}

/// A pending sign-in waiting for its second factor.
#[derive(Debug, Clone)]
pub struct SecondFactorChallenge {
    /// The opaque single-use token to send back with the code. Never log it.
    pub token: OpaqueToken,
    /// The second factors the user can answer with.
    pub methods: Vec<AuthMethod>,
    /// Until when it can be redeemed.
    pub expires_at: OffsetDateTime,
}

/// What a second-factor challenge carries: the sign-in it completes. The
/// password binding is a keyed hash of the password hash, so challenges
/// (which may sit in Redis) never hold a password hash.
pub(super) struct PendingSignIn {
    pub(super) first: AuthMethod,
    pub(super) remember_me: bool,
    pub(super) password: Option<TokenHash>,
}

const PAYLOAD_VERSION: u8 = 2;

impl PendingSignIn {
    /// `version, remember_me, len(first), first, password binding (32 bytes
    /// or none)`; `None` for a first factor whose name exceeds 255 bytes.
    fn encode(&self) -> Option<Vec<u8>> {
        let first = self.first.to_storage();
        let mut out = vec![PAYLOAD_VERSION, u8::from(self.remember_me)];
        out.push(u8::try_from(first.len()).ok()?);
        out.extend_from_slice(first.as_bytes());
        if let Some(binding) = &self.password {
            out.extend_from_slice(&binding.0);
        }
        Some(out)
    }

    pub(super) fn decode(payload: &[u8]) -> Option<Self> {
        let (&[version, remember_me, len], rest) = payload.split_first_chunk::<3>()?;
        if version != PAYLOAD_VERSION || remember_me > 1 {
            return None;
        }
        let (first, password) = rest.split_at_checked(usize::from(len))?;
        let first = AuthMethod::from_storage(std::str::from_utf8(first).ok()?)?;
        let password = match password {
            [] => None,
            binding => Some(TokenHash(binding.try_into().ok()?)),
        };
        Some(Self {
            first,
            remember_me: remember_me == 1,
            password,
        })
    }
}

impl Auth {
    /// Signs in a user some method proved: the only public way to a session.
    ///
    /// It checks the account (it exists, is not disabled, needs no reset).
    /// When the user has a second factor and `sign_in` holds none, no session
    /// is created: the answer is [`LoginOutcome::SecondFactorRequired`] with a
    /// challenge bound to the user, the first factor and remember-me, which
    /// [`Auth::complete_second_factor`] redeems (S15). Otherwise it creates
    /// the session with a fresh token (S5) recording `methods` and the sign-in
    /// time, enforces the cap of live sessions, and writes the
    /// `login_succeeded` audit event.
    ///
    /// It does not check email verification: each method decides what it
    /// requires of the account before calling it.
    ///
    /// # Errors
    /// [`AuthError::InvalidCredentials`] for an unknown, disabled or
    /// reset-required account (or, for the engine's own methods, a credential
    /// that changed during the sign-in), [`AuthError::Unavailable`], and
    /// [`AuthError::Internal`] for a sign-in without methods.
    #[tracing::instrument(name = "sign_in", skip_all)]
    pub async fn sign_in(
        &self,
        user_id: UserId,
        mut sign_in: SignIn,
        ctx: &RequestContext,
    ) -> Result<LoginOutcome, AuthError> {
        let e = &self.inner;
        let Some(first) = sign_in.methods.first().cloned() else {
            return Err(AuthError::internal("a sign-in names at least one method"));
        };
        let second_factor_on = match sign_in.second_factor {
            Some(on) => on,
            None => e.has_second_factor(user_id).await?,
        };
        sign_in.second_factor = Some(second_factor_on);
        if !sign_in.has_second_factor() && second_factor_on {
            if e.still_valid(user_id, sign_in.password.as_ref())
                .await?
                .is_none()
            {
                return Err(e.credential_changed(user_id, ctx).await);
            }
            let pending = PendingSignIn {
                first: first.clone(),
                remember_me: sign_in.remember_me,
                password: sign_in.password,
            };
            let methods = vec![AuthMethod::Totp, AuthMethod::RecoveryCode];
            let challenge = e
                .second_factor_challenge(user_id, &pending, methods)
                .await?;
            e.audit(
                AuditKind::SecondFactorRequired,
                ctx,
                Some(user_id),
                None,
                Some(&first.to_storage()),
            )
            .await;
            return Ok(LoginOutcome::SecondFactorRequired(challenge));
        }
        Ok(LoginOutcome::SignedIn(
            self.create_signed_in_session(user_id, sign_in, ctx).await?,
        ))
    }

    /// Creates the session of a complete sign-in and records it (audit,
    /// optional new-session mail).
    pub(super) async fn create_signed_in_session(
        &self,
        user_id: UserId,
        sign_in: SignIn,
        ctx: &RequestContext,
    ) -> Result<LoginSuccess, AuthError> {
        let e = &self.inner;
        let (session, user) = e.start_session(user_id, &sign_in, ctx).await?;
        let methods: Vec<String> = sign_in.methods.iter().map(AuthMethod::to_storage).collect();
        e.audit(
            AuditKind::LoginSucceeded,
            ctx,
            Some(user.id),
            None,
            Some(&methods.join(" ")),
        )
        .await;
        if e.config.notify_new_session {
            e.send(
                e.mail
                    .new_session(user.email.as_str(), ctx.ip, ctx.user_agent.as_deref()),
            );
        }
        e.hook("signed_in", ctx, e.hooks.signed_in(&user, &session.session))
            .await;
        Ok(LoginSuccess { user, session })
    }
}

impl Engine {
    /// Stores a session for `sign_in` with a fresh token and the sign-in time
    /// as now, bound to what was checked, and returns it with the user.
    ///
    /// After the session is stored, the user is read; if the account does not
    /// exist, was disabled or must reset, or the password the sign-in was
    /// proved with changed, the new session is revoked and the sign-in fails.
    /// A reset, change or disable writes first and then revokes every session,
    /// so whichever order the two interleave in, no session created from a
    /// stale check survives (S5). Beyond `max_sessions_per_user` live
    /// sessions, the oldest are ended.
    pub(super) async fn start_session(
        &self,
        user_id: UserId,
        sign_in: &SignIn,
        ctx: &RequestContext,
    ) -> Result<(NewSession, User), AuthError> {
        let (token, bytes) = OpaqueToken::generate().map_err(AuthError::internal)?;
        let now = self.now();
        let lifetime = if sign_in.remember_me {
            self.config.remember_me_lifetime
        } else {
            self.config.session_lifetime
        };
        let absolute = now + lifetime;
        let session = SessionRecord {
            id: SessionId::new_random(),
            token_hash: self.key.hash(TokenPurpose::Session, &bytes),
            user_id,
            created_at: now,
            authenticated_at: now,
            methods: sign_in.methods.clone(),
            last_seen_at: now,
            idle_expires_at: (now + self.config.session_idle_timeout).min(absolute),
            absolute_expires_at: absolute,
            revoked_at: None,
            ip: ctx.ip,
            user_agent: ctx.user_agent.clone(),
        };
        let live = self
            .sessions
            .create_session_and_count(session.clone())
            .await?;
        // A sign-in that found no second factor is refused when one was
        // turned on since: its session would lack it. (A password change's
        // new session keeps the methods of the one it replaces, which the
        // account's second factor may postdate: the session that turned it
        // on stays signed in.)
        let gained = |a: &Account| {
            a.second_factor && !sign_in.has_second_factor() && sign_in.second_factor == Some(false)
        };
        let valid = self
            .still_valid(user_id, sign_in.password.as_ref())
            .await?
            .filter(|a| !gained(a));
        let Some(Account { user, .. }) = valid else {
            self.sessions
                .revoke_session(user_id, session.id, self.now())
                .await?;
            return Err(self.credential_changed(user_id, ctx).await);
        };
        self.end_sessions_over_the_cap(user_id, live).await?;
        let session = NewSession {
            token,
            session,
            remember_me: sign_in.remember_me,
        };
        Ok((session, user))
    }

    /// The account, if it can sign in (exists, enabled, no reset required)
    /// and `password` (when bound) is still the binding of its password: one
    /// account read.
    pub(super) async fn still_valid(
        &self,
        user_id: UserId,
        password: Option<&TokenHash>,
    ) -> Result<Option<Account>, AuthError> {
        let account = self
            .accounts
            .account(user_id)
            .await?
            .filter(|a| a.user.disabled_at.is_none() && a.user.reset_required_at.is_none());
        let (Some(account), Some(bound)) = (account.as_ref(), password) else {
            return Ok(account);
        };
        let current = account.password.as_ref();
        Ok(current
            .is_some_and(|p| self.password_binding(&p.hash) == *bound)
            .then(|| account.clone()))
    }

    /// Audits a sign-in refused because the account or the checked password
    /// changed since the check (S5), and returns its error.
    pub(super) async fn credential_changed(
        &self,
        user_id: UserId,
        ctx: &RequestContext,
    ) -> AuthError {
        self.audit(
            AuditKind::LoginFailed,
            ctx,
            Some(user_id),
            None,
            Some("credential_changed"),
        )
        .await;
        AuthError::InvalidCredentials
    }

    /// What a sign-in is bound to when it checked the password `hash` (S5):
    /// a keyed hash of it, so that a pending sign-in stored as a challenge
    /// holds no password hash.
    pub(super) fn password_binding(&self, hash: &PasswordHashString) -> TokenHash {
        self.key
            .hash_tagged("bind:password", hash.as_str().as_bytes())
    }

    /// Whether the user has a confirmed second factor.
    pub(super) async fn has_second_factor(&self, user: UserId) -> Result<bool, AuthError> {
        Ok(self
            .totp
            .totp(user)
            .await?
            .is_some_and(|t| t.is_confirmed()))
    }

    /// Ends the user's oldest live sessions beyond `max_sessions_per_user`,
    /// given the `live` count the new session's creation answered: at or
    /// under the cap (nearly every sign-in) nothing more is read.
    async fn end_sessions_over_the_cap(
        &self,
        user_id: UserId,
        live: usize,
    ) -> Result<(), AuthError> {
        let cap = self.config.max_sessions_per_user;
        if live <= cap {
            return Ok(());
        }
        let now = self.now();
        let live = self.sessions.list_user_sessions(user_id, now).await?;
        for old in live.iter().skip(cap) {
            self.sessions.revoke_session(user_id, old.id, now).await?;
        }
        Ok(())
    }

    /// The keyed hash of a challenge token of `purpose` (S4).
    pub(super) fn challenge_hash(&self, purpose: ChallengePurpose, bytes: &[u8]) -> TokenHash {
        self.key
            .hash_tagged(&format!("challenge:{}", purpose.as_str()), bytes)
    }

    /// Stores a second-factor challenge for a user whose first factor passed.
    pub(super) async fn second_factor_challenge(
        &self,
        user_id: UserId,
        pending: &PendingSignIn,
        methods: Vec<AuthMethod>,
    ) -> Result<SecondFactorChallenge, AuthError> {
        let (token, bytes) = OpaqueToken::generate().map_err(AuthError::internal)?;
        let now = self.now();
        let expires_at = now + self.config.second_factor_ttl;
        let challenge = NewChallenge {
            hash: self.challenge_hash(ChallengePurpose::SECOND_FACTOR, &bytes),
            purpose: ChallengePurpose::SECOND_FACTOR,
            user_id: Some(user_id),
            payload: pending
                .encode()
                .ok_or_else(|| AuthError::internal("first factor name over 255 bytes"))?,
            created_at: now,
            expires_at,
        };
        self.challenges.insert_challenge(challenge).await?;
        Ok(SecondFactorChallenge {
            token,
            methods,
            expires_at,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sign_in_shows_what_it_was_given() {
        let oidc = AuthMethod::Oidc {
            issuer: "https://id.example.com".into(),
        };
        let proof = SignIn::new(vec![oidc.clone(), AuthMethod::Totp]);
        assert_eq!(proof.methods(), [oidc, AuthMethod::Totp]);
        assert!(!proof.is_remember_me());
        assert!(proof.remember_me(true).is_remember_me());
    }

    #[test]
    fn pending_sign_ins_round_trip_and_garbage_is_refused() {
        let pending = PendingSignIn {
            first: AuthMethod::Password,
            remember_me: true,
            password: Some(TokenHash([7; 32])),
        };
        let back = PendingSignIn::decode(&pending.encode().unwrap()).unwrap();
        assert_eq!(back.first, AuthMethod::Password);
        assert!(back.remember_me);
        assert_eq!(back.password, pending.password);
        let oidc = PendingSignIn {
            first: AuthMethod::Oidc {
                issuer: "https://id.example.com".into(),
            },
            remember_me: false,
            password: None,
        };
        let back = PendingSignIn::decode(&oidc.encode().unwrap()).unwrap();
        assert_eq!((back.first, back.password), (oidc.first, None));
        let mut short_binding = pending.encode().unwrap();
        short_binding.pop();
        assert!(PendingSignIn::decode(&short_binding).is_none());
        // A payload of another version, or a remember-me flag that is not
        // 0 or 1, is refused even when the rest would read.
        let mut other_version = vec![1, 0, 8];
        other_version.extend_from_slice(b"password");
        let mut bad_flag = vec![PAYLOAD_VERSION, 2, 8];
        bad_flag.extend_from_slice(b"password");
        let mut good = vec![PAYLOAD_VERSION, 0, 8];
        good.extend_from_slice(b"password");
        assert!(PendingSignIn::decode(&good).is_some());
        assert!(PendingSignIn::decode(&other_version).is_none());
        assert!(PendingSignIn::decode(&bad_flag).is_none());
        for bad in [&[][..], &[2, 0], &[1, 0, 0], &[2, 2, 0], &[2, 0, 9, b'x']] {
            assert!(PendingSignIn::decode(bad).is_none(), "{bad:?}");
        }
    }
}
