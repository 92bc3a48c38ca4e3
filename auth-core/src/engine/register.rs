//! Registration, email verification and verification resends (S1, S3, S4, S6).

use super::{Auth, RequestContext};
use crate::error::{AuthError, StoreError};
use crate::hooks::Profile;
use crate::password::ContextWords;
use crate::store::{AttemptKey, AttemptScope, AuditKind, NewUser, TokenCheck, User, UserId};
use crate::token::{OpaqueToken, TokenPurpose};
use crate::{EmailAddress, Password};

/// What a registration did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Registration {
    /// The new account's id when it was created on the request path
    /// (enumeration protection off). With enumeration protection the account
    /// is created in the background, so that nothing in the answer depends on
    /// the address (S3): this is `None`, and
    /// [`crate::hooks::LifecycleHooks::registered`] reports the account.
    pub user_id: Option<UserId>,
}

impl Auth {
    /// Registers an account without a profile; see
    /// [`Auth::register_with_profile`].
    ///
    /// # Errors
    /// As [`Auth::register_with_profile`].
    pub async fn register(
        &self,
        email: &str,
        password: &Password,
        ctx: &RequestContext,
    ) -> Result<Registration, AuthError> {
        self.register_with_profile(email, password, None, ctx).await
    }

    /// Registers an account and emails a verification link.
    ///
    /// A taken email answers exactly like a new one and mails the owner instead
    /// (S3), unless `enumeration_protection` is off, when it answers
    /// [`AuthError::EmailTaken`]. The password is checked and hashed on the
    /// request path for every address; with enumeration protection the account
    /// is created in the background, and then the verification link or the
    /// owner's notice goes out, so the answer and its timing never depend on
    /// the address (a new row's commit costs a write a conflict does not). Of
    /// concurrent registrations of one email, exactly one creates the account.
    ///
    /// `profile`, the application's own data, is checked by
    /// [`crate::hooks::LifecycleHooks::check_profile`] before anything else
    /// is done, and handed to [`crate::hooks::LifecycleHooks::registered`]
    /// once the account exists (on the request path without enumeration
    /// protection, so the application's row exists when this returns).
    ///
    /// # Errors
    /// [`AuthError::RateLimited`] (per IP), [`AuthError::InvalidEmail`],
    /// [`AuthError::WeakPassword`] naming the rule, [`AuthError::EmailTaken`] (only
    /// without enumeration protection), [`AuthError::Unavailable`] (the hasher or
    /// the attempt counters; the user store only without enumeration
    /// protection: with it, a failure to create the account is logged),
    /// [`AuthError::InvalidProfile`].
    #[tracing::instrument(name = "register", skip_all)]
    pub async fn register_with_profile(
        &self,
        email: &str,
        password: &Password,
        profile: Option<Profile>,
        ctx: &RequestContext,
    ) -> Result<Registration, AuthError> {
        let e = &self.inner;
        // Under a flood, refuse before any store round trip (S13).
        e.hasher.check_capacity()?;
        e.admit_request(AttemptScope::Register, ctx).await?;
        let email = EmailAddress::parse(email)?;
        if let Some(profile) = &profile {
            e.hooks
                .check_profile(profile)
                .map_err(AuthError::InvalidProfile)?;
        }
        let normalized = e
            .policy
            .validate_new(password, &ContextWords::new().email(email.as_str()))?;
        let hash = e.hasher.hash(&normalized).await?;
        let now = e.now();
        let new = NewUser {
            id: UserId::new_random(),
            email: email.clone(),
            password_hash: Some(hash),
            created_at: now,
        };
        if !e.config.enumeration_protection {
            // The answer says whether the address is taken: the insert is on
            // the request path.
            let user = match e.users.create_user(new).await {
                Ok(user) => user,
                Err(StoreError::Conflict) => return Err(AuthError::EmailTaken),
                Err(err) => return Err(err.into()),
            };
            e.hook(
                "registered",
                ctx,
                e.hooks.registered(&user, profile.as_ref()),
            )
            .await;
            // The account exists now: when too much work is pending the mail
            // is dropped and logged, and the user asks for another link.
            let user_id = user.id;
            let _queued = self
                .in_background(
                    ctx,
                    "sending a verification email failed",
                    |auth, ctx| async move { auth.send_first_verification(&user, &ctx).await },
                )
                .is_ok();
            return Ok(Registration {
                user_id: Some(user_id),
            });
        }
        // Nothing on the request path depends on the address (S3): the insert
        // (a new row commits a write that a conflict does not, measurably on
        // PostgreSQL), then the token and mail or the owner's notice, the
        // lookup and the audit, all in the background, as for reset requests.
        self.in_background(
            ctx,
            "registering an account failed",
            |auth, ctx| async move {
                match auth.create_user_retrying(new).await {
                    Ok(user) => {
                        let e = &auth.inner;
                        e.hook(
                            "registered",
                            &ctx,
                            e.hooks.registered(&user, profile.as_ref()),
                        )
                        .await;
                        auth.send_first_verification(&user, &ctx).await
                    }
                    Err(StoreError::Conflict) => {
                        auth.tell_owner_of_registration(&email, &ctx).await
                    }
                    Err(err) => Err(err.into()),
                }
            },
        )
        .map(|()| Registration { user_id: None })
    }

