//! The second step of a sign-in (S15): a TOTP code or a recovery code
//! redeems the challenge the first factor left, under its own lockout.

use std::fmt;
use std::sync::Arc;

use zeroize::Zeroizing;

use super::limits::{ClientLimits, Reservation};
use super::recovery_codes;
use super::sign_in::{PendingSignIn, SignIn};
use super::{Auth, Engine, LoginSuccess, RequestContext};
use crate::error::AuthError;
use crate::store::{
    Account, AttemptKey, AttemptScope, AuditKind, AuthMethod, Challenge, ChallengePurpose,
    NewChallenge, User,
};
use crate::token::{OpaqueToken, TokenHash};

/// A second-factor code as the user typed it. `Debug` hides it (S10).
#[derive(Clone)]
pub enum SecondFactorCode {
    /// A six-digit code from the authenticator app.
    Totp(Zeroizing<String>),
    /// One of the recovery codes.
    RecoveryCode(Zeroizing<String>),
}

impl SecondFactorCode {
    /// A TOTP code.
    #[must_use]
    pub fn totp(code: impl Into<String>) -> Self {
        Self::Totp(Zeroizing::new(code.into()))
    }

    /// A recovery code.
    #[must_use]
    pub fn recovery_code(code: impl Into<String>) -> Self {
        Self::RecoveryCode(Zeroizing::new(code.into()))
    }
}

impl fmt::Debug for SecondFactorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Totp(_) => f.write_str("SecondFactorCode::Totp(<redacted>)"),
            Self::RecoveryCode(_) => f.write_str("SecondFactorCode::RecoveryCode(<redacted>)"),
        }
    }
}

impl Auth {
    /// Redeems a second-factor challenge with a TOTP code or a recovery code
    /// and signs the user in, recording both factors on the session.
    ///
    /// The challenge is taken atomically (of concurrent redemptions one
    /// proceeds); a wrong code puts it back until it expires, so the user can
    /// retry, while the account's second-factor lockout limits the guesses
    /// (same backoff as passwords, S6) and the client IP counts failures like
    /// failed logins. An accepted TOTP step is recorded so the same code is
    /// refused afterwards; a recovery code is used up and the owner is mailed.
    /// A challenge whose password changed since the first factor is refused
    /// (the sign-in is bound to it, S5).
    ///
    /// # Errors
    /// [`AuthError::TokenInvalid`] (unknown, used, expired or malformed
    /// challenge), [`AuthError::InvalidCode`], [`AuthError::Locked`],
    /// [`AuthError::RateLimited`], [`AuthError::InvalidCredentials`] (the
    /// account changed meanwhile), [`AuthError::Unavailable`].
    #[tracing::instrument(name = "complete_second_factor", skip_all)]
    pub async fn complete_second_factor(
        &self,
        challenge: &OpaqueToken,
        code: &SecondFactorCode,
        ctx: &RequestContext,
    ) -> Result<LoginSuccess, AuthError> {
        let e = &self.inner;
        e.check_ip(AttemptScope::Login, ClientLimits::login(&e.config), ctx)
            .await?;
        let bytes = challenge.decode().ok_or(AuthError::TokenInvalid)?;
        let purpose = ChallengePurpose::SECOND_FACTOR;
        let hash = e.challenge_hash(purpose, &bytes);
        let taken = e
            .challenges
            .take_challenge(purpose, &hash, e.now())
            .await?
            .ok_or(AuthError::TokenInvalid)?;
        let pending = PendingSignIn::decode(&taken.payload).ok_or(AuthError::TokenInvalid)?;
        let user_id = taken.user_id.ok_or(AuthError::TokenInvalid)?;
        // The account is checked before the code, so a disabled account or a
        // changed password spends no code and mails no one (S5).
        let Some(Account { user, .. }) = e.still_valid(user_id, pending.password.as_ref()).await?
        else {
            return Err(e.credential_changed(user_id, ctx).await);
        };
        let method = match e.verify_second_factor(&user, code, ctx).await {
            Ok(Some(method)) => method,
            Ok(None) => {
                e.put_back(hash, &taken).await?;
                return Err(AuthError::InvalidCode);
            }
            Err(err) => {
                e.put_back(hash, &taken).await?;
                return Err(err);
            }
        };
        let mut proof = SignIn::new(vec![pending.first, method]).remember_me(pending.remember_me);
        if let Some(password) = pending.password {
            proof = proof.bound_to(password);
        }
        self.create_signed_in_session(user.id, proof, ctx).await
    }
}

impl Engine {
    /// Stores a taken challenge again, unchanged, for another try.
    async fn put_back(&self, hash: TokenHash, taken: &Challenge) -> Result<(), AuthError> {
        let again = NewChallenge {
            hash,
            purpose: ChallengePurpose::SECOND_FACTOR,
            user_id: taken.user_id,
            payload: taken.payload.clone(),
            created_at: taken.created_at,
            expires_at: taken.expires_at,
        };
        Ok(self.challenges.insert_challenge(again).await?)
    }

