//! [`SessionStore`] on Redis: one hash per session and one sorted-set index per
//! user, under the user's hash tag, changed only by scripts.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::LazyLock;

use async_trait::async_trait;
use auth_core::store::{AuthMethod, SessionId, SessionRecord, SessionStore, UserId};
use auth_core::{StoreError, TokenHash};
use redis::Script;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::codec::{MAX_TTL_MS, Malformed, ceil_ms, floor_ms, nanos, parse_nanos};
use crate::conn::{RedisConnection, Retry};
use crate::keys::{hex, parse_token_hash};

/// KEYS: session, index. ARGV: session id, TTL (ms), index score, then the
/// record's field/value pairs. Refuses (0) an id that exists.
static CREATE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 4))
local ttl = tonumber(ARGV[2])
redis.call('PEXPIRE', KEYS[1], ttl)
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
if redis.call('PTTL', KEYS[2]) < ttl then redis.call('PEXPIRE', KEYS[2], ttl) end
return 1
",
    )
});

/// KEYS: session, index. ARGV: last seen (ns), idle deadline (ns), last seen (ms,
/// floor), idle deadline (ms, ceil), session id, max TTL. Updates only a session
/// that exists and is not revoked, so a touch never revives one; the TTL follows
/// the idle deadline and never passes the absolute one.
static TOUCH: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local v = redis.call('HMGET', KEYS[1], 'ra', 'aem', 'ae')
if not v[2] or v[1] then return 0 end
local aem = tonumber(v[2])
local ie, iem = ARGV[2], tonumber(ARGV[4])
if iem > aem then ie, iem = v[3], aem end
local ttl = math.min(math.max(iem - tonumber(ARGV[3]), 1), tonumber(ARGV[6]))
redis.call('HSET', KEYS[1], 'ls', ARGV[1], 'ie', ie, 'iem', iem)
redis.call('PEXPIRE', KEYS[1], ttl)
redis.call('ZADD', KEYS[2], iem, ARGV[5])
if redis.call('PTTL', KEYS[2]) < ttl then redis.call('PEXPIRE', KEYS[2], ttl) end
return 1
",
    )
});

/// KEYS: session, index. ARGV: revoked at (ns), revoked at (ms, ceil), session id.
/// 1 when a live (unrevoked) session was revoked.
static REVOKE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local v = redis.call('HMGET', KEYS[1], 'ra', 'aem')
if not v[2] or v[1] then return 0 end
redis.call('HSET', KEYS[1], 'ra', ARGV[1])
redis.call('ZADD', KEYS[2], 'LT', ARGV[2], ARGV[3])
return 1
",
    )
});

/// KEYS: index. ARGV: session key base, session id to spare (or ''), revoked at
/// (ns), revoked at (ms, ceil). Revokes every unrevoked session in the index but
/// the spared one, in one atomic step; drops index entries whose session is gone.
/// The session keys are built from the base, which carries the index's hash tag.
static REVOKE_ALL: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local n = 0
for _, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  if id ~= ARGV[2] then
    local key = ARGV[1] .. id
    local v = redis.call('HMGET', key, 'ra', 'aem')
    if not v[2] then
      redis.call('ZREM', KEYS[1], id)
    elseif not v[1] then
      redis.call('HSET', key, 'ra', ARGV[3])
      redis.call('ZADD', KEYS[1], 'LT', ARGV[4], id)
      n = n + 1
    end
  end
end
return n
",
    )
});

/// KEYS: index. ARGV: session key base, now (ms, floor). The records of the
/// sessions that may be active at `now` (index score after it); drops index
/// entries whose session is gone.
static LIST: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local out = {}
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. ARGV[2], '+inf')) do
  local record = redis.call('HGETALL', ARGV[1] .. id)
  if #record == 0 then
    redis.call('ZREM', KEYS[1], id)
  else
    out[#out + 1] = record
  end
end
return out
",
    )
});

