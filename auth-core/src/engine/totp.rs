//! TOTP (RFC 6238 with `totp-rs`: SHA-1, 6 digits, 30 s steps, ±1 step of
//! skew): enrolment, confirmation, the code check, turning it off (S15).

use std::fmt;

use qrcode::QrCode;
use qrcode::render::svg;
use totp_rs::{Algorithm, Builder, Totp};
use zeroize::Zeroizing;

use super::recovery_codes::RecoveryCodes;
use super::second_factor::SecondFactorCode;
use super::{Auth, Authenticated, Engine, RequestContext};
use crate::Password;
use crate::error::AuthError;
use crate::seal::Sealer;
use crate::store::{AttemptKey, AttemptScope, AuditKind, TotpCredential, User, UserId};

/// Bytes of a TOTP secret (160 bits, RFC 4226's recommendation).
const SECRET_BYTES: usize = 20;
/// Seconds per step.
const STEP_SECONDS: u64 = 30;
/// What the sealed secrets are for (part of the AEAD's associated data).
const SEAL_PURPOSE: &str = "totp_secret";

/// A started enrolment: what the user's authenticator app needs. Show it
/// once; `Debug` hides the secret.
#[derive(Clone)]
pub struct TotpEnrolment {
    /// The shared secret in base32, for typing into an app.
    pub secret: Zeroizing<String>,
    /// The `otpauth://totp/...` URI the QR code holds.
    pub otpauth_uri: Zeroizing<String>,
    /// The URI as a QR code, an SVG document.
    pub qr_svg: String,
}

impl fmt::Debug for TotpEnrolment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TotpEnrolment(<redacted>)")
    }
}

/// Which second factors a user has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct SecondFactorStatus {
    /// TOTP is confirmed and asked for at sign-in.
    pub totp_enabled: bool,
    /// An enrolment was started and not confirmed yet.
    pub totp_pending: bool,
    /// Unused recovery codes.
    pub recovery_codes_left: u32,
}

/// RFC 6238 as authenticator apps implement it: SHA-1, 30 s steps, and one
/// step of skew either way (the digits are set by the caller).
fn rfc6238(secret: Vec<u8>) -> Builder {
    Builder::new()
        .with_algorithm(Algorithm::SHA1)
        .with_skew(1)
        .with_step_duration(STEP_SECONDS)
        .with_secret(secret)
}

impl Engine {
    fn sealer(&self) -> Sealer {
        Sealer::new(&self.key, SEAL_PURPOSE)
    }

    /// The RFC 6238 parameters with the user's secret; the label names the
    /// service and the account, for the authenticator's list.
    fn totp(&self, user: &User, secret: Vec<u8>) -> Result<Totp, AuthError> {
        rfc6238(secret)
            .with_digits(6)
            .with_issuer(Some(self.config.service_name.replace(':', " ")))
            .with_account_name(user.email.as_str().replace(':', " "))
            .build()
            .map_err(|e| AuthError::internal(e.to_string()))
    }

    /// Opens a stored secret and builds its generator.
    fn open_totp(&self, user: &User, credential: &TotpCredential) -> Result<Totp, AuthError> {
        let secret = self
            .sealer()
            .open(user.id, &credential.secret)
            .map_err(AuthError::internal)?;
        self.totp(user, secret.to_vec())
    }

    /// The time step a code matches at the engine's clock, ±1 step.
    fn matching_step(&self, totp: &Totp, code: &str) -> Option<i64> {
        let now = u64::try_from(self.now().unix_timestamp()).ok()?;
        let step = totp.check(code.trim(), now)?;
        i64::try_from(step).ok()
    }

    /// Accepts a TOTP code of a user with TOTP on: right at ±1 step, and its
    /// step later than the last accepted one, recorded atomically, so a code
    /// is accepted once (S15).
    pub(super) async fn accept_totp_code(
        &self,
        user: &User,
        code: &str,
    ) -> Result<bool, AuthError> {
        let Some(credential) = self
            .totp
            .totp(user.id)
            .await?
            .filter(TotpCredential::is_confirmed)
        else {
            return Ok(false);
        };
        let totp = self.open_totp(user, &credential)?;
        let Some(step) = self.matching_step(&totp, code) else {
            return Ok(false);
        };
        Ok(self.totp.accept_totp_step(user.id, step).await?)
    }
}