    /// Checks a second-factor code for `user` under the account's
    /// second-factor lockout: the attempt is counted before the code is
    /// checked (S6), and cleared when it is right. Returns the method that
    /// passed, or `None` for a wrong code (audited, and counted for the IP).
    /// A TOTP code is accepted only once (its step is recorded atomically); a
    /// recovery code is used up, and its owner mailed.
    ///
    /// The check runs to its end even when the caller stops waiting
    /// ([`Engine::to_the_end`]).
    ///
    /// # Errors
    /// [`AuthError::Locked`], [`AuthError::Unavailable`], and
    /// [`AuthError::Internal`] for a secret sealed under another key.
    pub(super) async fn verify_second_factor(
        self: &Arc<Self>,
        user: &User,
        code: &SecondFactorCode,
        ctx: &RequestContext,
    ) -> Result<Option<AuthMethod>, AuthError> {
        let (user, code, ctx) = (user.clone(), code.clone(), ctx.clone());
        self.to_the_end(
            move |e| async move { e.verify_second_factor_counted(&user, &code, &ctx).await },
        )
        .await
    }

    /// [`Engine::verify_second_factor`]'s work, from the count to its follow-up.
    async fn verify_second_factor_counted(
        &self,
        user: &User,
        code: &SecondFactorCode,
        ctx: &RequestContext,
    ) -> Result<Option<AuthMethod>, AuthError> {
        let passed = match code {
            SecondFactorCode::Totp(code) => {
                let check = self.accept_totp_code(user, code);
                self.limit_second_factor(user, ctx, "wrong_totp", check)
                    .await?
                    .then_some(AuthMethod::Totp)
            }
            SecondFactorCode::RecoveryCode(code) => {
                let check = self.use_recovery_code(user, code, ctx);
                self.limit_second_factor(user, ctx, "wrong_recovery_code", check)
                    .await?
                    .then_some(AuthMethod::RecoveryCode)
            }
        };
        Ok(passed)
    }

    /// Runs a second-factor `check` of `user` under the account's
    /// second-factor lockout: the attempt is reserved before the check runs
    /// (S6) and cleared when it passes; a failure is counted for the client IP
    /// and audited as `wrong`.
    ///
    /// # Errors
    /// [`AuthError::Locked`] (the check does not run), and the check's own.
    pub(super) async fn limit_second_factor(
        &self,
        user: &User,
        ctx: &RequestContext,
        wrong: &'static str,
        check: impl Future<Output = Result<bool, AuthError>>,
    ) -> Result<bool, AuthError> {
        let key = AttemptKey::Account(AttemptScope::SecondFactor, user.id.to_string());
        let counted = match self
            .reserve_attempt(&key, &self.config.account_lockout, None)
            .await?
        {
            Reservation::Counted(counted) => counted,
            Reservation::Locked(retry_after) => {
                // Counted against the client IP, so one address cannot keep
                // sending codes at a locked account, and audited aggregated, so
                // it cannot flood the trail (S6, S12).
                self.count_ip(AttemptScope::Login, ClientLimits::login(&self.config), ctx)
                    .await?;
                let client = self.client_address(ctx)?;
                self.audit_refused(AuditKind::SecondFactorFailed, ctx, client, "locked")
                    .await;
                return Err(AuthError::Locked {
                    retry_after: Some(retry_after),
                });
            }
        };
        if check.await? {
            self.attempts.clear(&key).await?;
            return Ok(true);
        }
        // A wrong code after the right password: the owner hears of it at the
        // lock, and the hard limit requires a reset, as for passwords (S6).
        self.count_failure(counted, Some(user), true, ctx).await?;
        self.audit(
            AuditKind::SecondFactorFailed,
            ctx,
            Some(user.id),
            None,
            Some(wrong),
        )
        .await;
        Ok(false)
    }

    /// Uses up a recovery code of `user`; mails the owner when it did.
    async fn use_recovery_code(
        &self,
        user: &User,
        code: &str,
        ctx: &RequestContext,
    ) -> Result<bool, AuthError> {
        let Some(normalized) = recovery_codes::normalize(code) else {
            return Ok(false);
        };
        let hash = self.recovery_code_hash(user.id, &normalized);
        if !self
            .recovery_codes
            .use_recovery_code(user.id, &hash, self.now())
            .await?
        {
            return Ok(false);
        }
        let left = self.recovery_codes.recovery_codes_left(user.id).await?;
        self.send(self.mail.recovery_code_used(user.email.as_str(), left));
        let detail = format!("{left} left");
        self.audit(
            AuditKind::RecoveryCodeUsed,
            ctx,
            Some(user.id),
            None,
            Some(&detail),
        )
        .await;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::SecondFactorCode;

    /// S10: `Debug` names the kind of code, never the code.
    #[test]
    fn s10_codes_are_redacted_in_debug() {
        for (code, kind) in [
            (SecondFactorCode::totp("123456"), "Totp"),
            (
                SecondFactorCode::recovery_code("abcd-efgh-jkmn-pqrs"),
                "RecoveryCode",
            ),
        ] {
            let shown = format!("{code:?}");
            assert!(
                shown.contains(kind) && shown.contains("redacted"),
                "{shown}"
            );
            assert!(
                !shown.contains("123456") && !shown.contains("abcd"),
                "{shown}"
            );
        }
    }
}
