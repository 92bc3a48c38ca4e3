//! [`SessionStore`] and [`SessionUserCache`] on Redis: one string per
//! session under its token hash's tag, holding the record, the user's
//! snapshot and its stamp (the layout is `record.rs`'s), and one sorted-set
//! index per user under the user's tag.

use std::sync::LazyLock;

use async_trait::async_trait;
use auth_core::store::{
    CachedSession, SessionId, SessionRecord, SessionStore, SessionUserCache, UserId,
};
use auth_core::{StoreError, TokenHash};
use redis::Script;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::codec::{MAX_TTL_MS, Malformed, ceil_ms, floor_ms};
use crate::conn::{RedisConnection, Retry};
use crate::record::{self, hash_head, packed};

/// KEYS: index. ARGV: member, score, TTL (ms), now (ms). Lists a session in
/// its user's index before the session exists, so a session is never out of
/// reach of revoke-all and invalidation; the index lives as long as its
/// longest-lived session. Answers how many listed sessions are usable after
/// `now` (as `count_user_sessions` counts them), the new one included.
static INDEX_ADD: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
local ttl = tonumber(ARGV[3])
if redis.call('PTTL', KEYS[1]) < ttl then redis.call('PEXPIRE', KEYS[1], ttl) end
return redis.call('ZCOUNT', KEYS[1], '(' .. ARGV[4], '+inf')
",
    )
});

/// A script over one session record: `body` runs with the record in `v`, its
/// flags in `flags`, the offset where its snapshot starts in `base`, and the
/// stamp in `stamp`; a key that holds no record of this format answers
/// `absent`. The offsets come from `record.rs` (plus one: Lua counts from 1),
/// written into the text once.
fn record_script(absent: &str, body: &str) -> Script {
    let text = format!(
        "local v = redis.call('GET', KEYS[1])
if not v or string.byte(v, 1) ~= {format} then return {absent} end
local flags = string.byte(v, {flags})
local stamp = struct.unpack('<i8', v, {stamp})
local base = {header} + struct.unpack('<I2', v, {var_len})
{body}",
        format = record::FORMAT,
        flags = record::FLAGS + 1,
        stamp = record::STAMP + 1,
        header = record::HEADER,
        var_len = record::VAR_LEN + 1,
    )
    // The body's own placeholders, the same offsets.
    // (Longer names first: `@REVOKED` starts `@REVOKED_AT`.)
    .replace("@REVOKED_AT", &(record::REVOKED_AT + 1).to_string())
    .replace("@REVOKED", &record::REVOKED.to_string())
    .replace("@SNAPSHOT", &record::SNAPSHOT.to_string())
    .replace("@FLAGS", &(record::FLAGS + 1).to_string())
    .replace("@STAMP", &(record::STAMP + 1).to_string())
    .replace("@LAST_SEEN", &(record::LAST_SEEN + 1).to_string())
    .replace("@ABSOLUTE", &(record::ABSOLUTE + 1).to_string())
    .replace("@IDLE", &(record::IDLE + 1).to_string())
    .replace("@ID", &(record::ID + 1).to_string())
    .replace("@USER", &(record::USER + 1).to_string());
    Script::new(&text)
}

/// KEYS: session. ARGV: last seen, idle deadline (8 bytes each, as the record
/// stores them), idle deadline (ms, ceil), last seen (ms, floor), max TTL.
/// Updates only a session that is not revoked, so a touch never revives one;
/// the idle deadline never passes the absolute one, nor the TTL the idle
/// deadline. Returns the owner, the session id and the idle deadline written
/// (ms), for the index, or nil.
static TOUCH: LazyLock<Script> = LazyLock::new(|| {
    record_script(
        "nil",
        r"if bit.band(flags, @REVOKED) ~= 0 then return nil end
local aem = math.ceil(struct.unpack('<i8', v, @ABSOLUTE) / 1000)
local ie, iem = ARGV[2], tonumber(ARGV[3])
if iem > aem then ie, iem = string.sub(v, @ABSOLUTE, @ABSOLUTE + 7), aem end
v = string.sub(v, 1, @LAST_SEEN - 1) .. ARGV[1] .. ie .. string.sub(v, @ABSOLUTE)
local ttl = math.min(math.max(iem - tonumber(ARGV[4]), 1), tonumber(ARGV[5]))
redis.call('SET', KEYS[1], v, 'PX', ttl)
return {string.sub(v, @USER, @USER + 15), string.sub(v, @ID, @ID + 15), tostring(iem)}
",
    )
});