impl Auth {
    /// Starts TOTP enrolment for the session's user: a fresh secret, held
    /// pending (sealed at rest) until [`Auth::confirm_totp`] proves the
    /// authenticator has it. Starting again replaces a pending secret. A
    /// sensitive operation (S14): the session's sign-in must be recent.
    ///
    /// # Errors
    /// [`AuthError::ReauthenticationRequired`],
    /// [`AuthError::SecondFactorAlreadyEnabled`], [`AuthError::Unavailable`].
    #[tracing::instrument(name = "start_totp", skip_all)]
    pub async fn start_totp(
        &self,
        current: &Authenticated,
        ctx: &RequestContext,
    ) -> Result<TotpEnrolment, AuthError> {
        let e = &self.inner;
        self.require_recent_sign_in(current, None, ctx).await?;
        let user = &current.user;
        let mut secret = Zeroizing::new(vec![0u8; SECRET_BYTES]);
        getrandom::fill(&mut secret).map_err(AuthError::internal)?;
        let sealed = e
            .sealer()
            .seal(user.id, &secret)
            .map_err(AuthError::internal)?;
        let totp = e.totp(user, secret.to_vec())?;
        let uri = Zeroizing::new(
            totp.to_url()
                .map_err(|err| AuthError::internal(err.to_string()))?,
        );
        let qr_svg = QrCode::new(uri.as_bytes())
            .map_err(AuthError::internal)?
            .render::<svg::Color<'_>>()
            .min_dimensions(200, 200)
            .build();
        if !e.totp.put_pending_totp(user.id, &sealed, e.now()).await? {
            return Err(AuthError::SecondFactorAlreadyEnabled);
        }
        e.audit(
            AuditKind::TotpEnrolmentStarted,
            ctx,
            Some(user.id),
            None,
            None,
        )
        .await;
        Ok(TotpEnrolment {
            secret: Zeroizing::new(totp.secret().to_base32()),
            otpauth_uri: uri,
            qr_svg,
        })
    }

    /// Confirms the pending enrolment with a code from the authenticator:
    /// TOTP is on from now on (that code's step is used up), ten recovery
    /// codes replace any older ones and are returned once, the user's other
    /// sessions end, and the owner is mailed.
    ///
    /// # Errors
    /// [`AuthError::InvalidCode`] (wrong code, or no pending enrolment),
    /// [`AuthError::Locked`] (the second-factor lockout counts wrong codes),
    /// [`AuthError::Unavailable`].
    #[tracing::instrument(name = "confirm_totp", skip_all)]
    pub async fn confirm_totp(
        &self,
        current: &Authenticated,
        code: &str,
        ctx: &RequestContext,
    ) -> Result<RecoveryCodes, AuthError> {
        let e = &self.inner;
        let user = &current.user;
        let pending = e
            .totp
            .totp(user.id)
            .await?
            .filter(|t| !t.is_confirmed())
            .ok_or(AuthError::InvalidCode)?;
        let totp = e.open_totp(user, &pending)?;
        let step = e.matching_step(&totp, code);
        // Counted and locked out like any second-factor code, to the end
        // even when the caller stops waiting (S6).
        let (owner, caller) = (user.clone(), ctx.clone());
        let confirmed = e
            .to_the_end(move |e| async move {
                let confirm = async {
                    match step {
                        Some(step) => Ok(e
                            .totp
                            .confirm_totp(owner.id, &pending.secret, step, e.now())
                            .await?),
                        None => Ok(false),
                    }
                };
                e.limit_second_factor(&owner, &caller, "wrong_totp", confirm)
                    .await
            })
            .await?;
        if !confirmed {
            return Err(AuthError::InvalidCode);
        }
        e.user_changed(user.id).await?;
        let codes = e.issue_recovery_codes(user.id).await?;
        // Sessions signed in with the password alone end: from now on a
        // session of this account has passed the second factor, this one
        // excepted (its holder just proved the authenticator).
        e.sessions
            .revoke_user_sessions(user.id, Some(current.session.id), e.now())
            .await?;
        e.send(e.mail.second_factor_changed(user.email.as_str(), true));
        e.audit(AuditKind::TotpEnabled, ctx, Some(user.id), None, None)
            .await;
        Ok(codes)
    }

