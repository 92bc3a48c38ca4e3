use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use async_trait::async_trait;
use time::{Duration, OffsetDateTime};

use super::StoreError;

/// What is being counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum AttemptScope {
    /// Failed logins (and failed current-password checks on change).
    Login,
    /// Registrations.
    Register,
    /// Password-reset requests.
    ResetRequest,
    /// Verification-email resends.
    VerificationResend,
    /// Failed second-factor codes (TOTP, recovery codes), per account (S15).
    SecondFactor,
}

impl AttemptScope {
    /// A stable name, used in storage keys.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Login => "login",
            Self::Register => "register",
            Self::ResetRequest => "reset",
            Self::VerificationResend => "resend",
            Self::SecondFactor => "second_factor",
        }
    }
}

/// The /64 network part of an IPv6 address.
const IPV6_NETWORK: u128 = !0 << 64;

/// The prefix length of the larger IPv6 network that [`AttemptKey::Network`]
/// counts: a /48, the most a provider commonly hands one customer (a site).
pub const IPV6_SITE_PREFIX: u8 = 48;

/// The /48 network part of an IPv6 address.
const IPV6_SITE: u128 = !0 << (128 - IPV6_SITE_PREFIX);

/// A counter's key: a scope and either an account (normalised email, whether or
/// not it exists, so unknown emails are limited alike), a client IP, or the
/// IPv6 /48 network a client is in.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum AttemptKey {
    /// Per account, by normalised email.
    Account(AttemptScope, String),
    /// Per client IP. The engine builds it with [`AttemptKey::client`], so an
    /// IPv6 client's address here is its /64 network.
    Ip(AttemptScope, IpAddr),
    /// Per IPv6 /48 network, a counter of its own beside the client's, judged
    /// with a higher threshold (S6): one holder of a /48 could otherwise spread
    /// over 65,536 /64 keys. The engine builds it with
    /// [`AttemptKey::network`], so the address here is the network's first.
    Network(AttemptScope, Ipv6Addr),
}

/// The IPv4 client an IPv6 address stands for, where it embeds one (S6):
/// IPv4-mapped (`::ffff:0:0/96`), NAT64's well-known prefix (`64:ff9b::/96`,
/// RFC 6052: behind a NAT64 gateway every IPv4 client would otherwise share
/// one /64 counter), 6to4 (`2002::/16`, RFC 3056: one IPv4 host holds a whole
/// /48 of it) and Teredo (`2001::/32`, RFC 4380: the client's address,
/// inverted, in the last 32 bits; all clients of one server share a /64).
/// A connection is a TCP handshake, so the embedded address is the one that
/// answered it. A NAT64 network-specific prefix is not recognised.
#[must_use]
pub fn embedded_ipv4(v6: Ipv6Addr) -> Option<Ipv4Addr> {
    let bits = u128::from(v6);
    let low32 = |b: u128| Ipv4Addr::from((b & 0xffff_ffff) as u32);
    if let Some(v4) = v6.to_ipv4_mapped() {
        return Some(v4);
    }
    match bits >> 96 {
        0x0064_ff9b if (bits >> 32) & 0xffff_ffff_ffff_ffff == 0 => Some(low32(bits)),
        0x2001_0000 => Some(low32(!bits)),
        _ if bits >> 112 == 0x2002 => Some(low32(bits >> 80)),
        _ => None,
    }
}

impl AttemptKey {
    /// The per-client key for a request from `ip` (S6). An IPv4 address (also
    /// written IPv4-mapped, `::ffff:a.b.c.d`, or arriving through NAT64, 6to4
    /// or Teredo: see [`embedded_ipv4`]) counts as itself; an IPv6 address
    /// counts as its /64 network, the least a provider hands one subscriber, so
    /// a client cannot escape its limits by rotating through the 2^64 addresses
    /// it holds.
    #[must_use]
    pub fn client(scope: AttemptScope, ip: IpAddr) -> Self {
        let counted = match ip {
            IpAddr::V4(_) => ip,
            IpAddr::V6(v6) => match embedded_ipv4(v6) {
                Some(v4) => IpAddr::V4(v4),
                None => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & IPV6_NETWORK)),
            },
        };
        Self::Ip(scope, counted)
    }

    /// The per-network key for a request from `ip` (S6): its IPv6 /48
    /// network; `None` for IPv4 (also written IPv4-mapped), which has no such
    /// key.
    #[must_use]
    pub fn network(scope: AttemptScope, ip: IpAddr) -> Option<Self> {
        let IpAddr::V6(v6) = ip else { return None };
        if embedded_ipv4(v6).is_some() {
            return None;
        }
        Some(Self::Network(
            scope,
            Ipv6Addr::from(u128::from(v6) & IPV6_SITE),
        ))
    }

    /// A stable text form, for key-value backends: `scope:a:email`,
    /// `scope:ip:addr` or `scope:net:addr/48`.
    #[must_use]
    pub fn storage_key(&self) -> String {
        match self {
            Self::Account(scope, email) => format!("{}:a:{email}", scope.as_str()),
            Self::Ip(scope, ip) => format!("{}:ip:{ip}", scope.as_str()),
            Self::Network(scope, net) => {
                format!("{}:net:{net}/{IPV6_SITE_PREFIX}", scope.as_str())
            }
        }
    }
}

/// A counter's value.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AttemptState {
    /// Attempts counted since the counter was last cleared or expired.
    pub count: u32,
    /// When the last one was counted.
    pub last_at: Option<OffsetDateTime>,
}

