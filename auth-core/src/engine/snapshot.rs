//! The user snapshot a [`SessionUserCache`](crate::store::SessionUserCache)
//! keeps with each session (DESIGN 8), and its invalidation.
//!
//! The encoding is the engine's: backends store the bytes as given. It is
//! compact (a Redis session with its snapshot stays under 512 bytes) and
//! versioned; a snapshot this version cannot read is treated as absent, so the
//! user is read from the user store again.
//!
//! Layout (version 1): `1`, the user id (16 bytes), a flags byte (which
//! optional times follow, whether the normalised address differs from the
//! address), `created_at`, `updated_at`, then each present optional time
//! (`email_verified_at`, `disabled_at`, `reset_required_at`), each as 8 bytes
//! of Unix seconds and 4 of nanoseconds (big-endian); then the address
//! (length byte, bytes) and, when it differs, the normalised address.

use time::OffsetDateTime;
use uuid::Uuid;

use super::Engine;
use crate::email::EmailAddress;
use crate::error::AuthError;
use crate::store::{User, UserId};

const VERSION: u8 = 1;
const VERIFIED: u8 = 1;
const DISABLED: u8 = 2;
const RESET_REQUIRED: u8 = 4;
const NORMALIZED_DIFFERS: u8 = 8;

fn put_time(out: &mut Vec<u8>, t: OffsetDateTime) {
    out.extend_from_slice(&t.unix_timestamp().to_be_bytes());
    out.extend_from_slice(&t.nanosecond().to_be_bytes());
}

fn put_str(out: &mut Vec<u8>, s: &str) -> Option<()> {
    out.push(u8::try_from(s.len()).ok()?);
    out.extend_from_slice(s.as_bytes());
    Some(())
}

/// The snapshot of `user`; `None` when it does not fit the format (an
/// address over 255 bytes, which the engine never accepts): such a user is
/// simply not cached.
pub(crate) fn encode(user: &User) -> Option<Vec<u8>> {
    let email = &user.email;
    let mut flags = 0;
    for (set, flag) in [
        (user.email_verified_at.is_some(), VERIFIED),
        (user.disabled_at.is_some(), DISABLED),
        (user.reset_required_at.is_some(), RESET_REQUIRED),
        (email.as_str() != email.normalized(), NORMALIZED_DIFFERS),
    ] {
        if set {
            flags |= flag;
        }
    }
    let mut out = Vec::with_capacity(64 + 2 * email.as_str().len());
    out.push(VERSION);
    out.extend_from_slice(user.id.0.as_bytes());
    out.push(flags);
    put_time(&mut out, user.created_at);
    put_time(&mut out, user.updated_at);
    for t in [
        user.email_verified_at,
        user.disabled_at,
        user.reset_required_at,
    ]
    .into_iter()
    .flatten()
    {
        put_time(&mut out, t);
    }
    put_str(&mut out, email.as_str())?;
    if flags & NORMALIZED_DIFFERS != 0 {
        put_str(&mut out, email.normalized())?;
    }
    Some(out)
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
        let (head, rest) = self.0.split_first_chunk::<N>()?;
        self.0 = rest;
        Some(*head)
    }

    fn time(&mut self) -> Option<OffsetDateTime> {
        let secs = i64::from_be_bytes(self.take()?);
        let nanos = u32::from_be_bytes(self.take()?);
        OffsetDateTime::from_unix_timestamp(secs)
            .ok()?
            .replace_nanosecond(nanos)
            .ok()
    }

    fn text(&mut self) -> Option<String> {
        let [len] = self.take()?;
        let (head, rest) = self.0.split_at_checked(usize::from(len))?;
        self.0 = rest;
        String::from_utf8(head.to_vec()).ok()
    }
}

/// The user of a snapshot, or `None` for bytes this version cannot read.
pub(crate) fn decode(bytes: &[u8]) -> Option<User> {
    let mut r = Reader(bytes);
    let [version] = r.take()?;
    if version != VERSION {
        return None;
    }
    let id = UserId(Uuid::from_bytes(r.take()?));
    let [flags] = r.take()?;
    let created_at = r.time()?;
    let updated_at = r.time()?;
    let mut optional = |flag| {
        if flags & flag == 0 {
            Some(None)
        } else {
            r.time().map(Some)
        }
    };
    let email_verified_at = optional(VERIFIED)?;
    let disabled_at = optional(DISABLED)?;
    let reset_required_at = optional(RESET_REQUIRED)?;
    let address = r.text()?;
    let normalized = if flags & NORMALIZED_DIFFERS == 0 {
        address.clone()
    } else {
        r.text()?
    };
    if !r.0.is_empty() {
        return None;
    }
    Some(User {
        id,
        email: EmailAddress::from_stored(address, normalized),
        email_verified_at,
        created_at,
        updated_at,
        disabled_at,
        reset_required_at,
    })
}

impl Engine {
    /// Every change to a user that requests must see at once (disable or
    /// enable, password change or reset, reset required set or cleared, email
    /// verification, a second factor on or off, roles, deletion) calls this
    /// after writing the user store and before the flow returns: it drops the
    /// user's cached snapshots on every session, so every instance's next
    /// `authenticate` reads the user store again (DESIGN 8). A snapshot read
    /// before the change and written back after it is refused by the
    /// store's compare-and-set on the session's stamp.
    ///
    /// Without a session cache there is nothing to drop.
    pub(crate) async fn user_changed(&self, user_id: UserId) -> Result<(), AuthError> {
        if let Some(cache) = &self.session_cache {
            cache.invalidate_user(user_id).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use time::Duration;

    use super::*;

    fn user() -> User {
        let t = OffsetDateTime::from_unix_timestamp_nanos(1_893_456_000_123_456_789)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH);
        User {
            id: UserId::new_random(),
            email: EmailAddress::from_stored(
                "Alice@Example.com".into(),
                "alice@example.com".into(),
            ),
            email_verified_at: Some(t + Duration::seconds(1)),
            created_at: t,
            updated_at: t + Duration::nanoseconds(7),
            disabled_at: Some(t + Duration::days(2)),
            reset_required_at: Some(t - Duration::days(365 * 40)),
        }
    }

    #[test]
    fn users_round_trip_with_every_field() {
        let full = user();
        assert_eq!(encode(&full).and_then(|b| decode(&b)), Some(full.clone()));
        let bare = User {
            email: EmailAddress::from_stored("bob@example.com".into(), "bob@example.com".into()),
            email_verified_at: None,
            disabled_at: None,
            reset_required_at: None,
            ..full
        };
        let bytes = encode(&bare).unwrap_or_default();
        assert_eq!(decode(&bytes), Some(bare));
        // 1 + 16 + 1 + 2 * 12 + 1 + 15: compact enough for the Redis budget.
        assert_eq!(bytes.len(), 58);
    }

    #[test]
    fn unreadable_snapshots_are_absent() {
        let bytes = encode(&user()).unwrap_or_default();
        for cut in 0..bytes.len() {
            assert_eq!(decode(bytes.get(..cut).unwrap_or_default()), None, "{cut}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(decode(&longer), None);
        let mut other_version = bytes;
        if let Some(v) = other_version.first_mut() {
            *v = 2;
        }
        assert_eq!(decode(&other_version), None);
    }
}
