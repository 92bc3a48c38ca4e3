//! The binary form of a session in Redis: one string per session, a fixed
//! header that the scripts read and rewrite in place, then the record's
//! variable part and the user's snapshot.
//!
//! One string keeps a session at a few hundred bytes whatever Redis's
//! listpack limits (a hash turns into a hashtable, about three times larger,
//! as soon as one value passes `hash-max-listpack-value`, 64 bytes by
//! default). Times are microseconds since the Unix epoch, as PostgreSQL keeps
//! them, so the scripts' Lua numbers (doubles) hold them exactly until the
//! year 2255.
//!
//! Layout, little-endian (offsets from 0; the scripts add 1):
//!
//! | offset | size | field |
//! |---:|---:|---|
//! | 0 | 1 | format, [`FORMAT`] |
//! | 1 | 1 | flags: [`REVOKED`], [`SNAPSHOT`], [`AGENT`], [`AGENT_PLAIN`] |
//! | 2 | 8 | stamp of the snapshot (moves on at every invalidation) |
//! | 10 | 8 | created at |
//! | 18 | 8 | authenticated at |
//! | 26 | 8 | last seen at |
//! | 34 | 8 | idle deadline |
//! | 42 | 8 | absolute deadline |
//! | 50 | 8 | revoked at (0 unless [`REVOKED`]) |
//! | 58 | 16 | session id |
//! | 74 | 16 | user id |
//! | 90 | 16 | the token hash's last 16 bytes (the key holds the first 16) |
//! | 106 | 2 | length of the variable part |
//! | 108 | … | variable part: methods, address, user agent (each a varint length, then bytes) |
//! | … | … | the snapshot, to the end, when [`SNAPSHOT`] |

use std::net::IpAddr;

use auth_core::TokenHash;
use auth_core::store::{AuthMethod, CachedSession, SessionId, SessionRecord, UserId};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::agent::{self, Coded};

/// The format byte of this layout.
pub(crate) const FORMAT: u8 = 1;
/// Flag: the session is revoked.
pub(crate) const REVOKED: u8 = 1;
/// Flag: a snapshot follows the variable part.
pub(crate) const SNAPSHOT: u8 = 2;
/// Flag: the record has a user agent.
pub(crate) const AGENT: u8 = 4;
/// Flag: the user agent is stored as given, not in its short form.
pub(crate) const AGENT_PLAIN: u8 = 8;

/// Offsets of the header's fields.
pub(crate) const FLAGS: usize = 1;
pub(crate) const STAMP: usize = 2;
pub(crate) const CREATED: usize = 10;
pub(crate) const AUTHENTICATED: usize = 18;
pub(crate) const LAST_SEEN: usize = 26;
pub(crate) const IDLE: usize = 34;
pub(crate) const ABSOLUTE: usize = 42;
pub(crate) const REVOKED_AT: usize = 50;
pub(crate) const ID: usize = 58;
pub(crate) const USER: usize = 74;
pub(crate) const HASH_TAIL: usize = 90;
pub(crate) const VAR_LEN: usize = 106;
/// Where the variable part starts.
pub(crate) const HEADER: usize = 108;

/// A record this crate cannot write (a part over 64 KiB).
#[derive(Debug, thiserror::Error)]
#[error("session record too large for Redis: {0}")]
pub(crate) struct TooLarge(pub(crate) &'static str);

/// Microseconds since the epoch, rounded down (the scripts' and the
/// record's unit).
pub(crate) fn micros(t: OffsetDateTime) -> i64 {
    let us = t.unix_timestamp_nanos().div_euclid(1_000);
    i64::try_from(us).unwrap_or(if us < 0 { i64::MIN } else { i64::MAX })
}

/// [`micros`] as the record stores it: 8 bytes, little-endian.
pub(crate) fn packed(t: OffsetDateTime) -> [u8; 8] {
    micros(t).to_le_bytes()
}

fn time(us: i64) -> Option<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(us) * 1_000).ok()
}

fn put_varint(out: &mut Vec<u8>, mut n: usize) {
    while n >= 0x80 {
        out.push(u8::try_from(n & 0x7f).unwrap_or_default() | 0x80);
        n >>= 7;
    }
    out.push(u8::try_from(n).unwrap_or_default());
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    put_varint(out, bytes.len());
    out.extend_from_slice(bytes);
}

