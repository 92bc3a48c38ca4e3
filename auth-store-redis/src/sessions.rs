//! [`SessionStore`] and [`SessionUserCache`] on Redis: one hash per session
//! under its token hash's tag, holding the record, the user's snapshot and its
//! stamp, and one sorted-set index per user under the user's tag.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::LazyLock;

use async_trait::async_trait;
use auth_core::store::{
    AuthMethod, CachedSession, SessionId, SessionRecord, SessionStore, SessionUserCache, UserId,
};
use auth_core::{StoreError, TokenHash};
use redis::Script;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::codec::{MAX_TTL_MS, Malformed, ceil_ms, floor_ms, nanos, parse_nanos};
use crate::conn::{RedisConnection, Retry};
use crate::keys::{hex, parse_token_hash};

/// KEYS: index. ARGV: member, score, TTL (ms). Lists a session in its user's
/// index before the session exists, so a session is never out of reach of
/// revoke-all and invalidation; the index lives as long as its longest-lived
/// session.
static INDEX_ADD: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
local ttl = tonumber(ARGV[3])
if redis.call('PTTL', KEYS[1]) < ttl then redis.call('PEXPIRE', KEYS[1], ttl) end
return 1
",
    )
});

/// KEYS: session. ARGV: TTL (ms), then the record's field/value pairs. Refuses
/// (0) a token hash that exists.
static CREATE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1
",
    )
});

/// KEYS: session. ARGV: last seen (ns), idle deadline (ns), last seen (ms,
/// floor), idle deadline (ms, ceil), max TTL. Updates only a session that
/// exists and is not revoked, so a touch never revives one; the TTL follows the
/// idle deadline and never passes the absolute one. Returns the owner, the
/// session id and the idle deadline written (ms), for the index, or nil.
static TOUCH: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local v = redis.call('HMGET', KEYS[1], 'ra', 'aem', 'ae', 'uid', 'id')
if not v[2] or v[1] then return nil end
local aem = tonumber(v[2])
local ie, iem = ARGV[2], tonumber(ARGV[4])
if iem > aem then ie, iem = v[3], aem end
local ttl = math.min(math.max(iem - tonumber(ARGV[3]), 1), tonumber(ARGV[5]))
redis.call('HSET', KEYS[1], 'ls', ARGV[1], 'ie', ie, 'iem', iem)
redis.call('PEXPIRE', KEYS[1], ttl)
return {v[4], v[5], tostring(iem)}
",
    )
});

/// KEYS: session. ARGV: revoked at (ns), owner, session id. Revokes the session
/// when it is this user's and live (1), and drops its snapshot; 0 otherwise.
static REVOKE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local v = redis.call('HMGET', KEYS[1], 'ra', 'aem', 'uid', 'id')
if not v[2] or v[1] or v[3] ~= ARGV[2] or v[4] ~= ARGV[3] then return 0 end
redis.call('HSET', KEYS[1], 'ra', ARGV[1])
redis.call('HDEL', KEYS[1], 'u')
redis.call('HINCRBY', KEYS[1], 'sv', 1)
return 1
",
    )
});

/// KEYS: session. Drops the snapshot and moves the stamp on, so a snapshot read
/// before cannot be stored; a session that does not exist is left absent.
static INVALIDATE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HDEL', KEYS[1], 'u')
redis.call('HINCRBY', KEYS[1], 'sv', 1)
return 1
",
    )
});

/// KEYS: session. ARGV: stamp, snapshot. Stores the snapshot only when the
/// session exists, is not revoked and its stamp is still the one given.
static PUT_SNAPSHOT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local v = redis.call('HMGET', KEYS[1], 'sv', 'ra', 'aem')
if not v[3] or v[2] or (v[1] or '0') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'u', ARGV[2])
return 1
",
    )
});

/// KEYS: index. ARGV: before (ms, floor). Removes and returns the index entries
/// of the sessions dead by `before` (score at or before it).
static PURGE_INDEX: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local dead = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
if #dead > 0 then redis.call('ZREM', KEYS[1], unpack(dead)) end
return dead
",
    )
});

