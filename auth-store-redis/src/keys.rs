//! The key layout (documented in the crate docs) and the hash tags that keep every
//! multi-key operation on one cluster slot.

use std::fmt::Write as _;

use auth_core::TokenHash;
use auth_core::store::{AttemptKey, UserId};
use uuid::Uuid;

/// Builds every key under one prefix. The prefix never contains `{` or `}`
/// (checked when the configuration is built), so the first hash tag of a key is
/// always one this type put there.
#[derive(Debug, Clone)]
pub(crate) struct Keys {
    prefix: String,
}

impl Keys {
    pub(crate) fn new(prefix: &str) -> Self {
        Self {
            prefix: prefix.to_owned(),
        }
    }

    /// `<prefix>:att:<scope>:a:<email>`, `<prefix>:att:<scope>:ip:<addr>` or
    /// `<prefix>:att:<scope>:net:<addr>/48`: one hash per counter (a single
    /// key, so no hash tag is needed).
    pub(crate) fn attempt(&self, key: &AttemptKey) -> String {
        format!("{}:att:{}", self.prefix, key.storage_key())
    }

    /// `<prefix>:ch:<hex challenge hash>`: one hash per challenge (a single key,
    /// so no hash tag is needed).
    pub(crate) fn challenge(&self, hash: &TokenHash) -> String {
        format!("{}:ch:{}", self.prefix, hex(&hash.0))
    }

    /// `<prefix>:{t:<hex of the token hash's first 16 bytes>}:r`: one string
    /// per session (`record.rs`), with its user's snapshot and stamp, found
    /// from the token alone (the token does not name its user); the record
    /// holds the hash's other 16 bytes, checked on every read. The braces
    /// are its hash tag.
    pub(crate) fn session(&self, hash: &TokenHash) -> String {
        self.session_of_head(crate::record::hash_head(hash))
    }

    /// [`Self::session`] from the hash's first 16 bytes (an index entry's).
    pub(crate) fn session_of_head(&self, head: &[u8]) -> String {
        format!("{}:{{t:{}}}:r", self.prefix, hex(head))
    }

    /// `<prefix>:{u:<user id>}:ix`: a sorted set of the user's sessions, each
    /// entry the session id's 16 bytes then the token hash's first 16,
    /// scored by when each stops being usable (milliseconds since the Unix
    /// epoch).
    pub(crate) fn index(&self, user: UserId) -> String {
        format!("{}:{{u:{}}}:ix", self.prefix, user.0.simple())
    }

    /// A `SCAN MATCH` pattern for every user index under the prefix.
    pub(crate) fn index_pattern(&self) -> String {
        format!("{}:{{u:*}}:ix", glob_escape(&self.prefix))
    }

    /// The user of an index key found by [`Self::index_pattern`].
    pub(crate) fn index_user(&self, key: &str) -> Option<UserId> {
        let rest = key.strip_prefix(&self.prefix)?.strip_prefix(":{u:")?;
        let id = rest.strip_suffix("}:ix")?;
        Uuid::try_parse(id).ok().map(UserId)
    }
}

/// Lower-case hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// Escapes the glob characters of Redis `MATCH` patterns.
fn glob_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The hash tag Redis Cluster hashes for `key`: the text between the first `{`
/// and the next `}` when that is not empty, else the whole key.
#[cfg(test)]
pub(crate) fn hash_tag(key: &str) -> &str {
    key.find('{')
        .and_then(|open| {
            let rest = key.get(open + 1..)?;
            let close = rest.find('}')?;
            (close > 0).then(|| rest.get(..close)).flatten()
        })
        .unwrap_or(key)
}

