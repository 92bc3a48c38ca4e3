//! How times and durations are written to Redis.
//!
//! Records keep exact instants as integer nanoseconds since the Unix epoch
//! (decimal strings, so they round-trip exactly). Scripts compare and add times as
//! whole milliseconds (Lua numbers are doubles, exact for milliseconds until the
//! year 285,000), rounded so a record is never judged dead or expired early.

use time::{Duration, OffsetDateTime};

/// A record in Redis that this crate cannot read back.
#[derive(Debug, thiserror::Error)]
#[error("malformed {0} in Redis")]
pub(crate) struct Malformed(pub(crate) &'static str);

/// A time argument this crate cannot represent.
#[derive(Debug, thiserror::Error)]
#[error("time out of range: {0}")]
pub(crate) struct OutOfRange(pub(crate) &'static str);

/// Exact: nanoseconds since the Unix epoch.
pub(crate) fn nanos(t: OffsetDateTime) -> String {
    t.unix_timestamp_nanos().to_string()
}

/// The inverse of [`nanos`].
pub(crate) fn parse_nanos(s: &str) -> Option<OffsetDateTime> {
    let n: i128 = s.parse().ok()?;
    OffsetDateTime::from_unix_timestamp_nanos(n).ok()
}

const NANOS_PER_MS: i128 = 1_000_000;

fn clamp(n: i128) -> i64 {
    i64::try_from(n).unwrap_or(if n < 0 { i64::MIN } else { i64::MAX })
}

/// Milliseconds since the epoch, rounded up (for deadlines).
pub(crate) fn ceil_ms(t: OffsetDateTime) -> i64 {
    let n = t.unix_timestamp_nanos();
    clamp(n.div_euclid(NANOS_PER_MS) + i128::from(n.rem_euclid(NANOS_PER_MS) != 0))
}

/// Milliseconds since the epoch, rounded down (for "now").
pub(crate) fn floor_ms(t: OffsetDateTime) -> i64 {
    clamp(t.unix_timestamp_nanos().div_euclid(NANOS_PER_MS))
}

/// The longest TTL this crate sets: 100 years (Redis refuses expiry times that
/// overflow its clock arithmetic).
pub(crate) const MAX_TTL_MS: i64 = 100 * 366 * 24 * 60 * 60 * 1000;

/// A Redis TTL for `d`: whole milliseconds rounded up, at least 1 (Redis deletes
/// a key at once for a TTL of zero or less), at most [`MAX_TTL_MS`].
pub(crate) fn ttl_ms(d: Duration) -> i64 {
    let n = d.whole_nanoseconds();
    clamp(n.div_euclid(NANOS_PER_MS) + i128::from(n.rem_euclid(NANOS_PER_MS) != 0))
        .clamp(1, MAX_TTL_MS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(nanos: i128) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp_nanos(nanos).unwrap_or(OffsetDateTime::UNIX_EPOCH)
    }

    #[test]
    fn instants_round_trip_exactly() {
        for n in [0, 1, -1, 1_893_456_000_123_456_789, -86_400_000_000_001] {
            assert_eq!(parse_nanos(&nanos(at(n))), Some(at(n)));
        }
        assert_eq!(parse_nanos("x"), None);
        assert_eq!(parse_nanos(&i128::MAX.to_string()), None);
    }

    #[test]
    fn milliseconds_round_the_safe_way() {
        assert_eq!((floor_ms(at(1_500_000)), ceil_ms(at(1_500_000))), (1, 2));
        assert_eq!((floor_ms(at(2_000_000)), ceil_ms(at(2_000_000))), (2, 2));
        assert_eq!((floor_ms(at(-1)), ceil_ms(at(-1))), (-1, 0));
        assert_eq!(ttl_ms(Duration::nanoseconds(1)), 1);
        assert_eq!(ttl_ms(Duration::ZERO), 1);
        assert_eq!(ttl_ms(Duration::seconds(-5)), 1);
        assert_eq!(ttl_ms(Duration::milliseconds(1500)), 1500);
        assert_eq!(ttl_ms(Duration::microseconds(1500)), 2);
        assert_eq!(ttl_ms(Duration::MAX), MAX_TTL_MS);
    }
}