/// Login sessions (S5) on Redis, shared by every application instance, with
/// the user snapshots that make [`Auth::authenticate`](auth_core::Auth::authenticate)
/// one round trip ([`SessionUserCache`]).
///
/// A session is a hash under its token hash's tag,
/// `<prefix>:{t:<token hash>}:s`, holding the record, the snapshot of its user
/// the engine stored (`u`) and the stamp that guards it (`sv`): the token
/// alone does not know its user, so this is the only key it can reach in one
/// step on a cluster. The user's index `<prefix>:{u:<user>}:idx` (a sorted
/// set of `<session id>:<token hash>`, scored by when each session stops being
/// usable) lists them for list, revoke, revoke-all, invalidation and purge.
///
/// Every script touches one key, so it runs on one slot. An operation over a
/// user's sessions (revoke-all, invalidation, list, purge) reads the index and
/// then acts on each session, one script per session: it is not one atomic
/// step. Each is ordered to fail safe: a session is listed in the index before
/// it is written (so no session exists that revoke-all cannot reach), a
/// revocation marks the session itself before its index entry, and the
/// per-session scripts (touch, revoke, snapshot write, invalidation) are
/// atomic with each other, so a touch never revives a revoked session and a
/// snapshot read before an invalidation is never stored after it.
///
/// Revocation marks `revoked_at` and keeps the record until its TTL ends, so
/// [`SessionStore::session_by_token`] reports it as revoked. Every key carries a
/// TTL computed from the times the engine passes (idle deadline minus last
/// activity, never past the absolute deadline), never from Redis's clock.
#[derive(Debug, Clone)]
pub struct RedisSessionStore {
    conn: RedisConnection,
}

impl RedisSessionStore {
    /// Sessions on `conn`. They always fail closed: while Redis is unavailable
    /// every call answers [`StoreError::Unavailable`].
    #[must_use]
    pub fn new(conn: RedisConnection) -> Self {
        Self { conn }
    }

    /// The user's index entries (every one when `live_after` is `None`, else
    /// those scored after it), as (session id, token hash).
    async fn entries(
        &self,
        user: UserId,
        live_after: Option<i64>,
    ) -> Result<Vec<(SessionId, TokenHash)>, StoreError> {
        let mut cmd = redis::cmd("ZRANGEBYSCORE");
        cmd.arg(self.conn.keys().index(user));
        match live_after {
            Some(ms) => cmd.arg(format!("({ms}")),
            None => cmd.arg("-inf"),
        };
        cmd.arg("+inf");
        let members: Vec<String> = self.conn.query(&cmd, Retry::OnceOnIo).await?;
        members.iter().map(|m| parse_member(m)).collect()
    }

    /// Revokes one session by its key, then lowers its index score to the
    /// revocation: the session first, so a failure in between leaves it
    /// revoked (the index only says when to purge it).
    async fn revoke_entry(
        &self,
        user: UserId,
        id: SessionId,
        hash: &TokenHash,
        at: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let keys = self.conn.keys();
        let mut invocation = REVOKE.key(keys.session(hash));
        invocation
            .arg(nanos(at))
            .arg(user.0.simple().to_string())
            .arg(id.0.simple().to_string());
        let revoked: i64 = self.conn.script(&invocation, Retry::Never).await?;
        if revoked == 1 {
            let mut lower = redis::cmd("ZADD");
            lower
                .arg(keys.index(user))
                .arg("XX")
                .arg("LT")
                .arg(ceil_ms(at))
                .arg(member(id, hash));
            self.conn.query::<i64>(&lower, Retry::OnceOnIo).await?;
        }
        Ok(revoked == 1)
    }

    async fn read(&self, hash: &TokenHash) -> Result<Option<CachedSession>, StoreError> {
        let mut read = redis::cmd("HGETALL");
        read.arg(self.conn.keys().session(hash));
        let fields: HashMap<String, Vec<u8>> = self.conn.query(&read, Retry::OnceOnIo).await?;
        if fields.is_empty() {
            return Ok(None);
        }
        decode_cached(*hash, fields).map(Some)
    }

    async fn drop_index_entry(&self, user: UserId, id: SessionId, hash: &TokenHash) {
        let mut cmd = redis::cmd("ZREM");
        cmd.arg(self.conn.keys().index(user)).arg(member(id, hash));
        let _ = self.conn.query::<i64>(&cmd, Retry::OnceOnIo).await;
    }
}

/// An index entry: `<session id>:<hex token hash>`.
fn member(id: SessionId, hash: &TokenHash) -> String {
    format!("{}:{}", id.0.simple(), hex(&hash.0))
}

fn parse_member(m: &str) -> Result<(SessionId, TokenHash), StoreError> {
    m.split_once(':')
        .and_then(|(id, hash)| Some((SessionId(parse_uuid(id)?), parse_token_hash(hash)?)))
        .ok_or_else(|| malformed("session index entry"))
}