/// The Redis Cluster slot of `key` (CRC16/XMODEM of its hash tag, mod 16384).
#[cfg(test)]
pub(crate) fn key_slot(key: &str) -> u16 {
    let mut crc: u16 = 0;
    for byte in hash_tag(key).bytes() {
        crc ^= u16::from(byte) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 == 0 {
                crc << 1
            } else {
                (crc << 1) ^ 0x1021
            };
        }
    }
    crc % 16384
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv6Addr};

    use auth_core::store::AttemptScope;

    use super::*;

    #[test]
    fn slots_match_redis() {
        // Values from `CLUSTER KEYSLOT` and the Redis Cluster specification.
        assert_eq!(key_slot("123456789"), 0x31C3);
        assert_eq!(key_slot("foo"), 12182);
        assert_eq!(key_slot("{user1000}.following"), key_slot("user1000"));
        assert_eq!(key_slot("foo{}{bar}"), key_slot("foo{}{bar}"));
        assert_eq!(hash_tag("foo{}{bar}"), "foo{}{bar}");
        assert_eq!(hash_tag("foo{{bar}}zap"), "{bar");
        assert_eq!(hash_tag("foo{bar}{zap}"), "bar");
    }

    #[cfg(feature = "cluster")]
    #[test]
    fn slots_match_the_redis_crate() {
        use redis::cluster_routing::Slot;
        let keys = Keys::new("app");
        let user = UserId::new_random();
        for key in [
            keys.session(&TokenHash([7; 32])),
            keys.index(user),
            "foo".to_owned(),
            "{user1000}.following".to_owned(),
        ] {
            for other in [
                keys.session(&TokenHash([7; 32])),
                keys.index(user),
                "foo".to_owned(),
            ] {
                assert_eq!(
                    Slot::for_key(&key) == Slot::for_key(&other),
                    key_slot(&key) == key_slot(&other),
                    "{key} vs {other}"
                );
            }
        }
    }

    /// Every script touches one key: a session (tagged by its token hash, so
    /// that the token alone finds it) or a user's index (tagged by the user).
    /// Both kinds spread over the slots instead of piling on one.
    #[test]
    fn session_and_index_keys_carry_their_own_tags() {
        let keys = Keys::new("auth:prod");
        let hash = TokenHash(std::array::from_fn(|i| u8::try_from(i).unwrap_or(0)));
        assert_eq!(
            hash_tag(&keys.session(&hash)),
            format!("t:{}", hex(&hash.0[..16]))
        );
        let user = UserId::new_random();
        assert_eq!(
            hash_tag(&keys.index(user)),
            format!("u:{}", user.0.simple())
        );
        let sessions: std::collections::HashSet<u16> = (0..200_u8)
            .map(|n| key_slot(&keys.session(&TokenHash([n; 32]))))
            .collect();
        assert!(sessions.len() > 150, "{}", sessions.len());
        let users: std::collections::HashSet<u16> = (0..200)
            .map(|_| key_slot(&keys.index(UserId::new_random())))
            .collect();
        assert!(users.len() > 150, "{}", users.len());
    }

    #[test]
    fn layout_is_as_documented() {
        let keys = Keys::new("p");
        let user = UserId(Uuid::from_u128(1));
        let u = "00000000000000000000000000000001";
        assert_eq!(keys.index(user), format!("p:{{u:{u}}}:ix"));
        let mut hash = [0xab; 32];
        hash[16..].fill(0xcd);
        assert_eq!(
            keys.session(&TokenHash(hash)),
            format!("p:{{t:{}}}:r", "ab".repeat(16))
        );
        let ip = IpAddr::V6(Ipv6Addr::LOCALHOST);
        assert_eq!(
            keys.attempt(&AttemptKey::Ip(AttemptScope::Login, ip)),
            "p:att:login:ip:::1"
        );
        assert_eq!(
            keys.attempt(&AttemptKey::Account(
                AttemptScope::ResetRequest,
                "a@b.example".into()
            )),
            "p:att:reset:a:a@b.example"
        );
        assert_eq!(
            keys.challenge(&TokenHash([0x0f; 32])),
            format!("p:ch:{}", "0f".repeat(32))
        );
        assert_eq!(keys.index_user(&keys.index(user)), Some(user));
        assert_eq!(keys.index_user("p:{u:zz}:ix"), None);
        assert_eq!(keys.index_user("q:{u:1}:ix"), None);
    }

    #[test]
    fn patterns_escape_glob_characters() {
        assert_eq!(
            Keys::new("a*b?[c]").index_pattern(),
            r"a\*b\?\[c\]:{u:*}:ix"
        );
    }
}