/// KEYS: index. ARGV: session key base, before (ms, floor). Deletes the sessions
/// dead by `before` (index score at or before it) and returns their ids and token
/// hashes, flattened, for the caller to delete their pointers.
static PURGE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local out = {}
for _, id in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[2])) do
  local key = ARGV[1] .. id
  local th = redis.call('HGET', key, 'th')
  if th then
    redis.call('DEL', key)
    out[#out + 1] = id
    out[#out + 1] = th
  end
  redis.call('ZREM', KEYS[1], id)
end
return out
",
    )
});

/// Login sessions (S5) on Redis, shared by every application instance.
///
/// A session is a hash under its user's hash tag,
/// `<prefix>:{u:<user>}:s:<session id>`, listed in the user's index
/// `<prefix>:{u:<user>}:idx` (a sorted set scored by when the session stops being
/// usable). Two pointers find it: `<prefix>:tok:<token hash>` (for
/// [`SessionStore::session_by_token`]) and `<prefix>:sid:<session id>` (for
/// [`SessionStore::touch_session`], which gets only the id). Touch, revoke,
/// revoke-all, list and purge are scripts over one user's index and sessions,
/// so they are atomic with each other: a revocation racing a touch leaves the
/// session revoked, and revoke-all is one operation.
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

    async fn owner_of(&self, id: SessionId) -> Result<Option<UserId>, StoreError> {
        let mut cmd = redis::cmd("GET");
        cmd.arg(self.conn.keys().session_owner(id));
        let owner: Option<String> = self.conn.query(&cmd, Retry::OnceOnIo).await?;
        owner
            .map(|s| {
                parse_uuid(&s)
                    .map(UserId)
                    .ok_or_else(|| malformed("session pointer"))
            })
            .transpose()
    }

    async fn delete(&self, key: String) -> Result<(), StoreError> {
        let mut cmd = redis::cmd("DEL");
        cmd.arg(key);
        self.conn
            .query::<i64>(&cmd, Retry::OnceOnIo)
            .await
            .map(drop)
    }
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
/// deadlines in milliseconds (`iem`, `aem`) for scripts.
fn encode(s: &SessionRecord) -> Vec<(&'static str, String)> {
    let mut fields = vec![
        ("id", s.id.0.simple().to_string()),
        ("th", hex(&s.token_hash.0)),
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

fn decode(mut f: HashMap<String, String>) -> Result<SessionRecord, StoreError> {
    let bad = || malformed("session record");
    let time = |name: &str| f.get(name).and_then(|v| parse_nanos(v));
    let created_at = time("ca").ok_or_else(bad)?;
    // Sessions written before the field existed were signed in at creation.
    let authenticated_at = match f.get("au") {
        Some(v) => parse_nanos(v).ok_or_else(bad)?,
        None => created_at,
    };
    // Sessions written before the field existed were signed in with a password,
    // the only method there was.
    let methods = match f.get("me") {
        Some(v) => decode_methods(v).ok_or_else(bad)?,
        None => vec![AuthMethod::Password],
    };
    let last_seen_at = time("ls").ok_or_else(bad)?;
    let idle_expires_at = time("ie").ok_or_else(bad)?;
    let absolute_expires_at = time("ae").ok_or_else(bad)?;
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
        token_hash: f
            .get("th")
            .and_then(|v| parse_token_hash(v))
            .ok_or_else(bad)?,
        user_id: UserId(uuid("uid").ok_or_else(bad)?),
        created_at,
        authenticated_at,
        methods,
        last_seen_at,
        idle_expires_at,
        absolute_expires_at,
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
        let (user, id) = (session.user_id, session.id);
        let born = floor_ms(session.created_at);
        // Every key lives until the absolute deadline at most; the session hash
        // until it stops being usable.
        let pointer_ttl =
            (ceil_ms(session.absolute_expires_at).saturating_sub(born)).clamp(1, MAX_TTL_MS);
        let session_ttl = (dead_at_ms(&session).saturating_sub(born)).clamp(1, MAX_TTL_MS);

        let token_key = keys.token(&session.token_hash);
        let mut set_token = redis::cmd("SET");
        set_token
            .arg(&token_key)
            .arg(format!("{}:{}", user.0.simple(), id.0.simple()))
            .arg("NX")
            .arg("PX")
            .arg(pointer_ttl);
        let set: Option<String> = self.conn.query(&set_token, Retry::Never).await?;
        if set.is_none() {
            return Err(StoreError::Conflict);
        }

        let mut set_owner = redis::cmd("SET");
        set_owner
            .arg(keys.session_owner(id))
            .arg(user.0.simple().to_string())
            .arg("NX")
            .arg("PX")
            .arg(pointer_ttl);
        let mut created = match self
            .conn
            .query::<Option<String>>(&set_owner, Retry::Never)
            .await
        {
            Ok(set) => set.is_some(),
            Err(e) => {
                let _ = self.delete(token_key).await;
                return Err(e);
            }
        };
        if created {
            let mut invocation = CREATE.key(keys.session(user, id));
            invocation
                .key(keys.index(user))
                .arg(id.0.simple().to_string())
                .arg(session_ttl)
                .arg(dead_at_ms(&session));
            for (field, value) in encode(&session) {
                invocation.arg(field).arg(value);
            }
            match self.conn.script::<i64>(&invocation, Retry::Never).await {
                Ok(n) => created = n == 1,
                Err(e) => {
                    let _ = self.delete(token_key).await;
                    let _ = self.delete(keys.session_owner(id)).await;
                    return Err(e);
                }
            }
        }
        if !created {
            // The id is taken: leave the existing session's pointers alone.
            let _ = self.delete(token_key).await;
            return Err(StoreError::Conflict);
        }
        Ok(())
    }

    async fn session_by_token(
        &self,
        hash: &TokenHash,
    ) -> Result<Option<SessionRecord>, StoreError> {
        let keys = self.conn.keys();
        let mut get = redis::cmd("GET");
        get.arg(keys.token(hash));
        let Some(pointer) = self
            .conn
            .query::<Option<String>>(&get, Retry::OnceOnIo)
            .await?
        else {
            return Ok(None);
        };
        let (user, id) = pointer
            .split_once(':')
            .and_then(|(u, s)| Some((UserId(parse_uuid(u)?), SessionId(parse_uuid(s)?))))
            .ok_or_else(|| malformed("token pointer"))?;
        let mut read = redis::cmd("HGETALL");
        read.arg(keys.session(user, id));
        let fields: HashMap<String, String> = self.conn.query(&read, Retry::OnceOnIo).await?;
        if fields.is_empty() {
            return Ok(None);
        }
        let record = decode(fields)?;
        if record.token_hash != *hash || record.user_id != user {
            return Err(malformed("token pointer"));
        }
        Ok(Some(record))
    }

    async fn touch_session(
        &self,
        id: SessionId,
        last_seen_at: OffsetDateTime,
        idle_expires_at: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let Some(user) = self.owner_of(id).await? else {
            return Ok(());
        };
        let keys = self.conn.keys();
        let mut invocation = TOUCH.key(keys.session(user, id));
        invocation
            .key(keys.index(user))
            .arg(nanos(last_seen_at))
            .arg(nanos(idle_expires_at))
            .arg(floor_ms(last_seen_at))
            .arg(ceil_ms(idle_expires_at))
            .arg(id.0.simple().to_string())
            .arg(MAX_TTL_MS);
        // Idempotent: the same values again.
        self.conn
            .script::<i64>(&invocation, Retry::OnceOnIo)
            .await
            .map(drop)
    }

    async fn revoke_session(
        &self,
        user_id: UserId,
        id: SessionId,
        at: OffsetDateTime,
    ) -> Result<bool, StoreError> {
        let keys = self.conn.keys();
        let mut invocation = REVOKE.key(keys.session(user_id, id));
        invocation
            .key(keys.index(user_id))
            .arg(nanos(at))
            .arg(ceil_ms(at))
            .arg(id.0.simple().to_string());
        let revoked: i64 = self.conn.script(&invocation, Retry::Never).await?;
        Ok(revoked == 1)
    }

    async fn revoke_user_sessions(
        &self,
        user_id: UserId,
        except: Option<SessionId>,
        at: OffsetDateTime,
    ) -> Result<u64, StoreError> {
        let keys = self.conn.keys();
        let mut invocation = REVOKE_ALL.key(keys.index(user_id));
        invocation
            .arg(keys.session_base(user_id))
            .arg(
                except
                    .map(|id| id.0.simple().to_string())
                    .unwrap_or_default(),
            )
            .arg(nanos(at))
            .arg(ceil_ms(at));
        let revoked: i64 = self.conn.script(&invocation, Retry::Never).await?;
        Ok(u64::try_from(revoked).unwrap_or(0))
    }

    /// Scans for every user index under the prefix (on a cluster, on every
    /// primary) and revokes each user's sessions with the revoke-all script.
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

    async fn list_user_sessions(
        &self,
        user_id: UserId,
        now: OffsetDateTime,
    ) -> Result<Vec<SessionRecord>, StoreError> {
        let keys = self.conn.keys();
        let mut invocation = LIST.key(keys.index(user_id));
        invocation
            .arg(keys.session_base(user_id))
            .arg(floor_ms(now));
        let records: Vec<HashMap<String, String>> =
            self.conn.script(&invocation, Retry::OnceOnIo).await?;
        let mut sessions = records
            .into_iter()
            .map(decode)
            .filter(|s| !matches!(s, Ok(s) if !s.is_active(now)))
            .collect::<Result<Vec<_>, _>>()?;
        sessions.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
        Ok(sessions)
    }

    /// Scans for every user index under the prefix (on a cluster, on every
    /// primary) and deletes the sessions dead by `before`, with their pointers.
    /// Redis's TTLs remove them anyway; this only frees memory sooner.
    async fn delete_expired_sessions(&self, before: OffsetDateTime) -> Result<u64, StoreError> {
        let keys = self.conn.keys();
        let mut scan = self.conn.scan(keys.index_pattern(), "zset");
        let mut deleted = 0_u64;
        while let Some(batch) = scan.next_batch().await? {
            for index in batch {
                let Some(user) = keys.index_user(&index) else {
                    continue;
                };
                let mut invocation = PURGE.key(&index);
                invocation
                    .arg(keys.session_base(user))
                    .arg(floor_ms(before));
                let gone: Vec<String> = self.conn.script(&invocation, Retry::OnceOnIo).await?;
                for pair in gone.chunks_exact(2) {
                    let [id, hash] = pair else { continue };
                    deleted += 1;
                    if let Some(id) = parse_uuid(id) {
                        self.delete(keys.session_owner(SessionId(id))).await?;
                    }
                    if let Some(hash) = parse_token_hash(hash) {
                        self.delete(keys.token(&hash)).await?;
                    }
                }
            }
        }
        Ok(deleted)
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
        fields.insert("ip".into(), "not an ip".into());
        assert!(matches!(decode(fields.clone()), Err(StoreError::Other(_))));
        fields.remove("ip");
        fields.remove("ls");
        assert!(matches!(decode(fields), Err(StoreError::Other(_))));
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
    fn a_record_without_methods_was_signed_in_with_a_password() {
        let mut fields: HashMap<String, String> = encode(&record())
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
        fields.remove("me");
        let old = decode(fields.clone()).map(|s| s.methods).ok();
        assert_eq!(old, Some(vec![AuthMethod::Password]));
        fields.insert("me".into(), "password,fax".into());
        assert!(matches!(decode(fields), Err(StoreError::Other(_))));
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