/// KEYS: session. ARGV: revoked at (8 bytes), owner, session id (16 bytes
/// each). Revokes the session when it is this user's and live (1), drops its
/// snapshot and moves its stamp on; 0 otherwise.
static REVOKE: LazyLock<Script> = LazyLock::new(|| {
    record_script(
        "0",
        r"if bit.band(flags, @REVOKED) ~= 0 or string.sub(v, @USER, @USER + 15) ~= ARGV[2]
  or string.sub(v, @ID, @ID + 15) ~= ARGV[3] then return 0 end
flags = bit.bor(bit.band(flags, 255 - @SNAPSHOT), @REVOKED)
v = string.sub(v, 1, @FLAGS - 1) .. string.char(flags) .. struct.pack('<i8', stamp + 1)
  .. string.sub(v, @STAMP + 8, @REVOKED_AT - 1) .. ARGV[1] .. string.sub(v, @REVOKED_AT + 8, base)
redis.call('SET', KEYS[1], v, 'KEEPTTL')
return 1
",
    )
});

/// KEYS: session. Drops the snapshot and moves the stamp on, so a snapshot read
/// before cannot be stored; a session that does not exist is left absent.
static INVALIDATE: LazyLock<Script> = LazyLock::new(|| {
    record_script(
        "0",
        r"v = string.sub(v, 1, @FLAGS - 1) .. string.char(bit.band(flags, 255 - @SNAPSHOT))
  .. struct.pack('<i8', stamp + 1) .. string.sub(v, @STAMP + 8, base)
redis.call('SET', KEYS[1], v, 'KEEPTTL')
return 1
",
    )
});

/// KEYS: session. ARGV: stamp, snapshot. Stores the snapshot only when the
/// session exists, is not revoked and its stamp is still the one given.
static PUT_SNAPSHOT: LazyLock<Script> = LazyLock::new(|| {
    record_script(
        "0",
        r"if bit.band(flags, @REVOKED) ~= 0 or stamp ~= tonumber(ARGV[1]) then return 0 end
v = string.sub(v, 1, @FLAGS - 1) .. string.char(bit.bor(flags, @SNAPSHOT))
  .. string.sub(v, @STAMP, base) .. ARGV[2]
redis.call('SET', KEYS[1], v, 'KEEPTTL')
return 1
",
    )
});

/// KEYS: session. ARGV: before (µs), the entry's session id (16 bytes).
/// Deletes the record when it is this session's and dead at `before` (it
/// stopped being usable at or before it: revoked, or past a deadline):
/// `{1, 0}`. `{0, 0}` when the key holds no record of this session (Redis
/// expired it, or never had it). A live record stays: `{2, ms}` with the
/// score its index entry should have (when it stops being usable), which a
/// touch whose index update did not land left behind.
static PURGE_RECORD: LazyLock<Script> = LazyLock::new(|| {
    record_script(
        "{0, 0}",
        r"if string.sub(v, @ID, @ID + 15) ~= ARGV[2] then return {0, 0} end
local before = tonumber(ARGV[1])
-- (unpack also answers the next offset: one value each, in parentheses)
local at = math.min((struct.unpack('<i8', v, @IDLE)), (struct.unpack('<i8', v, @ABSOLUTE)))
if bit.band(flags, @REVOKED) ~= 0 then
  at = math.min(at, (struct.unpack('<i8', v, @REVOKED_AT)))
end
if at <= before then
  redis.call('DEL', KEYS[1])
  return {1, 0}
end
return {2, math.ceil(at / 1000)}
",
    )
});