/// The session, snapshot and stamp of a session hash's fields.
fn decode_cached(
    hash: TokenHash,
    mut fields: HashMap<String, Vec<u8>>,
) -> Result<CachedSession, StoreError> {
    let snapshot = fields.remove("u");
    let stamp = match fields.remove("sv") {
        Some(v) => std::str::from_utf8(&v)
            .ok()
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| malformed("session stamp"))?,
        None => 0,
    };
    let text = fields
        .into_iter()
        .map(|(k, v)| String::from_utf8(v).map(|v| (k, v)))
        .collect::<Result<HashMap<_, _>, _>>()
        .map_err(|_| malformed("session record"))?;
    Ok(CachedSession::new(decode(hash, text)?, snapshot, stamp))
}

fn malformed(what: &'static str) -> StoreError {
    StoreError::Other(Box::new(Malformed(what)))
}

fn parse_uuid(s: &str) -> Option<Uuid> {
    Uuid::try_parse(s).ok()
}

/// The instant a session stops being usable, in ms (rounded up): its idle or
/// absolute deadline, or its revocation.
fn dead_at_ms(s: &SessionRecord) -> i64 {
    let deadline = ceil_ms(s.idle_expires_at).min(ceil_ms(s.absolute_expires_at));
    s.revoked_at
        .map_or(deadline, |at| deadline.min(ceil_ms(at)))
}

/// The record as field/value pairs: exact times in nanoseconds (`ca`, `au`, `ls`,
/// `ie`, `ae`, `ra`), the methods (`me`, see [`encode_methods`]), plus the
/// deadlines in milliseconds (`iem`, `aem`) for scripts. The token hash is not
/// a field: the key names it.
fn encode(s: &SessionRecord) -> Vec<(&'static str, String)> {
    let mut fields = vec![
        ("id", s.id.0.simple().to_string()),
        ("uid", s.user_id.0.simple().to_string()),
        ("ca", nanos(s.created_at)),
        ("au", nanos(s.authenticated_at)),
        ("me", encode_methods(&s.methods)),
        ("ls", nanos(s.last_seen_at)),
        ("ie", nanos(s.idle_expires_at)),
        ("ae", nanos(s.absolute_expires_at)),
        ("iem", ceil_ms(s.idle_expires_at).to_string()),
        ("aem", ceil_ms(s.absolute_expires_at).to_string()),
    ];
    if let Some(at) = s.revoked_at {
        fields.push(("ra", nanos(at)));
    }
    if let Some(ip) = s.ip {
        fields.push(("ip", ip.to_string()));
    }
    if let Some(ua) = &s.user_agent {
        fields.push(("ua", ua.clone()));
    }
    fields
}

fn decode(
    token_hash: TokenHash,
    mut f: HashMap<String, String>,
) -> Result<SessionRecord, StoreError> {
    let bad = || malformed("session record");
    let time = |name: &str| f.get(name).and_then(|v| parse_nanos(v));
    let methods = f
        .get("me")
        .and_then(|v| decode_methods(v))
        .ok_or_else(bad)?;
    let revoked_at = match f.get("ra") {
        Some(v) => Some(parse_nanos(v).ok_or_else(bad)?),
        None => None,
    };
    let ip = match f.get("ip") {
        Some(v) => Some(v.parse::<IpAddr>().map_err(|_| bad())?),
        None => None,
    };
    let uuid = |name: &str| f.get(name).and_then(|v| parse_uuid(v));
    Ok(SessionRecord {
        id: SessionId(uuid("id").ok_or_else(bad)?),
        token_hash,
        user_id: UserId(uuid("uid").ok_or_else(bad)?),
        created_at: time("ca").ok_or_else(bad)?,
        authenticated_at: time("au").ok_or_else(bad)?,
        methods,
        last_seen_at: time("ls").ok_or_else(bad)?,
        idle_expires_at: time("ie").ok_or_else(bad)?,
        absolute_expires_at: time("ae").ok_or_else(bad)?,
        revoked_at,
        ip,
        user_agent: f.remove("ua"),
    })
}

/// The methods' [`AuthMethod::to_storage`] forms, first factor first, joined by
/// `,`. An OpenID Connect issuer is a URL, which may hold `,` (or `\`): those are
/// escaped with `\`, so every list reads back as it was.
fn encode_methods(methods: &[AuthMethod]) -> String {
    let mut out = String::new();
    for (i, method) in methods.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        for c in method.to_storage().chars() {
            if matches!(c, ',' | '\\') {
                out.push('\\');
            }
            out.push(c);
        }
    }
    out
}