    /// Turns TOTP off: with the current password and a TOTP code, or with a
    /// recovery code alone (the authenticator may be lost). Recovery codes go
    /// too; the owner is mailed.
    ///
    /// # Errors
    /// [`AuthError::SecondFactorNotEnabled`], [`AuthError::InvalidCredentials`]
    /// (wrong or missing password with a TOTP code), [`AuthError::InvalidCode`],
    /// [`AuthError::Locked`], [`AuthError::Unavailable`].
    #[tracing::instrument(name = "disable_totp", skip_all)]
    pub async fn disable_totp(
        &self,
        current: &Authenticated,
        password: Option<&Password>,
        code: &SecondFactorCode,
        ctx: &RequestContext,
    ) -> Result<(), AuthError> {
        let e = &self.inner;
        let user = &current.user;
        if !e.has_second_factor(user.id).await? {
            return Err(AuthError::SecondFactorNotEnabled);
        }
        if let SecondFactorCode::Totp(_) = code {
            let password = password.ok_or(AuthError::InvalidCredentials)?;
            self.confirm_password(current, password, ctx).await?;
        }
        if e.verify_second_factor(user, code, ctx).await?.is_none() {
            return Err(AuthError::InvalidCode);
        }
        e.remove_second_factor(user, ctx, "user").await?;
        Ok(())
    }

    /// Which second factors the user has.
    ///
    /// # Errors
    /// [`AuthError::Unavailable`].
    pub async fn second_factor_status(
        &self,
        user: UserId,
    ) -> Result<SecondFactorStatus, AuthError> {
        let e = &self.inner;
        let totp = e.totp.totp(user).await?;
        Ok(SecondFactorStatus {
            totp_enabled: totp.as_ref().is_some_and(TotpCredential::is_confirmed),
            totp_pending: totp.as_ref().is_some_and(|t| !t.is_confirmed()),
            recovery_codes_left: e.recovery_codes.recovery_codes_left(user).await?,
        })
    }
}

impl Engine {
    /// Removes the user's TOTP secret and recovery codes, clears the
    /// second-factor lockout, mails the owner and audits `by` (`user` or
    /// `admin`). Whether there was a secret to remove.
    pub(super) async fn remove_second_factor(
        &self,
        user: &User,
        ctx: &RequestContext,
        by: &str,
    ) -> Result<bool, AuthError> {
        let removed = self.totp.delete_totp(user.id).await?;
        self.user_changed(user.id).await?;
        self.recovery_codes
            .replace_recovery_codes(user.id, &[], self.now())
            .await?;
        self.attempts
            .clear(&AttemptKey::Account(
                AttemptScope::SecondFactor,
                user.id.to_string(),
            ))
            .await?;
        if removed {
            self.send(self.mail.second_factor_changed(user.email.as_str(), false));
            self.audit(AuditKind::TotpDisabled, ctx, Some(user.id), None, Some(by))
                .await;
        }
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::{TotpEnrolment, rfc6238};
    use zeroize::Zeroizing;

    /// S10: `Debug` of an enrolment shows none of the secret.
    #[test]
    fn s10_enrolments_are_redacted_in_debug() {
        let enrolment = TotpEnrolment {
            secret: Zeroizing::new("JBSWY3DPEHPK3PXP".to_owned()),
            otpauth_uri: Zeroizing::new("otpauth://totp/x?secret=JBSWY3DPEHPK3PXP".to_owned()),
            qr_svg: "<svg>JBSWY3DPEHPK3PXP</svg>".to_owned(),
        };
        let shown = format!("{enrolment:?}");
        assert!(shown.contains("redacted"), "{shown}");
        assert!(!shown.contains("JBSWY3DP"), "{shown}");
    }

    /// RFC 6238 appendix B, SHA-1 (8 digits), and the 6-digit codes apps show
    /// (the same truncation, modulo 10^6), checked at ±1 step.
    #[test]
    fn s15_rfc_6238_vectors() {
        let secret = b"12345678901234567890".to_vec();
        let eight = rfc6238(secret.clone()).with_digits(8).build().unwrap();
        let six = rfc6238(secret).with_digits(6).build().unwrap();
        for (time, code) in [
            (59, "94287082"),
            (1_111_111_109, "07081804"),
            (1_111_111_111, "14050471"),
            (1_234_567_890, "89005924"),
            (2_000_000_000, "69279037"),
            (20_000_000_000, "65353130"),
        ] {
            assert_eq!(eight.generate(time).to_string(), code, "t={time}");
            let short = code.get(2..).unwrap();
            assert_eq!(six.generate(time).to_string(), short, "t={time}");
            let step = time / 30;
            assert_eq!(six.check(short, time), Some(step));
            assert_eq!(six.check(short, time + 30), Some(step), "one step late");
            assert_eq!(
                six.check(short, time.saturating_sub(30)),
                Some(step),
                "one step early"
            );
            assert_eq!(six.check(short, time + 60), None, "two steps late");
        }
    }
}