/// Login sessions (S5) on Redis, shared by every application instance, with
/// the user snapshots that make [`Auth::authenticate`](auth_core::Auth::authenticate)
/// one round trip ([`SessionUserCache`]).
///
/// A session is one string under its token hash's tag,
/// `<prefix>:{t:<first half of the token hash>}:r`, holding the record, the
/// snapshot of its user the engine stored and the stamp that guards it, in a
/// compact binary layout (about 300 bytes in Redis for a browser session,
/// whatever Redis's listpack limits): the token alone does not know its user,
/// so this is the only key it can reach in one step on a cluster. The user's
/// index `<prefix>:{u:<user>}:ix` (a sorted set of 32-byte entries, session
/// id and the key's half of the token hash, scored by when each session stops
/// being usable) lists them for list, revoke, revoke-all, invalidation and
/// purge.
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
/// Times are kept to the microsecond, as PostgreSQL keeps them.
#[derive(Debug, Clone)]
pub struct RedisSessionStore {
    conn: RedisConnection,
}

/// An index entry: (session id, the token hash's first 16 bytes).
type Entry = (SessionId, [u8; 16]);

impl RedisSessionStore {
    /// Sessions on `conn`. They always fail closed: while Redis is unavailable
    /// every call answers [`StoreError::Unavailable`].
    #[must_use]
    pub fn new(conn: RedisConnection) -> Self {
        Self { conn }
    }

    /// The user's index entries (every one when `live_after` is `None`, else
    /// those scored after it).
    async fn entries(
        &self,
        user: UserId,
        live_after: Option<i64>,
    ) -> Result<Vec<Entry>, StoreError> {
        let mut cmd = redis::cmd("ZRANGEBYSCORE");
        cmd.arg(self.conn.keys().index(user));
        match live_after {
            Some(ms) => cmd.arg(format!("({ms}")),
            None => cmd.arg("-inf"),
        };
        cmd.arg("+inf");
        let members: Vec<Vec<u8>> = self.conn.query(&cmd, Retry::OnceOnIo).await?;
        members.iter().map(|m| parse_member(m)).collect()
    }

    /// Revokes one session by its index entry, then lowers its index score to
    /// the revocation: the session first, so a failure in between leaves it
    /// revoked (the index only says when to purge it).
    async fn revoke_entry(
        &self,
        user: UserId,
        (id, head): Entry,
        at: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let keys = self.conn.keys();
        let mut invocation = REVOKE.key(keys.session_of_head(&head));
        invocation
            .arg(&packed(at)[..])
            .arg(user.0.as_bytes().as_slice())
            .arg(id.0.as_bytes().as_slice());
        let revoked: i64 = self.conn.script(&invocation, Retry::Never).await?;
        if revoked == 1 {
            let mut lower = redis::cmd("ZADD");
            lower
                .arg(keys.index(user))
                .arg("XX")
                .arg("LT")
                .arg(ceil_ms(at))
                .arg(&member(id, &head)[..]);
            self.conn.query::<i64>(&lower, Retry::OnceOnIo).await?;
        }
        Ok(revoked == 1)
    }

    /// The record under the key of `head`, if any.
    async fn read_head(&self, head: &[u8]) -> Result<Option<CachedSession>, StoreError> {
        let mut read = redis::cmd("GET");
        read.arg(self.conn.keys().session_of_head(head));
        let bytes: Option<Vec<u8>> = self.conn.query(&read, Retry::OnceOnIo).await?;
        bytes
            .map(|b| record::decode(head, &b).ok_or_else(|| malformed("session record")))
            .transpose()
    }

    /// The session of `hash`: the record under its key, if that record holds
    /// the hash's other half too.
    async fn read(&self, hash: &TokenHash) -> Result<Option<CachedSession>, StoreError> {
        Ok(self
            .read_head(hash_head(hash))
            .await?
            .filter(|found| found.session.token_hash == *hash))
    }

    async fn drop_index_entry(&self, user: UserId, id: SessionId, head: &[u8]) {
        let mut cmd = redis::cmd("ZREM");
        cmd.arg(self.conn.keys().index(user))
            .arg(&member(id, head)[..]);
        let _ = self.conn.query::<i64>(&cmd, Retry::OnceOnIo).await;
    }