/// The inverse of [`encode_methods`]; `None` for a method this version does not
/// know (a session is never read with fewer methods than it was written with) or a
/// dangling escape.
fn decode_methods(s: &str) -> Option<Vec<AuthMethod>> {
    if s.is_empty() {
        return Some(Vec::new());
    }
    let mut methods = Vec::new();
    let mut current = String::new();
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => current.push(chars.next()?),
            ',' => methods.push(AuthMethod::from_storage(&std::mem::take(&mut current))?),
            c => current.push(c),
        }
    }
    methods.push(AuthMethod::from_storage(&current)?);
    Some(methods)
}

#[async_trait]
impl SessionStore for RedisSessionStore {
    async fn create_session(&self, session: SessionRecord) -> Result<(), StoreError> {
        let keys = self.conn.keys();
        let (user, id, hash) = (session.user_id, session.id, session.token_hash);
        let born = floor_ms(session.created_at);
        // The index lives until the absolute deadline at least; the session
        // hash until it stops being usable.
        let index_ttl =
            (ceil_ms(session.absolute_expires_at).saturating_sub(born)).clamp(1, MAX_TTL_MS);
        let session_ttl = (dead_at_ms(&session).saturating_sub(born)).clamp(1, MAX_TTL_MS);

        // Listed first: a session that exists is always in its user's index.
        let mut list = INDEX_ADD.key(keys.index(user));
        list.arg(member(id, &hash))
            .arg(dead_at_ms(&session))
            .arg(index_ttl);
        self.conn.script::<i64>(&list, Retry::OnceOnIo).await?;

        let mut invocation = CREATE.key(keys.session(&hash));
        invocation.arg(session_ttl);
        for (field, value) in encode(&session) {
            invocation.arg(field).arg(value);
        }
        match self.conn.script::<i64>(&invocation, Retry::Never).await {
            Ok(1) => Ok(()),
            Ok(_) => {
                // The hash is taken: this entry is ours, the session is not.
                self.drop_index_entry(user, id, &hash).await;
                Err(StoreError::Conflict)
            }
            Err(e) => {
                self.drop_index_entry(user, id, &hash).await;
                Err(e)
            }
        }
    }

    async fn session_by_token(
        &self,
        hash: &TokenHash,
    ) -> Result<Option<SessionRecord>, StoreError> {
        Ok(self.read(hash).await?.map(|found| found.session))
    }

    /// One script on the session, then the index score (a second round trip,
    /// once per touch interval): the score only tells list and purge which
    /// sessions may still be live.
    async fn touch_session(
        &self,
        hash: &TokenHash,
        last_seen_at: OffsetDateTime,
        idle_expires_at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let keys = self.conn.keys();
        let mut invocation = TOUCH.key(keys.session(hash));
        invocation
            .arg(nanos(last_seen_at))
            .arg(nanos(idle_expires_at))
            .arg(floor_ms(last_seen_at))
            .arg(ceil_ms(idle_expires_at))
            .arg(MAX_TTL_MS);
        // Idempotent: the same values again.
        let touched: Option<(String, String, String)> =
            self.conn.script(&invocation, Retry::OnceOnIo).await?;
        let Some((user, id, score)) = touched else {
            return Ok(());
        };
        let (user, id) = parse_uuid(&user)
            .zip(parse_uuid(&id))
            .ok_or_else(|| malformed("session record"))?;
        let mut raise = redis::cmd("ZADD");
        raise
            .arg(keys.index(UserId(user)))
            .arg("XX")
            .arg("GT")
            .arg(score)
            .arg(member(SessionId(id), hash));
        self.conn
            .query::<i64>(&raise, Retry::OnceOnIo)
            .await
            .map(drop)
    }

    async fn revoke_session(
        &self,
        user_id: UserId,
        id: SessionId,
        at: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let entries = self.entries(user_id, None).await?;
        let Some((_, hash)) = entries.iter().find(|(entry, _)| *entry == id) else {
            return Ok(false);
        };
        self.revoke_entry(user_id, id, hash, at).await
    }

    /// Reads the user's index, then revokes each session but `except` (see
    /// the type's docs: one script per session, not one atomic step).
    async fn revoke_user_sessions(
        &self,
        user_id: UserId,
        except: Option<SessionId>,
        at: OffsetDateTime,
    ) -> Result<u64, StoreError> {
        let mut revoked = 0;
        for (id, hash) in self.entries(user_id, None).await? {
            if Some(id) != except && self.revoke_entry(user_id, id, &hash, at).await? {
                revoked += 1;
            }
        }
        Ok(revoked)
    }