/// The record as stored, without a snapshot, stamp 0.
pub(crate) fn encode(s: &SessionRecord) -> Result<Vec<u8>, TooLarge> {
    let mut var = Vec::new();
    put_bytes(&mut var, encode_methods(&s.methods).as_bytes());
    match s.ip {
        None => put_bytes(&mut var, &[]),
        Some(IpAddr::V4(ip)) => put_bytes(&mut var, &ip.octets()),
        Some(IpAddr::V6(ip)) => put_bytes(&mut var, &ip.octets()),
    }
    let mut flags = 0;
    if let Some(ua) = &s.user_agent {
        let (coded, bytes) = agent::encode(ua);
        flags |= AGENT;
        if coded == Coded::Plain {
            flags |= AGENT_PLAIN;
        }
        put_bytes(&mut var, &bytes);
    }
    let var_len = u16::try_from(var.len()).map_err(|_| TooLarge("methods and user agent"))?;
    if s.revoked_at.is_some() {
        flags |= REVOKED;
    }
    let mut header = [0_u8; HEADER];
    let mut put = |offset: usize, bytes: &[u8]| {
        if let Some(slot) = header.get_mut(offset..offset + bytes.len()) {
            slot.copy_from_slice(bytes);
        }
    };
    put(0, &[FORMAT, flags]);
    put(STAMP, &0_u64.to_le_bytes());
    put(CREATED, &packed(s.created_at));
    put(AUTHENTICATED, &packed(s.authenticated_at));
    put(LAST_SEEN, &packed(s.last_seen_at));
    put(IDLE, &packed(s.idle_expires_at));
    put(ABSOLUTE, &packed(s.absolute_expires_at));
    put(REVOKED_AT, &s.revoked_at.map_or(0, micros).to_le_bytes());
    put(ID, s.id.0.as_bytes());
    put(USER, s.user_id.0.as_bytes());
    put(HASH_TAIL, hash_tail(&s.token_hash));
    put(VAR_LEN, &var_len.to_le_bytes());
    let mut out = Vec::with_capacity(HEADER + var.len());
    out.extend_from_slice(&header);
    out.extend_from_slice(&var);
    Ok(out)
}

/// The token hash's first 16 bytes, which the key names.
pub(crate) fn hash_head(hash: &TokenHash) -> &[u8] {
    hash.0.get(..16).unwrap_or_default()
}

/// The token hash's last 16 bytes, which the record holds.
fn hash_tail(hash: &TokenHash) -> &[u8] {
    hash.0.get(16..).unwrap_or_default()
}