    /// Lists the session in its user's index, then stores it: two round
    /// trips, in that order. Answers the live count the listing saw.
    async fn create(&self, session: SessionRecord) -> Result<usize, StoreError> {
        let keys = self.conn.keys();
        let (user, id) = (session.user_id, session.id);
        let head = hash_head(&session.token_hash);
        let bytes = record::encode(&session).map_err(|e| StoreError::Other(Box::new(e)))?;
        let born = floor_ms(session.created_at);
        // The index lives until the absolute deadline at least; the session
        // until it stops being usable.
        let index_ttl =
            (ceil_ms(session.absolute_expires_at).saturating_sub(born)).clamp(1, MAX_TTL_MS);
        let session_ttl = (dead_at_ms(&session).saturating_sub(born)).clamp(1, MAX_TTL_MS);

        // Listed first: a session that exists is always in its user's index.
        let mut list = INDEX_ADD.key(keys.index(user));
        list.arg(&member(id, head)[..])
            .arg(dead_at_ms(&session))
            .arg(index_ttl)
            .arg(born);
        let live: usize = self.conn.script(&list, Retry::OnceOnIo).await?;

        let mut create = redis::cmd("SET");
        create
            .arg(keys.session(&session.token_hash))
            .arg(bytes)
            .arg("NX")
            .arg("PX")
            .arg(session_ttl);
        match self
            .conn
            .query::<Option<String>>(&create, Retry::Never)
            .await
        {
            Ok(Some(_)) => Ok(live),
            Ok(None) => {
                // The key is taken: this entry is ours, the session is not.
                self.drop_index_entry(user, id, head).await;
                Err(StoreError::Conflict)
            }
            Err(e) => {
                self.drop_index_entry(user, id, head).await;
                Err(e)
            }
        }
    }
}

/// An index entry's bytes: the session id, then the token hash's first 16.
fn member(id: SessionId, head: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(32);
    out.extend_from_slice(id.0.as_bytes());
    out.extend_from_slice(head);
    out
}

fn parse_member(m: &[u8]) -> Result<Entry, StoreError> {
    let bad = || malformed("session index entry");
    if m.len() != 32 {
        return Err(bad());
    }
    let (id, head) = m.split_at(16);
    let id = Uuid::from_slice(id).map_err(|_| bad())?;
    let head = <[u8; 16]>::try_from(head).map_err(|_| bad())?;
    Ok((SessionId(id), head))
}

fn malformed(what: &'static str) -> StoreError {
    StoreError::Other(Box::new(Malformed(what)))
}

/// The instant a session stops being usable, in ms (rounded up): its idle or
/// absolute deadline, or its revocation.
fn dead_at_ms(s: &SessionRecord) -> i64 {
    let deadline = ceil_ms(s.idle_expires_at).min(ceil_ms(s.absolute_expires_at));
    s.revoked_at
        .map_or(deadline, |at| deadline.min(ceil_ms(at)))
}

#[async_trait]
impl SessionStore for RedisSessionStore {
    async fn create_session(&self, session: SessionRecord) -> Result<(), StoreError> {
        self.create(session).await.map(|_| ())
    }