    /// Scans for every user index under the prefix (on a cluster, on every
    /// primary) and revokes each user's sessions.
    async fn revoke_all_sessions(&self, at: OffsetDateTime) -> Result<u64, StoreError> {
        let keys = self.conn.keys();
        let mut scan = self.conn.scan(keys.index_pattern(), "zset");
        let mut revoked = 0_u64;
        while let Some(batch) = scan.next_batch().await? {
            for index in batch {
                if let Some(user) = keys.index_user(&index) {
                    revoked += self.revoke_user_sessions(user, None, at).await?;
                }
            }
        }
        Ok(revoked)
    }

    /// The index's entries that may be live at `now`, then each session.
    async fn list_user_sessions(
        &self,
        user_id: UserId,
        now: OffsetDateTime,
    ) -> Result<Vec<SessionRecord>, StoreError> {
        let mut sessions = Vec::new();
        for (id, hash) in self.entries(user_id, Some(floor_ms(now))).await? {
            if let Some(found) = self.read(&hash).await? {
                let s = found.session;
                if s.id == id && s.user_id == user_id && s.is_active(now) {
                    sessions.push(s);
                }
            }
        }
        sessions.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
        Ok(sessions)
    }

    /// One `ZCOUNT` of the index entries scored after `now`: a revocation
    /// lowers its entry's score to the revocation time and a touch raises it
    /// to the new idle deadline, so this counts every active session, plus
    /// any that ended within the millisecond before `now`.
    async fn count_user_sessions(
        &self,
        user_id: UserId,
        now: OffsetDateTime,
    ) -> Result<usize, StoreError> {
        let mut count = redis::cmd("ZCOUNT");
        count
            .arg(self.conn.keys().index(user_id))
            .arg(format!("({}", floor_ms(now)))
            .arg("+inf");
        self.conn.query(&count, Retry::OnceOnIo).await
    }

    /// Scans for every user index under the prefix (on a cluster, on every
    /// primary), takes the entries of the sessions dead by `before` out of it
    /// and deletes those sessions. Redis's TTLs remove them anyway; this only
    /// frees memory sooner.
    async fn delete_expired_sessions(&self, before: OffsetDateTime) -> Result<u64, StoreError> {
        let keys = self.conn.keys();
        let mut scan = self.conn.scan(keys.index_pattern(), "zset");
        let mut deleted = 0_u64;
        while let Some(batch) = scan.next_batch().await? {
            for index in batch {
                let mut invocation = PURGE_INDEX.key(&index);
                invocation.arg(floor_ms(before));
                let dead: Vec<String> = self.conn.script(&invocation, Retry::OnceOnIo).await?;
                for entry in dead {
                    let (_, hash) = parse_member(&entry)?;
                    let mut del = redis::cmd("DEL");
                    del.arg(keys.session(&hash));
                    let gone: u64 = self.conn.query(&del, Retry::OnceOnIo).await?;
                    deleted += gone;
                }
            }
        }
        Ok(deleted)
    }
}

#[async_trait]
impl SessionUserCache for RedisSessionStore {
    /// One `HGETALL`: the record, the snapshot and the stamp share a hash.
    async fn cached_session(&self, hash: &TokenHash) -> Result<Option<CachedSession>, StoreError> {
        self.read(hash).await
    }

    async fn put_snapshot(
        &self,
        hash: &TokenHash,
        stamp: u64,
        snapshot: &[u8],
    ) -> Result<bool, StoreError> {
        let mut invocation = PUT_SNAPSHOT.key(self.conn.keys().session(hash));
        invocation.arg(stamp).arg(snapshot);
        // Idempotent: a compare-and-set of the same bytes.
        let stored: i64 = self.conn.script(&invocation, Retry::OnceOnIo).await?;
        Ok(stored == 1)
    }