/// Atomic counters with expiry, for lockout and rate limits (S6).
#[async_trait]
pub trait AttemptStore: Send + Sync {
    /// Atomically adds one and returns the new state. The counter then expires
    /// `ttl` after `now` (each increment pushes the expiry out), so concurrent
    /// increments are never lost: 50 concurrent calls from zero end at 50.
    ///
    /// # Errors
    /// Backend failures only.
    async fn increment(
        &self,
        key: &AttemptKey,
        now: OffsetDateTime,
        ttl: Duration,
    ) -> Result<AttemptState, StoreError>;

    /// Adds one only if the counter is still `expected`, its state as
    /// [`AttemptStore::attempts`] read it at `now` (count and last time; an
    /// absent or expired counter reads as the default state), and returns the
    /// new state; `None` when it changed meanwhile. A compare-and-swap: of many
    /// concurrent calls with one `expected`, exactly one counts. The engine
    /// builds its atomic check-and-count on it (S6): it judges the state it
    /// read, then counts only if nothing was counted since, so a lock cannot be
    /// raced past.
    ///
    /// # Errors
    /// Backend failures only.
    async fn increment_if_unchanged(
        &self,
        key: &AttemptKey,
        expected: AttemptState,
        now: OffsetDateTime,
        ttl: Duration,
    ) -> Result<Option<AttemptState>, StoreError>;

    /// The current state; zero once expired.
    ///
    /// # Errors
    /// Backend failures only.
    async fn attempts(
        &self,
        key: &AttemptKey,
        now: OffsetDateTime,
    ) -> Result<AttemptState, StoreError>;

    /// The states of `keys`, in their order, as [`AttemptStore::attempts`]
    /// reads each: a login reads its client's counters and its account's
    /// together, so a backend that can read several in one round trip
    /// should. The default reads them one by one.
    ///
    /// # Errors
    /// Backend failures only.
    async fn attempts_of(
        &self,
        keys: &[AttemptKey],
        now: OffsetDateTime,
    ) -> Result<Vec<AttemptState>, StoreError> {
        let mut states = Vec::with_capacity(keys.len());
        for key in keys {
            states.push(self.attempts(key, now).await?);
        }
        Ok(states)
    }

    /// Resets the counter to zero.
    ///
    /// # Errors
    /// Backend failures only.
    async fn clear(&self, key: &AttemptKey) -> Result<(), StoreError>;

    /// Forgets expired counters (backends with native expiry may do nothing).
    /// Returns how many were removed.
    ///
    /// # Errors
    /// Backend failures only.
    async fn delete_expired_attempts(&self, now: OffsetDateTime) -> Result<u64, StoreError>;
}

#[cfg(test)]
mod tests {
    use super::{AttemptKey, AttemptScope};

    fn counted(ip: &str) -> String {
        AttemptKey::client(AttemptScope::Login, ip.parse().unwrap()).storage_key()
    }

    #[test]
    fn s6_ipv6_clients_count_per_64_and_ipv4_per_address() {
        assert_eq!(counted("192.0.2.7"), "login:ip:192.0.2.7");
        assert_eq!(counted("::ffff:192.0.2.7"), "login:ip:192.0.2.7");
        assert_eq!(
            counted("2001:db8:1:2:aaaa:bbbb:cccc:dddd"),
            "login:ip:2001:db8:1:2::"
        );
        assert_eq!(counted("2001:db8:1:2::1"), counted("2001:db8:1:2:ffff::9"));
        assert_ne!(counted("2001:db8:1:2::1"), counted("2001:db8:1:3::1"));
    }

    /// S6: NAT64, 6to4 and Teredo clients count as the IPv4 address they
    /// embed, not as one shared /64.
    #[test]
    fn s6_addresses_embedding_ipv4_count_as_that_ipv4() {
        for ip in [
            "64:ff9b::192.0.2.7",
            "2002:c000:207::1",
            "2002:c000:207:ffff::9",
            // Teredo: server 65.54.227.120, client 192.0.2.7 inverted.
            "2001:0:4136:e378:8000:63bf:3fff:fdf8",
        ] {
            assert_eq!(counted(ip), "login:ip:192.0.2.7", "{ip}");
        }
        assert_ne!(counted("64:ff9b::192.0.2.7"), counted("64:ff9b::192.0.2.8"));
        // Not NAT64's /96 (the middle bits are set): an ordinary /64.
        assert_eq!(counted("64:ff9b:1::c000:207"), "login:ip:64:ff9b:1::");
        assert_eq!(
            counted("2001:db8::c000:207"),
            "login:ip:2001:db8::",
            "documentation prefix, not Teredo"
        );
    }

    fn network(ip: &str) -> Option<String> {
        AttemptKey::network(AttemptScope::Login, ip.parse().unwrap()).map(|key| key.storage_key())
    }

    #[test]
    fn s6_ipv6_clients_also_count_per_48_and_ipv4_has_no_network_key() {
        assert_eq!(
            network("2001:db8:1:2:aaaa:bbbb:cccc:dddd").as_deref(),
            Some("login:net:2001:db8:1::/48")
        );
        assert_eq!(network("2001:db8:1:2::1"), network("2001:db8:1:ffff::9"));
        assert_ne!(network("2001:db8:1::1"), network("2001:db8:2::1"));
        assert_eq!(network("192.0.2.7"), None);
        assert_eq!(network("::ffff:192.0.2.7"), None);
        // Addresses that embed an IPv4 client count as it, with no network.
        assert_eq!(network("64:ff9b::c000:207"), None);
        assert_eq!(network("2002:c000:207::1"), None);
        // The network's key is not the /64 key of its first address.
        assert_ne!(network("2001:db8:1::1"), Some(counted("2001:db8:1::1")));
    }
}
