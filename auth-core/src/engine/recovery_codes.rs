//! Recovery codes (S15): ten high-entropy single-use codes, shown once,
//! stored as keyed hashes, each one a second factor on its own.

use std::fmt;

use zeroize::Zeroizing;

use super::second_factor::SecondFactorCode;
use super::{Auth, Authenticated, Engine, RequestContext};
use crate::error::AuthError;
use crate::store::{AuditKind, UserId};
use crate::token::TokenHash;

/// Codes issued at a time.
pub(super) const RECOVERY_CODES: usize = 10;
/// Symbols per code: 16 of 32 (80 bits).
const CODE_SYMBOLS: usize = 16;
/// Crockford's base32 alphabet, lowercase: no i, l, o or u to misread.
const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";

/// Freshly issued recovery codes, shown to the user once. `Debug` hides them.
#[derive(Clone)]
pub struct RecoveryCodes(Vec<Zeroizing<String>>);

impl RecoveryCodes {
    /// The codes, formatted `xxxx-xxxx-xxxx-xxxx`. Show them once; never log them.
    #[must_use]
    pub fn expose_secret(&self) -> Vec<&str> {
        self.0.iter().map(|c| c.as_str()).collect()
    }
}

impl fmt::Debug for RecoveryCodes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RecoveryCodes(<{} redacted>)", self.0.len())
    }
}

/// One fresh code: 16 symbols in groups of four.
fn generate_code() -> Result<Zeroizing<String>, AuthError> {
    let mut bytes = Zeroizing::new([0u8; CODE_SYMBOLS]);
    getrandom::fill(bytes.as_mut()).map_err(AuthError::internal)?;
    let mut code = Zeroizing::new(String::with_capacity(CODE_SYMBOLS + 3));
    for (i, b) in bytes.iter().enumerate() {
        if i > 0 && i % 4 == 0 {
            code.push('-');
        }
        // 256 is a multiple of 32: every symbol is equally likely.
        let symbol = ALPHABET.get(usize::from(b % 32)).copied().unwrap_or(b'0');
        code.push(char::from(symbol));
    }
    Ok(code)
}

/// The canonical form of a code as typed: case, spaces and dashes ignored;
/// `None` unless it is 16 symbols of the alphabet.
pub(super) fn normalize(input: &str) -> Option<Zeroizing<String>> {
    let code: Zeroizing<String> = Zeroizing::new(
        input
            .chars()
            .filter(|c| !matches!(c, '-' | ' '))
            .map(|c| c.to_ascii_lowercase())
            .collect(),
    );
    let valid = code.len() == CODE_SYMBOLS && code.bytes().all(|b| ALPHABET.contains(&b));
    valid.then_some(code)
}

impl Engine {
    /// The keyed hash a user's code is stored under.
    pub(super) fn recovery_code_hash(&self, user: UserId, normalized: &str) -> TokenHash {
        let mut data = user.0.as_bytes().to_vec();
        data.extend_from_slice(normalized.as_bytes());
        self.key.hash_tagged("recovery_code", &data)
    }

    /// Issues a new set of codes for the user, replacing every older one.
    pub(super) async fn issue_recovery_codes(
        &self,
        user: UserId,
    ) -> Result<RecoveryCodes, AuthError> {
        let mut codes = Vec::with_capacity(RECOVERY_CODES);
        let mut hashes = Vec::with_capacity(RECOVERY_CODES);
        for _ in 0..RECOVERY_CODES {
            let code = generate_code()?;
            let normalized = normalize(&code).ok_or_else(|| AuthError::internal("bad code"))?;
            hashes.push(self.recovery_code_hash(user, &normalized));
            codes.push(code);
        }
        self.recovery_codes
            .replace_recovery_codes(user, &hashes, self.now())
            .await?;
        Ok(RecoveryCodes(codes))
    }
}

impl Auth {
    /// Replaces the user's recovery codes with ten new ones, shown once. A
    /// sensitive operation (S14, S15): the session's sign-in must be recent,
    /// TOTP must be on, and `code` (a TOTP code or an unused recovery code)
    /// must be right, under the second-factor lockout; so a stolen session
    /// alone cannot mint codes. The owner is mailed.
    ///
    /// # Errors
    /// [`AuthError::ReauthenticationRequired`], [`AuthError::SecondFactorNotEnabled`],
    /// [`AuthError::InvalidCode`], [`AuthError::Locked`], [`AuthError::Unavailable`].
    #[tracing::instrument(name = "regenerate_recovery_codes", skip_all)]
    pub async fn regenerate_recovery_codes(
        &self,
        current: &Authenticated,
        code: &SecondFactorCode,
        ctx: &RequestContext,
    ) -> Result<RecoveryCodes, AuthError> {
        let e = &self.inner;
        self.require_recent_sign_in(current, None, ctx).await?;
        let user = &current.user;
        if !e.has_second_factor(user.id).await? {
            return Err(AuthError::SecondFactorNotEnabled);
        }
        if e.verify_second_factor(user, code, ctx).await?.is_none() {
            return Err(AuthError::InvalidCode);
        }
        let codes = e.issue_recovery_codes(user.id).await?;
        e.send(e.mail.recovery_codes_replaced(user.email.as_str()));
        e.audit(
            AuditKind::RecoveryCodesRegenerated,
            ctx,
            Some(user.id),
            None,
            None,
        )
        .await;
        Ok(codes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// S10: `Debug` shows how many codes, never a code.
    #[test]
    fn s10_codes_are_redacted_in_debug() {
        let codes = RecoveryCodes(vec![generate_code().unwrap(), generate_code().unwrap()]);
        let shown = format!("{codes:?}");
        assert_eq!(shown, "RecoveryCodes(<2 redacted>)");
    }

    #[test]
    fn s15_codes_have_80_bits_in_groups_and_normalize_as_typed() {
        let a = generate_code().unwrap();
        let b = generate_code().unwrap();
        assert_ne!(*a, *b);
        assert_eq!(a.len(), 19);
        assert_eq!(a.matches('-').count(), 3);
        let typed = a.to_uppercase().replace('-', " ");
        assert_eq!(normalize(&typed).as_deref(), normalize(&a).as_deref());
        assert_eq!(normalize(&a).unwrap().len(), 16);
        // Dashes only between groups of four, and every symbol of the
        // alphabet in use (a code drawn from fewer symbols has fewer bits).
        assert!(a.split('-').all(|group| group.len() == 4), "{}", *a);
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..64 {
            seen.extend(normalize(&generate_code().unwrap()).unwrap().chars());
        }
        assert_eq!(seen.len(), 32, "1,024 symbols cover the alphabet");
        for bad in [
            "",
            "abcd",
            "abcd-efgh-jkmn-pqri",
            "abcd-efgh-jkmn-pqrst",
            "ä",
        ] {
            assert!(normalize(bad).is_none(), "{bad}");
        }
    }
}