/// Reads a record stored under the key of `head` (the token hash's first 16
/// bytes): `None` when it is damaged or of another format.
pub(crate) fn decode(head: &[u8], bytes: &[u8]) -> Option<CachedSession> {
    let mut r = Reader { bytes, at: 0 };
    let [format, flags] = r.take()?;
    if format != FORMAT {
        return None;
    }
    let stamp = u64::from_le_bytes(r.take()?);
    let mut times = [0_i64; 6];
    for t in &mut times {
        *t = i64::from_le_bytes(r.take()?);
    }
    let [created, authenticated, last_seen, idle, absolute, revoked] = times;
    let id = Uuid::from_bytes(r.take()?);
    let user = Uuid::from_bytes(r.take()?);
    let tail: [u8; 16] = r.take()?;
    let mut hash = [0_u8; 32];
    hash.get_mut(..16)?.copy_from_slice(head);
    hash.get_mut(16..)?.copy_from_slice(&tail);
    let var_len = usize::from(u16::from_le_bytes(r.take()?));
    let var = r.bytes.get(HEADER..HEADER + var_len)?;
    let snapshot = bytes.get(HEADER + var_len..)?;
    let mut v = Reader { bytes: var, at: 0 };
    let methods = decode_methods(std::str::from_utf8(v.part()?).ok()?)?;
    let ip = match v.part()? {
        [] => None,
        four @ [_, _, _, _] => Some(IpAddr::from(<[u8; 4]>::try_from(four).ok()?)),
        sixteen => Some(IpAddr::from(<[u8; 16]>::try_from(sixteen).ok()?)),
    };
    let user_agent = if flags & AGENT == 0 {
        None
    } else {
        let coded = if flags & AGENT_PLAIN == 0 {
            Coded::Fragments
        } else {
            Coded::Plain
        };
        Some(agent::decode(coded, v.part()?)?)
    };
    if v.at != var.len() {
        return None;
    }
    let session = SessionRecord {
        id: SessionId(id),
        token_hash: TokenHash(hash),
        user_id: UserId(user),
        created_at: time(created)?,
        authenticated_at: time(authenticated)?,
        methods,
        last_seen_at: time(last_seen)?,
        idle_expires_at: time(idle)?,
        absolute_expires_at: time(absolute)?,
        revoked_at: if flags & REVOKED == 0 {
            None
        } else {
            Some(time(revoked)?)
        },
        ip,
        user_agent,
    };
    let snapshot = (flags & SNAPSHOT != 0).then(|| snapshot.to_vec());
    Some(CachedSession::new(session, snapshot, stamp))
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

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
        let out = self.bytes.get(self.at..self.at + N)?.try_into().ok()?;
        self.at += N;
        Some(out)
    }

    fn varint(&mut self) -> Option<usize> {
        let mut n = 0_usize;
        for shift in (0..32).step_by(7) {
            let [b] = self.take()?;
            n |= usize::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Some(n);
            }
        }
        None
    }

    fn part(&mut self) -> Option<&[u8]> {
        let len = self.varint()?;
        let out = self.bytes.get(self.at..self.at + len)?;
        self.at += len;
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use time::Duration;

    use super::*;

    fn record() -> SessionRecord {
        let t = OffsetDateTime::from_unix_timestamp_nanos(1_893_456_000_123_456_000)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH);
        SessionRecord {
            id: SessionId::new_random(),
            token_hash: TokenHash(std::array::from_fn(|i| u8::try_from(i).unwrap_or(0))),
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
            last_seen_at: t + Duration::microseconds(1),
            idle_expires_at: t + Duration::minutes(30),
            absolute_expires_at: t + Duration::hours(24),
            revoked_at: Some(t + Duration::seconds(3)),
            ip: Some(IpAddr::V6(std::net::Ipv6Addr::LOCALHOST)),
            user_agent: Some("agent/1 (with: colons) Chrome/1.0.0.0".into()),
        }
    }

    fn round_trip(s: &SessionRecord) -> Option<SessionRecord> {
        let bytes = encode(s).ok()?;
        decode(hash_head(&s.token_hash), &bytes).map(|c| c.session)
    }

    #[test]
    fn records_round_trip_with_every_field() {
        let s = record();
        assert_eq!(round_trip(&s), Some(s.clone()));
        let v4 = SessionRecord {
            ip: Some("203.0.113.9".parse().unwrap_or(IpAddr::V4([0; 4].into()))),
            user_agent: Some("tab\there".into()),
            ..s.clone()
        };
        assert_eq!(round_trip(&v4), Some(v4));
        let bare = SessionRecord {
            revoked_at: None,
            ip: None,
            user_agent: None,
            methods: vec![],
            ..s
        };
        assert_eq!(round_trip(&bare), Some(bare));
    }

    #[test]
    fn times_keep_microseconds() {
        let mut s = record();
        s.created_at += Duration::nanoseconds(999);
        let back = round_trip(&s).map(|r| r.created_at);
        assert_eq!(back, Some(s.created_at - Duration::nanoseconds(999)));
        assert_eq!(micros(s.created_at) % 1_000_000, 123_456);
    }

    #[test]
    fn the_header_is_where_the_scripts_look() {
        let s = record();
        let bytes = encode(&s).unwrap_or_default();
        let at = |offset: usize| {
            let mut b = [0; 8];
            b.copy_from_slice(bytes.get(offset..offset + 8).unwrap_or(&[0; 8]));
            i64::from_le_bytes(b)
        };
        assert_eq!(bytes.first(), Some(&FORMAT));
        assert_eq!(bytes.get(FLAGS), Some(&(REVOKED | AGENT)));
        assert_eq!(at(STAMP), 0);
        assert_eq!(at(CREATED), micros(s.created_at));
        assert_eq!(at(AUTHENTICATED), micros(s.authenticated_at));
        assert_eq!(at(LAST_SEEN), micros(s.last_seen_at));
        assert_eq!(at(IDLE), micros(s.idle_expires_at));
        assert_eq!(at(ABSOLUTE), micros(s.absolute_expires_at));
        assert_eq!(at(REVOKED_AT), s.revoked_at.map_or(0, micros));
        assert_eq!(bytes.get(ID..ID + 16), Some(&s.id.0.as_bytes()[..]));
        assert_eq!(
            bytes.get(USER..USER + 16),
            Some(&s.user_id.0.as_bytes()[..])
        );
        assert_eq!(
            bytes.get(HASH_TAIL..HASH_TAIL + 16),
            Some(hash_tail(&s.token_hash))
        );
        let var = bytes.get(VAR_LEN..VAR_LEN + 2).unwrap_or(&[0, 0]);
        assert_eq!(
            usize::from(u16::from_le_bytes([var[0], var[1]])),
            bytes.len() - HEADER
        );
    }

    #[test]
    fn damaged_records_are_refused() {
        let s = record();
        let bytes = encode(&s).unwrap_or_default();
        let head = hash_head(&s.token_hash);
        assert!(decode(head, &bytes).is_some());
        for cut in [0, 1, HEADER - 1, bytes.len() - 1] {
            assert!(
                decode(head, bytes.get(..cut).unwrap_or_default()).is_none(),
                "{cut}"
            );
        }
        let mut other = bytes.clone();
        other[0] = FORMAT + 1;
        assert!(decode(head, &other).is_none());
        let mut methods = bytes.clone();
        // The first method's first byte: "password" becomes "xassword".
        methods[HEADER + 1] = b'x';
        assert!(decode(head, &methods).is_none());
        let mut extra = bytes;
        extra[VAR_LEN] = extra[VAR_LEN].wrapping_add(1);
        assert!(decode(head, &extra).is_none());
    }

    #[test]
    fn a_snapshot_follows_the_record() {
        let s = record();
        let mut bytes = encode(&s).unwrap_or_default();
        bytes[FLAGS] |= SNAPSHOT;
        bytes[STAMP] = 7;
        bytes.extend_from_slice(b"snap");
        let cached = decode(hash_head(&s.token_hash), &bytes);
        assert_eq!(
            cached.map(|c| (c.snapshot, c.stamp)),
            Some((Some(b"snap".to_vec()), 7))
        );
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
            "readable in the record's bytes"
        );
        // Unknown to this version, or damaged: never read as fewer methods.
        for bad in ["password,sms", "password,", ",totp", "oidc:", r"password\"] {
            assert_eq!(decode_methods(bad), None, "{bad}");
        }
    }
}