    /// One round trip fewer than the default: the index script counts.
    async fn create_session_and_count(&self, session: SessionRecord) -> Result<usize, StoreError> {
        self.create(session).await
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
            .arg(&packed(last_seen_at)[..])
            .arg(&packed(idle_expires_at)[..])
            .arg(ceil_ms(idle_expires_at))
            .arg(floor_ms(last_seen_at))
            .arg(MAX_TTL_MS);
        // Idempotent: the same values again.
        let touched: Option<(Vec<u8>, Vec<u8>, String)> =
            self.conn.script(&invocation, Retry::OnceOnIo).await?;
        let Some((user, id, score)) = touched else {
            return Ok(());
        };
        let (user, id) = Uuid::from_slice(&user)
            .ok()
            .zip(Uuid::from_slice(&id).ok())
            .ok_or_else(|| malformed("session record"))?;
        let mut raise = redis::cmd("ZADD");
        raise
            .arg(keys.index(UserId(user)))
            .arg("XX")
            .arg("GT")
            .arg(score)
            .arg(&member(SessionId(id), hash_head(hash))[..]);
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
        let Some(entry) = entries.into_iter().find(|(entry, _)| *entry == id) else {
            return Ok(false);
        };
        self.revoke_entry(user_id, entry, at).await
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
        for entry in self.entries(user_id, None).await? {
            if Some(entry.0) != except && self.revoke_entry(user_id, entry, at).await? {
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
        for (id, head) in self.entries(user_id, Some(floor_ms(now))).await? {
            if let Some(found) = self.read_head(&head).await? {
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
    /// primary) and, for each entry scored as dead by `before`, deletes its
    /// session if the record agrees, then the entry. Redis's TTLs remove them
    /// anyway; this only frees memory sooner. A record that is still live (a
    /// touch's index update failed after its record was written) stays, and
    /// its entry gets the right score: the entry is never taken out of the
    /// index while its session lives, so revoke-all always reaches it.
    async fn delete_expired_sessions(&self, before: OffsetDateTime) -> Result<u64, StoreError> {
        let keys = self.conn.keys();
        let mut scan = self.conn.scan(keys.index_pattern(), "zset");
        let mut deleted = 0_u64;
        while let Some(batch) = scan.next_batch().await? {
            for index in batch {
                let mut candidates = redis::cmd("ZRANGEBYSCORE");
                candidates.arg(&index).arg("-inf").arg(floor_ms(before));
                let entries: Vec<Vec<u8>> = self.conn.query(&candidates, Retry::OnceOnIo).await?;
                let mut gone = Vec::with_capacity(entries.len());
                for entry in entries {
                    let (id, head) = parse_member(&entry)?;
                    let mut purge = PURGE_RECORD.key(keys.session_of_head(&head));
                    purge
                        .arg(record::micros(before))
                        .arg(id.0.as_bytes().as_slice());
                    let (outcome, score): (i64, i64) =
                        self.conn.script(&purge, Retry::OnceOnIo).await?;
                    match outcome {
                        1 => {
                            deleted += 1;
                            gone.push(entry);
                        }
                        0 => gone.push(entry),
                        _ => {
                            let mut rescore = redis::cmd("ZADD");
                            rescore
                                .arg(&index)
                                .arg("XX")
                                .arg("GT")
                                .arg(score)
                                .arg(&entry);
                            self.conn.query::<i64>(&rescore, Retry::OnceOnIo).await?;
                        }
                    }
                }
                if !gone.is_empty() {
                    let mut drop = redis::cmd("ZREM");
                    drop.arg(&index).arg(gone);
                    self.conn.query::<i64>(&drop, Retry::OnceOnIo).await?;
                }
            }
        }
        Ok(deleted)
    }
}

#[async_trait]
impl SessionUserCache for RedisSessionStore {
    /// One `GET`: the record, the snapshot and the stamp share a string.
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
        for (_, head) in self.entries(user_id, None).await? {
            let invocation = INVALIDATE.key(keys.session_of_head(&head));
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
    use auth_core::store::AuthMethod;

    use super::*;

    #[test]
    fn index_entries_round_trip() {
        let (id, head) = (SessionId::new_random(), [0xc3; 16]);
        assert_eq!(parse_member(&member(id, &head)).ok(), Some((id, head)));
        for bad in [&b""[..], b"x:y", id.0.as_bytes(), &[0; 33]] {
            assert!(parse_member(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_session_dies_at_its_first_deadline_or_revocation() {
        use time::Duration;
        let t = auth_core::conformance::t0();
        let s = SessionRecord {
            id: SessionId::new_random(),
            token_hash: TokenHash([9; 32]),
            user_id: UserId::new_random(),
            created_at: t,
            authenticated_at: t,
            methods: vec![AuthMethod::Password],
            last_seen_at: t,
            idle_expires_at: t + Duration::minutes(30),
            absolute_expires_at: t + Duration::hours(24),
            revoked_at: Some(t + Duration::seconds(3)),
            ip: None,
            user_agent: None,
        };
        assert_eq!(dead_at_ms(&s), ceil_ms(t + Duration::seconds(3)));
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