    /// Reads the user's index, then drops each session's snapshot and moves
    /// its stamp on (one script per session). A session created meanwhile has
    /// no snapshot yet; the first read of its user happens after this call
    /// began, so it already sees the change.
    async fn invalidate_user(&self, user_id: UserId) -> Result<(), StoreError> {
        let keys = self.conn.keys();
        for (_, hash) in self.entries(user_id, None).await? {
            let invocation = INVALIDATE.key(keys.session(&hash));
            // Retried: a second run only moves the stamp on once more.
            self.conn
                .script::<i64>(&invocation, Retry::OnceOnIo)
                .await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use time::Duration;

    use super::*;

    fn record() -> SessionRecord {
        let t = OffsetDateTime::from_unix_timestamp_nanos(1_893_456_000_123_456_789)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH);
        SessionRecord {
            id: SessionId::new_random(),
            token_hash: TokenHash([9; 32]),
            user_id: UserId::new_random(),
            created_at: t,
            authenticated_at: t + Duration::seconds(1),
            methods: vec![
                AuthMethod::Password,
                AuthMethod::Totp,
                AuthMethod::Oidc {
                    issuer: r"https://id.example.com/a,b\c".into(),
                },
            ],
            last_seen_at: t + Duration::nanoseconds(1),
            idle_expires_at: t + Duration::minutes(30),
            absolute_expires_at: t + Duration::hours(24),
            revoked_at: Some(t + Duration::seconds(3)),
            ip: Some(IpAddr::V6(std::net::Ipv6Addr::LOCALHOST)),
            user_agent: Some("agent/1 (with: colons)".into()),
        }
    }

    fn round_trip(s: &SessionRecord) -> Result<SessionRecord, StoreError> {
        decode(
            s.token_hash,
            encode(s)
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v))
                .collect(),
        )
    }

    #[test]
    fn records_round_trip_with_every_field() {
        let s = record();
        assert_eq!(round_trip(&s).ok(), Some(s.clone()));
        let bare = SessionRecord {
            revoked_at: None,
            ip: None,
            user_agent: None,
            ..s
        };
        assert_eq!(round_trip(&bare).ok(), Some(bare));
    }

    #[test]
    fn damaged_records_are_errors() {
        let mut fields: HashMap<String, String> = encode(&record())
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
        let hash = TokenHash([9; 32]);
        fields.insert("ip".into(), "not an ip".into());
        assert!(matches!(
            decode(hash, fields.clone()),
            Err(StoreError::Other(_))
        ));
        fields.remove("ip");
        for required in ["ls", "me", "au"] {
            let mut missing = fields.clone();
            missing.remove(required);
            assert!(
                matches!(decode(hash, missing), Err(StoreError::Other(_))),
                "{required}"
            );
        }
        fields.insert("me".into(), "password,fax".into());
        assert!(matches!(decode(hash, fields), Err(StoreError::Other(_))));
    }

    #[test]
    fn methods_round_trip_whatever_the_issuer_holds() {
        let oidc = |issuer: &str| AuthMethod::Oidc {
            issuer: issuer.into(),
        };
        for methods in [
            vec![],
            vec![AuthMethod::Password],
            vec![AuthMethod::Password, AuthMethod::RecoveryCode],
            vec![
                AuthMethod::Passkey,
                oidc("https://a.example/,x"),
                oidc(r"\,\\"),
            ],
            vec![oidc("https://id.example.com"), AuthMethod::Totp],
        ] {
            assert_eq!(decode_methods(&encode_methods(&methods)), Some(methods));
        }
        assert_eq!(
            encode_methods(&[AuthMethod::Password, AuthMethod::Totp]),
            "password,totp",
            "readable in redis-cli"
        );
        // Unknown to this version, or damaged: never read as fewer methods.
        for bad in ["password,sms", "password,", ",totp", "oidc:", r"password\"] {
            assert_eq!(decode_methods(bad), None, "{bad}");
        }
    }

    #[test]
    fn index_entries_round_trip() {
        let (id, hash) = (SessionId::new_random(), TokenHash([0xc3; 32]));
        assert_eq!(parse_member(&member(id, &hash)).ok(), Some((id, hash)));
        for bad in [
            "",
            "x:y",
            &id.0.simple().to_string(),
            &format!("{}:ab", id.0.simple()),
        ] {
            assert!(parse_member(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_session_dies_at_its_first_deadline_or_revocation() {
        let s = record();
        assert_eq!(
            dead_at_ms(&s),
            ceil_ms(s.revoked_at.unwrap_or(s.created_at))
        );
        let live = SessionRecord {
            revoked_at: None,
            ..s.clone()
        };
        assert_eq!(dead_at_ms(&live), ceil_ms(s.idle_expires_at));
        let capped = SessionRecord {
            idle_expires_at: s.absolute_expires_at + Duration::hours(1),
            ..live
        };
        assert_eq!(dead_at_ms(&capped), ceil_ms(s.absolute_expires_at));
    }
}