    /// Creates the account of an accepted registration, trying again a few
    /// times while the user store is unavailable: the request was answered
    /// and its password hashed, so a passing outage must not lose it. (An
    /// insert that landed before its connection broke comes back as a
    /// conflict: the owner's notice then goes out instead of the link, and
    /// a resend brings the link.)
    async fn create_user_retrying(&self, new: NewUser) -> Result<User, StoreError> {
        let mut wait = std::time::Duration::from_millis(250);
        for _ in 0..3 {
            match self.inner.users.create_user(new.clone()).await {
                Err(StoreError::Unavailable(_)) => {
                    tokio::time::sleep(wait).await;
                    wait *= 2;
                }
                done => return done,
            }
        }
        self.inner.users.create_user(new).await
    }

    /// The background half of a new registration: the verification link.
    async fn send_first_verification(
        &self,
        user: &User,
        ctx: &RequestContext,
    ) -> Result<(), AuthError> {
        let e = &self.inner;
        let token = e
            .issue_token(
                user.id,
                TokenPurpose::EmailVerification,
                e.config.verification_ttl,
            )
            .await?;
        e.send(
            e.mail
                .verification(user.email.as_str(), &token, e.config.verification_ttl),
        );
        e.audit(AuditKind::Registered, ctx, Some(user.id), None, None)
            .await;
        Ok(())
    }

    /// The background half of a registration of a taken address: a notice to
    /// the owner, under the per-account mail limit (S3, S6: its own counter, so
    /// notices never delay a reset mail), to the stored address, never the
    /// submitted string.
    async fn tell_owner_of_registration(
        &self,
        email: &EmailAddress,
        ctx: &RequestContext,
    ) -> Result<(), AuthError> {
        let e = &self.inner;
        let Some(owner) = e.users.user_by_email(email.normalized()).await? else {
            return Ok(());
        };
        let key = AttemptKey::Account(AttemptScope::Register, email.normalized().to_owned());
        let allowed = e.take_mail_slot(&key).await?;
        if allowed {
            e.send(e.mail.duplicate_registration(owner.email.as_str()));
        }
        e.audit(
            AuditKind::RegistrationDuplicate,
            ctx,
            Some(owner.id),
            None,
            (!allowed).then_some("throttled"),
        )
        .await;
        Ok(())
    }

    /// Verifies an email address with the token from the verification link. The
    /// token is used up (S4); verification happens only through this call (a POST
    /// in the web adapter), never by merely opening the link.
    ///
    /// # Errors
    /// [`AuthError::TokenInvalid`] (unknown, used, malformed),
    /// [`AuthError::TokenExpired`], [`AuthError::Unavailable`].
    #[tracing::instrument(name = "verify_email", skip_all)]
    pub async fn verify_email(
        &self,
        token: &OpaqueToken,
        ctx: &RequestContext,
    ) -> Result<UserId, AuthError> {
        let e = &self.inner;
        let bytes = token.decode().ok_or(AuthError::TokenInvalid)?;
        let hash = e.key.hash(TokenPurpose::EmailVerification, &bytes);
        let now = e.now();
        match e
            .tokens
            .consume_token(TokenPurpose::EmailVerification, &hash, now)
            .await?
        {
            TokenCheck::Valid(user_id) => {
                e.users.mark_email_verified(user_id, now).await?;
                e.user_changed(user_id).await?;
                e.audit(AuditKind::EmailVerified, ctx, Some(user_id), None, None)
                    .await;
                if let Some(user) = e.users.user_by_id(user_id).await? {
                    e.hook("email_verified", ctx, e.hooks.email_verified(&user))
                        .await;
                }
                Ok(user_id)
            }
            TokenCheck::Expired => Err(AuthError::TokenExpired),
            TokenCheck::Invalid => Err(AuthError::TokenInvalid),
        }
    }

    /// Sends a new verification link to an unverified account, revoking older
    /// ones. Always answers `Ok` for a valid address, whether or not an account
    /// exists or the per-account limit suppressed the mail (S3). As for
    /// [`Auth::request_password_reset`], the request only checks and counts the
    /// limits; the account lookup, audit and mail happen in the background, so
    /// the response time says nothing either.
    ///
    /// # Errors
    /// [`AuthError::RateLimited`] (per IP), [`AuthError::InvalidEmail`],
    /// [`AuthError::Unavailable`] (the attempt counters). A store failure in the
    /// background is logged, not returned.
    #[tracing::instrument(name = "resend_verification", skip_all)]
    pub async fn resend_verification(
        &self,
        email: &str,
        ctx: &RequestContext,
    ) -> Result<(), AuthError> {
        self.answer_mail_request(
            AttemptScope::VerificationResend,
            email,
            ctx,
            "resending a verification email failed",
            |auth, email, throttled, ctx| async move {
                auth.follow_resend(&email, throttled, &ctx).await
            },
        )
        .await
    }

    /// The background half of [`Auth::resend_verification`]: a new link for a
    /// known, enabled, unverified account, or an audit record if throttled.
    async fn follow_resend(
        &self,
        email: &EmailAddress,
        throttled: bool,
        ctx: &RequestContext,
    ) -> Result<(), AuthError> {
        let e = &self.inner;
        let user = e.users.user_by_email(email.normalized()).await?;
        let Some(user) = user.filter(|u| u.email_verified_at.is_none() && u.disabled_at.is_none())
        else {
            return Ok(());
        };
        if throttled {
            e.audit(
                AuditKind::VerificationResent,
                ctx,
                Some(user.id),
                None,
                Some("throttled"),
            )
            .await;
            return Ok(());
        }
        self.send_verification(user.id, user.email.as_str(), ctx)
            .await
    }

    async fn send_verification(
        &self,
        user_id: UserId,
        to: &str,
        ctx: &RequestContext,
    ) -> Result<(), AuthError> {
        let e = &self.inner;
        e.tokens
            .revoke_tokens(user_id, TokenPurpose::EmailVerification, e.now())
            .await?;
        let token = e
            .issue_token(
                user_id,
                TokenPurpose::EmailVerification,
                e.config.verification_ttl,
            )
            .await?;
        e.send(e.mail.verification(to, &token, e.config.verification_ttl));
        e.audit(
            AuditKind::VerificationResent,
            ctx,
            Some(user_id),
            None,
            None,
        )
        .await;
        Ok(())
    }
}
